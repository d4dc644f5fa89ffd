/* SPDX-License-Identifier: MIT */
/*
 * Idle MQTT connections (see mqidle.h). Connections are opened in batches: every socket of a
 * batch connects and writes CONNECT and SUBSCRIBE in one write (MQTT lets a client send
 * before CONNACK), then each reads its 4-byte CONNACK and 5-byte SUBACK. A batch is smaller
 * than mosquitto's listen backlog, so no SYN waits for a retransmission.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mqidle.h"
#include "procscan.h"

#define BATCH      64
#define KEEPALIVE  3600 /* as the cairn relay's idle_timeout in the benchmark */
#define PACKET_MAX 96
#define REPLY_LEN  9 /* CONNACK (4) and SUBACK (5) */

struct mqidle {
	struct sockaddr_in broker;
	pid_t broker_pid;
	int *fds;
	uint32_t len, cap;
};

static size_t put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (uint8_t)(n >> 8);
	p[1] = (uint8_t)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* CONNECT (client id "cb-idle-N", clean session) then SUBSCRIBE "idle/N" at QoS 1. All
 * lengths stay below 128, so each remaining length is one byte. */
static size_t hello_packets(uint32_t n, uint8_t out[static PACKET_MAX])
{
	char id[32], topic[32];
	snprintf(id, sizeof(id), "cb-idle-%u", (unsigned)n);
	snprintf(topic, sizeof(topic), "idle/%u", (unsigned)n);
	uint8_t *p = out;
	*p++ = 0x10;
	uint8_t *len = p++;
	p += put_str(p, "MQTT");
	*p++ = 4;    /* protocol level: 3.1.1 */
	*p++ = 0x02; /* clean session */
	*p++ = (uint8_t)(KEEPALIVE >> 8);
	*p++ = (uint8_t)KEEPALIVE;
	p += put_str(p, id);
	*len = (uint8_t)(p - len - 1);
	*p++ = 0x82;
	len = p++;
	*p++ = 0;
	*p++ = 1; /* packet id */
	p += put_str(p, topic);
	*p++ = 1; /* QoS 1 */
	*len = (uint8_t)(p - len - 1);
	return (size_t)(p - out);
}

static bool replies_ok(const uint8_t r[static REPLY_LEN])
{
	static const uint8_t want[REPLY_LEN] = {0x20, 0x02, 0x00, 0x00, 0x90,
	                                        0x03, 0x00, 0x01, 0x01};
	return memcmp(r, want, REPLY_LEN) == 0;
}

static int connect_one(const struct mqidle *p, uint32_t n)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 10};
	uint8_t hello[PACKET_MAX];
	size_t len = hello_packets(n, hello);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (const struct sockaddr *)&p->broker, sizeof(p->broker)) != 0 ||
	    write(fd, hello, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool read_replies(int fd)
{
	uint8_t r[REPLY_LEN];
	size_t got = 0;
	while (got < REPLY_LEN) {
		ssize_t n = read(fd, r + got, REPLY_LEN - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return replies_ok(r);
}

struct mqidle *mqidle_open(uint16_t port, pid_t broker_pid, uint32_t max_total)
{
	struct mqidle *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->fds = calloc(max_total, sizeof(*p->fds));
	if (p->fds == NULL) {
		free(p);
		return NULL;
	}
	p->cap = max_total;
	p->broker_pid = broker_pid;
	p->broker = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
	p->broker.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return p;
}

int mqidle_grow(struct mqidle *p, uint32_t total, struct idle_step *step)
{
	memset(step, 0, sizeof(*step));
	if (total <= p->len || total > p->cap)
		return -1;
	uint32_t added = total - p->len, open = 0;
	double cpu0 = proc_cpu_s(p->broker_pid);
	uint64_t t0 = bench_now_ns();
	while (p->len < total) {
		int batch[BATCH];
		uint32_t k = 0, first = p->len;
		while (k < BATCH && p->len + k < total) {
			batch[k] = connect_one(p, p->len + k);
			k++;
		}
		for (uint32_t i = 0; i < k; i++) {
			if (batch[i] >= 0 && !read_replies(batch[i])) {
				close(batch[i]);
				batch[i] = -1;
			}
			open += batch[i] >= 0;
			p->fds[first + i] = batch[i];
		}
		p->len += k;
	}
	double s = (double)(bench_now_ns() - t0) / 1e9;
	step->connections = total;
	step->failed = added - open;
	step->handshakes_per_s = s > 0 ? (double)open / s : 0;
	step->handshake_relay_cpu = s > 0 ? (proc_cpu_s(p->broker_pid) - cpu0) / s : 0;
	if (step->failed > 0)
		bench_note("mosquitto: %u of %u new connections failed", (unsigned)step->failed,
		           (unsigned)added);
	return 0;
}

void mqidle_close(struct mqidle *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->len; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	free(p->fds);
	free(p);
}
