/* SPDX-License-Identifier: MIT */
/*
 * tcp-floor: what the kernel and libuv alone cost a server per connection on this machine, the
 * part of `cairn-bench handshakes`' relay CPU per handshake that no relay code can remove. A
 * child process runs a libuv server that does a handshake's I/O and nothing else: accept, read
 * REQ bytes (message 1), optionally hop to libuv's thread pool and back (as the relay does for
 * message 1's X25519 work, which must stay off the loop thread), write REPLY bytes (message 2)
 * and keep the connection open, as the bench's idle generator does. The parent opens
 * CONNECTIONS such connections from 4 threads and prints the server's CPU per connection from
 * /proc (both modes, alternating, ROUNDS rounds, medians). Not a test; figures in
 * docs/PERFORMANCE.md.
 *
 *   tcp-floor [CONNECTIONS [ROUNDS [REQ REPLY]]]   (defaults 5000 3 57 48)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "procscan.h"

#define THREADS 4

static size_t req_len = 57, reply_len = 48;
static int hop;

struct sconn {
	uv_tcp_t tcp;
	uv_work_t work;
	size_t got;
	char buf[512];
};

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)n;
	struct sconn *c = h->data;
	*b = uv_buf_init(c->buf, sizeof(c->buf));
}

static void reply(struct sconn *c)
{
	static char out[512];
	uv_buf_t b = uv_buf_init(out, (unsigned)reply_len);
	uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static void work_nothing(uv_work_t *w)
{
	(void)w;
}

static void work_done(uv_work_t *w, int status)
{
	(void)status;
	reply(w->data);
}

static void on_close(uv_handle_t *h)
{
	free(h->data);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	struct sconn *c = s->data;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	size_t before = c->got;
	c->got += (size_t)n;
	if (before < req_len && c->got >= req_len) {
		if (hop) {
			c->work.data = c;
			uv_queue_work(s->loop, &c->work, work_nothing, work_done);
		} else {
			reply(c);
		}
	}
}

static void on_conn(uv_stream_t *l, int status)
{
	if (status < 0)
		return;
	struct sconn *c = calloc(1, sizeof(*c));
	uv_tcp_init(l->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* The server, in a child: its port goes to FD. */
static void serve(int fd)
{
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t l;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(loop, &l);
	if (uv_tcp_bind(&l, (const struct sockaddr *)&a, 0) != 0 ||
	    uv_listen((uv_stream_t *)&l, 4096, on_conn) != 0)
		_exit(1);
	int len = sizeof(a);
	uv_tcp_getsockname(&l, (struct sockaddr *)&a, &len);
	if (write(fd, &a.sin_port, sizeof(a.sin_port)) != sizeof(a.sin_port))
		_exit(1);
	close(fd);
	uv_run(loop, UV_RUN_DEFAULT);
	_exit(0);
}

struct client {
	uint16_t port;
	int count;
	int *fds;
	int failed;
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	char req[512] = {0}, rep[512];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = c->port};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	for (int i = 0; i < c->count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		size_t got = 0;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    send(fd, req, req_len, 0) != (ssize_t)req_len) {
			c->failed++;
			close(fd);
			continue;
		}
		while (got < reply_len) {
			ssize_t n = recv(fd, rep, sizeof(rep), 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < reply_len)
			c->failed++;
		c->fds[i] = fd;
	}
	return NULL;
}

/* One round: a fresh server, CONNS connections; returns its CPU per connection in us. */
static double one_round(int conns, double *per_s)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		serve(p[1]);
	}
	close(p[1]);
	uint16_t port = 0;
	if (read(p[0], &port, sizeof(port)) != sizeof(port))
		return -1;
	close(p[0]);
	struct client cl[THREADS];
	pthread_t th[THREADS];
	double cpu0 = proc_cpu_s(pid);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < THREADS; i++) {
		cl[i] = (struct client){.port = port, .count = conns / THREADS};
		cl[i].fds = calloc((size_t)cl[i].count, sizeof(int));
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	}
	int failed = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failed += cl[i].failed;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double cpu1 = proc_cpu_s(pid);
	for (int i = 0; i < THREADS; i++) {
		for (int k = 0; k < cl[i].count; k++)
			if (cl[i].fds[k] > 0)
				close(cl[i].fds[k]);
		free(cl[i].fds);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (failed > 0) {
		fprintf(stderr, "tcp-floor: %d connections failed\n", failed);
		return -1;
	}
	if (cpu0 < 0 || cpu1 < 0) {
		fprintf(stderr, "tcp-floor: cannot read the server's CPU time from /proc\n");
		return -1;
	}
	double cpu = cpu1 - cpu0;
	int done = conns / THREADS * THREADS;
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	*per_s = done / secs;
	return cpu / done * 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int conns = argc > 1 ? atoi(argv[1]) : 5000, rounds = argc > 2 ? atoi(argv[2]) : 3;
	if (argc > 4) {
		req_len = (size_t)atoi(argv[3]);
		reply_len = (size_t)atoi(argv[4]);
	}
	if (conns < THREADS || conns > 60000 || rounds < 1 || rounds > 25 || req_len < 1 ||
	    req_len > 512 || reply_len < 1 || reply_len > 512) {
		fprintf(stderr, "usage: tcp-floor [CONNECTIONS 4-60000 [ROUNDS 1-25 [REQ REPLY "
		                "1-512]]]\n");
		return 2;
	}
	struct rlimit rl = {.rlim_cur = 2 * (rlim_t)conns + 64, .rlim_max = 2 * (rlim_t)conns + 64};
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("tcp-floor: setrlimit");
		return 1;
	}
	double us[2][25], rate[2][25];
	for (int r = 0; r < rounds; r++)
		for (hop = 0; hop < 2; hop++)
			if ((us[hop][r] = one_round(conns, &rate[hop][r])) < 0)
				return 1;
	printf("server CPU per connection (accept, read %zu B, write %zu B, kept open), %d "
	       "connections, medians of %d rounds:\n",
	       req_len, reply_len, conns, rounds);
	for (hop = 0; hop < 2; hop++) {
		printf("  %-32s", hop ? "with a thread-pool hop:" : "on the loop thread:");
		for (int r = 0; r < rounds; r++)
			printf(" %.1f", us[hop][r]);
		qsort(us[hop], (size_t)rounds, sizeof(double), cmp);
		qsort(rate[hop], (size_t)rounds, sizeof(double), cmp);
		printf("  median %.1f us (%.0f connections/s)\n", us[hop][rounds / 2],
		       rate[hop][rounds / 2]);
	}
	return 0;
}
