/* SPDX-License-Identifier: MIT */
/*
 * The group logs of the misbehaving test relay (fakerelay_log.h; docs/PROTOCOL.md 5.9). Every
 * entry is "durable" as soon as it is stored in memory, so APPENDED and the copies for follow
 * readers go out at once. The digests are computed and compared as the real relay does
 * (BLAKE2b-256 keyed by the log id, constant-time compare, one `denied` for "no such log" and
 * "wrong secret"), so the client's real secrets are what gets tested.
 *
 * Tampering is a view over the stored log, applied when an entry is sent (history and follow
 * alike): the stored log itself only changes by appends, a replay being one.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fakerelay_log.h"

#define FL_LOGS  16
#define FL_READS 64
#define FL_HIDE  16
#define FL_SWAP  8

struct fl_entry {
	uint64_t seq;
	uint8_t *data;
	size_t len;
};

struct fl_log {
	bool used;
	uint8_t id[CAIRN_LOG_ID_LEN];
	uint8_t cred_digest[32], delete_digest[32];
	struct fl_entry *e;
	size_t n, cap;
	uint64_t next_seq;
	unsigned serial; /* order of creation: the newest is what control requests act on */
};

struct fl_read {
	bool used;
	int ci;
	uint32_t rid;
	int log;
};

struct frlog {
	frlog_reply_fn reply;
	void *ctx;
	struct fl_log logs[FL_LOGS];
	unsigned serial;
	struct fl_read reads[FL_READS];
	uint64_t hide[FL_HIDE];
	size_t nhide;
	uint64_t swap[FL_SWAP][2];
	size_t nswap;
	struct fakerelay_stats st;
};

struct frlog *frlog_new(frlog_reply_fn reply, void *ctx)
{
	struct frlog *l = calloc(1, sizeof(*l));
	if (l != NULL) {
		l->reply = reply;
		l->ctx = ctx;
	}
	return l;
}

static void log_clear(struct fl_log *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->e[i].data);
	free(g->e);
	memset(g, 0, sizeof(*g));
}

void frlog_free(struct frlog *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < FL_LOGS; i++)
		log_clear(&l->logs[i]);
	free(l);
}

static int reply_code(struct frlog *l, int ci, int type, uint32_t rid, int err)
{
	struct cairn_msg m = {.type = type, .request_id = rid, .code = cairn_wire_code(err)};
	return l->reply(l->ctx, ci, &m);
}

static int reply_simple(struct frlog *l, int ci, uint32_t rid, int err)
{
	return reply_code(l, ci, err ? CAIRN_REPLY_ERROR : CAIRN_REPLY_OK, rid, err);
}

static int find_log(struct frlog *l, const uint8_t *id)
{
	for (int i = 0; i < FL_LOGS; i++)
		if (l->logs[i].used && memcmp(l->logs[i].id, id, CAIRN_LOG_ID_LEN) == 0)
			return i;
	return -1;
}

static int newest_log(struct frlog *l)
{
	int best = -1;
	for (int i = 0; i < FL_LOGS; i++)
		if (l->logs[i].used && (best < 0 || l->logs[i].serial > l->logs[best].serial))
			best = i;
	return best;
}

static struct fl_entry *entry_at(struct fl_log *g, uint64_t seq)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->e[i].seq == seq)
			return &g->e[i];
	return NULL;
}

/* SECRET's digest for log ID (5.9) equals DIGEST: compared in constant time, and computed
 * whether or not the log exists (ID may then be any 24 bytes), so both refusals cost alike. */
static bool secret_ok(const uint8_t *id, const uint8_t *secret, const uint8_t *digest)
{
	uint8_t d[32];
	crypto_generichash(d, sizeof(d), secret, 32, id, CAIRN_LOG_ID_LEN);
	return sodium_memcmp(d, digest, sizeof(d)) == 0;
}

/* Sends entry E of log G to read R, as the current view shows it: left out, or with the bytes
 * of the entry it is swapped with. */
static int send_entry(struct frlog *l, struct fl_log *g, const struct fl_read *r,
                      const struct fl_entry *e)
{
	for (size_t i = 0; i < l->nhide; i++)
		if (l->hide[i] == e->seq) {
			l->st.log_hidden++;
			return 0;
		}
	const struct fl_entry *bytes = e;
	for (size_t i = 0; i < l->nswap; i++) {
		uint64_t other = l->swap[i][0] == e->seq   ? l->swap[i][1]
		                 : l->swap[i][1] == e->seq ? l->swap[i][0]
		                                           : 0;
		const struct fl_entry *o = other ? entry_at(g, other) : NULL;
		if (o != NULL) {
			bytes = o;
			l->st.log_swapped++;
		}
	}
	struct cairn_msg m = {.type = CAIRN_REPLY_LOG_ENTRY,
	                      .request_id = r->rid,
	                      .seq = e->seq,
	                      .envelope = bytes->data,
	                      .envelope_len = bytes->len};
	l->st.log_entries++;
	return l->reply(l->ctx, r->ci, &m);
}

/* Appends LEN bytes at DATA to log GI and sends the entry to its follow readers. Returns its
 * seq, or 0 when out of memory. */
static uint64_t append(struct frlog *l, int gi, const uint8_t *data, size_t len)
{
	struct fl_log *g = &l->logs[gi];
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 32;
		struct fl_entry *p = realloc(g->e, ncap * sizeof(*p));
		if (p == NULL)
			return 0;
		g->e = p;
		g->cap = ncap;
	}
	uint8_t *copy = malloc(len);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, len);
	struct fl_entry *e = &g->e[g->n++];
	*e = (struct fl_entry){.seq = g->next_seq++, .data = copy, .len = len};
	/* A reader whose connection broke is closed by the poll loop. */
	for (int i = 0; i < FL_READS; i++)
		if (l->reads[i].used && l->reads[i].log == gi)
			(void)send_entry(l, g, &l->reads[i], e);
	return e->seq;
}

/* Ends every follow read of log GI with END CODE. */
static void end_reads(struct frlog *l, int gi, int code)
{
	for (int i = 0; i < FL_READS; i++)
		if (l->reads[i].used && l->reads[i].log == gi) {
			l->reads[i].used = false;
			(void)reply_code(l, l->reads[i].ci, CAIRN_REPLY_END, l->reads[i].rid, code);
		}
}

static int log_create(struct frlog *l, int ci, const struct cairn_msg *m)
{
	int gi = find_log(l, m->log_id);
	if (gi >= 0) {
		const struct fl_log *g = &l->logs[gi];
		bool same = sodium_memcmp(g->cred_digest, m->credential, 32) == 0 &&
		            sodium_memcmp(g->delete_digest, m->delete_digest, 32) == 0;
		return reply_simple(l, ci, m->request_id, same ? 0 : CAIRN_EDENIED);
	}
	for (gi = 0; gi < FL_LOGS && l->logs[gi].used; gi++)
		;
	if (gi == FL_LOGS)
		return reply_simple(l, ci, m->request_id, CAIRN_ECAPACITY);
	struct fl_log *g = &l->logs[gi];
	*g = (struct fl_log){.used = true, .next_seq = 1, .serial = ++l->serial};
	memcpy(g->id, m->log_id, CAIRN_LOG_ID_LEN);
	memcpy(g->cred_digest, m->credential, 32);
	memcpy(g->delete_digest, m->delete_digest, 32);
	return reply_simple(l, ci, m->request_id, 0);
}

static int log_append(struct frlog *l, int ci, const struct cairn_msg *m)
{
	static const uint8_t none[32];
	int gi = find_log(l, m->log_id);
	/* One path for "no such log" and "wrong credential" (5.9). */
	bool ok = secret_ok(m->log_id, m->credential, gi >= 0 ? l->logs[gi].cred_digest : none) &&
	          gi >= 0;
	if (!ok)
		return reply_simple(l, ci, m->request_id, CAIRN_EDENIED);
	/* APPENDED before the followers' copies: the writer may itself follow the log. */
	struct fl_log *g = &l->logs[gi];
	struct cairn_msg r = {
	    .type = CAIRN_REPLY_APPENDED, .request_id = m->request_id, .seq = g->next_seq};
	if (l->reply(l->ctx, ci, &r) != 0)
		return -1;
	if (append(l, gi, m->envelope, m->envelope_len) == 0)
		return -1;
	l->st.log_appends++;
	return 0;
}

static int log_read(struct frlog *l, int ci, const struct cairn_msg *m)
{
	int gi = find_log(l, m->log_id);
	if (gi < 0)
		return reply_simple(l, ci, m->request_id, CAIRN_EDENIED);
	struct fl_log *g = &l->logs[gi];
	int slot = -1;
	for (int i = 0; i < FL_READS; i++) {
		struct fl_read *r = &l->reads[i];
		if (r->used && r->ci == ci && r->log == gi) {
			r->used = false; /* a second read of the log ends the first */
			if (reply_code(l, ci, CAIRN_REPLY_END, r->rid, CAIRN_ELIMIT) != 0)
				return -1;
		}
		if (!r->used && slot < 0)
			slot = i;
	}
	if (slot < 0)
		return reply_simple(l, ci, m->request_id, CAIRN_ELIMIT);
	struct cairn_msg st = {.type = CAIRN_REPLY_LOG_STATE,
	                       .request_id = m->request_id,
	                       .first_seq = g->n > 0 ? g->e[0].seq : g->next_seq,
	                       .next_seq = g->next_seq};
	if (l->reply(l->ctx, ci, &st) != 0)
		return -1;
	struct fl_read r = {.used = true, .ci = ci, .rid = m->request_id, .log = gi};
	for (size_t i = 0; i < g->n; i++)
		if (g->e[i].seq >= m->seq && send_entry(l, g, &r, &g->e[i]) != 0)
			return -1;
	if (m->follow) {
		l->reads[slot] = r;
		return 0;
	}
	return reply_code(l, ci, CAIRN_REPLY_END, m->request_id, 0);
}

static int log_delete(struct frlog *l, int ci, const struct cairn_msg *m)
{
	static const uint8_t none[32];
	int gi = find_log(l, m->log_id);
	bool ok =
	    secret_ok(m->log_id, m->delete_secret, gi >= 0 ? l->logs[gi].delete_digest : none) &&
	    gi >= 0;
	if (!ok)
		return reply_simple(l, ci, m->request_id, CAIRN_EDENIED);
	end_reads(l, gi, 0);
	log_clear(&l->logs[gi]);
	return reply_simple(l, ci, m->request_id, 0);
}

int frlog_command(struct frlog *l, int ci, const struct cairn_msg *m)
{
	switch (m->type) {
	case CAIRN_CMD_LOG_CREATE:
		return log_create(l, ci, m);
	case CAIRN_CMD_LOG_APPEND:
		return log_append(l, ci, m);
	case CAIRN_CMD_LOG_READ:
		return log_read(l, ci, m);
	case CAIRN_CMD_LOG_DELETE:
		return log_delete(l, ci, m);
	default:
		return reply_simple(l, ci, m->request_id, CAIRN_EUNKNOWN);
	}
}

void frlog_conn_closed(struct frlog *l, int ci)
{
	for (int i = 0; i < FL_READS; i++)
		if (l->reads[i].ci == ci)
			l->reads[i].used = false;
}

int64_t frlog_ctl(struct frlog *l, int op, uint64_t a, uint64_t b)
{
	int gi = newest_log(l);
	struct fl_log *g = gi >= 0 ? &l->logs[gi] : NULL;
	switch (op) {
	case FAKERELAY_LOG_NEXT_SEQ:
		return g != NULL ? (int64_t)g->next_seq : 0;
	case FAKERELAY_LOG_REPLAY: {
		const struct fl_entry *e = g != NULL ? entry_at(g, a) : NULL;
		if (e == NULL)
			return -1;
		/* append() may move the array E points into: copy first. */
		uint8_t *copy = malloc(e->len);
		size_t len = e->len;
		if (copy == NULL)
			return -1;
		memcpy(copy, e->data, len);
		uint64_t seq = append(l, gi, copy, len);
		free(copy);
		if (seq == 0)
			return -1;
		l->st.log_replayed++;
		return (int64_t)seq;
	}
	case FAKERELAY_LOG_HIDE:
		if (g == NULL || entry_at(g, a) == NULL || l->nhide == FL_HIDE)
			return -1;
		l->hide[l->nhide++] = a;
		return 0;
	case FAKERELAY_LOG_SWAP:
		if (g == NULL || entry_at(g, a) == NULL || entry_at(g, b) == NULL || a == b ||
		    l->nswap == FL_SWAP)
			return -1;
		l->swap[l->nswap][0] = a;
		l->swap[l->nswap][1] = b;
		l->nswap++;
		return 0;
	case FAKERELAY_LOG_CLEAR:
		l->nhide = 0;
		l->nswap = 0;
		return 0;
	default:
		return -1;
	}
}

void frlog_stats(const struct frlog *l, struct fakerelay_stats *st)
{
	st->log_appends = l->st.log_appends;
	st->log_entries = l->st.log_entries;
	st->log_replayed = l->st.log_replayed;
	st->log_hidden = l->st.log_hidden;
	st->log_swapped = l->st.log_swapped;
}
