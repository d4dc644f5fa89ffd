/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's change feed (store.h's node, pg_engine.h; docs/SCALING.md section
 * 4): a node != 0 writes each batch's ops (feed_codec.h) as one row feed(node, seq, ops) in
 * the batch's own transaction and notifies the others; it reads the other nodes' rows past
 * its cursors, which load() sets from its snapshot. seq is the node's own count of committed
 * batches: one writer per node (the node's lock, store_pg_session.c), so its rows become
 * visible in seq order, and a reader that finds a gap knows it missed pruned rows. Nothing
 * here logs.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "feed_codec.h"
#include "pg_engine.h"

int pg_feed_stmts(struct store_pg *st, const struct store_op *ops, size_t n, struct pg_op *out,
                  size_t *added, bool *prunes)
{
	*added = 0;
	*prunes = false;
	size_t len = feed_encoded_len(ops, n);
	if (len == 0 || len > INT32_MAX || st->feed_seq >= (uint64_t)INT64_MAX)
		return CAIRN_ESTORAGE;
	memset(out, 0, 3 * sizeof(*out));
	uint8_t *blob = out[0].ids = malloc(len);
	if (blob == NULL)
		return CAIRN_ENOMEM;
	if (feed_encode(ops, n, blob, len) != len)
		return CAIRN_ESTORAGE;
	uint64_t seq = st->feed_seq + 1;
	out[0].stmt = PG_FEED_PUT;
	out[0].second = -1;
	pg_param_i32(&out[0].p, st->node);
	pg_param_u64(&out[0].p, seq);
	pg_param_bytes(&out[0].p, blob, len);
	size_t k = 1;
	if (st->feed_pruned_ms == 0 || pg_now_ms() - st->feed_pruned_ms >= PG_FEED_PRUNE_MS) {
		out[k].stmt = PG_FEED_PRUNE;
		out[k].second = -1;
		pg_param_i32(&out[k].p, st->node);
		k++;
		*prunes = true;
	}
	/* Delivered at COMMIT, and only if it commits. */
	out[k].stmt = PG_FEED_NOTIFY;
	out[k].second = -1;
	pg_param_i32(&out[k].p, st->node);
	*added = k + 1;
	return 0;
}

void pg_feed_committed(struct store_pg *st, bool pruned)
{
	/* This node's own cursor follows its commits while nothing of its own is unread: a
	 * batch whose COMMIT outcome was lost with the connection, and which did commit, left
	 * a row (read_feed_seq counted it at the reconnect) that the next feed_read hands back,
	 * so that memory gets what the store got (an entry a follower would otherwise wait
	 * for; an envelope answered `storage` that was stored). */
	if (st->feed_cursor[st->node] == st->feed_seq)
		st->feed_cursor[st->node] = st->feed_seq + 1;
	st->feed_seq++;
	if (pruned)
		st->feed_pruned_ms = pg_now_ms();
}

int pg_feed_cursors(struct store_pg *st)
{
	static const struct pg_params none; /* binary results */
	PGresult *r = pg_run(st, 0, "SELECT node::int4, max(seq) FROM feed GROUP BY node", &none);
	int rc = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : CAIRN_ESTORAGE;
	uint64_t cursor[256] = {0};
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		int32_t node;
		int64_t seq;
		if (pg_col_i32(r, i, 0, &node) != 0 || pg_col_i64(r, i, 1, &seq) != 0 || node < 0 ||
		    node > 255 || seq < 0)
			rc = CAIRN_ESTORAGE;
		else
			cursor[node] = (uint64_t)seq;
	}
	PQclear(r);
	if (rc == 0)
		memcpy(st->feed_cursor, cursor, sizeof(cursor));
	return rc;
}

/* Copies row I of R into ROW, checked against CURSOR (which moves on). Returns 0,
 * CAIRN_ESTATE for a gap, CAIRN_ENOMEM or CAIRN_ESTORAGE. */
static int take_row(const struct store_pg *st, const PGresult *r, int i, uint64_t *cursor,
                    struct store_feed_row *row)
{
	int32_t node;
	int64_t seq;
	if (pg_col_i32(r, i, 0, &node) != 0 || pg_col_i64(r, i, 1, &seq) != 0 || node < 1 ||
	    node > 255 || seq < 1 || PQgetisnull(r, i, 2))
		return CAIRN_ESTORAGE;
	/* The rows between were pruned before this node read them. */
	if ((uint64_t)seq != cursor[node] + 1)
		return CAIRN_ESTATE;
	size_t len = (size_t)PQgetlength(r, i, 2);
	row->ops = malloc(len > 0 ? len : 1);
	if (row->ops == NULL)
		return CAIRN_ENOMEM;
	memcpy(row->ops, PQgetvalue(r, i, 2), len);
	row->len = len;
	row->node = (uint8_t)node;
	row->seq = (uint64_t)seq;
	cursor[node] = (uint64_t)seq;
	return 0;
}

/* The engine's feed_read (store.h). The cursors move only when the whole read succeeded. */
int pg_feed_read(void *store, struct store_feed *out)
{
	struct store_pg *st = store;
	memset(out, 0, sizeof(*out));
	/* A lock refused at a reconnect: another relay took the store or this node meanwhile. */
	int rc = pg_connect(st, NULL, 0);
	if (rc != 0)
		return rc == CAIRN_EEXIST ? rc : CAIRN_ESTORAGE;
	if (st->node == 0) {
		/* A relay alone has no feed: its read is the check that its session (and so its
		 * lock) is still there, which a round trip proves and a dead primary fails. */
		PGresult *r = pg_run(st, 0, "SELECT 1", NULL);
		rc = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : CAIRN_ESTORAGE;
		PQclear(r);
		return rc;
	}
	uint8_t ids[PG_ARRAY_HEADER + PG_ARRAY_I64 * 256];
	struct pg_params p = {0};
	pg_param_ids(&p, st->feed_cursor, 256, ids, sizeof(ids));
	pg_param_i64(&p, STORE_FEED_ROWS_MAX + 1);
	PGresult *r = p.bad ? NULL : pg_run(st, PG_FEED_READ, NULL, &p);
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return CAIRN_ESTORAGE;
	}
	int rows = PQntuples(r);
	size_t n = rows > STORE_FEED_ROWS_MAX ? STORE_FEED_ROWS_MAX : (size_t)rows;
	uint64_t cursor[256];
	memcpy(cursor, st->feed_cursor, sizeof(cursor));
	if (n > 0 && (out->rows = calloc(n, sizeof(*out->rows))) == NULL)
		rc = CAIRN_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = take_row(st, r, (int)i, cursor, &out->rows[i]);
		if (rc == 0)
			out->n = i + 1;
	}
	PQclear(r);
	if (rc != 0) {
		store_feed_free(out);
		return rc == CAIRN_ESTATE ? rc : CAIRN_ESTORAGE;
	}
	out->more = (size_t)rows > n;
	memcpy(st->feed_cursor, cursor, sizeof(cursor));
	return 0;
}
