/* SPDX-License-Identifier: MIT */
/*
 * The `pin` of a cairn+https address (PROTOCOL.md section 1): the SHA-256 of the DER
 * SubjectPublicKeyInfo of the web server's certificate, read from its PEM file.
 */
#ifndef CAIRN_RELAY_CERTPIN_H
#define CAIRN_RELAY_CERTPIN_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/address.h"
#include "cairn/error.h"

/*
 * Reads the first certificate in the PEM file PATH and writes its pin into PIN. Returns 0,
 * CAIRN_EIO if the file cannot be read, or CAIRN_EINVAL (with a reason in ERR) if it holds no
 * certificate.
 */
CAIRN_WARN_UNUSED int certpin_from_pem(const char *path, uint8_t pin[static CAIRN_PIN_LEN],
                                       char *err, size_t errcap);

#endif
