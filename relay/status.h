/* SPDX-License-Identifier: MIT */
/*
 * `cairn-relay status`: the running relay's metrics (metrics.h), fetched from its metrics
 * listener and printed for a person.
 */
#ifndef CAIRN_RELAY_STATUS_H
#define CAIRN_RELAY_STATUS_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Fetches the metrics of the relay CFG describes and prints them to OUT. Returns 0, or a
 * CAIRN_E code with a message in ERR: metrics off (CAIRN_EINVAL), the relay not running
 * (CAIRN_ECONNECT), no answer (CAIRN_ETIMEDOUT, CAIRN_EIO).
 */
int relay_status(const struct relay_config *cfg, FILE *out, char *err, size_t errcap);

/* Prints the Prometheus text TEXT (from metrics_render) for a person to OUT. */
void relay_status_print(const char *text, FILE *out);

#endif
