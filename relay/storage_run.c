/* SPDX-License-Identifier: MIT */
/*
 * The storage thread's runners, which storage_thread (storage.c) calls: each runs one kind of
 * job on the storage thread against the engine (store.h): a batch's writes as group commits,
 * the reads of envelopes and of log entries, the claims and the change feed's read. Each
 * commit is counted here too, in the buckets whose bounds storage.h declares.
 *
 * A batch that fails for want of space gives up the reserve file and commits again without
 * its inserts (commit_short_of_space), so acknowledgements still free room on a full disk.
 *
 * Apart from storage.c, which keeps the queue, the thread's cycle and the loop thread's side
 * (submit, hold, cancel, close), so that each reads on its own; the two share struct
 * thread_storage through storage_internal.h.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "storage_internal.h"

/* One entry read's bodies, at most: a batch of the largest entries. */
#define STORAGE_ENTRIES_CAP ((size_t)STORAGE_READ_ENTRIES_MAX * CAIRN_LOG_ENTRY_MAX)

/* Fixed, so a scrape's buckets never change: from a fast SSD's commit to a stalled disk. */
const uint64_t storage_latency_bounds_us[STORAGE_LATENCY_BUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};
const uint64_t storage_batch_bounds[STORAGE_BATCH_BUCKETS] = {1,  2,   4,   8,   16,  32,
                                                              64, 128, 256, 512, 1024};

static size_t bucket_of(const uint64_t *bounds, size_t n, uint64_t v)
{
	size_t i = 0;
	while (i < n && v > bounds[i])
		i++;
	return i;
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One commit of N writes that took US microseconds (storage thread): relaxed atomics, a few
 * nanoseconds beside a commit's fsync. */
static void count_commit(struct thread_storage *s, size_t n, uint64_t us)
{
	atomic_fetch_add_explicit(
	    &s->stat_latency[bucket_of(storage_latency_bounds_us, STORAGE_LATENCY_BUCKETS, us)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&s->stat_latency_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &s->stat_batch[bucket_of(storage_batch_bounds, STORAGE_BATCH_BUCKETS, n)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&s->stat_batch_sum, n, memory_order_relaxed);
}

/*
 * Makes room for N ops. Returns how many fit: N, or the old capacity if growing failed, in
 * which case the caller commits the batch in several transactions (still correct, since each
 * job only needs its own op durable, just slower).
 */
static size_t ops_reserve(struct thread_storage *s, size_t n)
{
	if (n <= s->ops_cap)
		return n;
	size_t cap = s->ops_cap;
	while (cap < n)
		cap *= 2;
	struct store_op *ops = realloc(s->ops, cap * sizeof(*ops));
	if (ops == NULL)
		return s->ops_cap;
	s->ops = ops;
	struct storage_job **jobs = realloc(s->batch_writes, cap * sizeof(*jobs));
	if (jobs == NULL)
		return s->ops_cap; /* ops is larger than ops_cap now; harmless */
	s->batch_writes = jobs;
	s->ops_cap = cap;
	return n;
}

/* Whether OP adds rows (and so may need more of the disk), as opposed to changing, deleting
 * or marking: what a full disk refuses while it lets the rest through. */
static bool op_grows(const struct store_op *op)
{
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
	case STORE_ENVELOPE_PUT:
	case STORE_LOG_PUT:
	case STORE_LOG_ENTRY_PUT:
		return true;
	default:
		return false;
	}
}

/*
 * The N ops in s->ops failed for want of space. Gives up the reserve (storage.h) so the disk
 * has room for the rest, fails the ops that add rows with CAIRN_ECAPACITY (their senders get
 * `full`: nothing of them was stored) and commits the others (deletes, expiry, touches, the
 * id mark) again alone, so that acknowledgements go on freeing room; then truncates the
 * engine's journal so the deletes' room reaches the file system. Returns how many ops
 * committed.
 */
static size_t commit_short_of_space(struct thread_storage *s, size_t n)
{
	if (s->reserve_path != NULL)
		(void)unlink(s->reserve_path); /* absent already is fine */
	s->short_of_space = true;
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (op_grows(&s->ops[i])) {
			s->batch_writes[i]->status = CAIRN_ECAPACITY;
			continue;
		}
		s->ops[kept] = s->ops[i];
		s->batch_writes[kept] = s->batch_writes[i];
		kept++;
	}
	int rc = s->engine->commit(s->store, s->ops, kept);
	if (rc != 0 && rc != CAIRN_ECAPACITY)
		rc = CAIRN_ESTORAGE;
	for (size_t i = 0; i < kept; i++)
		s->batch_writes[i]->status = rc;
	return rc == 0 ? kept : 0;
}

/* Commits every write of BATCH, in submission order. Returns how many transactions ran. */
uint64_t storage_run_writes(struct thread_storage *s, struct storage_job *batch, size_t nwrites,
                            uint64_t *committed)
{
	uint64_t transactions = 0;
	size_t room = ops_reserve(s, nwrites);
	struct storage_job *job = batch;
	while (nwrites > 0) {
		size_t n = 0;
		bool grows = false;
		for (; job != NULL && n < room; job = job->next) {
			if (job->kind != STORAGE_WRITE)
				continue;
			s->ops[n] = job->op;
			s->batch_writes[n] = job;
			grows = grows || op_grows(&job->op);
			n++;
		}
		nwrites -= n;
		transactions++;
		uint64_t t0 = monotonic_us();
		int rc = s->engine->commit(s->store, s->ops, n);
		count_commit(s, n, monotonic_us() - t0);
		if (rc == CAIRN_ECAPACITY) {
			*committed += commit_short_of_space(s, n);
			continue;
		}
		if (rc != 0)
			rc = CAIRN_ESTORAGE;
		else
			*committed += n;
		for (size_t i = 0; i < n; i++)
			s->batch_writes[i]->status = rc;
		/* An insert that fitted: the disk has room again. */
		if (rc == 0 && grows)
			s->short_of_space = false;
	}
	/* While short of space, every batch's deletes are given back to the file system. */
	if (s->short_of_space && s->engine->reclaim != NULL)
		(void)s->engine->reclaim(s->store);
	return transactions;
}

/* Reads into the scratch buffer, then copies into an allocation of the body's exact size. */
void storage_run_read(struct thread_storage *s, struct storage_job *job)
{
	size_t len = 0;
	job->read_body = NULL;
	job->read_len = 0;
	int rc = s->engine->read_envelope(s->store, job->read_mailbox, job->read_id, s->scratch,
	                                  sizeof(s->scratch), &len);
	if (rc == 0) {
		/* malloc(0) may return NULL; an empty body still gets a valid pointer. */
		job->read_body = malloc(len > 0 ? len : 1);
		if (job->read_body == NULL) {
			rc = CAIRN_ENOMEM;
		} else {
			memcpy(job->read_body, s->scratch, len);
			job->read_len = len;
		}
	}
	job->status = rc;
}

/*
 * STORAGE_READ_ENVELOPES. Reads straight into one allocation of the caller's count
 * (READ_CAP), in one engine call when the engine offers read_envelopes (one transaction),
 * else one read_envelope each; an envelope no longer stored is STORE_ABSENT, not an error.
 */
void storage_run_read_envelopes(struct thread_storage *s, struct storage_job *job)
{
	const struct store_engine *e = s->engine;
	size_t n = job->n_read, cap = job->read_cap, total = 0;
	job->read_body = NULL;
	job->read_len = 0;
	int rc = 0;
	if (n > STORAGE_READ_ENVELOPES_MAX ||
	    (n > 0 && (job->read_ids == NULL || job->read_lens == NULL)) ||
	    cap > (size_t)STORAGE_READ_ENVELOPES_MAX * CAIRN_ENVELOPE_MAX)
		rc = CAIRN_EINVAL;
	else if ((job->read_body = malloc(cap > 0 ? cap : 1)) == NULL)
		rc = CAIRN_ENOMEM;
	else if (e->read_envelopes != NULL)
		rc = e->read_envelopes(s->store, job->read_mailbox, job->read_ids, n,
		                       job->read_body, cap, job->read_lens);
	for (size_t i = 0; rc == 0 && e->read_envelopes == NULL && i < n; i++) {
		size_t len = 0;
		rc = e->read_envelope(s->store, job->read_mailbox, job->read_ids[i],
		                      job->read_body + total, cap - total, &len);
		job->read_lens[i] = rc == CAIRN_EDENIED ? STORE_ABSENT : len;
		total += len;
		if (rc == CAIRN_EDENIED)
			rc = 0;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		job->read_len += job->read_lens[i] == STORE_ABSENT ? 0 : job->read_lens[i];
	if (rc != 0) {
		free(job->read_body);
		job->read_body = NULL;
		job->read_len = 0;
	}
	job->status = rc;
}

/*
 * Reads the entries' bodies one after the other into the entries buffer (each fits: none is
 * above CAIRN_LOG_ENTRY_MAX), in one read transaction when the engine offers
 * read_log_entries, else one read_log_entry each; then copies them into one allocation of
 * their total size.
 */
void storage_run_read_entries(struct thread_storage *s, struct storage_job *job)
{
	job->read_body = NULL;
	job->read_len = 0;
	int rc = 0;
	size_t total = 0;
	const struct store_engine *e = s->engine;
	if (job->n_read > STORAGE_READ_ENTRIES_MAX || (job->n_read > 0 && job->read_ids == NULL) ||
	    (e->read_log_entries == NULL && e->read_log_entry == NULL))
		rc = CAIRN_EINVAL;
	else if (s->entries == NULL && (s->entries = malloc(STORAGE_ENTRIES_CAP)) == NULL)
		rc = CAIRN_ENOMEM;
	if (rc == 0 && e->read_log_entries != NULL) {
		rc = e->read_log_entries(s->store, job->read_ids, job->n_read, s->entries,
		                         STORAGE_ENTRIES_CAP, &total);
	} else {
		for (size_t i = 0; rc == 0 && i < job->n_read; i++) {
			size_t len = 0;
			rc = e->read_log_entry(s->store, job->read_ids[i], s->entries + total,
			                       STORAGE_ENTRIES_CAP - total, &len);
			total += len;
		}
	}
	if (rc == 0) {
		job->read_body = malloc(total > 0 ? total : 1);
		if (job->read_body == NULL) {
			rc = CAIRN_ENOMEM;
		} else {
			memcpy(job->read_body, s->entries, total);
			job->read_len = total;
		}
	}
	job->status = rc;
}

/* The batch's claims, STORE_CLAIM_MAX per engine call (each one transaction). */
void storage_run_claims(struct thread_storage *s, struct storage_job *batch)
{
	struct storage_job *jobs[STORE_CLAIM_MAX];
	uint8_t keys[STORE_CLAIM_MAX][32];
	bool fresh[STORE_CLAIM_MAX];
	struct storage_job *j = batch;
	for (;;) {
		size_t n = 0;
		int64_t until = 0;
		for (; j != NULL && n < STORE_CLAIM_MAX; j = j->next) {
			if (j->kind != STORAGE_CLAIM)
				continue;
			jobs[n] = j;
			memcpy(keys[n], j->claim_key, sizeof(keys[n]));
			/* One UNTIL per call: the latest, so no claim is forgotten early. */
			if (n == 0 || j->claim_until > until)
				until = j->claim_until;
			n++;
		}
		if (n == 0)
			return;
		int rc = s->engine->claim_once != NULL
		             ? s->engine->claim_once(s->store, (const uint8_t(*)[32])keys, n, until,
		                                     fresh)
		             : CAIRN_ESTATE;
		for (size_t i = 0; i < n; i++) {
			jobs[i]->status = rc;
			jobs[i]->claim_fresh = rc == 0 && fresh[i];
		}
	}
}

/* STORAGE_FEED, between batches (after this batch's writes): the other nodes'
 * rows past the engine's cursors, owned by JOB from here. */
void storage_run_feed(struct thread_storage *s, struct storage_job *job)
{
	memset(&job->feed, 0, sizeof(job->feed));
	job->status = s->engine->feed_read != NULL ? s->engine->feed_read(s->store, &job->feed)
	                                           : CAIRN_EINVAL;
}
