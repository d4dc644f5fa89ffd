/* SPDX-License-Identifier: MIT */
/*
 * Envelope ids: reserved a block at a time by a durable mark, so they never repeat, even
 * across crashes.
 */
#include <stdlib.h>

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
	if (status == 0 && mark > relay->id_limit)
		relay->id_limit = mark;
	else if (status != 0)
		log_error("storage: cannot reserve envelope ids: %s", cairn_strerror(status));
	if (status == 0 && relay->on_ids_ready != NULL) {
		void (*ready)(struct relay *) = relay->on_ids_ready;
		relay->on_ids_ready = NULL;
		ready(relay);
	}
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
	r->job.op.envelope_id = relay->next_envelope_id + ID_BLOCK;
	relay->id_reserving = true;
	relay_submit(relay, &r->job);
}
