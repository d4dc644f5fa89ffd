/* SPDX-License-Identifier: MIT */
/*
 * Test vectors from docs/PROTOCOL.md. The spec holds fenced blocks opened by "```vector NAME"
 * with "key: value" lines; tests read them here so the published vectors and the code are
 * checked against each other on every run. Missing names or keys fail the calling test.
 */
#ifndef CAIRN_TEST_MDVEC_H
#define CAIRN_TEST_MDVEC_H

#include <stddef.h>
#include <stdint.h>

/* Returns the value of KEY in vector NAME (static storage, valid until the next call), or
 * fails the current cmocka test if the vector or key is absent. */
const char *mdvec_str(const char *name, const char *key);

/* Decodes the hex value of KEY in vector NAME into OUT (capacity CAP); returns its length.
 * Fails the test on a missing key, bad hex or a value longer than CAP. */
size_t mdvec_hex(const char *name, const char *key, uint8_t *out, size_t cap);

/* Decodes a hex string (any case) into OUT; returns its length, or fails the test. */
size_t test_unhex(const char *hex, uint8_t *out, size_t cap);

#endif
