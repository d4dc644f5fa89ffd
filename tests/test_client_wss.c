/* SPDX-License-Identifier: MIT */
/*
 * client/wss.c, the cairn+https stream (PROTOCOL.md 7.2), against a TLS server this test runs
 * in a thread on loopback: OpenSSL with a self-signed certificate made here, answering the
 * upgrade as told (right, wrong accept, a web page, a 404, an endless head, silence), then
 * echoing what the client sends in fragmented frames with a ping between the fragments. The
 * client side is the real one: wss_advance and wss_send/wss_recv on a non-blocking socket
 * polled for wss_events, and cnet_connect for the deadline.
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

enum srv_mode { SRV_OK, SRV_BAD_ACCEPT, SRV_PAGE, SRV_404, SRV_LONG_HEAD, SRV_SILENT };

struct srv {
	enum srv_mode mode;
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;
	uint8_t spki_hash[32];
	pthread_t thread;
	/* what the server saw */
	bool got_request;
	int pongs;
	size_t echoed;
};

static void die_if(bool bad, const char *what)
{
	if (bad) {
		fprintf(stderr, "test server: %s\n", what);
		abort();
	}
}

/* A self-signed P-256 certificate for 127.0.0.1, and the pin of its key. */
static void srv_make_ctx(struct srv *s)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	die_if(key == NULL || x == NULL, "key");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
	                           -1, 0);
	X509_set_issuer_name(x, name);
	die_if(X509_sign(x, key, EVP_sha256()) == 0, "sign");
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	die_if(len <= 0, "spki");
	crypto_hash_sha256(s->spki_hash, der, (unsigned long long)len);
	OPENSSL_free(der);
	s->ctx = SSL_CTX_new(TLS_server_method());
	die_if(s->ctx == NULL || SSL_CTX_use_certificate(s->ctx, x) != 1 ||
	           SSL_CTX_use_PrivateKey(s->ctx, key) != 1,
	       "ctx");
	X509_free(x);
	EVP_PKEY_free(key);
}

static bool srv_read_full(SSL *ssl, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		int r = SSL_read(ssl, (uint8_t *)buf + got, (int)(len - got));
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void srv_frame(SSL *ssl, int fin_op, const uint8_t *p, size_t len)
{
	uint8_t h[10];
	size_t hl = 2;
	h[0] = (uint8_t)fin_op;
	if (len < 126) {
		h[1] = (uint8_t)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	die_if(SSL_write(ssl, h, (int)hl) != (int)hl, "write");
	if (len > 0)
		die_if(SSL_write(ssl, p, (int)len) != (int)len, "write");
}

/* Echoes each binary frame back cut in two fragments with a ping between them; counts
 * pongs. Ends at a close frame or the end of the stream. */
static void srv_echo(struct srv *s, SSL *ssl)
{
	static uint8_t buf[1 << 17];
	for (;;) {
		uint8_t h[2];
		if (!srv_read_full(ssl, h, 2))
			return;
		uint64_t len = h[1] & 0x7f;
		die_if(!(h[1] & 0x80), "unmasked client frame");
		if (len == 126) {
			uint8_t e[2];
			die_if(!srv_read_full(ssl, e, 2), "len");
			len = (uint64_t)e[0] << 8 | e[1];
		} else if (len == 127) {
			uint8_t e[8];
			die_if(!srv_read_full(ssl, e, 8), "len");
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | e[i];
		}
		die_if(len > sizeof(buf), "frame too long");
		uint8_t mask[4];
		die_if(!srv_read_full(ssl, mask, 4) || !srv_read_full(ssl, buf, (size_t)len),
		       "body");
		for (uint64_t i = 0; i < len; i++)
			buf[i] ^= mask[i % 4];
		int op = h[0] & 0x0f;
		if (op == 0x8)
			return;
		if (op == 0xA) {
			s->pongs++;
			continue;
		}
		die_if(op != 0x2 && op != 0x0, "not binary");
		size_t cut = len > 1 ? randombytes_uniform((uint32_t)len) : 0;
		srv_frame(ssl, 0x02, buf, cut);
		srv_frame(ssl, 0x89, (const uint8_t *)"hi", 2);
		srv_frame(ssl, 0x80, buf + cut, (size_t)len - cut);
		s->echoed += (size_t)len;
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	/* This thread's writes to a client that left fail with EPIPE; the client's (the main
	 * thread's) would still raise SIGPIPE, which would fail the test. */
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	int fd = accept(s->lfd, NULL, NULL);
	die_if(fd < 0, "accept");
	/* Bounded: a client that stops must not hold the test. */
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (s->mode == SRV_SILENT) {
		char c[512];
		while (recv(fd, c, sizeof(c), 0) > 0)
			; /* reads the ClientHello, answers nothing: the client gives up at its
			     deadline */
		close(fd);
		return NULL;
	}
	SSL *ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	char head[8192];
	size_t hl = 0;
	while (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0) {
		int r = SSL_read(ssl, head + hl, 1);
		if (r <= 0 || ++hl == sizeof(head) - 1)
			goto out;
	}
	head[hl] = '\0';
	s->got_request = true;
	const char *k = strstr(head, "Sec-WebSocket-Key: ");
	die_if(k == NULL, "no key");
	char key[25];
	memcpy(key, k + 19, 24);
	key[24] = '\0';
	char cat[128];
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	unsigned char sha[20];
	unsigned int sl;
	EVP_Digest(cat, strlen(cat), sha, &sl, EVP_sha1(), NULL);
	char acc[29];
	sodium_bin2base64(acc, sizeof(acc), sha, sl, sodium_base64_VARIANT_ORIGINAL);
	if (s->mode == SRV_BAD_ACCEPT)
		acc[3] = acc[3] == 'A' ? 'B' : 'A';
	static char resp[16384];
	int n = 0;
	switch (s->mode) {
	case SRV_PAGE:
		n = snprintf(resp, sizeof(resp),
		             "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
		             "\r\n<html></html>");
		break;
	case SRV_404:
		n = snprintf(
		    resp, sizeof(resp),
		    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
		break;
	case SRV_LONG_HEAD:
		n = snprintf(resp, sizeof(resp),
		             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
		             acc);
		while (n < 4200)
			n += snprintf(resp + n, sizeof(resp) - (size_t)n, "X-Pad: %040d\r\n", n);
		n += snprintf(resp + n, sizeof(resp) - (size_t)n, "\r\n");
		break;
	default:
		n = snprintf(resp, sizeof(resp),
		             "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
		             "connection: keep-alive, upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		             acc);
		break;
	}
	die_if(SSL_write(ssl, resp, n) != n, "answer");
	if (s->mode == SRV_OK || s->mode == SRV_BAD_ACCEPT)
		srv_echo(s, ssl);
out:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static struct srv *srv_start(enum srv_mode mode)
{
	struct srv *s = calloc(1, sizeof(*s));
	die_if(s == NULL, "alloc");
	s->mode = mode;
	srv_make_ctx(s);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	die_if(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 4) != 0 ||
	           getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0,
	       "listen");
	s->port = ntohs(a.sin_port);
	die_if(pthread_create(&s->thread, NULL, srv_main, s) != 0, "thread");
	return s;
}

/* Waits for S's thread and frees S; *SEEN (or NULL) receives what it saw. */
static void srv_stop(struct srv *s, struct srv *seen)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	if (seen != NULL)
		*seen = *s;
	free(s);
}

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
	*srv = srv_start(mode);
	struct cairn_address a;
	addr_for(&a, *srv, pin);
	*fd = tcp_to((*srv)->port);
	assert_int_equal(wss_new(&a, *fd, env_default(), w), 0);
	return drive(*w, *fd);
}

static void refused(enum srv_mode mode, bool pin, bool wrong_pin, bool expect_request)
{
	struct srv *s = srv_start(mode);
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
			size_t k = 1 + randombytes_uniform(20000);
			if (k > total - sent)
				k = total - sent;
			ssize_t r = wss_send(w, out + sent, k);
			if (r > 0)
				sent += (size_t)r;
			else
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

/* A server that takes TCP and never answers TLS: cnet's deadline covers TLS. */
static void test_silent_server_hits_deadline(void **state)
{
	(void)state;
	struct srv *s = srv_start(SRV_SILENT);
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
	    cmocka_unit_test(test_wrong_accept_refused),
	    cmocka_unit_test(test_web_page_refused),
	    cmocka_unit_test(test_404_refused),
	    cmocka_unit_test(test_long_head_refused),
	    cmocka_unit_test(test_silent_server_hits_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
