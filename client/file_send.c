/* SPDX-License-Identifier: MIT */
/*
 * Sending a file (cairn_file_send; docs/PROTOCOL.md 11.3): the padded stream encrypted once
 * into a spool, the log created on our first relay and filled in order with a window of
 * appends in flight over a connection of its own (no AUTH: the relay cannot link the file to
 * our mailboxes), each APPENDED recorded as it comes so that a resumed upload starts at the
 * first chunk without one, and the file message sent only when every chunk is there.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "files.h"
#include "group.h"
#include "logio.h"

#define SEND_WINDOW 32 /* appends in flight: enough to fill a link, bounded by inflight_requests   \
	                */

/* Finds a send of PATH into CONV that is not done: uploading, or sent with its message still
 * in the outbox (then only the message goes). */
struct find_ctx {
	const uint8_t *conv;
	const char *path;
	struct file_rec *out;
	bool found, sent;
	uint8_t sent_id[APPMSG_ID_LEN]; /* a match already SENT */
};

static int find_one(void *ctx, const uint8_t *v, size_t vlen)
{
	struct find_ctx *f = ctx;
	struct file_rec r;
	if (cfile_rec_parse(v, vlen, &r) != 0)
		return 0;
	bool match = r.dir == FILE_OUT && !r.group == !f->out->group &&
	             (r.state == CAIRN_FILE_SENDING || r.state == CAIRN_FILE_SENT) &&
	             memcmp(r.conv, f->conv, RECORD_ID_LEN) == 0 && strcmp(r.path, f->path) == 0;
	if (match && r.state == CAIRN_FILE_SENDING) {
		*f->out = r;
		f->found = true;
		return 1;
	}
	if (match) {
		memcpy(f->sent_id, r.id, APPMSG_ID_LEN);
		f->sent = true;
	}
	cfile_rec_wipe(&r);
	return 0;
}

static int find_unfinished(struct cairn *c, const uint8_t conv[RECORD_ID_LEN], const char *path,
                           struct file_rec *out)
{
	/* few files are ever unfinished at once: a walk over the records is cheap enough */
	struct find_ctx f = {.conv = conv, .path = path, .out = out};
	int rc = cstate_list(c->st, REC_FILE, find_one, &f);
	if (rc < 0)
		return rc;
	if (f.found)
		return 0;
	/* 1:1: uploaded, and its message still waits in the outbox: only the message goes */
	unsigned n = 0;
	if (f.sent && !out->group && (rc = client_outbox_count(c, f.sent_id, &n)) != 0)
		return rc;
	return n > 0 ? cfile_load(c, f.sent_id, out) : CAIRN_ENOTFOUND;
}

/* The spool: the padded stream sealed once. Reads exactly R->size bytes of FD, hashing them. */
static int spool_write(struct cairn *c, struct file_rec *r, int fd)
{
	char path[4200];
	int rc = cfile_spool_path(c, r->spool, path, sizeof(path), true);
	if (rc != 0)
		return rc;
	/* a spool left by a send killed while it wrote this one is written anew */
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return CAIRN_EIO;
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, FILE_DIGEST_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(&st, r->header, r->key);
	uint8_t *plain = malloc(FILE_CHUNK_PLAIN), *entry = malloc(FILE_ENTRY_LEN);
	rc = plain == NULL || entry == NULL ? CAIRN_ENOMEM : 0;
	uint64_t left = r->size;
	for (uint32_t i = 0; i < r->chunks && rc == 0; i++) {
		size_t want = left < FILE_CHUNK_PLAIN ? (size_t)left : FILE_CHUNK_PLAIN, got = 0;
		while (got < want) {
			ssize_t n = read(fd, plain + got, want - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = CAIRN_EIO; /* shorter than it was: the file changed under us */
				break;
			}
			got += (size_t)n;
		}
		if (rc != 0)
			break;
		crypto_generichash_update(&h, plain, want);
		memset(plain + want, 0, FILE_CHUNK_PLAIN - want);
		left -= want;
		rc = file_entry_seal(&st, i, i + 1 == r->chunks, plain, entry);
		if (rc == 0 && write(out, entry, FILE_ENTRY_LEN) != FILE_ENTRY_LEN)
			rc = CAIRN_EIO;
	}
	crypto_generichash_final(&h, r->digest, FILE_DIGEST_LEN);
	/* durable before the record that names it is stored */
	if (rc == 0 && fsync(out) != 0)
		rc = CAIRN_EIO;
	if (close(out) != 0 && rc == 0)
		rc = CAIRN_EIO;
	if (rc != 0)
		(void)unlink(path);
	if (plain != NULL) {
		sodium_memzero(plain, FILE_CHUNK_PLAIN);
		free(plain);
	}
	free(entry);
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* Where the file goes and who it is for: contact or group NAME into R. */
static int target(struct cairn *c, const char *name, struct file_rec *r)
{
	struct contact k;
	int rc = client_load_contact(c, name, &k);
	if (rc == 0) {
		struct mailbox_list mine;
		contact_current_mailboxes(&k, &mine);
		if (k.state != CONTACT_ESTABLISHED || mine.count == 0)
			rc = CAIRN_ESTATE;
		else {
			memcpy(r->conv, k.conv, RECORD_ID_LEN);
			memcpy(r->peer, k.id, RECORD_ID_LEN);
			snprintf(r->relay, sizeof(r->relay), "%s", mine.box[0].relay);
		}
		contact_wipe(&k);
		return rc;
	}
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	struct group_state *g = NULL;
	if ((rc = client_group_find(c, name, r->gid)) == 0 &&
	    (rc = group_load(c, r->gid, &g)) == 0) {
		if (g->removed)
			rc = CAIRN_ESTATE;
		memcpy(r->conv, g->conv, RECORD_ID_LEN);
		snprintf(r->relay, sizeof(r->relay), "%s", g->log.relay);
		r->group = 1;
	}
	group_free(g);
	return rc;
}

/* A new send of PATH to NAME: the record and the spool, stored in a transaction. */
static int start(struct cairn *c, const char *name, const char *path, struct file_rec *r)
{
	memset(r, 0, sizeof(*r));
	int rc = target(c, name, r);
	if (rc != 0)
		return rc;
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	size_t blen = strlen(base);
	if (blen == 0 || blen > FILE_NAME_MAX || !file_utf8_ok((const uint8_t *)base, blen))
		return CAIRN_EINVAL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO;
	if (!S_ISREG(sb.st_mode))
		return CAIRN_EINVAL;
	if ((uint64_t)sb.st_size > CAIRN_FILE_SIZE_MAX)
		return CAIRN_ETOOBIG;
	r->dir = FILE_OUT;
	r->state = CAIRN_FILE_SENDING;
	r->size = (uint64_t)sb.st_size;
	r->chunks = file_chunks(r->size);
	r->sent_at = (uint64_t)client_now_s(c);
	r->name_len = (uint8_t)blen;
	memcpy(r->name, base, blen);
	if (realpath(path, r->path) == NULL)
		snprintf(r->path, sizeof(r->path), "%s", path);
	client_random(c, r->id, APPMSG_ID_LEN);
	crypto_secretstream_xchacha20poly1305_keygen(r->key);
	client_random(c, r->header, FILE_HEADER_LEN);
	client_random(c, r->log_id, CAIRN_LOG_ID_LEN);
	client_random(c, r->credential, CAIRN_CREDENTIAL_LEN);
	if (!r->group) /* 11.2: a group's log is left to expire */
		client_random(c, r->delete_secret, CAIRN_CREDENTIAL_LEN);
	uint8_t rnd[FILE_SPOOL_NAMELEN / 2];
	client_random(c, rnd, sizeof(rnd));
	sodium_bin2hex(r->spool, sizeof(r->spool), rnd, sizeof(rnd));
	/* Stored before the spool is written, with no digest yet: a send killed while it
	 * encrypts leaves a record that names its spool, and the next run writes it again. */
	if ((rc = cstate_begin(c->st)) == 0) {
		rc = cfile_store(c, r);
		rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
	}
	return rc;
}

/* Writes R's spool from its source (again, after a killed run) and stores its digest: the
 * file must still be there, of the size it had. */
static int spool(struct cairn *c, struct file_rec *r)
{
	int fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CAIRN_EIO;
	struct stat sb;
	int rc = fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != r->size ? CAIRN_EIO : 0;
	if (rc == 0)
		rc = spool_write(c, r, fd);
	close(fd);
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		rc = cfile_store(c, r);
		rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
	}
	return rc;
}

struct flight {
	uint32_t rid, index;
};

static bool final_error(int rc)
{
	return rc == CAIRN_EQUOTA || rc == CAIRN_ECAPACITY || rc == CAIRN_EDENIED;
}

/* The next chunk at or after FROM that holds no APPENDED and is not in flight. */
static uint32_t next_unsent(const struct file_rec *r, const struct file_prog *p,
                            const struct flight *fl, size_t nfl, uint32_t from)
{
	for (uint32_t i = from; i < r->chunks; i++) {
		bool busy = cfile_prog_has(p, i);
		for (size_t k = 0; k < nfl && !busy; k++)
			busy = fl[k].index == i;
		if (!busy)
			return i;
	}
	return r->chunks;
}

/*
 * One connection's worth of upload on N (a cfile_step): the log created (idempotent), then
 * appends from the first chunk without an APPENDED, SEND_WINDOW in flight. Returns 0 when
 * every chunk is acknowledged, a final refusal, or another error (X->network: worth a retry).
 */
static int upload_on(struct cfile_xfer *x, struct cnet *n)
{
	struct cairn *c = x->c;
	const struct file_rec *r = x->r;
	struct file_prog *p = &x->p;
	bool *network = &x->network;
	uint8_t cdig[CAIRN_CREDENTIAL_LEN], ddig[CAIRN_CREDENTIAL_LEN];
	struct group_log_ref log = {0};
	memcpy(log.log_id, r->log_id, CAIRN_LOG_ID_LEN);
	memcpy(log.credential, r->credential, CAIRN_CREDENTIAL_LEN);
	group_log_digests(&log, r->delete_secret, cdig, ddig);
	sodium_memzero(&log, sizeof(log));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .log_id = r->log_id,
	                      .credential = cdig,
	                      .delete_digest = ddig},
	                 reply;
	int rc = client_call(c, n, &m, &reply);
	if (rc != 0) {
		*network = !final_error(rc) && rc != CAIRN_ECAPACITY;
		return rc;
	}
	struct flight fl[SEND_WINDOW];
	size_t nfl = 0;
	uint8_t *entry = malloc(FILE_ENTRY_LEN);
	if (entry == NULL)
		return CAIRN_ENOMEM;
	uint32_t next = next_unsent(r, p, fl, 0, 0);
	while (rc == 0 && cfile_prog_count(p) < r->chunks) {
		while (nfl < SEND_WINDOW && next < r->chunks && rc == 0) {
			if (pread(x->spool, entry, FILE_ENTRY_LEN, (off_t)next * FILE_ENTRY_LEN) !=
			    FILE_ENTRY_LEN) {
				rc = CAIRN_EIO;
				*network = false;
				break;
			}
			struct cairn_msg a = {.type = CAIRN_CMD_LOG_APPEND,
			                      .request_id = cnet_next_id(n),
			                      .log_id = r->log_id,
			                      .credential = r->credential,
			                      .envelope = entry,
			                      .envelope_len = FILE_ENTRY_LEN};
			if ((rc = cnet_queue(n, &a)) == 0) {
				fl[nfl++] = (struct flight){.rid = a.request_id, .index = next};
				next = next_unsent(r, p, fl, nfl, next + 1);
			}
		}
		if (rc == 0)
			rc = cnet_flush(n);
		if (rc != 0)
			break;
		if ((rc = cnet_recv(n, &reply, c->timeout_ms)) != 0)
			break;
		size_t k = 0;
		while (k < nfl && fl[k].rid != reply.request_id)
			k++;
		if (k == nfl)
			continue; /* not ours (a PING's answer, say) */
		uint32_t idx = fl[k].index;
		fl[k] = fl[--nfl];
		if (reply.type == CAIRN_REPLY_ERROR) {
			rc = cairn_wire_error(reply.code);
			*network = !final_error(rc);
			break;
		}
		if (reply.type != CAIRN_REPLY_APPENDED)
			continue;
		if (cfile_prog_mark(p, idx) < 0) {
			rc = CAIRN_ELIMIT;
			*network = false;
			break;
		}
		if ((rc = cfile_held(x, true)) != 0)
			break;
	}
	free(entry);
	return rc;
}

/* Uploads until every chunk is acknowledged (cfile_run). */
static int upload(struct cairn *c, const struct file_rec *r, cairn_progress_cb cb, void *ctx)
{
	char path[4200];
	int rc = cfile_spool_path(c, r->spool, path, sizeof(path), false);
	if (rc != 0)
		return rc;
	struct cfile_xfer x = {.c = c, .r = r, .cb = cb, .ctx = ctx};
	if ((x.spool = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return CAIRN_EIO;
	rc = cfile_run(&x, upload_on);
	close(x.spool);
	return rc;
}

/* Seals the one-part application message KIND of DATA into group GID under id ID and stores
 * TEXT as our message there, in the group's transaction (as group_send_text does a text). */
static int group_send_kind(struct cairn *c, const uint8_t gid[GROUP_ID_LEN], uint8_t kind,
                           const uint8_t *data, size_t len, const uint8_t id[APPMSG_ID_LEN],
                           const uint8_t *text, size_t tlen)
{
	struct group_state *g;
	int rc = group_txn_load(c, gid, &g);
	if (rc != 0)
		return rc;
	uint8_t *buf = malloc(GROUP_PAYLOAD_MAX);
	rc = buf == NULL ? CAIRN_ENOMEM : g->removed ? CAIRN_ESTATE : 0;
	if (rc == 0)
		rc = group_key_update_due(c, g, true);
	int64_t now = client_now_s(c);
	struct appmsg am = {.kind = kind,
	                    .sent_at = (uint64_t)now,
	                    .part_index = 0,
	                    .part_count = 1,
	                    .data = data,
	                    .data_len = len};
	memcpy(am.id, id, APPMSG_ID_LEN);
	size_t plen = 0;
	if (rc == 0)
		rc = appmsg_encode(&am, buf, GROUP_PAYLOAD_MAX, &plen);
	if (rc == 0)
		rc = group_seal_queue(c, g, buf, plen);
	if (rc == 0) {
		int s = group_store_message(c, g, NULL, id, now, text, tlen);
		rc = s < 0 ? s : 0;
	}
	if (buf != NULL) {
		sodium_memzero(buf, GROUP_PAYLOAD_MAX);
		free(buf);
	}
	if (rc == 0)
		client_engine_wake(c);
	return group_txn_end(c, g, rc);
}

/* Every chunk is there: the file message queued in the conversation, the record SENT and an
 * outgoing message stored, in one transaction. */
static int queue_message(struct cairn *c, struct file_rec *r)
{
	struct file_msg m = {.size = r->size,
	                     .chunks = r->chunks,
	                     .relay = (const uint8_t *)r->relay,
	                     .relay_len = strlen(r->relay),
	                     .name = r->name,
	                     .name_len = r->name_len};
	memcpy(m.digest, r->digest, FILE_DIGEST_LEN);
	memcpy(m.key, r->key, FILE_KEY_LEN);
	memcpy(m.header, r->header, FILE_HEADER_LEN);
	memcpy(m.log_id, r->log_id, CAIRN_LOG_ID_LEN);
	memcpy(m.delete_secret, r->delete_secret, CAIRN_CREDENTIAL_LEN);
	uint8_t data[FILE_DATA_MAX];
	size_t dlen = 0;
	char text[512];
	size_t tlen = cfile_message_text(r, text, sizeof(text));
	int rc = file_msg_encode(&m, data, sizeof(data), &dlen);
	sodium_memzero(&m, sizeof(m));
	if (rc == 0 && r->group) {
		rc = group_send_kind(c, r->gid, APPMSG_FILE, data, dlen, r->id,
		                     (const uint8_t *)text, tlen);
		if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
			r->state = CAIRN_FILE_SENT;
			rc = cfile_store(c, r);
			rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
		}
		sodium_memzero(data, sizeof(data));
		return rc;
	}
	struct contact k;
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		rc = client_load_contact_id(c, r->peer, &k);
		if (rc == 0) {
			rc = client_queue_message(c, &k, APPMSG_FILE, data, dlen, r->id,
			                          (int64_t)r->sent_at);
			if (rc == 0 &&
			    (rc = client_store_message(c, &k, 1, r->id, (int64_t)r->sent_at, 0,
			                               (const uint8_t *)text, tlen)) > 0)
				rc = 0;
			contact_wipe(&k);
		}
		r->state = CAIRN_FILE_SENT;
		if (rc == 0)
			rc = cfile_store(c, r);
		rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
	}
	sodium_memzero(data, sizeof(data));
	return rc;
}

static void fail(struct cairn *c, struct file_rec *r, int err)
{
	if (cstate_begin(c->st) != 0)
		return;
	r->state = CAIRN_FILE_FAILED;
	r->error = err;
	int rc = cfile_store(c, r);
	if (rc == 0 && cstate_commit(c->st) == 0) {
		char path[4200];
		if (cfile_spool_path(c, r->spool, path, sizeof(path), false) == 0)
			(void)unlink(path);
		return;
	}
	cstate_rollback(c->st);
}

int cairn_file_send(struct cairn *c, const char *name, const char *path, cairn_progress_cb cb,
                    void *ctx, uint8_t id_out[CAIRN_FILE_ID_LEN])
{
	if (c == NULL || name == NULL || path == NULL)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct file_rec r, probe;
	memset(&probe, 0, sizeof(probe));
	int rc = target(c, name, &probe);
	if (rc != 0)
		return rc;
	char abs[4096];
	if (realpath(path, abs) == NULL)
		snprintf(abs, sizeof(abs), "%s", path);
	r.group = probe.group;
	rc = find_unfinished(c, probe.conv, abs, &r);
	if (rc == CAIRN_ENOTFOUND)
		rc = start(c, name, path, &r);
	cfile_rec_wipe(&probe);
	if (rc != 0)
		return rc;
	if (id_out != NULL)
		memcpy(id_out, r.id, APPMSG_ID_LEN);
	bool queued = r.state == CAIRN_FILE_SENT;
	/* no digest yet: the spool was never finished (a digest of all zeros is never real) */
	if (!queued && sodium_is_zero(r.digest, FILE_DIGEST_LEN) && (rc = spool(c, &r)) != 0) {
		fail(c, &r, rc); /* the file changed or went: started anew next time */
	} else {
		rc = queued ? 0 : upload(c, &r, cb, ctx);
		if (final_error(rc))
			fail(c, &r, rc);
	}
	if (rc == 0 && !queued)
		rc = queue_message(c, &r);
	if (rc == 0) {
		/* the relay holds the file now; the spool has done its work */
		char sp[4200];
		if (cfile_spool_path(c, r.spool, sp, sizeof(sp), false) == 0)
			(void)unlink(sp);
	}
	bool group = r.group;
	uint8_t id[APPMSG_ID_LEN];
	memcpy(id, r.id, APPMSG_ID_LEN);
	cfile_rec_wipe(&r);
	if (rc != 0)
		return rc;
	return group ? client_send_group_out(c) : client_send_now(c, id);
}
