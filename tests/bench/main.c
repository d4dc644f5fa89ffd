/* SPDX-License-Identifier: MIT */
/*
 * cairn-bench: starts real cairn-relay processes on loopback and measures them with a load
 * generator that speaks the real protocol — online throughput and latency, durable throughput,
 * idle connections' memory and handshake rate — next to the machine's own limits. `compare`
 * runs the same shapes against mosquitto too. It prints figures; it never passes or fails on
 * them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench.h"
#include "files.h"
#include "handshakes.h"
#include "loaded.h"
#include "nodes.h"
#include "pgdurable.h"
#include "transport.h"
#include "relayctl.h"

enum { SC_ONLINE = 1, SC_DURABLE = 2, SC_CONNECTIONS = 4, SC_LIMIT = 8, SC_ALL = 15 };
enum { SC_COMPARE = 16 }; /* alone: cairn, mosquitto and NATS side by side */
enum { SC_GROUP = 32 };   /* alone: one sender to N members, cairn and mosquitto */
enum { SC_WORK = 64 };    /* alone: proof-of-work costs, no relay */
enum { SC_TRANSPORT = 128 }; /* alone: each transport to one relay, side by side */
enum { SC_FILES = 256 };     /* alone: a file through one relay, beside a raw TCP copy */
enum { SC_NODES = 512 };     /* alone: two relay nodes on one PostgreSQL */
enum { SC_HANDSHAKES = 1024 }; /* alone: handshakes beside their X25519 floor */
enum { SC_LOADED = 2048 };     /* alone: many subscribed connections under load */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cairn-bench [options] [online] [durable] [connections] [limit]\n"
	        "       cairn-bench [options] compare\n"
	        "       cairn-bench [options] group\n"
	        "       cairn-bench [options] work\n"
	        "       cairn-bench [options] transport\n"
	        "       cairn-bench [options] files\n"
	        "       cairn-bench [options] nodes\n"
	        "       cairn-bench [options] handshakes\n"
	        "       cairn-bench [options] loaded\n"
	        "  Runs the named scenarios (default: all) against a fresh cairn-relay each.\n"
	        "  compare runs online (1 KiB, 4 senders), durable (1 KiB, 4 senders), idle\n"
	        "  connections and limit against cairn-relay and /usr/sbin/mosquitto, online and\n"
	        "  durable also against mosquitto over TLS and /usr/sbin/nats-server (core NATS,\n"
	        "  JetStream) plain and over TLS, and prints one table with a ratio against the\n"
	        "  best peer per row.\n"
	        "  group sends 896-byte messages (--size) from one sender to N online members\n"
	        "  (cairn: followers of one group log; mosquitto: subscribers of one topic), a\n"
	        "  fresh server of each per N, and prints one table per N, cairn vs mosquitto.\n"
	        "  work times proof-of-work solves (PROTOCOL.md 5.10) at --work-bits and\n"
	        "  work_verify on 896, 3968 and 16384-byte envelopes; it starts no relay.\n"
	        "  transport measures each way of reaching a relay through the client's own\n"
	        "  connection code: handshakes per second and CPU per handshake, then 1 KiB and\n"
	        "  16 KiB envelopes to a subscribed owner (env/s, MB/s, CPU), beside direct.\n"
	        "  files sends a file with `cairn send --file` and fetches it with `cairn files\n"
	        "  get` through one relay, beside a raw TCP copy of the same file: MB/s and\n"
	        "  CPU per MiB of the relay and the clients, median of three runs per size.\n"
	        "  nodes starts PostgreSQL and two relay nodes on it ([store] node = 1, 2), senders\n"
	        "  on node 1 and owners on node 2 beside owners on node 1: latency p50/p99/p99.9,\n"
	        "  delivered/s and CPU per envelope of each node and the database, at the peak,\n"
	        "  50%% of it and 200/s.\n"
	        "  handshakes grows to --connections' largest count in three equal rounds:\n"
	        "  handshakes/s and the relay's CPU per bare handshake beside three X25519\n"
	        "  operations timed in the same run, then with CREATE and SUBSCRIBE on each.\n"
	        "  loaded holds --receivers subscribed connections, finds the peak of 4 senders\n"
	        "  -> 4 owners beside them, then runs the senders at 50%% of it while the\n"
	        "  receivers get --receiver-rate envelopes/s each: latency of both sides.\n"
	        "  --quick              shorter runs and fewer connections (about a minute;\n"
	        "                       compare: under three)\n"
	        "  --json               print one JSON object instead of tables\n"
	        "  --senders N          online senders (with --size: only that online shape)\n"
	        "  --size BYTES         online envelope size (default 1024 for the one shape)\n"
	        "  --relay PATH         the cairn-relay binary (default: beside this program,\n"
	        "                       or in the build tree)\n"
	        "  --relay-set K=V      an extra [limits] line for the relay (repeatable)\n"
	        "  --mosquitto PATH     the broker compare starts (default /usr/sbin/mosquitto)\n"
	        "  --window N           online SENDs in flight per sender (default 64)\n"
	        "  --durable-window N   durable SENDs in flight per sender (default 1000)\n"
	        "  --durable-count N    envelopes per durable run (default 200000; quick 50000)\n"
	        "  --duration S         measured seconds per online run (default 5; quick 2)\n"
	        "  --connections N,...  idle connection counts (default 1000,5000,10000,19000;\n"
	        "                       quick 1000,5000)\n"
	        "  --workers N          generator processes for idle connections (connections,\n"
	        "                       handshakes, loaded; default 2)\n"
	        "  --members N,...      group member counts (default 10,100,1000; quick 10,100)\n"
	        "  --cairn-only         group without mosquitto\n"
	        "  --work-bits N        work: bits to solve at (default 20)\n"
	        "  --work-solves N      work: solves to time (default 64; quick 16)\n"
	        "  --file-mib N,...     files: sizes in MiB (default 64,512; quick 16,64)\n"
	        "  --cairn PATH         files: the cairn command (default: beside this program,\n"
	        "                       or in the build tree)\n"
	        "  --store postgresql   durable: each shape on SQLite and on PostgreSQL (a cluster\n"
	        "                       made from scratch, then removed) side by side, with the\n"
	        "                       database's CPU and WAL bytes per envelope\n"
	        "  --receivers N        loaded: subscribed receivers (default 10000; quick 2000)\n"
	        "  --receiver-rate R    loaded: envelopes/s to each receiver (default 1)\n"
	        "  --online-rate R      online: one run at R envelopes/s offered, no peak (its\n"
	        "                       figures in the 50%% row)\n"
	        "  --mark CMD           run CMD LABEL RELAY-PID ENVELOPES where each measured\n"
	        "                       part of online and durable, and each handshake and\n"
	        "                       CREATE + SUBSCRIBE phase, begins and ends, and wait for\n"
	        "                       it (scripts/callgrind-envelope.sh)\n");
}

static void set_defaults(struct bench_opts *o)
{
	o->send_window = 64; /* the relay's default delivery window */
	o->durable_window = 1000;
	o->warmup_s = o->quick ? 0.5 : 1.0;
	o->duration_s = o->quick ? 2.0 : 5.0;
	o->durable_count = o->quick ? 50000 : 200000;
	static const uint32_t full[] = {1000, 5000, 10000, 19000}, quick[] = {1000, 5000};
	const uint32_t *counts = o->quick ? quick : full;
	o->conn_counts_len = o->quick ? 2 : 4;
	memcpy(o->conn_counts, counts, o->conn_counts_len * sizeof(*counts));
	o->conn_workers = 2;
	static const uint32_t members[] = {10, 100, 1000};
	o->group_members_len = o->quick ? 2 : 3;
	memcpy(o->group_members, members, o->group_members_len * sizeof(*members));
	o->file_mib[0] = o->quick ? 16 : 64;
	o->file_mib[1] = o->quick ? 64 : 512;
	o->file_mib_len = 2;
	o->receivers = o->quick ? 2000 : 10000;
	o->receiver_rate = 1.0;
}

/* A list "N,N,..." of 1..MAX into OUT (BENCH_MAX_STEPS at most); returns 0 or -1. */
static int parse_counts(const char *text, uint32_t max, uint32_t out[BENCH_MAX_STEPS], size_t *len)
{
	*len = 0;
	char *end;
	while (*text != '\0' && *len < BENCH_MAX_STEPS) {
		unsigned long n = strtoul(text, &end, 10);
		if (end == text || n == 0 || n > max)
			return -1;
		out[(*len)++] = (uint32_t)n;
		text = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return -1;
	}
	return *len > 0 ? 0 : -1;
}

static int scenario_bit(const char *name)
{
	static const struct {
		const char *name;
		int bit;
	} names[] = {{"online", SC_ONLINE},
	             {"durable", SC_DURABLE},
	             {"connections", SC_CONNECTIONS},
	             {"limit", SC_LIMIT}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].bit;
	return 0;
}

/* Options that take a value; returns 0, or -1 for a bad value or an unknown option. */
static int parse_valued(const char *opt, const char *val, struct bench_opts *o)
{
	if (strcmp(opt, "--relay") == 0)
		o->relay_bin = val;
	else if (strcmp(opt, "--mosquitto") == 0)
		o->mosquitto_bin = val;
	else if (strcmp(opt, "--relay-set") == 0 && o->relay_sets_len < BENCH_MAX_SETS)
		o->relay_sets[o->relay_sets_len++] = val;
	else if (strcmp(opt, "--senders") == 0)
		o->online_senders = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--size") == 0)
		o->online_size = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--window") == 0)
		o->send_window = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--durable-window") == 0)
		o->durable_window = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--durable-count") == 0)
		o->durable_count = strtoull(val, NULL, 10);
	else if (strcmp(opt, "--duration") == 0)
		o->duration_s = strtod(val, NULL);
	else if (strcmp(opt, "--connections") == 0)
		return parse_counts(val, 19900, o->conn_counts, &o->conn_counts_len);
	else if (strcmp(opt, "--members") == 0)
		/* Each member is a connection of this process and of the server. */
		return parse_counts(val, 9000, o->group_members, &o->group_members_len);
	else if (strcmp(opt, "--work-bits") == 0)
		o->work_bits = (unsigned)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--work-solves") == 0)
		o->work_solves = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--file-mib") == 0)
		return parse_counts(val, 2048, o->file_mib, &o->file_mib_len);
	else if (strcmp(opt, "--cairn") == 0)
		o->cli_bin = val;
	else if (strcmp(opt, "--store") == 0 && strcmp(val, "sqlite") == 0)
		o->store = NULL; /* the default */
	else if (strcmp(opt, "--store") == 0 && strcmp(val, "postgresql") == 0)
		o->store = val;
	else if (strcmp(opt, "--receivers") == 0)
		o->receivers = (uint32_t)strtoul(val, NULL, 10);
	else if (strcmp(opt, "--receiver-rate") == 0)
		o->receiver_rate = strtod(val, NULL);
	else if (strcmp(opt, "--online-rate") == 0)
		o->online_rate = strtod(val, NULL);
	else if (strcmp(opt, "--mark") == 0)
		bench_mark_set(val);
	else if (strcmp(opt, "--workers") == 0)
		o->conn_workers = (uint32_t)strtoul(val, NULL, 10);
	else
		return -1;
	return 0;
}

/* Parses ARGV into O and *WHICH. Returns 0, 1 for --help, or -1. */
static int parse_args(int argc, char **argv, struct bench_opts *o, int *which)
{
	/* --quick changes the defaults the other options then override. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			o->quick = true;
	set_defaults(o);
	*which = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--quick") == 0) {
			continue;
		} else if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			return 1;
		} else if (strcmp(a, "--cairn-only") == 0) {
			o->group_cairn_only = true;
		} else if (strcmp(a, "compare") == 0) {
			*which |= SC_COMPARE;
		} else if (strcmp(a, "group") == 0) {
			*which |= SC_GROUP;
		} else if (strcmp(a, "work") == 0) {
			*which |= SC_WORK;
		} else if (strcmp(a, "transport") == 0) {
			*which |= SC_TRANSPORT;
		} else if (strcmp(a, "files") == 0) {
			*which |= SC_FILES;
		} else if (strcmp(a, "nodes") == 0) {
			*which |= SC_NODES;
		} else if (strcmp(a, "handshakes") == 0) {
			*which |= SC_HANDSHAKES;
		} else if (strcmp(a, "loaded") == 0) {
			*which |= SC_LOADED;
		} else if (scenario_bit(a) != 0) {
			*which |= scenario_bit(a);
		} else if (a[0] == '-' && i + 1 < argc && parse_valued(a, argv[i + 1], o) == 0) {
			i++;
		} else {
			fprintf(stderr, "cairn-bench: bad argument '%s'\n", a);
			return -1;
		}
	}
	if (*which == 0)
		*which = SC_ALL;
	if (((*which & SC_COMPARE) && *which != SC_COMPARE) ||
	    ((*which & SC_GROUP) && *which != SC_GROUP) ||
	    ((*which & SC_WORK) && *which != SC_WORK) ||
	    ((*which & SC_TRANSPORT) && *which != SC_TRANSPORT) ||
	    ((*which & SC_FILES) && *which != SC_FILES) ||
	    ((*which & SC_NODES) && *which != SC_NODES) ||
	    ((*which & SC_HANDSHAKES) && *which != SC_HANDSHAKES) ||
	    ((*which & SC_LOADED) && *which != SC_LOADED)) {
		fprintf(stderr,
		        "cairn-bench: compare, group, work, transport, files and nodes run alone, "
		        "without scenario names\n");
		return -1;
	}
	/* Either option alone picks one online shape; the other keeps its usual value (compare
	 * fills in its own). */
	if (*which != SC_COMPARE && *which != SC_GROUP &&
	    (o->online_senders > 0 || o->online_size > 0)) {
		if (o->online_senders == 0)
			o->online_senders = 1;
		if (o->online_size == 0)
			o->online_size = 1024;
	}
	if (o->send_window == 0 || o->durable_window == 0 || o->durable_count == 0 ||
	    o->duration_s <= 0 || o->conn_workers == 0 || o->conn_workers > 16 ||
	    o->online_senders > 64 || o->online_size > 16384 || o->work_bits > 40 ||
	    o->work_solves > 100000 || o->receivers == 0 || o->receivers > 19000 ||
	    o->receiver_rate <= 0) {
		fprintf(stderr, "cairn-bench: a numeric option is out of range\n");
		return -1;
	}
	return 0;
}

/* `compare`: every figure against both servers, then one report. */
static int run_compare(const struct bench_opts *o)
{
	struct compare_results *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 1;
	uint64_t t0 = bench_now_ns();
	int rc = compare_run(o, r);
	r->total_s = (double)(bench_now_ns() - t0) / 1e9;
	bench_note("compare took %.0f s", r->total_s);
	if (o->json)
		report_compare_json(o, r);
	else
		report_compare_table(o, r);
	free(r);
	return rc == 0 ? 0 : 1;
}

/* `group`: every member count against both servers, then one report. */
static int run_group(const struct bench_opts *o)
{
	struct group_results *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 1;
	uint64_t t0 = bench_now_ns();
	int rc = group_run_all(o, r);
	r->total_s = (double)(bench_now_ns() - t0) / 1e9;
	bench_note("group took %.0f s", r->total_s);
	if (o->json)
		report_group_json(o, r);
	else
		report_group_table(o, r);
	free(r);
	return rc == 0 ? 0 : 1;
}

static int run(const struct bench_opts *o, int which, struct bench_results *r)
{
	const struct bench_peer *p = &bench_peer_cairn;
	int rc = 0;
	if (which & SC_LIMIT)
		rc |= scenario_limit(o, r);
	if (which & SC_ONLINE)
		rc |= scenario_online(p, o, r);
	if (which & SC_DURABLE)
		rc |= o->store != NULL ? pgdurable_scenario(o, r) : scenario_durable(p, o, r);
	if (which & SC_CONNECTIONS)
		rc |= scenario_idle(p, o, r);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	memset(&o, 0, sizeof(o));
	int which;
	int rc = parse_args(argc, argv, &o, &which);
	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (which == SC_WORK)
		return sodium_init() < 0 ? 1 : work_bench_run(&o);
	char found[4096];
	o.relay_bin = relayctl_find(o.relay_bin, found, sizeof(found));
	if (o.relay_bin == NULL) {
		fprintf(stderr, "cairn-bench: cairn-relay not found; pass --relay PATH\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	/* A relay that dies mid-write must not take the generator with it. */
	signal(SIGPIPE, SIG_IGN);
	if (which == SC_COMPARE)
		return run_compare(&o);
	if (which == SC_GROUP)
		return run_group(&o);
	if (which == SC_TRANSPORT)
		return transport_run(&o);
	if (which == SC_FILES)
		return files_run(&o);
	if (which == SC_NODES)
		return nodes_run(&o);
	if (which == SC_HANDSHAKES)
		return handshakes_run(&o);
	if (which == SC_LOADED)
		return loaded_run(&o);
	struct bench_results *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 1;
	uint64_t t0 = bench_now_ns();
	rc = run(&o, which, r);
	r->total_s = (double)(bench_now_ns() - t0) / 1e9;
	if (o.json)
		report_json(&o, r);
	else
		report_tables(&o, r);
	free(r->stores);
	free(r);
	return rc == 0 ? 0 : 1;
}
