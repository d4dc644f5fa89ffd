/* SPDX-License-Identifier: MIT */
/*
 * What the programs test_it_scale and test_it_scale_limits share: the sizes of each attack,
 * the results the child processes write to shared memory, the driver of hostile peers, the
 * relay's resources and the statistics of a phase. One source (it_scale_common.c) linked into
 * both, so nothing is copied between them. See test_it_scale.c for what the tests do.
 */
#ifndef CAIRN_TEST_IT_SCALE_COMMON_H
#define CAIRN_TEST_IT_SCALE_COMMON_H

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

#include "it_common.h"

/* Hostile peers of each kind (half as many under AddressSanitizer, whose relay is slower). */
#define PER_KIND   (IT_ASAN ? 250 : 500)
#define LEGIT      6
#define PRE_MS     1500                     /* legitimate traffic alone, before */
#define ATTACK_MS  (IT_ASAN ? 8000 : 10000) /* everything at once */
#define POST_MS    1500                     /* legitimate traffic alone, after */
#define HS_TIMEOUT 3                        /* handshake_timeout, s */
#define IDLE_S     5                        /* idle_timeout, s */
#define STEP_MS    5000                     /* a legitimate step slower than this fails */
#define SAMPLES    40000                    /* round trips recorded per legitimate client */
#define HALF_BURST 60000                    /* bytes of the unfinished frame sent at once */

/* The second test: more slow peers than the relay serves. */
#define LIMIT_CONNS  (IT_ASAN ? 500 : 1000)
#define LIMIT_PEERS  (LIMIT_CONNS + LIMIT_CONNS / 5)
#define LIMIT_ATTACK (IT_ASAN ? 5000 : 6000)

/* The third test: a handshake flood against a replay cache of REPLAY_CAP entries. */
#define REPLAY_CAP  4096
#define FLOOD_PEERS 100
#define FLOOD_MS    8000 /* at most; it stops once the relay stops answering handshakes */
#define FLOOD_POST  (HS_TIMEOUT * 1000 + 2000)

/* ---- shared results ------------------------------------------------------------------- */

struct sample {
	int32_t start_ms; /* since the test's t0 */
	int32_t lat_us;   /* whole round trip, or time until it failed */
	int8_t ok;
	int8_t stage; /* where it failed: 1 connect/handshake, 2 AUTH, 3 SEND/delivery, 4 ACK */
};

struct legit_result {
	uint32_t n;
	struct sample s[SAMPLES];
};

struct filler_result {
	uint64_t accepted, quota, other, sent;
	int64_t full_ms; /* since t0, when the first quota error came; -1 never */
	int failed;      /* lost its connection or timed out */
	uint32_t last_code;
};

struct shared {
	_Atomic int stop;
	int64_t t0_ms;
	int64_t deadline_ms; /* children stop by then whatever happens to the test */
	struct owner owners[LEGIT];
	struct filler_result filler;
	struct legit_result legit[LEGIT];
};

/* ---- hostile peers (this process) ------------------------------------------------------ */

enum kind { SLOW_PRE, SLOW_HALF, JUNK_PRE, JUNK_POST, KINDS };
extern const char *const kind_name[KINDS];

enum pstate { P_IDLE, P_CONNECTING, P_HELLO, P_ACTIVE };

struct peer {
	int fd;
	uint8_t kind, state, variant;
	uint16_t msg_len, msg_off; /* message 1 and how much of it went out */
	uint32_t burst_left;       /* of the unfinished frame's first burst */
	int64_t opened_ms, next_ms;
	uint16_t in_len;
	uint8_t in[2 + CAIRN_HANDSHAKE2_MAX];
	uint8_t msg[2 + CAIRN_HANDSHAKE1_MAX];
	struct noise_handshake hs;
	struct cairn_session session;
};

struct kind_stats {
	uint64_t opened, closed, connect_failed, handshakes, bytes_in;
	int64_t life_min, life_max, life_sum;
	int64_t last_handshake_ms;
};

struct driver {
	const struct relayproc *r;
	struct peer *p;
	size_t n;
	struct pollfd *pfd;
	size_t *idx;
	bool closing;
	struct kind_stats st[KINDS];
};

/* ---- the relay's resources, sampled during a run ----------------------------------- */

struct usage {
	long rss0, fds0, cpu0;
	long rss_peak, fds_peak;
	long rss_end_attack, fds_end_attack;
	int64_t next_ms;
};

struct phase_stats {
	unsigned ok, failed, by_stage[5];
	double p50, p99, max; /* ms, successful round trips */
};

/* Contracts: see each function in it_scale_common.c. */
void legit_child(struct shared *sh, const struct relayproc *r, int idx);
void filler_child(struct shared *sh, const struct relayproc *r);
void driver_init(struct driver *d, const struct relayproc *r, const size_t count[KINDS]);
void driver_step(struct driver *d, int timeout_ms);
size_t driver_open(const struct driver *d, int kind);
int64_t driver_oldest(const struct driver *d, int kind);
void driver_close_all(struct driver *d);
void driver_free(struct driver *d);
void sample(const struct relayproc *r, struct usage *u, int64_t now);
int64_t wait_fds_at_most(const struct relayproc *r, long want, int timeout_ms);
long nofile(void);
int setup_scale(void **state);
int setup_limited(void **state);
int setup_small_replay(void **state);
struct phase_stats phase(const struct shared *sh, int n_legit, int64_t from, int64_t to);
void print_phase(const char *test, const char *name, const struct phase_stats *ps);
pid_t fork_child(void);
struct shared *shared_new(const struct relayproc *r, int n_legit);
void shared_free(struct shared *sh);
void start_children(struct shared *sh, const struct relayproc *r, int n_legit, bool filler,
                    int64_t run_ms, pid_t *pids);
int reap_children(const pid_t *pids, int n);

/* The start of each main: libsodium, SIGPIPE ignored, the CAIRN_IT_ONLY filter. Returns 0 or -1. */
int it_scale_init(void);

#endif
