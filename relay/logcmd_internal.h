/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of the group log commands share: a read in progress and the calls
 * that start, feed and end one. Private to logcmd.c (the commands, appends' fan-out, expiry,
 * the change feed) and logread.c (the reads); each call is described where it is defined.
 */
#ifndef CAIRN_RELAY_LOGCMD_INTERNAL_H
#define CAIRN_RELAY_LOGCMD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct glog;
struct log_batch;
struct peer;
struct relay;

/* A read in progress: a cursor, and at most one batch being loaded. */
struct log_reader {
	struct relay *relay;
	struct glog *log; /* NULL once ended */
	struct peer *peer;
	struct log_reader *prev, *next; /* LOG's readers */
	uint32_t request_id;
	uint64_t cursor; /* the next seq to send */
	uint64_t stop;   /* follow 0: next_seq when the read started; UINT64_MAX when following */
	struct log_batch *batch;
	uint8_t misses; /* batches that found an entry gone, in a row */
	bool waiting;   /* in the registry's wait list */
	struct log_reader *wait_prev, *wait_next;
};

void logread_reader_end(struct log_reader *r, int code);
void logread_send_entry(struct log_reader *r, uint64_t seq, const uint8_t *body, uint32_t len);
bool logread_in_turn(const struct relay *relay, const struct glog *log, uint64_t want,
                     uint64_t seq);
void logread_reader_pump(struct log_reader *r);

#endif
