/* SPDX-License-Identifier: MIT */
/*
 * Integration: how the relay writes to a connection (relay/conn.c start_write). A write the
 * kernel takes whole completes at once; what it leaves goes to libuv and is written when the
 * socket can take it. A subscriber that reads slowly gets every envelope once, in order and
 * intact, through many such partial writes; one that stops reading is closed by the stalled
 * write check (handshake_timeout) long before its idle timeout.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "it_common.h"

/* A short stall deadline (the handshake timeout), a long idle one: a close in between can
 * only be the stalled write. */
#define HS_TIMEOUT_S 2
#define IDLE_S       60
#define OUTPUT_MAX   131072
#define WINDOW       1024 /* more than the kernel holds: the output bound is reached first */
#define BODY_LEN     CAIRN_ENVELOPE_MAX /* 16 KiB: a few fill the socket buffers */
#define SEND_WINDOW  32                 /* the sender's SENDs unanswered */
#define SLOW_COUNT   (IT_ASAN ? 300 : 600)
#define STOP_COUNT   512 /* 8 MiB: more than the relay's output bound and both buffers */

static struct relayproc relay;

static int setup(void **state)
{
	char limits[256];
	snprintf(limits, sizeof(limits),
	         "handshake_timeout = %d\nidle_timeout = %d\noutput_buffer_max = %d\n"
	         "delivery_window = %d\n",
	         HS_TIMEOUT_S, IDLE_S, OUTPUT_MAX, WINDOW);
	return it_relay_setup(state, &relay, limits);
}

/* A sender on a thread of its own: COUNT envelopes to SID, SEND_WINDOW unanswered at most. */
struct sender {
	pthread_t thread;
	const uint8_t *sid;
	uint32_t count;
	int rc; /* 0, or the first failure */
};

static void *sender_run(void *arg)
{
	struct sender *s = arg;
	struct tclient c;
	static uint8_t body[BODY_LEN];
	s->rc = tclient_connect(&c, relay.port, relay.pub);
	if (s->rc != 0)
		return NULL;
	uint32_t sent = 0, answered = 0;
	while (answered < s->count) {
		if (sent < s->count && sent - answered < SEND_WINDOW) {
			it_numbered_body(body, BODY_LEN, sent);
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = sent + 1,
			                      .sender_id = s->sid,
			                      .envelope = body,
			                      .envelope_len = BODY_LEN};
			if ((s->rc = tclient_send(&c, &m)) != 0)
				break;
			sent++;
			continue;
		}
		struct cairn_msg reply;
		if ((s->rc = tclient_recv(&c, &reply, 20000)) != 0)
			break;
		if (reply.type != CAIRN_REPLY_OK) {
			s->rc = -1;
			break;
		}
		answered++;
	}
	tclient_close(&c);
	return NULL;
}

/* A connection whose kernel receive buffer stays small (Linux doubles it to 128 KiB, and
 * grows it no more), so that what the kernel holds for it is bounded by the relay's send
 * buffer (4 MiB at most, tcp_wmem). */
static void connect_small(struct tclient *c)
{
	assert_int_equal(tclient_connect(c, relay.port, relay.pub), 0);
	int small = 65536;
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
}

/* The owner of a fresh mailbox, authenticated and subscribed on SUB. */
static void subscribe(struct tclient *sub, struct owner *o)
{
	struct tclient maker;
	assert_int_equal(tclient_connect(&maker, relay.port, relay.pub), 0);
	assert_int_equal(tclient_create(&maker, o->rid, o->sid, o->pk, o->sk), 0);
	tclient_close(&maker);
	assert_int_equal(tclient_auth(sub, o->rid, o->sk), 0);
	assert_int_equal(it_simple(sub, CAIRN_CMD_SUBSCRIBE, o->rid), 0);
}

/* The sender of the running test: it outlives the test if an assertion fails. */
static struct sender flood;

/* SUB: a subscriber with a small receive buffer, of a fresh mailbox O, with COUNT envelopes
 * on their way to it from the sender's thread (flood). */
static void subscribe_flooded(struct tclient *sub, struct owner *o, uint32_t count)
{
	connect_small(sub);
	subscribe(sub, o);
	flood = (struct sender){.sid = o->sid, .count = count};
	assert_int_equal(pthread_create(&flood.thread, NULL, sender_run, &flood), 0);
}

/*
 * A subscriber that reads slowly (a pause after every envelope, a small receive buffer)
 * while a sender pushes SLOW_COUNT x 16 KiB at it: the relay's writes fill the socket again
 * and again, and each time what the kernel left must follow from the right byte. Every
 * envelope must arrive once, in order and intact (a byte written twice or skipped breaks the
 * stream's AEAD, so the connection would fail), and it is acknowledged as it comes.
 */
static void test_slow_reader_gets_everything(void **state)
{
	(void)state;
	struct tclient sub;
	struct owner o;
	int64_t start = it_mono_ms();
	subscribe_flooded(&sub, &o, SLOW_COUNT);

	static uint8_t want[BODY_LEN];
	uint32_t next = 0, acks = 0;
	while (next < SLOW_COUNT) {
		struct cairn_msg m;
		int rc = tclient_recv(&sub, &m, 20000);
		if (rc != 0) {
			pthread_join(flood.thread, NULL);
			fail_msg("envelope %u of %u: receive failed (%s, %s, after %lld ms)", next,
			         SLOW_COUNT, cairn_strerror(rc),
			         tclient_peer_closed(&sub) ? "closed" : "open",
			         (long long)(it_mono_ms() - start));
		}
		if (m.type == CAIRN_REPLY_OK)
			continue; /* an ACK's */
		assert_int_equal(m.type, CAIRN_REPLY_ENVELOPE);
		assert_int_equal(m.envelope_len, BODY_LEN);
		it_numbered_body(want, BODY_LEN, next);
		if (memcmp(m.envelope, want, BODY_LEN) != 0) {
			uint32_t got = it_body_number(m.envelope);
			pthread_join(flood.thread, NULL);
			fail_msg("expected envelope %u, got one numbered %u", next, got);
		}
		next++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .request_id = 100000 + next,
		                        .recipient_id = o.rid,
		                        .envelope_id = m.envelope_id};
		assert_int_equal(tclient_queue(&sub, &ack), 0);
		if (++acks % 8 == 0)
			assert_int_equal(tclient_flush(&sub), 0);
		it_sleep_ms(1);
	}
	assert_int_equal(tclient_flush(&sub), 0);
	pthread_join(flood.thread, NULL);
	assert_int_equal(flood.rc, 0);
	printf("write: %u x 16 KiB to a slow reader in %lld ms, in order, none twice\n", SLOW_COUNT,
	       (long long)(it_mono_ms() - start));

	/* Nothing more comes: no envelope was delivered twice. */
	struct cairn_msg m;
	int rc;
	while ((rc = tclient_recv(&sub, &m, 500)) == 0)
		if (m.type != CAIRN_REPLY_OK)
			fail_msg("after the last envelope: a %s", cairn_msg_type_name(m.type));
	assert_false(tclient_peer_closed(&sub));
	tclient_close(&sub);
}

/*
 * A subscriber that stops reading while 8 MiB are sent to it: the relay's write is left
 * waiting with the rest of its bytes, the output reaches its bound, and the stalled write
 * check closes the connection a handshake timeout later, where the idle timeout (60 s) would
 * take far longer. The sender is answered throughout, and the envelopes stay stored.
 */
static void test_stopped_reader_closed_by_stall(void **state)
{
	(void)state;
	struct tclient sub;
	struct owner o;
	int64_t start = it_mono_ms();
	subscribe_flooded(&sub, &o, STOP_COUNT);
	pthread_join(flood.thread, NULL);
	assert_int_equal(flood.rc, 0);
	int64_t sent_ms = it_mono_ms() - start;

	/* Now it reads: what is in its buffers, then the close. Nothing waits that long but the
	 * stall check, with a tick of a second and a loaded machine's slack. */
	int64_t limit = (int64_t)(HS_TIMEOUT_S + 8) * 1000;
	it_sleep_ms((HS_TIMEOUT_S + 2) * 1000);
	struct cairn_msg m;
	uint32_t got = 0;
	int rc;
	while ((rc = tclient_recv(&sub, &m, (int)limit)) == 0)
		got += m.type == CAIRN_REPLY_ENVELOPE;
	int64_t closed_ms = it_mono_ms() - start;
	printf("write: a reader that stopped: %u of %u envelopes reached it, closed %lld ms "
	       "after it connected (sends done in %lld ms; idle timeout %d s)\n",
	       got, STOP_COUNT, (long long)closed_ms, (long long)sent_ms, IDLE_S);
	assert_true(tclient_peer_closed(&sub));
	assert_true(got < STOP_COUNT);
	assert_true(closed_ms < (int64_t)IDLE_S * 1000 / 2);
	tclient_close(&sub);

	/* Stored: a new subscriber gets them from the first on. */
	struct tclient again;
	assert_int_equal(tclient_connect(&again, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(&again, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&again, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	static uint8_t want[BODY_LEN];
	assert_int_equal(tclient_recv(&again, &m, 5000), 0);
	assert_int_equal(m.type, CAIRN_REPLY_ENVELOPE);
	it_numbered_body(want, BODY_LEN, 0);
	assert_int_equal(m.envelope_len, BODY_LEN);
	assert_memory_equal(m.envelope, want, BODY_LEN);
	tclient_close(&again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slow_reader_gets_everything, setup,
	                                    it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_stopped_reader_closed_by_stall, setup,
	                                    it_relay_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
