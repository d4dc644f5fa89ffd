/* SPDX-License-Identifier: MIT */
/*
 * Integration: hostile peers at scale (issue 5, item 5). All at once against the real relay:
 * 1,000 slowloris connections (half dribble message 1 a byte a second, half complete the
 * handshake and then leave a frame unfinished), 1,000 peers sending garbage (half instead of
 * message 1, half after a good handshake), each reconnecting whenever the relay closes it,
 * and one peer filling a mailbox to its quota and hammering it there; meanwhile legitimate
 * clients run handshake + AUTH + SUBSCRIBE + SEND + delivery + ACK round trips. Printed:
 * their success rate and latency before, during and after, the relay's RSS, descriptors and
 * CPU. A second test shows what happens when slow peers outnumber max_connections, a third
 * what a handshake flood does to the replay cache (docs/RELIABILITY.md has the figures).
 *
 * CAIRN_SCALE_SECONDS=N makes the first test's attack last N seconds (default 10; 8 under
 * ASan).
 *
 * The hostile peers are driven from this process with non-blocking sockets and poll(); the
 * legitimate clients and the quota filler are child processes (the blocking test client), so
 * the attack never waits on them nor they on it. Results come back through shared memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "it_common.h"

/* Hostile peers of each kind (half as many under AddressSanitizer, whose relay is slower). */
#define PER_KIND   (IT_ASAN ? 250 : 500)
#define LEGIT      6
#define PRE_MS     1500                     /* legitimate traffic alone, before */
#define ATTACK_MS  (IT_ASAN ? 8000 : 10000) /* everything at once */
#define POST_MS    1500                     /* legitimate traffic alone, after */
#define HS_TIMEOUT 3                        /* handshake_timeout, s */
#define IDLE_S     5                        /* idle_timeout, s */
#define STEP_MS    5000                     /* a legitimate step slower than this fails */
#define SAMPLES    40000                    /* round trips recorded per legitimate client */
#define HALF_BURST 60000                    /* bytes of the unfinished frame sent at once */

/* The second test: more slow peers than the relay serves. */
#define LIMIT_CONNS  (IT_ASAN ? 500 : 1000)
#define LIMIT_PEERS  (LIMIT_CONNS + LIMIT_CONNS / 5)
#define LIMIT_ATTACK (IT_ASAN ? 5000 : 6000)

/* The third test: a handshake flood against a replay cache of REPLAY_CAP entries. */
#define REPLAY_CAP  4096
#define FLOOD_PEERS 100
#define FLOOD_MS    8000 /* at most; it stops once the relay stops answering handshakes */
#define FLOOD_POST  (HS_TIMEOUT * 1000 + 2000)

/* ---- shared results ------------------------------------------------------------------- */

struct sample {
	int32_t start_ms; /* since the test's t0 */
	int32_t lat_us;   /* whole round trip, or time until it failed */
	int8_t ok;
	int8_t stage; /* where it failed: 1 connect/handshake, 2 AUTH, 3 SEND/delivery, 4 ACK */
};

struct legit_result {
	uint32_t n;
	struct sample s[SAMPLES];
};

struct filler_result {
	uint64_t accepted, quota, other, sent;
	int64_t full_ms; /* since t0, when the first quota error came; -1 never */
	int failed;      /* lost its connection or timed out */
	uint32_t last_code;
};

struct shared {
	_Atomic int stop;
	int64_t t0_ms;
	int64_t deadline_ms; /* children stop by then whatever happens to the test */
	struct owner owners[LEGIT];
	struct filler_result filler;
	struct legit_result legit[LEGIT];
};

/* ---- legitimate clients (child processes) ----------------------------------------------- */

/*
 * One round trip on a new connection: handshake, AUTH, then SUBSCRIBE and SEND in one frame;
 * the envelope comes back from memory and is acknowledged at once, as a client does that
 * stored it. Returns 0 or the stage that failed.
 */
static int legit_round(const struct relayproc *r, const struct owner *o)
{
	static struct tclient c;
	if (tclient_connect(&c, r->port, r->pub) != 0) {
		tclient_close(&c);
		return 1;
	}
	int stage = 2;
	if (tclient_auth(&c, o->rid, o->sk) != 0)
		goto out;
	stage = 3;
	uint8_t body[512];
	randombytes_buf(body, sizeof(body));
	struct cairn_msg sub = {
	    .type = CAIRN_CMD_SUBSCRIBE, .request_id = 100, .recipient_id = o->rid};
	struct cairn_msg snd = {.type = CAIRN_CMD_SEND,
	                        .request_id = 101,
	                        .sender_id = o->sid,
	                        .envelope = body,
	                        .envelope_len = sizeof(body)};
	if (tclient_queue(&c, &sub) != 0 || tclient_queue(&c, &snd) != 0 || tclient_flush(&c) != 0)
		goto out;
	bool sub_ok = false, send_ok = false, got = false;
	unsigned acks = 0, acked = 0;
	uint32_t ack_rid = 200;
	while (!(sub_ok && send_ok && got && acked == acks)) {
		stage = sub_ok && send_ok && got ? 4 : 3;
		struct cairn_msg m;
		if (tclient_recv(&c, &m, STEP_MS) != 0)
			goto out;
		if (m.type == CAIRN_REPLY_ENVELOPE && m.request_id == 100) {
			/* Ours, or one an earlier failed round left: acknowledge either. */
			if (m.envelope_len == sizeof(body) &&
			    memcmp(m.envelope, body, sizeof(body)) == 0) {
				got = true;
			}
			struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
			                        .request_id = ack_rid++,
			                        .recipient_id = o->rid,
			                        .envelope_id = m.envelope_id};
			if (tclient_send(&c, &ack) != 0)
				goto out;
			acks++;
		} else if (m.type == CAIRN_REPLY_OK && m.request_id == 100) {
			sub_ok = true;
		} else if (m.type == CAIRN_REPLY_OK && m.request_id == 101) {
			send_ok = true;
		} else if (m.type == CAIRN_REPLY_OK && m.request_id >= 200) {
			acked++;
		} else {
			goto out; /* an ERROR or an END: not what a served client gets */
		}
	}
	stage = 0;
out:
	tclient_close(&c);
	return stage;
}

/* Whether a child should stop: told to, or past the deadline (the test failed meanwhile). */
static bool child_done(struct shared *sh)
{
	return atomic_load(&sh->stop) || it_mono_ms() > sh->deadline_ms;
}

static void legit_child(struct shared *sh, const struct relayproc *r, int idx)
{
	struct legit_result *res = &sh->legit[idx];
	while (!child_done(sh) && res->n < SAMPLES) {
		int64_t t = it_mono_us();
		int stage = legit_round(r, &sh->owners[idx]);
		struct sample *s = &res->s[res->n];
		s->start_ms = (int32_t)(t / 1000 - sh->t0_ms);
		s->lat_us = (int32_t)(it_mono_us() - t);
		s->ok = stage == 0;
		s->stage = (int8_t)stage;
		res->n++;
		it_sleep_ms(stage == 0 ? 5 : 50);
	}
}

/* One peer fills a mailbox with 16 KiB envelopes, 32 in flight, and keeps going past its
 * quota until told to stop. */
static void filler_child(struct shared *sh, const struct relayproc *r)
{
	struct filler_result *f = &sh->filler;
	f->full_ms = -1;
	static struct tclient c;
	struct owner o;
	if (tclient_connect(&c, r->port, r->pub) != 0 ||
	    tclient_create(&c, o.rid, o.sid, o.pk, o.sk) != 0) {
		f->failed = 1;
		return;
	}
	static uint8_t body[CAIRN_ENVELOPE_MAX];
	randombytes_buf(body, sizeof(body));
	unsigned outstanding = 0;
	uint32_t rid = 1000;
	while (!child_done(sh) || outstanding > 0) {
		if (!child_done(sh) && outstanding < 32) {
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = rid++,
			                      .sender_id = o.sid,
			                      .envelope = body,
			                      .envelope_len = sizeof(body)};
			if (tclient_send(&c, &m) != 0) {
				f->failed = 2;
				break;
			}
			outstanding++;
			f->sent++;
			continue;
		}
		struct cairn_msg reply;
		if (tclient_recv(&c, &reply, 10000) != 0) {
			f->failed = 3;
			break;
		}
		outstanding--;
		if (reply.type == CAIRN_REPLY_OK) {
			f->accepted++;
		} else if (reply.type == CAIRN_REPLY_ERROR && -(int)reply.code == CAIRN_EQUOTA) {
			if (f->quota++ == 0)
				f->full_ms = it_mono_ms() - sh->t0_ms;
		} else {
			f->other++;
			f->last_code = reply.code;
		}
	}
	tclient_close(&c);
}

/* ---- hostile peers (this process) ------------------------------------------------------ */

enum kind { SLOW_PRE, SLOW_HALF, JUNK_PRE, JUNK_POST, KINDS };
static const char *const kind_name[KINDS] = {
    "slowloris, message 1 at 1 byte/s",
    "slowloris, handshaken, frame unfinished",
    "garbage instead of message 1",
    "garbage after a good handshake",
};

enum pstate { P_IDLE, P_CONNECTING, P_HELLO, P_ACTIVE };

struct peer {
	int fd;
	uint8_t kind, state, variant;
	uint16_t msg_len, msg_off; /* message 1 and how much of it went out */
	uint32_t burst_left;       /* of the unfinished frame's first burst */
	int64_t opened_ms, next_ms;
	uint16_t in_len;
	uint8_t in[2 + CAIRN_HANDSHAKE2_MAX];
	uint8_t msg[2 + CAIRN_HANDSHAKE1_MAX];
	struct noise_handshake hs;
	struct cairn_session session;
};

struct kind_stats {
	uint64_t opened, closed, connect_failed, handshakes, bytes_in;
	int64_t life_min, life_max, life_sum;
	int64_t last_handshake_ms;
};

struct driver {
	const struct relayproc *r;
	struct peer *p;
	size_t n;
	struct pollfd *pfd;
	size_t *idx;
	bool closing;
	struct kind_stats st[KINDS];
};

static void peer_close(struct driver *d, struct peer *p, bool by_relay)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	if (by_relay) {
		struct kind_stats *k = &d->st[p->kind];
		int64_t life = it_mono_ms() - p->opened_ms;
		k->closed++;
		k->life_min = k->closed == 1 || life < k->life_min ? life : k->life_min;
		k->life_max = life > k->life_max ? life : k->life_max;
		k->life_sum += life;
	}
	cairn_session_wipe(&p->session);
	p->state = P_IDLE;
	p->next_ms = it_mono_ms(); /* an attacker comes straight back */
}

static void peer_dial(struct driver *d, struct peer *p)
{
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(p->fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(d->r->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->opened_ms = it_mono_ms();
	p->in_len = 0;
	p->msg_off = p->msg_len = 0;
	p->burst_left = 0;
	d->st[p->kind].opened++;
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		d->st[p->kind].connect_failed++;
		close(p->fd);
		p->fd = -1;
		p->next_ms = it_mono_ms() + 100;
		return;
	}
	p->state = P_CONNECTING;
}

static void send_some(struct peer *p, const void *buf, size_t len)
{
	(void)send(p->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Builds a real message 1 (framed) into P->msg. */
static void make_hello(struct driver *d, struct peer *p)
{
	size_t len = 0;
	assert_int_equal(cairn_handshake_client_start(&p->hs, d->r->pub, NULL, (uint64_t)time(NULL),
	                                              randombytes_uniform(CAIRN_HELLO_PAD_MAX + 1),
	                                              p->msg + 2, CAIRN_HANDSHAKE1_MAX, &len),
	                 0);
	p->msg[0] = (uint8_t)(len >> 8);
	p->msg[1] = (uint8_t)len;
	p->msg_len = (uint16_t)(len + 2);
}

/* The connection is up: start what this kind of peer does. */
static void peer_connected(struct driver *d, struct peer *p)
{
	p->state = P_ACTIVE;
	p->next_ms = it_mono_ms();
	uint8_t junk[400];
	switch (p->kind) {
	case SLOW_PRE:
		make_hello(d, p); /* sent a byte at a time by peer_timer */
		break;
	case JUNK_PRE:
		randombytes_buf(junk, sizeof(junk));
		if (p->variant == 0) {
			/* A length message 1 may have: the relay tries (one X25519) and fails. */
			junk[0] = 0;
			junk[1] = (uint8_t)(CAIRN_HANDSHAKE1_MIN + randombytes_uniform(200));
			send_some(p, junk, 2 + junk[1]);
		} else if (p->variant == 1) {
			send_some(p, junk, sizeof(junk)); /* any length at all */
		}
		p->next_ms = it_mono_ms() + 1000; /* then 16 more bytes a second */
		break;
	default:
		make_hello(d, p);
		send_some(p, p->msg, p->msg_len);
		p->state = P_HELLO;
		break;
	}
}

/* Message 2 arrived: the handshake is done; start the post-handshake behaviour. */
static void peer_handshaken(struct driver *d, struct peer *p)
{
	d->st[p->kind].handshakes++;
	d->st[p->kind].last_handshake_ms = it_mono_ms();
	p->state = P_ACTIVE;
	p->next_ms = it_mono_ms() + 1000;
	if (p->kind == SLOW_HALF) {
		/* A frame of the largest length, most of it at once, the rest never. */
		static const uint8_t hdr[2] = {0xff, 0xff};
		send_some(p, hdr, 2);
		p->burst_left = HALF_BURST;
		return;
	}
	/* JUNK_POST: a frame that fails decryption, a frame length below the minimum, or a
	 * well-sealed frame of msgpack garbage. Each makes the relay close at once. */
	uint8_t buf[2 + 300];
	randombytes_buf(buf, sizeof(buf));
	if (p->variant == 0) {
		buf[0] = 1;
		buf[1] = 16;
		send_some(p, buf, 2 + 272);
	} else if (p->variant == 1) {
		buf[0] = 0;
		buf[1] = 5;
		send_some(p, buf, 2 + 5);
	} else {
		static const uint8_t c1[] = {0x92, 0x01, 0x07, 0xc1};
		uint8_t frame[2 + 256 + CAIRN_AEAD_TAG_LEN];
		size_t len = 0;
		assert_int_equal(
		    frame_seal(&p->session.send, c1, sizeof(c1), 0, frame, sizeof(frame), &len), 0);
		send_some(p, frame, len);
	}
}

/* Timed behaviour: dribbles and periodic junk. */
static void peer_timer(struct peer *p, int64_t now)
{
	if (p->state != P_ACTIVE || now < p->next_ms)
		return;
	static uint8_t junk[16];
	if (p->kind == SLOW_PRE && p->msg_off < p->msg_len) {
		send_some(p, &p->msg[p->msg_off++], 1);
	} else if (p->kind == SLOW_HALF && p->burst_left == 0) {
		randombytes_buf(junk, 1);
		send_some(p, junk, 1); /* a byte a second: never a whole frame */
	} else if (p->kind == JUNK_PRE) {
		randombytes_buf(junk, sizeof(junk));
		send_some(p, junk, sizeof(junk));
	}
	p->next_ms = now + 1000;
}

/* Reads whatever the relay sent (only message 2 is ever expected) and notices a close. */
static void peer_readable(struct driver *d, struct peer *p)
{
	for (;;) {
		uint8_t buf[4096];
		ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			peer_close(d, p, true);
			return;
		}
		if (p->state != P_HELLO) {
			d->st[p->kind].bytes_in += (uint64_t)n;
			continue;
		}
		size_t take = (size_t)n;
		if (take > sizeof(p->in) - p->in_len)
			take = sizeof(p->in) - p->in_len;
		memcpy(p->in + p->in_len, buf, take);
		p->in_len = (uint16_t)(p->in_len + take);
		if (p->in_len < 2)
			continue;
		size_t want = 2 + (((size_t)p->in[0] << 8) | p->in[1]);
		if (p->in_len < want)
			continue;
		if (cairn_handshake_client_finish(&p->hs, p->in + 2, want - 2, &p->session) != 0)
			fail_msg("a hostile peer's good handshake failed");
		peer_handshaken(d, p);
	}
}

static void peer_writable(struct peer *p)
{
	static uint8_t junk[16384];
	static bool filled;
	if (!filled) {
		randombytes_buf(junk, sizeof(junk));
		filled = true;
	}
	while (p->burst_left > 0) {
		size_t len = p->burst_left < sizeof(junk) ? p->burst_left : sizeof(junk);
		ssize_t n = send(p->fd, junk, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			return;
		p->burst_left -= (uint32_t)n;
	}
}

static void driver_init(struct driver *d, const struct relayproc *r, const size_t count[KINDS])
{
	memset(d, 0, sizeof(*d));
	d->r = r;
	for (int k = 0; k < KINDS; k++)
		d->n += count[k];
	d->p = calloc(d->n, sizeof(*d->p));
	d->pfd = calloc(d->n, sizeof(*d->pfd));
	d->idx = calloc(d->n, sizeof(*d->idx));
	assert_true(d->p != NULL && d->pfd != NULL && d->idx != NULL);
	size_t i = 0;
	for (int k = 0; k < KINDS; k++)
		for (size_t j = 0; j < count[k]; j++, i++) {
			d->p[i].fd = -1;
			d->p[i].kind = (uint8_t)k;
			d->p[i].variant = (uint8_t)(j % 3);
			d->p[i].next_ms = 0;
		}
}

/* One round: start connections that are due, poll, react, dribble. */
static void driver_step(struct driver *d, int timeout_ms)
{
	int64_t now = it_mono_ms();
	size_t np = 0;
	for (size_t i = 0; i < d->n; i++) {
		struct peer *p = &d->p[i];
		if (p->fd < 0 && !d->closing && now >= p->next_ms)
			peer_dial(d, p);
		if (p->fd < 0)
			continue;
		peer_timer(p, now);
		short ev = POLLIN;
		if (p->state == P_CONNECTING || p->burst_left > 0)
			ev |= POLLOUT;
		d->pfd[np] = (struct pollfd){.fd = p->fd, .events = ev};
		d->idx[np++] = i;
	}
	if (poll(d->pfd, np, timeout_ms) <= 0)
		return;
	for (size_t k = 0; k < np; k++) {
		short re = d->pfd[k].revents;
		struct peer *p = &d->p[d->idx[k]];
		if (re == 0 || p->fd < 0)
			continue;
		if (p->state == P_CONNECTING) {
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err != 0) {
				d->st[p->kind].connect_failed++;
				peer_close(d, p, false);
				p->next_ms = it_mono_ms() + 100;
				continue;
			}
			peer_connected(d, p);
			continue;
		}
		if (re & POLLOUT)
			peer_writable(p);
		if (re & (POLLIN | POLLHUP | POLLERR))
			peer_readable(d, p);
	}
}

static size_t driver_open(const struct driver *d, int kind)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += d->p[i].fd >= 0 && (kind < 0 || d->p[i].kind == kind);
	return n;
}

/* The age of the oldest open connection of KIND, in ms (0 if none). */
static int64_t driver_oldest(const struct driver *d, int kind)
{
	int64_t now = it_mono_ms(), oldest = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].fd >= 0 && d->p[i].kind == kind && now - d->p[i].opened_ms > oldest)
			oldest = now - d->p[i].opened_ms;
	return oldest;
}

static void driver_close_all(struct driver *d)
{
	d->closing = true;
	for (size_t i = 0; i < d->n; i++)
		peer_close(d, &d->p[i], false);
}

static void driver_free(struct driver *d)
{
	free(d->p);
	free(d->pfd);
	free(d->idx);
}

/* ---- the relay's resources ------------------------------------------------------------- */

/* CPU time the relay used so far, in ms (user + system). */
static long relay_cpu_ms(const struct relayproc *r)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)r->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name: state, then numbers; utime and stime are the 12th and 13th. */
	const char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	unsigned long field[13] = {0};
	p += 3; /* ") S" */
	for (int i = 1; i < 13 && *p != '\0'; i++) {
		char *end;
		field[i] = strtoul(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	unsigned long ut = field[11], stime = field[12];
	return (long)((ut + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

struct usage {
	long rss0, fds0, cpu0;
	long rss_peak, fds_peak;
	long rss_end_attack, fds_end_attack;
	int64_t next_ms;
};

static void sample(const struct relayproc *r, struct usage *u, int64_t now)
{
	if (now < u->next_ms)
		return;
	u->next_ms = now + 250;
	long rss = relayproc_rss_kb(r), fds = relayproc_fds(r);
	u->rss_peak = rss > u->rss_peak ? rss : u->rss_peak;
	u->fds_peak = fds > u->fds_peak ? fds : u->fds_peak;
}

/* Waits until the relay has at most WANT descriptors open; returns the time it took or -1. */
static int64_t wait_fds_at_most(const struct relayproc *r, long want, int timeout_ms)
{
	int64_t start = it_mono_ms();
	while (it_mono_ms() - start < timeout_ms) {
		long n = relayproc_fds(r);
		if (n >= 0 && n <= want)
			return it_mono_ms() - start;
		it_sleep_ms(50);
	}
	return -1;
}

/* ---- the run --------------------------------------------------------------------------- */

/* Raises the soft descriptor limit (inherited by the relay, started after this). */
static void raise_nofile(long want)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t target = (rlim_t)want;
	if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max)
		target = rl.rlim_max;
	if (rl.rlim_cur < target) {
		rl.rlim_cur = target;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
}

/* How many descriptors this process may open. */
static long nofile(void)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY ? 1000000 : (long)rl.rlim_cur;
}

static int start_relay(struct relayproc *r, const char *limits, void **state)
{
	raise_nofile(20000);
	if (relayproc_init(r, limits) != 0 || relayproc_start(r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", r->dir);
		relayproc_cleanup(r);
		*state = NULL;
		return -1;
	}
	*state = r;
	return 0;
}

static int setup_scale(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nidle_timeout = %d\n", HS_TIMEOUT,
	         IDLE_S);
	return start_relay(&r, text, state);
}

static int setup_limited(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nmax_connections = %d\n", HS_TIMEOUT,
	         LIMIT_CONNS);
	return start_relay(&r, text, state);
}

static int setup_small_replay(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nreplay_cache_entries = %d\n",
	         HS_TIMEOUT, REPLAY_CAP);
	return start_relay(&r, text, state);
}

static int teardown(void **state)
{
	struct relayproc *r = *state;
	if (r == NULL)
		return -1;
	int rc = relayproc_stop(r, SIGTERM);
	relayproc_cleanup(r);
	assert_int_equal(rc, 0);
	return 0;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

struct phase_stats {
	unsigned ok, failed, by_stage[5];
	double p50, p99, max; /* ms, successful round trips */
};

/* Legitimate round trips that started in [FROM, TO) ms after t0. */
static struct phase_stats phase(const struct shared *sh, int n_legit, int64_t from, int64_t to)
{
	struct phase_stats ps;
	memset(&ps, 0, sizeof(ps));
	static int32_t lat[LEGIT * SAMPLES];
	size_t n = 0;
	for (int i = 0; i < n_legit; i++)
		for (uint32_t k = 0; k < sh->legit[i].n; k++) {
			const struct sample *s = &sh->legit[i].s[k];
			if (s->start_ms < from || s->start_ms >= to)
				continue;
			if (s->ok) {
				ps.ok++;
				lat[n++] = s->lat_us;
			} else {
				ps.failed++;
				ps.by_stage[s->stage < 5 ? s->stage : 0]++;
			}
		}
	if (n > 0) {
		qsort(lat, n, sizeof(lat[0]), cmp_i32);
		ps.p50 = lat[n / 2] / 1000.0;
		ps.p99 = lat[(n * 99) / 100] / 1000.0;
		ps.max = lat[n - 1] / 1000.0;
	}
	return ps;
}

static void print_phase(const char *test, const char *name, const struct phase_stats *ps)
{
	unsigned total = ps->ok + ps->failed;
	printf("%s: legitimate round trips %-7s %6u, success %6.2f%% (failed: %u connect, %u "
	       "AUTH, %u SEND/delivery, %u ACK), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
	       test, name, total, total ? 100.0 * ps->ok / total : 0.0, ps->by_stage[1],
	       ps->by_stage[2], ps->by_stage[3], ps->by_stage[4], ps->p50, ps->p99, ps->max);
}

/* Forks a child that dies with this process. */
static pid_t fork_child(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

/* Waits for the children, killing any that does not finish within 20 s. Returns how many had
 * to be killed. */
static int reap_children(const pid_t *pids, int n)
{
	int killed = 0;
	int64_t end = it_mono_ms() + 20000;
	for (int i = 0; i < n; i++) {
		int status;
		for (;;) {
			pid_t got = waitpid(pids[i], &status, WNOHANG);
			if (got == pids[i] || (got < 0 && errno != EINTR))
				break;
			if (it_mono_ms() > end) {
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &status, 0);
				killed++;
				break;
			}
			it_sleep_ms(20);
		}
	}
	return killed;
}

static void test_hostile_at_scale(void **state)
{
	struct relayproc *r = *state;
	int attack_ms = ATTACK_MS;
	if (getenv("CAIRN_SCALE_SECONDS") != NULL && atoi(getenv("CAIRN_SCALE_SECONDS")) > 0)
		attack_ms = atoi(getenv("CAIRN_SCALE_SECONDS")) * 1000;
	/* The hostile sockets are this process's: fewer peers if the hard limit is low. */
	long limit = nofile();
	size_t per_kind = PER_KIND;
	if (limit < 4 * PER_KIND + 256) {
		per_kind = limit > 256 + 4 * 50 ? (size_t)(limit - 256) / 4 : 0;
		printf("scale: descriptor limit %ld (hard): %zu hostile peers of each kind instead "
		       "of %d\n",
		       limit, per_kind, PER_KIND);
		if (per_kind == 0)
			skip();
	}
	const size_t count[KINDS] = {per_kind, per_kind, per_kind, per_kind};
	printf("scale: descriptor limit %ld; %zu hostile peers of each of %d kinds, %d legitimate "
	       "clients, 1 quota filler; handshake_timeout %d s, idle_timeout %d s\n",
	       limit, per_kind, KINDS, LEGIT, HS_TIMEOUT, IDLE_S);

	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	static struct tclient c;
	assert_int_equal(tclient_connect(&c, r->port, r->pub), 0);
	for (int i = 0; i < LEGIT; i++) {
		struct owner *o = &sh->owners[i];
		assert_int_equal(tclient_create(&c, o->rid, o->sid, o->pk, o->sk), 0);
	}
	tclient_close(&c);
	it_sleep_ms(300);

	struct usage u = {
	    .rss0 = relayproc_rss_kb(r), .fds0 = relayproc_fds(r), .cpu0 = relay_cpu_ms(r)};
	u.rss_peak = u.rss0;
	u.fds_peak = u.fds0;
	sh->t0_ms = it_mono_ms();
	sh->deadline_ms = sh->t0_ms + PRE_MS + attack_ms + POST_MS + 60000;
	pid_t pids[LEGIT + 1];
	for (int i = 0; i <= LEGIT; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			if (i < LEGIT)
				legit_child(sh, r, i);
			else
				filler_child(sh, r);
			_exit(0);
		}
	}
	int64_t t0 = sh->t0_ms;
	while (it_mono_ms() < t0 + PRE_MS) {
		sample(r, &u, it_mono_ms());
		it_sleep_ms(20);
	}
	long cpu_attack0 = relay_cpu_ms(r);

	/* Everything at once. */
	struct driver d;
	driver_init(&d, r, count);
	int64_t attack_end = t0 + PRE_MS + attack_ms;
	size_t open_peak = 0;
	while (it_mono_ms() < attack_end) {
		driver_step(&d, 10);
		sample(r, &u, it_mono_ms());
		size_t open = driver_open(&d, -1);
		open_peak = open > open_peak ? open : open_peak;
	}
	size_t half_open = driver_open(&d, SLOW_HALF);
	int64_t half_oldest = driver_oldest(&d, SLOW_HALF);
	long cpu_attack = relay_cpu_ms(r) - cpu_attack0;
	u.rss_end_attack = relayproc_rss_kb(r);
	u.fds_end_attack = relayproc_fds(r);
	driver_close_all(&d);
	while (it_mono_ms() < attack_end + POST_MS) {
		sample(r, &u, it_mono_ms());
		it_sleep_ms(20);
	}
	atomic_store(&sh->stop, 1);
	int stuck = reap_children(pids, LEGIT + 1);
	int64_t waited = wait_fds_at_most(r, u.fds0, 15000);
	long rss_after = relayproc_rss_kb(r), fds_after = relayproc_fds(r);
	long cpu_total = relay_cpu_ms(r) - u.cpu0;

	/* Figures. */
	for (int k = 0; k < KINDS; k++) {
		const struct kind_stats *s = &d.st[k];
		printf("scale: %-40s %5llu connections, %5llu handshakes, %5llu closed by the "
		       "relay after %lld..%lld ms (mean %lld), %llu failed connects, %llu bytes "
		       "from the relay after the handshake\n",
		       kind_name[k], (unsigned long long)s->opened,
		       (unsigned long long)s->handshakes, (unsigned long long)s->closed,
		       (long long)s->life_min, (long long)s->life_max,
		       (long long)(s->closed ? s->life_sum / (int64_t)s->closed : 0),
		       (unsigned long long)s->connect_failed, (unsigned long long)s->bytes_in);
	}
	printf("scale: hostile connections open at once: up to %zu; at the end of the attack "
	       "%zu unfinished-frame connections open, the oldest for %lld ms (idle_timeout %d "
	       "s, attack %d s)\n",
	       open_peak, half_open, (long long)half_oldest, IDLE_S, attack_ms / 1000);
	const struct filler_result *f = &sh->filler;
	printf("scale: quota filler: %llu sends of 16 KiB, %llu accepted (%.1f MiB), quota "
	       "reached after %.1f s, then %llu refused with quota, %llu other errors (last code "
	       "%u), connection %s\n",
	       (unsigned long long)f->sent, (unsigned long long)f->accepted,
	       f->accepted * 16.0 / 1024, f->full_ms / 1000.0, (unsigned long long)f->quota,
	       (unsigned long long)f->other, f->last_code, f->failed ? "LOST" : "kept");
	struct phase_stats before = phase(sh, LEGIT, 0, PRE_MS);
	struct phase_stats during = phase(sh, LEGIT, PRE_MS, PRE_MS + attack_ms);
	struct phase_stats after = phase(sh, LEGIT, PRE_MS + attack_ms, INT32_MAX);
	print_phase("scale", "before", &before);
	print_phase("scale", "during", &during);
	print_phase("scale", "after", &after);
	printf("scale: relay RSS %ld KiB before, peak %ld KiB (+%ld), %ld KiB at the end of the "
	       "attack, %ld KiB after; fds %ld before, peak %ld, %ld at the end of the attack, "
	       "%ld after (back to baseline in %lld ms); relay CPU %.1f s during the %d s attack "
	       "(%.0f%% of one core), %.1f s in all\n",
	       u.rss0, u.rss_peak, u.rss_peak - u.rss0, u.rss_end_attack, rss_after, u.fds0,
	       u.fds_peak, u.fds_end_attack, fds_after, (long long)waited, cpu_attack / 1000.0,
	       attack_ms / 1000, 100.0 * cpu_attack / attack_ms, cpu_total / 1000.0);
	driver_free(&d);

	/* Verdicts. */
	assert_int_equal(stuck, 0);
	/* A frame dribbled a byte at a time is not activity: it is closed at the idle timeout
	 * (with the 1 s tick's granularity and some slack for a loaded machine). */
	assert_true(half_oldest <= IDLE_S * 1000 + 1500);
	/* Memory: each unfinished frame holds up to 64 KiB of reader buffer, each connection a
	 * few KiB more; the 64 MiB the filler stored must not be in memory. Not checked under
	 * ASan, whose quarantine keeps what went through. */
	long bound = (long)per_kind * 96 + 24 * 1024;
	if (!IT_ASAN && u.rss_peak - u.rss0 > bound)
		fail_msg("relay RSS grew by %ld KiB (bound %ld KiB)", u.rss_peak - u.rss0, bound);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", fds_after, u.fds0);
	/* Every kind of hostile peer really ran, and none got anything out of the relay but
	 * message 2. */
	for (int k = 0; k < KINDS; k++) {
		assert_true(d.st[k].opened >= per_kind);
		assert_int_equal(d.st[k].bytes_in, 0);
	}
	assert_true(d.st[SLOW_PRE].closed >= per_kind); /* the handshake deadline */
	assert_true(d.st[JUNK_POST].closed > per_kind); /* closed at once, again */
	/* The filler reached its quota and kept its connection; nothing but quota refused it. */
	assert_int_equal(f->failed, 0);
	assert_true(f->accepted > 0 && f->quota > 0);
	assert_int_equal(f->other, 0);
	/* Legitimate clients were served every time, before, during and after. */
	assert_true(before.ok > 0 && during.ok > 0 && after.ok > 0);
	assert_int_equal(before.failed + during.failed + after.failed, 0);
	munmap(sh, sizeof(*sh));
}

/*
 * More slow peers than max_connections: the relay has no per-address limit and no
 * preference for handshaken connections, so peers that never finish a handshake hold the
 * slots until the handshake deadline and take each freed slot again at once. Legitimate
 * clients' success rate during the attack is the figure; before and after they must all be
 * served, and no descriptor may be left behind.
 */
static void test_connection_slots_exhausted(void **state)
{
	struct relayproc *r = *state;
	const int n_legit = 4;
	const size_t count[KINDS] = {LIMIT_PEERS, 0, 0, 0};
	if (nofile() < LIMIT_PEERS + 256) {
		printf("limit: descriptor limit %ld, %d needed: skipped\n", nofile(),
		       LIMIT_PEERS + 256);
		skip();
	}
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	static struct tclient c;
	assert_int_equal(tclient_connect(&c, r->port, r->pub), 0);
	for (int i = 0; i < n_legit; i++) {
		struct owner *o = &sh->owners[i];
		assert_int_equal(tclient_create(&c, o->rid, o->sid, o->pk, o->sk), 0);
	}
	tclient_close(&c);
	it_sleep_ms(300);
	long fds0 = relayproc_fds(r);
	sh->t0_ms = it_mono_ms();
	sh->deadline_ms = sh->t0_ms + 120000;
	pid_t pids[LEGIT];
	for (int i = 0; i < n_legit; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			legit_child(sh, r, i);
			_exit(0);
		}
	}
	int64_t t0 = sh->t0_ms;
	while (it_mono_ms() < t0 + PRE_MS)
		it_sleep_ms(20);
	struct driver d;
	driver_init(&d, r, count);
	int64_t attack_end = t0 + PRE_MS + LIMIT_ATTACK;
	long fds_peak = fds0;
	while (it_mono_ms() < attack_end) {
		driver_step(&d, 10);
		long fds = relayproc_fds(r);
		fds_peak = fds > fds_peak ? fds : fds_peak;
	}
	driver_close_all(&d);
	int64_t post_end = attack_end + PRE_MS + HS_TIMEOUT * 1000;
	while (it_mono_ms() < post_end)
		it_sleep_ms(20);
	atomic_store(&sh->stop, 1);
	int stuck = reap_children(pids, n_legit);
	int64_t waited = wait_fds_at_most(r, fds0, 15000);
	const struct kind_stats *s = &d.st[SLOW_PRE];
	printf("limit: max_connections %d, %d slow peers (message 1 at 1 byte/s, reconnecting "
	       "at once): %llu connections, %llu closed by the relay after %lld..%lld ms; relay "
	       "fds %ld before, peak %ld\n",
	       LIMIT_CONNS, LIMIT_PEERS, (unsigned long long)s->opened,
	       (unsigned long long)s->closed, (long long)s->life_min, (long long)s->life_max, fds0,
	       fds_peak);
	struct phase_stats before = phase(sh, n_legit, 0, PRE_MS);
	struct phase_stats during = phase(sh, n_legit, PRE_MS, PRE_MS + LIMIT_ATTACK);
	/* After: once the last slow peer's slot is free again. */
	struct phase_stats after = phase(sh, n_legit, PRE_MS + LIMIT_ATTACK + 1000, INT32_MAX);
	print_phase("limit", "before", &before);
	print_phase("limit", "during", &during);
	print_phase("limit", "after", &after);
	driver_free(&d);
	assert_int_equal(stuck, 0);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", relayproc_fds(r),
		         fds0);
	assert_true(before.ok > 0 && after.ok > 0);
	assert_int_equal(before.failed + after.failed, 0);
	munmap(sh, sizeof(*sh));
}

/*
 * A handshake flood by a peer that knows the relay's address (any contact of any user of the
 * relay has it): complete handshakes, each followed by garbage, as fast as one process can.
 * Every accepted handshake takes an entry of the replay cache for one generation (2 x 120 s).
 * With the cache shrunk to REPLAY_CAP entries the flood fills it in moments, again and again:
 * a full cache forgets its older generation rather than refuse handshakes (PROTOCOL.md 2.2;
 * refusing locked every client out until the generation turned, 0% success after a flood).
 * The flood stops after twice the cache's worth of handshakes or FLOOD_MS. Printed:
 * legitimate success before, during and after the flood. Checked: the flood ran, clients
 * were served before and after it, and no descriptor is left behind.
 */
static void test_handshake_flood(void **state)
{
	struct relayproc *r = *state;
	const int n_legit = 2;
	const size_t count[KINDS] = {0, 0, 0, FLOOD_PEERS};
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	static struct tclient c;
	assert_int_equal(tclient_connect(&c, r->port, r->pub), 0);
	for (int i = 0; i < n_legit; i++) {
		struct owner *o = &sh->owners[i];
		assert_int_equal(tclient_create(&c, o->rid, o->sid, o->pk, o->sk), 0);
	}
	tclient_close(&c);
	it_sleep_ms(300);
	long fds0 = relayproc_fds(r);
	sh->t0_ms = it_mono_ms();
	sh->deadline_ms = sh->t0_ms + 120000;
	pid_t pids[LEGIT];
	for (int i = 0; i < n_legit; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			legit_child(sh, r, i);
			_exit(0);
		}
	}
	int64_t t0 = sh->t0_ms;
	while (it_mono_ms() < t0 + PRE_MS)
		it_sleep_ms(20);
	struct driver d;
	driver_init(&d, r, count);
	int64_t flood_end = t0 + PRE_MS + FLOOD_MS;
	const struct kind_stats *s = &d.st[JUNK_POST];
	for (;;) {
		int64_t now = it_mono_ms();
		if (now >= flood_end || s->opened >= 2 * REPLAY_CAP ||
		    (s->handshakes > 0 && now - s->last_handshake_ms > 1000))
			break;
		driver_step(&d, 10);
	}
	flood_end = it_mono_ms();
	int64_t flood_ms = flood_end - t0 - PRE_MS;
	driver_close_all(&d);
	while (it_mono_ms() < flood_end + FLOOD_POST)
		it_sleep_ms(20);
	atomic_store(&sh->stop, 1);
	int stuck = reap_children(pids, n_legit);
	int64_t waited = wait_fds_at_most(r, fds0, 15000);
	printf("flood: replay_cache_entries %d: %d peers flooding for %lld ms: %llu connections, "
	       "%llu handshakes answered, %llu closed by the relay\n",
	       REPLAY_CAP, FLOOD_PEERS, (long long)flood_ms, (unsigned long long)s->opened,
	       (unsigned long long)s->handshakes, (unsigned long long)s->closed);
	struct phase_stats before = phase(sh, n_legit, 0, PRE_MS);
	struct phase_stats during = phase(sh, n_legit, PRE_MS, PRE_MS + flood_ms);
	struct phase_stats after = phase(sh, n_legit, PRE_MS + flood_ms, INT32_MAX);
	print_phase("flood", "before", &before);
	print_phase("flood", "during", &during);
	print_phase("flood", "after", &after);
	driver_free(&d);
	assert_int_equal(stuck, 0);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", relayproc_fds(r),
		         fds0);
	assert_true(before.ok > 0);
	assert_int_equal(before.failed, 0);
	/* The flood really ran: at least half the cache's worth of handshakes. */
	assert_true(s->opened >= REPLAY_CAP / 2);
	/* And left no lockout behind. */
	assert_true(after.ok > 0);
	assert_int_equal(after.failed, 0);
	munmap(sh, sizeof(*sh));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hostile_at_scale, setup_scale, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_slots_exhausted, setup_limited,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_flood, setup_small_replay, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
