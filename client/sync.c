/* SPDX-License-Identifier: MIT */
/*
 * The blocking calls built on the engine (engine.h): cairn_sync, cairn_listen, and the
 * sending that cairn_send and cairn_invite_accept do. Each puts a poll() around the engine's
 * steps, the loop an application would otherwise own. A sync ends once every relay answered
 * its PING, every send, acknowledgement and deletion is answered, and nothing arrived for
 * ENGINE_QUIET_MS (or after four connection timeouts).
 */
#include <poll.h>
#include <string.h>

#include "engine.h"
#include "group.h"

#define RUN_FDS_MAX 64
#define RUN_STOP_MS 250 /* listen: how often *STOP is looked at while nothing happens */

int client_run(struct cairn *c, struct cairn_sync_result *res, cairn_message_cb on_message,
               void *ctx, volatile sig_atomic_t *stop, bool receive)
{
	memset(res, 0, sizeof(*res));
	/* One engine per client: the application's own, while it runs, owns the relays. */
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct engine_options opt = {
	    .receive = receive, .listen = stop != NULL, .cb = {.message = on_message}, .ctx = ctx};
	struct engine *e;
	int rc = engine_new(c, &opt, &e);
	if (rc != 0)
		return rc;
	struct pollfd pfd[RUN_FDS_MAX];
	size_t np = 0;
	for (;;) {
		if ((rc = engine_step(e, pfd, np)) < 0 || e->finished)
			break;
		if (stop != NULL && *stop)
			break;
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

int cairn_sync(struct cairn *c, struct cairn_sync_result *result, cairn_message_cb on_message,
               void *ctx)
{
	if (c == NULL || result == NULL)
		return CAIRN_EINVAL;
	/* What the clock asks of the groups goes out with this sync. */
	int rc = c->engine != NULL ? CAIRN_ESTATE : client_groups_tick(c);
	if (rc != 0) {
		memset(result, 0, sizeof(*result));
		return rc;
	}
	rc = client_run(c, result, on_message, ctx, NULL, true);
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
