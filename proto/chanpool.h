/* SPDX-License-Identifier: MIT */
/*
 * A bounded pool of idle channels' buffers (struct channel_bufs with the blocks of its three
 * buffers), for a caller with many channels on one thread: a relay whose connections each
 * write a reply now and then would otherwise allocate and free those blocks for every
 * envelope, so that an idle connection holds nothing. A channel gives its buffers to the pool
 * once they are all empty and small, and takes a set from it before it needs one; the pool
 * keeps at most CHANNEL_POOL_SLOTS sets and frees the rest. Plaintext buffers are wiped
 * before the pool keeps them. Not thread-safe; a zeroed pool is empty and ready.
 */
#ifndef CAIRN_PROTO_CHANPOOL_H
#define CAIRN_PROTO_CHANPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "spares.h"

/* The largest buffer a pooled set may hold: a frame of the 4,096-byte bucket (4,114 bytes on
 * the wire, what carries one envelope of up to about 4 KiB) grows a buffer to 8 KiB. */
#define CHANNEL_POOL_BUF_MAX 8192

/* Sets of buffers a pool keeps at most: 16 x (3 x 8 KiB + 88 B), 385 KiB at the most. */
#define CHANNEL_POOL_SLOTS 16

struct channel_pool {
	struct spares sets; /* struct channel_bufs, at most CHANNEL_POOL_SLOTS */
};

/*
 * Gives CH a set of buffers from P when it has none (its next message, frame or output then
 * needs no allocation while it fits them). Nothing happens when CH holds buffers or P is
 * empty.
 */
void channel_pool_lend(struct channel_pool *p, struct channel *ch);

/*
 * Takes back what CH and the caller no longer need: when every buffer of CH is empty and at
 * most CHANNEL_POOL_BUF_MAX bytes and P has room, P keeps them (plaintext buffers wiped) and
 * CH holds nothing after; else as channel_trim_small (CH's empty buffers of at most SMALL
 * bytes are freed).
 * SPARE (may be NULL) is a buffer the caller took with channel_output_swap: when empty it
 * becomes CH's output buffer again if CH has none (to go with the set), or is freed when at
 * most SMALL bytes.
 */
void channel_pool_give(struct channel_pool *p, struct channel *ch, struct channel_buf *spare,
                       size_t small);

/* Called now and then (a relay: once a second): when no set was taken since the last call,
 * P frees them all, so that an idle caller holds nothing. */
void channel_pool_tick(struct channel_pool *p);

/* Frees every set P holds; P is empty and usable again. */
void channel_pool_free(struct channel_pool *p);

#endif
