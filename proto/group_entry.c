/* SPDX-License-Identifier: MIT */
/*
 * Group log entries (docs/PROTOCOL.md 9.4): XChaCha20-Poly1305 header and body, the padding of
 * 8.6 (pad.h: the entry sizes are the envelope sizes), Ed25519 signatures on messages, the
 * receiving chains with their store of skipped keys (9.3), and key update data (9.6).
 */
#include <string.h>

#include <sodium.h>

#include "group_entry.h"
#include "pad.h"

_Static_assert(GROUP_ENTRY_MAX == CAIRN_ENVELOPE_MAX,
               "entries pad to the envelope buckets of pad.h (896, 3968, 16384)");
_Static_assert(GROUP_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(GROUP_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(GROUP_SIG_LEN == crypto_sign_BYTES, "signature");

static const char label_message[] = "cairn/1 group message";
#define LABEL_MESSAGE_LEN (sizeof(label_message) - 1)
/* label || ctx || u16 sender || u32 n, before the payload in the signed bytes. */
#define TBS_PREFIX_LEN (LABEL_MESSAGE_LEN + GROUP_CTX_LEN + 2 + 4)

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int group_entry_seal(const uint8_t header_key[static GROUP_SECRET_LEN],
                     const uint8_t hnonce[static GROUP_NONCE_LEN], const struct group_header *h,
                     const uint8_t body_key[static GROUP_SECRET_LEN],
                     const uint8_t body_nonce[static GROUP_NONCE_LEN], const uint8_t *content,
                     size_t content_len, uint8_t *out, size_t cap, size_t *out_len)
{
	*out_len = 0;
	if (content_len > GROUP_CONTENT_MAX)
		return CAIRN_ETOOBIG;
	size_t body_len = pad_len(GROUP_ENTRY_OVERHEAD, content_len);
	if (body_len == 0)
		return CAIRN_ETOOBIG;
	if (cap < GROUP_ENTRY_OVERHEAD + body_len)
		return CAIRN_ENOBUFS;
	uint8_t header[GROUP_HEADER_LEN];
	header[0] = h->kind;
	put_u16(header + 1, h->sender);
	put_u32(header + 3, h->n);
	memcpy(out, hnonce, GROUP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + GROUP_NONCE_LEN, NULL, header, sizeof(header), NULL, 0, NULL, hnonce, header_key);
	/* The padded body is written where its ciphertext goes, then encrypted in place (which
	 * libsodium allows); the ad is the 47 bytes before it. */
	uint8_t *body = out + GROUP_ENTRY_AD_LEN;
	size_t padded = 0;
	int rc = pad_encode(content, content_len, GROUP_ENTRY_OVERHEAD, body,
	                    cap - GROUP_ENTRY_AD_LEN, &padded);
	if (rc != 0) {
		sodium_memzero(out, cap);
		return rc;
	}
	crypto_aead_xchacha20poly1305_ietf_encrypt(body, NULL, body, padded, out,
	                                           GROUP_ENTRY_AD_LEN, NULL, body_nonce, body_key);
	*out_len = GROUP_ENTRY_AD_LEN + padded + GROUP_TAG_LEN;
	return 0;
}

int group_entry_open_header(const uint8_t header_key[static GROUP_SECRET_LEN], const uint8_t *entry,
                            size_t len, struct group_header *h)
{
	memset(h, 0, sizeof(*h));
	if (len < GROUP_ENTRY_MIN || len > GROUP_ENTRY_MAX)
		return CAIRN_EINVAL;
	uint8_t header[GROUP_HEADER_LEN];
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(header, NULL, NULL, entry + GROUP_NONCE_LEN,
	                                               GROUP_EHEADER_LEN, NULL, 0, entry,
	                                               header_key) != 0)
		return CAIRN_EAUTH;
	h->kind = header[0];
	h->sender = get_u16(header + 1);
	h->n = get_u32(header + 3);
	return 0;
}

int group_entry_open_body(const uint8_t body_key[static GROUP_SECRET_LEN],
                          const uint8_t body_nonce[static GROUP_NONCE_LEN], const uint8_t *entry,
                          size_t len, uint8_t *body, size_t cap, const uint8_t **content,
                          size_t *content_len)
{
	*content = NULL;
	*content_len = 0;
	if (len < GROUP_ENTRY_MIN || len > GROUP_ENTRY_MAX)
		return CAIRN_EINVAL;
	size_t body_len = len - GROUP_ENTRY_OVERHEAD;
	if (cap < body_len)
		return CAIRN_ENOBUFS;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        body, NULL, NULL, entry + GROUP_ENTRY_AD_LEN, len - GROUP_ENTRY_AD_LEN, entry,
	        GROUP_ENTRY_AD_LEN, body_nonce, body_key) != 0) {
		sodium_memzero(body, body_len);
		return CAIRN_EAUTH;
	}
	int rc = pad_decode(body, body_len, content, content_len);
	if (rc != 0)
		sodium_memzero(body, body_len);
	return rc;
}

int group_part_seal(const struct group_epoch_keys *k, const uint8_t hnonce[static GROUP_NONCE_LEN],
                    uint16_t sender, uint32_t n, const uint8_t *content, size_t content_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
	/* 9.4: a part's body nonce is its hnonce; commit_key is used once per part, each with a
	 * fresh hnonce. */
	struct group_header h = {GROUP_KIND_COMMIT_PART, sender, n};
	return group_entry_seal(k->header_key, hnonce, &h, k->commit_key, hnonce, content,
	                        content_len, out, cap, out_len);
}

int group_part_open(const struct group_epoch_keys *k, const struct group_header *h,
                    const uint8_t *entry, size_t len, uint8_t *body, size_t cap,
                    const uint8_t **content, size_t *content_len)
{
	*content = NULL;
	*content_len = 0;
	if (h->kind != GROUP_KIND_COMMIT_PART || len < GROUP_NONCE_LEN)
		return CAIRN_EINVAL;
	return group_entry_open_body(k->commit_key, entry, entry, len, body, cap, content,
	                             content_len);
}

/* The signed bytes of a message, label || ctx || u16 sender || u32 n || payload, into TBS
 * (capacity TBS_PREFIX_LEN + GROUP_PAYLOAD_MAX); returns their length. */
static size_t message_tbs(uint8_t *tbs, const uint8_t ctx[static GROUP_CTX_LEN], uint16_t sender,
                          uint32_t n, const uint8_t *payload, size_t len)
{
	memcpy(tbs, label_message, LABEL_MESSAGE_LEN);
	memcpy(tbs + LABEL_MESSAGE_LEN, ctx, GROUP_CTX_LEN);
	put_u16(tbs + LABEL_MESSAGE_LEN + GROUP_CTX_LEN, sender);
	put_u32(tbs + LABEL_MESSAGE_LEN + GROUP_CTX_LEN + 2, n);
	if (len > 0)
		memcpy(tbs + TBS_PREFIX_LEN, payload, len);
	return TBS_PREFIX_LEN + len;
}

int group_message_seal(const uint8_t header_key[static GROUP_SECRET_LEN],
                       const uint8_t hnonce[static GROUP_NONCE_LEN],
                       const uint8_t ctx[static GROUP_CTX_LEN], uint16_t sender, uint32_t n,
                       const uint8_t mk[static GROUP_SECRET_LEN], const uint8_t sign_sk[static 64],
                       const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                       size_t *out_len)
{
	*out_len = 0;
	if (len > GROUP_PAYLOAD_MAX)
		return CAIRN_ETOOBIG;
	/* One buffer holds the signed bytes, then the content: payload || signature. */
	_Static_assert(TBS_PREFIX_LEN >= GROUP_SIG_LEN, "content fits where the signed bytes were");
	uint8_t buf[TBS_PREFIX_LEN + GROUP_PAYLOAD_MAX];
	uint8_t sig[GROUP_SIG_LEN], key[GROUP_SECRET_LEN], nonce[GROUP_NONCE_LEN];
	size_t tl = message_tbs(buf, ctx, sender, n, payload, len);
	crypto_sign_detached(sig, NULL, buf, tl, sign_sk);
	memmove(buf, buf + TBS_PREFIX_LEN, len);
	memcpy(buf + len, sig, GROUP_SIG_LEN);
	group_message_keys(mk, key, nonce);
	struct group_header h = {GROUP_KIND_MESSAGE, sender, n};
	int rc = group_entry_seal(header_key, hnonce, &h, key, nonce, buf, len + GROUP_SIG_LEN, out,
	                          cap, out_len);
	sodium_memzero(buf, len + GROUP_SIG_LEN);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(nonce, sizeof(nonce));
	return rc;
}

int group_message_open(const uint8_t ctx[static GROUP_CTX_LEN], const struct group_header *h,
                       const uint8_t mk[static GROUP_SECRET_LEN], const uint8_t sign_pk[static 32],
                       const uint8_t *entry, size_t len, uint8_t *body, size_t cap,
                       const uint8_t **payload, size_t *payload_len)
{
	*payload = NULL;
	*payload_len = 0;
	if (h->kind != GROUP_KIND_MESSAGE)
		return CAIRN_EINVAL;
	uint8_t key[GROUP_SECRET_LEN], nonce[GROUP_NONCE_LEN];
	const uint8_t *content;
	size_t clen;
	group_message_keys(mk, key, nonce);
	int rc = group_entry_open_body(key, nonce, entry, len, body, cap, &content, &clen);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(nonce, sizeof(nonce));
	if (rc != 0)
		return rc;
	rc = CAIRN_EINVAL;
	if (clen >= GROUP_SIG_LEN) {
		size_t plen = clen - GROUP_SIG_LEN;
		uint8_t tbs[TBS_PREFIX_LEN + GROUP_PAYLOAD_MAX];
		size_t tl = message_tbs(tbs, ctx, h->sender, h->n, content, plen);
		rc = crypto_sign_verify_detached(content + plen, tbs, tl, sign_pk) == 0
		         ? 0
		         : CAIRN_EAUTH;
		sodium_memzero(tbs, tl);
		if (rc == 0) {
			*payload = content;
			*payload_len = plen;
			return 0;
		}
	}
	sodium_memzero(body, len - GROUP_ENTRY_OVERHEAD);
	return rc;
}

/* --- receiving chains (9.3) ---------------------------------------------------------------- */

int group_chains_init(struct group_chains *c, uint64_t epoch,
                      const uint8_t sender_base[static GROUP_SECRET_LEN], uint16_t count)
{
	sodium_memzero(c, sizeof(*c));
	if (count == 0 || count > GROUP_MEMBERS_MAX)
		return CAIRN_EINVAL;
	c->epoch = epoch;
	c->count = count;
	for (uint16_t i = 0; i < count; i++)
		group_sender_chain(sender_base, i, c->chain[i].ck);
	return 0;
}

void group_skipped_init(struct group_skipped *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* Deletes key I of S (wiped), keeping the others in their order. */
static void skipped_delete(struct group_skipped *s, size_t i)
{
	memmove(&s->key[i], &s->key[i + 1], (s->count - i - 1) * sizeof(s->key[0]));
	s->count--;
	sodium_memzero(&s->key[s->count], sizeof(s->key[0]));
}

void group_skipped_drop_epoch(struct group_skipped *s, uint64_t epoch)
{
	size_t o = 0;
	for (size_t i = 0; i < s->count; i++) {
		if (s->key[i].epoch == epoch)
			continue;
		if (o != i)
			s->key[o] = s->key[i];
		o++;
	}
	sodium_memzero(&s->key[o], (s->count - o) * sizeof(s->key[0]));
	s->count = o;
}

/* The position of (EPOCH, SENDER, N) in S, or -1. */
static long skipped_find(const struct group_skipped *s, uint64_t epoch, uint16_t sender, uint32_t n)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->key[i].epoch == epoch && s->key[i].sender == sender && s->key[i].n == n)
			return (long)i;
	return -1;
}

int group_recv_lookup(const struct group_chains *c, const struct group_skipped *s, uint16_t sender,
                      uint32_t n, struct group_recv_step *step)
{
	sodium_memzero(step, sizeof(*step));
	if (sender >= c->count)
		return CAIRN_EINVAL;
	uint64_t next = c->chain[sender].next;
	if (n < next) {
		long i = skipped_find(s, c->epoch, sender, n);
		if (i < 0)
			return CAIRN_EREPLAY;
		memcpy(step->mk, s->key[i].mk, GROUP_SECRET_LEN);
		step->skipped = 1;
	} else {
		if (n - next > GROUP_MAX_SKIP)
			return CAIRN_ELIMIT;
		/* A copy of the chain, stepped to n: the real one moves only on commit. */
		uint8_t ck[GROUP_SECRET_LEN];
		memcpy(ck, c->chain[sender].ck, GROUP_SECRET_LEN);
		for (uint64_t k = next; k <= n; k++)
			group_chain_step(ck, step->mk);
		sodium_memzero(ck, sizeof(ck));
	}
	step->epoch = c->epoch;
	step->sender = sender;
	step->n = n;
	return 0;
}

int group_recv_commit(struct group_chains *c, struct group_skipped *s, struct group_recv_step *step)
{
	int rc = CAIRN_ESTATE;
	if (step->epoch != c->epoch || step->sender >= c->count)
		goto out;
	if (step->skipped) {
		long i = skipped_find(s, step->epoch, step->sender, step->n);
		if (i < 0)
			goto out;
		skipped_delete(s, (size_t)i);
		rc = 0;
		goto out;
	}
	uint64_t next = c->chain[step->sender].next;
	if (step->n < next || step->n - next > GROUP_MAX_SKIP)
		goto out;
	/* Room for the keys this step skips: the oldest of the group go first (9.3). */
	size_t skip = (size_t)(step->n - next);
	if (s->count + skip > GROUP_SKIPPED_MAX) {
		size_t drop = s->count + skip - GROUP_SKIPPED_MAX;
		sodium_memzero(&s->key[0], drop * sizeof(s->key[0]));
		memmove(&s->key[0], &s->key[drop], (s->count - drop) * sizeof(s->key[0]));
		s->count -= drop;
		sodium_memzero(&s->key[s->count], drop * sizeof(s->key[0]));
	}
	uint8_t *ck = c->chain[step->sender].ck;
	uint8_t mk[GROUP_SECRET_LEN];
	for (uint64_t k = next; k < step->n; k++) {
		group_chain_step(ck, s->key[s->count].mk);
		s->key[s->count].epoch = step->epoch;
		s->key[s->count].sender = step->sender;
		s->key[s->count].n = (uint32_t)k;
		s->count++;
	}
	group_chain_step(ck, mk); /* n's own key, which the caller already used */
	sodium_memzero(mk, sizeof(mk));
	c->chain[step->sender].next = (uint64_t)step->n + 1;
	rc = 0;
out:
	sodium_memzero(step, sizeof(*step));
	return rc;
}

void group_recv_discard(struct group_recv_step *step)
{
	sodium_memzero(step, sizeof(*step));
}

/* --- key update data (9.6) ----------------------------------------------------------------- */

int group_key_update_encode(const struct group_key_update *u, uint8_t *out, size_t cap,
                            size_t *out_len)
{
	*out_len = 0;
	if (u->key_serial == 0)
		return CAIRN_EINVAL;
	if (cap < GROUP_KEY_UPDATE_LEN)
		return CAIRN_ENOBUFS;
	put_u32(out, u->key_serial);
	memcpy(out + 4, u->group_key, CAIRN_KEY_LEN);
	put_u32(out + 4 + CAIRN_KEY_LEN, u->prev_count);
	*out_len = GROUP_KEY_UPDATE_LEN;
	return 0;
}

int group_key_update_parse(const uint8_t *in, size_t len, struct group_key_update *u)
{
	memset(u, 0, sizeof(*u));
	if (len != GROUP_KEY_UPDATE_LEN)
		return CAIRN_EINVAL;
	uint32_t serial = get_u32(in);
	if (serial == 0)
		return CAIRN_EINVAL;
	u->key_serial = serial;
	memcpy(u->group_key, in + 4, CAIRN_KEY_LEN);
	u->prev_count = get_u32(in + 4 + CAIRN_KEY_LEN);
	return 0;
}
