/* SPDX-License-Identifier: MIT */
/*
 * The relay's static X25519 key pair on disk: DATA/relay.key, mode 0600, owned by the relay's
 * user. Loading refuses a key file that group or others can read, so a leaked key is noticed.
 */
#ifndef CAIRN_RELAY_KEYFILE_H
#define CAIRN_RELAY_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/limits.h"

#define RELAY_KEY_FILE "relay.key"

/* Creates PATH with a fresh private key (refuses to overwrite). Returns 0 or a CAIRN_E code,
 * with a message in ERR. */
int relay_key_generate(const char *path, char *err, size_t errcap);

/* Loads the key pair from PATH. Returns 0 or a CAIRN_E code with a message in ERR. PRIVATE
 * should point at sodium_malloc'd memory. */
int relay_key_load(const char *path, uint8_t private_key[static CAIRN_KEY_LEN],
		   uint8_t public_key[static CAIRN_KEY_LEN], char *err, size_t errcap);

#endif
