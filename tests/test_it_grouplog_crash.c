/* SPDX-License-Identifier: MIT */
/*
 * Integration: the real cairn-relay killed (SIGKILL) while a writer appends to a group log
 * and a follower reads it (docs/PROTOCOL.md 5.9, "durable before visible" and "a seq is never
 * given to two entries, even across restarts"). After the restart:
 *
 * - every entry answered APPENDED is in the log, with the seq it was given;
 * - every entry a reader was sent is in the log, with the seq it was sent under: no reader
 *   saw an entry that is then missing or different;
 * - the log's seqs are strictly increasing, each held by one entry, and the next append gets
 *   a seq above every seq given before the kill.
 *
 * Several rounds, each killing at a different moment; the writer keeps a window of appends in
 * flight so that some are being written at the kill.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "it_grouplog_common.h"

static struct relayproc relay;

static int relay_teardown(void **state)
{
	(void)state;
	relayproc_cleanup(&relay);
	return 0;
}

#define MAX_N 200000

/* What the clients were told, by entry number: the seq APPENDED gave (0: none) and the seq
 * under which the follower got it (0: none). */
static uint64_t appended_seq[MAX_N], seen_seq[MAX_N];

/* The entry number in an entry's bytes ("entry-N..."), or -1. */
static int entry_number(const uint8_t *body, size_t len)
{
	char text[24] = {0};
	memcpy(text, body, len < sizeof(text) - 1 ? len : sizeof(text) - 1);
	int n;
	if (sscanf(text, "entry-%d", &n) != 1 || n <= 0 || n >= MAX_N)
		return -1;
	return n;
}

static size_t entry_len(int n)
{
	return 64 + (size_t)(n * 977) % 4000;
}

/* Reads what arrives on W (APPENDED) and F (LOG_ENTRY of FRID) for up to MS, recording it.
 * Returns false once either connection is gone (the relay was killed). */
static bool collect(struct tclient *w, struct tclient *f, uint32_t frid, int ms, int *outstanding)
{
	struct cairn_msg m;
	bool alive = true;
	while (*outstanding > 0) {
		int rc = tclient_recv(w, &m, ms);
		if (rc != 0) {
			alive = !tclient_peer_closed(w);
			break;
		}
		if (m.type == CAIRN_REPLY_APPENDED) {
			assert_true(m.request_id < MAX_N);
			assert_int_equal(appended_seq[m.request_id], 0);
			appended_seq[m.request_id] = m.seq;
		}
		(*outstanding)--;
		ms = 0;
	}
	for (;;) {
		int rc = tclient_recv(f, &m, 0);
		if (rc != 0) {
			if (tclient_peer_closed(f))
				alive = false;
			break;
		}
		if (m.type != CAIRN_REPLY_LOG_ENTRY)
			continue;
		assert_int_equal(m.request_id, frid);
		int n = entry_number(m.envelope, m.envelope_len);
		assert_true(n > 0);
		assert_int_equal(m.envelope_len, entry_len(n));
		assert_int_equal(seen_seq[n], 0);
		seen_seq[n] = m.seq;
	}
	return alive;
}

/* Reads the whole log with follow 0 and checks it against what the clients were told.
 * Returns the highest seq in it. */
static uint64_t verify(const struct glog_keys *k, int last_n, uint64_t floor_seq)
{
	static uint64_t stored_seq[MAX_N];
	memset(stored_seq, 0, sizeof(stored_seq));
	struct tclient c;
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	uint32_t rid = glog_read_send(&c, k, 1, 0);
	uint64_t first = 0, next = glog_expect_state(&c, rid, &first);
	assert_int_equal(first, 1);
	uint64_t prev = 0;
	size_t count = 0;
	for (;;) {
		struct cairn_msg m;
		assert_int_equal(tclient_recv(&c, &m, 10000), 0);
		if (m.type == CAIRN_REPLY_END) {
			assert_int_equal(m.code, 0);
			break;
		}
		assert_int_equal(m.type, CAIRN_REPLY_LOG_ENTRY);
		if (m.seq <= prev)
			fail_msg("seq %llu after seq %llu", (unsigned long long)m.seq,
			         (unsigned long long)prev);
		prev = m.seq;
		int n = entry_number(m.envelope, m.envelope_len);
		assert_true(n > 0 && n <= last_n);
		assert_int_equal(m.envelope_len, entry_len(n));
		glog_entry_of(n, entry_len(n));
		assert_memory_equal(m.envelope, glog_body, m.envelope_len);
		if (stored_seq[n] != 0)
			fail_msg("entry %d stored twice (seqs %llu and %llu)", n,
			         (unsigned long long)stored_seq[n], (unsigned long long)m.seq);
		stored_seq[n] = m.seq;
		count++;
	}
	tclient_close(&c);
	int acked = 0, seen = 0;
	for (int n = 1; n <= last_n; n++) {
		/* What the writer was answered, then what the follower was sent. */
		const uint64_t told[2] = {appended_seq[n], seen_seq[n]};
		static const char *const how[2] = {"was APPENDED", "was sent to a reader"};
		for (int i = 0; i < 2; i++)
			if (told[i] != 0 && stored_seq[n] != told[i])
				fail_msg("entry %d %s as seq %llu, after the restart: %llu", n, how[i],
				         (unsigned long long)told[i], (unsigned long long)stored_seq[n]);
		acked += told[0] != 0;
		seen += told[1] != 0;
	}
	assert_true(next > prev);
	if (next <= floor_seq)
		fail_msg("next_seq %llu after the restart, but seq %llu was given before",
		         (unsigned long long)next, (unsigned long long)floor_seq);
	fprintf(stderr,
	        "# after the kill: %zu entries stored, %d acknowledged, %d seen by the follower, "
	        "next_seq %llu\n",
	        count, acked, seen, (unsigned long long)next);
	return prev;
}

static void test_kill_during_appends(void **state)
{
	(void)state;
	enum { ROUNDS = 10, WINDOW = 200 };
	/* How long after the last window the kill comes: the relay reads a window, writes it in
	 * one batch (gathered for CAIRN_STORAGE_GATHER_US, 2 ms, then committed) and answers it;
	 * these land before, during and after that. */
	static const int kill_after_ms[ROUNDS] = {0, 1, 1, 2, 2, 3, 4, 5, 7, 9};
	/* A fast machine appends past the default log_max_entries (262144) in ten rounds. */
	assert_int_equal(relayproc_init(&relay, "log_max_entries = 1000000\n"), 0);
	assert_int_equal(relayproc_start(&relay), 0);
	struct glog_keys k;
	glog_keys_new(&k);
	struct tclient w, f;
	assert_int_equal(tclient_connect(&w, relay.port, relay.pub), 0);
	assert_int_equal(glog_create(&w, &k), 0);
	tclient_close(&w);
	int n = 0;
	uint64_t highest_given = 0;
	for (int round = 0; round < ROUNDS; round++) {
		assert_int_equal(tclient_connect(&w, relay.port, relay.pub), 0);
		assert_int_equal(tclient_connect(&f, relay.port, relay.pub), 0);
		uint32_t frid = glog_read_send(&f, &k, highest_given + 1, 1);
		(void)glog_expect_state(&f, frid, NULL);
		/* Append for 100 to 550 ms, then kill with a window in flight. */
		int64_t kill_at = it_mono_ms() + 100 + 50 * round;
		int outstanding = 0;
		bool alive = true;
		while (alive && it_mono_ms() < kill_at) {
			for (int i = 0; i < WINDOW / 2 && n + 1 < MAX_N; i++) {
				n++;
				glog_queue_append(&w, &k, n, entry_len(n));
				outstanding++;
			}
			assert_int_equal(tclient_flush(&w), 0);
			/* Keep half a window in flight. */
			int keep = WINDOW / 2;
			int drain = outstanding > keep ? outstanding - keep : 0;
			int left = drain;
			alive = collect(&w, &f, frid, 5000, &left);
			outstanding -= drain - left;
		}
		assert_true(alive);
		/* One more window, and the kill while the relay takes it in: some of it being
		 * written, some answered, some perhaps durable but not answered. */
		for (int i = 0; i < WINDOW && n + 1 < MAX_N; i++) {
			n++;
			glog_queue_append(&w, &k, n, entry_len(n));
			outstanding++;
		}
		assert_int_equal(tclient_flush(&w), 0);
		it_sleep_ms(kill_after_ms[round]);
		assert_int_equal(relayproc_stop(&relay, SIGKILL), 128 + SIGKILL);
		/* What was on its way to the clients still arrives. */
		int left = outstanding;
		while (collect(&w, &f, frid, 200, &left) && left > 0)
			;
		tclient_close(&w);
		tclient_close(&f);
		for (int i = 1; i <= n; i++) {
			if (appended_seq[i] > highest_given)
				highest_given = appended_seq[i];
			if (seen_seq[i] > highest_given)
				highest_given = seen_seq[i];
		}
		assert_int_equal(relayproc_start(&relay), 0);
		uint64_t last = verify(&k, n, highest_given);
		if (last > highest_given)
			highest_given = last;
	}
	/* A fresh append after the last restart gets a seq above all of them. */
	assert_int_equal(tclient_connect(&w, relay.port, relay.pub), 0);
	uint64_t seq;
	assert_int_equal(glog_append(&w, &k, k.cred, MAX_N - 1, 10, &seq), 0);
	assert_true(seq > highest_given);
	tclient_close(&w);
	assert_int_equal(relayproc_stop(&relay, SIGTERM), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_kill_during_appends, relay_teardown),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
