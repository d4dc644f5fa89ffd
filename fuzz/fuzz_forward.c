/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the openers of private routing (proto/forward.h, docs/PROTOCOL.md 5.11), which a
 * destination relay and a client run on bytes an anonymous peer or a forwarding relay chose:
 * forward_open with the relay key of the forward/seal vector (on success the command lies
 * inside INNER and forward_inner_kind and forward_sealed_kind classify it, a bundle item's
 * BUNDLED decoded as the relay decodes it; on failure every output is cleared) and
 * forward_reply_open with that vector's reply key. A successful open must seal back to the
 * same bytes (one encoding). Both see every input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "forward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static uint8_t relay_sk[32], relay_pk[32], k_rep_vec[32];
static uint8_t inner[FORWARD_INNER_MAX];

/* The keys of forward/seal: relay secret 32 x 0x72, and the reply key it derives with the
 * ephemeral secret 32 x 0x71 (computed here, so no vector text is needed). */
static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	CHECK(sodium_init() >= 0);
	memset(relay_sk, 0x72, sizeof(relay_sk));
	crypto_scalarmult_base(relay_pk, relay_sk);
	uint8_t e[32], out[FORWARD_SEALED_MAX];
	const uint8_t cmd[] = {0x92, 0x01, 0x00};
	size_t len;
	memset(e, 0x71, sizeof(e));
	CHECK(forward_seal_with(e, relay_pk, cmd, sizeof(cmd), out, sizeof(out), &len, k_rep_vec) ==
	      0);
}

static void check_open(const uint8_t *data, size_t size)
{
	const uint8_t *cmd = NULL;
	size_t cmd_len = 99;
	uint8_t k_rep[32];
	int rc = forward_open(relay_sk, relay_pk, data, size, inner, &cmd, &cmd_len, k_rep);
	if (rc != 0) {
		CHECK(rc == CAIRN_EBADREQ && cmd == NULL && cmd_len == 0);
		CHECK(sodium_is_zero(k_rep, sizeof(k_rep)));
		return;
	}
	CHECK(cmd == inner + FORWARD_LEN_PREFIX && cmd_len >= 1 && cmd_len <= FORWARD_COMMAND_MAX);
	int kind = forward_inner_kind(cmd, cmd_len);
	CHECK(kind == CAIRN_CMD_SEND || kind == CAIRN_CMD_SEND_WORK || kind == CAIRN_EBADREQ);
	/* A bundle item's inner (5.12): a BUNDLED only at the item's size, decoded as the relay
	 * decodes it (bundled.c), its fields inside the command. */
	int sealed_kind = forward_sealed_kind(cmd, cmd_len, size);
	CHECK(sealed_kind == kind || (sealed_kind == CAIRN_CMD_BUNDLED && kind == CAIRN_EBADREQ &&
	                              size == CAIRN_BUNDLE_ITEM_LEN));
	if (sealed_kind == CAIRN_CMD_BUNDLED) {
		struct cairn_msg m;
		int have_id = 0;
		int drc = cairn_msg_decode(cmd, cmd_len, NULL, &m, &have_id);
		CHECK(have_id == 1 && m.type == CAIRN_CMD_BUNDLED);
		if (drc == 0)
			CHECK(m.sender_id > cmd &&
			      m.sender_id + CAIRN_MAILBOX_ID_LEN <= cmd + cmd_len &&
			      m.envelope_len <= CAIRN_ENVELOPE_MAX);
		else
			CHECK(drc == CAIRN_ETYPE);
	}
	/* Only someone holding the relay's key or the ephemeral secret can make bytes that open;
	 * the fuzzer gets here from seeds: resealing with an unknown E is impossible, so check
	 * the reply path with the derived key instead. */
	uint8_t sealed_reply[FORWARD_REPLY_SEALED], rin[FORWARD_REPLY_INNER];
	const uint8_t ok[] = {0x92, 0x40, 0x00}, *r;
	size_t rlen;
	CHECK(forward_reply_seal(k_rep, ok, sizeof(ok), sealed_reply) == 0);
	CHECK(forward_reply_open(k_rep, sealed_reply, sizeof(sealed_reply), rin, &r, &rlen) == 0);
	CHECK(rlen == sizeof(ok) && memcmp(r, ok, rlen) == 0);
}

static void check_reply(const uint8_t *data, size_t size)
{
	uint8_t rin[FORWARD_REPLY_INNER], again[FORWARD_REPLY_SEALED];
	const uint8_t *r = data;
	size_t rlen = 99;
	int rc = forward_reply_open(k_rep_vec, data, size, rin, &r, &rlen);
	if (rc != 0) {
		CHECK(rc == CAIRN_EAUTH && r == NULL && rlen == 0);
		return;
	}
	CHECK(size == FORWARD_REPLY_SEALED && rlen >= 1 && rlen <= FORWARD_REPLY_MAX);
	CHECK(forward_reply_seal(k_rep_vec, r, rlen, again) == 0);
	CHECK(memcmp(again, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	check_open(data, size);
	check_reply(data, size);
	return 0;
}
