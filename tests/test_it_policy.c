/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy end to end (docs/PROTOCOL.md 5.13), with the real binaries: the
 * operator's [policy] shown by `cairn-relay policy` and by `cairn relay info` (its texts
 * through the terminal filter: a bidirectional override and an escape sequence the operator
 * wrote arrive escaped, never raw), learned silently by a sync, then changed by the operator
 * and reloaded with SIGHUP: the next sync warns once, the one after it does not; withdrawn:
 * warned once too. A relay whose policy is signed by another key than its address's (the fake
 * relay) is refused with a clear error; one that does not know POLICY (the fake relay without
 * that mode, as an older relay) publishes none.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "fakerelay.h"
#include "relayproc.h"

/* U+202E (right-to-left override) and ESC [31m in the operator's statement. */
#define HOSTILE                                                                                    \
	"note \xe2\x80\xae"                                                                        \
	"reversed \x1b[31mred"

struct world {
	char dir[64], alice[96];
	struct relayproc r;
	char addr[CAIRN_ADDRESS_MAX + 1];
};

static void write_conf(const struct relayproc *r, const char *policy)
{
	FILE *f = fopen(r->conf, "w");
	assert_non_null(f);
	fprintf(f, "[relay]\nlisten = 127.0.0.1:%u\nlog_level = info\n[limits]\n[policy]\n%s",
	        r->port, policy);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	strcpy(w.dir, "/tmp/cairn-itpolicy-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		return -1;
	snprintf(w.alice, sizeof(w.alice), "%s/alice", w.dir);
	if (relayproc_init(&w.r, NULL) != 0)
		return -1;
	write_conf(&w.r, "jurisdiction = Iceland\ncontact = ops@example.org\n"
	                 "statement = " HOSTILE "\n");
	if (relayproc_start(&w.r) != 0 ||
	    relayproc_address(&w.r, "127.0.0.1", w.addr, sizeof(w.addr)) != 0) {
		relayproc_cleanup(&w.r); /* no relay may outlive a failed setup */
		return -1;
	}
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->r);
	test_rm_tree(w->dir);
	return 0;
}

/* `relay info --json` until its digest differs from OLD (the reload is asynchronous to us):
 * returns the new output (caller frees). */
static char *info_until_changed(const struct world *w, const char *old)
{
	for (int i = 0; i < 600; i++) {
		struct res r =
		    cli_expect(0, CALL(.home = w->alice), ARGS("relay", "info", w->addr, "--json"));
		if (strcmp(r.out, old) != 0) {
			free(r.err);
			return r.out;
		}
		res_free(&r);
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	}
	fail_msg("the relay's policy did not change after SIGHUP");
	return NULL;
}

static void test_policy_cli(void **state)
{
	struct world *w = *state;
	cli_check(0, CALL(.home = w->alice), ARGS("init"));

	/* The operator's review of what is published. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s policy --data %s/data --config %s", CAIRN_RELAY_BIN,
	         w->r.dir, w->r.conf);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char out[4096] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(out, "jurisdiction: Iceland\n"));
	assert_non_null(strstr(out, "ttl: 1814400 seconds\n"));

	/* What a user sees: verified, every field, the operator's text escaped. */
	struct res r = cli_expect(0, CALL(.home = w->alice), ARGS("relay", "info", w->addr));
	assert_non_null(strstr(r.out, "verified against the address"));
	assert_non_null(strstr(r.out, "Iceland"));
	assert_non_null(strstr(r.out, "ops@example.org"));
	assert_non_null(strstr(r.out, "21 days"));
	assert_null(strstr(r.out, "\xe2\x80\xae"));
	assert_null(strchr(r.out, 0x1b));
	assert_non_null(strstr(r.out, "\\u202e"));
	assert_non_null(strstr(r.out, "\\x1b[31m"));
	res_free(&r);
	struct res j =
	    cli_expect(0, CALL(.home = w->alice), ARGS("relay", "info", w->addr, "--json"));
	assert_non_null(strstr(j.out, "\"published\":true"));
	assert_non_null(strstr(j.out, "\"ttl\":1814400"));
	assert_null(strchr(j.out, 0x1b));

	/* A mailbox there; the first policy is learned silently. */
	struct res inv = cli_expect(0, CALL(.home = w->alice),
	                            ARGS("invite", "--relay", w->addr, "--name", "bob"));
	res_free(&inv);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_null(strstr(r.err, "policy"));
	res_free(&r);

	/* The operator changes it and reloads. */
	write_conf(&w->r, "jurisdiction = Iceland\ncontact = new@example.org\n");
	assert_int_equal(kill(w->r.pid, SIGHUP), 0);
	char *now = info_until_changed(w, j.out);
	res_free(&j);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_non_null(strstr(r.err, "changed its policy since"));
	assert_non_null(strstr(r.err, w->addr));
	res_free(&r);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_null(strstr(r.err, "policy")); /* once */
	res_free(&r);

	/* Withdrawn. */
	write_conf(&w->r, "");
	assert_int_equal(kill(w->r.pid, SIGHUP), 0);
	char *none = info_until_changed(w, now);
	assert_non_null(strstr(none, "\"published\":false"));
	free(now);
	free(none);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_non_null(strstr(r.err, "withdrew its policy"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_null(strstr(r.err, "policy"));
	res_free(&r);
}

static void test_forged_and_old(void **state)
{
	struct world *w = *state;
	cli_check(0, CALL(.home = w->alice), ARGS("init"));
	struct fakerelay f;
	assert_int_equal(fakerelay_start(&f, FAKERELAY_POLICY_FORGED), 0);
	struct res r = cli_expect(1, CALL(.home = w->alice), ARGS("relay", "info", f.address));
	assert_non_null(strstr(r.err, "NOT signed by the key in this address"));
	assert_null(strstr(r.out, "forged"));
	res_free(&r);
	/* A sync with a mailbox there stores nothing of it, and warns of nothing. */
	struct res inv = cli_expect(0, CALL(.home = w->alice),
	                            ARGS("invite", "--relay", f.address, "--name", "carol"));
	res_free(&inv);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("sync"));
	assert_null(strstr(r.err, "policy"));
	res_free(&r);
	(void)fakerelay_stop(&f);

	struct fakerelay old;
	assert_int_equal(fakerelay_start(&old, 0), 0);
	r = cli_expect(0, CALL(.home = w->alice), ARGS("relay", "info", old.address));
	assert_non_null(strstr(r.out, "publishes no policy"));
	res_free(&r);
	(void)fakerelay_stop(&old);
}

int main(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command\n");
		return 1;
	}
	setenv("CAIRN_PASSPHRASE", CLI_PASS, 1);
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_policy_cli, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged_and_old, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
