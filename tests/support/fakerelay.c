/* SPDX-License-Identifier: MIT */
/*
 * The misbehaving test relay (see fakerelay.h). One process, one poll loop, blocking writes:
 * tests drive it with a handful of connections and a few hundred envelopes, far below what
 * would fill a loopback socket buffer, so nothing here needs output queues.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "fakerelay.h"
#include "policy.h"
#include "fakerelay_log.h"

#define FR_CONNS     32
#define FR_MAILBOXES 64

struct fr_envelope {
	uint64_t id;
	uint8_t *data;
	size_t len;
	bool held;         /* held back once already (WITHHOLD) */
	unsigned acked_in; /* the subscription that first acknowledged it (DUPLICATE), or 0 */
};

struct fr_mailbox {
	bool used, secured;
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN], sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t key[CAIRN_KEY_LEN], digest[CAIRN_CREDENTIAL_LEN];
	struct fr_envelope *env;
	size_t n, cap;
	uint64_t next_id;
	int sub_conn; /* the subscribed connection, or -1 */
	uint32_t sub_rid;
	unsigned sub_serial; /* counts subscriptions */
};

struct fr_conn {
	int fd;            /* -1: free slot */
	struct channel ch; /* the protocol; this file only moves its bytes */
	bool authed[FR_MAILBOXES];
	bool managed, sent; /* what this connection did: manage a mailbox, send to one */
};

struct fr_server {
	int modes;
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
	int listen_fd;
	struct fr_conn conns[FR_CONNS];
	struct fr_mailbox mb[FR_MAILBOXES];
	struct frlog *log; /* the group logs (fakerelay_log.c) */
	int ctl_fd;        /* fakerelay_ctl's requests */
	struct fakerelay_stats stats;
};

/* One control request or answer on fakerelay_ctl's socket. */
struct fr_ctl {
	int32_t op;
	uint64_t a, b;
	int64_t answer;
};

static volatile sig_atomic_t fr_stop;

static void fr_on_term(int sig)
{
	(void)sig;
	fr_stop = 1;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void conn_close(struct fr_server *s, int ci)
{
	struct fr_conn *c = &s->conns[ci];
	close(c->fd);
	c->fd = -1;
	channel_free(&c->ch);
	for (int i = 0; i < FR_MAILBOXES; i++)
		if (s->mb[i].sub_conn == ci)
			s->mb[i].sub_conn = -1;
	frlog_conn_closed(s->log, ci);
}

/* Writes out what C's channel has sealed. */
static int write_output(struct fr_conn *c)
{
	const uint8_t *out;
	size_t len = channel_output(&c->ch, &out);
	int rc = write_all(c->fd, out, len);
	channel_output_consume(&c->ch, len);
	return rc;
}

/* One reply, one frame: simple, and the client must cope with any batching anyway. */
static int reply(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	struct fr_conn *c = &s->conns[ci];
	if (c->fd < 0 || channel_queue(&c->ch, m) != 0 || channel_flush(&c->ch) != 0)
		return -1;
	return write_output(c);
}

/* reply() for fakerelay_log.c. */
static int log_reply(void *ctx, int ci, const struct cairn_msg *m)
{
	return reply(ctx, ci, m);
}

static int reply_simple(struct fr_server *s, int ci, uint32_t rid, int err)
{
	struct cairn_msg m = {.type = err ? CAIRN_REPLY_ERROR : CAIRN_REPLY_OK,
	                      .request_id = rid,
	                      .code = err ? cairn_wire_code(err) : 0};
	return reply(s, ci, &m);
}

/* FAKERELAY_POLICY_FORGED: a policy whose A is ours, signed by a fresh key. */
static int reply_forged_policy(struct fr_server *s, int ci, uint32_t rid)
{
	static struct policy p;
	uint8_t other[32], body[POLICY_BODY_MAX], sig[POLICY_SIG_LEN];
	size_t len;
	memset(&p, 0, sizeof(p));
	snprintf(p.jurisdiction, sizeof(p.jurisdiction), "forged");
	snprintf(p.statement, sizeof(p.statement), "not the operator's word");
	randombytes_buf(other, sizeof(other));
	if (policy_edwards(s->priv, p.edwards) != 0 ||
	    policy_encode(&p, body, sizeof(body), &len) != 0 ||
	    policy_sign(other, body, len, NULL, sig) != 0)
		return -1;
	struct cairn_msg m = {.type = CAIRN_REPLY_POLICY,
	                      .request_id = rid,
	                      .policy = body,
	                      .policy_len = len,
	                      .signature = sig};
	return reply(s, ci, &m);
}

static int deliver(struct fr_server *s, struct fr_mailbox *mb, const struct fr_envelope *e)
{
	struct cairn_msg m = {.type = CAIRN_REPLY_ENVELOPE,
	                      .request_id = mb->sub_rid,
	                      .envelope_id = e->id,
	                      .envelope = e->data,
	                      .envelope_len = e->len};
	s->stats.deliveries++;
	return reply(s, mb->sub_conn, &m);
}

static struct fr_mailbox *by_recipient(struct fr_server *s, const uint8_t *rid, int *index)
{
	for (int i = 0; i < FR_MAILBOXES; i++)
		if (s->mb[i].used &&
		    memcmp(s->mb[i].recipient_id, rid, CAIRN_MAILBOX_ID_LEN) == 0) {
			*index = i;
			return &s->mb[i];
		}
	return NULL;
}

/*
 * Starts delivery of what MB holds: each envelope once, or twice with DUPLICATE, in stored
 * order, or shuffled with SHUFFLE (duplicates shuffled too, so a second copy can come long
 * after the first, after newer envelopes); with WITHHOLD some wait for the next SUBSCRIBE.
 */
static int subscribe_deliver(struct fr_server *s, struct fr_mailbox *mb)
{
	size_t copies = (s->modes & FAKERELAY_DUPLICATE) ? 2 : 1;
	if (mb->n == 0)
		return 0;
	size_t *pick = malloc(mb->n * sizeof(*pick));
	size_t *order = malloc(mb->n * copies * sizeof(*order));
	bool *seen = calloc(mb->n, sizeof(*seen));
	if (pick == NULL || order == NULL || seen == NULL) {
		free(pick);
		free(order);
		free(seen);
		return -1;
	}
	size_t np = 0;
	for (size_t k = 0; k < mb->n; k++) {
		struct fr_envelope *e = &mb->env[k];
		if ((s->modes & FAKERELAY_WITHHOLD) && !e->held && randombytes_uniform(2) == 0) {
			e->held = true;
			s->stats.withheld++;
			continue;
		}
		pick[np++] = k;
	}
	if (np == 0) {
		pick[np++] = 0; /* never everything: each sync must make progress */
		s->stats.withheld--;
	}
	size_t n = np * copies;
	for (size_t i = 0; i < n; i++)
		order[i] = pick[i / copies];
	for (size_t i = n - 1; (s->modes & FAKERELAY_SHUFFLE) && i > 0; i--) {
		size_t j = randombytes_uniform((uint32_t)(i + 1));
		size_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* A delivery counts as reordered when an older envelope of this batch is still to go. */
	size_t next_oldest = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t k = order[i];
		if (seen[k])
			s->stats.duplicates++;
		if (mb->env[k].acked_in != 0)
			s->stats.replayed++;
		seen[k] = true;
		while (next_oldest < np && seen[pick[next_oldest]])
			next_oldest++;
		if (next_oldest < np && k > pick[next_oldest])
			s->stats.reordered++;
		rc = deliver(s, mb, &mb->env[k]);
	}
	free(pick);
	free(order);
	free(seen);
	return rc;
}

static int handle_create(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	for (int i = 0; i < FR_MAILBOXES; i++) {
		struct fr_mailbox *mb = &s->mb[i];
		if (mb->used)
			continue;
		memset(mb, 0, sizeof(*mb));
		mb->used = true;
		mb->sub_conn = -1;
		mb->next_id = 1;
		memcpy(mb->key, m->recipient_key, CAIRN_KEY_LEN);
		randombytes_buf(mb->recipient_id, sizeof(mb->recipient_id));
		randombytes_buf(mb->sender_id, sizeof(mb->sender_id));
		s->conns[ci].authed[i] = true;
		struct cairn_msg r = {.type = CAIRN_REPLY_CREATED,
		                      .request_id = m->request_id,
		                      .recipient_id = mb->recipient_id,
		                      .sender_id = mb->sender_id};
		return reply(s, ci, &r);
	}
	return reply_simple(s, ci, m->request_id, CAIRN_ELIMIT);
}

/* AUTH as the relay checks it (PROTOCOL.md 5.4): Ed25519 over the label, this connection's
 * handshake hash and the recipient id, so the client's real proof is what gets tested. */
static int handle_auth(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	int i;
	struct fr_mailbox *mb = by_recipient(s, m->recipient_id, &i);
	uint8_t msg[12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, channel_session(&s->conns[ci].ch)->h, CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
	if (mb == NULL || crypto_sign_verify_detached(m->signature, msg, sizeof(msg), mb->key) != 0)
		return reply_simple(s, ci, m->request_id, CAIRN_EDENIED);
	s->conns[ci].authed[i] = true;
	return reply_simple(s, ci, m->request_id, 0);
}

static int handle_send(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	struct fr_mailbox *mb = NULL;
	for (int i = 0; i < FR_MAILBOXES && mb == NULL; i++)
		if (s->mb[i].used &&
		    memcmp(s->mb[i].sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN) == 0)
			mb = &s->mb[i];
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	if (mb != NULL && mb->secured &&
	    (m->credential == NULL ||
	     crypto_generichash(digest, sizeof(digest), m->credential, CAIRN_CREDENTIAL_LEN,
	                        mb->sender_id, CAIRN_MAILBOX_ID_LEN) != 0 ||
	     sodium_memcmp(digest, mb->digest, sizeof(digest)) != 0))
		mb = NULL;
	if (mb == NULL)
		return reply_simple(s, ci, m->request_id, CAIRN_EDENIED);
	if (mb->n == mb->cap) {
		size_t ncap = mb->cap ? mb->cap * 2 : 16;
		struct fr_envelope *p = realloc(mb->env, ncap * sizeof(*p));
		if (p == NULL)
			return reply_simple(s, ci, m->request_id, CAIRN_ESTORAGE);
		mb->env = p;
		mb->cap = ncap;
	}
	struct fr_envelope *e = &mb->env[mb->n];
	e->data = malloc(m->envelope_len ? m->envelope_len : 1);
	if (e->data == NULL)
		return reply_simple(s, ci, m->request_id, CAIRN_ESTORAGE);
	if (m->envelope_len > 0)
		memcpy(e->data, m->envelope, m->envelope_len);
	e->len = m->envelope_len;
	e->held = false;
	e->acked_in = 0;
	e->id = mb->next_id++;
	mb->n++;
	s->stats.sends++;
	if (reply_simple(s, ci, m->request_id, 0) != 0)
		return -1;
	/* A live subscription gets it now, twice in DUPLICATE mode. */
	if (mb->sub_conn >= 0) {
		for (int k = 0; k < ((s->modes & FAKERELAY_DUPLICATE) ? 2 : 1); k++) {
			if (k == 1)
				s->stats.duplicates++;
			if (deliver(s, mb, e) != 0)
				conn_close(s, mb->sub_conn);
			if (mb->sub_conn < 0)
				break;
		}
	}
	return 0;
}

/* Commands that need the connection authenticated for the mailbox. */
static int handle_recipient(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	int i;
	struct fr_mailbox *mb = by_recipient(s, m->recipient_id, &i);
	if (mb == NULL || !s->conns[ci].authed[i])
		return reply_simple(s, ci, m->request_id, CAIRN_EDENIED);
	switch (m->type) {
	case CAIRN_CMD_SECURE:
		memcpy(mb->digest, m->credential, CAIRN_CREDENTIAL_LEN);
		mb->secured = true;
		return reply_simple(s, ci, m->request_id, 0);
	case CAIRN_CMD_SUBSCRIBE:
		mb->sub_conn = ci;
		mb->sub_rid = m->request_id;
		mb->sub_serial++;
		if (reply_simple(s, ci, m->request_id, 0) != 0)
			return -1;
		return subscribe_deliver(s, mb);
	case CAIRN_CMD_ACK:
		for (size_t k = 0; k < mb->n; k++) {
			if (mb->env[k].id != m->envelope_id)
				continue;
			struct fr_envelope *e = &mb->env[k];
			if ((s->modes & FAKERELAY_DUPLICATE) &&
			    (e->acked_in == 0 || e->acked_in == mb->sub_serial)) {
				e->acked_in =
				    mb->sub_serial; /* "forgotten": comes back next time */
				break;
			}
			free(mb->env[k].data);
			memmove(&mb->env[k], &mb->env[k + 1], (mb->n - k - 1) * sizeof(mb->env[0]));
			mb->n--;
			break;
		}
		return reply_simple(s, ci, m->request_id, 0); /* unknown ids too (5.4) */
	default:
		return reply_simple(s, ci, m->request_id, CAIRN_EUNKNOWN);
	}
}

static int handle_command(struct fr_server *s, int ci, const struct cairn_msg *m)
{
	/* A connection that both manages a mailbox and sends would let a relay link "owner of
	 * X" with "writes to Y": count such connections once each. */
	struct fr_conn *c = &s->conns[ci];
	bool was_mixed = c->managed && c->sent;
	bool log = m->type >= CAIRN_CMD_LOG_CREATE && m->type <= CAIRN_CMD_LOG_DELETE;
	if (m->type == CAIRN_CMD_SEND)
		c->sent = true;
	else if (m->type != CAIRN_CMD_PING && !log)
		c->managed = true;
	if (!was_mixed && c->managed && c->sent)
		s->stats.mixed_connections++;
	switch (m->type) {
	case CAIRN_CMD_PING:
		return reply_simple(s, ci, m->request_id, 0);
	case CAIRN_CMD_CREATE:
		return handle_create(s, ci, m);
	case CAIRN_CMD_AUTH:
		return handle_auth(s, ci, m);
	case CAIRN_CMD_SEND:
		return handle_send(s, ci, m);
	case CAIRN_CMD_SECURE:
	case CAIRN_CMD_SUBSCRIBE:
	case CAIRN_CMD_ACK:
		return handle_recipient(s, ci, m);
	case CAIRN_CMD_LOG_CREATE:
	case CAIRN_CMD_LOG_APPEND:
	case CAIRN_CMD_LOG_READ:
	case CAIRN_CMD_LOG_DELETE:
		return frlog_command(s->log, ci, m);
	case CAIRN_CMD_POLICY:
		if (s->modes & FAKERELAY_POLICY_FORGED)
			return reply_forged_policy(s, ci, m->request_id);
		return reply_simple(s, ci, m->request_id, CAIRN_EUNKNOWN);
	default:
		return reply_simple(s, ci, m->request_id, CAIRN_EUNKNOWN);
	}
}

/* Handles the events of C's channel until it needs more input. Returns -1 when C must close. */
static int handle_events(struct fr_server *s, int ci)
{
	struct fr_conn *c = &s->conns[ci];
	struct channel_event ev;
	for (;;) {
		switch (channel_next_event(&c->ch, &ev)) {
		case CHANNEL_EV_NONE:
			return 0;
		case CHANNEL_EV_HELLO:
			if (channel_accept(&c->ch, s->priv, s->pub, NULL) != 0 ||
			    write_output(c) != 0)
				return -1;
			break;
		case CHANNEL_EV_OPEN:
			break;
		case CHANNEL_EV_MESSAGE:
			if (handle_command(s, ci, &ev.msg) != 0)
				return -1;
			break;
		case CHANNEL_EV_BAD_MESSAGE:
			if (reply_simple(s, ci, ev.msg.request_id, ev.error) != 0)
				return -1;
			break;
		case CHANNEL_EV_FAILED:
			return -1;
		}
		if (c->fd < 0)
			return -1;
	}
}

static void conn_readable(struct fr_server *s, int ci)
{
	static uint8_t in[65536];
	struct fr_conn *c = &s->conns[ci];
	ssize_t n = recv(c->fd, in, sizeof(in), 0);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		conn_close(s, ci);
		return;
	}
	size_t off = 0;
	while (off < (size_t)n) {
		off += channel_feed(&c->ch, in + off, (size_t)n - off);
		if (handle_events(s, ci) != 0) {
			if (s->conns[ci].fd >= 0)
				conn_close(s, ci);
			return;
		}
	}
}

static uint64_t wall_now(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL);
}

/* Answers one control request: the answer goes out once the change is made, so whatever the
 * test runs next sees it. Returns -1 when the test has gone. */
static int control(struct fr_server *s)
{
	struct fr_ctl q;
	ssize_t n = recv(s->ctl_fd, &q, sizeof(q), MSG_WAITALL);
	if (n != (ssize_t)sizeof(q))
		return n < 0 && errno == EINTR ? 0 : -1;
	q.answer = frlog_ctl(s->log, q.op, q.a, q.b);
	return write_all(s->ctl_fd, (const uint8_t *)&q, sizeof(q));
}

static void serve(struct fr_server *s)
{
	while (!fr_stop) {
		struct pollfd pfd[FR_CONNS + 2];
		int who[FR_CONNS + 2];
		int np = 0;
		pfd[np] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		who[np++] = -1;
		if (s->ctl_fd >= 0) {
			pfd[np] = (struct pollfd){.fd = s->ctl_fd, .events = POLLIN};
			who[np++] = -2;
		}
		for (int i = 0; i < FR_CONNS; i++)
			if (s->conns[i].fd >= 0) {
				pfd[np] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
				who[np++] = i;
			}
		if (poll(pfd, (nfds_t)np, 200) <= 0)
			continue;
		for (int k = 0; k < np; k++) {
			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (who[k] >= 0) {
				if (s->conns[who[k]].fd == pfd[k].fd)
					conn_readable(s, who[k]);
				continue;
			}
			if (who[k] == -2) {
				if (control(s) != 0) {
					close(s->ctl_fd); /* the test is gone: serve on as before */
					s->ctl_fd = -1;
				}
				continue;
			}
			int fd = accept(s->listen_fd, NULL, NULL);
			if (fd < 0)
				continue;
			int slot = -1;
			for (int i = 0; i < FR_CONNS && slot < 0; i++)
				if (s->conns[i].fd < 0)
					slot = i;
			if (slot < 0) {
				close(fd);
				continue;
			}
			struct fr_conn *c = &s->conns[slot];
			memset(c, 0, sizeof(*c));
			struct channel_options opt = {.role = CHANNEL_RESPONDER, .now = wall_now};
			if (channel_init(&c->ch, &opt) != 0) {
				close(fd);
				continue;
			}
			c->fd = fd;
		}
	}
}

int fakerelay_start(struct fakerelay *f, int modes)
{
	memset(f, 0, sizeof(*f));
	f->stats_fd = -1;
	f->ctl_fd = -1;
	if (sodium_init() < 0)
		return -1;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t salen = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	f->port = ntohs(sa.sin_port);
	struct fr_server *s = calloc(1, sizeof(*s));
	int pipefd[2], ctl[2];
	if (s == NULL || pipe(pipefd) != 0) {
		free(s);
		close(lfd);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) != 0) {
		free(s);
		close(lfd);
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	randombytes_buf(s->priv, sizeof(s->priv));
	crypto_scalarmult_base(s->pub, s->priv);
	memcpy(f->pub, s->pub, sizeof(f->pub));
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = f->port};
	memcpy(a.key, s->pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	if (cairn_address_format(&a, f->address, sizeof(f->address)) != 0) {
		free(s);
		close(lfd);
		close(pipefd[0]);
		close(pipefd[1]);
		close(ctl[0]);
		close(ctl[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		close(ctl[0]);
		struct sigaction act;
		memset(&act, 0, sizeof(act));
		act.sa_handler = fr_on_term; /* no SA_RESTART: poll() returns at once */
		sigaction(SIGTERM, &act, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* a test that dies takes its relay along */
		s->modes = modes;
		s->listen_fd = lfd;
		s->ctl_fd = ctl[1];
		for (int i = 0; i < FR_CONNS; i++)
			s->conns[i].fd = -1;
		s->log = frlog_new(log_reply, s);
		if (s->log == NULL)
			_exit(1);
		serve(s);
		frlog_stats(s->log, &s->stats);
		ssize_t w = write(pipefd[1], &s->stats, sizeof(s->stats));
		_exit(w == (ssize_t)sizeof(s->stats) ? 0 : 1); /* skip the test's atexit handlers */
	}
	close(lfd);
	close(pipefd[1]);
	close(ctl[1]);
	sodium_memzero(s, sizeof(*s));
	free(s);
	if (pid < 0) {
		close(pipefd[0]);
		close(ctl[0]);
		return -1;
	}
	f->pid = pid;
	f->stats_fd = pipefd[0];
	f->ctl_fd = ctl[0];
	return 0;
}

int64_t fakerelay_ctl(struct fakerelay *f, int op, uint64_t a, uint64_t b)
{
	struct fr_ctl q = {.op = op, .a = a, .b = b};
	if (f->ctl_fd < 0 || write_all(f->ctl_fd, (const uint8_t *)&q, sizeof(q)) != 0)
		return -1;
	ssize_t n;
	while ((n = recv(f->ctl_fd, &q, sizeof(q), MSG_WAITALL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(q) ? q.answer : -1;
}

int fakerelay_stop(struct fakerelay *f)
{
	if (f->pid <= 0)
		return -1;
	kill(f->pid, SIGTERM);
	ssize_t n;
	while ((n = read(f->stats_fd, &f->stats, sizeof(f->stats))) < 0 && errno == EINTR)
		;
	close(f->stats_fd);
	f->stats_fd = -1;
	if (f->ctl_fd >= 0)
		close(f->ctl_fd);
	f->ctl_fd = -1;
	int status = 0;
	while (waitpid(f->pid, &status, 0) < 0 && errno == EINTR)
		;
	f->pid = 0;
	return n == (ssize_t)sizeof(f->stats) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
	                                                                                       : -1;
}
