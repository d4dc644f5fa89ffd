/* SPDX-License-Identifier: MIT */
/* Running the real `cairn` command for integration tests (see cliproc.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "cliproc.h"
#include "wrapper.h"

#define PASS CLI_PASS

char cli_path[PATH_MAX];

/* ---- running the command ------------------------------------------------------------- */

void res_free(struct res *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* In the child: the environment every cairn process gets, then the call's additions. */
static void child_env(const struct call *k)
{
	setenv("CAIRN_PWHASH_FAST", "1", 1);
	setenv("CAIRN_PASSPHRASE", PASS, 1);
	unsetenv("CAIRN_SOCKS"); /* a proxy in the tester's environment must not leak in */
	for (size_t i = 0; k->env != NULL && k->env[i] != NULL; i++)
		putenv((char *)k->env[i]);
}

static char **build_argv(const struct call *k, const char *const *args)
{
	size_t n = 0;
	while (args[n] != NULL)
		n++;
	char **argv = calloc(n + 6 + TEST_WRAPPER_MAX, sizeof(*argv));
	assert_non_null(argv);
	size_t i = test_wrapper_argv(argv);
	argv[i++] = cli_path;
	if (k->home != NULL) {
		argv[i++] = "--home";
		argv[i++] = (char *)k->home;
	}
	if (k->socks != NULL) {
		argv[i++] = "--socks";
		argv[i++] = (char *)k->socks;
	}
	for (size_t j = 0; j < n; j++)
		argv[i++] = (char *)args[j];
	return argv;
}

void buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? *cap * 2 : 4096;
		*buf = realloc(*buf, *cap);
		assert_non_null(*buf);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

int cli_reap(pid_t pid)
{
	int status = 0;
	pid_t got;
	while ((got = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	assert_true(got >= 0);
	if (got == 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int wait_status(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * CAIRN_FUZZ_RECORD=DIR: after each command that succeeded, a copy of its home's store goes to
 * DIR/state-raw/, where fuzz_state_seed turns it into a seed for fuzz_state (fuzz/). The
 * command has exited, so the store is whole (the last connection checkpointed its WAL).
 */
static void record_state(const char *home)
{
	static unsigned copies;
	const char *dir = getenv("CAIRN_FUZZ_RECORD");
	if (dir == NULL || dir[0] == '\0' || home == NULL || copies >= 200)
		return;
	char from[PATH_MAX], to[PATH_MAX];
	snprintf(from, sizeof(from), "%s/cairn.db", home);
	snprintf(to, sizeof(to), "%s/state-raw", dir);
	(void)mkdir(to, 0700);
	snprintf(to, sizeof(to), "%s/state-raw/%ld-%u.db", dir, (long)getpid(), copies++);
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = in >= 0 ? open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	char buf[65536];
	ssize_t n;
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
}

/* Runs cairn with ARGS, capturing both outputs (read together, so neither pipe can fill). */
struct res cli_run(const struct call *k, const char *const *args)
{
	struct res r = {0};
	size_t ocap = 0, ecap = 0;
	int po[2], pe[2], pi[2];
	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	assert_int_equal(pipe(pi), 0);
	char **argv = build_argv(k, args);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pi[0], 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(pi[1]);
		close(po[0]);
		close(pe[0]);
		child_env(k);
		execv(argv[0], argv);
		_exit(127);
	}
	free(argv);
	close(pi[0]);
	close(po[1]);
	close(pe[1]);
	if (k->in != NULL)
		assert_int_equal(write(pi[1], k->in, strlen(k->in)), (ssize_t)strlen(k->in));
	close(pi[1]);
	buf_append(&r.out, &r.outlen, &ocap, "", 0);
	buf_append(&r.err, &r.errlen, &ecap, "", 0);
	struct pollfd pfd[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[8192];
			ssize_t n = read(pfd[i].fd, buf, sizeof(buf));
			if (n > 0 && i == 0)
				buf_append(&r.out, &r.outlen, &ocap, buf, (size_t)n);
			else if (n > 0)
				buf_append(&r.err, &r.errlen, &ecap, buf, (size_t)n);
			else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
			}
		}
	}
	r.status = wait_status(pid);
	/* Under a wrapper (valgrind), its error status fails the test whatever was expected. */
	if (r.status == TEST_WRAPPER_ERROR_STATUS &&
	    test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0) {
		fprintf(stderr, "cairn %s (home %s): the wrapper found an error:\n%s\n",
		        args[0] != NULL ? args[0] : "", k->home ? k->home : "-", r.err);
		res_free(&r);
		fail();
	}
	if (r.status == 0)
		record_state(k->home);
	return r;
}

/* Runs and checks the exit status (EXPECT < 0: any); on a mismatch shows what it printed. */
struct res cli_expect(int expect, const struct call *k, const char *const *args)
{
	struct res r = cli_run(k, args);
	if (expect >= 0 && r.status != expect) {
		fprintf(stderr, "cairn");
		for (size_t i = 0; args[i] != NULL; i++)
			fprintf(stderr, " %s", args[i]);
		fprintf(stderr, " (home %s): exit %d, expected %d\nstdout: %s\nstderr: %s\n",
		        k->home ? k->home : "-", r.status, expect, r.out, r.err);
		res_free(&r); /* fail() jumps out: nothing would free it */
		fail();
	}
	return r;
}

/* The same, for a command whose output does not matter. */
void cli_check(int expect, const struct call *k, const char *const *args)
{
	struct res r = cli_expect(expect, k, args);
	res_free(&r);
}

/* Starts cairn with ARGS in the background, outputs discarded. Returns its pid. */
pid_t cli_spawn(const struct call *k, const char *const *args)
{
	char **argv = build_argv(k, args);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		child_env(k);
		execv(argv[0], argv);
		_exit(127);
	}
	free(argv);
	return pid;
}

pid_t cli_spawn_out(const struct call *k, const char *const *args, int *out, const char *errfile)
{
	int po[2];
	assert_int_equal(pipe(po), 0);
	(void)fcntl(po[0], F_SETFD, FD_CLOEXEC); /* later children must not hold it */
	char **argv = build_argv(k, args);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int err = errfile != NULL ? open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(err >= 0 ? err : null, 2);
		close(po[0]);
		child_env(k);
		execv(argv[0], argv);
		_exit(127);
	}
	free(argv);
	close(po[1]);
	*out = po[0];
	return pid;
}

/* ---- conversations as `read --json` shows them --------------------------------------- */

void convo_free(struct convo *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->m[i].text);
	free(c->m);
	memset(c, 0, sizeof(*c));
}

/* Parses one JSON object per line and checks every field: exactly contact, direction, text,
 * sent, received and id (and expires and timer, numbers, when there), with those types, contact equal to CONTACT, id 32 hex digits. */
struct convo parse_convo(const char *json, const char *contact)
{
	struct convo c = {0};
	const char *line = json;
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		assert_non_null(end);
		char *one = strndup(line, (size_t)(end - line));
		cJSON *o = cJSON_Parse(one);
		if (o == NULL)
			fprintf(stderr, "not JSON: %s\n", one);
		assert_non_null(o);
		assert_true(cJSON_IsObject(o));
		/* Disappearing messages add "expires" (when it is deleted) and, to a timer change,
		 * "timer" (its seconds): numbers, never anything else. */
		int extra = 0;
		for (const char *const *f = (const char *const[]){"expires", "timer", NULL}; *f;
		     f++) {
			cJSON *x = cJSON_GetObjectItemCaseSensitive(o, *f);
			assert_true(x == NULL || cJSON_IsNumber(x));
			extra += x != NULL;
		}
		assert_int_equal(cJSON_GetArraySize(o), 6 + extra);
		cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "contact");
		cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "direction");
		cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
		cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "sent");
		cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "received");
		cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
		assert_true(cJSON_IsString(k) && cJSON_IsString(d) && cJSON_IsString(t) &&
		            cJSON_IsNumber(s) && cJSON_IsNumber(r) && cJSON_IsString(id));
		assert_string_equal(k->valuestring, contact);
		assert_true(strcmp(d->valuestring, "in") == 0 ||
		            strcmp(d->valuestring, "out") == 0);
		assert_int_equal(strlen(id->valuestring), 32);
		assert_int_equal(strspn(id->valuestring, "0123456789abcdef"), 32);
		c.m = realloc(c.m, (c.n + 1) * sizeof(*c.m));
		assert_non_null(c.m);
		struct msg *m = &c.m[c.n++];
		m->out = strcmp(d->valuestring, "out") == 0;
		m->text = strdup(t->valuestring);
		m->sent = s->valuedouble;
		m->received = r->valuedouble;
		strcpy(m->id, id->valuestring);
		cJSON_Delete(o);
		free(one);
		line = end + 1;
	}
	return c;
}

/* HOME's conversation with CONTACT. */
struct convo read_convo(const char *home, const char *contact)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("read", contact, "--json"));
	struct convo c = parse_convo(r.out, contact);
	res_free(&r);
	return c;
}

/* How many messages of C in direction OUT have exactly TEXT. */
size_t count_text(const struct convo *c, int out, const char *text)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].out == out && strcmp(c->m[i].text, text) == 0)
			n++;
	return n;
}

size_t count_dir(const struct convo *c, int out)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		n += c->m[i].out == out;
	return n;
}

/* Asserts that HOME's `sync` printed N received (its summary line) and exited EXPECT. */
void sync_expect(const struct call *k, int expect, int received)
{
	struct res r = cli_expect(expect, k, ARGS("sync"));
	if (received >= 0) {
		char want[64];
		snprintf(want, sizeof(want), "sync: %d received,", received);
		if (strstr(r.out, want) == NULL)
			fprintf(stderr, "%s: wanted '%s', got: %s%s", k->home, want, r.out, r.err);
		assert_non_null(strstr(r.out, want));
	}
	res_free(&r);
}

/*
 * Makes A (who calls the other "bob") and B (who calls the other "alice") contacts through
 * RELAY, both ways: init, invite, accept, one message each way, so both sides are past the
 * first exchange. SOCKS (may be NULL) is used for every networked command.
 */
void pair(const char *a, const char *b, const char *relay, const char *socks)
{
	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	struct res inv = cli_expect(0, CALL(.home = a, .socks = socks),
	                            ARGS("invite", "--relay", relay, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	cli_check(0, CALL(.home = b, .socks = socks), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	cli_check(0, CALL(.home = b, .socks = socks), ARGS("send", "alice", "pairing: b to a"));
	sync_expect(CALL(.home = a, .socks = socks), 0, 1);
	cli_check(0, CALL(.home = a, .socks = socks), ARGS("send", "bob", "pairing: a to b"));
	sync_expect(CALL(.home = b, .socks = socks), 0, 1);
}

char *cli_safety_number(const char *home, const char *contact)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("verify", contact));
	r.out[strcspn(r.out, "\n")] = '\0';
	char *s = strdup(r.out);
	res_free(&r);
	return s;
}

int find_cli(void)
{
	const char *env = getenv("CAIRN_CLI");
	if (env != NULL) {
		snprintf(cli_path, sizeof(cli_path), "%s", env);
		return access(cli_path, X_OK);
	}
	char self[PATH_MAX - 16]; /* room for the suffix below */
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	/* build/tests/test_it_client -> build/client/cairn */
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(self, '/');
		if (slash == NULL)
			return -1;
		*slash = '\0';
	}
	snprintf(cli_path, sizeof(cli_path), "%s/client/cairn", self);
	return access(cli_path, X_OK);
}
