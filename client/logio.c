/* SPDX-License-Identifier: MIT */
/*
 * Carrying group logs over relay connections (logio.h; docs/PROTOCOL.md 5.9 and 9.9): one
 * connection per relay, of its own. A log connection carries no AUTH: on the connection that
 * manages our mailboxes the relay could link their owner to the groups it reads, so logs stay
 * off the engine's sessions as sending does (engine_state.h's ROLE_SEND reasoning).
 *
 * A step lists the group outbox and the handler's logs when due, connects where there is work,
 * pipelines every queued item (in queue order, so in order per log) and one LOG_READ per log
 * from the handler's from_seq, then hands the handler each APPENDED, LOG_STATE and LOG_ENTRY.
 * An item stays queued until its answer is handled: a lost connection sends it again
 * unchanged (a create is idempotent, a twice-stored append counts once in section 9). An
 * entry the handler fails on ends that read; it is offered again from the handler's cursor
 * (sync: the next pass; follow: a fresh read after a pause). Follow reads stay open; after a
 * drop the connection comes back after a growing pause and every read resumes from the
 * handler's from_seq. Entries below a read's next seq (a resumed read's overlap) are not
 * offered twice. Every time comes from the client's environment (env.h).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "logio.h"

#define LOGIO_RETRY_MS     1000  /* first pause after a drop or a handler failure */
#define LOGIO_RETRY_MAX_MS 60000 /* longest pause */
#define LOGIO_FDS_MAX      64    /* logio_sync's poll set */
/* follow: as the engine's sessions, a PING this often shows a path that drops everything
 * without a reset (else it looks like a quiet log for about 15 minutes) */
#define LOGIO_PING_EVERY_MS 30000

struct lio_send {
	uint32_t rid;
	uint8_t out_id[16];
	uint8_t op;
	struct group_log_ref log;
};

struct lio_read {
	uint32_t rid; /* of the LOG_READ in flight, or 0 */
	struct group_log_ref log;
	uint64_t next;    /* the next seq to offer */
	bool listed;      /* in the handler's latest list */
	bool ended;       /* END, ERROR or a handler failure: no read in flight */
	int64_t retry_ms; /* follow: when an ended read is asked again */
};

struct lio_conn {
	char relay[CAIRN_ADDRESS_MAX + 1];
	struct cnet *net;
	bool failed;      /* sync: could not connect or broke: not tried again */
	bool held;        /* a refusal: the outbox waits for the next wake here */
	bool outbox_sent; /* the outbox went out on the current connection */
	bool again;       /* items wait for a create's OK: the outbox goes out again then */
	/* Logs whose LOG_CREATE is still queued, as of the last listing: nothing else goes to
	 * them (the relay would answer `denied`, which means gone) until the create's OK. */
	uint8_t (*unborn)[CAIRN_LOG_ID_LEN];
	size_t nunborn, capunborn;
	int64_t retry_ms, backoff_ms;
	uint32_t ping_rid;   /* follow: of a PING unanswered, or 0 */
	int64_t ping_due_ms; /* by when it must be answered */
	int64_t next_ping_ms;
	struct lio_send *sends;
	size_t nsends, capsends;
	struct lio_read *reads;
	size_t nreads, capreads;
};

struct logio {
	struct cairn *c;
	const struct logio_handler *h;
	void *ctx;
	bool follow;
	bool relist, resend; /* due at the next step */
	struct lio_conn *conns;
	size_t n;
	struct logio_result res;
	int err; /* a local error met inside a callback */
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	size_t ncap = *cap ? 2 * *cap : 8;
	void *q = realloc(p, ncap * size);
	if (q != NULL)
		*cap = ncap;
	return q;
}

static struct lio_conn *conn_for(struct logio *l, const char *relay)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->conns[i].relay, relay) == 0)
			return &l->conns[i];
	struct lio_conn *p = realloc(l->conns, (l->n + 1) * sizeof(*p));
	if (p == NULL)
		return NULL;
	l->conns = p;
	struct lio_conn *k = &p[l->n++];
	memset(k, 0, sizeof(*k));
	snprintf(k->relay, sizeof(k->relay), "%s", relay);
	return k;
}

int logio_new(struct cairn *c, const struct logio_handler *h, void *ctx, bool follow,
              struct logio **out)
{
	*out = NULL;
	if (c == NULL || h == NULL || h->logs == NULL || h->log_state == NULL || h->entry == NULL ||
	    h->appended == NULL || h->log_gone == NULL)
		return CAIRN_EINVAL;
	struct logio *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CAIRN_ENOMEM;
	*l = (struct logio){
	    .c = c, .h = h, .ctx = ctx, .follow = follow, .relist = true, .resend = true};
	*out = l;
	return 0;
}

static void conn_close(struct lio_conn *k)
{
	cnet_close(k->net);
	k->net = NULL;
	k->outbox_sent = k->again = k->held = false;
	k->ping_rid = 0;
	k->nsends = 0; /* still queued: sent again on the next connection */
	for (size_t i = 0; i < k->nreads; i++) {
		k->reads[i].rid = 0;
		k->reads[i].ended = true;
		k->reads[i].retry_ms = 0;
	}
}

void logio_free(struct logio *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		conn_close(&l->conns[i]);
		sodium_memzero(l->conns[i].sends, l->conns[i].capsends * sizeof(struct lio_send));
		sodium_memzero(l->conns[i].reads, l->conns[i].capreads * sizeof(struct lio_read));
		free(l->conns[i].sends);
		free(l->conns[i].reads);
		free(l->conns[i].unborn);
	}
	free(l->conns);
	sodium_memzero(l, sizeof(*l));
	free(l);
}

/* K broke or could not connect (ERR): in follow it comes back after a growing pause. */
static void conn_failed(struct logio *l, struct lio_conn *k, int64_t now)
{
	conn_close(k);
	l->relist = true; /* resume from the handler's cursors */
	if (!l->follow) {
		if (!k->failed)
			l->res.relays_failed++;
		k->failed = true;
		return;
	}
	k->backoff_ms = k->backoff_ms ? 2 * k->backoff_ms : LOGIO_RETRY_MS;
	if (k->backoff_ms > LOGIO_RETRY_MAX_MS)
		k->backoff_ms = LOGIO_RETRY_MAX_MS;
	k->retry_ms = now + k->backoff_ms;
}

/* ---- listing -------------------------------------------------------------------------- */

static int list_log(void *ctx, const struct group_log_ref *log, uint64_t from_seq)
{
	struct logio *l = ctx;
	struct lio_conn *k = conn_for(l, log->relay);
	if (k == NULL)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < k->nreads; i++) {
		struct lio_read *r = &k->reads[i];
		if (memcmp(r->log.log_id, log->log_id, CAIRN_LOG_ID_LEN) != 0)
			continue;
		r->listed = true;
		r->log = *log;
		if (r->ended)
			r->next = from_seq; /* read again from the cursor the state kept */
		return 0;
	}
	struct lio_read *p = grow(k->reads, &k->capreads, k->nreads, sizeof(*p));
	if (p == NULL)
		return CAIRN_ENOMEM;
	k->reads = p;
	p[k->nreads++] =
	    (struct lio_read){.log = *log, .next = from_seq, .listed = true, .ended = true};
	return 0;
}

/* Asks the handler for its logs: new ones are read, dropped ones forgotten (a follow read of
 * one stays open on the relay until the connection closes; its entries are ignored). */
static int relist(struct logio *l)
{
	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < l->conns[i].nreads; j++)
			l->conns[i].reads[j].listed = false;
	int rc = l->h->logs(l->c, l->ctx, list_log, l);
	for (size_t i = 0; i < l->n; i++) {
		struct lio_conn *k = &l->conns[i];
		for (size_t j = 0; j < k->nreads;)
			if (!k->reads[j].listed && rc == 0)
				k->reads[j] = k->reads[--k->nreads];
			else
				j++;
	}
	return rc;
}

/* Makes a connection for every relay with queued items. */
static int note_relay(void *ctx, const struct group_out_item *g)
{
	return conn_for(ctx, g->log.relay) == NULL ? CAIRN_ENOMEM : 0;
}

/* ---- sending -------------------------------------------------------------------------- */

static bool in_flight(const struct logio *l, const uint8_t out_id[16])
{
	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < l->conns[i].nsends; j++)
			if (memcmp(l->conns[i].sends[j].out_id, out_id, 16) == 0)
				return true;
	return false;
}

struct send_ctx {
	struct logio *l;
	struct lio_conn *k;
};

/* Whether LOG_ID's create is still queued (see struct lio_conn). */
static bool unborn(const struct lio_conn *k, const uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	for (size_t j = 0; j < k->nunborn; j++)
		if (memcmp(k->unborn[j], log_id, CAIRN_LOG_ID_LEN) == 0)
			return true;
	return false;
}

/* LOG_ID's create was confirmed. */
static void born(struct lio_conn *k, const uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	for (size_t j = 0; j < k->nunborn; j++)
		if (memcmp(k->unborn[j], log_id, CAIRN_LOG_ID_LEN) == 0) {
			memcpy(k->unborn[j], k->unborn[--k->nunborn], CAIRN_LOG_ID_LEN);
			return;
		}
}

static int send_item(void *ctx, const struct group_out_item *g)
{
	struct send_ctx *sc = ctx;
	struct lio_conn *k = sc->k;
	if (g->op == GROUP_OUT_CREATE && !unborn(k, g->log.log_id)) {
		uint8_t(*u)[CAIRN_LOG_ID_LEN] =
		    grow(k->unborn, &k->capunborn, k->nunborn, sizeof(*u));
		if (u == NULL)
			return CAIRN_ENOMEM;
		k->unborn = u;
		memcpy(u[k->nunborn++], g->log.log_id, CAIRN_LOG_ID_LEN);
	} else if (g->op != GROUP_OUT_CREATE && unborn(k, g->log.log_id)) {
		return 0; /* after the create's OK (which lists the outbox again) */
	}
	/* Held after a refusal: only listed, sent at the next wake. */
	if (k->held || in_flight(sc->l, g->out_id))
		return 0;
	struct lio_send *p = grow(k->sends, &k->capsends, k->nsends, sizeof(*p));
	if (p == NULL)
		return CAIRN_ENOMEM;
	k->sends = p;
	struct cairn_msg m = {.request_id = cnet_next_id(k->net), .log_id = g->log.log_id};
	switch (g->op) {
	case GROUP_OUT_CREATE:
		m.type = CAIRN_CMD_LOG_CREATE;
		m.credential = g->digest_a;
		m.delete_digest = g->digest_b;
		break;
	case GROUP_OUT_APPEND:
		m.type = CAIRN_CMD_LOG_APPEND;
		m.credential = g->log.credential;
		m.envelope = g->entry;
		m.envelope_len = g->len;
		break;
	default:
		m.type = CAIRN_CMD_LOG_DELETE;
		m.delete_secret = g->digest_a;
		break;
	}
	int rc = cnet_queue(k->net, &m);
	if (rc != 0)
		return rc;
	struct lio_send *s = &p[k->nsends++];
	*s = (struct lio_send){.rid = m.request_id, .op = g->op, .log = g->log};
	memcpy(s->out_id, g->out_id, 16);
	return 0;
}

static int send_read(struct logio *l, struct lio_conn *k, struct lio_read *r)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = cnet_next_id(k->net),
	                      .log_id = r->log.log_id,
	                      .seq = r->next,
	                      .follow = l->follow ? 1 : 0};
	int rc = cnet_queue(k->net, &m);
	if (rc == 0) {
		r->rid = m.request_id;
		r->ended = false;
	}
	return rc;
}

/* What is due on K's open connection: the outbox (when woken), reads not in flight. */
static int conn_send(struct logio *l, struct lio_conn *k, int64_t now, bool outbox)
{
	int rc = 0;
	if (outbox || k->again) {
		k->again = false;
		k->nunborn = 0;
		struct send_ctx sc = {l, k};
		rc = group_out_list(l->c, k->relay, send_item, &sc);
		k->outbox_sent = true;
	}
	for (size_t i = 0; rc == 0 && i < k->nreads; i++) {
		struct lio_read *r = &k->reads[i];
		/* sync: each log is read once per pass */
		if (r->ended && r->rid == 0 &&
		    (l->follow ? now >= r->retry_ms : r->retry_ms == 0) &&
		    !unborn(k, r->log.log_id))
			rc = send_read(l, k, r);
	}
	if (rc == 0)
		rc = cnet_flush(k->net);
	return rc;
}

/* ---- what a relay says ---------------------------------------------------------------- */

static void report_failure(struct logio *l, int rc)
{
	l->res.failures++;
	if (rc == CAIRN_ENOMEM && l->err == 0)
		l->err = rc;
}

/* The log of S (an item refused with `denied`) or of a read is gone: the handler hears it,
 * and every item queued for it leaves, in one transaction. */
static void log_gone(struct logio *l, const struct group_log_ref *log)
{
	struct cstate *st = l->c->st;
	int rc = cstate_begin(st);
	if (rc == 0)
		rc = l->h->log_gone(l->c, l->ctx, log);
	if (rc == 0)
		rc = group_out_drop_log(l->c, log->log_id);
	if (rc == 0)
		rc = cstate_commit(st);
	if (rc != 0) {
		cstate_rollback(st);
		report_failure(l, rc);
		return;
	}
	l->res.gone++;
	/* Its reads end here too. */
	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < l->conns[i].nreads; j++)
			if (memcmp(l->conns[i].reads[j].log.log_id, log->log_id,
			           CAIRN_LOG_ID_LEN) == 0) {
				struct lio_read *r = &l->conns[i].reads[j];
				r->listed = false;
				r->rid = 0; /* a reply still coming is ignored */
				r->ended = true;
				r->retry_ms = l->follow ? INT64_MAX : 1;
			}
	l->relist = true;
}

static void send_answered(struct logio *l, struct lio_conn *k, const struct lio_send *s,
                          const struct cairn_msg *m)
{
	struct cstate *st = l->c->st;
	int err = m->type == CAIRN_REPLY_ERROR ? cairn_wire_error(m->code) : 0;
	bool ok = m->type == (s->op == GROUP_OUT_APPEND ? CAIRN_REPLY_APPENDED : CAIRN_REPLY_OK);
	if (!ok && err == CAIRN_EDENIED && s->op != GROUP_OUT_DELETE) {
		log_gone(l, &s->log);
		return;
	}
	if (!ok && !(s->op == GROUP_OUT_DELETE && err == CAIRN_EDENIED)) {
		/* quota, full, storage, a code we do not know: queued, tried at the next wake */
		l->res.refused++;
		k->held = true;
		return;
	}
	/* Confirmed (a delete of a log already gone is done as well). */
	if (s->op == GROUP_OUT_CREATE) {
		born(k, s->log.log_id);
		k->again = true; /* what waited for it */
	}
	int rc = cstate_begin(st);
	if (rc == 0 && s->op == GROUP_OUT_APPEND && ok)
		rc = l->h->appended(l->c, l->ctx, s->out_id, m->seq);
	if (rc == 0)
		rc = group_out_done(l->c, s->out_id);
	if (rc == 0)
		rc = cstate_commit(st);
	if (rc != 0) {
		cstate_rollback(st); /* queued still: sent again later, counted once (9.9) */
		report_failure(l, rc);
		k->held = true;
		return;
	}
	l->res.sent++;
}

/* A read failed on the handler's side or ended: asked again after a pause (follow). */
static void read_ended(struct logio *l, struct lio_read *r, int64_t now, bool retry)
{
	r->rid = 0;
	r->ended = true;
	if (!l->follow)
		r->retry_ms = 1; /* this pass is done with it */
	else
		r->retry_ms = retry ? now + LOGIO_RETRY_MS : INT64_MAX;
}

static void read_reply(struct logio *l, struct lio_read *r, const struct cairn_msg *m, int64_t now)
{
	int rc = 0;
	switch (m->type) {
	case CAIRN_REPLY_LOG_STATE:
		rc = l->h->log_state(l->c, l->ctx, &r->log, m->first_seq, m->next_seq);
		break;
	case CAIRN_REPLY_LOG_ENTRY:
		if (m->seq < r->next)
			return; /* offered already (a resumed read's overlap) */
		rc = l->h->entry(l->c, l->ctx, &r->log, m->seq, m->envelope, m->envelope_len);
		if (rc == 0) {
			r->next = m->seq + 1;
			l->res.entries++;
		}
		break;
	case CAIRN_REPLY_END:
		if (m->code == 0 && l->follow) {
			struct group_log_ref log = r->log;
			read_ended(l, r, now, false);
			log_gone(l, &log); /* deleted while we followed it */
			return;
		}
		read_ended(l, r, now, l->follow);
		return;
	case CAIRN_REPLY_ERROR:
		if (cairn_wire_error(m->code) == CAIRN_EDENIED) {
			struct group_log_ref log = r->log;
			read_ended(l, r, now, false);
			log_gone(l, &log);
			return;
		}
		read_ended(l, r, now, true);
		return;
	default:
		return;
	}
	if (rc != 0) {
		/* Not stored: the state's cursor did not move, the entry comes again. */
		report_failure(l, rc);
		read_ended(l, r, now, true);
		r->rid = 0;
	}
}

static void conn_handle(struct logio *l, struct lio_conn *k, const struct cairn_msg *m, int64_t now)
{
	for (size_t i = 0; i < k->nsends; i++) {
		if (k->sends[i].rid != m->request_id)
			continue;
		struct lio_send s = k->sends[i];
		/* In order: what follows it may still be answered. */
		memmove(&k->sends[i], &k->sends[i + 1], (k->nsends - i - 1) * sizeof(s));
		k->nsends--;
		send_answered(l, k, &s, m);
		sodium_memzero(&s, sizeof(s));
		return;
	}
	for (size_t i = 0; i < k->nreads; i++)
		if (k->reads[i].rid != 0 && k->reads[i].rid == m->request_id) {
			read_reply(l, &k->reads[i], m, now);
			return;
		}
	/* A read of a log no longer listed, or one ended by our own failure: ignored. */
}

/* Whether K has nothing in flight and its pass is over. */
static bool logio_conn_idle(const struct lio_conn *k)
{
	if (k->net == NULL || !cnet_open(k->net) || !k->outbox_sent || k->nsends > 0 || k->again)
		return false;
	for (size_t j = 0; j < k->nreads; j++)
		if (k->reads[j].rid != 0 || !k->reads[j].ended)
			return false;
	return true;
}

/* follow: K's PING is due, or overdue (the path is dead: K fails). Returns false then. */
static bool conn_ping(struct logio *l, struct lio_conn *k, int64_t now)
{
	if (k->ping_rid != 0 && now >= k->ping_due_ms) {
		conn_failed(l, k, now);
		return false;
	}
	if (k->ping_rid != 0 || now < k->next_ping_ms)
		return true;
	struct cairn_msg ping = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(k->net)};
	k->ping_rid = ping.request_id;
	k->ping_due_ms = now + (int64_t)l->c->timeout_ms;
	k->next_ping_ms = now + LOGIO_PING_EVERY_MS;
	if (cnet_queue(k->net, &ping) != 0) {
		conn_failed(l, k, now);
		return false;
	}
	return true;
}

/* ---- the step ------------------------------------------------------------------------- */

static bool fd_ready(const struct pollfd *fds, size_t nfds, int fd)
{
	for (size_t i = 0; fds != NULL && i < nfds; i++)
		if (fds[i].fd == fd)
			return fds[i].revents != 0;
	return true;
}

int logio_step(struct logio *l, const struct pollfd *fds, size_t nfds)
{
	struct cairn *c = l->c;
	int64_t now = client_mono_ms(c);
	int rc;
	/* A listing of logs comes with one of the outbox: a log whose create is queued is not
	 * read before it exists. */
	bool outbox = l->resend || l->relist;
	if (l->relist) {
		l->relist = false;
		if ((rc = relist(l)) != 0) {
			report_failure(l, rc); /* listed again at the next wake */
			if (rc == CAIRN_ENOMEM)
				return rc;
		}
	}
	if (l->resend) {
		l->resend = false;
		if ((rc = group_out_list(c, NULL, note_relay, l)) != 0)
			return rc;
		for (size_t i = 0; i < l->n; i++)
			l->conns[i].held = false;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct lio_conn *k = &l->conns[i];
		if (k->net == NULL) {
			if (k->failed || (l->follow && now < k->retry_ms))
				continue;
			if ((rc = client_connect_start(c, k->relay, &k->net)) != 0) {
				k->net = NULL;
				conn_failed(l, k, now);
				continue;
			}
		}
		bool ready = fd_ready(fds, nfds, cnet_fd(k->net));
		bool opened = false;
		if (!cnet_open(k->net)) {
			if (!ready && now < cnet_deadline_ms(k->net))
				continue;
			int a = cnet_advance(k->net);
			if (a == 1)
				continue;
			if (a != 0) {
				conn_failed(l, k, now);
				continue;
			}
			opened = ready = true;
			k->next_ping_ms = now + LOGIO_PING_EVERY_MS;
		}
		if (l->follow && !conn_ping(l, k, now))
			continue;
		if (conn_send(l, k, now, opened || outbox) != 0) {
			conn_failed(l, k, now);
			continue;
		}
		struct cairn_msg m;
		int r = CAIRN_ETIMEDOUT;
		while (ready && k->net != NULL && (r = cnet_recv(k->net, &m, 0)) == 0)
			conn_handle(l, k, &m, now);
		if (r != CAIRN_ETIMEDOUT && k->net != NULL) {
			conn_failed(l, k, now);
			continue;
		}
		/* What the replies made due (items after a create's OK, reads again). */
		if (k->net != NULL && conn_send(l, k, now, false) != 0)
			conn_failed(l, k, now);
		else if (k->net != NULL)
			k->backoff_ms = 0;
	}
	rc = l->err;
	l->err = 0;
	return rc;
}

void logio_fds(const struct logio *l, struct pollfd *fds, size_t cap, size_t *n, int64_t *at)
{
	int64_t now = client_mono_ms(l->c);
	for (size_t i = 0; i < l->n; i++) {
		const struct lio_conn *k = &l->conns[i];
		if (k->net == NULL) {
			if (l->follow && !k->failed && k->retry_ms < *at)
				*at = k->retry_ms < now ? now : k->retry_ms;
			continue;
		}
		if (*n < cap)
			fds[*n] =
			    (struct pollfd){.fd = cnet_fd(k->net), .events = cnet_events(k->net)};
		(*n)++;
		if (!cnet_open(k->net)) {
			if (cnet_deadline_ms(k->net) < *at)
				*at = cnet_deadline_ms(k->net);
			continue;
		}
		if (l->follow) {
			int64_t t = k->ping_rid != 0 ? k->ping_due_ms : k->next_ping_ms;
			if (t < *at)
				*at = t;
		}
		for (size_t j = 0; l->follow && j < k->nreads; j++)
			if (k->reads[j].rid == 0 && k->reads[j].retry_ms < *at)
				*at = k->reads[j].retry_ms;
	}
	if (l->relist || l->resend)
		*at = now;
}

bool logio_done(const struct logio *l)
{
	if (l->relist || l->resend)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const struct lio_conn *k = &l->conns[i];
		if (!k->failed && !logio_conn_idle(k))
			return false;
	}
	return true;
}

const struct logio_result *logio_result(const struct logio *l)
{
	return &l->res;
}

void logio_wake(struct logio *l)
{
	l->resend = true;
}

void logio_relist(struct logio *l)
{
	l->relist = true;
}

int logio_sync(struct cairn *c, const struct logio_handler *h, void *ctx, struct logio_result *res)
{
	memset(res, 0, sizeof(*res));
	if (c == NULL)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE; /* the running engine owns the relays */
	struct logio *l;
	int rc = logio_new(c, h, ctx, false, &l);
	if (rc != 0)
		return rc;
	int64_t deadline = client_mono_ms(c) + 4 * (int64_t)c->timeout_ms;
	struct pollfd pfd[LOGIO_FDS_MAX];
	size_t np = 0;
	for (;;) {
		if ((rc = logio_step(l, pfd, np)) != 0 || logio_done(l))
			break;
		int64_t now = client_mono_ms(c), at = deadline;
		if (now >= deadline) {
			/* Whatever is still out counts as failed: its items stay queued. */
			for (size_t i = 0; i < l->n; i++)
				if (!l->conns[i].failed && !logio_conn_idle(&l->conns[i]))
					conn_failed(l, &l->conns[i], now);
			break;
		}
		np = 0;
		logio_fds(l, pfd, LOGIO_FDS_MAX, &np, &at);
		if (np > LOGIO_FDS_MAX)
			np = LOGIO_FDS_MAX; /* the others are read at every step anyway */
		int timeout = at <= now ? 0 : at - now > 1000 ? 1000 : (int)(at - now);
		if (poll(pfd, np, timeout) < 0)
			np = 0;
	}
	*res = l->res;
	logio_free(l);
	return rc;
}
