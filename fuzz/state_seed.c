/* SPDX-License-Identifier: MIT */
/*
 * Makes seeds for fuzz_state. `fuzz_state_seed OUT_DIR DB...` takes client stores the tests
 * recorded (CAIRN_FUZZ_RECORD, tests/support/cliproc.c), opens each with the tests' passphrase
 * and the real Argon2id, and re-seals its master key under fastkdf.c's quick derivation; the
 * records stay exactly as the client wrote them. `fuzz_state_seed --new OUT_DIR` makes a fresh
 * client (an identity and nothing else). Each result is written to OUT_DIR under its name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/cairn.h"
#include "fastkdf.h"
#include "state.h"

#define PASSPHRASE "correct horse battery staple" /* the tests' (cliproc.h) */

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = in != NULL ? fopen(to, "wb") : NULL;
	int rc = in != NULL && out != NULL ? 0 : -1;
	char buf[65536];
	size_t n;
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (in != NULL && ferror(in))
		rc = -1;
	if (in != NULL)
		fclose(in);
	if (out != NULL && fclose(out) != 0)
		rc = -1;
	return rc;
}

/* Re-seals the store in HOME for the fast derivation. */
static int reseal(const char *home)
{
	struct cstate *st = NULL;
	fastkdf_real = true;
	int rc = cstate_open(home, PASSPHRASE, &st);
	fastkdf_real = false;
	if (rc == 0)
		rc = cstate_rekey(st, PASSPHRASE);
	cstate_close(st);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fuzz_state_seed OUT_DIR DB... | --new OUT_DIR\n");
		return 2;
	}
	char home[] = "/tmp/cairn-state-seed-XXXXXX";
	if (mkdtemp(home) == NULL)
		return 1;
	char db[64], out[4096];
	snprintf(db, sizeof(db), "%s/cairn.db", home);
	int status = 0;
	if (strcmp(argv[1], "--new") == 0) {
		snprintf(out, sizeof(out), "%s/fresh.db", argv[2]);
		if (cairn_init_kdf(home, PASSPHRASE, CAIRN_KDF_INTERACTIVE) != 0 ||
		    copy_file(db, out) != 0)
			status = 1;
		unlink(db);
	}
	for (int i = 2; strcmp(argv[1], "--new") != 0 && i < argc; i++) {
		const char *base = strrchr(argv[i], '/');
		snprintf(out, sizeof(out), "%s/%s", argv[1], base != NULL ? base + 1 : argv[i]);
		int rc = copy_file(argv[i], db) == 0 ? reseal(home) : -1;
		if (rc != 0 || copy_file(db, out) != 0) {
			fprintf(stderr, "fuzz_state_seed: %s: failed (%d)\n", argv[i], rc);
			status = 1;
		}
		unlink(db);
	}
	rmdir(home);
	return status;
}
