/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench files` (issue 15): file throughput through one real relay on loopback, beside
 * a raw TCP copy of the same file in the same run. Two homes paired through the relay; for
 * each size, FILES_RUNS rounds of: the raw copy (filerun.c: the limit), `cairn send bob --file`
 * (encrypt into the spool, then every chunk appended), then `cairn files get` (every chunk
 * read, opened, checked against the digest, written out). The send and the get cannot
 * overlap: the file message goes only once every chunk is on the relay (PROTOCOL.md 11.3).
 * Rates are in MB/s of the file's own size; the relay's CPU is read from /proc, the clients'
 * from wait4(). Each figure is the median of the runs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cairn/address.h"
#include "cairn/limits.h"
#include "file.h"
#include "files.h"
#include "procscan.h"
#include "relayctl.h"

#define OUT_CAP 65536

/* The medians of one size. */
struct files_result {
	uint32_t mib;
	uint64_t padded;
	double raw_mbs, send_mbs, get_mbs, both_mbs;
	double raw_cpu, send_cpu, get_cpu;    /* ms per MiB, the clients' processes */
	double relay_send_cpu, relay_get_cpu; /* ms per MiB, the relay */
};

/* One run's figures, in the order of the fields above from raw_mbs. */
enum {
	F_RAW,
	F_SEND,
	F_GET,
	F_BOTH,
	F_RAW_CPU,
	F_SEND_CPU,
	F_GET_CPU,
	F_RELAY_SEND,
	F_RELAY_GET,
	F_COUNT
};

struct files_ctx {
	const struct bench_opts *o;
	const char *cli;
	char dir[64], home[2][96], addr[CAIRN_ADDRESS_MAX + 1];
	struct relayctl relay;
	char seen[FILES_RUNS * BENCH_MAX_STEPS][64]; /* file ids already fetched */
	size_t nseen;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static int cli_ok(struct files_ctx *c, int who, const char *const *args, char *out, size_t cap,
                  struct files_cost *cost)
{
	int st = files_cli(c->cli, c->home[who], args, out, cap, cost);
	if (st != 0)
		bench_note("files: `cairn %s %s` exited %d", args[0], args[1] ? args[1] : "", st);
	return st == 0 ? 0 : -1;
}

/* A (who calls the other "bob") and B ("alice") made contacts through the relay, one message
 * each way, as tests/support/cliproc.c's pair() does. */
static int pair(struct files_ctx *c)
{
	char out[4096];
	if (cli_ok(c, 0, (const char *[]){"init", NULL}, NULL, 0, NULL) != 0 ||
	    cli_ok(c, 1, (const char *[]){"init", NULL}, NULL, 0, NULL) != 0 ||
	    cli_ok(c, 0, (const char *[]){"invite", "--relay", c->addr, "--name", "bob", NULL}, out,
	           sizeof(out), NULL) != 0)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	return cli_ok(c, 1, (const char *[]){"accept", out, "--name", "alice", NULL}, NULL, 0,
	              NULL) == 0 &&
	               cli_ok(c, 1, (const char *[]){"send", "alice", "hello", NULL}, NULL, 0,
	                      NULL) == 0 &&
	               cli_ok(c, 0, (const char *[]){"sync", NULL}, NULL, 0, NULL) == 0 &&
	               cli_ok(c, 0, (const char *[]){"send", "bob", "hello", NULL}, NULL, 0,
	                      NULL) == 0 &&
	               cli_ok(c, 1, (const char *[]){"sync", NULL}, NULL, 0, NULL) == 0
	           ? 0
	           : -1;
}

/* The id of the file B was offered last: one `cairn files --json` line not fetched yet. */
static int new_file_id(struct files_ctx *c, char *id, size_t cap)
{
	static char out[OUT_CAP];
	if (cli_ok(c, 1, (const char *[]){"sync", NULL}, NULL, 0, NULL) != 0 ||
	    cli_ok(c, 1, (const char *[]){"files", "--json", NULL}, out, sizeof(out), NULL) != 0)
		return -1;
	id[0] = '\0';
	for (char *save, *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);
		cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "id");
		cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "direction");
		bool seen =
		    !cJSON_IsString(v) || !cJSON_IsString(d) || strcmp(d->valuestring, "in") != 0;
		for (size_t i = 0; !seen && i < c->nseen; i++)
			seen = strcmp(c->seen[i], v->valuestring) == 0;
		if (!seen)
			snprintf(id, cap, "%s", v->valuestring);
		cJSON_Delete(j);
	}
	if (id[0] == '\0' || c->nseen >= sizeof(c->seen) / sizeof(c->seen[0])) {
		bench_note("files: B was offered no new file");
		return -1;
	}
	snprintf(c->seen[c->nseen++], sizeof(c->seen[0]), "%s", id);
	return 0;
}

/* One round of SIZE bytes: FIG[F_*] filled. */
static int one_run(struct files_ctx *c, uint64_t size, double fig[F_COUNT])
{
	char src[128], raw[128], got[128], id[64];
	snprintf(src, sizeof(src), "%s/evidence.bin", c->dir);
	snprintf(raw, sizeof(raw), "%s/raw.bin", c->dir);
	snprintf(got, sizeof(got), "%s/received.bin", c->dir);
	double mb = (double)size / 1e6, mib = (double)size / (1 << 20);
	struct files_cost rc, sc, gc;
	if (files_make(src, size) != 0 || files_raw_copy(src, raw, &rc) != 0 ||
	    !files_same(src, raw)) {
		bench_note("files: the raw copy failed");
		return -1;
	}
	unlink(raw);
	double r0 = proc_cpu_s(c->relay.pid);
	if (cli_ok(c, 0, (const char *[]){"send", "bob", "--file", src, NULL}, NULL, 0, &sc) != 0)
		return -1;
	double r1 = proc_cpu_s(c->relay.pid);
	if (new_file_id(c, id, sizeof(id)) != 0)
		return -1;
	double r2 = proc_cpu_s(c->relay.pid);
	if (cli_ok(c, 1, (const char *[]){"files", "get", id, "--output", got, "--yes", NULL}, NULL,
	           0, &gc) != 0)
		return -1;
	double r3 = proc_cpu_s(c->relay.pid);
	if (!files_same(src, got)) {
		bench_note("files: the file fetched differs from the one sent");
		return -1;
	}
	unlink(got);
	unlink(src);
	fig[F_RAW] = mb / rc.secs;
	fig[F_SEND] = mb / sc.secs;
	fig[F_GET] = mb / gc.secs;
	fig[F_BOTH] = mb / (sc.secs + gc.secs);
	fig[F_RAW_CPU] = rc.cpu_s * 1000 / mib;
	fig[F_SEND_CPU] = sc.cpu_s * 1000 / mib;
	fig[F_GET_CPU] = gc.cpu_s * 1000 / mib;
	fig[F_RELAY_SEND] = (r1 - r0) * 1000 / mib;
	fig[F_RELAY_GET] = (r3 - r2) * 1000 / mib;
	bench_note("files: %.0f MiB: raw %.1f MB/s, send %.1f MB/s, get %.1f MB/s", mib, fig[F_RAW],
	           fig[F_SEND], fig[F_GET]);
	return 0;
}

static int measure(struct files_ctx *c, uint32_t mib, struct files_result *r)
{
	double fig[F_COUNT][FILES_RUNS];
	for (size_t i = 0; i < FILES_RUNS; i++) {
		double one[F_COUNT];
		if (one_run(c, (uint64_t)mib << 20, one) != 0)
			return -1;
		for (size_t f = 0; f < F_COUNT; f++)
			fig[f][i] = one[f];
	}
	r->mib = mib;
	r->padded = (uint64_t)file_chunks((uint64_t)mib << 20) * CAIRN_LOG_ENTRY_MAX;
	double *out[F_COUNT] = {&r->raw_mbs,  &r->send_mbs,       &r->get_mbs,
	                        &r->both_mbs, &r->raw_cpu,        &r->send_cpu,
	                        &r->get_cpu,  &r->relay_send_cpu, &r->relay_get_cpu};
	for (size_t f = 0; f < F_COUNT; f++)
		*out[f] = median(fig[f], FILES_RUNS);
	return 0;
}

static void files_table(const struct files_result *r, size_t n)
{
	printf("files: one relay on loopback, the cairn command; MB/s of the file's size, median "
	       "of %d runs\n",
	       FILES_RUNS);
	printf("%8s %9s %9s %9s %9s %7s | %19s | %19s | %9s\n", "", "raw TCP", "send", "get",
	       "send+get", "ratio", "relay ms/MiB", "client ms/MiB", "raw");
	printf("%8s %9s %9s %9s %9s %7s | %9s %9s | %9s %9s | %9s\n", "size", "MB/s", "MB/s",
	       "MB/s", "MB/s", "", "send", "get", "send", "get", "ms/MiB");
	for (size_t i = 0; i < n; i++)
		printf(
		    "%4u MiB %9.1f %9.1f %9.1f %9.1f %7.3f | %9.1f %9.1f | %9.1f %9.1f | %9.1f\n",
		    r[i].mib, r[i].raw_mbs, r[i].send_mbs, r[i].get_mbs, r[i].both_mbs,
		    r[i].raw_mbs > 0 ? r[i].both_mbs / r[i].raw_mbs : 0, r[i].relay_send_cpu,
		    r[i].relay_get_cpu, r[i].send_cpu, r[i].get_cpu, r[i].raw_cpu);
	printf("ratio: send+get against the raw copy. send includes encrypting into the spool; "
	       "get, checking the digest and writing the file.\n");
}

static void files_json(const struct files_result *r, size_t n)
{
	printf("{\"files\":{\"runs\":%d,\"sizes\":[", FILES_RUNS);
	for (size_t i = 0; i < n; i++)
		printf(
		    "%s{\"mib\":%u,\"padded_bytes\":%llu,\"raw_mb_per_s\":%.2f,"
		    "\"send_mb_per_s\":%.2f,\"get_mb_per_s\":%.2f,\"send_then_get_mb_per_s\":%.2f,"
		    "\"ratio_to_raw\":%.4f,\"relay_cpu_ms_per_mib_send\":%.3f,"
		    "\"relay_cpu_ms_per_mib_get\":%.3f,\"client_cpu_ms_per_mib_send\":%.3f,"
		    "\"client_cpu_ms_per_mib_get\":%.3f,\"raw_cpu_ms_per_mib\":%.3f}",
		    i ? "," : "", r[i].mib, (unsigned long long)r[i].padded, r[i].raw_mbs,
		    r[i].send_mbs, r[i].get_mbs, r[i].both_mbs,
		    r[i].raw_mbs > 0 ? r[i].both_mbs / r[i].raw_mbs : 0, r[i].relay_send_cpu,
		    r[i].relay_get_cpu, r[i].send_cpu, r[i].get_cpu, r[i].raw_cpu);
	printf("]}}\n");
}

int files_run(const struct bench_opts *o)
{
	struct files_ctx *c = calloc(1, sizeof(*c));
	char found[4096];
	if (c == NULL)
		return 1;
	c->o = o;
	c->cli = relayctl_find_bin(o->cli_bin, "cairn", "../../client/cairn", found, sizeof(found));
	if (c->cli == NULL) {
		bench_note("files: the cairn command was not found; pass --cairn PATH");
		free(c);
		return 2;
	}
	strcpy(c->dir, "/tmp/cairn-bench-files-XXXXXX");
	if (mkdtemp(c->dir) == NULL) {
		free(c);
		return 1;
	}
	for (int i = 0; i < 2; i++)
		snprintf(c->home[i], sizeof(c->home[i]), "%s/%c", c->dir, 'A' + i);
	const char *const lines[] = {"mailbox_max_envelopes = 1000000",
	                             "mailbox_max_bytes = 2147483648"};
	int rc = relayctl_start(&c->relay, o->relay_bin, lines, 2);
	bool started = rc == 0;
	if (rc != 0) {
		bench_note("files: cannot start the relay");
	} else {
		struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = c->relay.port};
		memcpy(a.key, c->relay.pub, sizeof(a.key));
		strcpy(a.host, "127.0.0.1");
		rc = cairn_address_format(&a, c->addr, sizeof(c->addr));
	}
	if (rc == 0)
		rc = pair(c);
	struct files_result r[BENCH_MAX_STEPS];
	size_t n = 0;
	for (; rc == 0 && n < o->file_mib_len; n++)
		rc = measure(c, o->file_mib[n], &r[n]);
	if (started)
		relayctl_stop(&c->relay);
	relayctl_remove_dir(c->dir);
	free(c);
	if (rc != 0)
		return 1;
	if (o->json)
		files_json(r, n);
	else
		files_table(r, n);
	return 0;
}
