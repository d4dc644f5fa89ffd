/* SPDX-License-Identifier: MIT */
/*
 * A run of envelope puts as `COPY envelopes FROM STDIN (FORMAT binary)` (pg_engine.h): the
 * heap takes the rows several to a page (heap_multi_insert) instead of one insert each, which
 * costs the database less CPU and WAL per envelope than the statement it replaces
 * (docs/SCALING.md section 3). COPY cannot go in libpq's pipeline mode, so the batch's
 * transaction is sent in pieces (store_pg.c's run_batch): this file sends a run as COPYs of
 * at most PG_COPY_ROWS rows, one after the other inside the open transaction (the first with
 * the BEGIN that opens it when the batch starts with the run), and reads their outcome.
 * Nothing here logs.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

#define COPY_SQL "COPY envelopes (id, mailbox, stored_at, body) FROM STDIN (FORMAT binary)"

/* The binary format's signature, flags and header extension length (COPY's documentation,
 * "Binary Format"), each row's field count, and the trailer. */
static const uint8_t copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
#define COPY_FIELDS  4
#define COPY_ROW     (2 + 3 * (4 + 8) + 4) /* a row without its body's bytes */
#define COPY_TRAILER 2

/* libpq's chunks: a bound on what one PQputCopyData queues. */
#define COPY_CHUNK (64 * 1024)

static size_t put_be16(uint8_t *b, uint16_t v)
{
	uint16_t n = htons(v);
	memcpy(b, &n, 2);
	return 2;
}

static size_t put_be32(uint8_t *b, uint32_t v)
{
	uint32_t n = htonl(v);
	memcpy(b, &n, 4);
	return 4;
}

static size_t put_i64_field(uint8_t *b, uint64_t v)
{
	size_t off = put_be32(b, 8);
	off += put_be32(b + off, (uint32_t)(v >> 32));
	return off + put_be32(b + off, (uint32_t)v);
}

/* The rows of one piece of a run of N: the pieces' sizes are within one of each other. */
static size_t piece_rows(size_t n, size_t pieces, size_t k)
{
	return n / pieces + (k < n % pieces ? 1 : 0);
}

int pg_copy_build(const struct store_op *ops, size_t n, struct pg_op *out)
{
	memset(out, 0, sizeof(*out));
	out->stmt = PG_ENVELOPE_COPY;
	out->second = -1;
	size_t pieces = n == 0 ? 1 : (n + PG_COPY_ROWS - 1) / PG_COPY_ROWS;
	size_t cap = pieces * (sizeof(copy_header) + COPY_TRAILER);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind != STORE_ENVELOPE_PUT || (ops[i].body == NULL && ops[i].len != 0) ||
		    ops[i].envelope_id > (uint64_t)INT64_MAX ||
		    ops[i].mailbox_id > (uint64_t)INT64_MAX || ops[i].len > INT32_MAX - COPY_ROW)
			return CAIRN_ESTORAGE;
		cap += COPY_ROW + (size_t)ops[i].len;
		if (cap > INT32_MAX)
			return CAIRN_ESTORAGE;
	}
	/* Every piece's rows in one block, each piece a whole COPY stream (header, rows,
	 * trailer) one after the other: one allocation per run, as one COPY had. */
	uint8_t *buf = out->ids = malloc(cap);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	size_t off = 0, i = 0;
	for (size_t k = 0; k < pieces; k++) {
		memcpy(buf + off, copy_header, sizeof(copy_header));
		off += sizeof(copy_header);
		for (size_t end = i + piece_rows(n, pieces, k); i < end; i++) {
			off += put_be16(buf + off, COPY_FIELDS);
			off += put_i64_field(buf + off, ops[i].envelope_id);
			off += put_i64_field(buf + off, ops[i].mailbox_id);
			off += put_i64_field(buf + off, (uint64_t)ops[i].stored_at);
			off += put_be32(buf + off, (uint32_t)ops[i].len);
			if (ops[i].len > 0)
				memcpy(buf + off, ops[i].body, ops[i].len);
			off += ops[i].len;
		}
		off += put_be16(buf + off, 0xffff);
	}
	pg_param_bytes(&out->p, buf, off);
	return out->p.bad ? CAIRN_ESTORAGE : 0;
}

/* The length of the piece (one COPY stream, as pg_copy_build wrote it) at the start of the
 * LEN bytes at B, or 0 when they do not hold a whole one. */
static size_t piece_len(const uint8_t *b, size_t len)
{
	size_t off = sizeof(copy_header);
	while (off + 2 <= len) {
		uint16_t fields = (uint16_t)(b[off] << 8 | b[off + 1]);
		off += 2;
		if (fields == 0xffff)
			return off;
		for (uint16_t f = 0; f < fields; f++) {
			if (off + 4 > len)
				return 0;
			uint32_t flen = (uint32_t)b[off] << 24 | (uint32_t)b[off + 1] << 16 |
			                (uint32_t)b[off + 2] << 8 | b[off + 3];
			off += 4;
			if (flen > len - off)
				return 0;
			off += flen;
		}
	}
	return 0;
}

/* Reads the results left of the current query up to its end (PQgetResult's NULL); *RC gets
 * the first failure's code if it has none yet. Returns 0, or -1 when the connection failed. */
static int drain_results(struct store_pg *st, int *rc)
{
	for (;;) {
		if (pg_wait(st) != 0)
			return -1;
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL)
			return 0;
		if (PQresultStatus(r) != PGRES_COMMAND_OK && *rc == 0)
			*rc = pg_error_code(r);
		PQclear(r);
	}
}

/* Queues LEN bytes of copy data, flushing whenever libpq's buffer is full (non-blocking). */
static int put_data(struct store_pg *st, const uint8_t *data, size_t len)
{
	while (len > 0) {
		int chunk = len > COPY_CHUNK ? COPY_CHUNK : (int)len;
		int sent = PQputCopyData(st->conn, (const char *)data, chunk);
		if (sent < 0)
			return -1;
		if (sent == 0) {
			if (pg_flush(st) != 0)
				return -1;
			continue;
		}
		data += chunk;
		len -= (size_t)chunk;
	}
	int ended;
	while ((ended = PQputCopyEnd(st->conn, NULL)) == 0)
		if (pg_flush(st) != 0)
			return -1;
	return ended == 1 ? pg_flush(st) : -1;
}

static int copy_piece(struct store_pg *st, const uint8_t *data, size_t len, bool begin, bool *lost)
{
	*lost = true;
	if (PQsendQuery(st->conn, begin ? "BEGIN; " COPY_SQL : COPY_SQL) != 1 || pg_flush(st) != 0)
		return CAIRN_ESTORAGE;
	/* BEGIN's result, then the server's readiness for the data. */
	int rc = 0;
	for (;;) {
		if (pg_wait(st) != 0)
			return CAIRN_ESTORAGE;
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL)
			return CAIRN_ESTORAGE; /* the query ended without asking for data */
		ExecStatusType s = PQresultStatus(r);
		if (s != PGRES_COMMAND_OK && s != PGRES_COPY_IN)
			rc = pg_error_code(r);
		PQclear(r);
		if (rc != 0)
			break;
		if (s == PGRES_COPY_IN) {
			if (put_data(st, data, len) != 0)
				return CAIRN_ESTORAGE;
			break;
		}
	}
	/* COPY's own result: a row refused fails it, and the transaction. */
	if (drain_results(st, &rc) != 0 || PQstatus(st->conn) != CONNECTION_OK)
		return CAIRN_ESTORAGE;
	*lost = false;
	return rc;
}

int pg_copy_run(struct store_pg *st, const struct pg_op *op, bool begin, bool *lost)
{
	*lost = true;
	const uint8_t *data = (const uint8_t *)op->p.values[0];
	size_t left = (size_t)op->p.lengths[0];
	while (left > 0) {
		size_t len = piece_len(data, left);
		if (len == 0)
			return CAIRN_ESTORAGE;
		int rc = copy_piece(st, data, len, begin, lost);
		if (rc != 0)
			return rc;
		begin = false;
		data += len;
		left -= len;
	}
	return 0;
}
