/* SPDX-License-Identifier: MIT */
/* The fast passphrase derivation of the state fuzz target (see fastkdf.c). */
#ifndef CAIRN_FUZZ_FASTKDF_H
#define CAIRN_FUZZ_FASTKDF_H

#include <stdbool.h>

/* While true, crypto_pwhash is the real one (default false: the fast derivation). */
extern bool fastkdf_real;

#endif
