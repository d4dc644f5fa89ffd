/* SPDX-License-Identifier: MIT */
/*
 * The change feed, loop side (several relay nodes on one store; docs/SCALING.md 4): reading
 * the rows the other nodes committed (one STORAGE_FEED job at a time, on a wake from the
 * engine or once a second) and applying their ops to this relay's memory as the start-up load
 * and the commands would. Loop thread only, except the wake the engine calls.
 */
#ifndef CAIRN_RELAY_FEED_H
#define CAIRN_RELAY_FEED_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

struct relay;

/*
 * RELAY->node != 0: sets up the wake (an async handle on LOOP, which PARAMS->feed_wake sends
 * from any thread) and the one-second timer. Before storage_open, which may wake it at once.
 * Node 0 on an ENGINE that can be shared (it has feed_read): the timer alone, whose reads
 * check that the store is still this relay's (after a database failover, a relay started
 * beside an idle one is noticed within a second, not at its next write). Returns 0 or a
 * CAIRN_E code. Node 0 on an engine that cannot be shared: does nothing.
 */
int feed_start(struct relay *relay, uv_loop_t *loop, const struct store_engine *engine,
               struct store_params *params);
/* The relay stops: no more reads (the timer stops). */
void feed_pause(struct relay *relay);
/* The storage is closed (the engine wakes no more): the handles close. */
void feed_stop(struct relay *relay);

/* Reads the feed now, or again once the read in flight is back. */
void feed_poll(struct relay *relay);

/*
 * Applies one feed row (feed_codec.h) to RELAY's memory: all of it, or (a row that does not
 * decode) none of it and CAIRN_EMALFORMED. An op naming what this relay does not hold, or
 * repeating what it holds, changes nothing.
 */
int feed_apply(struct relay *relay, const uint8_t *ops, size_t len);

#endif
