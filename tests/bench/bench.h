/* SPDX-License-Identifier: MIT */
/*
 * cairn-bench: what every part of the benchmark shares. A scenario's shape (sizes, counts,
 * durations) and its result say nothing about the server under test; a peer (cairn, or
 * mosquitto for `cairn-bench compare`) implements one function per scenario step, so the
 * scenario drivers in scenarios.c and compare.c run the same shapes against any server.
 */
#ifndef CAIRN_BENCH_H
#define CAIRN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_SETS   16
#define BENCH_MAX_STEPS  8
#define BENCH_MAX_SHAPES 8

struct bench_opts {
	bool quick;
	bool json;
	const char *relay_bin;
	const char *mosquitto_bin;              /* compare: NULL for /usr/sbin/mosquitto */
	const char *relay_sets[BENCH_MAX_SETS]; /* extra "key = value" lines for [limits] */
	size_t relay_sets_len;
	uint32_t online_senders; /* with online_size: run only this online shape */
	uint32_t online_size;
	uint32_t send_window;    /* SENDs in flight per sender, online */
	uint32_t durable_window; /* SENDs in flight per sender, durable */
	double warmup_s;         /* per online run, not measured */
	double duration_s;       /* per online run, measured */
	uint64_t durable_count;  /* envelopes per durable run, over all senders */
	uint32_t conn_counts[BENCH_MAX_STEPS];
	size_t conn_counts_len;
	uint32_t conn_workers; /* generator processes for the connections scenario */
	uint32_t group_members[BENCH_MAX_STEPS]; /* group: one run per count */
	size_t group_members_len;
	bool group_cairn_only; /* group: without mosquitto beside */
	unsigned work_bits;    /* work: bits to solve at (0: WORK_BITS_DEFAULT) */
	uint32_t work_solves;  /* work: solves to time (0: 64, quick 16) */
	/* files (files.c): the cairn command, and the file sizes in MiB. */
	const char *cli_bin;
	uint32_t file_mib[BENCH_MAX_STEPS];
	size_t file_mib_len;
	const char *store; /* durable --store postgresql: beside SQLite (pgdurable.h) */
	uint32_t receivers;   /* loaded: subscribed low-rate receivers */
	double receiver_rate; /* loaded: envelopes/s to each */
	double online_rate;   /* online: one run at this rate alone (0: peak, 50%, 90%) */
};

/* ---- shapes and results ---------------------------------------------------------------- */

struct online_shape {
	uint32_t senders; /* and as many subscribed owners, one mailbox each */
	uint32_t size;    /* envelope bytes */
	uint32_t window;  /* SENDs in flight per sender */
};

struct online_run {
	double target_rate; /* envelopes/s offered over all senders; 0 = as fast as possible */
	double rate;        /* envelopes/s delivered to the owners while measuring */
	uint64_t delivered; /* while measuring */
	double p50_us, p99_us, p999_us, max_us;
	double relay_cpu; /* cores the server used while measuring */
	double gen_cpu;   /* cores the load generator used */
	uint64_t errors;  /* ERROR replies, lost, duplicated or reordered envelopes */
	/* Group runs (fan-out to several receivers) only: messages the sender sent per second
	 * while measuring, and the payload bytes its connection put on the wire per message over
	 * the whole run (sockbytes.h; 0 if the kernel does not say). */
	double msgs_per_s;
	double upload_per_msg;
};

struct online_result {
	struct online_shape shape;
	struct online_run peak, at50, at90;
};

struct durable_shape {
	uint32_t senders;
	uint32_t size;
	uint64_t count; /* over all senders */
	uint32_t window;
};

struct durable_result {
	struct durable_shape shape;
	double send_s, send_rate, send_relay_cpu;
	double drain_s, drain_rate, drain_relay_cpu;
	uint64_t errors;
};

struct idle_step {
	uint32_t connections;
	uint64_t rss_bytes;
	double rss_per_conn; /* (rss_bytes - baseline) / connections */
	double handshakes_per_s;
	double handshake_relay_cpu; /* cores the server used while the handshakes ran */
	double subscribes_per_s;    /* mailbox created and subscribed, per second */
	double subscribe_relay_cpu; /* cores the server used while they were */
	uint32_t failed;
};

struct idle_result {
	uint64_t base_rss;
	struct idle_step steps[BENCH_MAX_STEPS];
	size_t steps_len;
	uint64_t rss_after_close; /* every connection closed again: what stays behind */
};

struct limit_result {
	double loopback_writes_per_s; /* 1 KiB write() calls on a loopback TCP connection */
	double loopback_mib_per_s;
	double aead_ns[4]; /* ChaCha20-Poly1305 IETF seal of 64, 256, 1024, 16384 bytes */
	/* AES-256-GCM (libsodium, hardware AES) seal of 1 KiB, the lever issue 18 names; 0 when
	 * this CPU has no AES instructions. */
	double aes_gcm_1k_ns;
	/* The same seal as the relay's transport makes it (proto/cipher.c): the key taken on
	 * every call, no 512-byte precomputed state per direction; 0 without AES. */
	double aes_gcm_1k_key_ns;
	double x25519_ns;
	double ed25519_verify_ns;
};

struct bench_results {
	struct online_result online[BENCH_MAX_SHAPES];
	size_t online_len;
	struct durable_result durable[BENCH_MAX_SHAPES];
	size_t durable_len;
	struct idle_result idle;
	bool have_idle;
	struct limit_result limit;
	bool have_limit;
	struct store_results *stores; /* durable --store postgresql (pgdurable.h), else NULL */
	double total_s;
};

/* ---- peers ---------------------------------------------------------------------------- */

/* One sender, MEMBERS receivers of everything it sends (cairn: followers of one group log;
 * mosquitto: subscribers of one topic). WINDOW is how many messages may be sent and not yet
 * received by every member. */
struct group_shape {
	uint32_t members;
	uint32_t size; /* message bytes */
	uint32_t window;
};

struct bench_server; /* a running server of some peer */
struct online_session;
struct idle_session;

struct bench_peer {
	const char *name;
	/* Starts a fresh server (empty store, free loopback port). */
	int (*start)(const struct bench_opts *o, struct bench_server **out);
	void (*stop)(struct bench_server *s);
	pid_t (*pid)(const struct bench_server *s);
	/* Online: connects the senders and subscribed owners of SHAPE. */
	int (*online_open)(struct bench_server *s, const struct online_shape *shape,
	                   struct online_session **out);
	/* One measured run at TARGET_RATE envelopes/s (0: as fast as possible). */
	int (*online_run)(struct online_session *os, double target_rate, double warmup_s,
	                  double duration_s, struct online_run *out);
	void (*online_close)(struct online_session *os);
	/* Durable: owners offline, senders push, then owners drain. */
	int (*durable_run)(struct bench_server *s, const struct durable_shape *shape,
	                   struct durable_result *out);
	/* Connections: grows to TOTAL idle subscribed connections, filling STEP's rates. */
	int (*idle_open)(struct bench_server *s, uint32_t workers, struct idle_session **out);
	int (*idle_grow)(struct idle_session *is, uint32_t total, struct idle_step *step);
	void (*idle_close)(struct idle_session *is);
	/* Group: connects SHAPE's sender and members, runs once as fast as the window allows,
	 * and disconnects them; OUT->rate counts deliveries (one per member per message). */
	int (*group_run)(struct bench_server *s, const struct group_shape *shape, double warmup_s,
	                 double duration_s, struct online_run *out);
};

extern const struct bench_peer bench_peer_cairn;
extern const struct bench_peer bench_peer_mosquitto; /* peer_mosquitto.c */
/* compare only: online and durable (the others leave idle and group NULL). */
extern const struct bench_peer bench_peer_mosquitto_tls;             /* peer_mosquitto.c */
extern const struct bench_peer bench_peer_nats, bench_peer_nats_tls; /* peer_nats.c */

/* ---- scenarios (scenarios.c) and reports (report.c) ------------------------------------- */

int scenario_online(const struct bench_peer *p, const struct bench_opts *o,
                    struct bench_results *r);
int scenario_durable(const struct bench_peer *p, const struct bench_opts *o,
                     struct bench_results *r);
int scenario_idle(const struct bench_peer *p, const struct bench_opts *o, struct bench_results *r);
/* The connections scenario into RES alone (compare runs it once per peer). */
int scenario_idle_into(const struct bench_peer *p, const struct bench_opts *o,
                       struct idle_result *res);
int scenario_limit(const struct bench_opts *o, struct bench_results *r);
/* The machine's limits into RES (limit.c). */
int limit_measure(const struct bench_opts *o, struct limit_result *res);
/* One X25519 scalar multiplication (crypto_scalarmult), ns, timed now over 2,000 of them: on
 * the monotonic clock, or in this thread's CPU time when CPU_TIME (as a server's CPU is). */
double limit_x25519_ns(bool cpu_time);

void report_tables(const struct bench_opts *o, const struct bench_results *r);
int report_json(const struct bench_opts *o, const struct bench_results *r);

/* ---- compare: the same shapes against cairn and mosquitto (compare.c) ------------------ */

enum { CMP_CAIRN, CMP_MOSQUITTO, CMP_MOSQUITTO_TLS, CMP_NATS, CMP_NATS_TLS, CMP_PEERS };
enum { GROUP_PEERS = CMP_MOSQUITTO + 1 }; /* group: cairn and mosquitto */

struct compare_side {
	struct online_run peak;  /* as fast as the window allows */
	struct online_run equal; /* at compare_results.equal_rate, the same for both */
	struct online_run at50, at90; /* at 50% and 90% of this side's own peak */
	struct durable_result durable;
	struct idle_result idle;
	bool have_online, have_durable, have_idle;
};

struct compare_results {
	struct online_shape online;
	struct durable_shape durable;
	double equal_rate; /* half the lower of the two peaks */
	struct compare_side side[CMP_PEERS];
	struct limit_result limit;
	bool have_limit;
	double total_s;
};

/* Runs every compare scenario; one that fails leaves its figures out. 0, or -1 if any failed. */
int compare_run(const struct bench_opts *o, struct compare_results *r);
void report_compare_table(const struct bench_opts *o, const struct compare_results *r);
int report_compare_json(const struct bench_opts *o, const struct compare_results *r);

/* ---- group: one sender to N members, cairn beside mosquitto (group.c) ------------------ */

struct group_step {
	struct group_shape shape;
	struct online_run side[GROUP_PEERS];
	bool have[GROUP_PEERS];
};

struct group_results {
	struct group_step steps[BENCH_MAX_STEPS];
	size_t steps_len;
	struct limit_result limit;
	bool have_limit;
	double total_s;
};

/* One step per member count, a fresh server of each peer per step; a side that fails leaves
 * its figures out. 0, or -1 if any failed. */
int group_run_all(const struct bench_opts *o, struct group_results *r);
void report_group_table(const struct bench_opts *o, const struct group_results *r);
int report_group_json(const struct bench_opts *o, const struct group_results *r);

/* `work` (work.c): proof-of-work solve and verify costs, no relay. 0, or 1 on failure. */
int work_bench_run(const struct bench_opts *o);

/* ---- helpers (util.c) ----------------------------------------------------------------- */

/* Monotonic clock in nanoseconds: one clock for every process on the machine. */
uint64_t bench_now_ns(void);
/* Progress line on stderr (stdout carries only the report). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Resident set size of PID in bytes, or 0. */
uint64_t bench_proc_rss(pid_t pid);
/* --mark CMD: bench_mark runs CMD LABEL SERVER-PID ENVELOPES at the edges of each measured
 * part (an online run's measured interval, durable's sending and its drain, the handshakes
 * and the CREATE + SUBSCRIBE of each step of connections, handshakes and loaded) and waits
 * for it;
 * ENVELOPES is 0 where a part begins and the part's envelopes where it ends
 * (scripts/callgrind-envelope.sh dumps callgrind's counts there). Nothing without --mark. */
void bench_mark_set(const char *cmd);
void bench_mark(pid_t server, uint64_t envelopes, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* CPU seconds this process has used. */
double bench_self_cpu_s(void);

/* Latency samples in nanoseconds; percentiles sort them in place. */
struct lat_samples {
	uint32_t *v;
	size_t len, cap;
};
void lat_add(struct lat_samples *s, uint64_t ns);
/* Percentile Q (0..1) in microseconds; 0 when empty. Sorts first. */
double lat_percentile_us(struct lat_samples *s, double q);
/* OUT's p50, p99, p99.9 and max from S. */
void lat_fill(struct lat_samples *s, struct online_run *out);
void lat_reset(struct lat_samples *s);
void lat_free(struct lat_samples *s);

/* A durable run's rates and server CPU into OUT: SENT messages, sending from T0 until every
 * one was acknowledged at T1, draining until T2 (monotonic ns); CPU0..2 the server's CPU
 * seconds at those times. */
void durable_times(struct durable_result *out, uint64_t sent, uint64_t t0, uint64_t t1, uint64_t t2,
                   double cpu0, double cpu1, double cpu2);

/* The timed phases of a run: warm-up, then DURATION_S measured, with the server's and the
 * generator's CPU time read at both ends. A generator's pacer calls phase_tick. */
struct bench_phase {
	pid_t server;
	uint64_t from, to; /* the measured interval, monotonic ns */
	bool measuring;
	double server_cpu0, server_cpu1, gen_cpu0, gen_cpu1;
};
void phase_begin(struct bench_phase *ph, pid_t server, double warmup_s, double duration_s);
/* Starts or ends the measurement as NOW passes FROM and TO; false once it has ended. */
bool phase_tick(struct bench_phase *ph, uint64_t now);
/* Whether an event at NOW counts. */
bool phase_counts(const struct bench_phase *ph, uint64_t now);
/* OUT's relay_cpu and gen_cpu, in cores over the measured interval. */
void phase_cpu(const struct bench_phase *ph, struct online_run *out);

/* A fan-out window: which of one sender's messages (numbered from 0) every one of MEMBERS
 * receivers has. Each receiver gets them in order; a message beyond done + cap is ignored
 * (the sender keeps at most cap unfinished). */
struct fan_window {
	uint32_t *count; /* receivers that have message i, at i % cap */
	uint32_t cap, members;
	uint64_t done; /* messages 0 .. done - 1 are with every receiver */
};
int fan_init(struct fan_window *w, uint32_t cap, uint32_t members);
void fan_got(struct fan_window *w, uint64_t seq);
void fan_free(struct fan_window *w);

/* The send time and sequence number a benchmark message starts with, little-endian. */
#define BENCH_MSG_HEADER 16
void bench_put_le64(uint8_t *p, uint64_t v);
uint64_t bench_get_le64(const uint8_t *p);

#endif
