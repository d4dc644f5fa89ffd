/* SPDX-License-Identifier: MIT */
/* Shared pieces of the group log integration tests (PROTOCOL.md 5.9) over tclient: a log's
 * keys, numbered entries, and LOG_CREATE / LOG_APPEND / LOG_READ with their replies checked. */
#ifndef CAIRN_TEST_IT_GROUPLOG_COMMON_H
#define CAIRN_TEST_IT_GROUPLOG_COMMON_H

#include <stdio.h>

#include "it_common.h"

/* A log as its creator knows it. */
struct glog_keys {
	uint8_t id[CAIRN_LOG_ID_LEN], cred[32], cred_digest[32], del[32], del_digest[32];
};

static inline void glog_keys_new(struct glog_keys *k)
{
	randombytes_buf(k->id, sizeof(k->id));
	randombytes_buf(k->cred, sizeof(k->cred));
	randombytes_buf(k->del, sizeof(k->del));
	crypto_generichash(k->cred_digest, 32, k->cred, 32, k->id, sizeof(k->id));
	crypto_generichash(k->del_digest, 32, k->del, 32, k->id, sizeof(k->id));
}

static uint8_t glog_body[CAIRN_LOG_ENTRY_MAX];

/* Entry N in glog_body: LEN bytes (at most CAIRN_LOG_ENTRY_MAX) that begin with its name
 * "entry-N" as far as they go. */
static inline size_t glog_entry_of(int n, size_t len)
{
	char name[24];
	int w = snprintf(name, sizeof(name), "entry-%d", n);
	size_t nl = w < 0 ? 0 : (size_t)w;
	memset(glog_body, 'a' + n % 26, len);
	memcpy(glog_body, name, nl < len ? nl : len);
	return len;
}

/* LOG_CREATE of K; 0 or the ERROR code. */
static inline int glog_create(struct tclient *c, const struct glog_keys *k)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .log_id = k->id,
	                      .credential = k->cred_digest,
	                      .delete_digest = k->del_digest},
	                 reply;
	return tclient_call(c, &m, &reply);
}

/* LOG_APPEND of entry N (LEN bytes) with CRED; 0 and *SEQ, or the ERROR code. */
static inline int glog_append(struct tclient *c, const struct glog_keys *k, const uint8_t *cred,
                              int n, size_t len, uint64_t *seq)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = k->id,
	                      .credential = cred,
	                      .envelope = glog_body,
	                      .envelope_len = glog_entry_of(n, len)},
	                 reply;
	int rc = tclient_call(c, &m, &reply);
	if (rc == 0) {
		assert_int_equal(reply.type, CAIRN_REPLY_APPENDED);
		*seq = reply.seq;
	}
	return rc;
}

/* Queues LOG_APPEND of entry N (LEN bytes) with request id N (not flushed). */
static inline void glog_queue_append(struct tclient *c, const struct glog_keys *k, int n,
                                     size_t len)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .request_id = (uint32_t)n,
	                      .log_id = k->id,
	                      .credential = k->cred,
	                      .envelope = glog_body,
	                      .envelope_len = glog_entry_of(n, len)};
	assert_int_equal(tclient_queue(c, &m), 0);
}

/* Sends LOG_READ (not waiting); returns its request id. */
static inline uint32_t glog_read_send(struct tclient *c, const struct glog_keys *k, uint64_t from,
                                      int follow)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = c->next_id++,
	                      .log_id = k->id,
	                      .seq = from,
	                      .follow = (uint8_t)follow};
	assert_int_equal(tclient_send(c, &m), 0);
	return m.request_id;
}

/* Waits for LOG_STATE of read RID; returns its next_seq (its first_seq in *FIRST if set). */
static inline uint64_t glog_expect_state(struct tclient *c, uint32_t rid, uint64_t *first)
{
	struct cairn_msg m;
	assert_int_equal(tclient_recv(c, &m, 10000), 0);
	assert_int_equal(m.type, CAIRN_REPLY_LOG_STATE);
	assert_int_equal(m.request_id, rid);
	if (first != NULL)
		*first = m.first_seq;
	return m.next_seq;
}

/* Waits for LOG_ENTRY SEQ of read RID holding entry N of LEN bytes. */
static inline void glog_expect_entry(struct tclient *c, uint32_t rid, uint64_t seq, int n,
                                     size_t len)
{
	struct cairn_msg m;
	assert_int_equal(tclient_recv(c, &m, 10000), 0);
	assert_int_equal(m.type, CAIRN_REPLY_LOG_ENTRY);
	assert_int_equal(m.request_id, rid);
	assert_int_equal(m.seq, seq);
	assert_int_equal(m.envelope_len, len);
	glog_entry_of(n, len);
	assert_memory_equal(m.envelope, glog_body, len);
}

static inline void glog_expect_end(struct tclient *c, uint32_t rid, uint32_t code)
{
	struct cairn_msg m;
	assert_int_equal(tclient_recv(c, &m, 10000), 0);
	assert_int_equal(m.type, CAIRN_REPLY_END);
	assert_int_equal(m.request_id, rid);
	assert_int_equal(m.code, code);
}

#endif
