/* SPDX-License-Identifier: MIT */
/*
 * What the modules below the engine tell it: something new is queued (wake), the set of
 * group logs changed, a group message arrived. They reach a running engine (or the engine of
 * a sync or listen) through struct cairn, never the engine's own code, so dependencies keep
 * pointing down: engine.c calls into receive.c and groups.c, which call these.
 */
#include "client.h"
#include "engine_state.h"
#include "logio.h"

void client_engine_wake(struct cairn *c)
{
	if (c->engine != NULL) {
		c->engine->redispatch = true;
		if (c->engine->logs != NULL)
			logio_wake(c->engine->logs);
	}
}

void logio_logs_changed(struct cairn *c)
{
	if (c != NULL && c->engine != NULL && c->engine->logs != NULL)
		logio_relist(c->engine->logs);
	/* The engine of a sync or listen (not c->engine) reads logs too. */
	if (c != NULL && c->reporting != NULL && c->reporting->logs != NULL)
		logio_relist(c->reporting->logs);
}

void client_report_group(struct cairn *c, const struct cairn_message *m)
{
	struct engine *e = c->reporting;
	if (e == NULL)
		return;
	e->res.received++;
	if (e->cb.message != NULL)
		e->cb.message(e->ctx, m);
}
