/* SPDX-License-Identifier: MIT */
/*
 * Integration: the real cairn-relay on PostgreSQL ([store] engine = postgresql) while the
 * database fails under load. Several senders stream numbered envelopes (it_seqstream.h), each
 * to its own mailbox, while (a) the database is stopped and started again, (b) the primary is
 * killed and its synchronous standby promoted, the relay's connection string naming both,
 * (c) the relay itself is SIGKILLed and restarted on the same database, and (d) the primary
 * is killed and the standby promoted while the relay is idle, and (e) the database's host
 * vanishes for a few seconds without closing anything (its packets dropped: no FIN, no RST)
 * and comes back. Every SEND answered while no primary could take a write must be an ERROR
 * (storage), never an OK; the relay must come back by itself once a primary is there; and at
 * the end every acknowledged envelope is delivered to its owner exactly once.
 *
 * The binary runs in a network namespace of its own when it can (root), so that (e)'s
 * firewall rules touch nothing else on the machine; (e) is skipped where it cannot.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "it_capture.h"
#include "it_common.h"
#include "it_seqstream.h"
#include "pgproc.h"

#define SENDERS     4
#define KILL_ROUNDS 6   /* relay kills in (c) */
#define FINAL_SENT  100 /* envelopes per sender once everything is up again, all answered OK */
#define LIMITS      "mailbox_max_envelopes = 10000000\nmailbox_max_bytes = 64G\n"

struct world {
	char dir[64];
	struct pgproc primary, standby;
	struct relayproc r;
	struct relayproc second; /* (d): another relay alone on the same database */
	struct owner o[SENDERS];
	uint8_t sid[SENDERS][24];
	struct seqstream *q[SENDERS];
	struct tclient *c[SENDERS];
	unsigned outstanding[SENDERS];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	for (int i = 0; i < SENDERS; i++) {
		w->q[i] = calloc(1, sizeof(*w->q[i]));
		w->c[i] = calloc(1, sizeof(*w->c[i]));
		if (w->q[i] == NULL || w->c[i] == NULL)
			return -1;
		w->c[i]->fd = -1;
		w->q[i]->refused_may_exist = true;
	}
	strcpy(w->dir, "/tmp/cairn-pgfail-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	*state = w;
	return 0;
}

static void close_senders(struct world *w)
{
	for (int i = 0; i < SENDERS; i++)
		if (w->c[i]->fd >= 0) {
			tclient_close(w->c[i]);
			w->c[i]->fd = -1;
		}
}

static int teardown(void **state)
{
	struct world *w = *state;
	close_senders(w);
	relayproc_cleanup(&w->r);
	relayproc_cleanup(&w->second);
	pgproc_destroy(&w->standby);
	pgproc_destroy(&w->primary);
	test_rm_tree(w->dir);
	for (int i = 0; i < SENDERS; i++) {
		free(w->q[i]);
		free(w->c[i]);
	}
	free(w);
	return 0;
}

/* Starts the primary in the test's directory; skips the test where PostgreSQL is missing. */
static void start_primary(struct world *w)
{
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/primary", w->dir);
	int rc = pgproc_init(&w->primary, dir, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
}

/* Starts the relay on the database CONNINFO names, makes one mailbox per sender, and
 * connects the senders. */
static void start_relay(struct world *w, const char *conninfo)
{
	assert_int_equal(relayproc_init(&w->r, LIMITS), 0);
	assert_int_equal(relayproc_use_pg(&w->r, conninfo), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	struct tclient c;
	assert_int_equal(tclient_connect(&c, w->r.port, w->r.pub), 0);
	for (int i = 0; i < SENDERS; i++) {
		struct owner *o = &w->o[i];
		assert_int_equal(tclient_create(&c, o->rid, o->sid, o->pk, o->sk), 0);
		memcpy(w->sid[i], o->sid, 24);
	}
	tclient_close(&c);
}

static void connect_senders(struct world *w)
{
	for (int i = 0; i < SENDERS; i++) {
		assert_int_equal(tclient_connect(w->c[i], w->r.port, w->r.pub), 0);
		w->outstanding[i] = 0;
	}
}

/* Every sender streams until STOP_AT (monotonic ms), or COUNT envelopes each when it is 0. */
static void stream(struct world *w, int64_t stop_at, unsigned count)
{
	seq_stream_many(w->q, w->c, (const uint8_t(*)[24])w->sid, SENDERS, stop_at, count,
	                w->outstanding);
}

/* Sums a counter of the senders' records. */
static unsigned total(const struct world *w, size_t field)
{
	unsigned sum = 0;
	for (int i = 0; i < SENDERS; i++)
		sum += *(const unsigned *)((const char *)w->q[i] + field);
	return sum;
}
#define TOTAL(w, f) total(w, offsetof(struct seqstream, f))

/* The sends of the outage: each sender's envelopes from FROM[i] to its next one. None may
 * have been acknowledged; returns how many were refused (all answered by now). */
static unsigned refused_since(const struct world *w, const uint32_t from[SENDERS])
{
	unsigned refused = 0;
	for (int i = 0; i < SENDERS; i++)
		for (uint32_t seq = from[i]; seq < w->q[i]->next_seq; seq++) {
			if (w->q[i]->status[seq] == SEQ_ACKED)
				fail_msg("sender %d: envelope #%u sent while no primary was up was "
				         "acknowledged",
				         i, seq);
			refused += w->q[i]->status[seq] == SEQ_REFUSED;
		}
	return refused;
}

/*
 * The database is down: SENDS for DOWN_MS from every sender, all answered (so the outage's
 * sends start at FROM and are all ERRORs, checked by the caller), and one more on a connection
 * of its own, whose answer must be ERROR storage.
 */
static void load_while_down(struct world *w, uint32_t from[SENDERS], int64_t down_ms)
{
	/* The sends in flight when the database went away are answered first, either way. */
	stream(w, 0, 0);
	for (int i = 0; i < SENDERS; i++)
		from[i] = w->q[i]->next_seq;
	stream(w, it_mono_ms() + down_ms, 0);
	stream(w, 0, 0);
	unsigned refused = refused_since(w, from);
	printf("pgfailover: %u sends while no primary was up, %u refused, none acknowledged\n",
	       refused, refused);
	assert_true(refused > 0);
	struct tclient c;
	assert_int_equal(tclient_connect(&c, w->r.port, w->r.pub), 0);
	/* Answered within one of the relay's connect tries (at most 2 s where the cases set
	 * connect_timeout, at once where the database refuses), not after several in a row. */
	int64_t asked = it_mono_ms();
	assert_int_equal(it_send(&c, w->sid[0], NULL, "while down", 10), CAIRN_ESTORAGE);
	int64_t answered_ms = it_mono_ms() - asked;
	printf("pgfailover: a SEND while down was answered in %lld ms\n", (long long)answered_ms);
	assert_true(answered_ms < 3500);
	tclient_close(&c);
}

/* After a primary is back: rounds of sends until one round is all acknowledged (the relay
 * found the database again by itself), within 60 s. Returns the milliseconds it took. */
static int64_t wait_recovery(struct world *w)
{
	int64_t start = it_mono_ms();
	for (;;) {
		unsigned refused = TOTAL(w, refused);
		stream(w, 0, 8);
		if (TOTAL(w, refused) == refused)
			return it_mono_ms() - start;
		if (it_mono_ms() - start > 60000)
			fail_msg("the relay still refuses sends 60 s after the database came back");
		it_sleep_ms(100);
	}
}

/* The end of every case: FINAL_SENT more from each sender, all acknowledged; then, from a
 * relay restarted on the database (so what is delivered is what the database holds, not
 * what the relay kept in memory), every owner drains its mailbox: every acknowledged
 * envelope there, once, intact, in order. */
static void finish_and_drain(struct world *w, const char *what)
{
	unsigned refused = TOTAL(w, refused);
	stream(w, 0, FINAL_SENT);
	assert_int_equal(TOTAL(w, refused), refused);
	close_senders(w);
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	printf("pgfailover: %s: %u envelopes sent, %u acknowledged, %u refused, %u unanswered\n",
	       what, TOTAL(w, next_seq), TOTAL(w, acked), TOTAL(w, refused), TOTAL(w, unknown));
	for (int i = 0; i < SENDERS; i++) {
		struct seq_drained d =
		    seq_drain(w->q[i], w->r.port, w->r.pub, w->o[i].rid, w->o[i].sk);
		printf("pgfailover: %s: mailbox %d drained %u: %u of %u unanswered, %u refused "
		       "ones delivered, %u acknowledged lost\n",
		       what, i, d.delivered, d.unknown_delivered, w->q[i]->unknown,
		       d.refused_delivered, d.lost);
		assert_int_equal(d.lost, 0);
	}
}

/* (a) The database stopped (fast shutdown) and started again under load. */
static void test_database_restart(void **state)
{
	struct world *w = *state;
	start_primary(w);
	start_relay(w, w->primary.conninfo);
	connect_senders(w);
	stream(w, it_mono_ms() + 1000, 0);
	/* Stopped with sends in flight: the relay is committing when the server goes. */
	pgproc_stop(&w->primary);
	uint32_t from[SENDERS];
	load_while_down(w, from, 1500);
	assert_int_equal(pgproc_start(&w->primary), 0);
	printf("pgfailover: restart: the relay took sends again %lld ms after the database was "
	       "back\n",
	       (long long)wait_recovery(w));
	finish_and_drain(w, "restart");
}

/* A primary with a synchronous standby, and the relay on both (CONNINFO, CAP: the
 * connection string naming them). */
static void start_pair_and_relay(struct world *w, char *conninfo, size_t cap)
{
	start_primary(w);
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/standby", w->dir);
	assert_int_equal(pgproc_standby_pair(&w->standby, &w->primary, dir, conninfo, cap), 0);
	start_relay(w, conninfo);
}

/* (b) A synchronous standby; the primary killed under load, the standby promoted. */
static void test_primary_killed_standby_promoted(void **state)
{
	struct world *w = *state;
	char conninfo[256];
	start_pair_and_relay(w, conninfo, sizeof(conninfo));
	connect_senders(w);
	stream(w, it_mono_ms() + 1000, 0);
	pgproc_kill(&w->primary); /* with sends in flight, like a machine that died */
	uint32_t from[SENDERS];
	/* Only a standby is reachable now: it refuses writes, and the relay must say so. */
	load_while_down(w, from, 1500);
	assert_int_equal(pgproc_promote(&w->standby), 0);
	printf("pgfailover: failover: the relay took sends again %lld ms after the promotion\n",
	       (long long)wait_recovery(w));
	finish_and_drain(w, "failover");
}

/* (d) No client through a failover: the relay alone takes its lock on the promoted standby
 * by itself (its once-a-second check), so a second relay alone started on the store a few
 * seconds later is refused, and the first one goes on taking SENDs. Without the check the
 * second started, and the first could then only refuse every write. */
static void test_idle_relay_keeps_its_store(void **state)
{
	struct world *w = *state;
	char conninfo[256];
	start_pair_and_relay(w, conninfo, sizeof(conninfo));
	pgproc_kill(&w->primary);
	assert_int_equal(pgproc_promote(&w->standby), 0);
	it_sleep_ms(3000);
	assert_int_equal(relayproc_init(&w->second, LIMITS), 0);
	assert_int_equal(relayproc_use_pg(&w->second, conninfo), 0);
	char err[2048];
	int rc = it_run_second_captured(&w->second, loopback_free_port(), 20000, err, sizeof(err));
	printf("pgfailover: idle failover: a second relay: exit %d: %s", rc, err);
	assert_true(rc > 0);
	assert_non_null(strstr(err, "holds"));
	connect_senders(w);
	finish_and_drain(w, "idle failover");
}

/* (c) The relay SIGKILLed at random moments under load and restarted on the same database. */
static void test_relay_killed(void **state)
{
	struct world *w = *state;
	start_primary(w);
	start_relay(w, w->primary.conninfo);
	for (int i = 0; i < SENDERS; i++)
		w->q[i]->refused_may_exist = false; /* the database stays up: no error is allowed */
	for (int round = 0; round < KILL_ROUNDS; round++) {
		connect_senders(w);
		stream(w, it_mono_ms() + 100 + (int64_t)randombytes_uniform(500), 0);
		assert_int_equal(relayproc_stop(&w->r, SIGKILL), 128 + SIGKILL);
		/* Answers the relay sent before it died count like any other. */
		for (int i = 0; i < SENDERS; i++)
			seq_collect(w->q[i], w->c[i], w->outstanding[i]);
		close_senders(w);
		if (relayproc_start(&w->r) != 0)
			fail_msg("round %d: the relay did not start after kill -9", round);
	}
	connect_senders(w);
	finish_and_drain(w, "relay kills");
	assert_int_equal(TOTAL(w, refused), 0);

	/* The drains' ACKs are in the database: after a restart nothing comes back. */
	assert_int_equal(relayproc_stop(&w->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->r), 0);
	struct tclient c;
	assert_int_equal(tclient_connect(&c, w->r.port, w->r.pub), 0);
	for (int i = 0; i < SENDERS; i++) {
		assert_int_equal(tclient_auth(&c, w->o[i].rid, w->o[i].sk), 0);
		assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, w->o[i].rid), 0);
	}
	struct cairn_msg env;
	assert_int_equal(tclient_recv(&c, &env, 500), CAIRN_EIO);
	assert_false(tclient_peer_closed(&c));
	tclient_close(&c);
}

/* Whether main() got the test a network of its own, where (e) may drop packets. */
static bool own_network;

/* Drops (ADD) or lets through again every TCP packet to and from PORT on this namespace's
 * loopback: the host behind it is gone without a word, as when it loses power or a link. */
static void blackhole(uint16_t port, bool add)
{
	char cmd[160];
	for (int dir = 0; dir < 2; dir++) {
		snprintf(cmd, sizeof(cmd), "iptables -w %s INPUT -p tcp --%s %u -j DROP",
		         add ? "-A" : "-D", dir == 0 ? "dport" : "sport", (unsigned)port);
		if (system(cmd) != 0)
			fail_msg("%s failed", cmd);
	}
}

/*
 * (e) The database's host unreachable for 2 s under load, its packets dropped, then
 * reachable again. The relay notices within tcp_user_timeout (shortened here from the
 * relay's 20 s through the connection string, whose values win) and refuses writes; the
 * server does not notice at all, so when the packets flow again the relay's previous
 * session is still there, holding the relay's lock on the store. The relay must take the
 * store back by itself (that session is its own), not stop as if another relay held it.
 */
static void test_database_host_vanishes(void **state)
{
	struct world *w = *state;
	if (!own_network)
		skip();
	start_primary(w);
	char conninfo[sizeof(w->primary.conninfo) + 64];
	snprintf(conninfo, sizeof(conninfo), "%s tcp_user_timeout=1500 connect_timeout=2",
	         w->primary.conninfo);
	start_relay(w, conninfo);
	connect_senders(w);
	stream(w, it_mono_ms() + 1000, 0);
	/* Every answer in, so the server has nothing left to send when the packets stop: it
	 * does not retransmit, and so never learns that the relay's side went away. */
	stream(w, 0, 0);
	blackhole(w->primary.port, true);
	uint32_t from[SENDERS];
	load_while_down(w, from, 2000);
	blackhole(w->primary.port, false);
	int64_t ms = wait_recovery(w);
	printf("pgfailover: vanished host: the relay took sends again %lld ms after the packets "
	       "flowed again\n",
	       (long long)ms);
	/* Left to itself, the server lets the old session go only when its keepalives find the
	 * relay's side gone, 10 s after the session's last word: 7 s after the packets flowed
	 * again here, when the relay did not end the session itself (then about 0.5 s). */
	assert_true(ms < 5000);
	finish_and_drain(w, "vanished host");
}

int main(void)
{
	own_network = geteuid() == 0 && unshare(CLONE_NEWNET) == 0 &&
	              system("ip link set lo up && iptables -w -L INPUT >/dev/null 2>&1") == 0;
	if (!own_network)
		printf("pgfailover: no network namespace of its own: (e) is skipped\n");
	if (getenv("CAIRN_IT_ONLY") != NULL) /* one case, by name */
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_database_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_primary_killed_standby_promoted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_relay_keeps_its_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_database_host_vanishes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
