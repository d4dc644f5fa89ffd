/* SPDX-License-Identifier: MIT */
/*
 * Inside the client's sealed store (state.h), shared by its two halves: state.c (the file, the
 * keys, opening, schema upgrades, transactions) and state_rec.c (sealing, looking up and listing
 * records). Not for use outside them.
 */
#ifndef CAIRN_CLIENT_STATE_INT_H
#define CAIRN_CLIENT_STATE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>
#include <sqlite3.h>

#include "state.h"

#define CSTATE_KEYLEN    32
#define CSTATE_LOOKUPLEN 32
#define CSTATE_NONCELEN  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define CSTATE_TAGLEN    crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CSTATE_OVERHEAD  (CSTATE_NONCELEN + CSTATE_TAGLEN)
#define CSTATE_ADLEN     (4 + CSTATE_LOOKUPLEN + 8)
#define CSTATE_ADLEN_MAX (CSTATE_ADLEN + CSTATE_LOOKUPLEN) /* with a scope */
#define CSTATE_SLOTLEN   (CSTATE_NONCELEN + CSTATE_KEYLEN + CSTATE_TAGLEN)
#define CSTATE_BUSY_MS   5000

/* Key slots (state_slots.c): every store has CSTATE_NSLOTS of them, used or not. */
#define CSTATE_NSLOTS      2
#define CSTATE_SLOT_REAL   0 /* seals the master key */
#define CSTATE_SLOT_DURESS 1 /* seals the duress marker, or random bytes */

#define CSTATE_KDF_CONTEXT "cairnst1"
#define CSTATE_KDF_RECORD  1
#define CSTATE_KDF_LOOKUP  2
#define CSTATE_KDF_SCOPE   3

_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == CSTATE_KEYLEN, "record key");
_Static_assert(crypto_kdf_KEYBYTES == CSTATE_KEYLEN, "master key");
_Static_assert(sizeof(CSTATE_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context");
_Static_assert(crypto_generichash_KEYBYTES_MIN <= CSTATE_KEYLEN &&
                   CSTATE_KEYLEN <= crypto_generichash_KEYBYTES_MAX,
               "lookup key");
_Static_assert(CSTATE_VALUE_MAX + CSTATE_OVERHEAD < INT32_MAX, "sealed values fit an int");

/* Statements kept prepared for the life of a handle (their SQL is in state.c). */
enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_FIND,
	STMT_NEXT_SEQ,
	STMT_INSERT,
	STMT_UPDATE,
	STMT_GET,
	STMT_DELETE,
	STMT_COUNT
};

struct cstate_keys {
	uint8_t master[CSTATE_KEYLEN];
	uint8_t record[CSTATE_KEYLEN];
	uint8_t lookup[CSTATE_KEYLEN];
	uint8_t scope[CSTATE_KEYLEN];
};

struct cstate {
	sqlite3 *db;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct cstate_keys *keys; /* sodium_malloc: guarded, and wiped by sodium_free */
	int depth;                /* transaction nesting (1 + savepoints); 0 = autocommit */
	/* The keyslot's Argon2id limits, which a new passphrase keeps (cstate_rekey). */
	unsigned long long opslimit;
	size_t memlimit;
	/* Opened with the duress passphrase: the home was wiped and this is a new, empty store
	 * (cstate_fresh) whose caller must give it what a new home has. */
	bool fresh;
};

/* The keyslot row. Nothing in it is secret: each slot is sealed, or random. */
struct keyslot {
	unsigned long long opslimit;
	size_t memlimit;
	uint8_t salt[crypto_pwhash_SALTBYTES];
	uint8_t sealed[CSTATE_NSLOTS][CSTATE_SLOTLEN];
	bool legacy; /* read from a one-slot row (an older client's store) */
};

/* Maps a failed SQLite call to our codes: a damaged file is not an I/O error. */
int cst_db_error(int src);
/* The same with DB's errno: CAIRN_ENOSPC for an I/O error that was a full disk. */
int cst_db_error_on(sqlite3 *db, int src);

/* Ends a use of a kept statement: reset and unbound. */
void cst_stmt_release(sqlite3_stmt *s);

/* Steps a statement that returns no rows, then releases it. */
int cst_step_done(sqlite3_stmt *s);

/* The transaction of one store operation whose only write is its last statement: begun
 * only in autocommit mode (*OWN says so), since inside a caller's transaction SQLite undoes
 * a failed statement by itself. cst_op_end commits (RC 0) or rolls back what was begun and
 * returns RC or the commit's error. */
int cst_op_begin(struct cstate *st, bool *own);
int cst_op_end(struct cstate *st, bool own, int rc);

/* ---- key slots (state_slots.c; state_keys.c changes them) ---- */

/* KPASS = Argon2id(PASSPHRASE, KS's salt and limits). Returns 0 or CAIRN_ENOMEM. */
int cst_slots_derive(const struct keyslot *ks, const char *passphrase,
                     uint8_t kpass[static CSTATE_KEYLEN]);
/* KS with limits OPS and MEM, a fresh salt, and every slot random (unused). */
void cst_slots_fresh(struct keyslot *ks, unsigned long long ops, size_t mem);
/* Seals PLAIN (CSTATE_KEYLEN bytes: M; NULL: the duress marker) into SLOT under KPASS. */
void cst_slot_seal(struct keyslot *ks, int slot, const uint8_t kpass[static CSTATE_KEYLEN],
                   const uint8_t *plain);
/* Fills SLOT with random bytes. */
void cst_slot_clear(struct keyslot *ks, int slot);
/* Tries every slot of KS with KPASS. Returns 0 with *WHICH the slot that opened (MASTER
 * filled for CSTATE_SLOT_REAL, zeroed otherwise), or CAIRN_EPASSPHRASE. */
int cst_slots_try(const struct keyslot *ks, const uint8_t kpass[static CSTATE_KEYLEN],
                  uint8_t master[static CSTATE_KEYLEN], int *which);
/* Reads the row into KS, checking everything read. Returns 0, CAIRN_ECORRUPT or CAIRN_EIO. */
int cst_keyslot_read(sqlite3 *db, struct keyslot *ks);
/* Writes KS with SQL, an INSERT or UPDATE taking (alg, opslimit, memlimit, salt, sealed);
 * cst_keyslot_update is the UPDATE of row 1. */
int cst_keyslot_write(sqlite3 *db, const struct keyslot *ks, const char *sql);
int cst_keyslot_update(sqlite3 *db, const struct keyslot *ks);
/* Opens slot SLOT of KS with KPASS into OUT (CSTATE_KEYLEN bytes). Returns 0 or -1. */
int cst_slot_open(const struct keyslot *ks, int slot, const uint8_t kpass[static CSTATE_KEYLEN],
                  uint8_t out[static CSTATE_KEYLEN]);

#endif
