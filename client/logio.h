/* SPDX-License-Identifier: MIT */
/*
 * The transport of group logs (docs/PROTOCOL.md 5.9 and 9.9): the group outbox's transport
 * side (group_out.c: listing what waits, marking it done) and carrying it over relay
 * connections (logio.c), reading the logs a logio_handler (group_io.h) lists and handing it
 * every entry in log order. Not part of the public API.
 */
#ifndef CAIRN_CLIENT_LOGIO_H
#define CAIRN_CLIENT_LOGIO_H

#include <stddef.h>
#include <stdint.h>

#include "group_io.h"
#include "records.h"

/* ---- the group outbox, the transport's side (group_out.c) ---- */

/* The two digests of LOG_CREATE (PROTOCOL.md 5.9) for LOG and DELETE_SECRET. */
void group_log_digests(const struct group_log_ref *log,
                       const uint8_t delete_secret[CAIRN_CREDENTIAL_LEN],
                       uint8_t credential_digest[CAIRN_CREDENTIAL_LEN],
                       uint8_t delete_digest[CAIRN_CREDENTIAL_LEN]);

/* Calls CB with every queued item (borrowed for the call) in queue order, only those for
 * RELAY unless it is NULL. CB returns 0 to go on, anything else to stop (returned). */
typedef int (*group_out_cb)(void *ctx, const struct group_out_item *g);
CAIRN_WARN_UNUSED int group_out_list(struct cairn *c, const char *relay, group_out_cb cb,
                                     void *ctx);

/* The relay confirmed item OUT_ID: it leaves the queue (absent is not an error). Inside the
 * caller's transaction, if any. */
CAIRN_WARN_UNUSED int group_out_done(struct cairn *c, const uint8_t out_id[16]);

/* Drops every queued item of log LOG_ID (the log is gone: none of them can land). */
CAIRN_WARN_UNUSED int group_out_drop_log(struct cairn *c, const uint8_t log_id[CAIRN_LOG_ID_LEN]);

#endif
