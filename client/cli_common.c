/* SPDX-License-Identifier: MIT */
/*
 * What the commands of `cairn` share (cli.c, cli_group.c): errors, the passphrase, opening the
 * home, checking --relay addresses, printing a message and an invite. Through
 * include/cairn/cairn.h only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <qrencode.h>
#include <sodium.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "cli_common.h"
#include "termsafe.h"

int cli_fail(int rc, const char *what)
{
	fprintf(stderr, "cairn: %s: %s\n", what, cairn_strerror(rc));
	return 1;
}

void cli_close(struct cairn *c)
{
	const char *why = c != NULL ? cairn_transport_error(c) : NULL;
	if (why != NULL) {
		fputs("cairn: ", stderr);
		termsafe_write(stderr, (const uint8_t *)why, strlen(why), "");
		fputc('\n', stderr);
	}
	cairn_close(c);
}

/* ---- passphrase ---------------------------------------------------------------------- */

/* Reads one line from the terminal with echo off. Returns 0 or -1. */
static int read_tty(const char *prompt, char *buf, size_t cap)
{
	FILE *tty = fopen("/dev/tty", "r+");
	if (tty == NULL)
		return -1;
	struct termios old, quiet;
	int fd = fileno(tty);
	int have_termios = tcgetattr(fd, &old) == 0;
	if (have_termios) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	fputs(prompt, tty);
	fflush(tty);
	int ok = fgets(buf, (int)cap, tty) != NULL;
	if (have_termios)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int cli_secret(const char *env_name, const char *what, char *buf, size_t cap, int twice)
{
	const char *env = getenv(env_name);
	if (env != NULL) {
		if (strlen(env) >= cap)
			return -1;
		strcpy(buf, env);
		return 0;
	}
	char prompt[64];
	snprintf(prompt, sizeof(prompt), "%s: ", what);
	if (read_tty(prompt, buf, cap) != 0) {
		fprintf(stderr, "cairn: no terminal to ask for the %s; set %s\n", what, env_name);
		return -1;
	}
	if (twice) {
		char again[PASS_MAX];
		snprintf(prompt, sizeof(prompt), "%s again: ", what);
		int same = read_tty(prompt, again, sizeof(again)) == 0 && strcmp(buf, again) == 0;
		sodium_memzero(again, sizeof(again));
		if (!same) {
			fprintf(stderr, "cairn: the %ss differ\n", what);
			return -1;
		}
	}
	if (buf[0] == '\0') {
		fprintf(stderr, "cairn: an empty %s protects nothing\n", what);
		return -1;
	}
	return 0;
}

int cli_passphrase(char *buf, size_t cap, int twice)
{
	return cli_secret("CAIRN_PASSPHRASE", "passphrase", buf, cap, twice);
}

int cli_open(const struct options *o, struct cairn **c)
{
	char pass[PASS_MAX];
	if (cli_passphrase(pass, sizeof(pass), 0) != 0)
		return 1;
	int rc = cairn_open(o->home, pass, c);
	sodium_memzero(pass, sizeof(pass));
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no client in %s; run 'cairn init' first\n", o->home);
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, "cannot open the client");
	if (o->socks != NULL && (rc = cairn_set_socks(*c, o->socks)) != 0) {
		cairn_close(*c);
		return cli_fail(rc, "--socks");
	}
	if (o->timeout_ms > 0)
		cairn_set_timeout(*c, o->timeout_ms);
	cairn_set_private_routing(*c, o->private_routing);
	return 0;
}

/* ---- output -------------------------------------------------------------------------- */

/* What a contact wrote is untrusted: it reaches the terminal only through termsafe.h. */
int cli_print_message(void *ctx, const struct cairn_message *m)
{
	const struct options *o = ctx;
	char id[CAIRN_MESSAGE_ID_LEN * 2 + 1];
	sodium_bin2hex(id, sizeof(id), m->id, sizeof(m->id));
	if (o->json) {
		printf("{\"contact\":");
		termsafe_json(stdout, (const uint8_t *)m->contact, strlen(m->contact));
		printf(",\"direction\":\"%s\",\"text\":", m->outgoing ? "out" : "in");
		termsafe_json(stdout, m->text, m->len);
		printf(",\"sent\":%lld,\"received\":%lld,\"id\":\"%s\"", (long long)m->sent_at,
		       (long long)m->received_at, id);
		/* A group's messages name their sender (null: our own); a contact's do not, so
		 * the lines of 1:1 conversations stay as they were. */
		if (m->sender != NULL) {
			printf(",\"sender\":");
			termsafe_json(stdout, (const uint8_t *)m->sender, strlen(m->sender));
		} else if (o->group) {
			printf(",\"sender\":null");
		}
		printf("}\n");
	} else if (m->sender != NULL) {
		/* The header names the group and the sender, "family/alice", both through
		 * termsafe_message's escaping of names. */
		char who[2 * CAIRN_NAME_MAX + 2];
		struct cairn_message shown = *m;
		snprintf(who, sizeof(who), "%s/%s", m->contact, m->sender);
		shown.contact = who;
		termsafe_message(stdout, &shown);
	} else {
		termsafe_message(stdout, m);
	}
	fflush(stdout);
	return 0;
}

/*
 * Checks the --relay addresses before anything is opened or created: at most
 * CAIRN_RELAYS_MAX, each an address, no relay twice (the same key is the same relay, whatever
 * the host). Prints what is wrong and returns EXIT_USAGE, or 0.
 */
int cli_check_relays(const struct options *o)
{
	if (o->nrelays > CAIRN_RELAYS_MAX) {
		fprintf(stderr, "cairn: at most %d relays (--relay)\n", CAIRN_RELAYS_MAX);
		return EXIT_USAGE;
	}
	struct cairn_address a[CAIRN_RELAYS_MAX];
	for (size_t i = 0; i < o->nrelays; i++) {
		if (cairn_address_parse(o->relays[i], &a[i]) != 0) {
			fprintf(stderr,
			        "cairn: --relay %s: not a relay address (cairn://KEY@HOST:PORT)\n",
			        o->relays[i]);
			return EXIT_USAGE;
		}
		for (size_t j = 0; j < i; j++)
			if (memcmp(a[i].key, a[j].key, sizeof(a[i].key)) == 0) {
				fprintf(stderr, "cairn: --relay %s: the same relay as --relay %s\n",
				        o->relays[i], o->relays[j]);
				return EXIT_USAGE;
			}
	}
	return 0;
}

/* Prints TEXT as a QR code of Unicode half blocks, two modules per character row. */
static int print_qr(const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (qr == NULL) {
		fprintf(stderr, "cairn: cannot make a QR code of this invite\n");
		return -1;
	}
	int w = qr->width, margin = 2;
	for (int y = -margin; y < w + margin; y += 2) {
		for (int x = -margin; x < w + margin; x++) {
			int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
			int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
			          (qr->data[(y + 1) * w + x] & 1);
			/* Dark modules print as spaces on a light background. */
			fputs(top && bot ? " "
			      : top      ? "\u2584"
			      : bot      ? "\u2580"
			                 : "\u2588",
			      stderr);
		}
		fputs("\n", stderr);
	}
	QRcode_free(qr);
	return 0;
}

int cli_print_invite(const struct options *o, int rc, const char *what, char *invite)
{
	if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT || rc == CAIRN_EPROXY) {
		fprintf(stderr,
		        "cairn: %s: %s; an invite needs every one of its relays, so nothing was "
		        "made\n",
		        what, cairn_strerror(rc));
		return 1;
	}
	if (rc != 0)
		return cli_fail(rc, what);
	printf("%s\n", invite);
	fflush(stdout);
	if (o->qr)
		print_qr(invite);
	cairn_free(invite);
	return 0;
}
