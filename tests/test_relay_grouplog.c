/* SPDX-License-Identifier: MIT */
/*
 * Group logs (docs/PROTOCOL.md 5.9) in-process: the relay's command layer driven through its
 * handler table on the rig (support/cmdrig.h), against the in-memory storage engine, with
 * storage batches and time moved by each test. Checks every rule of 5.9: idempotent create,
 * one `denied` for every failure of a log or a secret (and no storage work for it), durable
 * before visible, LOG_STATE then entries then END, follow with fan-out from one buffer, a slow
 * follower paged from the store, a second read ending the first, delete, quotas, expiry,
 * shutdown and loading.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "command_layer.h"
#include "support/cmdrig.h"

/* A log as its creator holds it: id, credential, delete secret, and their digests. */
struct glog_keys {
	uint8_t id[CAIRN_LOG_ID_LEN];
	uint8_t cred[32], cred_digest[32];
	uint8_t del[32], del_digest[32];
};

static void new_keys(struct glog_keys *k)
{
	randombytes_buf(k->id, sizeof(k->id));
	randombytes_buf(k->cred, sizeof(k->cred));
	randombytes_buf(k->del, sizeof(k->del));
	crypto_generichash(k->cred_digest, 32, k->cred, 32, k->id, sizeof(k->id));
	crypto_generichash(k->del_digest, 32, k->del, 32, k->id, sizeof(k->id));
}

static void log_create(struct conn *c, const struct glog_keys *k, uint32_t rid)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .request_id = rid,
	                      .log_id = k->id,
	                      .credential = k->cred_digest,
	                      .delete_digest = k->del_digest};
	command(c, &m);
}

/* LOG_CREATE on C, answered OK once durable. */
static void log_made(struct conn *c, struct glog_keys *k)
{
	new_keys(k);
	log_create(c, k, 1);
	expect_nothing(c);
	settle();
	expect_ok(c, 1);
}

/* LOG_APPEND of "entry-N" with credential CRED (the log's when NULL). */
static void append(struct conn *c, const struct glog_keys *k, uint32_t rid, int n,
                   const uint8_t *cred)
{
	char body[32];
	int len = snprintf(body, sizeof(body), "entry-%d", n);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .request_id = rid,
	                      .log_id = k->id,
	                      .credential = cred != NULL ? cred : k->cred,
	                      .envelope = (const uint8_t *)body,
	                      .envelope_len = (size_t)len};
	command(c, &m);
}

static void log_read(struct conn *c, const struct glog_keys *k, uint32_t rid, uint64_t from,
                     int follow)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = rid,
	                      .log_id = k->id,
	                      .seq = from,
	                      .follow = (uint8_t)follow};
	command(c, &m);
}

static void log_delete(struct conn *c, const struct glog_keys *k, uint32_t rid,
                       const uint8_t *secret)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_DELETE,
	                      .request_id = rid,
	                      .log_id = k->id,
	                      .delete_secret = secret != NULL ? secret : k->del};
	command(c, &m);
}

/* The next reply on C, which must be of TYPE for request RID. */
static struct reply *take(struct conn *c, uint8_t type, uint32_t rid)
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, type);
	assert_int_equal(r->request_id, rid);
	return r;
}

static void expect_appended(struct conn *c, uint32_t rid, uint64_t seq)
{
	assert_int_equal(take(c, CAIRN_REPLY_APPENDED, rid)->seq, seq);
}

static void expect_state(struct conn *c, uint32_t rid, uint64_t first, uint64_t next)
{
	struct reply *r = take(c, CAIRN_REPLY_LOG_STATE, rid);
	assert_int_equal(r->first_seq, first);
	assert_int_equal(r->next_seq, next);
}

/* A LOG_ENTRY for read RID with seq SEQ and the body "entry-N". */
static void expect_entry(struct conn *c, uint32_t rid, uint64_t seq, int n)
{
	struct reply *r = take(c, CAIRN_REPLY_LOG_ENTRY, rid);
	assert_int_equal(r->seq, seq);
	char want[32];
	int len = snprintf(want, sizeof(want), "entry-%d", n);
	assert_int_equal(r->body_len, (size_t)len);
	assert_memory_equal(r->body, want, (size_t)len);
}

static void expect_end(struct conn *c, uint32_t rid, uint32_t code)
{
	assert_int_equal(take(c, CAIRN_REPLY_END, rid)->code, code);
}

static uint64_t writes(void)
{
	uint64_t w;
	storage_stats(relay->storage, NULL, &w, NULL);
	return w;
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* A create is answered once durable; a retry with the same digests is OK and changes nothing,
 * with other digests `denied`; a retry while the first is on its way waits for the disk too;
 * creates draw on the connection's budget, shared with CREATE. */
static void test_create(void **state)
{
	(void)state;
	cfg.create_burst = 4;
	struct conn *c = open_conn(), *d = open_conn();
	struct glog_keys k, other;
	log_made(c, &k);
	log_create(d, &k, 2);
	expect_ok(d, 2);
	assert_int_equal(storage_pending(relay->storage), 0);
	other = k;
	other.del_digest[0] ^= 1;
	log_create(d, &other, 3);
	expect_error(d, 3, CAIRN_EDENIED);
	assert_int_equal(relay->logs.count, 1);

	/* A retry while the first create is not durable yet. */
	struct glog_keys j;
	new_keys(&j);
	log_create(c, &j, 4);
	log_create(c, &j, 5);
	expect_nothing(c);
	settle();
	expect_ok(c, 4);
	expect_ok(c, 5);

	/* Budget: c has used 3 of 4; one mailbox CREATE takes the last. */
	struct box b;
	create(c, &b);
	new_keys(&j);
	log_create(c, &j, 6);
	expect_error(c, 6, CAIRN_ELIMIT);
	/* A log that failed to be stored is gone again. */
	new_keys(&j);
	log_create(d, &j, 7);
	memstorage_run_batch(relay->storage, true);
	expect_error(d, 7, CAIRN_ESTORAGE);
	log_read(d, &j, 8, 1, 0);
	expect_error(d, 8, CAIRN_EDENIED);
	assert_int_equal(relay->logs.count, 2);
}

/* No such log, a wrong credential, a wrong delete secret, a log not yet durable: the same
 * `denied`, and none of them costs a storage job. */
static void test_denied(void **state)
{
	(void)state;
	struct conn *c = open_conn(), *x = open_conn();
	struct glog_keys k, unknown;
	log_made(c, &k);
	new_keys(&unknown);
	uint8_t wrong[32];
	randombytes_buf(wrong, sizeof(wrong));
	uint64_t w0 = writes();
	append(x, &unknown, 10, 1, NULL);
	append(x, &k, 11, 1, wrong);
	log_read(x, &unknown, 12, 1, 1);
	log_delete(x, &unknown, 13, NULL);
	log_delete(x, &k, 14, wrong);
	log_delete(x, &k, 15, k.cred); /* the credential is not the delete secret */
	for (uint32_t rid = 10; rid <= 15; rid++)
		expect_error(x, rid, CAIRN_EDENIED);
	assert_int_equal(storage_pending(relay->storage), 0);
	settle();
	assert_int_equal(writes(), w0);
	assert_int_equal(memstorage_entry_reads(relay->storage), 0);

	/* Being created: not there yet for anyone. */
	struct glog_keys j;
	new_keys(&j);
	log_create(c, &j, 20);
	append(c, &j, 21, 1, NULL);
	log_read(c, &j, 22, 1, 0);
	expect_error(c, 21, CAIRN_EDENIED);
	expect_error(c, 22, CAIRN_EDENIED);
	settle();
	expect_ok(c, 20);
	/* Oversized and empty entries (a decoder would have caught them). */
	uint8_t big[CAIRN_LOG_ENTRY_MAX + 1] = {0};
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .request_id = 23,
	                      .log_id = j.id,
	                      .credential = j.cred,
	                      .envelope = big,
	                      .envelope_len = sizeof(big)};
	command(c, &m);
	expect_error(c, 23, CAIRN_ETOOBIG);
	m.envelope_len = 0;
	m.request_id = 24;
	command(c, &m);
	expect_error(c, 24, CAIRN_EBADREQ);
}

/* APPENDED and follow delivery only once durable; LOG_STATE, then the stored entries, then
 * END 0 for a read without follow; seqs from 1, in order, even across a failed write. */
static void test_append_and_read(void **state)
{
	(void)state;
	struct conn *w = open_conn(), *f = open_conn(), *r = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	log_read(f, &k, 5, 1, 1);
	expect_state(f, 5, 1, 1);
	expect_nothing(f);

	append(w, &k, 2, 1, NULL);
	expect_nothing(w);
	expect_nothing(f);
	memstorage_take_batch(relay->storage);
	expect_nothing(f);
	settle();
	expect_appended(w, 2, 1);
	expect_entry(f, 5, 1, 1);

	/* A failed write leaves its seq unused; the next append gets the one after. */
	append(w, &k, 3, 2, NULL);
	memstorage_run_batch(relay->storage, true);
	expect_error(w, 3, CAIRN_ESTORAGE);
	expect_nothing(f);
	append(w, &k, 4, 3, NULL);
	append(w, &k, 5, 4, NULL);
	settle();
	expect_appended(w, 4, 3);
	expect_appended(w, 5, 4);
	expect_entry(f, 5, 3, 3);
	expect_entry(f, 5, 4, 4);
	assert_int_equal(memstorage_log_entries(relay->storage), 3);

	/* A read without follow: the state, then entries from its seq, then END 0. */
	log_read(r, &k, 7, 2, 0);
	expect_state(r, 7, 1, 5);
	expect_nothing(r); /* the bodies come from the store */
	settle();
	expect_entry(r, 7, 3, 3);
	expect_entry(r, 7, 4, 4);
	expect_end(r, 7, 0);
	expect_nothing(r);
	/* From beyond the end: the state and END at once. */
	log_read(r, &k, 8, 9, 0);
	expect_state(r, 8, 1, 5);
	expect_end(r, 8, 0);
	/* A follower from seq 2 on a fresh connection: 3 and 4 from the store, then live. */
	log_read(r, &k, 9, 2, 1);
	expect_state(r, 9, 1, 5);
	settle();
	expect_entry(r, 9, 3, 3);
	expect_entry(r, 9, 4, 4);
	append(w, &k, 6, 5, NULL);
	settle();
	expect_appended(w, 6, 5);
	expect_entry(r, 9, 5, 5);
	expect_entry(f, 5, 5, 5);
	expect_nothing(r);
}

/* LOG_STATE while an append is being written: next_seq counts it, and first_seq is not above
 * it, since a follower gets it once durable. */
static void test_state_with_append_in_flight(void **state)
{
	(void)state;
	struct conn *w = open_conn(), *f = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	append(w, &k, 2, 1, NULL);
	log_read(f, &k, 3, 1, 1);
	expect_state(f, 3, 1, 2);
	settle();
	expect_appended(w, 2, 1);
	expect_entry(f, 3, 1, 1);
	expect_nothing(f);
}

/* Many followers get each new entry from the one buffer of its append: no read of the store
 * for any of them. */
static void test_fanout(void **state)
{
	(void)state;
	enum { FOLLOWERS = 48 };
	struct conn *w = open_conn(), *f[FOLLOWERS];
	struct glog_keys k;
	log_made(w, &k);
	for (int i = 0; i < FOLLOWERS; i++) {
		f[i] = open_conn();
		log_read(f[i], &k, 100, 1, 1);
		expect_state(f[i], 100, 1, 1);
	}
	for (int n = 1; n <= 5; n++)
		append(w, &k, (uint32_t)n, n, NULL);
	settle();
	for (int i = 0; i < FOLLOWERS; i++) {
		for (int n = 1; n <= 5; n++)
			expect_entry(f[i], 100, (uint64_t)n, n);
		expect_nothing(f[i]);
	}
	assert_int_equal(memstorage_entry_reads(relay->storage), 0);
	assert_int_equal(relay->stats.log_entries_sent, FOLLOWERS * 5);
}

/* A follower whose output is full gets nothing, and nothing is kept for it; once it drains,
 * it reads what it missed from the store in batches of 64, then follows live again. */
static void test_slow_follower(void **state)
{
	(void)state;
	cfg.inflight_requests = 1024;
	struct conn *w = open_conn(), *slow = open_conn(), *fast = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	log_read(slow, &k, 3, 1, 1);
	log_read(fast, &k, 4, 1, 1);
	expect_state(slow, 3, 1, 1);
	expect_state(fast, 4, 1, 1);
	slow->full = true;
	enum { N = 100 };
	for (int n = 1; n <= N; n++)
		append(w, &k, (uint32_t)n, n, NULL);
	settle();
	for (int n = 1; n <= N; n++)
		expect_appended(w, (uint32_t)n, (uint64_t)n);
	for (int n = 1; n <= N; n++)
		expect_entry(fast, 4, (uint64_t)n, n);
	expect_nothing(slow);
	assert_int_equal(memstorage_entry_reads(relay->storage), 0);
	/* Drained: one batch at a time. */
	slow->full = false;
	commands_handler.drained(slow->peer);
	assert_int_equal(storage_pending(relay->storage), 1);
	memstorage_run_batch(relay->storage, false);
	assert_int_equal(slow->n - slow->seen, 64);
	assert_int_equal(storage_pending(relay->storage), 1);
	/* Full again after that batch: the next is not asked for until it drains. */
	slow->full = true;
	memstorage_run_batch(relay->storage, false);
	assert_int_equal(storage_pending(relay->storage), 0);
	assert_int_equal(slow->n - slow->seen, 64);
	slow->full = false;
	commands_handler.drained(slow->peer);
	settle();
	for (int n = 1; n <= N; n++)
		expect_entry(slow, 3, (uint64_t)n, n);
	expect_nothing(slow);
	/* 64 + the dropped batch read again + the rest. */
	assert_int_equal(memstorage_entry_reads(relay->storage), 3);
	append(w, &k, 200, 200, NULL);
	settle();
	expect_entry(slow, 3, N + 1, 200);
	expect_entry(fast, 4, N + 1, 200);
}

/* A reader asks for its next batch only while its output is below half the limit, and for no
 * more bytes than the limit leaves room for. */
static void test_batch_sized_by_output(void **state)
{
	(void)state;
	cfg.output_buffer_max = 40;
	struct conn *w = open_conn(), *r = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	for (int n = 1; n <= 6; n++)
		append(w, &k, (uint32_t)n, n, NULL); /* "entry-N": 7 bytes each */
	settle();
	r->level = 20; /* half the limit: no batch */
	log_read(r, &k, 9, 1, 0);
	expect_state(r, 9, 1, 7);
	assert_int_equal(storage_pending(relay->storage), 0);
	r->level = 19; /* room for 21 bytes: three entries */
	commands_handler.drained(r->peer);
	assert_int_equal(storage_pending(relay->storage), 1);
	memstorage_run_batch(relay->storage, false);
	for (int n = 1; n <= 3; n++)
		expect_entry(r, 9, (uint64_t)n, n);
	expect_nothing(r);
	r->level = 0; /* room for 40: the last three, then END */
	commands_handler.drained(r->peer);
	settle();
	for (int n = 4; n <= 6; n++)
		expect_entry(r, 9, (uint64_t)n, n);
	expect_end(r, 9, 0);
	assert_int_equal(memstorage_entry_reads(relay->storage), 2);
}

/* At most log_read_batches read batches are out at once; a read that needs one waits its
 * turn, oldest first, and its connection is not read meanwhile. */
static void test_read_batches_relay_wide(void **state)
{
	(void)state;
	cfg.log_read_batches = 1;
	struct conn *w = open_conn(), *r1 = open_conn(), *r2 = open_conn(), *r3 = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	append(w, &k, 2, 1, NULL);
	settle();
	expect_appended(w, 2, 1);
	log_read(r1, &k, 5, 1, 0);
	log_read(r2, &k, 6, 1, 0);
	log_read(r3, &k, 7, 1, 1);
	assert_int_equal(storage_pending(relay->storage), 1);
	assert_false(commands_handler.busy(r1->peer));
	assert_true(commands_handler.busy(r2->peer));
	assert_true(commands_handler.busy(r3->peer));
	memstorage_run_batch(relay->storage, false);
	expect_state(r1, 5, 1, 2);
	expect_entry(r1, 5, 1, 1);
	expect_end(r1, 5, 0);
	assert_false(commands_handler.busy(r2->peer));
	assert_true(commands_handler.busy(r3->peer));
	/* A waiting read that ends (its connection closed) leaves the line. */
	close_conn(r3);
	settle();
	expect_state(r2, 6, 1, 2);
	expect_entry(r2, 6, 1, 1);
	expect_end(r2, 6, 0);
	assert_int_equal(relay->logs.batches_out, 0);
	assert_null(relay->logs.wait_head);
	assert_int_equal(memstorage_entry_reads(relay->storage), 2);
}

/* A read that a second one ends keeps its batch out until it is back: a peer that reads the
 * same log again and again has at most logs_per_connection batches out, not one per read. */
static void test_rereads_bounded(void **state)
{
	(void)state;
	cfg.logs_per_connection = 2;
	struct conn *w = open_conn(), *c = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	append(w, &k, 2, 1, NULL);
	settle();
	expect_appended(w, 2, 1);
	enum { READS = 10 };
	unsigned refs = c->refs;
	for (uint32_t i = 0; i < READS; i++)
		log_read(c, &k, 20 + i, 1, 1);
	assert_int_equal(storage_pending(relay->storage), 2);
	assert_int_equal(relay->logs.batches_out, 2);
	for (uint32_t i = 0; i < READS - 1; i++) {
		expect_state(c, 20 + i, 1, 2);
		expect_end(c, 20 + i, 6);
	}
	expect_state(c, 20 + READS - 1, 1, 2);
	/* The last read's batch goes out when one of the two is back; it gets the entry. */
	settle();
	expect_entry(c, 20 + READS - 1, 1, 1);
	expect_nothing(c);
	assert_int_equal(memstorage_entry_reads(relay->storage), 3);
	assert_int_equal(relay->logs.batches_out, 0);
	assert_int_equal(c->refs, refs); /* the batches' holds on the connection are released */
}

/* A second read of the same log on a connection ends the first with END 6; reads per
 * connection are limited; closing the connection ends them silently. */
static void test_reads_per_connection(void **state)
{
	(void)state;
	cfg.logs_per_connection = 2;
	struct conn *c = open_conn();
	struct glog_keys a, b, d;
	log_made(c, &a);
	log_made(c, &b);
	log_made(c, &d);
	log_read(c, &a, 10, 1, 1);
	expect_state(c, 10, 1, 1);
	log_read(c, &a, 11, 1, 1);
	expect_end(c, 10, 6);
	expect_state(c, 11, 1, 1);
	log_read(c, &b, 12, 1, 1);
	expect_state(c, 12, 1, 1);
	log_read(c, &d, 13, 1, 1);
	expect_error(c, 13, CAIRN_ELIMIT);
	/* A finished read frees its place. */
	log_read(c, &b, 14, 1, 0);
	expect_end(c, 12, 6);
	expect_state(c, 14, 1, 1);
	expect_end(c, 14, 0);
	log_read(c, &d, 15, 1, 1);
	expect_state(c, 15, 1, 1);
	struct peer *p = c->peer;
	assert_non_null(p->reads);
	assert_int_equal(p->reads->len, 2);
	close_conn(c);
	assert_null(p->reads); /* freed with the last read (no batch out) */
	assert_null(glog_by_log_id(&relay->logs, a.id)->readers);
	assert_null(glog_by_log_id(&relay->logs, d.id)->readers);
}

/* LOG_DELETE: OK once durable, its readers get END 0, its entries leave the store (those
 * being written too), and the log is then unknown. */
static void test_delete(void **state)
{
	(void)state;
	struct conn *w = open_conn(), *f = open_conn();
	struct glog_keys k;
	log_made(w, &k);
	append(w, &k, 2, 1, NULL);
	settle();
	expect_appended(w, 2, 1);
	log_read(f, &k, 3, 1, 1);
	expect_state(f, 3, 1, 2);
	settle();
	expect_entry(f, 3, 1, 1);
	append(w, &k, 4, 2, NULL); /* still being written when the delete comes */
	log_delete(w, &k, 5, NULL);
	expect_end(f, 3, 0);
	expect_nothing(w);
	settle();
	expect_appended(w, 4, 2);
	expect_ok(w, 5);
	expect_nothing(f);
	assert_int_equal(memstorage_log_entries(relay->storage), 0);
	assert_int_equal(relay->logs.count, 0);
	assert_int_equal(relay->logs.entries, 0);
	assert_int_equal(relay->logs.bytes, 0);
	log_read(f, &k, 6, 1, 0);
	expect_error(f, 6, CAIRN_EDENIED);
	/* The same id can be created anew. */
	log_create(w, &k, 7);
	settle();
	expect_ok(w, 7);
}

/* Per-log quotas give `quota`, the relay's limits `full`; nothing is stored. */
static void test_quotas(void **state)
{
	(void)state;
	cfg.log_max_entries = 3;
	cfg.max_logs = 2;
	struct conn *c = open_conn();
	struct glog_keys a, b, d;
	log_made(c, &a);
	for (int n = 1; n <= 3; n++)
		append(c, &a, (uint32_t)(10 + n), n, NULL);
	append(c, &a, 14, 4, NULL); /* counted before they are durable */
	expect_error(c, 14, CAIRN_EQUOTA);
	settle();
	for (int n = 1; n <= 3; n++)
		expect_appended(c, (uint32_t)(10 + n), (uint64_t)n);
	log_made(c, &b);
	new_keys(&d);
	log_create(c, &d, 20);
	expect_error(c, 20, CAIRN_ECAPACITY);
	/* Bytes per log. */
	cfg.log_max_entries = 100;
	cfg.log_max_bytes = 7 * 3 + 6;
	append(c, &b, 21, 1, NULL); /* "entry-1": 7 bytes */
	append(c, &b, 22, 2, NULL);
	append(c, &b, 23, 3, NULL);
	append(c, &b, 24, 4, NULL);
	expect_error(c, 24, CAIRN_EQUOTA);
	settle();
	/* The relay's bytes, with 64 per entry: 6 entries of 7 bytes held. */
	cfg.log_max_bytes = 1 << 20;
	cfg.max_stored_bytes = 6 * (7 + 64) + 7 + 64 - 1;
	append(c, &b, 25, 5, NULL);
	expect_appended(c, 21, 1);
	expect_appended(c, 22, 2);
	expect_appended(c, 23, 3);
	expect_error(c, 25, CAIRN_ECAPACITY);
	cfg.max_stored_bytes = 6 * (7 + 64) + 7 + 64;
	append(c, &b, 26, 5, NULL);
	settle();
	expect_appended(c, 26, 4);
	assert_int_equal(memstorage_log_entries(relay->storage), 7);
	/* Mailboxes' envelopes and log entries share the byte limit. */
	struct box mb;
	create(c, &mb);
	send_env(c, &mb, 27, 1, NULL);
	expect_error(c, 27, CAIRN_ECAPACITY);
}

/* Entries expire TTL after their append (by id range, with envelopes); a log nobody appends
 * to or reads for a TTL goes with its entries, unless a follower reads it. */
static void test_expiry(void **state)
{
	(void)state;
	struct conn *c = open_conn(), *f = open_conn();
	struct glog_keys a, b;
	log_made(c, &a);
	log_made(c, &b);
	append(c, &a, 2, 1, NULL);
	append(c, &b, 3, 1, NULL);
	settle();
	expect_appended(c, 2, 1);
	expect_appended(c, 3, 1);
	log_read(f, &b, 4, 1, 1);
	expect_state(f, 4, 1, 2);
	settle();
	expect_entry(f, 4, 1, 1);
	now_s += TTL_S / 2;
	append(c, &a, 5, 2, NULL);
	settle();
	expect_appended(c, 5, 2);
	now_s += TTL_S / 2 + 2 * (TTL_S / 1000 + 1);
	commands_expire(relay, now_s);
	settle();
	/* Entry 1 of each is gone; A's second is not; B, idle but followed, stays. */
	assert_int_equal(memstorage_log_entries(relay->storage), 1);
	log_read(c, &a, 6, 1, 0);
	expect_state(c, 6, 2, 3);
	settle();
	expect_entry(c, 6, 2, 2);
	expect_end(c, 6, 0);
	log_read(c, &b, 7, 1, 0);
	expect_state(c, 7, 2, 2);
	expect_end(c, 7, 0);
	/* Idle for a TTL with no follower: gone, its follower told first if it had one. */
	close_conn(f);
	now_s += TTL_S + 2 * (TTL_S / 1000 + 1);
	commands_expire(relay, now_s);
	settle();
	assert_int_equal(relay->logs.count, 0);
	assert_int_equal(memstorage_log_entries(relay->storage), 0);
	assert_int_equal(relay->stats.logs_expired, 2);
	log_read(c, &a, 8, 1, 0);
	expect_error(c, 8, CAIRN_EDENIED);
}

/* At shutdown every read ends with END 8. */
static void test_shutdown(void **state)
{
	(void)state;
	struct conn *c = open_conn();
	struct glog_keys k;
	log_made(c, &k);
	log_read(c, &k, 2, 1, 1);
	expect_state(c, 2, 1, 1);
	commands_shutdown(relay);
	expect_end(c, 2, 8);
	assert_int_equal(relay->logs.count, 0);
}

/* Loading at start: logs and their entries come back with their seq high-water, and an
 * entry above the stored next_seq raises it (5.9: a seq is never given twice). */
static void test_load(void **state)
{
	(void)state;
	struct store_log rec = {.id = 77, .next_seq = 5, .touched = START_TIME};
	struct glog_keys k;
	new_keys(&k);
	memcpy(rec.log_id, k.id, sizeof(k.id));
	memcpy(rec.credential_digest, k.cred_digest, 32);
	memcpy(rec.delete_digest, k.del_digest, 32);
	commands_load_cb.log(relay, &rec);
	struct store_log_entry_info e1 = {.id = 10, .log = 77, .seq = 2, .len = 7};
	struct store_log_entry_info e2 = {.id = 11, .log = 77, .seq = 6, .len = 7};
	struct store_log_entry_info stray = {.id = 12, .log = 78, .seq = 1, .len = 7};
	commands_load_cb.log_entry(relay, &e1);
	commands_load_cb.log_entry(relay, &e2);
	commands_load_cb.log_entry(relay, &stray);
	struct conn *c = open_conn();
	log_read(c, &k, 3, 1, 0);
	expect_state(c, 3, 2, 7);
	append(c, &k, 4, 9, NULL);
	settle();
	/* The entries named above are not in this store: after asking twice more (they might
	 * have expired meanwhile), the read ends with `storage`. */
	expect_appended(c, 4, 7);
	expect_end(c, 3, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_and_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_with_append_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_follower, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_sized_by_output, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_batches_relay_wide, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rereads_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_per_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quotas, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load, setup, teardown),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
