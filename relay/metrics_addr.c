/* SPDX-License-Identifier: MIT */
/*
 * The metrics listener's address (metrics_addr.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "metrics_addr.h"

bool metrics_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	return false;
}

int metrics_addr_parse(const char *text, struct metrics_addr *out, char *err, size_t errcap)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(text, "unix:", 5) == 0) {
		const char *path = text + 5;
		if (path[0] != '/' || strlen(path) >= sizeof(out->path)) {
			snprintf(err, errcap,
			         "'%s' needs an absolute socket path of at most %d bytes", text,
			         METRICS_PATH_MAX - 1);
			return CAIRN_EINVAL;
		}
		out->unix_socket = true;
		memcpy(out->path, path, strlen(path) + 1);
		return 0;
	}
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t hlen = colon != NULL ? (size_t)(colon - text) : 0;
	if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	char *end = NULL;
	unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
	if (colon == NULL || hlen == 0 || hlen >= sizeof(out->host) || colon[1] == '\0' ||
	    *end != '\0' || port == 0 || port > 65535) {
		snprintf(err, errcap,
		         "'%s' is not 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or "
		         "unix:/PATH",
		         text);
		return CAIRN_EINVAL;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (strcmp(out->host, "localhost") != 0 && !metrics_host_is_loopback(out->host)) {
		snprintf(err, errcap,
		         "'%s' is not a loopback address: metrics are for this machine only "
		         "(use 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/PATH, and "
		         "reach them from elsewhere through an SSH tunnel)",
		         text);
		return CAIRN_EINVAL;
	}
	out->port = (uint16_t)port;
	return 0;
}

enum metrics_route metrics_route(const char *head, size_t len)
{
	bool complete = false;
	for (size_t i = 0; i + 1 < len && !complete; i++)
		complete = (head[i] == '\n' && head[i + 1] == '\n') ||
		           (i + 3 < len && memcmp(head + i, "\r\n\r\n", 4) == 0);
	if (!complete)
		return METRICS_ROUTE_INCOMPLETE;
	size_t skip = len >= 4 && memcmp(head, "GET ", 4) == 0    ? 4
	              : len >= 5 && memcmp(head, "HEAD ", 5) == 0 ? 5
	                                                          : 0;
	if (skip == 0)
		return METRICS_ROUTE_BAD_METHOD;
	size_t t = skip;
	while (t < len && head[t] != ' ' && head[t] != '\r' && head[t] != '\n')
		t++;
	size_t tlen = t - skip;
	bool metrics = (tlen == 8 && memcmp(head + skip, "/metrics", 8) == 0) ||
	               (tlen == 1 && head[skip] == '/');
	if (!metrics)
		return METRICS_ROUTE_NOT_FOUND;
	return skip == 4 ? METRICS_ROUTE_GET : METRICS_ROUTE_HEAD;
}
