/* SPDX-License-Identifier: MIT */
/*
 * client/net.c with a cairn+https address against the real cairn-relay: the TLS web server of
 * wss_server.h (a thread, a self-signed certificate, pinned) answers the upgrade and bridges
 * the frames' payloads to the relay's TCP port, as nginx and the relay's WebSocket listener do
 * together. Directly and through a real SOCKS5 proxy (microsocks), blocking (cnet_connect) and
 * driven without waiting (cnet_start, cnet_advance, cnet_events); then commands both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "client_net_common.h"
#include "net.h"
#include "wss_server.h"

/* Starts a TLS server bridging to the world's relay, and its https address into *A. */
static struct srv *bridge_in(enum srv_mode mode, const struct world *w, struct cairn_address *a)
{
	struct srv *s = srv_start(mode, w->relay.port);
	make_addr(a, w->relay.pub, "127.0.0.1", s->port);
	a->transport = CAIRN_TRANSPORT_HTTPS;
	strcpy(a->path, "k3Jx9-wq_Tn2LmA7pQe0Vg");
	a->has_pin = 1;
	memcpy(a->pin, s->spki_hash, sizeof(a->pin));
	return s;
}

static struct srv *bridge(const struct world *w, struct cairn_address *a)
{
	return bridge_in(SRV_BRIDGE, w, a);
}

/* Many pings in one batch, then each reply: commands and replies over the frames. */
static void pings(struct cnet *n, unsigned count)
{
	uint32_t first = 0;
	for (unsigned i = 0; i < count; i++) {
		struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
		if (i == 0)
			first = m.request_id;
		assert_int_equal(cnet_queue(n, &m), 0);
	}
	assert_int_equal(cnet_flush(n), 0);
	for (unsigned i = 0; i < count; i++) {
		struct cairn_msg r;
		assert_int_equal(cnet_recv(n, &r, 10000), 0);
		assert_int_equal(r.type, CAIRN_REPLY_OK);
		assert_int_equal(r.request_id, first + i);
	}
}

static void test_https_connect_and_ping(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	struct srv *s = bridge(w, &a);
	struct cnet_options opt = {.connect_timeout_ms = 10000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	assert_true(cnet_open(n));
	ping(n);
	pings(n, 500);
	cnet_close(n);
	struct srv seen;
	srv_stop(s, &seen);
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)seen.port);
	assert_string_equal(seen.host_header, host);
}

static void test_https_through_socks5(void **state)
{
	struct world *w = *state;
	need_microsocks(w);
	struct cairn_address a;
	struct srv *s = bridge(w, &a);
	struct cnet_options opt = {.connect_timeout_ms = 10000, .socks = w->socks};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	ping(n);
	cnet_close(n);
	struct srv seen;
	srv_stop(s, &seen);
	assert_true(seen.got_request);
}

/* cnet_advance never waits, and cnet_events says what TLS wants at each step. The server holds
 * its answer to the upgrade for SRV_SLOW_MS, so the caller must have been handed back control at
 * least once (how many more times depends on how fast the other side is: not counted). */
static void test_https_without_waiting(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	struct srv *s = bridge_in(SRV_BRIDGE_SLOW, w, &a);
	struct cnet_options opt = {.connect_timeout_ms = 10000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_start(&a, &opt, &n), 0);
	int rc, steps = 0;
	while ((rc = cnet_advance(n)) == 1) {
		short ev = cnet_events(n);
		assert_true(ev != 0);
		assert_true(cnet_deadline_ms(n) > 0);
		struct pollfd p = {.fd = cnet_fd(n), .events = ev};
		assert_true(poll(&p, 1, 10000) == 1);
		steps++;
	}
	assert_int_equal(rc, 0);
	assert_true(steps >= 1);
	assert_int_equal(cnet_deadline_ms(n), -1);
	assert_int_equal(cnet_events(n) & POLLIN, POLLIN);
	ping(n);
	cnet_close(n);
	srv_stop(s, NULL);
}

/* The wrong relay key over https: the relay stays silent and closes, as over TCP. */
static void test_https_wrong_key(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	struct srv *s = bridge(w, &a);
	a.key[0] ^= 1;
	struct cnet_options opt = {.connect_timeout_ms = 10000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	assert_null(n);
	srv_stop(s, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_https_connect_and_ping),
	    cmocka_unit_test(test_https_through_socks5),
	    cmocka_unit_test(test_https_without_waiting),
	    cmocka_unit_test(test_https_wrong_key),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
