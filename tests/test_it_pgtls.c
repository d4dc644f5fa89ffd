/* SPDX-License-Identifier: MIT */
/*
 * Integration: the relay's connection to PostgreSQL over TLS (docs/OPERATING.md, TLS to the
 * database). The scratch cluster runs with ssl = on and a certificate for 127.0.0.1 signed by
 * a throwaway CA the test makes (openssl). A relay whose connection string says
 * sslmode=verify-full sslrootcert=<that CA> starts, stores and delivers, and its session is
 * TLS (pg_stat_ssl); a relay given another CA is refused at start, with an exit status and a
 * message naming the certificate's failure, and without the connection string's password.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "it_capture.h"
#include "it_common.h"
#include "pgproc.h"

#define SECRET "tls-test-password-not-for-logs"

struct world {
	char dir[64];
	struct pgproc pg;
	struct relayproc r, wrong;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-pgtls-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->r);
	relayproc_cleanup(&w->wrong);
	pgproc_destroy(&w->pg);
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

/* The connection string of a relay that trusts the CA in DIR/NAME only. */
static void conninfo_for(const struct world *w, const char *name, char *out, size_t cap)
{
	snprintf(out, cap,
	         "host=127.0.0.1 port=%u user=cairn dbname=cairn password=" SECRET
	         " sslmode=verify-full sslrootcert=%s/%s/ca.crt",
	         w->pg.port, w->dir, name);
}

static void test_tls_verified_and_wrong_ca_refused(void **state)
{
	struct world *w = *state;
	char path[128], conninfo[384];
	snprintf(path, sizeof(path), "%s/pg", w->dir);
	int rc = pgproc_init(&w->pg, path, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", w->dir, i == 0 ? "ca" : "other");
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(pgproc_make_ca(path), 0);
	}
	snprintf(path, sizeof(path), "%s/ca", w->dir);
	assert_int_equal(pgproc_ssl(&w->pg, path), 0);

	/* The right CA: the relay works, on a TLS session. */
	conninfo_for(w, "ca", conninfo, sizeof(conninfo));
	assert_int_equal(relayproc_init(&w->r, NULL), 0);
	assert_int_equal(relayproc_use_pg(&w->r, conninfo), 0);
	if (relayproc_start(&w->r) != 0)
		fail_msg("the relay did not start with sslmode=verify-full and the server's CA");
	struct owner o;
	struct tclient c, s;
	assert_int_equal(tclient_connect(&c, w->r.port, w->r.pub), 0);
	assert_int_equal(tclient_create(&c, o.rid, o.sid, o.pk, o.sk), 0);
	assert_int_equal(tclient_auth(&c, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	assert_int_equal(tclient_connect(&s, w->r.port, w->r.pub), 0);
	assert_int_equal(it_send(&s, o.sid, NULL, "over tls", 8), 0);
	tclient_close(&s);
	struct cairn_msg m;
	do
		assert_int_equal(tclient_recv(&c, &m, 5000), 0);
	while (m.type != CAIRN_REPLY_ENVELOPE);
	assert_int_equal(m.envelope_len, 8);
	assert_memory_equal(m.envelope, "over tls", 8);
	tclient_close(&c);
	char tls[64] = "";
	assert_int_equal(
	    pgproc_sql(&w->pg,
	               "SELECT bool_and(s.ssl)::text || ' ' || count(*) FROM pg_stat_ssl s"
	               " JOIN pg_stat_activity a USING (pid)"
	               " WHERE a.application_name = 'cairn-relay'",
	               tls, sizeof(tls)),
	    0);
	printf("pgtls: the relay's sessions on TLS (all, how many): %s\n", tls);
	assert_string_equal(tls, "true 1");

	/* Another CA: refused at start, saying why, the password nowhere. The first relay is
	 * stopped, so its lock on the store is not what refuses it. */
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	conninfo_for(w, "other", conninfo, sizeof(conninfo));
	assert_int_equal(relayproc_init(&w->wrong, NULL), 0);
	assert_int_equal(relayproc_use_pg(&w->wrong, conninfo), 0);
	char err[4096];
	rc = it_run_second_captured(&w->wrong, loopback_free_port(), 20000, err, sizeof(err));
	printf("pgtls: a relay with another CA: exit %d: %s", rc, err);
	assert_true(rc > 0);
	assert_non_null(strstr(err, "certificate verify failed"));
	assert_null(strstr(err, SECRET));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tls_verified_and_wrong_ca_refused, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
