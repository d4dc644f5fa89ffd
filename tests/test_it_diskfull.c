/* SPDX-License-Identifier: MIT */
/*
 * Integration: the real cairn-relay on a small real file system (an ext4 image on a loop
 * device, smallfs.h) that fills up, once by the relay's own envelopes and once by another
 * process. SENDs get ERROR `full` and nothing else (every OK'd envelope is on disk and is
 * delivered), delivery and ACKs go on (the reserve file's room lets the deletes commit), the
 * log has one line as the disk fills and one as it has room again, the relay accepts SENDs
 * again by itself once the room is back, and its store is whole afterwards (integrity_check,
 * a restart, nothing acknowledged delivered again). Prints the figures RELIABILITY.md quotes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "it_common.h"
#include "smallfs.h"

#define ENV_LEN CAIRN_ENVELOPE_MAX
#define WINDOW  32

enum { NUMS = 12000 }; /* envelope numbers a test may use */

/* The running test's book: the numbers of the envelopes answered OK, in order, and each
 * number's state (0 not expected, 1 expected, 2 delivered). Cleared by start_on_smallfs. */
static uint32_t ok_ids[NUMS];
/* Per envelope number: 0 not OK'd, 1 OK'd and not yet delivered, 2 delivered; 3 delivered and
 * ACKed while the disk had no room left at all, so that its delete may have failed: it may
 * come once more (envelope.c's on_delete_done), counted in seen_again. */
static uint8_t seen[NUMS];
static uint32_t seen_again;

static struct relayproc relay;
static bool relay_running;
static struct smallfs fs;
static char logdir[64];

static int teardown(void **state)
{
	(void)state;
	if (relay_running)
		(void)relayproc_stop(&relay, SIGKILL);
	relay_running = false;
	smallfs_umount(&fs);
	relayproc_cleanup(&relay);
	if (logdir[0] != '\0')
		test_rm_tree(logdir);
	logdir[0] = '\0';
	return 0;
}

/* Starts a relay with LIMITS whose data directory is an ext4 file system of MIB MiB, logging
 * to a file outside it. Skips where the kernel refuses the mount. */
static void start_on_smallfs(const char *limits, unsigned mib)
{
	memset(ok_ids, 0, sizeof(ok_ids));
	memset(seen, 0, sizeof(seen));
	snprintf(logdir, sizeof(logdir), "/tmp/cairn-dflog-XXXXXX");
	assert_non_null(mkdtemp(logdir));
	char text[1024];
	snprintf(text, sizeof(text), "%s[relay]\nlog_file = %s/relay.log\n", limits, logdir);
	assert_int_equal(relayproc_init(&relay, text), 0);
	char data[300], why[256];
	snprintf(data, sizeof(data), "%s/data", relay.dir);
	int rc = smallfs_mount(&fs, data, mib, why, sizeof(why));
	if (rc == 1) {
		fprintf(stderr, "test_it_diskfull: skipped: %s\n", why);
		skip();
	}
	if (rc != 0)
		fail_msg("%s", why);
	assert_int_equal(relayproc_start(&relay), 0);
	relay_running = true;
}

/* How many lines of the relay's log contain NEEDLE. */
static int log_lines(const char *needle)
{
	char path[128], line[1024];
	snprintf(path, sizeof(path), "%s/relay.log", logdir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	int n = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Prints the relay's log (warnings and errors: a few lines), for the record. */
static void print_log(void)
{
	char path[128], line[1024];
	snprintf(path, sizeof(path), "%s/relay.log", logdir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "running as root") == NULL)
			printf("diskfull: log: %s", line);
	fclose(f);
}

/* The body of envelope number I: its number in its first bytes, the rest from it. */
static void body_of(uint32_t i, uint8_t *out, size_t len)
{
	for (size_t k = 0; k < len; k++)
		out[k] = (uint8_t)(i * 31 + k * 7);
	memcpy(out, &i, sizeof(i));
}

struct tally {
	uint32_t ok, full, other;
	uint32_t *ok_ids; /* the numbers of the envelopes answered OK (capacity cap) */
	size_t cap;
};

/* Sends N envelopes numbered FIRST.. to SID, WINDOW at a time, and tallies the answers. */
static void send_some(struct tclient *c, const uint8_t sid[24], uint32_t first, uint32_t n,
                      size_t len, struct tally *t)
{
	static uint8_t body[ENV_LEN];
	for (uint32_t done = 0; done < n;) {
		uint32_t w = n - done < WINDOW ? n - done : WINDOW;
		uint32_t base = c->next_id;
		for (uint32_t i = 0; i < w; i++) {
			/* The body is copied into the batch at once. */
			body_of(first + done + i, body, len);
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = c->next_id++,
			                      .sender_id = sid,
			                      .envelope = body,
			                      .envelope_len = len};
			assert_int_equal(tclient_queue(c, &m), 0);
		}
		assert_int_equal(tclient_flush(c), 0);
		for (uint32_t i = 0; i < w; i++) {
			struct cairn_msg m;
			assert_int_equal(tclient_recv(c, &m, 30000), 0);
			uint32_t num = first + done + (m.request_id - base);
			if (m.type == CAIRN_REPLY_OK) {
				if (t->ok < t->cap)
					t->ok_ids[t->ok] = num;
				t->ok++;
			} else if (m.type == CAIRN_REPLY_ERROR &&
			           m.code == (uint32_t)-CAIRN_ECAPACITY) {
				t->full++;
			} else {
				fprintf(stderr, "# SEND %u: type %u code %u\n", num, m.type,
				        m.code);
				t->other++;
			}
		}
		done += w;
	}
}

/*
 * Subscribes to O on C and takes every envelope the relay holds, checking each against the
 * numbers OK'd (SEEN marks them; a number not OK'd, or delivered twice, fails), ACKing each
 * when ACK. Stops once nothing more comes for a while. Returns how many came.
 */
static uint32_t drain(struct tclient *c, const struct owner *o, bool ack)
{
	struct cairn_msg sub = {
	    .type = CAIRN_CMD_SUBSCRIBE, .request_id = c->next_id++, .recipient_id = o->rid};
	assert_int_equal(tclient_send(c, &sub), 0);
	uint32_t got = 0;
	for (;;) {
		struct cairn_msg m;
		int rc = tclient_recv(c, &m, got == 0 ? 10000 : 3000);
		if (rc != 0)
			break;
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue;
		uint32_t num;
		assert_true(m.envelope_len >= sizeof(num));
		memcpy(&num, m.envelope, sizeof(num));
		assert_true(num < NUMS);
		if (seen[num] == 3)
			seen_again++;
		else if (seen[num] != 1)
			fail_msg("envelope %u delivered but not OK'd, or twice (%u)", num,
			         seen[num]);
		seen[num] = 2;
		got++;
		if (ack) {
			struct cairn_msg a = {.type = CAIRN_CMD_ACK,
			                      .request_id = c->next_id++,
			                      .recipient_id = o->rid,
			                      .envelope_id = m.envelope_id};
			assert_int_equal(tclient_send(c, &a), 0);
		}
	}
	return got;
}

/* PRAGMA integrity_check of the stopped relay's store. */
static void store_whole(void)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/data/relay.db", relay.dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *res = (const char *)sqlite3_column_text(st, 0);
	if (res == NULL || strcmp(res, "ok") != 0)
		fail_msg("integrity_check: %s", res != NULL ? res : "(null)");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Stops the relay, checks its store is whole, starts it again and connects R as O's owner. */
static void restart_whole(struct tclient *r, const struct owner *o)
{
	assert_int_equal(relayproc_stop(&relay, SIGTERM), 0);
	relay_running = false;
	store_whole();
	assert_int_equal(relayproc_start(&relay), 0);
	relay_running = true;
	assert_int_equal(tclient_connect(r, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(r, o->rid, o->sk), 0);
}

/* Sends one envelope numbered NUM every 20 ms until one is OK'd or DEADLINE_MS passes.
 * Returns the ms it took, or -1; *REFUSED counts the `full` answers meanwhile. */
static long until_accepted(struct tclient *c, const uint8_t sid[24], uint32_t num, long deadline_ms,
                           uint32_t *refused, struct tally *t)
{
	int64_t t0 = it_mono_ms();
	while (it_mono_ms() - t0 < deadline_ms) {
		uint32_t ok = t->ok, full = t->full;
		send_some(c, sid, num, 1, 1024, t);
		if (t->ok > ok)
			return (long)(it_mono_ms() - t0);
		*refused += t->full - full;
		it_sleep_ms(20);
	}
	return -1;
}

/* Every number T answered OK is marked 1 in SEEN (to be delivered). */
static void expect(const struct tally *t)
{
	for (uint32_t i = 0; i < t->ok && i < t->cap; i++)
		seen[t->ok_ids[i]] = 1;
}

/* Connects C, creates O's mailbox on it and sends 16 KiB envelopes numbered from 0 until 64
 * are refused `full` (96 MiB would be 6,144 of them: the disk is full well before). Returns
 * how many were sent. */
static uint32_t send_until_full(struct tclient *c, struct owner *o, struct tally *t)
{
	assert_int_equal(tclient_connect(c, relay.port, relay.pub), 0);
	assert_int_equal(tclient_create(c, o->rid, o->sid, o->pk, o->sk), 0);
	uint32_t sent = 0;
	while (t->full < 64 && sent + WINDOW <= NUMS - 64) {
		send_some(c, o->sid, sent, WINDOW, ENV_LEN, t);
		sent += WINDOW;
	}
	return sent;
}

/* ---- the relay fills its disk itself ---------------------------------------------------- */

/*
 * No floor (min_free_disk 0): the relay stores envelopes until a commit finds no room. Every
 * SEND after that gets `full`; the storage thread gives up the reserve, so the owner still
 * takes every envelope and ACKs them all; a restart delivers none again (the deletes were
 * durable on the full disk) and the store is whole.
 */
static void test_relay_fills_its_disk(void **state)
{
	(void)state;
	start_on_smallfs("min_free_disk = 0\ndisk_reserve = 32M\nmailbox_max_bytes = 1G\n"
	                 "mailbox_max_envelopes = 1000000\n",
	                 96);
	struct tally t = {.ok_ids = ok_ids, .cap = NUMS};
	struct tclient c, r;
	struct owner o;
	int64_t t0 = it_mono_ms();
	uint32_t sent = send_until_full(&c, &o, &t);
	printf("diskfull: the relay filled 96 MiB itself: %u SENDs OK'd, %u refused 'full', %u "
	       "other, in %.1f s; free now %llu KiB\n",
	       t.ok, t.full, t.other, (double)(it_mono_ms() - t0) / 1000,
	       (unsigned long long)smallfs_free(fs.mnt) >> 10);
	assert_true(t.ok > 1000);
	assert_true(t.full >= 64);
	assert_int_equal(t.other, 0);
	assert_int_equal(log_lines("disk is full"), 1);
	/* Refused after the full state began: by admission, before any write. */
	struct tally again = {.ok_ids = ok_ids + t.ok, .cap = NUMS - t.ok};
	send_some(&c, o.sid, sent, 16, ENV_LEN, &again);
	assert_int_equal(again.ok, 0);
	assert_int_equal(again.full, 16);
	sent += 16;
	assert_int_equal(log_lines("disk is full"), 1);

	/* The owner takes everything and ACKs it all, on the full disk. */
	expect(&t);
	assert_int_equal(tclient_connect(&r, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(&r, o.rid, o.sk), 0);
	uint32_t got = drain(&r, &o, true);
	printf("diskfull: delivered and ACKed on the full disk: %u of %u\n", got, t.ok);
	assert_int_equal(got, t.ok);
	/* Whether room came back by itself (the deletes' pages are free inside the store; the
	 * file system sees the reserve and the WAL's room). */
	uint32_t refused = 0;
	long ms = until_accepted(&c, o.sid, sent, 5000, &refused, &t);
	printf("diskfull: after every envelope was ACKed: free %llu KiB, a SEND %s (%ld ms, %u "
	       "refused meanwhile)\n",
	       (unsigned long long)smallfs_free(fs.mnt) >> 10, ms >= 0 ? "accepted" : "still full",
	       ms, refused);
	tclient_close(&r);
	tclient_close(&c);

	/* Restart: nothing acknowledged comes back, the store is whole. */
	restart_whole(&r, &o);
	memset(seen, 0, sizeof(seen));
	if (ms >= 0)
		seen[sent] = 1; /* the one accepted after the drain */
	got = drain(&r, &o, true);
	printf("diskfull: after a restart: %u delivered again (expected %d)\n", got, ms >= 0);
	assert_int_equal(got, ms >= 0 ? 1 : 0);
	tclient_close(&r);
}

/* ---- the relay reaches its floor --------------------------------------------------------- */

/*
 * A floor of 48 MiB: the relay stores envelopes until the free space falls below it, then
 * refuses. Its owner takes and ACKs them all: the file system's free space does not grow (the
 * store keeps its size), but the pages inside it are free for new envelopes, and the relay
 * counts them: it accepts SENDs again by itself.
 */
static void test_relay_reaches_its_floor(void **state)
{
	(void)state;
	start_on_smallfs("min_free_disk = 48M\ndisk_reserve = 16M\nmailbox_max_bytes = 1G\n"
	                 "mailbox_max_envelopes = 1000000\n",
	                 128);
	struct tally t = {.ok_ids = ok_ids, .cap = NUMS};
	struct tclient c, r;
	struct owner o;
	uint32_t sent = send_until_full(&c, &o, &t);
	printf("diskfull: the relay reached its floor: %u OK'd, %u refused 'full', free %llu "
	       "KiB\n",
	       t.ok, t.full, (unsigned long long)smallfs_free(fs.mnt) >> 10);
	assert_int_equal(t.other, 0);
	assert_true(t.full >= 64);
	expect(&t);
	assert_int_equal(tclient_connect(&r, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(&r, o.rid, o.sk), 0);
	assert_int_equal(drain(&r, &o, true), t.ok);
	tclient_close(&r);
	uint32_t refused = 0;
	long ms = until_accepted(&c, o.sid, sent, 20000, &refused, &t);
	printf("diskfull: every envelope ACKed: free %llu KiB on the file system, a SEND accepted "
	       "after %ld ms (%u refused meanwhile)\n",
	       (unsigned long long)smallfs_free(fs.mnt) >> 10, ms, refused);
	print_log();
	assert_true(ms >= 0);
	assert_int_equal(log_lines("disk is full"), 1);
	assert_int_equal(log_lines("disk has room again"), 1);
	tclient_close(&c);
}

/* ---- another process fills the disk ----------------------------------------------------- */

/*
 * A floor of 4 MiB: stored envelopes, then a filler file takes every free block. SENDs get
 * `full`, the stored envelopes are delivered and ACKed; the filler is deleted and the relay
 * accepts SENDs again by itself, without a restart: the time it takes is the figure. Then
 * everything OK'd is delivered, once, and the store is whole.
 */
static void test_disk_filled_from_outside(void **state)
{
	(void)state;
	start_on_smallfs("min_free_disk = 4M\ndisk_reserve = 16M\n", 64);
	struct tally t = {.ok_ids = ok_ids, .cap = NUMS};
	struct tclient c, r;
	struct owner o;
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	assert_int_equal(tclient_create(&c, o.rid, o.sid, o.pk, o.sk), 0);
	send_some(&c, o.sid, 0, 200, ENV_LEN, &t);
	assert_int_equal(t.ok, 200);

	char filler[340];
	snprintf(filler, sizeof(filler), "%s/filler", fs.mnt);
	uint64_t filled = smallfs_fill(filler);
	printf("diskfull: a filler took %llu MiB; free now %llu KiB\n",
	       (unsigned long long)filled >> 20, (unsigned long long)smallfs_free(fs.mnt) >> 10);
	/* SENDs are refused `full`: by a commit that found no room, or by the floor's next
	 * sample. (The first may still fit in the room the WAL's file had: OK'd, on disk.) */
	send_some(&c, o.sid, 200, 100, ENV_LEN, &t);
	printf("diskfull: on the full disk: %u OK'd, %u refused 'full', %u other\n", t.ok - 200,
	       t.full, t.other);
	assert_int_equal(t.other, 0);
	assert_true(t.full >= 50);
	assert_int_equal(log_lines("disk is full"), 1);

	/* Delivery and ACKs go on: half of the stored envelopes taken and ACKed. */
	expect(&t);
	assert_int_equal(tclient_connect(&r, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(&r, o.rid, o.sk), 0);
	uint32_t got = drain(&r, &o, true);
	assert_int_equal(got, t.ok);
	tclient_close(&r);
	/* More SENDs on the full disk: refused, or (once the ACKs freed pages inside the store,
	 * which the floor counts) OK'd, and then on disk and delivered below. */
	uint32_t delivered = got, full_before_restart = t.full;
	send_some(&c, o.sid, 300, 10, ENV_LEN, &t);
	tclient_close(&c);

	/* A restart on the full disk (the reserve's room taken too): the relay starts,
	 * serves, delivers nothing ACKed again (the ACKs' deletes were durable) and refuses
	 * SENDs, or takes what fits in its store. */
	assert_int_equal(relayproc_stop(&relay, SIGTERM), 0);
	relay_running = false;
	char filler2[340];
	snprintf(filler2, sizeof(filler2), "%s/filler2", fs.mnt);
	uint64_t more = smallfs_fill(filler2);
	printf("diskfull: a second filler took %llu MiB; free now %llu KiB\n",
	       (unsigned long long)more >> 20, (unsigned long long)smallfs_free(fs.mnt) >> 10);
	assert_int_equal(relayproc_start(&relay), 0);
	relay_running = true;
	for (uint32_t i = delivered; i < t.ok; i++)
		seen[ok_ids[i]] = 1;
	assert_int_equal(tclient_connect(&r, relay.port, relay.pub), 0);
	assert_int_equal(tclient_auth(&r, o.rid, o.sk), 0);
	assert_int_equal(drain(&r, &o, true), t.ok - delivered);
	/* Their ACKs' deletes had not even the reserve's room (the second filler took it). */
	uint32_t acked_without_room = delivered;
	delivered = t.ok;
	tclient_close(&r);
	assert_int_equal(tclient_connect(&c, relay.port, relay.pub), 0);
	send_some(&c, o.sid, 320, 10, ENV_LEN, &t);
	printf("diskfull: restarted on the full disk: %u SENDs refused 'full', %u OK'd since the "
	       "drain\n",
	       t.full - full_before_restart, t.ok - got);
	assert_true(t.full > full_before_restart);
	assert_int_equal(t.other, 0);

	/* The room comes back. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(unlink(filler2), 0);
	uint32_t refused = 0, full_before = t.full;
	long ms = until_accepted(&c, o.sid, 330, 30000, &refused, &t);
	printf("diskfull: the filler deleted: first SEND accepted after %ld ms (%u refused "
	       "meanwhile)\n",
	       ms, refused);
	assert_true(ms >= 0);
	(void)full_before;
	send_some(&c, o.sid, 331, 100, ENV_LEN, &t);
	uint32_t before = delivered;
	memset(seen, 0, sizeof(seen));
	for (uint32_t i = before; i < t.ok; i++)
		seen[ok_ids[i]] = 1;
	for (uint32_t i = acked_without_room; i < before; i++)
		seen[ok_ids[i]] = 3;
	tclient_close(&c);

	/* Restart: every OK'd envelope not yet ACKed is delivered, once; the store is whole.
	 * One ACKed while the disk had no room may come again, once: delivery is at least once. */
	restart_whole(&r, &o);
	seen_again = 0;
	got = drain(&r, &o, true);
	printf("diskfull: after the room came back and a restart: %u delivered of %u OK'd, and "
	       "%u of the %u ACKed with no room at all again\n",
	       got - seen_again, t.ok - before, seen_again, before - acked_without_room);
	assert_int_equal(got - seen_again, t.ok - before);
	for (uint32_t i = 0; i < NUMS; i++)
		assert_true(seen[i] != 1);
	tclient_close(&r);
	/* A line as the relay starts refusing and one as it stops, not one per refusal: in each
	 * life of the relay, the floor's refusal, a room inside the store that did not do, and
	 * a write that found no room may each begin or end it once. */
	int in = log_lines("disk is full"), out = log_lines("disk has room again");
	print_log();
	printf("diskfull: %u SENDs refused 'full' in all, %d lines 'full', %d 'room again'\n",
	       t.full, in, out);
	assert_true(in >= 2 && in <= 4);
	assert_true(out >= 1 && out <= 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_relay_fills_its_disk, teardown),
	    cmocka_unit_test_teardown(test_relay_reaches_its_floor, teardown),
	    cmocka_unit_test_teardown(test_disk_filled_from_outside, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
