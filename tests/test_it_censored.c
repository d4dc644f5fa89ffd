/* SPDX-License-Identifier: MIT */
/*
 * Integration: a censored network. The real relay runs in one network namespace, the real
 * `cairn` clients (and this test) in another, joined by a veth pair. Between them, built from
 * what the kernel has: random loss (iptables statistic), throttling (tc tbf), a 30 s outage
 * (the relay's end of the link down: nothing gets through, and a new connection fails once ARP
 * gives up, after about 3 s), and the project's fault-injecting proxy (tests/tools/faultproxy.c:
 * latency with jitter, stalls, resets mid-frame). Both people keep `cairn listen --json` running
 * and type with `cairn send`; every message must arrive exactly once, and each scenario prints its
 * time to deliver (from the start of `cairn send` to the line in the other side's listen).
 *
 * Needs root (CAP_NET_ADMIN) and ip(8); without them it prints why and skips. Namespaces are
 * called cairnt-<pid>-r and -c; those of a run that was killed are removed at the start.
 *
 * The scenarios are here; the network, the world of a test and the driving and checking
 * they share are it_censored_common.[ch] (one program: its tests share the namespaces).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "it_common.h"
#include "wrapper.h"
#include "it_censored_common.h"

/* ---- (a) random loss ----------------------------------------------------------------- */

/* Packets counted and dropped by the rules of CHAIN (two rules: count, then drop). */
static void loss_counters(const char *chain, unsigned long *total, unsigned long *dropped)
{
	char out[4096];
	assert_int_equal(sh(out, sizeof(out), "ip netns exec %s %s -w 5 -L %s -v -n -x",
	                    g.ns[NS_CLIENT], g.iptables, chain),
	                 0);
	*total = *dropped = 0;
	int rule = 0;
	for (char *save, *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long pkts;
		if (sscanf(line, " %lu", &pkts) != 1)
			continue; /* the headings */
		if (rule++ == 0)
			*total = pkts;
		else
			*dropped = pkts;
	}
}

static void test_random_loss(void **state)
{
	need_net();
	not_under_wrapper();
	struct world *w = *state;
	if (g.iptables[0] == '\0') {
		print_message("skipped: no iptables with the statistic match works here\n");
		skip();
	}
	pair(w->home[0], w->home[1], w->addr, NULL);
	listeners_start(w);
	/* 20% of the packets dropped each way, at the clients' end of the link. */
	w->lossy = true;
	const char *ns = g.ns[NS_CLIENT], *ipt = g.iptables;
	assert_int_equal(sh(NULL, 0,
	                    "ip netns exec %s %s -w 5 -A INPUT -i " DEV_CLIENT " && "
	                    "ip netns exec %s %s -w 5 -A INPUT -i " DEV_CLIENT
	                    " -m statistic --mode random --probability " LOSS " -j DROP && "
	                    "ip netns exec %s %s -w 5 -A OUTPUT -o " DEV_CLIENT " && "
	                    "ip netns exec %s %s -w 5 -A OUTPUT -o " DEV_CLIENT
	                    " -m statistic --mode random --probability " LOSS " -j DROP",
	                    ns, ipt, ns, ipt, ns, ipt, ns, ipt),
	                 0);
	plan_traffic(w, "loss", 2, LOSS_BURST);
	double t0;
	drive(w, &t0);
	unsigned long tin, din, tout, dout;
	loss_counters("INPUT", &tin, &din);
	loss_counters("OUTPUT", &tout, &dout);
	report(w, "loss " LOSS, t0);
	print_message("loss " LOSS ": packets dropped: %lu of %lu in (%.0f%%), %lu of %lu out "
	              "(%.0f%%)\n",
	              din, tin, tin ? 100.0 * (double)din / (double)tin : 0, dout, tout,
	              tout ? 100.0 * (double)dout / (double)tout : 0);
	assert_true(din > 0 && dout > 0); /* the loss was real */
	verify(w);
}

/* ---- (b) throttling ------------------------------------------------------------------ */

static void tbf_counters(int ns, const char *dev)
{
	char out[2048];
	assert_int_equal(
	    sh(out, sizeof(out), "ip netns exec %s tc -s qdisc show dev %s", g.ns[ns], dev), 0);
	unsigned long bytes = 0, pkts = 0, dropped = 0, over = 0;
	const char *s = strstr(out, "Sent ");
	if (s != NULL)
		sscanf(s, "Sent %lu bytes %lu pkt (dropped %lu, overlimits %lu", &bytes, &pkts,
		       &dropped, &over);
	print_message("tbf " RATE " on %s: %lu bytes in %lu packets, %lu dropped, %lu over the "
	              "limit\n",
	              dev, bytes, pkts, dropped, over);
}

static void test_throttled(void **state)
{
	need_net();
	not_under_wrapper();
	struct world *w = *state;
	if (!g.tbf) {
		print_message("skipped: the tbf qdisc does not work here\n");
		skip();
	}
	pair(w->home[0], w->home[1], w->addr, NULL);
	listeners_start(w);
	w->throttled = true;
	assert_int_equal(
	    sh(NULL, 0,
	       "ip netns exec %s tc qdisc add dev " DEV_CLIENT " root tbf rate " RATE
	       " burst 4kb latency 500ms && ip netns exec %s tc qdisc add dev " DEV_RELAY
	       " root tbf rate " RATE " burst 4kb latency 500ms",
	       g.ns[NS_CLIENT], g.ns[NS_RELAY]),
	    0);
	plan_traffic(w, "tbf", 2, TBF_BURST);
	double t0;
	drive(w, &t0);
	report(w, "tbf " RATE, t0);
	tbf_counters(NS_CLIENT, DEV_CLIENT);
	tbf_counters(NS_RELAY, DEV_RELAY);
	verify(w);
}

/* ---- (c) an outage of 30 s ----------------------------------------------------------- */

static void test_outage(void **state)
{
	need_net();
	not_under_wrapper();
	struct world *w = *state;
	pair(w->home[0], w->home[1], w->addr, NULL);
	listeners_start(w);
	/* The burst is under way when the link goes: a send is half done, and the ones after it,
	 * from both people, meet silence (each waits out its timeout and exits 3, queued). */
	plan_traffic(w, "outage", 1, OUTAGE_BURST);
	w->down_after = w->n;
	plan(w, 1, false, GROUP_OUTAGE, "outage: half way, b to a");
	plan(w, 0, false, GROUP_OUTAGE, "outage: during, a to b");
	for (int i = 0; i < 6; i++)
		plan(w, 1, false, GROUP_OUTAGE, "outage: during %02d, b to a", i);
	double t0;
	drive(w, &t0);
	report(w, "outage", t0);
	double last = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->m[i].t_recv > last)
			last = w->m[i].t_recv;
	print_message("outage: link down %.1f s (from +%.1f s); the last message arrived %.1f s "
	              "after it came back\n",
	              w->t_up - w->t_down, w->t_down - t0, last - w->t_up);
	assert_true(w->t_up > w->t_down);
	verify(w);
}

/* ---- (d) latency, stalls and resets through faultproxy ------------------------------- */

static void test_faultproxy(void **state)
{
	need_net();
	struct world *w = *state;
	/* Pairing through a clean proxy; then the same port, with faults. */
	uint16_t port = proxy_start(w, 0, "");
	address_with_port(w, port);
	pair(w->home[0], w->home[1], w->addr, NULL);
	proxy_stop(w);
	const char *seed = getenv("CAIRN_FAULT_SEED") ? getenv("CAIRN_FAULT_SEED") : "1";
	char opts[256];
	snprintf(opts, sizeof(opts),
	         "--seed %s --delay 800 --jitter 400 --chunk 700 --stall 0.02 1000:4000 "
	         "--reset 0.5 200:6000",
	         seed);
	assert_int_equal(proxy_start(w, port, opts), port);
	listeners_start(w);
	plan_traffic(w, "proxy", 1, under_wrapper() ? 2 : PROXY_BURST);
	double t0;
	drive(w, &t0);
	report(w, "faultproxy", t0);
	int st = proxy_stop(w);
	assert_int_equal(st, 0);
	char log[2048] = "";
	FILE *f = fopen(w->proxy_log, "r");
	if (f != NULL) {
		size_t n = fread(log, 1, sizeof(log) - 1, f);
		log[n] = '\0';
		fclose(f);
	}
	/* The second line: the faulty run (the first is the clean one used for pairing). */
	const char *faulty = strstr(log, "seed ");
	faulty = faulty != NULL ? strstr(faulty + 1, "faultproxy: seed ") : NULL;
	print_message("%s", faulty != NULL ? faulty : log);
	assert_int_equal(proxy_start(w, port, ""), port); /* a clean path for the last checks */
	verify(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_random_loss, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_throttled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_faultproxy, setup, teardown),
	};
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
