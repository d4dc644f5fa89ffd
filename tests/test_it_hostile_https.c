/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers on the relay's HTTPS listener (PROTOCOL.md 7.2): connections that never finish
 * their request head count toward max_connections and are the first evicted for a newcomer,
 * exactly like TCP connections that never finish a handshake; and a peer that floods pings
 * without reading its pongs costs the relay no more than its output limit.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "it_common.h"
#include "it_hostile_common.h"
#include "relayproc.h"
#include "tclient.h"
#include "wsclient.h"

#define PATH "k3Jx9-wq_Tn2LmA7pQe0Vg"

static struct relayproc relay;
static uint16_t https_port;

static int setup_https(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	char limits[256];
	snprintf(limits, sizeof(limits),
	         "max_connections = %d\nhandshake_timeout = 30\noutput_buffer_max = %d\n", LIMITED,
	         OUTPUT_MAX);
	return relayproc_start_https(&relay, limits, PATH, NULL, &https_port);
}

static int teardown_https(void **state)
{
	(void)state;
	relayproc_stop(&relay, SIGTERM);
	relayproc_cleanup(&relay);
	return 0;
}

/* A full relay of half-sent heads still admits a client: the oldest head goes. */
static void test_heads_are_evicted(void **state)
{
	(void)state;
	static struct wsc w[LIMITED];
	for (int i = 0; i < LIMITED; i++) {
		assert_int_equal(wsc_dial(&w[i], https_port), 0);
		assert_int_equal(wsc_write(&w[i], "GET /", 5), 0);
	}
	/* The relay has taken them all (it answers nothing, so wait for it by time). */
	it_sleep_ms(500);
	struct tclient c;
	int rc = -1;
	for (int tries = 0; tries < 20 && rc != 0; tries++) {
		rc = tclient_connect(&c, relay.port, relay.pub);
		if (rc != 0)
			tclient_close(&c);
	}
	assert_int_equal(rc, 0);
	ping_ok(&c);
	/* The first head was closed to make room, without an answer. */
	char head[64];
	assert_int_equal(wsc_read_response(&w[0], head, sizeof(head), 20000), 0);
	assert_int_equal(w[0].in_len, 0);
	tclient_close(&c);
	for (int i = 0; i < LIMITED; i++)
		wsc_close(&w[i]);
}

/* Pings without reading the pongs: the relay stops reading at its output limit; its memory
 * does not follow the flood. */
static void test_ping_flood(void **state)
{
	(void)state;
	static struct wsc w;
	assert_int_equal(wsc_dial(&w, https_port), 0);
	assert_int_equal(wsc_upgrade(&w, PATH, "a"), 0);
	int sz = 4096;
	setsockopt(w.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	long rss0 = relayproc_rss_kb(&relay);
	/* 125-byte pings until the relay stops taking them (or 32 MiB went). */
	static uint8_t frame[6 + 125];
	frame[0] = 0x89;
	frame[1] = 0x80 | 125;
	size_t sent = 0;
	bool stopped = false; /* the relay stopped taking pings for a whole second */
	int64_t start = it_mono_ms();
	while (sent < (32u << 20) && it_mono_ms() - start < 120000) {
		ssize_t n = send(w.fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Give the relay a moment; stop once it has stopped reading for a while. */
			int64_t blocked = it_mono_ms();
			bool moved = false;
			while (it_mono_ms() - blocked < 1000 && !moved) {
				it_sleep_ms(20);
				moved = send(w.fd, frame, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1;
			}
			if (!moved) {
				stopped = true;
				break;
			}
			/* One byte went: finish that frame. */
			while (send(w.fd, frame + 1, sizeof(frame) - 1, MSG_NOSIGNAL) < 0 &&
			       errno == EINTR)
				;
			sent += sizeof(frame);
			continue;
		}
		if (n <= 0) {
			stopped = true; /* closed (a stalled writer): also within the rules */
			break;
		}
		sent += (size_t)n;
	}
	long grew = relayproc_rss_kb(&relay) - rss0;
	printf("hostile: https ping flood: %zu bytes of pings sent, relay RSS grew %ld KiB\n", sent,
	       grew);
	/* The output limit, twice over for the kernel's and libuv's share, and some slack. */
	check_growth("https ping flood", grew, 4 * OUTPUT_MAX / 1024 + 2048);
	assert_true(stopped);
	wsc_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heads_are_evicted),
	    cmocka_unit_test(test_ping_flood),
	};
	return cmocka_run_group_tests(tests, setup_https, teardown_https);
}
