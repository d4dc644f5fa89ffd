/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench group`: one sender to N online members (issue 12), against cairn-relay and
 * mosquitto in one run, as `compare` does. Cairn's members each follow one group log
 * (LOG_READ follow 1) on their own connection and the sender appends to it (LOG_APPEND);
 * mosquitto's subscribe to one topic at QoS 0 and the publisher publishes to it. Each member
 * count gets a fresh server of each peer, one after the other, so that neither server's
 * connections weigh on the other's run.
 */
#include "bench.h"

/* A group message of section 9.4's short size: what PROTOCOL.md pads a short text to. */
#define GROUP_MESSAGE_BYTES 896

static const struct bench_peer *const peers[GROUP_PEERS] = {&bench_peer_cairn,
                                                            &bench_peer_mosquitto};

static int group_step(const struct bench_opts *o, struct group_step *st, int side)
{
	const struct bench_peer *p = peers[side];
	struct bench_server *s = NULL;
	bench_note("group (%s): 1 sender -> %u members, %u-byte messages, window %u", p->name,
	           (unsigned)st->shape.members, (unsigned)st->shape.size,
	           (unsigned)st->shape.window);
	if (p->start(o, &s) != 0)
		return -1;
	int rc = p->group_run(s, &st->shape, o->warmup_s, o->duration_s, &st->side[side]);
	p->stop(s);
	if (rc != 0)
		bench_note("group (%s): the run failed", p->name);
	return rc;
}

int group_run_all(const struct bench_opts *o, struct group_results *r)
{
	int rc = 0;
	r->have_limit = limit_measure(o, &r->limit) == 0;
	for (size_t i = 0; i < o->group_members_len; i++) {
		struct group_step *st = &r->steps[r->steps_len++];
		st->shape = (struct group_shape){.members = o->group_members[i],
		                                 .size = o->online_size > 0 ? o->online_size
		                                                            : GROUP_MESSAGE_BYTES,
		                                 .window = o->send_window};
		for (int side = 0; side < GROUP_PEERS; side++) {
			if (side == CMP_MOSQUITTO && o->group_cairn_only)
				continue;
			st->have[side] = group_step(o, st, side) == 0;
			if (!st->have[side])
				rc = -1;
		}
	}
	return rc;
}
