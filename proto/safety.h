/* SPDX-License-Identifier: MIT */
/*
 * Safety numbers (docs/PROTOCOL.md section 8.7): a 60-digit number two people compare in
 * person to check that each holds the other's real identity key. Both sides compute the same
 * number, whichever of them is "local".
 */
#ifndef CAIRN_PROTO_SAFETY_H
#define CAIRN_PROTO_SAFETY_H

#include <stdint.h>

#include "cairn/limits.h"

#define SAFETY_ITERATIONS 5200
#define SAFETY_DIGITS     60
/* Twelve groups of five digits separated by single spaces, NUL-terminated. */
#define SAFETY_TEXT_LEN (SAFETY_DIGITS + SAFETY_DIGITS / 5 - 1 + 1)

/* Writes the safety number for identity keys A and B (Ed25519 public keys) into OUT. */
void safety_number(const uint8_t a[static CAIRN_KEY_LEN], const uint8_t b[static CAIRN_KEY_LEN],
                   char out[static SAFETY_TEXT_LEN]);

#endif
