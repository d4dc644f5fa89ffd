/* SPDX-License-Identifier: MIT */
/*
 * faultproxy: a small TCP proxy that makes a good network bad, for the censored-network tests
 * (tests/test_it_censored.c). Each chunk of bytes is held for a delay with jitter (byte order
 * is kept, as TCP keeps it), a direction may stall for seconds at random, and a connection may
 * be reset (RST to both sides, SO_LINGER 0) after a random number of bytes, i.e. mid-frame.
 *
 * Randomness comes from --seed: connection N draws from its own generator, seeded from the
 * seed and N, so a run with the same seed makes the same decisions for the same byte stream.
 * The stream is watched as Cairn frames (u16 length, body) only to say where a reset cut it.
 * On SIGTERM or SIGINT it prints what it did to stderr and exits 0. Usage: faultproxy --help.
 * Besides the bytes it forwarded, it reports what the clients' TCP carried: the payload bytes
 * received from them and acknowledged by them (TCP_INFO on the client side of each connection),
 * each byte once, without TCP/IP headers or retransmissions, and without what the proxy had
 * written toward a client that was gone before it could take it.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
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

#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked and _received (Linux 4.1+) */

#include "toolnet.h"

#define HOLD_MAX  (1u << 20) /* bytes held per direction before reading stops */
#define READ_MAX  16384
#define CONNS_MAX 256

struct options {
	const char *listen, *connect;
	uint64_t seed;
	int delay_ms, jitter_ms;
	size_t chunk_max;
	double stall_prob;
	int stall_min_ms, stall_max_ms;
	double reset_prob;
	long reset_min, reset_max;
};

struct chunk {
	struct chunk *next;
	int64_t due;
	size_t len, off;
	uint8_t data[];
};

/* One direction of a connection: bytes read from FROM wait in a queue, then go to TO. */
struct dir {
	int from, to;
	struct chunk *head, *tail;
	size_t held;
	int64_t last_due, stall_until;
	bool eof, shut;
	uint64_t rng;
	uint64_t bytes;
	/* Frame watch: the header bytes still to come, then the body bytes still to come. */
	unsigned hdr_left;
	uint8_t hdr[2];
	size_t body_left, frame_len;
};

struct conn {
	unsigned id;
	int fd[2]; /* client side, upstream side */
	bool connecting;
	long reset_after; /* bytes forwarded (both ways) before the reset; -1: never */
	long forwarded;
	struct dir d[2]; /* 0: client to upstream, 1: upstream to client */
};

struct stats {
	unsigned conns, resets, resets_mid_frame, refused;
	uint64_t bytes[2], chunks, held_ms;
	unsigned stalls;
	uint64_t stall_ms;
	uint64_t client_received, client_acked; /* TCP payload from / taken by the clients */
	char cuts[512];
};

static struct stats st;

/* splitmix64: small, and good enough to spread seeds and draw delays. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* A uniform integer in [LO, HI]. */
static long rng_range(uint64_t *s, long lo, long hi)
{
	if (hi <= lo)
		return lo;
	return lo + (long)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static void usage(FILE *f)
{
	fputs("usage: faultproxy --listen HOST:PORT --connect HOST:PORT [options]\n"
	      "  --seed N               seed of every random decision (default 1)\n"
	      "  --delay MS             hold each chunk MS milliseconds (default 0)\n"
	      "  --jitter MS            plus or minus up to MS, uniformly (default 0)\n"
	      "  --chunk N              cut what is read into chunks of 1..N bytes (default 1400)\n"
	      "  --stall P MIN:MAX      before a chunk, with probability P, stop that direction\n"
	      "                         for MIN..MAX ms\n"
	      "  --reset P MIN:MAX      a connection is, with probability P, reset (RST both\n"
	      "                         ways) after MIN..MAX bytes forwarded in all\n"
	      "Prints \"listening HOST:PORT\" on stdout once it accepts (PORT 0 picks one), and\n"
	      "what it did on stderr when it gets SIGTERM or SIGINT.\n",
	      f);
}

static void drop_queue(struct dir *d)
{
	while (d->head != NULL) {
		struct chunk *c = d->head;
		d->head = c->next;
		free(c);
	}
	d->tail = NULL;
	d->held = 0;
}

/* Closes both sides; with RST, a reset the peers see as ECONNRESET. */
static void conn_close(struct conn *c, bool rst)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (c->fd[0] >= 0 && getsockopt(c->fd[0], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
		st.client_received += ti.tcpi_bytes_received;
		st.client_acked += ti.tcpi_bytes_acked;
	}
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] < 0)
			continue;
		if (rst) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			(void)setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c->fd[i]);
		c->fd[i] = -1;
		drop_queue(&c->d[i]);
	}
}

/* Follows N bytes of direction D's stream through its frames. */
static void frame_watch(struct dir *d, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (d->hdr_left > 0) {
			d->hdr[2 - d->hdr_left] = *p++;
			n--;
			if (--d->hdr_left == 0)
				d->body_left = d->frame_len = (size_t)d->hdr[0] << 8 | d->hdr[1];
			continue;
		}
		size_t take = n < d->body_left ? n : d->body_left;
		d->body_left -= take;
		p += take;
		n -= take;
		if (d->body_left == 0)
			d->hdr_left = 2;
	}
}

static void note_cut(const struct conn *c, int dir)
{
	const struct dir *d = &c->d[dir];
	bool mid = d->hdr_left == 1 || (d->hdr_left == 0 && d->body_left > 0);
	st.resets++;
	st.resets_mid_frame += mid;
	size_t used = strlen(st.cuts);
	if (used + 80 < sizeof(st.cuts)) {
		if (mid && d->hdr_left == 0)
			snprintf(st.cuts + used, sizeof(st.cuts) - used,
			         "%s#%u %s %zu/%zu of a frame", used ? ", " : "", c->id,
			         dir ? "down" : "up", d->frame_len - d->body_left, d->frame_len);
		else
			snprintf(st.cuts + used, sizeof(st.cuts) - used, "%s#%u %s %s",
			         used ? ", " : "", c->id, dir ? "down" : "up",
			         mid ? "inside a length prefix" : "between frames");
	}
}

/* Queues N bytes read for direction D, cut into chunks with their due times. */
static int enqueue(const struct options *o, struct dir *d, const uint8_t *p, size_t n)
{
	int64_t now = toolnet_now_ms();
	while (n > 0) {
		size_t len = (size_t)rng_range(&d->rng, 1, (long)o->chunk_max);
		if (len > n)
			len = n;
		struct chunk *c = malloc(sizeof(*c) + len);
		if (c == NULL)
			return -1;
		memcpy(c->data, p, len);
		c->len = len;
		c->off = 0;
		c->next = NULL;
		int64_t hold = o->delay_ms + rng_range(&d->rng, -o->jitter_ms, o->jitter_ms);
		c->due = now + (hold > 0 ? hold : 0);
		if (o->stall_prob > 0 && rng_unit(&d->rng) < o->stall_prob) {
			long ms = rng_range(&d->rng, o->stall_min_ms, o->stall_max_ms);
			int64_t from = d->stall_until > now ? d->stall_until : now;
			d->stall_until = from + ms;
			st.stalls++;
			st.stall_ms += (uint64_t)ms;
		}
		if (c->due < d->stall_until)
			c->due = d->stall_until;
		if (c->due < d->last_due)
			c->due = d->last_due; /* never overtake: a stream keeps its order */
		d->last_due = c->due;
		st.held_ms += (uint64_t)(c->due - now);
		st.chunks++;
		if (d->tail != NULL)
			d->tail->next = c;
		else
			d->head = c;
		d->tail = c;
		d->held += len;
		p += len;
		n -= len;
	}
	return 0;
}

/* Reads what FROM has. Returns 0, or -1 when the connection must be reset. */
static int dir_read(const struct options *o, struct dir *d)
{
	uint8_t buf[READ_MAX];
	ssize_t n = recv(d->from, buf, sizeof(buf), 0);
	if (n > 0)
		return enqueue(o, d, buf, (size_t)n);
	if (n == 0) {
		d->eof = true;
		return 0;
	}
	return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

/* Writes the chunks that are due. Returns 0, 1 when the reset budget ran out (the connection
 * is then cut), or -1 on a write error. */
static int dir_write(struct conn *c, int dir, int64_t now)
{
	struct dir *d = &c->d[dir];
	while (d->head != NULL && d->head->due <= now) {
		struct chunk *ch = d->head;
		size_t len = ch->len - ch->off;
		bool cut = false;
		if (c->reset_after >= 0 && c->forwarded + (long)len > c->reset_after) {
			len = (size_t)(c->reset_after - c->forwarded);
			cut = true;
		}
		ssize_t n = len > 0 ? send(d->to, ch->data + ch->off, len, MSG_NOSIGNAL) : 0;
		if (n < 0)
			return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		frame_watch(d, ch->data + ch->off, (size_t)n);
		ch->off += (size_t)n;
		d->held -= (size_t)n;
		d->bytes += (uint64_t)n;
		st.bytes[dir] += (uint64_t)n;
		c->forwarded += (long)n;
		if (cut && (size_t)n == len) {
			note_cut(c, dir);
			return 1;
		}
		if ((size_t)n < len)
			return 0; /* the socket is full */
		d->head = ch->next;
		if (d->head == NULL)
			d->tail = NULL;
		free(ch);
	}
	if (d->head == NULL && d->eof && !d->shut) {
		shutdown(d->to, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

static struct conn *conn_new(const struct options *o, int client, const struct sockaddr_storage *up,
                             socklen_t uplen)
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
	c->id = st.conns++;
	c->fd[0] = client;
	c->fd[1] = s;
	c->connecting = connecting;
	uint64_t seed = o->seed ^ (0x9e3779b97f4a7c15u * (c->id + 1));
	uint64_t g = rng_next(&seed);
	c->reset_after = o->reset_prob > 0 && rng_unit(&g) < o->reset_prob
	                     ? rng_range(&g, o->reset_min, o->reset_max)
	                     : -1;
	for (int i = 0; i < 2; i++) {
		c->d[i].from = c->fd[i];
		c->d[i].to = c->fd[1 - i];
		c->d[i].rng = rng_next(&g);
		c->d[i].hdr_left = 2;
	}
	return c;
}

static int parse_range(const char *text, long *lo, long *hi)
{
	char *end;
	*lo = strtol(text, &end, 10);
	if (*end != ':')
		return -1;
	*hi = strtol(end + 1, &end, 10);
	return *end == '\0' && *lo >= 0 && *hi >= *lo ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	*o = (struct options){.seed = 1, .chunk_max = 1400};
	for (int i = 1; i < argc;) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char *v2 = i + 2 < argc ? argv[i + 2] : NULL;
		long lo, hi;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (v == NULL) {
			return -1;
		} else if (strcmp(a, "--listen") == 0) {
			o->listen = v;
		} else if (strcmp(a, "--connect") == 0) {
			o->connect = v;
		} else if (strcmp(a, "--seed") == 0) {
			o->seed = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--delay") == 0) {
			o->delay_ms = atoi(v);
		} else if (strcmp(a, "--jitter") == 0) {
			o->jitter_ms = atoi(v);
		} else if (strcmp(a, "--chunk") == 0) {
			o->chunk_max = (size_t)atol(v);
		} else if (strcmp(a, "--stall") == 0 && v2 != NULL &&
		           parse_range(v2, &lo, &hi) == 0) {
			o->stall_prob = atof(v);
			o->stall_min_ms = (int)lo;
			o->stall_max_ms = (int)hi;
			i++;
		} else if (strcmp(a, "--reset") == 0 && v2 != NULL &&
		           parse_range(v2, &lo, &hi) == 0) {
			o->reset_prob = atof(v);
			o->reset_min = lo;
			o->reset_max = hi;
			i++;
		} else {
			return -1;
		}
		i += 2; /* the option and its value (a range option took one more above) */
	}
	if (o->listen == NULL || o->connect == NULL || o->chunk_max == 0 || o->delay_ms < 0 ||
	    o->jitter_ms < 0)
		return -1;
	return 0;
}

static void report(const struct options *o)
{
	fprintf(stderr,
	        "faultproxy: seed %" PRIu64 ", delay %d+-%d ms: %u connections, %" PRIu64
	        " bytes up, %" PRIu64 " down, %" PRIu64 " chunks held %.0f ms on average; "
	        "%u stalls (%" PRIu64
	        " ms); %u resets (%u mid-frame)%s%s%s; the clients' TCP: %" PRIu64
	        " bytes received from them, %" PRIu64 " acknowledged by them\n",
	        o->seed, o->delay_ms, o->jitter_ms, st.conns, st.bytes[0], st.bytes[1], st.chunks,
	        st.chunks ? (double)st.held_ms / (double)st.chunks : 0.0, st.stalls, st.stall_ms,
	        st.resets, st.resets_mid_frame, st.resets ? ": " : "", st.cuts,
	        st.refused ? "; upstream refused some" : "", st.client_received, st.client_acked);
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
		fprintf(stderr, "faultproxy: addresses are numeric HOST:PORT\n");
		return 2;
	}
	toolnet_signals();

	int lfd = toolnet_listen(o.listen, "faultproxy");
	if (lfd < 0)
		return 1;

	struct conn *conns[CONNS_MAX] = {0};
	size_t nconns = 0;
	while (!toolnet_stopping) {
		struct pollfd pfd[1 + 2 * CONNS_MAX];
		struct conn *owner[1 + 2 * CONNS_MAX];
		int side[1 + 2 * CONNS_MAX];
		size_t np = 0;
		int64_t now = toolnet_now_ms(), wait = 1000;
		pfd[np++] = (struct pollfd){.fd = lfd, .events = nconns < CONNS_MAX ? POLLIN : 0};
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			for (int k = 0; k < 2; k++) {
				struct dir *in = &c->d[k], *out = &c->d[1 - k];
				short ev = 0;
				if (!in->eof && in->held < HOLD_MAX && !(k == 1 && c->connecting))
					ev |= POLLIN;
				/* fd[k] is where direction 1-k writes. */
				if (k == 1 && c->connecting)
					ev |= POLLOUT;
				else if (out->head != NULL && out->head->due <= now)
					ev |= POLLOUT;
				else if (out->head != NULL && out->head->due - now < wait)
					wait = out->head->due - now;
				owner[np] = c;
				side[np] = k;
				/* Nothing to wait for on this side: leave it out, or a hung-up
				 * socket would wake poll at once, again and again. */
				pfd[np++] = (struct pollfd){.fd = ev ? c->fd[k] : -1, .events = ev};
			}
		}
		if (poll(pfd, np, (int)(wait > 0 ? wait : 0)) < 0 && errno != EINTR)
			break;
		now = toolnet_now_ms();
		if (pfd[0].revents & POLLIN) {
			int cfd = accept(lfd, NULL, NULL);
			struct conn *c = cfd >= 0 ? conn_new(&o, cfd, &uss, ulen) : NULL;
			if (c != NULL)
				conns[nconns++] = c;
			else if (cfd >= 0)
				close(cfd);
		}
		for (size_t j = 1; j < np; j++) {
			struct conn *c = owner[j];
			int k = side[j];
			if (c->fd[0] < 0)
				continue;
			short re = pfd[j].revents;
			bool reset = false;
			if (k == 1 && c->connecting && (re & (POLLOUT | POLLERR | POLLHUP))) {
				int err = 0;
				socklen_t elen = sizeof(err);
				getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &elen);
				if (err != 0) {
					st.refused++;
					conn_close(c, true);
					continue;
				}
				c->connecting = false;
				re = 0;
			}
			if ((re & (POLLIN | POLLHUP | POLLERR)) && dir_read(&o, &c->d[k]) != 0)
				reset = true;
			/* Then whatever is due, in both directions (the next poll waits for the
			 * rest). */
			for (int w = 0; w < 2 && !reset && !c->connecting; w++) {
				int rc = dir_write(c, w, now);
				if (rc != 0)
					reset = true;
			}
			if (reset) {
				conn_close(c, true);
				continue;
			}
			if (c->d[0].shut && c->d[1].shut)
				conn_close(c, false);
		}
		/* Forget connections that closed. */
		size_t kept = 0;
		for (size_t i = 0; i < nconns; i++) {
			if (conns[i]->fd[0] >= 0)
				conns[kept++] = conns[i];
			else
				free(conns[i]);
		}
		nconns = kept;
	}
	for (size_t i = 0; i < nconns; i++) {
		conn_close(conns[i], false);
		free(conns[i]);
	}
	close(lfd);
	report(&o);
	return 0;
}
