/* SPDX-License-Identifier: MIT */
/*
 * Integration: kill -9 durability. A sender streams numbered envelopes with many in flight
 * while the relay is SIGKILLed at random moments (ROUNDS times) and restarted; at the end the
 * owner drains the mailbox. Every envelope the relay answered OK must be delivered, none
 * twice, none corrupted, in increasing envelope id order and in the order they were sent;
 * envelopes sent but not answered before a kill may or may not be there. The relay must open
 * its store cleanly after every kill. The real `cairn` client under the same treatment is in
 * test_it_clientcrash.c.
 *
 * CAIRN_CRASH_ROUNDS=N runs N kills instead of ROUNDS (for longer runs by hand).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_common.h"
#include "it_seqstream.h"
#include "wrapper.h"

#define ROUNDS     24  /* kills (issue 5 item 3 asks for at least 20) */
#define FINAL_SENT 200 /* envelopes sent after the last restart, all answered */

struct crash_state {
	struct relayproc r;
	struct owner o;
	struct seqstream q;
	unsigned kills;
};

static int setup(void **state)
{
	static struct crash_state s;
	memset(&s, 0, sizeof(s));
	if (relayproc_init(&s.r, "mailbox_max_envelopes = 10000000\nmailbox_max_bytes = 64G\n") !=
	        0 ||
	    relayproc_start(&s.r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", s.r.dir);
		relayproc_cleanup(&s.r);
		*state = NULL;
		return -1;
	}
	*state = &s;
	return 0;
}

static int teardown(void **state)
{
	struct crash_state *s = *state;
	if (s == NULL)
		return -1;
	int rc = s->r.pid > 0 ? relayproc_stop(&s->r, SIGTERM) : 0;
	relayproc_cleanup(&s->r);
	assert_int_equal(rc, 0);
	return 0;
}

/*
 * Streams envelopes until KILL_AT (monotonic ms; 0 = send COUNT and wait for every answer),
 * then SIGKILLs the relay. Replies already on their way are still read: an OK the relay
 * managed to send before it died is an acknowledgement like any other.
 */
static void stream(struct crash_state *s, int64_t kill_at, unsigned count)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	unsigned outstanding = seq_stream(&s->q, &c, s->o.sid, kill_at, count);
	if (kill_at != 0) {
		unsigned at_kill = outstanding, unknown = s->q.unknown;
		assert_int_equal(relayproc_stop(&s->r, SIGKILL), 128 + SIGKILL);
		s->kills++;
		seq_collect(&s->q, &c, outstanding);
		printf("crash: kill %u: %u sends in flight, %u of them unanswered\n", s->kills,
		       at_kill, s->q.unknown - unknown);
	}
	tclient_close(&c);
}

static void test_kill9_during_sends(void **state)
{
	struct crash_state *s = *state;
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_create(&c, s->o.rid, s->o.sid, s->o.pk, s->o.sk), 0);
	tclient_close(&c);

	/* Under a wrapper (valgrind: make test-valgrind) every restart takes seconds: fewer
	 * kills there, where what counts is the memory check of each run. */
	int rounds = test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0 ? 8 : ROUNDS;
	if (getenv("CAIRN_CRASH_ROUNDS") != NULL)
		rounds = atoi(getenv("CAIRN_CRASH_ROUNDS"));
	int64_t start = it_mono_ms();
	for (int round = 0; round < rounds; round++) {
		/* A random moment: the relay is reading, committing or answering; now and then
		 * just after its start, while it may still be writing its first id mark. */
		int64_t delay = round % 6 == 5 ? (int64_t)randombytes_uniform(30)
		                               : 50 + (int64_t)randombytes_uniform(550);
		stream(s, it_mono_ms() + delay, 0);
		/* The store opens after every kill, and the mailbox is still there. */
		if (relayproc_start(&s->r) != 0)
			fail_msg("round %d: the relay did not start after kill -9", round);
	}
	stream(s, 0, FINAL_SENT);
	printf("crash: %u kills in %lld ms: %u envelopes sent, %u acknowledged, %u refused, "
	       "%u unanswered at a kill\n",
	       s->kills, (long long)(it_mono_ms() - start), s->q.next_seq, s->q.acked, s->q.refused,
	       s->q.unknown);

	/* No quota in the way and no storage error: everything answered was accepted. */
	assert_int_equal(s->q.refused, 0);

	/* The owner drains: acknowledged ones all there, once each, intact, in id order. */
	int64_t drain_start = it_mono_ms();
	struct seq_drained d = seq_drain(&s->q, s->r.port, s->r.pub, s->o.rid, s->o.sk);
	printf("crash: drained %u envelopes in %lld ms: %u acknowledged, %u of %u unanswered "
	       "ones, %u acknowledged lost\n",
	       d.delivered, (long long)(it_mono_ms() - drain_start),
	       d.delivered - d.unknown_delivered, d.unknown_delivered, s->q.unknown, d.lost);
	assert_int_equal(d.lost, 0);

	/* The drain's ACKs are durable across a clean restart: nothing comes back. */
	assert_int_equal(relayproc_stop(&s->r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&s->r), 0);
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_auth(&c, s->o.rid, s->o.sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, s->o.rid), 0);
	struct cairn_msg env;
	assert_int_equal(tclient_recv(&c, &env, 500), CAIRN_EIO);
	assert_false(tclient_peer_closed(&c));
	tclient_close(&c);
}

/*
 * Envelope ids are "unique within a mailbox and increasing in delivery order" and clients
 * drop duplicates by id (docs/PROTOCOL.md 5.4), so an id must never be handed out twice,
 * across kills and restarts too: an owner that has seen id N would drop a new envelope that
 * reuses it. Here the owner sees and acknowledges an envelope, the relay is killed, and the
 * next envelope must get a larger id.
 */
static void test_ids_not_reused_after_kill(void **state)
{
	struct crash_state *s = *state;
	struct tclient c;
	struct owner o;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_create(&c, o.rid, o.sid, o.pk, o.sk), 0);
	/* Send, then subscribe: tclient_call() passes over deliveries while it waits. */
	assert_int_equal(it_send(&c, o.sid, NULL, "first", 5), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	struct cairn_msg env;
	do
		assert_int_equal(tclient_recv(&c, &env, 5000), 0);
	while (env.type != CAIRN_REPLY_ENVELOPE);
	uint64_t first = env.envelope_id;
	assert_int_equal(it_ack(&c, o.rid, first), 0);
	it_sleep_ms(200); /* the delete reaches the disk */
	tclient_close(&c);
	assert_int_equal(relayproc_stop(&s->r, SIGKILL), 128 + SIGKILL);
	assert_int_equal(relayproc_start(&s->r), 0);
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_auth(&c, o.rid, o.sk), 0);
	assert_int_equal(it_send(&c, o.sid, NULL, "second", 6), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	do
		assert_int_equal(tclient_recv(&c, &env, 5000), 0);
	while (env.type != CAIRN_REPLY_ENVELOPE);
	printf("crash: envelope id before the kill %llu, after it %llu\n",
	       (unsigned long long)first, (unsigned long long)env.envelope_id);
	assert_memory_equal(env.envelope, "second", 6);
	assert_true(env.envelope_id > first);
	tclient_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill9_during_sends),
	    cmocka_unit_test(test_ids_not_reused_after_kill),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
