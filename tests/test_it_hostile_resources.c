/* SPDX-License-Identifier: MIT */
/*
 * Integration, the second part of test_it_hostile (see its purpose block): hostile peers and
 * the relay's resources. Peers that never read (subscribers with and without a backlog, a
 * pinger), the connection limit, and the memory and file descriptors that 1000 idle
 * connections cost. Figures are printed so that they show in the test log.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "it_common.h"
#include "wrapper.h"
#include "it_hostile_common.h"

/* ---- peers that never read ------------------------------------------------------------ */

/* Waits until the relay has at most WANT descriptors open; returns the time it took or -1. */
static int64_t wait_fds_at_most(const struct relayproc *r, long want, int timeout_ms)
{
	int64_t start = it_mono_ms();
	while (it_mono_ms() - start < timeout_ms) {
		long n = relayproc_fds(r);
		if (n >= 0 && n <= want)
			return it_mono_ms() - start;
		it_sleep_ms(50);
	}
	return -1;
}

#define FLOOD_ENVELOPES 2048 /* 32 MiB of 16 KiB envelopes */
#define FLOOD_WINDOW    48   /* sends in flight */

/* Sends FLOOD_ENVELOPES copies of BODY to SID from C, keeping FLOOD_WINDOW in flight, and
 * samples the relay's RSS into *PEAK. */
static void flood(struct tclient *c, const struct relayproc *r, const uint8_t sid[24],
                  const uint8_t *body, size_t len, long *peak)
{
	int outstanding = 0;
	for (int i = 0; i < FLOOD_ENVELOPES || outstanding > 0;) {
		if (i < FLOOD_ENVELOPES && outstanding < FLOOD_WINDOW) {
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = (uint32_t)i + 1,
			                      .sender_id = sid,
			                      .envelope = body,
			                      .envelope_len = len};
			assert_int_equal(tclient_send(c, &m), 0);
			outstanding++;
			i++;
			continue;
		}
		struct cairn_msg reply;
		assert_int_equal(tclient_recv(c, &reply, 10000), 0);
		if (reply.type != CAIRN_REPLY_OK)
			fail_msg("send %u: %s code %u", reply.request_id,
			         cairn_msg_type_name(reply.type), reply.code);
		outstanding--;
		if (i % 64 == 0) {
			long rss = relayproc_rss_kb(r);
			*peak = rss > *peak ? rss : *peak;
		}
	}
}

/*
 * An owner subscribes and never reads, while a sender pushes 32 MiB into its mailbox: either
 * after the subscription (BACKLOG false: deliveries as they arrive) or before it (a stored
 * backlog that delivery reads back from the disk). The relay must stop at its output bound,
 * then disconnect the owner, and its memory must not follow the 32 MiB. A relay of its own,
 * so that the heap other tests left behind does not hide growth.
 */
static void never_reading_subscriber(struct relayproc *rp, bool backlog)
{
	struct relayproc r = *rp;
	const char *what = backlog ? "stored backlog" : "live flood";
	struct tclient good, sub, snd;
	struct owner o;
	assert_int_equal(tclient_connect(&good, r.port, r.pub), 0);
	assert_int_equal(tclient_connect(&snd, r.port, r.pub), 0);
	assert_int_equal(tclient_create(&snd, o.rid, o.sid, o.pk, o.sk), 0);
	long rss0 = relayproc_rss_kb(&r), peak = rss0;
	assert_true(rss0 > 0);
	static uint8_t body[CAIRN_ENVELOPE_MAX];
	randombytes_buf(body, sizeof(body));
	int64_t start = it_mono_ms();
	if (backlog)
		flood(&snd, &r, o.sid, body, sizeof(body), &peak);

	assert_int_equal(tclient_connect(&sub, r.port, r.pub), 0);
	/* A small receive buffer: the kernel must not soak up the flood on its behalf. */
	int small = 16384;
	assert_int_equal(setsockopt(sub.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(tclient_auth(&sub, o.rid, o.sk), 0);
	long fds0 = relayproc_fds(&r);
	/* From here on the subscriber reads nothing. */
	assert_int_equal(it_simple(&sub, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	int64_t subscribed = it_mono_ms();
	if (!backlog)
		flood(&snd, &r, o.sid, body, sizeof(body), &peak);
	int64_t flood_ms = it_mono_ms() - start;
	ping_ok(&good);

	/* Backpressure, then disconnection: a write stalled past the handshake timeout. */
	int64_t waited = -1, t0 = it_mono_ms();
	while (it_mono_ms() - t0 < IDLE_S * 1000 + 5000) {
		long rss = relayproc_rss_kb(&r), fds = relayproc_fds(&r);
		peak = rss > peak ? rss : peak;
		if (fds >= 0 && fds <= fds0 - 1) {
			waited = it_mono_ms() - t0;
			break;
		}
		/* The others are served meanwhile (and stay clear of the idle timeout). */
		ping_ok(&good);
		ping_ok(&snd);
		it_sleep_ms(50);
	}
	int64_t since_sub = it_mono_ms() - subscribed;
	printf("hostile: %s of %d x 16 KiB to a subscriber that never reads (%lld ms): relay "
	       "RSS %ld KiB -> peak %ld KiB (+%ld KiB), output_buffer_max %d KiB\n",
	       what, FLOOD_ENVELOPES, (long long)flood_ms, rss0, peak, peak - rss0,
	       OUTPUT_MAX / 1024);
	printf("hostile: %s: non-reading subscriber closed %lld ms after the flood, %lld ms "
	       "after it subscribed (idle timeout %d s)\n",
	       what, (long long)waited, (long long)since_sub, IDLE_S);
	if (waited < 0)
		fail_msg("%s: the relay kept a subscriber that never reads", what);
	/* Closed for the stalled write, or at the latest by the idle timeout: loopback TCP may
	 * keep taking a trickle into the relay's socket buffer for a while (kernel memory, not
	 * the relay's), which the relay cannot tell from a slow reader. */
	printf("hostile: %s: closed %s the idle deadline\n", what,
	       since_sub < IDLE_S * 1000 - 500 ? "before" : "at");
	assert_true(since_sub < IDLE_S * 1000 + 4000);
	/* Far less than the 32 MiB that went through the mailbox: the relay keeps at most two
	 * windows of bodies in memory for a subscribed mailbox, plus its bounded output. */
	check_growth(what, peak - rss0, 2L * WINDOW * 16 + 8L * OUTPUT_MAX / 1024 + 8 * 1024);
	ping_ok(&good);
	tclient_close(&sub);

	/* What was not acknowledged stays stored: a fresh subscriber gets it from the start. */
	assert_int_equal(tclient_auth(&snd, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&snd, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	struct cairn_msg env;
	assert_int_equal(tclient_recv(&snd, &env, 5000), 0);
	assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
	assert_int_equal(env.envelope_len, sizeof(body));
	assert_memory_equal(env.envelope, body, sizeof(body));
	tclient_close(&snd);
	tclient_close(&good);
}

static void test_subscriber_never_reads(void **state)
{
	never_reading_subscriber(*state, false);
}

static void test_backlog_subscriber_never_reads(void **state)
{
	never_reading_subscriber(*state, true);
}

/* A peer that pipelines PINGs as fast as it can and never reads a reply. */
static void test_pinger_never_reads(void **state)
{
	struct relayproc *r = *state;
	struct tclient good, p;
	assert_int_equal(tclient_connect(&good, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&p, r->port, r->pub), 0);
	long rss0 = relayproc_rss_kb(r), peak = rss0;
	assert_int_equal(fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK), 0);

	/* Frames full of [1, 0]: one read of the relay makes some 64 KiB of replies. */
	static uint8_t frame[2 + CAIRN_NOISE_MSG_MAX];
	size_t content = CAIRN_FRAME_CONTENT_MAX / 3 * 3;
	for (size_t i = 0; i < content; i += 3) {
		p.batch[i] = 0x92;
		p.batch[i + 1] = 0x01;
		p.batch[i + 2] = 0x00;
	}
	size_t frame_len = 0, off = 0;
	uint64_t written = 0;
	int64_t start = it_mono_ms(), last_progress = start, closed = -1;
	while (it_mono_ms() - start < 20000) {
		if (off == frame_len) {
			assert_int_equal(frame_seal(&p.session.send, p.batch, content, 0, frame,
			                            sizeof(frame), &frame_len),
			                 0);
			off = 0;
		}
		ssize_t n = send(p.fd, frame + off, frame_len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			written += (uint64_t)n;
			last_progress = it_mono_ms();
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = p.fd, .events = POLLOUT};
			(void)poll(&pfd, 1, 100);
			long rss = relayproc_rss_kb(r);
			peak = rss > peak ? rss : peak;
			if (pfd.revents & (POLLERR | POLLHUP)) {
				closed = it_mono_ms();
				break;
			}
			continue;
		}
		closed = it_mono_ms(); /* EPIPE or ECONNRESET: the relay let go */
		break;
	}
	printf("hostile: PING flood without reading: %.1f MiB written, writes blocked after "
	       "%lld ms, closed %lld ms later; relay RSS %ld -> peak %ld KiB (+%ld KiB)\n",
	       written / 1048576.0, (long long)(last_progress - start),
	       (long long)(closed < 0 ? -1 : closed - last_progress), rss0, peak, peak - rss0);
	if (closed < 0)
		fail_msg("the relay kept a peer that never reads");
	/* Stalled beyond the handshake timeout, checked once a second. */
	assert_true(closed - last_progress <= HS_TIMEOUT_S * 1000 + 5000);
	check_growth("PING flood", peak - rss0, 8L * OUTPUT_MAX / 1024 + 4 * 1024);
	tclient_close(&p);
	ping_ok(&good);
	tclient_close(&good);
}

/* ---- the connection limit ------------------------------------------------------------- */

static void test_max_connections(void **state)
{
	struct relayproc r = *(struct relayproc *)*state;
	static struct tclient c[LIMITED];
	for (int i = 0; i < LIMITED; i++)
		assert_int_equal(tclient_connect(&c[i], r.port, r.pub), 0);
	/* Beyond the limit: closed at once, before any answer. */
	for (int k = 0; k < 3; k++) {
		struct noise_handshake hs;
		uint8_t msg[2 + CAIRN_HANDSHAKE1_MAX];
		size_t len = make_msg1(r.pub, (uint64_t)time(NULL), msg, &hs);
		struct watch w = {.what = "over the limit", .start_ms = it_mono_ms()};
		w.fd = raw_dial(r.port);
		(void)send(w.fd, msg, len, MSG_NOSIGNAL);
		watch_until_closed(&w, 1, 5000, false);
		printf("hostile: connection %d over max_connections = %d closed after %lld ms, "
		       "%zu bytes\n",
		       LIMITED + 1 + k, LIMITED, (long long)(w.closed_ms - w.start_ms), w.bytes);
		assert_true(w.closed_ms != 0);
		assert_true(w.closed_ms - w.start_ms < 3000);
		assert_int_equal(w.bytes, 0);
		close(w.fd);
	}
	/* The ones inside keep working. */
	for (int i = 0; i < LIMITED; i++)
		ping_ok(&c[i]);
	/* A place freed is a place taken: once the relay has seen the close, one more fits. */
	tclient_close(&c[0]);
	int rc = -1;
	for (int tries = 0; tries < 50 && rc != 0; tries++) {
		it_sleep_ms(50);
		rc = tclient_connect(&c[0], r.port, r.pub);
		if (rc != 0)
			tclient_close(&c[0]);
	}
	assert_int_equal(rc, 0);
	for (int i = 0; i < LIMITED; i++) {
		ping_ok(&c[i]);
		tclient_close(&c[i]);
	}
}

/* ---- 1000 idle connections ------------------------------------------------------------ */

#define IDLE_CONNS 1000

static void test_idle_connections(void **state)
{
	struct relayproc *r = *state;
	struct tclient good;
	/* Under a wrapper handshakes are slow enough that the first of 1000 connections would
	 * reach its idle deadline before the last is made: fewer show the same there. */
	const int conns = under_wrapper() ? IDLE_CONNS / 4 : IDLE_CONNS;
	/* Under a wrapper earlier tests run slower, and a connection one left idle may reach its
	 * idle deadline while this test counts descriptors: let every such deadline pass first. */
	if (under_wrapper())
		it_sleep_ms((IDLE_S + 2) * 1000L);
	assert_int_equal(tclient_connect(&good, r->port, r->pub), 0);
	ping_ok(&good);
	it_sleep_ms(under_wrapper() ? 1000 : 200); /* let earlier tests' closes land */
	long fds0 = relayproc_fds(r), rss0 = relayproc_rss_kb(r);
	static int fds[IDLE_CONNS];
	/* One client structure is big; keep only each connection's socket. */
	static struct tclient t;
	int64_t start = it_mono_ms();
	for (int i = 0; i < conns; i++) {
		assert_int_equal(tclient_connect(&t, r->port, r->pub), 0);
		fds[i] = t.fd;
		t.fd = -1;
		tclient_close(&t);
		/* Handshakes are slow under a wrapper: keep GOOD within its idle deadline. */
		if (under_wrapper() && i % 200 == 199)
			ping_ok(&good);
	}
	int64_t took = it_mono_ms() - start;
	it_sleep_ms(under_wrapper() ? 1000 : 200);
	long fds1 = relayproc_fds(r), rss1 = relayproc_rss_kb(r);
	long per_conn = (rss1 - rss0) * 1024 / conns;
	printf("hostile: %d idle connections (handshakes in %lld ms): relay RSS %ld -> %ld KiB, "
	       "+%ld KiB (%ld bytes/conn); fds %ld -> %ld\n",
	       conns, (long long)took, rss0, rss1, rss1 - rss0, per_conn, fds0, fds1);
	assert_true(fds1 - fds0 >= conns && fds1 - fds0 <= conns + 2);
	/* Idle connections hold no read buffer: a few KiB each at most. */
	check_growth("1000 idle connections", rss1 - rss0, conns * 16L);
	ping_ok(&good);
	for (int i = 0; i < conns; i++)
		close(fds[i]);
	int64_t waited = wait_fds_at_most(r, fds0, 10000);
	printf("hostile: after closing them: relay fds %ld (baseline %ld) after %lld ms\n",
	       relayproc_fds(r), fds0, (long long)waited);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", relayproc_fds(r),
		         fds0);
	ping_ok(&good);
	tclient_close(&good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_subscriber_never_reads, setup_own,
	                                    it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_subscriber_never_reads, setup_own,
	                                    it_relay_teardown),
	    cmocka_unit_test(test_pinger_never_reads),
	    cmocka_unit_test_setup_teardown(test_max_connections, setup_limited, it_relay_teardown),
	    cmocka_unit_test(test_idle_connections),
	};
	return cmocka_run_group_tests(tests, setup, it_relay_teardown);
}
