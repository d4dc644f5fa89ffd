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
 * Then the client homes too: two homes of the real `cairn` command on a second cutfs mount,
 * bob sending numbered messages one `cairn send` after another while alice syncs; at each
 * cut both commands and the relay are SIGKILLed and both mounts lose power. At the end every
 * message whose send exited 0 (the relay acknowledged it) or 3 (queued) is in alice's
 * conversation exactly once, and in bob's; the homes still open. The same loop with
 * cairn-weaksync (the command with its store at synchronous=NORMAL) must lose messages.
 *
 * Also: `cairn-relay init` and `cairn init` followed at once by a cut keep what they made.
 *
 * Skips only where the kernel refuses FUSE. CAIRN_POWERCUT_CUTS=N runs N cuts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "cutfsproc.h"
#include "it_common.h"
#include "it_seqstream.h"

#define CUTS        50 /* the figure */
#define CLIENT_CUTS 12 /* with the homes on cutfs too: a `cairn` process per message */
#define MAX_MSGS    4096

struct cut_world {
	struct relayproc r;
	struct cutfsproc fs;
	char backing[300], data[300];
	struct owner o;
	struct seqstream q;
	unsigned cuts;
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

/*
 * Streams envelopes until CUT_AT (monotonic ms), then SIGKILLs the relay and cuts the power.
 * An OK read before the kill is an acknowledgement like any other; what is still on the way
 * after it is read too (the relay answered it before dying), the cut comes after.
 */
static void stream_then_cut(struct cut_world *s, int64_t cut_at)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, s->r.port, s->r.pub), 0);
	unsigned outstanding = seq_stream(&s->q, &c, s->o.sid, cut_at, 0);
	assert_int_equal(relayproc_stop(&s->r, SIGKILL), 128 + SIGKILL);
	seq_collect(&s->q, &c, outstanding);
	tclient_close(&c);
	if (cutfsproc_cut(&s->fs) != 0)
		fail_msg("cut %u: cutfs could not undo everything (see %s)", s->cuts + 1,
		         s->fs.log);
	s->cuts++;
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
	struct seq_drained d = seq_drain(&s->q, s->r.port, s->r.pub, s->o.rid, s->o.sk);
	printf("powercut: %s: %u cuts in %lld ms: %u envelopes sent, %u acknowledged, %u "
	       "refused, %u unanswered at a cut; %u delivered, %u acknowledged lost\n",
	       label, s->cuts, (long long)(it_mono_ms() - start), s->q.next_seq, s->q.acked,
	       s->q.refused, s->q.unknown, d.delivered, d.lost);
	return d.lost;
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
	assert_int_equal(world.q.refused, 0);
	assert_true(world.q.acked > 0);
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

/* ---- the client homes on cutfs too ---------------------------------------------------- */

/* Kills PID (if running) as the power cut does, and returns its status (128 + 9 if it was
 * killed, its own status if it had just ended). */
static int kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	return wait_status(pid);
}

struct homes {
	struct cutfsproc fs;
	char backing[300], mnt[300], a[320], b[320];
	int status[MAX_MSGS]; /* each `cairn send`'s exit: 0 sent, 3 queued, 137 killed */
	int next;
	unsigned sent, queued, killed, syncs;
	pid_t send_pid, sync_pid; /* running commands, 0 if none (killed by the teardown) */
};

static struct homes homes;

/* A/B into OUT (capacity CAP). */
static void join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < cap);
}

/* Syncs HOME until its outbox is empty and nothing more comes. */
static void settle(const char *home)
{
	int calm = 0;
	for (int round = 0; round < 30; round++) {
		struct res r = cli_run(CALL(.home = home), ARGS("--timeout", "10", "sync"));
		int got = -1;
		if (sscanf(r.out, "sync: %d received", &got) != 1)
			fail_msg("sync (%s): exit %d, %s%s", home, r.status, r.out, r.err);
		int status = r.status;
		res_free(&r);
		calm = got == 0 ? calm + 1 : 0;
		if (status == 0 && calm >= 2)
			return;
		it_sleep_ms(100);
	}
	fail_msg("%s: sync does not settle", home);
}

/*
 * Bob sends numbered messages one `cairn send` after another while alice syncs in a loop,
 * until CUT_AT; then both, and the relay, are SIGKILLed and both file systems lose power.
 */
static void clients_then_cut(struct cut_world *s, struct homes *h, double cut_at)
{
	int seq = -1;
	while (it_mono_s() < cut_at) {
		if (h->send_pid == 0) {
			assert_true(h->next < MAX_MSGS);
			char text[64];
			seq = h->next++;
			snprintf(text, sizeof(text), "bob message %05d", seq);
			h->send_pid = cli_spawn(CALL(.home = h->b),
			                        ARGS("--timeout", "5", "send", "alice", text));
		}
		if (h->sync_pid == 0)
			h->sync_pid = cli_spawn(CALL(.home = h->a), ARGS("--timeout", "5", "sync"));
		int st = cli_reap(h->send_pid);
		if (st >= 0) {
			h->send_pid = 0;
			h->status[seq] = st;
			if (st == 0)
				h->sent++;
			else if (st == 3)
				h->queued++;
			else
				fail_msg("cut %u: cairn send (message %d): exit %d", s->cuts + 1,
				         seq, st);
		}
		st = cli_reap(h->sync_pid);
		if (st >= 0) {
			h->sync_pid = 0;
			h->syncs++;
			if (st != 0 && st != 3)
				fail_msg("cut %u: cairn sync: exit %d", s->cuts + 1, st);
		}
		it_sleep_ms(5);
	}
	if (h->send_pid > 0) {
		int st = kill_reap(h->send_pid);
		h->status[seq] = st;
		h->sent += st == 0;
		h->queued += st == 3;
		h->killed += st == 128 + SIGKILL;
	}
	if (h->sync_pid > 0)
		kill_reap(h->sync_pid);
	h->send_pid = h->sync_pid = 0;
	assert_int_equal(relayproc_stop(&s->r, SIGKILL), 128 + SIGKILL);
	if (cutfsproc_cut(&h->fs) != 0 || cutfsproc_cut(&s->fs) != 0)
		fail_msg("cut %u: cutfs could not undo everything", s->cuts + 1);
	s->cuts++;
}

/*
 * The end state: every message whose `cairn send` exited 0 (the relay acknowledged it) or 3
 * (stored in the outbox) is in alice's conversation with bob exactly once, and in bob's own;
 * nothing bob did not send is there. Returns how many stored messages are missing or
 * repeated; with STRICT a repeat fails the test at once.
 */
static unsigned check_homes(struct homes *h, bool strict)
{
	settle(h->b);
	settle(h->a);
	struct convo in = read_convo(h->a, "bob"), out = read_convo(h->b, "alice");
	static unsigned got[MAX_MSGS], kept[MAX_MSGS];
	memset(got, 0, sizeof(got));
	memset(kept, 0, sizeof(kept));
	for (size_t k = 0; k < in.n; k++) {
		int seq = -1;
		if (in.m[k].out || strncmp(in.m[k].text, "pairing", 7) == 0)
			continue;
		if (sscanf(in.m[k].text, "bob message %d", &seq) != 1 || seq < 0 || seq >= h->next)
			fail_msg("alice has a message bob never sent: %s", in.m[k].text);
		got[seq]++;
	}
	for (size_t k = 0; k < out.n; k++) {
		int seq = -1;
		if (out.m[k].out && sscanf(out.m[k].text, "bob message %d", &seq) == 1 &&
		    seq >= 0 && seq < h->next)
			kept[seq]++;
	}
	unsigned delivered = 0, lost = 0;
	for (int seq = 0; seq < h->next; seq++) {
		if (got[seq] > 1 && strict)
			fail_msg("message %d delivered %u times", seq, got[seq]);
		bool stored = h->status[seq] == 0 || h->status[seq] == 3;
		if (stored && (got[seq] != 1 || kept[seq] != 1)) {
			printf("powercut: message %d (send exit %d): %u at alice, %u at bob\n", seq,
			       h->status[seq], got[seq], kept[seq]);
			lost++;
		}
		delivered += got[seq];
	}
	convo_free(&in);
	convo_free(&out);
	printf("powercut: clients: %d sends (%u sent, %u queued, %u killed at a cut), %u "
	       "syncs, %u delivered, %u lost\n",
	       h->next, h->sent, h->queued, h->killed, h->syncs, delivered, lost);
	return lost;
}

/*
 * The relay's data and two homes on cutfs; bob sends, alice syncs, the power goes, CUTS
 * times, every command run from cli_path; the end state is checked after every BATCH cuts
 * (and at the end), stopping at the first check that finds a loss. Returns check_homes'
 * count (STRICT as there).
 */
/* The contents of PATH (a small file) into OUT; its length, or -1. */
static long slurp(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	size_t n = fread(out, 1, cap, f);
	fclose(f);
	return (long)n;
}

/*
 * `cairn-relay init` and `cairn init` on cutfs, then the power cut at once: the relay's data
 * directory (its key, unchanged, and its config) and the home (it opens) must be there. Each
 * init makes its new directory durable in its parent, or the cut takes it back.
 */
static void test_inits_survive_a_cut(void **state)
{
	(void)state;
	if (find_cli() != 0)
		fail_msg("the cairn command is not built (%s)", cli_path);
	char dir[] = "/tmp/cairn-initcut-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char backing[340], mnt[340], data[360], home[360], key[380], conf[380], cmd[1200];
	join(backing, sizeof(backing), dir, "backing");
	join(mnt, sizeof(mnt), dir, "mnt");
	join(data, sizeof(data), mnt, "relay");
	join(home, sizeof(home), mnt, "home");
	join(key, sizeof(key), data, "relay.key");
	join(conf, sizeof(conf), data, "cairn-relay.conf");
	assert_int_equal(mkdir(backing, 0700), 0);
	assert_int_equal(mkdir(mnt, 0700), 0);
	struct cutfsproc fs = {0};
	int rc = cutfsproc_mount(&fs, backing, mnt);
	if (rc == 1) {
		fprintf(stderr, "skipped: the kernel refuses FUSE mounts here\n");
		skip();
	}
	assert_int_equal(rc, 0);
	snprintf(cmd, sizeof(cmd), "'%s' init --data '%s' >/dev/null 2>&1", CAIRN_RELAY_BIN, data);
	int status = system(cmd);
	cli_check(0, CALL(.home = home), ARGS("init"));
	char before[256], after[256];
	long len = slurp(key, before, sizeof(before));
	int cut = cutfsproc_cut(&fs);
	long len_after = slurp(key, after, sizeof(after));
	struct stat sb;
	bool conf_there = stat(conf, &sb) == 0 && sb.st_size > 0;
	struct res r = cli_run(CALL(.home = home), ARGS("contacts"));
	cutfsproc_unmount(&fs);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
	assert_int_equal(status, 0);
	assert_int_equal(cut, 0);
	assert_true(len > 0);
	if (len_after != len || memcmp(before, after, (size_t)len) != 0)
		fail_msg("the relay's key did not survive a power cut right after init");
	assert_true(conf_there);
	if (r.status != 0)
		fail_msg("the home did not survive a power cut right after init: %s", r.err);
	res_free(&r);
}

static unsigned client_loop(int cuts, int batch, bool strict)
{
	need_world(NULL);
	struct homes *h = &homes;
	memset(h, 0, sizeof(*h));
	join(h->backing, sizeof(h->backing), world.r.dir, "homes-backing");
	join(h->mnt, sizeof(h->mnt), world.r.dir, "homes");
	join(h->a, sizeof(h->a), h->mnt, "alice");
	join(h->b, sizeof(h->b), h->mnt, "bob");
	/* The homes' directories exist before the mount: made durable the way a person's
	 * home directory is. What `cairn init` writes in them is the client's to make durable. */
	char dir[340];
	assert_int_equal(mkdir(h->backing, 0700), 0);
	assert_int_equal(mkdir(h->mnt, 0700), 0);
	join(dir, sizeof(dir), h->backing, "alice");
	assert_int_equal(mkdir(dir, 0700), 0);
	join(dir, sizeof(dir), h->backing, "bob");
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(cutfsproc_mount(&h->fs, h->backing, h->mnt), 0);

	char addr[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(relayproc_address(&world.r, "127.0.0.1", addr, sizeof(addr)), 0);
	pair(h->a, h->b, addr, NULL);
	double start = it_mono_s();
	unsigned lost = 0;
	for (int round = 1; round <= cuts && lost == 0; round++) {
		clients_then_cut(&world, h, it_mono_s() + 0.5 + randombytes_uniform(3000) / 1e3);
		check_integrity(&world);
		if (relayproc_start(&world.r) != 0)
			fail_msg("cut %u: the relay did not start after the power cut", world.cuts);
		if (round % batch == 0 || round == cuts)
			lost = check_homes(h, strict);
	}
	printf("powercut: clients: %u cuts in %.1f s\n", world.cuts, it_mono_s() - start);
	return lost;
}

static void test_client_homes(void **state)
{
	(void)state;
	if (find_cli() != 0)
		fail_msg("the cairn command is not built (%s)", cli_path);
	int cuts = IT_ASAN ? CLIENT_CUTS / 2 : CLIENT_CUTS;
	assert_int_equal(client_loop(cuts, cuts, true), 0);
}

/*
 * The same with cairn-weaksync (its store at synchronous=NORMAL): losses must show. It loses
 * only what alice received in a sync the cut killed (a command that ends checkpoints), so
 * it checks every 3 cuts and stops at the first loss, for up to 2 * CLIENT_CUTS cuts.
 */
static void test_client_weak_sync_is_caught(void **state)
{
	(void)state;
	snprintf(cli_path, sizeof(cli_path), "%s", CAIRN_WEAK_CLI_BIN);
	unsigned lost = client_loop(2 * CLIENT_CUTS, 3, false);
	if (lost == 0)
		fail_msg("the client without fsync lost nothing in %u cuts: the test does not bite",
		         world.cuts);
}

static int teardown_homes(void **state)
{
	(void)state;
	if (homes.send_pid > 0)
		kill_reap(homes.send_pid);
	if (homes.sync_pid > 0)
		kill_reap(homes.sync_pid);
	cutfsproc_unmount(&homes.fs);
	world_stop(&world);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_no_acknowledged_loss, teardown),
	    cmocka_unit_test_teardown(test_weak_sync_is_caught, teardown),
	    cmocka_unit_test(test_inits_survive_a_cut),
	    cmocka_unit_test_teardown(test_client_homes, teardown_homes),
	    cmocka_unit_test_teardown(test_client_weak_sync_is_caught, teardown_homes),
	};
	/* CAIRN_IT_ONLY=test_client_homes (a cmocka pattern) runs one of them. */
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
