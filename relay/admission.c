/* SPDX-License-Identifier: MIT */
/*
 * Admission: the relay-wide limits of [limits] (max_mailboxes, max_stored_bytes,
 * min_free_disk) and the CREATE/SECURE budget of each connection (create_burst,
 * create_per_minute). Counts come from the mailbox index, which the loop thread keeps anyway;
 * the disk's free space is sampled once a second off the loop thread, never per command, and
 * the same work keeps the reserve file (storage.h, [limits] disk_reserve).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "admission.h"
#include "cairn/error.h"
#include "log.h"
#include "relay.h"

/* A warning for the operator at most this often while the relay refuses work. */
#define FULL_WARN_EVERY_MS 60000

/* ---- free disk space ------------------------------------------------------------------ */

/* Logs the disk's state when it changes: one line as the relay starts refusing, one as it
 * stops, whatever refusals came between. WHY names what started it. */
static void disk_state(struct relay *relay, const char *why)
{
	bool full = relay->disk_low || relay->disk_short;
	if (full == relay->disk_full)
		return;
	relay->disk_full = full;
	if (full)
		log_warn(
		    "the data directory's disk is full (%s): refusing CREATE and SEND with the "
		    "error 'full' until there is room; delivery, ACK and DELETE go on",
		    why);
	else
		log_warn("the data directory's disk has room again: accepting CREATE and SEND");
}

/* Whether PATH is a whole reserve file of BYTES. */
static bool reserve_whole(const char *path, uint64_t bytes)
{
	struct stat sb;
	return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == bytes &&
	       (uint64_t)sb.st_blocks * 512 >= bytes;
}

/*
 * Makes the reserve file PATH of BYTES: allocated for real (posix_fallocate, which writes
 * zeros where the file system cannot allocate otherwise), synced, then renamed into place, so
 * a half-made one is never taken for whole. Returns whether it is whole.
 */
static bool reserve_make(const char *path, uint64_t bytes)
{
	char tmp[RELAY_PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return false;
	bool ok = bytes <= (uint64_t)INT64_MAX && posix_fallocate(fd, 0, (off_t)bytes) == 0 &&
	          fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0)
		return true;
	(void)unlink(tmp); /* its room back at once */
	return false;
}

/*
 * Pool thread (or the caller's, at start): the free space of the data directory's disk and
 * the reserve file. A missing reserve is made again once the disk has room for it above
 * min_free_disk, which is how the relay leaves the full state after a write found no room.
 */
static void disk_sample(const struct relay_config *cfg, struct disk_sample *out)
{
	char path[RELAY_PATH_MAX + 16];
	struct statvfs st;
	uint64_t inside = out->inside;
	memset(out, 0, sizeof(*out));
	out->inside = inside;
	if (statvfs(cfg->data_dir, &st) != 0)
		return;
	out->ok = true;
	out->free = (uint64_t)st.f_bavail * st.f_frsize;
	if (cfg->disk_reserve == 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, STORAGE_RESERVE_FILE);
	out->reserve = reserve_whole(path, cfg->disk_reserve);
	/* Made again once the file system holds it and, beside it, the floor: on the file system
	 * itself, or inside the store once ACKs and expiry emptied it (a relay that filled its
	 * disk to the last block and was then drained would otherwise refuse for ever: its store
	 * does not shrink). Inserts reuse that room, and the WAL, restarted after a checkpoint,
	 * reuses its own file. */
	if (!out->reserve && out->free >= cfg->disk_reserve &&
	    (out->free - cfg->disk_reserve >= cfg->min_free_disk || inside >= cfg->min_free_disk) &&
	    (out->reserve = reserve_make(path, cfg->disk_reserve))) {
		out->free = statvfs(cfg->data_dir, &st) == 0 ? (uint64_t)st.f_bavail * st.f_frsize
		                                             : out->free - cfg->disk_reserve;
	}
}

/* Loop thread: takes a sample's result. */
static void disk_sampled(struct relay *relay, const struct disk_sample *d)
{
	const struct relay_config *cfg = relay->cfg;
	if (!d->ok)
		return;
	relay->disk_free = d->free;
	/* The floor counts the room inside the store too: the pages ACKs and expiry freed,
	 * which inserts reuse before the file grows. Without it a relay that reached the floor
	 * by itself would refuse for ever, its store empty inside. */
	relay->disk_low = d->free < cfg->min_free_disk && cfg->min_free_disk - d->free > d->inside;
	const char *why = "less free space than min_free_disk";
	if (cfg->disk_reserve > 0) {
		/* The reserve is gone only when a write found no room (or it never fitted). */
		relay->disk_short = !d->reserve;
		if (relay->disk_short && !relay->disk_low)
			why = "no room for the disk_reserve file";
	} else if (relay->disk_short && d->free > cfg->min_free_disk) {
		relay->disk_short = false; /* no reserve to wait for: room above the floor */
	}
	disk_state(relay, why);
}

/* What the store holds free inside, read on the loop thread for the next sample. */
static uint64_t store_inside(const struct relay *relay)
{
	return relay->storage != NULL ? storage_free_bytes(relay->storage) : 0;
}

void admission_init(struct relay *relay)
{
	struct disk_sample d = {.inside = store_inside(relay)};
	disk_sample(relay->cfg, &d);
	if (!d.ok) {
		/* Unknown is not full: the storage thread's own errors still stop bad writes. */
		log_warn("cannot read the free space of the data directory's disk: min_free_disk "
		         "is not enforced until it can be read");
		return;
	}
	disk_sampled(relay, &d);
}

static void sample_work(uv_work_t *req)
{
	struct relay *relay = req->data;
	disk_sample(relay->cfg, &relay->disk_sample);
}

static void sample_done(uv_work_t *req, int status)
{
	struct relay *relay = req->data;
	relay->disk_sampling = false;
	/* A write failed while this sample ran: its view of the reserve may predate the
	 * storage thread's deleting it. The next sample decides. */
	bool stale = relay->disk_failed_while_sampling;
	relay->disk_failed_while_sampling = false;
	if (status == 0 && !stale)
		disk_sampled(relay, &relay->disk_sample);
}

void admission_tick(struct relay *relay)
{
	const struct relay_config *cfg = relay->cfg;
	if (relay->disk_sampling ||
	    (cfg->min_free_disk == 0 && cfg->disk_reserve == 0 && !relay->disk_short))
		return;
	relay->disk_work.data = relay;
	relay->disk_sample.inside = store_inside(relay);
	if (uv_queue_work(relay->loop, &relay->disk_work, sample_work, sample_done) == 0)
		relay->disk_sampling = true;
}

/* The store's failures other than a full disk (a database out of reach, an I/O error): one
 * line when writes start failing and one when they work again, not one per envelope. */
static void store_state(struct relay *relay, int status)
{
	if (status == 0 && relay->store_failing) {
		relay->store_failing = false;
		log_warn("storage: writes succeed again");
	} else if (status != 0 && !relay->store_failing) {
		relay->store_failing = true;
		log_error("storage: writes are failing (%s): what they carried gets the error "
		          "'storage', never an OK, until a write succeeds",
		          cairn_strerror(status));
	}
}

void admission_write_done(struct relay *relay, int status)
{
	if (status != CAIRN_ECAPACITY) {
		store_state(relay, status);
		return;
	}
	if (relay->disk_sampling)
		relay->disk_failed_while_sampling = true;
	relay->disk_short = true;
	disk_state(relay, "a write found no room");
}

/* ---- room on the relay ---------------------------------------------------------------- */

/* Refuses one command with CAIRN_ECAPACITY because of WHY, warning now and then; the disk's
 * refusals are counted only (its state lines say it all, disk_state). */
static int refuse_full(struct relay *relay, const char *why)
{
	relay->stats.refused_full++;
	if (why == NULL)
		return CAIRN_ECAPACITY;
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
	if (relay->disk_full)
		return refuse_full(relay, NULL);
	return 0;
}

int admission_room_for_log(struct relay *relay)
{
	if (relay->logs.count >= relay->cfg->max_logs)
		return refuse_full(relay, "max_logs");
	if (relay->disk_full)
		return refuse_full(relay, NULL);
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
	if (relay->disk_full)
		return refuse_full(relay, NULL);
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
