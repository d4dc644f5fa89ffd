/* SPDX-License-Identifier: MIT */
/*
 * Inside the attack-mix driver: what attack.c (the patterns, the replies, the connection) and
 * attack_gen.c (the generator table) share. The attacker's state, its mailboxes, and the few
 * functions each side calls in the other. Not for tests: they use attack.h.
 */
#ifndef CAIRN_TEST_ATTACK_INTERNAL_H
#define CAIRN_TEST_ATTACK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attack.h"
#include "tclient.h"

#define MB_MAX        120  /* mailboxes remembered; SUBSCRIBE request ids are 1..MB_MAX */
#define RID_BASE      256  /* other request ids cycle through RID_BASE..65535 */
#define DELIVERED_MAX 8192 /* deliveries waiting for an ACK */
#define FILL_BOXES    8    /* mailboxes DELETE_STORM fills, and FILL creates at a time */
#define AUTH_BOXES    4    /* mailboxes AUTH signs for */
/* TOMBSTONES: SENDs in flight while building, well under the relay's requests in flight (a
 * connection at that limit is not read, and its ACKs would wait behind the disk). */
#define TOMB_SENDS   48
#define CREATES_MAX  64 /* CREATEs in flight for the patterns that wait on them */
#define AUTH_MSG_LEN (12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN)

/* What a request id was used for, so that its reply can be understood. */
enum kind { K_OTHER, K_CREATE, K_AUTH, K_SEND, K_INTAKE };

struct mbox {
	bool live, authed, subscribed, secured, full, filled, sig_ok, first_seen;
	uint64_t first_id;
	uint8_t rid[CAIRN_MAILBOX_ID_LEN], sid[CAIRN_MAILBOX_ID_LEN];
	uint8_t cred[CAIRN_CREDENTIAL_LEN];
	uint8_t sig[CAIRN_SIGNATURE_LEN]; /* a valid AUTH for this connection, once sig_ok */
	uint8_t intake_bits; /* INTAKE sent for it with these bits (5.10); 0: an ordinary one */
};

struct delivered {
	uint16_t mb;
	uint64_t id;
};

struct attack {
	const struct attack_config *cfg;
	struct attack_stats *st;
	uint64_t rng;
	int64_t start_ms, half_ms; /* half_ms: where a two-phase pattern changes phase */
	struct tclient c;          /* the channel, and the batch being composed */
	bool connected;
	bool exhausted; /* a CREATE was refused on this connection */
	int64_t exhausted_ms;
	bool keep_first;     /* TOMBSTONES: never acknowledge a mailbox's first envelope */
	bool filling;        /* DELETE_STORM: mailboxes created now are the filled ones */
	bool want_reconnect; /* the pattern asks for a new connection once its output is out */
	uint8_t pk[CAIRN_KEY_LEN], sk[64]; /* the recipient key of every mailbox it creates */
	struct mbox mb[MB_MAX];
	uint32_t next_rid;
	uint64_t outstanding; /* commands written or queued, not yet answered */
	unsigned pending_creates, sends_out;
	uint64_t max_env_id;
	size_t dl_len;
	struct delivered dl[DELIVERED_MAX];
	struct {
		uint8_t kind, mb;
	} rid_info[65536];
	uint8_t out[CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX];
	size_t out_len, out_off;
	int64_t blocked_since;
	uint8_t body[CAIRN_ENVELOPE_MAX + 1];
	bool intake_pending; /* an INTAKE not yet answered */
	bool intake_ready;   /* MIX: its first intake mailboxes are made (or it gave up) */
	/* The last SEND_WORK with valid work, to send again (5.10's reused work). */
	bool have_work;
	uint8_t work_sid[CAIRN_MAILBOX_ID_LEN], work[16], work_env[256];
	size_t work_env_len;
};

/* The properties pick() and count() look for in a mailbox (a mask of W_*). */
enum {
	W_AUTHED = 1,
	W_NOT_FULL = 2,
	W_SECURED = 4,
	W_UNSECURED = 8,
	W_NOT_FILLED = 16,
	W_FILLED = 32,
	W_INTAKE = 64, /* INTAKE sent for it, with at most WORK_CHEAP_BITS */
	W_NOT_INTAKE = 128,
};

/* The most bits the attacker solves for: 2^8 one-block hashes, about 100 us. */
#define WORK_CHEAP_BITS 8

/* Each generator encodes one command into OUT (CAP bytes) and returns its length, or 0 when
 * it does not apply now (no mailbox of the kind it needs) or does not fit. State changes only
 * when it returns non-zero. */
typedef size_t (*gen_fn)(struct attack *a, uint8_t *out, size_t cap);

enum gen_id {
	G_PING,
	G_PING_WIDE,
	G_CREATE,
	G_AUTH_VALID,
	G_AUTH_BAD,
	G_AUTH_UNKNOWN,
	G_SECURE,
	G_SUBSCRIBE,
	G_ACK_DELIVERED,
	G_ACK_UNKNOWN,
	G_ACK_AHEAD,
	G_DELETE,
	G_SEND_OPEN,
	G_SEND_CRED,
	G_SEND_EMPTY,
	G_SEND_MAX,
	G_SEND_WRONG_CRED,
	G_SEND_NOBOX,
	G_SEND_TOO_BIG,
	G_REPLY_TYPE,
	G_UNKNOWN_TYPE,
	G_WRONG_FIELD,
	G_LOG_CREATE,
	G_LOG_APPEND,
	G_LOG_APPEND_WRONG,
	G_LOG_READ,
	G_LOG_READ_UNKNOWN,
	G_LOG_DELETE_WRONG,
	G_INTAKE,
	G_INTAKE_BAD_BITS,
	G_SEND_WORK_VALID,
	G_SEND_WORK_GARBAGE,
	G_SEND_WORK_NOBOX,
	G_SEND_WORK_REUSED,
	G_FORWARDED_GARBAGE,
	G_FORWARD,
	G_BUNDLED_GARBAGE,
	G_BUNDLED_EXPIRED,
	G_BUNDLED_VALID,
	G_POLICY,
	G_POLICY_BAD,
	G_COUNT
};

/* The table (attack_gen.c): a new command is one entry there (and one in enum gen_id).
 * WEIGHT is its share of the random mix. */
struct generator {
	const char *name;
	unsigned weight;
	gen_fn fn;
};
extern const struct generator generators[G_COUNT];

/* attack.c: the random stream (splitmix64 from the seed) and the mailboxes. */
uint64_t rnd(struct attack *a);
void rnd_bytes(struct attack *a, uint8_t *p, size_t n);
/* A random live mailbox with the properties WANT, or -1. */
int pick(struct attack *a, unsigned want);
/* How many live mailboxes have the properties WANT. */
unsigned count(const struct attack *a, unsigned want);

/* attack_gen.c: SUBSCRIBE to mailbox I encoded into OUT (CAP bytes): its length, or 0. */
size_t subscribe_to(struct attack *a, int i, uint8_t *out, size_t cap);
/* Appends generator G's command to the batch; false if it does not apply or fit. */
bool emit(struct attack *a, enum gen_id g);
/* emit() until it returns false. */
void emit_all(struct attack *a, enum gen_id g);

#endif
