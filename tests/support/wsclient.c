/* SPDX-License-Identifier: MIT */
/*
 * The test WebSocket client (wsclient.h): blocking sockets and poll, frames by hand. Only
 * for tests: no certificate verification (the tests compare the pin), no limits beyond its
 * buffer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "wsclient.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wsc_dial(struct wsc *w, uint16_t port)
{
	memset(w, 0, sizeof(*w));
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(w->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	int one = 1;
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

int wsc_tls(struct wsc *w, const char *name)
{
	w->ctx = SSL_CTX_new(TLS_client_method());
	if (w->ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(w->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(w->ctx, SSL_VERIFY_NONE, NULL);
	w->ssl = SSL_new(w->ctx);
	if (w->ssl == NULL || SSL_set_fd(w->ssl, w->fd) != 1)
		return -1;
	if (name != NULL)
		SSL_set_tlsext_host_name(w->ssl, name);
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_set_alpn_protos(w->ssl, alpn, sizeof(alpn) - 1);
	return SSL_connect(w->ssl) == 1 ? 0 : -1;
}

int wsc_peer_pin(struct wsc *w, uint8_t pin[32])
{
	X509 *cert = w->ssl != NULL ? SSL_get1_peer_certificate(w->ssl) : NULL;
	if (cert == NULL)
		return -1;
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	unsigned md_len = 0;
	int ok = len > 0 && EVP_Digest(der, (size_t)len, pin, &md_len, EVP_sha256(), NULL) == 1;
	OPENSSL_free(der);
	X509_free(cert);
	return ok && md_len == 32 ? 0 : -1;
}

void wsc_close(struct wsc *w)
{
	if (w->ssl != NULL)
		SSL_free(w->ssl);
	if (w->ctx != NULL)
		SSL_CTX_free(w->ctx);
	if (w->fd >= 0)
		close(w->fd);
	w->ssl = NULL;
	w->ctx = NULL;
	w->fd = -1;
}

int wsc_write(struct wsc *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n;
		if (w->ssl != NULL) {
			int r = SSL_write(w->ssl, p, (int)len);
			n = r > 0 ? r : -1;
		} else {
			n = send(w->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more into W->in within TIMEOUT_MS. Returns bytes read, 0 on close, -1 on timeout. */
static ssize_t read_more(struct wsc *w, int timeout_ms)
{
	if (w->in_len == sizeof(w->in))
		return -1;
	if (w->ssl == NULL || SSL_pending(w->ssl) == 0) {
		struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr <= 0)
			return -1;
	}
	ssize_t n;
	if (w->ssl != NULL) {
		int r = SSL_read(w->ssl, w->in + w->in_len, (int)(sizeof(w->in) - w->in_len));
		n = r > 0 ? r : 0;
	} else {
		n = recv(w->fd, w->in + w->in_len, sizeof(w->in) - w->in_len, 0);
		if (n < 0)
			n = 0; /* a reset is a close */
	}
	w->in_len += (size_t)n;
	return n;
}

static void take(struct wsc *w, size_t n)
{
	memmove(w->in, w->in + n, w->in_len - n);
	w->in_len -= n;
}

int wsc_send_upgrade(struct wsc *w, const char *path, const char *host)
{
	uint8_t raw[16];
	char key[32], head[1024];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key, sizeof(key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	int n = snprintf(head, sizeof(head),
	                 "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 path, host, key);
	return wsc_write(w, head, (size_t)n);
}

int wsc_read_response(struct wsc *w, char *head, size_t cap, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		for (size_t i = 0; i + 4 <= w->in_len; i++) {
			if (memcmp(w->in + i, "\r\n\r\n", 4) != 0)
				continue;
			size_t n = i + 4 < cap ? i + 4 : cap - 1;
			memcpy(head, w->in, n);
			head[n] = '\0';
			take(w, i + 4);
			int status = 0;
			if (sscanf(head, "HTTP/1.1 %d ", &status) != 1)
				return -1;
			return status;
		}
		int left = (int)(deadline - mono_ms());
		if (left < 0)
			return -1;
		ssize_t n = read_more(w, left);
		if (n == 0)
			return 0;
	}
}

int wsc_upgrade(struct wsc *w, const char *path, const char *host)
{
	uint8_t raw[16];
	char key[32], want[64], head[8192], req[1024];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key, sizeof(key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	int n = snprintf(req, sizeof(req),
	                 "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 path, host, key);
	if (wsc_write(w, req, (size_t)n) != 0 ||
	    wsc_read_response(w, head, sizeof(head), 20000) != 101)
		return -1;
	/* The accept value, computed here independently of the relay's code. */
	uint8_t md[20];
	unsigned md_len = 0;
	char cat[128];
	snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
	EVP_Digest(cat, strlen(cat), md, &md_len, EVP_sha1(), NULL);
	sodium_bin2base64(want, sizeof(want), md, sizeof(md), sodium_base64_VARIANT_ORIGINAL);
	char line[128];
	snprintf(line, sizeof(line), "\r\nSec-WebSocket-Accept: %s\r\n", want);
	bool accepted = strstr(head, line) != NULL;
	/* Header names and the token in any case (a web server may rewrite them). */
	for (char *p = head; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return accepted && strstr(head, "\r\nupgrade: websocket\r\n") != NULL ? 0 : -1;
}

int wsc_send_frame(struct wsc *w, uint8_t b0, const void *payload, size_t len, bool mask)
{
	uint8_t hdr[14];
	size_t h = 0;
	hdr[h++] = b0;
	uint8_t m = mask ? 0x80 : 0;
	if (len < 126) {
		hdr[h++] = m | (uint8_t)len;
	} else if (len <= 0xffff) {
		hdr[h++] = m | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		hdr[h++] = m | 127;
		for (int i = 0; i < 8; i++)
			hdr[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	uint8_t key[4] = {0};
	if (mask) {
		randombytes_buf(key, sizeof(key));
		memcpy(hdr + h, key, 4);
		h += 4;
	}
	if (wsc_write(w, hdr, h) != 0)
		return -1;
	const uint8_t *p = payload;
	uint8_t buf[4096];
	for (size_t off = 0; off < len;) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = p[off + i] ^ key[(off + i) & 3];
		if (wsc_write(w, buf, n) != 0)
			return -1;
		off += n;
	}
	return 0;
}

ssize_t wsc_read_frame(struct wsc *w, uint8_t *b0, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		if (w->in_len >= 2) {
			size_t h = 2;
			uint64_t len = w->in[1] & 0x7f;
			bool masked = (w->in[1] & 0x80) != 0;
			if (len == 126 && w->in_len >= 4) {
				len = (uint64_t)w->in[2] << 8 | w->in[3];
				h = 4;
			} else if (len == 127 && w->in_len >= 10) {
				len = 0;
				for (int i = 0; i < 8; i++)
					len = len << 8 | w->in[2 + i];
				h = 10;
			} else if (len >= 126) {
				h = 0; /* the length is not all here yet */
			}
			if (masked)
				return -1; /* a server never masks */
			if (h != 0 && len > cap)
				return -1;
			if (h != 0 && w->in_len >= h + len) {
				*b0 = w->in[0];
				memcpy(buf, w->in + h, (size_t)len);
				take(w, h + (size_t)len);
				return (ssize_t)len;
			}
		}
		int left = (int)(deadline - mono_ms());
		if (left < 0)
			return -1;
		ssize_t n = read_more(w, left);
		if (n == 0)
			return -2;
	}
}

bool wsc_wait_closed(struct wsc *w, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		w->in_len = 0; /* whatever came first (a close frame) is not the question */
		int left = (int)(deadline - mono_ms());
		if (left < 0)
			return false;
		if (read_more(w, left) == 0)
			return true;
	}
}

/* ---- the bridge ---------------------------------------------------------------------- */

static void *bridge_run(void *arg)
{
	struct wsc_bridge *b = arg;
	int fd = accept(b->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	uint8_t buf[65536], frame[1 << 17];
	unsigned sends = 0;
	while (b->running) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
		                      {.fd = b->w->fd, .events = POLLIN}};
		bool pending = b->w->ssl != NULL && SSL_pending(b->w->ssl) > 0;
		if (!pending && b->w->in_len == 0 && poll(p, 2, 200) <= 0)
			continue;
		if (p[0].revents != 0) {
			size_t want =
			    b->chunk != 0 && b->chunk < sizeof(buf) ? b->chunk : sizeof(buf);
			ssize_t n = recv(fd, buf, want, 0);
			if (n <= 0)
				break;
			/* Every third write goes as two fragments of one message. */
			size_t cut = ++sends % 3 == 0 && n > 1 ? (size_t)n / 2 : (size_t)n;
			if (cut < (size_t)n) {
				if (wsc_send_frame(b->w, 0x02, buf, cut, true) != 0 ||
				    wsc_send_frame(b->w, 0x80, buf + cut, (size_t)n - cut, true) !=
				        0)
					break;
			} else if (wsc_send_frame(b->w, 0x82, buf, (size_t)n, true) != 0) {
				break;
			}
		}
		if (p[1].revents != 0 || pending || b->w->in_len > 0) {
			uint8_t b0;
			ssize_t n = wsc_read_frame(b->w, &b0, frame, sizeof(frame), 50);
			if (n == -2)
				break;
			if (n >= 0 && ((b0 & 0x0f) == 0x02 || (b0 & 0x0f) == 0x00) &&
			    send(fd, frame, (size_t)n, MSG_NOSIGNAL) != n)
				break;
			if (n >= 0 && (b0 & 0x0f) == 0x08)
				break;
		}
	}
	close(fd);
	return NULL;
}

int wsc_bridge_start(struct wsc_bridge *b, struct wsc *w, size_t chunk)
{
	memset(b, 0, sizeof(*b));
	b->w = w;
	b->chunk = chunk;
	b->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (b->listen_fd < 0 || bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(b->listen_fd, 1) != 0 ||
	    getsockname(b->listen_fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	b->port = ntohs(sa.sin_port);
	b->running = true;
	if (pthread_create(&b->thread, NULL, bridge_run, b) != 0) {
		b->running = false;
		return -1;
	}
	return 0;
}

void wsc_bridge_stop(struct wsc_bridge *b)
{
	if (!b->running)
		return;
	b->running = false;
	shutdown(b->listen_fd, SHUT_RDWR);
	pthread_join(b->thread, NULL);
	close(b->listen_fd);
}
