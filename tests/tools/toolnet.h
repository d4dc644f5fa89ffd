/* SPDX-License-Identifier: MIT */
/*
 * What the test tools that proxy TCP (faultproxy.c, censor.c) share: numeric addresses, a
 * non-blocking descriptor, and a listener that says where it listens.
 */
#ifndef CAIRN_TEST_TOOLNET_H
#define CAIRN_TEST_TOOLNET_H

#include <stdbool.h>
#include <sys/socket.h>

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
