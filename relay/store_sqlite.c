/* SPDX-License-Identifier: MIT */
/*
 * The SQLite storage engine (store.h): one database file, DIR/relay.db, in WAL mode with
 * synchronous=FULL so that a commit that returned is on disk. Envelopes live in a plain rowid
 * table keyed by the relay's envelope id, with no secondary index, because appends at the
 * right edge of one B-tree are what make durable throughput high (DESIGN.md section 6).
 * Group logs' tables and ops are in store_sqlite_log.c. Nothing here logs: every failure is
 * a return code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cairn/error.h"
#include "store.h"
#include "sqlite_engine.h"
#include "work.h"

/* Bump when the schema changes; a store written by a newer relay is refused, not guessed at. */
/* 2: the meta table (envelope id mark). 3: mailboxes.touched (idle-mailbox expiry). 4:
 * mailboxes.work_bits (intake mailboxes, PROTOCOL.md 5.10). The tables of group logs are an
 * addition an older relay can ignore, made at every open without a version of their own
 * (store_sqlite_log_schema). */
#define STORE_SQLITE_SCHEMA 4

#define STORE_SQLITE_FILE "relay.db"

/*
 * 64 KiB pages: DESIGN.md measured 469K inserts/s against 173K with the default 4 KiB pages,
 * at some cost to deletes. A page size only takes effect before the file's first page is
 * written, so it matters for new stores only.
 */
#define STORE_SQLITE_PAGE_SIZE 65536

/*
 * The page cache of the storage thread's connection, in KiB (PRAGMA cache_size = -N): eight
 * 64 KiB pages instead of SQLite's default 2,000 KiB (31 pages). The relay's hot paths look
 * nothing up in the store (mailboxes and each queue's envelope ids are in memory), append
 * envelopes at the right edge of their table and read them back in id order: the larger cache
 * bought neither the durable nor the drain rate anything measurable, while its 2 MB was ~110
 * bytes of each of 19,000 idle connections (docs/PERFORMANCE.md, idle memory per connection).
 */
#define STORE_SQLITE_CACHE_KIB 512

/* Column order puts the body last so that a large body's overflow pages are never read when
 * only the metadata is wanted. */
static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_MAILBOX_PUT] = "INSERT INTO mailboxes (id, recipient_id, sender_id, recipient_key,"
                         " credential_digest, touched, work_bits)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_MAILBOX_SECURE] = "UPDATE mailboxes SET credential_digest = ?2 WHERE id = ?1",
    [STMT_MAILBOX_INTAKE] = "UPDATE mailboxes SET work_bits = ?2 WHERE id = ?1",
    [STMT_MAILBOX_TOUCH] = "UPDATE mailboxes SET touched = ?2 WHERE id = ?1",
    [STMT_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?1",
    /* There is no index on envelopes.mailbox (it would cost every insert and delete on the
     * hot path, DESIGN.md: 54K against 173K inserts/s), so "WHERE mailbox = ?" would read the
     * whole table. The relay names the mailbox's envelopes instead: one rowid seek each. The
     * mailbox check keeps a wrong id from deleting another mailbox's envelope. */
    [STMT_MAILBOX_ENVELOPE_DELETE] = "DELETE FROM envelopes WHERE id = ?1 AND mailbox = ?2",
    [STMT_ENVELOPE_PUT] = "INSERT INTO envelopes (id, mailbox, stored_at, body)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [STMT_ENVELOPE_DELETE] = "DELETE FROM envelopes WHERE id = ?1",
    /* A rowid range: SQLite seeks to the table's left edge and stops at the bound. */
    [STMT_EXPIRE] = "DELETE FROM envelopes WHERE id <= ?1",
    [STMT_READ] = "SELECT body FROM envelopes WHERE id = ?1",
    [STMT_READ_OF_MAILBOX] = "SELECT body FROM envelopes WHERE id = ?1 AND mailbox = ?2",
    /* Only ever raised: a mark is a promise that no id below it will be handed out again. */
    [STMT_ID_MARK] = "INSERT INTO meta (key, value) VALUES ('envelope_id_mark', ?1)"
                     " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    /* Bundle items seen (PROTOCOL.md 5.12): a second delivery of an E is no error here
     * (the relay answers it OK without a write), so the insert ignores one. */
    [STMT_BUNDLE_PUT] = "INSERT OR IGNORE INTO bundle_seen (e, not_after) VALUES (?1, ?2)",
    [STMT_BUNDLE_EXPIRE] = "DELETE FROM bundle_seen WHERE not_after < ?1",
    /* IMMEDIATE takes the write lock up front, so a batch never fails half-way on a lock. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
};

/* Runs a one-row, one-column query (a PRAGMA) and returns its integer. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = CAIRN_ESTORAGE;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*out = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Runs a one-row, one-column query and compares its text with WANT (case-insensitive). */
static int query_text_is(sqlite3 *db, const char *sql, const char *want)
{
	sqlite3_stmt *st = NULL;
	int rc = CAIRN_ESTORAGE;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	const unsigned char *text = sqlite3_column_text(st, 0);
	if (text != NULL && sqlite3_stricmp((const char *)text, want) == 0)
		rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Creates the schema in a new store, or checks the version of an existing one. Returns 0,
 * CAIRN_ESTATE if the store was written by a newer schema, or CAIRN_ESTORAGE.
 */
static int schema_init(sqlite3 *db)
{
	int64_t version;
	if (query_int(db, "PRAGMA user_version", &version) != 0)
		return CAIRN_ESTORAGE;
	if (version > STORE_SQLITE_SCHEMA)
		return CAIRN_ESTATE;
	if (version == STORE_SQLITE_SCHEMA)
		return 0;
	if (version == 1) {
		/* Upgrade in place: version 1 lacked only the meta table. */
		static const char upgrade[] = "BEGIN IMMEDIATE;"
		                              "CREATE TABLE meta (key TEXT PRIMARY KEY,"
		                              " value INTEGER NOT NULL) WITHOUT ROWID;"
		                              "PRAGMA user_version = 2;"
		                              "COMMIT;";
		if (exec_sql(db, upgrade) != 0)
			goto fail;
		version = 2;
	}
	if (version == 2) {
		/* Upgrade in place: mailboxes gain their last-touched time, which starts now for
		 * every existing mailbox, so none expires sooner than a TTL after the upgrade.
		 * (Their sequential ids and their envelopes' precise times stay: the envelopes
		 * expire within a TTL, the ids with their mailboxes.) */
		static const char upgrade[] =
		    "BEGIN IMMEDIATE;"
		    "ALTER TABLE mailboxes ADD COLUMN touched INTEGER NOT NULL DEFAULT 0;"
		    "UPDATE mailboxes SET touched = CAST(strftime('%s', 'now') AS INTEGER);"
		    "PRAGMA user_version = 3;"
		    "COMMIT;";
		if (exec_sql(db, upgrade) != 0)
			goto fail;
		version = 3;
	}
	if (version == 3) {
		/* Upgrade in place: every existing mailbox is an ordinary one (work_bits 0). */
		static const char upgrade[] =
		    "BEGIN IMMEDIATE;"
		    "ALTER TABLE mailboxes ADD COLUMN work_bits INTEGER NOT NULL DEFAULT 0;"
		    "PRAGMA user_version = 4;"
		    "COMMIT;";
		if (exec_sql(db, upgrade) != 0)
			goto fail;
		return 0;
	}
	/* Version 0: a new store. One transaction, so a crash here leaves an empty file that the
	 * next start initialises again; a foreign database with a clashing table fails instead. */
	static const char create[] =
	    "BEGIN IMMEDIATE;"
	    "CREATE TABLE mailboxes ("
	    " id INTEGER PRIMARY KEY," /* random: see store.h */
	    " recipient_id BLOB NOT NULL,"
	    " sender_id BLOB NOT NULL,"
	    " recipient_key BLOB NOT NULL,"
	    " credential_digest BLOB,"
	    " touched INTEGER NOT NULL DEFAULT 0,"
	    " work_bits INTEGER NOT NULL DEFAULT 0);"
	    /* A rowid table: id is the relay's envelope id and the B-tree key itself. stored_at
	     * is rounded up to the expiry grain by the relay. */
	    "CREATE TABLE envelopes ("
	    " id INTEGER PRIMARY KEY,"
	    " mailbox INTEGER NOT NULL,"
	    " stored_at INTEGER NOT NULL,"
	    " body BLOB NOT NULL);"
	    /* WITHOUT ROWID: the key is the table, no separate index. */
	    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	    "PRAGMA user_version = 4;"
	    "COMMIT;";
	_Static_assert(STORE_SQLITE_SCHEMA == 4, "update the CREATE statements");
	if (exec_sql(db, create) != 0)
		goto fail;
	return 0;
fail:
	if (!sqlite3_get_autocommit(db))
		(void)exec_sql(db, "ROLLBACK");
	return CAIRN_ESTORAGE;
}

/*
 * Connection settings, applied on every open. The order matters: page_size must precede the
 * first write of a new file, and journal_mode=WAL writes the header.
 */
static int configure(sqlite3 *db)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", STORE_SQLITE_PAGE_SIZE);
	if (exec_sql(db, sql) != 0)
		return CAIRN_ESTORAGE;
	/* WAL: a commit is one append and one fsync of the log, and readers never block it. */
	if (query_text_is(db, "PRAGMA journal_mode = WAL", "wal") != 0)
		return CAIRN_ESTORAGE;
	/* FULL: in WAL mode NORMAL may lose the last commits on power loss; a send is answered
	 * OK only once durable, so every commit must fsync the log. */
#ifndef CAIRN_TEST_WEAK_SYNC
	if (exec_sql(db, "PRAGMA synchronous = FULL") != 0)
		return CAIRN_ESTORAGE;
#else
	/* Only in the deliberately weakened relay that the power-cut test must catch
	 * (cairn-relay-weaksync, built by tests/CMakeLists.txt, never installed). */
	if (exec_sql(db, "PRAGMA synchronous = NORMAL") != 0)
		return CAIRN_ESTORAGE;
#endif
	/*
	 * secure_delete = FAST: deleted rows are zeroed where that costs no extra I/O (cells in
	 * pages the delete rewrites anyway), but pages moved to the freelist are not overwritten.
	 * Full secure_delete would double the I/O of the delete path, which is as hot as the
	 * insert path. What may linger is end-to-end-encrypted ciphertext of delivered or expired
	 * envelopes, in free pages and in the WAL until it is recycled; it reveals that traffic
	 * existed, which the live tables reveal anyway, and never its content.
	 */
	if (exec_sql(db, "PRAGMA secure_delete = FAST") != 0)
		return CAIRN_ESTORAGE;
	/* The WAL is reused from its start after each checkpoint; this caps what it keeps on
	 * disk after a burst, instead of staying at its high-water mark forever. */
	if (exec_sql(db, "PRAGMA journal_size_limit = 67108864") != 0)
		return CAIRN_ESTORAGE;
	/* A checkpoint every 256 pages (16 MiB) instead of SQLite's 1000 (64 MiB): what the WAL
	 * holds that the database file does not is what a checkpoint must find room for, and on
	 * a full disk that room is the reserve's ([limits] disk_reserve, storage.h), which must
	 * be larger. One more fsync of the database per 16 MiB written. */
	if (exec_sql(db, "PRAGMA wal_autocheckpoint = 256") != 0)
		return CAIRN_ESTORAGE;
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", STORE_SQLITE_CACHE_KIB);
	if (exec_sql(db, sql) != 0)
		return CAIRN_ESTORAGE;
	/* Only an outside reader (an operator's backup) can hold a lock; wait for it a while. */
	if (sqlite3_busy_timeout(db, 5000) != SQLITE_OK)
		return CAIRN_ESTORAGE;
	return 0;
}

/*
 * The seen rows of bundle items (PROTOCOL.md 5.12), made at every open like the tables of
 * group logs (an addition an older relay ignores). WITHOUT ROWID, keyed by (not_after, E):
 * expiry is a range delete at the key's left edge, with no second index to keep (the store
 * has none), and the relay never looks a row up by E (it loads them all at start). not_after
 * is rounded up to the expiry grain by the relay, as every stored time.
 */
static int bundle_schema(sqlite3 *db)
{
	static const char create[] = "BEGIN IMMEDIATE;"
	                             "CREATE TABLE IF NOT EXISTS bundle_seen ("
	                             " not_after INTEGER NOT NULL,"
	                             " e BLOB NOT NULL,"
	                             " PRIMARY KEY (not_after, e)) WITHOUT ROWID;"
	                             "COMMIT;";
	return exec_script(db, create);
}

static void store_free(struct store_sqlite *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	for (int i = 0; i < LOG_STMT_COUNT; i++)
		sqlite3_finalize(st->log_stmt[i]);
	/* Closing the last connection checkpoints the WAL and removes it. */
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/*
 * Opens or creates PARAMS->dir/relay.db. A new file is created with mode 0600 before SQLite sees
 * it: SQLite creates the -wal and -shm files with the database file's permissions, so all three
 * stay private to the relay's user. Returns 0, CAIRN_EINVAL, CAIRN_ENOMEM, CAIRN_EIO if the
 * file cannot be created or opened, CAIRN_ESTATE for a newer schema, or CAIRN_ESTORAGE.
 * CAIRN_EINVAL too for a node != 0 (PARAMS->error says why).
 */
static int sqlite_open(const struct store_params *params, void **out)
{
	*out = NULL;
	const char *dir = params != NULL ? params->dir : NULL;
	if (dir == NULL || dir[0] == '\0')
		return CAIRN_EINVAL;
	/* A file on one host cannot be shared by several nodes (store.h: no feed_read). */
	if (params->node != 0) {
		if (params->error != NULL && params->error_cap > 0)
			snprintf(
			    params->error, params->error_cap,
			    "[store] node needs the postgresql engine; SQLite serves one relay");
		return CAIRN_EINVAL;
	}
	struct store_sqlite *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return CAIRN_ENOMEM;
	int rc = CAIRN_ENOMEM;
	size_t dir_len = strlen(dir);
	/* Room for "/relay.db", the longest suffix ("-wal") and the terminator. */
	size_t cap = dir_len + 1 + sizeof(STORE_SQLITE_FILE) + 4;
	st->path = malloc(cap);
	if (st->path == NULL)
		goto fail;
	st->path_len = (size_t)snprintf(st->path, cap, "%s/%s", dir, STORE_SQLITE_FILE);

	int fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = CAIRN_EIO;
		goto fail;
	}
	close(fd);

	rc = CAIRN_ESTORAGE;
	/* NOMUTEX: the engine is used by one thread at a time (store.h), so SQLite's own
	 * per-call locking is pure cost. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	if (sqlite3_open_v2(st->path, &st->db, flags, NULL) != SQLITE_OK) {
		rc = CAIRN_EIO;
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* The -wal and -shm files stay when the relay stops (emptied by the last checkpoint):
	 * a relay started again on a full disk then needs no room to open its store, and serves
	 * its owners while it refuses SENDs (docs/OPERATING.md, "When the disk fills up"). */
	int persist = 1;
	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist) != SQLITE_OK)
		goto fail;
	if ((rc = configure(st->db)) != 0)
		goto fail;
	if ((rc = schema_init(st->db)) != 0)
		goto fail;
	rc = CAIRN_ESTORAGE;
	if (store_sqlite_log_schema(st->db) != 0 || bundle_schema(st->db) != 0)
		goto fail;
	for (int i = 0; i < STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &st->stmt[i], NULL) != SQLITE_OK)
			goto fail;
	}
	if (store_sqlite_log_prepare(st) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_free(st);
	return rc;
}

/* The digest column is NULL for an open mailbox. */
static int bind_digest(sqlite3_stmt *stmt, int col, const struct store_mailbox *m)
{
	if (!m->secured)
		return sqlite3_bind_null(stmt, col) == SQLITE_OK ? 0 : CAIRN_ESTORAGE;
	return bind_blob(stmt, col, m->credential_digest, sizeof(m->credential_digest));
}

/* Applies one op inside the open transaction. */
static int apply_op(struct store_sqlite *st, const struct store_op *op)
{
	sqlite3_stmt *s;
	int rc;
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		s = st->stmt[STMT_MAILBOX_PUT];
		if ((rc = bind_id(s, 1, op->mailbox->id)) != 0 ||
		    (rc = bind_blob(s, 2, op->mailbox->recipient_id,
		                    sizeof(op->mailbox->recipient_id))) != 0 ||
		    (rc = bind_blob(s, 3, op->mailbox->sender_id,
		                    sizeof(op->mailbox->sender_id))) != 0 ||
		    (rc = bind_blob(s, 4, op->mailbox->recipient_key,
		                    sizeof(op->mailbox->recipient_key))) != 0 ||
		    (rc = bind_digest(s, 5, op->mailbox)) != 0)
			return rc;
		if (sqlite3_bind_int64(s, 6, op->mailbox->touched) != SQLITE_OK ||
		    sqlite3_bind_int64(s, 7, op->mailbox->work_bits) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		return step_done(s);
	case STORE_MAILBOX_TOUCH:
		s = st->stmt[STMT_MAILBOX_TOUCH];
		if ((rc = bind_id(s, 1, op->mailbox_id)) != 0)
			return rc;
		if (sqlite3_bind_int64(s, 2, op->stored_at) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		return step_done(s);
	case STORE_MAILBOX_SECURE:
		/* Securing a mailbox that is not stored changes nothing and is not an error,
		 * like deleting an absent envelope: failing would fail the whole batch. */
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		s = st->stmt[STMT_MAILBOX_SECURE];
		if ((rc = bind_id(s, 1, op->mailbox->id)) != 0 ||
		    (rc = bind_digest(s, 2, op->mailbox)) != 0)
			return rc;
		return step_done(s);
	case STORE_MAILBOX_INTAKE:
		/* As SECURE: a mailbox that is not stored changes nothing. */
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		s = st->stmt[STMT_MAILBOX_INTAKE];
		if ((rc = bind_id(s, 1, op->mailbox->id)) != 0)
			return rc;
		if (sqlite3_bind_int64(s, 2, op->mailbox->work_bits) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		return step_done(s);
	case STORE_MAILBOX_DELETE:
		if (op->n_envelope_ids > 0 && op->envelope_ids == NULL)
			return CAIRN_ESTORAGE;
		s = st->stmt[STMT_MAILBOX_ENVELOPE_DELETE];
		for (size_t i = 0; i < op->n_envelope_ids; i++) {
			if ((rc = bind_id(s, 1, op->envelope_ids[i])) != 0 ||
			    (rc = bind_id(s, 2, op->mailbox_id)) != 0 || (rc = step_done(s)) != 0)
				return rc;
		}
		s = st->stmt[STMT_MAILBOX_DELETE];
		if ((rc = bind_id(s, 1, op->mailbox_id)) != 0)
			return rc;
		return step_done(s);
	case STORE_ENVELOPE_PUT:
		s = st->stmt[STMT_ENVELOPE_PUT];
		if ((rc = bind_id(s, 1, op->envelope_id)) != 0 ||
		    (rc = bind_id(s, 2, op->mailbox_id)) != 0 ||
		    sqlite3_bind_int64(s, 3, op->stored_at) != SQLITE_OK ||
		    (rc = bind_blob(s, 4, op->body, op->len)) != 0)
			return rc != 0 ? rc : CAIRN_ESTORAGE;
		rc = step_done(s);
		/* Drop the borrowed body pointer: the caller frees it after done(). */
		sqlite3_clear_bindings(s);
		if (rc != 0 || op->bundle_e == NULL)
			return rc;
		/* A bundled envelope's seen row, in the same transaction (5.12 rule 3). */
		s = st->stmt[STMT_BUNDLE_PUT];
		if (bind_blob(s, 1, op->bundle_e, CAIRN_KEY_LEN) != 0 ||
		    sqlite3_bind_int64(s, 2, op->bundle_until) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		rc = step_done(s);
		sqlite3_clear_bindings(s);
		return rc;
	case STORE_BUNDLE_EXPIRE:
		s = st->stmt[STMT_BUNDLE_EXPIRE];
		if (sqlite3_bind_int64(s, 1, op->stored_at) != SQLITE_OK)
			return CAIRN_ESTORAGE;
		return step_done(s);
	case STORE_ENVELOPE_DELETE:
		s = st->stmt[STMT_ENVELOPE_DELETE];
		if ((rc = bind_id(s, 1, op->envelope_id)) != 0)
			return rc;
		return step_done(s);
	case STORE_LOG_PUT:
	case STORE_LOG_TOUCH:
	case STORE_LOG_DELETE:
	case STORE_LOG_ENTRY_PUT:
		return store_sqlite_log_apply(st, op);
	case STORE_ID_MARK:
		s = st->stmt[STMT_ID_MARK];
		if ((rc = bind_id(s, 1, op->envelope_id)) != 0)
			return rc;
		return step_done(s);
	case STORE_EXPIRE:
		/* "id < bound" as "id <= bound - 1", which also covers a bound past 2^63. */
		if (op->envelope_id == 0)
			return 0;
		s = st->stmt[STMT_EXPIRE];
		uint64_t last = op->envelope_id - 1;
		if (last > (uint64_t)INT64_MAX)
			last = (uint64_t)INT64_MAX;
		if (sqlite3_bind_int64(s, 1, (sqlite3_int64)last) != SQLITE_OK || step_done(s) != 0)
			return CAIRN_ESTORAGE;
		/* Log entries share the id space, so the same bound expires them. */
		return store_sqlite_log_expire(st, (sqlite3_int64)last);
	}
	return CAIRN_ESTORAGE;
}

/*
 * Whether the last failure on DB was for want of space: SQLite's SQLITE_FULL (a write of the
 * database or its WAL found the file system full), or an I/O error whose errno says the same
 * (an fsync, or growing the shared-memory index). Read before anything else runs on DB.
 */
static bool failed_for_space(sqlite3 *db)
{
	int code = sqlite3_extended_errcode(db) & 0xff;
	int err = sqlite3_system_errno(db);
	return code == SQLITE_FULL || (code == SQLITE_IOERR && (err == ENOSPC || err == EDQUOT));
}

/*
 * Applies OPS as one transaction. Returns 0 once it is durable, CAIRN_ECAPACITY when it
 * failed for want of space on the file system (store.h), or CAIRN_ESTORAGE after rolling
 * everything back (a constraint violation such as a duplicate id, or an I/O error).
 */
static int sqlite_commit(void *store, const struct store_op *ops, size_t n)
{
	struct store_sqlite *st = store;
	if (n == 0)
		return 0;
	if (step_done(st->stmt[STMT_BEGIN]) != 0)
		return failed_for_space(st->db) ? CAIRN_ECAPACITY : CAIRN_ESTORAGE;
	for (size_t i = 0; i < n; i++) {
		if (apply_op(st, &ops[i]) != 0)
			goto rollback;
	}
	if (step_done(st->stmt[STMT_COMMIT]) != 0)
		goto rollback;
	return 0;
rollback:;
	bool full = failed_for_space(st->db);
	/* After some errors (I/O, full disk) SQLite has already rolled back; ROLLBACK would
	 * then fail, so only issue it while a transaction is still open. */
	if (!sqlite3_get_autocommit(st->db))
		(void)step_done(st->stmt[STMT_ROLLBACK]);
	return full ? CAIRN_ECAPACITY : CAIRN_ESTORAGE;
}

/*
 * Gives the file system back what the WAL holds: copies it into the database file and
 * truncates it to nothing. On a full disk, after deletes, this is what turns them into free
 * space (the database file keeps its size: its freed pages are reused by later inserts).
 * Returns 0, or CAIRN_ECAPACITY / CAIRN_ESTORAGE when the copy could not finish (the WAL
 * stays whole, and the next call tries again).
 */
static int sqlite_reclaim(void *store)
{
	struct store_sqlite *st = store;
	if (sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) ==
	    SQLITE_OK)
		return 0;
	return failed_for_space(st->db) ? CAIRN_ECAPACITY : CAIRN_ESTORAGE;
}

static int mailbox_row(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx)
{
	struct store_mailbox m;
	memset(&m, 0, sizeof(m));
	sqlite3_int64 id = sqlite3_column_int64(s, 0);
	if (id < 0)
		return CAIRN_ESTORAGE;
	m.id = (uint64_t)id;
	if (column_fixed(s, 1, m.recipient_id, sizeof(m.recipient_id)) != 0 ||
	    column_fixed(s, 2, m.sender_id, sizeof(m.sender_id)) != 0 ||
	    column_fixed(s, 3, m.recipient_key, sizeof(m.recipient_key)) != 0)
		return CAIRN_ESTORAGE;
	if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
		if (column_fixed(s, 4, m.credential_digest, sizeof(m.credential_digest)) != 0)
			return CAIRN_ESTORAGE;
		m.secured = true;
	}
	m.touched = sqlite3_column_int64(s, 5);
	/* A bit count the relay never writes is a damaged row, not an open mailbox. */
	sqlite3_int64 bits = sqlite3_column_int64(s, 6);
	if (bits < 0 || bits > WORK_BITS_MAX)
		return CAIRN_ESTORAGE;
	m.work_bits = (uint8_t)bits;
	if (cb->mailbox != NULL)
		cb->mailbox(ctx, &m);
	return 0;
}

static int envelope_row(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx)
{
	sqlite3_int64 id = sqlite3_column_int64(s, 0);
	sqlite3_int64 mailbox = sqlite3_column_int64(s, 1);
	sqlite3_int64 len = sqlite3_column_int64(s, 2);
	if (id < 0 || mailbox < 0 || len < 0 || len > UINT32_MAX)
		return CAIRN_ESTORAGE;
	struct store_envelope_info info = {
	    .id = (uint64_t)id,
	    .mailbox_id = (uint64_t)mailbox,
	    .len = (uint32_t)len,
	    .stored_at = sqlite3_column_int64(s, 3),
	};
	if (cb->envelope != NULL)
		cb->envelope(ctx, &info);
	return 0;
}

static int bundle_row(sqlite3_stmt *s, const struct store_load_cb *cb, void *ctx)
{
	uint8_t e[CAIRN_KEY_LEN];
	if (column_fixed(s, 0, e, sizeof(e)) != 0)
		return CAIRN_ESTORAGE;
	cb->bundle_seen(ctx, e, sqlite3_column_int64(s, 1));
	return 0;
}

static int load_mailboxes(struct store_sqlite *st, const struct store_load_cb *cb, void *ctx)
{
	return store_sqlite_each_row(
	    st->db,
	    "SELECT id, recipient_id, sender_id, recipient_key, credential_digest, touched,"
	    " work_bits FROM mailboxes ORDER BY touched, id",
	    mailbox_row, cb, ctx);
}

static int load_envelopes(struct store_sqlite *st, const struct store_load_cb *cb, void *ctx)
{
	/* ORDER BY the rowid walks the table in key order: no sort. length() of a blob reads
	 * its size from the record header without loading the body. */
	return store_sqlite_each_row(st->db,
	                             "SELECT id, mailbox, length(body), stored_at FROM envelopes"
	                             " ORDER BY id",
	                             envelope_row, cb, ctx);
}

/* Reports all mailboxes, then all envelopes in increasing id order, then logs and their
 * entries (store_sqlite_log.c), then the id mark. Returns 0 or CAIRN_ESTORAGE (including for
 * a row whose fields have the wrong sizes). */
static int sqlite_load(void *store, const struct store_load_cb *cb, void *ctx)
{
	struct store_sqlite *st = store;
	int rc = load_mailboxes(st, cb, ctx);
	if (rc == 0)
		rc = load_envelopes(st, cb, ctx);
	if (rc == 0)
		rc = store_sqlite_log_load(st, cb, ctx);
	int64_t mark = 0;
	if (rc == 0 && cb->id_mark != NULL &&
	    query_int(st->db,
	              "SELECT coalesce(max(value), 0) FROM meta"
	              " WHERE key = 'envelope_id_mark'",
	              &mark) != 0)
		rc = CAIRN_ESTORAGE;
	if (rc == 0 && cb->id_mark != NULL && mark > 0)
		cb->id_mark(ctx, (uint64_t)mark);
	if (rc == 0 && cb->bundle_seen != NULL)
		rc = store_sqlite_each_row(st->db, "SELECT e, not_after FROM bundle_seen",
		                           bundle_row, cb, ctx);
	return rc;
}

/* Copies envelope ID's body into OUT. Returns 0, CAIRN_EDENIED if absent, CAIRN_ENOBUFS if
 * it does not fit in CAP, or CAIRN_ESTORAGE. Ids are unique: the mailbox is not needed. */
static int sqlite_read_envelope(void *store, uint64_t mailbox, uint64_t id, uint8_t *out,
                                size_t cap, size_t *len)
{
	(void)mailbox;
	struct store_sqlite *st = store;
	return store_sqlite_read_body(st->stmt[STMT_READ], id, out, cap, len);
}

/*
 * The engine's read_envelopes (store.h). One read transaction around the batch (one
 * WAL snapshot and read lock instead of one per envelope, as store_sqlite_read_log_entries),
 * one persistent statement stepped per id: ids increase, so each lookup walks the pages the
 * last one left in the cache. Between commits on the storage thread, like the log's.
 */
static int sqlite_read_envelopes(void *store, uint64_t mailbox, const uint64_t *ids, size_t n,
                                 uint8_t *out, size_t cap, size_t *lens)
{
	struct store_sqlite *st = store;
	if (n > 0 && (ids == NULL || lens == NULL || out == NULL))
		return CAIRN_EINVAL;
	if (n == 0)
		return 0;
	sqlite3_stmt *s = st->stmt[STMT_READ_OF_MAILBOX];
	int rc = bind_id(s, 2, mailbox);
	if (rc == 0)
		rc = step_done(st->log_stmt[LOG_STMT_READ_BEGIN]);
	size_t sum = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t len = 0;
		rc = store_sqlite_read_body(s, ids[i], out + sum, cap - sum, &len);
		if (rc == CAIRN_EDENIED) {
			lens[i] = STORE_ABSENT;
			rc = 0;
			continue;
		}
		lens[i] = len;
		sum += len;
	}
	/* COMMIT of a read transaction writes nothing; it ends it whatever a read returned. */
	if (sqlite3_get_autocommit(st->db) == 0) {
		int end = step_done(st->log_stmt[LOG_STMT_READ_END]);
		if (rc == 0)
			rc = end;
	}
	return rc;
}

/* The same for log entry ID. */
static int sqlite_read_log_entry(void *store, uint64_t id, uint8_t *out, size_t cap, size_t *len)
{
	struct store_sqlite *st = store;
	return store_sqlite_read_body(st->log_stmt[LOG_STMT_READ], id, out, cap, len);
}

/* The free pages' bytes (SQLite reads the count from the database header). */
static uint64_t sqlite_free_bytes(void *store)
{
	struct store_sqlite *st = store;
	int64_t pages = 0, size = 0;
	if (query_int(st->db, "PRAGMA freelist_count", &pages) != 0 ||
	    query_int(st->db, "PRAGMA page_size", &size) != 0 || pages < 0 || size < 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0 || sb.st_size < 0)
		return 0;
	return (uint64_t)sb.st_size;
}

/* The database file plus its WAL and shared-memory index, as the filesystem sees them. */
static uint64_t sqlite_disk_bytes(void *store)
{
	struct store_sqlite *st = store;
	uint64_t total = file_size(st->path);
	strcpy(st->path + st->path_len, "-wal");
	total += file_size(st->path);
	strcpy(st->path + st->path_len, "-shm");
	total += file_size(st->path);
	st->path[st->path_len] = '\0';
	return total;
}

uint64_t store_sqlite_vm_steps(void *store)
{
	struct store_sqlite *st = store;
	uint64_t steps = 0;
	for (int i = 0; i < STMT_COUNT; i++)
		steps += (uint64_t)sqlite3_stmt_status(st->stmt[i], SQLITE_STMTSTATUS_VM_STEP, 0);
	for (int i = 0; i < LOG_STMT_COUNT; i++)
		steps +=
		    (uint64_t)sqlite3_stmt_status(st->log_stmt[i], SQLITE_STMTSTATUS_VM_STEP, 0);
	return steps;
}

static void sqlite_close(void *store)
{
	store_free(store);
}

const struct store_engine store_sqlite = {
    .name = "sqlite",
    .open = sqlite_open,
    .commit = sqlite_commit,
    .load = sqlite_load,
    .read_envelope = sqlite_read_envelope,
    .read_log_entry = sqlite_read_log_entry,
    .read_log_entries = store_sqlite_read_log_entries,
    .disk_bytes = sqlite_disk_bytes,
    .reclaim = sqlite_reclaim,
    .free_bytes = sqlite_free_bytes,
    .close = sqlite_close,
    .read_envelopes = sqlite_read_envelopes,
};
