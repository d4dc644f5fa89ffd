/* SPDX-License-Identifier: MIT */
/*
 * One sender and N followers of a group log against a Cairn relay (see gfleet.h). As in
 * fleet.c, a 1 ms pacer moves the run through its phases and replies drive everything else;
 * the sender's window is the fan-out window of util.c, the entries not yet with every member,
 * the same rule the mosquitto side's publisher follows.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bconn.h"
#include "cairn/error.h"
#include "gfleet.h"
#include "sockbytes.h"

#define OUT_CAP         (256 * 1024) /* the sender stops encoding while this much is unwritten */
#define RID_CREATE      1
#define RID_READ        2
#define RID_APPEND_BASE 100 /* LOG_APPEND request ids count up from here */
#define SETUP_TIMEOUT_S 60.0
#define SETTLE_S        60.0

struct member {
	struct bconn conn;
	struct gfleet *f;
	uint64_t expect_seq; /* the next sequence number (ours, in the entry) */
	bool ready;
};

struct gfleet {
	uv_loop_t loop;
	uv_timer_t pacer;
	struct sockaddr_in relay;
	uint8_t relay_pub[32];
	struct group_shape shape;
	struct bconn sender;
	uint8_t log_id[CAIRN_LOG_ID_LEN], credential[CAIRN_CREDENTIAL_LEN];
	uint8_t *body; /* the entry; its header is rewritten for every append */
	uint64_t next_seq;
	uint32_t unanswered; /* LOG_APPENDs not yet answered */
	bool created;
	struct member *members;
	uint32_t ready; /* setup progress: members whose read has started */
	struct fan_window fan;
	bool failed;

	/* The current run. */
	bool sending;
	struct bench_phase phase;
	uint64_t measured; /* deliveries while measuring */
	struct lat_samples lat;
	uint64_t errors;
};

static void note_failure(struct gfleet *f, const char *what, int err)
{
	if (!f->failed)
		bench_note("group: %s: %s", what, cairn_strerror(err));
	f->failed = true;
}

/* ---- the sender --------------------------------------------------------------------- */

static void sender_pump(struct gfleet *f)
{
	struct bconn *c = &f->sender;
	if (!f->sending || f->failed || c->broken)
		return;
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = f->log_id,
	                      .credential = f->credential,
	                      .envelope = f->body,
	                      .envelope_len = f->shape.size};
	while (f->next_seq - f->fan.done < f->shape.window && bconn_backlog(c) < OUT_CAP) {
		bench_put_le64(f->body, bench_now_ns());
		bench_put_le64(f->body + 8, f->next_seq);
		m.request_id = (uint32_t)(RID_APPEND_BASE + f->next_seq);
		if (bconn_queue(c, &m) != 0) {
			note_failure(f, "an append could not be queued", CAIRN_ENOBUFS);
			return;
		}
		f->next_seq++;
		f->unanswered++;
	}
	bconn_flush(c);
}

/* The log: a fresh id, credential and delete secret; only the digests go to the relay. */
static void sender_ready(struct bconn *c)
{
	struct gfleet *f = c->data;
	uint8_t digest[32], del[32], del_digest[32];
	randombytes_buf(f->log_id, sizeof(f->log_id));
	randombytes_buf(f->credential, sizeof(f->credential));
	randombytes_buf(del, sizeof(del));
	crypto_generichash(digest, sizeof(digest), f->credential, sizeof(f->credential), f->log_id,
	                   sizeof(f->log_id));
	crypto_generichash(del_digest, sizeof(del_digest), del, sizeof(del), f->log_id,
	                   sizeof(f->log_id));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .request_id = RID_CREATE,
	                      .log_id = f->log_id,
	                      .credential = digest,
	                      .delete_digest = del_digest};
	if (bconn_queue(c, &m) != 0 || bconn_flush(c) != 0)
		note_failure(f, "LOG_CREATE", CAIRN_EIO);
}

static void sender_message(struct bconn *c, const struct cairn_msg *m)
{
	struct gfleet *f = c->data;
	if (m->type == CAIRN_REPLY_OK && m->request_id == RID_CREATE) {
		f->created = true;
	} else if (m->type == CAIRN_REPLY_APPENDED) {
		f->unanswered--;
	} else if (m->type == CAIRN_REPLY_ERROR && m->request_id >= RID_APPEND_BASE) {
		if (f->errors++ == 0)
			bench_note("group: a LOG_APPEND failed with code %u", (unsigned)m->code);
		f->unanswered--;
		/* The entry will never arrive: the window cannot move past it. */
		note_failure(f, "the relay refused an append", cairn_wire_error(m->code));
	} else {
		note_failure(f, cairn_msg_type_name(m->type), cairn_wire_error(m->code));
	}
}

static void sender_wake(struct bconn *c)
{
	sender_pump(c->data);
}

static void sender_failed(struct bconn *c, int err)
{
	note_failure(c->data, "the sender's connection", err);
}

static const struct bconn_ops sender_ops = {
    .ready = sender_ready,
    .message = sender_message,
    .read_done = sender_wake,
    .writable = sender_wake,
    .failed = sender_failed,
};

/* ---- the members -------------------------------------------------------------------- */

static void member_ready(struct bconn *c)
{
	struct member *mb = c->data;
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = RID_READ,
	                      .log_id = mb->f->log_id,
	                      .seq = 1,
	                      .follow = 1};
	if (bconn_queue(c, &m) != 0 || bconn_flush(c) != 0)
		note_failure(mb->f, "LOG_READ", CAIRN_EIO);
}

static void member_entry(struct member *mb, const struct cairn_msg *m)
{
	struct gfleet *f = mb->f;
	uint64_t now = bench_now_ns();
	if (m->envelope_len != f->shape.size) {
		if (f->errors++ == 0)
			bench_note("group: a %zu-byte entry arrived", m->envelope_len);
		return;
	}
	uint64_t sent = bench_get_le64(m->envelope), seq = bench_get_le64(m->envelope + 8);
	if (seq != mb->expect_seq && f->errors++ == 0)
		bench_note("group: entry %llu arrived, %llu expected", (unsigned long long)seq,
		           (unsigned long long)mb->expect_seq);
	mb->expect_seq = seq + 1;
	if (phase_counts(&f->phase, now)) {
		f->measured++;
		lat_add(&f->lat, now - sent);
	}
	fan_got(&f->fan, seq);
}

static void member_message(struct bconn *c, const struct cairn_msg *m)
{
	struct member *mb = c->data;
	if (m->type == CAIRN_REPLY_LOG_ENTRY) {
		member_entry(mb, m);
	} else if (m->type == CAIRN_REPLY_LOG_STATE && !mb->ready) {
		mb->ready = true;
		mb->f->ready++;
	} else {
		/* END or ERROR: the follow read is over, and the run cannot go on. */
		note_failure(mb->f, cairn_msg_type_name(m->type), cairn_wire_error(m->code));
	}
}

/* Deliveries may have moved the window: the sender may send again. */
static void member_read_done(struct bconn *c)
{
	struct member *mb = c->data;
	sender_pump(mb->f);
}

static void member_failed(struct bconn *c, int err)
{
	struct member *mb = c->data;
	note_failure(mb->f, "a member's connection", err);
}

static const struct bconn_ops member_ops = {
    .ready = member_ready,
    .message = member_message,
    .read_done = member_read_done,
    .failed = member_failed,
};

/* ---- the loop ----------------------------------------------------------------------- */

static void on_pacer(uv_timer_t *t)
{
	struct gfleet *f = t->data;
	if (!f->sending)
		return;
	if (!phase_tick(&f->phase, bench_now_ns()))
		f->sending = false;
	else
		sender_pump(f);
}

/* Runs the loop until DONE(F), a failure, or TIMEOUT_S. Returns 0 or -1. */
static int gfleet_wait(struct gfleet *f, bool (*done)(const struct gfleet *f), double timeout_s)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
	while (!done(f) && !f->failed) {
		if (bench_now_ns() > deadline) {
			bench_note("group: timed out waiting for the relay");
			return -1;
		}
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	return f->failed ? -1 : 0;
}

static bool created(const struct gfleet *f)
{
	return f->created;
}

static bool all_ready(const struct gfleet *f)
{
	return f->ready == f->shape.members;
}

/* Sending is over, every append answered and every entry with every member. */
static bool settled(const struct gfleet *f)
{
	return !f->sending && f->unanswered == 0 && f->fan.done == f->next_seq;
}

static int connect_all(struct gfleet *f)
{
	const struct sockaddr *relay = (const struct sockaddr *)&f->relay;
	if (bconn_prepare(&f->sender, f->relay_pub) != 0 ||
	    bconn_connect(&f->sender, &f->loop, relay, NULL, &sender_ops, f) != 0 ||
	    gfleet_wait(f, created, SETUP_TIMEOUT_S) != 0)
		return -1;
	for (uint32_t i = 0; i < f->shape.members; i++) {
		struct member *mb = &f->members[i];
		mb->f = f;
		if (bconn_prepare(&mb->conn, f->relay_pub) != 0 ||
		    bconn_connect(&mb->conn, &f->loop, relay, NULL, &member_ops, mb) != 0)
			return -1;
	}
	return gfleet_wait(f, all_ready, SETUP_TIMEOUT_S);
}

struct gfleet *gfleet_open(const struct sockaddr_in *relay, const uint8_t relay_public[32],
                           pid_t relay_pid, const struct group_shape *shape)
{
	struct gfleet *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->shape = *shape;
	if (f->shape.size < BENCH_MSG_HEADER)
		f->shape.size = BENCH_MSG_HEADER;
	f->members = calloc(shape->members, sizeof(*f->members));
	f->body = malloc(f->shape.size);
	if (f->members == NULL || f->body == NULL ||
	    fan_init(&f->fan, shape->window, shape->members) != 0 || uv_loop_init(&f->loop) != 0) {
		fan_free(&f->fan);
		free(f->members);
		free(f->body);
		free(f);
		return NULL;
	}
	randombytes_buf(f->body, f->shape.size);
	f->relay = *relay;
	memcpy(f->relay_pub, relay_public, 32);
	f->phase.server = relay_pid;
	uv_timer_init(&f->loop, &f->pacer);
	f->pacer.data = f;
	uv_timer_start(&f->pacer, on_pacer, 1, 1);
	if (connect_all(f) != 0) {
		bench_note("group: could not set up a sender and %u followers",
		           (unsigned)shape->members);
		gfleet_close(f);
		return NULL;
	}
	return f;
}

/* The sender's bytes on the wire so far (sockbytes.h). */
static uint64_t sender_bytes(struct gfleet *f)
{
	uv_os_fd_t fd;
	if (uv_fileno((const uv_handle_t *)&f->sender.tcp, &fd) != 0)
		return UINT64_MAX;
	return sock_bytes_acked(fd);
}

int gfleet_run(struct gfleet *f, double warmup_s, double duration_s, struct online_run *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t errors0 = f->errors, seq0 = f->next_seq, bytes0 = sender_bytes(f);
	lat_reset(&f->lat);
	f->measured = 0;
	phase_begin(&f->phase, f->phase.server, warmup_s, duration_s);
	f->sending = true;
	sender_pump(f);
	if (gfleet_wait(f, settled, warmup_s + duration_s + SETTLE_S) != 0)
		return -1;
	uint64_t bytes1 = sender_bytes(f), sent = f->next_seq - seq0;
	out->delivered = f->measured;
	out->rate = (double)f->measured / duration_s;
	out->msgs_per_s = out->rate / f->shape.members;
	if (bytes0 != UINT64_MAX && bytes1 != UINT64_MAX && sent > 0)
		out->upload_per_msg = (double)(bytes1 - bytes0) / (double)sent;
	lat_fill(&f->lat, out);
	phase_cpu(&f->phase, out);
	out->errors = f->errors - errors0;
	return 0;
}

void gfleet_close(struct gfleet *f)
{
	if (f == NULL)
		return;
	for (uint32_t i = 0; i < f->shape.members; i++)
		if (f->members[i].conn.ops != NULL)
			bconn_close(&f->members[i].conn, NULL);
	if (f->sender.ops != NULL)
		bconn_close(&f->sender, NULL);
	uv_close((uv_handle_t *)&f->pacer, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&f->loop) != 0)
		bench_note("group: a libuv handle was left open");
	fan_free(&f->fan);
	lat_free(&f->lat);
	free(f->members);
	free(f->body);
	free(f);
}
