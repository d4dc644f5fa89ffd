/* SPDX-License-Identifier: MIT */
/*
 * A self-signed certificate for the TLS peers of `cairn-bench compare` (mosquitto+TLS,
 * NATS+TLS): an ECDSA P-256 key and certificate for localhost and 127.0.0.1, made with the
 * openssl command (Debian: openssl) into a server's scratch directory. The certificate is its
 * own CA: the generators trust exactly it.
 */
#ifndef CAIRN_BENCH_TLSCERT_H
#define CAIRN_BENCH_TLSCERT_H

#include <stddef.h>

/* The name the certificate holds besides IP 127.0.0.1; TLS clients expect it. */
#define TLSCERT_HOST "localhost"

/* Writes DIR/cert.pem and DIR/key.pem and their paths into CERT and KEY. 0, or -1 (after a
 * note). */
int tlscert_make(const char *dir, char *cert, size_t cert_cap, char *key, size_t key_cap);

#endif
