/* SPDX-License-Identifier: MIT */
/* The `group` and `groups` commands of `cairn` (cli_group.c). */
#ifndef CAIRN_CLIENT_CLI_GROUP_H
#define CAIRN_CLIENT_CLI_GROUP_H

#include "cli_common.h"

/* `cairn group SUBCOMMAND ...`: WORDS[0] is "group", NWORDS how many words there are.
 * Returns the exit status. */
int cli_group(struct options *o, const char *const *words, int nwords);

/* `cairn groups [--json]`: our groups, one line each (a JSON object with --json). Returns the
 * exit status. */
int cli_groups(const struct options *o);

#endif
