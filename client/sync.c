/* SPDX-License-Identifier: MIT */
/*
 * The blocking calls built on the engine (engine.h): cairn_sync, cairn_listen, and the
 * sending that cairn_send and cairn_invite_accept do. Each puts a poll() around the engine's
 * steps, the loop an application would otherwise own. A sync ends once every relay answered
 * its PING, every send, acknowledgement and deletion is answered, and nothing arrived for
 * ENGINE_QUIET_MS (or after four connection timeouts). A sync that leaves a commit of ours
 * under way (an admin's joins that came while a commit was pending are committed together
 * after it, 9.5) goes on with passes over the group logs alone until it is done.
 */
#include <poll.h>
#include <string.h>

#include "engine.h"
#include "group.h"
#include "intakes.h"
#include "logio.h"

#define RUN_FDS_MAX 64
#define RUN_STOP_MS 250 /* listen: how often *STOP is looked at while nothing happens */
#define RUN_INTAKE_EVERY_MS (3600 * 1000)
/* At most this many passes over the group logs after a sync's receiving run: about two per
 * commit (append, read back), so one sync can see a few dozen commits of ours through. */
#define SYNC_GROUP_PASSES 128

/* client_run, and with LOGS_ONLY a receiving run over the group logs alone (no mailbox). */
static int run(struct cairn *c, struct cairn_sync_result *res, cairn_message_cb on_message,
               void *ctx, volatile sig_atomic_t *stop, bool receive, bool logs_only)
{
	memset(res, 0, sizeof(*res));
	/* One engine per client: the application's own, while it runs, owns the relays. */
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct engine_options opt = {.receive = receive,
	                             .listen = stop != NULL,
	                             .logs_only = logs_only,
	                             .cb = {.message = on_message},
	                             .ctx = ctx};
	struct engine *e;
	int rc = engine_new(c, &opt, &e);
	if (rc != 0)
		return rc;
	struct pollfd pfd[RUN_FDS_MAX];
	size_t np = 0;
	int64_t intake_due = client_mono_ms(c) + RUN_INTAKE_EVERY_MS;
	for (;;) {
		if ((rc = engine_step(e, pfd, np)) < 0 || e->finished)
			break;
		if (stop != NULL && *stop)
			break;
		/* listen is a blocking call: what the clock asks of our intakes (intakes.h) may
		 * block it too, once an hour (a failure is tried at the next). */
		if (stop != NULL && receive && client_mono_ms(c) >= intake_due) {
			int synced = client_intake_sync(c);
			(void)synced;
			intake_due = client_mono_ms(c) + RUN_INTAKE_EVERY_MS;
		}
		int timeout = -1;
		/* More relays than RUN_FDS_MAX: the others are read whenever a step comes. */
		if (engine_fds(e, pfd, RUN_FDS_MAX, &np, &timeout) != 0)
			np = RUN_FDS_MAX;
		if (stop != NULL && (timeout < 0 || timeout > RUN_STOP_MS))
			timeout = RUN_STOP_MS;
		if (poll(pfd, np, timeout) < 0)
			np = 0; /* EINTR (a signal, perhaps *STOP): the step reads every session */
	}
	*res = e->res;
	int local_rc = e->local_rc;
	engine_free(e);
	unsigned pending = 0;
	if (client_outbox_count(c, NULL, &pending) == 0)
		res->pending = pending;
	if (rc == 0 && local_rc != 0 && stop == NULL)
		rc = local_rc;
	return rc < 0 ? rc : 0;
}

int client_run(struct cairn *c, struct cairn_sync_result *res, cairn_message_cb on_message,
               void *ctx, volatile sig_atomic_t *stop, bool receive)
{
	return run(c, res, on_message, ctx, stop, receive, false);
}

int client_send_now(struct cairn *c, const uint8_t *id)
{
	struct cairn_sync_result res;
	unsigned left = 0;
	c->work_refused = false;
	int rc = client_run(c, &res, NULL, NULL, NULL, false);
	if (rc == 0)
		rc = client_outbox_count(c, id, &left);
	/* An intake mailbox refused our work twice: say so (the clock) rather than "cannot
	 * connect". */
	if (rc == 0 && left > 0)
		rc = c->work_refused ? CAIRN_EWORK : CAIRN_ECONNECT;
	return rc;
}

/* cstate_list callback: counts the records (CTX an unsigned). */
static int count_record(void *ctx, const uint8_t *v, size_t len)
{
	(void)v;
	(void)len;
	(*(unsigned *)ctx)++;
	return 0;
}

/*
 * What the groups' tick queued at the end of a sync (the next kept join committed, a commit
 * made again after losing a race) goes out now, and is read back, in passes over the group
 * logs that also send the 1:1 outbox (welcomes); each pass ends without the mailboxes' quiet
 * period. A pass that sent items is followed by one that reads them back, after which the
 * tick may queue the next commit. Stops when nothing is queued or read back any more, when a
 * pass sent nothing of what was queued (a relay away or refusing: the next sync tries), or
 * after SYNC_GROUP_PASSES. Adds to *RESULT. Returns 0 or an error.
 */
static int group_passes(struct cairn *c, struct cairn_sync_result *result,
                        cairn_message_cb on_message, void *ctx)
{
	unsigned queued = 0, left = 0, before = 0, after = 0, pending = 0;
	int rc = group_out_count(c, &queued);
	/* A commit of ours sent by the receiving run but not read back by it. */
	if (rc == 0 && (rc = cstate_list(c->st, REC_GROUP_PENDING, count_record, &pending)) > 0)
		rc = 0;
	bool readback = pending > 0, welcomes = false;
	for (int pass = 0;
	     rc == 0 && (queued > 0 || readback || welcomes) && pass < SYNC_GROUP_PASSES; pass++) {
		struct cairn_sync_result more;
		rc = run(c, &more, on_message, ctx, NULL, true, true);
		result->received += more.received;
		result->sent += more.sent;
		result->pending = more.pending;
		result->relays_failed += more.relays_failed;
		if (rc != 0 || more.relays_failed > 0 || (rc = group_out_count(c, &left)) != 0)
			break;
		if (queued > 0 && left >= queued)
			break; /* nothing went */
		readback = left < queued;
		if ((rc = client_outbox_count(c, NULL, &before)) == 0 &&
		    (rc = client_groups_tick(c)) == 0 &&
		    (rc = client_outbox_count(c, NULL, &after)) == 0)
			rc = group_out_count(c, &queued);
		welcomes = after > before;
	}
	return rc;
}

int cairn_sync(struct cairn *c, struct cairn_sync_result *result, cairn_message_cb on_message,
               void *ctx)
{
	if (c == NULL || result == NULL)
		return CAIRN_EINVAL;
	/* What the clock asks of the groups goes out with this sync. */
	int rc = c->engine != NULL ? CAIRN_ESTATE : client_groups_tick(c);
	/* What the clock asks of our intake addresses (prekeys, bundles, old addresses). */
	if (rc == 0)
		rc = client_intake_sync(c);
	if (rc != 0) {
		memset(result, 0, sizeof(*result));
		return rc;
	}
	rc = client_run(c, result, on_message, ctx, NULL, true);
	/* Messages whose time came during the run (8.11); a failure is tried again at the next
	 * open, read or tick, and is no failure of the sync. */
	int expired = client_expire(c);
	(void)expired;
	/* A contact that has just answered our invite moves to fresh mailboxes: made now, and
	 * announced at once. That needs every relay of the invite, so it waits for a sync that
	 * reached all our relays. */
	bool moved = false;
	if (rc == 0 && result->relays_failed == 0)
		rc = client_move_contacts(c, &moved);
	/* Welcomes of commits this sync read back complete go to their members over 1:1 now. */
	unsigned before = 0, after = 0;
	if (rc == 0 && (rc = client_outbox_count(c, NULL, &before)) == 0 &&
	    (rc = client_groups_tick(c)) == 0 && (rc = client_outbox_count(c, NULL, &after)) == 0 &&
	    after > before)
		moved = true;
	if (rc == 0 && moved) {
		struct cairn_sync_result more;
		rc = client_run(c, &more, NULL, NULL, NULL, false);
		result->sent += more.sent;
		result->pending = more.pending;
		result->relays_failed += more.relays_failed;
	}
	if (rc == 0 && result->relays_failed == 0)
		rc = group_passes(c, result, on_message, ctx);
	if (rc == 0 && result->relays_failed > 0)
		rc = CAIRN_ECONNECT;
	return rc;
}

int cairn_listen(struct cairn *c, cairn_message_cb on_message, void *ctx,
                 volatile sig_atomic_t *stop)
{
	struct cairn_sync_result res;
	return client_run(c, &res, on_message, ctx, stop, true);
}
