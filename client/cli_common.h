/* SPDX-License-Identifier: MIT */
/*
 * What the commands of `cairn` share (cli_common.c): cli.c (arguments, contacts and messages)
 * and cli_group.c (the `group` commands). Internal to the command: both use libcairn through
 * include/cairn/cairn.h only.
 */
#ifndef CAIRN_CLIENT_CLI_COMMON_H
#define CAIRN_CLIENT_CLI_COMMON_H

#include <stdio.h>

#include "cairn/cairn.h"

#define EXIT_USAGE  2
#define EXIT_QUEUED 3
#define PASS_MAX    1024 /* the longest passphrase read */

struct options {
	const char *home;
	const char *socks;
	const char *relays[CAIRN_RELAYS_MAX];
	size_t nrelays; /* every --relay given, even past CAIRN_RELAYS_MAX */
	const char *name;
	int json;
	int qr;
	int timeout_ms;
	int group; /* read: the conversation is a group's, so every --json line has "sender" */
	const char *work;  /* intake create: --work BITS */
	const char *grace; /* intake rotate: --grace DURATION */
	int private_routing; /* --private-routing, or CAIRN_PRIVATE_ROUTING=1 */
	/* files (cli_file.c) */
	const char *file;     /* send --file PATH */
	const char *output;   /* files get --output PATH */
	const char *max_size; /* files get --max-size SIZE */
	int yes;              /* files get --yes */
};

/* Prints "cairn: WHAT: <error>" on stderr and returns 1 (the exit status of an error). */
int cli_fail(int rc, const char *what);
/* Closes C (accepts NULL), first telling on stderr why its obfs4proxy could not start, if it
 * could not (cairn_transport_error): the program's own words, as visible text only. */
void cli_close(struct cairn *c);
/* Reads the passphrase into BUF (CAP bytes) from the terminal with echo off, or from
 * CAIRN_PASSPHRASE; TWICE asks again to confirm. Returns 0 or -1 (the reason printed). */
int cli_passphrase(char *buf, size_t cap, int twice);
/* Asks for the passphrase and opens O's home into *C with O's network settings. Returns 0 or
 * an exit status (the reason printed). */
int cli_open(const struct options *o, struct cairn **c);
/* Checks O's --relay addresses (count, syntax, no relay twice). Returns 0 or EXIT_USAGE. */
int cli_check_relays(const struct options *o);
/* Prints message M (borrowed) for people or, with O's --json, as one JSON line; CTX is O. */
int cli_print_message(void *ctx, const struct cairn_message *m);
/* The end of making an invite (WHAT names the command): with RC 0 prints INVITE (owned; freed
 * here) alone on stdout and, with O's --qr, as a QR code on stderr; else says why nothing was
 * made. Returns the exit status. */
int cli_print_invite(const struct options *o, int rc, const char *what, char *invite);

#endif
