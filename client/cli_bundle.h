/* SPDX-License-Identifier: MIT */
/*
 * `cairn bundle export FILE [--expires DURATION]` and `cairn bundle deliver FILE [ADDRESS...]`
 * (cli_bundle.c) on libcairn's cairn_bundle_*. Called by cli.c's main with the command's
 * words (WORDS[0] is "bundle").
 */
#ifndef CAIRN_CLIENT_CLI_BUNDLE_H
#define CAIRN_CLIENT_CLI_BUNDLE_H

#include "cli_common.h"

int cli_bundle(struct options *o, const char *const *words, int nwords);

#endif
