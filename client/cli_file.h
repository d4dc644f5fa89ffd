/* SPDX-License-Identifier: MIT */
/* `cairn send NAME --file PATH`, `cairn files`, `cairn files get ID` (cli_file.c). */
#ifndef CAIRN_CLIENT_CLI_FILE_H
#define CAIRN_CLIENT_CLI_FILE_H

#include "cli_common.h"

/* A command-line option of these commands (--file, --output, --max-size with NEXT, --yes):
 * returns how many arguments it took (1 or 2), 0 if A is none of them, -1 if its value is
 * missing (said on stderr). */
int cli_file_option(struct options *o, const char *a, const char *next);

/* `send NAME --file PATH` (O->file set) or `files ...`: WORDS[0] is the command. Returns the
 * exit status. */
int cli_file(const struct options *o, const char *const *words, int nwords);

#endif
