/* SPDX-License-Identifier: MIT */
/*
 * What the storage thread's two files share: its struct, and the runners (storage_run.c)
 * that its cycle (storage_thread, storage.c) calls to run one kind of job on the storage
 * thread. Private to storage.c and storage_run.c; each runner is described where it is
 * defined.
 */
#ifndef CAIRN_RELAY_STORAGE_INTERNAL_H
#define CAIRN_RELAY_STORAGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cairn/limits.h"
#include "job_list.h"
#include "storage.h"
#include "store.h"

struct thread_storage {
	struct storage base; /* first: struct storage * points here */
	uv_loop_t *loop;
	uv_async_t async;
	const struct store_engine *engine;
	void *store;
	pthread_t thread;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job_list queue; /* mu: submitted, not yet taken */
	struct job_list done;  /* mu: finished, done() not yet called */
	bool stopping;         /* mu: finish the queue, then exit */

	/* Loop thread only. */
	size_t pending; /* submitted and done() not yet called; the handle is ref'd while > 0 */
	struct job_list held; /* writes held back (storage_submit_held), in due order */
	uv_timer_t hold_timer;
	int handles_open; /* async and hold_timer: the struct is freed when both are closed */
	bool closing;     /* storage_close has run: later submissions fail with CAIRN_ESHUTDOWN */
	void (*closed)(void *arg);
	void *closed_arg;

	/* Storage thread only (and the opening thread before it starts). */
	struct store_op *ops;
	size_t ops_cap;
	struct storage_job **batch_writes; /* the job each op came from */
	uint8_t scratch[CAIRN_ENVELOPE_MAX];
	uint8_t *entries; /* STORAGE_ENTRIES_CAP bytes, allocated at the first entry read */
	char *reserve_path;  /* DIR/STORAGE_RESERVE_FILE, unlinked when the disk is full */
	bool short_of_space; /* a commit failed for want of space and no insert fitted since */

	/* Written by the storage thread, read by the loop thread for statistics. */
	_Atomic uint64_t stat_batches;
	_Atomic uint64_t stat_writes;
	_Atomic uint64_t stat_disk_bytes;
	_Atomic uint64_t stat_latency[STORAGE_LATENCY_BUCKETS + 1];
	_Atomic uint64_t stat_latency_sum_us;
	_Atomic uint64_t stat_batch[STORAGE_BATCH_BUCKETS + 1];
	_Atomic uint64_t stat_batch_sum;
	_Atomic uint64_t stat_free_bytes;
};

uint64_t storage_run_writes(struct thread_storage *s, struct storage_job *batch, size_t nwrites,
                            uint64_t *committed);
void storage_run_read(struct thread_storage *s, struct storage_job *job);
void storage_run_read_envelopes(struct thread_storage *s, struct storage_job *job);
void storage_run_read_entries(struct thread_storage *s, struct storage_job *job);
void storage_run_claims(struct thread_storage *s, struct storage_job *batch);
void storage_run_feed(struct thread_storage *s, struct storage_job *job);

#endif
