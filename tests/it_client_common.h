/* SPDX-License-Identifier: MIT */
/*
 * What the programs test_it_client, test_it_client_adverse and test_it_client_relays share:
 * the per-test world (a directory of homes and a relay, set up and torn down around each
 * test), the start of main, and the helpers that snapshot a home and feed it bad invites.
 * One source (it_client_common.c) linked into each, so nothing is copied between them.
 */
#ifndef CAIRN_TEST_IT_CLIENT_COMMON_H
#define CAIRN_TEST_IT_CLIENT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn/address.h"
#include "fakerelay.h"
#include "relayproc.h"

#define PASS CLI_PASS

/* ---- per-test world: a directory of homes and a relay -------------------------------- */

struct world {
	char dir[64];
	char home[4][96]; /* A, B, C, D */
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
	double started;
	/* What a test starts besides, stopped by teardown even when an assertion fails. */
	struct relayproc relay2;
	struct fakerelay fake;
	pid_t proxy;
	pid_t listener; /* a `cairn listen` */
};

/* cmocka setup: a fresh /tmp directory of four homes and a started relay (w->addr is its
 * address). Returns 0, or -1 when the relay cannot start. teardown stops whatever the test
 * started (relay2, fake, proxy, listener) even after a failed assertion, and frees the world. */
int setup(void **state);
int teardown(void **state);

/* The start of every main: libsodium, the cairn command (CAIRN_CLI), SIGPIPE ignored and the
 * CAIRN_IT_ONLY filter. Returns 0, or -1 (with a message) when the command is not found. */
int it_client_init(void);

/* A free loopback TCP port (bound, read, released): a port to give a server to start. */
uint16_t free_port(void);

/* DIR (a flat home) as one malloc'd buffer of *LEN bytes, owned by the caller (free). */
char *snapshot(const char *dir, size_t *len);

/* An invite's text to its payload (at most CAP bytes; returns its length) and back (malloc'd). */
size_t invite_decode(const char *text, uint8_t *bin, size_t cap);
char *invite_encode_text(const uint8_t *bin, size_t len);

/* Accepting INVITE fails with a clear error and leaves HOME byte for byte as it was. */
void expect_rejected(const char *home, const char *invite, const char *why);

#endif
