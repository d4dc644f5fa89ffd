/* SPDX-License-Identifier: MIT */
/*
 * Integration: hostile peers against the real cairn-relay. Garbage and replayed handshakes
 * (silence, then a close at the handshake deadline, like a peer that sends nothing), broken
 * frames after a good handshake, slowloris connections, peers that never read, the
 * connection limit, and the memory and file descriptors that 1000 idle connections cost.
 * Measured figures are printed so that they show in the test log.
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

/* The shared relay's limits: short deadlines so that the test runs in seconds. */
#define HS_TIMEOUT_S 2
#define IDLE_S       12
#define OUTPUT_MAX   131072
#define WINDOW       256

/*
 * Under AddressSanitizer (the relay is then built with it too) every allocation carries
 * redzones and freed memory waits in a quarantine of up to 256 MiB, so RSS follows the bytes
 * that went through, not what is held: memory bounds are checked in the plain build only,
 * and the figures are printed either way.
 */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Under a wrapper (valgrind: make test-valgrind) the relay's RSS is the tool's, and the
 * relay is many times slower: memory bounds are not checked and settling waits are longer. */
static bool under_wrapper(void)
{
	return test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0;
}

/* Fails if the relay's RSS grew by more than BOUND_KB (plain builds). */
static void check_growth(const char *what, long grew_kb, long bound_kb)
{
	if (UNDER_ASAN || under_wrapper()) {
		printf("hostile: %s: memory bound (%ld KiB) not checked under %s\n", what, bound_kb,
		       UNDER_ASAN ? "AddressSanitizer" : "a wrapper");
		return;
	}
	if (grew_kb > bound_kb)
		fail_msg("%s: relay RSS grew by %ld KiB (bound %ld KiB)", what, grew_kb, bound_kb);
}

/* The limits every relay of this file runs with. The window of 256 x 16 KiB is more than the
 * kernel's socket buffers take from a peer that does not read, so output backpressure is
 * reached before the window is full. */
static const char *limits(void)
{
	static char text[256];
	snprintf(text, sizeof(text),
	         "handshake_timeout = %d\nidle_timeout = %d\noutput_buffer_max = %d\n"
	         "delivery_window = %d\n",
	         HS_TIMEOUT_S, IDLE_S, OUTPUT_MAX, WINDOW);
	return text;
}

static int start_relay(struct relayproc *r, const char *limit_lines, void **state)
{
	if (relayproc_init(r, limit_lines) != 0 || relayproc_start(r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", r->dir);
		relayproc_cleanup(r);
		*state = NULL;
		return -1;
	}
	*state = r;
	return 0;
}

/* The relay most tests share. */
static int setup(void **state)
{
	static struct relayproc r;
	return start_relay(&r, limits(), state);
}

/* A relay of the test's own (a fresh heap for memory figures), stopped even when the test
 * fails. */
static int setup_own(void **state)
{
	static struct relayproc r;
	return start_relay(&r, limits(), state);
}

#define LIMITED 8

/* Few connections, and a long handshake deadline so that a close at once can only be the
 * connection limit. */
static int setup_limited(void **state)
{
	static struct relayproc r;
	char text[128];
	snprintf(text, sizeof(text), "max_connections = %d\nhandshake_timeout = 20\n", LIMITED);
	return start_relay(&r, text, state);
}

static int teardown(void **state)
{
	struct relayproc *r = *state;
	if (r == NULL)
		return -1;
	/* A clean exit also means no sanitizer report in the relay. Clean up either way. */
	int rc = relayproc_stop(r, SIGTERM);
	relayproc_cleanup(r);
	assert_int_equal(rc, 0);
	return 0;
}

/* A TCP connection with no handshake; the caller owns the fd. */
static int raw_dial(uint16_t port)
{
	struct tclient t;
	assert_int_equal(tclient_dial(&t, port), 0);
	int fd = t.fd;
	t.fd = -1;
	tclient_close(&t);
	return fd;
}

/* Message 1 framed for the wire, with timestamp NOW; returns its length. */
static size_t make_msg1(const uint8_t pub[32], uint64_t now, uint8_t out[2 + CAIRN_HANDSHAKE1_MAX],
                        struct noise_handshake *hs)
{
	size_t len = 0;
	assert_int_equal(cairn_handshake_client_start(hs, pub, NULL, now,
	                                              randombytes_uniform(CAIRN_HELLO_PAD_MAX + 1),
	                                              out + 2, CAIRN_HANDSHAKE1_MAX, &len),
	                 0);
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	return len + 2;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void ping_ok(struct tclient *c)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING}, reply;
	assert_int_equal(tclient_call(c, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
}

/* ---- silence, then a close at the deadline -------------------------------------------- */

struct watch {
	int fd;
	const char *what;
	int64_t start_ms;  /* just before connect */
	int64_t closed_ms; /* 0 while open */
	size_t bytes;      /* received from the relay */
};

/*
 * Waits until the relay has closed every connection of W or TIMEOUT_MS passes, counting what
 * it sends. With JUNK, keeps writing random bytes meanwhile: a failed handshake must read and
 * discard them, and still close at the deadline.
 */
static void watch_until_closed(struct watch *w, size_t n, int timeout_ms, bool junk)
{
	int64_t end = it_mono_ms() + timeout_ms, next_junk = 0;
	for (;;) {
		struct pollfd pfd[64];
		size_t idx[64], open = 0;
		assert_true(n <= 64);
		for (size_t i = 0; i < n; i++) {
			if (w[i].closed_ms != 0)
				continue;
			pfd[open] = (struct pollfd){.fd = w[i].fd, .events = POLLIN};
			idx[open++] = i;
		}
		int64_t now = it_mono_ms();
		if (open == 0 || now >= end)
			return;
		if (junk && now >= next_junk) {
			uint8_t noise[16];
			randombytes_buf(noise, sizeof(noise));
			for (size_t k = 0; k < open; k++)
				(void)send(pfd[k].fd, noise, sizeof(noise),
				           MSG_NOSIGNAL | MSG_DONTWAIT);
			next_junk = now + 200;
		}
		if (poll(pfd, open, 50) <= 0)
			continue;
		for (size_t k = 0; k < open; k++) {
			if (pfd[k].revents == 0)
				continue;
			struct watch *x = &w[idx[k]];
			uint8_t buf[4096];
			ssize_t got = recv(x->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (got > 0)
				x->bytes += (size_t)got;
			else if (got == 0 || (errno != EAGAIN && errno != EINTR))
				x->closed_ms = it_mono_ms();
		}
	}
}

/* Every watched connection got no byte and was closed at the handshake deadline. */
static void check_silent_close(struct watch *w, size_t n)
{
	int64_t lo = HS_TIMEOUT_S * 1000 - 200, hi = HS_TIMEOUT_S * 1000 + 3000;
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
	    cmocka_unit_test(test_garbage_handshake),
	    cmocka_unit_test(test_replay_and_stale_timestamps),
	    cmocka_unit_test(test_bad_frames_after_handshake),
	    cmocka_unit_test(test_slowloris),
	    cmocka_unit_test_setup_teardown(test_subscriber_never_reads, setup_own, teardown),
	    cmocka_unit_test_setup_teardown(test_backlog_subscriber_never_reads, setup_own,
	                                    teardown),
	    cmocka_unit_test(test_pinger_never_reads),
	    cmocka_unit_test_setup_teardown(test_max_connections, setup_limited, teardown),
	    cmocka_unit_test(test_idle_connections),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
