/* SPDX-License-Identifier: MIT */
/*
 * Integration: a 200 MiB file over a bad link (issue 15 part 1). In test_it_censored's world
 * (it_censored_common.[ch]: the relay in one network namespace, the `cairn` clients in another,
 * a veth pair between them), every byte goes through the fault proxy (tests/tools/faultproxy.c:
 * latency with jitter, stalls, resets mid-frame) for the whole transfer; on top of it, 20%
 * random loss (iptables statistic) for part of each direction and a 30 s outage (the link
 * down) in each. The sender's `cairn send --file` and the receiver's `cairn files get` are each
 * SIGKILLed several times mid-transfer and simply run again, as a person would: the file must
 * arrive bit-identical (BLAKE2b-256 of both), and the bytes each direction carried must stay
 * within 10% of the padded size (PROTOCOL.md 11.1: chunks x 16384).
 *
 * The bytes checked are the clients' TCP payload, read by the fault proxy from TCP_INFO on its
 * client side of every connection: bytes received from the sender (the upload) and bytes the
 * receiver acknowledged (the download). That is every byte of Cairn's streams that crossed
 * the client's link (Noise, frames, bucket padding, every chunk sent or fetched again after a
 * kill or a reset, what a killed process had taken but not yet stored), each once: without
 * TCP/IP headers and TCP's retransmissions, which are the network's cost under 20% loss, paid
 * alike by any protocol over TCP (scp too), while a chunk sent twice is Cairn's. Printed beside
 * it: what the proxy forwarded (which also counts bytes written toward a client that was killed
 * before taking them) and the client side's iptables counters (IP packets, headers and
 * retransmissions included; and less the packets the test's loss dropped).
 *
 * CAIRN_FILE_FAULT_MIB sets the size in MiB (default 200; 48 in the ASan build, whose pass runs
 * beside the normal one). Needs root and ip(8) like test_it_censored; without them it skips.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cairn/limits.h"
#include "cliproc.h"
#include "it_common.h"
#include "wrapper.h"
#include "it_censored_common.h"

/* The file in MiB: smaller in the ASan build, whose pass runs beside the normal one. */
#define MIB_DEFAULT  (IT_ASAN ? 48 : 200)
#define LOSS_S       20.0 /* 20% loss this long in each direction */
#define KILLS        3    /* SIGKILLs per side, mid-transfer */
#define RERUNS_MAX   40   /* runs that end in an error before the test gives up */
#define OVERHEAD_MAX 0.10 /* of the padded size, per direction */
/* Below the full size the fixed cost of each interruption (what was in flight when a process
 * was killed or a connection reset, fetched or sent again) weighs more: there the bound is the
 * framing's 4% plus this much per interruption. */
#define MIB_FULL           200
#define INTERRUPTION_BYTES (3u << 19) /* 1.5 MiB */
/* Latency with jitter and a few stalls for every chunk of bytes; the resets are set per phase
 * (phase_start): every connection is cut after 10 to 20% of the padded size. */
#define PROXY_FAULTS "--delay 30 --jitter 20 --chunk 16384 --stall 0.0002 500:2500"

/* ---- the file ------------------------------------------------------------------------ */

/* class(n) of PROTOCOL.md 11.1: n rounded up to keep its five most significant bits. Computed
 * here from the spec rather than taken from proto/file.c, so that the bound does not move with
 * the code it checks. */
static uint64_t size_class(uint64_t n)
{
	if (n <= 32)
		return n;
	unsigned bits = 0;
	for (uint64_t v = n; v != 0; v >>= 1)
		bits++;
	uint64_t step = 1ull << (bits - 5);
	return (n + step - 1) / step * step;
}

/* The bytes of SIZE's entries on the relay: chunks x 16384. */
static uint64_t padded_size(uint64_t size)
{
	uint64_t n = (size + CAIRN_FILE_CHUNK_PLAIN - 1) / CAIRN_FILE_CHUNK_PLAIN;
	return size_class(n > 0 ? n : 1) * CAIRN_LOG_ENTRY_MAX;
}

/* Writes SIZE random bytes to PATH and their BLAKE2b-256 into DIGEST. */
static void make_file(const char *path, uint64_t size, uint8_t digest[32])
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	static uint8_t buf[1 << 20];
	for (uint64_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? (size_t)(size - done) : sizeof(buf);
		randombytes_buf(buf, n);
		crypto_generichash_update(&st, buf, n);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	crypto_generichash_final(&st, digest, 32);
	assert_int_equal(close(fd), 0);
}

/* The BLAKE2b-256 of PATH's content into DIGEST and its size into *SIZE. */
static void digest_file(const char *path, uint8_t digest[32], uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	static uint8_t buf[1 << 20];
	ssize_t n;
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		crypto_generichash_update(&st, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	assert_true(n == 0);
	close(fd);
	crypto_generichash_final(&st, digest, 32);
}

/* ---- counting bytes ------------------------------------------------------------------ */

/* The client end of the link's bytes so far, from /proc/net/dev (this process lives in the
 * clients' namespace): cheap enough to read four times a second, to know how far a transfer
 * is. TX: sent (1) or received (0). */
static uint64_t dev_bytes(bool tx)
{
	FILE *f = fopen("/proc/net/dev", "r");
	assert_non_null(f);
	char line[512];
	uint64_t v = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *colon = strchr(line, ':');
		const char *name = line + strspn(line, " ");
		if (colon == NULL || strncmp(name, DEV_CLIENT ":", strlen(DEV_CLIENT) + 1) != 0)
			continue;
		unsigned long long rx, tx_b;
		/* rx: bytes packets errs drop fifo frame compressed multicast; then tx: bytes. */
		if (sscanf(colon + 1, "%llu %*u %*u %*u %*u %*u %*u %*u %llu", &rx, &tx_b) == 2)
			v = tx ? tx_b : rx;
	}
	fclose(f);
	return v;
}

/* The bytes counted by rule RULE (1: the first) of CHAIN in the clients' namespace: rule 1 is
 * the test's counting rule (every IP packet of the link, headers and TCP's retransmissions
 * included), rule 2 the loss rule while it is there. */
static uint64_t ipt_bytes(const char *chain, int rule)
{
	char out[4096];
	assert_int_equal(sh(out, sizeof(out), "ip netns exec %s %s -w 5 -L %s -v -n -x",
	                    g.ns[NS_CLIENT], g.iptables, chain),
	                 0);
	int n = 0;
	for (char *save, *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long pkts, bytes;
		if (sscanf(line, " %llu %llu", &pkts, &bytes) == 2 && ++n == rule)
			return bytes;
	}
	return 0;
}

/* Starts or ends the 20% loss; at the end, the bytes it dropped are added to DROPPED (in,
 * out): those the test made TCP send again. */
static void loss(struct world *w, bool on, uint64_t dropped[2])
{
	const char *ns = g.ns[NS_CLIENT], *ipt = g.iptables;
	const char *op = on ? "-A" : "-D";
	if (!on) {
		dropped[0] += ipt_bytes("INPUT", 2);
		dropped[1] += ipt_bytes("OUTPUT", 2);
	}
	assert_int_equal(sh(NULL, 0,
	                    "ip netns exec %s %s -w 5 %s INPUT -i " DEV_CLIENT
	                    " -m statistic --mode random --probability " LOSS " -j DROP && "
	                    "ip netns exec %s %s -w 5 %s OUTPUT -o " DEV_CLIENT
	                    " -m statistic --mode random --probability " LOSS " -j DROP",
	                    ns, ipt, op, ns, ipt, op),
	                 0);
	w->lossy = true; /* teardown flushes the chains either way */
}

static void link_state(struct world *w, bool up)
{
	assert_int_equal(
	    sh(NULL, 0, "ip -n %s link set " DEV_RELAY " %s", g.ns[NS_RELAY], up ? "up" : "down"),
	    0);
	w->down = !up;
}

/* What the fault proxy's run that just stopped did: "N bytes up, M down ... K resets". */
struct proxy_stats {
	uint64_t up, down;                 /* forwarded: written to the relay, to the clients */
	uint64_t from_clients, to_clients; /* the clients' TCP: received, acknowledged */
	unsigned conns, stalls, resets;
};

static struct proxy_stats proxy_stats_last(const struct world *w)
{
	struct proxy_stats s = {0};
	FILE *f = fopen(w->proxy_log, "r");
	assert_non_null(f);
	char line[2048], last[2048] = "";
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "faultproxy: seed ", 17) == 0)
			memcpy(last, line, sizeof(last));
	fclose(f);
	const char *p = strstr(last, ": ");
	p = p != NULL ? strstr(p + 2, ": ") : NULL; /* past "seed N, delay D+-J ms" */
	if (p == NULL || sscanf(p, ": %u connections, %" SCNu64 " bytes up, %" SCNu64 " down",
	                        &s.conns, &s.up, &s.down) != 3)
		fail_msg("the fault proxy's report is not there: %s", last);
	const char *st = strstr(p, "chunks held");
	st = st != NULL ? strchr(st, ';') : NULL;
	if (st == NULL || sscanf(st + 1, " %u stalls", &s.stalls) != 1)
		fail_msg("the fault proxy's report has no stalls: %s", last);
	const char *rs = strstr(st, "ms); ");
	if (rs == NULL || sscanf(rs + 5, "%u resets", &s.resets) != 1)
		fail_msg("the fault proxy's report has no resets: %s", last);
	const char *tcp = strstr(rs, "the clients' TCP: ");
	if (tcp == NULL || sscanf(tcp + 18, "%" SCNu64 " bytes received from them, %" SCNu64,
	                          &s.from_clients, &s.to_clients) != 2)
		fail_msg("the fault proxy's report has no TCP counts: %s", last);
	return s;
}

/* ---- one phase: a command run again until it succeeds, with faults on the way --------- */

/* The command of the phase under way, killed by file_teardown when an assertion fails. */
static pid_t running;

struct phase {
	const char *name;
	int who; /* whose home: 0 (A, the sender) or 1 (B, the receiver) */
	bool tx; /* the progress is what the clients send (the upload) or receive */
	uint64_t padded;
	const char *const *args;
	double kill_at[KILLS]; /* fractions of the padded size on the wire */
	double loss_at, outage_at;
	bool kill_early; /* once, 1 s after the first start (the sender: while it encrypts) */
	/* What happened. */
	int runs, kills, errors;
	double t, loss_s, outage_s;
	uint64_t loss_bytes; /* the progress made while the loss lasted */
	struct proxy_stats proxy;
	uint64_t ipt_in, ipt_out, dropped[2]; /* IP bytes counted, and dropped by the loss */
	char last[512]; /* the command's last line of output, for diagnostics */
};

/* Reads what the command printed (a --json progress stream); keeps its last whole line. */
static void drain(int fd, struct phase *p, char *buf, size_t *len, size_t cap)
{
	ssize_t n;
	while ((n = read(fd, buf + *len, cap - 1 - *len)) > 0) {
		*len += (size_t)n;
		buf[*len] = '\0';
		char *start = buf, *nl;
		while ((nl = strchr(start, '\n')) != NULL) {
			*nl = '\0';
			snprintf(p->last, sizeof(p->last), "%s", start);
			start = nl + 1;
		}
		*len -= (size_t)(start - buf);
		memmove(buf, start, *len);
		if (*len + 1 >= cap)
			*len = 0; /* a line longer than the buffer: not ours to keep */
	}
}

/* The deadline of a phase: generous, for a loaded 2-core machine under ASan. */
static double phase_deadline_s(uint64_t padded)
{
	return 300.0 + 3.0 * (double)padded / (1 << 20) * (IT_ASAN ? 3 : 1);
}

/*
 * Runs P's command in W until it exits 0, with the fault proxy already on the way: starts the
 * loss and the outage and kills the command when the bytes on the link reach P's fractions of
 * the padded size, and runs it again after a kill or an error exit (a crash, a signal it did
 * not get from here, fails the test at once).
 */
static void run_phase(struct world *w, struct phase *p)
{
	char errfile[160];
	snprintf(errfile, sizeof(errfile), "%s/%s.err", w->dir, p->name);
	const double start = it_mono_s(), deadline = phase_deadline_s(p->padded);
	const uint64_t base = dev_bytes(p->tx);
	size_t next_kill = 0;
	double t_loss = 0, t_down = 0, t_spawn = 0;
	uint64_t loss_base = 0;
	bool loss_done = false, outage_done = p->outage_at < 0, early_done = !p->kill_early;
	pid_t pid = 0;
	int fd = -1;
	char buf[8192];
	size_t len = 0;
	for (;;) {
		if (pid == 0) {
			pid = cli_spawn_out(CALL(.home = w->home[p->who]), p->args, &fd, errfile);
			running = pid;
			(void)fcntl(fd, F_SETFL, O_NONBLOCK);
			len = 0;
			p->runs++;
			t_spawn = it_mono_s();
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		(void)poll(&pfd, 1, 250);
		drain(fd, p, buf, &len, sizeof(buf));
		double now = it_mono_s();
		double done = (double)(dev_bytes(p->tx) - base) / (double)p->padded;
		if (now - start > deadline)
			fail_msg(
			    "%s: not done after %.0f s (%d runs, %d kills, %d errors; %.0f%% of "
			    "the padded size on the link); its last line: %s; stderr in %s",
			    p->name, deadline, p->runs, p->kills, p->errors, 100 * done, p->last,
			    errfile);
		/* 20% loss for LOSS_S, from LOSS_AT of the way. */
		if (!loss_done && t_loss == 0 && done >= p->loss_at) {
			loss(w, true, p->dropped);
			t_loss = now;
			loss_base = dev_bytes(p->tx);
		} else if (t_loss > 0 && !loss_done && now - t_loss >= LOSS_S) {
			loss(w, false, p->dropped);
			loss_done = true;
			p->loss_s = now - t_loss;
			p->loss_bytes = dev_bytes(p->tx) - loss_base;
		}
		/* The link down for OUTAGE_S, from OUTAGE_AT of the way. */
		if (!outage_done && t_down == 0 && done >= p->outage_at) {
			link_state(w, false);
			t_down = now;
		} else if (t_down > 0 && !outage_done && now - t_down >= OUTAGE_S) {
			link_state(w, true);
			outage_done = true;
			p->outage_s = now - t_down;
		}
		/* A SIGKILL at each fraction of the way (not while the link is down: the kill is
		 * meant to land mid-transfer), and, if asked, one early: 1 s into the first run,
		 * or sooner if a small file reaches the first fraction before that. */
		bool kill_now = false;
		if (!early_done) {
			kill_now = now - t_spawn >= 1.0 || done >= p->kill_at[0];
		} else if (next_kill < KILLS && done >= p->kill_at[next_kill] && !w->down) {
			kill_now = true;
			next_kill++;
		}
		if (kill_now) {
			early_done = true;
			if (kill(pid, SIGKILL) == 0) {
				wait_status(pid);
				running = 0;
				p->kills++;
				pid = 0;
				close(fd);
				fd = -1;
				continue;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) != pid)
			continue;
		drain(fd, p, buf, &len, sizeof(buf));
		close(fd);
		fd = -1;
		pid = running = 0;
		if (WIFSIGNALED(st))
			fail_msg("%s: the command died of signal %d (stderr in %s)", p->name,
			         WTERMSIG(st), errfile);
		if (WEXITSTATUS(st) == 0)
			break;
		if (WEXITSTATUS(st) == 2)
			fail_msg("%s: usage error (stderr in %s)", p->name, errfile);
		/* An error the person sees (the relay out of reach too long, say): they run it
		 * again a moment later. */
		p->errors++;
		if (getenv("CAIRN_TEST_VERBOSE") != NULL)
			fprintf(stderr, "%s: exit %d after %.1f s; last line: %s\n", p->name,
			        WEXITSTATUS(st), it_mono_s() - t_spawn, p->last);
		if (p->errors > RERUNS_MAX)
			fail_msg("%s: %d runs ended in an error (the last %d); its last line: %s; "
			         "stderr in %s",
			         p->name, p->errors, WEXITSTATUS(st), p->last, errfile);
		it_sleep_ms(1000);
	}
	/* Done before a condition ended: lift it now, so the next phase starts clean. */
	if (t_loss > 0 && !loss_done) {
		loss(w, false, p->dropped);
		p->loss_s = it_mono_s() - t_loss;
		p->loss_bytes = dev_bytes(p->tx) - loss_base;
	}
	if (t_down > 0 && !outage_done) {
		link_state(w, true);
		p->outage_s = it_mono_s() - t_down;
	}
	running = 0;
	p->t = it_mono_s() - start;
}

/* Runs a short command of HOME until it exits 0 (the proxy's faults stay on); returns its
 * result, which the caller frees. */
static struct res run_until_ok(const char *home, const char *const *args)
{
	for (int i = 0;; i++) {
		struct res r = cli_run(CALL(.home = home), args);
		if (r.status == 0)
			return r;
		if (i >= RERUNS_MAX)
			fail_msg("cairn %s exited %d %d times: %s", args[0], r.status, i + 1,
			         r.err);
		res_free(&r);
		it_sleep_ms(1000);
	}
}

/* The id of the one file B is offered, from `cairn files --json` (one object per line). */
static void offered_file(const char *home, char *id, size_t cap)
{
	struct res r = run_until_ok(home, ARGS("files", "--json"));
	id[0] = '\0';
	for (char *save, *line = strtok_r(r.out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);
		cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
		if (cJSON_IsString(v)) {
			assert_true(id[0] == '\0'); /* exactly one file */
			snprintf(id, cap, "%s", v->valuestring);
		}
		cJSON_Delete(o);
	}
	if (id[0] == '\0')
		fail_msg("cairn files --json offers no file: %s", r.out);
	res_free(&r);
}

/* ---- the test ------------------------------------------------------------------------ */

static void print_overhead(const char *what, uint64_t bytes, uint64_t padded)
{
	print_message("  %-44s %12" PRIu64 " bytes, %+6.2f%% of the padded size\n", what, bytes,
	              100.0 * ((double)bytes - (double)padded) / (double)padded);
}

static void report_phase(const struct phase *p, uint64_t padded)
{
	print_message("%s: %.1f s, %.2f MB/s of padded size; %d runs: %d SIGKILLs, %d error "
	              "exits; 20%% loss %.0f s (%.1f MB on the link meanwhile); link down %.0f s; "
	              "proxy: %u connections, %u stalls, %u resets\n",
	              p->name, p->t, (double)padded / 1e6 / p->t, p->runs, p->kills, p->errors,
	              p->loss_s, (double)p->loss_bytes / 1e6, p->outage_s, p->proxy.conns,
	              p->proxy.stalls, p->proxy.resets);
	bool up = p->tx;
	print_overhead(up ? "up, the client's TCP payload (checked):"
	                  : "down, the client's TCP payload (checked):",
	               up ? p->proxy.from_clients : p->proxy.to_clients, padded);
	print_overhead(up ? "up, forwarded by the proxy to the relay:"
	                  : "down, forwarded by the proxy to the client:",
	               up ? p->proxy.up : p->proxy.down, padded);
	print_overhead(up ? "up, IP packets (iptables, with TCP's resends):"
	                  : "down, IP packets (iptables, with TCP's resends):",
	               up ? p->ipt_out : p->ipt_in, padded);
	print_overhead(up ? "up, IP packets less those the loss dropped:"
	                  : "down, IP packets less those the loss dropped:",
	               up ? p->ipt_out - p->dropped[1] : p->ipt_in - p->dropped[0], padded);
	print_message("  the other way: %" PRIu64 " bytes at the proxy, %" PRIu64
	              " in IP packets\n",
	              up ? p->proxy.down : p->proxy.up, up ? p->ipt_in : p->ipt_out);
}

/* Fails unless BYTES (P's direction at the proxy) are within the bound for a file of MIB. */
static void check_overhead(const struct phase *p, uint64_t bytes, uint64_t mib)
{
	unsigned interruptions = (unsigned)(p->kills + p->errors) + p->proxy.resets +
	                         (p->outage_s > 0) + (p->loss_s > 0);
	double limit = mib >= MIB_FULL
	                   ? (1 + OVERHEAD_MAX) * (double)p->padded
	                   : 1.04 * (double)p->padded + (double)interruptions * INTERRUPTION_BYTES;
	print_message("%s: %" PRIu64
	              " bytes of the client's TCP payload against a bound of %.0f (%s)\n",
	              p->name, bytes, limit,
	              mib >= MIB_FULL ? "10% over the padded size"
	                              : "4% over the padded size and 1.5 MiB per interruption");
	if ((double)bytes > limit)
		fail_msg("the %s carried %.2f%% more than the padded size", p->name,
		         100.0 * ((double)bytes / (double)p->padded - 1));
}

/* Starts the faulty proxy for one phase on PORT, and zeroes the iptables counters. Every
 * connection is reset after 10 to 20% of PADDED (both ways): several per phase, between the
 * kills. */
static void phase_start(struct world *w, uint16_t port, unsigned seed, uint64_t padded)
{
	char opts[256];
	const char *env = getenv("CAIRN_FAULT_SEED");
	snprintf(opts, sizeof(opts), "--seed %u " PROXY_FAULTS " --reset 1 %" PRIu64 ":%" PRIu64,
	         env != NULL ? (unsigned)strtoul(env, NULL, 10) + seed : seed, padded / 10,
	         padded / 5);
	assert_int_equal(proxy_start(w, port, opts), port);
	assert_int_equal(sh(NULL, 0, "ip netns exec %s %s -w 5 -Z", g.ns[NS_CLIENT], g.iptables),
	                 0);
}

static void phase_end(struct world *w, struct phase *p)
{
	p->ipt_in = ipt_bytes("INPUT", 1);
	p->ipt_out = ipt_bytes("OUTPUT", 1);
	assert_int_equal(proxy_stop(w), 0);
	p->proxy = proxy_stats_last(w);
}

static void test_file_faults(void **state)
{
	need_net();
	not_under_wrapper();
	struct world *w = *state;
	if (g.iptables[0] == '\0')
		fail_msg("no iptables with the statistic match works here (a missing tool)");
	const char *env = getenv("CAIRN_FILE_FAULT_MIB");
	uint64_t mib = env != NULL ? strtoull(env, NULL, 10) : MIB_DEFAULT;
	assert_true(mib >= 1 && mib <= 2048);
	const uint64_t size = mib << 20, padded = padded_size(size);
	double t0 = it_mono_s();

	/* Pairing through a clean proxy; every later byte goes through the same port, faulty. */
	uint16_t port = proxy_start(w, 0, "");
	address_with_port(w, port);
	pair(w->home[0], w->home[1], w->addr, NULL);
	assert_int_equal(proxy_stop(w), 0);
	double t_pair = it_mono_s() - t0;

	char in[128], out[128];
	snprintf(in, sizeof(in), "%s/evidence.bin", w->dir);
	snprintf(out, sizeof(out), "%s/received.bin", w->dir);
	uint8_t want[32], got[32];
	t0 = it_mono_s();
	make_file(in, size, want);
	double t_make = it_mono_s() - t0;

	/* Counting rules first in each chain (the loss rules go after them). */
	assert_int_equal(sh(NULL, 0,
	                    "ip netns exec %s %s -w 5 -I INPUT 1 -i " DEV_CLIENT
	                    " && ip netns exec %s %s -w 5 -I OUTPUT 1 -o " DEV_CLIENT,
	                    g.ns[NS_CLIENT], g.iptables, g.ns[NS_CLIENT], g.iptables),
	                 0);
	w->lossy = true;

	/* The upload: killed while it encrypts, then at 15, 40 and 70% of the way; 20% loss
	 * from 25%, the link down at 55%. */
	struct phase up = {.name = "upload",
	                   .who = 0,
	                   .tx = true,
	                   .padded = padded,
	                   .args = ARGS("send", "bob", "--file", in, "--json"),
	                   .kill_at = {0.15, 0.40, 0.70},
	                   .loss_at = 0.25,
	                   .outage_at = 0.55,
	                   .kill_early = true};
	phase_start(w, port, 1, padded);
	run_phase(w, &up);
	phase_end(w, &up);

	/* B learns of the file (through the faulty proxy still). */
	phase_start(w, port, 2, padded);
	t0 = it_mono_s();
	struct res r = run_until_ok(w->home[1], ARGS("sync"));
	res_free(&r);
	char id[128];
	offered_file(w->home[1], id, sizeof(id));
	double t_offer = it_mono_s() - t0;
	assert_int_equal(proxy_stop(w), 0);

	/* The download: killed at 20, 45 and 75%; 20% loss from 10%, the link down at 60%. */
	struct phase down = {.name = "download",
	                     .who = 1,
	                     .tx = false,
	                     .padded = padded,
	                     .args = ARGS("files", "get", id, "--output", out, "--yes", "--json"),
	                     .kill_at = {0.20, 0.45, 0.75},
	                     .loss_at = 0.10,
	                     .outage_at = 0.60};
	phase_start(w, port, 3, padded);
	run_phase(w, &down);
	phase_end(w, &down);

	t0 = it_mono_s();
	uint64_t got_size;
	digest_file(out, got, &got_size);
	double t_check = it_mono_s() - t0;

	print_message("file of %" PRIu64 " MiB: %" PRIu64 " chunks, padded size %" PRIu64
	              " bytes (+%.2f%%)\n",
	              mib, padded / CAIRN_LOG_ENTRY_MAX, padded,
	              100.0 * ((double)padded - (double)size) / (double)size);
	print_message("phases: pairing %.1f s, making the file %.1f s, upload %.1f s, offer "
	              "(sync, files) %.1f s, download %.1f s, digest %.1f s\n",
	              t_pair, t_make, up.t, t_offer, down.t, t_check);
	report_phase(&up, padded);
	report_phase(&down, padded);

	/* Bit-identical. */
	assert_int_equal(got_size, size);
	assert_memory_equal(got, want, 32);
	/* Every fault happened: the kills landed, the loss and the outage were on the way, and
	 * the proxy reset connections. */
	assert_int_equal(up.kills, KILLS + 1);
	assert_int_equal(down.kills, KILLS);
	assert_true(up.loss_bytes > 0 && down.loss_bytes > 0);
	assert_true(up.outage_s >= OUTAGE_S && down.outage_s >= OUTAGE_S);
	assert_true(up.proxy.resets + down.proxy.resets > 0);
	/* The bytes each way: at least the padded size (everything went through the proxy),
	 * and within 10% of it (below the full size: 4% and a little per interruption). */
	assert_true(up.proxy.from_clients >= padded && down.proxy.to_clients >= padded);
	check_overhead(&up, up.proxy.from_clients, mib);
	check_overhead(&down, down.proxy.to_clients, mib);
}

static int file_teardown(void **state)
{
	if (running > 0) {
		kill(running, SIGKILL);
		wait_status(running);
		running = 0;
	}
	return teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_file_faults, setup, file_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
