/* SPDX-License-Identifier: MIT */
/*
 * The storage thread, the relay's storage engine (storage.h): the loop thread queues jobs,
 * the storage thread takes the whole queue at once, commits its writes as one engine
 * transaction (group commit: one fsync however many senders wait on it), performs its reads,
 * and hands the batch back through a uv_async so every done() callback runs on the loop thread.
 * What each kind of job does on the thread (the runners) is storage_run.c.
 *
 * Reads of log entries (STORAGE_READ_ENTRIES, up to 1 MiB each) are served after the writes,
 * as PROTOCOL.md 5.9 says, and bounded per cycle, so that a crowd of log readers cannot starve
 * the writers: see storage_thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "job_list.h"
#include "storage.h"
#include "storage_internal.h"

/* Job states; IDLE is 0 so a zeroed job is idle. Changed under the mutex once submitted. */
enum {
	JOB_IDLE,
	JOB_HELD,   /* in s->held (loop thread only): queued when its hold ends, or cancelled */
	JOB_QUEUED, /* in s->queue: the storage thread has not seen it, it may be cancelled */
	JOB_TAKEN,  /* in the storage thread's batch */
	JOB_DONE,   /* in s->done, waiting for the loop thread */
};

/* The first ops array holds this many writes; it grows (never shrinks) to the largest batch. */
#define STORAGE_OPS_INITIAL 256

/*
 * Entry reads taken per cycle, at most: the writes submitted meanwhile wait for at most this
 * many (8 MiB of reading at worst) before their own commit starts. The rest stay queued (and
 * cancellable) for the next cycles, in their order. How many the relay queues at all is its
 * own bound (5.9 log_read_batches).
 */
#define STORAGE_ENTRY_READS_PER_CYCLE 8

static struct thread_storage *thread_of(struct storage *base)
{
	return (struct thread_storage *)base;
}

static const struct thread_storage *thread_of_const(const struct storage *base)
{
	return (const struct thread_storage *)base;
}

/* Moves all of FROM to the end of TO in O(1). */
static void list_splice(struct job_list *to, struct job_list *from)
{
	if (from->head == NULL)
		return;
	if (to->tail != NULL) {
		to->tail->next = from->head;
		from->head->prev = to->tail;
	} else {
		to->head = from->head;
	}
	to->tail = from->tail;
	from->head = from->tail = NULL;
}

/* Under mu: hands LIST to the loop thread. Only the loop thread closes the handle, and it
 * joins this thread first, so the handle is valid here. */
static void hand_back(struct thread_storage *s, struct job_list *list)
{
	for (struct storage_job *j = list->head; j != NULL; j = j->next)
		j->state = JOB_DONE;
	list_splice(&s->done, list);
	uv_async_send(&s->async);
}

/*
 * Under mu, serves the envelope reads queued now and hands them back at once, before
 * the writes beside them are gathered and committed: a subscriber draining a backlog then
 * waits for neither the gathering time nor the fsync of the deletes its ACKs queued. They
 * read what earlier batches committed, as the rules in storage.h say; the writes queued with
 * them are not applied yet. Unlocks mu while reading.
 */
static void serve_reads(struct thread_storage *s)
{
	struct job_list reads = {NULL, NULL};
	struct storage_job *next;
	for (struct storage_job *j = s->queue.head; j != NULL; j = next) {
		next = j->next;
		if (j->kind != STORAGE_READ && j->kind != STORAGE_READ_ENVELOPES)
			continue;
		list_remove(&s->queue, j);
		list_append(&reads, j);
		j->state = JOB_TAKEN;
	}
	if (reads.head == NULL)
		return;
	pthread_mutex_unlock(&s->mu);
	for (struct storage_job *j = reads.head; j != NULL; j = j->next) {
		if (j->kind == STORAGE_READ)
			storage_run_read(s, j);
		else
			storage_run_read_envelopes(s, j);
	}
	pthread_mutex_lock(&s->mu);
	hand_back(s, &reads);
}

/*
 * Under mu: moves the queue into BATCH (all of it) and ENTRY_READS (at most
 * STORAGE_ENTRY_READS_PER_CYCLE entry reads; the others stay queued). Returns the number of
 * writes taken.
 */
static size_t take_queue(struct thread_storage *s, struct job_list *batch,
                         struct job_list *entry_reads)
{
	size_t nwrites = 0, nentry_reads = 0;
	struct storage_job *next;
	for (struct storage_job *j = s->queue.head; j != NULL; j = next) {
		next = j->next;
		if (j->kind == STORAGE_READ_ENTRIES) {
			if (nentry_reads == STORAGE_ENTRY_READS_PER_CYCLE)
				continue;
			nentry_reads++;
			list_remove(&s->queue, j);
			list_append(entry_reads, j);
		} else {
			if (j->kind == STORAGE_WRITE)
				nwrites++;
			list_remove(&s->queue, j);
			list_append(batch, j);
		}
		j->state = JOB_TAKEN;
	}
	return nwrites;
}

static bool queue_has(const struct job_list *q, enum storage_job_kind kind)
{
	for (const struct storage_job *j = q->head; j != NULL; j = j->next)
		if (j->kind == kind)
			return true;
	return false;
}

static void *storage_thread(void *arg)
{
	struct thread_storage *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->queue.head == NULL && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->queue.head == NULL)
			break; /* stopping, and nothing left to do */
		serve_reads(s); /* drain */
		if (s->queue.head == NULL)
			continue;
		if (!s->stopping && queue_has(&s->queue, STORAGE_WRITE)) {
			/* Gather: writes submitted in the next moments share this batch's fsync,
			 * and an envelope its owner acknowledges meanwhile is cancelled before it
			 * ever reaches the disk (online traffic then costs no I/O at all). The
			 * readers were served just before (serve_reads): a subscriber draining a
			 * backlog does not pay the gathering time on every window of envelopes. */
			pthread_mutex_unlock(&s->mu);
			struct timespec ts = {0, CAIRN_STORAGE_GATHER_US * 1000L};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&s->mu);
			serve_reads(s); /* those that came while it gathered */
			if (s->queue.head == NULL)
				continue; /* everything was cancelled */
		}

		/* Take the whole queue: everything submitted while the last batch was being
		 * committed shares this batch's fsync. Entry reads only up to their bound. */
		struct job_list batch = {NULL, NULL}, entry_reads = {NULL, NULL};
		size_t nwrites = take_queue(s, &batch, &entry_reads);
		pthread_mutex_unlock(&s->mu);

		/* Reads first: a reader (a subscriber waiting for a stored envelope) should not
		 * wait for this batch's fsync. The relay reads only envelopes whose write has
		 * already completed, so reading before this batch's writes sees them. */
		for (struct storage_job *j = batch.head; j != NULL; j = j->next) {
			if (j->kind == STORAGE_READ)
				storage_run_read(s, j);
			else if (j->kind == STORAGE_READ_ENVELOPES)
				storage_run_read_envelopes(s, j); /* drain */
		}
		/* Claims before the writes, so a handshake does not wait for their
		 * fsync. */
		storage_run_claims(s, batch.head);
		uint64_t committed = 0, transactions = 0;
		if (nwrites > 0)
			transactions = storage_run_writes(s, batch.head, nwrites, &committed);
		for (struct storage_job *j = batch.head; j != NULL; j = j->next)
			if (j->kind == STORAGE_FEED)
				storage_run_feed(s, j);
		if (transactions > 0) {
			atomic_fetch_add(&s->stat_batches, transactions);
			atomic_fetch_add(&s->stat_writes, committed);
			atomic_store(&s->stat_disk_bytes, s->engine->disk_bytes(s->store));
			if (s->engine->free_bytes != NULL)
				atomic_store(&s->stat_free_bytes, s->engine->free_bytes(s->store));
		}

		pthread_mutex_lock(&s->mu);
		if (batch.head != NULL)
			hand_back(s, &batch);
		if (entry_reads.head == NULL)
			continue;
		pthread_mutex_unlock(&s->mu);

		/* Entry reads last (5.9: read batches after write batches), and after the writers
		 * have been handed back, so no sender's OK waits for a reader. They see this
		 * batch's writes too: an entry deleted by one is absent (CAIRN_EDENIED). */
		for (struct storage_job *j = entry_reads.head; j != NULL; j = j->next)
			storage_run_read_entries(s, j);
		pthread_mutex_lock(&s->mu);
		hand_back(s, &entry_reads);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Loop thread: calls done() for every finished job. A done() may submit new jobs or free its
 * own, so the next pointer is read before each call. */
static void drain_done(struct thread_storage *s)
{
	for (;;) {
		pthread_mutex_lock(&s->mu);
		struct storage_job *job = s->done.head;
		s->done.head = s->done.tail = NULL;
		pthread_mutex_unlock(&s->mu);
		if (job == NULL)
			return;
		while (job != NULL) {
			struct storage_job *next = job->next;
			job->prev = job->next = NULL;
			job->state = JOB_IDLE;
			if (--s->pending == 0)
				uv_unref((uv_handle_t *)&s->async);
			job->done(job);
			job = next;
		}
	}
}

static void on_async(uv_async_t *handle)
{
	drain_done(handle->data);
}

static void storage_free(struct thread_storage *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->ops);
	free(s->batch_writes);
	free(s->entries);
	free(s->reserve_path);
	free(s);
}

/* Stops the thread after it has finished everything queued, and waits for it. */
static void stop_thread(struct thread_storage *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
}

static const struct storage_ops thread_ops;

int storage_open(uv_loop_t *loop, const struct store_engine *engine,
                 const struct store_params *params, const struct store_load_cb *cb, void *cb_ctx,
                 struct storage **out)
{
	*out = NULL;
	if (loop == NULL || engine == NULL || params == NULL || params->dir == NULL)
		return CAIRN_EINVAL;
	const char *dir = params->dir;
	struct thread_storage *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CAIRN_ENOMEM;
	s->base.ops = &thread_ops;
	s->loop = loop;
	s->engine = engine;
	atomic_init(&s->stat_batches, 0);
	atomic_init(&s->stat_writes, 0);
	atomic_init(&s->stat_disk_bytes, 0);
	for (size_t i = 0; i <= STORAGE_LATENCY_BUCKETS; i++)
		atomic_init(&s->stat_latency[i], 0);
	for (size_t i = 0; i <= STORAGE_BATCH_BUCKETS; i++)
		atomic_init(&s->stat_batch[i], 0);
	atomic_init(&s->stat_latency_sum_us, 0);
	atomic_init(&s->stat_batch_sum, 0);
	atomic_init(&s->stat_free_bytes, 0);
	s->ops = malloc(STORAGE_OPS_INITIAL * sizeof(*s->ops));
	s->batch_writes = malloc(STORAGE_OPS_INITIAL * sizeof(*s->batch_writes));
	if (s->ops == NULL || s->batch_writes == NULL) {
		free(s->ops);
		free(s->batch_writes);
		free(s);
		return CAIRN_ENOMEM;
	}
	s->ops_cap = STORAGE_OPS_INITIAL;
	size_t plen = strlen(dir) + sizeof("/" STORAGE_RESERVE_FILE);
	s->reserve_path = malloc(plen);
	if (s->reserve_path != NULL)
		snprintf(s->reserve_path, plen, "%s/%s", dir, STORAGE_RESERVE_FILE);
	if (s->reserve_path == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->reserve_path);
		free(s->ops);
		free(s->batch_writes);
		free(s);
		return CAIRN_ENOMEM;
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s->ops);
		free(s->batch_writes);
		free(s);
		return CAIRN_ENOMEM;
	}

	int rc = engine->open(params, &s->store);
	if (rc != 0)
		goto fail;
	if (cb != NULL && (rc = engine->load(s->store, cb, cb_ctx)) != 0)
		goto fail_store;
	atomic_store(&s->stat_disk_bytes, engine->disk_bytes(s->store));
	if (engine->free_bytes != NULL)
		atomic_store(&s->stat_free_bytes, engine->free_bytes(s->store));

	/* The thread blocks every signal, so process signals reach the loop thread (and libuv's
	 * signal handling) rather than interrupting a commit. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&s->thread, NULL, storage_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		rc = CAIRN_ENOMEM;
		goto fail_store;
	}

	/* The thread sends on the handle only after a job, and none can be queued before this
	 * function returns, so initialising it after the thread starts is safe. */
	if (uv_async_init(loop, &s->async, on_async) != 0) {
		stop_thread(s);
		rc = CAIRN_EIO;
		goto fail_store;
	}
	s->async.data = s;
	uv_timer_init(loop, &s->hold_timer);
	s->hold_timer.data = s;
	s->handles_open = 2;
	/* Referenced only while jobs are pending: an idle store does not keep uv_run alive, a
	 * busy one does until its callbacks have run. */
	uv_unref((uv_handle_t *)&s->async);
	*out = &s->base;
	return 0;

fail_store:
	engine->close(s->store);
fail:
	storage_free(s);
	return rc;
}

/* Hands JOB to the storage thread (it is already counted in s->pending). */
static void enqueue(struct thread_storage *s, struct storage_job *job)
{
	pthread_mutex_lock(&s->mu);
	job->state = JOB_QUEUED;
	bool was_empty = s->queue.head == NULL;
	list_append(&s->queue, job);
	/* A non-empty queue means the thread is busy with a batch or already woken. */
	if (was_empty)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void thread_submit(struct storage *base, struct storage_job *job)
{
	struct thread_storage *s = thread_of(base);
	job->status = 0;
	job->prev = job->next = NULL;
	if (s->pending++ == 0)
		uv_ref((uv_handle_t *)&s->async);
	if (s->closing) {
		/* The thread is gone. Fail the job from the loop, never from inside submit, so
		 * the caller's done() does not run re-entrantly. */
		job->status = CAIRN_ESHUTDOWN;
		if (job->kind != STORAGE_WRITE) {
			job->read_body = NULL;
			job->read_len = 0;
		}
		pthread_mutex_lock(&s->mu);
		job->state = JOB_DONE;
		list_append(&s->done, job);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	enqueue(s, job);
}

/* Queues every held job whose hold has ended, or all of them when ALL. */
static void release_held(struct thread_storage *s, bool all)
{
	uint64_t now = uv_now(s->loop);
	struct storage_job *job;
	while ((job = s->held.head) != NULL && (all || job->due_ms <= now)) {
		list_remove(&s->held, job);
		enqueue(s, job);
	}
}

static void on_hold_timer(uv_timer_t *timer)
{
	struct thread_storage *s = timer->data;
	release_held(s, false);
	if (s->held.head != NULL)
		uv_timer_start(timer, on_hold_timer, s->held.head->due_ms - uv_now(s->loop), 0);
}

static void thread_submit_held(struct storage *base, struct storage_job *job, uint64_t hold_ms)
{
	struct thread_storage *s = thread_of(base);
	if (hold_ms == 0 || s->closing) {
		thread_submit(base, job);
		return;
	}
	job->status = 0;
	if (s->pending++ == 0)
		uv_ref((uv_handle_t *)&s->async);
	job->state = JOB_HELD;
	job->due_ms = uv_now(s->loop) + hold_ms;
	/* One hold for every job, so appending keeps the list in due order. */
	list_append(&s->held, job);
	if (!uv_is_active((uv_handle_t *)&s->hold_timer))
		uv_timer_start(&s->hold_timer, on_hold_timer, hold_ms, 0);
}

static bool thread_cancel(struct storage *base, struct storage_job *job)
{
	struct thread_storage *s = thread_of(base);
	bool removed = false;
	if (job->state == JOB_HELD) {
		list_remove(&s->held, job);
		job->state = JOB_IDLE;
		if (--s->pending == 0)
			uv_unref((uv_handle_t *)&s->async);
		return true;
	}
	pthread_mutex_lock(&s->mu);
	if (job->state == JOB_QUEUED) {
		list_remove(&s->queue, job);
		job->state = JOB_IDLE;
		removed = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (removed && --s->pending == 0)
		uv_unref((uv_handle_t *)&s->async);
	return removed;
}

static size_t thread_pending(const struct storage *base)
{
	return thread_of_const(base)->pending;
}

static void thread_stats(const struct storage *base, uint64_t *batches, uint64_t *writes,
                         uint64_t *disk_bytes)
{
	const struct thread_storage *s = thread_of_const(base);
	if (batches != NULL)
		*batches = atomic_load(&s->stat_batches);
	if (writes != NULL)
		*writes = atomic_load(&s->stat_writes);
	if (disk_bytes != NULL)
		*disk_bytes = atomic_load(&s->stat_disk_bytes);
}

static void thread_metrics(const struct storage *base, struct storage_metrics *out)
{
	const struct thread_storage *s = thread_of_const(base);
	thread_stats(base, &out->batches, &out->writes, &out->disk_bytes);
	for (size_t i = 0; i <= STORAGE_LATENCY_BUCKETS; i++)
		out->latency[i] = atomic_load_explicit(&s->stat_latency[i], memory_order_relaxed);
	out->latency_sum_us = atomic_load_explicit(&s->stat_latency_sum_us, memory_order_relaxed);
	for (size_t i = 0; i <= STORAGE_BATCH_BUCKETS; i++)
		out->batch[i] = atomic_load_explicit(&s->stat_batch[i], memory_order_relaxed);
	out->batch_sum = atomic_load_explicit(&s->stat_batch_sum, memory_order_relaxed);
}

static uint64_t thread_free_bytes(const struct storage *base)
{
	return atomic_load(&thread_of_const(base)->stat_free_bytes);
}

static void on_closed(uv_handle_t *handle)
{
	struct thread_storage *s = handle->data;
	if (--s->handles_open > 0)
		return;
	/* Jobs submitted by done() callbacks after storage_close returned. */
	drain_done(s);
	void (*closed)(void *) = s->closed;
	void *arg = s->closed_arg;
	storage_free(s);
	if (closed != NULL)
		closed(arg);
}

static void thread_close(struct storage *base, void (*closed)(void *arg), void *arg)
{
	struct thread_storage *s = thread_of(base);
	s->closing = true;
	s->closed = closed;
	s->closed_arg = arg;
	/* Held writes are due now: a sender is waiting for each. */
	release_held(s, true);
	uv_timer_stop(&s->hold_timer);
	/* Blocks the loop for at most the batch in progress plus what is queued: shutdown
	 * only, and every queued write must be durable and answered before the store closes. */
	stop_thread(s);
	drain_done(s);
	s->engine->close(s->store);
	s->store = NULL;
	uv_close((uv_handle_t *)&s->async, on_closed);
	uv_close((uv_handle_t *)&s->hold_timer, on_closed);
}

static const struct storage_ops thread_ops = {
    .submit = thread_submit,
    .submit_held = thread_submit_held,
    .cancel = thread_cancel,
    .pending = thread_pending,
    .stats = thread_stats,
    .metrics = thread_metrics,
    .close = thread_close,
    .free_bytes = thread_free_bytes,
};
