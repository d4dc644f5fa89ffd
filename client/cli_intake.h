/* SPDX-License-Identifier: MIT */
/*
 * `cairn intake ...` and `cairn requests ...` (cli_intake.c), called by cli.c's main with the
 * command's words (WORDS[0] is "intake" or "requests").
 */
#ifndef CAIRN_CLIENT_CLI_INTAKE_H
#define CAIRN_CLIENT_CLI_INTAKE_H

#include "cli_common.h"

int cli_intake(struct options *o, const char *const *words, int nwords);

int cli_requests(struct options *o, const char *const *words, int nwords);

#endif
