/* SPDX-License-Identifier: MIT */
/*
 * The blocking test client (see tclient.h). Reads use poll() with a deadline so that a test
 * never hangs on a relay that stays silent, which is exactly what a relay does to a peer that
 * fails the handshake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/error.h"
#include "tclient.h"

static bool peer_closed_flag;

/* ---- CAIRN_FUZZ_RECORD: seed corpora from real traffic ---------------------------------- */

/*
 * With CAIRN_FUZZ_RECORD=DIR, every connection this client makes is written down for the fuzz
 * targets (fuzz/): DIR/relayconn/ gets one file per connection in fuzz_relayconn's format (each
 * batch sent, marked PATCH and WAIT, with the slot of the mailbox it names; raw writes marked
 * RAW), and DIR/codec/ one file per batch sent or received. Off unless the variable is set.
 */
#define REC_CONNS       16
#define REC_RECORDS_MAX 64
#define REC_FILES_MAX   400
#define REC_OP_PATCH    0x01
#define REC_OP_WAIT     0x02
#define REC_OP_RAW      0x04

struct rec_conn {
	const struct tclient *c;
	FILE *f;
	unsigned records;
	uint8_t ids[4][2][24]; /* recipient and sender ids of the mailboxes it created */
	unsigned nids;
};

static struct rec_conn rec_conns[REC_CONNS];
static unsigned rec_files;

static const char *rec_dir(void)
{
	const char *d = getenv("CAIRN_FUZZ_RECORD");
	return d != NULL && d[0] != '\0' && rec_files < REC_FILES_MAX ? d : NULL;
}

static FILE *rec_create(const char *target)
{
	const char *dir = rec_dir();
	if (dir == NULL)
		return NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, target);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/%ld-%u", dir, target, (long)getpid(), rec_files++);
	return fopen(path, "wb");
}

static struct rec_conn *rec_find(const struct tclient *c)
{
	for (size_t i = 0; i < REC_CONNS; i++)
		if (rec_conns[i].c == c && rec_conns[i].f != NULL)
			return &rec_conns[i];
	return NULL;
}

static void rec_start(const struct tclient *c)
{
	for (size_t i = 0; i < REC_CONNS; i++) {
		if (rec_conns[i].f != NULL)
			continue;
		memset(&rec_conns[i], 0, sizeof(rec_conns[i]));
		rec_conns[i].f = rec_create("relayconn");
		if (rec_conns[i].f == NULL)
			return;
		rec_conns[i].c = c;
		fputc(0, rec_conns[i].f); /* config: bucket frames, default limits */
		return;
	}
}

static void rec_stop(const struct tclient *c)
{
	struct rec_conn *r = rec_find(c);
	if (r != NULL) {
		fclose(r->f);
		r->f = NULL;
		r->c = NULL;
	}
}

static void rec_codec(const uint8_t *p, size_t len)
{
	FILE *f = rec_create("codec");
	if (f != NULL) {
		fwrite(p, 1, len, f);
		fclose(f);
	}
}

/* The slot (creation order on this connection) of the mailbox the batch's first command names. */
static uint8_t rec_slot(const struct rec_conn *r, const uint8_t *p, size_t len)
{
	struct cairn_msg m;
	size_t used = 0;
	memset(&m, 0, sizeof(m));
	if (cairn_msg_decode(p, len, &used, &m, NULL) != 0)
		return 0;
	for (unsigned i = 0; i < r->nids; i++)
		if ((m.recipient_id != NULL && memcmp(m.recipient_id, r->ids[i][0], 24) == 0) ||
		    (m.sender_id != NULL && memcmp(m.sender_id, r->ids[i][1], 24) == 0))
			return (uint8_t)i;
	return 0;
}

static void rec_record(const struct tclient *c, uint8_t op, const uint8_t *p, size_t len)
{
	struct rec_conn *r = rec_find(c);
	if (r == NULL || r->records >= REC_RECORDS_MAX || len > 0xffff)
		return;
	r->records++;
	if (!(op & REC_OP_RAW))
		op |= (uint8_t)(rec_slot(r, p, len) << 6);
	uint8_t head[3] = {op, (uint8_t)(len >> 8), (uint8_t)len};
	fwrite(head, 1, sizeof(head), r->f);
	fwrite(p, 1, len, r->f);
}

/* Replies: CREATED ones give the slots later batches are recorded against. */
static void rec_replies(const struct tclient *c, const uint8_t *p, size_t len)
{
	struct rec_conn *r = rec_find(c);
	if (r == NULL)
		return;
	rec_codec(p, len);
	size_t off = 0;
	while (off < len) {
		struct cairn_msg m;
		size_t used = 0;
		memset(&m, 0, sizeof(m));
		if (cairn_msg_decode(p + off, len - off, &used, &m, NULL) != 0)
			return;
		if (m.type == CAIRN_REPLY_CREATED && r->nids < 4) {
			memcpy(r->ids[r->nids][0], m.recipient_id, 24);
			memcpy(r->ids[r->nids][1], m.sender_id, 24);
			r->nids++;
		}
		off += used;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tclient_clock_offset;

static uint64_t wall_now(void *ctx)
{
	(void)ctx;
	return (uint64_t)((int64_t)time(NULL) + tclient_clock_offset);
}

enum channel_transport tclient_transport = CHANNEL_TRANSPORT_AUTO;

static const struct channel_options tclient_options = {.role = CHANNEL_INITIATOR, .now = wall_now};

/*
 * Before each use of the channel: a session a test completed by hand is taken over, and one
 * a test sealed frames with (moving its nonce) is taken back. After each use, the channel's
 * session is mirrored out again.
 */
static int sync_in(struct tclient *c)
{
	if (channel_state(&c->ch) == CHANNEL_OPEN) {
		c->ch.session = c->session;
		return 0;
	}
	if (channel_state(&c->ch) == CHANNEL_FAILED || !c->session.send.has_key)
		return channel_state(&c->ch) == CHANNEL_FAILED ? c->ch.error : CAIRN_ESTATE;
	channel_free(&c->ch);
	return channel_init_open(&c->ch, &tclient_options, &c->session);
}

static void sync_out(struct tclient *c)
{
	if (channel_state(&c->ch) == CHANNEL_OPEN)
		c->session = c->ch.session;
}

/* Set by tclient_connect_at for one dial: the IPv4 addresses to connect from and to. */
static const char *dial_from, *dial_to;

int tclient_dial(struct tclient *c, uint16_t port)
{
	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (dial_to != NULL)
		inet_pton(AF_INET, dial_to, &sa.sin_addr);
	if (dial_from != NULL) {
		struct sockaddr_in from = {.sin_family = AF_INET};
		inet_pton(AF_INET, dial_from, &from.sin_addr);
		if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
			close(c->fd);
			c->fd = -1;
			return -1;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	frame_reader_init(&c->reader, CAIRN_HANDSHAKE2_MIN, CAIRN_HANDSHAKE2_MAX);
	return 0;
}

static int write_all(struct tclient *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return CAIRN_EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends everything the channel has sealed. */
static int write_output(struct tclient *c)
{
	const uint8_t *out;
	size_t len = channel_output(&c->ch, &out);
	int rc = write_all(c, out, len);
	channel_output_consume(&c->ch, len);
	return rc;
}

int tclient_write_raw(struct tclient *c, const void *buf, size_t len)
{
	rec_record(c, REC_OP_RAW, buf, len);
	return write_all(c, buf, len);
}

/* The channel's next event, reading until DEADLINE. Returns its type, or CAIRN_EIO on a
 * timeout or a closed connection. */
static int next_event(struct tclient *c, struct channel_event *ev, int64_t deadline)
{
	peer_closed_flag = false;
	for (;;) {
		enum channel_event_type t = channel_next_event(&c->ch, ev);
		if (t != CHANNEL_EV_NONE)
			return (int)t;
		if (c->in_off < c->in_len) {
			uint64_t frames = c->ch.frames_in;
			c->in_off += channel_feed(&c->ch, c->in + c->in_off, c->in_len - c->in_off);
			if (c->ch.frames_in != frames)
				rec_replies(c, c->ch.bufs->plain.data + c->ch.bufs->plain_off,
				            c->ch.bufs->plain.len - c->ch.bufs->plain_off);
			continue;
		}
		int wait = (int)(deadline - now_ms());
		if (wait < 0)
			return CAIRN_EIO;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, wait);
		if (pr == 0)
			return CAIRN_EIO;
		if (pr < 0 && errno != EINTR)
			return CAIRN_EIO;
		if (pr < 0)
			continue;
		ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);
		if (n <= 0) {
			peer_closed_flag = true;
			return CAIRN_EIO;
		}
		c->in_len = (size_t)n;
		c->in_off = 0;
	}
}

int tclient_connect(struct tclient *c, uint16_t port, const uint8_t relay_public[32])
{
	if (tclient_dial(c, port) != 0)
		return CAIRN_EIO;
	struct channel_options opt = tclient_options;
	opt.relay_public = relay_public;
	opt.transport = tclient_transport;
	int rc = channel_init(&c->ch, &opt);
	if (rc != 0 || (rc = write_output(c)) != 0)
		return rc;
	struct channel_event ev;
	int64_t deadline = now_ms() + 5000;
	while ((rc = next_event(c, &ev, deadline)) != CHANNEL_EV_OPEN)
		if (rc < 0 || rc == CHANNEL_EV_FAILED)
			return rc < 0 ? rc : ev.error;
	sync_out(c);
	/* For callers that read frames themselves from here on. */
	frame_reader_set_limits(&c->reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                        CAIRN_NOISE_MSG_MAX);
	rec_start(c);
	return 0;
}

int tclient_connect_at(struct tclient *c, const char *from, const char *to, uint16_t port,
                       const uint8_t relay_public[32])
{
	dial_from = from;
	dial_to = to;
	int rc = tclient_connect(c, port, relay_public);
	dial_from = dial_to = NULL;
	return rc;
}

void tclient_close(struct tclient *c)
{
	rec_stop(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	frame_reader_free(&c->reader);
	channel_free(&c->ch);
	cairn_session_wipe(&c->session);
}

int tclient_flush(struct tclient *c)
{
	if (c->batch_len == 0)
		return 0;
	if (rec_find(c) != NULL) {
		rec_record(c, REC_OP_PATCH | REC_OP_WAIT, c->batch, c->batch_len);
		rec_codec(c->batch, c->batch_len);
	}
	int rc = sync_in(c);
	if (rc == 0)
		rc = channel_send_frame(&c->ch, c->batch, c->batch_len);
	sync_out(c);
	c->batch_len = 0;
	if (rc != 0)
		return rc;
	return write_output(c);
}

int tclient_queue(struct tclient *c, const struct cairn_msg *m)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t used = 0;
		int rc = cairn_msg_encode(m, c->batch + c->batch_len,
		                          sizeof(c->batch) - c->batch_len, &used);
		if (rc == 0) {
			c->batch_len += used;
			return 0;
		}
		if (rc != CAIRN_ENOBUFS || (rc = tclient_flush(c)) != 0)
			return rc;
	}
	return CAIRN_ENOBUFS;
}

int tclient_send(struct tclient *c, const struct cairn_msg *m)
{
	int rc = tclient_queue(c, m);
	return rc ? rc : tclient_flush(c);
}

bool tclient_peer_closed(const struct tclient *c)
{
	return peer_closed_flag;
}

int tclient_recv(struct tclient *c, struct cairn_msg *m, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	memset(m, 0, sizeof(*m));
	int rc = sync_in(c);
	if (rc != 0)
		return rc;
	struct channel_event ev;
	while ((rc = next_event(c, &ev, deadline)) != CHANNEL_EV_MESSAGE) {
		if (rc < 0 || rc == CHANNEL_EV_FAILED) {
			sync_out(c);
			return rc < 0 ? rc : ev.error;
		}
	}
	sync_out(c);
	*m = ev.msg;
	return 0;
}

int tclient_call(struct tclient *c, struct cairn_msg *m, struct cairn_msg *reply)
{
	if (m->request_id == 0)
		m->request_id = c->next_id++;
	int rc = tclient_send(c, m);
	if (rc != 0)
		return rc;
	/* Deliveries and subscription ends are events, not replies: pass over them. */
	do {
		if ((rc = tclient_recv(c, reply, 5000)) != 0)
			return rc;
	} while (reply->type == CAIRN_REPLY_ENVELOPE || reply->type == CAIRN_REPLY_END);
	if (reply->request_id != m->request_id)
		return CAIRN_ESTATE;
	if (reply->type == CAIRN_REPLY_ERROR)
		return -(int)reply->code;
	return 0;
}

int tclient_create(struct tclient *c, uint8_t recipient_id[24], uint8_t sender_id[24],
                   uint8_t sign_pk[32], uint8_t sign_sk[64])
{
	crypto_sign_keypair(sign_pk, sign_sk);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .recipient_key = sign_pk}, r;
	int rc = tclient_call(c, &m, &r);
	if (rc != 0)
		return rc;
	if (r.type != CAIRN_REPLY_CREATED)
		return CAIRN_ESTATE;
	memcpy(recipient_id, r.recipient_id, 24);
	memcpy(sender_id, r.sender_id, 24);
	return 0;
}

int tclient_auth(struct tclient *c, const uint8_t recipient_id[24], const uint8_t sign_sk[64])
{
	uint8_t msg[12 + CAIRN_HASH_LEN + 24], sig[64];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, c->session.h, CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, recipient_id, 24);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sign_sk);
	struct cairn_msg m = {.type = CAIRN_CMD_AUTH,
	                      .recipient_id = recipient_id,
	                      .signature = sig},
	                 r;
	return tclient_call(c, &m, &r);
}
