/* SPDX-License-Identifier: MIT */
/*
 * The in-memory, single-threaded storage engine (memstorage.h) for tests and the relay fuzz
 * target. It keeps what the relay reads back, envelope and log entry bodies by id (they share
 * the id space), and honours every rule of
 * storage.h that the command layer depends on: a queued job can be cancelled, a taken one
 * cannot; reads see earlier batches only; a failed commit applies nothing; done() runs on the
 * caller's thread, from memstorage_run_batch.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/error.h"
#include "job_list.h"
#include "memstorage.h"

enum { JOB_IDLE, JOB_QUEUED, JOB_TAKEN, JOB_HELD };

struct stored {
	uint64_t id, mailbox_id; /* a log entry's: its log's key */
	uint8_t *body;
	uint32_t len;
	bool entry; /* a log entry, not an envelope */
};

struct memstorage {
	struct storage base;   /* first: struct storage * points here */
	struct job_list queue; /* queued, not yet taken */
	struct job_list held;  /* storage_submit_held: queued with the next batch */
	struct job_list taken; /* memstorage_take_batch: the next batch, no longer cancellable */
	size_t pending;        /* submitted, done() not yet called */
	bool closing;
	struct stored *env; /* by increasing id */
	size_t env_len, env_cap;
	uint64_t batches, writes;
	uint64_t entry_reads; /* STORAGE_READ_ENTRIES jobs served */
	/* Intake mailboxes' work bits as committed (memstorage_work_bits), unordered. */
	struct intake_row {
		uint64_t mailbox_id;
		uint8_t work_bits;
	} * intake;
	size_t intake_len, intake_cap;
	/* Bundle seen rows written (with their envelopes) and STORE_BUNDLE_EXPIRE ops run. */
	uint64_t bundle_rows, bundle_expires;
	/* Change-feed rows of other nodes (memstorage_feed_push), oldest first, not
	 * yet read by a STORAGE_FEED job; and how many reads to fail (memstorage_feed_fail). */
	struct store_feed_row *feed;
	size_t feed_len, feed_cap;
	int feed_fail;
	unsigned feed_fails;
	uint64_t envelope_batch_reads; /* STORAGE_READ_ENVELOPES jobs served */
	bool fail_reads;               /* they fail (memstorage_fail_reads) */
	/* Per log, one past the highest seq stored (unordered): what a node's database numbers
	 * its entries from (store.h's assigned_seq). */
	struct log_seq {
		uint64_t log, next;
	} * seqs;
	size_t seqs_len, seqs_cap;
};

static const struct storage_ops mem_ops;

struct storage *memstorage_new(void)
{
	struct memstorage *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->base.ops = &mem_ops;
	return &s->base;
}

/* BASE's engine, which must be this one: anything else is a harness's mistake. */
static const struct memstorage *mem_of_const(const struct storage *base)
{
	if (base->ops != &mem_ops)
		abort();
	return (const struct memstorage *)base;
}

static struct memstorage *mem_of(struct storage *base)
{
	if (base->ops != &mem_ops)
		abort();
	return (struct memstorage *)base;
}

static void mem_submit(struct storage *base, struct storage_job *job)
{
	struct memstorage *s = mem_of(base);
	list_append(&s->queue, job);
	job->state = JOB_QUEUED;
	s->pending++;
}

/* The hold is modelled as ending when the next batch runs, which is when the harness has
 * nothing else to do: an ACK the relay read before then cancels the write, as intended. */
static void mem_submit_held(struct storage *base, struct storage_job *job, uint64_t hold_ms)
{
	struct memstorage *s = mem_of(base);
	if (hold_ms == 0 || s->closing) {
		mem_submit(base, job);
		return;
	}
	list_append(&s->held, job);
	job->state = JOB_HELD;
	s->pending++;
}

static bool mem_cancel(struct storage *base, struct storage_job *job)
{
	struct memstorage *s = mem_of(base);
	if (job->state == JOB_HELD)
		list_remove(&s->held, job);
	else if (job->state == JOB_QUEUED)
		list_remove(&s->queue, job);
	else
		return false;
	job->state = JOB_IDLE;
	s->pending--;
	return true;
}

static size_t mem_pending(const struct storage *base)
{
	return mem_of_const(base)->pending;
}

static void mem_stats(const struct storage *base, uint64_t *batches, uint64_t *writes,
                      uint64_t *disk_bytes)
{
	const struct memstorage *s = mem_of_const(base);
	if (batches != NULL)
		*batches = s->batches;
	if (writes != NULL)
		*writes = s->writes;
	if (disk_bytes != NULL)
		*disk_bytes = 0;
}

/* The position of the first stored envelope whose id is at least ID. */
static size_t find(const struct memstorage *s, uint64_t id)
{
	size_t lo = 0, hi = s->env_len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->env[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Removes every stored envelope for which DROP(entry, ARG) holds. */
static void remove_if(struct memstorage *s, bool (*drop)(const struct stored *, uint64_t),
                      uint64_t arg)
{
	size_t w = 0;
	for (size_t r = 0; r < s->env_len; r++) {
		if (drop(&s->env[r], arg))
			free(s->env[r].body);
		else
			s->env[w++] = s->env[r];
	}
	s->env_len = w;
}

static bool of_mailbox(const struct stored *e, uint64_t mailbox_id)
{
	return !e->entry && e->mailbox_id == mailbox_id;
}

static bool of_log(const struct stored *e, uint64_t log_key)
{
	return e->entry && e->mailbox_id == log_key;
}

static bool below(const struct stored *e, uint64_t id)
{
	return e->id < id;
}

static bool is_id(const struct stored *e, uint64_t id)
{
	return e->id == id;
}

/* Makes room in *ARRAY (*CAP elements of ELEM bytes) for element LEN: doubles it from 16
 * when full. Returns 0 or CAIRN_ENOMEM. */
static int grow(void **array, size_t *cap, size_t len, size_t elem)
{
	if (len < *cap)
		return 0;
	size_t ncap = *cap ? 2 * *cap : 16;
	void *p = realloc(*array, ncap * elem);
	if (p == NULL)
		return CAIRN_ENOMEM;
	*array = p;
	*cap = ncap;
	return 0;
}

/* LOG's entry numbered as a node's database numbers it (store.h's assigned_seq), or with SEQ
 * given: *SEQ gets its seq, and the log's next one moves past it. 0 or CAIRN_ESTORAGE. */
static int number_entry(struct memstorage *s, uint64_t log, bool assign, uint64_t *seq)
{
	size_t i = 0;
	while (i < s->seqs_len && s->seqs[i].log != log)
		i++;
	if (i == s->seqs_len) {
		if (grow((void **)&s->seqs, &s->seqs_cap, s->seqs_len, sizeof(*s->seqs)) != 0)
			return CAIRN_ESTORAGE;
		s->seqs[s->seqs_len++] = (struct log_seq){.log = log, .next = 1};
	}
	if (assign)
		*seq = s->seqs[i].next;
	if (*seq >= s->seqs[i].next)
		s->seqs[i].next = *seq + 1;
	return 0;
}

static int put_envelope(struct memstorage *s, const struct store_op *op, bool entry)
{
	size_t i = find(s, op->envelope_id);
	/* Envelope ids never repeat (ARCHITECTURE.md): a second write of one is a finding. */
	if (i < s->env_len && s->env[i].id == op->envelope_id)
		abort();
	if (grow((void **)&s->env, &s->env_cap, s->env_len, sizeof(*s->env)) != 0)
		return CAIRN_ESTORAGE;
	uint8_t *body = malloc(op->len ? op->len : 1);
	if (body == NULL)
		return CAIRN_ESTORAGE;
	if (op->len > 0)
		memcpy(body, op->body, op->len);
	memmove(s->env + i + 1, s->env + i, (s->env_len - i) * sizeof(*s->env));
	s->env[i] = (struct stored){.id = op->envelope_id,
	                            .mailbox_id = entry ? op->log_key : op->mailbox_id,
	                            .body = body,
	                            .len = op->len,
	                            .entry = entry};
	s->env_len++;
	return 0;
}

/* Records mailbox ID's work bits BITS (0: forgets it). Returns 0 or CAIRN_ESTORAGE. */
static int set_work_bits(struct memstorage *s, uint64_t id, uint8_t bits)
{
	size_t i = 0;
	while (i < s->intake_len && s->intake[i].mailbox_id != id)
		i++;
	if (i == s->intake_len) {
		if (bits == 0)
			return 0;
		if (s->intake_len == s->intake_cap) {
			size_t cap = s->intake_cap ? 2 * s->intake_cap : 8;
			struct intake_row *rows = realloc(s->intake, cap * sizeof(*rows));
			if (rows == NULL)
				return CAIRN_ESTORAGE;
			s->intake = rows;
			s->intake_cap = cap;
		}
		s->intake_len++;
	}
	if (bits == 0)
		s->intake[i] = s->intake[--s->intake_len];
	else
		s->intake[i] = (struct intake_row){.mailbox_id = id, .work_bits = bits};
	return 0;
}

static int apply(struct memstorage *s, const struct store_op *op)
{
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
	case STORE_MAILBOX_INTAKE:
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		return set_work_bits(s, op->mailbox->id, op->mailbox->work_bits);
	case STORE_ENVELOPE_PUT:
		if (op->bundle_e != NULL)
			s->bundle_rows++; /* counted only: nothing here reads them back */
		return put_envelope(s, op, false);
	case STORE_LOG_ENTRY_PUT: {
		/* Numbered before the batch is known to commit, as a transaction would: a failed
		 * batch never applies, so it gives no seq. */
		uint64_t seq = op->seq;
		int rc = number_entry(s, op->log_key, op->assigned_seq != NULL, &seq);
		if (rc == 0 && (rc = put_envelope(s, op, true)) == 0 && op->assigned_seq != NULL)
			*op->assigned_seq = seq;
		return rc;
	}
	case STORE_LOG_DELETE:
		/* The relay names the entries; every entry of the log goes all the same. */
		remove_if(s, of_log, op->log_key);
		return 0;
	case STORE_ENVELOPE_DELETE:
		remove_if(s, is_id, op->envelope_id);
		return 0;
	case STORE_MAILBOX_DELETE:
		remove_if(s, of_mailbox, op->mailbox_id);
		return set_work_bits(s, op->mailbox_id, 0);
	case STORE_EXPIRE:
		remove_if(s, below, op->envelope_id);
		return 0;
	case STORE_BUNDLE_EXPIRE:
		s->bundle_expires++;
		return 0;
	default: /* other mailbox ops, logs and id marks: nothing here reads them back */
		return 0;
	}
}

static void run_read(struct memstorage *s, struct storage_job *job)
{
	size_t i = find(s, job->read_id);
	job->read_body = NULL;
	job->read_len = 0;
	if (i >= s->env_len || s->env[i].id != job->read_id) {
		job->status = CAIRN_EDENIED;
		return;
	}
	job->read_body = malloc(s->env[i].len ? s->env[i].len : 1);
	if (job->read_body == NULL) {
		job->status = CAIRN_ESTORAGE;
		return;
	}
	memcpy(job->read_body, s->env[i].body, s->env[i].len);
	job->read_len = s->env[i].len;
	job->status = 0;
}

/* STORAGE_READ_ENTRIES: the bodies of JOB's entries, concatenated; CAIRN_EDENIED if one is
 * not stored. */
static void run_read_entries(struct memstorage *s, struct storage_job *job)
{
	size_t total = 0;
	job->read_body = NULL;
	job->read_len = 0;
	job->status = CAIRN_EDENIED;
	if (job->n_read > STORAGE_READ_ENTRIES_MAX)
		abort(); /* the caller's contract (storage.h) */
	for (size_t k = 0; k < job->n_read; k++) {
		size_t i = find(s, job->read_ids[k]);
		if (i >= s->env_len || s->env[i].id != job->read_ids[k] || !s->env[i].entry)
			return;
		total += s->env[i].len;
	}
	job->read_body = malloc(total ? total : 1);
	if (job->read_body == NULL) {
		job->status = CAIRN_ESTORAGE;
		return;
	}
	for (size_t k = 0; k < job->n_read; k++) {
		const struct stored *e = &s->env[find(s, job->read_ids[k])];
		memcpy(job->read_body + job->read_len, e->body, e->len);
		job->read_len += e->len;
	}
	job->status = 0;
	s->entry_reads++;
}

/* STORAGE_FEED, as an engine's feed_read: at most STORE_FEED_ROWS_MAX rows,
 * oldest first, handed to the job (freed with store_feed_free: malloc'd like any engine's). */
static void run_feed(struct memstorage *s, struct storage_job *job)
{
	memset(&job->feed, 0, sizeof(job->feed));
	if (s->feed_fails > 0) {
		s->feed_fails--;
		job->status = s->feed_fail;
		return;
	}
	size_t n = s->feed_len < STORE_FEED_ROWS_MAX ? s->feed_len : STORE_FEED_ROWS_MAX;
	job->status = 0;
	if (n == 0)
		return;
	job->feed.rows = malloc(n * sizeof(*job->feed.rows));
	if (job->feed.rows == NULL) {
		job->status = CAIRN_ESTORAGE;
		return;
	}
	memcpy(job->feed.rows, s->feed, n * sizeof(*s->feed));
	memmove(s->feed, s->feed + n, (s->feed_len - n) * sizeof(*s->feed));
	s->feed_len -= n;
	job->feed.n = n;
	job->feed.more = s->feed_len > 0;
}

int memstorage_feed_push(struct storage *base, uint8_t node, uint64_t seq, const uint8_t *ops,
                         size_t len)
{
	struct memstorage *s = mem_of(base);
	if (grow((void **)&s->feed, &s->feed_cap, s->feed_len, sizeof(*s->feed)) != 0)
		return CAIRN_ENOMEM;
	uint8_t *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return CAIRN_ENOMEM;
	if (len > 0)
		memcpy(copy, ops, len);
	s->feed[s->feed_len++] =
	    (struct store_feed_row){.node = node, .seq = seq, .ops = copy, .len = len};
	return 0;
}

int memstorage_commit_other(struct storage *base, const struct store_op *ops, size_t n)
{
	struct memstorage *s = mem_of(base);
	for (size_t i = 0; i < n; i++) {
		int rc = apply(s, &ops[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void memstorage_feed_fail(struct storage *base, int status, unsigned times)
{
	struct memstorage *s = mem_of(base);
	s->feed_fail = status;
	s->feed_fails = times;
}

/* STORAGE_READ_ENVELOPES, as the storage thread serves it: the bodies of JOB's
 * envelopes of its mailbox, concatenated, STORE_ABSENT for one not stored (or another
 * mailbox's); CAIRN_ENOBUFS past READ_CAP. */
static void run_read_envelopes(struct memstorage *s, struct storage_job *job)
{
	job->read_len = 0;
	job->read_body = NULL;
	job->status = CAIRN_ESTORAGE;
	if (job->n_read > STORAGE_READ_ENVELOPES_MAX)
		abort(); /* the caller's contract (storage.h) */
	if (s->fail_reads)
		return;
	job->read_body = malloc(job->read_cap ? job->read_cap : 1);
	if (job->read_body == NULL)
		return;
	for (size_t k = 0; k < job->n_read; k++) {
		size_t i = find(s, job->read_ids[k]);
		const struct stored *e = i < s->env_len ? &s->env[i] : NULL;
		if (e == NULL || e->id != job->read_ids[k] || e->entry ||
		    e->mailbox_id != job->read_mailbox) {
			job->read_lens[k] = STORE_ABSENT;
			continue;
		}
		if (e->len > job->read_cap - job->read_len) {
			free(job->read_body);
			job->read_body = NULL;
			job->read_len = 0;
			job->status = CAIRN_ENOBUFS;
			return;
		}
		memcpy(job->read_body + job->read_len, e->body, e->len);
		job->read_lens[k] = e->len;
		job->read_len += e->len;
	}
	job->status = 0;
	s->envelope_batch_reads++;
}

/* Takes every held and queued job into the batch taken so far, as the storage thread takes
 * its queue. */
static void take(struct memstorage *s)
{
	/* Held writes whose hold ended join the queue, after what was queued before them. */
	while (s->held.head != NULL) {
		struct storage_job *job = s->held.head;
		list_remove(&s->held, job);
		list_append(&s->queue, job);
		job->state = JOB_QUEUED;
	}
	while (s->queue.head != NULL) {
		struct storage_job *job = s->queue.head;
		list_remove(&s->queue, job);
		list_append(&s->taken, job);
		job->state = JOB_TAKEN;
	}
}

size_t memstorage_take_batch(struct storage *base)
{
	struct memstorage *s = mem_of(base);
	take(s);
	size_t n = 0;
	for (const struct storage_job *j = s->taken.head; j != NULL; j = j->next)
		n++;
	return n;
}

size_t memstorage_run_batch(struct storage *base, bool fail)
{
	struct memstorage *s = mem_of(base);
	if (s->taken.head == NULL)
		take(s);
	struct storage_job *batch = s->taken.head;
	s->taken.head = s->taken.tail = NULL;
	if (batch == NULL)
		return 0;
	for (struct storage_job *j = batch; j != NULL; j = j->next)
		if (j->kind == STORAGE_READ)
			run_read(s, j);
		else if (j->kind == STORAGE_READ_ENTRIES)
			run_read_entries(s, j);
		else if (j->kind == STORAGE_FEED)
			run_feed(s, j);
		else if (j->kind == STORAGE_READ_ENVELOPES)
			run_read_envelopes(s, j); /* drain */
	/* One transaction: with FAIL every write of the batch fails and none applies. */
	for (struct storage_job *j = batch; j != NULL; j = j->next) {
		if (j->kind != STORAGE_WRITE)
			continue;
		j->status = fail ? CAIRN_ESTORAGE : apply(s, &j->op);
		s->writes += j->status == 0;
	}
	s->batches++;
	size_t n = 0;
	while (batch != NULL) {
		struct storage_job *next = batch->next;
		batch->prev = batch->next = NULL;
		batch->state = JOB_IDLE;
		s->pending--;
		n++;
		batch->done(batch); /* may free BATCH or submit more */
		batch = next;
	}
	return n;
}

size_t memstorage_envelopes(const struct storage *base)
{
	const struct memstorage *s = mem_of_const(base);
	size_t n = 0;
	for (size_t i = 0; i < s->env_len; i++)
		n += !s->env[i].entry;
	return n;
}

size_t memstorage_log_entries(const struct storage *base)
{
	const struct memstorage *s = mem_of_const(base);
	return s->env_len - memstorage_envelopes(base);
}

uint64_t memstorage_entry_reads(const struct storage *base)
{
	return mem_of_const(base)->entry_reads;
}

uint64_t memstorage_bundle_rows(const struct storage *base, uint64_t *expires)
{
	const struct memstorage *s = mem_of_const(base);
	if (expires != NULL)
		*expires = s->bundle_expires;
	return s->bundle_rows;
}

unsigned memstorage_work_bits(const struct storage *base, uint64_t mailbox_id)
{
	const struct memstorage *s = mem_of_const(base);
	for (size_t i = 0; i < s->intake_len; i++)
		if (s->intake[i].mailbox_id == mailbox_id)
			return s->intake[i].work_bits;
	return 0;
}

static void mem_close(struct storage *base, void (*closed)(void *arg), void *arg)
{
	struct memstorage *s = mem_of(base);
	s->closing = true;
	while (memstorage_run_batch(base, false) > 0)
		;
	for (size_t i = 0; i < s->env_len; i++)
		free(s->env[i].body);
	free(s->env);
	free(s->intake);
	free(s->seqs);
	for (size_t i = 0; i < s->feed_len; i++)
		free(s->feed[i].ops);
	free(s->feed);
	free(s);
	if (closed != NULL)
		closed(arg);
}

uint64_t memstorage_envelope_batch_reads(const struct storage *base)
{
	return mem_of_const(base)->envelope_batch_reads;
}

void memstorage_fail_reads(struct storage *base, bool fail)
{
	mem_of(base)->fail_reads = fail;
}

static const struct storage_ops mem_ops = {
    .submit = mem_submit,
    .submit_held = mem_submit_held,
    .cancel = mem_cancel,
    .pending = mem_pending,
    .stats = mem_stats,
    .close = mem_close,
};
