/* SPDX-License-Identifier: MIT */
/*
 * The relay's HTTPS listener (PROTOCOL.md 7.2), driven with a hand-built WebSocket client
 * over plain TCP, as the web server in front would speak to it: a Cairn session runs through
 * the upgrade on the secret path; a wrong path and a plain GET get exactly the 404; a head
 * too long or too slow is closed without an answer; frames that break 7.2's rules close the
 * connection; ping gets its pong and close its close; `cairn-relay address` prints the
 * cairn+https address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/address.h"
#include "it_common.h"
#include "nginxproc.h"
#include "relayproc.h"
#include "tclient.h"
#include "wsclient.h"

#define PATH      "k3Jx9-wq_Tn2LmA7pQe0Vg"
#define NOT_FOUND "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

/* Generous for a loaded machine and ASan; the relay closes at its 3 s handshake timeout. */
#define CLOSE_WAIT_MS 20000

static struct relayproc relay;
static uint16_t https_port;

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	https_port = relayproc_free_port();
	char limits[512];
	snprintf(limits, sizeof(limits),
	         "handshake_timeout = 3\n[https]\nlisten = 127.0.0.1:%u\npath = " PATH "\n"
	         "public = relay.example.org:443\n",
	         https_port);
	if (relayproc_init(&relay, limits) != 0 || relayproc_start(&relay) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	relayproc_stop(&relay, SIGTERM);
	relayproc_cleanup(&relay);
	return 0;
}

static void dial(struct wsc *w)
{
	assert_int_equal(wsc_dial(w, https_port), 0);
}

/* A whole session through the WebSocket: handshake, a mailbox, an envelope near the largest
 * size delivered back (frames cut small and fragmented on the way in, and over 64 KiB of
 * sealed output on the way out, which the relay splits into frames). */
static void run_session(struct wsc *w)
{
	assert_int_equal(wsc_upgrade(w, PATH, "relay.example.org"), 0);
	struct wsc_bridge b;
	assert_int_equal(wsc_bridge_start(&b, w, 1000), 0);

	struct tclient c;
	assert_int_equal(tclient_connect(&c, b.port, relay.pub), 0);
	uint8_t rid[24], sid[24], pk[32], sk[64];
	assert_int_equal(tclient_create(&c, rid, sid, pk, sk), 0);
	assert_int_equal(tclient_auth(&c, rid, sk), 0);
	static uint8_t env[CAIRN_ENVELOPE_MAX];
	randombytes_buf(env, sizeof(env));
	assert_int_equal(it_send(&c, sid, NULL, env, sizeof(env)), 0);
	assert_int_equal(it_send(&c, sid, NULL, env, sizeof(env)), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, rid), 0);
	for (int i = 0; i < 2; i++) {
		struct cairn_msg m;
		do
			assert_int_equal(tclient_recv(&c, &m, 20000), 0);
		while (m.type != CAIRN_REPLY_ENVELOPE);
		assert_int_equal(m.envelope_len, sizeof(env));
		assert_memory_equal(m.envelope, env, sizeof(env));
	}
	tclient_close(&c);
	wsc_bridge_stop(&b);
}

static void test_session(void **state)
{
	(void)state;
	static struct wsc w;
	dial(&w);
	run_session(&w);
	wsc_close(&w);
}

/* The exact 404, then the close, for every request that is HTTP but not the upgrade. */
static void test_not_found(void **state)
{
	(void)state;
	static const char *const heads[] = {
	    "GET /wrong HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: relay.example.org\r\nUser-Agent: probe\r\n\r\n",
	    "GET /" PATH " HTTP/1.1\r\nHost: relay.example.org\r\n\r\n",
	    "POST /" PATH " HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		static struct wsc w;
		dial(&w);
		assert_int_equal(wsc_write(&w, heads[i], strlen(heads[i])), 0);
		char head[8192];
		assert_int_equal(wsc_read_response(&w, head, sizeof(head), CLOSE_WAIT_MS), 404);
		assert_string_equal(head, NOT_FOUND);
		assert_int_equal(w.in_len, 0);
		assert_true(wsc_wait_closed(&w, CLOSE_WAIT_MS));
		wsc_close(&w);
	}
}

/* Too long, malformed, or too slow: closed, and not a byte of answer. */
static void test_bad_heads(void **state)
{
	(void)state;
	static char big[5000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	struct {
		const char *bytes;
		size_t len;
	} cases[] = {
	    {big, sizeof(big)},
	    {"GET / HTTP/1.1\nHost: a\n\n", 24},
	    {"\x16\x03\x01\x02\x01\x01\r\n\r\n", 10},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static struct wsc w;
		dial(&w);
		assert_int_equal(wsc_write(&w, cases[i].bytes, cases[i].len), 0);
		char head[64];
		assert_int_equal(wsc_read_response(&w, head, sizeof(head), CLOSE_WAIT_MS), 0);
		assert_int_equal(w.in_len, 0);
		wsc_close(&w);
	}
	/* Slowloris: a head that never ends is closed at the handshake deadline (3 s), not
	 * before it and without an answer, though its bytes keep coming. */
	static struct wsc w;
	dial(&w);
	int64_t start = it_mono_ms();
	assert_int_equal(wsc_write(&w, "GET /", 5), 0);
	bool closed = false;
	for (int i = 0; i < 200 && !closed; i++) {
		if (wsc_write(&w, "a", 1) != 0)
			break;
		char head[64];
		closed = wsc_read_response(&w, head, sizeof(head), 100) == 0;
	}
	if (!closed) {
		char head[64];
		closed = wsc_read_response(&w, head, sizeof(head), CLOSE_WAIT_MS) <= 0;
	}
	int64_t took = it_mono_ms() - start;
	assert_true(took >= 2000 && took < CLOSE_WAIT_MS);
	assert_int_equal(w.in_len, 0);
	wsc_close(&w);
}

/* Upgrades, then sends one hostile frame: the relay must close the connection. */
static void frame_closes(uint8_t b0, size_t len, bool mask)
{
	static struct wsc w;
	static uint8_t payload[70000];
	dial(&w);
	assert_int_equal(wsc_upgrade(&w, PATH, "a"), 0);
	(void)wsc_send_frame(&w, b0, payload, len, mask);
	assert_true(wsc_wait_closed(&w, CLOSE_WAIT_MS));
	wsc_close(&w);
}

static void test_bad_frames(void **state)
{
	(void)state;
	frame_closes(0x82, 100, false);  /* unmasked */
	frame_closes(0x81, 100, true);   /* text */
	frame_closes(0xc2, 100, true);   /* RSV1 */
	frame_closes(0x82, 65537, true); /* a frame over 65536 bytes */
	frame_closes(0x83, 10, true);    /* a reserved opcode */

	/* A message over 131072 bytes, in frames each within the limit. */
	static struct wsc w;
	static uint8_t payload[60000];
	dial(&w);
	assert_int_equal(wsc_upgrade(&w, PATH, "a"), 0);
	(void)wsc_send_frame(&w, 0x02, payload, sizeof(payload), true);
	(void)wsc_send_frame(&w, 0x00, payload, sizeof(payload), true);
	(void)wsc_send_frame(&w, 0x80, payload, sizeof(payload), true);
	assert_true(wsc_wait_closed(&w, CLOSE_WAIT_MS));
	wsc_close(&w);
}

static void test_ping_and_close(void **state)
{
	(void)state;
	static struct wsc w;
	dial(&w);
	assert_int_equal(wsc_upgrade(&w, PATH, "a"), 0);
	assert_int_equal(wsc_send_frame(&w, 0x89, "hello", 5, true), 0);
	uint8_t b0, buf[256];
	assert_int_equal(wsc_read_frame(&w, &b0, buf, sizeof(buf), CLOSE_WAIT_MS), 5);
	assert_int_equal(b0, 0x8a);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(wsc_send_frame(&w, 0x88, "\x03\xe8", 2, true), 0);
	ssize_t n = wsc_read_frame(&w, &b0, buf, sizeof(buf), CLOSE_WAIT_MS);
	assert_true(n >= 0);
	assert_int_equal(b0, 0x88);
	assert_true(wsc_wait_closed(&w, CLOSE_WAIT_MS));
	wsc_close(&w);
}

/* `cairn-relay address`: the direct address, then the cairn+https one. */
static void test_address(void **state)
{
	(void)state;
	char cmd[1024], out[1024] = "";
	snprintf(cmd, sizeof(cmd), "%s address --data %s/data --config %s", CAIRN_RELAY_BIN_PATH,
	         relay.dir, relay.conf);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	struct cairn_address a, h;
	assert_int_equal(cairn_address_parse(out, &a), 0);
	char *second = nl + 1;
	nl = strchr(second, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_int_equal(nl[1], '\0');
	assert_int_equal(cairn_address_parse(second, &h), 0);
	assert_int_equal(h.transport, CAIRN_TRANSPORT_HTTPS);
	assert_memory_equal(h.key, relay.pub, 32);
	assert_string_equal(h.host, "relay.example.org");
	assert_int_equal(h.port, 443);
	assert_string_equal(h.path, PATH);
	assert_int_equal(h.has_pin, 0);
}

/* Reads `cairn-relay address` with CONF into OUT; returns the second line (the cairn+https
 * address) or NULL. */
static char *https_address(const char *conf, char *out, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s address --data %s/data --config %s", CAIRN_RELAY_BIN_PATH,
	         relay.dir, conf);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return NULL;
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	if (pclose(p) != 0)
		return NULL;
	char *nl = strchr(out, '\n');
	if (nl == NULL)
		return NULL;
	char *second = nl + 1;
	nl = strchr(second, '\n');
	if (nl == NULL || nl[1] != '\0')
		return NULL;
	*nl = '\0';
	return second;
}

/* Over TLS through `GET PATH` (no upgrade): returns the status, the response in OUT. */
static int tls_get(uint16_t port, const char *path, char *out, size_t cap)
{
	static struct wsc w;
	assert_int_equal(wsc_dial(&w, port), 0);
	assert_int_equal(wsc_tls(&w, NGINXPROC_SERVER_NAME), 0);
	char req[512];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
	         NGINXPROC_SERVER_NAME);
	assert_int_equal(wsc_write(&w, req, strlen(req)), 0);
	int status = wsc_read_response(&w, out, cap, CLOSE_WAIT_MS);
	/* The body follows the head: what is left in the buffer, and what comes until close. */
	size_t hl = strlen(out);
	uint8_t b0;
	(void)b0;
	while (w.in_len < sizeof(w.in)) {
		size_t before = w.in_len;
		char dummy[8];
		if (wsc_read_response(&w, dummy, sizeof(dummy), 2000) <= 0 && w.in_len == before)
			break;
	}
	size_t n = w.in_len < cap - hl - 1 ? w.in_len : cap - hl - 1;
	memcpy(out + hl, w.in, n);
	out[hl + n] = '\0';
	wsc_close(&w);
	return status;
}

/*
 * The whole 7.2 path with real nginx running OPERATING.md's site: TLS, the decoy for
 * everything else, nginx's own 404 for the path without an upgrade, a Cairn session on the
 * path, the pin `cairn-relay address` prints equal to the certificate nginx presents, and
 * nothing of the relay's location in nginx's access log.
 */
static void test_through_nginx(void **state)
{
	(void)state;
	struct nginxproc ng;
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", https_port);
	if (nginxproc_start(&ng, PATH, listen) != 0) {
		nginxproc_stop(&ng);
		fail_msg("nginx did not start");
	}
	static char resp[16384];
	assert_int_equal(tls_get(ng.port, "/", resp, sizeof(resp)), 200);
	assert_non_null(strstr(resp, NGINXPROC_DECOY));
	assert_int_equal(tls_get(ng.port, "/nothing-here", resp, sizeof(resp)), 404);
	char other404[16384];
	memcpy(other404, resp, sizeof(other404));
	/* The path without an upgrade: nginx's own 404, the same page as anywhere else. */
	assert_int_equal(tls_get(ng.port, "/" PATH, resp, sizeof(resp)), 404);
	assert_non_null(strstr(resp, "<center>nginx</center>"));
	assert_null(strstr(resp, "Content-Length: 0"));

	static struct wsc w;
	assert_int_equal(wsc_dial(&w, ng.port), 0);
	assert_int_equal(wsc_tls(&w, NGINXPROC_SERVER_NAME), 0);
	uint8_t pin[32];
	assert_int_equal(wsc_peer_pin(&w, pin), 0);
	run_session(&w);
	wsc_close(&w);

	/* The address with pin_cert: its pin is the key nginx presented. */
	char conf[400], text[4096];
	snprintf(conf, sizeof(conf), "%s/pinned.conf", relay.dir);
	FILE *in = fopen(relay.conf, "r"), *out = fopen(conf, "w");
	assert_non_null(in);
	assert_non_null(out);
	size_t n = fread(text, 1, sizeof(text) - 1, in);
	text[n] = '\0';
	fprintf(out, "%spin_cert = %s\n", text, ng.cert);
	fclose(in);
	fclose(out);
	char addr_out[2048];
	char *line = https_address(conf, addr_out, sizeof(addr_out));
	assert_non_null(line);
	struct cairn_address a;
	assert_int_equal(cairn_address_parse(line, &a), 0);
	assert_int_equal(a.has_pin, 1);
	assert_memory_equal(a.pin, pin, 32);

	/* The decoy's requests are logged; the relay's path never is. */
	static char log[65536];
	assert_true(nginxproc_read(&ng, "access.log", log, sizeof(log)) > 0);
	assert_non_null(strstr(log, "GET / HTTP/1.1"));
	assert_null(strstr(log, PATH));
	nginxproc_stop(&ng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session),        cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_bad_heads),      cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_ping_and_close), cmocka_unit_test(test_address),
	    cmocka_unit_test(test_through_nginx),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
