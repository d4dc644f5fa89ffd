/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's connection helpers (pg_engine.h): waiting for the server with a
 * bound instead of blocking the storage thread for ever, running one statement, and the
 * binary parameters and columns of every statement. Connecting is store_pg_session.c's.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

/* The longest the storage thread waits on the server for one step. A commit on a healthy
 * primary with a synchronous standby takes milliseconds; past this the connection is taken
 * for dead (a partition that TCP alone would notice only after minutes) and the batch fails. */
#define PG_WAIT_MS 30000

void pg_param_i64(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_PARAMS_MAX) {
		p->bad = true;
		return;
	}
	uint64_t u = (uint64_t)v;
	uint8_t *b = p->ints[p->n];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(u >> (56 - 8 * i));
	p->values[p->n] = (const char *)b;
	p->lengths[p->n] = 8;
	p->formats[p->n] = 1;
	p->n++;
}

void pg_param_u64(struct pg_params *p, uint64_t v)
{
	if (v > (uint64_t)INT64_MAX)
		p->bad = true;
	pg_param_i64(p, (int64_t)(v & (uint64_t)INT64_MAX));
}

void pg_param_i32(struct pg_params *p, int32_t v)
{
	if (p->n >= PG_PARAMS_MAX) {
		p->bad = true;
		return;
	}
	uint32_t n = htonl((uint32_t)v);
	memcpy(p->ints[p->n], &n, 4);
	p->values[p->n] = (const char *)p->ints[p->n];
	p->lengths[p->n] = 4;
	p->formats[p->n] = 1;
	p->n++;
}

void pg_param_bytes(struct pg_params *p, const void *bytes, size_t len)
{
	static const char empty[1];
	if (p->n >= PG_PARAMS_MAX || len > INT32_MAX || (bytes == NULL && len != 0)) {
		p->bad = true;
		return;
	}
	p->values[p->n] = bytes != NULL ? bytes : empty;
	p->lengths[p->n] = (int)len;
	p->formats[p->n] = 1;
	p->n++;
}

void pg_param_null(struct pg_params *p)
{
	if (p->n >= PG_PARAMS_MAX) {
		p->bad = true;
		return;
	}
	p->values[p->n] = NULL;
	p->lengths[p->n] = 0;
	p->formats[p->n] = 1;
	p->n++;
}

static void put_be32(uint8_t *b, uint32_t v)
{
	uint32_t n = htonl(v);
	memcpy(b, &n, 4);
}

/* An array's binary form (array_send): ndim, has-nulls, element type, then per dimension its
 * length and lower bound, then each element as its length and value. */
size_t pg_array_header(uint8_t *buf, uint32_t oid, size_t n)
{
	put_be32(buf, n > 0 ? 1 : 0);
	put_be32(buf + 4, 0);
	put_be32(buf + 8, oid);
	if (n == 0)
		return 12;
	put_be32(buf + 12, (uint32_t)n);
	put_be32(buf + 16, 1);
	return 20;
}

size_t pg_array_i64(uint8_t *buf, uint64_t v)
{
	put_be32(buf, 8);
	put_be32(buf + 4, (uint32_t)(v >> 32));
	put_be32(buf + 8, (uint32_t)v);
	return 12;
}

size_t pg_array_bytes(uint8_t *buf, const void *bytes, uint32_t len)
{
	put_be32(buf, len);
	if (len > 0)
		memcpy(buf + 4, bytes, len);
	return 4 + (size_t)len;
}

size_t pg_ids_size(size_t n)
{
	return PG_ARRAY_HEADER + PG_ARRAY_I64 * n;
}

void pg_param_ids(struct pg_params *p, const uint64_t *ids, size_t n, uint8_t *buf, size_t cap)
{
	if (n > INT32_MAX / PG_ARRAY_I64 || pg_ids_size(n) > cap || (n > 0 && ids == NULL)) {
		p->bad = true;
		return;
	}
	size_t off = pg_array_header(buf, PG_INT8_OID, n);
	for (size_t i = 0; i < n; i++) {
		if (ids[i] > (uint64_t)INT64_MAX)
			p->bad = true;
		off += pg_array_i64(buf + off, ids[i]);
	}
	pg_param_bytes(p, buf, off);
}

int64_t pg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_drop(struct store_pg *st)
{
	PQfinish(st->conn);
	st->conn = NULL;
}

/* Waits for the socket to be readable (and writable when WRITE), consuming input as it comes
 * so that the server never blocks on a full socket while we write. */
static int wait_socket(struct store_pg *st, bool write)
{
	struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN | (write ? POLLOUT : 0)};
	if (pfd.fd < 0)
		return -1;
	int n = poll(&pfd, 1, PG_WAIT_MS);
	if (n <= 0)
		return -1; /* a timeout, or poll failed: either way the connection is not usable */
	if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(st->conn) == 0)
		return -1;
	return 0;
}

int pg_flush(struct store_pg *st)
{
	for (;;) {
		int rc = PQflush(st->conn);
		if (rc == 0)
			return 0;
		if (rc < 0 || wait_socket(st, true) != 0)
			return -1;
	}
}

int pg_wait(struct store_pg *st)
{
	while (PQisBusy(st->conn)) {
		if (wait_socket(st, false) != 0)
			return -1;
	}
	return 0;
}

PGresult *pg_run(struct store_pg *st, int stmt, const char *sql, const struct pg_params *p)
{
	static const struct pg_params none;
	if (p == NULL)
		p = &none;
	int sent;
	char name[16];
	if (sql == NULL) {
		snprintf(name, sizeof(name), "cairn_%d", stmt);
		sent =
		    PQsendQueryPrepared(st->conn, name, p->n, p->values, p->lengths, p->formats, 1);
	} else if (p->n == 0 && p == &none) {
		sent = PQsendQuery(st->conn, sql);
	} else {
		sent = PQsendQueryParams(st->conn, sql, p->n, NULL, p->values, p->lengths,
		                         p->formats, 1);
	}
	if (!sent || pg_flush(st) != 0)
		goto fail;
	PGresult *last = NULL;
	for (;;) {
		if (pg_wait(st) != 0) {
			PQclear(last);
			goto fail;
		}
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL)
			break;
		/* Keep the first error: what follows it says less. */
		if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(r);
			continue;
		}
		PQclear(last);
		last = r;
	}
	if (PQstatus(st->conn) != CONNECTION_OK) {
		PQclear(last);
		goto fail;
	}
	return last;
fail:
	pg_drop(st);
	return NULL;
}

/* pg_read_pipeline, and pg_read_piece when not COMMIT. */
static int read_pipeline(struct store_pg *st, size_t stmts, bool *lost,
                         int (*each)(void *ctx, size_t index, const PGresult *r), void *ctx,
                         bool commit)
{
	int rc = 0;
	bool committed = false, synced = false;
	size_t results = 0, nulls = 0;
	*lost = true;
	while (!synced) {
		if (pg_wait(st) != 0)
			return CAIRN_ESTORAGE;
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL) {
			/* One NULL ends each statement's results; more means libpq lost its place.
			 */
			if (PQstatus(st->conn) != CONNECTION_OK || ++nulls > stmts)
				return CAIRN_ESTORAGE;
			continue;
		}
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			if (each != NULL && rc == 0)
				rc = each(ctx, results, r);
			results++;
			if (results == stmts && strcmp(PQcmdStatus(r), "COMMIT") == 0)
				committed = true;
			break;
		case PGRES_PIPELINE_SYNC:
			synced = true;
			break;
		case PGRES_PIPELINE_ABORTED:
			results++;
			break;
		default:
			results++;
			if (rc == 0)
				rc = pg_error_code(r);
			break;
		}
		PQclear(r);
	}
	if (PQstatus(st->conn) != CONNECTION_OK || PQexitPipelineMode(st->conn) != 1)
		return rc != 0 ? rc : CAIRN_ESTORAGE;
	*lost = false;
	if (rc == 0 && commit && !committed)
		rc = CAIRN_ESTORAGE;
	return rc;
}

int pg_read_pipeline(struct store_pg *st, size_t stmts, bool *lost,
                     int (*each)(void *ctx, size_t index, const PGresult *r), void *ctx)
{
	return read_pipeline(st, stmts, lost, each, ctx, true);
}

int pg_read_piece(struct store_pg *st, size_t stmts, bool *lost)
{
	return read_pipeline(st, stmts, lost, NULL, NULL, false);
}

int pg_error_code(const PGresult *r)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	/* 53100 disk_full: the database's disk had no room (the same ops without the inserts
	 * may still commit, store.h). */
	if (state != NULL && strcmp(state, "53100") == 0)
		return CAIRN_ECAPACITY;
	return CAIRN_ESTORAGE;
}

int pg_col_i64(const PGresult *r, int row, int col, int64_t *out)
{
	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return CAIRN_ESTORAGE;
	const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	*out = (int64_t)v;
	return 0;
}

int pg_col_i32(const PGresult *r, int row, int col, int32_t *out)
{
	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4)
		return CAIRN_ESTORAGE;
	uint32_t n;
	memcpy(&n, PQgetvalue(r, row, col), 4);
	*out = (int32_t)ntohl(n);
	return 0;
}

int pg_col_fixed(const PGresult *r, int row, int col, uint8_t *out, size_t len)
{
	if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != len)
		return CAIRN_ESTORAGE;
	memcpy(out, PQgetvalue(r, row, col), len);
	return 0;
}
