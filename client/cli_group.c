/* SPDX-License-Identifier: MIT */
/*
 * `cairn group ...`: creating a group, adding contacts, inviting someone who is not a contact
 * yet, removing members, making admins, leaving, listing members and showing the group's
 * safety number, on libcairn's public group calls (include/cairn/cairn.h). Messages to and
 * from a group go through `send`, `read` and `listen` in cli.c, which take a group's name as
 * they take a contact's.
 *
 * A change (create, add, remove, admin, leave) is stored by libcairn first and then sent by a
 * sync run here, as `send` sends at once: exit status 3 when no relay was reachable (the next
 * sync, send or listen sends it), as for a message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cli_common.h"
#include "cli_group.h"
#include "termsafe.h"

static int no_member(void *ctx, const struct cairn_group_member *m)
{
	return 0;
}

/* Opens O's home into *C and checks that GROUP is one of its groups, so that a later
 * CAIRN_ENOTFOUND can only mean the contact or member. Returns 0 or an exit status (said on
 * stderr; nothing is left open). */
static int open_group(const struct options *o, const char *group, struct cairn **c)
{
	int st = cli_open(o, c);
	if (st != 0)
		return st;
	int rc = cairn_group_members(*c, group, no_member, NULL);
	if (rc == 0)
		return 0;
	cli_close(*c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no group called '%s'\n", group);
		return 1;
	}
	return cli_fail(rc, "group");
}

/* Sends what a change queued, as `send` does. Returns 0, or EXIT_QUEUED (said on stderr). */
static int push(struct cairn *c)
{
	struct cairn_sync_result r;
	int rc = cairn_sync(c, &r, NULL, NULL);
	if (rc == 0 && r.pending == 0)
		return 0;
	if (rc != 0 && rc != CAIRN_ECONNECT && rc != CAIRN_ETIMEDOUT)
		return cli_fail(rc, "sync");
	fprintf(stderr,
	        "cairn: %s; the change waits in the outbox and goes out with the next "
	        "sync, send or listen\n",
	        rc != 0 || r.relays_failed ? "a relay is unreachable" : "not everything was sent");
	return EXIT_QUEUED;
}

static int group_create(const struct options *o, const char *group)
{
	if (o->nrelays != 1) {
		fprintf(stderr,
		        "cairn: group create needs NAME and one --relay ADDRESS (its log)\n");
		return EXIT_USAGE;
	}
	int st = cli_check_relays(o);
	if (st != 0)
		return st;
	struct cairn *c;
	if ((st = cli_open(o, &c)) != 0)
		return st;
	int rc = cairn_group_create(c, group, o->relays[0]);
	if (rc == 0)
		st = push(c);
	cli_close(c);
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: the name '%s' is taken (a contact or a group)\n", group);
		return 1;
	}
	if (rc == CAIRN_EINVAL) {
		fprintf(stderr, "cairn: a name is 1 to %d bytes\n", CAIRN_NAME_MAX);
		return EXIT_USAGE;
	}
	if (rc != 0)
		return cli_fail(rc, "group create");
	fprintf(stderr, "cairn: group %s created; you are its admin\n", group);
	return st;
}

/* What a change refused means, said for GROUP and WHO (a contact or member). Returns 1. */
static int change_failed(int rc, const char *what, const char *group, const char *who)
{
	if (rc == CAIRN_EDENIED)
		fprintf(stderr, "cairn: group %s: you are not an admin of '%s'\n", what, group);
	else if (rc == CAIRN_ENOTFOUND && who == NULL)
		fprintf(stderr, "cairn: no group called '%s'\n", group);
	else if (rc == CAIRN_ENOTFOUND)
		fprintf(stderr, "cairn: group %s: no %s '%s' (see cairn group members %s)\n", what,
		        strcmp(what, "add") == 0 ? "contact called" : "member of the group called",
		        who, group);
	else if (rc == CAIRN_EEXIST)
		fprintf(stderr,
		        "cairn: group %s: a change of yours to '%s' is still pending; sync and "
		        "try again\n",
		        what, group);
	else
		return cli_fail(rc, what);
	return 1;
}

static int group_add(const struct options *o, const char *group, const char *const *who, int n)
{
	if (n == 0) {
		fprintf(stderr, "cairn: group add needs NAME and at least one CONTACT\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = open_group(o, group, &c);
	if (st != 0)
		return st;
	/* Each contact alone: one that cannot be offered the group does not hold back the
	 * others, and the exit status says that one failed. */
	int added = 0;
	for (int i = 0; i < n; i++) {
		int rc = cairn_group_add(c, group, who[i]);
		if (rc == CAIRN_ESTATE) {
			fprintf(stderr,
			        "cairn: group add: '%s' is a member already, or not yet past the "
			        "first exchange\n",
			        who[i]);
			st = 1;
		} else if (rc != 0) {
			st = change_failed(rc, "add", group, who[i]);
		} else {
			added++;
		}
	}
	int pushed = added > 0 ? push(c) : 0;
	cli_close(c);
	if (added > 0)
		fprintf(stderr,
		        "cairn: group %s offered to %d contact%s; each becomes a member once its "
		        "client has synced and then yours has\n",
		        group, added, added == 1 ? "" : "s");
	return st != 0 ? st : pushed;
}

/* remove, admin: one commit naming MEMBER. */
static int group_commit(const struct options *o, const char *what, const char *group,
                        const char *member)
{
	if (member == NULL) {
		fprintf(stderr, "cairn: group %s needs NAME and MEMBER\n", what);
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = open_group(o, group, &c);
	if (st != 0)
		return st;
	int admin = strcmp(what, "admin") == 0;
	int rc = admin ? cairn_group_admin(c, group, member) : cairn_group_remove(c, group, member);
	if (rc == 0)
		st = push(c);
	cli_close(c);
	if (rc == CAIRN_EINVAL && !admin) {
		fprintf(stderr, "cairn: group remove: that is you; use cairn group leave %s\n",
		        group);
		return EXIT_USAGE;
	}
	if (rc == CAIRN_ESTATE && admin) {
		fprintf(stderr, "cairn: group admin: '%s' is an admin already\n", member);
		return 1;
	}
	if (rc != 0)
		return change_failed(rc, what, group, member);
	fprintf(stderr, admin ? "cairn: %s is now an admin of %s\n" : "cairn: %s removed from %s\n",
	        member, group);
	return st;
}

/* A duration as a person writes it: a count and one of s, m, h, d (1d, 12h, 3600s). 0 for
 * anything else, or more than a u32 of seconds. */
static uint32_t parse_duration(const char *text)
{
	static const struct {
		char unit;
		uint32_t seconds;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	char *end = NULL;
	if (text[0] < '0' || text[0] > '9')
		return 0;
	unsigned long n = strtoul(text, &end, 10);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (end[0] == units[i].unit && end[1] == '\0' && n <= UINT32_MAX / units[i].seconds)
			return (uint32_t)n * units[i].seconds;
	return 0;
}

/* cairn group rotate NAME EVERY MESSAGES: the least often the group's keys change. */
static int group_rotate(const struct options *o, const char *group, const char *every,
                        const char *count)
{
	if (every == NULL || count == NULL) {
		fprintf(stderr,
		        "cairn: group rotate needs NAME, a time (like 1d or 12h) and a count "
		        "of messages\n");
		return EXIT_USAGE;
	}
	uint32_t seconds = parse_duration(every);
	char *end = NULL;
	unsigned long messages = count[0] >= '0' && count[0] <= '9' ? strtoul(count, &end, 10) : 0;
	if (seconds < CAIRN_ROTATE_SECONDS_MIN || seconds > CAIRN_ROTATE_SECONDS_MAX ||
	    end == NULL || *end != '\0' || messages < CAIRN_ROTATE_MESSAGES_MIN ||
	    messages > CAIRN_ROTATE_MESSAGES_MAX) {
		fprintf(
		    stderr,
		    "cairn: group rotate: every 1h to 7d (like 1d or 12h), and %u to %u messages\n",
		    CAIRN_ROTATE_MESSAGES_MIN, CAIRN_ROTATE_MESSAGES_MAX);
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = open_group(o, group, &c);
	if (st != 0)
		return st;
	int rc = cairn_group_rotation(c, group, seconds, (uint32_t)messages);
	if (rc == 0)
		st = push(c);
	cli_close(c);
	if (rc != 0)
		return change_failed(rc, "rotate", group, NULL);
	fprintf(stderr, "cairn: the keys of %s change at least every %s or %lu messages\n", group,
	        every, messages);
	return st;
}

static int group_leave(const struct options *o, const char *group)
{
	struct cairn *c;
	int st = open_group(o, group, &c);
	if (st != 0)
		return st;
	int rc = cairn_group_leave(c, group);
	if (rc == 0)
		st = push(c);
	cli_close(c);
	if (rc == CAIRN_ESTATE) {
		fprintf(stderr, "cairn: you are no longer a member of %s\n", group);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "group leave");
	fprintf(stderr,
	        "cairn: asked the admins of %s to remove you; your history of it stays readable\n",
	        group);
	return st;
}

/* A group invite (9.8) for someone who is not a contact yet, printed as `invite` prints one. */
static int group_invite(const struct options *o, const char *group)
{
	if (o->name == NULL) {
		fprintf(stderr, "cairn: group invite needs NAME and --name CONTACT (what you will "
		                "call whoever accepts it)\n");
		return EXIT_USAGE;
	}
	if (o->name[0] == '\0' || strlen(o->name) > CAIRN_NAME_MAX) {
		fprintf(stderr, "cairn: a name is 1 to %d bytes\n", CAIRN_NAME_MAX);
		return EXIT_USAGE;
	}
	int st = cli_check_relays(o);
	if (st != 0)
		return st;
	struct cairn *c;
	if ((st = open_group(o, group, &c)) != 0)
		return st;
	char *invite = NULL;
	int rc = cairn_group_invite(c, group, o->relays, o->nrelays, o->name, &invite);
	cli_close(c);
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: the name '%s' is taken (a contact or a group)\n", o->name);
		return 1;
	}
	if (rc == CAIRN_EDENIED)
		return change_failed(rc, "invite", group, o->name);
	return cli_print_invite(o, rc, "group invite", invite);
}

/* A member's name is a contact's label or a short id, both shown through termsafe. */
static int print_member(void *ctx, const struct cairn_group_member *m)
{
	const struct options *o = ctx;
	if (o->json) {
		printf("{\"name\":");
		termsafe_json(stdout, (const uint8_t *)m->name, strlen(m->name));
		printf(",\"id\":");
		termsafe_json(stdout, (const uint8_t *)m->id, strlen(m->id));
		printf(",\"contact\":%s,\"admin\":%s,\"self\":%s}\n", m->contact ? "true" : "false",
		       m->admin ? "true" : "false", m->self ? "true" : "false");
		return 0;
	}
	termsafe_write(stdout, (const uint8_t *)m->name, strlen(m->name), NULL);
	if (m->contact) {
		printf("  ");
		termsafe_write(stdout, (const uint8_t *)m->id, strlen(m->id), NULL);
	}
	printf("%s%s\n", m->admin ? "  admin" : "", m->self ? "  (you)" : "");
	return 0;
}

static int group_members(const struct options *o, const char *group)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_group_members(c, group, print_member, (void *)o);
	cli_close(c);
	fflush(stdout);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no group called '%s'\n", group);
		return 1;
	}
	return rc == 0 ? 0 : cli_fail(rc, "group members");
}

/* ---- what the client noticed (CAIRN_GROUP_WARN_*) ---------------------------------------- */

static const struct {
	unsigned bit;
	const char *key;  /* in --json */
	const char *text; /* for a person */
} warnings[] = {
    {CAIRN_GROUP_WARN_WITHHELD, "withheld",
     "the relay withheld or dropped messages of this group from you"},
    {CAIRN_GROUP_WARN_EXPIRED, "expired", "messages expired on the relay before you read them"},
    {CAIRN_GROUP_WARN_BAD_COMMIT, "bad_commit",
     "an admin signed a change that does not fit the group's history you hold"},
    {CAIRN_GROUP_WARN_COPIED, "copied",
     "someone else speaks as you in this group: your device's state was copied"},
};
#define NWARNINGS (sizeof(warnings) / sizeof(warnings[0]))

/* The warnings of group NAME (cairn_groups), or 0 when there is none or no such group. */
struct warn_find {
	const char *name;
	unsigned warnings;
};

static int find_warnings(void *ctx, const struct cairn_group_info *g)
{
	struct warn_find *f = ctx;
	if (strcmp(g->name, f->name) == 0)
		f->warnings = g->warnings;
	return 0;
}

static int group_verify(const struct options *o, const char *group)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	uint64_t epoch = 0;
	int rc = cairn_group_safety_number(c, group, number, &epoch);
	struct warn_find wf = {.name = group};
	if (rc == 0)
		rc = cairn_groups(c, find_warnings, &wf);
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no group called '%s'\n", group);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "group verify");
	printf("%s\n", number);
	fprintf(stderr,
	        "cairn: epoch %" PRIu64 " of %s; members who see this number at this epoch "
	        "agree on the group's whole history\n",
	        epoch, group);
	for (size_t i = 0; i < NWARNINGS; i++)
		if (wf.warnings & warnings[i].bit)
			fprintf(stderr, "cairn: warning: %s; compare this number with the others\n",
			        warnings[i].text);
	return 0;
}

int cli_group(struct options *o, const char *const *words, int nwords)
{
	const char *sub = nwords > 1 ? words[1] : NULL;
	const char *group = nwords > 2 ? words[2] : NULL;
	if (sub == NULL || group == NULL) {
		fprintf(stderr, "cairn: group needs a subcommand and NAME (see cairn --help)\n");
		return EXIT_USAGE;
	}
	/* Every subcommand but add takes at most two words after NAME. */
	int rest = nwords - 3;
	if (strcmp(sub, "add") == 0)
		return group_add(o, group, words + 3, rest);
	int takes = strcmp(sub, "remove") == 0 || strcmp(sub, "admin") == 0 ? 1
	            : strcmp(sub, "rotate") == 0                            ? 2
	                                                                    : 0;
	if (rest > takes) {
		fprintf(stderr, "cairn: too many arguments (see cairn --help)\n");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "create") == 0)
		return group_create(o, group);
	if (strcmp(sub, "invite") == 0)
		return group_invite(o, group);
	if (strcmp(sub, "remove") == 0 || strcmp(sub, "admin") == 0)
		return group_commit(o, sub, group, nwords > 3 ? words[3] : NULL);
	if (strcmp(sub, "rotate") == 0)
		return group_rotate(o, group, rest > 0 ? words[3] : NULL,
		                    rest > 1 ? words[4] : NULL);
	if (strcmp(sub, "leave") == 0)
		return group_leave(o, group);
	if (strcmp(sub, "members") == 0)
		return group_members(o, group);
	if (strcmp(sub, "verify") == 0)
		return group_verify(o, group);
	fprintf(stderr, "cairn: unknown group command '%s' (see cairn --help)\n", sub);
	return EXIT_USAGE;
}

/* ---- cairn groups ------------------------------------------------------------------- */

/* A group's local name is ours, but it starts as its creator's choice: shown through
 * termsafe, as a contact's name is. */
static int print_group(void *ctx, const struct cairn_group_info *g)
{
	const struct options *o = ctx;
	if (o->json) {
		printf("{\"name\":");
		termsafe_json(stdout, (const uint8_t *)g->name, strlen(g->name));
		printf(",\"members\":%zu,\"admin\":%s,\"removed\":%s,\"epoch\":%" PRIu64
		       ",\"unread\":%u,\"warnings\":[",
		       g->members, g->admin ? "true" : "false", g->removed ? "true" : "false",
		       g->epoch, g->unread);
		const char *sep = "";
		for (size_t i = 0; i < NWARNINGS; i++)
			if (g->warnings & warnings[i].bit) {
				printf("%s\"%s\"", sep, warnings[i].key);
				sep = ",";
			}
		printf("]}\n");
		return 0;
	}
	termsafe_write(stdout, (const uint8_t *)g->name, strlen(g->name), NULL);
	printf("  %zu member%s%s%s", g->members, g->members == 1 ? "" : "s",
	       g->admin ? ", admin" : "", g->removed ? "  (removed: history only)" : "");
	if (g->unread > 0)
		printf("  %u unread", g->unread);
	if (g->warnings != 0)
		printf("  (warning: see group verify)");
	printf("\n");
	return 0;
}

int cli_groups(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_groups(c, print_group, (void *)o);
	cli_close(c);
	fflush(stdout);
	return rc == 0 ? 0 : cli_fail(rc, "groups");
}
