/* SPDX-License-Identifier: MIT */
/*
 * Private routing with the real `cairn` command (docs/PROTOCOL.md 5.11, cairn.h
 * cairn_set_private_routing): alice's mailboxes are on relay A (127.0.0.2), bob's on relay B
 * (127.0.0.3). With CAIRN_PRIVATE_ROUTING=1 alice's `send` leaves the message queued (exit 3:
 * no connection of hers to A is up), and her `listen` sends it through A. While she listens,
 * B's established connections are A's (from 127.0.0.2) and never hers (the kernel's choice,
 * 127.0.0.1); bob then reads the message.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "relayproc.h"

#define HOST_A "127.0.0.2"
#define HOST_B "127.0.0.3"

struct world {
	char dir[64], alice[96], bob[96];
	struct relayproc a, b;
	pid_t listener;
};

static void address_of(const struct relayproc *r, const char *host, char *out)
{
	assert_int_equal(relayproc_address(r, host, out, CAIRN_ADDRESS_MAX + 1), 0);
}

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	strcpy(w.dir, "/tmp/cairn-fwdcli-XXXXXX");
	if (mkdtemp(w.dir) == NULL)
		return -1;
	snprintf(w.alice, sizeof(w.alice), "%s/alice", w.dir);
	snprintf(w.bob, sizeof(w.bob), "%s/bob", w.dir);
	if (relayproc_init_at(&w.a, NULL, HOST_A) != 0 || relayproc_start(&w.a) != 0 ||
	    relayproc_init_at(&w.b, NULL, HOST_B) != 0 || relayproc_start(&w.b) != 0)
		return -1;
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	if (w->listener > 0) {
		kill(w->listener, SIGKILL);
		(void)wait_status(w->listener);
	}
	relayproc_cleanup(&w->a);
	relayproc_cleanup(&w->b);
	test_rm_tree(w->dir);
	return 0;
}

static void test_private_routing_cli(void **state)
{
	struct world *w = *state;
	char addr_a[CAIRN_ADDRESS_MAX + 1], addr_b[CAIRN_ADDRESS_MAX + 1];
	address_of(&w->a, HOST_A, addr_a);
	address_of(&w->b, HOST_B, addr_b);
	cli_check(0, CALL(.home = w->alice), ARGS("init"));
	cli_check(0, CALL(.home = w->bob), ARGS("init"));
	struct res inv = cli_expect(0, CALL(.home = w->alice),
	                            ARGS("invite", "--relay", addr_a, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	cli_check(0, CALL(.home = w->bob),
	          ARGS("accept", inv.out, "--name", "alice", "--relay", addr_b));
	res_free(&inv);
	cli_check(0, CALL(.home = w->bob), ARGS("send", "alice", "hello from bob"));
	cli_check(0, CALL(.home = w->alice), ARGS("sync"));
	cli_check(0, CALL(.home = w->bob), ARGS("sync"));

	static const char *const env[] = {"CAIRN_PRIVATE_ROUTING=1", NULL};
	/* No connection of alice's to A is up during `send`: queued, not sent directly. */
	cli_check(3, CALL(.home = w->alice, .env = env), ARGS("send", "bob", "through my relay"));
	assert_false(tcp_established_from(HOST_B, w->b.port, "127.0.0.1"));

	w->listener = cli_spawn(CALL(.home = w->alice, .env = env), ARGS("listen"));
	/* A connects to B on alice's behalf; alice herself never does. */
	bool via_a = false;
	for (int i = 0; i < 600 && !via_a; i++) {
		assert_false(tcp_established_from(HOST_B, w->b.port, "127.0.0.1"));
		via_a = tcp_established_from(HOST_B, w->b.port, HOST_A);
		if (!via_a)
			nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	}
	assert_true(via_a);
	/* Delivered: bob reads it (his own connection to B comes after this check). */
	bool got = false;
	for (int i = 0; i < 30 && !got; i++) {
		assert_false(tcp_established_from(HOST_B, w->b.port, "127.0.0.1"));
		struct res r = cli_expect(-1, CALL(.home = w->bob), ARGS("sync"));
		res_free(&r);
		r = cli_expect(0, CALL(.home = w->bob), ARGS("read", "alice"));
		got = strstr(r.out, "through my relay") != NULL;
		res_free(&r);
		if (!got)
			nanosleep(&(struct timespec){.tv_nsec = 500 * 1000 * 1000}, NULL);
	}
	assert_true(got);
	kill(w->listener, SIGTERM);
	(void)wait_status(w->listener);
	w->listener = 0;

	/* `sync` sends what `send` queued, through A too (bob is not connected meanwhile). */
	cli_check(3, CALL(.home = w->alice, .env = env), ARGS("send", "bob", "second, by sync"));
	cli_check(0, CALL(.home = w->alice, .env = env), ARGS("sync"));
	struct res r = cli_expect(0, CALL(.home = w->bob), ARGS("sync"));
	res_free(&r);
	r = cli_expect(0, CALL(.home = w->bob), ARGS("read", "alice"));
	assert_non_null(strstr(r.out, "second, by sync"));
	res_free(&r);
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
	    cmocka_unit_test_setup_teardown(test_private_routing_cli, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
