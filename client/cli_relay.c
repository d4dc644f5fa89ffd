/* SPDX-License-Identifier: MIT */
/*
 * `cairn relay route ADDRESS`, `cairn relay routes [--json]` and `cairn relay unroute
 * ADDRESS-or-KEY` on libcairn's cairn_route_* calls. What is printed was parsed and formatted
 * by libcairn (address characters only), so it reaches the terminal as it is.
 * `cairn relay info ADDRESS [--json]` shows a relay's signed policy (PROTOCOL.md 5.13): the
 * operator's texts only through termsafe.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "termsafe.h"

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

static void field(const char *label, const char *text)
{
	printf("%-14s", label);
	termsafe_write(stdout, (const uint8_t *)text, strlen(text), "              ");
	fputc('\n', stdout);
}

static void json_field(const char *label, const char *text, int last)
{
	printf("\"%s\":", label);
	termsafe_json(stdout, (const uint8_t *)text, strlen(text));
	fputs(last ? "" : ",", stdout);
}

static int print_policy(void *ctx, const struct cairn_relay_policy *p)
{
	const struct options *o = ctx;
	if (o->json) {
		printf("{\"published\":%s", p->published ? "true" : "false");
		if (p->published) {
			fputc(',', stdout);
			json_field("jurisdiction", p->jurisdiction, 0);
			json_field("contact", p->contact, 0);
			printf("\"ttl\":%u,", (unsigned)p->ttl);
			json_field("logging", p->logging, 0);
			json_field("retention", p->retention, 0);
			printf("\"forwarding\":%s,", p->forwarding ? "true" : "false");
			json_field("statement", p->statement, 0);
			json_field("digest", p->digest, 1);
		}
		puts("}");
		return 0;
	}
	if (!p->published) {
		puts("this relay publishes no policy");
		return 0;
	}
	puts("policy signed by the relay's key (verified against the address)");
	field("jurisdiction:", p->jurisdiction);
	field("contact:", p->contact);
	if (p->ttl % 86400 == 0)
		printf("%-14s%u days (envelopes not fetched by then are deleted)\n",
		       "ttl:", (unsigned)(p->ttl / 86400));
	else
		printf("%-14s%u seconds (envelopes not fetched by then are deleted)\n",
		       "ttl:", (unsigned)p->ttl);
	field("logging:", p->logging);
	field("retention:", p->retention);
	printf("%-14s%s\n", "forwarding:", p->forwarding ? "on" : "off");
	field("statement:", p->statement);
	printf("%-14s%s\n", "digest:", p->digest);
	return 0;
}

static int cmd_info(const struct options *o, const char *address)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_relay_info(c, address, print_policy, (void *)o);
	cli_close(c);
	if (rc == CAIRN_EAUTH) {
		fprintf(stderr, "cairn: relay info: the relay's policy is NOT signed by the key in "
		                "this address: do not trust it (a broken or impostor relay)\n");
		return 1;
	}
	return rc != 0 ? cli_fail(rc, "relay info") : 0;
}

static int print_notice(void *ctx, const struct cairn_policy_notice *n)
{
	(void)ctx;
	char date[32] = "an unknown date";
	time_t t = (time_t)n->since;
	struct tm tm;
	if (n->since > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	fputs("cairn: relay ", stderr);
	termsafe_write(stderr, (const uint8_t *)n->relay, strlen(n->relay), NULL);
	fprintf(stderr, " %s its policy since %s; see `cairn relay info`\n",
	        n->withdrawn ? "withdrew" : "changed", date);
	return 0;
}

void cli_policy_notices(struct cairn *c)
{
	if (cairn_policy_notices(c, print_notice, NULL) != 0)
		fprintf(stderr, "cairn: could not read the relays' policy notices\n");
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
	if (sub != NULL && strcmp(sub, "info") == 0 && nwords == 3)
		return cmd_info(o, words[2]);
	fprintf(stderr, "cairn: usage: cairn relay route ADDRESS | routes [--json] | unroute "
	                "ADDRESS-or-KEY | info ADDRESS [--json] (see cairn --help)\n");
	return EXIT_USAGE;
}
