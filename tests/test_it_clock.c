/* SPDX-License-Identifier: MIT */
/*
 * The real relay binary under real clock jumps (issue 16 part 4): cairn-relay runs with
 * libfaketime preloaded (Debian's faketime package), its offset in a file read on every clock
 * call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1), so the test moves the wall clock of the
 * running process; the monotonic clock libuv's timers and deadlines use is left alone
 * (FAKETIME_DONT_FAKE_MONOTONIC=1). With a TTL of 600 s:
 *   - a day forward: a client whose clock is the old time is refused by the handshake window,
 *     one whose clock is the new time gets in; the mailbox idle since before the jump expires
 *     with the next pass, one made after it does not;
 *   - a day back, then put right: a mailbox and an envelope made while the clock was behind
 *     are there once it is right again (they would have expired at once if dated by the
 *     clock that was behind).
 * The same behaviours in-process, with the edges exact: test_relay_clock, test_relay_intake,
 * test_proto_handshake.
 */
#define _GNU_SOURCE /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "it_common.h"

#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
#define DAY          86400

struct world {
	struct relayproc r;
	char offset_file[320];
};

/* Sets the relay's clock to the real one plus OFFSET (libfaketime's syntax: "+1d", "-1d",
 * "+0"), written whole and renamed into place so that the relay never reads half of it. */
static void set_offset(struct world *w, const char *offset)
{
	char tmp[340];
	snprintf(tmp, sizeof(tmp), "%s.tmp", w->offset_file);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", offset);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, w->offset_file), 0);
}

static int setup(void **state)
{
	if (access(FAKETIME_LIB, R_OK) != 0) {
		fprintf(stderr,
		        "test_it_clock: %s is missing: install Debian's faketime package "
		        "(scripts/install-deps.sh)\n",
		        FAKETIME_LIB);
		return -1;
	}
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL || relayproc_init(&w->r, "ttl = 600\n") != 0)
		return -1;
	snprintf(w->offset_file, sizeof(w->offset_file), "%s/faketime", w->r.dir);
	set_offset(w, "+0");
	/* For the relay only: set around its start, then taken back. An ASan build checks that
	 * its runtime comes first among the libraries; the preload comes before it. */
	char *asan = getenv("ASAN_OPTIONS");
	char *saved = asan != NULL ? strdup(asan) : NULL;
	char asan_opts[512];
	snprintf(asan_opts, sizeof(asan_opts), "%s%sverify_asan_link_order=0",
	         asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", asan_opts, 1);
	setenv("LD_PRELOAD", FAKETIME_LIB, 1);
	setenv("FAKETIME_TIMESTAMP_FILE", w->offset_file, 1);
	setenv("FAKETIME_NO_CACHE", "1", 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	int rc = relayproc_start(&w->r);
	unsetenv("LD_PRELOAD");
	unsetenv("FAKETIME_TIMESTAMP_FILE");
	unsetenv("FAKETIME_NO_CACHE");
	unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
	if (saved != NULL)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	tclient_clock_offset = 0;
	*state = w;
	return rc;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->r);
	free(w);
	tclient_clock_offset = 0;
	return 0;
}

/* Connects with the handshake dated by the real clock plus OFFSET seconds; 0 or an error. */
static int connect_at(struct world *w, struct tclient *c, int64_t offset)
{
	tclient_clock_offset = offset;
	int rc = tclient_connect(c, w->r.port, w->r.pub);
	tclient_clock_offset = 0;
	if (rc != 0)
		tclient_close(c);
	return rc;
}

/* Connects at OFFSET, retrying for up to 30 s (the relay reads the new offset at its next
 * clock call; a refused handshake waits for the client's deadline). */
static void connect_soon(struct world *w, struct tclient *c, int64_t offset)
{
	int64_t deadline = it_mono_ms() + 30000;
	while (connect_at(w, c, offset) != 0) {
		assert_true(it_mono_ms() < deadline);
		it_sleep_ms(100);
	}
}

/* AUTH for O on a new connection at OFFSET: 0 while the mailbox exists, else its error. */
static int auth_fresh(struct world *w, const struct owner *o, int64_t offset)
{
	struct tclient c;
	connect_soon(w, &c, offset);
	int rc = tclient_auth(&c, o->rid, o->sk);
	tclient_close(&c);
	return rc;
}

/* Makes a mailbox for O at OFFSET and stores TEXT in it; leaves C connected (the owner's). */
static void mailbox_with(struct world *w, struct tclient *c, int64_t offset, struct owner *o,
                         const char *text)
{
	connect_soon(w, c, offset);
	assert_int_equal(tclient_create(c, o->rid, o->sid, o->pk, o->sk), 0);
	assert_int_equal(it_send(c, o->sid, NULL, text, strlen(text)), 0);
}

/* Waits three passes of the relay's once-a-second tick (to show something did NOT happen),
 * then checks O's mailbox is there with TEXT, on C (connected at the relay's time). */
static void still_there(struct tclient *c, const struct owner *o, const char *text)
{
	it_sleep_ms(3000);
	assert_int_equal(tclient_auth(c, o->rid, o->sk), 0);
	assert_int_equal(it_simple(c, CAIRN_CMD_SUBSCRIBE, o->rid), 0);
	struct cairn_msg env;
	assert_int_equal(tclient_recv(c, &env, 10000), 0);
	assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
	assert_int_equal(env.envelope_len, strlen(text));
	assert_memory_equal(env.envelope, text, env.envelope_len);
	tclient_close(c);
}

static void test_forward_day(void **state)
{
	struct world *w = *state;
	struct tclient c;
	struct owner old, fresh;
	mailbox_with(w, &c, 0, &old, "before");
	tclient_close(&c);

	set_offset(w, "+1d");
	/* The window follows the relay's clock: the old time is refused, the new one gets in. */
	connect_soon(w, &c, DAY);
	tclient_close(&c);
	assert_int_not_equal(connect_at(w, &c, 0), 0);

	/* The mailbox idle since before the jump is past the TTL by the new time: the next
	 * once-a-second pass removes it. */
	int64_t deadline = it_mono_ms() + 30000;
	while (auth_fresh(w, &old, DAY) == 0) {
		assert_true(it_mono_ms() < deadline);
		it_sleep_ms(200);
	}
	assert_int_equal(auth_fresh(w, &old, DAY), CAIRN_EDENIED);

	/* One made after the jump stays, with its envelope, over a few passes. */
	mailbox_with(w, &c, DAY, &fresh, "after");
	still_there(&c, &fresh, "after");
}

static void test_back_day_then_right(void **state)
{
	struct world *w = *state;
	struct tclient c;
	struct owner o, serving;
	/* A relay that has served at the right time; that mailbox deleted, so none made at the
	 * right time stands in front of the next in the relay's idle order. */
	mailbox_with(w, &c, 0, &serving, "right");
	assert_int_equal(it_simple(&c, CAIRN_CMD_DELETE, serving.rid), 0);
	tclient_close(&c);

	set_offset(w, "-1d");
	mailbox_with(w, &c, -DAY, &o, "behind");
	tclient_close(&c);

	set_offset(w, "+0"); /* put right */
	connect_soon(w, &c, 0);
	still_there(&c, &o, "behind");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_forward_day, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_back_day_then_right, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
