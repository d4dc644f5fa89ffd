/* SPDX-License-Identifier: MIT */
/*
 * What the client takes from the world, in one place so that a test can replace it: the
 * clocks, the randomness of ids, and the way a byte stream to a relay (or to its proxy) is
 * opened. struct cairn holds one; cairn_open installs env_default(), and in-process tests put
 * their own with client_set_env (client.h): a fake clock, counted ids, and a connect function
 * that hands back one end of a socketpair served by an in-memory relay.
 *
 * Key material is not drawn here: proto/ takes it from libsodium, whose generator a test
 * never needs to predict.
 */
#ifndef CAIRN_CLIENT_ENV_H
#define CAIRN_CLIENT_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_env {
	/* Monotonic milliseconds: deadlines, pings, backoff, quiet periods. */
	int64_t (*mono_ms)(void *ctx);
	/* Seconds since the epoch: when a message was sent or received. */
	int64_t (*wall_s)(void *ctx);
	/* LEN unpredictable bytes for ids and credentials. */
	void (*random)(void *ctx, void *buf, size_t len);
	/*
	 * Starts a byte stream to the ATTEMPT-th address (0 first) of HOST:PORT (the relay, or
	 * the SOCKS5 proxy when one is set; NUMERIC: HOST is an address literal, never to be
	 * resolved), without waiting for the network. *FD receives a non-blocking,
	 * close-on-exec descriptor the caller owns, connected or still connecting: wait for
	 * POLLOUT, then read SO_ERROR; when that connection fails, the caller tries ATTEMPT + 1.
	 * Returns 0, CAIRN_ECONNECT (this address refused at once: try the next) or
	 * CAIRN_ENOTFOUND (the name does not resolve, or has no such address: stop). Name
	 * resolution (getaddrinfo in the real environment) may block, for as long as the
	 * system's resolver takes: it cannot be bounded or polled. With a proxy, only the
	 * proxy's own name is ever resolved.
	 */
	int (*connect)(void *ctx, const char *host, uint16_t port, bool numeric, int attempt,
	               int *fd);
	void *ctx;
};

/* The real world: CLOCK_MONOTONIC, time(), libsodium's generator, TCP. */
const struct client_env *env_default(void);

#endif
