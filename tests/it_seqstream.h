/* SPDX-License-Identifier: MIT */
/*
 * What the durability tests test_it_crash (kill -9) and test_it_powercut (power cuts) share:
 * numbered envelopes whose bodies show any corruption, a sender that streams them with many
 * in flight until a moment or a count, and the record of what the relay answered to each.
 * One source (it_seqstream.c) linked into both.
 */
#ifndef CAIRN_TEST_IT_SEQSTREAM_H
#define CAIRN_TEST_IT_SEQSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tclient.h"

#define SEQ_MAX       1000000 /* envelopes per test */
#define SEQ_BODY_MAX  (4 + 3016 + 16)
#define SEQ_IN_FLIGHT 32 /* sends outstanding at once */

enum { SEQ_UNSENT, SEQ_UNKNOWN, SEQ_ACKED, SEQ_REFUSED };

/* The envelopes sent so far, and what the relay answered to each. */
struct seqstream {
	uint8_t status[SEQ_MAX]; /* SEQ_* */
	uint32_t next_seq;
	unsigned acked, refused, unknown;
	/* Set by a test of a remote store: an ERROR may answer a commit whose outcome the relay
	 * could not know (the connection fell during COMMIT), so a refused envelope may still be
	 * delivered (counted, not a failure); an acknowledged one must be, as always. */
	bool refused_may_exist;
};

/* Envelope SEQ's body into OUT (SEQ_BODY_MAX bytes): seq (u32 LE) || filler of a length and
 * content derived from seq || BLAKE2b-128 of everything before it. Returns its length. */
size_t seq_make_body(uint32_t seq, uint8_t *out);
/* The sequence number of a delivered body, or -1 if it is not one seq_make_body wrote. */
long seq_check_body(const uint8_t *body, size_t len);
/*
 * Streams envelopes to the mailbox SID on C, SEQ_IN_FLIGHT at most unanswered, until the
 * monotonic time STOP_AT (ms; 0: send COUNT and wait for every answer). Answers are
 * recorded in S. Returns how many sends are still unanswered (0 when STOP_AT is 0). Fails
 * the test on anything but OK or ERROR to a send.
 */
unsigned seq_stream(struct seqstream *s, struct tclient *c, const uint8_t sid[24], int64_t stop_at,
                    unsigned count);
/*
 * Several senders at once, as seq_stream each: connection C[i] streams to mailbox SID[i],
 * recorded in S[i], for I below N (SEQ_SENDERS_MAX at most), COUNT envelopes each when
 * STOP_AT is 0. OUTSTANDING[i] holds each connection's unanswered sends, in and out: a stream
 * interrupted by a stop goes on where it was.
 */
#define SEQ_SENDERS_MAX 16
void seq_stream_many(struct seqstream *const s[], struct tclient *const c[],
                     const uint8_t (*sid)[24], unsigned n, int64_t stop_at, unsigned count,
                     unsigned outstanding[]);
/* After the relay died: reads the answers it sent before (OUTSTANDING of them unanswered),
 * then counts the rest as unknown. */
void seq_collect(struct seqstream *s, struct tclient *c, unsigned outstanding);

/* What a drain found: envelopes delivered, of them not acknowledged when sent, and
 * acknowledged ones missing. */
struct seq_drained {
	unsigned delivered, unknown_delivered, lost;
	unsigned refused_delivered; /* only when refused_may_exist */
};
/*
 * The owner of mailbox RID (secret key SK) drains it on a new connection to the relay at
 * PORT (key PUB), acknowledging each envelope. Fails the test on a corrupt body, an envelope
 * repeated, out of id or send order, or never accepted; waits up to 10 s for each while
 * acknowledged ones are missing. Prints the first few missing ones.
 */
struct seq_drained seq_drain(const struct seqstream *s, uint16_t port, const uint8_t pub[32],
                             const uint8_t rid[24], const uint8_t sk[64]);

#endif
