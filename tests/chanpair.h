/* SPDX-License-Identifier: MIT */
/*
 * Two protocol channels talking in memory, for the channel's tests (test_proto_channel*.c): a
 * client and a relay with an injected clock and scripted padding, the relay answering
 * message 1 at once, and what each side saw.
 */
#ifndef CAIRN_TESTS_CHANPAIR_H
#define CAIRN_TESTS_CHANPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"

#define NOW 1767225600u

/* Injected clock and randomness: a fixed time, and padding lengths from a script. */
struct env {
	uint64_t now;
	uint32_t pads[4];
	unsigned npads, next;
};

struct pair {
	struct env env;
	uint8_t priv[32], pub[32];
	struct channel client, relay;
	struct replay_cache *cache;
};

#define SEEN_MAX 512

/* What one side saw: the messages, in order, and the last non-message event. */
struct seen {
	unsigned n, opened, bad, failed, hellos;
	int error;
	uint8_t types[SEEN_MAX];
	uint32_t ids[SEEN_MAX];
	size_t env_len[SEEN_MAX];
};

/* The injected clock and padding lengths (from ENV's script, then 7). */
uint64_t env_now(void *ctx);
uint32_t env_uniform(void *ctx, uint32_t upper);

/* A client and a relay channel with fresh relay keys; 0 frame sizes: bucket padding. */
void pair_init_ex(struct pair *p, size_t client_frame, size_t relay_frame);

void pair_free(struct pair *p);

/* Drains TO's events; a relay answers message 1 at once (with P's cache). */
void drain(struct pair *p, struct channel *to, struct seen *s);

/* Feeds IN to TO in pieces of at most STEP bytes, draining events as they come. */
void feed(struct pair *p, struct channel *to, const uint8_t *in, size_t len, size_t step,
          struct seen *s);

/* Moves everything FROM has sealed into TO. */
void pump(struct pair *p, struct channel *from, struct channel *to, size_t step, struct seen *s);

/* Runs the handshake to OPEN on both sides. */
void handshake(struct pair *p);

/* Queues a PING with request id ID. */
void queue_ping(struct channel *ch, uint32_t id);

/* Wire sizes of the five buckets (4.2). */
bool is_bucket_frame(size_t len);

/* Checks that OUT (LEN bytes) is whole frames each of a permitted size; returns the count. */
unsigned count_frames(const uint8_t *out, size_t len, size_t fixed);

#endif
