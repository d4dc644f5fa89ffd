/* SPDX-License-Identifier: MIT */
/*
 * Integration: the real cairn-relay on the PostgreSQL engine ([store] engine = postgresql),
 * against a real PostgreSQL started by the test (support/pgproc.h, pg_fixture.h). An envelope
 * sent and received, kept across a restart of the relay; and the database killed under a
 * running relay: a SEND meanwhile gets an error, never an OK, the relay's memory keeps nothing
 * of it, and once the database is back the relay serves again without a restart of its own.
 */
#define _GNU_SOURCE /* access */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "it_common.h"
#include "pg_fixture.h"

struct world {
	struct relayproc r;
	char conninfo[512];
};

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	if (pg_fresh_database(w.conninfo, sizeof(w.conninfo)) != 0)
		return -1;
	char conf[768];
	snprintf(conf, sizeof(conf), "[store]\nengine = postgresql\nconnection = %s\n", w.conninfo);
	if (relayproc_init(&w.r, conf) != 0 || relayproc_start(&w.r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", w.r.dir);
		return -1;
	}
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0); /* a clean shutdown exits 0 */
	relayproc_cleanup(&w->r);
	return 0;
}

/* Subscribes as O's owner and reads every envelope until a quiet 500 ms, without ACKs: their
 * texts, joined by ',', into OUT. */
static void drain_texts(struct world *w, const struct owner *o, char *out, size_t cap)
{
	struct tclient owner;
	assert_int_equal(tclient_connect(&owner, w->r.port, w->r.pub), 0);
	assert_int_equal(tclient_auth(&owner, o->rid, o->sk), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o->rid), 0);
	out[0] = '\0';
	struct cairn_msg env;
	while (tclient_recv(&owner, &env, 500) == 0) {
		if (env.type != CAIRN_REPLY_ENVELOPE)
			continue;
		size_t n = strlen(out);
		snprintf(out + n, cap - n, "%s%.*s", n > 0 ? "," : "", (int)env.envelope_len,
		         (const char *)env.envelope);
	}
	tclient_close(&owner);
}

/* Creates O's mailbox, its owner then offline, and connects SENDER, which sends TEXT. */
static void mailbox_and_sender(struct world *w, struct owner *o, struct tclient *sender,
                               const char *text)
{
	struct tclient owner;
	assert_int_equal(tclient_connect(&owner, w->r.port, w->r.pub), 0);
	assert_int_equal(tclient_create(&owner, o->rid, o->sid, o->pk, o->sk), 0);
	tclient_close(&owner);
	assert_int_equal(tclient_connect(sender, w->r.port, w->r.pub), 0);
	assert_int_equal(it_send(sender, o->sid, NULL, text, strlen(text)), 0);
}

static void test_envelope_survives_restart(void **state)
{
	struct world *w = *state;
	struct tclient sender;
	struct owner o;
	mailbox_and_sender(w, &o, &sender, "hello");
	tclient_close(&sender);

	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	char texts[256];
	drain_texts(w, &o, texts, sizeof(texts));
	assert_string_equal(texts, "hello");
	/* In the database, not in a file of the data directory. */
	char out[32];
	assert_int_equal(pg_exec(w->conninfo, "SELECT count(*) FROM envelopes", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "1");
	char path[512];
	snprintf(path, sizeof(path), "%s/data/relay.db", w->r.dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

/*
 * An acknowledged envelope leaves the database: the relay reads its body back after a restart
 * and deletes it on the ACK, each by its mailbox as well as its id (the engine looks in that
 * mailbox's partition only, so a mailbox left out would read nothing and delete nothing).
 */
static void test_acked_envelope_deleted(void **state)
{
	struct world *w = *state;
	struct tclient sender, owner;
	struct owner o;
	mailbox_and_sender(w, &o, &sender, "bye");
	tclient_close(&sender);
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);

	assert_int_equal(tclient_connect(&owner, w->r.port, w->r.pub), 0);
	assert_int_equal(tclient_auth(&owner, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	struct cairn_msg env;
	do
		assert_int_equal(tclient_recv(&owner, &env, 5000), 0);
	while (env.type != CAIRN_REPLY_ENVELOPE);
	assert_int_equal(env.envelope_len, 3);
	assert_memory_equal(env.envelope, "bye", 3);
	assert_int_equal(it_ack(&owner, o.rid, env.envelope_id), 0);
	tclient_close(&owner);
	/* The delete is durable with the relay's next batch: a clean stop writes it. */
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	char out[32];
	assert_int_equal(pg_exec(w->conninfo, "SELECT count(*) FROM envelopes", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "0");
	/* Nor does it come back. */
	assert_int_equal(relayproc_start(&w->r), 0);
	char texts[64];
	drain_texts(w, &o, texts, sizeof(texts));
	assert_string_equal(texts, "");
}

static void test_send_while_database_down(void **state)
{
	struct world *w = *state;
	struct tclient sender;
	struct owner o;
	mailbox_and_sender(w, &o, &sender, "one");

	struct pgproc *pg = pg_cluster_get();
	assert_non_null(pg);
	pgproc_kill(pg);
	/* Not stored, so not accepted: the sender hears so, and the relay keeps nothing. */
	assert_int_equal(it_send(&sender, o.sid, NULL, "two", 3), CAIRN_ESTORAGE);
	assert_int_equal(pg_cluster_restart(), 0);
	/* The relay reconnects by itself on its next write. */
	assert_int_equal(it_send(&sender, o.sid, NULL, "three", 5), 0);
	tclient_close(&sender);

	char texts[256];
	drain_texts(w, &o, texts, sizeof(texts));
	assert_string_equal(texts, "one,three");
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	drain_texts(w, &o, texts, sizeof(texts));
	assert_string_equal(texts, "one,three");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_envelope_survives_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acked_envelope_deleted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_while_database_down, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
