/* SPDX-License-Identifier: MIT */
/*
 * Private routing in the relay's command layer (docs/PROTOCOL.md 5.11), on the rig of
 * test_relay_commands.c (support/cmdrig.h: no sockets, the in-memory storage, deferred work
 * inline): FORWARDED runs its sealed SEND or SEND_WORK as the direct command would, its reply
 * sealed and sent only when ready (OK after the disk); what does not open gets an unsealed
 * `bad request`; FORWARD's rules (own users only, the address, the limits, the own key) and
 * the carrier's answers (SEALED unchanged, `unreachable`), with a fake carrier.
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

#include "cairn/address.h"
#include "forward.h"
#include "fwdport.h"
#include "it_forward.h"
#include "support/cmdrig.h"

static uint8_t relay_sk[32];

static int fwd_setup(void **state)
{
	int rc = setup(state);
	memset(relay_sk, 0x72, sizeof(relay_sk));
	relay->private_key = relay_sk;
	crypto_scalarmult_base(relay->public_key, relay_sk);
	return rc;
}

/* Encodes a SEND (request id 0) to SENDER_ID of "env-N", or with ENV_LEN bytes if given. */
static size_t inner_send(uint8_t type, const uint8_t *sender_id, int n, size_t env_len,
                         uint8_t *out, size_t cap)
{
	static uint8_t body[CAIRN_ENVELOPE_MAX + 1];
	static const uint8_t work[16];
	size_t len = env_len;
	if (env_len == 0)
		len = (size_t)snprintf((char *)body, sizeof(body), "env-%d", n);
	else
		memset(body, 0x5e, env_len);
	struct cairn_msg m = {.type = type,
	                      .sender_id = sender_id,
	                      .envelope = body,
	                      .envelope_len = len,
	                      .work = type == CAIRN_CMD_SEND_WORK ? work : NULL};
	if (env_len > CAIRN_ENVELOPE_MAX) {
		/* The encoder refuses it: write the bin 16 by hand, as a hostile sender would. */
		size_t k = 0;
		out[k++] = 0x95, out[k++] = 0x08, out[k++] = 0x00, out[k++] = 0xc4, out[k++] = 24;
		memcpy(out + k, sender_id, 24);
		k += 24;
		out[k++] = 0xc0, out[k++] = 0xc5, out[k++] = (uint8_t)(len >> 8),
		out[k++] = (uint8_t)len;
		memcpy(out + k, body, len);
		return k + len;
	}
	size_t olen;
	assert_int_equal(cairn_msg_encode(&m, out, cap, &olen), 0);
	return olen;
}

/* Seals COMMAND for the relay under test; K_REP gets the reply key. */
static size_t seal(const uint8_t *command, size_t len, uint8_t *out, uint8_t k_rep[32])
{
	size_t olen;
	assert_int_equal(
	    forward_seal(relay->public_key, command, len, out, FORWARD_SEALED_MAX, &olen, k_rep),
	    0);
	return olen;
}

static void forwarded(struct conn *c, uint32_t rid, const uint8_t *sealed, size_t len)
{
	struct cairn_msg m = {
	    .type = CAIRN_CMD_FORWARDED, .request_id = rid, .sealed = sealed, .sealed_len = len};
	command(c, &m);
}

/* The next reply of C is SEALED for RID, holding TYPE (and CODE for an ERROR) with id 0. */
static void expect_sealed(struct conn *c, uint32_t rid, const uint8_t k_rep[32], uint8_t type,
                          int code)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_SEALED);
	assert_int_equal(r->request_id, rid);
	uint8_t inner[FORWARD_REPLY_INNER];
	struct cairn_msg m;
	it_open_sealed_reply(k_rep, r->sealed, r->sealed_len, inner, &m);
	assert_int_equal(m.type, type);
	assert_int_equal(m.request_id, 0);
	if (type == CAIRN_REPLY_ERROR)
		assert_int_equal(m.code, (uint32_t)-code);
}

static void test_forwarded_send(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *peer = open_conn();
	struct box b;
	create(owner, &b);
	static uint8_t cmd[CAIRN_MSG_ENCODED_MAX], sealed[FORWARD_SEALED_MAX];
	uint8_t k_rep[32];
	size_t n = inner_send(CAIRN_CMD_SEND, b.sender_id, 7, 0, cmd, sizeof(cmd));
	size_t slen = seal(cmd, n, sealed, k_rep);
	/* An anonymous peer (no mailbox here) may send FORWARDED. */
	forwarded(peer, 5, sealed, slen);
	expect_nothing(peer); /* the OK waits for the disk, so the SEALED does too */
	settle();
	expect_sealed(peer, 5, k_rep, CAIRN_REPLY_OK, 0);
	expect_nothing(peer);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 9, 0);
	expect_ok(owner, 9);
	settle();
	assert_int_equal(expect_envelope(owner, 9, NULL), 7);
	/* The same sealed bytes again (a forwarding relay's replay): a second copy, as 5.11 says.
	 */
	forwarded(peer, 6, sealed, slen);
	settle();
	expect_sealed(peer, 6, k_rep, CAIRN_REPLY_OK, 0);
	/* The connection goes on: a PING after it is answered plainly. */
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = 5};
	command(peer, &ping);
	expect_ok(peer, 5);
}

/* The inner command's refusals come sealed, with the direct command's codes. */
static void test_forwarded_inner_errors(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *peer = open_conn();
	struct box b;
	create(owner, &b);
	static uint8_t cmd[CAIRN_MSG_ENCODED_MAX + 64], sealed[FORWARD_SEALED_MAX];
	uint8_t k_rep[32], nobody[24];
	memset(nobody, 0x99, sizeof(nobody));

	size_t n = inner_send(CAIRN_CMD_SEND, nobody, 1, 0, cmd, sizeof(cmd));
	forwarded(peer, 1, sealed, seal(cmd, n, sealed, k_rep));
	expect_sealed(peer, 1, k_rep, CAIRN_REPLY_ERROR, CAIRN_EDENIED);
	n = inner_send(CAIRN_CMD_SEND_WORK, b.sender_id, 1, 0, cmd, sizeof(cmd));
	forwarded(peer, 2, sealed, seal(cmd, n, sealed, k_rep));
	expect_sealed(peer, 2, k_rep, CAIRN_REPLY_ERROR, CAIRN_EDENIED);
	n = inner_send(CAIRN_CMD_SEND, b.sender_id, 1, CAIRN_ENVELOPE_MAX + 1, cmd, sizeof(cmd));
	forwarded(peer, 3, sealed, seal(cmd, n, sealed, k_rep));
	expect_sealed(peer, 3, k_rep, CAIRN_REPLY_ERROR, CAIRN_ETOOBIG);
	const uint8_t short_sid[] = {0x95, 0x08, 0x00, 0xc4, 0x01, 0x00, 0xc0, 0xc4, 0x00};
	forwarded(peer, 4, sealed, seal(short_sid, sizeof(short_sid), sealed, k_rep));
	expect_sealed(peer, 4, k_rep, CAIRN_REPLY_ERROR, CAIRN_EBADREQ);
	/* The relay shutting down refuses the FORWARDED itself, unsealed, like any command. */
	n = inner_send(CAIRN_CMD_SEND, b.sender_id, 1, 0, cmd, sizeof(cmd));
	relay->stopping = true;
	forwarded(peer, 5, sealed, seal(cmd, n, sealed, k_rep));
	relay->stopping = false;
	expect_error(peer, 5, CAIRN_ESHUTDOWN);
	expect_nothing(peer);
	expect_nothing(owner);
}

/* What does not open, or is not one SEND or SEND_WORK: an unsealed `bad request`. */
static void test_forwarded_refused(void **state)
{
	(void)state;
	struct conn *peer = open_conn();
	static uint8_t cmd[256], sealed[FORWARD_SEALED_MAX];
	uint8_t k_rep[32], sid[24] = {0};
	size_t n = inner_send(CAIRN_CMD_SEND, sid, 1, 0, cmd, sizeof(cmd));
	size_t slen = seal(cmd, n, sealed, k_rep);
	sealed[40] ^= 1;
	forwarded(peer, 1, sealed, slen);
	expect_error(peer, 1, CAIRN_EBADREQ);
	sealed[40] ^= 1;
	forwarded(peer, 2, sealed, slen - 1);
	expect_error(peer, 2, CAIRN_EBADREQ);
	forwarded(peer, 3, sealed, FORWARD_SEALED_MIN - 1);
	expect_error(peer, 3, CAIRN_EBADREQ);
	/* Sealed for another relay. */
	uint8_t other[32];
	memset(other, 0x73, sizeof(other));
	crypto_scalarmult_base(other, other);
	assert_int_equal(forward_seal(other, cmd, n, sealed, sizeof(sealed), &slen, k_rep), 0);
	forwarded(peer, 4, sealed, slen);
	expect_error(peer, 4, CAIRN_EBADREQ);
	/* Other commands inside: PING, a nested FORWARDED, an AUTH. */
	const uint8_t ping[] = {0x92, 0x01, 0x00};
	forwarded(peer, 5, sealed, seal(ping, sizeof(ping), sealed, k_rep));
	expect_error(peer, 5, CAIRN_EBADREQ);
	static uint8_t nested[FORWARD_SEALED_MAX + 16];
	struct cairn_msg f = {.type = CAIRN_CMD_FORWARDED, .sealed = sealed, .sealed_len = 49};
	assert_int_equal(cairn_msg_encode(&f, nested, sizeof(nested), &n), 0);
	forwarded(peer, 6, sealed, seal(nested, n, sealed, k_rep));
	expect_error(peer, 6, CAIRN_EBADREQ);
	expect_nothing(peer);
}

/* The connection closes while its forwarded SEND waits for the disk: nothing is sent, the
 * envelope is still stored (as a direct SEND's), and the key goes with the connection. */
static void test_forwarded_close_midway(void **state)
{
	(void)state;
	struct conn *owner = open_conn(), *peer = open_conn();
	struct box b;
	create(owner, &b);
	static uint8_t cmd[256], sealed[FORWARD_SEALED_MAX];
	uint8_t k_rep[32];
	size_t n = inner_send(CAIRN_CMD_SEND, b.sender_id, 3, 0, cmd, sizeof(cmd));
	forwarded(peer, 1, sealed, seal(cmd, n, sealed, k_rep));
	close_conn(peer);
	settle();
	expect_nothing(peer);
	on_mailbox(owner, CAIRN_CMD_SUBSCRIBE, &b, 2, 0);
	expect_ok(owner, 2);
	settle();
	assert_int_equal(expect_envelope(owner, 2, NULL), 3);
}

/* ---- FORWARD ---------------------------------------------------------------------------- */

struct carried {
	forward_done_fn done;
	void *arg;
	uint8_t sealed[FORWARD_SEALED_MAX];
	size_t len;
	struct cairn_address dest;
};
static struct carried carried[8];
static size_t n_carried;
static int carry_rc;

static int fake_carry(void *impl, const struct cairn_address *dest, const uint8_t *sealed,
                      size_t len, forward_done_fn done, void *arg)
{
	(void)impl;
	if (carry_rc != 0)
		return carry_rc;
	assert_true(n_carried < 8);
	struct carried *c = &carried[n_carried++];
	c->done = done;
	c->arg = arg;
	memcpy(c->sealed, sealed, len);
	c->len = len;
	c->dest = *dest;
	return 0;
}

static const struct forward_carrier fake_carrier = {.carry = fake_carry};

static void forward(struct conn *c, uint32_t rid, const char *relay_text, const uint8_t *sealed,
                    size_t len)
{
	struct cairn_msg m = {.type = CAIRN_CMD_FORWARD,
	                      .request_id = rid,
	                      .relay = (const uint8_t *)relay_text,
	                      .relay_len = strlen(relay_text),
	                      .sealed = sealed,
	                      .sealed_len = len};
	command(c, &m);
}

static void address_text(const uint8_t key[32], char out[CAIRN_ADDRESS_MAX + 1])
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = 7443};
	memcpy(a.key, key, 32);
	strcpy(a.host, "127.0.0.3");
	assert_int_equal(cairn_address_format(&a, out, CAIRN_ADDRESS_MAX + 1), 0);
}

static void test_forward_rules(void **state)
{
	(void)state;
	n_carried = 0;
	carry_rc = 0;
	struct conn *user = open_conn(), *stranger = open_conn();
	struct box b;
	create(user, &b);
	static uint8_t sealed[FORWARD_SEALED_MAX], cmd[256];
	uint8_t k_rep[32], other[32];
	memset(other, 0x42, sizeof(other));
	char own[CAIRN_ADDRESS_MAX + 1], remote[CAIRN_ADDRESS_MAX + 1];
	address_text(relay->public_key, own);
	address_text(other, remote);
	size_t n = inner_send(CAIRN_CMD_SEND, b.sender_id, 4, 0, cmd, sizeof(cmd));
	size_t slen = seal(cmd, n, sealed, k_rep);

	/* 1: only a connection that manages a mailbox here; not when forwarding is off. */
	forward(stranger, 1, remote, sealed, slen);
	expect_error(stranger, 1, CAIRN_EDENIED);
	cfg.forward_enabled = 0;
	forward(user, 2, remote, sealed, slen);
	expect_error(user, 2, CAIRN_EDENIED);
	cfg.forward_enabled = 1;
	/* 2: a direct address only. */
	forward(user, 3, "cairn://nonsense", sealed, slen);
	expect_error(user, 3, CAIRN_EBADREQ);
	char https[CAIRN_ADDRESS_MAX + 1];
	struct cairn_address a;
	assert_int_equal(cairn_address_parse(remote, &a), 0);
	a.transport = CAIRN_TRANSPORT_HTTPS;
	strcpy(a.path, "secretpath0123456789");
	assert_int_equal(cairn_address_format(&a, https, sizeof(https)), 0);
	forward(user, 4, https, sealed, slen);
	expect_error(user, 4, CAIRN_EBADREQ);
	/* No carrier (a relay without outgoing connections): unreachable. */
	forward(user, 5, remote, sealed, slen);
	expect_error(user, 5, CAIRN_EUNREACHABLE);

	/* Its own key: run as a FORWARDED on this connection (the envelope is stored). */
	forward(user, 6, own, sealed, slen);
	expect_nothing(user);
	settle();
	expect_sealed(user, 6, k_rep, CAIRN_REPLY_OK, 0);

	/* Carried: the bytes unchanged; the answer back unchanged, or unreachable. */
	relay->carrier = &fake_carrier;
	cfg.forward_per_connection = 2;
	forward(user, 7, remote, sealed, slen);
	forward(user, 8, remote, sealed, slen);
	forward(user, 9, remote, sealed, slen); /* over the connection's limit */
	expect_error(user, 9, CAIRN_ELIMIT);
	expect_nothing(user);
	assert_int_equal(n_carried, 2);
	assert_int_equal(carried[0].len, slen);
	assert_memory_equal(carried[0].sealed, sealed, slen);
	assert_memory_equal(carried[0].dest.key, other, 32);
	uint8_t reply[FORWARD_REPLY_SEALED];
	memset(reply, 0xab, sizeof(reply));
	carried[1].done(carried[1].arg, 0, reply, sizeof(reply));
	struct reply *r = next_reply(user);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_SEALED);
	assert_int_equal(r->request_id, 8);
	assert_memory_equal(r->sealed, reply, sizeof(reply));
	carried[0].done(carried[0].arg, CAIRN_EUNREACHABLE, NULL, 0);
	expect_error(user, 7, CAIRN_EUNREACHABLE);
	assert_int_equal(relay->forwards, 0);

	/* Relay-wide limit, then the carrier's own refusal. */
	cfg.forward_max = 1;
	forward(user, 10, remote, sealed, slen);
	forward(user, 11, remote, sealed, slen);
	expect_error(user, 11, CAIRN_ELIMIT);
	carried[2].done(carried[2].arg, CAIRN_EUNREACHABLE, NULL, 0);
	expect_error(user, 10, CAIRN_EUNREACHABLE);
	carry_rc = CAIRN_ELIMIT;
	forward(user, 12, remote, sealed, slen);
	expect_error(user, 12, CAIRN_ELIMIT);
	carry_rc = 0;

	/* The connection closes while a FORWARD waits: the answer is dropped, nothing leaks. */
	cfg.forward_max = 8;
	forward(user, 13, remote, sealed, slen);
	assert_int_equal(n_carried, 4);
	close_conn(user);
	carried[3].done(carried[3].arg, 0, reply, sizeof(reply));
	expect_nothing(user);
	assert_int_equal(relay->forwards, 0);
	relay->carrier = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_forwarded_send, fwd_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarded_inner_errors, fwd_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarded_refused, fwd_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarded_close_midway, fwd_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_rules, fwd_setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
