/* SPDX-License-Identifier: MIT */
/*
 * Envelope ids (log entries share them): reserved a block at a time by a durable mark, so
 * they never repeat, even across crashes; and the time marks that date them, so that expiry
 * deletes by id range.
 *
 * Several nodes on one store ([store] node 1..255) take ids from a hybrid logical clock: an
 * id is the wall clock in milliseconds shifted left by 8, the node in the low 8 bits, and
 * above every id this node gave or saw (in the change feed, at load), so ids are unique
 * across nodes, grow per node and per mailbox, and stay close to time (expiry by id range
 * means the same on every node). A node alone (0) counts up from the last id, as it always
 * did. Either way one durable mark, reserved ahead, covers what is handed out.
 */
#include <stdlib.h>
#include <time.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "log.h"
#include "relay.h"

static void on_ids_reserved(struct storage_job *job)
{
	struct request *r = job->data;
	struct relay *relay = r->relay;
	int status = job->status;
	uint64_t mark = job->op.envelope_id;
	free(r); /* JOB lives inside R: nothing below may touch it */
	relay->id_reserving = false;
	relay->ids_short = status == CAIRN_ECAPACITY;
	admission_write_done(relay, status);
	if (status == 0 && mark > relay->id_limit)
		relay->id_limit = mark;
	else if (status != 0 && status != CAIRN_ECAPACITY)
		log_error("storage: cannot reserve envelope ids: %s", cairn_strerror(status));
	/* A relay started on a full disk serves all the same: its owners take and ACK what it
	 * holds, which is what frees room. SENDs get `full` until a mark fits (the next SEND
	 * asks again). */
	if ((status == 0 || status == CAIRN_ECAPACITY) && relay->on_ids_ready != NULL) {
		void (*ready)(struct relay *) = relay->on_ids_ready;
		relay->on_ids_ready = NULL;
		ready(relay);
	}
}

/* The wall clock in milliseconds (RELAY's injected clock, in seconds, when it has one). */
static uint64_t wall_ms(const struct relay *relay)
{
	if (relay->clock.now != NULL) {
		int64_t s = relay->clock.now(relay->clock.ctx);
		return s > 0 ? (uint64_t)s * 1000u : 0;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u : 0;
}

/* The id the next envelope or log entry would get. */
static uint64_t id_candidate(const struct relay *relay)
{
	uint64_t next = relay->next_envelope_id;
	if (relay->node == 0)
		return next;
	/* The last id given or seen, its low byte made this node's, one clock step on. */
	uint64_t last = next > 0 ? next - 1 : 0;
	uint64_t stepped = ((last & ~(uint64_t)0xff) | relay->node) + 256;
	uint64_t clock = (wall_ms(relay) << 8) | relay->node;
	return clock > stepped ? clock : stepped;
}

uint64_t ids_block(const struct relay *relay)
{
	return relay->node != 0 ? ID_BLOCK_NODE : ID_BLOCK;
}

/* Whether the mark is less than half a block ahead of the next id. */
static bool ids_running_out(const struct relay *relay)
{
	uint64_t next = id_candidate(relay);
	return next >= relay->id_limit || relay->id_limit - next < ids_block(relay) / 2;
}

uint64_t ids_take(struct relay *relay)
{
	if (ids_running_out(relay))
		reserve_ids(relay);
	uint64_t id = id_candidate(relay);
	if (id >= relay->id_limit)
		return 0;
	relay->next_envelope_id = id + 1;
	return id;
}

void ids_seen(struct relay *relay, uint64_t id)
{
	if (id >= relay->next_envelope_id)
		relay->next_envelope_id = id + 1;
}

void ids_keep_ahead(struct relay *relay)
{
	/* A node's clock moves its ids on while it is idle: a block is about a minute of it,
	 * so without this a quiet node's next SEND would find the mark behind the clock. */
	if (relay->node != 0 && relay->ready && ids_running_out(relay))
		reserve_ids(relay);
}

void reserve_ids(struct relay *relay)
{
	if (relay->id_reserving || relay->storage == NULL)
		return;
	struct request *r = request_new(NULL, 0, on_ids_reserved);
	if (r == NULL)
		return; /* tried again with the next send */
	r->relay = relay;
	r->job.op.kind = STORE_ID_MARK;
	r->job.op.envelope_id = id_candidate(relay) + ids_block(relay);
	relay->id_reserving = true;
	relay_submit(relay, &r->job);
}

/*
 * Records that every envelope below NEXT_ID was stored at or before NOW. Marks are kept per
 * time grain (about a thousand of them span the TTL, whatever it is): within a grain the last
 * mark moves forward, so expiry is exact to the envelope and memory stays bounded. Marks never
 * go back in time (NOW below relay_stamp's high water counts as it): expiry walks them oldest
 * first and stops at the first one not yet due, and a mark dated before an older one would
 * date its envelopes too early. Loading the store raises the high water the same way.
 */
void add_time_mark(struct relay *relay, int64_t now, uint64_t next_id)
{
	int64_t grain = expiry_grain(relay);
	if (now < relay->stamp_high)
		now = relay->stamp_high;
	relay->stamp_high = now;
	struct time_mark *last = relay->marks_len ? &relay->marks[relay->marks_len - 1] : NULL;
	if (last != NULL && last->time / grain == now / grain) {
		if (now > last->time)
			last->time = now;
		if (next_id > last->next_id)
			last->next_id = next_id;
		return;
	}
	if (relay->marks_len == relay->marks_cap) {
		size_t ncap = relay->marks_cap ? relay->marks_cap * 2 : 64;
		struct time_mark *p = realloc(relay->marks, ncap * sizeof(*p));
		if (p == NULL)
			return; /* expiry waits for the next mark: late, never early */
		relay->marks = p;
		relay->marks_cap = ncap;
	}
	relay->marks[relay->marks_len++] = (struct time_mark){.time = now, .next_id = next_id};
}
