/* SPDX-License-Identifier: MIT */
/*
 * What the test tools that proxy TCP (faultproxy.c, censor.c) share: stopping on a signal, the
 * clock, numeric addresses, a non-blocking descriptor, the upstream side of a connection, and a
 * listener that says where it listens.
 */
#ifndef CAIRN_TEST_TOOLNET_H
#define CAIRN_TEST_TOOLNET_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Set once SIGTERM or SIGINT came (after toolnet_signals): the tool finishes and reports. */
extern volatile sig_atomic_t toolnet_stopping;

/* Sets toolnet_stopping on SIGTERM and SIGINT, and ignores SIGPIPE (a peer that closed must
 * not kill the tool). */
void toolnet_signals(void);

/* The monotonic clock in milliseconds. */
int64_t toolnet_now_ms(void);

/* Splits "HOST:PORT" or "[V6]:PORT" and resolves it (numeric hosts only), for bind() when
 * PASSIVE. Returns 0 or -1. */
int toolnet_resolve(const char *text, int passive, struct sockaddr_storage *ss, socklen_t *len);

/* Makes FD non-blocking. Returns 0 or -1. */
int toolnet_nonblocking(int fd);

/* The upstream side of a proxied connection: makes CLIENT (just accepted) non-blocking and
 * starts connecting a new non-blocking socket to UP, both without Nagle's delay. Returns that
 * socket, *CONNECTING telling whether the connect is still under way; or -1. */
int toolnet_pair(int client, const struct sockaddr_storage *up, socklen_t uplen, bool *connecting);

/* Listens (non-blocking) on TEXT ("HOST:PORT", port 0 picks one) and prints "listening
 * HOST:PORT" on stdout. Returns the descriptor, or -1 after saying why on stderr as PROG. */
int toolnet_listen(const char *text, const char *prog);

#endif
