/* SPDX-License-Identifier: MIT */
/*
 * The client's sealed store (state.h), its records: sealing and opening values, lookup keys as
 * keyed hashes, put, get, delete, ordered listing by kind and by scope. The design notes are in
 * state.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "state_int.h"

static int check_key(const void *key, size_t keylen)
{
	return keylen > CSTATE_KEY_MAX || (key == NULL && keylen != 0) ? CAIRN_EINVAL : 0;
}

static void store_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* LOOKUP = BLAKE2b-256 keyed with the lookup key over kind (BE) || KEY. */
static void lookup_hash(const struct cstate *st, uint32_t kind, const void *key, size_t keylen,
                        uint8_t lookup[static CSTATE_LOOKUPLEN])
{
	crypto_generichash_state h;
	uint8_t k4[4];
	store_be32(k4, kind);
	crypto_generichash_init(&h, st->keys->lookup, CSTATE_KEYLEN, CSTATE_LOOKUPLEN);
	crypto_generichash_update(&h, k4, sizeof(k4));
	if (keylen != 0)
		crypto_generichash_update(&h, key, keylen);
	crypto_generichash_final(&h, lookup, CSTATE_LOOKUPLEN);
	/* The state holds the keyed hash's key block. */
	sodium_memzero(&h, sizeof(h));
}

/* SCOPEH = BLAKE2b-256 keyed with the scope key over kind (BE) || SCOPE. */
static void scope_hash(const struct cstate *st, uint32_t kind, const void *scope, size_t scopelen,
                       uint8_t scopeh[static CSTATE_LOOKUPLEN])
{
	crypto_generichash_state h;
	uint8_t k4[4];
	store_be32(k4, kind);
	crypto_generichash_init(&h, st->keys->scope, CSTATE_KEYLEN, CSTATE_LOOKUPLEN);
	crypto_generichash_update(&h, k4, sizeof(k4));
	crypto_generichash_update(&h, scope, scopelen);
	crypto_generichash_final(&h, scopeh, CSTATE_LOOKUPLEN);
	sodium_memzero(&h, sizeof(h));
}

/* The associated data that pins a sealed value to (KIND, LOOKUP, SEQ[, SCOPEH]): 44 bytes as
 * in schema 1 for a record with no scope (SCOPEH NULL), 76 with one. Returns its length. */
static size_t build_ad(uint8_t ad[static CSTATE_ADLEN_MAX], uint32_t kind,
                       const uint8_t lookup[static CSTATE_LOOKUPLEN], int64_t seq,
                       const uint8_t *scopeh)
{
	uint64_t s = (uint64_t)seq;
	store_be32(ad, kind);
	memcpy(ad + 4, lookup, CSTATE_LOOKUPLEN);
	for (int i = 7; i >= 0; i--, s >>= 8)
		ad[4 + CSTATE_LOOKUPLEN + i] = (uint8_t)s;
	if (scopeh == NULL)
		return CSTATE_ADLEN;
	memcpy(ad + CSTATE_ADLEN, scopeh, CSTATE_LOOKUPLEN);
	return CSTATE_ADLEN_MAX;
}

/* Reads column COL as a scope hash: *SCOPEH NULL for none. Anything else is damage. */
static int column_scope(sqlite3_stmt *s, int col, const uint8_t **scopeh)
{
	*scopeh = NULL;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	*scopeh = sqlite3_column_blob(s, col);
	return *scopeh != NULL && sqlite3_column_bytes(s, col) == CSTATE_LOOKUPLEN ? 0
	                                                                           : CAIRN_ECORRUPT;
}

/*
 * Opens SEALED (SLEN bytes, as read from disk) under AD into an owned buffer of *MLEN bytes
 * (at least one byte allocated, so an empty value is not NULL). Returns 0, CAIRN_ECORRUPT,
 * or CAIRN_ENOMEM; on failure nothing is returned and the buffer was wiped.
 */
static int open_value(const struct cstate *st, const uint8_t *ad, size_t adlen,
                      const uint8_t *sealed, size_t slen, uint8_t **m, size_t *mlen)
{
	*m = NULL;
	*mlen = 0;
	if (sealed == NULL || slen < CSTATE_OVERHEAD || slen - CSTATE_OVERHEAD > CSTATE_VALUE_MAX)
		return CAIRN_ECORRUPT;
	size_t len = slen - CSTATE_OVERHEAD;
	uint8_t *buf = malloc(len != 0 ? len : 1);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(buf, NULL, NULL, sealed + CSTATE_NONCELEN,
	                                               slen - CSTATE_NONCELEN, ad, adlen, sealed,
	                                               st->keys->record) != 0) {
		cstate_free_value(buf, len);
		return CAIRN_ECORRUPT;
	}
	*m = buf;
	*mlen = len;
	return 0;
}

static int bind_lookup(sqlite3_stmt *s, uint32_t kind, const uint8_t *lookup)
{
	if (sqlite3_bind_int64(s, 1, kind) != SQLITE_OK ||
	    sqlite3_bind_blob(s, 2, lookup, CSTATE_LOOKUPLEN, SQLITE_STATIC) != SQLITE_OK)
		return CAIRN_EIO;
	return 0;
}

/* Reads column COL of the current row as a sequence number; anything else is damage. */
static int column_seq(sqlite3_stmt *s, int col, int64_t *seq)
{
	if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
		return CAIRN_ECORRUPT;
	*seq = sqlite3_column_int64(s, col);
	return *seq >= 1 && *seq < INT64_MAX ? 0 : CAIRN_ECORRUPT;
}

/* Finds the sequence number of (KIND, LOOKUP): 0, CAIRN_ENOTFOUND, or an error. */
static int find_seq(struct cstate *st, uint32_t kind, const uint8_t *lookup, int64_t *seq)
{
	sqlite3_stmt *s = st->stmt[STMT_FIND];
	int rc = bind_lookup(s, kind, lookup);
	if (rc == 0) {
		int src = sqlite3_step(s);
		if (src == SQLITE_ROW)
			rc = column_seq(s, 0, seq);
		else
			rc = src == SQLITE_DONE ? CAIRN_ENOTFOUND : cst_db_error(src);
	}
	cst_stmt_release(s);
	return rc;
}

static int next_seq(struct cstate *st, uint32_t kind, int64_t *seq)
{
	sqlite3_stmt *s = st->stmt[STMT_NEXT_SEQ];
	int rc = CAIRN_EIO;
	if (sqlite3_bind_int64(s, 1, kind) == SQLITE_OK) {
		int src = sqlite3_step(s);
		rc = src == SQLITE_ROW ? column_seq(s, 0, seq) : cst_db_error(src);
	}
	cst_stmt_release(s);
	return rc;
}

int cstate_put(struct cstate *st, uint32_t kind, const void *key, size_t keylen, const void *value,
               size_t vlen)
{
	return cstate_put_scoped(st, kind, key, keylen, NULL, 0, value, vlen);
}

int cstate_put_scoped(struct cstate *st, uint32_t kind, const void *key, size_t keylen,
                      const void *scope, size_t scopelen, const void *value, size_t vlen)
{
	if (st == NULL || check_key(key, keylen) != 0 || vlen > CSTATE_VALUE_MAX ||
	    (value == NULL && vlen != 0) || check_key(scope, scopelen) != 0)
		return CAIRN_EINVAL;
	static const uint8_t empty[1];
	uint8_t lookup[CSTATE_LOOKUPLEN], scopeh[CSTATE_LOOKUPLEN];
	uint8_t ad[CSTATE_ADLEN_MAX];
	int64_t seq = 0;
	int found;
	sqlite3_stmt *s;
	/* Ciphertext only: it needs no wiping. */
	uint8_t *sealed = malloc(CSTATE_OVERHEAD + vlen);
	if (sealed == NULL)
		return CAIRN_ENOMEM;
	lookup_hash(st, kind, key, keylen, lookup);
	if (scope != NULL)
		scope_hash(st, kind, scope, scopelen, scopeh);

	bool own;
	int rc = cst_op_begin(st, &own);
	if (rc != 0)
		goto out;
	rc = find_seq(st, kind, lookup, &seq);
	found = rc == 0;
	if (rc == CAIRN_ENOTFOUND)
		rc = next_seq(st, kind, &seq);
	if (rc != 0)
		goto end;

	size_t adlen = build_ad(ad, kind, lookup, seq, scope != NULL ? scopeh : NULL);
	randombytes_buf(sealed, CSTATE_NONCELEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + CSTATE_NONCELEN, NULL,
	                                           vlen != 0 ? value : empty, vlen, ad, adlen, NULL,
	                                           sealed, st->keys->record);
	s = st->stmt[found ? STMT_UPDATE : STMT_INSERT];
	rc = bind_lookup(s, kind, lookup);
	if (rc == 0 && (sqlite3_bind_blob(s, 3, sealed, (int)(CSTATE_OVERHEAD + vlen),
	                                  SQLITE_STATIC) != SQLITE_OK ||
	                (!found && sqlite3_bind_int64(s, 4, seq) != SQLITE_OK) ||
	                (scope != NULL && sqlite3_bind_blob(s, 5, scopeh, CSTATE_LOOKUPLEN,
	                                                    SQLITE_STATIC) != SQLITE_OK)))
		rc = CAIRN_EIO;
	if (rc == 0)
		rc = cst_step_done(s);
	else
		cst_stmt_release(s);
end:
	rc = cst_op_end(st, own, rc);
out:
	free(sealed);
	return rc;
}

int cstate_get(struct cstate *st, uint32_t kind, const void *key, size_t keylen, uint8_t **value,
               size_t *vlen)
{
	if (value != NULL)
		*value = NULL;
	if (vlen != NULL)
		*vlen = 0;
	if (st == NULL || value == NULL || vlen == NULL || check_key(key, keylen) != 0)
		return CAIRN_EINVAL;
	uint8_t lookup[CSTATE_LOOKUPLEN];
	uint8_t ad[CSTATE_ADLEN_MAX];
	const uint8_t *scopeh;
	int64_t seq;
	lookup_hash(st, kind, key, keylen, lookup);

	sqlite3_stmt *s = st->stmt[STMT_GET];
	int rc = bind_lookup(s, kind, lookup);
	if (rc != 0)
		goto out;
	int src = sqlite3_step(s);
	if (src != SQLITE_ROW) {
		rc = src == SQLITE_DONE ? CAIRN_ENOTFOUND : cst_db_error(src);
		goto out;
	}
	if ((rc = column_seq(s, 0, &seq)) != 0 || (rc = column_scope(s, 2, &scopeh)) != 0)
		goto out;
	size_t adlen = build_ad(ad, kind, lookup, seq, scopeh);
	const uint8_t *sealed = sqlite3_column_blob(s, 1);
	size_t slen = (size_t)sqlite3_column_bytes(s, 1);
	rc = open_value(st, ad, adlen, sealed, slen, value, vlen);
out:
	cst_stmt_release(s);
	return rc;
}

int cstate_del(struct cstate *st, uint32_t kind, const void *key, size_t keylen)
{
	if (st == NULL || check_key(key, keylen) != 0)
		return CAIRN_EINVAL;
	uint8_t lookup[CSTATE_LOOKUPLEN];
	lookup_hash(st, kind, key, keylen, lookup);
	sqlite3_stmt *s = st->stmt[STMT_DELETE];
	int rc = bind_lookup(s, kind, lookup);
	if (rc == 0)
		rc = cst_step_done(s);
	else
		cst_stmt_release(s);
	return rc;
}

/*
 * Lists the rows statement S (bound by the caller) returns, (lookup, seq, scope, value) each,
 * through CB. Finalizes S.
 */
static int list_rows(struct cstate *st, uint32_t kind, sqlite3_stmt *s, cstate_list_cb cb,
                     void *ctx)
{
	uint8_t ad[CSTATE_ADLEN_MAX];
	int rc = 0;
	while (rc == 0) {
		int src = sqlite3_step(s);
		if (src != SQLITE_ROW) {
			rc = src == SQLITE_DONE ? 0 : cst_db_error(src);
			break;
		}
		int64_t seq;
		const uint8_t *scopeh;
		const uint8_t *lookup = sqlite3_column_blob(s, 0);
		if (lookup == NULL || sqlite3_column_bytes(s, 0) != CSTATE_LOOKUPLEN ||
		    column_seq(s, 1, &seq) != 0 || column_scope(s, 2, &scopeh) != 0) {
			rc = CAIRN_ECORRUPT;
			break;
		}
		size_t adlen = build_ad(ad, kind, lookup, seq, scopeh);
		const uint8_t *sealed = sqlite3_column_blob(s, 3);
		size_t slen = (size_t)sqlite3_column_bytes(s, 3);
		uint8_t *m;
		size_t mlen;
		if ((rc = open_value(st, ad, adlen, sealed, slen, &m, &mlen)) != 0)
			break;
		rc = cb(ctx, m, mlen);
		cstate_free_value(m, mlen);
	}
	sqlite3_finalize(s);
	return rc;
}

/*
 * The listing statements are prepared per call rather than kept, so that CB may itself call
 * any cstate function, cstate_list included. Records of KIND that CB adds or removes may or
 * may not be seen by the rest of the listing.
 */
int cstate_list(struct cstate *st, uint32_t kind, cstate_list_cb cb, void *ctx)
{
	if (st == NULL || cb == NULL)
		return CAIRN_EINVAL;
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(
	    st->db, "SELECT lookup, seq, scope, value FROM records WHERE kind = ?1 ORDER BY seq",
	    -1, &s, NULL);
	if (src != SQLITE_OK)
		return cst_db_error(src);
	if (sqlite3_bind_int64(s, 1, kind) != SQLITE_OK) {
		sqlite3_finalize(s);
		return CAIRN_EIO;
	}
	return list_rows(st, kind, s, cb, ctx);
}

/* Only the scope's rows are read: the partial index (kind, scope, seq) leads straight to them. */
int cstate_list_scope(struct cstate *st, uint32_t kind, const void *scope, size_t scopelen,
                      cstate_list_cb cb, void *ctx)
{
	if (st == NULL || cb == NULL || scope == NULL || check_key(scope, scopelen) != 0)
		return CAIRN_EINVAL;
	uint8_t scopeh[CSTATE_LOOKUPLEN];
	scope_hash(st, kind, scope, scopelen, scopeh);
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(st->db,
	                             "SELECT lookup, seq, scope, value FROM records INDEXED BY"
	                             " records_scope WHERE kind = ?1 AND scope = ?2 AND scope IS"
	                             " NOT NULL ORDER BY seq",
	                             -1, &s, NULL);
	if (src != SQLITE_OK)
		return cst_db_error(src);
	if (sqlite3_bind_int64(s, 1, kind) != SQLITE_OK ||
	    sqlite3_bind_blob(s, 2, scopeh, CSTATE_LOOKUPLEN, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_finalize(s);
		return CAIRN_EIO;
	}
	return list_rows(st, kind, s, cb, ctx);
}

void cstate_free_value(uint8_t *value, size_t vlen)
{
	if (value == NULL)
		return;
	sodium_memzero(value, vlen);
	free(value);
}
