/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the reading of a group log entry (docs/PROTOCOL.md 9.4) as a member of the vectors'
 * group does: the header under epoch 0's and epoch 1's header keys (the keys of group/genesis
 * and group/add), then a kind 2 body under the commit key, or a kind 1 body under the sender's
 * message key from the receiving chains, its signature under the roster's sign key, and a key
 * update's data. What opens must seal again to the same bytes (the schedule and Ed25519 are
 * deterministic) when the entry has its padded size; what fails must leave its outputs empty
 * and the chains untouched. The same bytes are also parsed as key update data alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "appmsg.h"
#include "group_entry.h"
#include "group_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From the vectors of 9.12: group/genesis (epoch 0) and group/add (epoch 1). */
static const char *const hex_keys[2][4] = {
    {"2083643569fe2a0d2850852f7eeb21aa64c23a4cdba64e095b1f912ccb6509c6",  /* header_key */
     "e055b5b5a88ba890298f0cf60b6533b61134397bd1db45c2fe6eeef9fd1e57ef",  /* commit_key */
     "386cbeed543ae2efc12bac623d76e5df9335bc1b6664a7bf8ddd7501ac411a61",  /* sender_base */
     "24c3f2e404387c6b637010da700dc92f3dd7cbd6f381fe26db612067f01ab5d6"}, /* head */
    {"bf166e80ff1dccfefeaba900656281e8e0b744e5d178c7822d02e81a7a3d44de",
     "ccb442a2db8e5a870547eef2e913ff811e2ca1bcb92db8c5e89799625c603932",
     "c0d4d857e5d89550357faa88026cb31420d762f4eeb554586d327b03c21cfe87",
     "413e83c4c0cc403e0c22f5261d2561fe139d6b5a2cc0cc2e741f8d7ac8cbfdec"}};

static struct {
	struct group_epoch_keys k;
	uint8_t ctx[GROUP_CTX_LEN];
	uint16_t members;
	struct group_chains chains; /* as the epoch began: each input starts from these */
} epochs[2];
static uint8_t sign_pk[3][32], sign_sk[3][64]; /* Alice, Bob, Carol: seeds 0xa1, 0xa2, 0xa3 */
static struct group_chains work_chains;
static struct group_skipped work_skipped;
static uint8_t body[GROUP_BODY_MAX], again[GROUP_ENTRY_MAX];

static void setup(void)
{
	uint8_t gid[GROUP_ID_LEN], head[GROUP_HEAD_LEN], seed[32];
	memset(gid, 0x67, sizeof(gid));
	for (int e = 0; e < 2; e++) {
		if (sodium_hex2bin(epochs[e].k.header_key, 32, hex_keys[e][0], 64, NULL, NULL,
		                   NULL) ||
		    sodium_hex2bin(epochs[e].k.commit_key, 32, hex_keys[e][1], 64, NULL, NULL,
		                   NULL) ||
		    sodium_hex2bin(epochs[e].k.sender_base, 32, hex_keys[e][2], 64, NULL, NULL,
		                   NULL) ||
		    sodium_hex2bin(head, 32, hex_keys[e][3], 64, NULL, NULL, NULL))
			abort();
		group_ctx(gid, (uint64_t)e, head, epochs[e].ctx);
		epochs[e].members = e == 0 ? 1 : 3;
		if (group_chains_init(&epochs[e].chains, (uint64_t)e, epochs[e].k.sender_base,
		                      epochs[e].members) != 0)
			abort();
	}
	for (int i = 0; i < 3; i++) {
		memset(seed, 0xa1 + i, sizeof(seed));
		crypto_sign_seed_keypair(sign_pk[i], sign_sk[i], seed);
	}
}

/* An opened entry of LEN bytes whose content seals again to AGAIN_LEN bytes: equal bytes when
 * the lengths are (a shorter or longer padding is accepted, 9.4, but is not what a sender
 * makes). */
static void check_again(const uint8_t *data, size_t len, int rc, size_t again_len)
{
	if (rc != 0 || (again_len == len && memcmp(again, data, len) != 0))
		abort();
}

static void check_key_update(const uint8_t *data, size_t size)
{
	struct group_key_update u;
	uint8_t out[GROUP_KEY_UPDATE_LEN];
	size_t len = 0;
	if (group_key_update_parse(data, size, &u) != 0) {
		if (!sodium_is_zero((const uint8_t *)&u, sizeof(u)))
			abort();
		return;
	}
	if (group_key_update_encode(&u, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
}

static void check_part(int e, const struct group_header *h, const uint8_t *data, size_t size)
{
	const uint8_t *content;
	size_t clen, alen = 0;
	if (group_part_open(&epochs[e].k, h, data, size, body, sizeof(body), &content, &clen) !=
	    0) {
		if (content != NULL || clen != 0)
			abort();
		return;
	}
	if (clen > size - GROUP_ENTRY_MIN)
		abort();
	int rc = group_part_seal(&epochs[e].k, data, h->sender, h->n, content, clen, again,
	                         sizeof(again), &alen);
	check_again(data, size, rc, alen);
}

static void check_message(int e, const struct group_header *h, const uint8_t *data, size_t size)
{
	struct group_recv_step st;
	const uint8_t *payload;
	size_t plen, alen = 0;
	memcpy(&work_chains, &epochs[e].chains, sizeof(work_chains));
	group_skipped_init(&work_skipped);
	if (group_recv_lookup(&work_chains, &work_skipped, h->sender, h->n, &st) != 0) {
		if (!sodium_is_zero((const uint8_t *)&st, sizeof(st)))
			abort();
		return;
	}
	int rc = group_message_open(epochs[e].ctx, h, st.mk, sign_pk[h->sender], data, size, body,
	                            sizeof(body), &payload, &plen);
	if (rc != 0) {
		group_recv_discard(&st);
		if (payload != NULL || plen != 0 ||
		    memcmp(&work_chains, &epochs[e].chains, sizeof(work_chains)) != 0 ||
		    work_skipped.count != 0)
			abort();
		return;
	}
	struct appmsg m;
	if (appmsg_parse(payload, plen, &m) == 0 && m.kind == GROUP_KIND_KEY_UPDATE)
		check_key_update(m.data, m.data_len);
	rc = group_message_seal(epochs[e].k.header_key, data, epochs[e].ctx, h->sender, h->n, st.mk,
	                        sign_sk[h->sender], payload, plen, again, sizeof(again), &alen);
	check_again(data, size, rc, alen);
	uint32_t n = h->n;
	if (group_recv_commit(&work_chains, &work_skipped, &st) != 0 ||
	    work_chains.chain[h->sender].next != (uint64_t)n + 1 || work_skipped.count != n ||
	    group_recv_lookup(&work_chains, &work_skipped, h->sender, n, &st) != CAIRN_EREPLAY)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		setup();
		ready = true;
	}
	check_key_update(data, size);
	for (int e = 0; e < 2; e++) {
		struct group_header h;
		if (group_entry_open_header(epochs[e].k.header_key, data, size, &h) != 0) {
			if (h.kind != 0 || h.sender != 0 || h.n != 0)
				abort();
			continue;
		}
		if (h.kind == GROUP_KIND_COMMIT_PART)
			check_part(e, &h, data, size);
		else if (h.kind == GROUP_KIND_MESSAGE)
			check_message(e, &h, data, size);
	}
	return 0;
}
