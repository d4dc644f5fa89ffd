/* SPDX-License-Identifier: MIT */
/*
 * Integration: hostile peers against the real cairn-relay. Garbage and replayed handshakes
 * (silence, then a close at the handshake deadline, like a peer that sends nothing), broken
 * frames after a good handshake, slowloris connections, peers that never read, the
 * connection limit, and the memory and file descriptors that 1000 idle connections cost, and
 * the attack driver's random mix with intake mailboxes' commands (INTAKE, SEND_WORK).
 * Measured figures are printed so that they show in the test log.
 *
 * This program: handshakes, broken frames, slowloris and the mix. test_it_hostile_resources has
 * peers that never read, the connection limit and idle connections; what both share is
 * it_hostile_common.[ch]. `ctest -R test_it_hostile` runs both.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attack.h"
#include "it_common.h"
#include "wrapper.h"
#include "it_hostile_common.h"

/* ---- silence, then a close at the deadline -------------------------------------------- */

/* Every watched connection got no byte and was closed at the handshake deadline. */
static void check_silent_close(struct watch *w, size_t n)
{
	/* Under valgrind (make test-valgrind) the relay runs some 20 times slower and what is
	 * checked there is memory: the close may come later, never sooner. */
	int64_t lo = HS_TIMEOUT_S * 1000 - 200,
	        hi = HS_TIMEOUT_S * 1000 + (under_wrapper() ? 8000 : 3000);
	int64_t first = INT64_MAX, last = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t after = w[i].closed_ms ? w[i].closed_ms - w[i].start_ms : -1;
		printf(
		    "hostile: %-28s closed after %5lld ms, %zu bytes received (deadline %d ms)\n",
		    w[i].what, (long long)after, w[i].bytes, HS_TIMEOUT_S * 1000);
		if (w[i].closed_ms == 0)
			fail_msg("%s: still open", w[i].what);
		if (w[i].bytes != 0)
			fail_msg("%s: the relay answered %zu bytes", w[i].what, w[i].bytes);
		if (after < lo || after > hi)
			fail_msg("%s: closed after %lld ms, outside %lld..%lld", w[i].what,
			         (long long)after, (long long)lo, (long long)hi);
		first = after < first ? after : first;
		last = after > last ? after : last;
		close(w[i].fd);
	}
	/* The deadline is checked once a second: connections opened together close together,
	 * whatever they sent. */
	printf("hostile: spread of close times %lld ms\n", (long long)(last - first));
	assert_true(last - first <= 1500);
}

static void test_garbage_handshake(void **state)
{
	struct relayproc *r = *state;
	struct watch w[5] = {
	    {.what = "nothing sent"},
	    {.what = "random bytes, valid length"},
	    {.what = "random bytes, length 312"},
	    {.what = "frame length 5"},
	    {.what = "frame length 65535"},
	};
	for (size_t i = 0; i < 5; i++) {
		w[i].start_ms = it_mono_ms();
		w[i].fd = raw_dial(r->port);
	}
	uint8_t buf[2 + 400];
	randombytes_buf(buf, sizeof(buf));
	/* 57..312 is the range of message 1: these pass the framing and fail decryption. */
	buf[0] = 0;
	buf[1] = 100;
	write_all(w[1].fd, buf, 2 + 100);
	buf[0] = CAIRN_HANDSHAKE1_MAX >> 8;
	buf[1] = CAIRN_HANDSHAKE1_MAX & 0xff;
	write_all(w[2].fd, buf, 2 + CAIRN_HANDSHAKE1_MAX);
	/* Lengths message 1 cannot have: rejected before the body is read. */
	buf[0] = 0;
	buf[1] = 5;
	write_all(w[3].fd, buf, 2 + 5);
	buf[0] = buf[1] = 0xff;
	write_all(w[4].fd, buf, sizeof(buf));
	watch_until_closed(w, 5, HS_TIMEOUT_S * 1000 + 6000, true);
	check_silent_close(w, 5);
}

/* Reads one handshake reply frame from FD (blocking, up to 5 s). Returns its body length. */
static size_t read_msg2(int fd, uint8_t *body)
{
	uint8_t hdr[2];
	size_t have = 0, len = 0;
	int64_t end = it_mono_ms() + 5000;
	while (it_mono_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		uint8_t *dst = have < 2 ? hdr + have : body + (have - 2);
		size_t want = have < 2 ? 2 - have : len - (have - 2);
		ssize_t n = recv(fd, dst, want, 0);
		assert_true(n > 0);
		have += (size_t)n;
		if (have == 2)
			len = ((size_t)hdr[0] << 8) | hdr[1];
		if (have >= 2 && have == 2 + len)
			return len;
	}
	fail_msg("no message 2");
	return 0;
}

static void test_replay_and_stale_timestamps(void **state)
{
	struct relayproc *r = *state;
	/* A real client's message 1, recorded on its way out, and the real session after it. */
	struct noise_handshake hs;
	uint8_t msg1[2 + CAIRN_HANDSHAKE1_MAX], msg2[CAIRN_HANDSHAKE2_MAX];
	size_t len1 = make_msg1(r->pub, (uint64_t)time(NULL), msg1, &hs);
	struct tclient c;
	assert_int_equal(tclient_dial(&c, r->port), 0);
	write_all(c.fd, msg1, len1);
	size_t len2 = read_msg2(c.fd, msg2);
	assert_int_equal(cairn_handshake_client_finish(&hs, msg2, len2, &c.session), 0);
	frame_reader_set_limits(&c.reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                        CAIRN_NOISE_MSG_MAX);
	ping_ok(&c);
	tclient_close(&c);

	/* The censor replays it, and tries messages whose clocks are 10 minutes off. */
	uint8_t stale[2 + CAIRN_HANDSHAKE1_MAX], future[2 + CAIRN_HANDSHAKE1_MAX];
	size_t stale_len = make_msg1(r->pub, (uint64_t)time(NULL) - 600, stale, &hs);
	size_t future_len = make_msg1(r->pub, (uint64_t)time(NULL) + 600, future, &hs);
	struct watch w[4] = {
	    {.what = "nothing sent"},
	    {.what = "replayed message 1"},
	    {.what = "timestamp 10 min old"},
	    {.what = "timestamp 10 min ahead"},
	};
	for (size_t i = 0; i < 4; i++) {
		w[i].start_ms = it_mono_ms();
		w[i].fd = raw_dial(r->port);
	}
	write_all(w[1].fd, msg1, len1);
	write_all(w[2].fd, stale, stale_len);
	write_all(w[3].fd, future, future_len);
	watch_until_closed(w, 4, HS_TIMEOUT_S * 1000 + 6000, false);
	check_silent_close(w, 4);
}

/* ---- broken frames after a good handshake --------------------------------------------- */

/* The relay closes C soon (well before any deadline), whatever it sent first. */
static void expect_closed(struct tclient *c, const char *what)
{
	int64_t start = it_mono_ms();
	struct cairn_msg m;
	int rc;
	while ((rc = tclient_recv(c, &m, 3000)) == 0)
		;
	int64_t took = it_mono_ms() - start;
	printf("hostile: %-40s closed after %lld ms\n", what, (long long)took);
	if (!tclient_peer_closed(c))
		fail_msg("%s: not closed (%s)", what, cairn_strerror(rc));
	tclient_close(c);
}

/* Sends CONTENT as one well-formed frame (right key, zero padding). */
static void send_content(struct tclient *c, const void *content, size_t len)
{
	memcpy(c->batch, content, len);
	c->batch_len = len;
	assert_int_equal(tclient_flush(c), 0);
}

/* Seals a 256-byte plaintext as given (header, content and padding chosen by the caller). */
static void send_plaintext(struct tclient *c, const uint8_t pt[256])
{
	uint8_t out[2 + 256 + CAIRN_AEAD_TAG_LEN];
	size_t len = 0;
	assert_int_equal(noise_cipher_encrypt(&c->session.send, NULL, 0, pt, 256, out + 2,
	                                      sizeof(out) - 2, &len),
	                 0);
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	assert_int_equal(tclient_write_raw(c, out, len + 2), 0);
}

static void test_bad_frames_after_handshake(void **state)
{
	struct relayproc *r = *state;
	struct tclient good, x;
	assert_int_equal(tclient_connect(&good, r->port, r->pub), 0);
	ping_ok(&good);

	static const uint8_t ping_c1[] = {0x92, 0x01, 0x07, 0xc1};
	static const uint8_t c1[] = {0xc1};
	static const uint8_t huge_array[] = {0xdd, 0x00, 0xff, 0xff, 0xff};
	static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t no_id[] = {0x91, 0x01};
	for (int k = 0; k < 11; k++) {
		assert_int_equal(tclient_connect(&x, r->port, r->pub), 0);
		ping_ok(&x);
		uint8_t buf[2 + 300];
		const char *what = "";
		switch (k) {
		case 0:
			what = "frame length 5";
			buf[0] = 0;
			buf[1] = 5;
			randombytes_buf(buf + 2, 5);
			assert_int_equal(tclient_write_raw(&x, buf, 7), 0);
			break;
		case 1:
			what = "frame length 0";
			buf[0] = buf[1] = 0;
			assert_int_equal(tclient_write_raw(&x, buf, 2), 0);
			break;
		case 2:
			what = "frame that fails decryption";
			randombytes_buf(buf, sizeof(buf));
			buf[0] = 1;
			buf[1] = 16; /* 272: a real frame's size */
			assert_int_equal(tclient_write_raw(&x, buf, 2 + 272), 0);
			break;
		case 3:
			what = "msgpack 0xc1";
			send_content(&x, c1, sizeof(c1));
			break;
		case 4:
			what = "msgpack dd 00 ff ff ff";
			send_content(&x, huge_array, sizeof(huge_array));
			break;
		case 5:
			what = "msgpack df ff ff ff ff";
			send_content(&x, huge_map, sizeof(huge_map));
			break;
		case 6:
			what = "a PING then 0xc1 in one frame";
			send_content(&x, ping_c1, sizeof(ping_c1));
			break;
		case 7:
			what = "a command without request id";
			send_content(&x, no_id, sizeof(no_id));
			break;
		case 8: {
			what = "non-zero padding";
			uint8_t pt[256] = {0x00, 0x03, 0x92, 0x01, 0x00};
			pt[200] = 1;
			send_plaintext(&x, pt);
			break;
		}
		case 9: {
			what = "content length over the frame";
			uint8_t pt[256] = {0x01, 0x00, 0x92, 0x01, 0x00};
			send_plaintext(&x, pt);
			break;
		}
		default: {
			/* A good frame, then garbage. Its first two bytes are taken for a length:
			 * make it one that the garbage completes, so the relay can judge it (a
			 * partial frame waits, bounded, for the idle timeout). */
			what = "trailing garbage after a frame";
			struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = 9};
			assert_int_equal(tclient_send(&x, &m), 0);
			randombytes_buf(buf, sizeof(buf));
			buf[0] = 0;
			buf[1] = 200;
			assert_int_equal(tclient_write_raw(&x, buf, 2 + 200), 0);
			break;
		}
		}
		expect_closed(&x, what);
		ping_ok(&good);
	}

	/* An envelope over 16 KiB is an error reply, not a close (section 5.6). */
	assert_int_equal(tclient_connect(&x, r->port, r->pub), 0);
	static uint8_t big[3 + 2 + 24 + 1 + 5 + CAIRN_ENVELOPE_MAX + 1];
	size_t n = 0;
	big[n++] = 0x95; /* [8, 42, sender_id, nil, bin32 envelope] */
	big[n++] = 0x08;
	big[n++] = 0x2a;
	big[n++] = 0xc4;
	big[n++] = 24;
	n += 24;
	big[n++] = 0xc0;
	big[n++] = 0xc6;
	uint32_t elen = CAIRN_ENVELOPE_MAX + 1;
	big[n++] = (uint8_t)(elen >> 24);
	big[n++] = (uint8_t)(elen >> 16);
	big[n++] = (uint8_t)(elen >> 8);
	big[n++] = (uint8_t)elen;
	n += elen;
	send_content(&x, big, n);
	struct cairn_msg reply;
	assert_int_equal(tclient_recv(&x, &reply, 5000), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_ERROR);
	assert_int_equal(reply.request_id, 42);
	assert_int_equal(reply.code, 5);
	ping_ok(&x);
	tclient_close(&x);
	ping_ok(&good);
	tclient_close(&good);
}

/* ---- slowloris ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

#define LORIS     200
#define PINGS_MIN 50

static void test_slowloris(void **state)
{
	struct relayproc *r = *state;
	struct tclient good;
	assert_int_equal(tclient_connect(&good, r->port, r->pub), 0);
	ping_ok(&good);

	/* Each slow peer trickles a real message 1, one byte every 500 ms. */
	static uint8_t msg[LORIS][2 + CAIRN_HANDSHAKE1_MAX];
	static struct watch w[LORIS];
	struct noise_handshake hs;
	for (int i = 0; i < LORIS; i++)
		(void)make_msg1(r->pub, (uint64_t)time(NULL), msg[i], &hs);
	for (int i = 0; i < LORIS; i++) {
		w[i] = (struct watch){.start_ms = it_mono_ms()};
		w[i].fd = raw_dial(r->port);
	}
	int64_t rtt_us[400];
	size_t pings = 0, sent = 0, open = LORIS;
	int64_t start = it_mono_ms(), next_byte = start;
	while ((open > 0 || pings < PINGS_MIN) && it_mono_ms() - start < 15000) {
		int64_t now = it_mono_ms();
		if (open > 0 && now >= next_byte) {
			for (int i = 0; i < LORIS; i++)
				if (w[i].closed_ms == 0)
					(void)send(w[i].fd, &msg[i][sent], 1,
					           MSG_NOSIGNAL | MSG_DONTWAIT);
			sent++;
			next_byte += 500;
		}
		/* Notice closes without blocking. */
		for (int i = 0; i < LORIS; i++) {
			if (w[i].closed_ms != 0)
				continue;
			uint8_t b[64];
			ssize_t got = recv(w[i].fd, b, sizeof(b), MSG_DONTWAIT);
			if (got > 0) {
				w[i].bytes += (size_t)got;
			} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				w[i].closed_ms = it_mono_ms();
				open--;
			}
		}
		if (pings < sizeof(rtt_us) / sizeof(rtt_us[0])) {
			int64_t t0 = it_mono_us();
			ping_ok(&good);
			rtt_us[pings++] = it_mono_us() - t0;
		}
		it_sleep_ms(40);
	}
	qsort(rtt_us, pings, sizeof(rtt_us[0]), cmp_i64);
	int64_t lo = INT64_MAX, hi = 0;
	for (int i = 0; i < LORIS; i++) {
		assert_int_equal(w[i].bytes, 0);
		if (w[i].closed_ms == 0)
			fail_msg("slow peer %d still open after %lld ms", i,
			         (long long)(it_mono_ms() - w[i].start_ms));
		int64_t after = w[i].closed_ms - w[i].start_ms;
		lo = after < lo ? after : lo;
		hi = after > hi ? after : hi;
		close(w[i].fd);
	}
	printf("hostile: slowloris: %d peers, %zu bytes each sent, closed after %lld..%lld ms "
	       "(deadline %d ms)\n",
	       LORIS, sent, (long long)lo, (long long)hi, HS_TIMEOUT_S * 1000);
	printf("hostile: slowloris: legitimate PING round trip over %zu pings: p50 %.2f ms, "
	       "max %.2f ms\n",
	       pings, rtt_us[pings / 2] / 1000.0, rtt_us[pings - 1] / 1000.0);
	assert_true(lo >= HS_TIMEOUT_S * 1000 - 200);
	assert_true(hi <= HS_TIMEOUT_S * 1000 + 4000);
	assert_true(rtt_us[pings - 1] < 500 * 1000);
	tclient_close(&good);
}

/* ---- the random mix, with intake mailboxes ------------------------------------------------- */

/* Index of the attack generator called NAME; fails the test if there is none. */
static unsigned generator(const char *name)
{
	for (unsigned g = 0; attack_generator_name(g) != NULL; g++)
		if (strcmp(attack_generator_name(g), name) == 0)
			return g;
	fail_msg("no attack generator '%s'", name);
	return 0;
}

/*
 * One attacker runs the attack driver's random mix, every command right and wrong, INTAKE
 * and SEND_WORK among them (garbage work, valid work to unknown mailboxes, reused work, the
 * most bits there are, bits out of range) and bundle items (garbage, expired, valid), while a
 * legitimate client pings. The relay must
 * answer each as 5.10 says (some `work`, some `bad request`, some OK), stay up, and keep the
 * legitimate client's round trips short.
 */
static void test_mix_with_intake(void **state)
{
	struct relayproc *r = *state;
	struct attack_stats st;
	memset(&st, 0, sizeof(st));
	struct attack_config cfg = {.port = r->port,
	                            .relay_pub = r->pub,
	                            .pattern = ATTACK_MIX,
	                            .seed = 13,
	                            .duration_ms = under_wrapper() ? 8000 : 4000};
	struct tclient good;
	assert_int_equal(tclient_connect(&good, r->port, r->pub), 0);
	assert_int_equal(attack_run(&cfg, &st), 0);
	int64_t t0 = it_mono_us();
	ping_ok(&good);
	int64_t rtt = it_mono_us() - t0;
	tclient_close(&good);
	printf("hostile: mix: %llu commands, %llu replies, %llu OK, %llu work, %llu bad request, "
	       "%llu denied, %llu quota; PING after it %.2f ms\n",
	       (unsigned long long)st.commands, (unsigned long long)st.replies,
	       (unsigned long long)st.ok, (unsigned long long)st.errors[-CAIRN_EWORK],
	       (unsigned long long)st.errors[-CAIRN_EBADREQ],
	       (unsigned long long)st.errors[-CAIRN_EDENIED],
	       (unsigned long long)st.errors[-CAIRN_EQUOTA], rtt / 1000.0);
	printf("hostile: mix: %llu connections, %llu closed by the relay; errors by code:",
	       (unsigned long long)st.connections, (unsigned long long)st.closed_by_relay);
	for (int k = 0; k < 16; k++)
		if (st.errors[k] > 0)
			printf(" %d:%llu", k, (unsigned long long)st.errors[k]);
	printf("\n");
	static const char *const intake_gens[] = {"INTAKE",
	                                          "INTAKE bits out of range",
	                                          "SEND_WORK valid",
	                                          "SEND_WORK garbage work",
	                                          "SEND_WORK no such mailbox",
	                                          "SEND_WORK reused work",
	                                          "BUNDLED garbage",
	                                          "BUNDLED expired",
	                                          "BUNDLED valid",
	                                          "POLICY",
	                                          "POLICY bad have"};
	for (size_t i = 0; i < sizeof(intake_gens) / sizeof(intake_gens[0]); i++) {
		uint64_t n = st.per_generator[generator(intake_gens[i])];
		printf("hostile: mix: %-26s %llu\n", intake_gens[i], (unsigned long long)n);
		assert_true(n > 0);
	}
	/* A relay without intake mailboxes answers `unknown command` and never `work`. */
	assert_true(st.errors[-CAIRN_EWORK] > 0);
	assert_true(st.errors[-CAIRN_EBADREQ] > 0);
	/* Bundle items (5.12): the expired ones refused as such. */
	assert_true(st.errors[-CAIRN_EEXPIRED] > 0);
	assert_true(st.ok > 0);
	assert_true(rtt < 2 * 1000 * 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_garbage_handshake),
	    cmocka_unit_test(test_replay_and_stale_timestamps),
	    cmocka_unit_test(test_bad_frames_after_handshake),
	    cmocka_unit_test(test_slowloris),
	    cmocka_unit_test(test_mix_with_intake),
	};
	return cmocka_run_group_tests(tests, setup, it_relay_teardown);
}
