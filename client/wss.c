/* SPDX-License-Identifier: MIT */
/*
 * TLS and WebSocket under the channel for cairn+https (see wss.h, PROTOCOL.md 7.2). OpenSSL
 * does TLS on the borrowed non-blocking socket; the upgrade is written and its answer read
 * here; wslay frames the stream. Every OpenSSL call that would block leaves a note of what it
 * wants (read or write), which wss_events reports, so the caller's poll is exact.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "wss.h"

/* PROTOCOL.md 7.2: the whole response head at most this long. */
#define WSS_HEAD_MAX 4096
/* One received message (fragments together) at most this long: the relay sends at most a
 * channel batch per message, far below. */
#define WSS_MSG_MAX (1u << 20)
/* Payload bytes held for the caller before reading more from TLS (backpressure). */
#define WSS_IN_CAP 65536
/* One frame's payload at most: the relay closes on a frame over 65536 bytes (7.2). Each
 * wss_send is one unfragmented message, so this is also a message's size. */
#define WSS_FRAME_MAX 65536
/* Bytes queued in frames before wss_send refuses more (EAGAIN). */
#define WSS_OUT_CAP  262144
#define WSS_KEY_TEXT 24 /* base64 of 16 bytes */
#define WSS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum wss_phase { WSS_TLS, WSS_REQUEST, WSS_RESPONSE, WSS_OPEN, WSS_FAILED };

struct wss {
	enum wss_phase phase;
	int fd;
	const struct client_env *env;
	struct cairn_address relay;
	SSL_CTX *ctx;
	BIO_METHOD *bio_method; /* the socket through send/recv (wss_bio_write) */
	SSL *ssl;
	wslay_event_context_ptr ws;
	short want;            /* what TLS last asked for: POLLIN or POLLOUT */
	bool read_wants_write; /* an SSL_read asked for a write (post-handshake TLS) */
	bool eof, error;       /* the stream ended; a TLS or framing failure */
	bool tcp_eof;          /* the socket read its end (BIO_CTRL_EOF) */
	char key[WSS_KEY_TEXT + 1];
	char req[64 + CAIRN_HOST_MAX + CAIRN_PATH_MAX + WSS_KEY_TEXT];
	size_t req_len, req_off;
	char head[WSS_HEAD_MAX + 1];
	size_t head_len;
	uint8_t *pre; /* bytes read past the response head: the first frames */
	size_t pre_len, pre_off;
	uint8_t *in; /* received payload for the caller */
	size_t in_len, in_off, in_cap;
};

/* Records what an OpenSSL call's result R asks for. Returns 1 (wait: W->want says for what)
 * or -1 (failed). ZERO_RETURN (and an unexpected end, which SSL_OP_IGNORE_UNEXPECTED_EOF
 * makes a ZERO_RETURN) sets W->eof. */
static int wss_ssl_wait(struct wss *w, int r)
{
	int e = SSL_get_error(w->ssl, r);
	ERR_clear_error(); /* the thread's queue must not carry this connection's errors */
	if (e == SSL_ERROR_WANT_READ) {
		w->want = POLLIN;
		return 1;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		w->want = POLLOUT;
		return 1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		w->eof = true;
	return -1;
}

/* OpenSSL's socket BIO writes with write(2), and a server that closed would then kill the
 * process with SIGPIPE: this one is the same over send(MSG_NOSIGNAL) and recv. */
static int wss_bio_write(BIO *b, const char *buf, int len)
{
	struct wss *w = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t r = send(w->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return r < 0 ? -1 : (int)r;
}

static int wss_bio_read(BIO *b, char *buf, int len)
{
	struct wss *w = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t r = recv(w->fd, buf, (size_t)len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	if (r == 0)
		w->tcp_eof = true;
	return r < 0 ? -1 : (int)r;
}

/* Nothing is buffered here; the end of the socket is told as OpenSSL asks (BIO_CTRL_EOF), so
 * that a server closing without close_notify ends the stream (SSL_OP_IGNORE_UNEXPECTED_EOF)
 * rather than failing it: a relay refuses a handshake by closing (PROTOCOL.md 2.2). */
static long wss_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_FLUSH)
		return 1;
	if (cmd == BIO_CTRL_EOF)
		return ((struct wss *)BIO_get_data(b))->tcp_eof;
	return 0;
}

/* wslay's recv: what was read past the head first, then TLS; nothing while the caller has
 * WSS_IN_CAP bytes unread. */
static ssize_t wss_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                           void *user)
{
	(void)flags;
	struct wss *w = user;
	if (w->pre_off < w->pre_len) {
		size_t k = w->pre_len - w->pre_off < len ? w->pre_len - w->pre_off : len;
		memcpy(buf, w->pre + w->pre_off, k);
		w->pre_off += k;
		return (ssize_t)k;
	}
	if (w->in_len - w->in_off >= WSS_IN_CAP) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	int cap = len > 16384 ? 16384 : (int)len;
	w->read_wants_write = false;
	int r = SSL_read(w->ssl, buf, cap);
	if (r > 0)
		return r;
	if (wss_ssl_wait(w, r) > 0) {
		w->read_wants_write = w->want == POLLOUT;
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (!w->eof)
		w->error = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

/* wslay's send: through TLS (partial writes and a moving buffer are allowed, see wss_new). */
static ssize_t wss_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                           void *user)
{
	(void)flags;
	struct wss *w = user;
	int r = SSL_write(w->ssl, data, len > 16384 ? 16384 : (int)len);
	if (r > 0)
		return r;
	if (wss_ssl_wait(w, r) > 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->error = true;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

/* wslay's masks: RFC 6455 wants them unpredictable. */
static int wss_ws_mask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	randombytes_buf(buf, len);
	return 0;
}

/* A whole message: binary payload goes to the caller; a text message is a protocol error
 * (7.2). Ping and close are wslay's (pong, close reply). */
static void wss_ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
	struct wss *w = user;
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		w->error = true;
		(void)wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
		return;
	}
	if (arg->opcode != WSLAY_BINARY_FRAME || arg->msg_length == 0 || w->error)
		return;
	if (w->in_off > 0) {
		memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
		w->in_len -= w->in_off;
		w->in_off = 0;
	}
	if (w->in_cap - w->in_len < arg->msg_length) {
		size_t cap = w->in_len + arg->msg_length;
		uint8_t *p = malloc(cap);
		if (p == NULL) {
			w->error = true;
			return;
		}
		if (w->in != NULL) {
			memcpy(p, w->in, w->in_len);
			sodium_memzero(w->in, w->in_cap);
			free(w->in);
		}
		w->in = p;
		w->in_cap = cap;
	}
	memcpy(w->in + w->in_len, arg->msg, arg->msg_length);
	w->in_len += arg->msg_length;
}

int wss_new(const struct cairn_address *relay, int fd, const struct client_env *env,
            struct wss **out)
{
	*out = NULL;
	if (relay == NULL || relay->transport != CAIRN_TRANSPORT_HTTPS || fd < 0 || env == NULL)
		return CAIRN_EINVAL;
	struct wss *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return CAIRN_ENOMEM;
	w->fd = fd;
	w->env = env;
	w->relay = *relay;
	w->want = POLLOUT;
	int rc = CAIRN_ENOMEM;
	if ((w->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(w->ctx, TLS1_2_VERSION) != 1)
		goto fail;
	SSL_CTX_set_mode(w->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(w->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (!relay->has_pin) {
		/* Without a pin: the system's roots, and the host's name or address (RFC 6125). */
		if (SSL_CTX_set_default_verify_paths(w->ctx) != 1)
			goto fail;
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* With a pin only the key counts, checked once TLS is done (wss_check_pin). */
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_NONE, NULL);
	}
	if ((w->ssl = SSL_new(w->ctx)) == NULL)
		goto fail;
	w->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cairn-socket");
	if (w->bio_method == NULL || BIO_meth_set_write(w->bio_method, wss_bio_write) != 1 ||
	    BIO_meth_set_read(w->bio_method, wss_bio_read) != 1 ||
	    BIO_meth_set_ctrl(w->bio_method, wss_bio_ctrl) != 1)
		goto fail;
	BIO *bio = BIO_new(w->bio_method);
	if (bio == NULL)
		goto fail;
	BIO_set_data(bio, w);
	BIO_set_init(bio, 1);
	SSL_set_bio(w->ssl, bio, bio); /* the SSL owns BIO now */
	static const unsigned char alpn[] = "\x08http/1.1";
	if (SSL_set_alpn_protos(w->ssl, alpn, sizeof(alpn) - 1) != 0)
		goto fail;
	bool name = relay->host_type == CAIRN_HOST_NAME || relay->host_type == CAIRN_HOST_ONION;
	if (name && SSL_set_tlsext_host_name(w->ssl, relay->host) != 1)
		goto fail;
	if (!relay->has_pin) {
		X509_VERIFY_PARAM *p = SSL_get0_param(w->ssl);
		int ok = name ? X509_VERIFY_PARAM_set1_host(p, relay->host, 0)
		              : X509_VERIFY_PARAM_set1_ip_asc(p, relay->host);
		if (ok != 1)
			goto fail;
	}
	SSL_set_connect_state(w->ssl);

	/* The upgrade request of 7.2 step 3, with a fresh key from the environment. */
	uint8_t raw[16];
	env->random(env->ctx, raw, sizeof(raw));
	sodium_bin2base64(w->key, sizeof(w->key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(raw, sizeof(raw));
	char host[CAIRN_HOST_MAX + 16];
	bool v6 = relay->host_type == CAIRN_HOST_IPV6;
	int hl = snprintf(host, sizeof(host), "%s%s%s", v6 ? "[" : "", relay->host, v6 ? "]" : "");
	if (relay->port != 443)
		hl += snprintf(host + hl, sizeof(host) - (size_t)hl, ":%u", (unsigned)relay->port);
	int n = snprintf(w->req, sizeof(w->req),
	                 "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 relay->path, host, w->key);
	if (n < 0 || (size_t)n >= sizeof(w->req)) {
		rc = CAIRN_EINVAL;
		goto fail;
	}
	w->req_len = (size_t)n;

	struct wslay_event_callbacks cb = {.recv_callback = wss_ws_recv,
	                                   .send_callback = wss_ws_send,
	                                   .genmask_callback = wss_ws_mask,
	                                   .on_msg_recv_callback = wss_ws_msg};
	if (wslay_event_context_client_init(&w->ws, &cb, w) != 0)
		goto fail;
	wslay_event_config_set_max_recv_msg_length(w->ws, WSS_MSG_MAX);
	*out = w;
	return 0;
fail:
	ERR_clear_error();
	wss_free(w);
	return rc;
}

void wss_free(struct wss *w)
{
	if (w == NULL)
		return;
	if (w->ws != NULL)
		wslay_event_context_free(w->ws);
	SSL_free(w->ssl);
	SSL_CTX_free(w->ctx);
	BIO_meth_free(w->bio_method);
	if (w->in != NULL) {
		sodium_memzero(w->in, w->in_cap);
		free(w->in);
	}
	if (w->pre != NULL) {
		sodium_memzero(w->pre, w->pre_len);
		free(w->pre);
	}
	sodium_memzero(w, sizeof(*w));
	free(w);
}

/* With a pin: the SHA-256 of the leaf's DER SubjectPublicKeyInfo must equal it, whatever
 * signed the certificate and whatever name it carries. Returns 0 or CAIRN_ECONNECT. */
static int wss_check_pin(struct wss *w)
{
	if (!w->relay.has_pin)
		return 0;
	X509 *cert = SSL_get1_peer_certificate(w->ssl);
	if (cert == NULL)
		return CAIRN_ECONNECT;
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	X509_free(cert);
	if (len <= 0)
		return CAIRN_ECONNECT;
	uint8_t h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, der, (unsigned long long)len);
	OPENSSL_free(der);
	int same = sodium_memcmp(h, w->relay.pin, sizeof(h)) == 0;
	return same ? 0 : CAIRN_ECONNECT;
}

/* Whether the comma-separated header VALUE (LEN bytes) holds TOKEN, in any case. */
static bool wss_has_token(const char *value, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < len) {
		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		size_t s = i;
		while (i < len && value[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(value + s, token, tl) == 0)
			return true;
	}
	return false;
}

int wss_check_response(const char *head, size_t len, const char *key)
{
	static const char status[] = "HTTP/1.1 101";
	/* HTTP field values hold no control bytes but HTAB (RFC 9110 5.5): a head with a NUL,
	 * a bare CR or DEL is not an answer from a web server, whatever it says around it. */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)head[i];
		if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f ||
		    (ch == '\r' && (i + 1 == len || head[i + 1] != '\n')))
			return CAIRN_ECONNECT;
	}
	if (len < sizeof(status) || memcmp(head, status, sizeof(status) - 1) != 0 ||
	    (head[sizeof(status) - 1] != ' ' && head[sizeof(status) - 1] != '\r'))
		return CAIRN_ECONNECT;
	/* The accept value we expect: base64(SHA-1(key || GUID)). */
	char concat[WSS_KEY_TEXT + sizeof(WSS_GUID)];
	int cl = snprintf(concat, sizeof(concat), "%s%s", key, WSS_GUID);
	unsigned char sha[20];
	unsigned int shalen = 0;
	if (cl <= 0 || EVP_Digest(concat, (size_t)cl, sha, &shalen, EVP_sha1(), NULL) != 1)
		return CAIRN_ECONNECT;
	char expect[29];
	sodium_bin2base64(expect, sizeof(expect), sha, shalen, sodium_base64_VARIANT_ORIGINAL);

	bool upgrade = false, connection = false, accept = false;
	const char *p = memchr(head, '\n', len);
	const char *end = head + len;
	while (p != NULL && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			break;
		size_t ll = (size_t)(eol - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		const char *colon = memchr(p, ':', ll);
		if (colon != NULL) {
			size_t nl = (size_t)(colon - p);
			const char *v = colon + 1;
			size_t vl = ll - nl - 1;
			while (vl > 0 && (*v == ' ' || *v == '\t'))
				v++, vl--;
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (nl == 7 && strncasecmp(p, "Upgrade", 7) == 0)
				upgrade |= wss_has_token(v, vl, "websocket");
			else if (nl == 10 && strncasecmp(p, "Connection", 10) == 0)
				connection |= wss_has_token(v, vl, "upgrade");
			else if (nl == 20 && strncasecmp(p, "Sec-WebSocket-Accept", 20) == 0) {
				if (vl != 28 || memcmp(v, expect, 28) != 0)
					return CAIRN_ECONNECT;
				accept = true;
			}
		}
		p = eol;
	}
	return upgrade && connection && accept ? 0 : CAIRN_ECONNECT;
}

/* Reads the response head (at most WSS_HEAD_MAX bytes) and checks it; bytes past it are kept
 * for wslay. Returns 0 (checked), 1 (more to read) or CAIRN_ECONNECT. */
static int wss_read_head(struct wss *w)
{
	for (;;) {
		size_t room = WSS_HEAD_MAX - w->head_len;
		if (room == 0)
			return CAIRN_ECONNECT; /* no end within 4096 bytes */
		int r = SSL_read(w->ssl, w->head + w->head_len, (int)room);
		if (r <= 0)
			return wss_ssl_wait(w, r) > 0 ? 1 : CAIRN_ECONNECT;
		size_t from = w->head_len > 3 ? w->head_len - 3 : 0;
		w->head_len += (size_t)r;
		w->head[w->head_len] = '\0';
		for (size_t i = from; i + 4 <= w->head_len; i++) {
			if (memcmp(w->head + i, "\r\n\r\n", 4) != 0)
				continue;
			size_t hl = i + 4;
			int rc = wss_check_response(w->head, hl, w->key);
			if (rc != 0)
				return rc;
			if (w->head_len > hl) {
				w->pre_len = w->head_len - hl;
				if ((w->pre = malloc(w->pre_len)) == NULL)
					return CAIRN_ECONNECT;
				memcpy(w->pre, w->head + hl, w->pre_len);
			}
			return 0;
		}
	}
}

int wss_advance(struct wss *w)
{
	int rc = 1, r;
	switch (w->phase) {
	case WSS_TLS:
		if ((r = SSL_connect(w->ssl)) != 1) {
			rc = wss_ssl_wait(w, r) > 0 ? 1 : CAIRN_ECONNECT;
			break;
		}
		/* Nothing at all is sent to a server whose certificate was refused. */
		if ((rc = wss_check_pin(w)) != 0)
			break;
		w->phase = WSS_REQUEST;
		/* fall through */
	case WSS_REQUEST:
		while (w->req_off < w->req_len) {
			r = SSL_write(w->ssl, w->req + w->req_off, (int)(w->req_len - w->req_off));
			if (r <= 0) {
				rc = wss_ssl_wait(w, r) > 0 ? 1 : CAIRN_ECONNECT;
				break;
			}
			w->req_off += (size_t)r;
		}
		if (w->req_off < w->req_len)
			break;
		w->phase = WSS_RESPONSE;
		w->want = POLLIN;
		/* fall through */
	case WSS_RESPONSE:
		if ((rc = wss_read_head(w)) == 0)
			w->phase = WSS_OPEN;
		break;
	case WSS_OPEN:
		return 0;
	default:
		return CAIRN_ECONNECT;
	}
	if (rc < 0)
		w->phase = WSS_FAILED;
	return rc;
}

short wss_events(const struct wss *w)
{
	if (w->phase != WSS_OPEN)
		return w->want;
	bool out = wss_output_pending(w) || w->read_wants_write;
	return (short)(POLLIN | (out ? POLLOUT : 0));
}

bool wss_output_pending(const struct wss *w)
{
	return w->phase == WSS_OPEN && wslay_event_want_write(w->ws);
}

bool wss_readable(const struct wss *w)
{
	return w->phase == WSS_OPEN &&
	       (w->in_off < w->in_len || w->pre_off < w->pre_len || SSL_pending(w->ssl) > 0);
}

int wss_flush(struct wss *w)
{
	if (w->phase != WSS_OPEN || w->error)
		return CAIRN_EIO;
	if (wslay_event_want_write(w->ws) && wslay_event_send(w->ws) != 0)
		w->error = true;
	return w->error ? CAIRN_EIO : 0;
}

ssize_t wss_send(struct wss *w, const void *buf, size_t len)
{
	if (wss_flush(w) != 0) {
		errno = EIO;
		return -1;
	}
	if (wslay_event_get_queued_msg_length(w->ws) >= WSS_OUT_CAP || len == 0) {
		errno = EAGAIN;
		return -1;
	}
	size_t take = len > WSS_FRAME_MAX ? WSS_FRAME_MAX : len;
	struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = buf, .msg_length = take};
	if (wslay_event_queue_msg(w->ws, &m) != 0 || wss_flush(w) != 0) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)take;
}

ssize_t wss_recv(struct wss *w, void *buf, size_t cap)
{
	if (w->phase != WSS_OPEN || w->error) {
		errno = EIO;
		return -1;
	}
	if (w->in_off == w->in_len && !w->eof && wslay_event_get_read_enabled(w->ws)) {
		/* wslay answers a ping and a close as it reads, and a text frame queued our close
		 * (1002): what it queued goes out now, as far as TLS takes it, even when the
		 * stream has just failed. */
		if (wslay_event_recv(w->ws) != 0 && !w->eof)
			w->error = true;
		if (wslay_event_want_write(w->ws) && wslay_event_send(w->ws) != 0 && !w->eof)
			w->error = true;
	}
	if (w->in_off < w->in_len) {
		size_t k = w->in_len - w->in_off < cap ? w->in_len - w->in_off : cap;
		memcpy(buf, w->in + w->in_off, k);
		w->in_off += k;
		if (w->in_off == w->in_len)
			w->in_off = w->in_len = 0;
		return (ssize_t)k;
	}
	if (w->error) {
		errno = EIO;
		return -1;
	}
	if (w->eof || !wslay_event_get_read_enabled(w->ws))
		return 0;
	errno = EAGAIN;
	return -1;
}
