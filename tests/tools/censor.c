/* SPDX-License-Identifier: MIT */
/*
 * censor: a TCP proxy that blocks "fully encrypted" connections the way the Great Firewall of
 * China does since 2021 (Wu et al., USENIX Security 2023), for the censorship tests
 * (tests/test_it_censor.c). It sits between clients and a server like an on-path censor: the
 * first data a client sends on a connection (its first read) goes through the paper's passive
 * test (fet.h); if no exemption holds, that data is dropped and the connection black-holed in
 * both directions: nothing more passes either way, no FIN or RST reaches either side, and both
 * sides are closed only when the hold time runs out (the GFW drops a flagged flow's packets
 * for about 180 s). Exempt connections pass untouched. Server-first bytes pass before the
 * test, as they do on the wire.
 *
 * One line per connection goes to the log file (--log), so a test can assert what the censor
 * decided: "conn N allowed RULE bytes B popcount P" or "conn N blocked bytes B popcount P"
 * (--observe logs "would-block" and lets it pass), then "conn N closed up U down D". --record
 * DIR keeps each connection's first data in DIR/first-N.bin, for the prober to replay
 * (tests/tools/prober.c). Usage: censor --help.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fet.h"
#include "toolnet.h"

#define BUF_MAX   65536
#define CONNS_MAX 256

struct options {
	const char *listen, *connect, *log, *record;
	int hold_s;
	bool observe;
};

enum state { WATCH, PASS, HOLE };

/* One direction: bytes read from FROM wait in BUF until written to TO. */
struct dir {
	int from, to; /* indexes into conn.fd */
	size_t len, off;
	bool eof, shut;
	uint64_t bytes;
	uint8_t buf[BUF_MAX];
};

struct conn {
	unsigned id;
	int fd[2]; /* client side, upstream side */
	bool connecting;
	enum state state;
	int64_t hole_until;
	struct dir d[2]; /* 0: client to upstream, 1: upstream to client */
};

static FILE *log_file;

static void usage(FILE *f)
{
	fputs("usage: censor --listen HOST:PORT --connect HOST:PORT --log FILE [options]\n"
	      "  --hold S       keep a blocked connection silent S seconds, then close (180)\n"
	      "  --observe      classify and log, but block nothing (\"would-block\")\n"
	      "  --record DIR   keep each connection's first data in DIR/first-N.bin\n"
	      "Prints \"listening HOST:PORT\" on stdout once it accepts (PORT 0 picks one); exits\n"
	      "0 on SIGTERM or SIGINT.\n",
	      f);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
}

/* Logs C's end and frees it (both sides closed). */
static void conn_free(struct conn *c)
{
	conn_close(c);
	fprintf(log_file, "conn %u closed up %llu down %llu\n", c->id,
	        (unsigned long long)c->d[0].bytes, (unsigned long long)c->d[1].bytes);
	free(c);
}

static void record(const struct options *o, unsigned id, const uint8_t *p, size_t n)
{
	if (o->record == NULL)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s/first-%u.bin", o->record, id);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return;
	fwrite(p, 1, n, f);
	fclose(f);
}

/* The passive test, on the first data the client sent (D's buffer). */
static void inspect(const struct options *o, struct conn *c)
{
	struct dir *d = &c->d[0];
	const uint8_t *p = d->buf + d->off;
	size_t n = d->len - d->off;
	record(o, c->id, p, n);
	enum fet_verdict v = fet_classify(p, n);
	double pc = fet_popcount(p, n);
	if (v != FET_BLOCK) {
		fprintf(log_file, "conn %u allowed %s bytes %zu popcount %.2f\n", c->id,
		        fet_name(v), n, pc);
		c->state = PASS;
	} else if (o->observe) {
		fprintf(log_file, "conn %u would-block bytes %zu popcount %.2f\n", c->id, n, pc);
		c->state = PASS;
	} else {
		fprintf(log_file, "conn %u blocked bytes %zu popcount %.2f\n", c->id, n, pc);
		c->state = HOLE;
		c->hole_until = toolnet_now_ms() + (int64_t)o->hold_s * 1000;
		d->len = d->off = 0;
		c->d[1].len = c->d[1].off = 0;
	}
}

/* Reads what side K has for direction K. Returns 0, or -1 when the connection is gone. */
static int side_read(const struct options *o, struct conn *c, int k)
{
	struct dir *d = &c->d[k];
	uint8_t *dst = d->buf + d->len;
	size_t cap = BUF_MAX - d->len;
	uint8_t sink[4096];
	if (c->state == HOLE) {
		dst = sink; /* black hole: read to keep the socket quiet, forward nothing */
		cap = sizeof(sink);
	}
	ssize_t n = recv(c->fd[k], dst, cap, 0);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n == 0) {
		d->eof = true;
		if (c->state == HOLE) {
			/* Its peer never learns: close only this side, quietly. */
			close(c->fd[k]);
			c->fd[k] = -1;
		}
		return 0;
	}
	if (c->state == HOLE)
		return 0;
	d->len += (size_t)n;
	if (k == 0 && c->state == WATCH)
		inspect(o, c);
	return 0;
}

/* Writes what direction K holds. Returns 0, or -1 on a write error. */
static int dir_write(struct conn *c, int k)
{
	struct dir *d = &c->d[k];
	if (c->state == HOLE || c->fd[d->to] < 0)
		return 0;
	if (d->len > d->off) {
		ssize_t n = send(c->fd[d->to], d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		d->off += (size_t)n;
		d->bytes += (uint64_t)n;
		if (d->off == d->len)
			d->off = d->len = 0;
	}
	if (d->len == 0 && d->eof && !d->shut) {
		shutdown(c->fd[d->to], SHUT_WR);
		d->shut = true;
	}
	return 0;
}

static struct conn *conn_new(int client, const struct sockaddr_storage *up, socklen_t uplen,
                             unsigned id)
{
	bool connecting = false;
	int s = toolnet_pair(client, up, uplen, &connecting);
	if (s < 0)
		return NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(s);
		return NULL;
	}
	c->id = id;
	c->fd[0] = client;
	c->fd[1] = s;
	c->connecting = connecting;
	c->d[0].from = 0;
	c->d[0].to = 1;
	c->d[1].from = 1;
	c->d[1].to = 0;
	return c;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	*o = (struct options){.hold_s = 180};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--observe") == 0) {
			o->observe = true;
			continue;
		} else if (v == NULL) {
			return -1;
		} else if (strcmp(a, "--listen") == 0) {
			o->listen = v;
		} else if (strcmp(a, "--connect") == 0) {
			o->connect = v;
		} else if (strcmp(a, "--log") == 0) {
			o->log = v;
		} else if (strcmp(a, "--record") == 0) {
			o->record = v;
		} else if (strcmp(a, "--hold") == 0) {
			o->hold_s = atoi(v);
		} else {
			return -1;
		}
		i++;
	}
	return o->listen != NULL && o->connect != NULL && o->log != NULL && o->hold_s > 0 ? 0 : -1;
}

/* What side K of C waits for in poll. */
static short side_events(const struct conn *c, int k)
{
	if (c->fd[k] < 0)
		return 0;
	if (k == 1 && c->connecting)
		return POLLOUT;
	short ev = 0;
	const struct dir *in = &c->d[k], *out = &c->d[1 - k];
	if (!in->eof && (c->state == HOLE || in->len < BUF_MAX))
		ev |= POLLIN;
	if (c->state != HOLE && out->len > out->off)
		ev |= POLLOUT;
	return ev;
}

/* Handles what poll said about side K of C. */
static void side_event(const struct options *o, struct conn *c, int k, short re)
{
	if (k == 1 && c->connecting) {
		int err = 0;
		socklen_t elen = sizeof(err);
		getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &elen);
		if (err != 0) {
			fprintf(log_file, "conn %u upstream refused\n", c->id);
			conn_close(c);
			return;
		}
		c->connecting = false;
		return;
	}
	bool gone = (re & (POLLIN | POLLHUP | POLLERR)) && side_read(o, c, k) != 0;
	for (int w = 0; w < 2 && !gone && !c->connecting; w++)
		gone = dir_write(c, w) != 0;
	if (gone && c->state == HOLE) {
		close(c->fd[k]);
		c->fd[k] = -1;
	} else if (gone || (c->d[0].shut && c->d[1].shut)) {
		conn_close(c);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse_args(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	struct sockaddr_storage uss;
	socklen_t ulen;
	if (toolnet_resolve(o.connect, 0, &uss, &ulen) != 0) {
		fprintf(stderr, "censor: addresses are numeric HOST:PORT\n");
		return 2;
	}
	log_file = fopen(o.log, "a");
	if (log_file == NULL) {
		fprintf(stderr, "censor: cannot open %s: %s\n", o.log, strerror(errno));
		return 1;
	}
	setvbuf(log_file, NULL, _IOLBF, 0); /* a test reads it while we run */
	toolnet_signals();
	int lfd = toolnet_listen(o.listen, "censor");
	if (lfd < 0)
		return 1;

	struct conn *conns[CONNS_MAX] = {0};
	size_t nconns = 0;
	unsigned next_id = 0;
	while (!toolnet_stopping) {
		struct pollfd pfd[1 + 2 * CONNS_MAX];
		size_t np = 0;
		int64_t now = toolnet_now_ms(), wait = 1000;
		pfd[np++] = (struct pollfd){.fd = lfd, .events = nconns < CONNS_MAX ? POLLIN : 0};
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			if (c->state == HOLE && c->hole_until - now < wait)
				wait = c->hole_until - now;
			for (int k = 0; k < 2; k++) {
				short ev = side_events(c, k);
				/* Nothing to wait for on this side: leave it out, or a hung-up
				 * socket would wake poll at once, again and again. */
				pfd[np++] = (struct pollfd){.fd = ev ? c->fd[k] : -1, .events = ev};
			}
		}
		if (poll(pfd, np, (int)(wait > 0 ? wait : 0)) < 0 && errno != EINTR)
			break;
		now = toolnet_now_ms();
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			for (int k = 0; k < 2; k++) {
				short re = pfd[1 + 2 * i + (size_t)k].revents;
				if (re != 0 && c->fd[k] >= 0)
					side_event(&o, c, k, re);
			}
			if (c->state == HOLE && now >= c->hole_until)
				conn_close(c);
		}
		if (pfd[0].revents & POLLIN) {
			int cfd = accept(lfd, NULL, NULL);
			struct conn *c = cfd >= 0 ? conn_new(cfd, &uss, ulen, next_id) : NULL;
			if (c != NULL) {
				conns[nconns++] = c;
				next_id++;
			} else if (cfd >= 0) {
				close(cfd);
			}
		}
		/* Forget connections that closed. */
		size_t kept = 0;
		for (size_t i = 0; i < nconns; i++) {
			if (conns[i]->fd[0] >= 0 || conns[i]->fd[1] >= 0)
				conns[kept++] = conns[i];
			else
				conn_free(conns[i]);
		}
		nconns = kept;
	}
	for (size_t i = 0; i < nconns; i++)
		conn_free(conns[i]);
	close(lfd);
	fclose(log_file);
	return 0;
}
