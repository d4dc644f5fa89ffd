/* SPDX-License-Identifier: MIT */
/*
 * Integration: group logs (docs/PROTOCOL.md 5.9) on the real cairn-relay with its SQLite store.
 * A writer and a follower on two connections, a reader without follow, a reader that pages
 * more than one batch (1 MiB) from the store, `denied` for a wrong credential, a restart that
 * keeps the log, its entries and its seq high-water, and a delete that ends the follower.
 */
#include <signal.h>
#include <stdio.h>

#include "it_grouplog_common.h"

static int setup(void **state)
{
	static struct relayproc r;
	return it_relay_setup(state, &r, NULL);
}

/* LOG_READ on C; checks LOG_STATE (FIRST, NEXT) and returns the read's request id. */
static uint32_t read_log(struct tclient *c, const struct glog_keys *k, uint64_t from, int follow,
                         uint64_t first, uint64_t next)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .log_id = k->id,
	                      .seq = from,
	                      .follow = (uint8_t)follow},
	                 reply;
	assert_int_equal(tclient_call(c, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_LOG_STATE);
	assert_int_equal(reply.first_seq, first);
	assert_int_equal(reply.next_seq, next);
	return m.request_id;
}

static void test_log_life(void **state)
{
	struct relayproc *r = *state;
	struct tclient w, f, rd;
	struct glog_keys k;
	glog_keys_new(&k);
	assert_int_equal(tclient_connect(&w, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&f, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&rd, r->port, r->pub), 0);

	struct cairn_msg create = {.type = CAIRN_CMD_LOG_CREATE,
	                           .log_id = k.id,
	                           .credential = k.cred_digest,
	                           .delete_digest = k.del_digest},
	                 reply;
	assert_int_equal(tclient_call(&w, &create, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
	create.request_id = 0;
	assert_int_equal(tclient_call(&w, &create, &reply), 0); /* a retry */

	uint32_t frid = read_log(&f, &k, 1, 1, 1, 1);
	uint64_t seq;
	for (int n = 1; n <= 3; n++) {
		assert_int_equal(glog_append(&w, &k, k.cred, n, 100, &seq), 0);
		assert_int_equal(seq, (uint64_t)n);
	}
	for (int n = 1; n <= 3; n++)
		glog_expect_entry(&f, frid, (uint64_t)n, n, 100);
	uint8_t wrong[32];
	randombytes_buf(wrong, sizeof(wrong));
	assert_int_equal(glog_append(&w, &k, wrong, 9, 10, &seq), CAIRN_EDENIED);

	/* 130 entries of 16 KiB: more than two batches of 1 MiB for a reader from the store. */
	enum { BIG = 130 };
	for (int n = 4; n < 4 + BIG; n++)
		assert_int_equal(glog_append(&w, &k, k.cred, n, CAIRN_LOG_ENTRY_MAX, &seq), 0);
	for (int n = 4; n < 4 + BIG; n++)
		glog_expect_entry(&f, frid, (uint64_t)n, n, CAIRN_LOG_ENTRY_MAX);
	uint32_t rid = read_log(&rd, &k, 2, 0, 1, 4 + BIG);
	glog_expect_entry(&rd, rid, 2, 2, 100);
	glog_expect_entry(&rd, rid, 3, 3, 100);
	for (int n = 4; n < 4 + BIG; n++)
		glog_expect_entry(&rd, rid, (uint64_t)n, n, CAIRN_LOG_ENTRY_MAX);
	glog_expect_end(&rd, rid, 0);

	/* A restart keeps the log, its entries and its seqs; the follower was told. */
	tclient_close(&rd);
	tclient_close(&w);
	assert_int_equal(relayproc_stop(r, SIGTERM), 0);
	glog_expect_end(&f, frid, 8);
	tclient_close(&f);
	assert_int_equal(relayproc_start(r), 0);
	assert_int_equal(tclient_connect(&w, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&f, r->port, r->pub), 0);
	frid = read_log(&f, &k, 3 + BIG, 1, 1, 4 + BIG);
	glog_expect_entry(&f, frid, 3 + BIG, 3 + BIG, CAIRN_LOG_ENTRY_MAX);
	assert_int_equal(glog_append(&w, &k, k.cred, 500, 20, &seq), 0);
	assert_int_equal(seq, 4 + BIG);
	glog_expect_entry(&f, frid, 4 + BIG, 500, 20);

	/* Delete: only with the secret; the follower gets END 0; the log is then unknown. */
	struct cairn_msg del = {
	    .type = CAIRN_CMD_LOG_DELETE, .log_id = k.id, .delete_secret = wrong};
	assert_int_equal(tclient_call(&w, &del, &reply), CAIRN_EDENIED);
	del.request_id = 0;
	del.delete_secret = k.del;
	assert_int_equal(tclient_call(&w, &del, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
	glog_expect_end(&f, frid, 0);
	struct cairn_msg rm = {.type = CAIRN_CMD_LOG_READ, .log_id = k.id, .seq = 1};
	assert_int_equal(tclient_call(&f, &rm, &reply), CAIRN_EDENIED);
	tclient_close(&w);
	tclient_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_life),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, it_relay_teardown);
}
