/* SPDX-License-Identifier: MIT */
/*
 * The storage thread with a real uv loop and the SQLite engine: writes complete on the loop
 * thread, a burst shares few commits, a queued job can be cancelled, reads return bodies,
 * close drains everything and leaks no handle, and a process killed mid-stream keeps every
 * write it acknowledged.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#ifndef CAIRN_TEST_PG
#include <sqlite3.h>
#endif
#include <uv.h>

#include "cairn/error.h"
#include "storage.h"
#include "storage_fixture.h"

/* A job plus what the test wants to know about its completion. */
struct tjob {
	struct storage_job job;
	struct fixture *f;
	int calls;
	bool on_loop_thread;
	struct storage *resubmit_to; /* if set, done() submits CHAINED there */
	struct tjob *chained;
};

static uint8_t body_1k[1024];

static void tjob_done(struct storage_job *job)
{
	struct tjob *t = job->data;
	t->calls++;
	t->on_loop_thread = pthread_equal(pthread_self(), t->f->loop_thread) != 0;
	if (t->resubmit_to != NULL)
		storage_submit(t->resubmit_to, &t->chained->job);
}

static void tjob_write(struct tjob *t, struct fixture *f, struct store_op op)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->job.kind = STORAGE_WRITE;
	t->job.op = op;
	t->job.done = tjob_done;
	t->job.data = t;
}

static void tjob_read(struct tjob *t, struct fixture *f, uint64_t id)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->job.kind = STORAGE_READ;
	t->job.read_id = id;
	t->job.read_mailbox = 1; /* put_op's */
	t->job.done = tjob_done;
	t->job.data = t;
}

static struct store_op put_op(uint64_t id, const uint8_t *body, uint32_t len)
{
	return (struct store_op){.kind = STORE_ENVELOPE_PUT,
	                         .mailbox_id = 1,
	                         .envelope_id = id,
	                         .body = body,
	                         .len = len,
	                         .stored_at = 1700000000};
}

/* ---- An engine that wraps SQLite with a gate the test controls ------------------------ */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool hold;    /* commit() waits while set */
	bool entered; /* a commit() has started */
	bool fail;    /* commit() fails without touching the store */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};

static int gate_commit(void *store, const struct store_op *ops, size_t n)
{
	pthread_mutex_lock(&gate.mu);
	gate.entered = true;
	pthread_cond_broadcast(&gate.cv);
	while (gate.hold)
		pthread_cond_wait(&gate.cv, &gate.mu);
	bool fail = gate.fail;
	pthread_mutex_unlock(&gate.mu);
	return fail ? CAIRN_ESTORAGE : ENGINE.commit(store, ops, n);
}

static struct store_engine gate_engine;

static void gate_set(bool hold, bool fail)
{
	pthread_mutex_lock(&gate.mu);
	gate.hold = hold;
	gate.fail = fail;
	gate.entered = false;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

static void gate_wait_entered(void)
{
	pthread_mutex_lock(&gate.mu);
	while (!gate.entered)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
}

/* ---- Fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = fixture_open();
	if (f == NULL)
		return -1;
	gate_engine = ENGINE;
	gate_engine.commit = gate_commit;
	gate_set(false, false);
	memset(body_1k, 0xa5, sizeof(body_1k));
	*state = f;
	return 0;
}

struct counts {
	size_t mailboxes, envelopes;
	uint64_t last_id;
	bool ordered;
	uint8_t *present; /* optional: present[id] = 1 */
	size_t present_cap;
};

static void count_mailbox(void *ctx, const struct store_mailbox *m)
{
	(void)m;
	((struct counts *)ctx)->mailboxes++;
}

static void count_envelope(void *ctx, const struct store_envelope_info *info)
{
	struct counts *c = ctx;
	if (c->envelopes > 0 && info->id <= c->last_id)
		c->ordered = false;
	c->last_id = info->id;
	c->envelopes++;
	if (c->present != NULL && info->id < c->present_cap)
		c->present[info->id] = 1;
}

static const struct store_load_cb count_cb = {.mailbox = count_mailbox, .envelope = count_envelope};

/* Loads the store in DIR directly through the engine. */
static void load_counts(const char *dir, struct counts *c)
{
	void *store;
	c->mailboxes = c->envelopes = 0;
	c->ordered = true;
	assert_int_equal(ENGINE.open(storage_params(dir), &store), 0);
	assert_int_equal(ENGINE.load(store, &count_cb, c), 0);
	ENGINE.close(store);
}

/* ---- Tests -------------------------------------------------------------------------------- */

#define BURST 1000

static void test_burst_is_group_committed(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), NULL, NULL, &s),
	                 0);
	struct tjob *jobs = calloc(BURST, sizeof(*jobs));
	assert_non_null(jobs);
	struct store_mailbox m = {.id = 1};
	tjob_write(&jobs[0], f, (struct store_op){.kind = STORE_MAILBOX_PUT, .mailbox = &m});
	for (size_t i = 1; i < BURST; i++)
		tjob_write(&jobs[i], f, put_op(i, body_1k, sizeof(body_1k)));
	for (size_t i = 0; i < BURST; i++)
		storage_submit(s, &jobs[i].job);
	assert_int_equal(storage_pending(s), BURST);
	/* Nothing completes from inside submit. */
	for (size_t i = 0; i < BURST; i++)
		assert_int_equal(jobs[i].calls, 0);

	/* The handle keeps the loop alive exactly while jobs are pending. */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(storage_pending(s), 0);
	for (size_t i = 0; i < BURST; i++) {
		assert_int_equal(jobs[i].calls, 1);
		assert_int_equal(jobs[i].job.status, 0);
		assert_true(jobs[i].on_loop_thread);
	}
	uint64_t batches, writes, disk;
	storage_stats(s, &batches, &writes, &disk);
	assert_int_equal(writes, BURST);
	/* The thread wakes on the first submit and may take only it; everything queued while
	 * that commit runs shares the next one. */
	assert_true(batches >= 1);
	assert_true(batches <= 10);
#ifndef CAIRN_TEST_PG /* PostgreSQL's size is a sample at most 5 s old (store_pg_load.c) */
	assert_true(disk >= BURST * sizeof(body_1k));
#endif
	close_storage(f, s);
	free(jobs);

	struct counts c = {0};
	load_counts(f->dir, &c);
	assert_int_equal(c.mailboxes, 1);
	assert_int_equal(c.envelopes, BURST - 1);
	assert_true(c.ordered);
}

static void test_cancel_queued_job(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &gate_engine, storage_params(f->dir), NULL, NULL, &s), 0);
	struct tjob a, b, c;
	tjob_write(&a, f, put_op(1, body_1k, 16));
	tjob_write(&b, f, put_op(2, body_1k, 16));
	tjob_write(&c, f, put_op(3, body_1k, 16));

	/* A is taken and its commit held open; B and C queue behind it. */
	gate_set(true, false);
	storage_submit(s, &a.job);
	gate_wait_entered();
	storage_submit(s, &b.job);
	storage_submit(s, &c.job);
	assert_int_equal(storage_pending(s), 3);
	assert_false(storage_cancel(s, &a.job)); /* already in a batch */
	assert_true(storage_cancel(s, &b.job));
	assert_false(storage_cancel(s, &b.job)); /* no longer queued */
	assert_int_equal(storage_pending(s), 2);
	gate_set(false, false);

	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(a.job.status, 0);
	assert_int_equal(c.job.status, 0);
	uint64_t writes;
	storage_stats(s, NULL, &writes, NULL);
	assert_int_equal(writes, 2);

	/* A cancelled job belongs to the caller again and can be submitted anew. */
	storage_submit(s, &b.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.job.status, 0);
	close_storage(f, s);

	struct counts cnt = {0};
	load_counts(f->dir, &cnt);
	assert_int_equal(cnt.envelopes, 3);
}

static void test_cancelled_write_never_stored(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &gate_engine, storage_params(f->dir), NULL, NULL, &s), 0);
	struct tjob a, b;
	tjob_write(&a, f, put_op(1, body_1k, 16));
	tjob_write(&b, f, put_op(2, body_1k, 16));
	gate_set(true, false);
	storage_submit(s, &a.job);
	gate_wait_entered();
	storage_submit(s, &b.job);
	assert_true(storage_cancel(s, &b.job));
	gate_set(false, false);
	close_storage(f, s);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	struct counts c = {0};
	load_counts(f->dir, &c);
	assert_int_equal(c.envelopes, 1);
	assert_int_equal(c.last_id, 1);
}

/* A held write waits its hold out, can be cancelled until then, and is never lost: an
 * uncancelled one is written once the hold ends, and closing writes the rest at once. */
static void test_held_writes(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), NULL, NULL, &s),
	                 0);
	struct tjob a, b, c;
	tjob_write(&a, f, put_op(1, body_1k, 16));
	tjob_write(&b, f, put_op(2, body_1k, 16));
	tjob_write(&c, f, put_op(3, body_1k, 16));
	uv_update_time(&f->loop);
	uint64_t start = uv_now(&f->loop);
	storage_submit_held(s, &a.job, 50);
	storage_submit_held(s, &b.job, 50);
	assert_int_equal(storage_pending(s), 2);
	assert_true(storage_cancel(s, &b.job)); /* still held: it never reaches the disk */
	assert_false(storage_cancel(s, &b.job));
	assert_int_equal(storage_pending(s), 1);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.job.status, 0);
	assert_true(uv_now(&f->loop) - start >= 50);
	assert_int_equal(b.calls, 0);

	/* Closing does not wait for a hold: the write is committed before the store closes. */
	storage_submit_held(s, &c.job, 60000);
	close_storage(f, s);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.job.status, 0);
	struct counts cnt = {0};
	load_counts(f->dir, &cnt);
	assert_int_equal(cnt.envelopes, 2);
	assert_int_equal(cnt.last_id, 3);
}

static void test_failed_commit_fails_every_write(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &gate_engine, storage_params(f->dir), NULL, NULL, &s), 0);
	struct tjob jobs[3];
	gate_set(true, true);
	for (size_t i = 0; i < 3; i++) {
		tjob_write(&jobs[i], f, put_op(i + 1, body_1k, 16));
		storage_submit(s, &jobs[i].job);
	}
	gate_set(false, true);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(jobs[i].calls, 1);
		assert_int_equal(jobs[i].job.status, CAIRN_ESTORAGE);
	}
	uint64_t writes;
	storage_stats(s, NULL, &writes, NULL);
	assert_int_equal(writes, 0);
	gate_set(false, false);
	close_storage(f, s);
	struct counts c = {0};
	load_counts(f->dir, &c);
	assert_int_equal(c.envelopes, 0);
}

static void test_reads_return_bodies(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), NULL, NULL, &s),
	                 0);
	static uint8_t big[CAIRN_ENVELOPE_MAX];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 8));
	static const uint32_t lens[] = {0, 1, 1024, CAIRN_ENVELOPE_MAX};
	struct tjob w[4], r[5];
	for (size_t i = 0; i < 4; i++) {
		tjob_write(&w[i], f, put_op(i + 1, big, lens[i]));
		storage_submit(s, &w[i].job);
	}
	/* Reads see what earlier batches committed (a batch's reads run before its writes, so
	 * a subscriber never waits for an fsync): commit the writes first. */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	for (size_t i = 0; i < 5; i++) {
		tjob_read(&r[i], f, i + 1);
		storage_submit(s, &r[i].job);
	}
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(w[i].job.status, 0);
		assert_int_equal(r[i].calls, 1);
		assert_true(r[i].on_loop_thread);
		assert_int_equal(r[i].job.status, 0);
		assert_int_equal(r[i].job.read_len, lens[i]);
		assert_non_null(r[i].job.read_body);
		if (lens[i] > 0)
			assert_memory_equal(r[i].job.read_body, big, lens[i]);
		free(r[i].job.read_body);
	}
	assert_int_equal(r[4].job.status, CAIRN_EDENIED);
	assert_null(r[4].job.read_body);
	close_storage(f, s);
}

/* drain: a STORAGE_READ_ENVELOPES job reads its mailbox's bodies into one buffer in the order
 * asked, absent ones (deleted, or another mailbox's) as STORE_ABSENT; more bytes than the
 * caller counted fail the job and leave it no buffer. */
static void test_batched_read(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), NULL, NULL, &s),
	                 0);
	struct tjob w[4], r[2];
	for (size_t i = 0; i < 3; i++) {
		tjob_write(&w[i], f, put_op(i + 1, body_1k, 100 * (uint32_t)(i + 1)));
		storage_submit(s, &w[i].job);
	}
	struct store_op other = put_op(4, body_1k, 1024);
	other.mailbox_id = 2;
	tjob_write(&w[3], f, other);
	storage_submit(s, &w[3].job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	static const uint64_t ids[] = {3, 4, 9, 1, 2};
	size_t lens[5];
	for (size_t i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].f = f;
		r[i].job.kind = STORAGE_READ_ENVELOPES;
		r[i].job.read_mailbox = 1;
		r[i].job.read_ids = ids;
		r[i].job.n_read = 5;
		r[i].job.read_lens = lens;
		r[i].job.read_cap = 600 - i; /* the second: one byte short */
		r[i].job.done = tjob_done;
		r[i].job.data = &r[i];
	}
	storage_submit(s, &r[0].job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r[0].calls, 1);
	assert_true(r[0].on_loop_thread);
	assert_int_equal(r[0].job.status, 0);
	assert_int_equal(r[0].job.read_len, 600);
	assert_int_equal(lens[0], 300);
	assert_int_equal(lens[1], STORE_ABSENT);
	assert_int_equal(lens[2], STORE_ABSENT);
	assert_int_equal(lens[3], 100);
	assert_int_equal(lens[4], 200);
	assert_memory_equal(r[0].job.read_body, body_1k, 600);
	free(r[0].job.read_body);

	storage_submit(s, &r[1].job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r[1].job.status, CAIRN_ENOBUFS);
	assert_null(r[1].job.read_body);
	assert_int_equal(r[1].job.read_len, 0);
	close_storage(f, s);
}

/* drain: a read queued beside writes is handed back before those writes commit, so a
 * subscriber reading a backlog waits neither for the gathering time nor for the fsync of the
 * deletes its ACKs queued. Here the commit is held at the gate: the read comes back while it
 * is held, and the write only after. */
static void test_read_not_behind_commit(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(
	    storage_open(&f->loop, &gate_engine, storage_params(f->dir), NULL, NULL, &s), 0);
	struct tjob w, d, r;
	tjob_write(&w, f, put_op(1, body_1k, sizeof(body_1k)));
	storage_submit(s, &w.job);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(w.job.status, 0);

	gate_set(true, false);
	tjob_write(
	    &d, f,
	    (struct store_op){.kind = STORE_ENVELOPE_DELETE, .mailbox_id = 1, .envelope_id = 2});
	tjob_read(&r, f, 1);
	storage_submit(s, &d.job);
	storage_submit(s, &r.job);
	gate_wait_entered();
	/* The commit is held: the read must come back all the same (bounded wait). */
	for (int i = 0; i < 2000 && r.calls == 0; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (r.calls == 0)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	assert_int_equal(r.calls, 1);
	assert_int_equal(d.calls, 0);
	assert_int_equal(r.job.status, 0);
	assert_int_equal(r.job.read_len, sizeof(body_1k));
	free(r.job.read_body);
	gate_set(false, false);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.job.status, 0);
	close_storage(f, s);
}

static void test_close_drains_everything(void **state)
{
	struct fixture *f = *state;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), NULL, NULL, &s),
	                 0);
	enum { N = 500 };
	struct tjob *jobs = calloc(N + 1, sizeof(*jobs));
	assert_non_null(jobs);
	for (size_t i = 0; i < N; i++) {
		tjob_write(&jobs[i], f, put_op(i + 1, body_1k, sizeof(body_1k)));
		storage_submit(s, &jobs[i].job);
	}
	/* The last job's done() submits another while the storage is closing: that one is
	 * answered CAIRN_ESHUTDOWN, still on the loop thread, before the close completes. */
	tjob_write(&jobs[N], f, put_op(N + 1, body_1k, 16));
	jobs[N - 1].resubmit_to = s;
	jobs[N - 1].chained = &jobs[N];

	int closed = 0;
	storage_close(s, on_closed, &closed);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(jobs[i].calls, 1);
		assert_int_equal(jobs[i].job.status, 0);
		assert_true(jobs[i].on_loop_thread);
	}
	assert_int_equal(jobs[N].calls, 1);
	assert_int_equal(jobs[N].job.status, CAIRN_ESHUTDOWN);
	assert_int_equal(closed, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed, 1);
	free(jobs);

	struct counts c = {0};
	load_counts(f->dir, &c);
	assert_int_equal(c.envelopes, N);
}

static void test_open_loads_store(void **state)
{
	struct fixture *f = *state;
	void *store;
	assert_int_equal(ENGINE.open(storage_params(f->dir), &store), 0);
	struct store_mailbox m = {.id = 9};
	struct store_op ops[] = {{.kind = STORE_MAILBOX_PUT, .mailbox = &m},
	                         put_op(5, body_1k, 10),
	                         put_op(6, body_1k, 20)};
	assert_int_equal(ENGINE.commit(store, ops, 3), 0);
	ENGINE.close(store);

	struct counts c = {0};
	c.ordered = true;
	struct storage *s;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params(f->dir), &count_cb, &c, &s),
	                 0);
	assert_int_equal(c.mailboxes, 1);
	assert_int_equal(c.envelopes, 2);
	assert_int_equal(c.last_id, 6);
	assert_true(c.ordered);
	uint64_t disk;
	storage_stats(s, NULL, NULL, &disk);
	assert_true(disk > 0);
	close_storage(f, s);

#ifndef CAIRN_TEST_PG /* SQLite: a directory it cannot use */
	struct storage *bad = (struct storage *)1;
	assert_int_equal(storage_open(&f->loop, &ENGINE, storage_params("/tmp/cairn-no-such-dir/x"),
	                              NULL, NULL, &bad),
	                 CAIRN_EIO);
	assert_null(bad);
#endif
}

/* ---- Crash safety ------------------------------------------------------------------------ */

#define CRASH_TOTAL  20000
#define CRASH_WINDOW 256  /* writes in flight */
#define CRASH_ACKED  3000 /* acknowledged writes before the kill */

struct crash {
	struct storage *s;
	struct storage_job *jobs;
	size_t next, acked;
	int fd;
};

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			_exit(3);
		b += w;
		n -= (size_t)w;
	}
}

static void crash_submit_next(struct crash *c)
{
	if (c->next >= CRASH_TOTAL)
		return;
	struct storage_job *job = &c->jobs[c->next];
	job->kind = STORAGE_WRITE;
	job->op = put_op(c->next + 1, body_1k, sizeof(body_1k));
	job->data = c;
	c->next++;
	storage_submit(c->s, job);
}

static void crash_done(struct storage_job *job)
{
	struct crash *c = job->data;
	if (job->status != 0)
		_exit(4);
	/* The relay would answer OK now: record the id as acknowledged. */
	write_all(c->fd, &job->op.envelope_id, sizeof(job->op.envelope_id));
	if (++c->acked >= CRASH_ACKED)
		kill(getpid(), SIGKILL); /* with a window of writes still in flight */
	crash_submit_next(c);
}

static void crash_child(const char *dir, int fd)
{
	static struct crash c;
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0)
		_exit(5);
	c.fd = fd;
	c.jobs = calloc(CRASH_TOTAL, sizeof(*c.jobs));
	if (c.jobs == NULL ||
	    storage_open(&loop, &ENGINE, storage_params(dir), NULL, NULL, &c.s) != 0)
		_exit(6);
	for (size_t i = 0; i < CRASH_TOTAL; i++)
		c.jobs[i].done = crash_done;
	for (size_t i = 0; i < CRASH_WINDOW; i++)
		crash_submit_next(&c);
	uv_run(&loop, UV_RUN_DEFAULT);
	_exit(7); /* not reached: the kill comes first */
}

static void test_kill_keeps_acknowledged_writes(void **state)
{
	struct fixture *f = *state;
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
	uint64_t *acked = calloc(CRASH_TOTAL, sizeof(*acked));
	assert_non_null(acked);
	size_t n = 0, have = 0;
	uint8_t buf[4096];
	for (;;) {
		ssize_t r = read(p[0], buf + have, sizeof(buf) - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		size_t whole = have / 8;
		for (size_t i = 0; i < whole && n < CRASH_TOTAL; i++)
			memcpy(&acked[n++], buf + i * 8, 8);
		memmove(buf, buf + whole * 8, have - whole * 8);
		have -= whole * 8;
	}
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(n, CRASH_ACKED);

#ifndef CAIRN_TEST_PG /* SQLite's file */
	/* The database survived: recovery from the WAL and a clean integrity check. */
	char path[128];
	snprintf(path, sizeof(path), "%s/relay.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
#endif

	struct counts c = {0};
	c.present = calloc(CRASH_TOTAL + 1, 1);
	c.present_cap = CRASH_TOTAL + 1;
	assert_non_null(c.present);
	load_counts(f->dir, &c);
	assert_true(c.ordered);
	assert_true(c.envelopes >= CRASH_ACKED);
	for (size_t i = 0; i < n; i++) {
		assert_true(acked[i] >= 1 && acked[i] <= CRASH_TOTAL);
		assert_int_equal(c.present[acked[i]], 1);
	}
	free(c.present);
	free(acked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_burst_is_group_committed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_queued_job, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancelled_write_never_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_fails_every_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_return_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_not_behind_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_drains_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_loads_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_keeps_acknowledged_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
