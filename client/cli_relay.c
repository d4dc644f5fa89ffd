/* SPDX-License-Identifier: MIT */
/*
 * `cairn relay route ADDRESS`, `cairn relay routes [--json]` and `cairn relay unroute
 * ADDRESS-or-KEY` on libcairn's cairn_route_* calls. What is printed was parsed and formatted
 * by libcairn (address characters only), so it reaches the terminal as it is.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cli_common.h"
#include "cli_relay.h"

static int cmd_route(const struct options *o, const char *address)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_route_set(c, address);
	cli_close(c);
	return rc != 0 ? cli_fail(rc, "relay route") : 0;
}

static int print_route(void *ctx, const struct cairn_route *r)
{
	const struct options *o = ctx;
	if (o->json)
		printf("{\"key\":\"%s\",\"address\":\"%s\"}\n", r->key, r->address);
	else
		printf("%s\n    by %s\n", r->key, r->address);
	return 0;
}

static int cmd_routes(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_routes(c, print_route, (void *)o);
	cli_close(c);
	return rc < 0 ? cli_fail(rc, "relay routes") : 0;
}

static int cmd_unroute(const struct options *o, const char *what)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_route_remove(c, what);
	cli_close(c);
	return rc != 0 ? cli_fail(rc, "relay unroute") : 0;
}

int cli_relay(struct options *o, const char *const *words, int nwords)
{
	const char *sub = nwords > 1 ? words[1] : NULL;
	if (sub != NULL && strcmp(sub, "routes") == 0 && nwords == 2)
		return cmd_routes(o);
	if (sub != NULL && strcmp(sub, "route") == 0 && nwords == 3)
		return cmd_route(o, words[2]);
	if (sub != NULL && strcmp(sub, "unroute") == 0 && nwords == 3)
		return cmd_unroute(o, words[2]);
	fprintf(stderr, "cairn: usage: cairn relay route ADDRESS | routes [--json] | unroute "
	                "ADDRESS-or-KEY (see cairn --help)\n");
	return EXIT_USAGE;
}
