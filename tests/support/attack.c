/* SPDX-License-Identifier: MIT */
/*
 * The attack-mix driver (see attack.h). One non-blocking loop per attacker: compose a frame
 * from the pattern and the generator table, write it as the socket takes it, and meanwhile
 * read and decode every reply, which is how the attacker learns the mailboxes it created and
 * the envelopes it may acknowledge. It never waits for a reply before writing more, except
 * where a command needs one (a DELETE needs the CREATED that named the mailbox).
 *
 * This file: the attacker's state and random stream, its mailboxes, the patterns, the replies
 * and the connection. The generator table is attack_gen.c; what both share, attack_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "attack_internal.h"
#include "tclient.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: the whole composition follows from the seed. */
uint64_t rnd(struct attack *a)
{
	uint64_t z = (a->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rnd_bytes(struct attack *a, uint8_t *p, size_t n)
{
	while (n > 0) {
		uint64_t v = rnd(a);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* ---- mailboxes ----------------------------------------------------------------------------- */

static bool mb_fits(const struct mbox *m, unsigned want)
{
	return m->live && (!(want & W_AUTHED) || m->authed) && (!(want & W_NOT_FULL) || !m->full) &&
	       (!(want & W_SECURED) || m->secured) && (!(want & W_UNSECURED) || !m->secured) &&
	       (!(want & W_NOT_FILLED) || !m->filled) && (!(want & W_FILLED) || m->filled) &&
	       (!(want & W_INTAKE) || (m->intake_bits > 0 && m->intake_bits <= WORK_CHEAP_BITS)) &&
	       (!(want & W_NOT_INTAKE) || m->intake_bits == 0);
}

/* A random live mailbox with the properties WANT, or -1. */
int pick(struct attack *a, unsigned want)
{
	unsigned start = (unsigned)(rnd(a) % MB_MAX);
	for (unsigned k = 0; k < MB_MAX; k++) {
		unsigned i = (start + k) % MB_MAX;
		if (mb_fits(&a->mb[i], want))
			return (int)i;
	}
	return -1;
}

unsigned count(const struct attack *a, unsigned want)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MB_MAX; i++)
		n += mb_fits(&a->mb[i], want);
	return n;
}

/* ---- patterns ------------------------------------------------------------------------------ */

static bool second_half(const struct attack *a)
{
	return now_ms() >= a->half_ms;
}

/* The first mailbox this connection is authenticated for, creating one if there is none. */
static int own_mailbox(struct attack *a)
{
	int i = pick(a, W_AUTHED);
	if (i < 0 && a->pending_creates == 0)
		emit(a, G_CREATE);
	return i;
}

/* SUBSCRIBE to mailbox I, counted like a generator's command. */
static bool emit_subscribe(struct attack *a, int i)
{
	size_t n =
	    subscribe_to(a, i, a->c.batch + a->c.batch_len, sizeof(a->c.batch) - a->c.batch_len);
	if (n == 0)
		return false;
	a->c.batch_len += n;
	a->st->per_generator[G_SUBSCRIBE]++;
	a->st->commands++;
	a->outstanding++;
	return true;
}

static void compose_tombstones(struct attack *a)
{
	a->keep_first = true;
	int i = own_mailbox(a);
	if (i < 0)
		return;
	if (!second_half(a)) {
		if (!a->mb[i].subscribed)
			emit_subscribe(a, i);
		emit_all(a, G_ACK_DELIVERED);
		while (a->sends_out < TOMB_SENDS && emit(a, G_SEND_EMPTY))
			;
		return;
	}
	/* Each SUBSCRIBE rewinds to the first envelope, past every tombstone behind it. */
	while (emit_subscribe(a, i))
		;
}

static void compose_auth(struct attack *a)
{
	unsigned have = count(a, 0);
	if (have < AUTH_BOXES && a->pending_creates == 0)
		for (unsigned k = have; k < AUTH_BOXES; k++)
			emit(a, G_CREATE);
	/* Valid AUTHs once its mailboxes exist; the other two need none. */
	static const enum gen_id auths[] = {G_AUTH_VALID, G_AUTH_BAD, G_AUTH_UNKNOWN};
	for (int misses = 0; misses < 8;)
		misses = emit(a, auths[rnd(a) % 3]) ? 0 : misses + 1;
}

static void compose_delete_storm(struct attack *a)
{
	if (!second_half(a)) {
		a->filling = true;
		unsigned have = count(a, W_FILLED);
		if (have < FILL_BOXES && a->pending_creates == 0)
			for (unsigned k = have; k < FILL_BOXES; k++)
				emit(a, G_CREATE);
		emit_all(a, G_SEND_MAX);
		return;
	}
	a->filling = false;
	/* Every empty mailbox it holds goes, and as many new ones are asked for. */
	emit_all(a, G_DELETE);
	while (a->pending_creates < CREATES_MAX && emit(a, G_CREATE))
		;
}

/* One frame full of CREATEs per connection: all but the connection's allowance are refused,
 * and the driver reconnects once they are answered. */
static void compose_create_flood(struct attack *a)
{
	if (a->outstanding == 0 && !a->exhausted)
		emit_all(a, G_CREATE);
}

static void compose_fill(struct attack *a)
{
	if (count(a, W_NOT_FULL) < FILL_BOXES / 2 && a->pending_creates == 0)
		for (unsigned k = 0; k < FILL_BOXES; k++)
			emit(a, G_CREATE);
	emit_all(a, G_SEND_MAX);
}

static void compose_mix(struct attack *a)
{
	/* No mailbox left at all and none to be had here: a new connection has a new
	 * allowance. (Mailboxes it remembers it can AUTH for on this one.) */
	if (a->exhausted && count(a, 0) == 0) {
		a->want_reconnect = true;
		return;
	}
	if (count(a, 0) == 0 && a->pending_creates == 0)
		emit(a, G_CREATE);
	/* First two intake mailboxes of cheap bits to send work to, one command at a time, before
	 * the mix's CREATEs, SECUREs and LOG_CREATEs spend the create budget (for a second at
	 * most: a relay that refuses INTAKE gets the mix without them). */
	if (!a->intake_ready) {
		if (count(a, W_INTAKE) >= 2 || now_ms() - a->start_ms > 1000) {
			a->intake_ready = true;
		} else {
			if (count(a, W_AUTHED) < 2 && a->pending_creates == 0)
				emit(a, G_CREATE);
			else if (count(a, W_AUTHED) >= 2 && !a->intake_pending)
				emit(a, G_INTAKE);
			return;
		}
	}
	unsigned total = 0;
	for (unsigned g = 0; g < G_COUNT; g++)
		total += generators[g].weight;
	for (int misses = 0; misses < 16;) {
		unsigned r = (unsigned)(rnd(a) % total), g = 0;
		while (r >= generators[g].weight)
			r -= generators[g++].weight;
		misses = emit(a, (enum gen_id)g) ? 0 : misses + 1;
	}
}

static const struct pattern {
	const char *name;
	void (*compose)(struct attack *a);
	bool reconnect_when_refused; /* needs CREATEs: a refused one means a new connection */
} patterns[ATTACK_PATTERNS] = {
    [ATTACK_TOMBSTONES] = {"tombstones", compose_tombstones, false},
    [ATTACK_AUTH] = {"auth", compose_auth, false},
    [ATTACK_DELETE_STORM] = {"delete-storm", compose_delete_storm, true},
    [ATTACK_CREATE_FLOOD] = {"create-flood", compose_create_flood, true},
    [ATTACK_FILL] = {"fill", compose_fill, true},
    [ATTACK_MIX] = {"mix", compose_mix, false},
};

const char *attack_pattern_name(enum attack_pattern p)
{
	return p < ATTACK_PATTERNS ? patterns[p].name : "?";
}

const char *attack_generator_name(unsigned i)
{
	return i < G_COUNT ? generators[i].name : NULL;
}

/* ---- replies ------------------------------------------------------------------------------- */

static void mailbox_created(struct attack *a, const struct cairn_msg *m)
{
	for (unsigned i = 0; i < MB_MAX; i++) {
		struct mbox *b = &a->mb[i];
		if (b->live)
			continue;
		memset(b, 0, sizeof(*b));
		b->live = b->authed = true;
		b->filled = a->filling;
		memcpy(b->rid, m->recipient_id, sizeof(b->rid));
		memcpy(b->sid, m->sender_id, sizeof(b->sid));
		return;
	}
	/* More than it can remember: the relay keeps it all the same. */
}

static void on_reply(struct attack *a, const struct cairn_msg *m)
{
	struct attack_stats *st = a->st;
	if (m->type == CAIRN_REPLY_ENVELOPE || m->type == CAIRN_REPLY_END) {
		if (m->request_id < 1 || m->request_id > MB_MAX)
			return;
		struct mbox *b = &a->mb[m->request_id - 1];
		if (m->type == CAIRN_REPLY_END) {
			st->ends++;
			b->subscribed = false;
			return;
		}
		st->envelopes++;
		if (!b->first_seen) {
			b->first_seen = true;
			b->first_id = m->envelope_id;
		}
		if (m->envelope_id > a->max_env_id)
			a->max_env_id = m->envelope_id;
		if (a->dl_len < DELIVERED_MAX)
			a->dl[a->dl_len++] =
			    (struct delivered){(uint16_t)(m->request_id - 1), m->envelope_id};
		return;
	}
	st->replies++;
	if (a->outstanding > 0)
		a->outstanding--;
	uint32_t rid = m->request_id;
	uint8_t kind = rid >= RID_BASE && rid <= 65535 ? a->rid_info[rid].kind : K_OTHER;
	uint8_t mb = rid >= RID_BASE && rid <= 65535 ? a->rid_info[rid].mb : 0;
	if (kind == K_CREATE && a->pending_creates > 0)
		a->pending_creates--;
	if (kind == K_SEND && a->sends_out > 0)
		a->sends_out--;
	if (kind == K_INTAKE)
		a->intake_pending = false;
	if (m->type == CAIRN_REPLY_OK) {
		st->ok++;
		if (kind == K_AUTH && a->mb[mb].live)
			a->mb[mb].authed = true;
	} else if (m->type == CAIRN_REPLY_CREATED) {
		st->created++;
		mailbox_created(a, m);
	} else if (m->type == CAIRN_REPLY_ERROR) {
		st->errors[m->code < 16 ? m->code : 0]++;
		if (kind == K_CREATE && !a->exhausted) {
			a->exhausted = true;
			a->exhausted_ms = now_ms();
		}
		if (kind == K_SEND && m->code == (uint32_t)-CAIRN_EQUOTA)
			a->mb[mb].full = true;
		if (kind == K_SEND && m->code == (uint32_t)-CAIRN_EDENIED)
			a->mb[mb].live = false; /* deleted meanwhile */
		if (kind == K_INTAKE)
			a->mb[mb].intake_bits = 0; /* refused (the create budget): unknown now */
		if (rid >= 1 && rid <= MB_MAX)
			a->mb[rid - 1].subscribed = false;
	}
	if (rid >= RID_BASE && rid <= 65535)
		a->rid_info[rid].kind = K_OTHER;
}

/* Reads what the relay sent, without waiting. Returns 0, or -1 once the connection is gone. */
static int drain(struct attack *a)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = recv(a->c.fd, a->c.in, sizeof(a->c.in), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		for (size_t off = 0; off < (size_t)n;) {
			off += channel_feed(&a->c.ch, a->c.in + off, (size_t)n - off);
			struct channel_event ev;
			enum channel_event_type t;
			while ((t = channel_next_event(&a->c.ch, &ev)) == CHANNEL_EV_MESSAGE)
				on_reply(a, &ev.msg);
			if (t != CHANNEL_EV_NONE)
				return -1; /* a frame that does not open, or a reply that does not
				              decode */
		}
	}
	return 0;
}

/* ---- the connection ------------------------------------------------------------------------ */

static void disconnect(struct attack *a)
{
	if (!a->connected)
		return;
	tclient_close(&a->c);
	a->connected = false;
}

static int connect_relay(struct attack *a)
{
	if (tclient_connect(&a->c, a->cfg->port, a->cfg->relay_pub) != 0) {
		tclient_close(&a->c);
		return -1;
	}
	if (fcntl(a->c.fd, F_SETFL, fcntl(a->c.fd, F_GETFL) | O_NONBLOCK) != 0) {
		tclient_close(&a->c);
		return -1;
	}
	a->connected = true;
	a->st->connections++;
	for (unsigned i = 0; i < MB_MAX; i++)
		a->mb[i].authed = a->mb[i].subscribed = a->mb[i].sig_ok = false;
	a->exhausted = a->want_reconnect = a->intake_pending = false;
	a->outstanding = 0;
	a->pending_creates = a->sends_out = 0;
	a->dl_len = 0;
	a->out_len = a->out_off = 0;
	a->blocked_since = 0;
	memset(a->rid_info, 0, sizeof(a->rid_info));
	return 0;
}

static int compose_frame(struct attack *a)
{
	a->c.batch_len = 0;
	patterns[a->cfg->pattern].compose(a);
	if (a->c.batch_len == 0)
		return 0;
	/* As composed, in one frame, even where it breaks the protocol. */
	int rc = channel_send_frame(&a->c.ch, a->c.batch, a->c.batch_len);
	a->c.batch_len = 0;
	if (rc != 0)
		return rc;
	const uint8_t *sealed = NULL;
	size_t len = channel_output(&a->c.ch, &sealed);
	if (len > sizeof(a->out))
		return CAIRN_ENOBUFS; /* cannot happen: one frame, and nothing else was queued */
	memcpy(a->out, sealed, len);
	channel_output_consume(&a->c.ch, len);
	a->out_len = len;
	a->out_off = 0;
	a->st->frames++;
	return 0;
}

/* Writes what the socket takes. Returns 0, or -1 once the connection is gone. */
static int write_some(struct attack *a)
{
	while (a->out_off < a->out_len) {
		ssize_t n = send(a->c.fd, a->out + a->out_off, a->out_len - a->out_off,
		                 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			a->out_off += (size_t)n;
			a->st->bytes_out += (uint64_t)n;
			if (a->blocked_since != 0) {
				a->st->write_blocked_ms += now_ms() - a->blocked_since;
				a->blocked_since = 0;
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (a->blocked_since == 0)
				a->blocked_since = now_ms();
			return 0;
		}
		return -1;
	}
	return 0;
}

int attack_run(const struct attack_config *cfg, struct attack_stats *st)
{
	struct attack *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	memset(st, 0, sizeof(*st));
	a->cfg = cfg;
	a->st = st;
	a->rng = cfg->seed;
	a->next_rid = RID_BASE;
	a->c.fd = -1;
	uint8_t seed[crypto_sign_SEEDBYTES];
	rnd_bytes(a, seed, sizeof(seed));
	crypto_sign_seed_keypair(a->pk, a->sk, seed);
	rnd_bytes(a, a->body, sizeof(a->body));
	a->start_ms = now_ms();
	/* DELETE_STORM's storm shows within a second; the larger the store, the more each
	 * DELETE may cost. */
	int64_t first =
	    cfg->pattern == ATTACK_DELETE_STORM ? cfg->duration_ms * 7 / 10 : cfg->duration_ms / 2;
	a->half_ms = a->start_ms + first;
	int64_t end = a->start_ms + cfg->duration_ms;
	const struct pattern *p = &patterns[cfg->pattern];

	while (now_ms() < end && (cfg->stop == NULL || atomic_load(cfg->stop) == 0)) {
		if (!a->connected && connect_relay(a) != 0) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		/* A pattern that needs new mailboxes moves to a new connection once this one
		 * refuses them and its replies are in (or after 2 s of waiting for them). */
		bool refused = p->reconnect_when_refused && a->exhausted &&
		               (a->outstanding == 0 || now_ms() - a->exhausted_ms > 2000);
		if ((refused || a->want_reconnect) && a->out_off == a->out_len) {
			disconnect(a);
			continue;
		}
		if (a->out_off == a->out_len && compose_frame(a) != 0)
			break;
		bool have_out = a->out_off < a->out_len;
		struct pollfd pfd = {.fd = a->c.fd, .events = POLLIN | (have_out ? POLLOUT : 0)};
		int timeout = have_out ? 20 : 1;
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
			break;
		bool gone = false;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			gone = drain(a) != 0;
		if (!gone && have_out && (pfd.revents & POLLOUT))
			gone = write_some(a) != 0;
		else if (!gone && have_out && a->blocked_since == 0)
			a->blocked_since = now_ms();
		if (gone) {
			st->closed_by_relay++;
			disconnect(a);
		}
	}
	if (a->blocked_since != 0)
		st->write_blocked_ms += now_ms() - a->blocked_since;
	disconnect(a);
	int rc = st->connections > 0 ? 0 : -1;
	sodium_memzero(a->sk, sizeof(a->sk));
	free(a);
	return rc;
}
