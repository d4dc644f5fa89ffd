/* SPDX-License-Identifier: MIT */
/*
 * `cairn-relay import FILE` (import.c): delivers a bundle (docs/PROTOCOL.md 12) to the relay
 * of a config over that relay's own listener, as a courier would.
 */
#ifndef CAIRN_RELAY_IMPORT_H
#define CAIRN_RELAY_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"
#include "config.h"

/* What the relay made of a bundle's items. OK does not tell a new item from one stored by an
 * earlier delivery (5.12 rule 2), so TAKEN counts both. */
struct import_counts {
	size_t items;      /* in the file */
	size_t taken;      /* stored, now or before */
	size_t expired;    /* past their not_after */
	size_t refused;    /* refused for good by the mailbox's rules (denied, quota, full...) */
	size_t not_ours;   /* not sealed for this relay, or altered (`bad request`) */
	size_t unanswered; /* still owed: the connection failed, or the relay stayed busy */
};

/*
 * Delivers the bundle at PATH to the relay listening at CFG's [relay] listen, whose static
 * public key is PUBLIC_KEY, and fills *OUT (also on failure, with what was done). Returns 0,
 * CAIRN_EINVAL (PATH is not a bundle: nothing sent), CAIRN_ECONNECT (the relay is not
 * running there), CAIRN_EIO, CAIRN_ETIMEDOUT, CAIRN_ENOMEM or a handshake error, with a
 * sentence for the operator in ERR (ERRCAP bytes).
 */
int relay_import(const struct relay_config *cfg, const uint8_t public_key[static CAIRN_KEY_LEN],
                 const char *path, struct import_counts *out, char *err, size_t errcap);

#endif
