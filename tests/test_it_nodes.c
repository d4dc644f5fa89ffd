/* SPDX-License-Identifier: MIT */
/*
 * Integration: two cairn-relay processes as nodes 1 and 2 of one relay ([store] node), on one
 * PostgreSQL database started by the test, with the same relay key. An envelope sent through
 * node 1 reaches its owner subscribed on node 2 within a second (the change feed, woken by
 * the database's notification); the owner's ACK on node 2 frees the mailbox's quota on node 1
 * too, and a SUBSCRIBE there does not get the envelope again; ids given by the two nodes are
 * unique and grow. A node that can no longer follow the feed exits with an error. (The
 * three-node suite with a balancer is test_it_cluster's.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "it_common.h"
#include "it_grouplog_common.h"
#include "pgproc.h"

/* One envelope per mailbox: a SEND through a node is refused (`quota`) exactly while that
 * node holds the mailbox's envelope, wherever it was sent. */
#define LIMITS "mailbox_max_envelopes = 1\n"

struct world {
	char dir[64];
	struct pgproc pg;
	struct relayproc r[2];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-nodes-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->r[1]);
	relayproc_cleanup(&w->r[0]);
	pgproc_destroy(&w->pg);
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

/* Copies FROM's relay key into TO's data directory: both are one relay to a client. */
static void share_key(const struct relayproc *from, struct relayproc *to)
{
	char src[320], dst[320], buf[256];
	snprintf(src, sizeof(src), "%s/data/relay.key", from->dir);
	snprintf(dst, sizeof(dst), "%s/data/relay.key", to->dir);
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	assert_non_null(in);
	assert_non_null(out);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	memcpy(to->pub, from->pub, sizeof(to->pub));
}

/* Node NODE on the test's database. */
static void start_node(struct world *w, int i, uint8_t node)
{
	struct relayproc *r = &w->r[i];
	assert_int_equal(relayproc_init(r, LIMITS), 0);
	if (i > 0)
		share_key(&w->r[0], r);
	/* relayproc writes the [store] section; the node is its last line. */
	char store[400];
	snprintf(store, sizeof(store), "%s\nnode = %u", w->pg.conninfo, node);
	assert_int_equal(relayproc_use_pg(r, store), 0);
	assert_int_equal(relayproc_start(r), 0);
}

/* AUTH for O on C, again every 20 ms until it is OK or MS milliseconds have passed. */
static int auth_within(struct tclient *c, const struct owner *o, int ms)
{
	int64_t until = it_mono_ms() + ms;
	int rc;
	while ((rc = tclient_auth(c, o->rid, o->sk)) != 0 && it_mono_ms() < until)
		it_sleep_ms(20);
	return rc;
}

/* SEND of BODY to SID on C, again every 20 ms until it answers WANT or MS milliseconds have
 * passed: the answer. */
static int send_within(struct tclient *c, const uint8_t sid[24], const char *body, int want, int ms)
{
	int64_t until = it_mono_ms() + ms;
	int rc;
	while ((rc = it_send(c, sid, NULL, body, strlen(body))) != want && it_mono_ms() < until)
		it_sleep_ms(20);
	return rc;
}

/* The next ENVELOPE on C within MS milliseconds: its id (0: none came). */
static uint64_t next_envelope(struct tclient *c, int ms, char *body, size_t cap)
{
	struct cairn_msg m;
	int64_t until = it_mono_ms() + ms;
	while (it_mono_ms() < until) {
		int left = (int)(until - it_mono_ms());
		if (tclient_recv(c, &m, left > 0 ? left : 1) != 0)
			return 0;
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue;
		size_t n = m.envelope_len < cap - 1 ? m.envelope_len : cap - 1;
		memcpy(body, m.envelope, n);
		body[n] = '\0';
		return m.envelope_id;
	}
	return 0;
}

/* The database in the test's directory (the test is skipped where PostgreSQL is missing),
 * and nodes 1 and 2 on it. */
static void start_world(struct world *w)
{
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/pg", w->dir);
	int rc = pgproc_init(&w->pg, dir, loopback_free_port());
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
	start_node(w, 0, 1);
	start_node(w, 1, 2);
}

static void test_two_nodes(void **state)
{
	struct world *w = *state;
	start_world(w);

	struct tclient one, two, owner;
	struct owner o;
	assert_int_equal(tclient_connect(&one, w->r[0].port, w->r[0].pub), 0);
	assert_int_equal(tclient_connect(&two, w->r[1].port, w->r[1].pub), 0);
	assert_int_equal(tclient_connect(&owner, w->r[1].port, w->r[1].pub), 0);
	assert_int_equal(tclient_create(&one, o.rid, o.sid, o.pk, o.sk), 0);
	/* Made on node 1, known on node 2 once the feed has brought it. */
	assert_int_equal(auth_within(&owner, &o, 2000), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);

	/* Sent through node 1, delivered on node 2 within a second of its OK. */
	assert_int_equal(it_send(&one, o.sid, NULL, "first", 5), 0);
	int64_t sent = it_mono_ms();
	char body[64];
	uint64_t first = next_envelope(&owner, 1000, body, sizeof(body));
	int64_t took = it_mono_ms() - sent;
	assert_true(first != 0);
	assert_string_equal(body, "first");
	print_message("node 1 -> node 2: delivered %lld ms after the sender's OK\n",
	              (long long)took);
	assert_int_equal(first & 0xff, 1);
	/* Both nodes hold it now: the mailbox's quota is full through either. */
	assert_int_equal(it_send(&one, o.sid, NULL, "x", 1), CAIRN_EQUOTA);
	assert_int_equal(send_within(&two, o.sid, "x", CAIRN_EQUOTA, 1000), CAIRN_EQUOTA);

	/* Acknowledged on node 2: node 1 lets it go, so its quota takes a new one. Five more
	 * the same way, each timed: the wake (the database's notification) brings them at once,
	 * where the one-second timer alone would take half a second on average. Each is sent
	 * at another point of the timers' second (a pause of 1 s and a fifth more each time),
	 * so that the timer alone cannot be fast five times by its phase. */
	assert_int_equal(it_ack(&owner, o.rid, first), 0);
	uint64_t second = first;
	int fast = 0;
	for (int i = 0; i < 5; i++) {
		char want[16];
		snprintf(want, sizeof(want), "more-%d", i);
		it_sleep_ms(1000 + 190 * i);
		assert_int_equal(send_within(&one, o.sid, want, 0, 2000), 0);
		sent = it_mono_ms();
		uint64_t id = next_envelope(&owner, 1000, body, sizeof(body));
		took = it_mono_ms() - sent;
		assert_string_equal(body, want);
		assert_true(id > second);
		assert_int_equal(id & 0xff, 1);
		fast += took < 200;
		print_message("node 1 -> node 2: delivered %lld ms after the sender's OK\n",
		              (long long)took);
		assert_int_equal(it_ack(&owner, o.rid, id), 0);
		second = id;
	}
	assert_true(fast >= 4);

	/* Through node 2 now: its id carries node 2, above node 1's it has seen. */
	assert_int_equal(send_within(&two, o.sid, "third", 0, 2000), 0);
	uint64_t third = next_envelope(&owner, 1000, body, sizeof(body));
	assert_string_equal(body, "third");
	assert_true(third > second);
	assert_int_equal(third & 0xff, 2);

	/* The owner moves to node 1: only what it has not acknowledged is there. */
	tclient_close(&owner);
	struct tclient moved;
	assert_int_equal(tclient_connect(&moved, w->r[0].port, w->r[0].pub), 0);
	assert_int_equal(tclient_auth(&moved, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&moved, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	assert_int_equal(next_envelope(&moved, 1000, body, sizeof(body)), third);
	assert_string_equal(body, "third");
	assert_int_equal(next_envelope(&moved, 300, body, sizeof(body)), 0);

	tclient_close(&moved);
	tclient_close(&one);
	tclient_close(&two);
	assert_int_equal(relayproc_stop(&w->r[1], SIGTERM), 0);
	assert_int_equal(relayproc_stop(&w->r[0], SIGTERM), 0);
}

/* The exit status of R within MS milliseconds (then it is killed: -1). */
static int exit_within(struct relayproc *r, int ms)
{
	for (int waited = 0; waited < ms; waited += 20) {
		int status;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		it_sleep_ms(20);
	}
	relayproc_stop(r, SIGKILL);
	return -1;
}

/* A node cut off for longer than the feed is kept (here: stopped while the rows it had not
 * read yet are pruned) can no longer follow: it stops with an error, for systemd to start it
 * again from the store. The other node serves on. */
static void test_cut_off_node_exits(void **state)
{
	struct world *w = *state;
	start_world(w);
	struct tclient one, two;
	struct owner o;
	assert_int_equal(tclient_connect(&one, w->r[0].port, w->r[0].pub), 0);
	/* Node 2 has loaded (it answers only then: its port is open before), and is stopped. */
	assert_int_equal(tclient_connect(&two, w->r[1].port, w->r[1].pub), 0);
	assert_int_equal(tclient_create(&two, o.rid, o.sid, o.pk, o.sk), 0);
	tclient_close(&two);
	assert_int_equal(kill(w->r[1].pid, SIGSTOP), 0);
	for (int i = 0; i < 3; i++) /* three batches of node 1's */
		assert_int_equal(tclient_create(&one, o.rid, o.sid, o.pk, o.sk), 0);
	assert_int_equal(pgproc_sql(&w->pg,
	                            "DELETE FROM feed WHERE node = 1 AND seq < "
	                            "(SELECT max(seq) FROM feed WHERE node = 1)",
	                            NULL, 0),
	                 0);
	assert_int_equal(kill(w->r[1].pid, SIGCONT), 0);
	assert_int_equal(exit_within(&w->r[1], 5000), 1); /* EXIT_RUNTIME */
	assert_int_equal(tclient_create(&one, o.rid, o.sid, o.pk, o.sk), 0);
	tclient_close(&one);
	assert_int_equal(relayproc_stop(&w->r[0], SIGTERM), 0);
}

/* ---- one log appended to through both nodes (docs/SCALING.md 4, PROTOCOL.md 5.9) ---- */

#define LOG_ROUNDS    8
#define LOG_PER_ROUND 25 /* appends per node per round, in flight together */
#define LOG_ENTRIES   (2 * LOG_ROUNDS * LOG_PER_ROUND)
#define LOG_LEN       40

/* LOG_READ of K from seq 1, following, on C: again every 20 ms while the node does not know
 * the log yet (the feed brings it within a second). Returns the read's request id. */
static uint32_t follow_within(struct tclient *c, const struct glog_keys *k, int ms)
{
	int64_t until = it_mono_ms() + ms;
	for (;;) {
		uint32_t rid = glog_read_send(c, k, 1, 1);
		struct cairn_msg m;
		assert_int_equal(tclient_recv(c, &m, 5000), 0);
		assert_int_equal(m.request_id, rid);
		if (m.type == CAIRN_REPLY_LOG_STATE)
			return rid;
		assert_true(it_mono_ms() < until);
		it_sleep_ms(20);
	}
}

/*
 * Hundreds of appends to one log through both nodes at once, each node's in flight together
 * with the other's: the APPENDED seqs are exactly 1..N (none refused, none twice), and a
 * follower on each node gets seqs 1..N once each, in order, with the body each seq was
 * answered for: one history whichever node a member appends and reads through.
 */
static void test_log_appends_through_both(void **state)
{
	struct world *w = *state;
	start_world(w);
	struct tclient wr[2], fol[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tclient_connect(&wr[i], w->r[i].port, w->r[i].pub), 0);
		assert_int_equal(tclient_connect(&fol[i], w->r[i].port, w->r[i].pub), 0);
	}
	struct glog_keys k;
	glog_keys_new(&k);
	assert_int_equal(glog_create(&wr[0], &k), 0);
	uint32_t rid[2];
	/* Node 2 knows the log once its follower's read is taken: its writer may append. */
	for (int i = 0; i < 2; i++)
		rid[i] = follow_within(&fol[i], &k, 3000);

	/* Entry n (n < 1000 through node 1, n >= 1000 through node 2) by the seq it was given. */
	static int by_seq[LOG_ENTRIES + 1];
	memset(by_seq, 0, sizeof(by_seq));
	int64_t start = it_mono_ms();
	for (int round = 0; round < LOG_ROUNDS; round++) {
		for (int i = 0; i < 2; i++) {
			for (int j = 0; j < LOG_PER_ROUND; j++)
				glog_queue_append(
				    &wr[i], &k, 1000 * i + round * LOG_PER_ROUND + j + 1, LOG_LEN);
		}
		for (int i = 0; i < 2; i++)
			assert_int_equal(tclient_flush(&wr[i]), 0);
		for (int i = 0; i < 2; i++) {
			for (int j = 0; j < LOG_PER_ROUND; j++) {
				struct cairn_msg m;
				assert_int_equal(tclient_recv(&wr[i], &m, 10000), 0);
				assert_int_equal(m.type, CAIRN_REPLY_APPENDED);
				assert_true(m.seq >= 1 && m.seq <= LOG_ENTRIES);
				assert_int_equal(by_seq[m.seq], 0);
				by_seq[m.seq] = (int)m.request_id;
			}
		}
	}
	int64_t appended = it_mono_ms();
	/* Every seq answered once (LOG_ENTRIES answers, all distinct and in range), and the
	 * nodes interleaved in the log. */
	int switches = 0;
	for (int s = 2; s <= LOG_ENTRIES; s++)
		switches += (by_seq[s] >= 1000) != (by_seq[s - 1] >= 1000);
	assert_true(switches > 0);
	for (int i = 0; i < 2; i++)
		for (int s = 1; s <= LOG_ENTRIES; s++)
			glog_expect_entry(&fol[i], rid[i], (uint64_t)s, by_seq[s], LOG_LEN);
	print_message("%d appends through two nodes in %lld ms (%d changes of node in the log);"
	              " both followers complete %lld ms later\n",
	              LOG_ENTRIES, (long long)(appended - start), switches,
	              (long long)(it_mono_ms() - appended));
	for (int i = 0; i < 2; i++) {
		struct cairn_msg m;
		assert_int_equal(tclient_recv(&fol[i], &m, 200), CAIRN_EIO); /* nothing more */
	}
	for (int i = 0; i < 2; i++) {
		tclient_close(&wr[i]);
		tclient_close(&fol[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_nodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cut_off_node_exits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_log_appends_through_both, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
