/* SPDX-License-Identifier: MIT */
/*
 * Admission: the relay-wide limits of [limits] (max_mailboxes, max_stored_bytes,
 * min_free_disk) and the CREATE/SECURE budget of each connection (create_burst,
 * create_per_minute). Counts come from the mailbox index, which the loop thread keeps anyway;
 * the disk's free space is sampled once a second off the loop thread, never per command.
 */
#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>

#include "admission.h"
#include "log.h"
#include "relay.h"

/* A warning for the operator at most this often while the relay refuses work. */
#define FULL_WARN_EVERY_MS 60000

/* ---- free disk space ------------------------------------------------------------------ */

static void disk_sampled(struct relay *relay, uint64_t free_bytes)
{
	bool low = free_bytes < relay->cfg->min_free_disk;
	if (low != relay->disk_low)
		log_warn(low ? "the data directory's disk has less free space than min_free_disk: "
		               "refusing CREATE and SEND until there is more"
		             : "the data directory's disk has free space again: accepting CREATE "
		               "and SEND");
	relay->disk_low = low;
	relay->disk_free = free_bytes;
}

void admission_init(struct relay *relay)
{
	struct statvfs st;
	if (statvfs(relay->cfg->data_dir, &st) != 0) {
		/* Unknown is not full: the storage thread's own errors still stop bad writes. */
		log_warn("cannot read the free space of the data directory's disk: min_free_disk "
		         "is not enforced until it can be read");
		return;
	}
	disk_sampled(relay, (uint64_t)st.f_bavail * st.f_frsize);
}

static void on_statfs(uv_fs_t *req)
{
	struct relay *relay = req->data;
	relay->disk_sampling = false;
	if (req->result == 0 && req->ptr != NULL) {
		const uv_statfs_t *st = req->ptr;
		disk_sampled(relay, st->f_bavail * st->f_bsize);
	}
	uv_fs_req_cleanup(req);
}

void admission_tick(struct relay *relay)
{
	if (relay->disk_sampling || relay->cfg->min_free_disk == 0)
		return;
	relay->disk_req.data = relay;
	if (uv_fs_statfs(relay->loop, &relay->disk_req, relay->cfg->data_dir, on_statfs) == 0)
		relay->disk_sampling = true;
}

/* ---- room on the relay ---------------------------------------------------------------- */

static int refuse_full(struct relay *relay, const char *why)
{
	relay->stats.refused_full++;
	int64_t now = relay_now_ms(relay);
	if (relay->full_warned_ms == 0 || now - relay->full_warned_ms >= FULL_WARN_EVERY_MS) {
		relay->full_warned_ms = now;
		log_warn("the relay is full (%s): refusing new %s with the error 'full'", why,
		         strcmp(why, "max_mailboxes") == 0     ? "mailboxes"
		         : strcmp(why, "bundle_seen_max") == 0 ? "bundle items"
		                                               : "work");
	}
	return CAIRN_ECAPACITY;
}

int admission_room_for_mailbox(struct relay *relay)
{
	if (relay->mailboxes.count >= relay->cfg->max_mailboxes)
		return refuse_full(relay, "max_mailboxes");
	if (relay->disk_low)
		return refuse_full(relay, "min_free_disk");
	return 0;
}

int admission_room_for_log(struct relay *relay)
{
	if (relay->logs.count >= relay->cfg->max_logs)
		return refuse_full(relay, "max_logs");
	if (relay->disk_low)
		return refuse_full(relay, "min_free_disk");
	return 0;
}

int admission_work_table_full(struct relay *relay)
{
	return refuse_full(relay, "work_seen_max");
}

int admission_bundle_table_full(struct relay *relay)
{
	return refuse_full(relay, "bundle_seen_max");
}

int admission_room_for_envelope(struct relay *relay, size_t len)
{
	const struct mailbox_index *ix = &relay->mailboxes;
	/* Every envelope costs its row and its entry in memory besides its bytes, so a flood of
	 * empty envelopes is bounded too. */
	const struct log_registry *logs = &relay->logs;
	uint64_t held = ix->bytes + ix->envelopes * CAIRN_ENVELOPE_OVERHEAD + logs->bytes +
	                logs->entries * CAIRN_ENVELOPE_OVERHEAD;
	uint64_t more = (uint64_t)len + CAIRN_ENVELOPE_OVERHEAD;
	if (held > relay->cfg->max_stored_bytes || more > relay->cfg->max_stored_bytes - held)
		return refuse_full(relay, "max_stored_bytes");
	if (relay->disk_low)
		return refuse_full(relay, "min_free_disk");
	return 0;
}

/* ---- budgets -------------------------------------------------------------------------- */

/*
 * A token bucket kept in 1/60000ths of a token, so that refilling at create_per_minute tokens
 * a minute adds create_per_minute units a millisecond, with no division.
 */
#define UNIT 60000u

void admission_budget_init(struct relay *relay, struct admission_budget *b)
{
	b->tokens = (uint64_t)relay->cfg->create_burst * UNIT;
	b->ms = relay_now_ms(relay);
}

int admission_take(struct relay *relay, struct admission_budget *b)
{
	const struct relay_config *cfg = relay->cfg;
	uint64_t cap = (uint64_t)cfg->create_burst * UNIT;
	int64_t now = relay_now_ms(relay);
	if (now > b->ms) {
		uint64_t add = (uint64_t)(now - b->ms) * cfg->create_per_minute;
		b->tokens = add >= cap - b->tokens ? cap : b->tokens + add;
		b->ms = now;
	}
	if (b->tokens < UNIT)
		return CAIRN_ELIMIT;
	b->tokens -= UNIT;
	return 0;
}
