/* SPDX-License-Identifier: MIT */
/*
 * The command layer as the rest of the relay sees it: mailbox semantics (docs/PROTOCOL.md
 * section 5) behind the handler table connections call, the start-up load, TTL expiry and
 * shutdown. Its modules (commands.c, load.c, expiry.c, delivery.c, envelope.c, ids.c,
 * peer.c) are listed in command_layer.h, which only they include.
 */
#ifndef CAIRN_RELAY_COMMANDS_H
#define CAIRN_RELAY_COMMANDS_H

#include <stdint.h>

#include "codec.h"
#include "port.h"
#include "store.h"

struct relay;

/*
 * What connections call (port.h): set as relay->handler. A connection's commands run in
 * order; when it closes, its subscriptions end (their unacknowledged envelopes are delivered
 * again on the next SUBSCRIBE); when its output drains, its deliveries resume.
 */
extern const struct conn_handler commands_handler;

/* Load callbacks for storage_open (ctx: struct relay *), and the step after loading, which
 * also reserves the first block of envelope ids; READY(RELAY) runs once that is durable. */
extern const struct store_load_cb commands_load_cb;
void commands_load_finish(struct relay *relay, void (*ready)(struct relay *relay));

/* Expires envelopes older than the TTL, in memory and (as one range delete) on disk, and
 * some used work (worktable.h). */
void commands_expire(struct relay *relay, int64_t now);
/* Sends END (shutdown) to every subscription and group log read, and frees the group log
 * registry and the table of used work: called once the storage is closed (every job done), before
 * connections close. */
void commands_shutdown(struct relay *relay);

#endif
