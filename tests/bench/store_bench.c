/* SPDX-License-Identifier: MIT */
/*
 * Durable throughput of the storage thread with the SQLite engine: N envelope PUTs, N group
 * log appends (entries of the same size over 1000 logs, PROTOCOL.md 5.9), N/64 reads of 64
 * entries each (twice: first one read transaction per entry, as an engine without
 * read_log_entries is served, then the engine's read_log_entries, one per 64), then N
 * envelope DELETEs, through storage_submit with a window of jobs in
 * flight (each completion submits the next, as many concurrent senders would), on a fresh
 * store in a temporary directory.
 *
 *   store_bench [count=200000] [window=4096] [body_bytes=1024] [parent_dir=/tmp]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "storage.h"

/* The phase's job: a write of KIND, or (READ_ENTRIES) reads of entries 64 at a time. */
#define READ_ENTRIES ((enum store_op_kind) - 1)
#define LOGS         1000

struct bench {
	struct storage *s;
	struct storage_job *jobs;
	size_t count, next, done;
	enum store_op_kind kind;
	uint64_t *entry_ids; /* the appended entries' ids, for the reads */
	size_t nentries;
	uint8_t *body;
	uint32_t body_len;
	int failures;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void submit_next(struct bench *b);

static void on_done(struct storage_job *job)
{
	struct bench *b = job->data;
	if (job->status != 0)
		b->failures++;
	free(job->read_body);
	job->read_body = NULL;
	b->done++;
	submit_next(b);
}

static void submit_next(struct bench *b)
{
	if (b->next >= b->count)
		return;
	struct storage_job *job = &b->jobs[b->next];
	memset(job, 0, sizeof(*job));
	job->kind = STORAGE_WRITE;
	job->op.kind = b->kind;
	job->op.envelope_id = b->next + 1;
	job->op.mailbox_id = 1 + b->next % 1000;
	if (b->kind == STORE_ENVELOPE_PUT || b->kind == STORE_LOG_ENTRY_PUT) {
		job->op.body = b->body;
		job->op.len = b->body_len;
		job->op.stored_at = (int64_t)time(NULL);
	}
	if (b->kind == STORE_LOG_ENTRY_PUT) {
		/* Ids after the envelopes' (one id space), the logs in turn. */
		job->op.envelope_id = b->count + b->next + 1;
		job->op.log_key = 1 + b->next % LOGS;
		job->op.seq = 1 + b->next / LOGS;
		b->entry_ids[b->next] = job->op.envelope_id;
	}
	if (b->kind == READ_ENTRIES) {
		job->kind = STORAGE_READ_ENTRIES;
		size_t first = (b->next * STORAGE_READ_ENTRIES_MAX) % b->nentries;
		job->read_ids = &b->entry_ids[first];
		job->n_read = b->nentries - first < STORAGE_READ_ENTRIES_MAX
		                  ? b->nentries - first
		                  : STORAGE_READ_ENTRIES_MAX;
	}
	job->done = on_done;
	job->data = b;
	b->next++;
	storage_submit(b->s, job);
}

/* Runs one phase and prints its rate. */
static void phase(uv_loop_t *loop, struct bench *b, size_t window, enum store_op_kind kind,
                  const char *name)
{
	uint64_t batches0, batches1;
	storage_stats(b->s, &batches0, NULL, NULL);
	size_t count = b->count;
	if (kind == READ_ENTRIES)
		b->count = (count + STORAGE_READ_ENTRIES_MAX - 1) / STORAGE_READ_ENTRIES_MAX;
	b->kind = kind;
	b->next = b->done = 0;
	b->failures = 0;
	double t0 = now();
	for (size_t i = 0; i < window; i++)
		submit_next(b);
	uv_run(loop, UV_RUN_DEFAULT);
	double t = now() - t0;
	storage_stats(b->s, &batches1, NULL, NULL);
	uint64_t batches = batches1 - batches0;
	b->count = count;
	printf("%-9s %zu in %.3f s: %.0f/s, %llu commits (%.0f per commit), %d failed\n", name,
	       b->done, t, (double)b->done / t, (unsigned long long)batches,
	       batches ? (double)b->done / (double)batches : 0.0, b->failures);
}

static void on_closed(void *arg)
{
	(void)arg;
}

int main(int argc, char **argv)
{
	size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	size_t window = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
	uint32_t body_len = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1024;
	const char *parent = argc > 4 ? argv[4] : "/tmp";
	if (count == 0 || window == 0 || body_len > CAIRN_ENVELOPE_MAX)
		return 2;

	char dir[256];
	snprintf(dir, sizeof(dir), "%s/cairn-bench-XXXXXX", parent);
	if (mkdtemp(dir) == NULL)
		return 1;
	struct bench b = {.count = count, .nentries = count, .body_len = body_len};
	b.jobs = calloc(count, sizeof(*b.jobs));
	b.body = malloc(body_len ? body_len : 1);
	b.entry_ids = calloc(count, sizeof(*b.entry_ids));
	static struct store_log logs[LOGS];
	if (b.jobs == NULL || b.body == NULL || b.entry_ids == NULL)
		return 1;
	for (uint32_t i = 0; i < body_len; i++)
		b.body[i] = (uint8_t)(i * 131 + 7);

	uv_loop_t loop;
	uv_loop_init(&loop);
	/* A copy, so that the reads can be run without read_log_entries first. The storage
	 * thread looks the member up per job, after taking the job under its lock: changing it
	 * between phases, with no job queued, is seen by the next phase. */
	static struct store_engine engine;
	engine = store_sqlite;
	if (storage_open(&loop, &engine, &(struct store_params){.dir = dir}, NULL, NULL, &b.s) != 0)
		return 1;
	printf("%zu envelopes of %u bytes, window %zu, store in %s\n", count, body_len, window,
	       dir);
	phase(&loop, &b, window, STORE_ENVELOPE_PUT, "puts");
	uint64_t disk;
	storage_stats(b.s, NULL, NULL, &disk);
	printf("on disk after puts: %.1f MiB\n", (double)disk / 1048576.0);
	/* The logs, in one batch, before their appends. */
	struct storage_job *log_jobs = calloc(LOGS, sizeof(*log_jobs));
	if (log_jobs == NULL)
		return 1;
	for (size_t i = 0; i < LOGS; i++) {
		logs[i].id = 1 + i;
		logs[i].next_seq = 1;
		log_jobs[i].kind = STORAGE_WRITE;
		log_jobs[i].op = (struct store_op){.kind = STORE_LOG_PUT, .log = &logs[i]};
		log_jobs[i].done = on_done;
		log_jobs[i].data = &b;
		storage_submit(b.s, &log_jobs[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	free(log_jobs);
	phase(&loop, &b, window, STORE_LOG_ENTRY_PUT, "appends");
	engine.read_log_entries = NULL;
	phase(&loop, &b, window / STORAGE_READ_ENTRIES_MAX + 1, READ_ENTRIES, "reads64/1");
	engine.read_log_entries = store_sqlite.read_log_entries;
	phase(&loop, &b, window / STORAGE_READ_ENTRIES_MAX + 1, READ_ENTRIES, "reads64");
	phase(&loop, &b, window, STORE_ENVELOPE_DELETE, "deletes");
	storage_close(b.s, on_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&loop);

	char path[300];
	static const char *const names[] = {"relay.db", "relay.db-wal", "relay.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	free(b.jobs);
	free(b.body);
	free(b.entry_ids);
	return rc == 0 ? 0 : 1;
}
