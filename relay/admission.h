/* SPDX-License-Identifier: MIT */
/*
 * What the relay lets in: room on the relay as a whole (mailboxes, envelope bytes, free disk
 * space) and each connection's budget for commands that create state. A full relay refuses
 * CREATE and SEND with CAIRN_ECAPACITY before anything is stored, so nothing it accepted is
 * ever dropped; a spent budget gives CAIRN_ELIMIT. A full disk (below min_free_disk, a write
 * that found no room, or no room for the reserve file) is one state, logged once as it
 * begins and once as it ends; it ends by itself when the room is back. Loop thread only.
 */
#ifndef CAIRN_RELAY_ADMISSION_H
#define CAIRN_RELAY_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

struct relay;

/* One connection's CREATE/SECURE budget: a token bucket (admission.c). */
struct admission_budget {
	uint64_t tokens; /* in 1/60000ths of a token */
	int64_t ms;      /* relay_now_ms of the last refill */
};

/* Takes the first sample of the data directory's free space (at start, before serving). */
void admission_init(struct relay *relay);
/* Called once a second: samples the free space again, on libuv's thread pool. */
void admission_tick(struct relay *relay);
/* A write's done() with STATUS: CAIRN_ECAPACITY (the disk had no room for it, storage.h)
 * puts the relay in the full state at once, without waiting for the next sample; another
 * failure is logged once until a write succeeds again. */
void admission_write_done(struct relay *relay, int status);

/* 0 if the relay has room for one more mailbox, else CAIRN_ECAPACITY. */
CAIRN_WARN_UNUSED int admission_room_for_mailbox(struct relay *relay);
/* 0 if the relay has room for one more group log, else CAIRN_ECAPACITY. */
CAIRN_WARN_UNUSED int admission_room_for_log(struct relay *relay);
/* 0 if the relay has room for one more envelope or log entry of LEN bytes, else
 * CAIRN_ECAPACITY. */
CAIRN_WARN_UNUSED int admission_room_for_envelope(struct relay *relay, size_t len);
/* The table of used work is full (PROTOCOL.md 5.10 check 4): counted and warned about like
 * the limits above, so the operator learns to raise work_seen_max. Returns CAIRN_ECAPACITY. */
int admission_work_table_full(struct relay *relay);
/* The same for the seen set of bundle items (PROTOCOL.md 5.12, bundle_seen_max). */
int admission_bundle_table_full(struct relay *relay);

/* Fills B, a new connection's budget. */
void admission_budget_init(struct relay *relay, struct admission_budget *b);
/* Takes one CREATE or SECURE from B: 0, or CAIRN_ELIMIT when it is spent. */
CAIRN_WARN_UNUSED int admission_take(struct relay *relay, struct admission_budget *b);

#endif
