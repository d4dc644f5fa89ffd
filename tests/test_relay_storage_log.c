/* SPDX-License-Identifier: MIT */
/*
 * Group logs through the storage thread with a real uv loop and the SQLite engine:
 * STORAGE_READ_ENTRIES returns the bodies concatenated in the order asked (a batch of 64 of
 * the largest entries included), fails whole when one is absent, runs after the writes queued
 * before it, and never holds back a writer for more than one cycle's bounded reads; a process
 * killed while appending keeps every entry it acknowledged and every seq it gave.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#ifndef CAIRN_TEST_PG
#include <sqlite3.h>
#endif
#include <uv.h>

#include "cairn/error.h"
#include "storage.h"
#include "storage_fixture.h"

/* A job and the order in which the done() callbacks ran. */
static unsigned done_seq;

struct tjob {
	struct storage_job job;
	unsigned done_at; /* 1 + done_seq when done() ran, 0 before */
};

static void tjob_done(struct storage_job *job)
{
	struct tjob *t = job->data;
	t->done_at = ++done_seq;
}

static void tjob_write(struct tjob *t, struct store_op op)
{
	memset(t, 0, sizeof(*t));
	t->job.kind = STORAGE_WRITE;
	t->job.op = op;
	t->job.done = tjob_done;
	t->job.data = t;
}

static void tjob_read(struct tjob *t, const uint64_t *ids, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->job.kind = STORAGE_READ_ENTRIES;
	t->job.read_ids = ids;
	t->job.n_read = n;
	t->job.done = tjob_done;
	t->job.data = t;
}

/* 64 entries of the largest size, each byte depending on its entry and place. */
#define N_ENTRIES STORAGE_READ_ENTRIES_MAX
static uint8_t entries[N_ENTRIES][CAIRN_LOG_ENTRY_MAX];
static const struct store_log the_log = {.id = 77, .next_seq = 1, .touched = 5};

static struct store_op entry_op(size_t i)
{
	return (struct store_op){.kind = STORE_LOG_ENTRY_PUT,
	                         .envelope_id = 100 + i,
	                         .log_key = the_log.id,
	                         .seq = 1 + i,
	                         .body = entries[i],
	                         .len = CAIRN_LOG_ENTRY_MAX,
	                         .stored_at = 1700000000};
}

/* ---- An engine that wraps SQLite and lets the test admit each commit ---------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int allowed; /* commits that may still start; negative: any number */
	int entered; /* commits started */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0};

static int gate_commit(void *store, const struct store_op *ops, size_t n)
{
	pthread_mutex_lock(&gate.mu);
	gate.entered++;
	pthread_cond_broadcast(&gate.cv);
	while (gate.allowed == 0)
		pthread_cond_wait(&gate.cv, &gate.mu);
	if (gate.allowed > 0)
		gate.allowed--;
	pthread_mutex_unlock(&gate.mu);
	return ENGINE.commit(store, ops, n);
}

static void gate_allow(int n)
{
	pthread_mutex_lock(&gate.mu);
	gate.allowed = n;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

/* Waits until N commits have started (the last one waits at the gate if none is allowed). */
static void gate_wait_entered(int n)
{
	pthread_mutex_lock(&gate.mu);
	while (gate.entered < n)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
}

/* ---- Fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = fixture_open();
	if (f == NULL)
		return -1;
	for (size_t i = 0; i < N_ENTRIES; i++)
		for (size_t j = 0; j < CAIRN_LOG_ENTRY_MAX; j++)
			entries[i][j] = (uint8_t)(i * 37 + j * 11 + (j >> 8));
	gate.allowed = -1;
	gate.entered = 0;
	done_seq = 0;
	*state = f;
	return 0;
}

/* Opens the storage thread on ENGINE and stores the log with all 64 entries. */
static struct storage *open_with_entries(struct fixture *f, const struct store_engine *engine)
{
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, engine, storage_params(f->dir), NULL, NULL, &s), 0);
	static struct tjob w[1 + N_ENTRIES];
	tjob_write(&w[0], (struct store_op){.kind = STORE_LOG_PUT, .log = &the_log});
	storage_submit(s, &w[0].job);
	for (size_t i = 0; i < N_ENTRIES; i++) {
		tjob_write(&w[1 + i], entry_op(i));
		storage_submit(s, &w[1 + i].job);
	}
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	for (size_t i = 0; i <= N_ENTRIES; i++)
		assert_int_equal(w[i].job.status, 0);
	return s;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* 64 entries of 16 KiB in one read, in the order asked (here backwards): one buffer of their
 * bodies end to end. An empty list reads nothing; more than 64 ids is refused. */
static void test_read_entries_batch(void **state)
{
	struct fixture *f = *state;
	struct storage *s = open_with_entries(f, &ENGINE);
	static uint64_t ids[N_ENTRIES + 1];
	for (size_t i = 0; i < N_ENTRIES; i++)
		ids[i] = 100 + (N_ENTRIES - 1 - i);
	struct tjob r, empty, too_many;
	tjob_read(&r, ids, N_ENTRIES);
	tjob_read(&empty, ids, 0);
	tjob_read(&too_many, ids, N_ENTRIES + 1);
	storage_submit(s, &r.job);
	storage_submit(s, &empty.job);
	storage_submit(s, &too_many.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	assert_int_not_equal(r.done_at, 0);
	assert_int_equal(r.job.status, 0);
	assert_int_equal(r.job.read_len, (size_t)N_ENTRIES * CAIRN_LOG_ENTRY_MAX);
	assert_non_null(r.job.read_body);
	for (size_t i = 0; i < N_ENTRIES; i++)
		assert_memory_equal(r.job.read_body + i * CAIRN_LOG_ENTRY_MAX,
		                    entries[N_ENTRIES - 1 - i], CAIRN_LOG_ENTRY_MAX);
	free(r.job.read_body);

	assert_int_equal(empty.job.status, 0);
	assert_int_equal(empty.job.read_len, 0);
	assert_non_null(empty.job.read_body);
	free(empty.job.read_body);

	assert_int_equal(too_many.job.status, CAIRN_EINVAL);
	assert_null(too_many.job.read_body);
	close_storage(f, s);
}

/*
 * One absent entry fails the whole read with CAIRN_EDENIED and no body. A read queued after a
 * write runs after it, even in the same batch: entries deleted by a log delete queued just
 * before are absent, never half-read.
 */
static void test_read_entries_absent(void **state)
{
	struct fixture *f = *state;
	struct storage *s = open_with_entries(f, &ENGINE);
	static const uint64_t some_absent[] = {100, 5000, 101};
	struct tjob r;
	tjob_read(&r, some_absent, 3);
	storage_submit(s, &r.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.job.status, CAIRN_EDENIED);
	assert_null(r.job.read_body);
	assert_int_equal(r.job.read_len, 0);

	static uint64_t ids[N_ENTRIES];
	for (size_t i = 0; i < N_ENTRIES; i++)
		ids[i] = 100 + i;
	struct tjob del, after;
	tjob_write(&del, (struct store_op){.kind = STORE_LOG_DELETE,
	                                   .log_key = the_log.id,
	                                   .envelope_ids = ids,
	                                   .n_envelope_ids = N_ENTRIES});
	tjob_read(&after, ids, 2);
	storage_submit(s, &del.job);
	storage_submit(s, &after.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(del.job.status, 0);
	assert_int_equal(after.job.status, CAIRN_EDENIED);
	assert_null(after.job.read_body);
	assert_true(del.done_at < after.done_at);
	close_storage(f, s);
}

/*
 * Readers do not starve writers. With 40 reads of 1 MiB queued, a write queued after them is
 * committed and answered before any of them, and the next write waits for one cycle's 8
 * reads, not for all 40. The gate admits one commit at a time, so every batch's contents are
 * known: W0 alone; then W1 and reads 1-8; then W2 and reads 9-16; then the rest.
 */
static void test_reads_do_not_starve_writes(void **state)
{
	struct fixture *f = *state;
	static struct store_engine gate_engine;
	gate_engine = ENGINE;
	gate_engine.commit = gate_commit;
	struct storage *s = open_with_entries(f, &gate_engine);
	int entered = gate.entered;

	enum { READS = 40 };
	static uint64_t ids[N_ENTRIES];
	for (size_t i = 0; i < N_ENTRIES; i++)
		ids[i] = 100 + i;
	static struct tjob reads[READS];
	static const uint8_t body[16];
	struct store_op put = {
	    .kind = STORE_ENVELOPE_PUT, .mailbox_id = 1, .body = body, .len = 16};
	struct tjob w[3];
	for (size_t i = 0; i < 3; i++) {
		put.envelope_id = 1 + i;
		tjob_write(&w[i], put);
	}

	gate_allow(0);
	storage_submit(s, &w[0].job);
	gate_wait_entered(entered + 1); /* W0 waits at the gate, its batch taken */
	for (size_t i = 0; i < READS; i++) {
		tjob_read(&reads[i], ids, N_ENTRIES);
		storage_submit(s, &reads[i].job);
	}
	storage_submit(s, &w[1].job);
	gate_allow(1);
	gate_wait_entered(entered + 2); /* W1 waits at the gate */
	storage_submit(s, &w[2].job);
	gate_allow(1);
	gate_wait_entered(entered + 3); /* W2 waits at the gate */
	gate_allow(-1);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	size_t before_w1 = 0, before_w2 = 0;
	for (size_t i = 0; i < READS; i++) {
		assert_int_equal(reads[i].job.status, 0);
		assert_int_equal(reads[i].job.read_len, (size_t)N_ENTRIES * CAIRN_LOG_ENTRY_MAX);
		free(reads[i].job.read_body);
		before_w1 += reads[i].done_at < w[1].done_at;
		before_w2 += reads[i].done_at < w[2].done_at;
	}
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(w[i].job.status, 0);
	assert_true(w[0].done_at < w[1].done_at && w[1].done_at < w[2].done_at);
	assert_int_equal(before_w1, 0);
	assert_int_equal(before_w2, 8);
	close_storage(f, s);
}

/* A read submitted once the storage is closing is answered CAIRN_ESHUTDOWN without a body. */
static void test_read_entries_after_close(void **state)
{
	struct fixture *f = *state;
	struct storage *s = open_with_entries(f, &ENGINE);
	static const uint64_t ids[] = {100};
	struct tjob r;
	tjob_read(&r, ids, 1);
	r.job.read_body = (uint8_t *)1; /* stale: must be cleared */
	int closed = 0;
	storage_close(s, on_closed, &closed);
	storage_submit(s, &r.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed, 1);
	assert_int_not_equal(r.done_at, 0);
	assert_int_equal(r.job.status, CAIRN_ESHUTDOWN);
	assert_null(r.job.read_body);
}

/* ---- Crash safety ------------------------------------------------------------------------ */

#define CRASH_TOTAL  20000
#define CRASH_WINDOW 256  /* appends in flight */
#define CRASH_ACKED  3000 /* acknowledged appends before the kill */

struct crash {
	struct storage *s;
	struct storage_job jobs[CRASH_TOTAL];
	size_t next, acked;
	int fd;
};

static void crash_submit_next(struct crash *c)
{
	if (c->next >= CRASH_TOTAL)
		return;
	struct storage_job *job = &c->jobs[c->next];
	job->kind = STORAGE_WRITE;
	job->op = entry_op(c->next % N_ENTRIES);
	job->op.len = 1024;
	job->op.envelope_id = 1 + c->next;
	job->op.seq = 1 + c->next;
	job->data = c;
	c->next++;
	storage_submit(c->s, job);
}

static void crash_done(struct storage_job *job)
{
	struct crash *c = job->data;
	if (job->status != 0)
		_exit(4);
	/* The relay would answer APPENDED now: record the seq as given. */
	if (write(c->fd, &job->op.seq, sizeof(job->op.seq)) != sizeof(job->op.seq))
		_exit(3);
	if (++c->acked >= CRASH_ACKED)
		kill(getpid(), SIGKILL); /* with a window of appends still in flight */
	crash_submit_next(c);
}

static void crash_child(const char *dir, int fd)
{
	static struct crash c;
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0)
		_exit(5);
	c.fd = fd;
	if (storage_open(&loop, &ENGINE, storage_params(dir), NULL, NULL, &c.s) != 0)
		_exit(6);
	for (size_t i = 0; i < CRASH_TOTAL; i++)
		c.jobs[i].done = crash_done;
	for (size_t i = 0; i < CRASH_WINDOW; i++)
		crash_submit_next(&c);
	uv_run(&loop, UV_RUN_DEFAULT);
	_exit(7); /* not reached: the kill comes first */
}

struct loaded {
	uint64_t next_seq;
	size_t nlogs;
	uint8_t *present; /* present[seq] = 1 */
};

static void loaded_log(void *ctx, const struct store_log *log)
{
	struct loaded *l = ctx;
	l->nlogs++;
	l->next_seq = log->next_seq;
}

static void loaded_entry(void *ctx, const struct store_log_entry_info *info)
{
	struct loaded *l = ctx;
	if (info->seq <= CRASH_TOTAL && info->id == info->seq)
		l->present[info->seq] = 1;
}

static void load_log(const char *dir, struct loaded *l)
{
	static const struct store_load_cb cb = {.log = loaded_log, .log_entry = loaded_entry};
	void *store;
	l->nlogs = 0;
	memset(l->present, 0, CRASH_TOTAL + 1);
	assert_int_equal(ENGINE.open(storage_params(dir), &store), 0);
	assert_int_equal(ENGINE.load(store, &cb, l), 0);
	ENGINE.close(store);
}

static void test_kill_keeps_acknowledged_appends(void **state)
{
	struct fixture *f = *state;
	/* The log exists before the appends, as the relay's LOG_CREATE makes sure. */
	void *store;
	assert_int_equal(ENGINE.open(storage_params(f->dir), &store), 0);
	struct store_op put = {.kind = STORE_LOG_PUT, .log = &the_log};
	assert_int_equal(ENGINE.commit(store, &put, 1), 0);
	ENGINE.close(store);

	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(f->dir, p[1]);
	}
	close(p[1]);
	static uint64_t acked[CRASH_TOTAL];
	size_t n = 0;
	uint64_t seq, highest = 0;
	/* Writes of 8 bytes to a pipe are atomic, so reads of 8 bytes never split one. */
	while (n < CRASH_TOTAL && read(p[0], &seq, sizeof(seq)) == sizeof(seq)) {
		acked[n++] = seq;
		if (seq > highest)
			highest = seq;
	}
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(n, CRASH_ACKED);

	struct loaded l = {0};
	l.present = calloc(CRASH_TOTAL + 1, 1);
	assert_non_null(l.present);
	load_log(f->dir, &l);
	assert_int_equal(l.nlogs, 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(l.present[acked[i]], 1);
	assert_true(l.next_seq > highest);

	/* Every entry expires; the seqs given stay given. */
	assert_int_equal(ENGINE.open(storage_params(f->dir), &store), 0);
	struct store_op expire = {.kind = STORE_EXPIRE, .envelope_id = UINT64_MAX};
	assert_int_equal(ENGINE.commit(store, &expire, 1), 0);
	ENGINE.close(store);
	uint64_t before = l.next_seq;
	load_log(f->dir, &l);
	assert_int_equal(l.nlogs, 1);
	assert_int_equal(l.next_seq, before);
	free(l.present);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_read_entries_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_entries_absent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_do_not_starve_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_entries_after_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_keeps_acknowledged_appends, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
