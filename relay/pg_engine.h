/* SPDX-License-Identifier: MIT */
/*
 * What the PostgreSQL engine's files share (store_pg.c: open and commit; store_pg_load.c:
 * load, reads and size; store_pg_session.c: connecting; store_pg_schema.c: tables and
 * statements; store_pg_conn.c: waits, statements, parameters, columns), each calling only
 * those after it in this list: the engine's struct, the prepared statements, and the helpers
 * that bind parameters in binary form and wait for results with a bound. Private to them (and
 * to the engine's tests).
 */
#ifndef CAIRN_RELAY_PG_ENGINE_H
#define CAIRN_RELAY_PG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"

/* The prepared statements, named "cairn_<index>" on every connection. */
enum {
	PG_MAILBOX_PUT,
	PG_MAILBOX_SECURE,
	PG_MAILBOX_INTAKE,
	PG_MAILBOX_TOUCH,
	PG_MAILBOX_ENVELOPES_DELETE,
	PG_MAILBOX_DELETE,
	PG_ENVELOPE_PUT,
	PG_ENVELOPE_DELETE,
	PG_ENVELOPE_PUTS,    /* a run of STORE_ENVELOPE_PUT as arrays (unnest) */
	PG_ENVELOPE_DELETES, /* a run of STORE_ENVELOPE_DELETE as (mailbox, id) arrays */
	PG_EXPIRE,
	PG_ID_MARK,
	PG_BUNDLE_PUT,
	PG_BUNDLE_EXPIRE,
	PG_LOG_PUT,
	PG_LOG_TOUCH,
	PG_LOG_ENTRIES_DELETE,
	PG_LOG_DELETE,
	PG_LOG_ENTRY_PUT,
	PG_LOG_RAISE_NEXT_SEQ,
	PG_LOG_EXPIRE,
	PG_READ_ENVELOPE,
	PG_READ_LOG_ENTRY,
	PG_READ_LOG_ENTRIES,
	PG_BEGIN,
	PG_COMMIT,
	PG_STMT_COUNT
};

struct store_pg {
	PGconn *conn;   /* NULL while disconnected: the next call connects again */
	char *conninfo; /* [store] connection, owned */
	uint64_t disk_bytes;
	int64_t disk_sampled_ms; /* monotonic; 0 = never */
};

/* At most this many parameters per statement. */
#define PG_PARAMS_MAX 7

/* One statement's parameters in binary form; integers are kept here in network order. */
struct pg_params {
	const char *values[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX];
	int formats[PG_PARAMS_MAX];
	uint8_t ints[PG_PARAMS_MAX][8];
	int n;
	bool bad; /* a value the store cannot hold (an id past 2^63): the op fails */
};

void pg_param_i64(struct pg_params *p, int64_t v);
/* An id, seq or other unsigned the relay gives: past INT64_MAX sets P->bad. */
void pg_param_u64(struct pg_params *p, uint64_t v);
void pg_param_i32(struct pg_params *p, int32_t v);
/* Borrowed bytes: they must outlive the send (libpq copies them then). NULL, 0 is an empty
 * bytea, never SQL NULL. */
void pg_param_bytes(struct pg_params *p, const void *bytes, size_t len);
void pg_param_null(struct pg_params *p);
/* A one-dimensional int8[] of N ids in BUF (capacity CAP bytes): sets P->bad if it does not
 * fit or an id is past INT64_MAX. */
void pg_param_ids(struct pg_params *p, const uint64_t *ids, size_t n, uint8_t *buf, size_t cap);
/* The bytes pg_param_ids needs for N ids. */
size_t pg_ids_size(size_t n);

/* Types of binary parameters (pg_type.h's OIDs, which are fixed). */
#define PG_INT8_OID  20
#define PG_BYTEA_OID 17
/* Writing a one-dimensional array's binary form by hand: its header (at most PG_ARRAY_HEADER
 * bytes) for N elements of type OID, then each element (an int8 takes PG_ARRAY_I64 bytes, a
 * bytea 4 + its length). Each returns the bytes written. */
#define PG_ARRAY_HEADER 20
#define PG_ARRAY_I64    12
size_t pg_array_header(uint8_t *buf, uint32_t oid, size_t n);
size_t pg_array_i64(uint8_t *buf, uint64_t v);
size_t pg_array_bytes(uint8_t *buf, const void *bytes, uint32_t len);

/* Drops the connection after anything unexpected: the next call connects afresh. */
void pg_drop(struct store_pg *st);

/* Sends everything queued and waits (bounded) until a result can be read without blocking.
 * Returns 0, or -1 when the connection failed or timed out (the caller drops it). */
int pg_flush(struct store_pg *st);
int pg_wait(struct store_pg *st);

/*
 * Runs one statement outside pipeline mode: the prepared statement STMT when SQL is NULL,
 * else the text SQL (several statements allowed when P is NULL). Binary results. Returns its
 * last result (owned: PQclear it), or NULL after a connection failure (already dropped).
 */
PGresult *pg_run(struct store_pg *st, int stmt, const char *sql, const struct pg_params *p);
/* CAIRN_ECAPACITY for disk_full (SQLSTATE 53100), else CAIRN_ESTORAGE. */
int pg_error_code(const PGresult *r);

/* Reads a binary int8 / int4 column of row ROW. Returns 0, or CAIRN_ESTORAGE for NULL or a
 * wrong width. */
int pg_col_i64(const PGresult *r, int row, int col, int64_t *out);
int pg_col_i32(const PGresult *r, int row, int col, int32_t *out);
/* Copies a bytea column of exactly LEN bytes; anything else is a damaged row. */
int pg_col_fixed(const PGresult *r, int row, int col, uint8_t *out, size_t len);

/* ---- store_pg_session.c ---- */

/* Connects if not connected: sets the session, makes or checks the schema (pg_schema) and
 * prepares every statement. Returns 0, CAIRN_ESTATE for a newer schema, or CAIRN_ESTORAGE.
 * On failure, ERR (may be NULL) gets libpq's reason. */
int pg_connect(struct store_pg *st, char *err, size_t errcap);

/* ---- store_pg_schema.c ---- */

extern const char *const pg_stmt_sql[PG_STMT_COUNT];
/* Creates the tables in one transaction if they are absent, or checks the schema version.
 * Returns 0, CAIRN_ESTATE for a newer schema, or CAIRN_ESTORAGE. */
int pg_schema(struct store_pg *st);

/* ---- store_pg_load.c ---- */

int pg_load(void *store, const struct store_load_cb *cb, void *ctx);
int pg_read_envelope(void *store, uint64_t mailbox, uint64_t id, uint8_t *out, size_t cap,
                     size_t *len);
int pg_read_log_entry(void *store, uint64_t id, uint8_t *out, size_t cap, size_t *len);
int pg_read_log_entries(void *store, const uint64_t *ids, size_t n, uint8_t *out, size_t cap,
                        size_t *total);
uint64_t pg_disk_bytes(void *store);

/* ---- store_pg_read.c (drain) ---- */

int pg_read_envelopes(void *store, uint64_t mailbox, const uint64_t *ids, size_t n, uint8_t *out,
                      size_t cap, size_t *lens);

#endif
