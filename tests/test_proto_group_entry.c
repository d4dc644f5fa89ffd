/* SPDX-License-Identifier: MIT */
/*
 * Group log entries (proto/group_entry.h) against docs/PROTOCOL.md 9.4 and its vectors: the
 * message and key update entries of group/message and group/keyupdate sealed byte for byte,
 * the commit entries of group/genesis, add and remove opened to their content and sealed
 * again; then every way an entry must fail (a byte flipped, another epoch's key, bad padding,
 * sizes, signatures), the receiving chains (replay, MAX_SKIP, the skipped store's bound and
 * eviction order, failures that change nothing) and key update data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "appmsg.h"
#include "group_entry.h"
#include "group_keys.h"
#include "mdvec.h"

#define KL GROUP_SECRET_LEN

static uint8_t entry[GROUP_ENTRY_MAX + 8], want[GROUP_ENTRY_MAX], body[GROUP_ENTRY_MAX];

static void vec32(const char *vec, const char *key, uint8_t out[static KL])
{
	assert_int_equal(mdvec_hex(vec, key, out, KL), KL);
}

/* Epoch E's keys as the vectors list them (genesis: 0, add: 1), its context, and one of its
 * members' Ed25519 key pair from the vector SEED. */
struct epoch {
	struct group_epoch_keys k;
	uint8_t ctx[GROUP_CTX_LEN];
};

static void load_epoch(const char *vec, uint64_t e, struct epoch *ep)
{
	uint8_t gid[GROUP_ID_LEN], head[GROUP_HEAD_LEN];
	memset(ep, 0, sizeof(*ep));
	assert_int_equal(mdvec_hex("group/genesis", "group_id", gid, sizeof(gid)), GROUP_ID_LEN);
	vec32(vec, "head", head);
	group_ctx(gid, e, head, ep->ctx);
	vec32(vec, "header_key", ep->k.header_key);
	vec32(vec, "commit_key", ep->k.commit_key);
	vec32(vec, "sender_base", ep->k.sender_base);
}

static void signer(const char *vec, const char *key, uint8_t pk[static 32], uint8_t sk[static 64])
{
	uint8_t seed[32];
	vec32(vec, key, seed);
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void *chains_new(void)
{
	struct group_chains *c = malloc(sizeof(*c));
	assert_non_null(c);
	return c;
}

static void *skipped_new(void)
{
	struct group_skipped *s = malloc(sizeof(*s));
	assert_non_null(s);
	group_skipped_init(s);
	return s;
}

/* Bob's payloads: the text of group/message, the key update of group/keyupdate, built with
 * appmsg (8.9) and key update data, and checked against the vectors. */
static size_t bob_payload(int update, uint8_t *out, size_t cap)
{
	const char *vec = update ? "group/keyupdate" : "group/message";
	uint8_t data[64];
	size_t dlen, plen;
	struct appmsg m = {.kind = update ? GROUP_KIND_KEY_UPDATE : APPMSG_TEXT,
	                   .sent_at = 1767225600,
	                   .part_index = 0,
	                   .part_count = 1};
	memset(m.id, update ? 0x71 : 0x70, sizeof(m.id));
	if (update) {
		uint8_t gp[KL];
		struct group_key_update u = {.key_serial = 1, .prev_count = 0};
		vec32(vec, "group_private", gp);
		crypto_scalarmult_base(u.group_key, gp);
		assert_int_equal(group_key_update_encode(&u, data, sizeof(data), &dlen), 0);
		assert_int_equal(dlen, GROUP_KEY_UPDATE_LEN);
		assert_int_equal(mdvec_hex(vec, "data", want, sizeof(want)), dlen);
		assert_memory_equal(data, want, dlen);
	} else {
		dlen = strlen("hello, group");
		memcpy(data, "hello, group", dlen);
	}
	m.data = data;
	m.data_len = dlen;
	assert_int_equal(appmsg_encode(&m, out, cap, &plen), 0);
	assert_int_equal(mdvec_hex(vec, "payload", want, sizeof(want)), plen);
	assert_memory_equal(out, want, plen);
	return plen;
}

/* Seals Bob's message N (0: the text, 1: the key update) as the vectors do; returns the length
 * and checks it against the vector's entry. */
static size_t bob_entry(int update, uint8_t *out)
{
	const char *vec = update ? "group/keyupdate" : "group/message";
	struct epoch ep;
	uint8_t pk[32], sk[64], hnonce[GROUP_NONCE_LEN], ck[KL], mk[KL], payload[256];
	size_t len;
	load_epoch("group/add", 1, &ep);
	signer("group/add", "bob_sign_seed", pk, sk);
	assert_int_equal(mdvec_hex(vec, "hnonce", hnonce, sizeof(hnonce)), GROUP_NONCE_LEN);
	size_t plen = bob_payload(update, payload, sizeof(payload));
	group_sender_chain(ep.k.sender_base, 1, ck);
	for (int i = 0; i <= update; i++)
		group_chain_step(ck, mk);
	assert_int_equal(group_message_seal(ep.k.header_key, hnonce, ep.ctx, 1, (uint32_t)update,
	                                    mk, sk, payload, plen, out, GROUP_ENTRY_MAX, &len),
	                 0);
	assert_int_equal(mdvec_hex(vec, "entry", want, sizeof(want)), len);
	assert_memory_equal(out, want, len);
	return len;
}

static void test_message_vectors(void **state)
{
	(void)state;
	assert_int_equal(bob_entry(0, entry), 896);
	assert_int_equal(bob_entry(1, entry), 896);
}

/* Carol reads Bob's two entries, in order or not: header, key, body, signature, commit. */
static void read_bob(int reverse)
{
	struct epoch ep;
	uint8_t pk[32], sk[64], e2[2][GROUP_ENTRY_MAX], payload[256];
	size_t len[2];
	struct group_chains *c = chains_new();
	struct group_skipped *s = skipped_new();
	load_epoch("group/add", 1, &ep);
	signer("group/add", "bob_sign_seed", pk, sk);
	len[0] = bob_entry(0, e2[0]);
	len[1] = bob_entry(1, e2[1]);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, 3), 0);
	for (int j = 0; j < 2; j++) {
		int i = reverse ? 1 - j : j;
		struct group_header h;
		struct group_recv_step st;
		const uint8_t *p;
		size_t plen;
		assert_int_equal(group_entry_open_header(ep.k.header_key, e2[i], len[i], &h), 0);
		assert_int_equal(h.kind, GROUP_KIND_MESSAGE);
		assert_int_equal(h.sender, 1);
		assert_int_equal(h.n, i);
		assert_int_equal(group_recv_lookup(c, s, h.sender, h.n, &st), 0);
		if (i == 0) {
			vec32("group/message", "message_key", want);
			assert_memory_equal(st.mk, want, KL);
		}
		assert_int_equal(group_message_open(ep.ctx, &h, st.mk, pk, e2[i], len[i], body,
		                                    sizeof(body), &p, &plen),
		                 0);
		assert_int_equal(plen, bob_payload(i, payload, sizeof(payload)));
		assert_memory_equal(p, payload, plen);
		assert_int_equal(group_recv_commit(c, s, &st), 0);
		/* Read once: the same n again is a replay. */
		assert_int_equal(group_recv_lookup(c, s, h.sender, h.n, &st), CAIRN_EREPLAY);
	}
	/* In reverse, n 0 was skipped, stored, then used and deleted. */
	assert_int_equal(s->count, 0);
	assert_int_equal(c->chain[1].next, 2);
	assert_int_equal(c->chain[0].next, 0);
	free(c);
	free(s);
}

static void test_message_read(void **state)
{
	(void)state;
	read_bob(0);
	read_bob(1);
}

/* The commit entries: header (2, committer 0, part 0) under the keys of the epoch that seals
 * them, content = commit_id || 1 || commit || part_sig, and sealed again byte for byte. */
static void test_commit_entries(void **state)
{
	(void)state;
	static const struct {
		const char *vec, *keys;
		uint64_t epoch;
	} cases[] = {{"group/genesis", "group/genesis", 0},
	             {"group/add", "group/genesis", 0},
	             {"group/remove", "group/add", 1}};
	static uint8_t commit[4096], again[GROUP_ENTRY_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct epoch ep;
		struct group_header h;
		const uint8_t *content;
		size_t clen, alen;
		load_epoch(cases[i].keys, cases[i].epoch, &ep);
		size_t len = mdvec_hex(cases[i].vec, "entry", entry, sizeof(entry));
		assert_int_equal(len, 896);
		assert_int_equal(group_entry_open_header(ep.k.header_key, entry, len, &h), 0);
		assert_int_equal(h.kind, GROUP_KIND_COMMIT_PART);
		assert_int_equal(h.sender, 0);
		assert_int_equal(h.n, 0);
		assert_int_equal(
		    group_part_open(&ep.k, &h, entry, len, body, sizeof(body), &content, &clen), 0);
		size_t cl = mdvec_hex(cases[i].vec, "commit", commit, sizeof(commit));
		assert_int_equal(clen, 16 + 1 + cl + 64);
		assert_int_equal(mdvec_hex(cases[i].vec, "commit_id", want, 16), 16);
		assert_memory_equal(content, want, 16);
		assert_int_equal(content[16], 1);
		assert_memory_equal(content + 17, commit, cl);
		/* The part signature belongs to group_commit; its bytes come through untouched. */
		assert_int_equal(
		    group_part_seal(&ep.k, entry, 0, 0, content, clen, again, sizeof(again), &alen),
		    0);
		assert_int_equal(alen, len);
		assert_memory_equal(again, entry, len);
		/* As a kind 1 message it does not open: the kinds are not interchangeable. */
		uint8_t pk[32] = {0};
		const uint8_t *p;
		size_t plen;
		assert_int_equal(group_message_open(ep.ctx, &h, ep.k.commit_key, pk, entry, len,
		                                    body, sizeof(body), &p, &plen),
		                 CAIRN_EINVAL);
	}
}

/* Every byte of hnonce || eheader flipped: the header does not open. Every byte of ebody
 * flipped: the header opens, the body does not. */
static void test_flipped_bytes(void **state)
{
	(void)state;
	struct epoch ep;
	struct group_header h;
	const uint8_t *content;
	size_t clen, len = bob_entry(0, entry);
	uint8_t mk[KL], key[KL], nonce[GROUP_NONCE_LEN];
	load_epoch("group/add", 1, &ep);
	vec32("group/message", "message_key", mk);
	group_message_keys(mk, key, nonce);
	for (size_t i = 0; i < len; i++) {
		entry[i] ^= 0x01;
		int rc = group_entry_open_header(ep.k.header_key, entry, len, &h);
		if (i < GROUP_ENTRY_AD_LEN) {
			assert_int_equal(rc, CAIRN_EAUTH);
			assert_int_equal(h.kind, 0);
		} else {
			assert_int_equal(rc, 0);
		}
		/* The body's ad covers the header region too. */
		assert_int_equal(group_entry_open_body(key, nonce, entry, len, body, sizeof(body),
		                                       &content, &clen),
		                 CAIRN_EAUTH);
		assert_null(content);
		entry[i] ^= 0x01;
	}
	assert_int_equal(
	    group_entry_open_body(key, nonce, entry, len, body, sizeof(body), &content, &clen), 0);
}

static void test_wrong_epoch(void **state)
{
	(void)state;
	struct epoch e0, e1;
	struct group_header h;
	load_epoch("group/genesis", 0, &e0);
	load_epoch("group/add", 1, &e1);
	size_t len = bob_entry(0, entry);
	assert_int_equal(group_entry_open_header(e0.k.header_key, entry, len, &h), CAIRN_EAUTH);
	assert_int_equal(group_entry_open_header(e1.k.commit_key, entry, len, &h), CAIRN_EAUTH);
	len = mdvec_hex("group/remove", "entry", entry, sizeof(entry));
	assert_int_equal(group_entry_open_header(e0.k.header_key, entry, len, &h), CAIRN_EAUTH);
	assert_int_equal(group_entry_open_header(e1.k.header_key, entry, len, &h), 0);
	/* The right header but another epoch's commit key: the body does not open. */
	const uint8_t *content;
	size_t clen;
	assert_int_equal(
	    group_part_open(&e0.k, &h, entry, len, body, sizeof(body), &content, &clen),
	    CAIRN_EAUTH);
}

/* An entry whose body plaintext is PLAIN (PLEN bytes), sealed properly, into ENTRY. */
static size_t raw_entry(const struct epoch *ep, const uint8_t *plain, size_t plen)
{
	struct group_header h = {GROUP_KIND_COMMIT_PART, 0, 0};
	uint8_t hnonce[GROUP_NONCE_LEN];
	size_t len;
	memset(hnonce, 0x5e, sizeof(hnonce));
	assert_int_equal(group_entry_seal(ep->k.header_key, hnonce, &h, ep->k.commit_key, hnonce,
	                                  NULL, 0, entry, sizeof(entry), &len),
	                 0);
	crypto_aead_xchacha20poly1305_ietf_encrypt(entry + GROUP_ENTRY_AD_LEN, NULL, plain, plen,
	                                           entry, GROUP_ENTRY_AD_LEN, NULL, hnonce,
	                                           ep->k.commit_key);
	return GROUP_ENTRY_OVERHEAD + plen;
}

static int open_raw(const struct epoch *ep, size_t len, size_t *clen)
{
	struct group_header h;
	const uint8_t *content;
	assert_int_equal(group_entry_open_header(ep->k.header_key, entry, len, &h), 0);
	return group_part_open(&ep->k, &h, entry, len, body, sizeof(body), &content, clen);
}

static void test_padding(void **state)
{
	(void)state;
	struct epoch ep;
	static uint8_t plain[GROUP_BODY_MAX];
	size_t clen, n = 896 - GROUP_ENTRY_OVERHEAD;
	load_epoch("group/genesis", 0, &ep);
	memset(plain, 0, sizeof(plain));
	plain[1] = 10;
	memset(plain + 2, 0x41, 10);
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), 0);
	assert_int_equal(clen, 10);
	/* Any padding length is accepted, none at all included; sizes other than the three too. */
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, 12), &clen), 0);
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, 100), &clen), 0);
	/* A non-zero byte anywhere in the padding. */
	for (size_t i = 12; i < n; i += 97) {
		plain[i] = 0x80;
		assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), CAIRN_EPADDING);
		plain[i] = 0;
	}
	plain[n - 1] = 1;
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), CAIRN_EPADDING);
	plain[n - 1] = 0;
	/* content_len fits exactly, then one byte too many. */
	plain[0] = (uint8_t)((n - 2) >> 8);
	plain[1] = (uint8_t)(n - 2);
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), 0);
	assert_int_equal(clen, n - 2);
	plain[1] = (uint8_t)(n - 1);
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), CAIRN_EPADDING);
	plain[0] = 0xff;
	plain[1] = 0xff;
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, n), &clen), CAIRN_EPADDING);
	/* The smallest body holds content_len alone; one byte cannot. */
	memset(plain, 0, sizeof(plain));
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, 2), &clen), 0);
	assert_int_equal(clen, 0);
	plain[1] = 1;
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, 2), &clen), CAIRN_EPADDING);
	struct group_header h;
	assert_int_equal(
	    group_entry_open_header(ep.k.header_key, entry, raw_entry(&ep, plain, 1), &h),
	    CAIRN_EINVAL);
	/* The largest entry. */
	memset(plain, 0, sizeof(plain));
	assert_int_equal(open_raw(&ep, raw_entry(&ep, plain, GROUP_BODY_MAX), &clen), 0);
}

static void test_sizes(void **state)
{
	(void)state;
	struct epoch ep;
	struct group_header h = {GROUP_KIND_COMMIT_PART, 0, 0};
	static uint8_t content[GROUP_CONTENT_MAX + 1];
	size_t len, clen;
	load_epoch("group/genesis", 0, &ep);
	uint8_t hn[GROUP_NONCE_LEN] = {1};
	memset(content, 0x33, sizeof(content));
	/* The three sizes, the smallest that holds the content (overhead 63 + 2). */
	static const struct {
		size_t clen, len;
	} sz[] = {{0, 896}, {831, 896}, {832, 3968}, {3903, 3968}, {3904, 16384}, {16319, 16384}};
	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		assert_int_equal(group_part_seal(&ep.k, hn, 0, 0, content, sz[i].clen, entry,
		                                 sizeof(entry), &len),
		                 0);
		assert_int_equal(len, sz[i].len);
		assert_int_equal(open_raw(&ep, len, &clen), 0);
		assert_int_equal(clen, sz[i].clen);
	}
	/* Too much content, or too small an output: nothing written. */
	len = 99;
	assert_int_equal(group_entry_seal(ep.k.header_key, hn, &h, ep.k.commit_key, hn, content,
	                                  GROUP_CONTENT_MAX + 1, entry, sizeof(entry), &len),
	                 CAIRN_ETOOBIG);
	assert_int_equal(len, 0);
	assert_int_equal(group_part_seal(&ep.k, hn, 0, 0, content, 10, entry, 895, &len),
	                 CAIRN_ENOBUFS);
	assert_int_equal(len, 0);
	/* Opening: below the minimum, above the maximum, truncated, trailing bytes. */
	assert_int_equal(group_part_seal(&ep.k, hn, 0, 0, content, 10, entry, sizeof(entry), &len),
	                 0);
	assert_int_equal(group_entry_open_header(ep.k.header_key, entry, GROUP_ENTRY_MIN - 1, &h),
	                 CAIRN_EINVAL);
	assert_int_equal(group_entry_open_header(ep.k.header_key, entry, GROUP_ENTRY_MAX + 1, &h),
	                 CAIRN_EINVAL);
	assert_int_equal(group_entry_open_header(ep.k.header_key, entry, len, &h), 0);
	const uint8_t *c;
	assert_int_equal(group_part_open(&ep.k, &h, entry, len - 1, body, sizeof(body), &c, &clen),
	                 CAIRN_EAUTH);
	entry[len] = 0;
	assert_int_equal(group_part_open(&ep.k, &h, entry, len + 1, body, sizeof(body), &c, &clen),
	                 CAIRN_EAUTH);
	assert_int_equal(group_part_open(&ep.k, &h, entry, len, body, len - 64, &c, &clen),
	                 CAIRN_ENOBUFS);
	assert_int_equal(group_part_open(&ep.k, &h, entry, len, body, len - 63, &c, &clen), 0);
	h.kind = GROUP_KIND_MESSAGE;
	assert_int_equal(group_part_open(&ep.k, &h, entry, len, body, sizeof(body), &c, &clen),
	                 CAIRN_EINVAL);
}

static void test_signature(void **state)
{
	(void)state;
	struct epoch ep, e0;
	struct group_header h;
	uint8_t bob_pk[32], bob_sk[64], carol_pk[32], carol_sk[64], mk[KL], hn[GROUP_NONCE_LEN];
	uint8_t payload[256];
	const uint8_t *p;
	size_t plen, len;
	load_epoch("group/add", 1, &ep);
	load_epoch("group/genesis", 0, &e0);
	signer("group/add", "bob_sign_seed", bob_pk, bob_sk);
	signer("group/add", "carol_sign_seed", carol_pk, carol_sk);
	vec32("group/message", "message_key", mk);
	assert_int_equal(mdvec_hex("group/message", "hnonce", hn, sizeof(hn)), GROUP_NONCE_LEN);
	size_t n = bob_payload(0, payload, sizeof(payload));
	len = bob_entry(0, entry);
	assert_int_equal(group_entry_open_header(ep.k.header_key, entry, len, &h), 0);
	/* Carol's sign key is not Bob's; another epoch's context is not this one's. */
	assert_int_equal(
	    group_message_open(ep.ctx, &h, mk, carol_pk, entry, len, body, sizeof(body), &p, &plen),
	    CAIRN_EAUTH);
	assert_null(p);
	assert_int_equal(
	    group_message_open(e0.ctx, &h, mk, bob_pk, entry, len, body, sizeof(body), &p, &plen),
	    CAIRN_EAUTH);
	/* The header's sender and n are signed: the same body under another header fails. */
	struct group_header h2 = h;
	h2.n = 1;
	assert_int_equal(
	    group_message_open(ep.ctx, &h2, mk, bob_pk, entry, len, body, sizeof(body), &p, &plen),
	    CAIRN_EAUTH);
	/* Carol signing as sender 1 (she can derive every chain): the AEAD opens, the signature
	 * does not verify under Bob's key. */
	assert_int_equal(group_message_seal(ep.k.header_key, hn, ep.ctx, 1, 0, mk, carol_sk,
	                                    payload, n, entry, sizeof(entry), &len),
	                 0);
	assert_int_equal(
	    group_message_open(ep.ctx, &h, mk, bob_pk, entry, len, body, sizeof(body), &p, &plen),
	    CAIRN_EAUTH);
	/* A content shorter than a signature. */
	uint8_t key[KL], nonce[GROUP_NONCE_LEN];
	group_message_keys(mk, key, nonce);
	assert_int_equal(group_entry_seal(ep.k.header_key, hn, &h, key, nonce, payload, 63, entry,
	                                  sizeof(entry), &len),
	                 0);
	assert_int_equal(
	    group_message_open(ep.ctx, &h, mk, bob_pk, entry, len, body, sizeof(body), &p, &plen),
	    CAIRN_EINVAL);
	/* An empty payload signs and verifies; a payload over the maximum does not seal. */
	assert_int_equal(group_message_seal(ep.k.header_key, hn, ep.ctx, 1, 0, mk, bob_sk, NULL, 0,
	                                    entry, sizeof(entry), &len),
	                 0);
	assert_int_equal(
	    group_message_open(ep.ctx, &h, mk, bob_pk, entry, len, body, sizeof(body), &p, &plen),
	    0);
	assert_int_equal(plen, 0);
	static uint8_t big[GROUP_PAYLOAD_MAX + 1];
	assert_int_equal(GROUP_TEXT_DATA_MAX, 16224);
	assert_true(APPMSG_HEADER_LEN + GROUP_TEXT_DATA_MAX <= GROUP_PAYLOAD_MAX);
	assert_int_equal(group_message_seal(ep.k.header_key, hn, ep.ctx, 1, 0, mk, bob_sk, big,
	                                    GROUP_PAYLOAD_MAX, entry, sizeof(entry), &len),
	                 0);
	assert_int_equal(len, GROUP_ENTRY_MAX);
	assert_int_equal(group_message_seal(ep.k.header_key, hn, ep.ctx, 1, 0, mk, bob_sk, big,
	                                    GROUP_PAYLOAD_MAX + 1, entry, sizeof(entry), &len),
	                 CAIRN_ETOOBIG);
}

/* A failed entry changes nothing: lookup, fail, discard, and the state is byte for byte the
 * same; the same lookup again gives the same key. */
static void test_recv_failure_keeps_state(void **state)
{
	(void)state;
	struct epoch ep;
	struct group_recv_step st, st2;
	struct group_chains *c = chains_new(), *c0 = chains_new();
	struct group_skipped *s = skipped_new(), *s0 = skipped_new();
	load_epoch("group/add", 1, &ep);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, 3), 0);
	assert_int_equal(group_recv_lookup(c, s, 2, 3, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0); /* skips 0, 1, 2 of sender 2 */
	assert_int_equal(s->count, 3);
	memcpy(c0, c, sizeof(*c));
	memcpy(s0, s, sizeof(*s));
	assert_int_equal(group_recv_lookup(c, s, 2, 7, &st), 0);
	assert_int_equal(group_recv_lookup(c, s, 2, 1, &st2), 0);
	assert_int_equal(st2.skipped, 1);
	group_recv_discard(&st);
	group_recv_discard(&st2);
	assert_memory_equal(c, c0, sizeof(*c));
	assert_memory_equal(s, s0, sizeof(*s));
	uint8_t mk[KL];
	assert_int_equal(group_recv_lookup(c, s, 2, 1, &st2), 0);
	memcpy(mk, st2.mk, KL);
	assert_int_equal(group_recv_lookup(c, s, 2, 1, &st2), 0);
	assert_memory_equal(mk, st2.mk, KL);
	/* A step applied twice: the second finds the state moved on and applies nothing. */
	assert_int_equal(group_recv_lookup(c, s, 2, 4, &st), 0);
	st2 = st;
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	memcpy(c0, c, sizeof(*c));
	assert_int_equal(group_recv_commit(c, s, &st2), CAIRN_ESTATE);
	assert_memory_equal(c, c0, sizeof(*c));
	assert_int_equal(group_recv_lookup(c, s, 2, 0, &st), 0);
	st2 = st;
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(s->count, 2);
	assert_int_equal(group_recv_commit(c, s, &st2), CAIRN_ESTATE);
	assert_int_equal(s->count, 2);
	/* Another epoch's step does not apply to these chains. */
	assert_int_equal(group_recv_lookup(c, s, 0, 0, &st), 0);
	st.epoch = 2;
	assert_int_equal(group_recv_commit(c, s, &st), CAIRN_ESTATE);
	free(c);
	free(c0);
	free(s);
	free(s0);
}

static void test_recv_bounds(void **state)
{
	(void)state;
	struct epoch ep;
	struct group_recv_step st;
	struct group_chains *c = chains_new();
	struct group_skipped *s = skipped_new();
	load_epoch("group/add", 1, &ep);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, 0), CAIRN_EINVAL);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, GROUP_MEMBERS_MAX + 1),
	                 CAIRN_EINVAL);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, 3), 0);
	/* A sender outside the roster; n more than MAX_SKIP past next. */
	assert_int_equal(group_recv_lookup(c, s, 3, 0, &st), CAIRN_EINVAL);
	assert_int_equal(group_recv_lookup(c, s, 0, GROUP_MAX_SKIP + 1, &st), CAIRN_ELIMIT);
	assert_int_equal(group_recv_lookup(c, s, 0, UINT32_MAX, &st), CAIRN_ELIMIT);
	/* Exactly MAX_SKIP past next: 1000 keys stored, each the chain's own. */
	assert_int_equal(group_recv_lookup(c, s, 0, GROUP_MAX_SKIP, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(s->count, GROUP_MAX_SKIP);
	uint8_t ck[KL], mk[KL];
	group_sender_chain(ep.k.sender_base, 0, ck);
	for (uint32_t n = 0; n < GROUP_MAX_SKIP; n++) {
		group_chain_step(ck, mk);
		assert_int_equal(s->key[n].n, n);
		assert_memory_equal(s->key[n].mk, mk, KL);
	}
	group_chain_step(ck, mk);
	group_chain_step(ck, mk); /* n 1001 */
	assert_int_equal(group_recv_lookup(c, s, 0, GROUP_MAX_SKIP + 1, &st), 0);
	assert_memory_equal(st.mk, mk, KL);
	/* From the new next, MAX_SKIP more is fine again, one more is not. */
	assert_int_equal(group_recv_lookup(c, s, 0, 2 * GROUP_MAX_SKIP + 2, &st), CAIRN_ELIMIT);
	assert_int_equal(group_recv_lookup(c, s, 0, 2 * GROUP_MAX_SKIP + 1, &st), 0);
	group_recv_discard(&st);
	free(c);
	free(s);
}

/* 2000 skipped keys at most for the group, the oldest deleted first, across epochs. */
static void test_recv_eviction(void **state)
{
	(void)state;
	struct epoch ep;
	struct group_recv_step st;
	struct group_chains *c = chains_new(), *old = chains_new();
	struct group_skipped *s = skipped_new();
	load_epoch("group/add", 1, &ep);
	/* Epoch 0's chains (grace period) skip 300 keys of sender 0 first. */
	assert_int_equal(group_chains_init(old, 0, ep.k.commit_key, 2), 0);
	assert_int_equal(group_recv_lookup(old, s, 0, 300, &st), 0);
	assert_int_equal(group_recv_commit(old, s, &st), 0);
	assert_int_equal(group_chains_init(c, 1, ep.k.sender_base, 3), 0);
	assert_int_equal(group_recv_lookup(c, s, 0, 1000, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(s->count, 1300);
	assert_int_equal(group_recv_lookup(c, s, 1, 700, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(s->count, GROUP_SKIPPED_MAX);
	/* Five more: epoch 0's n 0..4 go, the oldest. */
	assert_int_equal(group_recv_lookup(c, s, 2, 5, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(s->count, GROUP_SKIPPED_MAX);
	for (uint32_t n = 0; n < 5; n++)
		assert_int_equal(group_recv_lookup(old, s, 0, n, &st), CAIRN_EREPLAY);
	assert_int_equal(group_recv_lookup(old, s, 0, 5, &st), 0);
	assert_int_equal(group_recv_lookup(c, s, 2, 0, &st), 0);
	assert_int_equal(group_recv_lookup(c, s, 0, 0, &st), 0);
	/* 400 more: all of epoch 0's 295 and epoch 1's sender 0 n 0..104. */
	assert_int_equal(group_recv_lookup(c, s, 2, 406, &st), 0);
	assert_int_equal(group_recv_commit(c, s, &st), 0);
	assert_int_equal(group_recv_lookup(old, s, 0, 299, &st), CAIRN_EREPLAY);
	assert_int_equal(group_recv_lookup(c, s, 0, 104, &st), CAIRN_EREPLAY);
	assert_int_equal(group_recv_lookup(c, s, 0, 105, &st), 0);
	assert_int_equal(s->key[0].n, 105);
	/* The grace ends: epoch 1's keys stay, in order. */
	assert_int_equal(group_recv_lookup(old, s, 1, 10, &st), 0);
	assert_int_equal(group_recv_commit(old, s, &st), 0);
	assert_int_equal(s->count, GROUP_SKIPPED_MAX);
	group_skipped_drop_epoch(s, 0);
	assert_int_equal(s->count, GROUP_SKIPPED_MAX - 10);
	assert_int_equal(s->key[0].n, 115);
	assert_int_equal(group_recv_lookup(c, s, 2, 405, &st), 0);
	free(c);
	free(old);
	free(s);
}

static void test_key_update(void **state)
{
	(void)state;
	uint8_t data[64], out[64];
	size_t len = mdvec_hex("group/keyupdate", "data", data, sizeof(data)), olen;
	struct group_key_update u;
	assert_int_equal(len, GROUP_KEY_UPDATE_LEN);
	assert_int_equal(group_key_update_parse(data, len, &u), 0);
	assert_int_equal(u.key_serial, 1);
	assert_int_equal(u.prev_count, 0);
	assert_int_equal(mdvec_hex("group/keyupdate", "group_key", out, 32), 32);
	assert_memory_equal(u.group_key, out, 32);
	assert_int_equal(group_key_update_encode(&u, out, sizeof(out), &olen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, data, len);
	/* The fields at their places, big-endian. */
	u.key_serial = 0x01020304;
	u.prev_count = 0x0a0b0c0d;
	assert_int_equal(group_key_update_encode(&u, out, sizeof(out), &olen), 0);
	assert_int_equal(group_key_update_parse(out, olen, &u), 0);
	assert_int_equal(u.key_serial, 0x01020304);
	assert_int_equal(u.prev_count, 0x0a0b0c0d);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[39], 0x0d);
	/* Truncated, trailing byte, serial 0, no room. */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(group_key_update_parse(data, l, &u), CAIRN_EINVAL);
	assert_int_equal(group_key_update_parse(data, len + 1, &u), CAIRN_EINVAL);
	data[3] = 0;
	assert_int_equal(group_key_update_parse(data, len, &u), CAIRN_EINVAL);
	assert_int_equal(u.key_serial, 0);
	u.key_serial = 0;
	assert_int_equal(group_key_update_encode(&u, out, sizeof(out), &olen), CAIRN_EINVAL);
	u.key_serial = 1;
	assert_int_equal(group_key_update_encode(&u, out, len - 1, &olen), CAIRN_ENOBUFS);
	assert_int_equal(olen, 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_message_vectors),
	    cmocka_unit_test(test_message_read),
	    cmocka_unit_test(test_commit_entries),
	    cmocka_unit_test(test_flipped_bytes),
	    cmocka_unit_test(test_wrong_epoch),
	    cmocka_unit_test(test_padding),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_signature),
	    cmocka_unit_test(test_recv_failure_keeps_state),
	    cmocka_unit_test(test_recv_bounds),
	    cmocka_unit_test(test_recv_eviction),
	    cmocka_unit_test(test_key_update),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
