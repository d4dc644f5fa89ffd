/* SPDX-License-Identifier: MIT */
/*
 * A hand-built WebSocket client for tests of the relay's HTTPS transport (PROTOCOL.md 7.2):
 * TCP to loopback, optionally TLS (OpenSSL, no verification: tests check the pin
 * themselves), the opening handshake, and frames built byte by byte so a test can break any
 * rule (unmasked, text, oversize, reserved bits). A bridge turns it into a plain TCP port a
 * test client (tclient) dials, so a whole Cairn session runs through the WebSocket.
 */
#ifndef CAIRN_TEST_WSCLIENT_H
#define CAIRN_TEST_WSCLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st;
struct ssl_ctx_st;

struct wsc {
	int fd;
	struct ssl_ctx_st *ctx; /* TLS, when wsc_tls was called */
	struct ssl_st *ssl;
	uint8_t in[1 << 17]; /* read but not yet taken */
	size_t in_len;
};

/* TCP to 127.0.0.1:PORT. Returns 0 or -1. */
int wsc_dial(struct wsc *w, uint16_t port);
/* TLS over the connection, with SNI NAME (NULL for none). Returns 0 or -1. */
int wsc_tls(struct wsc *w, const char *name);
/* The DER SubjectPublicKeyInfo hash (SHA-256) of the server's certificate. Returns 0 or -1. */
int wsc_peer_pin(struct wsc *w, uint8_t pin[32]);
void wsc_close(struct wsc *w);

/* Writes LEN bytes as they are. Returns 0 or -1. */
int wsc_write(struct wsc *w, const void *buf, size_t len);

/* Sends a valid upgrade for /PATH, Host: HOST. Returns 0 or -1. */
int wsc_send_upgrade(struct wsc *w, const char *path, const char *host);
/*
 * Reads one response head (up to 8 KiB) within TIMEOUT_MS into HEAD (NUL-terminated).
 * Returns the status code, 0 if the connection closed first, -1 on a timeout.
 */
int wsc_read_response(struct wsc *w, char *head, size_t cap, int timeout_ms);
/* Upgrade and check the 101's Sec-WebSocket-Accept. Returns 0 or -1. */
int wsc_upgrade(struct wsc *w, const char *path, const char *host);

/* Sends one frame: first byte B0 (FIN, RSV, opcode), PAYLOAD masked if MASK. */
int wsc_send_frame(struct wsc *w, uint8_t b0, const void *payload, size_t len, bool mask);
/*
 * Reads one frame within TIMEOUT_MS: its first byte into *B0, its payload into BUF (CAP
 * bytes; longer payloads fail). Returns the payload length, -1 on a timeout or error, -2 if
 * the connection closed.
 */
ssize_t wsc_read_frame(struct wsc *w, uint8_t *b0, uint8_t *buf, size_t cap, int timeout_ms);
/* True if the peer closes the connection (EOF or reset) within TIMEOUT_MS, whatever else it
 * sends first. */
bool wsc_wait_closed(struct wsc *w, int timeout_ms);

/*
 * A thread that serves one plain TCP connection on 127.0.0.1:PORT (set by start) and carries
 * its bytes over W as masked binary frames (cut at CHUNK bytes when CHUNK is not 0, some
 * fragmented), and the binary payloads W receives back. Stops when either side closes.
 */
struct wsc_bridge {
	struct wsc *w;
	int listen_fd;
	uint16_t port;
	size_t chunk;
	pthread_t thread;
	bool running;
};
int wsc_bridge_start(struct wsc_bridge *b, struct wsc *w, size_t chunk);
void wsc_bridge_stop(struct wsc_bridge *b);

#endif
