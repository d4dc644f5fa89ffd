/* SPDX-License-Identifier: MIT */
/*
 * Group logs in the command layer (docs/PROTOCOL.md 5.9): LOG_CREATE, LOG_APPEND, LOG_READ
 * and LOG_DELETE, expiry, start-up loading and shutdown. The reads in progress are
 * logread.c; the registry itself is grouplog.c.
 *
 * Durable before visible: an entry is listed in its log, answered APPENDED and sent to
 * followers only in its write's done(), so every reader sees the same history. Its body is one
 * buffer (the append's), from which every caught-up follower's LOG_ENTRY is encoded; a reader
 * that is behind, or whose output is over its limit, reads from the store instead (logread.c).
 *
 * "No such log" and "wrong credential" (or delete secret) share one reply and one code path,
 * with the same hash and compare, as SEND does (5.5).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "admission.h"
#include "cairn/error.h"
#include "command_layer.h"
#include "logcmd_internal.h"
#include "port.h"
#include "relay.h"

/* Log work one idle-expiry pass may do: a log costs one plus its entries. */
#define IDLE_EXPIRY_BUDGET 65536

/* The digest compared against when there is no log: any value no credential hashes to. */
static const uint8_t no_digest[CAIRN_CREDENTIAL_LEN];

/* An append being written. BODY is the one copy of the entry until the write is done. */
struct log_append {
	struct storage_job job;
	struct relay *relay;
	struct glog *log; /* NULL once the log is gone */
	struct log_append *prev, *next;
	struct peer *peer; /* held until answered */
	uint32_t request_id;
	uint64_t id, seq;
	uint32_t len;
	uint8_t body[];
};

/* ---- touching, removing ---------------------------------------------------------------- */

/* LOG was appended to or read now: its touched time moves (written once a grain at most). */
static void log_touch(struct relay *relay, struct glog *log)
{
	int64_t t = coarse_time(relay, relay_stamp(relay));
	if (t <= log->rec.touched)
		return;
	struct request *r = request_new(NULL, 0, request_done);
	if (r == NULL)
		return;
	log->rec.touched = t;
	glog_touched(&relay->logs, log);
	r->job.op.kind = STORE_LOG_TOUCH;
	r->job.op.log_key = log->rec.id;
	r->job.op.stored_at = t;
	relay_submit(relay, &r->job);
}

static void log_forget(struct relay *relay, struct glog *log);

/* Removes LOG with its entries, ending its reads with END 0; answers P's REQUEST_ID once the
 * removal is durable (if P is set). 0, or CAIRN_ENOMEM with LOG untouched. */
static int log_destroy(struct relay *relay, struct glog *log, struct peer *p, uint32_t request_id)
{
	struct request *w = request_new(p, request_id, request_done);
	size_t n = 0, cap = log->e_len;
	for (struct log_append *a = log->appends; a != NULL; a = a->next)
		cap++;
	if (w == NULL || (cap > 0 && (w->ids = malloc(cap * sizeof(*w->ids))) == NULL)) {
		if (w != NULL) {
			w->job.status = CAIRN_ESTORAGE;
			request_finish(w);
		} else if (p != NULL) {
			peer_reply_error(p, request_id, CAIRN_ESTORAGE);
		}
		return CAIRN_ENOMEM;
	}
	/* The entries being written too: their rows may land before this delete. */
	for (size_t i = 0; i < log->e_len; i++)
		w->ids[n++] = glog_at(log, i)->id;
	for (struct log_append *a = log->appends; a != NULL; a = a->next)
		w->ids[n++] = a->id;
	w->job.op.kind = STORE_LOG_DELETE;
	w->job.op.log_key = log->rec.id;
	w->job.op.envelope_ids = w->ids;
	w->job.op.n_envelope_ids = n;
	log_forget(relay, log);
	relay_submit(relay, &w->job);
	return 0;
}

/* LOG leaves memory: its appends in flight are no longer listed, its reads end with END 0. */
static void log_forget(struct relay *relay, struct glog *log)
{
	for (struct log_append *a = log->appends; a != NULL; a = a->next)
		a->log = NULL;
	log->appends = log->appends_tail = NULL;
	while (log->readers != NULL)
		logread_reader_end(log->readers, 0);
	glog_remove(&relay->logs, log);
}

/* ---- commands -------------------------------------------------------------------------- */

static void on_create_done(struct storage_job *job)
{
	struct request *r = job->data;
	struct glog *log = glog_by_key(&r->relay->logs, r->log.id);
	/* Nothing but its own PUT can hold a log being created. */
	if (log != NULL && log->creating) {
		if (job->status == 0)
			log->creating = false;
		else
			glog_remove(&r->relay->logs, log);
	}
	request_finish(r);
}

/* A new log's store key: random like a mailbox's, positive for SQLite, unused. */
static uint64_t new_log_key(const struct relay *relay)
{
	uint64_t key;
	do {
		randombytes_buf(&key, sizeof(key));
		key &= (uint64_t)INT64_MAX;
	} while (key == 0 || glog_by_key(&relay->logs, key) != NULL);
	return key;
}

static void cmd_log_create(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	if (admission_take(relay, &p->budget) != 0) {
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	struct glog *log = glog_by_log_id(&relay->logs, m->log_id);
	if (log != NULL) {
		/* Both compared, whatever the first says. */
		int differ = sodium_memcmp(log->rec.credential_digest, m->credential,
		                           CAIRN_CREDENTIAL_LEN) |
		             sodium_memcmp(log->rec.delete_digest, m->delete_digest,
		                           CAIRN_CREDENTIAL_LEN);
		if (differ != 0) {
			peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		} else if (!log->creating) {
			peer_reply_ok(p, m->request_id); /* a retry: nothing changes */
		} else {
			/* Its PUT is on the way: a write queued after it commits with or after it,
			 * so this OK too waits for the log to be durable. */
			struct request *w = request_new(p, m->request_id, request_done);
			if (w == NULL) {
				peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
				return;
			}
			w->job.op.kind = STORE_LOG_TOUCH;
			w->job.op.log_key = log->rec.id;
			w->job.op.stored_at = log->rec.touched;
			relay_submit(relay, &w->job);
		}
		return;
	}
	int rc = admission_room_for_log(relay);
	if (rc != 0) {
		peer_reply_error(p, m->request_id, rc);
		return;
	}
	struct request *w = request_new(p, m->request_id, on_create_done);
	if (w == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	w->relay = relay;
	w->log.id = new_log_key(relay);
	memcpy(w->log.log_id, m->log_id, CAIRN_LOG_ID_LEN);
	memcpy(w->log.credential_digest, m->credential, CAIRN_CREDENTIAL_LEN);
	memcpy(w->log.delete_digest, m->delete_digest, CAIRN_CREDENTIAL_LEN);
	w->log.next_seq = 1;
	w->log.touched = coarse_time(relay, relay_stamp(relay));
	log = glog_add(&relay->logs, &w->log);
	if (log == NULL) {
		w->job.status = CAIRN_ESTORAGE;
		request_finish(w);
		return;
	}
	log->creating = true;
	w->job.op.kind = STORE_LOG_PUT;
	w->job.op.log = &w->log;
	relay_submit(relay, &w->job);
}

/* The log M names if SECRET (the credential, or the delete secret) hashes to the digest it
 * keeps at OFFSET in its record; else NULL. The same work whether or not the log exists. */
static struct glog *authorised_log(struct relay *relay, const struct cairn_msg *m,
                                   const uint8_t *secret, bool deleting)
{
	struct glog *log = glog_by_log_id(&relay->logs, m->log_id);
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	crypto_generichash(digest, sizeof(digest), secret, CAIRN_CREDENTIAL_LEN, m->log_id,
	                   CAIRN_LOG_ID_LEN);
	bool usable = log != NULL && !log->creating;
	const uint8_t *expected = !usable    ? no_digest
	                          : deleting ? log->rec.delete_digest
	                                     : log->rec.credential_digest;
	int match = sodium_memcmp(digest, expected, sizeof(digest)) == 0;
	sodium_memzero(digest, sizeof(digest));
	return usable && match ? log : NULL;
}

static void on_append_done(struct storage_job *job)
{
	struct log_append *a = job->data;
	struct relay *relay = a->relay;
	struct log_registry *reg = &relay->logs;
	struct glog *log = a->log;
	if (log != NULL) {
		if (a->prev != NULL)
			a->prev->next = a->next;
		else
			log->appends = a->next;
		if (a->next != NULL)
			a->next->prev = a->prev;
		else
			log->appends_tail = a->prev;
	}
	bool node = relay->node != 0;
	/* A node's entry has the seq its database gave it (store.h's assigned_seq), 0 when the
	 * log was deleted (by another node) before: nothing stored, no such log. */
	int status = job->status == 0 && node && a->seq == 0 ? CAIRN_EDENIED : job->status;
	bool listed = false;
	if (log != NULL && (status != 0 || a->id < reg->expired_below ||
	                    (node ? glog_insert : glog_push)(log, a->id, a->seq, a->len) != 0)) {
		/* Not stored, or already expired (or out of memory: range expiry still removes
		 * it from the disk): no longer counted. */
		log->count--;
		log->bytes -= a->len;
		reg->entries--;
		reg->bytes -= a->len;
	} else if (log != NULL) {
		listed = true;
	}
	if (log != NULL && node && status == 0) {
		/* One past the highest seen; a stored entry that is not listed (expired already)
		 * is one the followers here do not wait for. */
		if (a->seq >= log->rec.next_seq)
			log->rec.next_seq = a->seq + 1;
		if (!listed && a->seq >= log->gone_below)
			log->gone_below = a->seq + 1;
	}
	if (status == 0) {
		relay->stats.log_entries_appended++;
		struct cairn_msg m = {
		    .type = CAIRN_REPLY_APPENDED, .request_id = a->request_id, .seq = a->seq};
		peer_reply(a->peer, &m);
	} else if (status == CAIRN_EDENIED) {
		peer_reply_error(a->peer, a->request_id, CAIRN_EDENIED);
	} else {
		admission_write_done(relay, job->status);
		peer_reply_error(a->peer, a->request_id,
		                 job->status == CAIRN_ECAPACITY ? CAIRN_ECAPACITY : CAIRN_ESTORAGE);
	}
	peer_release(a->peer);
	/* Fan-out: the one body to every follower that has read everything before it. */
	size_t at = listed ? glog_find_seq(log, a->seq) : 0;
	for (struct log_reader *r = listed ? log->readers : NULL, *next; r != NULL; r = next) {
		next = r->next;
		if (r->batch != NULL || a->seq < r->cursor || a->seq >= r->stop ||
		    glog_find_seq(log, r->cursor) != at ||
		    !logread_in_turn(relay, log, r->cursor, a->seq) ||
		    !relay->port->can_deliver(r->peer->conn))
			continue; /* behind, or full: it reads from the store when it can */
		logread_send_entry(r, a->seq, a->body, a->len);
		/* On a node, entries the feed brought while this one was written may follow. */
		if (node)
			logread_reader_pump(r);
	}
	sodium_memzero(a->body, a->len);
	free(a);
}

static void cmd_log_append(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	const struct relay_config *cfg = relay->cfg;
	struct glog *log = authorised_log(relay, m, m->credential, false);
	if (log == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	if (m->envelope_len > CAIRN_LOG_ENTRY_MAX) {
		peer_reply_error(p, m->request_id, CAIRN_ETOOBIG);
		return;
	}
	if (m->envelope_len == 0 || m->envelope == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return;
	}
	uint32_t len = (uint32_t)m->envelope_len;
	if (log->count + 1 > cfg->log_max_entries || log->bytes + len > cfg->log_max_bytes) {
		peer_reply_error(p, m->request_id, CAIRN_EQUOTA);
		return;
	}
	if (admission_room_for_envelope(relay, len) != 0) {
		peer_reply_error(p, m->request_id, CAIRN_ECAPACITY);
		return;
	}
	struct log_append *a = NULL;
	uint64_t id = ids_take(relay);
	if (id == 0 || (a = calloc(1, sizeof(*a) + len)) == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	int64_t now = relay_stamp(relay);
	a->relay = relay;
	a->log = log;
	a->peer = p;
	a->request_id = m->request_id;
	a->id = id;
	/* On a node the database numbers it (on_append_done); alone, this relay does. */
	a->seq = relay->node != 0 ? 0 : log->rec.next_seq++;
	a->len = len;
	memcpy(a->body, m->envelope, len);
	a->prev = log->appends_tail;
	if (log->appends_tail != NULL)
		log->appends_tail->next = a;
	else
		log->appends = a;
	log->appends_tail = a;
	log->count++;
	log->bytes += len;
	relay->logs.entries++;
	relay->logs.bytes += len;
	add_time_mark(relay, now, a->id + 1);
	log_touch(relay, log);
	peer_hold(p);
	a->job.kind = STORAGE_WRITE;
	a->job.op.kind = STORE_LOG_ENTRY_PUT;
	a->job.op.envelope_id = a->id;
	a->job.op.log_key = log->rec.id;
	a->job.op.seq = a->seq;
	a->job.op.assigned_seq = relay->node != 0 ? &a->seq : NULL;
	a->job.op.body = a->body;
	a->job.op.len = len;
	a->job.op.stored_at = now;
	a->job.done = on_append_done;
	a->job.data = a;
	relay_submit(relay, &a->job);
}

static void cmd_log_read(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	struct glog *log = glog_by_log_id(&relay->logs, m->log_id);
	if (log == NULL || log->creating) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	uint32_t len = p->reads != NULL ? p->reads->len : 0, at = 0;
	while (at < len && p->reads->r[at]->log != log)
		at++;
	struct log_reader *old = at < len ? p->reads->r[at] : NULL;
	uint32_t max = relay->cfg->logs_per_connection;
	if (old == NULL && len >= max) {
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	struct log_reader *r = calloc(1, sizeof(*r));
	if (r == NULL ||
	    (old == NULL && grow_block((void **)&p->reads, offsetof(struct peer_reads, r),
	                               sizeof(p->reads->r[0]), len, max) != 0)) {
		free(r);
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	/* A second read ends the first (5.9) and takes its place, so that P's reads are never
	 * none meanwhile (which would free them: logread_reader_end). */
	if (old != NULL) {
		p->reads->r[at] = r;
		logread_reader_end(old, -CAIRN_ELIMIT);
	} else {
		p->reads->r[p->reads->len++] = r;
	}
	r->relay = relay;
	r->log = log;
	r->peer = p;
	r->request_id = m->request_id;
	r->cursor = m->seq;
	r->stop = m->follow ? UINT64_MAX : log->rec.next_seq;
	r->next = log->readers;
	if (r->next != NULL)
		r->next->prev = r;
	log->readers = r;
	log_touch(relay, log);
	/* Alone, next_seq counts the appends being written; so does first_seq, so that no entry
	 * this read is sent has a seq below it (a reader takes seqs below it for expired ones).
	 * On a node an append has no seq until it is stored: both count the entries seen. */
	uint64_t first = log->e_len > 0                             ? glog_at(log, 0)->seq
	                 : log->appends != NULL && relay->node == 0 ? log->appends->seq
	                                                            : log->rec.next_seq;
	struct cairn_msg st = {.type = CAIRN_REPLY_LOG_STATE,
	                       .request_id = m->request_id,
	                       .first_seq = first,
	                       .next_seq = log->rec.next_seq};
	peer_reply(p, &st);
	logread_reader_pump(r);
}

static void cmd_log_delete(struct peer *p, const struct cairn_msg *m)
{
	struct glog *log = authorised_log(p->relay, m, m->delete_secret, true);
	if (log == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	(void)log_destroy(p->relay, log, p, m->request_id);
}

bool logs_command(struct peer *p, const struct cairn_msg *m)
{
	switch (m->type) {
	case CAIRN_CMD_LOG_CREATE:
		cmd_log_create(p, m);
		return true;
	case CAIRN_CMD_LOG_APPEND:
		cmd_log_append(p, m);
		return true;
	case CAIRN_CMD_LOG_READ:
		cmd_log_read(p, m);
		return true;
	case CAIRN_CMD_LOG_DELETE:
		cmd_log_delete(p, m);
		return true;
	default:
		return false;
	}
}

/* ---- connections, expiry, loading, shutdown -------------------------------------------- */

void logs_peer_closed(struct peer *p)
{
	while (p->reads != NULL && p->reads->len > 0)
		logread_reader_end(p->reads->r[p->reads->len - 1], -1);
}

void logs_shutdown(struct relay *relay)
{
	for (struct peer *p = relay->peers; p != NULL; p = p->next)
		while (p->reads != NULL && p->reads->len > 0)
			logread_reader_end(p->reads->r[p->reads->len - 1], -CAIRN_ESHUTDOWN);
	log_registry_free(&relay->logs);
}

void logs_expire(struct relay *relay, int64_t now, uint64_t cutoff)
{
	struct log_registry *reg = &relay->logs;
	int64_t limit = now - (int64_t)relay->cfg->ttl_s;
	size_t budget = IDLE_EXPIRY_BUDGET;
	struct glog *log;
	while (budget > 0 && (log = reg->idle_head) != NULL && log->rec.touched <= limit) {
		size_t cost = 1 + log->count;
		if (log->readers != NULL || log->creating) {
			/* Read now: touched. Not written if the touch cannot be, but not in the
			 * way of the others either. */
			log_touch(relay, log);
			if (reg->idle_head == log)
				glog_touched(reg, log);
		} else if (log_destroy(relay, log, NULL, 0) != 0) {
			return;
		} else {
			relay->stats.logs_expired++;
		}
		budget = cost < budget ? budget - cost : 0;
	}
	/* commands_expire queues the one STORE_EXPIRE that removes them from the disk. */
	logs_expire_below(relay, cutoff);
}

void logs_expire_below(struct relay *relay, uint64_t cutoff)
{
	struct log_registry *reg = &relay->logs;
	if (cutoff <= reg->expired_below)
		return;
	reg->expired_below = cutoff;
	for (size_t b = 0; b < reg->buckets; b++)
		for (struct glog *log = reg->by_log_id[b]; log != NULL; log = log->next_by_log_id)
			glog_expire(reg, log, cutoff);
}

void logs_load_log(void *ctx, const struct store_log *rec)
{
	struct relay *relay = ctx;
	(void)glog_add(&relay->logs, rec);
}

/* ---- another node's commits (the change feed, feed.c) ----------------------------------- */

void logs_apply_put(struct relay *relay, const struct store_log *rec)
{
	if (glog_by_key(&relay->logs, rec->id) == NULL &&
	    glog_by_log_id(&relay->logs, rec->log_id) == NULL)
		(void)glog_add(&relay->logs, rec);
}

void logs_apply_touch(struct relay *relay, uint64_t key, int64_t touched)
{
	struct glog *log = glog_by_key(&relay->logs, key);
	if (log != NULL && touched > log->rec.touched) {
		log->rec.touched = touched;
		glog_touched(&relay->logs, log);
	}
}

void logs_apply_delete(struct relay *relay, uint64_t key)
{
	struct glog *log = glog_by_key(&relay->logs, key);
	if (log != NULL)
		log_forget(relay, log);
}

/* Counts INFO's entry, now in LOG's list, in LOG and the relay. */
static void entry_counted(struct relay *relay, struct glog *log,
                          const struct store_log_entry_info *info)
{
	log->count++;
	log->bytes += info->len;
	relay->logs.entries++;
	relay->logs.bytes += info->len;
	if (info->seq >= log->rec.next_seq)
		log->rec.next_seq = info->seq + 1;
}

void logs_apply_entry(struct relay *relay, const struct store_log_entry_info *info)
{
	struct glog *log = glog_by_key(&relay->logs, info->log);
	ids_seen(relay, info->id);
	/* Seq 0: the log was deleted before the other node's append (nothing stored). */
	if (log == NULL || info->seq == 0)
		return;
	if (info->id < relay->logs.expired_below) {
		/* Expired already: not listed, and not waited for. */
		if (info->seq >= log->gone_below)
			log->gone_below = info->seq + 1;
		return;
	}
	/* In seq order even below this node's last: the database numbers each node's entries
	 * in commit order, and the other node's may reach this one after this node's own later
	 * one. Its followers here wait for it (logread_in_turn). A seq held already is a repeat. */
	if (glog_insert(log, info->id, info->seq, info->len) != 0)
		return;
	add_time_mark(relay, info->stored_at, info->id + 1);
	entry_counted(relay, log, info);
	/* Its followers on this node read it from the store, as any entry they lack. */
	for (struct log_reader *r = log->readers, *next; r != NULL; r = next) {
		next = r->next;
		logread_reader_pump(r);
	}
}

void logs_load_entry(void *ctx, const struct store_log_entry_info *info)
{
	struct relay *relay = ctx;
	ids_seen(relay, info->id);
	add_time_mark(relay, info->stored_at, info->id + 1);
	struct glog *log = glog_by_key(&relay->logs, info->log);
	if (log == NULL || glog_push(log, info->id, info->seq, info->len) != 0)
		return;
	entry_counted(relay, log, info);
	/* What the store held at load is settled: a seq missing below it never comes. */
	log->gone_below = log->rec.next_seq;
}
