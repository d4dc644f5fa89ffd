/* SPDX-License-Identifier: MIT */
/*
 * Integration: power cuts (issue 16). The relay's data directory is on cutfs
 * (tests/tools/cutfs.c), which discards on command everything not made durable by an fsync.
 * A sender streams numbered envelopes with many in flight; at a random moment the relay is
 * SIGKILLed (a machine that loses power runs nothing after it), the power is cut, the store
 * must pass SQLite's integrity check, and the relay must start on it and serve; CUTS times.
 * Then the owner drains the mailbox: every envelope the relay answered OK is there, delivered
 * once, intact, in order. Envelopes unanswered at a cut may or may not be there.
 *
 * The same loop runs against cairn-relay-weaksync, the relay built with SQLite's
 * synchronous=NORMAL (a WAL commit is then not fsynced before OK): there the test must see
 * acknowledged envelopes lost, or it would not be known to bite.
 *
 * Skips only where the kernel refuses FUSE. CAIRN_POWERCUT_CUTS=N runs N cuts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "cutfsproc.h"
#include "it_common.h"

#define CUTS      50 /* the figure */
#define IN_FLIGHT 32 /* sends outstanding at once */
#define MAX_SEQ   1000000

enum { UNSENT, UNKNOWN, ACKED, REFUSED };

/* Envelope SEQ: seq (u32 LE) || filler derived from seq || BLAKE2b-128 of what precedes. */
static size_t make_body(uint32_t seq, uint8_t *out)
{
	uint8_t seed[crypto_stream_chacha20_KEYBYTES] = {0},
	        nonce[crypto_stream_chacha20_NONCEBYTES];
	memcpy(seed, &seq, sizeof(seq));
	memset(nonce, 0x3c, sizeof(nonce));
	size_t filler = 16 + (seq * 2654435761u) % 2000;
	memcpy(out, &seq, 4);
	crypto_stream_chacha20(out + 4, filler, nonce, seed);
	crypto_generichash(out + 4 + filler, 16, out, 4 + filler, NULL, 0);
	return 4 + filler + 16;
}

/* The sequence number of a delivered body, or -1 if it is not one make_body() wrote. */
static long check_body(const uint8_t *body, size_t len)
{
	static uint8_t want[4 + 2016 + 16];
	uint32_t seq;
	if (len < 4 + 16 + 16 || len > sizeof(want))
		return -1;
	memcpy(&seq, body, 4);
	if (seq >= MAX_SEQ || make_body(seq, want) != len || memcmp(want, body, len) != 0)
		return -1;
	return (long)seq;
}

struct cut_world {
	struct relayproc r;
	struct cutfsproc fs;
	char backing[300], data[300];
	struct owner o;
	uint8_t status[MAX_SEQ];
	uint32_t next_seq;
	unsigned cuts, acked, refused, unknown;
};

/*
 * A relay whose data directory is on cutfs, run from BIN (NULL: the real cairn-relay).
 * Returns 0, 1 if the kernel refuses FUSE (the caller skips), -1 on failure.
 */
static int world_start(struct cut_world *s, const char *bin)
{
	memset(s, 0, sizeof(*s));
	if (relayproc_init(&s->r, "mailbox_max_envelopes = 10000000\nmailbox_max_bytes = 64G\n") !=
	    0)
		return -1;
	s->r.bin = bin;
	/* `cairn-relay init` made the data directory; it becomes the backing store, mounted
	 * where it was. What init wrote counts as synced, as after a clean shutdown. */
	snprintf(s->data, sizeof(s->data), "%s/data", s->r.dir);
	snprintf(s->backing, sizeof(s->backing), "%s/backing", s->r.dir);
	if (rename(s->data, s->backing) != 0 || mkdir(s->data, 0700) != 0)
		return -1;
	int rc = cutfsproc_mount(&s->fs, s->backing, s->data);
	if (rc != 0)
		return rc;
	return relayproc_start(&s->r);
}

static void world_stop(struct cut_world *s)
{
	if (s->r.pid > 0)
		relayproc_stop(&s->r, SIGKILL);
	cutfsproc_unmount(&s->fs);
	relayproc_cleanup(&s->r);
}

/* SQLite's own check of the store, read-only, with the relay stopped. */
static void check_integrity(const struct cut_world *s)
{
	char uri[400];
	snprintf(uri, sizeof(uri), "file:%s/relay.db?mode=ro", s->data);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		fail_msg("cut %u: cannot check the store: %s", s->cuts, sqlite3_errmsg(db));
	const char *verdict = (const char *)sqlite3_column_text(st, 0);
	if (verdict == NULL || strcmp(verdict, "ok") != 0)
		fail_msg("cut %u: integrity_check: %s", s->cuts, verdict ? verdict : "(null)");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void record_reply(struct cut_world *s, const struct cairn_msg *reply, unsigned *out)
{
	uint32_t seq = reply->request_id - 1;
	assert_true(seq < s->next_seq && s->status[seq] == UNKNOWN);
	if (reply->type == CAIRN_REPLY_OK) {
		s->status[seq] = ACKED;
		s->acked++;
	} else {
		assert_int_equal(reply->type, CAIRN_REPLY_ERROR);
		s->status[seq] = REFUSED;
		s->refused++;
	}
	(*out)--;
}

/*
 * Streams envelopes until CUT_AT (monotonic ms), then SIGKILLs the relay and cuts the power.
 * An OK read before the kill is an acknowledgement like any other; what is still on the way
 * after it is read too (the relay answered it before dying), the cut comes after.
 */
static void stream_then_cut(struct cut_world *s, int64_t cut_at)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	static uint8_t body[4 + 2016 + 16];
	unsigned outstanding = 0;
	while (it_mono_ms() < cut_at) {
		if (outstanding < IN_FLIGHT) {
			assert_true(s->next_seq < MAX_SEQ);
			uint32_t seq = s->next_seq++;
			size_t len = make_body(seq, body);
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = seq + 1,
			                      .sender_id = s->o.sid,
			                      .envelope = body,
			                      .envelope_len = len};
			s->status[seq] = UNKNOWN;
			assert_int_equal(tclient_send(&c, &m), 0);
			outstanding++;
			continue;
		}
		int64_t left = cut_at - it_mono_ms();
		struct cairn_msg reply;
		int rc = tclient_recv(&c, &reply, left < 1 ? 0 : left > 5 ? 5 : (int)left);
		if (rc == CAIRN_EIO && !tclient_peer_closed(&c))
			continue;
		assert_int_equal(rc, 0);
		record_reply(s, &reply, &outstanding);
	}
	assert_int_equal(relayproc_stop(&s->r, SIGKILL), 128 + SIGKILL);
	struct cairn_msg reply;
	while (outstanding > 0 && tclient_recv(&c, &reply, 200) == 0)
		record_reply(s, &reply, &outstanding);
	s->unknown += outstanding;
	tclient_close(&c);
	if (cutfsproc_cut(&s->fs) != 0)
		fail_msg("cut %u: cutfs could not undo everything (see %s)", s->cuts + 1,
		         s->fs.log);
	s->cuts++;
}

/*
 * The owner drains the mailbox and acknowledges each envelope. Fails on a corrupt body, a
 * repeat, an order broken or an envelope never sent; returns how many acknowledged envelopes
 * are missing.
 */
static unsigned drain_and_count_lost(struct cut_world *s)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_auth(&c, s->o.rid, s->o.sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, s->o.rid), 0);
	static uint8_t seen[MAX_SEQ];
	memset(seen, 0, sizeof(seen));
	uint64_t last_id = 0;
	long last_seq = -1;
	unsigned delivered = 0, need = s->acked;
	uint32_t ack_rid = 0x40000000;
	for (;;) {
		/* Until every acknowledged one is in, a generous wait; then stragglers only. */
		struct cairn_msg env;
		int rc = tclient_recv(&c, &env, need > 0 ? 10000 : 500);
		if (rc == CAIRN_EIO && !tclient_peer_closed(&c))
			break;
		assert_int_equal(rc, 0);
		if (env.type == CAIRN_REPLY_OK && env.request_id >= 0x40000000)
			continue; /* an ACK's answer */
		if (env.type != CAIRN_REPLY_ENVELOPE)
			fail_msg("drain: %s for request %u", cairn_msg_type_name(env.type),
			         env.request_id);
		long seq = check_body(env.envelope, env.envelope_len);
		if (seq < 0)
			fail_msg("envelope %llu: corrupted body (%zu bytes)",
			         (unsigned long long)env.envelope_id, env.envelope_len);
		if (env.envelope_id <= last_id)
			fail_msg("envelope id %llu after %llu: out of order or repeated",
			         (unsigned long long)env.envelope_id, (unsigned long long)last_id);
		last_id = env.envelope_id;
		if (seen[seq])
			fail_msg("envelope #%ld delivered twice", seq);
		seen[seq] = 1;
		if (seq <= last_seq)
			fail_msg("envelope #%ld delivered after #%ld: not in send order", seq,
			         last_seq);
		last_seq = seq;
		if (s->status[seq] == UNSENT || s->status[seq] == REFUSED)
			fail_msg("envelope #%ld delivered but never accepted", seq);
		if (s->status[seq] == ACKED)
			need--;
		delivered++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .recipient_id = s->o.rid,
		                        .envelope_id = env.envelope_id,
		                        .request_id = ack_rid++};
		assert_int_equal(tclient_send(&c, &ack), 0);
	}
	tclient_close(&c);
	unsigned lost = 0;
	for (uint32_t seq = 0; seq < s->next_seq; seq++)
		if (s->status[seq] == ACKED && !seen[seq]) {
			if (lost < 5)
				printf("powercut: acknowledged envelope #%u is missing\n", seq);
			lost++;
		}
	printf("powercut: drained %u envelopes, %u acknowledged ones missing\n", delivered, lost);
	return lost;
}

/* CUTS cuts at random moments under load; returns how many acknowledged envelopes are lost. */
static unsigned cut_loop(struct cut_world *s, const char *label)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	assert_int_equal(tclient_create(&c, s->o.rid, s->o.sid, s->o.pk, s->o.sk), 0);
	tclient_close(&c);
	/* The weakened relay could lose the mailbox itself at the first cut, and every send
	 * after it would be refused: a clean restart (a checkpoint) makes it durable there, so
	 * that what the test counts is lost envelopes. */
	if (s->r.bin != NULL) {
		assert_int_equal(relayproc_stop(&s->r, SIGTERM), 0);
		assert_int_equal(relayproc_start(&s->r), 0);
	}
	int cuts = CUTS;
	if (getenv("CAIRN_POWERCUT_CUTS") != NULL)
		cuts = atoi(getenv("CAIRN_POWERCUT_CUTS"));
	int64_t start = it_mono_ms();
	for (int round = 0; round < cuts; round++) {
		/* A random moment: reading, committing, checkpointing or answering; now and then
		 * just after the start, while the relay is still opening its store. */
		int64_t delay = round % 7 == 6 ? (int64_t)randombytes_uniform(30)
		                               : 80 + (int64_t)randombytes_uniform(500);
		stream_then_cut(s, it_mono_ms() + delay);
		check_integrity(s);
		if (relayproc_start(&s->r) != 0)
			fail_msg("%s: cut %u: the relay did not start after the power cut", label,
			         s->cuts);
	}
	unsigned lost = drain_and_count_lost(s);
	printf("powercut: %s: %u cuts in %lld ms: %u envelopes sent, %u acknowledged, %u "
	       "refused, %u unanswered at a cut, %u acknowledged lost\n",
	       label, s->cuts, (long long)(it_mono_ms() - start), s->next_seq, s->acked, s->refused,
	       s->unknown, lost);
	return lost;
}

static struct cut_world world;

static void need_world(const char *bin)
{
	int rc = world_start(&world, bin);
	if (rc == 1) {
		world_stop(&world);
		fprintf(stderr, "skipped: the kernel refuses FUSE mounts here\n");
		skip();
	}
	if (rc != 0) {
		world_stop(&world);
		fail_msg("cannot start the relay on cutfs");
	}
}

static int teardown(void **state)
{
	(void)state;
	world_stop(&world);
	return 0;
}

static void test_no_acknowledged_loss(void **state)
{
	(void)state;
	need_world(NULL);
	unsigned lost = cut_loop(&world, "cairn-relay");
	assert_int_equal(world.refused, 0);
	assert_true(world.acked > 0);
	assert_int_equal(lost, 0);
}

static void test_weak_sync_is_caught(void **state)
{
	(void)state;
	need_world(CAIRN_WEAK_RELAY_BIN);
	unsigned lost = cut_loop(&world, "cairn-relay-weaksync");
	if (lost == 0)
		fail_msg("the relay without fsync before OK lost nothing in %u cuts: the test does "
		         "not bite",
		         world.cuts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_no_acknowledged_loss, teardown),
	    cmocka_unit_test_teardown(test_weak_sync_is_caught, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
