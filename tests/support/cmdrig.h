/* SPDX-License-Identifier: MIT */
/*
 * The rig for in-process tests of the relay's command layer (test_relay_commands.c,
 * test_relay_envelope.c): one relay with its command layer reached through its handler table
 * (port.h) by connections that have no socket, the in-memory storage engine
 * (relay/memstorage.c) in struct relay, and the relay's clock injected. Replies are recorded
 * per connection, AUTH's deferred task runs inline, a storage batch runs only when the test
 * says so, and time moves only when the test moves it.
 */
#ifndef CAIRN_TESTS_CMDRIG_H
#define CAIRN_TESTS_CMDRIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "commands.h"
#include "memstorage.h"
#include "port.h"
#include "relay.h"

#define START_TIME  1767225600
#define TTL_S       3600
#define WINDOW      4
#define MAX_ENV     16
#define REPLIES_MAX 512

/* One reply as the connection would have encoded it, with the bytes it points at copied. */
struct reply {
	uint8_t type;
	uint32_t request_id;
	uint32_t code;
	uint64_t envelope_id;
	uint64_t seq, first_seq, next_seq; /* APPENDED, LOG_STATE, LOG_ENTRY */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t body[64];
	size_t body_len;
	uint8_t sealed[1040]; /* SEALED: the sealed reply (CODEC_SEALED_REPLY_MAX) */
	size_t sealed_len;
	/* POLICY: the body's length (0: nil), its digest, and policy_verify's verdict against
	 * the relay's public key (the body itself is not kept: 512 replies of 4 KiB) */
	size_t policy_len;
	uint8_t policy_digest[32];
	int policy_verified;
};

/* The command layer sees struct conn only as an opaque pointer: this is the test's own. */
struct conn {
	void *peer;
	unsigned refs;
	bool open;
	bool full;    /* output over its soft limit: no deliveries */
	size_t level; /* bytes of output it says are queued (port output_level) */
	uint8_t hash[CAIRN_HASH_LEN];
	struct reply replies[REPLIES_MAX];
	size_t n, seen;
};

struct box {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], sender_id[CAIRN_MAILBOX_ID_LEN];
};

/* The relay under test (setup makes it, teardown frees it), its configuration (defaults and
 * the values above, set again by each setup), and its clock: seconds on the wall clock and
 * monotonic milliseconds. */
extern struct relay *relay;
extern struct relay_config cfg;
extern int64_t now_s, now_ms;

/* cmocka fixtures: a fresh relay with its first ids reserved; everything freed and checked. */
int setup(void **state);
int teardown(void **state);

/* A connection the fixture closes at the end (the test may look at it after it closed). */
struct conn *open_conn(void);
/* Closes C as its socket would: its subscriptions end. */
void close_conn(struct conn *c);
/* Runs storage batches until nothing is queued (done() callbacks may queue more). */
void settle(void);

/* The next reply C has not looked at, or NULL; the expect_* take it and check it. */
struct reply *next_reply(struct conn *c);
void expect_ok(struct conn *c, uint32_t rid);
void expect_error(struct conn *c, uint32_t rid, int code);
void expect_nothing(struct conn *c);
/* An envelope delivered to C for subscription SUB_RID, with the body "env-N": returns N. */
int expect_envelope(struct conn *c, uint32_t sub_rid, uint64_t *id);

/* Commands, as C's connection would decode them. */
void command(struct conn *c, const struct cairn_msg *m);
/* CREATE on C (which may then manage the mailbox), waiting until it is durable. */
void create(struct conn *c, struct box *b);
/* AUTH for B's mailbox over C's handshake hash, signed with B's key or another. */
void auth(struct conn *c, const struct box *b, uint32_t rid, bool right_key);
/* SEND to B's mailbox of the body "env-N", with CREDENTIAL or none. */
void send_env(struct conn *c, const struct box *b, uint32_t rid, int n, const uint8_t *credential);
/* A command of TYPE naming B's mailbox (SUBSCRIBE, ACK of ENVELOPE_ID, DELETE). */
void on_mailbox(struct conn *c, uint8_t type, const struct box *b, uint32_t rid,
                uint64_t envelope_id);
/* A fresh connection of B's owner, authenticated (as request RID - 1) and subscribed as
 * request RID. */
struct conn *subscribe_again(const struct box *b, uint32_t rid);

#endif
