/* SPDX-License-Identifier: MIT */
/*
 * Durable throughput of the storage thread with the SQLite engine: N envelope PUTs, then N
 * DELETEs, through storage_submit with a window of jobs in flight (each completion submits
 * the next, as many concurrent senders would), on a fresh store in a temporary directory.
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

struct bench {
	struct storage *s;
	struct storage_job *jobs;
	size_t count, next, done;
	enum store_op_kind kind;
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
	if (b->kind == STORE_ENVELOPE_PUT) {
		job->op.body = b->body;
		job->op.len = b->body_len;
		job->op.stored_at = (int64_t)time(NULL);
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
	printf("%-8s %zu in %.3f s: %.0f/s, %llu commits (%.0f per commit), %d failed\n", name,
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
	struct bench b = {.count = count, .body_len = body_len};
	b.jobs = calloc(count, sizeof(*b.jobs));
	b.body = malloc(body_len ? body_len : 1);
	if (b.jobs == NULL || b.body == NULL)
		return 1;
	for (uint32_t i = 0; i < body_len; i++)
		b.body[i] = (uint8_t)(i * 131 + 7);

	uv_loop_t loop;
	uv_loop_init(&loop);
	if (storage_open(&loop, &store_sqlite, dir, NULL, NULL, &b.s) != 0)
		return 1;
	printf("%zu envelopes of %u bytes, window %zu, store in %s\n", count, body_len, window,
	       dir);
	phase(&loop, &b, window, STORE_ENVELOPE_PUT, "puts");
	uint64_t disk;
	storage_stats(b.s, NULL, NULL, &disk);
	printf("on disk after puts: %.1f MiB\n", (double)disk / 1048576.0);
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
	return rc == 0 ? 0 : 1;
}
