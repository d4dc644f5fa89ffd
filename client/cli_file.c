/* SPDX-License-Identifier: MIT */
/*
 * `cairn send NAME --file PATH`, `cairn files` and `cairn files get ID` (docs/PROTOCOL.md
 * section 11) on libcairn's cairn_file_send, cairn_files and cairn_file_get. Progress goes to
 * stderr as a bar on a terminal (bytes, rate, time left) or, with --json, to stdout as one JSON
 * object per line. A file's name is a contact's text: it reaches the terminal only through
 * termsafe.h. Running a command again resumes what it left unfinished.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/cairn.h"
#include "cli_common.h"
#include "cli_file.h"
#include "termsafe.h"

#define DEFAULT_MAX_SIZE (100ull * 1024 * 1024)

int cli_file_option(struct options *o, const char *a, const char *next)
{
	if (strcmp(a, "--yes") == 0) {
		o->yes = 1;
		return 1;
	}
	if (strcmp(a, "--file") != 0 && strcmp(a, "--output") != 0 && strcmp(a, "--max-size") != 0)
		return 0;
	if (next == NULL) {
		fprintf(stderr, "cairn: %s needs a value\n", a);
		return -1;
	}
	if (strcmp(a, "--file") == 0)
		o->file = next;
	else if (strcmp(a, "--output") == 0)
		o->output = next;
	else
		o->max_size = next;
	return 2;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress {
	const struct options *o;
	int bar; /* a terminal on stderr */
	double start, last;
	uint64_t first; /* bytes already done when this run began (resumed) */
	uint64_t last_done;
	int begun;
};

static void human(uint64_t n, char *out, size_t cap)
{
	if (n < 1024 * 1024)
		snprintf(out, cap, "%.1f KiB", (double)n / 1024);
	else if (n < 1024ull * 1024 * 1024)
		snprintf(out, cap, "%.1f MiB", (double)n / (1024 * 1024));
	else
		snprintf(out, cap, "%.2f GiB", (double)n / (1024.0 * 1024 * 1024));
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	double t = now_s();
	if (!p->begun) {
		p->begun = 1;
		p->start = t;
		p->first = done;
	} else if (done < total && t - p->last < 0.25 && done - p->last_done < total / 100) {
		return; /* a line every quarter second or every 1%, whichever comes first */
	}
	p->last = t;
	p->last_done = done;
	if (p->o->json) {
		printf("{\"event\":\"progress\",\"bytes\":%" PRIu64 ",\"total\":%" PRIu64 "}\n",
		       done, total);
		fflush(stdout);
		return;
	}
	if (!p->bar)
		return;
	double rate = t > p->start ? (double)(done - p->first) / (t - p->start) : 0;
	char d[32], tt[32], r[32], left[32] = "--:--";
	human(done, d, sizeof(d));
	human(total, tt, sizeof(tt));
	human((uint64_t)rate, r, sizeof(r));
	if (rate > 0 && done < total) {
		long s = (long)((double)(total - done) / rate);
		snprintf(left, sizeof(left), "%ld:%02ld", s / 60, s % 60);
	}
	int pct = total ? (int)(done * 100 / total) : 100;
	char bar[31];
	for (int i = 0; i < 30; i++)
		bar[i] = i < pct * 30 / 100 ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %s / %s  %s/s  %s left ", bar, pct, d, tt, r, left);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

static void progress_init(struct progress *p, const struct options *o)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->bar = !o->json && isatty(2);
}

/* --json's last line. */
static void json_done(const struct options *o, const char *event, const uint8_t id[16], int rc)
{
	if (!o->json)
		return;
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), id, 16);
	if (rc == 0)
		printf("{\"event\":\"%s\",\"id\":\"%s\"}\n", event, hex);
	else
		printf("{\"event\":\"error\",\"id\":\"%s\",\"code\":\"%s\",\"message\":\"%s\"}\n",
		       hex, cairn_strerror_name(rc), cairn_strerror(rc));
	fflush(stdout);
}

/* The state of file ID, or 0 if none. */
struct find {
	const uint8_t *id;
	size_t idlen; /* a prefix of this many bytes... */
	const char *hex;
	int state, matches;
	uint64_t size;
	uint8_t full[16];
	char safe[256];
	char name[256];
};

static int find_cb(void *ctx, const struct cairn_file *f)
{
	struct find *x = ctx;
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), f->id, 16);
	if (strncmp(hex, x->hex, strlen(x->hex)) != 0)
		return 0;
	x->matches++;
	x->state = f->state;
	x->size = f->size;
	memcpy(x->full, f->id, 16);
	snprintf(x->safe, sizeof(x->safe), "%s", f->safe_name);
	snprintf(x->name, sizeof(x->name), "%s", f->name);
	return 0;
}

static int cmd_send_file(const struct options *o, const char *name)
{
	if (name == NULL || o->file == NULL) {
		fprintf(stderr, "cairn: send --file needs NAME and PATH\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	struct progress p;
	progress_init(&p, o);
	uint8_t id[16] = {0};
	int rc = cairn_file_send(c, name, o->file, on_progress, &p, id);
	struct find x = {.hex = ""};
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), id, 16);
	x.hex = hex;
	if ((rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT) && cairn_files(c, find_cb, &x) == 0 &&
	    x.state == CAIRN_FILE_SENT) {
		cli_close(c);
		json_done(o, "queued", id, 0);
		fprintf(stderr,
		        "cairn: the file is on the relay; its message is kept in the outbox "
		        "and goes out with the next sync, send or listen\n");
		return EXIT_QUEUED;
	}
	cli_close(c);
	json_done(o, "done", id, rc);
	if (rc == 0)
		return 0;
	if (rc == CAIRN_ENOTFOUND)
		fprintf(stderr, "cairn: no contact or group called '%s', or no file '%s'\n", name,
		        o->file);
	else if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT)
		fprintf(stderr, "cairn: the relay stayed unreachable; run the same command again "
		                "to resume the upload\n");
	else if (rc == CAIRN_EQUOTA || rc == CAIRN_ECAPACITY || rc == CAIRN_EDENIED)
		fprintf(stderr, "cairn: the relay refused the file (%s); it was not sent\n",
		        cairn_strerror(rc));
	else if (rc == CAIRN_ETOOBIG)
		fprintf(stderr, "cairn: a file is at most 2 GiB\n");
	else
		return cli_fail(rc, "send --file");
	return 1;
}

static const char *state_name(int s)
{
	switch (s) {
	case CAIRN_FILE_SENDING:
		return "sending";
	case CAIRN_FILE_SENT:
		return "sent";
	case CAIRN_FILE_OFFERED:
		return "offered";
	case CAIRN_FILE_RECEIVING:
		return "receiving";
	case CAIRN_FILE_RECEIVED:
		return "received";
	default:
		return "failed";
	}
}

static int list_cb(void *ctx, const struct cairn_file *f)
{
	const struct options *o = ctx;
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), f->id, 16);
	if (o->json) {
		printf("{\"id\":\"%s\",\"direction\":\"%s\",\"state\":\"%s\",\"conversation\":",
		       hex, f->outgoing ? "out" : "in", state_name(f->state));
		termsafe_json(stdout, (const uint8_t *)f->conversation, strlen(f->conversation));
		printf(",\"name\":");
		termsafe_json(stdout, (const uint8_t *)f->name, strlen(f->name));
		printf(",\"size\":%" PRIu64 ",\"done\":%" PRIu64 ",\"sent\":%lld", f->size, f->done,
		       (long long)f->sent_at);
		if (f->sender != NULL) {
			printf(",\"sender\":");
			termsafe_json(stdout, (const uint8_t *)f->sender, strlen(f->sender));
		}
		if (f->state == CAIRN_FILE_FAILED)
			printf(",\"error\":\"%s\"", cairn_strerror_name(f->error));
		printf("}\n");
		return 0;
	}
	char sz[32];
	human(f->size, sz, sizeof(sz));
	printf("%s  %-9s %s %10s  ", hex, state_name(f->state), f->outgoing ? "to  " : "from", sz);
	termsafe_write(stdout, (const uint8_t *)f->conversation, strlen(f->conversation), NULL);
	if (f->sender != NULL) {
		printf(" (");
		termsafe_write(stdout, (const uint8_t *)f->sender, strlen(f->sender), NULL);
		printf(")");
	}
	printf("  ");
	termsafe_write(stdout, (const uint8_t *)f->name, strlen(f->name), NULL);
	if (f->state == CAIRN_FILE_FAILED)
		printf("  [%s]", cairn_strerror(f->error));
	printf("\n");
	return 0;
}

static int cmd_files(const struct options *o)
{
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	int rc = cairn_files(c, list_cb, (void *)o);
	cli_close(c);
	return rc < 0 ? cli_fail(rc, "files") : 0;
}

/* "100M", "2G", "5000": bytes. 0 on a bad value. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	return *end == '\0' ? v : 0;
}

static int ask_yes(const struct find *x)
{
	char sz[32], line[16];
	human(x->size, sz, sizeof(sz));
	fprintf(stderr, "cairn: fetch ");
	termsafe_write(stderr, (const uint8_t *)x->name, strlen(x->name), NULL);
	fprintf(stderr, " (%s)? [y/N] ", sz);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	return line[0] == 'y' || line[0] == 'Y';
}

static int cmd_get(const struct options *o, const char *idtext)
{
	size_t n = idtext != NULL ? strlen(idtext) : 0;
	if (n < 4 || n > 32 || strspn(idtext, "0123456789abcdef") != n) {
		fprintf(stderr, "cairn: files get needs a file's id (as cairn files shows it; a "
		                "unique prefix of 4 characters or more will do)\n");
		return EXIT_USAGE;
	}
	uint64_t limit = DEFAULT_MAX_SIZE;
	if (o->max_size != NULL && (limit = parse_size(o->max_size)) == 0) {
		fprintf(stderr, "cairn: --max-size takes a size (like 500M or 2G)\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	struct find x = {.hex = idtext};
	int rc = cairn_files(c, find_cb, &x);
	if (rc == 0 && x.matches != 1) {
		cli_close(c);
		fprintf(stderr, "cairn: %s\n",
		        x.matches == 0 ? "no file has that id" : "that prefix names several files");
		return 1;
	}
	if (rc == 0 && x.size > limit && !o->yes) {
		if (!isatty(0) || !isatty(2) || !ask_yes(&x)) {
			cli_close(c);
			fprintf(stderr, "cairn: the file is larger than the limit (--max-size); "
			                "fetch it with --yes\n");
			return 1;
		}
	}
	struct progress p;
	progress_init(&p, o);
	if (rc == 0)
		rc = cairn_file_get(c, x.full, o->output, on_progress, &p);
	cli_close(c);
	json_done(o, "done", x.full, rc);
	if (rc == 0) {
		if (!o->json) {
			fprintf(stderr, "cairn: received ");
			if (o->output != NULL)
				termsafe_write(stderr, (const uint8_t *)o->output,
				               strlen(o->output), NULL);
			else
				termsafe_write(stderr, (const uint8_t *)x.safe, strlen(x.safe),
				               NULL);
			fprintf(stderr, "\n");
		}
		return 0;
	}
	if (rc == CAIRN_EEXPIRED)
		fprintf(stderr, "cairn: the file has expired on the relay\n");
	else if (rc == CAIRN_EAUTH)
		fprintf(stderr, "cairn: the file failed verification (damaged or tampered with); "
		                "nothing was kept\n");
	else if (rc == CAIRN_EEXIST)
		fprintf(stderr, "cairn: the output exists already; choose another with --output\n");
	else if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT)
		fprintf(stderr, "cairn: the relay stayed unreachable; run the same command again "
		                "to resume the download\n");
	else
		return cli_fail(rc, "files get");
	return 1;
}

int cli_file(const struct options *o, const char *const *words, int nwords)
{
	if (strcmp(words[0], "send") == 0) {
		if (nwords != 2) {
			fprintf(stderr, "cairn: send NAME --file PATH\n");
			return EXIT_USAGE;
		}
		return cmd_send_file(o, words[1]);
	}
	if (nwords == 1)
		return cmd_files(o);
	if (nwords == 3 && strcmp(words[1], "get") == 0)
		return cmd_get(o, words[2]);
	fprintf(stderr, "cairn: files [--json] | files get ID [--output PATH] [--yes] "
	                "[--max-size SIZE]\n");
	return EXIT_USAGE;
}
