/* SPDX-License-Identifier: MIT */
/*
 * `cairn timer NAME 1d|off` (cli_timer.c): disappearing messages, and how a timer change is
 * shown in a conversation. Called by cli.c's main with the command's words.
 */
#ifndef CAIRN_CLIENT_CLI_TIMER_H
#define CAIRN_CLIENT_CLI_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "cli_common.h"

int cli_timer(struct options *o, const char *const *words, int nwords);

/* Parses a duration: "off" or 0 (0), or a number with a unit s, m, h, d or w (a bare number
 * is seconds), at most CAIRN_TIMER_MAX_S. Returns 0 or -1. */
int cli_timer_parse(const char *s, uint32_t *seconds);

#endif
