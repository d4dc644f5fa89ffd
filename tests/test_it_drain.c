/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 18, the drain): the real relay stores 10,000 envelopes for each of two
 * owners while they are offline, streamed side by side so their rows interleave on disk;
 * then each owner comes back and drains. Every envelope must be delivered exactly once,
 * intact, in increasing id order, and to its own owner only, with the bodies read back from
 * the store in batches of one mailbox's rows and [limits] read_ahead_bytes small enough that
 * the budget, not the window, stops the reading ahead. Then nothing comes back after a
 * restart: every ACK's delete was durable.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_common.h"
#include "it_seqstream.h"

#define OWNERS 2
#define EACH   10000

static struct seqstream q[OWNERS];
static struct relayproc r;

/* 256 KiB of read_ahead_bytes: about 170 of these bodies (up to 3 KiB), well under the 1,024
 * envelopes the relay would otherwise read ahead of each subscriber. */
static int setup(void **state)
{
	(void)state;
	memset(&r, 0, sizeof(r));
	if (relayproc_init(&r, "mailbox_max_envelopes = 20000\nread_ahead_bytes = 256K\n") != 0 ||
	    relayproc_start(&r) != 0) {
		relayproc_cleanup(&r);
		return -1;
	}
	return 0;
}

/* Stops the relay whatever the test did (a failed assertion leaves it running). */
static int teardown(void **state)
{
	(void)state;
	int rc = r.pid > 0 ? relayproc_stop(&r, SIGTERM) : 0;
	relayproc_cleanup(&r);
	return rc == 0 ? 0 : -1;
}

static void test_two_backlogs_drain_exactly_once_in_order(void **state)
{
	(void)state;
	struct owner o[OWNERS];
	struct tclient c[OWNERS];
	struct seqstream *qs[OWNERS];
	struct tclient *cs[OWNERS];
	uint8_t sid[OWNERS][24];
	unsigned outstanding[OWNERS] = {0};
	for (int i = 0; i < OWNERS; i++) {
		assert_int_equal(tclient_connect(&c[i], r.port, r.pub), 0);
		assert_int_equal(tclient_create(&c[i], o[i].rid, o[i].sid, o[i].pk, o[i].sk), 0);
		memcpy(sid[i], o[i].sid, 24);
		memset(&q[i], 0, sizeof(q[i]));
		qs[i] = &q[i];
		cs[i] = &c[i];
	}
	seq_stream_many(qs, cs, (const uint8_t(*)[24])sid, OWNERS, 0, EACH, outstanding);
	for (int i = 0; i < OWNERS; i++) {
		tclient_close(&c[i]);
		assert_int_equal(q[i].acked, EACH);
	}

	for (int i = 0; i < OWNERS; i++) {
		int64_t t0 = it_mono_ms();
		struct seq_drained d = seq_drain(&q[i], r.port, r.pub, o[i].rid, o[i].sk);
		printf("drain: owner %d: %u envelopes in %lld ms\n", i, d.delivered,
		       (long long)(it_mono_ms() - t0));
		assert_int_equal(d.delivered, EACH);
		assert_int_equal(d.lost, 0);
	}

	/* The ACKs' deletes are durable: a restarted relay has nothing for either owner. */
	assert_int_equal(relayproc_stop(&r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&r), 0);
	for (int i = 0; i < OWNERS; i++) {
		struct tclient t;
		struct cairn_msg env;
		assert_int_equal(tclient_connect(&t, r.port, r.pub), 0);
		assert_int_equal(tclient_auth(&t, o[i].rid, o[i].sk), 0);
		assert_int_equal(it_simple(&t, CAIRN_CMD_SUBSCRIBE, o[i].rid), 0);
		assert_int_equal(tclient_recv(&t, &env, 300), CAIRN_EIO);
		assert_false(tclient_peer_closed(&t));
		tclient_close(&t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_backlogs_drain_exactly_once_in_order, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
