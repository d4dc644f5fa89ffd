/* SPDX-License-Identifier: MIT */
/*
 * Real nginx for tests of the HTTPS transport (PROTOCOL.md 7.2): /usr/sbin/nginx in the
 * foreground, in a fresh prefix directory, serving docs/OPERATING.md's `nginx-site` block
 * verbatim with its placeholders filled in: a self-signed certificate made here for
 * relay.example.org and 127.0.0.1, a decoy page, a free loopback port.
 */
#ifndef CAIRN_TEST_NGINXPROC_H
#define CAIRN_TEST_NGINXPROC_H

#include <stdint.h>
#include <sys/types.h>

#define NGINXPROC_SERVER_NAME "relay.example.org"
#define NGINXPROC_DECOY       "<!doctype html><title>Field notes</title><p>Nothing to see.</p>\n"

struct nginxproc {
	pid_t pid;
	char dir[256];  /* the prefix: nginx.conf, site.conf, cert.pem, key.pem, www/, logs */
	char cert[320]; /* the certificate (PEM), for [https] pin_cert */
	uint16_t port;  /* nginx's TLS port on 127.0.0.1 */
};

/*
 * Starts nginx passing /PATH to the relay's HTTPS listener at RELAY_LISTEN ("HOST:PORT") and
 * waits until it accepts connections (20 s at most). Returns 0, or -1 with the reason on
 * stderr (nginx's own error log included).
 */
int nginxproc_start(struct nginxproc *n, const char *path, const char *relay_listen);

/* Stops nginx (if running) and removes its directory. */
void nginxproc_stop(struct nginxproc *n);

/* Reads the file NAME in N's prefix into OUT (NUL-terminated, truncated). Returns its
 * length, or -1. For the tests that check what nginx logged. */
long nginxproc_read(const struct nginxproc *n, const char *name, char *out, size_t cap);

#endif
