/* SPDX-License-Identifier: MIT */
/*
 * Integration: client/net.c and client/socks5.c against the real cairn-relay on loopback,
 * directly and through a real SOCKS5 proxy (microsocks, which must be installed: see
 * scripts/install-deps.sh), plus small forked fake servers for what a real proxy or relay will
 * not do on demand: refuse, answer garbage, stay silent, and record the bytes of a request.
 * getaddrinfo() is wrapped at link time so the tests can prove no relay name is resolved
 * locally when a proxy is set.
 *
 * The tests are here; their fixtures, helpers and fake servers are client_net_common.[ch].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "net.h"
#include "relayproc.h"
#include "socks5.h"
#include "client_net_common.h"

/* ---- direct connections ------------------------------------------------------------------ */

static void test_direct_ping(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	assert_non_null(n);
	assert_true(looked_up("127.0.0.1"));
	assert_true(cnet_fd(n) >= 0);
	static const uint8_t zero[CAIRN_HASH_LEN];
	assert_memory_not_equal(cnet_handshake_hash(n), zero, CAIRN_HASH_LEN);
	ping(n);

	/* Three commands batched into one frame; three replies, in order. */
	uint32_t ids[3];
	for (int i = 0; i < 3; i++) {
		ids[i] = cnet_next_id(n);
		struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = ids[i]};
		assert_int_equal(cnet_queue(n, &m), 0);
	}
	assert_int_equal(cnet_flush(n), 0);
	for (int i = 0; i < 3; i++) {
		struct cairn_msg r;
		assert_int_equal(cnet_recv(n, &r, 5000), 0);
		assert_int_equal(r.type, CAIRN_REPLY_OK);
		assert_int_equal(r.request_id, ids[i]);
	}
	assert_true(ids[0] != ids[1] && ids[1] != ids[2]);

	/* Nothing pending: a short wait times out and leaves the connection usable. */
	struct cairn_msg r;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_recv(n, &r, 200), CAIRN_ETIMEDOUT);
	assert_true(now_ms() - t0 >= 150);
	ping(n);
	assert_int_equal(cnet_flush(n), 0); /* an empty flush is a no-op */

	/* A zero timeout still returns a reply that has already arrived. */
	struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
	assert_int_equal(cnet_queue(n, &m), 0);
	assert_int_equal(cnet_flush(n), 0);
	struct pollfd p = {.fd = cnet_fd(n), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(cnet_recv(n, &r, 0), 0);
	assert_int_equal(r.request_id, m.request_id);
	assert_int_equal(cnet_recv(n, &r, 0), CAIRN_ETIMEDOUT);
	cnet_close(n);
	cnet_close(NULL);
}

static void test_direct_hostname(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	struct cnet *n = NULL;
	lookup_count = 0;
	/* Default options: localhost may resolve to ::1 first, which refuses; the next
	 * address is tried. */
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	assert_true(looked_up("localhost"));
	ping(n);
	cnet_close(n);
}

static void test_wrong_key(void **state)
{
	struct world *w = *state;
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	struct cairn_address a;
	make_addr(&a, key, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.connect_timeout_ms = 3000};
	struct cnet *n = (struct cnet *)1;
	int64_t t0 = now_ms();
	/* The relay stays silent and closes at its 2 s handshake deadline: a timeout. */
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_null(n);
	assert_true(took >= 1000);
	assert_true(took < 3800);
}

static void test_refused(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", closed_port());
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = (struct cnet *)1;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ECONNECT);
	assert_true(now_ms() - t0 < 1000);
	assert_null(n);
}

static void test_onion_needs_proxy(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, ONION_HOST, 7443);
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, NULL, &n), CAIRN_ECONNECT);
	assert_int_equal(lookup_count, 0); /* never asked DNS for an onion name */
}

static void test_bad_arguments(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet *n = NULL;
	struct cnet_options opt = {.connect_timeout_ms = -1};
	assert_int_equal(cnet_connect(NULL, NULL, &n), CAIRN_EINVAL);
	assert_int_equal(cnet_connect(&a, NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EINVAL);
	static const char *const bad[] = {
	    "",      "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",    "127.0.0.1:99999",
	    ":1080", "::1:1080", "[::1]1080", "[::1]:",     "127.0.0.1:10x8", "127.0.0.1:01080"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opt = (struct cnet_options){.socks = bad[i], .connect_timeout_ms = 1000};
		lookup_count = 0;
		assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EINVAL);
		assert_int_equal(lookup_count, 0);
		assert_null(n);
	}
}

/* A peer that reads message 1 and closes is a relay refusing the handshake (section 2.2). */
static void test_handshake_closed(void **state)
{
	struct world *w = *state;
	struct fake f;
	fake_start(&f, FAKE_HS_CLOSE);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", f.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	assert_true(now_ms() - t0 < 2000);
	uint8_t rec[8];
	fake_finish(&f, rec, sizeof(rec));
}

/* An impostor that answers message 1 with bytes it cannot have computed: CAIRN_EAUTH. */
static void test_handshake_impostor(void **state)
{
	struct world *w = *state;
	struct fake f;
	fake_start(&f, FAKE_HS_GARBAGE);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", f.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EAUTH);
	assert_null(n);
	uint8_t rec[8];
	fake_finish(&f, rec, sizeof(rec));
}

/* The relay going away: the connection reports CAIRN_EIO and stays failed. */
static void test_relay_gone(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	ping(n);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	/* Writing to the closed connection: the first send may still be taken by the kernel,
	 * a later one fails with EPIPE, which must not raise SIGPIPE (SIGPIPE is not ignored in
	 * this process, so a missing MSG_NOSIGNAL would kill the test). */
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
		assert_int_equal(cnet_queue(n, &m), 0);
		rc = cnet_flush(n);
		sleep_ms(50);
	}
	assert_int_equal(rc, CAIRN_EIO);
	/* Failed once, failed for good. */
	struct cairn_msg r, m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
	assert_int_equal(cnet_recv(n, &r, 10), CAIRN_EIO);
	assert_int_equal(cnet_queue(n, &m), CAIRN_EIO);
	assert_int_equal(cnet_flush(n), CAIRN_EIO);
	cnet_close(n);

	/* Reading side: the relay's close is reported as CAIRN_EIO. */
	assert_int_equal(relayproc_start(&w->relay), 0);
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	ping(n);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	do
		rc = cnet_recv(n, &r, 5000); /* anything sent before the close, then the close */
	while (rc == 0);
	assert_int_equal(rc, CAIRN_EIO);
	assert_int_equal(cnet_recv(n, &r, 10), CAIRN_EIO);
	cnet_close(n);
	assert_int_equal(relayproc_start(&w->relay), 0);
}

/* ---- through microsocks, a real SOCKS5 proxy --------------------------------------------- */

static void test_socks_ip(void **state)
{
	struct world *w = *state;
	need_microsocks(w);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.socks = w->socks, .connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	assert_int_equal(lookup_count, 1); /* the proxy's address, nothing else */
	ping(n);
	ping(n);
	cnet_close(n);
}

/*
 * Where microsocks will connect for "localhost": it takes the first address only. If that is
 * ::1 (usual when /etc/hosts lists ::1 localhost), a forwarder child carries [::1]:PORT to the
 * relay's 127.0.0.1:PORT. Returns the forwarder's pid, or 0 when none is needed.
 */
static pid_t localhost_forwarder(uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	assert_int_equal(__real_getaddrinfo("localhost", NULL, &hints, &res), 0);
	int family = res->ai_family;
	freeaddrinfo(res);
	if (family != AF_INET6)
		return 0;
	uint16_t got = 0;
	int lfd = listen_any(AF_INET6, port, &got);
	assert_true(lfd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		int r = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (c >= 0 && r >= 0 && connect(r, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			pump(c, r);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void test_socks_hostname(void **state)
{
	struct world *w = *state;
	need_microsocks(w);
	pid_t fwd = localhost_forwarder(w->relay.port);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	struct cnet_options opt = {.socks = w->socks, .connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	int rc = cnet_connect(&a, &opt, &n);
	assert_int_equal(rc, 0);
	/* The proxy resolved the name; this process never did. */
	assert_int_equal(lookup_count, 1);
	assert_true(looked_up("127.0.0.1"));
	assert_false(looked_up("localhost"));
	ping(n);
	cnet_close(n);
	reap(fwd);
}

static void test_socks_unreachable(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	char socks[32];
	snprintf(socks, sizeof(socks), "127.0.0.1:%u", (unsigned)closed_port());
	struct cnet_options opt = {.socks = socks, .connect_timeout_ms = 2000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EPROXY);
}

/* ---- what a proxy receives, and how its failures are reported (fake proxy) -------------- */

static void test_socks_request_bytes(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	uint8_t out[SOCKS5_REQUEST_MAX];
	size_t len = 0;

	make_addr(&a, w->relay.pub, "192.0.2.7", 7443);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	static const uint8_t v4[] = {5, 1, 0, 1, 192, 0, 2, 7, 0x1d, 0x13};
	assert_int_equal(len, sizeof(v4));
	assert_memory_equal(out, v4, sizeof(v4));

	make_addr(&a, w->relay.pub, "[2001:db8::1]", 443);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	static const uint8_t v6[] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	                             0, 0, 0, 0, 0,    0,    0,    0,    1, 1, 0xbb};
	assert_int_equal(len, sizeof(v6));
	assert_memory_equal(out, v6, sizeof(v6));

	make_addr(&a, w->relay.pub, "relay.example.org", 1);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	assert_int_equal(len, 5 + 17 + 2);
	assert_int_equal(out[3], 3);
	assert_int_equal(out[4], 17);
	assert_memory_equal(out + 5, "relay.example.org", 17);
	assert_int_equal(out[22], 0);
	assert_int_equal(out[23], 1);
	assert_int_equal(socks5_request(&a, out, 10, &len), CAIRN_ENOBUFS);
}

static void test_fake_hostname(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	uint8_t rec[600];
	size_t len = 0;
	lookup_count = 0;
	assert_int_equal(via_fake(FAKE_RECORD, &a, 3000, rec, sizeof(rec), &len), CAIRN_EPROXY);
	assert_false(looked_up("localhost"));
	/* Greeting: version 5, two methods: none, and username/password (section 7.1). */
	assert_int_equal(len, 4 + 5 + 9 + 2);
	static const uint8_t greet[] = {5, 2, 0, 2}, head[] = {5, 1, 0, 3, 9};
	assert_memory_equal(rec, greet, 4);
	assert_memory_equal(rec + 4, head, 5);
	assert_memory_equal(rec + 9, "localhost", 9);
	assert_int_equal(rec[18], w->relay.port >> 8);
	assert_int_equal(rec[19], w->relay.port & 0xff);
}

/* A proxy that asks for credentials gets a fresh username on every connection: 32 lower-case
 * hex characters, password "x" (section 7.1). */
static void test_fake_isolation(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	uint8_t rec[2][600];
	size_t len[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
		    via_fake(FAKE_AUTH_RECORD, &a, 3000, rec[i], sizeof(rec[i]), &len[i]),
		    CAIRN_EPROXY);
		assert_int_equal(len[i], 4 + 2 + 32 + 2 + 10);
		assert_int_equal(rec[i][4], 1);
		assert_int_equal(rec[i][5], 32);
		for (int k = 0; k < 32; k++) {
			char ch = (char)rec[i][6 + k];
			assert_true((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
		}
		assert_int_equal(rec[i][38], 1);
		assert_int_equal(rec[i][39], 'x');
		assert_int_equal(rec[i][40], 5); /* then the CONNECT request */
	}
	assert_memory_not_equal(rec[0] + 6, rec[1] + 6, 32);
}

static void test_fake_onion(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	char text[CAIRN_ADDRESS_MAX + 1], b64[64];
	sodium_bin2base64(b64, sizeof(b64), w->relay.pub, 32,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(text, sizeof(text), "cairn://%s@%s:7443", b64, ONION_HOST);
	assert_int_equal(cairn_address_parse(text, &a), 0);
	assert_int_equal(a.host_type, CAIRN_HOST_ONION);
	uint8_t rec[600];
	size_t len = 0;
	lookup_count = 0;
	assert_int_equal(via_fake(FAKE_RECORD, &a, 3000, rec, sizeof(rec), &len), CAIRN_EPROXY);
	/* The only lookup was of the proxy's own address literal. */
	assert_int_equal(lookup_count, 1);
	assert_true(looked_up("127.0.0.1"));
	size_t nlen = strlen(ONION_HOST);
	assert_int_equal(nlen, 62);
	assert_int_equal(len, 4 + 5 + nlen + 2);
	assert_int_equal(rec[7], 3);
	assert_int_equal(rec[8], nlen);
	assert_memory_equal(rec + 9, ONION_HOST, nlen);
	assert_int_equal(rec[9 + nlen], 7443 >> 8);
	assert_int_equal(rec[10 + nlen], 7443 & 0xff);
}

static void test_fake_failures(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	uint8_t rec[600];
	size_t len = 0;
	static const enum fake_mode modes[] = {FAKE_REFUSE,  FAKE_TRUNCATED, FAKE_BAD_VERSION,
	                                       FAKE_BAD_RSV, FAKE_BAD_ATYP,  FAKE_NO_METHOD};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int64_t t0 = now_ms();
		assert_int_equal(via_fake(modes[i], &a, 3000, rec, sizeof(rec), &len),
		                 CAIRN_EPROXY);
		assert_true(now_ms() - t0 < 2000);
		/* IPv4 literal: ATYP 1 with the four bytes (except where no request was sent). */
		if (modes[i] != FAKE_NO_METHOD) {
			assert_int_equal(len, 4 + 10);
			assert_int_equal(rec[7], 1);
		} else {
			assert_int_equal(len, 4);
		}
	}
	/* A proxy that accepts and says nothing: the deadline, not a hang. */
	int64_t t0 = now_ms();
	assert_int_equal(via_fake(FAKE_SILENT, &a, 1000, rec, sizeof(rec), &len), CAIRN_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 900 && took < 2500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_direct_ping),         cmocka_unit_test(test_direct_hostname),
	    cmocka_unit_test(test_wrong_key),           cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_onion_needs_proxy),   cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_handshake_closed),    cmocka_unit_test(test_handshake_impostor),
	    cmocka_unit_test(test_relay_gone),          cmocka_unit_test(test_socks_ip),
	    cmocka_unit_test(test_socks_hostname),      cmocka_unit_test(test_socks_unreachable),
	    cmocka_unit_test(test_socks_request_bytes), cmocka_unit_test(test_fake_hostname),
	    cmocka_unit_test(test_fake_onion),          cmocka_unit_test(test_fake_failures),
	    cmocka_unit_test(test_fake_isolation),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
