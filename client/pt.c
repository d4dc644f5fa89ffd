/* SPDX-License-Identifier: MIT */
/*
 * The client's managed obfs4proxy (see pt.h): posix_spawn with the pluggable transport
 * environment, then its stdout read line by line until it names its SOCKS5 listener. Its
 * stdin is a pipe only we hold, so that it exits with us however we end
 * (TOR_PT_EXIT_ON_STDIN_CLOSE); its stdout stays open to us for as long as it runs, since a Go
 * program writing to a closed pipe dies of SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "pt.h"

extern char **environ;

/* The only lines of pt-spec version 1 we act on; LOG, STATUS and the rest are skipped. */
#define PT_LINE_MAX 1024

/* Keeps MSG for the caller: printable ASCII only, since it came from another program. */
static void pt_fail(struct client_pt *pt, const char *what, const char *msg)
{
	size_t o = (size_t)snprintf(pt->error, sizeof(pt->error), "obfs4proxy: %s", what);
	if (msg != NULL && o + 2 < sizeof(pt->error)) {
		pt->error[o++] = ':';
		pt->error[o++] = ' ';
		for (; *msg != '\0' && o + 1 < sizeof(pt->error); msg++)
			pt->error[o++] = *msg >= 0x20 && *msg < 0x7f ? *msg : '?';
		pt->error[o] = '\0';
	}
}

/* Reaps PT's child if it has exited. Returns true while it still runs. */
static bool pt_alive(struct client_pt *pt)
{
	if (pt->pid <= 0)
		return false;
	int status;
	pid_t r = waitpid(pt->pid, &status, WNOHANG);
	if (r == 0)
		return true;
	pt->pid = 0;
	return false;
}

void client_pt_stop(struct client_pt *pt)
{
	if (pt->stdin_fd > 0)
		close(pt->stdin_fd);
	if (pt->pid > 0) {
		(void)kill(pt->pid, SIGTERM);
		int64_t deadline = fdio_now_ms() + 2000;
		while (pt_alive(pt) && fdio_now_ms() < deadline) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (pt->pid > 0) {
			(void)kill(pt->pid, SIGKILL);
			(void)waitpid(pt->pid, NULL, 0);
		}
	}
	if (pt->stdout_fd > 0)
		close(pt->stdout_fd);
	memset(pt, 0, sizeof(*pt));
}

/* The child's environment: ours without any TOR_PT_ variable, then the managed client's.
 * Returns a malloc'd array (entries borrowed or from BUF), or NULL. */
static char **pt_environment(const char *state_dir, char *buf, size_t cap)
{
	size_t n = 0;
	for (char **e = environ; *e != NULL; e++)
		n++;
	char **env = calloc(n + 5, sizeof(*env));
	if (env == NULL)
		return NULL;
	size_t k = 0;
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "TOR_PT_", 7) != 0)
			env[k++] = *e;
	int len = snprintf(buf, cap, "TOR_PT_STATE_LOCATION=%s", state_dir);
	if (len < 0 || (size_t)len >= cap) {
		free(env);
		return NULL;
	}
	env[k++] = buf;
	env[k++] = "TOR_PT_MANAGED_TRANSPORT_VER=1";
	env[k++] = "TOR_PT_CLIENT_TRANSPORTS=obfs4";
	env[k++] = "TOR_PT_EXIT_ON_STDIN_CLOSE=1";
	env[k] = NULL;
	return env;
}

/* Starts PROGRAM with stdin and stdout piped to PT and stderr to /dev/null. Returns 0 or
 * CAIRN_EPROXY / CAIRN_ENOMEM. */
static int pt_spawn(struct client_pt *pt, const char *program, const char *state_dir)
{
	char state_var[4096 + 32];
	char **env = pt_environment(state_dir, state_var, sizeof(state_var));
	if (env == NULL)
		return CAIRN_ENOMEM;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, rc = CAIRN_EPROXY;
	posix_spawn_file_actions_t fa;
	bool fa_ok = false;
	if (pipe(in) != 0 || pipe(out) != 0) {
		pt_fail(pt, "cannot make pipes", NULL);
		goto out;
	}
	/* Ours only: the child gets its ends by dup2, which clears FD_CLOEXEC. */
	for (int i = 0; i < 2; i++) {
		(void)fcntl(in[i], F_SETFD, FD_CLOEXEC);
		(void)fcntl(out[i], F_SETFD, FD_CLOEXEC);
	}
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out;
	fa_ok = true;
	if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out[1], 1) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) != 0)
		goto out;
	char *argv[] = {(char *)program, NULL};
	pid_t pid;
	int err = strchr(program, '/') != NULL ? posix_spawn(&pid, program, &fa, NULL, argv, env)
	                                       : posix_spawnp(&pid, program, &fa, NULL, argv, env);
	if (err != 0) {
		pt_fail(pt, "cannot start (set CAIRN_OBFS4PROXY, or install obfs4proxy)", program);
		goto out;
	}
	pt->pid = pid;
	pt->stdin_fd = in[1];
	pt->stdout_fd = out[0];
	in[1] = out[0] = -1;
	rc = 0;
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	free(env);
	return rc;
}

/* Acts on one stdout line. Returns 1 to read on, 0 once "CMETHODS DONE" came after our
 * listener, or CAIRN_EPROXY. */
static int pt_line(struct client_pt *pt, char *line)
{
	if (strcmp(line, "VERSION 1") == 0)
		return 1;
	if (strncmp(line, "VERSION-ERROR", 13) == 0 || strncmp(line, "ENV-ERROR", 9) == 0 ||
	    strncmp(line, "CMETHOD-ERROR", 13) == 0) {
		pt_fail(pt, "refused", line);
		return CAIRN_EPROXY;
	}
	if (strncmp(line, "CMETHOD obfs4 socks5 ", 21) == 0) {
		const char *addr = line + 21;
		size_t len = strlen(addr);
		if (len == 0 || len >= sizeof(pt->socks) || strchr(addr, ':') == NULL ||
		    strchr(addr, ' ') != NULL) {
			pt_fail(pt, "announced a malformed listener", NULL);
			return CAIRN_EPROXY;
		}
		memcpy(pt->socks, addr, len + 1);
		return 1;
	}
	if (strcmp(line, "CMETHODS DONE") == 0) {
		if (pt->socks[0] != '\0')
			return 0;
		pt_fail(pt, "announced no obfs4 SOCKS5 listener", NULL);
		return CAIRN_EPROXY;
	}
	return 1;
}

/* Reads PT's stdout until its listener is announced, at most until DEADLINE. */
static int pt_handshake(struct client_pt *pt, int64_t deadline)
{
	char line[PT_LINE_MAX];
	size_t len = 0;
	for (;;) {
		int64_t left = deadline - fdio_now_ms();
		if (left <= 0) {
			pt_fail(pt, "said nothing in time", NULL);
			return CAIRN_EPROXY;
		}
		struct pollfd p = {.fd = pt->stdout_fd, .events = POLLIN};
		int ready = poll(&p, 1, (int)left);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			continue;
		char c;
		ssize_t n = read(pt->stdout_fd, &c, 1); /* a byte at a time: a few lines, once */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pt_fail(pt, "exited before announcing its listener", NULL);
			return CAIRN_EPROXY;
		}
		if (c != '\n') {
			if (len + 1 >= sizeof(line)) {
				pt_fail(pt, "wrote an over-long line", NULL);
				return CAIRN_EPROXY;
			}
			line[len++] = c;
			continue;
		}
		line[len] = '\0';
		len = 0;
		int rc = pt_line(pt, line);
		if (rc <= 0)
			return rc;
	}
}

/* Reads and drops what obfs4proxy wrote since (LOG lines): its pipe must never fill. */
static void pt_drain(struct client_pt *pt)
{
	char buf[512];
	struct pollfd p = {.fd = pt->stdout_fd, .events = POLLIN};
	while (pt->stdout_fd > 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0 &&
	       read(pt->stdout_fd, buf, sizeof(buf)) > 0) {
	}
}

int client_pt_socks(struct client_pt *pt, const char *state_dir, int timeout_ms, const char **socks)
{
	*socks = NULL;
	const char *given = getenv("CAIRN_OBFS4_SOCKS");
	if (given != NULL && given[0] != '\0') {
		*socks = given;
		return 0;
	}
	if (pt_alive(pt) && pt->socks[0] != '\0') {
		pt_drain(pt);
		*socks = pt->socks;
		return 0;
	}
	client_pt_stop(pt); /* it died: whatever is left of it */
	/* The bridge's state is the transport's own; nobody else needs to read it. */
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		pt_fail(pt, "cannot make its state directory", NULL);
		return CAIRN_EPROXY;
	}
	const char *program = getenv("CAIRN_OBFS4PROXY");
	if (program == NULL || program[0] == '\0')
		program = "obfs4proxy";
	int rc = pt_spawn(pt, program, state_dir);
	if (rc == 0)
		rc = pt_handshake(pt, fdio_now_ms() +
		                          (timeout_ms > 0 ? timeout_ms : PT_START_TIMEOUT_MS));
	if (rc != 0) {
		char why[sizeof(pt->error)];
		memcpy(why, pt->error, sizeof(why));
		client_pt_stop(pt);
		memcpy(pt->error, why, sizeof(why));
		return rc;
	}
	*socks = pt->socks;
	return 0;
}
