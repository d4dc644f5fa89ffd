/* SPDX-License-Identifier: MIT */
/*
 * The idle-connection generator (see idle.h). A worker reads one command per line from its
 * pipe and answers with one line:
 *
 *   "hs N"  -> "ok OPEN FAILED T0 T1": handshakes until it holds N connections
 *   "sub"   -> "ok OPEN FAILED T0 T1": CREATE then SUBSCRIBE on every new connection
 *   "load RATE WARMUP_MS MEASURE_MS" -> "ok SENT RECEIVED ERRORS CPU N" and N lines of latency
 *           (ns): LOAD_CONNS more connections SEND 1 KiB envelopes at RATE/s round-robin to
 *           the worker's subscribed mailboxes, which ACK them; the latencies are those of the
 *           envelopes received within the measured interval; CPU is the cores the worker
 *           used over the whole phase (cairn-bench loaded)
 *   "quit"  -> closes everything and exits
 *
 * T0 and T1 are monotonic nanoseconds, comparable across processes. Message 1 of every
 * handshake is computed before T0, so the timed part costs the worker one X25519 operation
 * and the relay three: the figure is the relay's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bconn.h"
#include "idle.h"
#include "procscan.h"

#define IDLE_CONCURRENCY 128 /* handshakes or setups in progress per worker */
#define IDLE_TIMEOUT_S   120.0
#define MAX_WORKERS      16
#define LOAD_SIZE        1024 /* "load": envelope bytes */
#define LOAD_CONNS       8    /* "load": sending connections per worker */
/* "load": SENDs not yet answered per sending connection, at most (below the relay's
 * inflight_requests, so that it keeps reading them). */
#define LOAD_INFLIGHT 512
#define RID_LOAD_ACK  3

enum idle_state { IC_CONNECTING, IC_OPEN, IC_CREATING, IC_SUBSCRIBING, IC_READY, IC_DEAD };

struct idle_conn {
	struct bconn conn;
	struct worker *w;
	enum idle_state state;
	bool active; /* counted in the current phase's busy connections */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], sender_id[CAIRN_MAILBOX_ID_LEN];
};

/* "load": the sending connections and what the receivers measured. A SEND is answered only
 * once its receiver ACKs it (or it is written), so one connection would hit the relay's
 * inflight_requests as soon as latency grew, and the envelopes would wait in the worker. */
struct load_conn {
	struct bconn conn;
	uint32_t inflight;
	bool ready, broken;
};

struct worker_load {
	struct load_conn senders[LOAD_CONNS];
	uint32_t ready;
	bool broken;
	uv_timer_t pacer;
	uint8_t body[LOAD_SIZE];
	double rate; /* envelopes/s */
	uint64_t t0, from, to;
	uint64_t sent, received, errors;
	uint32_t next;
	struct lat_samples lat;
};

struct worker {
	uv_loop_t loop;
	uv_timer_t wake;
	struct sockaddr_in relay, source;
	uint8_t relay_pub[32];
	uint8_t mailbox_key[32]; /* any 32 bytes do: no one authenticates for these mailboxes */
	struct idle_conn *conns;
	uint32_t cap, len;      /* connections allocated, started */
	uint32_t next;          /* next connection to start in this phase */
	uint32_t end;           /* end of this phase's range */
	uint32_t busy;          /* in progress */
	uint32_t done, failed;  /* in this phase */
	enum idle_state target; /* the state this phase drives connections to */
	struct worker_load load;
};

struct idle_pool {
	uint32_t workers;
	uint32_t total;
	pid_t relay_pid;
	pid_t pid[MAX_WORKERS];
	FILE *cmd[MAX_WORKERS];
	FILE *reply[MAX_WORKERS];
};

/* ---- worker ------------------------------------------------------------------------- */

static void finish_one(struct idle_conn *ic, bool ok);
static void start_more(struct worker *w);

static void ic_failed(struct bconn *c, int err)
{
	struct idle_conn *ic = c->data;
	ic->state = IC_DEAD;
	bconn_close(c, NULL);
	finish_one(ic, false);
}

static void ic_ready(struct bconn *c)
{
	struct idle_conn *ic = c->data;
	ic->state = IC_OPEN;
	finish_one(ic, true);
}

/* A receiver's envelope: its latency if it arrived while measuring, then its ACK. */
static void load_received(struct idle_conn *ic, const struct cairn_msg *m)
{
	struct worker_load *l = &ic->w->load;
	uint64_t now = bench_now_ns();
	l->received++;
	if (m->envelope_len >= BENCH_MSG_HEADER && now >= l->from && now < l->to)
		lat_add(&l->lat, now - bench_get_le64(m->envelope));
	struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
	                        .request_id = RID_LOAD_ACK,
	                        .recipient_id = ic->recipient_id,
	                        .envelope_id = m->envelope_id};
	if (bconn_queue(&ic->conn, &ack) != 0)
		l->errors++;
}

static void ic_message(struct bconn *c, const struct cairn_msg *m)
{
	struct idle_conn *ic = c->data;
	if (ic->state == IC_READY && m->type == CAIRN_REPLY_ENVELOPE) {
		load_received(ic, m);
	} else if (ic->state == IC_READY && m->type == CAIRN_REPLY_OK) {
		/* an ACK's answer */
	} else if (ic->state == IC_CREATING && m->type == CAIRN_REPLY_CREATED) {
		memcpy(ic->recipient_id, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(ic->sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		struct cairn_msg sub = {
		    .type = CAIRN_CMD_SUBSCRIBE, .request_id = 2, .recipient_id = m->recipient_id};
		ic->state = IC_SUBSCRIBING;
		if (bconn_queue(c, &sub) != 0)
			ic_failed(c, CAIRN_ENOMEM);
	} else if (ic->state == IC_SUBSCRIBING && m->type == CAIRN_REPLY_OK) {
		ic->state = IC_READY;
		finish_one(ic, true);
	} else if (m->type == CAIRN_REPLY_ERROR) {
		ic_failed(c, -(int)m->code);
	}
}

static void ic_read_done(struct bconn *c)
{
	bconn_flush(c);
}

static const struct bconn_ops idle_ops = {
    .ready = ic_ready,
    .message = ic_message,
    .read_done = ic_read_done,
    .failed = ic_failed,
};

/* Ends ACTIVE's part in the phase; a connection lost between phases is only marked dead. */
static void finish_one(struct idle_conn *ic, bool ok)
{
	struct worker *w = ic->w;
	if (!ok)
		ic->state = IC_DEAD;
	if (!ic->active)
		return;
	ic->active = false;
	w->busy--;
	if (ok)
		w->done++;
	else
		w->failed++;
	start_more(w);
}

static void start_one(struct worker *w, struct idle_conn *ic)
{
	ic->active = true;
	w->busy++;
	if (w->target == IC_OPEN) {
		/* Message 1 was prepared before the clock started. */
		ic->state = IC_CONNECTING;
		if (bconn_connect(&ic->conn, &w->loop, (const struct sockaddr *)&w->relay,
		                  (const struct sockaddr *)&w->source, &idle_ops, ic) != 0)
			finish_one(ic, false);
		return;
	}
	struct cairn_msg m = {
	    .type = CAIRN_CMD_CREATE, .request_id = 1, .recipient_key = w->mailbox_key};
	ic->state = IC_CREATING;
	if (bconn_queue(&ic->conn, &m) != 0 || bconn_flush(&ic->conn) != 0) {
		bconn_close(&ic->conn, NULL);
		finish_one(ic, false);
	}
}

static void start_more(struct worker *w)
{
	while (w->busy < IDLE_CONCURRENCY && w->next < w->end) {
		struct idle_conn *ic = &w->conns[w->next++];
		/* A connection whose handshake failed takes no part in later phases. */
		if (w->target == IC_OPEN || ic->state == IC_OPEN)
			start_one(w, ic);
	}
}

static void on_wake(uv_timer_t *t)
{
}

/* Runs one phase over connections [FROM, TO) and writes its answer line to OUT. */
static void run_phase(struct worker *w, uint32_t from, uint32_t to, enum idle_state target,
                      FILE *out)
{
	w->next = from;
	w->end = to;
	w->busy = w->done = w->failed = 0;
	w->target = target;
	uint64_t t0 = bench_now_ns();
	uint64_t deadline = t0 + (uint64_t)(IDLE_TIMEOUT_S * 1e9);
	start_more(w);
	while ((w->busy > 0 || w->next < w->end) && bench_now_ns() < deadline)
		uv_run(&w->loop, UV_RUN_ONCE);
	uint64_t t1 = bench_now_ns();
	fprintf(out, "ok %u %u %llu %llu\n", (unsigned)w->done, (unsigned)(w->failed + w->busy),
	        (unsigned long long)t0, (unsigned long long)t1);
	fflush(out);
}

static int worker_grow(struct worker *w, uint32_t n, FILE *out)
{
	if (n > w->cap)
		n = w->cap;
	uint32_t from = w->len;
	for (uint32_t i = from; i < n; i++) {
		w->conns[i].w = w;
		if (bconn_prepare(&w->conns[i].conn, w->relay_pub) != 0)
			return -1;
	}
	w->len = n;
	run_phase(w, from, n, IC_OPEN, out);
	return 0;
}

/* ---- "load" ------------------------------------------------------------------------ */

static struct load_conn *load_conn_of(struct bconn *c)
{
	return (struct load_conn *)c; /* conn is its first member */
}

static void load_ready(struct bconn *c)
{
	struct worker *w = c->data;
	load_conn_of(c)->ready = true;
	w->load.ready++;
}

static void load_answer(struct bconn *c, const struct cairn_msg *m)
{
	struct worker *w = c->data;
	struct load_conn *lc = load_conn_of(c);
	if (m->type == CAIRN_REPLY_ERROR)
		w->load.errors++;
	if (lc->inflight > 0)
		lc->inflight--;
}

static void load_failed(struct bconn *c, int err)
{
	struct worker *w = c->data;
	load_conn_of(c)->broken = true;
	w->load.broken = true;
	w->load.errors++;
}

static const struct bconn_ops load_ops = {
    .ready = load_ready,
    .message = load_answer,
    .read_done = ic_read_done,
    .failed = load_failed,
};

/* The sends due by now, round-robin over the subscribed connections. */
static void on_load_tick(uv_timer_t *t)
{
	struct worker *w = t->data;
	struct worker_load *l = &w->load;
	uint64_t now = bench_now_ns();
	if (now >= l->to || l->broken || l->ready < LOAD_CONNS)
		return;
	uint64_t due = (uint64_t)((double)(now - l->t0) * l->rate / 1e9);
	struct cairn_msg m = {
	    .type = CAIRN_CMD_SEND, .envelope = l->body, .envelope_len = sizeof(l->body)};
	uint32_t tried = 0;
	while (l->sent < due && tried < w->len) {
		struct load_conn *lc = &l->senders[l->sent % LOAD_CONNS];
		if (lc->inflight >= LOAD_INFLIGHT)
			break; /* the relay is behind: what is due goes out later */
		struct idle_conn *ic = &w->conns[l->next];
		l->next = (l->next + 1) % w->len;
		tried++;
		if (ic->state != IC_READY)
			continue;
		tried = 0;
		bench_put_le64(l->body, bench_now_ns());
		bench_put_le64(l->body + 8, l->sent);
		m.sender_id = ic->sender_id;
		m.request_id = (uint32_t)l->sent;
		if (bconn_queue(&lc->conn, &m) != 0) {
			l->errors++;
			break;
		}
		l->sent++;
		lc->inflight++;
	}
	for (uint32_t i = 0; i < LOAD_CONNS; i++)
		bconn_flush(&l->senders[i].conn);
}

static void worker_load(struct worker *w, double rate, uint64_t warmup_ms, uint64_t measure_ms,
                        FILE *out)
{
	struct worker_load *l = &w->load;
	uint64_t deadline = bench_now_ns() + (uint64_t)(IDLE_TIMEOUT_S * 1e9);
	if (l->senders[0].conn.ops == NULL) {
		uv_timer_init(&w->loop, &l->pacer);
		l->pacer.data = w;
		for (uint32_t i = 0; i < LOAD_CONNS; i++) {
			struct bconn *c = &l->senders[i].conn;
			if (bconn_prepare(c, w->relay_pub) != 0 ||
			    bconn_connect(c, &w->loop, (const struct sockaddr *)&w->relay,
			                  (const struct sockaddr *)&w->source, &load_ops, w) != 0)
				l->broken = true;
		}
	}
	while (l->ready < LOAD_CONNS && !l->broken && bench_now_ns() < deadline)
		uv_run(&w->loop, UV_RUN_ONCE);
	lat_reset(&l->lat);
	double cpu0 = bench_self_cpu_s();
	l->sent = l->received = l->errors = 0;
	l->rate = rate;
	l->t0 = bench_now_ns();
	l->from = l->t0 + warmup_ms * 1000000u;
	l->to = l->from + measure_ms * 1000000u;
	uv_timer_start(&l->pacer, on_load_tick, 1, 1);
	/* After the last send, one more second for the last deliveries. */
	while (!l->broken && bench_now_ns() < l->to + 1000000000u &&
	       !(bench_now_ns() >= l->to && l->received >= l->sent))
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_timer_stop(&l->pacer);
	double cores = (bench_self_cpu_s() - cpu0) / ((double)(bench_now_ns() - l->t0) / 1e9);
	fprintf(out, "ok %llu %llu %llu %.3f %zu\n", (unsigned long long)l->sent,
	        (unsigned long long)l->received, (unsigned long long)(l->errors + l->broken), cores,
	        l->lat.len);
	for (size_t i = 0; i < l->lat.len; i++)
		fprintf(out, "%u\n", (unsigned)l->lat.v[i]);
	fflush(out);
}

static void worker_main(struct worker *w, FILE *in, FILE *out)
{
	char line[128];
	uint32_t sub_from = 0;
	while (fgets(line, sizeof(line), in) != NULL) {
		unsigned n = 0;
		double rate;
		unsigned long long warm, measure;
		if (sscanf(line, "load %lf %llu %llu", &rate, &warm, &measure) == 3) {
			worker_load(w, rate, warm, measure, out);
		} else if (sscanf(line, "hs %u", &n) == 1) {
			sub_from = w->len;
			if (worker_grow(w, n, out) != 0)
				break;
		} else if (strncmp(line, "sub", 3) == 0) {
			run_phase(w, sub_from, w->len, IC_READY, out);
		} else {
			break;
		}
	}
	for (uint32_t i = 0; i < w->len; i++)
		if (w->conns[i].conn.ops != NULL)
			bconn_close(&w->conns[i].conn, NULL);
	if (w->load.senders[0].conn.ops != NULL) {
		for (uint32_t i = 0; i < LOAD_CONNS; i++)
			if (w->load.senders[i].conn.ops != NULL)
				bconn_close(&w->load.senders[i].conn, NULL);
		uv_close((uv_handle_t *)&w->load.pacer, NULL);
	}
	uv_close((uv_handle_t *)&w->wake, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
}

static void worker_run(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                       uint32_t index, uint32_t cap, int in_fd, int out_fd)
{
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.relay = *relay;
	memcpy(w.relay_pub, relay_public, 32);
	/* Each worker dials from its own loopback address: its own range of source ports. */
	w.source = (struct sockaddr_in){.sin_family = AF_INET};
	w.source.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + index);
	randombytes_buf(w.mailbox_key, sizeof(w.mailbox_key));
	w.cap = cap;
	w.conns = calloc(cap, sizeof(*w.conns));
	FILE *in = fdopen(in_fd, "r"), *out = fdopen(out_fd, "w");
	if (w.conns == NULL || in == NULL || out == NULL || uv_loop_init(&w.loop) != 0)
		_exit(1);
	/* A periodic wake-up bounds each loop turn, so deadlines are checked. */
	uv_timer_init(&w.loop, &w.wake);
	uv_timer_start(&w.wake, on_wake, 100, 100);
	worker_main(&w, in, out);
	_exit(0);
}

/* ---- parent ------------------------------------------------------------------------- */

struct idle_pool *idle_pool_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                                 pid_t relay_pid, uint32_t workers, uint32_t max_total)
{
	if (workers == 0 || workers > MAX_WORKERS)
		return NULL;
	struct idle_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->relay_pid = relay_pid;
	uint32_t cap = max_total / workers + 1;
	fflush(NULL); /* nothing buffered may be written twice */
	for (uint32_t i = 0; i < workers; i++) {
		int to[2], from[2];
		if (pipe(to) != 0 || pipe(from) != 0)
			break;
		pid_t pid = fork();
		if (pid == 0) {
			close(to[1]);
			close(from[0]);
			for (uint32_t j = 0; j < i; j++) {
				fclose(p->cmd[j]);
				fclose(p->reply[j]);
			}
			worker_run(relay, relay_public, i, cap, to[0], from[1]);
		}
		close(to[0]);
		close(from[1]);
		if (pid < 0) {
			close(to[1]);
			close(from[0]);
			break;
		}
		p->pid[i] = pid;
		p->cmd[i] = fdopen(to[1], "w");
		p->reply[i] = fdopen(from[0], "r");
		p->workers++;
	}
	if (p->workers != workers) {
		idle_pool_close(p);
		return NULL;
	}
	return p;
}

struct phase_times {
	uint64_t t0, t1;
	uint32_t open, failed;
};

/* Reads every worker's answer: the earliest start, the latest end, the sums. */
static int collect(struct idle_pool *p, struct phase_times *pt)
{
	memset(pt, 0, sizeof(*pt));
	pt->t0 = UINT64_MAX;
	for (uint32_t i = 0; i < p->workers; i++) {
		char line[160];
		unsigned open = 0, failed = 0;
		unsigned long long t0 = 0, t1 = 0;
		if (fgets(line, sizeof(line), p->reply[i]) == NULL ||
		    sscanf(line, "ok %u %u %llu %llu", &open, &failed, &t0, &t1) != 4)
			return -1;
		pt->open += open;
		pt->failed += failed;
		if (t0 < pt->t0)
			pt->t0 = t0;
		if (t1 > pt->t1)
			pt->t1 = t1;
	}
	return 0;
}

static int command_all(struct idle_pool *p, uint32_t total)
{
	for (uint32_t i = 0; i < p->workers; i++) {
		uint32_t share = total / p->workers + (i < total % p->workers ? 1 : 0);
		if (total == 0)
			fprintf(p->cmd[i], "sub\n");
		else
			fprintf(p->cmd[i], "hs %u\n", (unsigned)share);
		if (fflush(p->cmd[i]) != 0)
			return -1;
	}
	return 0;
}

int idle_pool_grow(struct idle_pool *p, uint32_t total, struct idle_step *step)
{
	memset(step, 0, sizeof(*step));
	struct phase_times hs, sub;
	bench_mark(p->relay_pid, 0, "handshake-from");
	double cpu0 = proc_cpu_s(p->relay_pid);
	if (total <= p->total || command_all(p, total) != 0 || collect(p, &hs) != 0)
		return -1;
	double cpu1 = proc_cpu_s(p->relay_pid);
	bench_mark(p->relay_pid, hs.open, "handshake");
	if (command_all(p, 0) != 0 || collect(p, &sub) != 0)
		return -1;
	double cpu2 = proc_cpu_s(p->relay_pid);
	bench_mark(p->relay_pid, sub.open, "create-subscribe");
	uint32_t added = total - p->total;
	p->total = total;
	step->connections = total;
	step->failed = hs.failed + sub.failed;
	if (hs.t1 > hs.t0) {
		double s = (double)(hs.t1 - hs.t0) / 1e9;
		step->handshakes_per_s = (double)hs.open / s;
		step->handshake_relay_cpu = (cpu1 - cpu0) / s;
	}
	if (sub.t1 > sub.t0) {
		double s = (double)(sub.t1 - sub.t0) / 1e9;
		step->subscribes_per_s = (double)sub.open / s;
		step->subscribe_relay_cpu = (cpu2 - cpu1) / s;
	}
	if (step->failed > 0)
		bench_note("%u of %u new connections failed", (unsigned)step->failed,
		           (unsigned)added);
	return 0;
}

int idle_pool_load_begin(struct idle_pool *p, double rate, double warmup_s, double duration_s)
{
	for (uint32_t i = 0; i < p->workers; i++) {
		fprintf(p->cmd[i], "load %.3f %llu %llu\n", rate / p->workers,
		        (unsigned long long)(warmup_s * 1e3),
		        (unsigned long long)(duration_s * 1e3));
		if (fflush(p->cmd[i]) != 0)
			return -1;
	}
	return 0;
}

int idle_pool_load_end(struct idle_pool *p, struct idle_load *out)
{
	memset(out, 0, offsetof(struct idle_load, lat));
	lat_reset(&out->lat);
	for (uint32_t i = 0; i < p->workers; i++) {
		char line[160];
		unsigned long long sent, received, errors;
		double cores;
		size_t n;
		if (fgets(line, sizeof(line), p->reply[i]) == NULL ||
		    sscanf(line, "ok %llu %llu %llu %lf %zu", &sent, &received, &errors, &cores,
		           &n) != 5)
			return -1;
		out->gen_cpu += cores;
		out->sent += sent;
		out->received += received;
		out->errors += errors;
		for (size_t j = 0; j < n; j++) {
			unsigned ns;
			if (fgets(line, sizeof(line), p->reply[i]) == NULL ||
			    sscanf(line, "%u", &ns) != 1)
				return -1;
			lat_add(&out->lat, ns);
		}
	}
	return 0;
}

void idle_pool_close(struct idle_pool *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->workers; i++) {
		fprintf(p->cmd[i], "quit\n");
		fclose(p->cmd[i]);
		fclose(p->reply[i]);
	}
	for (uint32_t i = 0; i < p->workers; i++) {
		int status;
		while (waitpid(p->pid[i], &status, 0) < 0 && errno == EINTR)
			;
	}
	free(p);
}
