/* SPDX-License-Identifier: MIT */
/*
 * The store's key slots (state_int.h): the one keyslot row that seals the master key M under
 * the passphrase, and beside it a second slot that may hide a duress passphrase. Every home has
 * the same slots of the same size, so nothing on disk says whether a duress passphrase is set.
 *
 * Layout. The row (id 1) holds the Argon2id limits, one salt for the home, and `sealed`, the
 * CSTATE_NSLOTS slots end to end, each nonce (24) || XChaCha20-Poly1305(kpass, 32 bytes, ad)
 * where kpass = Argon2id(passphrase, salt). Slot 0 seals M with ad "cairn keyslot 1" (what a
 * one-slot store of an older client holds, so its slot is our slot 0 as it is); slot 1 seals
 * the duress marker with ad "cairn duress 1", or is 72 random bytes when no duress passphrase
 * is set: a sealed slot is a random nonce and a ciphertext, indistinguishable from those.
 * Opening derives kpass once and tries every slot with it, always all of them, so the time
 * does not tell which one opened. A one-slot store is read as slot 0 and a random slot 1, and
 * rewritten with both on its first open with the passphrase (state.c). Changing a slot is
 * state_keys.c's.
 */
#include <string.h>

#include "state_int.h"

/* The seals' associated data: each slot opens only in its own place. */
static const uint8_t slot_ad[CSTATE_NSLOTS][16] = {"cairn keyslot 1", "cairn duress 1"};

/* What the duress slot seals: any fixed value works, the seal is what authenticates it. */
static const uint8_t duress_marker[CSTATE_KEYLEN] = "cairn duress marker, version 1";

int cst_slots_derive(const struct keyslot *ks, const char *passphrase,
                     uint8_t kpass[static CSTATE_KEYLEN])
{
	if (crypto_pwhash(kpass, CSTATE_KEYLEN, passphrase, strlen(passphrase), ks->salt,
	                  ks->opslimit, ks->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_memzero(kpass, CSTATE_KEYLEN);
		return CAIRN_ENOMEM;
	}
	return 0;
}

void cst_slots_fresh(struct keyslot *ks, unsigned long long ops, size_t mem)
{
	ks->opslimit = ops;
	ks->memlimit = mem;
	ks->legacy = false;
	randombytes_buf(ks->salt, sizeof(ks->salt));
	randombytes_buf(ks->sealed, sizeof(ks->sealed));
}

void cst_slot_seal(struct keyslot *ks, int slot, const uint8_t kpass[static CSTATE_KEYLEN],
                   const uint8_t *plain)
{
	uint8_t *s = ks->sealed[slot];
	if (plain == NULL)
		plain = duress_marker;
	randombytes_buf(s, CSTATE_NONCELEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(s + CSTATE_NONCELEN, NULL, plain, CSTATE_KEYLEN,
	                                           slot_ad[slot], sizeof(slot_ad[slot]), NULL, s,
	                                           kpass);
}

void cst_slot_clear(struct keyslot *ks, int slot)
{
	randombytes_buf(ks->sealed[slot], CSTATE_SLOTLEN);
}

int cst_slot_open(const struct keyslot *ks, int slot, const uint8_t kpass[static CSTATE_KEYLEN],
                  uint8_t out[static CSTATE_KEYLEN])
{
	const uint8_t *s = ks->sealed[slot];
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
	    out, NULL, NULL, s + CSTATE_NONCELEN, CSTATE_SLOTLEN - CSTATE_NONCELEN, slot_ad[slot],
	    sizeof(slot_ad[slot]), s, kpass);
}

int cst_slots_try(const struct keyslot *ks, const uint8_t kpass[static CSTATE_KEYLEN],
                  uint8_t master[static CSTATE_KEYLEN], int *which)
{
	uint8_t marker[CSTATE_KEYLEN];
	/* Both always, whatever the first gave: the time must not tell which slot opened. */
	int real = cst_slot_open(ks, CSTATE_SLOT_REAL, kpass, master);
	int duress = cst_slot_open(ks, CSTATE_SLOT_DURESS, kpass, marker);
	duress = duress == 0 && sodium_memcmp(marker, duress_marker, sizeof(marker)) == 0 ? 0 : -1;
	sodium_memzero(marker, sizeof(marker));
	*which = real == 0 ? CSTATE_SLOT_REAL : CSTATE_SLOT_DURESS;
	if (real != 0)
		sodium_memzero(master, CSTATE_KEYLEN);
	return real == 0 || duress == 0 ? 0 : CAIRN_EPASSPHRASE;
}

int cst_keyslot_write(sqlite3 *db, const struct keyslot *ks, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (src != SQLITE_OK)
		goto out;
	if ((src = sqlite3_bind_int(s, 1, crypto_pwhash_ALG_ARGON2ID13)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(s, 2, (sqlite3_int64)ks->opslimit)) != SQLITE_OK ||
	    (src = sqlite3_bind_int64(s, 3, (sqlite3_int64)ks->memlimit)) != SQLITE_OK ||
	    (src = sqlite3_bind_blob(s, 4, ks->salt, sizeof(ks->salt), SQLITE_STATIC)) !=
	        SQLITE_OK ||
	    (src = sqlite3_bind_blob(s, 5, ks->sealed, sizeof(ks->sealed), SQLITE_STATIC)) !=
	        SQLITE_OK)
		goto out;
	src = sqlite3_step(s);
	/* An UPDATE that matched no row would leave the old passphrase in force. */
	if (src == SQLITE_DONE && sqlite3_changes(db) != 1)
		src = SQLITE_CORRUPT;
out:
	sqlite3_finalize(s);
	return src == SQLITE_DONE ? 0 : cst_db_error(src);
}

int cst_keyslot_update(sqlite3 *db, const struct keyslot *ks)
{
	return cst_keyslot_write(db, ks,
	                         "UPDATE keyslot SET alg = ?1, opslimit = ?2, memlimit = ?3,"
	                         " salt = ?4, sealed = ?5 WHERE id = 1");
}

int cst_keyslot_read(sqlite3 *db, struct keyslot *ks)
{
	sqlite3_stmt *s = NULL;
	int rc = CAIRN_ECORRUPT;
	int src = sqlite3_prepare_v2(
	    db, "SELECT alg, opslimit, memlimit, salt, sealed FROM keyslot WHERE id = 1", -1, &s,
	    NULL);
	if (src != SQLITE_OK) {
		/* SQLITE_ERROR here means the table is missing: the schema is not ours. */
		if ((src & 0xff) != SQLITE_ERROR)
			rc = cst_db_error(src);
		goto out;
	}
	src = sqlite3_step(s);
	if (src != SQLITE_ROW) {
		if (src != SQLITE_DONE)
			rc = cst_db_error(src);
		goto out;
	}
	int64_t alg = sqlite3_column_int64(s, 0);
	int64_t ops = sqlite3_column_int64(s, 1);
	int64_t mem = sqlite3_column_int64(s, 2);
	if (alg != crypto_pwhash_ALG_ARGON2ID13 || ops < (int64_t)crypto_pwhash_OPSLIMIT_MIN ||
	    ops > (int64_t)crypto_pwhash_OPSLIMIT_SENSITIVE ||
	    mem < (int64_t)crypto_pwhash_MEMLIMIT_MIN ||
	    mem > (int64_t)crypto_pwhash_MEMLIMIT_SENSITIVE)
		goto out;
	const void *salt = sqlite3_column_blob(s, 3);
	if (salt == NULL || sqlite3_column_bytes(s, 3) != (int)sizeof(ks->salt))
		goto out;
	memcpy(ks->salt, salt, sizeof(ks->salt));
	const void *sealed = sqlite3_column_blob(s, 4);
	int n = sqlite3_column_bytes(s, 4);
	if (sealed == NULL || (n != (int)sizeof(ks->sealed) && n != CSTATE_SLOTLEN))
		goto out;
	/* A one-slot store (an older client's): its slot is slot 0, the rest random until
	 * cst_slots_upgrade writes them. */
	ks->legacy = n == CSTATE_SLOTLEN;
	randombytes_buf(ks->sealed, sizeof(ks->sealed));
	memcpy(ks->sealed, sealed, (size_t)n);
	ks->opslimit = (unsigned long long)ops;
	ks->memlimit = (size_t)mem;
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}
