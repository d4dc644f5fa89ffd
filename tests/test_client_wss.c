/* SPDX-License-Identifier: MIT */
/*
 * client/wss.c, the cairn+https stream (PROTOCOL.md 7.2), against the TLS server of
 * wss_server.h (a thread on loopback, a self-signed certificate) answering the upgrade as told
 * (right, wrong accept, a web page, a 404, an endless head, silence), then echoing what the
 * client sends in fragmented frames with a ping between the fragments. The client side is the
 * real one: wss_advance and wss_send/wss_recv on a non-blocking socket polled for wss_events,
 * and cnet_connect for the deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "env.h"
#include "net.h"
#include "wss.h"
#include "wss_server.h"

static void addr_for(struct cairn_address *a, const struct srv *s, bool pin)
{
	memset(a, 0, sizeof(*a));
	a->host_type = CAIRN_HOST_IPV4;
	strcpy(a->host, "127.0.0.1");
	a->port = s->port;
	a->transport = CAIRN_TRANSPORT_HTTPS;
	strcpy(a->path, "k3Jx9-wq_Tn2LmA7pQe0Vg");
	a->has_pin = pin;
	memcpy(a->pin, s->spki_hash, sizeof(a->pin));
}

static int tcp_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(rc == 0 || errno == EINPROGRESS);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	assert_int_equal(poll(&p, 1, 10000), 1);
	return fd;
}

/* Drives W's TLS and upgrade with poll on what it asks for. Returns wss_advance's end. */
static int drive(struct wss *w, int fd)
{
	int rc;
	while ((rc = wss_advance(w)) == 1) {
		struct pollfd p = {.fd = fd, .events = wss_events(w)};
		assert_true(p.events == POLLIN || p.events == POLLOUT);
		assert_int_equal(poll(&p, 1, 20000), 1);
	}
	return rc;
}

/* Opens a stream to a server in MODE; returns wss_advance's end, with *SRV and (when open)
 * *W and *FD to use. */
static int open_mode(enum srv_mode mode, bool pin, struct srv **srv, struct wss **w, int *fd)
{
	*srv = srv_start(mode, 0);
	struct cairn_address a;
	addr_for(&a, *srv, pin);
	*fd = tcp_to((*srv)->port);
	assert_int_equal(wss_new(&a, *fd, env_default(), w), 0);
	return drive(*w, *fd);
}

static void refused(enum srv_mode mode, bool pin, bool wrong_pin, bool expect_request)
{
	struct srv *s = srv_start(mode, 0);
	struct cairn_address a;
	addr_for(&a, s, pin);
	if (wrong_pin)
		a.pin[0] ^= 1;
	int fd = tcp_to(s->port);
	struct wss *w = NULL;
	assert_int_equal(wss_new(&a, fd, env_default(), &w), 0);
	assert_int_equal(drive(w, fd), CAIRN_ECONNECT);
	wss_free(w);
	close(fd);
	struct srv seen;
	srv_stop(s, &seen);
	/* A refused certificate gets nothing, not even the request. */
	assert_int_equal(seen.got_request, expect_request);
}

static void test_pin_accepted_and_round_trip(void **state)
{
	(void)state;
	struct srv *s;
	struct wss *w;
	int fd;
	assert_int_equal(open_mode(SRV_OK, true, &s, &w, &fd), 0);
	/* 300 KB in random splits; echoed back in fragments with pings between. */
	size_t total = 300000, sent = 0, got = 0;
	uint8_t *out = malloc(total), *in = malloc(total);
	randombytes_buf(out, total);
	time_t until = time(NULL) + 60;
	while (got < total) {
		assert_true(time(NULL) < until);
		if (sent < total) {
			/* Up to twice a frame's limit: wss_send takes at most 65536 bytes. */
			size_t k = 1 + randombytes_uniform(2 * 65536);
			if (k > total - sent)
				k = total - sent;
			ssize_t r = wss_send(w, out + sent, k);
			if (r > 0) {
				assert_true(r <= 65536);
				sent += (size_t)r;
			} else
				assert_int_equal(errno, EAGAIN);
		}
		assert_int_equal(wss_flush(w), 0);
		ssize_t r = wss_recv(w, in + got, 1 + randombytes_uniform(5000));
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		assert_int_equal(r, -1);
		assert_int_equal(errno, EAGAIN);
		if (wss_readable(w))
			continue;
		struct pollfd p = {.fd = fd, .events = wss_events(w)};
		if (sent < total)
			p.events |= POLLOUT;
		assert_true(poll(&p, 1, 20000) >= 0);
	}
	assert_memory_equal(in, out, total);
	assert_false(wss_output_pending(w));
	wss_free(w);
	close(fd);
	struct srv seen;
	srv_stop(s, &seen);
	assert_int_equal(seen.echoed, total);
	free(out);
	free(in);
}

static void test_ping_answered(void **state)
{
	(void)state;
	struct srv *s;
	struct wss *w;
	int fd;
	assert_int_equal(open_mode(SRV_OK, true, &s, &w, &fd), 0);
	uint8_t b[10] = "0123456789", r[10];
	assert_int_equal(wss_send(w, b, sizeof(b)), (ssize_t)sizeof(b));
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t k = wss_recv(w, r + got, sizeof(r) - got);
		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		struct pollfd p = {.fd = fd, .events = wss_events(w)};
		assert_int_equal(poll(&p, 1, 20000), 1);
	}
	assert_memory_equal(r, b, sizeof(b));
	/* The pong was written by the reads above (or waits): flush, then close the socket so the
	 * server ends after reading it. */
	while (wss_output_pending(w)) {
		assert_int_equal(wss_flush(w), 0);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		(void)poll(&p, 1, 1000);
	}
	shutdown(fd, SHUT_WR);
	wss_free(w);
	close(fd);
	struct srv seen;
	srv_stop(s, &seen);
	assert_int_equal(seen.pongs, 1);
}

static void test_wrong_pin_refused(void **state)
{
	(void)state;
	refused(SRV_OK, true, true, false);
}

static void test_self_signed_without_pin_refused(void **state)
{
	(void)state;
	refused(SRV_OK, false, false, false);
}

static void test_wrong_accept_refused(void **state)
{
	(void)state;
	refused(SRV_BAD_ACCEPT, true, false, true);
}

static void test_web_page_refused(void **state)
{
	(void)state;
	refused(SRV_PAGE, true, false, true);
}

static void test_404_refused(void **state)
{
	(void)state;
	refused(SRV_404, true, false, true);
}

static void test_long_head_refused(void **state)
{
	(void)state;
	refused(SRV_LONG_HEAD, true, false, true);
}

/* Reads W until it ends: returns the last wss_recv result (0 or -1), with "bye" first. */
static ssize_t read_to_end(struct wss *w, int fd, int *err)
{
	char got[16];
	size_t have = 0;
	for (;;) {
		ssize_t r = wss_recv(w, got + have, sizeof(got) - have);
		if (r > 0) {
			have += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = wss_events(w)};
			assert_int_equal(poll(&p, 1, 20000), 1);
			continue;
		}
		*err = r < 0 ? errno : 0;
		assert_int_equal(have, 3);
		assert_memory_equal(got, "bye", 3);
		return r;
	}
}

/* A close frame ends the stream (0, as recv at the end of TCP) and is answered in kind; a
 * text frame is a protocol error (7.2) and the client closes. */
static void test_close_and_text(void **state)
{
	(void)state;
	enum srv_mode modes[] = {SRV_CLOSE, SRV_TEXT};
	for (int i = 0; i < 2; i++) {
		struct srv *s;
		struct wss *w;
		int fd, err = 0;
		assert_int_equal(open_mode(modes[i], true, &s, &w, &fd), 0);
		ssize_t r = read_to_end(w, fd, &err);
		if (modes[i] == SRV_CLOSE)
			assert_int_equal(r, 0);
		else
			assert_true(r == -1 && err == EIO);
		wss_free(w);
		close(fd);
		struct srv seen;
		srv_stop(s, &seen);
		assert_true(seen.close_reply);
	}
}

/*
 * Without a pin: the chain against the trusted roots (here the server's own certificate,
 * through SSL_CERT_FILE, which OpenSSL's default paths honour) and the host: its IP SAN for
 * 127.0.0.1, its DNS SAN for relay.example.org (with SNI), and another name refused.
 */
static int trusted(const char *host, enum cairn_host_type type)
{
	struct srv *s = srv_start(SRV_OK, 0);
	setenv("SSL_CERT_FILE", s->cert_pem, 1);
	struct cairn_address a;
	addr_for(&a, s, false);
	a.host_type = type;
	strcpy(a.host, host);
	int fd = tcp_to(s->port);
	struct wss *w = NULL;
	assert_int_equal(wss_new(&a, fd, env_default(), &w), 0);
	int rc = drive(w, fd);
	wss_free(w);
	close(fd);
	srv_stop(s, NULL);
	unsetenv("SSL_CERT_FILE");
	return rc;
}

static void test_roots_and_host_without_pin(void **state)
{
	(void)state;
	assert_int_equal(trusted("127.0.0.1", CAIRN_HOST_IPV4), 0);
	assert_int_equal(trusted(SRV_NAME, CAIRN_HOST_NAME), 0);
	assert_int_equal(trusted("other.example.org", CAIRN_HOST_NAME), CAIRN_ECONNECT);
}

/* A server that takes TCP and never answers TLS: cnet's deadline covers TLS. */
static void test_silent_server_hits_deadline(void **state)
{
	(void)state;
	struct srv *s = srv_start(SRV_SILENT, 0);
	struct cairn_address a;
	addr_for(&a, s, true);
	struct cnet_options opt = {.connect_timeout_ms = 1500};
	struct cnet *n = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_null(n);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 1400);
	srv_stop(s, NULL);
}

/* The response check alone, on heads a server might send. */
static void test_check_response(void **state)
{
	(void)state;
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";     /* RFC 6455's example */
	const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; /* and its answer */
	char h[512];
	snprintf(h, sizeof(h),
	         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Accept: %s\r\n\r\n",
	         acc);
	assert_int_equal(wss_check_response(h, strlen(h), key), 0);
	snprintf(h, sizeof(h),
	         "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Accept: %s\r\n\r\n",
	         acc);
	assert_int_equal(wss_check_response(h, strlen(h), key), CAIRN_ECONNECT);
	snprintf(h, sizeof(h),
	         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: close\r\n"
	         "Sec-WebSocket-Accept: %s\r\n\r\n",
	         acc);
	assert_int_equal(wss_check_response(h, strlen(h), key), CAIRN_ECONNECT);
	snprintf(h, sizeof(h),
	         "HTTP/1.1 1010 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Accept: %s\r\n\r\n",
	         acc);
	assert_int_equal(wss_check_response(h, strlen(h), key), CAIRN_ECONNECT);
	snprintf(h, sizeof(h),
	         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "\r\n");
	assert_int_equal(wss_check_response(h, strlen(h), key), CAIRN_ECONNECT);
	/* Control bytes are not HTTP, even around a valid answer (the fuzz smoke found a NUL in
	 * a Connection value accepted): a NUL, a bare CR, DEL. */
	static const char *const bad[] = {"Connection: Up\x01grade", "Connection: Upgrade\rX",
	                                  "X-A: \x7f"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(h, sizeof(h),
		                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		                 "Connection: Upgrade\r\n%s\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		                 bad[i], acc);
		assert_int_equal(wss_check_response(h, (size_t)n, key), CAIRN_ECONNECT);
	}
	int n = snprintf(h, sizeof(h),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nX-A: a\tb\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                 acc);
	assert_int_equal(wss_check_response(h, (size_t)n, key), 0);
	memcpy(strstr(h, "a\tb"), "a\0b", 3);
	assert_int_equal(wss_check_response(h, (size_t)n, key), CAIRN_ECONNECT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_response),
	    cmocka_unit_test(test_pin_accepted_and_round_trip),
	    cmocka_unit_test(test_ping_answered),
	    cmocka_unit_test(test_wrong_pin_refused),
	    cmocka_unit_test(test_self_signed_without_pin_refused),
	    cmocka_unit_test(test_roots_and_host_without_pin),
	    cmocka_unit_test(test_close_and_text),
	    cmocka_unit_test(test_wrong_accept_refused),
	    cmocka_unit_test(test_web_page_refused),
	    cmocka_unit_test(test_404_refused),
	    cmocka_unit_test(test_long_head_refused),
	    cmocka_unit_test(test_silent_server_hits_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
