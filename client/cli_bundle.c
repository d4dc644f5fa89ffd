/* SPDX-License-Identifier: MIT */
/*
 * `cairn bundle export` and `cairn bundle deliver` (cli_bundle.h; PROTOCOL.md 12). Export
 * prints how many items it wrote; deliver prints, per relay tried, what that relay made of the
 * items, then the items no relay took. A relay's address can come from a contact's invite, so
 * it reaches the terminal through termsafe.h. Exit status: 0 when every item got a final
 * answer, EXIT_QUEUED (3) when some are still owed (unreachable relays, busy ones: run it
 * again), 1 on an error, 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cairn/limits.h"
#include "cli_bundle.h"
#include "cli_common.h"
#include "termsafe.h"

static int cmd_export(const struct options *o, const char *path)
{
	uint64_t lifetime = 14 * 86400;
	if (o->expires != NULL && cli_duration(o->expires, "--expires", &lifetime) != 0)
		return EXIT_USAGE;
	if (lifetime == 0 || lifetime > CAIRN_BUNDLE_LIFETIME_MAX_S) {
		fprintf(stderr, "cairn: --expires takes 1s to 30d\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	size_t items = 0;
	int rc = cairn_bundle_export(c, path, (uint32_t)lifetime, &items);
	cli_close(c);
	if (rc != 0)
		return cli_fail(rc, "bundle export");
	printf("%zu item%s written (%zu bytes); your outbox keeps them too\n", items,
	       items == 1 ? "" : "s", items * (size_t)CAIRN_BUNDLE_ITEM_LEN);
	return 0;
}

static int print_relay(void *ctx, const struct cairn_bundle_result *r)
{
	(void)ctx;
	termsafe_write(stdout, (const uint8_t *)r->relay, strlen(r->relay), "");
	if (r->status != 0 && r->taken + r->expired + r->refused + r->elsewhere == 0) {
		printf(": not reached (%s)\n", cairn_strerror(r->status));
		return 0;
	}
	printf(": %u taken (new or already there), %u expired, %u refused, %u not for this "
	       "relay, %u to retry\n",
	       r->taken, r->expired, r->refused, r->elsewhere, r->failed);
	return 0;
}

static int cmd_deliver(const struct options *o, const char *path, const char *const *relays,
                       size_t nrelays)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	struct cairn_bundle_result total;
	int rc = cairn_bundle_deliver(c, path, relays, nrelays, print_relay, NULL, &total);
	cli_close(c);
	if (rc == CAIRN_EINVAL) {
		fprintf(stderr,
		        "cairn: bundle deliver: not a bundle (empty, or its length is not a "
		        "multiple of %d bytes): nothing sent\n",
		        CAIRN_BUNDLE_ITEM_LEN);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "bundle deliver");
	printf("%u item%s: %u taken, %u expired, %u refused, %u not delivered\n", total.items,
	       total.items == 1 ? "" : "s", total.taken, total.expired, total.refused,
	       total.failed);
	return total.failed > 0 ? EXIT_QUEUED : 0;
}

int cli_bundle(struct options *o, const char *const *words, int nwords)
{
	const char *sub = nwords > 1 ? words[1] : NULL;
	if (sub != NULL && strcmp(sub, "export") == 0 && nwords == 3)
		return cmd_export(o, words[2]);
	if (sub != NULL && strcmp(sub, "deliver") == 0 && nwords >= 3)
		return cmd_deliver(o, words[2], words + 3, (size_t)(nwords - 3));
	fprintf(stderr, "cairn: usage: cairn bundle export FILE [--expires 14d] | deliver FILE "
	                "[ADDRESS]... (see cairn --help)\n");
	return EXIT_USAGE;
}
