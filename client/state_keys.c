/* SPDX-License-Identifier: MIT */
/*
 * Changing the store's key slots (state.h): a new passphrase (cstate_rekey), the duress
 * passphrase set or cleared. Each rewrites one slot of the keyslot row (state_slots.c) in one
 * transaction. A new passphrase and the duress passphrase share the home's salt, so each keeps
 * working when the other changes; a salt is per home, against precomputation, and two
 * passphrases of one home sharing it give an attacker nothing.
 */
#include <string.h>

#include "state_int.h"

/*
 * Rewrites slot SLOT of the store's row inside one transaction: sealed under PASSPHRASE's key
 * (with the duress marker, or M for slot 0) or, with PASSPHRASE NULL, random bytes. The other
 * slot must not open with the new key: one passphrase opens one slot. Argon2id runs before the
 * write lock is taken, on the salt read then; the row is read again under the lock and must
 * still have that salt.
 */
static int slot_rewrite(struct cstate *st, int slot, const char *passphrase)
{
	struct keyslot ks, now;
	uint8_t kpass[CSTATE_KEYLEN], other[CSTATE_KEYLEN];
	bool own = false;
	int rc = cst_keyslot_read(st->db, &ks);
	if (rc == 0 && passphrase != NULL)
		rc = cst_slots_derive(&ks, passphrase, kpass);
	if (rc != 0)
		goto out;
	if ((rc = cst_op_begin(st, &own)) != 0)
		goto out;
	if ((rc = cst_keyslot_read(st->db, &now)) == 0 &&
	    sodium_memcmp(now.salt, ks.salt, sizeof(ks.salt)) != 0)
		rc = CAIRN_ESTATE;
	if (rc == 0 && passphrase != NULL && cst_slot_open(&now, 1 - slot, kpass, other) == 0)
		rc = CAIRN_EINVAL; /* the other slot's passphrase */
	if (rc == 0) {
		if (passphrase == NULL)
			cst_slot_clear(&now, slot);
		else
			cst_slot_seal(&now, slot, kpass,
			              slot == CSTATE_SLOT_REAL ? st->keys->master : NULL);
		rc = cst_keyslot_update(st->db, &now);
	}
	rc = cst_op_end(st, own, rc);
	/*
	 * Whoever holds an old copy of the slot and its passphrase could still open it, so do not
	 * leave the old row's page image in the WAL: a truncating checkpoint writes the new row
	 * over the old in the file and empties the WAL. Best effort (another process's reader
	 * blocks it), and only once the change is committed.
	 */
	if (rc == 0 && st->depth == 0)
		(void)sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
out:
	sodium_memzero(kpass, sizeof(kpass));
	sodium_memzero(other, sizeof(other));
	sodium_memzero(&ks, sizeof(ks));
	sodium_memzero(&now, sizeof(now));
	return rc;
}

int cstate_rekey(struct cstate *st, const char *new_passphrase)
{
	if (st == NULL || new_passphrase == NULL || new_passphrase[0] == '\0')
		return CAIRN_EINVAL;
	return slot_rewrite(st, CSTATE_SLOT_REAL, new_passphrase);
}

int cstate_duress_set(struct cstate *st, const char *passphrase)
{
	if (st == NULL || passphrase == NULL || passphrase[0] == '\0')
		return CAIRN_EINVAL;
	return slot_rewrite(st, CSTATE_SLOT_DURESS, passphrase);
}

int cstate_duress_clear(struct cstate *st)
{
	if (st == NULL)
		return CAIRN_EINVAL;
	return slot_rewrite(st, CSTATE_SLOT_DURESS, NULL);
}
