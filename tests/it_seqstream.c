/* SPDX-License-Identifier: MIT */
/* Numbered envelopes for the durability tests (see it_seqstream.h). */
#include "it_seqstream.h"
#include "it_common.h"

size_t seq_make_body(uint32_t seq, uint8_t *out)
{
	uint8_t seed[crypto_stream_chacha20_KEYBYTES] = {0},
	        nonce[crypto_stream_chacha20_NONCEBYTES];
	memcpy(seed, &seq, sizeof(seq));
	memset(nonce, 0x5a, sizeof(nonce));
	size_t filler = 16 + (seq * 2654435761u) % 3000;
	memcpy(out, &seq, 4);
	crypto_stream_chacha20(out + 4, filler, nonce, seed);
	crypto_generichash(out + 4 + filler, 16, out, 4 + filler, NULL, 0);
	return 4 + filler + 16;
}

long seq_check_body(const uint8_t *body, size_t len)
{
	static uint8_t want[SEQ_BODY_MAX];
	uint32_t seq;
	if (len < 4 + 16 + 16 || len > sizeof(want))
		return -1;
	memcpy(&seq, body, 4);
	if (seq >= SEQ_MAX || seq_make_body(seq, want) != len || memcmp(want, body, len) != 0)
		return -1;
	return (long)seq;
}

static void record_reply(struct seqstream *s, const struct cairn_msg *reply, unsigned *out)
{
	uint32_t seq = reply->request_id - 1;
	assert_true(seq < s->next_seq && s->status[seq] == SEQ_UNKNOWN);
	if (reply->type == CAIRN_REPLY_OK) {
		s->status[seq] = SEQ_ACKED;
		s->acked++;
	} else {
		/* A storage error or a shutdown: refused, the sender would retry it. */
		assert_int_equal(reply->type, CAIRN_REPLY_ERROR);
		s->status[seq] = SEQ_REFUSED;
		s->refused++;
	}
	(*out)--;
}

unsigned seq_stream(struct seqstream *s, struct tclient *c, const uint8_t sid[24], int64_t stop_at,
                    unsigned count)
{
	unsigned outstanding = 0;
	seq_stream_many(&s, &c, (const uint8_t(*)[24])sid, 1, stop_at, count, &outstanding);
	return outstanding;
}

/* Sends the next envelope of S to SID on C. */
static void send_next(struct seqstream *s, struct tclient *c, const uint8_t sid[24])
{
	static uint8_t body[SEQ_BODY_MAX];
	assert_true(s->next_seq < SEQ_MAX);
	uint32_t seq = s->next_seq++;
	size_t len = seq_make_body(seq, body);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .request_id = seq + 1,
	                      .sender_id = sid,
	                      .envelope = body,
	                      .envelope_len = len};
	s->status[seq] = SEQ_UNKNOWN;
	assert_int_equal(tclient_send(c, &m), 0);
}

void seq_stream_many(struct seqstream *const s[], struct tclient *const c[],
                     const uint8_t (*sid)[24], unsigned n, int64_t stop_at, unsigned count,
                     unsigned outstanding[])
{
	assert_true(n > 0 && n <= SEQ_SENDERS_MAX);
	unsigned sent[SEQ_SENDERS_MAX] = {0};
	int64_t answered = it_mono_ms(); /* the last answer, for several senders' timeout */
	for (;;) {
		bool busy = false, sending = false;
		for (unsigned i = 0; i < n; i++) {
			bool more = stop_at != 0 ? it_mono_ms() < stop_at : sent[i] < count;
			if (more && outstanding[i] < SEQ_IN_FLIGHT) {
				send_next(s[i], c[i], sid[i]);
				outstanding[i]++;
				sent[i]++;
				sending = true;
			}
			busy |= more || (stop_at == 0 && outstanding[i] > 0);
		}
		if (sending)
			continue;
		if (!busy)
			break;
		/* Wait no later than the stop: the relay is then busy with the sends in flight,
		 * not idle after answering them. One sender waits as seq_stream always did;
		 * several are polled in turn. */
		int wait = n > 1 ? 1 : 10000;
		if (stop_at != 0) {
			int64_t left = stop_at - it_mono_ms();
			wait = left < 1 ? 0 : left > 5 ? 5 : (int)left;
		}
		for (unsigned i = 0; i < n; i++) {
			if (outstanding[i] == 0)
				continue;
			struct cairn_msg reply;
			int rc = tclient_recv(c[i], &reply, wait);
			if (rc == CAIRN_EIO && !tclient_peer_closed(c[i]) &&
			    (stop_at != 0 || n > 1))
				continue; /* nothing yet: check the clock, or the next sender */
			assert_int_equal(rc, 0);
			record_reply(s[i], &reply, &outstanding[i]);
			answered = it_mono_ms();
		}
		if (n > 1 && it_mono_ms() - answered > 10000)
			fail_msg("no answer to %u senders' sends for 10 s", n);
	}
}

void seq_collect(struct seqstream *s, struct tclient *c, unsigned outstanding)
{
	struct cairn_msg reply;
	while (outstanding > 0 && tclient_recv(c, &reply, 200) == 0)
		record_reply(s, &reply, &outstanding);
	s->unknown += outstanding;
}

struct seq_drained seq_drain(const struct seqstream *s, uint16_t port, const uint8_t pub[32],
                             const uint8_t rid[24], const uint8_t sk[64])
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, port, pub), 0);
	assert_int_equal(tclient_auth(&c, rid, sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, rid), 0);
	static uint8_t seen[SEQ_MAX];
	memset(seen, 0, sizeof(seen));
	struct seq_drained d = {0};
	uint64_t last_id = 0;
	long last_seq = -1;
	unsigned need = s->acked;
	uint32_t ack_rid = 0x40000000;
	for (;;) {
		/* Until every acknowledged one is in, a generous wait; then stragglers only. */
		struct cairn_msg env;
		int rc = tclient_recv(&c, &env, need > 0 ? 10000 : 500);
		if (rc == CAIRN_EIO && !tclient_peer_closed(&c))
			break;
		assert_int_equal(rc, 0);
		if (env.type == CAIRN_REPLY_OK && env.request_id >= 0x40000000)
			continue; /* an ACK's answer */
		if (env.type != CAIRN_REPLY_ENVELOPE)
			fail_msg("drain: %s for request %u", cairn_msg_type_name(env.type),
			         env.request_id);
		long seq = seq_check_body(env.envelope, env.envelope_len);
		if (seq < 0)
			fail_msg("envelope %llu: corrupted body (%zu bytes)",
			         (unsigned long long)env.envelope_id, env.envelope_len);
		if (env.envelope_id <= last_id)
			fail_msg("envelope id %llu after %llu: out of order or repeated",
			         (unsigned long long)env.envelope_id, (unsigned long long)last_id);
		last_id = env.envelope_id;
		if (seen[seq])
			fail_msg("envelope #%ld delivered twice", seq);
		seen[seq] = 1;
		/* One connection at a time sends, in sequence order, and nothing is resent: what
		 * arrives must come in the order it was sent. */
		if (seq <= last_seq)
			fail_msg("envelope #%ld delivered after #%ld: not in send order", seq,
			         last_seq);
		last_seq = seq;
		if (s->status[seq] == SEQ_REFUSED && s->refused_may_exist)
			d.refused_delivered++;
		else if (s->status[seq] == SEQ_UNSENT || s->status[seq] == SEQ_REFUSED)
			fail_msg("envelope #%ld delivered but never accepted (status %d)", seq,
			         s->status[seq]);
		if (s->status[seq] == SEQ_ACKED)
			need--;
		else if (s->status[seq] == SEQ_UNKNOWN)
			d.unknown_delivered++;
		d.delivered++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .recipient_id = rid,
		                        .envelope_id = env.envelope_id,
		                        .request_id = ack_rid++};
		assert_int_equal(tclient_send(&c, &ack), 0);
	}
	tclient_close(&c);
	for (uint32_t seq = 0; seq < s->next_seq; seq++)
		if (s->status[seq] == SEQ_ACKED && !seen[seq]) {
			if (d.lost < 5)
				printf("acknowledged envelope #%u is missing\n", seq);
			d.lost++;
		}
	return d;
}
