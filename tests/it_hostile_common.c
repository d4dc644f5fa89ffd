/* SPDX-License-Identifier: MIT */
/*
 * What the test_it_hostile programs share (it_hostile_common.h): the relays they start (the
 * shared one, one of a test's own, one with few connections), the memory check, and raw
 * connections and handshake messages.
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

/* Under a wrapper (valgrind: make test-valgrind) the relay's RSS is the tool's, and the
 * relay is many times slower: memory bounds are not checked and settling waits are longer. */
bool under_wrapper(void)
{
	return test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0;
}

/* Fails if the relay's RSS grew by more than BOUND_KB (plain builds). */
void check_growth(const char *what, long grew_kb, long bound_kb)
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
	static char text[512];
	/* A published policy (PROTOCOL.md 5.13), so that the mix's POLICY commands get its
	 * signed body, not nil (a config line holds at most 197 characters). */
	snprintf(text, sizeof(text),
	         "handshake_timeout = %d\nidle_timeout = %d\noutput_buffer_max = %d\n"
	         "delivery_window = %d\n[policy]\nstatement = %0*d\n",
	         HS_TIMEOUT_S, IDLE_S, OUTPUT_MAX, WINDOW, 150, 0);
	return text;
}

/* The relay most tests share. */
int setup(void **state)
{
	static struct relayproc r;
	return it_relay_setup(state, &r, limits());
}

/* A relay of the test's own (a fresh heap for memory figures), stopped even when the test
 * fails. */
int setup_own(void **state)
{
	static struct relayproc r;
	return it_relay_setup(state, &r, limits());
}

/* Few connections, and a long handshake deadline so that a close at once can only be the
 * connection limit. */
int setup_limited(void **state)
{
	static struct relayproc r;
	char text[128];
	snprintf(text, sizeof(text), "max_connections = %d\nhandshake_timeout = 20\n", LIMITED);
	return it_relay_setup(state, &r, text);
}

/* A TCP connection with no handshake; the caller owns the fd. */
int raw_dial(uint16_t port)
{
	struct tclient t;
	assert_int_equal(tclient_dial(&t, port), 0);
	int fd = t.fd;
	t.fd = -1;
	tclient_close(&t);
	return fd;
}

/* Message 1 framed for the wire, with timestamp NOW; returns its length. */
size_t make_msg1(const uint8_t pub[32], uint64_t now, uint8_t out[2 + CAIRN_HANDSHAKE1_MAX],
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

void write_all(int fd, const void *buf, size_t len)
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

void ping_ok(struct tclient *c)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING}, reply;
	assert_int_equal(tclient_call(c, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
}
/* ---- silence, then a close at the deadline -------------------------------------------- */

/*
 * Waits until the relay has closed every connection of W or TIMEOUT_MS passes, counting what
 * it sends. With JUNK, keeps writing random bytes meanwhile: a failed handshake must read and
 * discard them, and still close at the deadline.
 */
void watch_until_closed(struct watch *w, size_t n, int timeout_ms, bool junk)
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
