/* SPDX-License-Identifier: MIT */
/*
 * Integration: a group of GROUP_BIG_MEMBERS (default 50, 16 under ASan) through the real
 * `cairn` and `cairn-relay` binaries (issue 12's test list). One admin pairs with every other
 * home and adds them all in one `group add`; members stay offline across later changes and
 * catch up at the end, reading what was sent to them; messages from several members reach
 * everyone; a second admin and the first remove two members at once (two processes started
 * together: one commit wins, the other is made again, 9.5); removed members read nothing sent
 * after; a member leaves; the relay is restarted (SIGTERM) and killed (SIGKILL) while a
 * removal commit is being uploaded; at the end every member has the same roster and the same
 * group safety number. The homes' commands run several at a time (par) to keep the whole
 * within CI's budget; the figures go to print_message.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cliproc.h"
#include "it_common.h"
#include "it_client_common.h"
#include "it_group_cli_common.h"

#define WIDTH    4  /* commands at once: enough to fill two cores while others wait */
#define ARGS_MAX 60 /* `group add` with every contact */
#define OFFLINE  3  /* members h01.. that sync only at the end */

/* One command of a batch: HOME's `cairn ARGV`, its exit status checked (EXPECT < 0: any) and
 * its standard output kept in OUT (malloc'd) when KEEP. */
struct job {
	const char *home;
	const char *argv[ARGS_MAX];
	int expect, keep;
	char *out;
	int status;
};

static struct job jobs[HOMES_MAX];

static void job_set(struct job *j, const char *home, int expect, const char *const *args)
{
	free(j->out);
	memset(j, 0, sizeof(*j));
	j->home = home;
	j->expect = expect;
	for (size_t i = 0; args[i] != NULL && i + 1 < ARGS_MAX; i++)
		j->argv[i] = args[i];
}

/* Starts J with its outputs in files under DIR (stdout DIR/o<ID>, stderr DIR/e<ID>). */
static pid_t job_start(const struct world *w, const struct job *j, int id)
{
	char out[160], err[160];
	snprintf(out, sizeof(out), "%s/o%d", w->dir, id);
	snprintf(err, sizeof(err), "%s/e%d", w->dir, id);
	const char *argv[ARGS_MAX + 4] = {cli_path, "--home", j->home};
	size_t n = 3;
	for (size_t i = 0; j->argv[i] != NULL; i++)
		argv[n++] = j->argv[i];
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fi = open("/dev/null", O_RDONLY);
		if (fo < 0 || fe < 0 || fi < 0)
			_exit(127);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		execv(cli_path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char chunk[4096];
	size_t n;
	buf_append(&buf, &len, &cap, "", 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&buf, &len, &cap, chunk, n);
	fclose(f);
	return buf;
}

/* Runs jobs[0..N) WIDTH at a time and checks each exit status. */
static void par(const struct world *w, int n)
{
	pid_t pid[HOMES_MAX];
	int next = 0, done = 0, running = 0;
	while (done < n) {
		while (running < WIDTH && next < n) {
			pid[next] = job_start(w, &jobs[next], next);
			next++;
			running++;
		}
		int status = 0;
		pid_t p = waitpid(-1, &status, 0);
		assert_true(p > 0);
		for (int i = 0; i < next; i++) {
			if (pid[i] != p)
				continue;
			jobs[i].status =
			    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			pid[i] = 0;
		}
		running--;
		done++;
	}
	for (int i = 0; i < n; i++) {
		char path[160];
		snprintf(path, sizeof(path), "%s/o%d", w->dir, i);
		jobs[i].out = slurp(path);
		if (jobs[i].expect >= 0 && jobs[i].status != jobs[i].expect) {
			snprintf(path, sizeof(path), "%s/e%d", w->dir, i);
			char *err = slurp(path);
			fprintf(stderr, "cairn %s (home %s): exit %d, expected %d: %s\n",
			        jobs[i].argv[0], jobs[i].home, jobs[i].status, jobs[i].expect, err);
			free(err);
			fail();
		}
	}
}

/* The same command in each of the homes HOMES[0..N). */
static void par_each(const struct world *w, const int *homes, int n, int expect,
                     const char *const *args)
{
	for (int i = 0; i < n; i++)
		job_set(&jobs[i], hpath[homes[i]], expect, args);
	par(w, n);
}

/* How many lines of OUT are members (`members --json`), and whether the home's own line is
 * an admin's (*ADMIN, may be NULL); every line has its five fields. */
static size_t count_members(char *out, int *admin)
{
	size_t n = 0;
	char *line = out;
	for (cJSON *o; (o = next_object(&line, 5)) != NULL; n++) {
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "self")) && admin != NULL)
			*admin = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "admin"));
		cJSON_Delete(o);
	}
	return n;
}

/* How many lines of OUT (`read --json`) have TEXT, received (IN) or sent. */
static size_t count_text_in(char *out, const char *text, int in)
{
	size_t n = 0;
	char *line = out;
	for (cJSON *o; (o = next_object(&line, 7)) != NULL;) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
		cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
		assert_true(cJSON_IsString(t) && cJSON_IsString(d));
		if (strcmp(t->valuestring, text) == 0 && (strcmp(d->valuestring, "in") == 0) == in)
			n++;
		cJSON_Delete(o);
	}
	return n;
}

/* HOME's `read --json` OUT has TEXT (received: IN) WANT times; else says what it has. */
static void expect_text(int home, char *out, const char *text, int in, size_t want)
{
	char *copy = strdup(out);
	assert_non_null(copy);
	size_t got = count_text_in(copy, text, in);
	if (got != want)
		fprintf(stderr, "home %d: '%s' (%s) %zu times, not %zu, in:\n%s", home, text,
		        in ? "in" : "out", got, want, out);
	free(copy);
	assert_int_equal(got, want);
}

/* Syncs the homes HOMES[0..N) together, round after round (ROUNDS at most), until each sees
 * WANT members in "big". A home that does stops syncing, but the admins (homes 0 and 4) sync
 * every round: their commits are what the others wait for. Returns the rounds. */
static int settle_par(const struct world *w, const int *homes, int n, size_t want)
{
	int done[HOMES_MAX] = {0}, idx[HOMES_MAX];
	for (int round = 1; round <= ROUNDS; round++) {
		int k = 0;
		for (int i = 0; i < n; i++)
			if (!done[i] || homes[i] == 0 || homes[i] == 4)
				job_set(&jobs[k++], hpath[homes[i]], -1, ARGS("sync"));
		par(w, k);
		k = 0;
		for (int i = 0; i < n; i++)
			if (!done[i]) {
				idx[k] = i;
				job_set(&jobs[k++], hpath[homes[i]], -1,
				        ARGS("group", "members", "big", "--json"));
			}
		par(w, k);
		int left = 0;
		for (int j = 0; j < k; j++) {
			done[idx[j]] =
			    jobs[j].status == 0 && count_members(jobs[j].out, NULL) == want;
			left += !done[idx[j]];
		}
		if (left == 0)
			return round;
	}
	for (int i = 0; i < n; i++) {
		struct res r =
		    cli_run(CALL(.home = hpath[homes[i]]), ARGS("group", "members", "big"));
		struct res v =
		    cli_run(CALL(.home = hpath[homes[i]]), ARGS("group", "verify", "big"));
		fprintf(stderr, "home %d:\n%s%s%s%s", homes[i], r.out, r.err, v.out, v.err);
		res_free(&r);
		res_free(&v);
	}
	fail_msg("not %zu members everywhere after %d rounds", want, ROUNDS);
	return -1;
}

/* HOMES[0..N) but those from LO to HI, into OUT; returns how many. */
static int homes_but(const int *homes, int n, int lo, int hi, int *out)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (homes[i] < lo || homes[i] > hi)
			out[k++] = homes[i];
	return k;
}

/* The group's safety number at every home of HOMES[0..N), all equal; into NUMBER. */
static void same_number(const struct world *w, const int *homes, int n, char *number, size_t cap)
{
	par_each(w, homes, n, 0, ARGS("group", "verify", "big"));
	snprintf(number, cap, "%s", jobs[0].out);
	assert_true(strlen(number) > 10);
	for (int i = 1; i < n; i++)
		if (strcmp(jobs[i].out, number) != 0) {
			fprintf(stderr, "home %d: %s, home %d: %s", homes[0], number, homes[i],
			        jobs[i].out);
			fail();
		}
}

/* The relay's store on disk (database and write-ahead log), in bytes. */
static long store_bytes(const struct world *w)
{
	long total = 0;
	const char *names[] = {"relay.db", "relay.db-wal"};
	for (int i = 0; i < 2; i++) {
		char path[400];
		struct stat st;
		snprintf(path, sizeof(path), "%s/data/%s", w->relay.dir, names[i]);
		if (stat(path, &st) == 0)
			total += (long)st.st_size;
	}
	return total;
}

static void test_group_big(void **state)
{
	struct world *w = *state;
	const char *env = getenv("GROUP_BIG_MEMBERS");
	int n = env != NULL ? atoi(env) : (IT_ASAN ? 16 : 50);
	assert_true(n >= 16 && n <= HOMES_MAX);
	make_homes(w);
	const char *a = hpath[0];
	char names[HOMES_MAX][16];
	int all[HOMES_MAX], members_[HOMES_MAX];
	for (int i = 0; i < n; i++) {
		all[i] = i;
		members_[i] = i + 1;
		snprintf(names[i], sizeof(names[i]), "m%02d", i);
	}
	double t0 = it_mono_s();

	/* Pairing: every home made, invited by the admin, accepting and writing first. */
	cli_check(0, CALL(.home = a), ARGS("init"));
	par_each(w, members_, n - 1, 0, ARGS("init"));
	for (int i = 1; i < n; i++)
		job_set(&jobs[i - 1], a, 0, ARGS("invite", "--relay", w->addr, "--name", names[i]));
	par(w, n - 1);
	char *inv[HOMES_MAX];
	for (int i = 1; i < n; i++) {
		inv[i] = jobs[i - 1].out;
		jobs[i - 1].out = NULL;
		inv[i][strcspn(inv[i], "\n")] = '\0';
		job_set(&jobs[i - 1], hpath[i], 0, ARGS("accept", inv[i], "--name", "admin"));
	}
	par(w, n - 1);
	for (int i = 1; i < n; i++)
		free(inv[i]);
	par_each(w, members_, n - 1, 0, ARGS("send", "admin", "hello"));
	sync_expect(CALL(.home = a), 0, n - 1);
	double t1 = it_mono_s();

	/* Everyone added by one command; the offers answered; the joins committed. */
	cli_check(0, CALL(.home = a), ARGS("group", "create", "big", "--relay", w->addr));
	const char *add[ARGS_MAX] = {"group", "add", "big"};
	for (int i = 1; i < n; i++)
		add[2 + i] = names[i];
	cli_check(0, CALL(.home = a), add);
	/* Offers answered with joins, the joins committed (one sync of the admin commits them
	 * one after the other), the welcomes read: then a round of all until all agree. */
	par_each(w, members_, n - 1, 0, ARGS("sync"));
	cli_check(0, CALL(.home = a), ARGS("sync"));
	/* That one sync committed the joins it received one after the other (sync.c's passes):
	 * without them it would be 1. Not necessarily all: at 50 members on a loaded machine it
	 * was 33 once (see /work/notes/gbig.md); the rounds below bring the rest. */
	size_t first = seen(a, "big");
	assert_true(first >= 8);
	par_each(w, members_, n - 1, 0, ARGS("sync"));
	int rounds = 3 + settle_par(w, all, n, (size_t)n);
	double t2 = it_mono_s();
	print_message("%d members: pairing %.1f s, adding %.1f s (%.2f s per member, %d rounds of "
	              "syncs of all homes; %zu members after the admin's first sync)\n",
	              n, t1 - t0, t2 - t1, (t2 - t1) / (n - 1), rounds, first);

	/* From here h01..h03 stay offline until the end. */
	int on[HOMES_MAX], non = 0;
	for (int i = 0; i < n; i++)
		if (i == 0 || i > OFFLINE)
			on[non++] = i;

	/* Messages from the admin and three members, read by everyone online. */
	const char *texts[] = {"from the admin", "from m04", "from m05", "from m06"};
	cli_check(0, CALL(.home = a), ARGS("send", "big", texts[0]));
	for (int i = 1; i <= 3; i++)
		cli_check(0, CALL(.home = hpath[OFFLINE + i]), ARGS("send", "big", texts[i]));
	par_each(w, on, non, 0, ARGS("sync"));
	par_each(w, on, non, 0, ARGS("read", "big", "--json"));
	for (int i = 0; i < non; i++)
		for (int t = 0; t < 4; t++)
			expect_text(on[i], jobs[i].out, texts[t],
			            !(t == 0 && on[i] == 0) && !(t > 0 && on[i] == OFFLINE + t), 1);
	double t3 = it_mono_s();

	/* A second admin, m04. */
	cli_check(0, CALL(.home = a), ARGS("group", "admin", "big", names[4]));
	int admin = 0;
	for (int r = 0; !admin; r++) {
		assert_true(r < ROUNDS);
		cli_check(-1, CALL(.home = hpath[4]), ARGS("sync"));
		struct res m = cli_expect(0, CALL(.home = hpath[4]),
		                          ARGS("group", "members", "big", "--json"));
		count_members(m.out, &admin);
		res_free(&m);
	}

	/* Both admins remove a member at once: m10 by the admin, m11 by m04 (named by its id
	 * there). One commit wins the epoch; the other is made again on top of it. */
	struct member m[HOMES_MAX];
	size_t count = members(hpath[11], "big", m, HOMES_MAX);
	const char *m11 = NULL;
	for (size_t i = 0; i < count; i++)
		if (m[i].self)
			m11 = m[i].id;
	assert_non_null(m11);
	char m11_id[17];
	strcpy(m11_id, m11);
	job_set(&jobs[0], a, 0, ARGS("group", "remove", "big", names[10]));
	job_set(&jobs[1], hpath[4], 0, ARGS("group", "remove", "big", m11_id));
	par(w, 2);
	int left[HOMES_MAX], nleft = homes_but(on, non, 10, 11, left);
	int race_rounds = settle_par(w, left, nleft, (size_t)n - 2);
	double t4 = it_mono_s();

	/* The removed read nothing sent after. */
	cli_check(0, CALL(.home = a), ARGS("send", "big", "after the removals"));
	par_each(w, on, non, -1, ARGS("sync"));
	par_each(w, on, non, 0, ARGS("read", "big", "--json"));
	for (int i = 0; i < non; i++)
		expect_text(on[i], jobs[i].out, "after the removals", on[i] != 0,
		            on[i] == 10 || on[i] == 11 ? 0 : 1);

	/* A leave, with the relay restarted (SIGTERM) before the admins have read it. */
	cli_check(0, CALL(.home = hpath[12]), ARGS("group", "leave", "big"));
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	assert_int_equal(relayproc_start(&w->relay), 0);
	nleft = homes_but(on, non, 10, 12, left);
	settle_par(w, left, nleft, (size_t)n - 3);

	/* The relay killed while the admin's removal of m13 is being uploaded: at the first
	 * write to its store after the command started (the removal's new log, made durable
	 * before the commit's part goes), unless the command is done first. */
	long base = store_bytes(w);
	job_set(&jobs[0], a, -1, ARGS("group", "remove", "big", names[13]));
	pid_t p = job_start(w, &jobs[0], 0);
	int grew = 0, status = -1;
	long last = base;
	while (grew < 1) {
		long now = store_bytes(w);
		if (now != last) {
			grew++;
			last = now;
		}
		int st;
		if (waitpid(p, &st, WNOHANG) == p) {
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		it_sleep_ms(1);
	}
	assert_int_equal(relayproc_stop(&w->relay, SIGKILL), 128 + SIGKILL);
	if (status < 0)
		status = wait_status(p);
	/* 3: the change waits in the outbox (the kill fell mid-commit); 0: it was done. */
	assert_true(status == 0 || status == 3);
	print_message("relay killed after %d store writes of the removal; the command %s\n", grew,
	              status == 3 ? "was cut off mid-commit" : "had finished");
	assert_int_equal(relayproc_start(&w->relay), 0);
	nleft = homes_but(on, non, 10, 13, left);
	settle_par(w, left, nleft, (size_t)n - 4);
	double t5 = it_mono_s();

	/* The offline members catch up: every message sent to them, in order, and the same
	 * roster and safety number as everyone else. */
	int back[OFFLINE];
	for (int i = 0; i < OFFLINE; i++) {
		back[i] = i + 1;
		left[nleft++] = i + 1;
	}
	settle_par(w, left, nleft, (size_t)n - 4);
	par_each(w, back, OFFLINE, 0, ARGS("read", "big", "--json"));
	const char *order[] = {"from the admin", "after the removals"};
	for (int i = 0; i < OFFLINE; i++) {
		for (int t = 0; t < 4; t++)
			expect_text(back[i], jobs[i].out, texts[t], 1, 1);
		expect_text(back[i], jobs[i].out, order[1], 1, 1);
		assert_true(strstr(jobs[i].out, order[0]) < strstr(jobs[i].out, order[1]));
	}
	char number[256];
	same_number(w, left, nleft, number, sizeof(number));
	/* The same roster everywhere: the admin's ids, each once, at every home. */
	size_t na = members(a, "big", m, HOMES_MAX);
	assert_int_equal(na, (size_t)n - 4);
	par_each(w, left, nleft, 0, ARGS("group", "members", "big", "--json"));
	for (int i = 0; i < nleft; i++)
		for (size_t k = 0; k < na; k++) {
			char needle[40];
			snprintf(needle, sizeof(needle), "\"id\":\"%s\"", m[k].id);
			char *at = strstr(jobs[i].out, needle);
			assert_non_null(at);
			assert_null(strstr(at + 1, needle));
		}
	/* Those removed and the one who left are not in it (the admin names them). */
	for (int i = 10; i <= 13; i++)
		assert_null(find_member(m, na, names[i]));
	assert_non_null(find_member(m, na, names[14]));
	double t6 = it_mono_s();
	print_message(
	    "messages %.1f s, two admins at once settled in %d rounds (%.1f s), "
	    "removals, leave, restart and kill %.1f s, catching up %.1f s; total %.1f s\n",
	    t3 - t2, race_rounds, t4 - t3, t5 - t4, t6 - t5, t6 - t0);
	for (int i = 0; i < HOMES_MAX; i++) {
		free(jobs[i].out);
		jobs[i].out = NULL;
	}
}

int main(void)
{
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_group_big, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
