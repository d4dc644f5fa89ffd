/* SPDX-License-Identifier: MIT */
/*
 * The relay's cairn+https address (PROTOCOL.md section 1) from its [https] settings: one
 * builder, so that the configuration accepts exactly what `cairn-relay address` can print and
 * what clients will parse.
 */
#ifndef CAIRN_RELAY_HTTPSADDR_H
#define CAIRN_RELAY_HTTPSADDR_H

#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"

/*
 * Builds into *A the cairn+https address of the relay with KEY, reached at PUBLIC ("HOST:PORT"
 * or "[IPv6]:PORT") on the secret PATH, without a pin. Returns 0, or CAIRN_EADDRESS when
 * PUBLIC or PATH cannot appear in an address that formats and parses back unchanged.
 */
CAIRN_WARN_UNUSED int https_address_build(const char *public_hostport, const char *path,
                                          const uint8_t key[static CAIRN_KEY_LEN],
                                          struct cairn_address *a);

#endif
