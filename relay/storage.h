/* SPDX-License-Identifier: MIT */
/*
 * The relay's storage, an interface with two engines behind it, chosen at run time by whoever
 * makes struct relay: the storage thread (storage_open, storage.c), which the relay runs, and
 * the deterministic in-memory one (memstorage.h), which tests and the fuzzer drive step by
 * step. Both keep the same rules, which the command layer depends on: write jobs queued since
 * the last commit are committed as one transaction; a batch's reads run before its writes, so
 * a read sees what earlier batches committed; done() callbacks run on the loop thread; a job
 * not yet taken can be cancelled, so an envelope that its owner acknowledged before its batch
 * was taken never touches the disk.
 *
 * The storage thread owns the store engine, takes jobs from the loop thread, gathers for
 * CAIRN_STORAGE_GATHER_US, commits (one fsync for the batch: group commit) and wakes the loop
 * (uv_async), where each job's done callback runs.
 */
#ifndef CAIRN_RELAY_STORAGE_H
#define CAIRN_RELAY_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "store.h"

struct storage;
struct storage_metrics;

/*
 * The reserve: a file of [limits] disk_reserve bytes in the data directory, made by the relay
 * while the disk has room (admission.c), that the storage thread deletes the moment a commit
 * fails for want of space. Its room lets the deletes of acknowledged envelopes, expiry and
 * the WAL's checkpoint go on when the disk is full, however it filled up (another process,
 * or the relay itself between two samples of the free space).
 */
#define STORAGE_RESERVE_FILE "reserve"

enum storage_job_kind {
	STORAGE_WRITE, /* apply OP in the next batch */
	STORAGE_READ,  /* read envelope READ_ID of READ_MAILBOX into a buffer the job then owns */
	/* Read the bodies of log entries READ_IDS[0..N_READ) (at most STORAGE_READ_ENTRIES_MAX,
	 * borrowed until done) into one buffer, concatenated in that order (the caller knows each
	 * length); READ_LEN is the total. If one is absent (deleted by a batch committed before
	 * this read ran), the job fails with CAIRN_EDENIED and READ_BODY is NULL. */
	STORAGE_READ_ENTRIES,
	/* Claim CLAIM_KEY until CLAIM_UNTIL for every node on the store (store.h
	 * claim_once); CLAIM_FRESH says whether this claim was the first. The claims waiting are
	 * taken together, after the batch's reads and before its writes, at most
	 * STORE_CLAIM_MAX per engine call. An engine without claim_once fails it (CAIRN_ESTATE). */
	STORAGE_CLAIM,
	/* The rows other nodes committed (store.h feed_read, engines that have it),
	 * into FEED, which the job then owns (store_feed_free); STATUS is feed_read's. */
	STORAGE_FEED,
	/* Read the bodies of envelopes READ_IDS[0..N_READ) of READ_MAILBOX (at most
	 * STORAGE_READ_ENVELOPES_MAX, borrowed until done), READ_CAP bytes in all by the caller's
	 * count, into one buffer READ_BODY, concatenated in that order; READ_LENS[i] (the
	 * caller's array) gets each length, or STORE_ABSENT for one no longer stored. */
	STORAGE_READ_ENVELOPES,
};

#define STORAGE_READ_ENTRIES_MAX 64
/* Envelopes one STORAGE_READ_ENVELOPES job reads at most. */
#define STORAGE_READ_ENVELOPES_MAX 256

struct storage_job {
	enum storage_job_kind kind;
	struct store_op op;       /* STORAGE_WRITE; pointers in it must live until done() */
	uint64_t read_id;         /* STORAGE_READ */
	uint64_t read_mailbox;    /* STORAGE_READ: the store id of READ_ID's mailbox */
	const uint64_t *read_ids; /* STORAGE_READ_ENTRIES */
	size_t n_read;
	uint8_t *read_body; /* STORAGE_READ(_ENTRIES) result: malloc'd, owned by the caller after
	                       done() */
	size_t read_len;
	struct store_feed feed; /* STORAGE_FEED's result */
	size_t *read_lens;      /* STORAGE_READ_ENVELOPES, N_READ entries, the caller's */
	size_t read_cap;        /* STORAGE_READ_ENVELOPES, the bodies' total by the caller */
	int status; /* 0 or a CAIRN_E code, set before done() */
	/* Runs on the loop thread once the job is durable (writes) or read (reads). The job is
	 * no longer referenced by the storage thread when it runs, so it may free the job. */
	void (*done)(struct storage_job *job);
	void *data; /* the caller's */
	/* Private to the storage engine. */
	struct storage_job *prev, *next;
	int state;
	uint64_t due_ms; /* a held job's end of hold, loop time (the storage thread) */

	/* STORAGE_CLAIM */
	uint8_t claim_key[32]; /* a keyed hash, never a handshake's key (conn.c) */
	int64_t claim_until;   /* seconds since the epoch */
	bool claim_fresh;      /* the result, with status 0 */
};

/*
 * What a storage engine does; struct relay reaches it only through these (one indirect call
 * per job). Every engine's own struct begins with struct storage.
 */
struct storage_ops {
	void (*submit)(struct storage *s, struct storage_job *job);
	void (*submit_held)(struct storage *s, struct storage_job *job, uint64_t hold_ms);
	bool (*cancel)(struct storage *s, struct storage_job *job);
	size_t (*pending)(const struct storage *s);
	void (*stats)(const struct storage *s, uint64_t *batches, uint64_t *writes,
	              uint64_t *disk_bytes);
	/* May be NULL (an engine without histograms: storage_metrics gives zeros). */
	void (*metrics)(const struct storage *s, struct storage_metrics *out);
	void (*close)(struct storage *s, void (*closed)(void *arg), void *arg);
	/* Bytes free inside the store (store.h free_bytes), as of the last commit; NULL: 0. */
	uint64_t (*free_bytes)(const struct storage *s);
};

struct storage {
	const struct storage_ops *ops;
};

/*
 * The commit histograms' fixed buckets (upper bounds, storage.c): latency of one engine
 * commit (transaction and fsync) in microseconds, and writes per commit. Counts are kept per
 * bucket, plus one above the last bound; metrics.c makes them cumulative.
 */
#define STORAGE_LATENCY_BUCKETS 12
#define STORAGE_BATCH_BUCKETS   11
extern const uint64_t storage_latency_bounds_us[STORAGE_LATENCY_BUCKETS];
extern const uint64_t storage_batch_bounds[STORAGE_BATCH_BUCKETS];

/* What storage_metrics reads: storage_stats's figures and the commit histograms. */
struct storage_metrics {
	uint64_t batches, writes, disk_bytes;
	uint64_t latency[STORAGE_LATENCY_BUCKETS + 1]; /* commits per bucket; last: above all */
	uint64_t latency_sum_us;
	uint64_t batch[STORAGE_BATCH_BUCKETS + 1];
	uint64_t batch_sum; /* writes in the commits counted */
};

/*
 * Opens ENGINE's store at PARAMS (borrowed; PARAMS->dir is the data directory, which also
 * holds the disk reserve file), starts the storage thread and registers the wake-up handle on
 * LOOP. Calls CB for every stored mailbox and envelope before returning (synchronously, from
 * the calling thread, before the storage thread starts). Returns 0 or a CAIRN_E code; *OUT is
 * owned by the caller and freed by storage_close.
 */
int storage_open(uv_loop_t *loop, const struct store_engine *engine,
                 const struct store_params *params, const struct store_load_cb *cb, void *cb_ctx,
                 struct storage **out);

/* Queues JOB (loop thread only). JOB must stay valid until its done() runs. */
static inline void storage_submit(struct storage *s, struct storage_job *job)
{
	s->ops->submit(s, job);
}

/*
 * Queues the write JOB only after HOLD_MS (loop thread only), unless storage_cancel takes it
 * back first: for a write that will probably be cancelled soon, such as an envelope whose
 * owner is online and will acknowledge it within milliseconds. Every caller must use the same
 * HOLD_MS (held jobs are kept in submission order). storage_close queues held jobs at once.
 */
static inline void storage_submit_held(struct storage *s, struct storage_job *job, uint64_t hold_ms)
{
	s->ops->submit_held(s, job, hold_ms);
}

/*
 * Removes JOB from the queue if the storage has not taken it yet (loop thread only). Returns
 * true if it was removed: its done() will never run and the caller owns it again.
 */
static inline bool storage_cancel(struct storage *s, struct storage_job *job)
{
	return s->ops->cancel(s, job);
}

/* Jobs submitted and not yet done (queued or in the current batch). */
static inline size_t storage_pending(const struct storage *s)
{
	return s->ops->pending(s);
}

/* Statistics, loop thread: batches committed, write jobs committed, bytes on disk (each
 * pointer may be NULL). */
static inline void storage_stats(const struct storage *s, uint64_t *batches, uint64_t *writes,
                                 uint64_t *disk_bytes)
{
	s->ops->stats(s, batches, writes, disk_bytes);
}

/* Statistics and commit histograms, loop thread: a reading of counters the storage thread
 * updates with atomics, so a commit in progress may show in one figure and not yet another. */
static inline void storage_metrics(const struct storage *s, struct storage_metrics *out)
{
	memset(out, 0, sizeof(*out));
	if (s->ops->metrics != NULL)
		s->ops->metrics(s, out);
	else
		s->ops->stats(s, &out->batches, &out->writes, &out->disk_bytes);
}

/* Room inside the store that inserts reuse before it grows on disk (loop thread). */
static inline uint64_t storage_free_bytes(const struct storage *s)
{
	return s->ops->free_bytes != NULL ? s->ops->free_bytes(s) : 0;
}

/*
 * Finishes every queued job (their done() callbacks run), stops the engine, closes the store
 * and frees S, then calls CLOSED(ARG) (the storage thread: from the loop, once its handle is
 * closed). Loop thread only.
 */
static inline void storage_close(struct storage *s, void (*closed)(void *arg), void *arg)
{
	s->ops->close(s, closed, arg);
}

#endif
