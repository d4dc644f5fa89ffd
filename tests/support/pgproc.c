/* SPDX-License-Identifier: MIT */
/* The PostgreSQL harness (see pgproc.h). CAIRN_PG_BINDIR names Debian's server binaries. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgproc.h"
#include "procscan.h"

/* Who runs PostgreSQL when the test is root: nobody, whose ids Debian fixes. */
#define PG_UID 65534
#define PG_GID 65534

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* In a child: becomes the unprivileged user when root. Returns 0 or -1. */
static int drop_root(void)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setgid(PG_GID) != 0 || setuid(PG_UID) != 0)
		return -1;
	return 0;
}

/* Hands PATH to the unprivileged user when root. */
static int give(const char *path)
{
	if (geteuid() != 0)
		return 0;
	return chown(path, PG_UID, PG_GID);
}

/* Prints the last part of the server's log of P, for a failure's reason. */
static void show_log(const struct pgproc *p)
{
	char log[300], text[4096];
	snprintf(log, sizeof(log), "%s.log", p->dir);
	FILE *f = fopen(log, "r");
	if (f == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof(text) - 1)
		fseek(f, -(long)(sizeof(text) - 1), SEEK_END);
	else
		rewind(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	fprintf(stderr, "pgproc: %s's log ends:\n%s\n", p->dir, text);
}

/*
 * Runs CAIRN_PG_BINDIR/PROG with ARGV (NULL-terminated, ARGV[0] is PROG) as the unprivileged
 * user, stdout to OUT (capacity CAP, may be NULL) and stderr to ours. Returns the exit code,
 * or -1 if it could not run.
 */
static int run(char *out, size_t cap, char *const argv[])
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", CAIRN_PG_BINDIR, argv[0]);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		if (drop_root() != 0 || chdir("/") != 0)
			_exit(126);
		execv(path, argv);
		_exit(127);
	}
	close(fds[1]);
	size_t got = 0;
	char sink[512];
	for (;;) {
		char *at = out != NULL && got + 1 < cap ? out + got : sink;
		size_t room = out != NULL && got + 1 < cap ? cap - 1 - got : sizeof(sink);
		ssize_t n = read(fds[0], at, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (at != sink)
			got += (size_t)n;
	}
	close(fds[0]);
	if (out != NULL && cap > 0) {
		out[got] = '\0';
		while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
			out[--got] = '\0';
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int set_dir(struct pgproc *p, const char *dir, uint16_t port)
{
	memset(p, 0, sizeof(*p));
	if (strlen(dir) >= sizeof(p->dir) - 8)
		return -1;
	strcpy(p->dir, dir);
	p->port = port;
	snprintf(p->conninfo, sizeof(p->conninfo),
	         "host=127.0.0.1 port=%u user=cairn dbname=cairn connect_timeout=5", port);
	return 0;
}

/* Lets the unprivileged user reach DIR's entries through its parent (search permission). */
static int open_parent(const char *dir)
{
	char parent[256];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent)
		return 0;
	*slash = '\0';
	struct stat st;
	if (stat(parent, &st) != 0)
		return -1;
	return chmod(parent, (st.st_mode & 07777) | S_IXOTH);
}

int pgproc_init(struct pgproc *p, const char *dir, uint16_t port)
{
	if (set_dir(p, dir, port) != 0)
		return -1;
	char path[256];
	snprintf(path, sizeof(path), "%s/postgres", CAIRN_PG_BINDIR);
	if (access(path, X_OK) != 0) {
		fprintf(stderr, "pgproc: PostgreSQL is not installed here (%s: %s)\n", path,
		        strerror(errno));
		return 1;
	}
	if (open_parent(dir) != 0 || mkdir(dir, 0700) != 0 || give(dir) != 0) {
		fprintf(stderr, "pgproc: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char *initdb[] = {"initdb", "-D", p->dir,       "-U",         "cairn",
	                  "-E",     "UTF8", "--auth=trust", "--locale=C", NULL};
	if (run(NULL, 0, initdb) != 0) {
		fprintf(stderr, "pgproc: initdb %s failed\n", dir);
		return -1;
	}
	if (pgproc_start(p) != 0)
		return -1;
	char port_arg[8];
	snprintf(port_arg, sizeof(port_arg), "%u", port);
	char *create[] = {"psql", "-X", "-q",       "-h", "127.0.0.1",
	                  "-p",   port_arg, "-U",   "cairn", "-d",
	                  "postgres", "-c", "CREATE DATABASE cairn", NULL};
	if (run(NULL, 0, create) != 0) {
		fprintf(stderr, "pgproc: CREATE DATABASE failed\n");
		show_log(p);
		return -1;
	}
	return 0;
}

int pgproc_standby(struct pgproc *s, const struct pgproc *primary, const char *dir,
                   uint16_t port)
{
	if (set_dir(s, dir, port) != 0 || open_parent(dir) != 0 || mkdir(dir, 0700) != 0 ||
	    give(dir) != 0)
		return -1;
	char from[96];
	snprintf(from, sizeof(from), "host=127.0.0.1 port=%u user=cairn", primary->port);
	/* No sync of the copy (-N): the standby's first start syncs its whole data directory
	 * anyway (it starts from a backup, not a clean shutdown), so the copy's own sync only
	 * doubled the wait (4 to 7 s of a 14 s standby on a busy machine). */
	char *backup[] = {"pg_basebackup", "-d", from,   "-D", s->dir, "-R", "-N", "-X",
	                  "stream",        "-c", "fast", NULL};
	if (run(NULL, 0, backup) != 0) {
		fprintf(stderr, "pgproc: pg_basebackup of %s failed\n", primary->dir);
		return -1;
	}
	/* Named, so the primary can wait for it; a later line overrides -R's. */
	char conf[300];
	snprintf(conf, sizeof(conf), "%s/postgresql.auto.conf", s->dir);
	FILE *f = fopen(conf, "a");
	if (f == NULL)
		return -1;
	fprintf(f, "primary_conninfo = 'host=127.0.0.1 port=%u user=cairn application_name=standby'\n",
	        primary->port);
	fclose(f);
	if (give(conf) != 0 || pgproc_start(s) != 0)
		return -1;
	/* Set on the primary only after the copy, so a promoted standby does not wait for a
	 * standby of its own that nobody made. */
	if (pgproc_sql(primary, "ALTER SYSTEM SET synchronous_standby_names = 'standby'", NULL, 0) !=
	        0 ||
	    pgproc_sql(primary, "SELECT pg_reload_conf()", NULL, 0) != 0)
		return -1;
	char state[32] = "";
	for (int waited = 0; waited < 30000; waited += 100) {
		if (pgproc_sql(primary,
		               "SELECT sync_state FROM pg_stat_replication "
		               "WHERE application_name = 'standby'",
		               state, sizeof(state)) == 0 &&
		    strcmp(state, "sync") == 0)
			return 0;
		nap_ms(100);
	}
	fprintf(stderr, "pgproc: the standby %s never became synchronous (%s)\n", dir, state);
	show_log(s);
	return -1;
}

int pgproc_standby_pair(struct pgproc *s, const struct pgproc *primary, const char *dir,
                        char *conninfo, size_t cap)
{
	if (pgproc_standby(s, primary, dir, loopback_free_port()) != 0)
		return -1;
	int n = snprintf(conninfo, cap,
	                 "host=127.0.0.1,127.0.0.1 port=%u,%u user=cairn dbname=cairn "
	                 "target_session_attrs=read-write connect_timeout=2",
	                 primary->port, s->port);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Whether P accepts connections (pg_isready). */
static int ready(const struct pgproc *p)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", p->port);
	char *argv[] = {"pg_isready", "-q", "-h", "127.0.0.1", "-p", port, NULL};
	return run(NULL, 0, argv) == 0;
}

int pgproc_start(struct pgproc *p)
{
	if (p->pid > 0)
		return 0;
	char log[300], path[256], port[32], sock[300];
	snprintf(log, sizeof(log), "%s.log", p->dir);
	snprintf(path, sizeof(path), "%s/postgres", CAIRN_PG_BINDIR);
	snprintf(port, sizeof(port), "port=%u", p->port);
	snprintf(sock, sizeof(sock), "unix_socket_directories=%s", p->dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Its own process group: pgproc_kill takes every server process at once. */
		setpgid(0, 0);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (drop_root() != 0 || chdir("/") != 0)
			_exit(126);
		char *argv[] = {path,
		                "-D",
		                p->dir,
		                "-c",
		                "listen_addresses=127.0.0.1",
		                "-c",
		                port,
		                "-c",
		                sock,
		                "-c",
		                "max_connections=100",
		                "-c",
		                "wal_level=replica",
		                "-c",
		                "max_wal_senders=4",
		                "-c",
		                "logging_collector=off",
		                NULL};
		execv(path, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	p->pid = pid;
	for (int waited = 0; waited < 60000; waited += 50) {
		if (ready(p))
			return 0;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			p->pid = 0;
			break;
		}
		nap_ms(50);
	}
	fprintf(stderr, "pgproc: the server in %s did not start\n", p->dir);
	show_log(p);
	pgproc_kill(p);
	return -1;
}

/* Waits until no process of P's group is left. */
static void reap(struct pgproc *p)
{
	while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
		;
	for (int waited = 0; waited < 10000 && kill(-p->pid, 0) == 0; waited += 10)
		nap_ms(10);
	p->pid = 0;
}

void pgproc_stop(struct pgproc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGINT);
	reap(p);
}

void pgproc_kill(struct pgproc *p)
{
	if (p->pid <= 0)
		return;
	/* Each backend of PostgreSQL is in a session of its own (it calls setsid), so killing
	 * the postmaster's group leaves them running until they notice its death, and a commit
	 * that reaches one meanwhile succeeds: not a machine that died. The postmaster is
	 * stopped first so that it forks no child the scan would miss. */
	kill(p->pid, SIGSTOP);
	pid_t children[512];
	size_t n = proc_children(p->pid, children, sizeof(children) / sizeof(children[0]));
	for (size_t i = 0; i < n; i++)
		kill(children[i], SIGKILL);
	kill(-p->pid, SIGKILL);
	reap(p);
}

int pgproc_promote(struct pgproc *p)
{
	char *argv[] = {"pg_ctl", "promote", "-w", "-s", "-D", p->dir, NULL};
	if (run(NULL, 0, argv) != 0)
		return -1;
	char in_recovery[8] = "";
	for (int waited = 0; waited < 30000; waited += 50) {
		if (pgproc_sql(p, "SELECT pg_is_in_recovery()", in_recovery, sizeof(in_recovery)) ==
		        0 &&
		    strcmp(in_recovery, "f") == 0)
			return 0;
		nap_ms(50);
	}
	return -1;
}

int pgproc_sql(const struct pgproc *p, const char *sql, char *out, size_t cap)
{
	return pgproc_sql_in(p, "cairn", sql, out, cap);
}

int pgproc_sql_in(const struct pgproc *p, const char *db, const char *sql, char *out, size_t cap)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", p->port);
	char *argv[] = {"psql", "-X",        "-q", "-At",       "-v", "ON_ERROR_STOP=1",
	                "-h",   "127.0.0.1", "-p", port,        "-U", "cairn",
	                "-d",   (char *)db,  "-c", (char *)sql, NULL};
	char first[4096];
	if (run(first, sizeof(first), argv) != 0)
		return -1;
	if (out != NULL && cap > 0) {
		first[strcspn(first, "\n")] = '\0';
		snprintf(out, cap, "%s", first);
	}
	return 0;
}

/* Runs the shell command FMT (openssl, on paths of the test's own), quietly; 0 or -1. */
__attribute__((format(printf, 1, 2))) static int shell(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd) - 32)
		return -1;
	strcat(cmd, " >/dev/null 2>&1");
	if (system(cmd) != 0) {
		fprintf(stderr, "pgproc: failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

#define PG_CERT_ARGS "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "

int pgproc_make_ca(const char *dir)
{
	return shell(PG_CERT_ARGS "-subj /CN=cairn-test-ca -keyout '%s/ca.key' -out '%s/ca.crt'",
	             dir, dir);
}

int pgproc_ssl(struct pgproc *p, const char *ca_dir)
{
	char key[300], crt[300];
	snprintf(key, sizeof(key), "%s/server.key", p->dir);
	snprintf(crt, sizeof(crt), "%s/server.crt", p->dir);
	/* The server refuses a key that others may read; it runs as the unprivileged user. */
	if (shell(PG_CERT_ARGS "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
	                       "-CA '%s/ca.crt' -CAkey '%s/ca.key' -keyout '%s' -out '%s'",
	          ca_dir, ca_dir, key, crt) != 0 ||
	    chmod(key, 0600) != 0 || give(key) != 0 || give(crt) != 0)
		return -1;
	if (pgproc_sql(p, "ALTER SYSTEM SET ssl = on", NULL, 0) != 0 ||
	    pgproc_sql(p, "SELECT pg_reload_conf()", NULL, 0) != 0)
		return -1;
	/* A reload is asynchronous: on once a new session sees it. */
	char on[8] = "";
	for (int waited = 0; waited < 10000; waited += 100) {
		if (pgproc_sql(p, "SHOW ssl", on, sizeof(on)) == 0 && strcmp(on, "on") == 0)
			return 0;
		nap_ms(100);
	}
	fprintf(stderr, "pgproc: ssl = on did not take in %s (%s)\n", p->dir, on);
	show_log(p);
	return -1;
}

void pgproc_destroy(struct pgproc *p)
{
	if (p->dir[0] == '\0')
		return;
	pgproc_stop(p);
	char cmd[640];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.log'", p->dir, p->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "pgproc: could not remove %s\n", p->dir);
	p->dir[0] = '\0';
}
