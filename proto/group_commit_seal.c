/* SPDX-License-Identifier: MIT */
/*
 * Commits, part two (docs/PROTOCOL.md sections 9.5 and 9.7): what needs secrets. An admin
 * builds a commit (seals to every retained member, the move box, signature, head, next epoch,
 * confirm); a member checks one against its epoch and opens its own seal and the move box.
 * Both sides compute the new roster with group_commit_apply, so what the committer signs and
 * what members check are one computation.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "group_commit.h"

static const char COMMIT_LABEL[] = "cairn/1 group commit";
#define COMMIT_LABEL_LEN (sizeof(COMMIT_LABEL) - 1)
/* The tail after the signed bytes: signature, then confirm. */
#define COMMIT_TAIL_LEN (CAIRN_SIGNATURE_LEN + GROUP_SECRET_LEN)

/* "cairn/1 group commit" || SIGNED, in a buffer of its own for Ed25519, which takes the whole
 * message at once. Returns NULL if memory is short. */
static uint8_t *signed_message(const uint8_t *signed_bytes, size_t len)
{
	uint8_t *m = malloc(COMMIT_LABEL_LEN + len);
	if (m != NULL) {
		memcpy(m, COMMIT_LABEL, COMMIT_LABEL_LEN);
		memcpy(m + COMMIT_LABEL_LEN, signed_bytes, len);
	}
	return m;
}

/* A location (9.7) that group_location_decode takes: relay_len 1..320, relay text that is an
 * address, log id, credential, nothing more. */
static bool location_ok(const uint8_t *loc, size_t len)
{
	struct group_location l;
	bool ok = group_location_decode(loc, len, &l) == 0;
	sodium_memzero(&l, sizeof(l));
	return ok;
}

/* The ad of the move box: group_id || u64 (e+1). */
static void move_ad(const struct group_commit *c, uint8_t ad[static GROUP_ID_LEN + 8])
{
	memcpy(ad, c->group_id, GROUP_ID_LEN);
	group_put_u64(ad + GROUP_ID_LEN, c->epoch);
}

static bool has_remove(const struct group_commit *c)
{
	for (unsigned i = 0; i < c->change_count; i++)
		if (c->changes[i].kind == GROUP_CHANGE_REMOVE)
			return true;
	return false;
}

/* The genesis's fixed shape (9.5 "Creating a group"). */
static bool genesis_ok(const struct group_commit *c)
{
	return c->epoch == 0 && sodium_is_zero(c->prev_head, GROUP_HEAD_LEN) && c->committer == 0 &&
	       c->last_seq == 0 && c->change_count == 2 && c->changes[0].kind == GROUP_CHANGE_ADD &&
	       c->changes[0].role == GROUP_ROLE_ADMIN &&
	       c->changes[1].kind == GROUP_CHANGE_SETTINGS && c->move_len == 0 &&
	       c->seal_count == 0;
}

/* E_{e+1}, its keys and confirm from the commit secret, once the head is known. */
static void next_epoch(const uint8_t init_secret[static GROUP_SECRET_LEN],
                       const uint8_t commit_secret[static GROUP_SECRET_LEN],
                       struct group_next *next, uint8_t confirm[static GROUP_SECRET_LEN])
{
	uint8_t ctx[GROUP_CTX_LEN];
	group_next_epoch(init_secret, commit_secret, next->head, next->epoch_secret);
	group_ctx(next->commit.group_id, next->epoch, next->head, ctx);
	group_epoch_keys(next->epoch_secret, ctx, &next->keys);
	group_confirm(next->keys.confirm_key, next->head, confirm);
}

void group_genesis_changes(const struct group_member *creator, const struct group_settings *s,
                           struct group_change ch[2])
{
	memset(ch, 0, 2 * sizeof(ch[0]));
	ch[0].kind = GROUP_CHANGE_ADD;
	memcpy(ch[0].identity, creator->identity, CAIRN_KEY_LEN);
	memcpy(ch[0].sign_key, creator->sign_key, CAIRN_KEY_LEN);
	memcpy(ch[0].group_key, creator->group_key, CAIRN_KEY_LEN);
	ch[0].role = GROUP_ROLE_ADMIN;
	ch[1].kind = GROUP_CHANGE_SETTINGS;
	ch[1].settings = *s;
}

/* Fills the commit's fields up to its seals from BASE and REQ (signature and confirm later). */
static int build_fields(const struct group_base *base, const struct group_commit_request *req,
                        const uint8_t init[static GROUP_SECRET_LEN], struct group_next *next)
{
	struct group_commit *c = &next->commit;
	c->version = GROUP_COMMIT_VERSION;
	memcpy(c->group_id, base->group_id, GROUP_ID_LEN);
	if (!base->genesis) {
		if (base->epoch == UINT64_MAX)
			return CAIRN_EINVAL;
		c->epoch = base->epoch + 1;
		memcpy(c->prev_head, base->head, GROUP_HEAD_LEN);
	}
	next->epoch = c->epoch;
	c->committer = req->committer;
	c->last_seq = req->last_seq;
	c->change_count = (uint8_t)req->change_count;
	if (req->change_count > 0) /* a rotation may pass no array */
		memcpy(c->changes, req->changes, req->change_count * sizeof(c->changes[0]));
	crypto_scalarmult_base(c->eph, req->eph_private);
	if (req->location != NULL) {
		uint8_t key[GROUP_SECRET_LEN], ad[GROUP_ID_LEN + 8];
		static const uint8_t zero_nonce[GROUP_NONCE_LEN];
		unsigned long long blen = 0;
		group_move_key(init, req->commit_secret, key);
		move_ad(c, ad);
		crypto_aead_xchacha20poly1305_ietf_encrypt(c->move_box, &blen, req->location,
		                                           req->location_len, ad, sizeof(ad), NULL,
		                                           zero_nonce, key);
		sodium_memzero(key, sizeof(key));
		c->move_len = (uint16_t)blen;
		memcpy(next->location, req->location, req->location_len);
		next->location_len = (uint16_t)req->location_len;
	}
	group_roster_hash(&next->roster, c->roster_hash);
	c->seal_count = next->retained;
	for (unsigned i = 0; i < next->retained; i++) {
		const struct group_member *m = &next->roster.member[i];
		uint8_t pad[GROUP_SECRET_LEN];
		if (group_seal_pad(req->eph_private, m->group_key, c->group_id, c->epoch,
		                   c->prev_head, c->eph, m->group_key, pad) != 0)
			return CAIRN_ECRYPTO;
		c->seals[i].key_serial = m->key_serial;
		for (unsigned j = 0; j < GROUP_SECRET_LEN; j++)
			c->seals[i].masked[j] = req->commit_secret[j] ^ pad[j];
		sodium_memzero(pad, sizeof(pad));
	}
	return 0;
}

/* Signs the encoded commit OUT (LEN bytes) in place and derives the epoch it leads to. */
static int build_finish(const uint8_t *sign_secret, const uint8_t init[static GROUP_SECRET_LEN],
                        const uint8_t commit_secret[static GROUP_SECRET_LEN], uint8_t *out,
                        size_t len, struct group_next *next)
{
	struct group_commit *c = &next->commit;
	size_t slen = len - COMMIT_TAIL_LEN;
	uint8_t *msg = signed_message(out, slen);
	if (msg == NULL)
		return CAIRN_ENOMEM;
	crypto_sign_detached(c->signature, NULL, msg, COMMIT_LABEL_LEN + slen, sign_secret);
	free(msg);
	memcpy(out + slen, c->signature, CAIRN_SIGNATURE_LEN);
	group_head(out, slen + CAIRN_SIGNATURE_LEN, next->head);
	next_epoch(init, commit_secret, next, c->confirm);
	memcpy(out + len - GROUP_SECRET_LEN, c->confirm, GROUP_SECRET_LEN);
	next->has_secret = true;
	return 0;
}

int group_commit_build(const struct group_base *base, const struct group_commit_request *req,
                       uint8_t *out, size_t cap, size_t *outlen, struct group_next *next)
{
	static const uint8_t zero[GROUP_SECRET_LEN];
	const uint8_t *init = base->genesis ? zero : base->init_secret;
	size_t len = 0;
	int rc = CAIRN_EINVAL;

	/* OUT holds nothing secret (seals are masked), so a failure need not wipe it. */
	*outlen = 0;
	sodium_memzero(next, sizeof(*next));
	if (req->change_count > GROUP_CHANGES_MAX ||
	    (req->location != NULL && !location_ok(req->location, req->location_len)))
		goto out;
	if (!base->genesis && (req->committer >= base->roster->count ||
	                       base->roster->member[req->committer].role != GROUP_ROLE_ADMIN))
		goto out;
	if ((rc = group_commit_apply(base, req->changes, req->change_count, req->updates,
	                             req->update_count, next)) != 0)
		goto out;
	if ((rc = build_fields(base, req, init, next)) != 0)
		goto out;
	rc = CAIRN_EINVAL;
	if ((base->genesis && !genesis_ok(&next->commit)) ||
	    (has_remove(&next->commit) && req->location == NULL))
		goto out;
	/* An admin may remove itself: it still knows the secret it drew. */
	next->removed = !base->genesis;
	for (unsigned i = 0; i < next->retained; i++)
		if (next->from[i] == req->committer)
			next->removed = false;
	if ((rc = group_commit_encode(&next->commit, out, cap, &len)) != 0)
		goto out;
	if ((rc = build_finish(req->sign_secret, init, req->commit_secret, out, len, next)) != 0)
		goto out;
	*outlen = len;
	return 0;
out:
	group_next_wipe(next);
	return rc;
}

/* Checks what the commit C says of epoch e against BASE (CAIRN_ESTATE: not ours to take). */
static int check_epoch(const struct group_base *base, const struct group_commit *c)
{
	if (memcmp(c->group_id, base->group_id, GROUP_ID_LEN) != 0)
		return CAIRN_ESTATE;
	if (base->genesis)
		return c->epoch == 0 && sodium_is_zero(c->prev_head, GROUP_HEAD_LEN) ? 0
		                                                                     : CAIRN_ESTATE;
	if (base->epoch == UINT64_MAX || c->epoch != base->epoch + 1 ||
	    memcmp(c->prev_head, base->head, GROUP_HEAD_LEN) != 0)
		return CAIRN_ESTATE;
	return 0;
}

/* The committer's sign key: an admin of roster_e, or for the genesis the member it adds. */
static const uint8_t *committer_key(const struct group_base *base, const struct group_commit *c,
                                    uint64_t first_seq, uint64_t prev_position)
{
	if (base->genesis)
		return genesis_ok(c) ? c->changes[0].sign_key : NULL;
	if (c->committer >= base->roster->count ||
	    base->roster->member[c->committer].role != GROUP_ROLE_ADMIN ||
	    c->last_seq >= first_seq || c->last_seq < prev_position)
		return NULL;
	return base->roster->member[c->committer].sign_key;
}

static int verify_signature(const uint8_t *in, size_t len, const uint8_t *key)
{
	size_t slen = len - COMMIT_TAIL_LEN;
	uint8_t *msg = signed_message(in, slen);
	if (msg == NULL)
		return CAIRN_ENOMEM;
	int ok = crypto_sign_verify_detached(in + slen, msg, COMMIT_LABEL_LEN + slen, key);
	free(msg);
	return ok == 0 ? 0 : CAIRN_EAUTH;
}

/* The seals and roster hash C must carry for the roster NEXT computed. */
static bool seals_match(const struct group_commit *c, const struct group_next *next)
{
	uint8_t hash[GROUP_HEAD_LEN];
	group_roster_hash(&next->roster, hash);
	if (memcmp(hash, c->roster_hash, GROUP_HEAD_LEN) != 0 || c->seal_count != next->retained)
		return false;
	for (unsigned i = 0; i < next->retained; i++)
		if (c->seals[i].key_serial != next->roster.member[i].key_serial)
			return false;
	return true;
}

/* The secret of seal I of NEXT's commit, with the opener's key of the serial it names.
 * Returns 0 or CAIRN_ECRYPTO. */
static int seal_secret(const struct group_opener *op, unsigned i, const struct group_next *next,
                       uint8_t secret[static GROUP_SECRET_LEN])
{
	const struct group_commit *c = &next->commit;
	const struct group_key_pair *kp = NULL;
	uint8_t pad[GROUP_SECRET_LEN];

	for (size_t k = 0; k < op->key_count; k++)
		if (op->keys[k].key_serial == c->seals[i].key_serial)
			kp = &op->keys[k];
	if (kp == NULL ||
	    group_seal_pad(kp->private_key, c->eph, c->group_id, c->epoch, c->prev_head, c->eph,
	                   next->roster.member[i].group_key, pad) != 0)
		return CAIRN_ECRYPTO;
	for (unsigned j = 0; j < GROUP_SECRET_LEN; j++)
		secret[j] = c->seals[i].masked[j] ^ pad[j];
	sodium_memzero(pad, sizeof(pad));
	return 0;
}

/* From the commit SECRET: the new epoch, the confirm check, and the move box. Returns 0 or
 * CAIRN_ECRYPTO. */
static int open_with(const uint8_t init[static GROUP_SECRET_LEN],
                     const uint8_t secret[static GROUP_SECRET_LEN], struct group_next *next)
{
	const struct group_commit *c = &next->commit;
	uint8_t key[GROUP_SECRET_LEN], confirm[GROUP_SECRET_LEN], ad[GROUP_ID_LEN + 8];
	static const uint8_t zero_nonce[GROUP_NONCE_LEN];
	unsigned long long llen = 0;
	int rc = CAIRN_ECRYPTO;

	next_epoch(init, secret, next, confirm);
	if (sodium_memcmp(confirm, c->confirm, GROUP_SECRET_LEN) != 0)
		goto out;
	if (c->move_len > 0) {
		group_move_key(init, secret, key);
		move_ad(c, ad);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(next->location, &llen, NULL,
		                                               c->move_box, c->move_len, ad,
		                                               sizeof(ad), zero_nonce, key) != 0 ||
		    !location_ok(next->location, (size_t)llen))
			goto out;
		next->location_len = (uint16_t)llen;
	}
	next->has_secret = true;
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	return rc;
}

int group_commit_open(const struct group_base *base, const uint8_t *in, size_t len,
                      const struct group_counted_update *updates, size_t nupd, uint64_t first_seq,
                      uint64_t prev_position, const struct group_opener *opener,
                      struct group_next *next)
{
	struct group_commit *c = &next->commit;
	uint8_t secret[GROUP_SECRET_LEN];
	const uint8_t *key;
	int rc;

	sodium_memzero(next, sizeof(*next));
	if ((rc = group_commit_decode(in, len, c)) != 0)
		goto out;
	if ((rc = check_epoch(base, c)) != 0)
		goto out;
	rc = CAIRN_EINVAL;
	if ((key = committer_key(base, c, first_seq, prev_position)) == NULL)
		goto out;
	if ((rc = verify_signature(in, len, key)) != 0)
		goto out;
	rc = CAIRN_EINVAL;
	if (group_commit_apply(base, c->changes, c->change_count, updates, nupd, next) != 0 ||
	    (has_remove(c) && c->move_len == 0))
		goto out;
	next->epoch = c->epoch;
	group_head(in, len - GROUP_SECRET_LEN, next->head);
	rc = CAIRN_ECRYPTO;
	if (!seals_match(c, next))
		goto out;
	/* The genesis seals to nobody: only its creator, who drew the secret, has epoch 0. */
	if (base->genesis) {
		static const uint8_t zero[GROUP_SECRET_LEN];
		if (opener != NULL && opener->commit_secret != NULL &&
		    (rc = open_with(zero, opener->commit_secret, next)) != 0)
			goto out;
		return 0;
	}
	next->removed = true;
	for (unsigned i = 0; i < next->retained; i++) {
		if (next->from[i] != opener->self)
			continue;
		next->removed = false;
		if (opener->commit_secret != NULL)
			rc = open_with(base->init_secret, opener->commit_secret, next);
		else if ((rc = seal_secret(opener, i, next, secret)) == 0)
			rc = open_with(base->init_secret, secret, next);
		if (rc != 0)
			goto out;
	}
	sodium_memzero(secret, sizeof(secret));
	return 0;
out:
	sodium_memzero(secret, sizeof(secret));
	group_next_wipe(next);
	return rc;
}
