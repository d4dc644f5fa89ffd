/* SPDX-License-Identifier: MIT */
/*
 * Group logs (docs/PROTOCOL.md 5.9) in the SQLite engine: the logs table and the log_entries
 * table, the STORE_LOG_* ops, their share of STORE_EXPIRE, and their part of load().
 *
 * Entries are stored like envelopes (store_sqlite.c, DESIGN.md section 6): a plain rowid table
 * keyed by the relay's id, which comes from the envelope id space and so only grows, with no
 * secondary index. The relay knows each log's entry ids from load, so reads and deletes are
 * rowid seeks and expiry is a range delete.
 *
 * A log's next_seq must survive restarts even when every entry has expired (5.9: a seq is never
 * given twice). Writing it on every append would add an UPDATE of the logs table to the hot
 * path; instead the stored value is a lower bound that load() raises to one above the highest
 * seq still stored, and only the deletes that can lose the highest seq write it: expiry raises
 * each log's stored next_seq above the seqs it deletes, in the same transaction. (A log delete
 * takes its row along, so it needs nothing.) An append therefore costs one insert, exactly
 * like an envelope.
 */
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "cairn/error.h"
#include "store.h"
#include "sqlite_engine.h"

/* The body is the last column, as in envelopes: a metadata scan never reads its overflow. */
static const char *const log_stmt_sql[LOG_STMT_COUNT] = {
    [LOG_STMT_PUT] = "INSERT INTO logs (id, log_id, credential_digest, delete_digest,"
                     " next_seq, touched) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [LOG_STMT_TOUCH] = "UPDATE logs SET touched = ?2 WHERE id = ?1",
    [LOG_STMT_DELETE] = "DELETE FROM logs WHERE id = ?1",
    /* No index on log_entries.log (as envelopes.mailbox): the relay names the entries, one
     * rowid seek each; the log check keeps a wrong id from deleting another log's entry. */
    [LOG_STMT_DELETE_ENTRY] = "DELETE FROM log_entries WHERE id = ?1 AND log = ?2",
    [LOG_STMT_ENTRY_PUT] = "INSERT INTO log_entries (id, log, seq, stored_at, body)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* The rows expiry is about to delete, per log: a rowid range, read once more. */
    [LOG_STMT_EXPIRED_SEQS] = "SELECT log, max(seq) FROM log_entries WHERE id <= ?1"
                              " GROUP BY log",
    [LOG_STMT_RAISE_NEXT_SEQ] = "UPDATE logs SET next_seq = max(next_seq, ?2) WHERE id = ?1",
    [LOG_STMT_EXPIRE] = "DELETE FROM log_entries WHERE id <= ?1",
    [LOG_STMT_READ] = "SELECT body FROM log_entries WHERE id = ?1",
    /* Deferred: the first SELECT takes the WAL read lock once for the whole batch. */
    [LOG_STMT_READ_BEGIN] = "BEGIN DEFERRED",
    [LOG_STMT_READ_END] = "COMMIT",
};

int store_sqlite_log_schema(sqlite3 *db)
{
	/*
	 * IF NOT EXISTS, on every open: adding two tables changes nothing that an older relay
	 * reads, so the tables need no schema version of their own, and a store of any earlier
	 * version (or one whose creation was cut short after its first transaction) gains them
	 * here. A relay that does not know them leaves them alone.
	 */
	static const char create[] =
	    "BEGIN IMMEDIATE;"
	    "CREATE TABLE IF NOT EXISTS logs ("
	    " id INTEGER PRIMARY KEY," /* random, like a mailbox's (store.h) */
	    " log_id BLOB NOT NULL,"
	    " credential_digest BLOB NOT NULL,"
	    " delete_digest BLOB NOT NULL,"
	    /* A lower bound, raised by expiry: see the top of this file. */
	    " next_seq INTEGER NOT NULL,"
	    " touched INTEGER NOT NULL);"
	    /* id is the relay's id from the envelope id space, the B-tree key itself. */
	    "CREATE TABLE IF NOT EXISTS log_entries ("
	    " id INTEGER PRIMARY KEY,"
	    " log INTEGER NOT NULL,"
	    " seq INTEGER NOT NULL,"
	    " stored_at INTEGER NOT NULL,"
	    " body BLOB NOT NULL);"
	    "COMMIT;";
	return exec_script(db, create);
}

int store_sqlite_log_prepare(struct store_sqlite *st)
{
	for (int i = 0; i < LOG_STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, log_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &st->log_stmt[i], NULL) != SQLITE_OK)
			return CAIRN_ESTORAGE;
	}
	return 0;
}

/* A seq is stored as a signed integer and next_seq as seq + 1, which must not overflow. */
static int bind_seq(sqlite3_stmt *stmt, int col, uint64_t seq)
{
	if (seq >= (uint64_t)INT64_MAX)
		return CAIRN_ESTORAGE;
	return bind_id(stmt, col, seq);
}

static int log_put(struct store_sqlite *st, const struct store_log *log)
{
	if (log == NULL)
		return CAIRN_ESTORAGE;
	sqlite3_stmt *s = st->log_stmt[LOG_STMT_PUT];
	int rc;
	if ((rc = bind_id(s, 1, log->id)) != 0 ||
	    (rc = bind_blob(s, 2, log->log_id, sizeof(log->log_id))) != 0 ||
	    (rc = bind_blob(s, 3, log->credential_digest, sizeof(log->credential_digest))) != 0 ||
	    (rc = bind_blob(s, 4, log->delete_digest, sizeof(log->delete_digest))) != 0 ||
	    (rc = bind_id(s, 5, log->next_seq)) != 0)
		return rc;
	if (sqlite3_bind_int64(s, 6, log->touched) != SQLITE_OK)
		return CAIRN_ESTORAGE;
	rc = step_done(s);
	/* Drop the borrowed pointers: the caller may free the log after done(). */
	sqlite3_clear_bindings(s);
	return rc;
}

static int entry_put(struct store_sqlite *st, const struct store_op *op)
{
	sqlite3_stmt *s = st->log_stmt[LOG_STMT_ENTRY_PUT];
	int rc;
	if ((rc = bind_id(s, 1, op->envelope_id)) != 0 || (rc = bind_id(s, 2, op->log_key)) != 0 ||
	    (rc = bind_seq(s, 3, op->seq)) != 0 ||
	    sqlite3_bind_int64(s, 4, op->stored_at) != SQLITE_OK ||
	    (rc = bind_blob(s, 5, op->body, op->len)) != 0)
		return rc != 0 ? rc : CAIRN_ESTORAGE;
	rc = step_done(s);
	sqlite3_clear_bindings(s);
	return rc;
}

static int log_delete(struct store_sqlite *st, const struct store_op *op)
{
	if (op->n_envelope_ids > 0 && op->envelope_ids == NULL)
		return CAIRN_ESTORAGE;
	sqlite3_stmt *s = st->log_stmt[LOG_STMT_DELETE_ENTRY];
	int rc;
	for (size_t i = 0; i < op->n_envelope_ids; i++) {
		if ((rc = bind_id(s, 1, op->envelope_ids[i])) != 0 ||
		    (rc = bind_id(s, 2, op->log_key)) != 0 || (rc = step_done(s)) != 0)
			return rc;
	}
	s = st->log_stmt[LOG_STMT_DELETE];
	if ((rc = bind_id(s, 1, op->log_key)) != 0)
		return rc;
	return step_done(s);
}

int store_sqlite_log_apply(struct store_sqlite *st, const struct store_op *op)
{
	sqlite3_stmt *s;
	int rc;
	switch (op->kind) {
	case STORE_LOG_PUT:
		return log_put(st, op->log);
	case STORE_LOG_TOUCH:
		/* An absent log changes nothing and is not an error, as for a mailbox. */
		s = st->log_stmt[LOG_STMT_TOUCH];
		if ((rc = bind_id(s, 1, op->log_key)) != 0)
			return rc;
		if (sqlite3_bind_int64(s, 2, op->stored_at) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		return step_done(s);
	case STORE_LOG_DELETE:
		return log_delete(st, op);
	case STORE_LOG_ENTRY_PUT:
		/* No write of the log's next_seq: load() derives it (see the top of the file). */
		return entry_put(st, op);
	default:
		return CAIRN_ESTORAGE;
	}
}

int store_sqlite_log_expire(struct store_sqlite *st, sqlite3_int64 last)
{
	/* Raise first, while the rows are there. Updating logs while the cursor on log_entries
	 * is open is allowed: they are different tables. */
	sqlite3_stmt *q = st->log_stmt[LOG_STMT_EXPIRED_SEQS];
	sqlite3_stmt *u = st->log_stmt[LOG_STMT_RAISE_NEXT_SEQ];
	int rc = 0;
	if (sqlite3_bind_int64(q, 1, last) != SQLITE_OK)
		return CAIRN_ESTORAGE;
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		sqlite3_int64 log = sqlite3_column_int64(q, 0);
		sqlite3_int64 seq = sqlite3_column_int64(q, 1);
		if (seq < 0 || seq == INT64_MAX) {
			rc = CAIRN_ESTORAGE; /* a damaged row: no next_seq can be derived from it */
			break;
		}
		if (sqlite3_bind_int64(u, 1, log) != SQLITE_OK ||
		    sqlite3_bind_int64(u, 2, seq + 1) != SQLITE_OK || step_done(u) != 0) {
			rc = CAIRN_ESTORAGE;
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = CAIRN_ESTORAGE;
	sqlite3_reset(q);
	if (rc != 0)
		return rc;
	sqlite3_stmt *d = st->log_stmt[LOG_STMT_EXPIRE];
	if (sqlite3_bind_int64(d, 1, last) != SQLITE_OK)
		return CAIRN_ESTORAGE;
	return step_done(d);
}

static int log_row(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx)
{
	struct store_log log;
	memset(&log, 0, sizeof(log));
	sqlite3_int64 id = sqlite3_column_int64(s, 0);
	sqlite3_int64 next_seq = sqlite3_column_int64(s, 4);
	if (id < 0 || next_seq < 0 || sqlite3_column_type(s, 4) != SQLITE_INTEGER)
		return CAIRN_ESTORAGE;
	log.id = (uint64_t)id;
	if (column_fixed(s, 1, log.log_id, sizeof(log.log_id)) != 0 ||
	    column_fixed(s, 2, log.credential_digest, sizeof(log.credential_digest)) != 0 ||
	    column_fixed(s, 3, log.delete_digest, sizeof(log.delete_digest)) != 0)
		return CAIRN_ESTORAGE;
	log.next_seq = (uint64_t)next_seq;
	log.touched = sqlite3_column_int64(s, 5);
	cb->log(ctx, &log);
	return 0;
}

static int entry_row(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx)
{
	sqlite3_int64 id = sqlite3_column_int64(s, 0);
	sqlite3_int64 log = sqlite3_column_int64(s, 1);
	sqlite3_int64 seq = sqlite3_column_int64(s, 2);
	sqlite3_int64 len = sqlite3_column_int64(s, 3);
	if (id < 0 || log < 0 || seq < 0 || len < 0 || len > UINT32_MAX)
		return CAIRN_ESTORAGE;
	struct store_log_entry_info info = {
	    .id = (uint64_t)id,
	    .log = (uint64_t)log,
	    .seq = (uint64_t)seq,
	    .len = (uint32_t)len,
	    .stored_at = sqlite3_column_int64(s, 4),
	};
	cb->log_entry(ctx, &info);
	return 0;
}

int store_sqlite_log_load(struct store_sqlite *st, const struct store_load_cb *cb, void *ctx)
{
	int rc = 0;
	/* next_seq: the stored lower bound, or one above the highest seq still stored. */
	if (cb->log != NULL)
		rc = store_sqlite_each_row(st->db,
		                           "SELECT l.id, l.log_id, l.credential_digest,"
		                           " l.delete_digest,"
		                           " max(l.next_seq, coalesce(e.next_seq, 0)), l.touched"
		                           " FROM logs AS l LEFT JOIN"
		                           " (SELECT log, max(seq) + 1 AS next_seq FROM log_entries"
		                           "  GROUP BY log) AS e ON e.log = l.id"
		                           " ORDER BY l.touched, l.id",
		                           log_row, cb, ctx);
	/* In rowid order, no sort; length() reads the body's size from the record header. */
	if (rc == 0 && cb->log_entry != NULL)
		rc = store_sqlite_each_row(st->db,
		                           "SELECT id, log, seq, length(body), stored_at"
		                           " FROM log_entries ORDER BY id",
		                           entry_row, cb, ctx);
	return rc;
}

/*
 * One read transaction around the batch: outside one, every SELECT is its own transaction and
 * pays WAL read-lock system calls (fcntl) each time, which logstore measured as the top cost of
 * entry reads (about 200K reads/s against 1.3-1.7M/s grouped). Only this connection writes, and
 * the storage thread calls this between commits, so the transaction never meets a write of
 * ours; it ends before returning, so no snapshot stays open while the thread is idle.
 */
int store_sqlite_read_log_entries(void *store, const uint64_t *ids, size_t n, uint8_t *out,
                                  size_t cap, size_t *total)
{
	struct store_sqlite *st = store;
	*total = 0;
	if (n > 0 && (ids == NULL || out == NULL))
		return CAIRN_EINVAL;
	if (n == 0)
		return 0;
	int rc = step_done(st->log_stmt[LOG_STMT_READ_BEGIN]);
	size_t sum = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t len = 0;
		rc = store_sqlite_read_body(st->log_stmt[LOG_STMT_READ], ids[i], out + sum,
		                            cap - sum, &len);
		sum += len;
	}
	/* COMMIT of a read transaction writes nothing; it ends the transaction whatever a read
	 * returned. If BEGIN failed there is none to end. */
	if (sqlite3_get_autocommit(st->db) == 0) {
		int end = step_done(st->log_stmt[LOG_STMT_READ_END]);
		if (rc == 0)
			rc = end;
	}
	if (rc == 0)
		*total = sum;
	return rc;
}
