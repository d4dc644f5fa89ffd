/* SPDX-License-Identifier: MIT */
/*
 * Stored routes (cairn_route_*, client/routes.c) in-process: the table itself (set, replace,
 * list, remove by key or address, sealed in the store across a reopen), and that every
 * connection to a relay follows it: two in-memory relays with the same key at two addresses
 * (tests/support/memrelay.h), an invite naming the first, both homes routing that key to the
 * second; the first never sees a connection while messages go both ways, and once a home
 * forgets its route it dials the first again.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "memrelay.h"

#define PASS "correct horse battery staple"

struct world {
	char root[64];
	char home[2][96];
	struct memrelay *named, *routed; /* the same key at two addresses */
	struct client_env env;
	struct cairn *a, *b;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL || sodium_init() < 0)
		return -1;
	strcpy(w->root, "/tmp/cairn-routes-XXXXXX");
	if (mkdtemp(w->root) == NULL)
		return -1;
	uint8_t sk[32];
	randombytes_buf(sk, sizeof(sk));
	w->named = memrelay_new(sk);
	w->routed = memrelay_new(sk);
	sodium_memzero(sk, sizeof(sk));
	if (w->named == NULL || w->routed == NULL)
		return -1;
	memrelay_env_skipping(&w->env);
	const char *names[] = {"alice", "bob"};
	struct cairn **c[] = {&w->a, &w->b};
	for (int i = 0; i < 2; i++) {
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%s", w->root, names[i]);
		if (cairn_init_kdf(w->home[i], PASS, CAIRN_KDF_INTERACTIVE) != 0 ||
		    cairn_open(w->home[i], PASS, c[i]) != 0)
			return -1;
		client_set_env(*c[i], &w->env);
	}
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	cairn_close(w->a);
	cairn_close(w->b);
	memrelay_free(w->named);
	memrelay_free(w->routed);
	nftw(w->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(w);
	return 0;
}

struct listed {
	unsigned n;
	char key[4][64];
	char address[4][CAIRN_ADDRESS_MAX + 1];
};

static int collect(void *ctx, const struct cairn_route *r)
{
	struct listed *l = ctx;
	assert_true(l->n < 4);
	snprintf(l->key[l->n], sizeof(l->key[0]), "%s", r->key);
	snprintf(l->address[l->n], sizeof(l->address[0]), "%s", r->address);
	l->n++;
	return 0;
}

static struct listed list(struct cairn *c)
{
	struct listed l;
	memset(&l, 0, sizeof(l));
	assert_int_equal(cairn_routes(c, collect, &l), 0);
	return l;
}

#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define KEY_B "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8"

static void test_table(void **state)
{
	struct world *w = *state;
	assert_int_equal(cairn_route_set(w->a, "cairn://nope"), CAIRN_EADDRESS);
	assert_int_equal(list(w->a).n, 0);
	const char *https = "cairn+https://" KEY_A "@relay.example.org:443/k3Jx9-wq_Tn2LmA7pQe0Vg";
	const char *obfs4 = "cairn+https://" KEY_A "@127.0.0.1:8443/c.airn~relay?pin="
	                    "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI";
	assert_int_equal(cairn_route_set(w->a, https), 0);
	assert_int_equal(cairn_route_set(w->a, "cairn://" KEY_B "@10.1.2.3:7443"), 0);
	struct listed l = list(w->a);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.key[0], KEY_A);
	assert_string_equal(l.address[0], https);
	assert_string_equal(l.key[1], KEY_B);
	/* A second route for the same key replaces the first. */
	assert_int_equal(cairn_route_set(w->a, obfs4), 0);
	l = list(w->a);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.address[0], obfs4);
	/* Sealed in the store: still there after a reopen. */
	cairn_close(w->a);
	assert_int_equal(cairn_open(w->home[0], PASS, &w->a), 0);
	client_set_env(w->a, &w->env);
	assert_int_equal(list(w->a).n, 2);
	/* Removed by key, or by any address carrying the key. */
	assert_int_equal(cairn_route_remove(w->a, KEY_A), 0);
	assert_int_equal(cairn_route_remove(w->a, KEY_A), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_route_remove(w->a, "cairn://" KEY_B "@127.0.0.1:1"), 0);
	assert_int_equal(list(w->a).n, 0);
	/* A key that is not one (wrong length, non-canonical last character). */
	assert_int_equal(cairn_route_remove(w->a, "AAEC"), CAIRN_EADDRESS);
	assert_int_equal(cairn_route_remove(w->a, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"),
	                 CAIRN_EADDRESS);
	/* The other home has its own table. */
	assert_int_equal(list(w->b).n, 0);
}

static unsigned connections(struct memrelay *r)
{
	struct memrelay_stats st;
	memrelay_stats(r, &st);
	return st.connections;
}

static int count_message(void *ctx, const struct cairn_message *m)
{
	(void)m;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned sync_count(struct cairn *c)
{
	unsigned n = 0;
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(c, &res, count_message, &n), 0);
	return n;
}

static void test_connections_follow_the_route(void **state)
{
	struct world *w = *state;
	const char *named = memrelay_address(w->named);
	const char *routed = memrelay_address(w->routed);
	assert_int_equal(cairn_route_set(w->a, routed), 0);
	assert_int_equal(cairn_route_set(w->b, routed), 0);
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(w->a, &named, 1, "bob", &invite), 0);
	assert_int_equal(cairn_invite_accept(w->b, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	assert_int_equal(sync_count(w->a), 0);
	assert_int_equal(sync_count(w->b), 0);
	const char *hi = "hello through the route";
	assert_int_equal(cairn_send(w->a, "bob", (const uint8_t *)hi, strlen(hi), NULL), 0);
	assert_int_equal(sync_count(w->b), 1);
	assert_int_equal(cairn_send(w->b, "alice", (const uint8_t *)hi, strlen(hi), NULL), 0);
	assert_int_equal(sync_count(w->a), 1);
	assert_int_equal(connections(w->named), 0);
	assert_true(connections(w->routed) > 0);
	/* Without its route, Alice dials the address the invite named. */
	assert_int_equal(cairn_route_remove(w->a, routed), 0);
	struct cairn_sync_result res;
	unsigned n = 0;
	/* The named relay holds none of her mailboxes: the sync fails there, whatever it says. */
	int rc = cairn_sync(w->a, &res, count_message, &n);
	(void)rc;
	assert_true(connections(w->named) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connections_follow_the_route, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
