/* SPDX-License-Identifier: MIT */
/*
 * What the SQLite engine's files share: the engine's struct, the statements of group logs
 * (store_sqlite_log.c, PROTOCOL.md 5.9) and the small binding and stepping helpers that
 * store_sqlite.c, store_sqlite_log.c and store_sqlite_rows.c use. Private to them (and to
 * tests of the engine).
 */
#ifndef CAIRN_RELAY_SQLITE_ENGINE_H
#define CAIRN_RELAY_SQLITE_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "cairn/error.h"
#include "store.h"

enum {
	STMT_MAILBOX_PUT,
	STMT_MAILBOX_SECURE,
	STMT_MAILBOX_INTAKE,
	STMT_MAILBOX_TOUCH,
	STMT_MAILBOX_DELETE,
	STMT_MAILBOX_ENVELOPE_DELETE,
	STMT_ENVELOPE_PUT,
	STMT_ENVELOPE_DELETE,
	STMT_EXPIRE,
	STMT_READ,
	STMT_READ_OF_MAILBOX, /* read_envelopes */
	STMT_ID_MARK,
	STMT_BUNDLE_PUT,
	STMT_BUNDLE_EXPIRE,
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_COUNT
};

/* The statements of group logs, prepared by store_sqlite_log_prepare. */
enum {
	LOG_STMT_PUT,
	LOG_STMT_TOUCH,
	LOG_STMT_DELETE,
	LOG_STMT_DELETE_ENTRY,
	LOG_STMT_ENTRY_PUT,
	LOG_STMT_EXPIRED_SEQS,
	LOG_STMT_RAISE_NEXT_SEQ,
	LOG_STMT_EXPIRE,
	LOG_STMT_READ,
	LOG_STMT_READ_BEGIN,
	LOG_STMT_READ_END,
	LOG_STMT_COUNT
};

struct store_sqlite {
	sqlite3 *db;
	sqlite3_stmt *stmt[STMT_COUNT];
	sqlite3_stmt *log_stmt[LOG_STMT_COUNT];
	char *path; /* DIR/relay.db; "-wal" and "-shm" are appended for disk_bytes */
	size_t path_len;
};

/* Runs SQL that returns no rows we need. */
static inline int exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : CAIRN_ESTORAGE;
}

/* Runs SQL, a whole "BEGIN ...; COMMIT;" script, rolling back what is left open if it fails
 * part-way (after some errors SQLite has rolled back already). Returns 0 or CAIRN_ESTORAGE. */
static inline int exec_script(sqlite3 *db, const char *sql)
{
	if (exec_sql(db, sql) == 0)
		return 0;
	if (!sqlite3_get_autocommit(db))
		(void)exec_sql(db, "ROLLBACK");
	return CAIRN_ESTORAGE;
}

/* SQLite keys are signed; the relay's ids never reach 2^63, and one that did is refused. */
static inline int bind_id(sqlite3_stmt *stmt, int col, uint64_t id)
{
	if (id > (uint64_t)INT64_MAX)
		return CAIRN_ESTORAGE;
	return sqlite3_bind_int64(stmt, col, (sqlite3_int64)id) == SQLITE_OK ? 0 : CAIRN_ESTORAGE;
}

/* Binds a blob. SQLITE_STATIC is safe: the caller's bytes outlive the step, and every use of
 * the statement binds again before stepping. A zero-length blob needs a non-NULL pointer, or
 * SQLite would bind NULL. */
static inline int bind_blob(sqlite3_stmt *stmt, int col, const void *p, size_t len)
{
	static const uint8_t empty[1];
	if (len > INT32_MAX)
		return CAIRN_ESTORAGE;
	if (p == NULL) {
		if (len != 0)
			return CAIRN_ESTORAGE;
		p = empty;
	}
	return sqlite3_bind_blob(stmt, col, p, (int)len, SQLITE_STATIC) == SQLITE_OK
	           ? 0
	           : CAIRN_ESTORAGE;
}

/* Steps a statement that returns no rows and resets it, so it holds no read cursor. */
static inline int step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : CAIRN_ESTORAGE;
}

/* Copies a blob column of exactly LEN bytes into OUT; anything else means a damaged row. */
static inline int column_fixed(sqlite3_stmt *s, int col, uint8_t *out, size_t len)
{
	if (sqlite3_column_type(s, col) != SQLITE_BLOB)
		return CAIRN_ESTORAGE;
	const void *p = sqlite3_column_blob(s, col);
	if (p == NULL || (size_t)sqlite3_column_bytes(s, col) != len)
		return CAIRN_ESTORAGE;
	memcpy(out, p, len);
	return 0;
}

/* Runs S (a one-column "SELECT body ... WHERE id = ?1") for ID and copies the body into OUT.
 * Returns 0, CAIRN_EDENIED if absent, CAIRN_ENOBUFS if it does not fit in CAP, or
 * CAIRN_ESTORAGE. (store_sqlite_rows.c) */
int store_sqlite_read_body(sqlite3_stmt *s, uint64_t id, uint8_t *out, size_t cap, size_t *len);

/* Handles one row of a load query: checks it and calls CB's callback. Returns 0 or
 * CAIRN_ESTORAGE for a damaged row. */
typedef int store_sqlite_row_fn(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx);
/* Runs the query SQL and calls ROW for each row. Returns 0, or CAIRN_ESTORAGE if the query or
 * a row fails (no later row is reported). (store_sqlite_rows.c) */
int store_sqlite_each_row(sqlite3 *db, const char *sql, store_sqlite_row_fn *row,
                          const struct store_load_cb *cb, void *ctx);

/* ---- Group logs (store_sqlite_log.c) ---- */

/* Creates the tables of group logs if the store lacks them (inside the caller's transaction).
 * Returns 0 or CAIRN_ESTORAGE. */
int store_sqlite_log_schema(sqlite3 *db);
/* Prepares ST->log_stmt. Returns 0 or CAIRN_ESTORAGE (store_free finalizes what was made). */
int store_sqlite_log_prepare(struct store_sqlite *st);
/* Applies one STORE_LOG_* op inside the open transaction. Returns 0 or CAIRN_ESTORAGE. */
int store_sqlite_log_apply(struct store_sqlite *st, const struct store_op *op);
/* STORE_EXPIRE's part for log entries: deletes every entry whose id is at most LAST, after
 * raising each affected log's stored next_seq above the seqs it loses. */
int store_sqlite_log_expire(struct store_sqlite *st, sqlite3_int64 last);
/* Reports every log (increasing touched, then id) then every entry (increasing id), as
 * store.h's load() says; NULL callbacks skip their part. Returns 0 or CAIRN_ESTORAGE. */
int store_sqlite_log_load(struct store_sqlite *st, const struct store_load_cb *cb, void *ctx);
/* The engine's read_log_entries (store.h): N entry reads in one read transaction. */
int store_sqlite_read_log_entries(void *store, const uint64_t *ids, size_t n, uint8_t *out,
                                  size_t cap, size_t *total);

#endif
