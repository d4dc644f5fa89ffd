/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's reads (pg_engine.h): load() at start, in one REPEATABLE READ READ
 * ONLY transaction so that every table is seen at the same instant, each query read through
 * a cursor a slice at a time so that a large store never sits whole in memory; a body by its
 * mailbox and id; and the store's size, sampled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"
#include "work.h"

/* Rows per FETCH: a few MiB of metadata at most, and few round trips. */
#define PG_FETCH_ROWS 8192
#define PG_XSTR(x)    #x
#define PG_STR(x)     PG_XSTR(x)

/* disk_bytes asks the database no more often than this (it is called after every batch). */
#define PG_SIZE_SAMPLE_MS 5000

typedef int pg_row_fn(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx);

static int mailbox_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	struct store_mailbox m;
	memset(&m, 0, sizeof(m));
	int64_t id, touched;
	int32_t bits;
	if (pg_col_i64(r, row, 0, &id) != 0 || id < 0 ||
	    pg_col_fixed(r, row, 1, m.recipient_id, sizeof(m.recipient_id)) != 0 ||
	    pg_col_fixed(r, row, 2, m.sender_id, sizeof(m.sender_id)) != 0 ||
	    pg_col_fixed(r, row, 3, m.recipient_key, sizeof(m.recipient_key)) != 0 ||
	    pg_col_i64(r, row, 5, &touched) != 0 || pg_col_i32(r, row, 6, &bits) != 0)
		return CAIRN_ESTORAGE;
	if (!PQgetisnull(r, row, 4)) {
		if (pg_col_fixed(r, row, 4, m.credential_digest, sizeof(m.credential_digest)) != 0)
			return CAIRN_ESTORAGE;
		m.secured = true;
	}
	/* A bit count the relay never writes is a damaged row, not an open mailbox. */
	if (bits < 0 || bits > WORK_BITS_MAX)
		return CAIRN_ESTORAGE;
	m.id = (uint64_t)id;
	m.touched = touched;
	m.work_bits = (uint8_t)bits;
	if (cb->mailbox != NULL)
		cb->mailbox(ctx, &m);
	return 0;
}

static int envelope_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	int64_t id, mailbox, len, stored_at;
	if (pg_col_i64(r, row, 0, &id) != 0 || pg_col_i64(r, row, 1, &mailbox) != 0 ||
	    pg_col_i64(r, row, 2, &len) != 0 || pg_col_i64(r, row, 3, &stored_at) != 0 || id < 0 ||
	    mailbox < 0 || len < 0 || len > UINT32_MAX)
		return CAIRN_ESTORAGE;
	struct store_envelope_info info = {
	    .id = (uint64_t)id,
	    .mailbox_id = (uint64_t)mailbox,
	    .len = (uint32_t)len,
	    .stored_at = stored_at,
	};
	if (cb->envelope != NULL)
		cb->envelope(ctx, &info);
	return 0;
}

static int log_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	struct store_log log;
	memset(&log, 0, sizeof(log));
	int64_t id, next_seq, touched;
	if (pg_col_i64(r, row, 0, &id) != 0 || id < 0 ||
	    pg_col_fixed(r, row, 1, log.log_id, sizeof(log.log_id)) != 0 ||
	    pg_col_fixed(r, row, 2, log.credential_digest, sizeof(log.credential_digest)) != 0 ||
	    pg_col_fixed(r, row, 3, log.delete_digest, sizeof(log.delete_digest)) != 0 ||
	    pg_col_i64(r, row, 4, &next_seq) != 0 || next_seq < 0 ||
	    pg_col_i64(r, row, 5, &touched) != 0)
		return CAIRN_ESTORAGE;
	log.id = (uint64_t)id;
	log.next_seq = (uint64_t)next_seq;
	log.touched = touched;
	cb->log(ctx, &log);
	return 0;
}

static int entry_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	int64_t id, log, seq, len, stored_at;
	if (pg_col_i64(r, row, 0, &id) != 0 || pg_col_i64(r, row, 1, &log) != 0 ||
	    pg_col_i64(r, row, 2, &seq) != 0 || pg_col_i64(r, row, 3, &len) != 0 ||
	    pg_col_i64(r, row, 4, &stored_at) != 0 || id < 0 || log < 0 || seq < 0 || len < 0 ||
	    len > UINT32_MAX)
		return CAIRN_ESTORAGE;
	struct store_log_entry_info info = {
	    .id = (uint64_t)id,
	    .log = (uint64_t)log,
	    .seq = (uint64_t)seq,
	    .len = (uint32_t)len,
	    .stored_at = stored_at,
	};
	cb->log_entry(ctx, &info);
	return 0;
}

static int bundle_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	uint8_t e[CAIRN_KEY_LEN];
	int64_t not_after;
	if (pg_col_fixed(r, row, 0, e, sizeof(e)) != 0 || pg_col_i64(r, row, 1, &not_after) != 0)
		return CAIRN_ESTORAGE;
	cb->bundle_seen(ctx, e, not_after);
	return 0;
}

static int id_mark_row(const PGresult *r, int row, const struct store_load_cb *cb, void *ctx)
{
	int64_t mark;
	if (pg_col_i64(r, row, 0, &mark) != 0)
		return CAIRN_ESTORAGE;
	if (mark > 0)
		cb->id_mark(ctx, (uint64_t)mark);
	return 0;
}

static int command_ok(struct store_pg *st, const char *sql)
{
	PGresult *r = pg_run(st, 0, sql, NULL);
	int rc = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : CAIRN_ESTORAGE;
	PQclear(r);
	return rc;
}

/* Runs the query SQL through a cursor inside the open transaction, calling ROW for each row.
 * Returns 0 or CAIRN_ESTORAGE (a failed query or a damaged row: no later row is reported). */
static int each_row(struct store_pg *st, const char *sql, pg_row_fn *row,
                    const struct store_load_cb *cb, void *ctx)
{
	char declare[1024];
	if ((size_t)snprintf(declare, sizeof(declare), "DECLARE cairn_load NO SCROLL CURSOR FOR %s",
	                     sql) >= sizeof(declare) ||
	    command_ok(st, declare) != 0)
		return CAIRN_ESTORAGE;
	static const struct pg_params none; /* binary results */
	for (;;) {
		PGresult *r =
		    pg_run(st, 0, "FETCH " PG_STR(PG_FETCH_ROWS) " FROM cairn_load", &none);
		if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			return CAIRN_ESTORAGE;
		}
		int n = PQntuples(r);
		for (int i = 0; i < n; i++) {
			if (row(r, i, cb, ctx) != 0) {
				PQclear(r);
				return CAIRN_ESTORAGE;
			}
		}
		PQclear(r);
		if (n < PG_FETCH_ROWS)
			break;
	}
	return command_ok(st, "CLOSE cairn_load");
}

static int load_all(struct store_pg *st, const struct store_load_cb *cb, void *ctx)
{
	int rc = each_row(st,
	                  "SELECT id, recipient_id, sender_id, recipient_key, credential_digest,"
	                  " touched, work_bits FROM mailboxes ORDER BY touched, id",
	                  mailbox_row, cb, ctx);
	/* ORDER BY id walks the partitions' keys merged: no sort. octet_length reads a body's
	 * size without reading the body. */
	if (rc == 0)
		rc = each_row(st,
		              "SELECT id, mailbox, octet_length(body)::int8, stored_at"
		              " FROM envelopes ORDER BY id",
		              envelope_row, cb, ctx);
	/* next_seq: the stored lower bound, or one above the highest seq still stored. */
	if (rc == 0 && cb->log != NULL)
		rc =
		    each_row(st,
		             "SELECT l.id, l.log_id, l.credential_digest, l.delete_digest,"
		             " greatest(l.next_seq, coalesce(e.next_seq, 0)), l.touched"
		             " FROM logs AS l LEFT JOIN"
		             " (SELECT log, max(seq) + 1 AS next_seq FROM log_entries GROUP BY log)"
		             " AS e ON e.log = l.id ORDER BY l.touched, l.id",
		             log_row, cb, ctx);
	if (rc == 0 && cb->log_entry != NULL)
		rc = each_row(st,
		              "SELECT id, log, seq, octet_length(body)::int8, stored_at"
		              " FROM log_entries ORDER BY id",
		              entry_row, cb, ctx);
	/* A node loads the mark it made (store_pg.c); a relay alone the highest of any, so that it
	 * starts above every id the nodes may have given before it. */
	char mark_sql[192];
	if (st->node != 0)
		snprintf(mark_sql, sizeof(mark_sql),
		         "SELECT value FROM meta WHERE key = " PG_ID_MARK_KEY("%d"), st->node,
		         st->node);
	else
		snprintf(mark_sql, sizeof(mark_sql),
		         "SELECT max(value) FROM meta WHERE key LIKE 'envelope_id_mark%%'"
		         " HAVING count(*) > 0");
	if (rc == 0 && cb->id_mark != NULL)
		rc = each_row(st, mark_sql, id_mark_row, cb, ctx);
	if (rc == 0 && cb->bundle_seen != NULL)
		rc = each_row(st, "SELECT e, not_after FROM bundle_seen", bundle_row, cb, ctx);
	return rc;
}

/* Reports the store as store.h's load() says, from one snapshot. Returns 0 or
 * CAIRN_ESTORAGE (a lost connection, or a row whose fields have the wrong sizes). */
int pg_load(void *store, const struct store_load_cb *cb, void *ctx)
{
	struct store_pg *st = store;
	if (pg_connect(st, NULL, 0) != 0 ||
	    command_ok(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
		return CAIRN_ESTORAGE;
	int rc = load_all(st, cb, ctx);
	/* Where feed_read starts: the other nodes' rows this snapshot already holds. */
	if (rc == 0 && st->node != 0)
		rc = pg_feed_cursors(st);
	/* COMMIT of a read-only transaction writes nothing; after a failure it rolls back. */
	if (st->conn != NULL && command_ok(st, rc == 0 ? "COMMIT" : "ROLLBACK") != 0)
		rc = CAIRN_ESTORAGE;
	return rc;
}

/* Runs the one-column body query STMT with the ids P holds and copies the body into OUT. */
static int read_body(struct store_pg *st, int stmt, const struct pg_params *p, uint8_t *out,
                     size_t cap, size_t *len)
{
	*len = 0;
	if (p->bad)
		return CAIRN_EDENIED; /* an id past 2^63 was never stored */
	if (pg_connect(st, NULL, 0) != 0)
		return CAIRN_ESTORAGE;
	PGresult *r = pg_run(st, stmt, NULL, p);
	int rc;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = CAIRN_ESTORAGE;
	} else if (PQntuples(r) == 0) {
		rc = CAIRN_EDENIED;
	} else if (PQgetisnull(r, 0, 0)) {
		rc = CAIRN_ESTORAGE;
	} else if ((size_t)PQgetlength(r, 0, 0) > cap) {
		rc = CAIRN_ENOBUFS;
	} else {
		*len = (size_t)PQgetlength(r, 0, 0);
		memcpy(out, PQgetvalue(r, 0, 0), *len);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* By (mailbox, id): one partition's key, not a probe of every partition. */
int pg_read_envelope(void *store, uint64_t mailbox, uint64_t id, uint8_t *out, size_t cap,
                     size_t *len)
{
	struct pg_params p = {0};
	pg_param_u64(&p, mailbox);
	pg_param_u64(&p, id);
	return read_body(store, PG_READ_ENVELOPE, &p, out, cap, len);
}

int pg_read_log_entry(void *store, uint64_t id, uint8_t *out, size_t cap, size_t *len)
{
	struct pg_params p = {0};
	pg_param_u64(&p, id);
	return read_body(store, PG_READ_LOG_ENTRY, &p, out, cap, len);
}

/*
 * The engine's read_log_entries (store.h): IDS[0..N) in one statement (one round trip, one
 * snapshot), their bodies copied into OUT in the order asked. Returns 0, CAIRN_EDENIED if
 * one is absent, CAIRN_ENOBUFS if they do not fit in CAP, CAIRN_EINVAL, or CAIRN_ESTORAGE;
 * *TOTAL is 0 on error.
 */
int pg_read_log_entries(void *store, const uint64_t *ids, size_t n, uint8_t *out, size_t cap,
                        size_t *total)
{
	struct store_pg *st = store;
	*total = 0;
	if (n > 0 && (ids == NULL || out == NULL))
		return CAIRN_EINVAL;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] > (uint64_t)INT64_MAX)
			return CAIRN_EDENIED; /* never stored, as read_log_entry says */
	if (n > (size_t)INT32_MAX / PG_ARRAY_I64 || pg_connect(st, NULL, 0) != 0)
		return CAIRN_ESTORAGE;
	size_t cap_ids = pg_ids_size(n);
	uint8_t *buf = malloc(cap_ids);
	if (buf == NULL)
		return CAIRN_ESTORAGE;
	struct pg_params p = {0};
	pg_param_ids(&p, ids, n, buf, cap_ids);
	PGresult *r = p.bad ? NULL : pg_run(st, PG_READ_LOG_ENTRIES, NULL, &p);
	free(buf);
	int rc = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : CAIRN_ESTORAGE;
	int rows = rc == 0 ? PQntuples(r) : 0;
	size_t sum = 0;
	/* At most STORAGE_READ_ENTRIES_MAX ids from the relay: a scan of the rows per id is less
	 * work than sorting them. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int row = -1;
		for (int k = 0; k < rows && row < 0; k++) {
			int64_t id;
			if (pg_col_i64(r, k, 0, &id) == 0 && (uint64_t)id == ids[i])
				row = k;
		}
		if (row < 0) {
			rc = CAIRN_EDENIED;
		} else if (PQgetisnull(r, row, 1)) {
			rc = CAIRN_ESTORAGE;
		} else if ((size_t)PQgetlength(r, row, 1) > cap - sum) {
			rc = CAIRN_ENOBUFS;
		} else {
			size_t len = (size_t)PQgetlength(r, row, 1);
			memcpy(out + sum, PQgetvalue(r, row, 1), len);
			sum += len;
		}
	}
	PQclear(r);
	if (rc == 0)
		*total = sum;
	return rc;
}

/*
 * The bytes of the engine's tables with their indexes and TOAST, as PostgreSQL counts them
 * (pg_total_relation_size of every table in the schema: partitions are tables, their parent
 * holds nothing). Asked at most every PG_SIZE_SAMPLE_MS; between samples, or while the
 * database cannot be reached, the last figure.
 */
uint64_t pg_disk_bytes(void *store)
{
	struct store_pg *st = store;
	int64_t now = pg_now_ms();
	if (st->disk_sampled_ms != 0 && now - st->disk_sampled_ms < PG_SIZE_SAMPLE_MS)
		return st->disk_bytes;
	st->disk_sampled_ms = now;
	if (pg_connect(st, NULL, 0) != 0)
		return st->disk_bytes;
	static const struct pg_params none;
	PGresult *r = pg_run(st, 0,
	                     "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8"
	                     " FROM pg_class AS c WHERE c.relkind = 'r'"
	                     " AND c.relnamespace = current_schema()::regnamespace",
	                     &none);
	int64_t v;
	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    pg_col_i64(r, 0, 0, &v) == 0 && v >= 0)
		st->disk_bytes = (uint64_t)v;
	PQclear(r);
	return st->disk_bytes;
}
