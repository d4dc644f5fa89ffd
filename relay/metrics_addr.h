/* SPDX-License-Identifier: MIT */
/*
 * Where the metrics listener ([metrics] listen) may be: a loopback TCP address or a Unix
 * socket, never anything another machine can reach. One parser for the config file, the
 * relay that binds it and `cairn-relay status` that dials it; and what a request on it asks
 * for (metrics_route, the listener's one decoder, fuzzed by fuzz/fuzz_metrics_head.c).
 */
#ifndef CAIRN_RELAY_METRICS_ADDR_H
#define CAIRN_RELAY_METRICS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_PATH_MAX 108 /* sun_path */

struct metrics_addr {
	bool unix_socket;
	char host[64];               /* TCP: 127.x.y.z, ::1 or localhost */
	uint16_t port;               /* TCP: 1..65535 */
	char path[METRICS_PATH_MAX]; /* unix: an absolute path */
};

/*
 * Parses TEXT: "127.0.0.1:PORT" (any of 127.0.0.0/8), "[::1]:PORT", "localhost:PORT" or
 * "unix:/absolute/path". Returns 0, or CAIRN_EINVAL with a message an operator can act on in
 * ERR (which names no key: the caller adds it).
 */
int metrics_addr_parse(const char *text, struct metrics_addr *out, char *err, size_t errcap);

/* Whether the numeric IPv4 or IPv6 address HOST is a loopback address. */
bool metrics_host_is_loopback(const char *host);

enum metrics_route {
	METRICS_ROUTE_INCOMPLETE, /* no empty line yet: read on */
	METRICS_ROUTE_GET,        /* GET /metrics or GET /: the text */
	METRICS_ROUTE_HEAD,       /* HEAD of the same: headers only */
	METRICS_ROUTE_NOT_FOUND,  /* another target */
	METRICS_ROUTE_BAD_METHOD, /* another method, or no request line */
};

/* What the request head in HEAD[0..LEN) asks for (bytes, not a C string: a NUL is just a
 * byte). Complete once an empty line (CRLF CRLF or LF LF) has arrived. */
enum metrics_route metrics_route(const char *head, size_t len);

#endif
