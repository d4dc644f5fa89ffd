/* SPDX-License-Identifier: MIT */
/*
 * The SOCKS5 client's credentials (client/socks5.c, docs/PROTOCOL.md sections 7.1 and 7.3),
 * byte for byte, over a socketpair: the test writes the proxy's whole answer first, runs the
 * blocking exchange, then reads what the client sent. Each path (no authentication, a fresh
 * isolation username, the obfs4 bridge's arguments) and each malformed or refusing answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "socks5.h"

/* A CONNECT success with the bound address 0.0.0.0:0, as Tor sends it. */
static const uint8_t ok_reply[] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
/* What the relay would send first: must stay unread by the SOCKS5 exchange. */
static const uint8_t relay_bytes[] = {0xc4, 0x1e};

struct run {
	int rc;
	uint8_t sent[1024]; /* what the client wrote to the proxy */
	size_t sent_len;
	uint8_t left[8]; /* what remained unread on the client's side */
	size_t left_len;
};

/* Runs socks5_connect for TARGET with AUTH against a proxy that answers ANSWER (then
 * RELAY_BYTES, then closes its writing side). */
static void run(const struct cairn_address *target, const struct socks5_auth *auth,
                const uint8_t *answer, size_t answer_len, struct run *r)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], answer, answer_len), (ssize_t)answer_len);
	assert_int_equal(write(sv[1], relay_bytes, sizeof(relay_bytes)),
	                 (ssize_t)sizeof(relay_bytes));
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	r->rc = socks5_connect(sv[0], target, auth, 3000);
	assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
	r->sent_len = 0;
	ssize_t n;
	while ((n = read(sv[1], r->sent + r->sent_len, sizeof(r->sent) - r->sent_len)) > 0)
		r->sent_len += (size_t)n;
	r->left_len = 0;
	while ((n = read(sv[0], r->left + r->left_len, sizeof(r->left) - r->left_len)) > 0)
		r->left_len += (size_t)n;
	close(sv[0]);
	close(sv[1]);
}

static void ipv4_target(struct cairn_address *a)
{
	memset(a, 0, sizeof(*a));
	a->host_type = CAIRN_HOST_IPV4;
	strcpy(a->host, "192.0.2.7");
	a->port = 7443;
}

static const uint8_t connect_req[] = {5, 1, 0, 1, 192, 0, 2, 7, 0x1d, 0x13};

static void isolation_auth(struct socks5_auth *auth)
{
	uint8_t rnd[SOCKS5_ISOLATION_RANDOM];
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(0xa0 + i);
	socks5_auth_isolation(auth, rnd);
}

static void test_isolation_username(void **state)
{
	(void)state;
	struct socks5_auth auth;
	isolation_auth(&auth);
	assert_int_equal(auth.user_len, 32);
	assert_memory_equal(auth.user, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", 32);
	assert_int_equal(auth.pass_len, 1);
	assert_int_equal(auth.pass[0], 'x');
	assert_false(auth.required);
}

/* The proxy picks 0x02: the sub-negotiation, then CONNECT; nothing of the relay's read. */
static void test_user_pass(void **state)
{
	(void)state;
	struct cairn_address a;
	ipv4_target(&a);
	struct socks5_auth auth;
	isolation_auth(&auth);
	uint8_t answer[2 + 2 + sizeof(ok_reply)] = {5, 2, 1, 0};
	memcpy(answer + 4, ok_reply, sizeof(ok_reply));
	struct run r;
	run(&a, &auth, answer, sizeof(answer), &r);
	assert_int_equal(r.rc, 0);
	static const uint8_t greet[] = {5, 2, 0, 2};
	assert_int_equal(r.sent_len, 4 + 3 + 32 + 1 + sizeof(connect_req));
	assert_memory_equal(r.sent, greet, 4);
	assert_int_equal(r.sent[4], 1);
	assert_int_equal(r.sent[5], 32);
	assert_memory_equal(r.sent + 6, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", 32);
	assert_int_equal(r.sent[38], 1);
	assert_int_equal(r.sent[39], 'x');
	assert_memory_equal(r.sent + 40, connect_req, sizeof(connect_req));
	assert_int_equal(r.left_len, sizeof(relay_bytes));
	assert_memory_equal(r.left, relay_bytes, sizeof(relay_bytes));
}

/* The proxy picks 0x00 (microsocks): no credentials are sent. */
static void test_no_auth_chosen(void **state)
{
	(void)state;
	struct cairn_address a;
	ipv4_target(&a);
	struct socks5_auth auth;
	isolation_auth(&auth);
	uint8_t answer[2 + sizeof(ok_reply)] = {5, 0};
	memcpy(answer + 2, ok_reply, sizeof(ok_reply));
	struct run r;
	run(&a, &auth, answer, sizeof(answer), &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.sent_len, 4 + sizeof(connect_req));
	assert_memory_equal(r.sent + 4, connect_req, sizeof(connect_req));
	assert_int_equal(r.left_len, sizeof(relay_bytes));

	/* Without credentials, 0x00 alone is offered. */
	run(&a, NULL, answer, sizeof(answer), &r);
	assert_int_equal(r.rc, 0);
	static const uint8_t greet[] = {5, 1, 0};
	assert_memory_equal(r.sent, greet, 3);
	assert_memory_equal(r.sent + 3, connect_req, sizeof(connect_req));
}

/* The obfs4 bridge's arguments, as obfs4proxy reads them (pt-spec), the vector of section 1. */
static void test_obfs4_args(void **state)
{
	(void)state;
	struct cairn_address a;
	const char *text = "cairn+obfs4://__________________________________________8@[2001:db8::7]"
	                   ":9443?cert=yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP"
	                   "09fb3+Pn6+w&iat-mode=1";
	assert_int_equal(cairn_address_parse(text, &a), 0);
	struct socks5_auth auth;
	assert_int_equal(socks5_auth_obfs4(&auth, &a), 0);
	const char *want = "cert=yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+"
	                   "Pn6+w;iat-mode=1";
	assert_int_equal(auth.user_len, strlen(want));
	assert_memory_equal(auth.user, want, strlen(want));
	assert_int_equal(auth.pass_len, 1);
	assert_int_equal(auth.pass[0], 0);
	assert_true(auth.required);

	uint8_t answer[4 + 22] = {5, 2, 1, 0, 5, 0, 0, 4};
	struct run r;
	run(&a, &auth, answer, sizeof(answer), &r);
	assert_int_equal(r.rc, 0);
	static const uint8_t greet[] = {5, 1, 2};
	assert_memory_equal(r.sent, greet, 3);
	assert_int_equal(r.sent[3], 1);
	assert_int_equal(r.sent[4], strlen(want));
	assert_memory_equal(r.sent + 5, want, strlen(want));
	assert_int_equal(r.sent[5 + strlen(want)], 1);
	assert_int_equal(r.sent[6 + strlen(want)], 0);
	assert_int_equal(r.sent[7 + strlen(want)], 5);
	assert_int_equal(r.sent[10 + strlen(want)], 4); /* ATYP IPv6 */
	assert_int_equal(r.left_len, sizeof(relay_bytes));

	/* A bridge's arguments are required: a proxy that picks 0x00 cannot reach it. */
	uint8_t no_auth[2 + sizeof(ok_reply)] = {5, 0};
	memcpy(no_auth + 2, ok_reply, sizeof(ok_reply));
	run(&a, &auth, no_auth, sizeof(no_auth), &r);
	assert_int_equal(r.rc, CAIRN_EPROXY);
	assert_int_equal(r.sent_len, 3);

	/* Not an obfs4 address, or an iat-mode out of range: no arguments. */
	struct cairn_address d;
	ipv4_target(&d);
	assert_int_equal(socks5_auth_obfs4(&auth, &d), CAIRN_EINVAL);
	a.obfs4_iat_mode = 3;
	assert_int_equal(socks5_auth_obfs4(&auth, &a), CAIRN_EINVAL);
}

/* Each malformed or refusing answer is the proxy's failure, and nothing of the relay's
 * stream is consumed behind it. */
static void test_bad_answers(void **state)
{
	(void)state;
	struct cairn_address a;
	ipv4_target(&a);
	struct socks5_auth auth;
	isolation_auth(&auth);
	static const struct {
		uint8_t bytes[16];
		size_t len;
		size_t sent; /* what the client wrote before giving up */
	} bad[] = {
	    {{5, 0xff}, 2, 4},                          /* no acceptable method */
	    {{5, 1}, 2, 4},                             /* GSSAPI: not offered */
	    {{5, 3}, 2, 4},                             /* an unassigned method */
	    {{4, 2}, 2, 4},                             /* wrong version */
	    {{5}, 1, 4},                                /* method reply cut short */
	    {{5, 2, 1, 1}, 4, 4 + 36},                  /* credentials refused */
	    {{5, 2, 5, 0}, 4, 4 + 36},                  /* sub-negotiation: version 5, not 1 */
	    {{5, 2, 0, 0}, 4, 4 + 36},                  /* sub-negotiation: version 0 */
	    {{5, 2, 1}, 3, 4 + 36},                     /* sub-negotiation cut short */
	    {{5, 2, 1, 0, 5, 1, 0, 1}, 8, 4 + 36 + 10}, /* CONNECT refused after auth */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct run r;
		run(&a, &auth, bad[i].bytes, bad[i].len, &r);
		assert_int_equal(r.rc, CAIRN_EPROXY);
		assert_int_equal(r.sent_len, bad[i].sent);
	}
	/* Without credentials, a proxy that demands them is refused. */
	static const uint8_t demand[] = {5, 2, 1, 0};
	struct run r;
	run(&a, NULL, demand, sizeof(demand), &r);
	assert_int_equal(r.rc, CAIRN_EPROXY);
	assert_int_equal(r.sent_len, 3);
}

/* Credentials RFC 1929 cannot carry are refused before anything is sent. */
static void test_bad_credentials(void **state)
{
	(void)state;
	struct cairn_address a;
	ipv4_target(&a);
	struct socks5_auth auth;
	isolation_auth(&auth);
	struct socks5_client s;
	auth.user_len = 0;
	assert_int_equal(socks5_start(&s, &a, &auth), CAIRN_EINVAL);
	isolation_auth(&auth);
	auth.pass_len = 256;
	assert_int_equal(socks5_start(&s, &a, &auth), CAIRN_EINVAL);
	auth.pass_len = 255;
	auth.user_len = 255;
	assert_int_equal(socks5_start(&s, &a, &auth), 0);
	assert_int_equal(s.auth_len, SOCKS5_AUTH_MAX);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_isolation_username), cmocka_unit_test(test_user_pass),
	    cmocka_unit_test(test_no_auth_chosen),     cmocka_unit_test(test_obfs4_args),
	    cmocka_unit_test(test_bad_answers),        cmocka_unit_test(test_bad_credentials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
