/* SPDX-License-Identifier: MIT */
/*
 * Mailbox semantics (docs/PROTOCOL.md section 5): the command handlers, the life of an
 * envelope from SEND to ACK (with the write cancelled when the owner acknowledges first),
 * windowed in-order delivery, TTL expiry, and rebuilding the index from the store at start.
 */
#ifndef CAIRN_RELAY_COMMANDS_H
#define CAIRN_RELAY_COMMANDS_H

#include <stdint.h>

#include "codec.h"
#include "store.h"

struct conn;
struct relay;

/* Runs one decoded command from C. */
void commands_dispatch(struct conn *c, const struct cairn_msg *m);
/* C is closing: its subscriptions end (their unacknowledged envelopes will be redelivered). */
void commands_connection_closed(struct conn *c);
/* C's output drained below its limit: resume its deliveries. */
void commands_output_drained(struct conn *c);

/* Load callbacks for storage_open (ctx: struct relay *), and the step after loading, which
 * also reserves the first block of envelope ids; READY(RELAY) runs once that is durable. */
extern const struct store_load_cb commands_load_cb;
void commands_load_finish(struct relay *relay, void (*ready)(struct relay *relay));

/* Expires envelopes older than the TTL, in memory and (as one range delete) on disk. */
void commands_expire(struct relay *relay, int64_t now);
/* Sends END (shutdown) to every subscription. */
void commands_shutdown(struct relay *relay);

#endif
