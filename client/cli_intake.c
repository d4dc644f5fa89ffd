/* SPDX-License-Identifier: MIT */
/*
 * `cairn intake ...` and `cairn requests ...`: the owner's side of intake addresses
 * (PROTOCOL.md 10) on libcairn's public calls: making, showing, listing, rotating and revoking
 * an address and changing its work; listing the requests that came through and accepting,
 * rejecting or blocking each. What a requester wrote (the previews) is a stranger's text: it
 * reaches the terminal only through termsafe.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cli_common.h"
#include "cli_intake.h"
#include "termsafe.h"

#define WORK_DEFAULT 20
#define DAY          86400

/* BITS as work bits 1..40 into *OUT. Returns 0 or EXIT_USAGE (said on stderr). */
static int parse_bits(const char *bits, unsigned *out)
{
	char *end;
	long v = bits != NULL ? strtol(bits, &end, 10) : 0;
	if (bits == NULL || *end != '\0' || v < 1 || v > 40) {
		fprintf(stderr, "cairn: work takes 1..40 bits\n");
		return EXIT_USAGE;
	}
	*out = (unsigned)v;
	return 0;
}

/* The error of an intake call, naming the intake when it does not exist. */
static int intake_fail(int rc, const char *label, const char *what)
{
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no intake called '");
		termsafe_write(stderr, (const uint8_t *)label, strlen(label), NULL);
		fprintf(stderr, "'\n");
		return 1;
	}
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: %s: an intake with that name exists already\n", what);
		return 1;
	}
	return cli_fail(rc, what);
}

static int cmd_create(const struct options *o)
{
	unsigned bits = 0;
	if (o->nrelays == 0 || o->name == NULL) {
		fprintf(stderr, "cairn: intake create needs --relay ADDRESS and --name LABEL\n");
		return EXIT_USAGE;
	}
	int st = cli_check_relays(o);
	if (st == 0 && o->work != NULL)
		st = parse_bits(o->work, &bits);
	struct cairn *c;
	if (st != 0 || (st = cli_open(o, &c)) != 0)
		return st;
	char *address = NULL;
	int rc = cairn_intake_create(c, o->relays, o->nrelays, o->name, bits, &address);
	cli_close(c);
	if (rc == CAIRN_EEXIST)
		return intake_fail(rc, o->name, "intake create");
	return cli_print_invite(o, rc, "intake create", address);
}

static int cmd_show(const struct options *o, const char *label)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	char *address = NULL;
	int rc = cairn_intake_address(c, label, &address);
	cli_close(c);
	if (rc != 0)
		return intake_fail(rc, label, "intake show");
	return cli_print_invite(o, 0, "intake show", address);
}

static int print_intake(void *ctx, const struct cairn_intake *in)
{
	const struct options *o = ctx;
	if (o->json) {
		printf("{\"label\":");
		termsafe_json(stdout, (const uint8_t *)in->label, strlen(in->label));
		printf(",\"address\":\"%s\",\"work_bits\":%u,\"pending\":%u,\"old_until\":%lld}\n",
		       in->address, in->work_bits, in->pending, (long long)in->old_until);
		return 0;
	}
	termsafe_write(stdout, (const uint8_t *)in->label, strlen(in->label), NULL);
	printf("  %u bits  %u request%s", in->work_bits, in->pending, in->pending == 1 ? "" : "s");
	if (in->old_until != 0)
		printf("  old address until %lld", (long long)in->old_until);
	printf("\n    %s\n", in->address);
	return 0;
}

static int cmd_list(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_intakes(c, print_intake, (void *)o);
	cli_close(c);
	return rc < 0 ? cli_fail(rc, "intake list") : 0;
}

static int cmd_rotate(const struct options *o, const char *label)
{
	uint64_t grace = 7 * DAY;
	int st = o->grace != NULL ? cli_duration(o->grace, "--grace", &grace) : 0;
	struct cairn *c;
	if (st != 0 || (st = cli_open(o, &c)) != 0)
		return st;
	char *address = NULL;
	int rc = cairn_intake_rotate(c, label, grace, &address);
	cli_close(c);
	if (rc != 0)
		return intake_fail(rc, label, "intake rotate");
	return cli_print_invite(o, 0, "intake rotate", address);
}

static int cmd_revoke(const struct options *o, const char *label)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_intake_revoke(c, label);
	cli_close(c);
	return rc != 0 ? intake_fail(rc, label, "intake revoke") : 0;
}

static int cmd_work(const struct options *o, const char *label, const char *bits)
{
	unsigned b = 0;
	int st = parse_bits(bits, &b);
	struct cairn *c;
	if (st != 0 || (st = cli_open(o, &c)) != 0)
		return st;
	int rc = cairn_intake_work(c, label, b);
	cli_close(c);
	return rc != 0 ? intake_fail(rc, label, "intake work") : 0;
}

int cli_intake(struct options *o, const char *const *words, int nwords)
{
	const char *sub = nwords > 1 ? words[1] : NULL;
	const char *label = nwords > 2 ? words[2] : NULL;
	if (sub != NULL && strcmp(sub, "create") == 0 && nwords == 2)
		return cmd_create(o);
	if (sub != NULL && strcmp(sub, "list") == 0 && nwords == 2)
		return cmd_list(o);
	if (sub != NULL && label != NULL && nwords == 3) {
		if (strcmp(sub, "show") == 0)
			return cmd_show(o, label);
		if (strcmp(sub, "rotate") == 0)
			return cmd_rotate(o, label);
		if (strcmp(sub, "revoke") == 0)
			return cmd_revoke(o, label);
	}
	if (sub != NULL && strcmp(sub, "work") == 0 && nwords == 4)
		return cmd_work(o, label, words[3]);
	fprintf(stderr, "cairn: usage: cairn intake create|show|list|rotate|revoke|work ... "
	                "(see cairn --help)\n");
	return EXIT_USAGE;
}

/* ---- requests ------------------------------------------------------------------------- */

/* What print_request needs: the options, and how many it printed (JSON commas). */
struct req_print {
	const struct options *o;
	unsigned n;
};

static int print_request(void *ctx, const struct cairn_request *r)
{
	struct req_print *p = ctx;
	if (p->o->json) {
		printf("%s{\"id\":\"%s\",\"intake\":", p->n++ > 0 ? "," : "", r->id);
		termsafe_json(stdout, (const uint8_t *)r->intake, strlen(r->intake));
		printf(",\"preview\":");
		termsafe_json(stdout, r->preview, r->preview_len);
		printf(",\"messages\":%u,\"first_at\":%lld}", r->messages, (long long)r->first_at);
		return 0;
	}
	printf("%s  ", r->id);
	termsafe_write(stdout, (const uint8_t *)r->intake, strlen(r->intake), NULL);
	printf("  %u message%s  ", r->messages, r->messages == 1 ? "" : "s");
	termsafe_write(stdout, r->preview, r->preview_len, NULL);
	printf("\n");
	return 0;
}

static int cmd_requests(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	uint64_t dropped = 0;
	struct req_print p = {o, 0};
	if (o->json)
		printf("[");
	int rc = cairn_requests(c, print_request, &p);
	if (o->json)
		printf("]\n");
	if (rc == 0)
		rc = cairn_requests_dropped(c, &dropped);
	cli_close(c);
	if (rc != 0)
		return cli_fail(rc, "requests");
	if (dropped > 0)
		fprintf(o->json ? stderr : stdout,
		        "%" PRIu64 " first message%s dropped: 10,000 requests were waiting\n",
		        dropped, dropped == 1 ? "" : "s");
	return 0;
}

/* Accept, reject or block request ID. */
static int cmd_decide(const struct options *o, const char *how, const char *id)
{
	if (strcmp(how, "accept") == 0 && o->name == NULL) {
		fprintf(stderr, "cairn: requests accept needs --name NAME\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = strcmp(how, "accept") == 0   ? cairn_request_accept(c, id, o->name)
	         : strcmp(how, "reject") == 0 ? cairn_request_reject(c, id)
	                                      : cairn_request_block(c, id);
	/* An accepted request moves to fresh mailboxes now, if its relays answer. */
	struct cairn_sync_result r;
	if (rc == 0 && strcmp(how, "accept") == 0 && cairn_sync(c, &r, NULL, NULL) != 0)
		fprintf(stderr, "cairn: accepted; the first message to them goes out with the next "
		                "sync, send or listen\n");
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no request with id '");
		termsafe_write(stderr, (const uint8_t *)id, strlen(id), NULL);
		fprintf(stderr, "'\n");
		return 1;
	}
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: a contact or group is called that already\n");
		return 1;
	}
	return rc != 0 ? cli_fail(rc, "requests") : 0;
}

int cli_requests(struct options *o, const char *const *words, int nwords)
{
	if (nwords == 1)
		return cmd_requests(o);
	if (nwords == 3 && (strcmp(words[1], "accept") == 0 || strcmp(words[1], "reject") == 0 ||
	                    strcmp(words[1], "block") == 0))
		return cmd_decide(o, words[1], words[2]);
	fprintf(stderr,
	        "cairn: usage: cairn requests [accept ID --name N | reject ID | block ID]\n");
	return EXIT_USAGE;
}
