/* SPDX-License-Identifier: MIT */
/*
 * Integration: fairness (issue 10, "the general property, measured"). One peer sending the
 * worst frames it can compose must not delay another connection. Each test runs a fresh real
 * relay, a legitimate client that PINGs every 5 ms on one connection and every 100 ms does a
 * SEND, delivery and ACK on its own mailbox on another, and beside it one attacker (or
 * ATTACKERS_FEW of them) driven by tests/support/attack.h with one pattern for ATTACK_MS. Checked:
 * the client's PING p99 and the relay's RSS growth stay under their bounds, and every exchange of
 * the client completes; printed per pattern: PING and exchange p50/p99/max, RSS, and what the
 * attacker sent and got.
 *
 * CAIRN_FAIRNESS_SECONDS=N runs each attack N seconds instead; CAIRN_IT_ONLY=GLOB runs only
 * the matching tests (tests/CMakeLists.txt registers one ctest entry per group of tests this way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack.h"
#include "it_common.h"
#include "wrapper.h"

#define ATTACK_MS         (IT_ASAN ? 3000 : 4000) /* each pattern's run */
#define WARM_MS           500                     /* the client alone, before */
#define POST_MS           300                     /* and after */
#define PING_EVERY_MS     5
#define EXCHANGE_EVERY_MS 100   /* between two SEND/delivery/ACK exchanges */
#define STEP_MS           20000 /* a reply later than this fails the client */
#define SAMPLES_MAX       20000
#define ATTACKERS_FEW     3
#define WHY_LEN           160

/*
 * PING p99 bound: 50 ms, what issue 10 asks. Under AddressSanitizer the relay is several times
 * slower and `make test` runs the plain pass beside it on two cores, so the bound there is
 * 250 ms: still far under the seconds that the known attacks cost. Under a wrapper (valgrind)
 * no timing is checked.
 */
#define P99_MS      50
#define P99_ASAN_MS 250

/*
 * The bounds need the machine: `make test` runs the ASan+UBSan pass beside this one on two
 * cores, and a relay that an attacker keeps busy then gets part of a core, whatever it does
 * (fill measured PING p99 72 and 135 ms that way, 10 to 30 ms alone). So the two passes'
 * fairness tests take turns (LOCK_PATH), and the share of the CPUs that processes other than
 * this test's used during the attack is measured: above SHARED_FRACTION the PING bound is
 * SHARED_FACTOR times looser (still far under the seconds the known attacks cost) and the
 * exchange bound, mostly the disk's, twice as loose; above BUSY_FRACTION no timing verdict
 * can be had (a PING p99 of 377 ms was measured with the client alone then): the pattern runs
 * once more on a fresh relay, and if the machine is still that busy only memory is checked.
 */
#define SHARED_FRACTION 0.25
#define SHARED_FACTOR   5
#define BUSY_FRACTION   0.5
#define LOCK_PATH       "/tmp/cairn-test-fairness.lock"

/*
 * The client's SEND, delivery and ACK wait for the disk (the OK to a SEND means durable), so
 * an attacker that keeps the storage thread busy delays them: sharing the disk's bandwidth
 * costs tens to a few hundred milliseconds (FILL measured 470 ms at most), work that grows with
 * the whole store costs seconds (DELETE scanning every envelope: 1.7 to 4.7 s). The bound
 * between.
 */
#define EXCHANGE_BOUND_MS      1000
#define EXCHANGE_BOUND_ASAN_MS 2000

/* The relay's limits in these tests: smaller than the defaults (1 MiB, 1024, 64) so that the
 * memory bound below, which follows from them, is tight enough to see growth in seconds. */
#define OUTPUT_MAX (256 * 1024)
#define INFLIGHT   128
#define WINDOW     16

/* Relay-wide bounds (issue 10 item 7): mailboxes in all, and envelope bytes in all (which also
 * keeps the disk these tests fill small). */
#define MAILBOXES    2048
#define STORED_BYTES (256L << 20)

/*
 * The relay's RSS may grow, over its level with the client alone, by what each attacker's
 * connection may legitimately hold under these limits, plus a fixed allowance:
 * - output: up to 2 x output_buffer_max (beyond that the connection is closed);
 * - requests waiting for the disk: inflight_requests SENDs, each a 16 KiB body and its
 *   bookkeeping (17 KiB);
 * - bodies kept for delivery: 2 x delivery_window x 16 KiB for each mailbox it subscribes
 *   (the patterns keep few mailboxes subscribed with full windows of 16 KiB bodies:
 *   SUBSCRIBED_MAX is an allowance, not a limit of the relay);
 * - input: one 64 KiB frame being read;
 * plus what the relay as a whole keeps per mailbox, about 300 bytes (512 counted here) for
 * each of MAILBOXES, and 8 MiB for the relay as a whole under load (SQLite's 2 MiB page cache and
 * its WAL index, the storage thread's malloc arena, allocator slack; the random mix measured +1.7
 * MiB). What no limit covers does not fit in it for long: tombstones, mailboxes, or envelopes kept
 * in memory, growing with what the attacker sent.
 */
#define SUBSCRIBED_MAX 4
#define PER_ATTACKER_KB                                                                            \
	(2L * OUTPUT_MAX / 1024 + INFLIGHT * 17L + SUBSCRIBED_MAX * 2L * WINDOW * 16 + 64)
#define FIXED_KB (MAILBOXES / 2 + 8L * 1024)

/* ---- CPU accounting: did the test have the machine to itself? ----------------------------- */

/* Jiffies all CPUs spent busy since boot (user, nice, system, irq, softirq, steal). */
static long long machine_busy(void)
{
	long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	if (f == NULL)
		return -1;
	int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
	               &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	return n == 8 ? v[0] + v[1] + v[2] + v[5] + v[6] + v[7] : -1;
}

/* Jiffies process PID used (all its threads), or 0. */
static long long proc_jiffies(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	/* After the name: state, then fields 4..; utime and stime are fields 14 and 15. */
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (long long)(ut + st);
}

/* Jiffies used by this process and its children that have been waited for. */
static long long own_jiffies(void)
{
	struct rusage self, kids;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	double s = self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
	           kids.ru_stime.tv_sec +
	           (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
	            kids.ru_stime.tv_usec) /
	               1e6;
	return (long long)(s * (double)sysconf(_SC_CLK_TCK));
}

struct cpu_mark {
	int64_t ms;
	long long busy, relay, own;
};

static struct cpu_mark cpu_mark(const struct relayproc *r)
{
	return (struct cpu_mark){it_mono_ms(), machine_busy(), proc_jiffies(r->pid), own_jiffies()};
}

/* The share of all CPUs that processes other than the relay, this test and its children used
 * between A and B (0 when it cannot be told). */
static double others_share(const struct cpu_mark *a, const struct cpu_mark *b)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double capacity = (double)(b->ms - a->ms) / 1000.0 * (double)sysconf(_SC_CLK_TCK) *
	                  (double)(cpus > 0 ? cpus : 1);
	if (a->busy < 0 || b->busy < 0 || capacity <= 0)
		return 0;
	long long others = (b->busy - a->busy) - (b->relay - a->relay) - (b->own - a->own);
	return others > 0 ? (double)others / capacity : 0;
}

static bool under_wrapper(void)
{
	return test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0;
}

/* ---- shared with the children ------------------------------------------------------------ */

struct sample {
	int32_t start_ms; /* since t0 */
	int32_t rtt_us;
};

struct series {
	uint32_t n;
	struct sample s[SAMPLES_MAX];
};

struct shared {
	_Atomic int stop, ready;
	int64_t t0_ms;
	int failed;           /* the client lost a reply: its step */
	char why[2][WHY_LEN]; /* what failed, for the pinger and the exchanger */
	struct series ping, exchange;
	struct attack_stats atk[ATTACKERS_FEW];
	int atk_rc[ATTACKERS_FEW];
};

/* ---- the legitimate client (a child process) ---------------------------------------------- */

static void record(struct shared *sh, struct series *s, int64_t start_us)
{
	if (s->n < SAMPLES_MAX)
		s->s[s->n++] = (struct sample){(int32_t)(start_us / 1000 - sh->t0_ms),
		                               (int32_t)(it_mono_us() - start_us)};
}

/* Waits for the reply to RID; ENVELOPEs of the client's own subscription met meanwhile are
 * kept in *ENV_ID (the last one), ENDs are a failure. Returns 0, or -1 with WHY (WHY_LEN bytes)
 * set. */
static int await(char *why, struct tclient *c, uint32_t rid, const char *what, uint64_t *env_id,
                 size_t want_len)
{
	for (;;) {
		struct cairn_msg m;
		int rc = tclient_recv(c, &m, STEP_MS);
		if (rc != 0) {
			snprintf(why, WHY_LEN, "%s: no reply within %d ms (%s)", what, STEP_MS,
			         cairn_strerror(rc));
			return -1;
		}
		if (m.type == CAIRN_REPLY_ENVELOPE) {
			if (env_id != NULL && m.envelope_len == want_len)
				*env_id = m.envelope_id;
			continue;
		}
		if (m.request_id != rid) {
			snprintf(why, WHY_LEN, "%s: %s for request %u", what,
			         cairn_msg_type_name(m.type), m.request_id);
			return -1;
		}
		if (m.type == CAIRN_REPLY_ERROR) {
			snprintf(why, WHY_LEN, "%s: ERROR %u", what, m.code);
			return -1;
		}
		return 0;
	}
}

/* One SEND to its own mailbox, the delivery, and its ACK. */
static int exchange(char *why, struct tclient *c, const struct owner *o, uint32_t *rid)
{
	uint8_t body[300];
	randombytes_buf(body, sizeof(body));
	uint64_t env_id = 0;
	struct cairn_msg snd = {.type = CAIRN_CMD_SEND,
	                        .request_id = (*rid)++,
	                        .sender_id = o->sid,
	                        .envelope = body,
	                        .envelope_len = sizeof(body)};
	if (tclient_send(c, &snd) != 0 || await(why, c, snd.request_id, "SEND", &env_id, 300) != 0)
		return -1;
	int64_t deadline = it_mono_ms() + STEP_MS;
	while (env_id == 0) {
		struct cairn_msg m;
		if (it_mono_ms() > deadline || tclient_recv(c, &m, STEP_MS) != 0) {
			snprintf(why, WHY_LEN, "delivery: nothing within %d ms", STEP_MS);
			return -1;
		}
		if (m.type == CAIRN_REPLY_ENVELOPE && m.envelope_len == sizeof(body))
			env_id = m.envelope_id;
	}
	struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
	                        .request_id = (*rid)++,
	                        .recipient_id = o->rid,
	                        .envelope_id = env_id};
	if (tclient_send(c, &ack) != 0 || await(why, c, ack.request_id, "ACK", NULL, 0) != 0)
		return -1;
	return 0;
}

/*
 * The legitimate client: two connections, so that a late reply on one does not hold up the
 * other's samples. EXCHANGER false: PING every PING_EVERY_MS. EXCHANGER true: its own mailbox,
 * subscribed, and every EXCHANGE_EVERY_MS one SEND, delivery and ACK.
 */
static void legit_child(struct shared *sh, const struct relayproc *r, bool exchanger)
{
	static struct tclient c;
	char *why = sh->why[exchanger];
	struct owner o;
	uint32_t rid = 100;
	if (tclient_connect(&c, r->port, r->pub) != 0 ||
	    (exchanger && (tclient_create(&c, o.rid, o.sid, o.pk, o.sk) != 0 ||
	                   it_simple(&c, CAIRN_CMD_SUBSCRIBE, o.rid) != 0))) {
		snprintf(why, WHY_LEN, "setup failed");
		sh->failed = 1;
		atomic_fetch_add(&sh->ready, 1);
		return;
	}
	atomic_fetch_add(&sh->ready, 1);
	int every = exchanger ? EXCHANGE_EVERY_MS : PING_EVERY_MS;
	int64_t next = it_mono_ms();
	while (!atomic_load(&sh->stop)) {
		int64_t t = it_mono_us();
		if (exchanger) {
			int rc = exchange(why, &c, &o, &rid);
			record(sh, &sh->exchange, t);
			if (rc != 0) {
				sh->failed = 3;
				break;
			}
		} else {
			struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = rid++};
			int rc = tclient_send(&c, &ping);
			if (rc == 0)
				rc = await(why, &c, ping.request_id, "PING", NULL, 0);
			record(sh, &sh->ping, t);
			if (rc != 0) {
				sh->failed = 2;
				break;
			}
		}
		next += every;
		int64_t wait = next - it_mono_ms();
		if (wait > 0)
			it_sleep_ms(wait);
		else
			next = it_mono_ms();
	}
	tclient_close(&c);
}

/* ---- figures ------------------------------------------------------------------------------ */

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

struct figures {
	unsigned n;
	double p50, p99, max; /* ms */
};

/*
 * Round trips of S that started in [FROM, TO) ms after t0. A client that waits for each reply
 * sends no PING while one is late, so a stall would count once however long it lasted: a
 * round trip of R ms also stands for the PINGs due meanwhile, which would have waited
 * R - 5, R - 10, ... ms (the usual correction for coordinated omission). With PERIOD_MS 0,
 * samples count as they are.
 */
static struct figures figures(const struct series *s, int64_t from, int64_t to, int period_ms)
{
	static int32_t v[SAMPLES_MAX * 8];
	const size_t cap = sizeof(v) / sizeof(v[0]);
	struct figures f = {0};
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->s[i].start_ms < from || s->s[i].start_ms >= to)
			continue;
		int32_t rtt = s->s[i].rtt_us;
		for (; rtt > 0 && f.n < cap; rtt -= period_ms * 1000) {
			v[f.n++] = rtt;
			if (period_ms == 0 || rtt < period_ms * 1000)
				break;
		}
	}
	if (f.n > 0) {
		qsort(v, f.n, sizeof(v[0]), cmp_i32);
		f.p50 = v[f.n / 2] / 1000.0;
		f.p99 = v[(f.n * 99) / 100] / 1000.0;
		f.max = v[f.n - 1] / 1000.0;
	}
	return f;
}

static void print_attacker(const char *name, int i, const struct attack_stats *a)
{
	printf("fairness: %s: attacker %d: %llu connections (%llu closed by the relay), %llu "
	       "frames, %.1f MiB, %llu commands; %llu replies (%llu OK, %llu CREATED), %llu "
	       "ENVELOPE, %llu END; writes blocked %lld ms\n",
	       name, i, (unsigned long long)a->connections, (unsigned long long)a->closed_by_relay,
	       (unsigned long long)a->frames, a->bytes_out / 1048576.0,
	       (unsigned long long)a->commands, (unsigned long long)a->replies,
	       (unsigned long long)a->ok, (unsigned long long)a->created,
	       (unsigned long long)a->envelopes, (unsigned long long)a->ends,
	       (long long)a->write_blocked_ms);
	printf("fairness: %s: attacker %d: ERROR by code:", name, i);
	for (int k = 0; k < 16; k++)
		if (a->errors[k] > 0)
			printf(" %d:%llu", k, (unsigned long long)a->errors[k]);
	printf("\nfairness: %s: attacker %d: sent:", name, i);
	for (unsigned g = 0; attack_generator_name(g) != NULL; g++)
		if (a->per_generator[g] > 0)
			printf(" %s %llu;", attack_generator_name(g),
			       (unsigned long long)a->per_generator[g]);
	printf("\n");
}

/* ---- the run ------------------------------------------------------------------------------- */

static pid_t fork_child(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

/* Waits for PID until DEADLINE (ms), killing it then; true if it had to be killed. */
static bool reap(pid_t pid, int64_t deadline)
{
	int status;
	for (;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid || (got < 0 && errno != EINTR))
			return false;
		if (it_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return true;
		}
		it_sleep_ms(10);
	}
}

static int start_relay(struct relayproc *r);

/*
 * Runs PATTERN from ATTACKERS peers for ATTACK_MS x SCALE (or CAIRN_FAIRNESS_SECONDS) and
 * checks the bounds. Returns false if the machine was too busy for a timing verdict (the
 * memory bound was still checked).
 */
static bool run_once(struct relayproc *r, enum attack_pattern pattern, int attackers, double scale)
{
	int attack_ms = (int)(ATTACK_MS * scale);
	if (getenv("CAIRN_FAIRNESS_SECONDS") != NULL && atoi(getenv("CAIRN_FAIRNESS_SECONDS")) > 0)
		attack_ms = atoi(getenv("CAIRN_FAIRNESS_SECONDS")) * 1000;
	char name[64];
	snprintf(name, sizeof(name), "%s x%d", attack_pattern_name(pattern), attackers);
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	sh->t0_ms = it_mono_ms();
	pid_t legit[2];
	for (int i = 0; i < 2; i++) {
		legit[i] = fork_child();
		if (legit[i] == 0) {
			legit_child(sh, r, i == 1);
			_exit(0);
		}
	}
	while (atomic_load(&sh->ready) < 2 && it_mono_ms() - sh->t0_ms < 10000)
		it_sleep_ms(5);
	assert_int_equal(atomic_load(&sh->ready), 2);
	it_sleep_ms(WARM_MS);
	long rss0 = relayproc_rss_kb(r), peak = rss0;
	assert_true(rss0 > 0);

	int64_t from = it_mono_ms() - sh->t0_ms;
	struct cpu_mark cpu0 = cpu_mark(r);
	pid_t pids[ATTACKERS_FEW];
	for (int i = 0; i < attackers; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			/* The attacker's CPU is not the relay's on a real deployment: on a
			 * two-core test machine it yields to the relay and the client. */
			if (setpriority(PRIO_PROCESS, 0, 10) != 0)
				perror("setpriority");
			struct attack_config cfg = {.port = r->port,
			                            .relay_pub = r->pub,
			                            .pattern = pattern,
			                            .seed =
			                                0x5eed0000u + (uint64_t)pattern * 16 + i,
			                            .duration_ms = attack_ms,
			                            .stop = &sh->stop};
			sh->atk_rc[i] = attack_run(&cfg, &sh->atk[i]);
			_exit(0);
		}
	}
	/* RSS every 20 ms while the attack runs, and until the relay answers again. */
	int64_t attack_end = it_mono_ms() + attack_ms;
	int killed = 0;
	for (int i = 0; i < attackers; i++) {
		while (waitpid(pids[i], NULL, WNOHANG) == 0) {
			long rss = relayproc_rss_kb(r);
			peak = rss > peak ? rss : peak;
			if (it_mono_ms() > attack_end + STEP_MS) {
				kill(pids[i], SIGKILL);
				waitpid(pids[i], NULL, 0);
				killed++;
				break;
			}
			it_sleep_ms(20);
		}
	}
	int64_t post_end = it_mono_ms() + POST_MS;
	while (it_mono_ms() < post_end) {
		long rss = relayproc_rss_kb(r);
		peak = rss > peak ? rss : peak;
		it_sleep_ms(20);
	}
	atomic_store(&sh->stop, 1);
	bool legit_stuck = reap(legit[0], it_mono_ms() + STEP_MS + 5000);
	legit_stuck |= reap(legit[1], it_mono_ms() + STEP_MS + 5000);
	struct cpu_mark cpu1 = cpu_mark(r);
	double others = others_share(&cpu0, &cpu1);
	bool shared = others > SHARED_FRACTION, busy = others > BUSY_FRACTION;
	long rss_end = relayproc_rss_kb(r);

	/* During: from the attack's start to the end, since frames the relay read before the
	 * attacker left may still hold it up. */
	struct figures before = figures(&sh->ping, 0, from, PING_EVERY_MS);
	struct figures ping = figures(&sh->ping, from, INT32_MAX, PING_EVERY_MS);
	struct figures ex = figures(&sh->exchange, from, INT32_MAX, 0);
	struct figures ex_before = figures(&sh->exchange, 0, from, 0);
	long bound_kb = attackers * PER_ATTACKER_KB + FIXED_KB;
	printf("fairness: %s: %d ms: client PING before p50 %.2f ms p99 %.2f ms; during (%u) p50 "
	       "%.2f ms p99 %.2f ms max %.2f ms; exchange before p50 %.2f ms, during (%u) p50 "
	       "%.2f ms p99 %.2f ms max %.2f ms\n",
	       name, attack_ms, before.p50, before.p99, ping.n, ping.p50, ping.p99, ping.max,
	       ex_before.p50, ex.n, ex.p50, ex.p99, ex.max);
	printf("fairness: %s: relay RSS %ld KiB with the client alone, peak %ld KiB (+%ld KiB, "
	       "bound +%ld KiB), %ld KiB after; relay CPU %.1f s; other processes used %.0f%% of "
	       "the CPUs%s\n",
	       name, rss0, peak, peak - rss0, bound_kb, rss_end,
	       (double)(cpu1.relay - cpu0.relay) / (double)sysconf(_SC_CLK_TCK), 100 * others,
	       busy     ? ": timing not checked"
	       : shared ? ": timing bounds relaxed"
	                : "");
	for (int i = 0; i < attackers; i++)
		print_attacker(name, i, &sh->atk[i]);
	if (sh->failed)
		printf("fairness: %s: the client failed: %s%s\n", name, sh->why[0], sh->why[1]);
	fflush(stdout);

	/* Verdicts: the attack ran, the client was served throughout, and the bounds held. */
	assert_int_equal(killed, 0);
	assert_false(legit_stuck);
	for (int i = 0; i < attackers; i++) {
		assert_int_equal(sh->atk_rc[i], 0);
		assert_true(sh->atk[i].frames > 0);
	}
	if (sh->failed)
		fail_msg("%s: the client was not served: %s%s", name, sh->why[0], sh->why[1]);
	if (under_wrapper()) {
		printf("fairness: %s: bounds not checked under a wrapper\n", name);
	} else if (busy) {
		/* Memory does not depend on the machine's load. */
		if (!IT_ASAN && peak - rss0 > bound_kb)
			fail_msg("%s: relay RSS grew by %ld KiB (bound %ld KiB)", name, peak - rss0,
			         bound_kb);
	} else {
		double p99_bound = (IT_ASAN ? P99_ASAN_MS : P99_MS) * (shared ? SHARED_FACTOR : 1);
		if (ping.p99 > p99_bound)
			fail_msg("%s: client PING p99 %.2f ms (bound %.0f ms, max %.2f ms)", name,
			         ping.p99, p99_bound, ping.max);
		double ex_bound =
		    (IT_ASAN ? EXCHANGE_BOUND_ASAN_MS : EXCHANGE_BOUND_MS) * (shared ? 2 : 1);
		if (ex.p99 > ex_bound)
			fail_msg("%s: client SEND/delivery/ACK p99 %.2f ms (bound %.0f ms)", name,
			         ex.p99, ex_bound);
		/* ASan's quarantine keeps what went through: memory is checked in the plain
		 * build only. */
		if (!IT_ASAN && peak - rss0 > bound_kb)
			fail_msg("%s: relay RSS grew by %ld KiB (bound %ld KiB)", name, peak - rss0,
			         bound_kb);
	}
	/* The client went on exchanging envelopes during the attack. */
	assert_true(ping.n > 0 && ex.n > 0);
	munmap(sh, sizeof(*sh));
	return !busy || under_wrapper();
}

/* RUN_ONCE, and once more on a fresh relay if the machine was too busy the first time. */
static void run_pattern(struct relayproc *r, enum attack_pattern pattern, int attackers,
                        double scale)
{
	if (run_once(r, pattern, attackers, scale))
		return;
	printf("fairness: %s x%d: the machine was busy: once more\n", attack_pattern_name(pattern),
	       attackers);
	int rc = relayproc_stop(r, SIGTERM);
	relayproc_cleanup(r);
	assert_int_equal(rc, 0);
	assert_int_equal(start_relay(r), 0);
	run_once(r, pattern, attackers, scale);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* Starts a fresh relay in *R with the limits above. Returns 0 or -1. */
static int start_relay(struct relayproc *r)
{
	char limits[512];
	snprintf(limits, sizeof(limits),
	         "output_buffer_max = %d\ninflight_requests = %d\ndelivery_window = %d\n"
	         "max_mailboxes = %d\nmax_stored_bytes = %ld\n",
	         OUTPUT_MAX, INFLIGHT, WINDOW, MAILBOXES, STORED_BYTES);
	if (relayproc_init(r, limits) != 0 || relayproc_start(r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", r->dir);
		relayproc_cleanup(r);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	static struct relayproc r;
	*state = start_relay(&r) == 0 ? &r : NULL;
	return *state != NULL ? 0 : -1;
}

/* Three groups, one ctest entry each (tests/CMakeLists.txt): test_store_* (what the store
 * and its mailboxes cost), test_conn_* (per-connection work and state), test_mix*. */
static void test_store_tombstones(void **state)
{
	run_pattern(*state, ATTACK_TOMBSTONES, 1, 1);
}

/* Half as long again: the larger the store it fills, the more each DELETE costs today. */
static void test_store_delete_storm(void **state)
{
	run_pattern(*state, ATTACK_DELETE_STORM, 1, 1.5);
}

static void test_store_fill(void **state)
{
	run_pattern(*state, ATTACK_FILL, 1, 1);
}

static void test_conn_auth(void **state)
{
	run_pattern(*state, ATTACK_AUTH, 1, 1);
}

static void test_conn_auth_few(void **state)
{
	run_pattern(*state, ATTACK_AUTH, ATTACKERS_FEW, 1);
}

static void test_conn_create_flood(void **state)
{
	run_pattern(*state, ATTACK_CREATE_FLOOD, 1, 1);
}

static void test_mix(void **state)
{
	run_pattern(*state, ATTACK_MIX, 1, 1);
}

static void test_mix_few(void **state)
{
	run_pattern(*state, ATTACK_MIX, ATTACKERS_FEW, 1);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	/* One fairness run at a time on the machine, whichever build it comes from; the lock
	 * goes with the process. */
	int lock = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (lock < 0 || flock(lock, LOCK_EX) != 0)
		perror(LOCK_PATH);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_tombstones, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_store_delete_storm, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_store_fill, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_conn_auth, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_conn_auth_few, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_conn_create_flood, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_mix, setup, it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_mix_few, setup, it_relay_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
