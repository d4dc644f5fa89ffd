/* SPDX-License-Identifier: MIT */
/*
 * Integration: what one group message costs its sender does not grow with the group (issue 12,
 * Performance). On the real cairn-relay, a writer appends one entry of a short group message's
 * size (896 bytes, docs/PROTOCOL.md 9.4) to a group log that 5, then 200 members follow, each
 * on its own connection; the bytes the writer's connection puts on the wire for it, counted by
 * the kernel (tests/bench/sockbytes.h, as cairn-bench group counts them), are the same for both,
 * and every member receives the entry.
 */
#include <signal.h>
#include <stdio.h>

#include "bench/sockbytes.h"
#include "it_common.h"

#define ENTRY_BYTES 896
#define FEW         5
#define MANY        200
#define APPEND_RID  4242 /* one request id for every append: its encoding is part of the cost */

struct group_log {
	uint8_t id[CAIRN_LOG_ID_LEN], cred[32];
};

static struct relayproc relay;
static struct tclient writer, members[MANY];
static uint32_t read_rid[MANY];
static uint8_t entry[ENTRY_BYTES];

static int setup(void **state)
{
	return it_relay_setup(state, &relay, NULL);
}

static void create_log(struct group_log *g)
{
	uint8_t digest[32], del[32], del_digest[32];
	randombytes_buf(g->id, sizeof(g->id));
	randombytes_buf(g->cred, sizeof(g->cred));
	randombytes_buf(del, sizeof(del));
	crypto_generichash(digest, 32, g->cred, 32, g->id, sizeof(g->id));
	crypto_generichash(del_digest, 32, del, 32, g->id, sizeof(g->id));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .log_id = g->id,
	                      .credential = digest,
	                      .delete_digest = del_digest},
	                 reply;
	assert_int_equal(tclient_call(&writer, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
}

/* Members FROM .. TO - 1 connect and follow the log from NEXT_SEQ on. */
static void add_members(const struct group_log *g, int from, int to, uint64_t next_seq)
{
	for (int i = from; i < to; i++) {
		assert_int_equal(tclient_connect(&members[i], relay.port, relay.pub), 0);
		struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
		                      .log_id = g->id,
		                      .seq = next_seq,
		                      .follow = 1},
		                 reply;
		assert_int_equal(tclient_call(&members[i], &m, &reply), 0);
		assert_int_equal(reply.type, CAIRN_REPLY_LOG_STATE);
		assert_int_equal(reply.next_seq, next_seq);
		read_rid[i] = m.request_id;
	}
}

/*
 * Appends entry number N and waits until each of the first COUNT members has it. Returns the
 * bytes the writer's connection sent for it.
 */
static uint64_t append_to(const struct group_log *g, int count, uint64_t n)
{
	memset(entry, (int)('a' + n % 26), sizeof(entry));
	memcpy(entry, &n, sizeof(n));
	uint64_t before = sock_bytes_acked(writer.fd);
	assert_true(before != UINT64_MAX);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .request_id = APPEND_RID,
	                      .log_id = g->id,
	                      .credential = g->cred,
	                      .envelope = entry,
	                      .envelope_len = sizeof(entry)},
	                 reply;
	assert_int_equal(tclient_call(&writer, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_APPENDED);
	assert_int_equal(reply.seq, n);
	for (int i = 0; i < count; i++) {
		struct cairn_msg e;
		assert_int_equal(tclient_recv(&members[i], &e, 5000), 0);
		assert_int_equal(e.type, CAIRN_REPLY_LOG_ENTRY);
		assert_int_equal(e.request_id, read_rid[i]);
		assert_int_equal(e.seq, n);
		assert_int_equal(e.envelope_len, sizeof(entry));
		assert_memory_equal(e.envelope, entry, sizeof(entry));
	}
	/* APPENDED came after the relay had read the append, so its kernel has acknowledged it. */
	uint64_t after = sock_bytes_acked(writer.fd);
	return after - before;
}

static void test_sender_bytes_do_not_grow(void **state)
{
	(void)state;
	struct group_log g;
	assert_int_equal(tclient_connect(&writer, relay.port, relay.pub), 0);
	create_log(&g);
	add_members(&g, 0, FEW, 1);
	uint64_t few[2] = {append_to(&g, FEW, 1), append_to(&g, FEW, 2)};
	add_members(&g, FEW, MANY, 3);
	uint64_t many[2] = {append_to(&g, MANY, 3), append_to(&g, MANY, 4)};
	fprintf(stderr,
	        "one %d-byte append costs its sender %llu bytes with %d members, %llu with %d\n",
	        ENTRY_BYTES, (unsigned long long)few[0], FEW, (unsigned long long)many[0], MANY);
	/* The entry and its framing, once: more than the entry, less than two of it. */
	assert_true(few[0] > ENTRY_BYTES && few[0] < 2 * ENTRY_BYTES);
	assert_int_equal(few[1], few[0]);
	assert_int_equal(many[0], few[0]);
	assert_int_equal(many[1], few[0]);
	for (int i = 0; i < MANY; i++)
		tclient_close(&members[i]);
	tclient_close(&writer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sender_bytes_do_not_grow),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, it_relay_teardown);
}
