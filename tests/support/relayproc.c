/* SPDX-License-Identifier: MIT */
/* The relay process harness (see relayproc.h). CAIRN_RELAY_BIN names the binary under test. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/address.h"
#include "pg_fixture.h"
#include "procscan.h"
#include "relayproc.h"
#include "wrapper.h"

static int run_quiet(char *const argv[], char *out, size_t outcap)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* Read everything, keeping what fits: closing the pipe early would kill the child. */
	size_t len = 0;
	char scratch[512];
	ssize_t n;
	while ((n = read(pipefd[0], scratch, sizeof(scratch))) > 0) {
		size_t take = out == NULL || len + 1 >= outcap ? 0 : (size_t)n;
		if (take > outcap - 1 - len)
			take = outcap - 1 - len;
		if (take > 0)
			memcpy(out + len, scratch, take);
		len += take;
	}
	if (out != NULL)
		out[len] = '\0';
	close(pipefd[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int relayproc_start_https(struct relayproc *r, const char *limits, const char *path,
                          const char *extra, uint16_t *https_port)
{
	*https_port = loopback_free_port();
	char text[2048];
	int n =
	    snprintf(text, sizeof(text), "%s\n[https]\nlisten = 127.0.0.1:%u\npath = %s\n%s",
	             limits != NULL ? limits : "", *https_port, path, extra != NULL ? extra : "");
	if (*https_port == 0 || n < 0 || (size_t)n >= sizeof(text))
		return -1;
	return relayproc_init(r, text) == 0 && relayproc_start(r) == 0 ? 0 : -1;
}

int relayproc_init(struct relayproc *r, const char *limits)
{
	return relayproc_init_at(r, limits, "127.0.0.1");
}

/* ---- the store engine: PostgreSQL when CAIRN_TEST_STORE says so -------------------------- */

struct pgproc *relayproc_pg(void)
{
	return pg_cluster_get();
}

static bool want_pg(void)
{
	const char *store = getenv("CAIRN_TEST_STORE");
	return store != NULL && strcmp(store, "postgresql") == 0;
}

/* A fresh database on the test's cluster for R, in R's config section. Returns 0 or -1. */
static int make_pg_db(struct relayproc *r)
{
	char conninfo[sizeof(r->store) - 64];
	if (pg_fresh_database(conninfo, sizeof(conninfo)) != 0)
		return -1;
	/* The last keyword of the string is the database pg_fresh_database made. */
	const char *db = strstr(conninfo, " dbname=");
	while (db != NULL && strstr(db + 1, " dbname=") != NULL)
		db = strstr(db + 1, " dbname=");
	if (db == NULL || strlen(db + 8) >= sizeof(r->pg_db))
		return -1;
	strcpy(r->pg_db, db + 8);
	return relayproc_use_pg(r, conninfo);
}

static void drop_pg_db(struct relayproc *r)
{
	struct pgproc *pg = pg_cluster.started ? pg_cluster_get() : NULL;
	if (r->pg_db[0] == '\0' || pg == NULL)
		return;
	char sql[96];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", r->pg_db);
	if (pgproc_sql(pg, sql, NULL, 0) != 0)
		fprintf(stderr, "relayproc: could not drop the database %s\n", r->pg_db);
	r->pg_db[0] = '\0';
}

/* Appends R's [store] section to the config file, replacing one written before (always the
 * file's last section). Returns 0 or -1. */
static int write_store(const struct relayproc *r)
{
	char text[4096];
	FILE *f = fopen(r->conf, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	if (n == sizeof(text) - 1)
		return -1;
	text[n] = '\0';
	char *old = strstr(text, "\n[store]\n");
	if (old != NULL)
		old[1] = '\0';
	f = fopen(r->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%s\n%s", text, r->store);
	return fclose(f) == 0 ? 0 : -1;
}

int relayproc_use_pg(struct relayproc *r, const char *conninfo)
{
	int n = snprintf(r->store, sizeof(r->store),
	                 "[store]\nengine = postgresql\nconnection = %s\n", conninfo);
	if (n < 0 || (size_t)n >= sizeof(r->store))
		return -1;
	return write_store(r);
}

int relayproc_set_node(struct relayproc *r, unsigned node)
{
	if (node < 1 || node > 255)
		return -1;
	char *old = strstr(r->store, "\nnode = ");
	if (old != NULL)
		old[1] = '\0';
	size_t len = strlen(r->store);
	int n = snprintf(r->store + len, sizeof(r->store) - len, "node = %u\n", node);
	if (n < 0 || (size_t)n >= sizeof(r->store) - len)
		return -1;
	return write_store(r);
}

int relayproc_join(struct relayproc *r, const struct relayproc *first, unsigned node,
                   const char *limits)
{
	if (relayproc_init(r, limits) != 0)
		return -1;
	char from[300], to[300];
	snprintf(from, sizeof(from), "%s/data/relay.key", first->dir);
	snprintf(to, sizeof(to), "%s/data/relay.key", r->dir);
	char *cp[] = {"/bin/cp", "-p", from, to, NULL};
	if (run_quiet(cp, NULL, 0) != 0)
		return -1;
	drop_pg_db(r); /* a database of its own, if CAIRN_TEST_STORE made one: FIRST's instead */
	memcpy(r->store, first->store, sizeof(r->store));
	memcpy(r->pub, first->pub, sizeof(r->pub));
	return relayproc_set_node(r, node);
}

int relayproc_init_at(struct relayproc *r, const char *limits, const char *host)
{
	memset(r, 0, sizeof(*r));
	struct in_addr probe;
	if (strlen(host) >= sizeof(r->host) || inet_pton(AF_INET, host, &probe) != 1)
		return -1;
	strcpy(r->host, host);
	snprintf(r->dir, sizeof(r->dir), "/tmp/cairn-test-XXXXXX");
	if (mkdtemp(r->dir) == NULL)
		return -1;
	char data[300];
	snprintf(data, sizeof(data), "%s/data", r->dir);
	char *init[] = {CAIRN_RELAY_BIN, "init", "--data", data, NULL};
	if (run_quiet(init, NULL, 0) != 0)
		return -1;
	r->port = loopback_free_port();
	snprintf(r->conf, sizeof(r->conf), "%s/test.conf", r->dir);
	FILE *f = fopen(r->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "[relay]\nlisten = %s:%u\nlog_level = %s\n[limits]\n%s", r->host, r->port,
	        getenv("CAIRN_TEST_LOG") ? getenv("CAIRN_TEST_LOG") : "warn", limits ? limits : "");
	fclose(f);
	if (want_pg() && make_pg_db(r) != 0)
		return -1;
	char out[512];
	char *addr[] = {CAIRN_RELAY_BIN, "address", "--data", data, "--config", r->conf, NULL};
	if (run_quiet(addr, out, sizeof(out)) != 0)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	struct cairn_address a;
	if (cairn_address_parse(out, &a) != 0 || a.port != r->port)
		return -1;
	memcpy(r->pub, a.key, 32);
	return 0;
}

int relayproc_start(struct relayproc *r)
{
	char data[300];
	snprintf(data, sizeof(data), "%s/data", r->dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *argv[TEST_WRAPPER_MAX + 7];
		size_t i = test_wrapper_argv(argv);
		char *bin = r->bin != NULL ? (char *)r->bin : CAIRN_RELAY_BIN;
		char *const run[] = {bin, "run", "--data", data, "--config", r->conf, NULL};
		memcpy(argv + i, run, sizeof(run));
		execv(argv[0], argv);
		_exit(127);
	}
	r->pid = pid;
	/* Up to 5 s; 30 s under a wrapper (valgrind starts slowly). */
	int tries = test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0 ? 3000 : 500;
	for (int i = 0; i < tries; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(r->port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (r->host[0] != '\0')
			inet_pton(AF_INET, r->host, &sa.sin_addr);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return 0;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			r->pid = 0;
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

int relayproc_stop(struct relayproc *r, int sig)
{
	if (r->pid <= 0)
		return -1;
	kill(r->pid, sig);
	int status = 0;
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	r->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* Sends SIG, waits up to TIMEOUT_MS for the exit, then kills. Returns relayproc_stop's status. */
static int stop_within(struct relayproc *r, int sig, int timeout_ms)
{
	kill(r->pid, sig);
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		int status;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return relayproc_stop(r, SIGKILL);
}

void test_rm_tree(const char *dir)
{
	char *rm[] = {"/bin/rm", "-rf", (char *)dir, NULL};
	run_quiet(rm, NULL, 0);
}

void relayproc_cleanup(struct relayproc *r)
{
	/* A relay still running under a wrapper (valgrind) is stopped the clean way, so that the
	 * wrapper's report at exit counts: a SIGKILL would hide its leaks and errors. */
	int status = 0;
	if (r->pid > 0)
		status = test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0
		             ? stop_within(r, SIGTERM, 60000)
		             : relayproc_stop(r, SIGKILL);
	if (r->dir[0] != '\0')
		test_rm_tree(r->dir);
	drop_pg_db(r);
	if (status == TEST_WRAPPER_ERROR_STATUS)
		fail_msg(
		    "the relay in %s exited with status %d: the wrapper found an error (above)",
		    r->dir, status);
}

long relayproc_rss_kb(const struct relayproc *r)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)r->pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

long relayproc_fds(const struct relayproc *r)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)r->pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	long n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 2;
}

long relayproc_cpu_ms(const struct relayproc *r)
{
	double s = proc_cpu_s(r->pid);
	return s < 0 ? -1 : (long)(s * 1000 + 0.5);
}

int relayproc_run_second(const struct relayproc *r, uint16_t port, int timeout_ms)
{
	char data[300], conf[340], listen[32];
	snprintf(data, sizeof(data), "%s/data", r->dir);
	snprintf(conf, sizeof(conf), "%s/second.conf", r->dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	FILE *f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	/* The same store: a second relay on the same data is refused whatever its engine. */
	fprintf(f, "[relay]\nlisten = %s\n%s", listen, r->store);
	fclose(f);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl(CAIRN_RELAY_BIN, CAIRN_RELAY_BIN, "run", "--data", data, "--config", conf,
		      (char *)NULL);
		_exit(127);
	}
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

int relayproc_address(const struct relayproc *r, const char *host, char *out, size_t cap)
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = r->port};
	memcpy(a.key, r->pub, sizeof(a.key));
	if (strlen(host) >= sizeof(a.host))
		return -1;
	strcpy(a.host, host);
	return cairn_address_format(&a, out, cap) == 0 ? 0 : -1;
}

bool tcp_established_from(const char *host, uint16_t port, const char *from)
{
	struct in_addr want, peer;
	if (inet_pton(AF_INET, host, &want) != 1 || inet_pton(AF_INET, from, &peer) != 1)
		return false;
	FILE *f = fopen("/proc/net/tcp", "r");
	if (f == NULL)
		return false;
	char line[512];
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned la, lp, ra, rp, st;
		/* "sl: local:port remote:port st": addresses in the kernel's byte order, as s_addr. */
		if (sscanf(line, " %*d: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp, &st) == 5 &&
		    st == 1 /* ESTABLISHED */ && la == want.s_addr && lp == port && ra == peer.s_addr)
			found = true;
	}
	fclose(f);
	return found;
}
