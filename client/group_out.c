/* SPDX-License-Identifier: MIT */
/*
 * The group outbox (group_io.h): LOG_CREATE, LOG_APPEND and LOG_DELETE commands a group's
 * state queues for the transport (logio.c), one sealed record each (REC_GROUP_OUT, layout in
 * records.c), written inside the caller's transaction so that a state step and what it sends
 * land together or not at all. The store lists a kind in insertion order, which is queue
 * order, and so the order per log. An item leaves only when the relay confirmed it
 * (group_out_done), so an entry's bytes are sealed once and re-sent unchanged after a crash
 * or a lost reply (PROTOCOL.md 9.9).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "logio.h"

/* BLAKE2b-256(message = SECRET, key = log_id): both digests of PROTOCOL.md 5.9. */
static void log_digest(uint8_t out[CAIRN_CREDENTIAL_LEN], const uint8_t log_id[CAIRN_LOG_ID_LEN],
                       const uint8_t secret[CAIRN_CREDENTIAL_LEN])
{
	crypto_generichash(out, CAIRN_CREDENTIAL_LEN, secret, CAIRN_CREDENTIAL_LEN, log_id,
	                   CAIRN_LOG_ID_LEN);
}

void group_log_digests(const struct group_log_ref *log,
                       const uint8_t delete_secret[CAIRN_CREDENTIAL_LEN],
                       uint8_t credential_digest[CAIRN_CREDENTIAL_LEN],
                       uint8_t delete_digest[CAIRN_CREDENTIAL_LEN])
{
	log_digest(credential_digest, log->log_id, log->credential);
	log_digest(delete_digest, log->log_id, delete_secret);
}

/* Stores G under a fresh out id (written to G->out_id); inside the caller's transaction. */
static int queue(struct cairn *c, struct group_out_item *g)
{
	struct cairn_address a;
	if (c == NULL || c->st == NULL ||
	    memchr(g->log.relay, '\0', sizeof(g->log.relay)) == NULL ||
	    cairn_address_parse(g->log.relay, &a) != 0)
		return CAIRN_EINVAL;
	client_random(c, g->out_id, sizeof(g->out_id));
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = group_out_encode(g, &v, &vlen);
	if (rc == 0)
		rc = cstate_put(c->st, REC_GROUP_OUT, g->out_id, sizeof(g->out_id), v, vlen);
	if (v != NULL) {
		sodium_memzero(v, vlen); /* holds the log's credential */
		free(v);
	}
	return rc;
}

int group_out_create(struct cairn *c, const struct group_log_ref *log,
                     const uint8_t delete_secret[static CAIRN_CREDENTIAL_LEN])
{
	if (log == NULL || delete_secret == NULL)
		return CAIRN_EINVAL;
	struct group_out_item g = {.op = GROUP_OUT_CREATE, .log = *log};
	group_log_digests(log, delete_secret, g.digest_a, g.digest_b);
	int rc = queue(c, &g);
	sodium_memzero(&g, sizeof(g));
	return rc;
}

int group_out_append(struct cairn *c, const struct group_log_ref *log, const uint8_t *entry,
                     size_t len, uint8_t out_id[16])
{
	if (log == NULL || entry == NULL || len == 0 || len > CAIRN_LOG_ENTRY_MAX || out_id == NULL)
		return CAIRN_EINVAL;
	struct group_out_item g = {.op = GROUP_OUT_APPEND, .log = *log, .entry = entry, .len = len};
	int rc = queue(c, &g);
	if (rc == 0)
		memcpy(out_id, g.out_id, sizeof(g.out_id));
	sodium_memzero(&g, sizeof(g));
	return rc;
}

int group_out_delete(struct cairn *c, const struct group_log_ref *log,
                     const uint8_t delete_secret[static CAIRN_CREDENTIAL_LEN])
{
	if (log == NULL || delete_secret == NULL)
		return CAIRN_EINVAL;
	struct group_out_item g = {.op = GROUP_OUT_DELETE, .log = *log};
	memcpy(g.digest_a, delete_secret, CAIRN_CREDENTIAL_LEN);
	int rc = queue(c, &g);
	sodium_memzero(&g, sizeof(g));
	return rc;
}

struct list_ctx {
	const char *relay;
	group_out_cb cb;
	void *ctx;
};

static int list_one(void *ctx, const uint8_t *v, size_t vlen)
{
	struct list_ctx *l = ctx;
	struct group_out_item g;
	int rc = group_out_parse(v, vlen, &g);
	if (rc == 0 && (l->relay == NULL || strcmp(l->relay, g.log.relay) == 0))
		rc = l->cb(l->ctx, &g);
	sodium_memzero(&g, sizeof(g));
	return rc;
}

int group_out_list(struct cairn *c, const char *relay, group_out_cb cb, void *ctx)
{
	struct list_ctx l = {relay, cb, ctx};
	return cstate_list(c->st, REC_GROUP_OUT, list_one, &l);
}

static int count_one(void *ctx, const struct group_out_item *g)
{
	(void)g;
	(*(unsigned *)ctx)++;
	return 0;
}

int group_out_count(struct cairn *c, unsigned *n)
{
	*n = 0;
	return group_out_list(c, NULL, count_one, n);
}

int group_out_done(struct cairn *c, const uint8_t out_id[16])
{
	return cstate_del(c->st, REC_GROUP_OUT, out_id, 16);
}

/* Collects the out ids of one log's items. */
struct drop_ctx {
	const uint8_t *log_id;
	uint8_t (*ids)[16];
	size_t n, cap;
};

static int drop_collect(void *ctx, const struct group_out_item *g)
{
	struct drop_ctx *d = ctx;
	if (sodium_memcmp(g->log.log_id, d->log_id, CAIRN_LOG_ID_LEN) != 0)
		return 0;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? 2 * d->cap : 16;
		void *p = realloc(d->ids, ncap * sizeof(*d->ids));
		if (p == NULL)
			return CAIRN_ENOMEM;
		d->ids = p;
		d->cap = ncap;
	}
	memcpy(d->ids[d->n++], g->out_id, 16);
	return 0;
}

int group_out_drop_log(struct cairn *c, const uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	struct drop_ctx d = {.log_id = log_id};
	int rc = group_out_list(c, NULL, drop_collect, &d);
	for (size_t i = 0; rc == 0 && i < d.n; i++)
		rc = group_out_done(c, d.ids[i]);
	free(d.ids);
	return rc;
}
