/* SPDX-License-Identifier: MIT */
/*
 * Commits in the log (proto/group_commit_parts.h, docs/PROTOCOL.md 9.5 "Parts and entries",
 * 9.11): the part contents of group/genesis, add and remove are the ones their entries carry
 * (each entry opened here with libsodium directly, independently of group_entry.c); the
 * sizes of group/sizes come from commits really built at 5, 200 and 1,000 members; and the
 * assembler counts parts as 9.5 says, whatever order, copies or forgeries the log holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "group_commit.h"
#include "group_commit_parts.h"
#include "group_entry.h"
#include "mdvec.h"

#define KL GROUP_SECRET_LEN

static uint8_t commit_buf[GROUP_PARTS_BYTES_MAX], part_buf[GROUP_PART_CONTENT_MAX];
static uint8_t entry_buf[CAIRN_LOG_ENTRY_MAX], out_buf[GROUP_PARTS_BYTES_MAX];

static void alice_sign_keys(uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[KL];
	assert_int_equal(mdvec_hex("group/genesis", "alice_sign_seed", seed, KL), KL);
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* ctx(e) of the epoch whose head is VEC's. */
static void ctx_of(const char *vec, uint64_t epoch, uint8_t ctx[static GROUP_CTX_LEN])
{
	uint8_t gid[GROUP_ID_LEN], head[GROUP_HEAD_LEN];
	assert_int_equal(mdvec_hex("group/genesis", "group_id", gid, GROUP_ID_LEN), GROUP_ID_LEN);
	assert_int_equal(mdvec_hex(vec, "head", head, GROUP_HEAD_LEN), GROUP_HEAD_LEN);
	group_ctx(gid, epoch, head, ctx);
}

/*
 * Opens VEC's entry with KEYS_VEC's header and commit keys, as 9.4 writes it: header kind 2,
 * sender 0, n 0; body = u16 content_len || content || zeros. Returns the content's length;
 * the content is at entry_buf + 2.
 */
static size_t open_entry(const char *vec, const char *keys_vec)
{
	uint8_t entry[CAIRN_LOG_ENTRY_MAX], hk[KL], ck[KL], header[7];
	unsigned long long hl = 0, bl = 0;
	size_t len = mdvec_hex(vec, "entry", entry, sizeof(entry));
	assert_int_equal(len, 896);
	assert_int_equal(mdvec_hex(keys_vec, "header_key", hk, KL), KL);
	assert_int_equal(mdvec_hex(keys_vec, "commit_key", ck, KL), KL);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(header, &hl, NULL, entry + 24,
	                                                            23, NULL, 0, entry, hk),
	                 0);
	static const uint8_t want_header[7] = {2, 0, 0, 0, 0, 0, 0};
	assert_memory_equal(header, want_header, 7);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
	                     entry_buf, &bl, NULL, entry + 47, len - 47, entry, 47, entry, ck),
	                 0);
	size_t clen = group_get_u16(entry_buf);
	assert_true(2 + clen <= bl);
	assert_true(sodium_is_zero(entry_buf + 2 + clen, bl - 2 - clen));
	return clen;
}

/* The part content of each vector commit is its entry's content, and verifies. */
static void test_vector_parts(void **state)
{
	(void)state;
	static const struct {
		const char *vec, *keys;
		uint64_t epoch;
	} v[] = {{"group/genesis", "group/genesis", 0},
	         {"group/add", "group/genesis", 0},
	         {"group/remove", "group/add", 1}};
	uint8_t pk[32], sk[64], ctx[GROUP_CTX_LEN], id[GROUP_COMMIT_ID_LEN];
	alice_sign_keys(pk, sk);
	for (size_t i = 0; i < 3; i++) {
		size_t len = mdvec_hex(v[i].vec, "commit", commit_buf, sizeof(commit_buf)),
		       plen = 0;
		assert_int_equal(mdvec_hex(v[i].vec, "commit_id", id, sizeof(id)), sizeof(id));
		ctx_of(v[i].keys, v[i].epoch, ctx);
		assert_int_equal(group_commit_part_count(len), 1);
		assert_int_equal(group_commit_part(commit_buf, len, 0, id, ctx, sk, part_buf,
		                                   sizeof(part_buf), &plen),
		                 0);
		assert_int_equal(plen, GROUP_PART_OVERHEAD + len);
		size_t clen = open_entry(v[i].vec, v[i].keys);
		assert_int_equal(clen, plen);
		assert_memory_equal(entry_buf + 2, part_buf, plen);
		/* And group_entry.h's kind 2 sealing of it is the vector's entry, byte for byte. */
		struct group_epoch_keys k;
		uint8_t hnonce[GROUP_NONCE_LEN];
		size_t elen = 0;
		memset(&k, 0, sizeof(k));
		assert_int_equal(mdvec_hex(v[i].keys, "header_key", k.header_key, KL), KL);
		assert_int_equal(mdvec_hex(v[i].keys, "commit_key", k.commit_key, KL), KL);
		assert_int_equal(mdvec_hex(v[i].vec, "hnonce", hnonce, sizeof(hnonce)),
		                 sizeof(hnonce));
		assert_int_equal(group_part_seal(&k, hnonce, 0, 0, part_buf, plen, entry_buf,
		                                 sizeof(entry_buf), &elen),
		                 0);
		uint8_t want[CAIRN_LOG_ENTRY_MAX];
		assert_int_equal(mdvec_hex(v[i].vec, "entry", want, sizeof(want)), elen);
		assert_memory_equal(entry_buf, want, elen);

		struct group_part p;
		assert_int_equal(group_part_parse(part_buf, plen, 0, &p), 0);
		assert_int_equal(p.part_count, 1);
		assert_int_equal(p.slice_len, len);
		assert_memory_equal(p.slice, commit_buf, len);
		assert_int_equal(group_part_verify(&p, 0, ctx, pk), 0);
		/* Under another epoch's context, or as another k, it does not verify. */
		ctx[20] ^= 1;
		assert_int_equal(group_part_verify(&p, 0, ctx, pk), CAIRN_EAUTH);
		ctx[20] ^= 1;
		part_buf[16] = 2; /* part_count 2: now k 1 parses, but the signature is k 0's */
		assert_int_equal(group_part_parse(part_buf, plen, 1, &p), 0);
		assert_int_equal(group_part_verify(&p, 1, ctx, pk), CAIRN_EAUTH);
		assert_int_equal(group_commit_part(commit_buf, len, 1, id, ctx, sk, part_buf,
		                                   sizeof(part_buf), &plen),
		                 CAIRN_EINVAL);
		assert_int_equal(group_commit_part(commit_buf, len, 0, id, ctx, sk, part_buf,
		                                   GROUP_PART_OVERHEAD + len - 1, &plen),
		                 CAIRN_ENOBUFS);
	}
}

static void test_part_parse(void **state)
{
	(void)state;
	struct group_part p;
	uint8_t in[GROUP_PART_CONTENT_MAX + 1];
	memset(in, 0x33, sizeof(in));
	in[16] = 2;
	/* Part 0 of 2 must carry a full slice; part 1 (the last) 1..16238 bytes. */
	assert_int_equal(group_part_parse(in, GROUP_PART_CONTENT_MAX, 0, &p), 0);
	assert_int_equal(group_part_parse(in, GROUP_PART_CONTENT_MAX - 1, 0, &p), CAIRN_EINVAL);
	assert_int_equal(group_part_parse(in, GROUP_PART_OVERHEAD + 1, 1, &p), 0);
	assert_int_equal(group_part_parse(in, GROUP_PART_OVERHEAD, 1, &p), CAIRN_EINVAL);
	assert_int_equal(group_part_parse(in, GROUP_PART_CONTENT_MAX + 1, 1, &p), CAIRN_EINVAL);
	assert_true(p.commit_id == NULL && p.slice_len == 0);
	assert_int_equal(group_part_parse(in, 100, 2, &p), CAIRN_EINVAL); /* k past the count */
	in[16] = 0;
	assert_int_equal(group_part_parse(in, 100, 0, &p), CAIRN_EINVAL);
	in[16] = 17;
	assert_int_equal(group_part_parse(in, 100, 0, &p), CAIRN_EINVAL);
	in[16] = 16;
	assert_int_equal(group_part_parse(in, 100, 15, &p), 0);
	assert_int_equal(group_commit_part_count(0), 0);
	assert_int_equal(group_commit_part_count(GROUP_PART_SLICE_MAX), 1);
	assert_int_equal(group_commit_part_count(GROUP_PART_SLICE_MAX + 1), 2);
	assert_int_equal(group_commit_part_count(GROUP_PARTS_BYTES_MAX), 16);
	assert_int_equal(group_commit_part_count(GROUP_PARTS_BYTES_MAX + 1), 0);
}

/* The members of group.py's large groups: member I's identity and sign key from the seed
 * u32(I) x 8, its group key from the private key u32(I + 1) x 8; member 0 is the admin. */
struct big {
	struct group_roster roster;
	uint8_t sign_sk[GROUP_MEMBERS_MAX][64];
	uint8_t group_private[GROUP_MEMBERS_MAX][KL];
	struct group_next next, opened;
	struct group_base base;
};

static struct big *big_new(unsigned n)
{
	struct big *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	b->roster.count = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		struct group_member *m = &b->roster.member[i];
		uint8_t seed[KL];
		for (unsigned j = 0; j < 8; j++) {
			group_put_u32(seed + 4 * j, i);
			group_put_u32(b->group_private[i] + 4 * j, i + 1);
		}
		crypto_sign_seed_keypair(m->identity, b->sign_sk[i], seed);
		memcpy(m->sign_key, m->identity, 32);
		crypto_scalarmult_base(m->group_key, b->group_private[i]);
		m->role = i == 0 ? GROUP_ROLE_ADMIN : GROUP_ROLE_MEMBER;
	}
	b->base.roster = &b->roster;
	b->base.epoch = 2;
	assert_int_equal(mdvec_hex("group/genesis", "group_id", b->base.group_id, GROUP_ID_LEN),
	                 GROUP_ID_LEN);
	assert_int_equal(mdvec_hex("group/remove", "head", b->base.head, GROUP_HEAD_LEN),
	                 GROUP_HEAD_LEN);
	memset(b->base.init_secret, 0x11, KL);
	b->base.settings = (struct group_settings){604800, 1000};
	return b;
}

static const uint8_t SECRET[KL] = {0xc3}, EPH[KL] = {0xe3};

/* Builds the rotation of B (no change), or the removal of its last member with the move of
 * group/remove, into commit_buf; returns its length. */
static size_t big_commit(struct big *b, bool remove)
{
	static uint8_t loc[GROUP_LOCATION_MAX];
	struct group_change rm = {.kind = GROUP_CHANGE_REMOVE,
	                          .index = (uint16_t)(b->roster.count - 1)};
	struct group_commit_request req = {.sign_secret = b->sign_sk[0],
	                                   .last_seq = 9,
	                                   .commit_secret = SECRET,
	                                   .eph_private = EPH};
	if (remove) {
		req.changes = &rm;
		req.change_count = 1;
		req.location = loc;
		req.location_len = mdvec_hex("group/remove", "location", loc, sizeof(loc));
	}
	size_t len = 0;
	assert_int_equal(
	    group_commit_build(&b->base, &req, commit_buf, sizeof(commit_buf), &len, &b->next), 0);
	return len;
}

/* The entry a part of SLICE bytes takes (9.4): the smallest of 896, 3968, 16384 that holds
 * the overhead, content_len and content. */
static size_t entry_size(size_t slice)
{
	size_t need = 63 + 2 + GROUP_PART_OVERHEAD + slice;
	return need <= 896 ? 896 : need <= 3968 ? 3968 : 16384;
}

/* The text group/sizes gives for a commit of LEN bytes. */
static void wire_size(size_t len, char *out, size_t cap)
{
	unsigned n = group_commit_part_count(len);
	if (n == 1) {
		snprintf(out, cap, "%zu bytes, one entry of %zu", len, entry_size(len));
		return;
	}
	size_t sum = 0, at = (size_t)snprintf(out, cap, "%zu bytes, entries ", len);
	for (unsigned k = 0; k < n; k++) {
		size_t e =
		    entry_size(k + 1 < n ? GROUP_PART_SLICE_MAX : len - k * GROUP_PART_SLICE_MAX);
		sum += e;
		at += (size_t)snprintf(out + at, cap - at, "%s%zu", k ? " + " : "", e);
	}
	snprintf(out + at, cap - at, " = %zu", sum);
}

/* Commits really built at 5, 200 and 1,000 members take what group/sizes says. */
static void test_sizes(void **state)
{
	(void)state;
	static const unsigned ns[] = {5, 200, 1000};
	char got[128], key[32];
	for (size_t i = 0; i < 3; i++) {
		struct big *b = big_new(ns[i]);
		for (int remove = 0; remove < 2; remove++) {
			size_t len = big_commit(b, remove);
			assert_int_equal(len, GROUP_COMMIT_FIXED_LEN +
			                          36 * (ns[i] - (unsigned)remove) +
			                          (remove ? 3 + 148 : 0));
			wire_size(len, got, sizeof(got));
			snprintf(key, sizeof(key), "%s_%u", remove ? "remove" : "rotate", ns[i]);
			assert_string_equal(got, mdvec_str("group/sizes", key));
		}
		assert_string_equal(mdvec_str("group/sizes", "move_box"), "148");
		assert_int_equal(b->next.commit.move_len, 148);
		free(b);
	}
}

/* Offers part K of commit_buf (LEN bytes) at SEQ from SENDER, signed with SK and claiming
 * COUNT parts (0: the true count). */
static int offer(struct group_assembler *as, const uint8_t id[16], size_t len, unsigned k,
                 uint64_t seq, uint16_t sender, const uint8_t *sk, unsigned count, size_t *outlen,
                 uint64_t *first)
{
	size_t plen = 0;
	assert_int_equal(group_commit_part(commit_buf, len, k, id, as->ctx, sk, part_buf,
	                                   sizeof(part_buf), &plen),
	                 0);
	if (count != 0) { /* re-sign with another part_count */
		struct group_part p;
		part_buf[GROUP_COMMIT_ID_LEN] = (uint8_t)count;
		assert_int_equal(group_part_parse(part_buf, plen, k, &p), 0);
		static uint8_t msg[25 + GROUP_CTX_LEN + 18 + GROUP_PART_SLICE_MAX];
		memcpy(msg, "cairn/1 group commit part", 25);
		memcpy(msg + 25, as->ctx, GROUP_CTX_LEN);
		memcpy(msg + 25 + GROUP_CTX_LEN, id, 16);
		msg[25 + GROUP_CTX_LEN + 16] = (uint8_t)k;
		msg[25 + GROUP_CTX_LEN + 17] = (uint8_t)count;
		memcpy(msg + 25 + GROUP_CTX_LEN + 18, p.slice, p.slice_len);
		crypto_sign_detached(part_buf + plen - 64, NULL, msg,
		                     25 + GROUP_CTX_LEN + 18 + p.slice_len, sk);
	}
	return group_assembler_add(as, seq, sender, k, part_buf, plen, out_buf, sizeof(out_buf),
	                           outlen, first);
}

/* The 1,000-member rotation in three parts, through a log with parts out of order, copies,
 * forgeries and a wrong part count; then member 500 opens what the assembler gave. */
static void test_assemble(void **state)
{
	(void)state;
	struct big *b = big_new(GROUP_MEMBERS_MAX);
	size_t len = big_commit(b, false), olen = 0;
	assert_int_equal(group_commit_part_count(len), 3);
	uint8_t ctx[GROUP_CTX_LEN], id[16];
	uint64_t first = 0;
	memset(id, 0x63, sizeof(id));
	group_ctx(b->base.group_id, b->base.epoch, b->base.head, ctx);
	struct group_assembler as;
	group_assembler_init(&as, &b->roster, ctx);
	const uint8_t *admin = b->sign_sk[0], *member = b->sign_sk[1];

	assert_int_equal(offer(&as, id, len, 2, 10, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COUNTED);
	/* Member 1 posts part 0 first, signed as itself; then as the admin with its own key. */
	assert_int_equal(offer(&as, id, len, 0, 11, 1, member, 0, &olen, &first), CAIRN_EAUTH);
	assert_int_equal(offer(&as, id, len, 0, 12, 0, member, 0, &olen, &first), CAIRN_EAUTH);
	/* A sender outside the roster. */
	assert_int_equal(offer(&as, id, len, 0, 13, 1000, admin, 0, &olen, &first), CAIRN_EAUTH);
	/* A copy of part 2. */
	assert_int_equal(offer(&as, id, len, 2, 14, 0, admin, 0, &olen, &first),
	                 GROUP_PART_DUPLICATE);
	/* Part 1 signed by the admin but claiming 2 parts: not this commit's count. */
	assert_int_equal(offer(&as, id, len, 1, 15, 0, admin, 2, &olen, &first), CAIRN_EINVAL);
	/* Out of log order. */
	assert_int_equal(offer(&as, id, len, 0, 15, 0, admin, 0, &olen, &first), CAIRN_EINVAL);
	assert_int_equal(offer(&as, id, len, 0, 16, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COUNTED);
	assert_int_equal(olen, 0);
	assert_int_equal(offer(&as, id, len, 1, 17, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COMPLETE);
	assert_int_equal(olen, len);
	assert_int_equal(first, 10);
	assert_memory_equal(out_buf, commit_buf, len);
	assert_int_equal(offer(&as, id, len, 1, 18, 0, admin, 0, &olen, &first),
	                 GROUP_PART_DUPLICATE);

	/* Member 500 opens it: its seal, the next epoch, the confirm. */
	struct group_key_pair kp = {.key_serial = 0};
	memcpy(kp.private_key, b->group_private[500], KL);
	struct group_opener op = {.self = 500, .keys = &kp, .key_count = 1};
	assert_int_equal(olen, 0); /* the copy gave nothing */
	assert_int_equal(group_commit_open(&b->base, out_buf, len, NULL, 0, 10, 0, &op, &b->opened),
	                 0);
	assert_true(b->opened.has_secret);
	assert_memory_equal(b->opened.epoch_secret, b->next.epoch_secret, KL);
	assert_int_equal(b->opened.roster.count, GROUP_MEMBERS_MAX);

	/* Eight commits under way fill the assembler; a ninth waits for room. */
	group_assembler_free(&as);
	group_assembler_init(&as, &b->roster, ctx);
	for (unsigned i = 0; i < GROUP_ASSEMBLIES_MAX; i++) {
		id[0] = (uint8_t)i;
		assert_int_equal(offer(&as, id, len, 0, 20 + i, 0, admin, 0, &olen, &first),
		                 GROUP_PART_COUNTED);
	}
	id[0] = 0xee;
	assert_int_equal(offer(&as, id, len, 0, 40, 0, admin, 0, &olen, &first), CAIRN_EFULL);
	/* Once one completes, its slot serves the next. */
	id[0] = 3;
	assert_int_equal(offer(&as, id, len, 1, 41, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COUNTED);
	assert_int_equal(offer(&as, id, len, 2, 42, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COMPLETE);
	assert_int_equal(first, 23);
	id[0] = 0xee;
	assert_int_equal(offer(&as, id, len, 0, 43, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COUNTED);
	/* A buffer too small for a completed commit. */
	assert_int_equal(offer(&as, id, len, 1, 44, 0, admin, 0, &olen, &first),
	                 GROUP_PART_COUNTED);
	size_t plen = 0;
	assert_int_equal(group_commit_part(commit_buf, len, 2, id, ctx, admin, part_buf,
	                                   sizeof(part_buf), &plen),
	                 0);
	assert_int_equal(
	    group_assembler_add(&as, 45, 0, 2, part_buf, plen, out_buf, len - 1, &olen, &first),
	    CAIRN_ENOBUFS);
	group_assembler_free(&as);
	free(b);
}

/* The 1,000-member removal sealed as entries (group_entry.h), read back by a member: the
 * entry sizes of group/sizes, and the assembler gives the commit back. */
static void test_entries(void **state)
{
	(void)state;
	struct big *b = big_new(GROUP_MEMBERS_MAX);
	size_t len = big_commit(b, true), olen = 0, sizes[3];
	uint8_t ctx[GROUP_CTX_LEN], id[16];
	uint64_t first = 0;
	struct group_epoch_keys k;
	memset(&k, 0x5a, sizeof(k));
	memset(id, 0x64, sizeof(id));
	group_ctx(b->base.group_id, b->base.epoch, b->base.head, ctx);
	struct group_assembler as;
	group_assembler_init(&as, &b->roster, ctx);
	for (unsigned i = 0; i < 3; i++) {
		static uint8_t entry[CAIRN_LOG_ENTRY_MAX], body[CAIRN_LOG_ENTRY_MAX];
		uint8_t hnonce[GROUP_NONCE_LEN];
		size_t plen = 0, clen = 0;
		const uint8_t *content = NULL;
		struct group_header hd;
		memset(hnonce, 0x56 + (int)i, sizeof(hnonce));
		assert_int_equal(group_commit_part(commit_buf, len, i, id, ctx, b->sign_sk[0],
		                                   part_buf, sizeof(part_buf), &plen),
		                 0);
		assert_int_equal(group_part_seal(&k, hnonce, 0, i, part_buf, plen, entry,
		                                 sizeof(entry), &sizes[i]),
		                 0);
		assert_int_equal(group_entry_open_header(k.header_key, entry, sizes[i], &hd), 0);
		assert_int_equal(
		    group_part_open(&k, &hd, entry, sizes[i], body, sizeof(body), &content, &clen),
		    0);
		assert_int_equal(group_assembler_add(&as, 100 + i, hd.sender, hd.n, content, clen,
		                                     out_buf, sizeof(out_buf), &olen, &first),
		                 i < 2 ? GROUP_PART_COUNTED : GROUP_PART_COMPLETE);
	}
	assert_int_equal(sizes[0], 16384);
	assert_int_equal(sizes[1], 16384);
	assert_int_equal(sizes[2], 16384);
	assert_int_equal(olen, len);
	assert_int_equal(first, 100);
	assert_memory_equal(out_buf, commit_buf, len);
	group_assembler_free(&as);
	free(b);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector_parts), cmocka_unit_test(test_part_parse),
	    cmocka_unit_test(test_sizes),        cmocka_unit_test(test_assemble),
	    cmocka_unit_test(test_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
