/* SPDX-License-Identifier: MIT */
/*
 * The censored network of test_it_censored (it_censored_common.h): the two namespaces and the
 * relay, shared by all its tests; one test's world of two people, their listens and messages;
 * the faultproxy; and the driving, reporting and checking of a scenario.
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

/* ---- the namespaces and the relay, shared by all tests ------------------------------- */

struct net g = {.nsfd = {-1, -1}, .rootfd = -1};

/*
 * Runs a shell command line (made here from fixed names, never from input), its output
 * (both streams) in OUT (capacity CAP, may be NULL). Returns the exit status, or -1.
 */
int sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	char buf[4096];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < n && out != NULL && len + 1 < cap; i++)
			out[len++] = buf[i];
	}
	if (out != NULL && cap > 0)
		out[len] = '\0';
	close(p[0]);
	return wait_status(pid);
}

/* Enters the network namespace FD; this process and what it starts live there. */
static void in_ns(int fd)
{
	if (setns(fd, CLONE_NEWNET) != 0) {
		fprintf(stderr, "setns: %s\n", strerror(errno));
		abort(); /* never carry on in the wrong network */
	}
}

/* Kills whatever still runs in namespace NAME and deletes it. Only used on namespaces this
 * test made (its prefix), in this run or in one that was killed. */
static void ns_remove(const char *name)
{
	char pids[4096];
	if (sh(pids, sizeof(pids), "ip netns pids %s", name) == 0) {
		for (char *save, *t = strtok_r(pids, " \n", &save); t != NULL;
		     t = strtok_r(NULL, " \n", &save)) {
			long pid = strtol(t, NULL, 10);
			if (pid > 1 && pid != (long)getpid())
				kill((pid_t)pid, SIGKILL);
		}
	}
	sh(NULL, 0, "ip netns del %s", name);
}

/* Removes namespaces left by a run of this test that was killed (its pid gone, a zombie, or
 * reused by another program). */
static void remove_stale(void)
{
	char list[8192];
	if (sh(list, sizeof(list), "ip netns list") != 0)
		return;
	for (char *save, *line = strtok_r(list, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		long pid;
		char side, name[64];
		if (sscanf(line, "%63s", name) != 1 ||
		    sscanf(name, NS_PREFIX "%ld-%c", &pid, &side) != 2)
			continue;
		/* "PID (COMM) STATE ...": a run in progress is one of the programs built on this
		 * world (test_it_censored, test_it_file_faults), and not a zombie. */
		char path[64], stat[256] = "";
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(stat, sizeof(stat), f) == NULL)
				stat[0] = '\0';
			fclose(f);
		}
		const char *end = strrchr(stat, ')');
		if ((strstr(stat, "(test_it_censore") != NULL ||
		     strstr(stat, "(test_it_file_fa") != NULL) &&
		    end != NULL && end[1] == ' ' && end[2] != 'Z')
			continue;
		print_message("removing %s, left by an earlier run\n", name);
		ns_remove(name);
	}
}

static int net_fail(const char *what, const char *out)
{
	snprintf(g.why, sizeof(g.why), "%s%s%.300s", what, out && out[0] ? ": " : "",
	         out ? out : "");
	g.why[strcspn(g.why, "\n")] = '\0';
	return 0; /* the tests skip; never a failure of the group */
}

int group_setup(void **state)
{
	(void)state;
	char out[1024];
	if (geteuid() != 0)
		return net_fail("network namespaces need root (CAP_NET_ADMIN); not root", NULL);
	if (sh(out, sizeof(out), "ip -V") != 0)
		return net_fail("no usable ip command (iproute2)", out);
	if (find_cli() != 0)
		return net_fail("the cairn command is not built", NULL);
	remove_stale();
	for (int i = 0; i < 2; i++) {
		snprintf(g.ns[i], sizeof(g.ns[i]), NS_PREFIX "%ld-%c", (long)getpid(), "rc"[i]);
		if (sh(out, sizeof(out), "ip netns add %s", g.ns[i]) != 0) {
			g.ns[i][0] = '\0';
			return net_fail("cannot create a network namespace (ip netns add)", out);
		}
	}
	if (sh(out, sizeof(out),
	       "ip -n %s link add " DEV_RELAY " type veth peer name " DEV_CLIENT " netns %s && "
	       "ip -n %s addr add " RELAY_IP "/24 dev " DEV_RELAY " && "
	       "ip -n %s addr add " CLIENT_IP "/24 dev " DEV_CLIENT " && "
	       "ip -n %s link set lo up && ip -n %s link set " DEV_RELAY " up && "
	       "ip -n %s link set lo up && ip -n %s link set " DEV_CLIENT " up",
	       g.ns[0], g.ns[1], g.ns[0], g.ns[1], g.ns[0], g.ns[0], g.ns[1], g.ns[1]) != 0)
		return net_fail("cannot make the veth pair", out);
	g.rootfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		char path[96];
		snprintf(path, sizeof(path), "/run/netns/%s", g.ns[i]);
		g.nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (g.rootfd < 0 || g.nsfd[0] < 0 || g.nsfd[1] < 0)
		return net_fail("cannot open the namespaces", strerror(errno));

	/* Which iptables works in a namespace here (nft or legacy), with the statistic match. */
	const char *ipts[] = {"iptables", "iptables-nft", "iptables-legacy"};
	for (size_t i = 0; i < 3 && g.iptables[0] == '\0'; i++)
		if (sh(NULL, 0,
		       "ip netns exec %s %s -w 5 -A OUTPUT -o lo -m statistic --mode random "
		       "--probability 0.01 -j DROP && ip netns exec %s %s -w 5 -F OUTPUT",
		       g.ns[1], ipts[i], g.ns[1], ipts[i]) == 0)
			snprintf(g.iptables, sizeof(g.iptables), "%s", ipts[i]);
	g.tbf = sh(NULL, 0,
	           "ip netns exec %s tc qdisc add dev lo root tbf rate 1mbit burst 4kb latency "
	           "50ms && ip netns exec %s tc qdisc del dev lo root",
	           g.ns[1], g.ns[1]) == 0;

	/* The relay in its namespace, listening on its end of the link. */
	in_ns(g.nsfd[NS_RELAY]);
	int rc = relayproc_init_at(&g.relay, NULL, RELAY_IP);
	if (rc == 0)
		rc = relayproc_start(&g.relay);
	in_ns(g.nsfd[NS_CLIENT]);
	if (rc != 0)
		return net_fail("cannot start the relay in its namespace", g.relay.dir);
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = g.relay.port};
	memcpy(a.key, g.relay.pub, sizeof(a.key));
	strcpy(a.host, RELAY_IP);
	if (cairn_address_format(&a, g.addr, sizeof(g.addr)) != 0)
		return net_fail("cannot format the relay address", NULL);
	g.ready = true;
	print_message("namespaces %s (relay %s) and %s (clients %s); %s; tbf %s\n", g.ns[0],
	              RELAY_IP, g.ns[1], CLIENT_IP,
	              g.iptables[0] ? g.iptables : "no iptables with statistic",
	              g.tbf ? "works" : "missing");
	return 0;
}

int group_teardown(void **state)
{
	(void)state;
	if (g.rootfd >= 0)
		in_ns(g.rootfd);
	relayproc_cleanup(&g.relay);
	for (int i = 0; i < 2; i++) {
		if (g.nsfd[i] >= 0)
			close(g.nsfd[i]);
		if (g.ns[i][0] != '\0')
			ns_remove(g.ns[i]);
	}
	if (g.rootfd >= 0)
		close(g.rootfd);
	return 0;
}

static const char *const contact_of[2] = {"bob", "alice"};

static const char *const group_name[GROUPS] = {"1:1", "burst", "sent during the outage"};

int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	*state = w;
	w->lsn[0].fd = w->lsn[1].fd = -1;
	if (!g.ready)
		return 0;
	strcpy(w->dir, "/tmp/cairn-itn-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	for (int i = 0; i < 2; i++)
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%c", w->dir, 'A' + i);
	snprintf(w->proxy_log, sizeof(w->proxy_log), "%s/faultproxy.log", w->dir);
	strcpy(w->addr, g.addr);
	return 0;
}

static void listeners_stop(struct world *w, bool check)
{
	for (int i = 0; i < 2; i++) {
		struct listener *l = &w->lsn[i];
		if (l->pid > 0) {
			kill(l->pid, SIGTERM);
			int st = wait_status(l->pid);
			l->pid = 0;
			if (check && st != 0)
				fprintf(stderr, "listen of %c exited %d\n", 'A' + i, st);
			if (check)
				assert_int_equal(st, 0);
		}
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
}

int proxy_stop(struct world *w)
{
	if (w->proxy <= 0)
		return -1;
	kill(w->proxy, SIGTERM);
	int st = wait_status(w->proxy);
	w->proxy = 0;
	return st;
}

/* Lifts every condition this test set, so the checks at its end see a clean network. */
static void lift_conditions(struct world *w)
{
	if (w->lossy)
		sh(NULL, 0, "ip netns exec %s %s -w 5 -F", g.ns[NS_CLIENT], g.iptables);
	if (w->throttled)
		sh(NULL, 0,
		   "ip netns exec %s tc qdisc del dev " DEV_CLIENT " root; ip netns exec %s tc "
		   "qdisc del dev " DEV_RELAY " root",
		   g.ns[NS_CLIENT], g.ns[NS_RELAY]);
	if (w->down)
		sh(NULL, 0, "ip -n %s link set " DEV_RELAY " up", g.ns[NS_RELAY]);
	w->lossy = w->throttled = w->down = false;
}

int teardown(void **state)
{
	struct world *w = *state;
	if (w == NULL)
		return 0;
	listeners_stop(w, false);
	for (size_t i = 0; i < w->n; i++) {
		if (w->m[i].pid > 0) {
			kill(w->m[i].pid, SIGKILL);
			wait_status(w->m[i].pid);
		}
	}
	proxy_stop(w);
	lift_conditions(w);
	if (w->dir[0] != '\0')
		test_rm_tree(w->dir);
	free(w);
	return 0;
}

void need_net(void)
{
	if (!g.ready) {
		print_message("skipped: %s\n", g.why);
		skip();
	}
}

/* Under a wrapper (valgrind: make test-valgrind) every process is many times slower: timings
 * mean nothing there and the whole program would not fit its time. Only the fault proxy runs,
 * with few messages, for what memcheck sees on its error paths (resets mid-frame). */
bool under_wrapper(void)
{
	return test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0;
}

void not_under_wrapper(void)
{
	if (under_wrapper()) {
		print_message(
		    "skipped under a wrapper (valgrind): only test_faultproxy runs there\n");
		skip();
	}
}

/* ---- the faultproxy ------------------------------------------------------------------ */

/* Starts faultproxy in the relay's namespace, listening on RELAY_IP:PORT (0: any) and
 * forwarding to the relay, with EXTRA options. Returns the port it listens on. */
uint16_t proxy_start(struct world *w, uint16_t port, const char *extra)
{
	char listen[32], connect[32];
	snprintf(listen, sizeof(listen), RELAY_IP ":%u", port);
	snprintf(connect, sizeof(connect), RELAY_IP ":%u", g.relay.port);
	int p[2];
	assert_int_equal(pipe(p), 0);
	in_ns(g.nsfd[NS_RELAY]);
	pid_t pid = fork();
	if (pid == 0) {
		int log = open(w->proxy_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(p[1], 1);
		if (log >= 0)
			dup2(log, 2);
		close(p[0]);
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "exec %s --listen %s --connect %s %s",
		         CAIRN_FAULTPROXY_BIN, listen, connect, extra);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	in_ns(g.nsfd[NS_CLIENT]);
	close(p[1]);
	assert_true(pid > 0);
	w->proxy = pid;
	/* "listening HOST:PORT" once it accepts. */
	char line[128] = "";
	size_t len = 0;
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	while (len + 1 < sizeof(line) && strchr(line, '\n') == NULL && poll(&pfd, 1, 5000) > 0) {
		ssize_t n = read(p[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
	}
	close(p[0]);
	const char *colon = strrchr(line, ':');
	assert_non_null(colon);
	long got = strtol(colon + 1, NULL, 10);
	assert_true(got > 0 && got < 65536);
	return (uint16_t)got;
}

/* The relay's address with another port: the proxy's. */
void address_with_port(struct world *w, uint16_t port)
{
	struct cairn_address a;
	assert_int_equal(cairn_address_parse(g.addr, &a), 0);
	a.port = port;
	assert_int_equal(cairn_address_format(&a, w->addr, sizeof(w->addr)), 0);
}

/* ---- listening, sending, and watching ------------------------------------------------ */

void listeners_start(struct world *w)
{
	for (int i = 0; i < 2; i++) {
		char errfile[128];
		snprintf(errfile, sizeof(errfile), "%s/listen-%c.err", w->dir, 'A' + i);
		w->lsn[i].pid = cli_spawn_out(CALL(.home = w->home[i]), ARGS("listen", "--json"),
		                              &w->lsn[i].fd, errfile);
		w->lsn[i].len = 0;
	}
}

/* One line of HOME I's listen: an incoming message, matched to what was sent to I. */
static void listener_line(struct world *w, int i, const char *line, double now)
{
	cJSON *o = cJSON_Parse(line);
	cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
	cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
	cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "contact");
	if (!cJSON_IsString(d) || !cJSON_IsString(t) || !cJSON_IsString(k) ||
	    strcmp(d->valuestring, "in") != 0 || strcmp(k->valuestring, contact_of[i]) != 0) {
		fprintf(stderr, "listen of %c printed an unexpected line: %s\n", 'A' + i, line);
		w->unexpected++;
		cJSON_Delete(o);
		return;
	}
	struct message *m = NULL;
	for (size_t j = 0; j < w->n && m == NULL; j++)
		if (w->m[j].from != i && strcmp(w->m[j].text, t->valuestring) == 0)
			m = &w->m[j];
	if (m == NULL) {
		fprintf(stderr, "listen of %c printed a message nobody sent it: %s\n", 'A' + i,
		        t->valuestring);
		w->unexpected++;
	} else if (m->seen++ == 0) {
		m->t_recv = now;
	} else {
		fprintf(stderr, "listen of %c printed '%s' again\n", 'A' + i, m->text);
	}
	cJSON_Delete(o);
}

/* Waits up to MS for output from the listens and takes in every whole line. */
static void pump(struct world *w, int ms)
{
	struct pollfd pfd[2];
	for (int i = 0; i < 2; i++)
		pfd[i] = (struct pollfd){.fd = w->lsn[i].fd, .events = POLLIN};
	if (poll(pfd, 2, ms) <= 0)
		return;
	double now = it_mono_s();
	for (int i = 0; i < 2; i++) {
		struct listener *l = &w->lsn[i];
		if (l->fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = read(l->fd, l->buf + l->len, sizeof(l->buf) - 1 - l->len);
		if (n <= 0) {
			/* A listen that ends by itself has given up: that is a failure. */
			fprintf(stderr, "listen of %c stopped (exit %d); its stderr is in %s\n",
			        'A' + i, wait_status(l->pid), w->dir);
			l->pid = 0;
			close(l->fd);
			l->fd = -1;
			fail();
		}
		l->len += (size_t)n;
		l->buf[l->len] = '\0';
		char *start = l->buf, *nl;
		while ((nl = strchr(start, '\n')) != NULL) {
			*nl = '\0';
			listener_line(w, i, start, now);
			start = nl + 1;
		}
		l->len -= (size_t)(start - l->buf);
		memmove(l->buf, start, l->len);
	}
}

void plan(struct world *w, int from, bool after_delivery, int group, const char *fmt, ...)
{
	assert_true(w->n < MSGS_MAX);
	struct message *m = &w->m[w->n++];
	memset(m, 0, sizeof(*m));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	m->from = from;
	m->after_delivery = after_delivery;
	m->group = group;
	m->status = -1;
}

/* The usual traffic: ROUNDS ping-pongs, then a burst of COUNT from B to A. */
void plan_traffic(struct world *w, const char *tag, int rounds, int count)
{
	for (int r = 0; r < rounds; r++) {
		plan(w, 0, r > 0, GROUP_ONE, "%s: round %d, a to b", tag, r);
		plan(w, 1, true, GROUP_ONE, "%s: round %d, b to a", tag, r);
	}
	for (int i = 0; i < count; i++)
		plan(w, 1, i == 0, GROUP_BURST, "%s: burst %02d of %d, b to a", tag, i, count);
}

static void reap(struct world *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct message *m = &w->m[i];
		int st;
		if (m->pid <= 0 || waitpid(m->pid, &st, WNOHANG) != m->pid)
			continue;
		m->pid = 0;
		m->t_exit = it_mono_s();
		m->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		/* 0: the relay has it; 3: kept in the outbox for the listen to send. Anything else
		 * is an error the person would see. */
		if (m->status != 0 && m->status != 3)
			fail_msg("cairn send '%s' exited %d", m->text, m->status);
	}
}

/* Starts the next sends: in plan order, one at a time per person, as a person types. */
static void launch(struct world *w)
{
	bool busy[2] = {false, false};
	for (size_t i = 0; i < w->n; i++)
		if (w->m[i].pid > 0)
			busy[w->m[i].from] = true;
	for (size_t i = 0; i < w->n; i++) {
		struct message *m = &w->m[i];
		if (m->launched)
			continue;
		if (busy[m->from] || (m->after_delivery && i > 0 && w->m[i - 1].seen == 0))
			return;
		m->launched = true;
		m->t_launch = it_mono_s();
		m->pid = cli_spawn(CALL(.home = w->home[m->from]),
		                   ARGS("send", contact_of[m->from], m->text));
		busy[m->from] = true;
	}
}

static void outage_tick(struct world *w, double now)
{
	if (w->down_after == 0)
		return;
	if (w->t_down == 0 && w->m[w->down_after].launched) {
		/* Just after a send started: it meets the outage half way. */
		it_sleep_ms(100);
		assert_int_equal(
		    sh(NULL, 0, "ip -n %s link set " DEV_RELAY " down", g.ns[NS_RELAY]), 0);
		w->down = true;
		w->t_down = it_mono_s();
	} else if (w->down && now - w->t_down >= OUTAGE_S) {
		assert_int_equal(sh(NULL, 0, "ip -n %s link set " DEV_RELAY " up", g.ns[NS_RELAY]),
		                 0);
		w->down = false;
		w->t_up = it_mono_s();
	}
}

/* Sends everything planned and waits until every message has arrived. */
void drive(struct world *w, double *t_start)
{
	double start = it_mono_s();
	*t_start = start;
	for (;;) {
		reap(w);
		launch(w);
		outage_tick(w, it_mono_s());
		bool done = true;
		for (size_t i = 0; i < w->n; i++)
			done &= w->m[i].launched && w->m[i].pid == 0 && w->m[i].seen > 0;
		if (done)
			break;
		if (it_mono_s() - start > DEADLINE_S) {
			for (size_t i = 0; i < w->n; i++)
				if (w->m[i].seen == 0)
					fprintf(stderr,
					        "not delivered after %.0f s: '%s' (send %s)\n",
					        DEADLINE_S, w->m[i].text,
					        !w->m[i].launched     ? "not started"
					        : w->m[i].pid > 0     ? "still running"
					        : w->m[i].status == 0 ? "exited 0"
					                              : "exited 3");
			fail_msg("messages were not delivered");
		}
		pump(w, 50);
	}
	/* A little longer, for a late duplicate to show. */
	for (double t = it_mono_s(); it_mono_s() - t < 1.0;)
		pump(w, 100);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Prints the time to deliver of each group of messages. */
void report(const struct world *w, const char *name, double t_start)
{
	double lat[GROUPS][MSGS_MAX], first[GROUPS] = {0}, last[GROUPS] = {0};
	size_t n[GROUPS] = {0};
	int queued = 0;
	for (size_t i = 0; i < w->n; i++) {
		const struct message *m = &w->m[i];
		int k = m->group;
		lat[k][n[k]++] = m->t_recv - m->t_launch;
		queued += m->status == 3;
		if (first[k] == 0 || m->t_launch < first[k])
			first[k] = m->t_launch;
		if (m->t_recv > last[k])
			last[k] = m->t_recv;
	}
	/* CAIRN_TEST_VERBOSE=1: each message's time line, from the start of the scenario. */
	for (size_t i = 0; getenv("CAIRN_TEST_VERBOSE") != NULL && i < w->n; i++) {
		const struct message *m = &w->m[i];
		fprintf(stderr, "  %-36s send +%6.2f .. +%6.2f exit %d, arrived +%6.2f\n", m->text,
		        m->t_launch - t_start, m->t_exit - t_start, m->status, m->t_recv - t_start);
	}
	print_message("%s: %zu messages in %.1f s; %d sends exited 3 (kept in the outbox, then "
	              "sent by the listen)\n",
	              name, w->n, it_mono_s() - t_start, queued);
	for (int k = 0; k < GROUPS; k++) {
		if (n[k] == 0)
			continue;
		qsort(lat[k], n[k], sizeof(double), cmp_double);
		print_message("%s: %s, %zu messages: time to deliver p50 %.2f s, max %.2f s; "
		              "first sent to last arrived %.1f s\n",
		              name, group_name[k], n[k], lat[k][n[k] / 2], lat[k][n[k] - 1],
		              last[k] - first[k]);
	}
}

/*
 * The end of every scenario: the listens stop cleanly, the network is clean again (a proxy
 * still running must be a clean one), and each
 * side's conversation holds every message exactly once, in the right direction, with no
 * other; every outgoing copy shows the relay took it; a last sync finds nothing left over.
 */
void verify(struct world *w)
{
	assert_int_equal(w->unexpected, 0);
	for (size_t i = 0; i < w->n; i++)
		if (w->m[i].seen != 1)
			fail_msg("'%s' was printed %d times", w->m[i].text, w->m[i].seen);
	listeners_stop(w, true);
	lift_conditions(w);
	for (int me = 0; me < 2; me++) {
		struct convo c = read_convo(w->home[me], contact_of[me]);
		size_t in = 0;
		for (size_t i = 0; i < w->n; i++) {
			const struct message *m = &w->m[i];
			int out = m->from == me;
			size_t got = count_text(&c, out, m->text);
			if (got != 1)
				fail_msg("%c holds '%s' %zu times", 'A' + me, m->text, got);
			in += !out;
			for (size_t j = 0; out && j < c.n; j++)
				if (c.m[j].out && strcmp(c.m[j].text, m->text) == 0)
					assert_true(c.m[j].received > 0);
		}
		assert_int_equal(count_dir(&c, 0), in + 1); /* and the pairing message */
		convo_free(&c);
	}
	sync_expect(CALL(.home = w->home[0]), 0, 0);
	sync_expect(CALL(.home = w->home[1]), 0, 0);
}
