/* SPDX-License-Identifier: MIT */
/*
 * `cairn relay ...` (cli_relay.c): stored routes, how to reach a relay by its key. Called by
 * cli.c's main with the command's words (WORDS[0] is "relay").
 */
#ifndef CAIRN_CLIENT_CLI_RELAY_H
#define CAIRN_CLIENT_CLI_RELAY_H

#include "cairn/cairn.h"
#include "cli_common.h"

int cli_relay(struct options *o, const char *const *words, int nwords);

/* Prints on stderr, once each, the relay policy changes a sync or listen learned
 * (cairn_policy_notices): "relay X changed its policy since DATE; see `cairn relay info`". */
void cli_policy_notices(struct cairn *c);

#endif
