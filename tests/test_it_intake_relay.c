/* SPDX-License-Identifier: MIT */
/*
 * Integration: intake mailboxes (PROTOCOL.md 5.10) on the real cairn-relay. INTAKE only by
 * the mailbox's owner; SEND refused with `work`; SEND_WORK refused with `work` when the work
 * is too weak, out of the work window on either side, or reused; SEND_WORK to an ordinary or
 * unknown mailbox `denied`; a valid one stored and delivered; work solved before a restart
 * refused after it while fresh work passes; and the intake mailbox's own quota.
 */
#include <signal.h>
#include <stdio.h>

#include "it_common.h"
#include "work.h"

/* The relay's settings for this file: a short work window (so that the window's edges are
 * quick to reach without a clock of the test's own) and a small intake quota. */
#define WINDOW_S     60
#define INTAKE_MAX   6
#define BITS         10 /* tests use low bits (COMMON: 8..12) */
#define RELAY_LIMITS "work_window = 60\nintake_max_envelopes = 6\n"

static int setup(void **state)
{
	static struct relayproc r;
	return it_relay_setup(state, &r, RELAY_LIMITS);
}

static int intake(struct tclient *c, const uint8_t rid[24], unsigned bits)
{
	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .recipient_id = rid,
	                      .work_bits = (uint8_t)bits},
	                 r;
	return tclient_call(c, &m, &r);
}

static int send_work(struct tclient *c, const uint8_t sid[24], const uint8_t work[WORK_LEN],
                     const void *env, size_t len)
{
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .sender_id = sid,
	                      .work = work,
	                      .envelope = env,
	                      .envelope_len = len},
	                 r;
	return tclient_call(c, &m, &r);
}

/* Work for ENV to SID at BITS with time T (the wall clock plus an offset, or a fixed one). */
static void solve(const uint8_t sid[24], const void *env, size_t len, uint64_t t, unsigned bits,
                  uint8_t work[WORK_LEN])
{
	assert_int_equal(work_solve(sid, env, len, t, bits, randombytes_random(), work, NULL), 0);
}

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* Work for ENV to SID at BITS, now, that does not also suffice for TEXT to TARGET. */
static void solve_elsewhere(const uint8_t sid[24], const void *env, size_t len,
                            const uint8_t target[24], const char *text, uint8_t work[WORK_LEN])
{
	uint8_t d[WORK_HASH_LEN];
	do
		solve(sid, env, len, now_s(), BITS, work);
	while (work_verify(target, (const uint8_t *)text, strlen(text), work, BITS, d));
}

/* An owner's mailbox on its connection, made an intake mailbox of BITS. */
static void intake_mailbox(struct tclient *c, struct owner *o, unsigned bits)
{
	assert_int_equal(tclient_create(c, o->rid, o->sid, o->pk, o->sk), 0);
	assert_int_equal(intake(c, o->rid, bits), 0);
}

/*
 * The next N replies on C are ENVELOPEs with the texts WANT, in order; then each is
 * acknowledged. (Acknowledging only after all have come: tclient_call skips the ENVELOPEs it
 * meets while it waits for its reply.)
 */
static void expect_envelopes(struct tclient *c, const uint8_t rid[24], const char *const *want,
                             size_t n)
{
	uint64_t ids[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		struct cairn_msg env;
		assert_int_equal(tclient_recv(c, &env, 10000), 0);
		assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
		assert_int_equal(env.envelope_len, strlen(want[i]));
		assert_memory_equal(env.envelope, want[i], env.envelope_len);
		ids[i] = env.envelope_id;
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(it_ack(c, rid, ids[i]), 0);
}

static void expect_envelope(struct tclient *c, const uint8_t rid[24], const char *want)
{
	expect_envelopes(c, rid, &want, 1);
}

static void test_intake_and_work(void **state)
{
	struct relayproc *r = *state;
	struct tclient owner, other, sender;
	assert_int_equal(tclient_connect(&owner, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&other, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&sender, r->port, r->pub), 0);
	struct owner o, plain;
	assert_int_equal(tclient_create(&owner, o.rid, o.sid, o.pk, o.sk), 0);
	assert_int_equal(tclient_create(&owner, plain.rid, plain.sid, plain.pk, plain.sk), 0);

	/* Only a connection authenticated for the mailbox may make it an intake mailbox. */
	assert_int_equal(intake(&other, o.rid, BITS), CAIRN_EDENIED);
	uint8_t nosuch[24];
	randombytes_buf(nosuch, sizeof(nosuch));
	assert_int_equal(intake(&owner, nosuch, BITS), CAIRN_EDENIED);
	/* Before INTAKE it is an ordinary mailbox: SEND works, SEND_WORK is `denied`. */
	assert_int_equal(it_send(&sender, o.sid, NULL, "before", 6), 0);
	uint8_t work[WORK_LEN];
	solve(o.sid, "w", 1, now_s(), BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, "w", 1), CAIRN_EDENIED);
	assert_int_equal(intake(&owner, o.rid, BITS), 0);

	/* SEND to an intake mailbox: `work`, with or without a credential. */
	assert_int_equal(it_send(&sender, o.sid, NULL, "x", 1), CAIRN_EWORK);

	/* Too weak: work whose digest misses the bits (found by trying nonces until one does). */
	static const char text[] = "hello embassy";
	uint8_t h[WORK_HASH_LEN], d[WORK_HASH_LEN];
	work_envelope_hash((const uint8_t *)text, strlen(text), h);
	for (uint64_t nonce = 0;; nonce++) {
		uint64_t t = now_s();
		for (int i = 0; i < 8; i++) {
			work[i] = (uint8_t)(t >> (56 - 8 * i));
			work[8 + i] = (uint8_t)(nonce >> (56 - 8 * i));
		}
		work_digest(o.sid, h, work, d);
		/* Sufficient for some bits but not all: the check counts every bit. */
		if (work_sufficient(d, BITS - 2) && !work_sufficient(d, BITS))
			break;
	}
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);
	/* Work for another envelope or another mailbox is no work for this one (chosen so that it
	 * does not pass for this one by chance, which one work in 2^BITS does). */
	solve_elsewhere(o.sid, "other", 5, o.sid, text, work);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);
	solve_elsewhere(plain.sid, text, strlen(text), o.sid, text, work);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);

	/* Out of the window, on either side: `work` (stale). */
	solve(o.sid, text, strlen(text), now_s() - WINDOW_S - 30, BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);
	solve(o.sid, text, strlen(text), now_s() + WINDOW_S + 30, BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);

	/* Valid work: OK; the same work again: `work` (reused), even on another connection. */
	solve(o.sid, text, strlen(text), now_s(), BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), 0);
	assert_int_equal(send_work(&sender, o.sid, work, text, strlen(text)), CAIRN_EWORK);
	assert_int_equal(send_work(&other, o.sid, work, text, strlen(text)), CAIRN_EWORK);
	/* A little ahead of the relay's clock is fine too. */
	solve(o.sid, "ahead", 5, now_s() + WINDOW_S / 2, BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, "ahead", 5), 0);

	/* SEND_WORK to an ordinary mailbox or to none: `denied`, whatever the work. */
	solve(plain.sid, text, strlen(text), now_s(), BITS, work);
	assert_int_equal(send_work(&sender, plain.sid, work, text, strlen(text)), CAIRN_EDENIED);
	solve(nosuch, text, strlen(text), now_s(), BITS, work);
	assert_int_equal(send_work(&sender, nosuch, work, text, strlen(text)), CAIRN_EDENIED);

	/* The owner gets what was stored, in order, and nothing refused. */
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	expect_envelopes(&owner, o.rid, (const char *const[]){"before", text, "ahead"}, 3);
	struct cairn_msg extra;
	assert_int_equal(tclient_recv(&owner, &extra, 300), CAIRN_EIO);
	/* Online, a valid one is forwarded at once. */
	solve(o.sid, "online", 6, now_s(), BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, "online", 6), 0);
	expect_envelope(&owner, o.rid, "online");

	/* Raising the bits: work good enough before is too weak now. */
	assert_int_equal(intake(&owner, o.rid, BITS + 2), 0);
	for (;;) {
		solve(o.sid, "raised", 6, now_s(), BITS, work);
		uint8_t dg[WORK_HASH_LEN];
		if (!work_verify(o.sid, (const uint8_t *)"raised", 6, work, BITS + 2, dg))
			break;
	}
	assert_int_equal(send_work(&sender, o.sid, work, "raised", 6), CAIRN_EWORK);
	solve(o.sid, "raised", 6, now_s(), BITS + 2, work);
	assert_int_equal(send_work(&sender, o.sid, work, "raised", 6), 0);
	expect_envelope(&owner, o.rid, "raised");
	tclient_close(&owner);
	tclient_close(&other);
	tclient_close(&sender);
}

static void test_intake_quota(void **state)
{
	struct relayproc *r = *state;
	struct tclient owner, sender;
	assert_int_equal(tclient_connect(&owner, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&sender, r->port, r->pub), 0);
	struct owner o, plain;
	intake_mailbox(&owner, &o, BITS);
	assert_int_equal(tclient_create(&owner, plain.rid, plain.sid, plain.pk, plain.sk), 0);
	uint8_t work[WORK_LEN];
	char text[32];
	for (int i = 0; i < INTAKE_MAX; i++) {
		int n = snprintf(text, sizeof(text), "request %d", i);
		solve(o.sid, text, (size_t)n, now_s(), BITS, work);
		assert_int_equal(send_work(&sender, o.sid, work, text, (size_t)n), 0);
	}
	/* Full: `quota` before any hashing, with valid work. */
	solve(o.sid, "one more", 8, now_s(), BITS, work);
	assert_int_equal(send_work(&sender, o.sid, work, "one more", 8), CAIRN_EQUOTA);
	/* An ordinary mailbox keeps its own, larger quota. */
	for (int i = 0; i < INTAKE_MAX + 2; i++)
		assert_int_equal(it_send(&sender, plain.sid, NULL, "p", 1), 0);
	/* The owner drains them: room again, and the refused work was not remembered. */
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	const char *want[INTAKE_MAX];
	char texts[INTAKE_MAX][32];
	for (int i = 0; i < INTAKE_MAX; i++) {
		snprintf(texts[i], sizeof(texts[i]), "request %d", i);
		want[i] = texts[i];
	}
	expect_envelopes(&owner, o.rid, want, INTAKE_MAX);
	int rc;
	/* The ACK frees the room when the relay has applied it: ask until it has. */
	int64_t deadline = it_mono_ms() + 10000;
	while ((rc = send_work(&sender, o.sid, work, "one more", 8)) == CAIRN_EQUOTA &&
	       it_mono_ms() < deadline)
		it_sleep_ms(20);
	assert_int_equal(rc, 0);
	tclient_close(&owner);
	tclient_close(&sender);
}

static void test_restart_makes_old_work_stale(void **state)
{
	struct relayproc *r = *state;
	struct tclient owner, sender;
	assert_int_equal(tclient_connect(&owner, r->port, r->pub), 0);
	struct owner o;
	intake_mailbox(&owner, &o, BITS);
	tclient_close(&owner);
	/* Solved before the restart, valid then (within the window, after the first start). */
	uint8_t before[WORK_LEN], used[WORK_LEN];
	solve(o.sid, "before", 6, now_s(), BITS, before);
	assert_int_equal(tclient_connect(&sender, r->port, r->pub), 0);
	solve(o.sid, "used", 4, now_s(), BITS, used);
	assert_int_equal(send_work(&sender, o.sid, used, "used", 4), 0);
	tclient_close(&sender);
	/* The relay starts at least a second after both were solved: their times are earlier
	 * than its start, whatever its clock's resolution. */
	uint64_t solved = now_s();
	while (now_s() <= solved)
		it_sleep_ms(50);
	assert_int_equal(relayproc_stop(r, SIGTERM), 0);
	assert_int_equal(relayproc_start(r), 0);
	assert_int_equal(tclient_connect(&sender, r->port, r->pub), 0);
	/* Still an intake mailbox (INTAKE is durable), and its envelope kept. */
	assert_int_equal(it_send(&sender, o.sid, NULL, "x", 1), CAIRN_EWORK);
	/* Never used but solved before the restart, and used before it: both stale now, well
	 * within the work window. */
	assert_int_equal(send_work(&sender, o.sid, before, "before", 6), CAIRN_EWORK);
	assert_int_equal(send_work(&sender, o.sid, used, "used", 4), CAIRN_EWORK);
	/* Fresh work passes. */
	uint8_t fresh[WORK_LEN];
	solve(o.sid, "before", 6, now_s(), BITS, fresh);
	assert_int_equal(send_work(&sender, o.sid, fresh, "before", 6), 0);
	assert_int_equal(tclient_connect(&owner, r->port, r->pub), 0);
	assert_int_equal(tclient_auth(&owner, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	expect_envelopes(&owner, o.rid, (const char *const[]){"used", "before"}, 2);
	tclient_close(&owner);
	tclient_close(&sender);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_intake_and_work, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_intake_quota, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_makes_old_work_stale, setup,
	                                    it_relay_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
