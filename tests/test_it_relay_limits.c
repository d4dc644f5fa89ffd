/* SPDX-License-Identifier: MIT */
/*
 * Integration: the relay's bounds on the whole relay and on what one connection may make it
 * do, against the real cairn-relay. A relay full of mailboxes, of envelope bytes or below its
 * disk floor refuses CREATE and SEND with ERROR `full` and accepts again once room is freed;
 * CREATE and SECURE draw on a budget per connection; and a connection flooding AUTHs (each an
 * Ed25519 verification) does not delay another connection's PING.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_common.h"
#include "wrapper.h"

/* The relay of the running test, stopped by the teardown even when an assertion fails. */
static struct relayproc relay;
static bool relay_running;

static void start_relay(const char *limit_lines)
{
	if (relayproc_init(&relay, limit_lines) != 0 || relayproc_start(&relay) != 0) {
		relayproc_cleanup(&relay);
		fail_msg("cannot start the relay with limits:\n%s", limit_lines);
	}
	relay_running = true;
}

static int teardown(void **state)
{
	if (relay_running)
		relayproc_cleanup(&relay);
	relay_running = false;
	return 0;
}

static bool under_wrapper(void)
{
	return test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0;
}

static int create(struct tclient *c, struct owner *o)
{
	return tclient_create(c, o->rid, o->sid, o->pk, o->sk);
}

static int secure(struct tclient *c, const struct owner *o)
{
	uint8_t digest[32] = {1};
	struct cairn_msg m = {.type = CAIRN_CMD_SECURE,
	                      .recipient_id = o->rid,
	                      .credential = digest},
	                 r;
	return tclient_call(c, &m, &r);
}

static void ping_ok(struct tclient *c)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING}, r;
	assert_int_equal(tclient_call(c, &m, &r), 0);
}

/* Waits for the next ENVELOPE on C; returns its id. */
static uint64_t next_envelope(struct tclient *c)
{
	struct cairn_msg m;
	for (;;) {
		assert_int_equal(tclient_recv(c, &m, 5000), 0);
		if (m.type == CAIRN_REPLY_ENVELOPE)
			return m.envelope_id;
	}
}

/* ---- the relay as a whole --------------------------------------------------------------- */

/* Four mailboxes fill the relay: the fifth CREATE is refused with `full`, on any connection,
 * until a DELETE makes room. */
static void test_full_of_mailboxes(void **state)
{
	start_relay("max_mailboxes = 4\n");
	struct tclient a, b;
	struct owner o[6];
	assert_int_equal(tclient_connect(&a, relay.port, relay.pub), 0);
	assert_int_equal(tclient_connect(&b, relay.port, relay.pub), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(create(&a, &o[i]), 0);
	assert_int_equal(create(&b, &o[3]), 0);
	int rc = create(&a, &o[4]);
	printf("limits: fifth CREATE on a relay of 4 mailboxes: %d (%s)\n", rc, cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_ECAPACITY);
	assert_int_equal(create(&b, &o[4]), CAIRN_ECAPACITY);
	ping_ok(&a);
	/* Room again once a mailbox goes. */
	assert_int_equal(it_simple(&a, CAIRN_CMD_DELETE, o[1].rid), 0);
	assert_int_equal(create(&b, &o[5]), 0);
	assert_int_equal(create(&a, &o[4]), CAIRN_ECAPACITY);
	tclient_close(&a);
	tclient_close(&b);
}

/* 64 KiB of envelopes fill the relay (three of 16 KiB, each counting 64 bytes more): the
 * fourth SEND is refused with `full`, and nothing of it is stored; an ACK makes room. */
static void test_full_of_bytes(void **state)
{
	start_relay("max_stored_bytes = 64K\n");
	struct tclient owner, snd;
	struct owner o, p;
	static uint8_t body[CAIRN_ENVELOPE_MAX];
	randombytes_buf(body, sizeof(body));
	assert_int_equal(tclient_connect(&owner, relay.port, relay.pub), 0);
	assert_int_equal(tclient_connect(&snd, relay.port, relay.pub), 0);
	assert_int_equal(create(&owner, &o), 0);
	assert_int_equal(create(&snd, &p), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(it_send(&snd, o.sid, NULL, body, sizeof(body)), 0);
	int rc = it_send(&snd, o.sid, NULL, body, sizeof(body));
	printf("limits: fourth 16 KiB SEND on a relay of 64 KiB: %d (%s)\n", rc,
	       cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_ECAPACITY);
	/* The relay as a whole is full, not one mailbox: another mailbox is refused too. */
	assert_int_equal(it_send(&snd, p.sid, NULL, body, sizeof(body)), CAIRN_ECAPACITY);
	/* Small envelopes fit in what is left. */
	assert_int_equal(it_send(&owner, p.sid, NULL, body, 100), 0);

	/* The owner takes one: room for another 16 KiB. Exactly three were stored. */
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	uint64_t first = next_envelope(&owner);
	assert_int_equal(it_ack(&owner, o.rid, first), 0);
	assert_int_equal(it_send(&snd, o.sid, NULL, body, sizeof(body)), 0);
	/* Delivery again from the oldest: the two left and the new one, nothing else. */
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	int delivered = 0;
	struct cairn_msg m;
	while (tclient_recv(&owner, &m, 500) == 0) {
		assert_int_equal(m.type, CAIRN_REPLY_ENVELOPE);
		assert_true(m.envelope_id != first);
		delivered++;
	}
	assert_int_equal(delivered, 3);
	tclient_close(&owner);
	tclient_close(&snd);
}

/* Free space on the file system that holds DIR, in bytes. */
static uint64_t free_space(const char *dir)
{
	struct statvfs st;
	assert_int_equal(statvfs(dir, &st), 0);
	return (uint64_t)st.f_bavail * st.f_frsize;
}

/* A floor above the disk's free space: SEND and CREATE are refused with `full`, while PING,
 * AUTH, ACK and DELETE go on. The relay is restarted with the floor set, as an operator would
 * after a disk filled up. */
static void test_disk_floor(void **state)
{
	start_relay("");
	struct tclient c;
	struct owner o, p;
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	assert_int_equal(create(&c, &o), 0);
	assert_int_equal(it_send(&c, o.sid, NULL, "one", 3), 0);
	tclient_close(&c);
	assert_int_equal(relayproc_stop(&relay, SIGTERM), 0);

	uint64_t floor = free_space(relay.dir) + (UINT64_C(1) << 30);
	FILE *f = fopen(relay.conf, "a");
	assert_non_null(f);
	fprintf(f, "min_free_disk = %llu\n", (unsigned long long)floor);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(relayproc_start(&relay), 0);

	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	int rc = it_send(&c, o.sid, NULL, "two", 3);
	printf("limits: SEND with the disk floor 1 GiB above the free space: %d (%s)\n", rc,
	       cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_ECAPACITY);
	assert_int_equal(create(&c, &p), CAIRN_ECAPACITY);
	ping_ok(&c);
	/* What frees room still works. */
	assert_int_equal(tclient_auth(&c, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	assert_int_equal(it_ack(&c, o.rid, next_envelope(&c)), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_DELETE, o.rid), 0);
	tclient_close(&c);
}

/* ---- the budget of one connection ------------------------------------------------------- */

/* CREATE and SECURE share a budget per connection: beyond it `limit`, refilled with time;
 * a new connection has its own. */
static void test_create_budget(void **state)
{
	start_relay("create_burst = 6\ncreate_per_minute = 60\n");
	struct tclient c, d;
	struct owner o[12];
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(create(&c, &o[i]), 0);
		assert_int_equal(secure(&c, &o[i]), 0);
	}
	int rc = create(&c, &o[3]);
	printf("limits: seventh CREATE/SECURE on one connection (burst 6): %d (%s)\n", rc,
	       cairn_strerror(rc));
	assert_int_equal(rc, CAIRN_ELIMIT);
	assert_int_equal(secure(&c, &o[0]), CAIRN_ELIMIT);
	/* Other commands are not budgeted. */
	ping_ok(&c);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, o[0].rid), 0);
	/* 60 a minute: one more a second (and less than one was left over). */
	it_sleep_ms(2000);
	int more = 0;
	while (more < 6 && create(&c, &o[3 + more]) == 0)
		more++;
	printf("limits: CREATEs after 2 s at 60 a minute: %d\n", more);
	assert_true(more >= 2 && more <= 3);
	/* Another connection has a budget of its own. */
	assert_int_equal(tclient_connect(&d, relay.port, relay.pub), 0);
	for (int i = 9; i < 12; i++)
		assert_int_equal(create(&d, &o[i]), 0);
	tclient_close(&c);
	tclient_close(&d);
}

/* The default budget is more than a client uses (CREATE then SECURE on a connection of its
 * own), and less than the 64 mailboxes a connection may hold. */
static void test_default_create_budget(void **state)
{
	start_relay("");
	struct tclient c;
	struct owner o;
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	int n = 0, rc = 0;
	while (n < 64 && (rc = create(&c, &o)) == 0)
		n++;
	printf("limits: CREATEs one connection got with the default budget: %d, then %d (%s)\n", n,
	       rc, cairn_strerror(rc));
	assert_int_equal(n, CAIRN_DEFAULT_CREATE_BURST);
	assert_int_equal(rc, CAIRN_ELIMIT);
	tclient_close(&c);
}

/* ---- AUTH ------------------------------------------------------------------------------- */

/* A batch that mixes AUTHs that fail, one that succeeds and the commands that depend on it is
 * answered in order, each AUTH with the reply it earns. */
static void test_auth_batch_in_order(void **state)
{
	start_relay("");
	struct tclient c, snd;
	struct owner o;
	assert_int_equal(tclient_connect(&snd, relay.port, relay.pub), 0);
	assert_int_equal(create(&snd, &o), 0);
	assert_int_equal(it_send(&snd, o.sid, NULL, "held", 4), 0);

	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	uint8_t msg[12 + CAIRN_HASH_LEN + 24], good[64], bad[64], nobody[24];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, c.session.h, CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, o.rid, 24);
	crypto_sign_detached(good, NULL, msg, sizeof(msg), o.sk);
	memcpy(bad, good, 64);
	bad[10] ^= 1;
	randombytes_buf(nobody, sizeof(nobody));
	struct cairn_msg batch[] = {
	    {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 1, .recipient_id = o.rid},
	    {.type = CAIRN_CMD_AUTH, .request_id = 2, .recipient_id = o.rid, .signature = bad},
	    {.type = CAIRN_CMD_AUTH, .request_id = 3, .recipient_id = nobody, .signature = good},
	    {.type = CAIRN_CMD_PING, .request_id = 4},
	    {.type = CAIRN_CMD_AUTH, .request_id = 5, .recipient_id = o.rid, .signature = good},
	    {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 6, .recipient_id = o.rid},
	    {.type = CAIRN_CMD_PING, .request_id = 7},
	};
	static const int want[] = {CAIRN_EDENIED, CAIRN_EDENIED, CAIRN_EDENIED, 0, 0, 0, 0};
	for (size_t i = 0; i < sizeof(batch) / sizeof(batch[0]); i++)
		assert_int_equal(tclient_queue(&c, &batch[i]), 0);
	assert_int_equal(tclient_flush(&c), 0);
	bool got_envelope = false;
	for (uint32_t rid = 1; rid <= 7;) {
		struct cairn_msg m;
		assert_int_equal(tclient_recv(&c, &m, 5000), 0);
		if (m.type == CAIRN_REPLY_ENVELOPE) {
			assert_int_equal(m.request_id, 6); /* after the SUBSCRIBE's OK */
			assert_true(rid > 6);
			got_envelope = true;
			continue;
		}
		if (m.request_id != rid)
			fail_msg("reply for request %u where %u was due", m.request_id, rid);
		int code = m.type == CAIRN_REPLY_ERROR ? -(int)m.code : 0;
		if (code != want[rid - 1])
			fail_msg("request %u: %d, wanted %d", rid, code, want[rid - 1]);
		rid++;
	}
	if (!got_envelope)
		(void)next_envelope(&c);

	/* A client's batch of AUTHs (one per mailbox) in one frame: each waits for the one before,
	 * so this is what the order costs. */
	enum { BATCH = 500 };
	int64_t t0 = it_mono_us();
	for (uint32_t i = 0; i < BATCH; i++) {
		struct cairn_msg a = {.type = CAIRN_CMD_AUTH,
		                      .request_id = 100 + i,
		                      .recipient_id = o.rid,
		                      .signature = good};
		assert_int_equal(tclient_queue(&c, &a), 0);
	}
	assert_int_equal(tclient_flush(&c), 0);
	for (uint32_t i = 0; i < BATCH;) {
		struct cairn_msg m;
		assert_int_equal(tclient_recv(&c, &m, 10000), 0);
		if (m.type == CAIRN_REPLY_ENVELOPE)
			continue;
		assert_int_equal(m.type, CAIRN_REPLY_OK);
		assert_int_equal(m.request_id, 100 + i);
		i++;
	}
	printf("limits: %d AUTHs in one frame answered in order in %.1f ms\n", BATCH,
	       (it_mono_us() - t0) / 1000.0);
	tclient_close(&c);
	tclient_close(&snd);
}

#define FLOOD_MS   3000
#define PING_EVERY 5 /* ms */

/* The attacker: frames full of AUTHs (a third good, a third with a bad signature, a third for
 * no mailbox) as fast as the relay takes them, replies read and thrown away. */
static void auth_flooder(int ready_fd)
{
	static struct tclient c;
	struct owner o;
	if (tclient_connect(&c, relay.port, relay.pub) != 0 || create(&c, &o) != 0)
		_exit(1);
	uint8_t msg[12 + CAIRN_HASH_LEN + 24], good[64], bad[64], nobody[24];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, c.session.h, CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, o.rid, 24);
	crypto_sign_detached(good, NULL, msg, sizeof(msg), o.sk);
	randombytes_buf(bad, sizeof(bad));
	randombytes_buf(nobody, sizeof(nobody));
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	static uint8_t sink[65536];
	for (uint32_t i = 1;; i++) {
		struct cairn_msg m = {.type = CAIRN_CMD_AUTH, .request_id = i};
		m.recipient_id = i % 3 == 2 ? nobody : o.rid;
		m.signature = i % 3 == 0 ? good : bad;
		if (tclient_queue(&c, &m) != 0)
			_exit(0); /* flushes each full frame: the relay closed, or we were killed */
		while (recv(c.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* One connection floods AUTHs while another PINGs every few milliseconds: the PINGs' round
 * trip must not follow the flood (it did: ~690 verifications fit in one 64 KiB frame, and the
 * relay did them all, and more frames, before it looked at anything else). */
static void test_auth_flood_does_not_delay_others(void **state)
{
	start_relay("");
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		auth_flooder(ready[1]);
	}
	close(ready[1]);
	char ch;
	assert_int_equal(read(ready[0], &ch, 1), 1);
	close(ready[0]);
	it_sleep_ms(200); /* the flood is under way */

	struct tclient p;
	assert_int_equal(tclient_connect(&p, relay.port, relay.pub), 0);
	static int64_t rtt[FLOOD_MS / PING_EVERY];
	size_t n = 0;
	int64_t end = it_mono_us() + (int64_t)FLOOD_MS * 1000;
	while (it_mono_us() < end && n < sizeof(rtt) / sizeof(rtt[0])) {
		int64_t t0 = it_mono_us();
		ping_ok(&p);
		rtt[n++] = it_mono_us() - t0;
		it_sleep_ms(PING_EVERY);
	}
	/* New connections are not kept waiting either: their handshakes share the thread pool
	 * with the AUTHs, which may hold only two of its threads. */
	int64_t hs_max = 0;
	for (int i = 0; i < 5; i++) {
		struct tclient h;
		int64_t t0 = it_mono_us();
		assert_int_equal(tclient_connect(&h, relay.port, relay.pub), 0);
		ping_ok(&h);
		int64_t took = it_mono_us() - t0;
		hs_max = took > hs_max ? took : hs_max;
		tclient_close(&h);
	}
	int status = 0;
	bool flooding = waitpid(pid, &status, WNOHANG) == 0;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	qsort(rtt, n, sizeof(rtt[0]), cmp_i64);
	int64_t p50 = rtt[n / 2], p99 = rtt[n * 99 / 100], max = rtt[n - 1];
	printf("limits: PING round trip beside an AUTH flood: %zu pings, p50 %.1f ms, p99 %.1f ms, "
	       "max %.1f ms\n",
	       n, p50 / 1000.0, p99 / 1000.0, max / 1000.0);
	printf("limits: handshake and first PING beside the flood: max %.1f ms of 5\n",
	       hs_max / 1000.0);
	assert_true(flooding); /* the flood lasted the whole measurement */
	ping_ok(&p);
	tclient_close(&p);
	if (under_wrapper()) {
		printf("limits: p99 bound not checked under a wrapper\n");
		return;
	}
	if (p99 > 50000)
		fail_msg("PING p99 %.1f ms beside an AUTH flood (bound 50 ms)", p99 / 1000.0);
	if (hs_max > 100000)
		fail_msg("a handshake took %.1f ms beside an AUTH flood (bound 100 ms)",
		         hs_max / 1000.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_full_of_mailboxes, teardown),
	    cmocka_unit_test_teardown(test_full_of_bytes, teardown),
	    cmocka_unit_test_teardown(test_disk_floor, teardown),
	    cmocka_unit_test_teardown(test_create_budget, teardown),
	    cmocka_unit_test_teardown(test_default_create_budget, teardown),
	    cmocka_unit_test_teardown(test_auth_batch_in_order, teardown),
	    cmocka_unit_test_teardown(test_auth_flood_does_not_delay_others, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
