/* SPDX-License-Identifier: MIT */
/*
 * A recording SOCKS5 proxy for the isolation test (docs/PROTOCOL.md section 7.1): picks
 * username/password (0x02) whenever the client offers it, accepts any credentials, appends
 * each connection's username as one line to LOGFILE ("-" for a client that offered no 0x02),
 * and forwards the stream to the CONNECT target (IPv4, IPv6 or a name it resolves). One child
 * process per connection. Loopback tests only: it trusts its clients.
 *
 *   socksrec PORT LOGFILE        (PORT 0: any; prints the port it listens on, then serves)
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int read_n(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* Copies both ways until either side closes. */
static void pump(int a, int b)
{
	char buf[16384];
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (p[i].revents == 0)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0 || write_all(p[1 - i].fd, buf, (size_t)n) != 0)
				return;
		}
	}
}

/* Serves one client on C; the username goes to LOG (O_APPEND: one write per line). */
static void serve(int c, int log)
{
	uint8_t h[2], methods[255], len;
	if (read_n(c, h, 2) != 0 || h[0] != 5 || read_n(c, methods, h[1]) != 0)
		return;
	int pass = memchr(methods, 2, h[1]) != NULL;
	uint8_t pick[2] = {5, pass ? 2 : 0};
	if (write_all(c, pick, 2) != 0)
		return;
	char line[260] = "-";
	if (pass) {
		uint8_t user[255], pw[255], ver;
		if (read_n(c, &ver, 1) != 0 || read_n(c, &len, 1) != 0 || read_n(c, user, len) != 0)
			return;
		for (size_t i = 0; i < len; i++)
			line[i] = user[i] >= 0x20 && user[i] < 0x7f ? (char)user[i] : '?';
		line[len] = '\0';
		if (read_n(c, &len, 1) != 0 || read_n(c, pw, len) != 0)
			return;
		static const uint8_t ok[2] = {1, 0};
		if (write_all(c, ok, 2) != 0)
			return;
	}
	size_t l = strlen(line);
	line[l++] = '\n';
	if (write_all(log, line, l) != 0)
		return;

	uint8_t req[4], addr[256], port[2];
	if (read_n(c, req, 4) != 0 || req[1] != 1)
		return;
	char host[260];
	if (req[3] == 1 || req[3] == 4) {
		size_t alen = req[3] == 1 ? 4 : 16;
		if (read_n(c, addr, alen) != 0)
			return;
		inet_ntop(req[3] == 1 ? AF_INET : AF_INET6, addr, host, sizeof(host));
	} else if (req[3] == 3) {
		if (read_n(c, &len, 1) != 0 || read_n(c, host, len) != 0)
			return;
		host[len] = '\0';
	} else {
		return;
	}
	if (read_n(c, port, 2) != 0)
		return;
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)(port[0] << 8 | port[1]));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int r = -1;
	if (getaddrinfo(host, service, &hints, &res) == 0) {
		for (struct addrinfo *ai = res; ai != NULL && r < 0; ai = ai->ai_next) {
			r = socket(ai->ai_family, SOCK_STREAM, 0);
			if (r >= 0 && connect(r, ai->ai_addr, ai->ai_addrlen) != 0) {
				close(r);
				r = -1;
			}
		}
		freeaddrinfo(res);
	}
	uint8_t reply[10] = {5, r >= 0 ? 0 : 5, 0, 1};
	if (write_all(c, reply, sizeof(reply)) != 0 || r < 0)
		return;
	pump(c, r);
	close(r);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: socksrec PORT LOGFILE\n");
		return 2;
	}
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	int log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0600);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (log < 0 || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 64) != 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		perror("socksrec");
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(c, log);
			_exit(0);
		}
		close(c);
	}
}
