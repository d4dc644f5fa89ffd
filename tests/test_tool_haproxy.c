/* SPDX-License-Identifier: MIT */
/*
 * The haproxy harness (support/haproxyproc.h) does what the cluster tests rely on: a balancer
 * on a free port in front of backends, connections reaching them through it, a dead backend
 * marked down within a few checks and its sessions cut at once, a backend back marked up
 * again, and nothing left running or on disk after the stop. The backends here are plain
 * listening sockets of the test (the kernel accepts a check's connect on its own).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "haproxyproc.h"
#include "relayproc.h"

#define BACKENDS 2

static int listen_on(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Accepts, on one of the listeners, the connection carrying MARK (health checks connect and
 * close without a byte: skipped). Returns the accepted fd; *WHICH is its backend. */
static int accept_marked(const int lfd[BACKENDS], char mark, int *which)
{
	for (int rounds = 0; rounds < 500; rounds++) {
		struct pollfd p[BACKENDS];
		for (int i = 0; i < BACKENDS; i++)
			p[i] = (struct pollfd){.fd = lfd[i], .events = POLLIN};
		if (poll(p, BACKENDS, 20) <= 0)
			continue;
		for (int i = 0; i < BACKENDS; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept(lfd[i], NULL, NULL);
			if (fd < 0)
				continue;
			struct pollfd q = {.fd = fd, .events = POLLIN};
			char c = 0;
			if (poll(&q, 1, 200) == 1 && read(fd, &c, 1) == 1 && c == mark) {
				*which = i;
				return fd;
			}
			close(fd);
		}
	}
	fail_msg("no connection with mark %c reached a backend", mark);
	return -1;
}

/* Whether FD sees its peer close within TIMEOUT_MS. */
static bool closed_within(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	return poll(&p, 1, timeout_ms) == 1 && read(fd, &c, 1) <= 0;
}

static void test_balance_fail_and_stop(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	uint16_t ports[BACKENDS];
	int lfd[BACKENDS];
	for (int i = 0; i < BACKENDS; i++) {
		ports[i] = loopback_free_port();
		lfd[i] = listen_on(ports[i]);
	}
	struct haproxyproc h;
	int rc = haproxyproc_start(&h, ports, BACKENDS, "roundrobin");
	if (rc == 1)
		skip();
	assert_int_equal(rc, 0);
	for (int i = 0; i < BACKENDS; i++)
		assert_true(haproxyproc_wait(&h, (size_t)i, true, 5000) >= 0);
	bool up[HAPROXYPROC_MAX];
	assert_int_equal(haproxyproc_up(&h, up), BACKENDS);

	/* Round robin: two connections through the balancer reach both backends; bytes pass
	 * both ways. */
	int c[2], s[2], which[2];
	for (int k = 0; k < 2; k++) {
		c[k] = connect_to(h.port);
		char mark = (char)('a' + k);
		assert_int_equal(write(c[k], &mark, 1), 1);
		s[k] = accept_marked(lfd, mark, &which[k]);
		assert_int_equal(write(s[k], "!", 1), 1);
		char got = 0;
		assert_int_equal(read(c[k], &got, 1), 1);
		assert_int_equal(got, '!');
	}
	assert_int_not_equal(which[0], which[1]);

	/* Backend of connection 0 dies: marked down within a few checks, and the client's
	 * session through the balancer is cut without waiting for a timeout; the other stays. */
	int dead = which[0];
	close(lfd[dead]);
	long ms = haproxyproc_wait(&h, (size_t)dead, false, 5000);
	assert_true(ms >= 0);
	printf("haproxy: backend marked down %ld ms after its listener closed\n", ms);
	assert_true(closed_within(c[0], 2000)); /* its backend side is still open */
	close(s[0]);
	assert_int_equal(haproxyproc_up(&h, up), BACKENDS - 1);
	assert_false(up[dead]);
	assert_int_equal(write(c[1], "x", 1), 1);
	char got = 0;
	assert_int_equal(read(s[1], &got, 1), 1);
	assert_int_equal(got, 'x');

	/* New connections all go to the live backend. */
	int c2 = connect_to(h.port);
	assert_int_equal(write(c2, "z", 1), 1);
	int w2, s2 = accept_marked(lfd, 'z', &w2);
	assert_int_equal(w2, which[1]);
	close(s2);
	close(c2);

	/* It comes back: marked up again. */
	lfd[dead] = listen_on(ports[dead]);
	assert_true(haproxyproc_wait(&h, (size_t)dead, true, 5000) >= 0);

	/* Stopped: the process is gone, its port closed, its directory removed. */
	pid_t pid = h.pid;
	char dir[sizeof(h.dir)];
	strcpy(dir, h.dir);
	uint16_t port = h.port;
	haproxyproc_stop(&h);
	assert_int_equal(h.pid, 0);
	assert_int_not_equal(kill(pid, 0), 0);
	struct stat st;
	assert_int_not_equal(stat(dir, &st), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	haproxyproc_stop(&h); /* twice: nothing */
	close(c[0]);
	close(c[1]);
	close(s[1]);
	for (int i = 0; i < BACKENDS; i++)
		close(lfd[i]);
}

/* The config an operator copies has the pieces the failover relies on. */
static void test_config_text(void **state)
{
	(void)state;
	char text[2048];
	const uint16_t ports[3] = {7001, 7002, 7003};
	assert_true(haproxyproc_config(text, sizeof(text), 443, ports, 3, "leastconn",
	                               "/run/haproxy/admin.sock") > 0);
	assert_non_null(strstr(text, "mode tcp"));
	assert_non_null(strstr(text, "balance leastconn"));
	assert_non_null(strstr(text, "on-marked-down shutdown-sessions"));
	assert_non_null(strstr(text, "server n3 127.0.0.1:7003"));
	assert_int_equal(haproxyproc_config(text, 64, 443, ports, 3, "leastconn", "/x"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_balance_fail_and_stop),
	    cmocka_unit_test(test_config_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
