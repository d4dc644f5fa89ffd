/* SPDX-License-Identifier: MIT */
/*
 * The group-log half of the misbehaving test relay (fakerelay.h): in-memory logs served as
 * docs/PROTOCOL.md 5.9 says (LOG_CREATE, LOG_APPEND, LOG_READ with follow, LOG_DELETE), and the
 * tampering a test asks for through fakerelay_log_ctl. Used only by fakerelay.c, in its child.
 */
#ifndef CAIRN_TEST_FAKERELAY_LOG_H
#define CAIRN_TEST_FAKERELAY_LOG_H

#include <stdint.h>

#include "codec.h"
#include "fakerelay.h"

struct frlog;

/* How the log half sends a reply on connection CI (fakerelay.c's reply()): 0 or -1. */
typedef int (*frlog_reply_fn)(void *ctx, int ci, const struct cairn_msg *m);

/* A new set of logs answering through REPLY(CTX, ...). NULL when out of memory. Freed with
 * frlog_free. */
struct frlog *frlog_new(frlog_reply_fn reply, void *ctx);
void frlog_free(struct frlog *l);

/* Handles M, one of CAIRN_CMD_LOG_*, from connection CI. Returns -1 when CI must close. */
int frlog_command(struct frlog *l, int ci, const struct cairn_msg *m);

/* Connection CI closed: its follow reads end. */
void frlog_conn_closed(struct frlog *l, int ci);

/* One control request (fakerelay_ctl): OP with A and B. Returns its answer (>= 0) or -1. */
int64_t frlog_ctl(struct frlog *l, int op, uint64_t a, uint64_t b);

/* What the logs did, for the stats. */
void frlog_stats(const struct frlog *l, struct fakerelay_stats *st);

#endif
