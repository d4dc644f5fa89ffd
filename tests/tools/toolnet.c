/* SPDX-License-Identifier: MIT */
/* The TCP helpers of the proxying test tools: see toolnet.h. */
#include "toolnet.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t toolnet_stopping;

static void on_signal(int sig)
{
	(void)sig;
	toolnet_stopping = 1;
}

void toolnet_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int64_t toolnet_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int toolnet_resolve(const char *text, int passive, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(text, ':');
	if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
		return -1;
	const char *h = text;
	size_t hlen = (size_t)(colon - text);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags =
	                             AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)},
	                *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int toolnet_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int toolnet_pair(int client, const struct sockaddr_storage *up, socklen_t uplen, bool *connecting)
{
	int s = socket(up->ss_family, SOCK_STREAM, 0);
	if (s < 0 || toolnet_nonblocking(s) != 0 || toolnet_nonblocking(client) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	int one = 1;
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*connecting = false;
	if (connect(s, (const struct sockaddr *)up, uplen) != 0) {
		if (errno != EINPROGRESS) {
			close(s);
			return -1;
		}
		*connecting = true;
	}
	return s;
}

int toolnet_listen(const char *text, const char *prog)
{
	struct sockaddr_storage lss;
	socklen_t llen;
	if (toolnet_resolve(text, 1, &lss, &llen) != 0) {
		fprintf(stderr, "%s: addresses are numeric HOST:PORT\n", prog);
		return -1;
	}
	int lfd = socket(lss.ss_family, SOCK_STREAM, 0);
	int one = 1;
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&lss, llen) != 0 || listen(lfd, 64) != 0 ||
	    toolnet_nonblocking(lfd) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&lss, &llen) != 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, text, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	char host[64], port[16];
	getnameinfo((struct sockaddr *)&lss, llen, host, sizeof(host), port, sizeof(port),
	            NI_NUMERICHOST | NI_NUMERICSERV);
	printf("listening %s:%s\n", host, port);
	fflush(stdout);
	return lfd;
}
