/* SPDX-License-Identifier: MIT */
/*
 * The client's local state (state.h): one SQLite file of sealed records. Nothing that reaches
 * SQLite is plaintext: values are sealed before they are bound and lookup keys are hashed
 * under a key of their own, so the file, its WAL and SQLite's page cache only ever hold
 * ciphertext, keyed hashes, kinds and sequence numbers.
 *
 * Design
 *
 * Files. DIR/cairn.db and, while a connection is open, cairn.db-wal and cairn.db-shm. DIR is
 * created 0700 if missing (its last component only). A new store is built complete, in one
 * transaction, in a mkstemp file (mode 0600, O_EXCL) next to it and then link()ed to
 * cairn.db: link fails if a store is already there, so two creates cannot overwrite each
 * other, and a crash during create leaves no half-made store (at worst a stray temporary
 * file). A -wal or -shm left beside a deleted store is removed first, or SQLite would replay
 * the old store's pages into the new one. SQLite gives the -wal and -shm files the mode of
 * the database file, so all are 0600.
 *
 * Pragmas. journal_mode=WAL with synchronous=FULL: a commit that returned has been fsynced
 * (one fsync of the log per commit, which matters because every delivery is stored before it
 * is acknowledged). secure_delete=ON: deleted cells and freed pages are zeroed in the file.
 * journal_size_limit=0: the WAL is cut back to nothing whenever it restarts after a
 * checkpoint, so old page images do not linger in its tail. temp_store=MEMORY: a savepoint's
 * sub-journal (the page images it would roll back to) stays in memory instead of spilling to
 * a file in the system's temporary directory, outside the home. What may linger anyway, until
 * a checkpoint or in the filesystem's or flash's own copies, is only ciphertext.
 * busy_timeout is 5 s: another process holding the store waits, then fails with CAIRN_EIO.
 *
 * Keys. A random 32-byte master key M never changes. The single keyslot row holds the
 * Argon2id (crypto_pwhash ALG_ARGON2ID13) salt, opslimit and memlimit, and the key slots
 * (state_slots.c, changed by state_keys.c): slot 0 seals M with XChaCha20-Poly1305 under the key
 * derived from the passphrase, slot 1 the duress marker under the duress passphrase's key or random
 * bytes; every store has both, the same size. Limits are MODERATE, or INTERACTIVE when the creator
 * asks (cstate_create); a new passphrase keeps them and the salt; open uses the stored limits,
 * bounded to [MIN, SENSITIVE] so a tampered slot cannot make open run forever. Open runs
 * Argon2id once and tries every slot. A passphrase that opens no slot fails before anything is
 * written: CAIRN_EPASSPHRASE, nothing changed. The duress passphrase wipes the home
 * (cstate_wipe, wipe.c) and opens a new, empty store in its place (duress_replace).
 * cstate_rekey re-seals M in slot 0 in one UPDATE. From M, crypto_kdf_derive_from_key with
 * context "cairnst1" derives subkey 1, the record key, subkey 2, the lookup key, and subkey 3,
 * the scope key. Keys live in sodium_malloc memory. The keyslot table is the first the schema
 * creates, so its row lives in page 2 of the file, which is what cstate_wipe overwrites.
 *
 * Records. records(kind, lookup, seq, value) with PRIMARY KEY (kind, lookup) and a unique
 * index on (kind, seq) for listing in order. lookup = BLAKE2b-256 keyed with the lookup key
 * over kind (4 bytes, big-endian) || key. value = nonce (24) || XChaCha20-Poly1305(record
 * key, plaintext, ad = kind (4, BE) || lookup (32) || seq (8, BE)). The associated data pins
 * a sealed value to its place: copied to another key or kind, or with its sequence number
 * swapped for another's, it fails to open (CAIRN_ECORRUPT). What sealing cannot detect is a
 * record deleted, or the file or a record rolled back to an older copy of itself; that needs
 * an anchor off the device.
 *
 * Scopes (schema 2). A record may belong to a scope (one conversation's messages): the scope
 * column holds BLAKE2b-256 keyed with the scope key over kind (4, BE) || scope, NULL for a
 * record with none, and a partial index on (kind, scope, seq) lists one scope's records in
 * order without reading any other's. A scoped record's associated data also carries that hash
 * (ad = kind || lookup || seq || scope hash), so moving a record to another scope on disk makes
 * it fail to open. A schema 1 store is upgraded on open, in one transaction (schema_upgrade):
 * its records get no scope and open as before.
 *
 * Sequence numbers are per kind: max(seq) + 1 at insertion, kept on replace. Deleting the
 * newest record frees its number for the next insertion, which is harmless: order is only
 * ever among live records.
 *
 * Transactions. A depth counter: depth 0 -> 1 runs BEGIN IMMEDIATE (the write lock up front,
 * so a transaction never fails half-way for a lock), the commit that brings it back to 0
 * runs COMMIT, the rollback at depth 1 ROLLBACK. Every deeper level is a savepoint (all
 * named "cst": SQLite's ROLLBACK TO and RELEASE take the most recent of a name, and our
 * levels end in the order they began): its commit releases it into the enclosing level, its
 * rollback undoes only what was done since its begin. So a part that fails (a group-level
 * refusal inside an envelope's transaction) can be undone while the rest commits. A rollback
 * that cannot undo only its own level (SQLite aborted the whole transaction by itself after
 * a full disk, or the savepoint would not roll back) undoes it all and resets the counter; a
 * later cstate_commit from an outer level then returns CAIRN_ESTATE instead of pretending.
 * A cstate_put reads the sequence number then writes, so outside a transaction it runs in
 * one of its own; inside a caller's it opens no savepoint (a savepoint costs a sub-journal,
 * and SQLite undoes a failed statement by itself), and a failed put leaves that transaction
 * open.
 *
 * On disk, then: how many records of each kind, their sizes (plaintext + 40 bytes), their
 * order, and when the file changed. Never a key, a value, or the master key.
 *
 * A struct cstate is used by one thread at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "state_int.h"

/* Bump when the schema changes; anything else is refused as not a store of ours. */
#define CSTATE_SCHEMA 2

/* FULL: a commit that returned has been fsynced (see above). Only the power-cut test's
 * deliberately weakened command (cairn-weaksync, built by tests/CMakeLists.txt and never
 * installed) has NORMAL, to show that the test catches a client that is not durable. */
#ifndef CAIRN_TEST_WEAK_SYNC
#define CSTATE_SYNCHRONOUS "PRAGMA synchronous = FULL"
#else
#define CSTATE_SYNCHRONOUS "PRAGMA synchronous = NORMAL"
#endif

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT cst",
    [STMT_RELEASE] = "RELEASE cst",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO cst",
    [STMT_FIND] = "SELECT seq FROM records WHERE kind = ?1 AND lookup = ?2",
    /* max() over the (kind, seq) index is one seek to its right edge. */
    [STMT_NEXT_SEQ] = "SELECT coalesce(max(seq), 0) + 1 FROM records WHERE kind = ?1",
    [STMT_INSERT] = ("INSERT INTO records (kind, lookup, value, seq, scope)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)"),
    [STMT_UPDATE] = "UPDATE records SET value = ?3, scope = ?5 WHERE kind = ?1 AND lookup = ?2",
    [STMT_GET] = "SELECT seq, value, scope FROM records WHERE kind = ?1 AND lookup = ?2",
    [STMT_DELETE] = "DELETE FROM records WHERE kind = ?1 AND lookup = ?2",
};

/* Lists one scope's records in order without touching any other's; records with no scope
 * (most kinds) stay out of it. */
#define SCOPE_INDEX_SQL                                                                            \
	"CREATE INDEX records_scope ON records (kind, scope, seq) WHERE scope IS NOT NULL;"

/* The value column comes last so that reading seq never touches a large value's overflow
 * pages (in a store upgraded from schema 1 scope comes after it: ALTER TABLE appends). The CHECK
 * keeps the keyslot a single row. */
static const char schema_sql[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE keyslot ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " alg INTEGER NOT NULL,"
    " opslimit INTEGER NOT NULL,"
    " memlimit INTEGER NOT NULL,"
    " salt BLOB NOT NULL,"
    " sealed BLOB NOT NULL);"
    "CREATE TABLE records ("
    " kind INTEGER NOT NULL,"
    " lookup BLOB NOT NULL,"
    " seq INTEGER NOT NULL,"
    " scope BLOB,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY (kind, lookup));"
    "CREATE UNIQUE INDEX records_order ON records (kind, seq);" SCOPE_INDEX_SQL
    "PRAGMA user_version = 2;";
_Static_assert(CSTATE_SCHEMA == 2, "update schema_sql and schema_upgrade");

/* Runs SQL that returns no rows we need. */
static int exec_sql(sqlite3 *db, const char *sql)
{
	int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return src == SQLITE_OK ? 0 : cst_db_error_on(db, src);
}

/* Runs a one-row, one-column query (a PRAGMA) and returns its integer. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	int rc = src == SQLITE_ROW ? 0 : cst_db_error(src);
	if (rc == 0)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc;
}

/* Returns DIR/NAME in owned memory, or NULL. */
static char *path_join(const char *dir, const char *name)
{
	size_t cap = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(cap);
	if (p != NULL)
		snprintf(p, cap, "%s/%s", dir, name);
	return p;
}

/* Removes the files SQLite may keep beside database PATH (not PATH itself); absent is fine. */
static void unlink_companions(const char *path)
{
	static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
	size_t cap = strlen(path) + sizeof("-journal");
	char *p = malloc(cap);
	if (p == NULL)
		return;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, cap, "%s%s", path, suffixes[i]);
		unlink(p);
	}
	free(p);
}

/*
 * Checks that DB is a store of a schema this client knows and reads its keyslot into KS.
 * Returns 0, CAIRN_ECORRUPT (not a store of ours, or a malformed slot), or CAIRN_EIO.
 */
static int keyslot_load(sqlite3 *db, struct keyslot *ks)
{
	int64_t version;
	int rc = query_int(db, "PRAGMA user_version", &version);
	if (rc != 0)
		return rc;
	/* An older schema is upgraded once the passphrase is known good (db_ready). */
	if (version < 1 || version > CSTATE_SCHEMA)
		return CAIRN_ECORRUPT;
	return cst_keyslot_read(db, ks);
}

/* Derives the record and lookup keys from the master key. */
static void keys_derive(struct cstate_keys *k)
{
	crypto_kdf_derive_from_key(k->record, sizeof(k->record), CSTATE_KDF_RECORD,
	                           CSTATE_KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->lookup, sizeof(k->lookup), CSTATE_KDF_LOOKUP,
	                           CSTATE_KDF_CONTEXT, k->master);
	crypto_kdf_derive_from_key(k->scope, sizeof(k->scope), CSTATE_KDF_SCOPE, CSTATE_KDF_CONTEXT,
	                           k->master);
}

/*
 * Brings a schema 1 store (before scopes) to schema 2: the scope column, NULL in every record
 * already there, and its index. One transaction, the version checked again inside it, so two
 * processes opening the same old store at once upgrade it once. Records are not touched: one
 * with no scope seals exactly as before.
 */
static int schema_upgrade(sqlite3 *db)
{
	int64_t version = 0;
	int rc = exec_sql(db, "BEGIN IMMEDIATE");
	if (rc != 0)
		return rc;
	rc = query_int(db, "PRAGMA user_version", &version);
	if (rc == 0 && version == 1)
		rc = exec_sql(db, "ALTER TABLE records ADD COLUMN scope BLOB;" SCOPE_INDEX_SQL
		                  "PRAGMA user_version = 2;");
	if (rc == 0)
		rc = exec_sql(db, "COMMIT");
	if (rc != 0)
		(void)exec_sql(db, "ROLLBACK");
	return rc;
}

/*
 * Opens a SQLite connection to the existing file PATH, never following a symlink and never
 * creating the file. Returns 0 or CAIRN_EIO.
 */
static int db_connect(const char *path, sqlite3 **out)
{
	/* NOMUTEX: one thread at a time uses a store, so SQLite's per-call locking is cost. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	sqlite3 *db = NULL;
	*out = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK ||
	    sqlite3_extended_result_codes(db, 1) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, CSTATE_BUSY_MS) != SQLITE_OK) {
		sqlite3_close(db);
		return CAIRN_EIO;
	}
	*out = db;
	return 0;
}

/*
 * Applies the connection settings (see the design notes) and prepares the statements. Runs
 * only once the passphrase is known good: journal_mode=WAL writes to a store not yet in WAL.
 */
static int db_ready(struct cstate *st)
{
	int64_t on = 0;
	int rc;
	/* Fail closed if this SQLite cannot zero deleted content. */
	if ((rc = query_int(st->db, "PRAGMA secure_delete = ON", &on)) != 0)
		return rc;
	if (on != 1)
		return CAIRN_EIO;
	/* A no-op once the store is in WAL mode, which the first open after create sets. */
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(s);
	const unsigned char *mode = src == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
	rc = mode != NULL && sqlite3_stricmp((const char *)mode, "wal") == 0 ? 0 : CAIRN_EIO;
	sqlite3_finalize(s);
	if (rc != 0)
		return rc;
	if ((rc = exec_sql(st->db, CSTATE_SYNCHRONOUS)) != 0 ||
	    (rc = exec_sql(st->db, "PRAGMA journal_size_limit = 0")) != 0 ||
	    (rc = exec_sql(st->db, "PRAGMA temp_store = MEMORY")) != 0)
		return rc;
	int64_t version = 0;
	if ((rc = query_int(st->db, "PRAGMA user_version", &version)) != 0 ||
	    (version < CSTATE_SCHEMA && (rc = schema_upgrade(st->db)) != 0))
		return rc;
	for (int i = 0; i < STMT_COUNT; i++) {
		src = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                         &st->stmt[i], NULL);
		if (src != SQLITE_OK)
			return (src & 0xff) == SQLITE_ERROR ? CAIRN_ECORRUPT : cst_db_error(src);
	}
	return 0;
}

/* A new, empty handle with its key memory, or NULL. */
static struct cstate *cstate_alloc(void)
{
	struct cstate *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->keys = sodium_malloc(sizeof(*st->keys));
	if (st->keys == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

/*
 * Writes a complete new store, sealed by KS, into the empty file TMP. Journal mode is left
 * at DELETE here, so that once the commit returns everything is in TMP itself and no WAL has
 * to follow it when it is linked into place.
 */
static int build_store(const char *tmp, const struct keyslot *ks)
{
	sqlite3 *db;
	int rc = db_connect(tmp, &db);
	if (rc != 0)
		return rc;
	if ((rc = exec_sql(db, CSTATE_SYNCHRONOUS)) != 0 || (rc = exec_sql(db, schema_sql)) != 0 ||
	    (rc =
	         cst_keyslot_write(db, ks,
	                           "INSERT INTO keyslot (id, alg, opslimit, memlimit, salt, sealed)"
	                           " VALUES (1, ?1, ?2, ?3, ?4, ?5)")) != 0 ||
	    (rc = exec_sql(db, "COMMIT")) != 0) {
		if (!sqlite3_get_autocommit(db))
			(void)exec_sql(db, "ROLLBACK");
	}
	if (sqlite3_close(db) != SQLITE_OK && rc == 0)
		rc = CAIRN_EIO;
	return rc;
}

/* Makes a new directory entry in DIR durable. Best effort: some filesystems refuse fsync on
 * a directory, and the store is complete either way. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

/* sync_dir of DIR's parent (the current directory for a bare name). */
static void sync_parent(const char *dir)
{
	char *copy = strdup(dir);
	if (copy == NULL)
		return;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *slash = strrchr(copy, '/');
	if (slash == NULL)
		sync_dir(".");
	else {
		slash[slash == copy ? 1 : 0] = '\0'; /* "/home" -> "/" */
		sync_dir(copy);
	}
	free(copy);
}

/*
 * Makes the new store of ST (its keys and limits set) in DIR, sealed by KS, and connects ST to
 * it. Returns 0, CAIRN_EEXIST (DIR holds a store), CAIRN_ENOMEM or CAIRN_EIO.
 */
static int store_create(const char *dir, struct cstate *st, const struct keyslot *ks)
{
	struct stat sb;
	char *path = NULL, *tmp = NULL;
	int fd = -1;
	int rc = CAIRN_EIO;

	if (mkdir(dir, 0700) == 0)
		sync_parent(dir); /* a power cut must not take the new home back */
	else if (errno != EEXIST || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		goto out;
	rc = CAIRN_ENOMEM;
	path = path_join(dir, CSTATE_FILE);
	tmp = path_join(dir, CSTATE_FILE ".XXXXXX");
	if (path == NULL || tmp == NULL)
		goto out;
	rc = CAIRN_EIO;
	if ((fd = mkstemp(tmp)) < 0) { /* mode 0600, O_EXCL */
		tmp[0] = '\0';         /* nothing to remove */
		goto out;
	}
	close(fd);
	if ((rc = build_store(tmp, ks)) != 0)
		goto out;
	/* A WAL left by an earlier store whose database was deleted would be replayed into
	 * this one. No store is here (checked by the caller), so nothing beside it is live. */
	unlink_companions(path);
	if (link(tmp, path) != 0) {
		rc = errno == EEXIST ? CAIRN_EEXIST : CAIRN_EIO;
		goto out;
	}
	sync_dir(dir);
	if ((rc = db_connect(path, &st->db)) == 0)
		rc = db_ready(st);
out:
	/* Once linked, this only removes the temporary name. */
	if (tmp != NULL && tmp[0] != '\0') {
		unlink(tmp);
		unlink_companions(tmp);
	}
	free(tmp);
	free(path);
	return rc;
}

/* ST's limits as KDF names them. */
static void kdf_limits(struct cstate *st, enum cstate_kdf kdf)
{
	if (kdf == CSTATE_KDF_INTERACTIVE) {
		st->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
		st->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	} else {
		st->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
		st->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
	}
}

int cstate_create(const char *dir, const char *passphrase, enum cstate_kdf kdf, struct cstate **out)
{
	if (out != NULL)
		*out = NULL;
	if (dir == NULL || dir[0] == '\0' || passphrase == NULL || passphrase[0] == '\0' ||
	    out == NULL || (kdf != CSTATE_KDF_MODERATE && kdf != CSTATE_KDF_INTERACTIVE))
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_EIO;

	struct cstate *st = NULL;
	struct keyslot ks;
	struct stat sb;
	uint8_t kpass[CSTATE_KEYLEN];
	int rc = CAIRN_ENOMEM;
	char *path = path_join(dir, CSTATE_FILE);
	if (path == NULL)
		goto out;
	/* Checked early to spare the Argon2id run; link() in store_create is the check that
	 * counts. */
	if (lstat(path, &sb) == 0) {
		rc = CAIRN_EEXIST;
		goto out;
	}
	if (errno != ENOENT) {
		rc = CAIRN_EIO;
		goto out;
	}
	if ((st = cstate_alloc()) == NULL)
		goto out;
	randombytes_buf(st->keys->master, sizeof(st->keys->master));
	keys_derive(st->keys);
	kdf_limits(st, kdf);
	cst_slots_fresh(&ks, st->opslimit, st->memlimit);
	if ((rc = cst_slots_derive(&ks, passphrase, kpass)) != 0)
		goto out;
	cst_slot_seal(&ks, CSTATE_SLOT_REAL, kpass, st->keys->master);
	if ((rc = store_create(dir, st, &ks)) != 0)
		goto out;
	*out = st;
	st = NULL;
out:
	sodium_memzero(kpass, sizeof(kpass));
	cstate_close(st);
	free(path);
	return rc;
}

/*
 * The duress passphrase opened ST's store in DIR (ST still connected to it, KS its row, KPASS
 * the passphrase's key): wipes the home as cstate_wipe does, then makes in its place a new,
 * empty store with a new master key, sealed in slot 0 under KPASS with the same salt and limits
 * (so no second Argon2id: the open takes about as long as any other), and connects ST to it.
 */
static int duress_replace(const char *dir, struct cstate *st, const struct keyslot *ks,
                          const uint8_t kpass[static CSTATE_KEYLEN])
{
	struct keyslot fresh = *ks;
	sqlite3_close(st->db);
	st->db = NULL;
	int rc = cstate_wipe(dir);
	if (rc != 0)
		return rc;
	randombytes_buf(st->keys->master, sizeof(st->keys->master));
	keys_derive(st->keys);
	fresh.legacy = false;
	for (int i = 0; i < CSTATE_NSLOTS; i++)
		cst_slot_clear(&fresh, i);
	cst_slot_seal(&fresh, CSTATE_SLOT_REAL, kpass, st->keys->master);
	rc = store_create(dir, st, &fresh);
	sodium_memzero(&fresh, sizeof(fresh));
	st->fresh = rc == 0;
	return rc;
}

/* Rewrites a one-slot keyslot row (an older client's) with every slot, in one transaction,
 * read again inside it: another process may have upgraded it first. */
static int slots_upgrade(struct cstate *st)
{
	struct keyslot ks;
	bool own;
	int rc = cst_op_begin(st, &own);
	if (rc != 0)
		return rc;
	if ((rc = cst_keyslot_read(st->db, &ks)) == 0 && ks.legacy)
		rc = cst_keyslot_update(st->db, &ks);
	return cst_op_end(st, own, rc);
}

int cstate_open(const char *dir, const char *passphrase, struct cstate **out)
{
	if (out != NULL)
		*out = NULL;
	if (dir == NULL || dir[0] == '\0' || passphrase == NULL || out == NULL)
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_EIO;

	struct cstate *st = NULL;
	struct keyslot ks;
	struct stat sb;
	uint8_t kpass[CSTATE_KEYLEN];
	int which = CSTATE_SLOT_REAL;
	int rc = CAIRN_ENOMEM;
	char *path = path_join(dir, CSTATE_FILE);
	sodium_memzero(kpass, sizeof(kpass));
	if (path == NULL)
		goto out;
	if (lstat(path, &sb) != 0) {
		rc = errno == ENOENT || errno == ENOTDIR ? CAIRN_ENOTFOUND : CAIRN_EIO;
		goto out;
	}
	rc = CAIRN_EIO;
	if (!S_ISREG(sb.st_mode))
		goto out;
	rc = CAIRN_ENOMEM;
	if ((st = cstate_alloc()) == NULL)
		goto out;
	/* Only reads until a slot has opened, so a wrong passphrase changes nothing. One
	 * Argon2id, then every slot tried with its key. */
	if ((rc = db_connect(path, &st->db)) != 0 || (rc = keyslot_load(st->db, &ks)) != 0 ||
	    (rc = cst_slots_derive(&ks, passphrase, kpass)) != 0 ||
	    (rc = cst_slots_try(&ks, kpass, st->keys->master, &which)) != 0)
		goto out;
	st->opslimit = ks.opslimit;
	st->memlimit = ks.memlimit;
	if (which == CSTATE_SLOT_DURESS) {
		if ((rc = duress_replace(dir, st, &ks, kpass)) == 0) {
			*out = st;
			st = NULL;
		}
		goto out;
	}
	keys_derive(st->keys);
	if ((rc = db_ready(st)) != 0 || (ks.legacy && (rc = slots_upgrade(st)) != 0))
		goto out;
	*out = st;
	st = NULL;
out:
	/* Opening a store in WAL mode makes its -wal and -shm files: a full disk says so. */
	if (rc == CAIRN_EIO && st != NULL)
		rc = cst_db_error_on(st->db, SQLITE_IOERR);
	sodium_memzero(kpass, sizeof(kpass));
	cstate_close(st);
	free(path);
	return rc;
}

int cstate_checkpoint(struct cstate *st)
{
	if (st == NULL || st->depth > 0)
		return CAIRN_ESTATE;
	int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return rc == SQLITE_OK ? 0 : CAIRN_EIO;
}

void cstate_close(struct cstate *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	/* An open transaction is rolled back. The last connection to close checkpoints the
	 * WAL and removes it. */
	sqlite3_close(st->db);
	sodium_free(st->keys);
	free(st);
}

int cstate_begin(struct cstate *st)
{
	if (st == NULL)
		return CAIRN_EINVAL;
	if (st->depth > 0) {
		/* SQLite rolls a transaction back by itself after some errors (a full disk);
		 * the caller was told then, and nothing is left to nest in. */
		if (sqlite3_get_autocommit(st->db)) {
			st->depth = 0;
			return CAIRN_EIO;
		}
		int rc = cst_step_done(st->stmt[STMT_SAVEPOINT]);
		if (rc == 0)
			st->depth++;
		return rc;
	}
	/* A store wiped under us (cstate_wipe from another process) takes no more writes: in WAL
	 * mode SQLite would go on writing to the unlinked files, and a `cairn listen` would
	 * acknowledge envelopes it stored nowhere. */
	int moved = 0;
	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
	    moved)
		return CAIRN_EIO;
	int rc = cst_step_done(st->stmt[STMT_BEGIN]);
	if (rc == 0)
		st->depth = 1;
	return rc;
}

int cstate_commit(struct cstate *st)
{
	if (st == NULL)
		return CAIRN_EINVAL;
	if (st->depth == 0)
		return CAIRN_ESTATE;
	if (sqlite3_get_autocommit(st->db)) {
		st->depth = 0;
		return CAIRN_EIO;
	}
	int rc = cst_step_done(st->stmt[st->depth > 1 ? STMT_RELEASE : STMT_COMMIT]);
	if (rc != 0) {
		/* A level either lands whole or not at all: never leave it half-open. */
		cstate_rollback(st);
		return rc;
	}
	st->depth--;
	return 0;
}

void cstate_rollback(struct cstate *st)
{
	if (st == NULL || st->depth == 0)
		return;
	if (sqlite3_get_autocommit(st->db)) {
		st->depth = 0; /* SQLite already undid the whole transaction */
		return;
	}
	if (st->depth > 1) {
		/* ROLLBACK TO keeps the savepoint open; RELEASE then ends it, undone. */
		if (cst_step_done(st->stmt[STMT_ROLLBACK_TO]) == 0 &&
		    cst_step_done(st->stmt[STMT_RELEASE]) == 0) {
			st->depth--;
			return;
		}
		/* Could not undo only this level: undo everything, and the outer commit says so. */
	}
	(void)cst_step_done(st->stmt[STMT_ROLLBACK]);
	st->depth = 0;
}

/*
 * The transaction of one store operation whose only write is its last statement: one of its
 * own in autocommit mode (*OWN set), else none (see the design notes on cstate_put).
 */
int cst_op_begin(struct cstate *st, bool *own)
{
	*own = st->depth == 0;
	return *own ? cstate_begin(st) : 0;
}

/* Ends what cst_op_begin began: commits a transaction of its own on success, else rolls it
 * back. Returns RC or the commit's error. */
int cst_op_end(struct cstate *st, bool own, int rc)
{
	if (!own)
		return rc;
	if (rc == 0)
		return cstate_commit(st);
	cstate_rollback(st);
	return rc;
}

bool cstate_fresh(const struct cstate *st)
{
	return st != NULL && st->fresh;
}

int cstate_set_durable(struct cstate *st, int full)
{
	if (st == NULL || st->depth != 0)
		return CAIRN_ESTATE;
	return exec_sql(st->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}
