/* SPDX-License-Identifier: MIT */
/*
 * The reads of group logs in progress (docs/PROTOCOL.md 5.9), for logcmd.c: a reader that is
 * behind, or whose output is over its limit, reads from the store, one batch of at most
 * STORAGE_READ_ENTRIES_MAX entries or READ_BATCH_BYTES at a time, the next only once the
 * batch before was sent and its output drained. So a slow reader costs its cursor and its
 * output buffer, and the relay keeps no entry in memory for it.
 *
 * Apart from the commands because the batches, their turns (log_read_batches) and their
 * return are a state machine of their own; logcmd.c starts, pumps and ends reads through
 * logcmd_internal.h, and nothing here calls back into logcmd.c (logs_peer_drained, which
 * pumps a connection's reads, is here for that).
 */
#include <stdlib.h>

#include <sodium.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "logcmd_internal.h"
#include "port.h"
#include "relay.h"

#define READ_BATCH_BYTES (1u << 20)

struct log_batch {
	struct storage_job job;
	struct log_reader *reader;
	struct peer *peer; /* its connection referenced until the batch is back */
	size_t n;
	uint64_t ids[STORAGE_READ_ENTRIES_MAX], seqs[STORAGE_READ_ENTRIES_MAX];
	uint32_t lens[STORAGE_READ_ENTRIES_MAX];
};

/* R waits for a read batch of the relay's to come back; its connection is not read meanwhile
 * (is_busy), as the cost table of 5.9 says. */
static void wait_for_batch(struct log_reader *r)
{
	struct log_registry *reg = &r->relay->logs;
	if (r->waiting)
		return;
	r->waiting = true;
	r->peer->reads->waiting++;
	r->wait_prev = reg->wait_tail;
	r->wait_next = NULL;
	if (reg->wait_tail != NULL)
		reg->wait_tail->wait_next = r;
	else
		reg->wait_head = r;
	reg->wait_tail = r;
}

static void stop_waiting(struct log_reader *r)
{
	struct log_registry *reg = &r->relay->logs;
	if (!r->waiting)
		return;
	if (r->wait_prev != NULL)
		r->wait_prev->wait_next = r->wait_next;
	else
		reg->wait_head = r->wait_next;
	if (r->wait_next != NULL)
		r->wait_next->wait_prev = r->wait_prev;
	else
		reg->wait_tail = r->wait_prev;
	r->wait_prev = r->wait_next = NULL;
	r->waiting = false;
	r->peer->reads->waiting--;
}

/* P's reads go once it has none and none of their batches is out. */
static void reads_trim(struct peer *p)
{
	if (p->reads != NULL && p->reads->len == 0 && p->reads->batches == 0) {
		free(p->reads);
		p->reads = NULL;
	}
}

static void reader_free(struct log_reader *r)
{
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* Ends R (END with CODE unless CODE < 0): it leaves its log and its connection, and goes
 * now, or when its batch comes back. */
void logread_reader_end(struct log_reader *r, int code)
{
	struct glog *log = r->log;
	struct peer *p = r->peer;
	if (log == NULL)
		return;
	stop_waiting(r);
	if (code >= 0) {
		struct cairn_msg m = {
		    .type = CAIRN_REPLY_END, .request_id = r->request_id, .code = (uint32_t)code};
		peer_reply(p, &m);
	}
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		log->readers = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	for (uint32_t i = 0; i < p->reads->len; i++) {
		if (p->reads->r[i] == r) {
			p->reads->r[i] = p->reads->r[--p->reads->len];
			break;
		}
	}
	reads_trim(p);
	r->log = NULL;
	if (r->batch == NULL)
		reader_free(r);
}

void logread_send_entry(struct log_reader *r, uint64_t seq, const uint8_t *body, uint32_t len)
{
	struct cairn_msg m = {.type = CAIRN_REPLY_LOG_ENTRY,
	                      .request_id = r->request_id,
	                      .seq = seq,
	                      .envelope = body,
	                      .envelope_len = len};
	peer_reply(r->peer, &m);
	r->cursor = seq + 1;
	r->relay->stats.log_entries_sent++;
}

static void on_batch_done(struct storage_job *job);

/*
 * Whether a reader whose next seq is WANT may be sent LOG's listed entry SEQ (>= WANT) next.
 * On a relay alone, always: a seq not listed below SEQ failed or expired. On a node of
 * several (docs/SCALING.md 4), only if every seq between is gone (below gone_below): another
 * is an entry of another node's that the change feed has yet to bring, so the reader waits
 * for it (logs_apply_entry pumps it again) and every follower gets the log in seq order.
 */
bool logread_in_turn(const struct relay *relay, const struct glog *log, uint64_t want, uint64_t seq)
{
	return relay->node == 0 || seq == want || seq - 1 < log->gone_below;
}

/* Sends R what it lacks: ends a read that has reached its end, else asks the store for the
 * next batch while R's output has room. */
void logread_reader_pump(struct log_reader *r)
{
	struct relay *relay = r->relay;
	struct glog *log = r->log;
	if (log == NULL || r->batch != NULL)
		return;
	size_t i = glog_find_seq(log, r->cursor);
	if (i < log->e_len && !logread_in_turn(relay, log, r->cursor, glog_at(log, i)->seq))
		return; /* waiting for the feed */
	if (i >= log->e_len || glog_at(log, i)->seq >= r->stop) {
		if (r->stop != UINT64_MAX)
			logread_reader_end(r, 0); /* follow 0: all it asked for is sent */
		return;                   /* following: new entries come from their appends */
	}
	/* Only below half the output limit, and no more than the rest of it: what is read is
	 * then what is sent, however slowly the reader drains. */
	size_t max = relay->cfg->output_buffer_max;
	size_t level = relay->port->output_level != NULL ? relay->port->output_level(r->peer->conn)
	                                                 : 0;
	if (relay->stopping || level >= max / 2 || !relay->port->can_deliver(r->peer->conn))
		return; /* logs_peer_drained calls again after each write */
	size_t room = max - level < READ_BATCH_BYTES ? max - level : READ_BATCH_BYTES;
	/* One batch per read, counting the batches of reads that ended while theirs was out: a
	 * peer that ends its read with a new one of the same log, over and over, would otherwise
	 * have a batch out for each (up to the relay's whole log_read_batches). The connection's
	 * next batch back pumps this one again (on_batch_done). */
	if (r->peer->reads->batches >= relay->cfg->logs_per_connection)
		return;
	if (r->waiting || relay->logs.batches_out >= relay->cfg->log_read_batches) {
		wait_for_batch(r); /* wake_readers pumps it again, in its turn */
		return;
	}
	struct log_batch *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		logread_reader_end(r, -CAIRN_ESTORAGE);
		return;
	}
	size_t bytes = 0;
	for (uint64_t want = r->cursor; i < log->e_len && b->n < STORAGE_READ_ENTRIES_MAX; i++) {
		const struct log_entry_ref *e = glog_at(log, i);
		if (e->seq >= r->stop || !logread_in_turn(relay, log, want, e->seq) ||
		    (b->n > 0 && bytes + e->len > room))
			break;
		want = e->seq + 1;
		b->ids[b->n] = e->id;
		b->seqs[b->n] = e->seq;
		b->lens[b->n] = e->len;
		bytes += e->len;
		b->n++;
	}
	b->reader = r;
	b->peer = r->peer;
	/* on_batch_done counts it back on the peer, which must still be there: a reference
	 * on the connection keeps it (not peer_hold: a read is no request in flight, and must
	 * not take the connection's inflight_requests). */
	relay->port->ref(b->peer->conn);
	b->peer->reads->batches++;
	b->job.kind = STORAGE_READ_ENTRIES;
	b->job.read_ids = b->ids;
	b->job.n_read = b->n;
	b->job.done = on_batch_done;
	b->job.data = b;
	r->batch = b;
	relay->logs.batches_out++;
	relay_submit(relay, &b->job);
}

/* A read batch came back: the reads waiting for one take their turns, oldest first. */
static void wake_readers(struct relay *relay)
{
	struct log_registry *reg = &relay->logs;
	while (reg->wait_head != NULL && reg->batches_out < relay->cfg->log_read_batches) {
		struct log_reader *r = reg->wait_head;
		stop_waiting(r);
		logread_reader_pump(r);
	}
}

static void on_batch_done(struct storage_job *job)
{
	struct log_batch *b = job->data;
	struct log_reader *r = b->reader;
	struct peer *p = b->peer;
	uint8_t *body = job->read_body;
	int status = job->status;
	r->batch = NULL;
	r->relay->logs.batches_out--;
	p->reads->batches--;
	wake_readers(r->relay); /* before R asks again: the others' turn first */
	if (r->log == NULL) { /* ended meanwhile */
		free(body);
		free(b);
		reader_free(r);
	} else if (status == 0) {
		r->misses = 0;
		size_t off = 0;
		for (size_t k = 0; k < b->n; k++) {
			if (off + b->lens[k] > job->read_len)
				break; /* the engine's mistake: what is left is read again */
			/* The rest of the batch is dropped, not kept: it is read again later. */
			if (!r->relay->port->can_deliver(r->peer->conn))
				break;
			if (b->seqs[k] >= r->cursor)
				logread_send_entry(r, b->seqs[k], body + off, b->lens[k]);
			off += b->lens[k];
		}
		free(body);
		free(b);
	} else {
		free(body);
		free(b);
		/* An entry expired or deleted after the batch was asked for: the list in memory is
		 * already without it, so asking again reads what is left. Twice in a row is not
		 * that. */
		if (status != CAIRN_EDENIED || r->misses++ >= 2) {
			if (status != CAIRN_ESHUTDOWN)
				log_warn("storage: log entries could not be read: %s",
				         cairn_strerror(status));
			logread_reader_end(r, status == CAIRN_ESHUTDOWN ? -CAIRN_ESHUTDOWN
			                                                : -CAIRN_ESTORAGE);
		}
	}
	reads_trim(p); /* R ended, and this was P's last batch */
	/* R (if it goes on) and any read of P's that waited for one of P's batches. */
	logs_peer_drained(p);
	p->relay->port->unref(p->conn); /* may free P */
}

void logs_peer_drained(struct peer *p)
{
	/* Backwards: a read that ends takes the last one's place, already seen. */
	for (uint32_t i = p->reads != NULL ? p->reads->len : 0; i > 0; i--)
		if (p->reads != NULL && i - 1 < p->reads->len)
			logread_reader_pump(p->reads->r[i - 1]);
}
