/* SPDX-License-Identifier: MIT */
/*
 * The `cairn` command: a thin shell over libcairn (include/cairn/cairn.h), which it uses
 * exclusively, and termsafe.h, through which every piece of text a contact wrote is printed.
 * Parses arguments, asks for the passphrase (or reads CAIRN_PASSPHRASE), prints results for
 * people or, with --json, one JSON object per line for scripts.
 *
 * Exit status: 0 success, 1 error, 2 usage error, 3 message queued but not sent (no relay
 * reachable; the next sync, send or listen sends it).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "cli_common.h"
#include "cli_file.h"
#include "cli_group.h"
#include "cli_bundle.h"
#include "cli_intake.h"
#include "cli_relay.h"
#include "cli_timer.h"
#include "termsafe.h"

#define WORDS_MAX 66 /* group add N and 64 contacts */

static const char usage_text[] =
    "usage: cairn [--home DIR] [--socks HOST:PORT] [--timeout SECONDS] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  init                             create a new identity (asks for a passphrase)\n"
    "  invite --relay ADDRESS [--relay ADDRESS]... --name N\n"
    "                                   create an invite for a contact to be called N, with a\n"
    "                                   mailbox on each relay (up to 4, tried in this order);\n"
    "                                   prints the invite alone on stdout (--qr: also a QR "
    "code)\n"
    "  accept INVITE --name N [--relay ADDRESS]...\n"
    "                                   accept an invite, or write to an intake address\n"
    "                                   (cairn-intake:...); N is what you call its creator;\n"
    "                                   your mailboxes go on these relays (default: the\n"
    "                                   invite's or address's). Through an intake address, N\n"
    "                                   stays waiting until its owner accepts you\n"
    "  send N TEXT | send N -           send TEXT (or standard input) to contact N\n"
    "  send N --file PATH [--json]      send a file (to 2 GiB) to contact or group N; run it\n"
    "                                   again to resume an unfinished upload\n"
    "  files [--json]                   list files sent and offered (an id for files get)\n"
    "  files get ID [--output PATH] [--yes] [--max-size SIZE] [--json]\n"
    "                                   fetch, verify and write file ID (default: its name\n"
    "                                   here; never over an existing file); above SIZE\n"
    "                                   (default 100M) it asks, or needs --yes; run it again\n"
    "                                   to resume\n"
    "  sync                             send the outbox, fetch and store new messages\n"
    "  read N [--json]                  show the conversation with N\n"
    "  listen [--json]                  stay connected and print messages as they arrive\n"
    "  contacts                         list contacts (groups: cairn groups)\n"
    "  verify N                         show the safety number to compare with N in person\n"
    "  rename N NEW                     call contact or group N by NEW from now on (history\n"
    "                                   follows; a group's members see no change)\n"
    "  timer N [DURATION|off]           disappearing messages with contact or group N: each\n"
    "                                   message is deleted on both sides DURATION (30s, 5m,\n"
    "                                   1h, 1d, 2w; at most a year) after it arrives; no\n"
    "                                   DURATION: show the timer\n"
    "\n"
    "groups (send, read and listen take a group's name N as they take a contact's):\n"
    "  groups [--json]                  list groups: members, your role, unread (--json: epoch)\n"
    "  group create N --relay ADDRESS   create group N, its log on that relay; you are its admin\n"
    "  group add N CONTACT...           offer group N to these contacts over your sessions;\n"
    "                                   each joins when its client syncs, then yours commits\n"
    "  group invite N --name C [--relay ADDRESS]...\n"
    "                                   an invite into group N for someone not yet a contact,\n"
    "                                   to be called C (admins; default relay: the group's\n"
    "                                   log's); printed as invite prints one (--qr too); the\n"
    "                                   other side runs accept as for any invite\n"
    "  group remove N MEMBER            remove MEMBER (admins); the group moves to a new log\n"
    "  group admin N MEMBER             make MEMBER an admin too (admins)\n"
    "  group rotate N EVERY COUNT       new keys at least every EVERY (1h..7d, like 1d) or\n"
    "                                   COUNT messages (10..1000), whichever first (admins)\n"
    "  group leave N                    ask the admins to remove you; your history stays\n"
    "  group members N [--json]         list members: a contact's name, else a short id\n"
    "  group verify N                   the group's safety number at its current epoch\n"
    "\n"
    "intake addresses (a public address anyone can write to; first contacts are requests):\n"
    "  intake create --relay ADDRESS [--relay ADDRESS]... --name LABEL [--work BITS] [--qr]\n"
    "                                   make one (work: 1..40 bits, default 20); prints it\n"
    "  intake show LABEL [--qr]         print its current address\n"
    "  intake list [--json]             list intakes: work, pending requests, old address\n"
    "  intake rotate LABEL [--grace DURATION]\n"
    "                                   a new address; the old one works DURATION more (like\n"
    "                                   0s, 12h, 7d; default 7d); prints the new one\n"
    "  intake revoke LABEL              delete its address on every relay now\n"
    "  intake work LABEL BITS           change the work its mailboxes demand\n"
    "  requests [--json]                list requests: ID, intake, messages, first words\n"
    "  requests accept ID --name N      make request ID contact N (it moves to fresh mailboxes)\n"
    "  requests reject ID               delete it; its later messages are dropped unread\n"
    "  requests block ID                reject it and drop anything from that identity\n"
    "\n"
    "bundles (carry messages across a shutdown on a USB stick or a local network):\n"
    "  bundle export FILE [--expires 14d]  write the outbox to FILE, sealed for its relays\n"
    "                                   (valid at most 30d); the outbox is kept and sent too\n"
    "  bundle deliver FILE [ADDRESS]...  deliver a bundle someone gave you to those relays\n"
    "                                   (default: every relay you know)\n"
    "\n"
    "routes (reach a relay by another address, e.g. its cairn+https one where the direct\n"
    "address named by invites is blocked; every connection to that relay's key follows it):\n"
    "  relay route ADDRESS              reach the relay whose key ADDRESS carries by ADDRESS\n"
    "  relay routes [--json]            list routes: the relay's key and its address\n"
    "  relay unroute ADDRESS-or-KEY     forget the route of that relay\n"
    "  relay info ADDRESS [--json]      the relay's signed policy, verified against ADDRESS\n"
    "\n"
    "the seized device:\n"
    "  wipe [--yes]                     destroy this client at once, beyond recovery (no\n"
    "                                   passphrase needed; asks first unless --yes)\n"
    "  duress set                       a second passphrase (asked twice, or\n"
    "                                   CAIRN_DURESS_PASSPHRASE): opening with it silently\n"
    "                                   wipes this client and opens a new, empty one\n"
    "  duress clear                     forget the duress passphrase\n"
    "\n"
    "options:\n"
    "  --home DIR         client directory (default: $XDG_DATA_HOME/cairn or "
    "~/.local/share/cairn)\n"
    "  --socks HOST:PORT  reach relays through this SOCKS5 proxy (also CAIRN_SOCKS), e.g. Tor\n"
    "  --timeout SECONDS  connect and read timeout (default 15)\n"
    "  --private-routing  send to contacts on other relays through your own relay, so theirs\n"
    "                     never sees your address (also CAIRN_PRIVATE_ROUTING=1); sent by\n"
    "                     sync and listen, which connect to your relay\n"
    "  CAIRN_PASSPHRASE   the passphrase, for scripts (otherwise asked on the terminal)\n"
    "  CAIRN_PWHASH_FAST=1  init: stretch the passphrase with 64 MiB, not 256 (weaker)\n"
    "  CAIRN_OBFS4PROXY   the obfs4proxy program cairn+obfs4 addresses start (default: PATH)\n"
    "  CAIRN_OBFS4_SOCKS  HOST:PORT of an obfs4proxy client already running: use it instead\n"
    "\n"
    "exit status: 0 ok, 1 error, 2 usage, 3 message queued but not sent yet\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int print_contact(void *ctx, const struct cairn_contact *k)
{
	termsafe_write(stdout, (const uint8_t *)k->name, strlen(k->name), NULL);
	printf("%s", k->established ? "" : "  (waiting for the first exchange)");
	if (k->unread > 0)
		printf("  %u unread", k->unread);
	printf("\n");
	return 0;
}

/* ---- commands ------------------------------------------------------------------------ */

static int cmd_init(const struct options *o)
{
	char pass[PASS_MAX];
	if (cli_passphrase(pass, sizeof(pass), 1) != 0)
		return 1;
	/* Scripts and tests that make many homes may ask for the lighter stretch; said once in
	 * the environment rather than on every command line. */
	const char *fast = getenv("CAIRN_PWHASH_FAST");
	int rc = cairn_init_kdf(o->home, pass,
	                        fast != NULL && strcmp(fast, "1") == 0 ? CAIRN_KDF_INTERACTIVE
	                                                               : CAIRN_KDF_MODERATE);
	sodium_memzero(pass, sizeof(pass));
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: %s already holds a client\n", o->home);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "init");
	fprintf(stderr, "cairn: new identity created in %s\n", o->home);
	return 0;
}

static int cmd_invite(const struct options *o)
{
	if (o->nrelays == 0 || o->name == NULL) {
		fprintf(stderr, "cairn: invite needs --relay ADDRESS and --name NAME\n");
		return EXIT_USAGE;
	}
	int st = cli_check_relays(o);
	if (st != 0)
		return st;
	struct cairn *c;
	st = cli_open(o, &c);
	if (st != 0)
		return st;
	char *invite = NULL;
	int rc = cairn_invite_create(c, o->relays, o->nrelays, o->name, &invite);
	cli_close(c);
	return cli_print_invite(o, rc, "invite", invite);
}

static int cmd_accept(const struct options *o, const char *invite)
{
	if (invite == NULL || o->name == NULL) {
		fprintf(stderr, "cairn: accept needs INVITE and --name NAME\n");
		return EXIT_USAGE;
	}
	int st = cli_check_relays(o);
	if (st != 0)
		return st;
	struct cairn *c;
	st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_invite_accept(c, invite, o->name, o->relays, o->nrelays);
	/* Unreachable before our mailbox exists, nothing is added: say so, and not "queued". */
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	int added = (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT) &&
	            cairn_safety_number(c, o->name, number) == 0;
	cli_close(c);
	if (added) {
		fprintf(stderr,
		        "cairn: %s added; the relay is unreachable, so the first message "
		        "waits in the outbox for the next sync\n",
		        o->name);
		return EXIT_QUEUED;
	}
	if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT) {
		fprintf(stderr,
		        "cairn: accept: %s; nothing was added, try again when the relay "
		        "is reachable\n",
		        cairn_strerror(rc));
		return 1;
	}
	if (rc == CAIRN_ETOOBIG) {
		fprintf(stderr, "cairn: accept: these relay addresses are too long to name in one "
		                "first message; use fewer relays (--relay)\n");
		return 1;
	}
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr,
		        "cairn: accept: the name '%s' is taken, or this is a group invite and the "
		        "group's name is taken here (a contact or a group) or you are in that "
		        "group already\n",
		        o->name);
		return 1;
	}
	if (rc == CAIRN_EWORK) {
		fprintf(stderr,
		        "cairn: %s added; the intake address's relays refused the proof of "
		        "work: check this computer's clock, then sync\n",
		        o->name);
		return EXIT_QUEUED;
	}
	if (rc != 0)
		return cli_fail(rc, "accept");
	fprintf(stderr, "cairn: %s added\n", o->name);
	return 0;
}

/* Reads all of standard input into a malloc'd buffer of at most CAIRN_MESSAGE_MAX bytes. */
static uint8_t *read_stdin(size_t *len)
{
	size_t cap = 4096;
	uint8_t *buf = malloc(cap);
	*len = 0;
	while (buf != NULL) {
		size_t n = fread(buf + *len, 1, cap - *len, stdin);
		*len += n;
		if (n == 0)
			break;
		if (*len == cap) {
			if (cap >= CAIRN_MESSAGE_MAX + 1)
				break;
			cap *= 2;
			uint8_t *p = realloc(buf, cap);
			if (p == NULL) {
				free(buf);
				return NULL;
			}
			buf = p;
		}
	}
	return buf;
}

static int cmd_send(const struct options *o, const char *name, const char *text)
{
	if (name == NULL || text == NULL) {
		fprintf(stderr, "cairn: send needs NAME and TEXT (or - for standard input)\n");
		return EXIT_USAGE;
	}
	size_t len = strlen(text);
	uint8_t *body = (uint8_t *)text, *owned = NULL;
	if (strcmp(text, "-") == 0) {
		body = owned = read_stdin(&len);
		if (body == NULL)
			return cli_fail(CAIRN_ENOMEM, "reading standard input");
	}
	if (len > CAIRN_MESSAGE_MAX) {
		free(owned);
		fprintf(stderr, "cairn: a message is at most %d bytes\n", CAIRN_MESSAGE_MAX);
		return 1;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0) {
		free(owned);
		return st;
	}
	int rc = cairn_send(c, name, body, len, NULL);
	cli_close(c);
	free(owned);
	if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT) {
		fprintf(stderr, "cairn: no relay reachable; the message is kept in the outbox and "
		                "goes out with the next sync, send or listen\n");
		return EXIT_QUEUED;
	}
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no contact or group called '%s'\n", name);
		return 1;
	}
	return rc == 0 ? 0 : cli_fail(rc, "send");
}

static int cmd_sync(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	struct cairn_sync_result r;
	int rc = cairn_sync(c, &r, o->json ? cli_print_message : NULL, (void *)o);
	cli_policy_notices(c);
	cli_close(c);
	if (rc != 0 && rc != CAIRN_ECONNECT && rc != CAIRN_ETIMEDOUT)
		return cli_fail(rc, "sync");
	fprintf(o->json ? stderr : stdout,
	        "sync: %u received, %u sent, %u waiting in the outbox%s\n", r.received, r.sent,
	        r.pending, r.relays_failed ? " (some relays unreachable)" : "");
	return r.pending > 0 ? EXIT_QUEUED : 0;
}

static volatile sig_atomic_t stop_listening;

static void on_stop(int sig)
{
	stop_listening = 1;
}

/* The engine's loop (cairn.h): wait on its descriptors until its deadline, step, until a
 * signal. Returns 0 or the first local failure of a step. */
static int listen_loop(struct cairn *c, const struct options *o)
{
	struct cairn_engine_callbacks cb = {.message = cli_print_message};
	int rc = cairn_engine_start(c, &cb, (void *)o);
	struct pollfd *fds = NULL;
	size_t cap = 0, n = 0;
	while (rc == 0 && !stop_listening) {
		int timeout = -1;
		rc = cairn_engine_fds(c, fds, cap, &n, &timeout);
		if (rc == CAIRN_ENOBUFS) {
			struct pollfd *p = realloc(fds, n * sizeof(*p));
			if (p == NULL) {
				rc = CAIRN_ENOMEM;
				break;
			}
			fds = p;
			cap = n;
			rc = 0;
			continue;
		}
		/* A signal interrupts poll (no SA_RESTART): the loop sees stop_listening. */
		if (rc == 0 && poll(fds, n, timeout) < 0) {
			if (errno != EINTR)
				rc = CAIRN_EIO;
			n = 0;
		}
		if (rc == 0 && !stop_listening)
			rc = cairn_engine_step(c, n > 0 ? fds : NULL, n);
	}
	cairn_engine_stop(c);
	free(fds);
	return rc;
}

static int cmd_listen(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = listen_loop(c, o);
	cli_policy_notices(c);
	cli_close(c);
	return rc == 0 ? 0 : cli_fail(rc, "listen");
}

static int no_member(void *ctx, const struct cairn_group_member *m)
{
	return 0;
}

static int cmd_read(struct options *o, const char *name)
{
	if (name == NULL) {
		fprintf(stderr, "cairn: read needs NAME\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	/* A group's conversation: every --json line then has "sender", null for our own. */
	o->group = cairn_group_members(c, name, no_member, NULL) == 0;
	int rc = cairn_read(c, name, cli_print_message, (void *)o);
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no contact or group called '%s'\n", name);
		return 1;
	}
	return rc == 0 ? 0 : cli_fail(rc, "read");
}

static int cmd_contacts(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_contacts(c, print_contact, NULL);
	cli_close(c);
	return rc == 0 ? 0 : cli_fail(rc, "contacts");
}

static int cmd_rename(const struct options *o, const char *name, const char *new_name)
{
	if (name == NULL || new_name == NULL) {
		fprintf(stderr, "cairn: rename needs NAME and NEW\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_rename(c, name, new_name);
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no contact or group called '%s'\n", name);
		return 1;
	}
	if (rc == CAIRN_EEXIST) {
		fprintf(stderr, "cairn: the name '%s' is taken\n", new_name);
		return 1;
	}
	if (rc == CAIRN_EINVAL) {
		fprintf(stderr, "cairn: a name is 1 to %d bytes\n", CAIRN_NAME_MAX);
		return EXIT_USAGE;
	}
	if (rc != 0)
		return cli_fail(rc, "rename");
	fprintf(stderr, "cairn: %s is now called %s\n", name, new_name);
	return 0;
}

static int cmd_verify(const struct options *o, const char *name)
{
	if (name == NULL) {
		fprintf(stderr, "cairn: verify needs NAME\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	char number[CAIRN_SAFETY_NUMBER_LEN + 1];
	int rc = cairn_safety_number(c, name, number);
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no contact called '%s'\n", name);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "verify");
	printf("%s\n", number);
	fprintf(stderr,
	        "cairn: compare this number with %s in person; if it matches on both "
	        "screens, no one is in the middle\n",
	        name);
	return 0;
}

/* ---- arguments ----------------------------------------------------------------------- */

static char default_home[4096];

static const char *home_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	if (xdg != NULL && xdg[0] == '/')
		snprintf(default_home, sizeof(default_home), "%s/cairn", xdg);
	else if (home != NULL)
		snprintf(default_home, sizeof(default_home), "%s/.local/share/cairn", home);
	else
		return NULL;
	return default_home;
}

int main(int argc, char **argv)
{
	struct options o = {.socks = getenv("CAIRN_SOCKS")};
	const char *pr = getenv("CAIRN_PRIVATE_ROUTING");
	o.private_routing = pr != NULL && strcmp(pr, "1") == 0;
	/* Three words for every command but `group add`, which takes a list of contacts. */
	const char *words[WORDS_MAX + 1] = {NULL};
	int nwords = 0, took;
	/* Before anything secret is in memory. */
	cli_no_core();
	if (sodium_init() < 0)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			o.json = 1;
		} else if (strcmp(a, "--qr") == 0) {
			o.qr = 1;
		} else if (strcmp(a, "--private-routing") == 0) {
			o.private_routing = 1;
		} else if (strcmp(a, "--yes") == 0) {
			o.yes = 1;
		} else if (strcmp(a, "--home") == 0 || strcmp(a, "--socks") == 0 ||
		           strcmp(a, "--relay") == 0 || strcmp(a, "--name") == 0 ||
		           strcmp(a, "--timeout") == 0 || strcmp(a, "--work") == 0 ||
		           strcmp(a, "--grace") == 0 || strcmp(a, "--expires") == 0) {
			if (next == NULL) {
				fprintf(stderr, "cairn: %s needs a value\n", a);
				return EXIT_USAGE;
			}
			if (strcmp(a, "--home") == 0)
				o.home = next;
			else if (strcmp(a, "--socks") == 0)
				o.socks = next;
			else if (strcmp(a, "--relay") == 0) {
				/* Counted beyond the limit so that cli_check_relays can say so. */
				if (o.nrelays < CAIRN_RELAYS_MAX)
					o.relays[o.nrelays] = next;
				o.nrelays++;
			} else if (strcmp(a, "--name") == 0)
				o.name = next;
			else if (strcmp(a, "--work") == 0)
				o.work = next;
			else if (strcmp(a, "--grace") == 0)
				o.grace = next;
			else if (strcmp(a, "--expires") == 0)
				o.expires = next;
			else {
				char *end;
				long s = strtol(next, &end, 10);
				if (*end != '\0' || s < 1 || s > 3600) {
					fprintf(stderr, "cairn: --timeout takes 1..3600 seconds\n");
					return EXIT_USAGE;
				}
				o.timeout_ms = (int)s * 1000;
			}
			i++;
		} else if ((took = cli_file_option(&o, a, next)) != 0) {
			if (took < 0)
				return EXIT_USAGE;
			i += took - 1;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "cairn: unknown option %s (see cairn --help)\n", a);
			return EXIT_USAGE;
		} else if (nwords < WORDS_MAX) {
			words[nwords++] = a;
		} else {
			fprintf(stderr, "cairn: too many arguments (see cairn --help)\n");
			return EXIT_USAGE;
		}
	}
	if (o.socks != NULL && o.socks[0] == '\0')
		o.socks = NULL;
	if (o.home == NULL && (o.home = home_dir()) == NULL) {
		fprintf(stderr, "cairn: no --home given and HOME is not set\n");
		return EXIT_USAGE;
	}
	const char *cmd = words[0];
	if (cmd == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "group") == 0)
		return cli_group(&o, words, nwords);
	if (strcmp(cmd, "intake") == 0)
		return cli_intake(&o, words, nwords);
	if (strcmp(cmd, "requests") == 0)
		return cli_requests(&o, words, nwords);
	if (strcmp(cmd, "relay") == 0)
		return cli_relay(&o, words, nwords);
	if (strcmp(cmd, "duress") == 0)
		return cli_duress(&o, words, nwords);
	if (strcmp(cmd, "wipe") == 0)
		return cli_wipe(&o, nwords);
	if (strcmp(cmd, "bundle") == 0)
		return cli_bundle(&o, words, nwords);
	if (strcmp(cmd, "timer") == 0)
		return cli_timer(&o, words, nwords);
	if (strcmp(cmd, "files") == 0 || (strcmp(cmd, "send") == 0 && o.file != NULL))
		return cli_file(&o, words, nwords);
	if (nwords > 3) {
		fprintf(stderr, "cairn: too many arguments (see cairn --help)\n");
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(&o);
	if (strcmp(cmd, "invite") == 0)
		return cmd_invite(&o);
	if (strcmp(cmd, "accept") == 0)
		return cmd_accept(&o, words[1]);
	if (strcmp(cmd, "send") == 0)
		return cmd_send(&o, words[1], words[2]);
	if (strcmp(cmd, "sync") == 0)
		return cmd_sync(&o);
	if (strcmp(cmd, "listen") == 0)
		return cmd_listen(&o);
	if (strcmp(cmd, "read") == 0)
		return cmd_read(&o, words[1]);
	if (strcmp(cmd, "contacts") == 0)
		return cmd_contacts(&o);
	if (strcmp(cmd, "groups") == 0)
		return cli_groups(&o);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(&o, words[1]);
	if (strcmp(cmd, "rename") == 0)
		return cmd_rename(&o, words[1], words[2]);
	fprintf(stderr, "cairn: unknown command '%s' (see cairn --help)\n", cmd);
	return EXIT_USAGE;
}
