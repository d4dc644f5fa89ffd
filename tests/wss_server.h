/* SPDX-License-Identifier: MIT */
/*
 * A TLS web server for the cairn+https tests (test_client_wss, test_client_net_https), in a
 * thread on loopback: OpenSSL with a self-signed P-256 certificate made at start, one
 * connection, answering the WebSocket upgrade as its mode says, then echoing frames (with a
 * ping between two fragments) or bridging the stream to a TCP port (the real relay).
 */
#ifndef CAIRN_TEST_WSS_SERVER_H
#define CAIRN_TEST_WSS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* The DNS name its certificate carries (with 127.0.0.1). */
#define SRV_NAME "relay.example.org"

/* How long SRV_BRIDGE_SLOW holds its answer to the upgrade. */
#define SRV_SLOW_MS 300

enum srv_mode {
	SRV_OK,          /* 101, then echo */
	SRV_BAD_ACCEPT,  /* 101 with a wrong Sec-WebSocket-Accept */
	SRV_PAGE,        /* 200 with a web page */
	SRV_404,         /* 404 */
	SRV_LONG_HEAD,   /* 101 with a head over 4096 bytes */
	SRV_SILENT,      /* takes TCP, answers nothing */
	SRV_BRIDGE,      /* 101, then the payloads to and from 127.0.0.1:bridge_port */
	SRV_BRIDGE_SLOW, /* SRV_BRIDGE, the 101 after SRV_SLOW_MS: a client must wait for it */
	SRV_CLOSE,       /* 101, "bye" in a binary frame, a close frame; reads the reply */
	SRV_TEXT,        /* 101, "bye" in a binary frame, a text frame; reads the close */
};

struct srv {
	enum srv_mode mode;
	uint16_t bridge_port; /* SRV_BRIDGE */
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;
	uint8_t spki_hash[32]; /* the pin of its certificate */
	char cert_pem[64];     /* its certificate (PEM), removed by srv_stop */
	pthread_t thread;
	/* what the server saw */
	bool got_request;
	char host_header[300];
	int pongs;
	bool close_reply; /* SRV_CLOSE, SRV_TEXT: the client answered with a close frame */
	size_t echoed;
};

/* Starts a server in MODE on 127.0.0.1 (a free port); BRIDGE_PORT for SRV_BRIDGE. Owned:
 * srv_stop. Aborts when it cannot. */
struct srv *srv_start(enum srv_mode mode, uint16_t bridge_port);

/* Waits for S's thread (its one connection ended) and frees S; *SEEN (or NULL) receives what
 * it saw. */
void srv_stop(struct srv *s, struct srv *seen);

#endif
