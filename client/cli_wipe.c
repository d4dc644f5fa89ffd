/* SPDX-License-Identifier: MIT */
/*
 * The seized device, as commands: `cairn wipe [--yes]` destroys the home with no passphrase
 * (cairn_wipe), asking first on a terminal; `cairn duress set|clear` sets or forgets the duress
 * passphrase (cairn_duress_set); and no core dump of the command is ever written (it would
 * hold texts, names and keys in the clear). Through include/cairn/cairn.h only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <sodium.h>

#include "cairn/cairn.h"
#include "cli_common.h"

void cli_no_core(void)
{
	struct rlimit none = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &none);
#ifdef __linux__
	/* A core piped to a collector (systemd-coredump) is not bound by RLIMIT_CORE everywhere;
	 * not dumpable, none is made, and no other process of the user may ptrace this one. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

/* Asks on the terminal whether to destroy HOME. Returns 1 when the answer is "yes", 0 for any
 * other answer, -1 when there is no terminal to ask on. */
static int confirm(const char *home)
{
	FILE *tty = fopen("/dev/tty", "r+");
	if (tty == NULL)
		return -1;
	char line[16];
	fprintf(tty,
	        "Destroy the client in %s for good (no passphrase can bring it back)? "
	        "Type yes: ",
	        home);
	fflush(tty);
	int ok = fgets(line, sizeof(line), tty) != NULL;
	fclose(tty);
	if (!ok)
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "yes") == 0;
}

int cli_wipe(const struct options *o, int nwords)
{
	if (nwords != 1) {
		fprintf(stderr, "cairn: wipe takes no argument but --yes\n");
		return EXIT_USAGE;
	}
	if (!o->yes) {
		int yes = confirm(o->home);
		if (yes < 0) {
			fprintf(stderr,
			        "cairn: no terminal to confirm on; run 'cairn wipe --yes'\n");
			return EXIT_USAGE;
		}
		if (!yes) {
			fprintf(stderr, "cairn: nothing was wiped\n");
			return 1;
		}
	}
	int rc = cairn_wipe(o->home);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no client in %s\n", o->home);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "wipe");
	struct stat sb;
	if (lstat(o->home, &sb) == 0)
		fprintf(stderr, "cairn: wiped; %s stays, with files that are not cairn's\n",
		        o->home);
	else
		fprintf(stderr, "cairn: wiped\n");
	return 0;
}

int cli_duress(const struct options *o, const char *const *words, int nwords)
{
	const char *sub = nwords == 2 ? words[1] : NULL;
	int set = sub != NULL && strcmp(sub, "set") == 0;
	if (sub == NULL || (!set && strcmp(sub, "clear") != 0)) {
		fprintf(stderr, "cairn: duress set | duress clear\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc;
	if (set) {
		char pass[PASS_MAX];
		if (cli_secret("CAIRN_DURESS_PASSPHRASE", "duress passphrase", pass, sizeof(pass),
		               1) != 0) {
			cli_close(c);
			return 1;
		}
		rc = cairn_duress_set(c, pass);
		sodium_memzero(pass, sizeof(pass));
	} else {
		rc = cairn_duress_clear(c);
	}
	cli_close(c);
	if (rc == CAIRN_EINVAL) {
		fprintf(stderr, "cairn: the duress passphrase must differ from the passphrase\n");
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, set ? "duress set" : "duress clear");
	fprintf(stderr, set ? "cairn: duress passphrase set\n"
	                    : "cairn: no duress passphrase from now on\n");
	return 0;
}
