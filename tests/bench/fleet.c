/* SPDX-License-Identifier: MIT */
/*
 * Senders and owners against a Cairn relay (see fleet.h). Everything runs on one loop: a
 * 1 ms pacer timer releases rate-limited envelopes and moves a run through its phases;
 * replies drive everything else. Timestamps come from the monotonic clock, which every
 * process on the machine shares, so send and delivery times compare directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bconn.h"
#include "cairn/error.h"
#include "fleet.h"
#include "procscan.h"

#define OUT_CAP         (256 * 1024) /* a sender stops encoding while this much is unwritten */
#define BODY_HEADER     16           /* send time (ns) and sequence number, little-endian */
#define RID_CREATE      1
#define RID_SECURE      2
#define RID_SUB         3
#define RID_AUTH        4
#define RID_ACK_BASE    100 /* ACK request ids count up from here */
#define SETUP_TIMEOUT_S 60.0

struct sender {
	struct bconn conn;
	struct fleet *f;
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	uint8_t *body; /* the envelope; its header is rewritten for every send */
	uint32_t inflight;
	uint64_t next_seq;
	uint64_t quota;    /* envelopes this run may send */
	uint64_t run_sent; /* envelopes sent in this run */
	uint64_t answered; /* OK or ERROR replies, ever */
	bool ready;
};

struct owner {
	struct bconn conn;
	struct fleet *f;
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
	uint64_t expect_seq;
	uint64_t last_id;
	uint64_t delivered;
	uint64_t acks_sent, ack_ok;
	bool ready, connected;
};

struct fleet {
	uv_loop_t loop;
	uv_timer_t pacer;
	struct sockaddr_in relay;
	struct sockaddr_in owner_relay; /* where owners connect: RELAY unless split */
	uint8_t relay_pub[32];
	pid_t relay_pid;
	uint32_t n, size, window;
	bool subscribe; /* owners stay subscribed after setup */
	struct sender *senders;
	struct owner *owners;
	uint32_t ready;  /* setup progress: connections ready */
	uint32_t closed; /* connections whose close completed */
	bool failed;

	/* The current run. */
	bool sending;
	double rate_per_sender; /* envelopes/s; 0 = as fast as the window allows */
	uint64_t t0, measure_from, measure_to;
	bool measuring;
	uint64_t measured; /* delivered between measure_from and measure_to */
	double relay_cpu0, relay_cpu1, gen_cpu0, gen_cpu1;
	struct lat_samples lat;
	uint64_t errors;
	void (*on_phase)(void *ctx, int phase); /* fleet_on_durable_phase */
	void *on_phase_ctx;
};

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void note_failure(struct fleet *f, int err)
{
	if (!f->failed)
		bench_note("a connection failed: %s", cairn_strerror(err));
	f->failed = true;
}

/* ---- senders ------------------------------------------------------------------------ */

static void sender_pump(struct sender *s)
{
	struct fleet *f = s->f;
	if (!f->sending || !s->ready || s->conn.broken)
		return;
	uint64_t allowed = s->quota;
	if (f->rate_per_sender > 0) {
		double due = (double)(bench_now_ns() - f->t0) * f->rate_per_sender / 1e9;
		if ((uint64_t)due + 1 < allowed)
			allowed = (uint64_t)due + 1;
	}
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = s->sender_id,
	                      .credential = s->credential,
	                      .envelope = s->body,
	                      .envelope_len = f->size};
	while (s->inflight < f->window && s->run_sent < allowed &&
	       bconn_backlog(&s->conn) < OUT_CAP) {
		put_le64(s->body, bench_now_ns());
		put_le64(s->body + 8, s->next_seq);
		m.request_id = (uint32_t)s->next_seq;
		if (bconn_queue(&s->conn, &m) != 0) {
			f->failed = true;
			return;
		}
		s->next_seq++;
		s->run_sent++;
		s->inflight++;
	}
	bconn_flush(&s->conn);
}

static void sender_ready(struct bconn *c)
{
	struct sender *s = c->data;
	s->ready = true;
	s->f->ready++;
}

static void sender_message(struct bconn *c, const struct cairn_msg *m)
{
	struct sender *s = c->data;
	if (m->type != CAIRN_REPLY_OK && m->type != CAIRN_REPLY_ERROR)
		return;
	if (m->type == CAIRN_REPLY_ERROR) {
		if (s->f->errors++ == 0)
			bench_note("a SEND failed with code %u", (unsigned)m->code);
	}
	s->inflight--;
	s->answered++;
}

static void sender_read_done(struct bconn *c)
{
	sender_pump(c->data);
}

static void sender_failed(struct bconn *c, int err)
{
	struct sender *s = c->data;
	note_failure(s->f, err);
}

static const struct bconn_ops sender_ops = {
    .ready = sender_ready,
    .message = sender_message,
    .read_done = sender_read_done,
    .writable = sender_read_done,
    .failed = sender_failed,
};

/* ---- owners ------------------------------------------------------------------------- */

static void owner_queue(struct owner *o, const struct cairn_msg *m)
{
	if (bconn_queue(&o->conn, m) != 0)
		o->f->failed = true;
}

static void owner_subscribe(struct owner *o)
{
	struct cairn_msg m = {
	    .type = CAIRN_CMD_SUBSCRIBE, .request_id = RID_SUB, .recipient_id = o->recipient_id};
	owner_queue(o, &m);
}

/* Secures the new mailbox with sender I's credential (docs/PROTOCOL.md 5.5). */
static void owner_created(struct owner *o, const struct cairn_msg *r)
{
	struct sender *s = &o->f->senders[o - o->f->owners];
	memcpy(o->recipient_id, r->recipient_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(s->sender_id, r->sender_id, CAIRN_MAILBOX_ID_LEN);
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	crypto_generichash(digest, sizeof(digest), s->credential, sizeof(s->credential),
	                   s->sender_id, sizeof(s->sender_id));
	struct cairn_msg m = {.type = CAIRN_CMD_SECURE,
	                      .request_id = RID_SECURE,
	                      .recipient_id = o->recipient_id,
	                      .credential = digest};
	owner_queue(o, &m);
}

static void owner_envelope(struct owner *o, const struct cairn_msg *m)
{
	struct fleet *f = o->f;
	if (m->envelope_id <= o->last_id && o->delivered > 0)
		return; /* a duplicate after a resubscription: at least once */
	o->last_id = m->envelope_id;
	uint64_t now = bench_now_ns();
	if (m->envelope_len >= BODY_HEADER) {
		uint64_t sent = get_le64(m->envelope), seq = get_le64(m->envelope + 8);
		if (seq != o->expect_seq && f->errors++ == 0)
			bench_note("envelope %llu arrived, %llu expected", (unsigned long long)seq,
			           (unsigned long long)o->expect_seq);
		o->expect_seq = seq + 1;
		if (f->measuring && now >= f->measure_from && now < f->measure_to) {
			f->measured++;
			lat_add(&f->lat, now - sent);
		}
	}
	o->delivered++;
	struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
	                        .request_id = (uint32_t)(RID_ACK_BASE + o->acks_sent),
	                        .recipient_id = o->recipient_id,
	                        .envelope_id = m->envelope_id};
	o->acks_sent++;
	owner_queue(o, &ack);
}

static void owner_ok(struct owner *o, uint32_t rid)
{
	if (rid >= RID_ACK_BASE) {
		o->ack_ok++;
	} else if (rid == RID_SECURE && !o->f->subscribe) {
		o->ready = true;
		o->f->ready++;
	} else if (rid == RID_SECURE || rid == RID_AUTH) {
		owner_subscribe(o);
	} else if (rid == RID_SUB && !o->ready) {
		o->ready = true;
		o->f->ready++;
	}
}

static void owner_message(struct bconn *c, const struct cairn_msg *m)
{
	struct owner *o = c->data;
	switch (m->type) {
	case CAIRN_REPLY_CREATED:
		owner_created(o, m);
		break;
	case CAIRN_REPLY_OK:
		owner_ok(o, m->request_id);
		break;
	case CAIRN_REPLY_ENVELOPE:
		owner_envelope(o, m);
		break;
	default:
		/* An ACK refused still counts as answered: the run must not wait for it. */
		if (m->type == CAIRN_REPLY_ERROR && m->request_id >= RID_ACK_BASE)
			o->ack_ok++;
		if (o->f->errors++ == 0)
			bench_note("an owner got %s code %u for request %u",
			           cairn_msg_type_name(m->type), (unsigned)m->code,
			           (unsigned)m->request_id);
		if (m->request_id < RID_ACK_BASE)
			o->f->failed = true; /* setup cannot go on */
		break;
	}
}

static void owner_read_done(struct bconn *c)
{
	bconn_flush(c);
}

/* A new connection creates its mailbox; a returning one proves it owns it. */
static void owner_ready(struct bconn *c)
{
	struct owner *o = c->data;
	if (!o->connected) {
		struct cairn_msg m = {.type = CAIRN_CMD_CREATE,
		                      .request_id = RID_CREATE,
		                      .recipient_key = o->sign_pk};
		owner_queue(o, &m);
	} else {
		uint8_t signed_msg[12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN];
		uint8_t sig[crypto_sign_BYTES];
		memcpy(signed_msg, "cairn/1 auth", 12);
		memcpy(signed_msg + 12, bconn_handshake_hash(c), CAIRN_HASH_LEN);
		memcpy(signed_msg + 12 + CAIRN_HASH_LEN, o->recipient_id, CAIRN_MAILBOX_ID_LEN);
		crypto_sign_detached(sig, NULL, signed_msg, sizeof(signed_msg), o->sign_sk);
		struct cairn_msg m = {.type = CAIRN_CMD_AUTH,
		                      .request_id = RID_AUTH,
		                      .recipient_id = o->recipient_id,
		                      .signature = sig};
		owner_queue(o, &m);
	}
	o->connected = true;
	bconn_flush(c);
}

static void owner_failed(struct bconn *c, int err)
{
	struct owner *o = c->data;
	note_failure(o->f, err);
}

static void owner_closed(struct bconn *c)
{
	struct owner *o = c->data;
	o->f->closed++;
}

static const struct bconn_ops owner_ops = {
    .ready = owner_ready,
    .message = owner_message,
    .read_done = owner_read_done,
    .failed = owner_failed,
};

/* ---- the loop ----------------------------------------------------------------------- */

/* Moves the run through warm-up, measurement and the end of sending. */
static void on_pacer(uv_timer_t *t)
{
	struct fleet *f = t->data;
	if (!f->sending)
		return;
	uint64_t now = bench_now_ns();
	if (!f->measuring && f->measure_to != 0 && now >= f->measure_from) {
		f->measuring = true;
		bench_mark(f->relay_pid, 0, "online-%u-from", (unsigned)f->n);
		f->relay_cpu0 = proc_cpu_s(f->relay_pid);
		f->gen_cpu0 = bench_self_cpu_s();
	}
	if (f->measuring && now >= f->measure_to) {
		f->relay_cpu1 = proc_cpu_s(f->relay_pid);
		f->gen_cpu1 = bench_self_cpu_s();
		f->measuring = false;
		f->sending = false;
		if (f->rate_per_sender > 0)
			bench_mark(f->relay_pid, f->measured, "online-%u-at-%.0f/s", (unsigned)f->n,
			           f->rate_per_sender * f->n);
		else
			bench_mark(f->relay_pid, f->measured, "online-%u-peak", (unsigned)f->n);
		return;
	}
	for (uint32_t i = 0; i < f->n; i++)
		sender_pump(&f->senders[i]);
}

/* Runs the loop until DONE(F), a failure, or TIMEOUT_S. Returns 0 or -1. */
static int fleet_wait(struct fleet *f, bool (*done)(const struct fleet *f), double timeout_s)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
	while (!done(f) && !f->failed) {
		if (bench_now_ns() > deadline) {
			bench_note("timed out waiting for the relay");
			return -1;
		}
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	return f->failed ? -1 : 0;
}

static bool all_ready(const struct fleet *f)
{
	return f->ready == f->n;
}

static bool all_closed(const struct fleet *f)
{
	return f->closed == f->n;
}

static int connect_senders(struct fleet *f)
{
	f->ready = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		struct sender *s = &f->senders[i];
		if (bconn_prepare(&s->conn, f->relay_pub) != 0 ||
		    bconn_connect(&s->conn, &f->loop, (const struct sockaddr *)&f->relay, NULL,
		                  &sender_ops, s) != 0)
			return -1;
	}
	return fleet_wait(f, all_ready, SETUP_TIMEOUT_S);
}

/* Owners connect: a new one creates its mailbox, a returning one authenticates. */
static int connect_owners(struct fleet *f)
{
	f->ready = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		struct owner *o = &f->owners[i];
		o->ready = false;
		if (bconn_prepare(&o->conn, f->relay_pub) != 0 ||
		    bconn_connect(&o->conn, &f->loop, (const struct sockaddr *)&f->owner_relay,
		                  NULL, &owner_ops, o) != 0)
			return -1;
	}
	return fleet_wait(f, all_ready, SETUP_TIMEOUT_S);
}

static int close_owners(struct fleet *f)
{
	f->closed = 0;
	for (uint32_t i = 0; i < f->n; i++)
		bconn_close(&f->owners[i].conn, owner_closed);
	return fleet_wait(f, all_closed, SETUP_TIMEOUT_S);
}

struct fleet *fleet_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                         pid_t relay_pid, uint32_t n, uint32_t size, uint32_t window,
                         bool subscribe)
{
	return fleet_open_split(relay, relay, relay_public, relay_pid, n, size, window, subscribe);
}

struct fleet *fleet_open_split(const struct sockaddr_in *relay,
                               const struct sockaddr_in *owner_relay,
                               const uint8_t relay_public[32], pid_t relay_pid, uint32_t n,
                               uint32_t size, uint32_t window, bool subscribe)
{
	struct fleet *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->senders = calloc(n, sizeof(*f->senders));
	f->owners = calloc(n, sizeof(*f->owners));
	if (f->senders == NULL || f->owners == NULL || uv_loop_init(&f->loop) != 0) {
		free(f->senders);
		free(f->owners);
		free(f);
		return NULL;
	}
	f->relay = *relay;
	f->owner_relay = *owner_relay;
	memcpy(f->relay_pub, relay_public, 32);
	f->relay_pid = relay_pid;
	f->n = n;
	f->size = size < BODY_HEADER ? BODY_HEADER : size;
	f->window = window;
	f->subscribe = subscribe;
	uv_timer_init(&f->loop, &f->pacer);
	f->pacer.data = f;
	uv_timer_start(&f->pacer, on_pacer, 1, 1);
	for (uint32_t i = 0; i < n; i++) {
		struct sender *s = &f->senders[i];
		struct owner *o = &f->owners[i];
		s->f = o->f = f;
		s->body = calloc(1, f->size);
		if (s->body == NULL) {
			fleet_close(f);
			return NULL;
		}
		randombytes_buf(s->body, f->size);
		randombytes_buf(s->credential, sizeof(s->credential));
		crypto_sign_keypair(o->sign_pk, o->sign_sk);
	}
	if (connect_owners(f) != 0 || (!subscribe && close_owners(f) != 0) ||
	    connect_senders(f) != 0) {
		bench_note("could not set up %u senders and owners", (unsigned)n);
		fleet_close(f);
		return NULL;
	}
	return f;
}

static uint64_t total_sent(const struct fleet *f)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < f->n; i++)
		sum += f->senders[i].next_seq;
	return sum;
}

/* Everything sent was answered, delivered and its ACK answered. */
static bool all_settled(const struct fleet *f)
{
	if (f->sending)
		return false;
	uint64_t sent = total_sent(f), delivered = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		const struct owner *o = &f->owners[i];
		if (f->senders[i].inflight > 0 || o->ack_ok < o->acks_sent)
			return false;
		delivered += o->delivered;
	}
	return delivered >= sent;
}

static void run_begin(struct fleet *f, double target_rate, uint64_t quota)
{
	lat_reset(&f->lat);
	f->measured = 0;
	f->measuring = false;
	f->rate_per_sender = target_rate / f->n;
	for (uint32_t i = 0; i < f->n; i++) {
		f->senders[i].run_sent = 0;
		f->senders[i].quota = quota;
	}
	f->t0 = bench_now_ns();
	f->sending = true;
	for (uint32_t i = 0; i < f->n; i++)
		sender_pump(&f->senders[i]);
}

int fleet_run(struct fleet *f, double target_rate, double warmup_s, double duration_s,
              struct online_run *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t errors0 = f->errors;
	f->measure_from = bench_now_ns() + (uint64_t)(warmup_s * 1e9);
	f->measure_to = f->measure_from + (uint64_t)(duration_s * 1e9);
	run_begin(f, target_rate, UINT64_MAX);
	if (fleet_wait(f, all_settled, warmup_s + duration_s + 60) != 0)
		return -1;
	out->target_rate = target_rate;
	out->delivered = f->measured;
	out->rate = (double)f->measured / duration_s;
	lat_fill(&f->lat, out);
	out->relay_cpu = (f->relay_cpu1 - f->relay_cpu0) / duration_s;
	out->gen_cpu = (f->gen_cpu1 - f->gen_cpu0) / duration_s;
	out->errors = f->errors - errors0;
	return 0;
}

static bool all_answered(const struct fleet *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (f->senders[i].run_sent < f->senders[i].quota || f->senders[i].inflight > 0)
			return false;
	return true;
}

static bool all_drained(const struct fleet *f)
{
	uint64_t sent = total_sent(f), acked = 0;
	for (uint32_t i = 0; i < f->n; i++)
		acked += f->owners[i].ack_ok;
	return acked >= sent;
}

void fleet_on_durable_phase(struct fleet *f, void (*fn)(void *ctx, int phase), void *ctx)
{
	f->on_phase = fn;
	f->on_phase_ctx = ctx;
}

static void durable_phase(struct fleet *f, int phase)
{
	/* Phase 1 ends the sending part and begins the drain. */
	bench_mark(f->relay_pid, phase == 0 ? 0 : total_sent(f), "%s-%u%s",
	           phase == 2 ? "drain" : "durable", (unsigned)f->n, phase == 0 ? "-from" : "");
	if (f->on_phase != NULL)
		f->on_phase(f->on_phase_ctx, phase);
}

int fleet_durable(struct fleet *f, uint64_t count, struct durable_result *out)
{
	uint64_t errors0 = f->errors;
	f->measure_to = 0; /* no timed phases: the pacer only paces */
	durable_phase(f, 0);
	double cpu0 = proc_cpu_s(f->relay_pid);
	uint64_t t0 = bench_now_ns();
	run_begin(f, 0, count / f->n);
	if (fleet_wait(f, all_answered, 600) != 0)
		return -1;
	f->sending = false;
	uint64_t t1 = bench_now_ns();
	double cpu1 = proc_cpu_s(f->relay_pid);
	durable_phase(f, 1);
	if (connect_owners(f) != 0)
		return -1;
	for (uint32_t i = 0; i < f->n; i++)
		bconn_flush(&f->owners[i].conn);
	if (fleet_wait(f, all_drained, 600) != 0)
		return -1;
	uint64_t t2 = bench_now_ns();
	double cpu2 = proc_cpu_s(f->relay_pid);
	durable_phase(f, 2);
	uint64_t sent = total_sent(f);
	durable_times(out, sent, t0, t1, t2, cpu0, cpu1, cpu2);
	out->errors = f->errors - errors0;
	return 0;
}

static void close_all(struct fleet *f)
{
	for (uint32_t i = 0; i < f->n; i++) {
		if (f->senders[i].conn.ops != NULL)
			bconn_close(&f->senders[i].conn, NULL);
		if (f->owners[i].conn.ops != NULL)
			bconn_close(&f->owners[i].conn, NULL);
	}
	uv_close((uv_handle_t *)&f->pacer, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

void fleet_close(struct fleet *f)
{
	if (f == NULL)
		return;
	close_all(f);
	if (uv_loop_close(&f->loop) != 0)
		bench_note("a libuv handle was left open");
	for (uint32_t i = 0; i < f->n; i++) {
		free(f->senders[i].body);
		sodium_memzero(f->owners[i].sign_sk, sizeof(f->owners[i].sign_sk));
	}
	lat_free(&f->lat);
	free(f->senders);
	free(f->owners);
	free(f);
}
