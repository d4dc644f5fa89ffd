/* SPDX-License-Identifier: MIT */
/*
 * What the intake tests through the real `cairn` command share (test_it_intake_cli and
 * test_it_intake_cli_flood): the officer's requests read back through `requests --json`, each
 * field checked, a relay's address text, an intake address's first sender id, and a defender
 * who accepts an intake address and writes through it.
 */
#ifndef CAIRN_TEST_IT_INTAKE_COMMON_H
#define CAIRN_TEST_IT_INTAKE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "relayproc.h"

/* One line of `requests --json`. */
struct request {
	char id[64];
	char intake[65];
	char preview[256];
	int messages;
};

/* HOME's `requests --json`, every field of every request checked, into R (up to CAP; more
 * fails the test); returns the count. */
size_t requests(const char *home, struct request *r, size_t cap);

/* The request whose preview starts with TEXT, or NULL. */
const struct request *find_request(const struct request *r, size_t n, const char *text);

/* R's address text (127.0.0.1, its port and key) into OUT. */
void address_of(const struct relayproc *r, char out[CAIRN_ADDRESS_MAX + 1]);

/* The sender id of the first point of the intake address TEXT. */
void intake_sender_id(const char *text, uint8_t sid[24]);

/* Creates HOME and has it accept ADDRESS as NAME and send TEXT; the send's exit status. */
int defender_writes(const char *home, const char *address, const char *name, const char *text);

#endif
