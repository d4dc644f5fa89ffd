/* SPDX-License-Identifier: MIT */
/*
 * Start-up: the mailbox index rebuilt from one scan of the store, the next envelope id and
 * the expiry marks recovered, then the first block of ids reserved before connections are
 * accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "command_layer.h"
#include "commands.h"
#include "relay.h"

static int cmp_mailbox_id(const void *a, const void *b)
{
	uint64_t x = (*(struct mailbox *const *)a)->rec.id;
	uint64_t y = (*(struct mailbox *const *)b)->rec.id;
	return x < y ? -1 : x > y;
}

static void load_mailbox(void *ctx, const struct store_mailbox *rec)
{
	struct relay *relay = ctx;
	struct relay_load *l = &relay->load;
	struct mailbox *mb = mailbox_add(&relay->mailboxes, rec);
	if (mb == NULL)
		return;
	if (rec->touched > relay->stamp_high)
		relay->stamp_high = rec->touched; /* relay_stamp: never before what is stored */
	if (l->len == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct mailbox **p = realloc(l->by_id, ncap * sizeof(*p));
		if (p == NULL)
			return;
		l->by_id = p;
		l->cap = ncap;
	}
	l->by_id[l->len++] = mb;
}

static void load_envelope(void *ctx, const struct store_envelope_info *info)
{
	struct relay *relay = ctx;
	struct relay_load *l = &relay->load;
	if (!l->sorted) {
		if (l->len > 0)
			qsort(l->by_id, l->len, sizeof(*l->by_id), cmp_mailbox_id);
		l->sorted = true;
	}
	size_t lo = 0, hi = l->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->by_id[mid]->rec.id < info->mailbox_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	ids_seen(relay, info->id);
	add_time_mark(relay, info->stored_at, info->id + 1);
	if (lo < l->len && l->by_id[lo]->rec.id == info->mailbox_id)
		(void)mailbox_push(&relay->mailboxes, l->by_id[lo], info->id, info->len, NULL);
}

static void load_id_mark(void *ctx, uint64_t mark)
{
	struct relay *relay = ctx;
	if (mark > relay->next_envelope_id)
		relay->next_envelope_id = mark;
}

const struct store_load_cb commands_load_cb = {
    .mailbox = load_mailbox,
    .envelope = load_envelope,
    .log = logs_load_log,
    .log_entry = logs_load_entry,
    .id_mark = load_id_mark,
    .bundle_seen = bundles_load_seen,
};

void commands_load_finish(struct relay *relay, void (*ready)(struct relay *relay))
{
	free(relay->load.by_id);
	memset(&relay->load, 0, sizeof(relay->load));
	if (relay->next_envelope_id == 0)
		relay->next_envelope_id = 1;
	commands_init_dummies();
	/* The lower bound on a proof of work's time (5.10 check 2): read once, at start. */
	relay->started = relay_now(relay);
	(void)relay_stamp(relay); /* and the first high water of relay_stamp */
	worktable_init(&relay->work, relay->cfg->work_seen_max,
	               2 * (int64_t)relay->cfg->work_window_s);
	relay->id_limit = relay->next_envelope_id; /* nothing may be handed out yet */
	relay->on_ids_ready = ready;
	reserve_ids(relay);
}
