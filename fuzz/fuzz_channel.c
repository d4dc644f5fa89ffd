/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the protocol channel (proto/channel.h) from both ends at once: a client channel and a
 * relay channel in memory, with the input as a script of operations: queue a message on
 * either side, flush, move some of one side's output to the other, flip a byte in flight,
 * inject raw bytes or a raw frame, split the relay's handshake across other input. Keys,
 * clock and padding are fixed, so an input replays exactly. While the script stays honest
 * (nothing flipped or injected), everything each side queued must reach the other, in order,
 * and neither may fail; whatever the script, memory stays bounded and nothing crashes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channel.h"

#define OUTPUT_MAX (1u << 20)
/* Reader, plaintext and a batch of at most a frame each, plus output up to its bound and one
 * message over it. */
#define MEMORY_MAX (4 * 65536 + 2 * OUTPUT_MAX + 2 * CAIRN_MSG_ENCODED_MAX)
#define QUEUE_MAX  4096

struct script {
	const uint8_t *p;
	size_t left;
};

static uint8_t take8(struct script *s)
{
	if (s->left == 0)
		return 0;
	s->left--;
	return *s->p++;
}

static uint32_t take16(struct script *s)
{
	uint32_t hi = take8(s);
	return hi << 8 | take8(s);
}

struct side {
	struct channel ch;
	/* Types and ids queued on this side, to check against what the peer decodes. */
	uint8_t types[QUEUE_MAX];
	uint32_t ids[QUEUE_MAX];
	unsigned queued, received;
	bool failed;
};

struct world {
	struct side client, relay;
	struct replay_cache *cache;
	struct channel_hello hello;
	bool hello_pending;
	bool honest;
	uint32_t rng;
};

static uint8_t relay_priv[32], relay_pub[32], client_eph[32], relay_eph[32];
static uint8_t blob[CAIRN_ENVELOPE_MAX + 64];
static uint8_t moved[65536];

static uint64_t fixed_now(void *ctx)
{
	(void)ctx;
	return 1767225600u;
}

static uint32_t script_uniform(void *ctx, uint32_t upper)
{
	struct world *w = ctx;
	w->rng = w->rng * 1103515245u + 12345u;
	return (w->rng >> 8) % upper;
}

static void setup(void)
{
	static bool done;
	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	memset(relay_priv, 1, 32);
	crypto_scalarmult_base(relay_pub, relay_priv);
	memset(client_eph, 2, 32);
	memset(relay_eph, 3, 32);
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7 + 1);
	done = true;
}

/* Drains TO's events; FROM is the side whose queue the messages are checked against. */
static void drain(struct world *w, struct side *to, struct side *from)
{
	struct channel_event ev;
	for (;;) {
		switch (channel_next_event(&to->ch, &ev)) {
		case CHANNEL_EV_NONE:
			return;
		case CHANNEL_EV_HELLO:
			/* Taken now, finished by a later operation (or at the end). */
			if (channel_hello_take(&to->ch, &w->hello) != 0)
				abort();
			(void)channel_hello_respond(&w->hello, relay_priv, relay_pub);
			w->hello_pending = true;
			return;
		case CHANNEL_EV_OPEN:
			if (channel_session(&to->ch) == NULL)
				abort();
			break;
		case CHANNEL_EV_MESSAGE:
		case CHANNEL_EV_BAD_MESSAGE:
			if (w->honest) {
				unsigned i = to->received;
				if (ev.type != CHANNEL_EV_MESSAGE || i >= from->queued ||
				    (i < QUEUE_MAX && (ev.msg.type != from->types[i] ||
				                       ev.msg.request_id != from->ids[i])))
					abort();
			}
			to->received++;
			break;
		case CHANNEL_EV_FAILED:
			if (w->honest)
				abort();
			to->failed = true;
			return;
		}
	}
}

static void finish_hello(struct world *w)
{
	if (!w->hello_pending)
		return;
	w->hello_pending = false;
	int rc = channel_hello_finish(&w->relay.ch, &w->hello, w->cache);
	if (rc != 0 && w->honest)
		abort();
	drain(w, &w->relay, &w->client);
}

/* Moves up to N bytes of FROM's output into TO, at most a buffer at a time, flipping one
 * byte of the first piece if FLIP. */
static void transfer(struct world *w, struct side *from, struct side *to, size_t n, bool flip,
                     size_t flip_at)
{
	while (n > 0) {
		const uint8_t *out;
		size_t len = channel_output(&from->ch, &out);
		size_t piece = n < len ? n : len;
		if (piece > sizeof(moved))
			piece = sizeof(moved);
		if (piece == 0)
			return;
		memcpy(moved, out, piece);
		channel_output_consume(&from->ch, piece);
		n -= piece;
		if (flip) {
			moved[flip_at % piece] ^= 0x20;
			w->honest = false;
			flip = false;
		}
		size_t pos = 0;
		while (pos < piece) {
			if (to == &w->relay && w->hello_pending &&
			    channel_state(&to->ch) == CHANNEL_HELLO_PENDING)
				w->honest = false; /* bytes before message 2: refused */
			size_t used = channel_feed(&to->ch, moved + pos, piece - pos);
			pos += used;
			drain(w, to, from);
			if (used == 0 && channel_state(&to->ch) != CHANNEL_FAILED) {
				/* Only a pending hello holds input back: answer it, go on. */
				if (!w->hello_pending)
					abort();
				finish_hello(w);
			}
		}
	}
}

static void queue_msg(struct world *w, struct side *s, struct script *sc)
{
	static const uint8_t types[] = {1, 2, 3, 4, 5, 6, 7, 8, 64, 65, 66, 67, 68};
	struct cairn_msg m = {
	    .type = types[take8(sc) % sizeof(types)],
	    .request_id = take16(sc) << 16 | take16(sc),
	    .recipient_key = blob,
	    .recipient_id = blob + 1,
	    .sender_id = blob + 2,
	    .signature = blob + 3,
	    .credential = (take8(sc) & 1) ? blob + 4 : NULL,
	    .envelope_id = take16(sc),
	    .envelope = blob + 5,
	    .envelope_len = take16(sc) % (CAIRN_ENVELOPE_MAX + 1),
	    .code = take8(sc),
	};
	if (m.type == CAIRN_CMD_SECURE && m.credential == NULL)
		m.credential = blob + 4;
	if (channel_queue(&s->ch, &m) != 0)
		return;
	if (s->queued < QUEUE_MAX) {
		s->types[s->queued] = m.type;
		s->ids[s->queued] = m.request_id;
	}
	s->queued++;
	(void)w;
}

/* Sealing fails only on a channel that is not open, or failed already. */
static void flush(struct world *w, struct side *s)
{
	enum channel_state before = channel_state(&s->ch);
	if (channel_flush(&s->ch) != 0 && before == CHANNEL_OPEN)
		abort();
	(void)w;
}

static void check_memory(const struct world *w)
{
	if (channel_memory(&w->client.ch) > MEMORY_MAX || channel_memory(&w->relay.ch) > MEMORY_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	static struct world w;
	memset(&w, 0, sizeof(w));
	w.honest = true;
	w.cache = replay_cache_new(16);
	struct channel_options co = {.role = CHANNEL_INITIATOR,
	                             .relay_public = relay_pub,
	                             .output_max = OUTPUT_MAX,
	                             .now = fixed_now,
	                             .uniform = script_uniform,
	                             .ctx = &w,
	                             .ephemeral = client_eph};
	struct channel_options ro = {.role = CHANNEL_RESPONDER,
	                             .output_max = OUTPUT_MAX,
	                             .now = fixed_now,
	                             .uniform = script_uniform,
	                             .ctx = &w,
	                             .ephemeral = relay_eph};
	struct script sc = {data, size};
	/* The first byte may give the relay a fixed frame size. */
	uint8_t cfg = take8(&sc);
	if (cfg & 1)
		ro.frame_size = CAIRN_FRAME_FIXED_MIN + (size_t)(cfg >> 1) * 150;
	if (w.cache == NULL || channel_init(&w.client.ch, &co) != 0 ||
	    channel_init(&w.relay.ch, &ro) != 0)
		abort();

	while (sc.left > 0) {
		uint8_t op = take8(&sc);
		struct side *s = (op & 0x80) ? &w.relay : &w.client;
		struct side *peer = s == &w.client ? &w.relay : &w.client;
		switch (op & 7) {
		case 0:
			queue_msg(&w, s, &sc);
			break;
		case 1:
			flush(&w, s);
			break;
		case 2: /* move some bytes */
			transfer(&w, s, peer, 1 + take16(&sc), false, 0);
			break;
		case 3: /* move everything */
			transfer(&w, s, peer, SIZE_MAX, false, 0);
			break;
		case 4: /* move everything, one byte flipped */
			transfer(&w, s, peer, SIZE_MAX, true, take16(&sc));
			break;
		case 5: { /* raw bytes from the script into S */
			size_t n = take8(&sc);
			n = n < sc.left ? n : sc.left;
			w.honest = false;
			(void)channel_feed(&s->ch, sc.p, n);
			drain(&w, s, peer);
			sc.p += n;
			sc.left -= n;
			break;
		}
		case 6: { /* a raw frame: script bytes sealed as content, whatever they hold */
			size_t n = take16(&sc);
			n = n < sc.left ? n : sc.left;
			w.honest = false;
			(void)!channel_send_frame(&s->ch, sc.p, n);
			sc.p += n;
			sc.left -= n;
			break;
		}
		case 7:
			finish_hello(&w);
			break;
		}
		check_memory(&w);
	}
	/* Settle: answer the hello, flush both ways until nothing moves. */
	for (int round = 0; round < 4; round++) {
		finish_hello(&w);
		flush(&w, &w.client);
		flush(&w, &w.relay);
		transfer(&w, &w.client, &w.relay, SIZE_MAX, false, 0);
		transfer(&w, &w.relay, &w.client, SIZE_MAX, false, 0);
	}
	if (w.honest &&
	    (w.relay.received != w.client.queued || w.client.received != w.relay.queued))
		abort();
	check_memory(&w);
	if (w.hello_pending)
		sodium_memzero(&w.hello, sizeof(w.hello));
	channel_free(&w.client.ch);
	channel_free(&w.relay.ch);
	replay_cache_free(w.cache);
	return 0;
}
