/* SPDX-License-Identifier: MIT */
/*
 * The TLS web server of the cairn+https tests (see wss_server.h). Blocking OpenSSL in its own
 * thread, every read bounded by SO_RCVTIMEO so that a client that stops cannot hold a test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "wss_server.h"

static void die_if(bool bad, const char *what)
{
	if (bad) {
		fprintf(stderr, "test server: %s\n", what);
		abort();
	}
}

/* A self-signed P-256 certificate for 127.0.0.1 and relay.example.org (subjectAltName), the
 * pin of its key, and the certificate as PEM in S->cert_pem (a trust anchor for the tests
 * without a pin). */
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
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *san =
	    X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:" SRV_NAME);
	die_if(san == NULL || X509_add_ext(x, san, -1) != 1, "san");
	X509_EXTENSION_free(san);
	die_if(X509_sign(x, key, EVP_sha256()) == 0, "sign");
	snprintf(s->cert_pem, sizeof(s->cert_pem), "/tmp/cairn-wss-cert-XXXXXX");
	int pfd = mkstemp(s->cert_pem);
	FILE *pem = pfd >= 0 ? fdopen(pfd, "w") : NULL;
	die_if(pem == NULL || PEM_write_X509(pem, x) != 1, "pem");
	fclose(pem);
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

/* Reads one client frame into BUF (capacity CAP, unmasked). Returns its opcode and sets *LEN,
 * or -1 at the end of the stream. */
static int srv_read_frame(SSL *ssl, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t h[2];
	if (!srv_read_full(ssl, h, 2))
		return -1;
	uint64_t l = h[1] & 0x7f;
	die_if(!(h[1] & 0x80), "unmasked client frame");
	if (l == 126) {
		uint8_t e[2];
		die_if(!srv_read_full(ssl, e, 2), "len");
		l = (uint64_t)e[0] << 8 | e[1];
	} else if (l == 127) {
		uint8_t e[8];
		die_if(!srv_read_full(ssl, e, 8), "len");
		l = 0;
		for (int i = 0; i < 8; i++)
			l = l << 8 | e[i];
	}
	die_if(l > cap || l > 65536, "a frame over the 65536 bytes of PROTOCOL.md 7.2");
	uint8_t mask[4];
	die_if(!srv_read_full(ssl, mask, 4) || !srv_read_full(ssl, buf, (size_t)l), "body");
	for (uint64_t i = 0; i < l; i++)
		buf[i] ^= mask[i % 4];
	*len = (size_t)l;
	return h[0] & 0x0f;
}

/* Echoes each binary frame back cut in two fragments with a ping between them; counts
 * pongs. Ends at a close frame or the end of the stream. */
static void srv_echo(struct srv *s, SSL *ssl)
{
	static uint8_t buf[1 << 17];
	for (;;) {
		size_t len;
		int op = srv_read_frame(ssl, buf, sizeof(buf), &len);
		if (op < 0 || op == 0x8)
			return;
		if (op == 0xA) {
			s->pongs++;
			continue;
		}
		die_if(op != 0x2 && op != 0x0, "not binary");
		size_t cut = len > 1 ? randombytes_uniform((uint32_t)len) : 0;
		srv_frame(ssl, 0x02, buf, cut);
		srv_frame(ssl, 0x89, (const uint8_t *)"hi", 2);
		srv_frame(ssl, 0x80, buf + cut, len - cut);
		s->echoed += len;
	}
}

/* The stream between the client's frames and 127.0.0.1:S->bridge_port, both ways, until
 * either side ends. */
static void srv_bridge(struct srv *s, SSL *ssl, int fd)
{
	int up = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(s->bridge_port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	die_if(up < 0 || connect(up, (struct sockaddr *)&a, sizeof(a)) != 0, "bridge connect");
	static uint8_t buf[1 << 17];
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = up, .events = POLLIN}};
		int ready = SSL_pending(ssl) > 0 ? 1 : poll(p, 2, 20000);
		if (ready <= 0)
			break;
		if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			size_t len;
			int op = srv_read_frame(ssl, buf, sizeof(buf), &len);
			if (op < 0 || op == 0x8)
				break;
			if (op == 0xA)
				s->pongs++;
			else if (len > 0 && send(up, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
				break;
			continue;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got = recv(up, buf, sizeof(buf), 0);
			if (got <= 0)
				break;
			srv_frame(ssl, 0x82, buf, (size_t)got);
		}
	}
	close(up);
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
	const char *hh = strstr(head, "\r\nHost: ");
	if (hh != NULL)
		sscanf(hh + 8, "%299[^\r]", s->host_header);
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
	if (s->mode == SRV_BRIDGE_SLOW) {
		struct timespec slow = {.tv_nsec = SRV_SLOW_MS * 1000000L};
		nanosleep(&slow, NULL);
	}
	die_if(SSL_write(ssl, resp, n) != n, "answer");
	if (s->mode == SRV_OK || s->mode == SRV_BAD_ACCEPT)
		srv_echo(s, ssl);
	else if (s->mode == SRV_BRIDGE || s->mode == SRV_BRIDGE_SLOW)
		srv_bridge(s, ssl, fd);
	else if (s->mode == SRV_CLOSE || s->mode == SRV_TEXT) {
		static const uint8_t normal[2] = {0x03, 0xe8}; /* 1000 */
		srv_frame(ssl, 0x82, (const uint8_t *)"bye", 3);
		if (s->mode == SRV_TEXT)
			srv_frame(ssl, 0x81, (const uint8_t *)"text", 4);
		else
			srv_frame(ssl, 0x88, normal, sizeof(normal));
		uint8_t buf[256];
		size_t len;
		s->close_reply = srv_read_frame(ssl, buf, sizeof(buf), &len) == 0x8;
	}
out:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

struct srv *srv_start(enum srv_mode mode, uint16_t bridge_port)
{
	struct srv *s = calloc(1, sizeof(*s));
	die_if(s == NULL, "alloc");
	s->mode = mode;
	s->bridge_port = bridge_port;
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

void srv_stop(struct srv *s, struct srv *seen)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	unlink(s->cert_pem);
	if (seen != NULL)
		*seen = *s;
	free(s);
}
