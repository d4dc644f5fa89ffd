/* SPDX-License-Identifier: MIT */
/* Starting and stopping the relay under test (see relayctl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cairn/address.h"
#include "relayctl.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs ARGV, capturing up to CAP-1 bytes of its stdout into OUT (may be NULL). */
static int run_capture(char *const argv[], char *out, size_t cap)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	size_t len = 0;
	char scratch[512];
	ssize_t n;
	/* Read to the end even when OUT is full: closing the pipe early would kill the child. */
	while ((n = read(pipefd[0], scratch, sizeof(scratch))) > 0) {
		size_t take = out == NULL || len + 1 >= cap ? 0 : (size_t)n;
		if (take > cap - 1 - len)
			take = cap - 1 - len;
		if (take > 0) /* OUT may be NULL, and memcpy's pointers may not be */
			memcpy(out + len, scratch, take);
		len += take;
	}
	if (out != NULL)
		out[len] = '\0';
	close(pipefd[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void relayctl_remove_dir(const char *dir)
{
	char *rm[] = {"/bin/rm", "-rf", (char *)dir, NULL};
	run_capture(rm, NULL, 0);
}

static int write_config(struct relayctl *r, const char *const *limits, size_t nlimits,
                        const char *store)
{
	snprintf(r->conf, sizeof(r->conf), "%s/bench.conf", r->dir);
	FILE *f = fopen(r->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	        "[relay]\nlisten = 127.0.0.1:%u\nlog_level = warn\nstats_interval = 0\n"
	        "[limits]\n",
	        r->port);
	for (size_t i = 0; i < nlimits; i++)
		fprintf(f, "%s\n", limits[i]);
	if (store != NULL)
		fprintf(f, "[store]\n%s\n", store);
	return fclose(f) == 0 ? 0 : -1;
}

static int read_address(struct relayctl *r, const char *bin)
{
	char out[512];
	char *argv[] = {(char *)bin, "address", "--data", r->data, "--config", r->conf, NULL};
	if (run_capture(argv, out, sizeof(out)) != 0)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	struct cairn_address a;
	if (cairn_address_parse(out, &a) != 0 || a.port != r->port)
		return -1;
	memcpy(r->pub, a.key, sizeof(r->pub));
	return 0;
}

bool relayctl_accepts(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int spawn(struct relayctl *r, const char *bin)
{
	char *const argv[] = {(char *)bin, "run", "--data", r->data, "--config", r->conf, NULL};
	r->pid = relayctl_spawn(argv, NULL, r->port);
	return r->pid > 0 ? 0 : -1;
}

int relayctl_start(struct relayctl *r, const char *bin, const char *const *limits, size_t nlimits)
{
	return relayctl_start_store(r, bin, limits, nlimits, NULL);
}

int relayctl_start_store(struct relayctl *r, const char *bin, const char *const *limits,
                         size_t nlimits, const char *store)
{
	return relayctl_start_node(r, bin, limits, nlimits, store, NULL);
}

int relayctl_start_node(struct relayctl *r, const char *bin, const char *const *limits,
                        size_t nlimits, const char *store, const char *key_from)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/cairn-bench-XXXXXX");
	if (mkdtemp(r->dir) == NULL) {
		r->dir[0] = '\0';
		return -1;
	}
	snprintf(r->data, sizeof(r->data), "%s/data", r->dir);
	char *init[] = {(char *)bin, "init", "--data", r->data, NULL};
	r->port = loopback_free_port();
	char key_to[320];
	snprintf(key_to, sizeof(key_to), "%s/relay.key", r->data);
	char *cp[] = {"/bin/cp", "-p", (char *)key_from, key_to, NULL};
	if (r->port == 0 || run_capture(init, NULL, 0) != 0 ||
	    (key_from != NULL && run_capture(cp, NULL, 0) != 0) ||
	    write_config(r, limits, nlimits, store) != 0 || read_address(r, bin) != 0 ||
	    spawn(r, bin) != 0) {
		relayctl_stop(r);
		return -1;
	}
	r->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(r->port)};
	r->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

pid_t relayctl_exec(char *const argv[], const char *log)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (log != NULL) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
	}
	execv(argv[0], argv);
	_exit(127);
}

pid_t relayctl_spawn(char *const argv[], const char *log, uint16_t port)
{
	pid_t pid = relayctl_exec(argv, log);
	for (int i = 0; pid > 0 && i < 1000; i++) {
		if (relayctl_accepts(port))
			return pid;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		sleep_ms(10);
	}
	relayctl_kill(pid);
	return -1;
}

void relayctl_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	int status;
	/* A clean stop finishes pending commits (and mosquitto saves its database); a server that
	 * hangs is killed. */
	for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
		sleep_ms(10);
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

void relayctl_stop(struct relayctl *r)
{
	relayctl_kill(r->pid);
	r->pid = 0;
	if (r->dir[0] != '\0')
		relayctl_remove_dir(r->dir);
	r->dir[0] = '\0';
}

const char *relayctl_find(const char *path, char *out, size_t cap)
{
	return relayctl_find_bin(path, "cairn-relay", "../../relay/cairn-relay", out, cap);
}

const char *relayctl_find_bin(const char *path, const char *name, const char *in_tree, char *out,
                              size_t cap)
{
	if (path != NULL)
		return access(path, X_OK) == 0 ? path : NULL;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	/* Installed side by side, or in the build tree (IN_TREE, from build/tests/bench). */
	const char *const tries[] = {name, in_tree};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		snprintf(out, cap, "%s/%s", self, tries[i]);
		if (access(out, X_OK) == 0)
			return out;
	}
	return NULL;
}
