/* SPDX-License-Identifier: MIT */
/*
 * A fast stand-in for crypto_pwhash, linked into the state fuzz target and its seed tool with
 * -Wl,--wrap=crypto_pwhash. The loader uses the limits stored in the file (at least
 * INTERACTIVE: 64 MiB per open), which would hold the fuzzer to a few runs a second. This runs
 * the real Argon2id at its minimum cost over a salt that also binds the stored limits, so a
 * store still opens only with the limits it was sealed with, as with the real derivation.
 * fastkdf_real routes calls to the real function (the seed tool reads recorded stores so).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "fastkdf.h"

bool fastkdf_real;

int __real_crypto_pwhash(unsigned char *const out, unsigned long long outlen,
                         const char *const passwd, unsigned long long passwdlen,
                         const unsigned char *const salt, unsigned long long opslimit,
                         size_t memlimit, int alg);
int __wrap_crypto_pwhash(unsigned char *const out, unsigned long long outlen,
                         const char *const passwd, unsigned long long passwdlen,
                         const unsigned char *const salt, unsigned long long opslimit,
                         size_t memlimit, int alg);

int __wrap_crypto_pwhash(unsigned char *const out, unsigned long long outlen,
                         const char *const passwd, unsigned long long passwdlen,
                         const unsigned char *const salt, unsigned long long opslimit,
                         size_t memlimit, int alg)
{
	if (fastkdf_real)
		return __real_crypto_pwhash(out, outlen, passwd, passwdlen, salt, opslimit,
		                            memlimit, alg);
	uint8_t bound[crypto_pwhash_SALTBYTES];
	uint64_t limits[2] = {(uint64_t)opslimit, (uint64_t)memlimit};
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(bound));
	crypto_generichash_update(&st, salt, crypto_pwhash_SALTBYTES);
	crypto_generichash_update(&st, (const uint8_t *)limits, sizeof(limits));
	crypto_generichash_final(&st, bound, sizeof(bound));
	return __real_crypto_pwhash(out, outlen, passwd, passwdlen, bound,
	                            crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, alg);
}
