/* SPDX-License-Identifier: MIT */
/*
 * The machinery of the test_it_scale programs (it_scale_common.h): the legitimate clients and
 * the quota filler (child processes), the driver of hostile peers (this process), the relay's
 * resources, the relays of each test and the statistics of a phase.
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
#include "it_scale_common.h"

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

void legit_child(struct shared *sh, const struct relayproc *r, int idx)
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
void filler_child(struct shared *sh, const struct relayproc *r)
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

const char *const kind_name[KINDS] = {
    "slowloris, message 1 at 1 byte/s",
    "slowloris, handshaken, frame unfinished",
    "garbage instead of message 1",
    "garbage after a good handshake",
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

void driver_init(struct driver *d, const struct relayproc *r, const size_t count[KINDS])
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
void driver_step(struct driver *d, int timeout_ms)
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

size_t driver_open(const struct driver *d, int kind)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += d->p[i].fd >= 0 && (kind < 0 || d->p[i].kind == kind);
	return n;
}

/* The age of the oldest open connection of KIND, in ms (0 if none). */
int64_t driver_oldest(const struct driver *d, int kind)
{
	int64_t now = it_mono_ms(), oldest = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].fd >= 0 && d->p[i].kind == kind && now - d->p[i].opened_ms > oldest)
			oldest = now - d->p[i].opened_ms;
	return oldest;
}

void driver_close_all(struct driver *d)
{
	d->closing = true;
	for (size_t i = 0; i < d->n; i++)
		peer_close(d, &d->p[i], false);
}

void driver_free(struct driver *d)
{
	free(d->p);
	free(d->pfd);
	free(d->idx);
}

/* ---- the relay's resources ------------------------------------------------------------- */

void sample(const struct relayproc *r, struct usage *u, int64_t now)
{
	if (now < u->next_ms)
		return;
	u->next_ms = now + 250;
	long rss = relayproc_rss_kb(r), fds = relayproc_fds(r);
	u->rss_peak = rss > u->rss_peak ? rss : u->rss_peak;
	u->fds_peak = fds > u->fds_peak ? fds : u->fds_peak;
}

/* Waits until the relay has at most WANT descriptors open; returns the time it took or -1. */
int64_t wait_fds_at_most(const struct relayproc *r, long want, int timeout_ms)
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
long nofile(void)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	return rl.rlim_cur == RLIM_INFINITY ? 1000000 : (long)rl.rlim_cur;
}

static int start_relay(struct relayproc *r, const char *limits, void **state)
{
	raise_nofile(20000);
	return it_relay_setup(state, r, limits);
}

int setup_scale(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nidle_timeout = %d\n", HS_TIMEOUT,
	         IDLE_S);
	return start_relay(&r, text, state);
}

int setup_limited(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nmax_connections = %d\n", HS_TIMEOUT,
	         LIMIT_CONNS);
	return start_relay(&r, text, state);
}

int setup_small_replay(void **state)
{
	static struct relayproc r;
	char text[160];
	snprintf(text, sizeof(text), "handshake_timeout = %d\nreplay_cache_entries = %d\n",
	         HS_TIMEOUT, REPLAY_CAP);
	return start_relay(&r, text, state);
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

/* Legitimate round trips that started in [FROM, TO) ms after t0. */
struct phase_stats phase(const struct shared *sh, int n_legit, int64_t from, int64_t to)
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

void print_phase(const char *test, const char *name, const struct phase_stats *ps)
{
	unsigned total = ps->ok + ps->failed;
	printf("%s: legitimate round trips %-7s %6u, success %6.2f%% (failed: %u connect, %u "
	       "AUTH, %u SEND/delivery, %u ACK), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
	       test, name, total, total ? 100.0 * ps->ok / total : 0.0, ps->by_stage[1],
	       ps->by_stage[2], ps->by_stage[3], ps->by_stage[4], ps->p50, ps->p99, ps->max);
}

/* Forks a child that dies with this process. */
pid_t fork_child(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

/* The memory the test shares with its children (it survives fork), zeroed, with the
 * mailboxes of the first N_LEGIT owners made on R. The caller frees it with shared_free. */
struct shared *shared_new(const struct relayproc *r, int n_legit)
{
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
	return sh;
}

void shared_free(struct shared *sh)
{
	munmap(sh, sizeof(*sh));
}

/* Starts legitimate clients 0..N_LEGIT-1 against R, and with FILLER the quota filler after
 * them, into PIDS: their clock (SH's t0) starts now, and they stop by RUN_MS after it
 * whatever happens to the test. */
void start_children(struct shared *sh, const struct relayproc *r, int n_legit, bool filler,
                    int64_t run_ms, pid_t *pids)
{
	sh->t0_ms = it_mono_ms();
	sh->deadline_ms = sh->t0_ms + run_ms;
	for (int i = 0; i < n_legit + filler; i++) {
		pids[i] = fork_child();
		if (pids[i] == 0) {
			if (i < n_legit)
				legit_child(sh, r, i);
			else
				filler_child(sh, r);
			_exit(0);
		}
	}
}

/* Waits for the children, killing any that does not finish within 20 s. Returns how many had
 * to be killed. */
int reap_children(const pid_t *pids, int n)
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
/* ---- main ---------------------------------------------------------------------------- */

int it_scale_init(void)
{
	if (sodium_init() < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	return 0;
}
