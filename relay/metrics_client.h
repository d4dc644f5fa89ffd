/* SPDX-License-Identifier: MIT */
/*
 * A tiny blocking HTTP/1.0 client for the relay's own metrics listener (`cairn-relay
 * status`): one GET /metrics to a loopback address or Unix socket, bounded in time and size.
 */
#ifndef CAIRN_RELAY_METRICS_CLIENT_H
#define CAIRN_RELAY_METRICS_CLIENT_H

#include <stddef.h>

#include "metrics_addr.h"

#define METRICS_CLIENT_MAX (256 * 1024) /* bytes of answer read, at most */

/*
 * Fetches /metrics from A within TIMEOUT_MS. On success returns 0 and *BODY (malloc'd, owned
 * by the caller, NUL-terminated). Otherwise CAIRN_ECONNECT (nothing listens: the relay is not
 * running, or metrics are elsewhere), CAIRN_ETIMEDOUT or CAIRN_EIO, with a message in ERR.
 */
int metrics_fetch(const struct metrics_addr *a, int timeout_ms, char **body, char *err,
                  size_t errcap);

#endif
