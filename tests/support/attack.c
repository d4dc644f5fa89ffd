/* SPDX-License-Identifier: MIT */
/*
 * The attack-mix driver (see attack.h). One non-blocking loop per attacker: compose a frame
 * from the pattern and the generator table, write it as the socket takes it, and meanwhile
 * read and decode every reply, which is how the attacker learns the mailboxes it created and
 * the envelopes it may acknowledge. It never waits for a reply before writing more, except
 * where a command needs one (a DELETE needs the CREATED that named the mailbox).
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

#include "attack.h"
#include "tclient.h"

#define MB_MAX        120  /* mailboxes remembered; SUBSCRIBE request ids are 1..MB_MAX */
#define RID_BASE      256  /* other request ids cycle through RID_BASE..65535 */
#define DELIVERED_MAX 8192 /* deliveries waiting for an ACK */
#define FILL_BOXES    8    /* mailboxes DELETE_STORM fills, and FILL creates at a time */
#define AUTH_BOXES    4    /* mailboxes AUTH signs for */
/* TOMBSTONES: SENDs in flight while building, well under the relay's requests in flight (a
 * connection at that limit is not read, and its ACKs would wait behind the disk). */
#define TOMB_SENDS   48
#define CREATES_MAX  64 /* CREATEs in flight for the patterns that wait on them */
#define AUTH_MSG_LEN (12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN)

/* What a request id was used for, so that its reply can be understood. */
enum kind { K_OTHER, K_CREATE, K_AUTH, K_SEND };

struct mbox {
	bool live, authed, subscribed, secured, full, filled, sig_ok, first_seen;
	uint64_t first_id;
	uint8_t rid[CAIRN_MAILBOX_ID_LEN], sid[CAIRN_MAILBOX_ID_LEN];
	uint8_t cred[CAIRN_CREDENTIAL_LEN];
	uint8_t sig[CAIRN_SIGNATURE_LEN]; /* a valid AUTH for this connection, once sig_ok */
};

struct delivered {
	uint16_t mb;
	uint64_t id;
};

struct attack {
	const struct attack_config *cfg;
	struct attack_stats *st;
	uint64_t rng;
	int64_t start_ms, half_ms; /* half_ms: where a two-phase pattern changes phase */
	struct tclient c;          /* the channel, and the batch being composed */
	bool connected;
	bool exhausted; /* a CREATE was refused on this connection */
	int64_t exhausted_ms;
	bool keep_first;     /* TOMBSTONES: never acknowledge a mailbox's first envelope */
	bool filling;        /* DELETE_STORM: mailboxes created now are the filled ones */
	bool want_reconnect; /* the pattern asks for a new connection once its output is out */
	uint8_t pk[CAIRN_KEY_LEN], sk[64]; /* the recipient key of every mailbox it creates */
	struct mbox mb[MB_MAX];
	uint32_t next_rid;
	uint64_t outstanding; /* commands written or queued, not yet answered */
	unsigned pending_creates, sends_out;
	uint64_t max_env_id;
	size_t dl_len;
	struct delivered dl[DELIVERED_MAX];
	struct {
		uint8_t kind, mb;
	} rid_info[65536];
	uint8_t out[CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX];
	size_t out_len, out_off;
	int64_t blocked_since;
	uint8_t body[CAIRN_ENVELOPE_MAX + 1];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: the whole composition follows from the seed. */
static uint64_t rnd(struct attack *a)
{
	uint64_t z = (a->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rnd_bytes(struct attack *a, uint8_t *p, size_t n)
{
	while (n > 0) {
		uint64_t v = rnd(a);
		size_t k = n < 8 ? n : 8;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/*
 * A signature that fails only at the end of a whole Ed25519 verify: S below 2^252, so that it
 * is canonical (a random S is over the group order 15 times in 16, which the verifier rejects
 * before any point arithmetic).
 */
static void rnd_sig(struct attack *a, uint8_t sig[CAIRN_SIGNATURE_LEN])
{
	rnd_bytes(a, sig, CAIRN_SIGNATURE_LEN);
	sig[63] &= 0x0f;
}

/* ---- request ids and encoding ------------------------------------------------------------ */

static void rid_commit(struct attack *a, enum kind kind, int mb)
{
	a->rid_info[a->next_rid].kind = (uint8_t)kind;
	a->rid_info[a->next_rid].mb = (uint8_t)(mb < 0 ? 0 : mb);
	a->next_rid = a->next_rid >= 65535 ? RID_BASE : a->next_rid + 1;
	if (kind == K_CREATE)
		a->pending_creates++;
	else if (kind == K_SEND)
		a->sends_out++;
}

/* Encodes M with the next request id (or M->request_id when set, which is then not from the
 * counter) and records what it was for. Returns the bytes written, 0 if it does not fit. */
static size_t put(struct attack *a, struct cairn_msg *m, uint8_t *out, size_t cap, enum kind kind,
                  int mb)
{
	bool counted = m->request_id == 0;
	if (counted)
		m->request_id = a->next_rid;
	size_t used = 0;
	if (cairn_msg_encode(m, out, cap, &used) != 0)
		return 0;
	if (counted)
		rid_commit(a, kind, mb);
	return used;
}

/* Writes [0x9n, type, uint16 request id] and returns the 5 bytes, for hand-built commands. */
static size_t raw_head(struct attack *a, uint8_t *out, unsigned elements, uint8_t type)
{
	out[0] = (uint8_t)(0x90 | elements);
	out[1] = type;
	out[2] = 0xcd;
	out[3] = (uint8_t)(a->next_rid >> 8);
	out[4] = (uint8_t)a->next_rid;
	return 5;
}

static size_t raw_bin(uint8_t *out, const uint8_t *p, size_t len)
{
	out[0] = 0xc4;
	out[1] = (uint8_t)len;
	memcpy(out + 2, p, len);
	return 2 + len;
}

/* ---- mailboxes ----------------------------------------------------------------------------- */

enum {
	W_AUTHED = 1,
	W_NOT_FULL = 2,
	W_SECURED = 4,
	W_UNSECURED = 8,
	W_NOT_FILLED = 16,
	W_FILLED = 32,
};

static bool mb_fits(const struct mbox *m, unsigned want)
{
	return m->live && (!(want & W_AUTHED) || m->authed) && (!(want & W_NOT_FULL) || !m->full) &&
	       (!(want & W_SECURED) || m->secured) && (!(want & W_UNSECURED) || !m->secured) &&
	       (!(want & W_NOT_FILLED) || !m->filled) && (!(want & W_FILLED) || m->filled);
}

/* A random live mailbox with the properties WANT, or -1. */
static int pick(struct attack *a, unsigned want)
{
	unsigned start = (unsigned)(rnd(a) % MB_MAX);
	for (unsigned k = 0; k < MB_MAX; k++) {
		unsigned i = (start + k) % MB_MAX;
		if (mb_fits(&a->mb[i], want))
			return (int)i;
	}
	return -1;
}

static unsigned count(const struct attack *a, unsigned want)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MB_MAX; i++)
		n += mb_fits(&a->mb[i], want);
	return n;
}

/* ---- the generator table ------------------------------------------------------------------ */

/* Each generator encodes one command into OUT (CAP bytes) and returns its length, or 0 when
 * it does not apply now (no mailbox of the kind it needs) or does not fit. State changes only
 * when it returns non-zero. */
typedef size_t (*gen_fn)(struct attack *a, uint8_t *out, size_t cap);

static size_t gen_ping(struct attack *a, uint8_t *out, size_t cap)
{
	struct cairn_msg m = {.type = CAIRN_CMD_PING};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* PING with its integers in wider forms than needed: decoders accept any width (5.1). */
static size_t gen_ping_wide(struct attack *a, uint8_t *out, size_t cap)
{
	if (cap < 15)
		return 0;
	static const uint8_t head[] = {0x92, 0xce, 0, 0, 0, 1, 0xcf, 0, 0, 0, 0, 0, 0};
	memcpy(out, head, sizeof(head));
	out[13] = (uint8_t)(a->next_rid >> 8);
	out[14] = (uint8_t)a->next_rid;
	rid_commit(a, K_OTHER, -1);
	return 15;
}

static size_t gen_create(struct attack *a, uint8_t *out, size_t cap)
{
	if (a->exhausted)
		return 0;
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .recipient_key = a->pk};
	return put(a, &m, out, cap, K_CREATE, -1);
}

static size_t gen_auth_valid(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, 0);
	if (i < 0)
		return 0;
	struct mbox *b = &a->mb[i];
	if (!b->sig_ok) {
		uint8_t msg[AUTH_MSG_LEN];
		memcpy(msg, "cairn/1 auth", 12);
		memcpy(msg + 12, channel_session(&a->c.ch)->h, CAIRN_HASH_LEN);
		memcpy(msg + 12 + CAIRN_HASH_LEN, b->rid, CAIRN_MAILBOX_ID_LEN);
		crypto_sign_detached(b->sig, NULL, msg, sizeof(msg), a->sk);
		b->sig_ok = true;
	}
	struct cairn_msg m = {.type = CAIRN_CMD_AUTH, .recipient_id = b->rid, .signature = b->sig};
	return put(a, &m, out, cap, K_AUTH, i);
}

/* An own mailbox with a signature that does not verify: the same verify for the relay. */
static size_t gen_auth_bad(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, 0);
	if (i < 0)
		return 0;
	uint8_t sig[CAIRN_SIGNATURE_LEN];
	rnd_sig(a, sig);
	struct cairn_msg m = {
	    .type = CAIRN_CMD_AUTH, .recipient_id = a->mb[i].rid, .signature = sig};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_auth_unknown(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t rid[CAIRN_MAILBOX_ID_LEN], sig[CAIRN_SIGNATURE_LEN];
	rnd_bytes(a, rid, sizeof(rid));
	rnd_sig(a, sig);
	struct cairn_msg m = {.type = CAIRN_CMD_AUTH, .recipient_id = rid, .signature = sig};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_secure(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_AUTHED);
	if (i < 0)
		return 0;
	struct mbox *b = &a->mb[i];
	uint8_t cred[CAIRN_CREDENTIAL_LEN], digest[CAIRN_CREDENTIAL_LEN];
	rnd_bytes(a, cred, sizeof(cred));
	crypto_generichash(digest, sizeof(digest), cred, sizeof(cred), b->sid, sizeof(b->sid));
	struct cairn_msg m = {
	    .type = CAIRN_CMD_SECURE, .recipient_id = b->rid, .credential = digest};
	size_t n = put(a, &m, out, cap, K_OTHER, -1);
	if (n > 0) {
		/* In force as soon as the relay reads it: the SENDs after it carry it. */
		b->secured = true;
		memcpy(b->cred, cred, sizeof(cred));
	}
	return n;
}

static size_t subscribe_to(struct attack *a, int i, uint8_t *out, size_t cap)
{
	struct cairn_msg m = {.type = CAIRN_CMD_SUBSCRIBE,
	                      .request_id = (uint32_t)i + 1,
	                      .recipient_id = a->mb[i].rid};
	size_t n = put(a, &m, out, cap, K_OTHER, i);
	if (n > 0)
		a->mb[i].subscribed = true;
	return n;
}

/* SUBSCRIBE again and again restarts delivery from the oldest unacknowledged envelope. */
static size_t gen_subscribe(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_AUTHED);
	return i < 0 ? 0 : subscribe_to(a, i, out, cap);
}

static size_t gen_ack_delivered(struct attack *a, uint8_t *out, size_t cap)
{
	while (a->dl_len > 0) {
		struct delivered d = a->dl[a->dl_len - 1];
		struct mbox *b = &a->mb[d.mb];
		if (!b->live || !b->authed || (a->keep_first && d.id == b->first_id)) {
			a->dl_len--;
			continue;
		}
		struct cairn_msg m = {
		    .type = CAIRN_CMD_ACK, .recipient_id = b->rid, .envelope_id = d.id};
		size_t n = put(a, &m, out, cap, K_OTHER, -1);
		if (n > 0)
			a->dl_len--;
		return n;
	}
	return 0;
}

static size_t gen_ack_unknown(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_AUTHED);
	if (i < 0)
		return 0;
	struct cairn_msg m = {.type = CAIRN_CMD_ACK,
	                      .recipient_id = a->mb[i].rid,
	                      .envelope_id = rnd(a) | (1ull << 62)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* An id the relay is about to hand out: the ACK may come before the envelope does. */
static size_t gen_ack_ahead(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_AUTHED);
	if (i < 0)
		return 0;
	struct cairn_msg m = {.type = CAIRN_CMD_ACK,
	                      .recipient_id = a->mb[i].rid,
	                      .envelope_id = a->max_env_id + 1 + rnd(a) % 256};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_delete(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_AUTHED | W_NOT_FILLED);
	/* The random mix keeps a mailbox to work on. */
	if (i < 0 || (a->cfg->pattern == ATTACK_MIX && count(a, W_AUTHED) <= 2))
		return 0;
	struct cairn_msg m = {.type = CAIRN_CMD_DELETE, .recipient_id = a->mb[i].rid};
	size_t n = put(a, &m, out, cap, K_OTHER, -1);
	if (n > 0)
		a->mb[i].live = false;
	return n;
}

/* A SEND of LEN body bytes to mailbox I with the right credential, if it has one. */
static size_t send_to(struct attack *a, int i, size_t len, uint8_t *out, size_t cap)
{
	struct mbox *b = &a->mb[i];
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = b->sid,
	                      .credential = b->secured ? b->cred : NULL,
	                      .envelope = a->body,
	                      .envelope_len = len};
	return put(a, &m, out, cap, K_SEND, i);
}

static size_t gen_send_open(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL | W_UNSECURED);
	return i < 0 ? 0 : send_to(a, i, rnd(a) % 1025, out, cap);
}

static size_t gen_send_cred(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL | W_SECURED);
	return i < 0 ? 0 : send_to(a, i, rnd(a) % 4097, out, cap);
}

/* Empty envelopes: what each envelope costs the relay beyond its bytes. */
static size_t gen_send_empty(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL | W_NOT_FILLED);
	return i < 0 ? 0 : send_to(a, i, 0, out, cap);
}

/* As large as fits, 16 KiB when it does, never under 4 KiB: four of them make a 64 KiB
 * frame. The filled mailboxes of DELETE_STORM first, while it is filling. */
static size_t gen_send_max(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL | (a->filling ? W_FILLED : 0));
	if (i < 0 || cap < 4096 + 64)
		return 0;
	size_t len = cap - 64 < CAIRN_ENVELOPE_MAX ? cap - 64 : CAIRN_ENVELOPE_MAX;
	return send_to(a, i, len, out, cap);
}

static size_t gen_send_wrong_cred(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_SECURED);
	if (i < 0)
		return 0;
	uint8_t cred[CAIRN_CREDENTIAL_LEN];
	rnd_bytes(a, cred, sizeof(cred));
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = a->mb[i].sid,
	                      .credential = cred,
	                      .envelope = a->body,
	                      .envelope_len = rnd(a) % 2049};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_send_nobox(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t sid[CAIRN_MAILBOX_ID_LEN];
	rnd_bytes(a, sid, sizeof(sid));
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = sid,
	                      .envelope = a->body,
	                      .envelope_len = rnd(a) % 2049};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* One byte over the envelope limit, to an own mailbox: `too big`. Built by hand, since the
 * encoder refuses it. */
static size_t gen_send_too_big(struct attack *a, uint8_t *out, size_t cap)
{
	const size_t len = CAIRN_ENVELOPE_MAX + 1;
	if (cap < 5 + 26 + 1 + 3 + len)
		return 0;
	int i = pick(a, 0);
	uint8_t sid[CAIRN_MAILBOX_ID_LEN];
	if (i >= 0)
		memcpy(sid, a->mb[i].sid, sizeof(sid));
	else
		rnd_bytes(a, sid, sizeof(sid));
	size_t n = raw_head(a, out, 5, CAIRN_CMD_SEND);
	n += raw_bin(out + n, sid, sizeof(sid));
	out[n++] = 0xc0;
	out[n++] = 0xc5;
	out[n++] = (uint8_t)(len >> 8);
	out[n++] = (uint8_t)len;
	memcpy(out + n, a->body, len);
	rid_commit(a, K_OTHER, -1);
	return n + len;
}

/* A reply type sent as a command: `unknown command`. */
static size_t gen_reply_type(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t id1[CAIRN_MAILBOX_ID_LEN], id2[CAIRN_MAILBOX_ID_LEN];
	rnd_bytes(a, id1, sizeof(id1));
	rnd_bytes(a, id2, sizeof(id2));
	struct cairn_msg m = {.type = (uint8_t)(CAIRN_REPLY_OK + rnd(a) % 5),
	                      .recipient_id = id1,
	                      .sender_id = id2,
	                      .envelope_id = rnd(a),
	                      .envelope = a->body,
	                      .envelope_len = rnd(a) % 64,
	                      .code = (uint32_t)(rnd(a) % 10)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_unknown_type(struct attack *a, uint8_t *out, size_t cap)
{
	if (cap < 5)
		return 0;
	uint8_t t = (uint8_t)(rnd(a) % 2 ? 9 + rnd(a) % 55 : 69 + rnd(a) % 59);
	size_t n = raw_head(a, out, 2, t);
	rid_commit(a, K_OTHER, -1);
	return n;
}

/* Sound msgpack, a readable request id, and a field of the wrong type, size or count:
 * `bad request`, and the connection goes on (5.8). */
static size_t gen_wrong_field(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t id[CAIRN_MAILBOX_ID_LEN], junk[64];
	rnd_bytes(a, id, sizeof(id));
	rnd_bytes(a, junk, sizeof(junk));
	if (cap < 128)
		return 0;
	size_t n;
	switch (rnd(a) % 7) {
	case 0: /* CREATE with a 31-byte key */
		n = raw_head(a, out, 3, CAIRN_CMD_CREATE);
		n += raw_bin(out + n, junk, 31);
		break;
	case 1: /* AUTH with a 63-byte signature */
		n = raw_head(a, out, 4, CAIRN_CMD_AUTH);
		n += raw_bin(out + n, id, sizeof(id));
		n += raw_bin(out + n, junk, 63);
		break;
	case 2: /* ACK with the envelope id as bytes */
		n = raw_head(a, out, 4, CAIRN_CMD_ACK);
		n += raw_bin(out + n, id, sizeof(id));
		n += raw_bin(out + n, junk, 8);
		break;
	case 3: /* SEND with an integer credential */
		n = raw_head(a, out, 5, CAIRN_CMD_SEND);
		n += raw_bin(out + n, id, sizeof(id));
		out[n++] = 0x05;
		n += raw_bin(out + n, junk, 0);
		break;
	case 4: /* PING with 13 extra nil arguments */
		n = raw_head(a, out, 15, CAIRN_CMD_PING);
		memset(out + n, 0xc0, 13);
		n += 13;
		break;
	case 5: /* SUBSCRIBE of [[1], 1] */
		n = raw_head(a, out, 3, CAIRN_CMD_SUBSCRIBE);
		memcpy(out + n, "\x92\x91\x01\x01", 4);
		n += 4;
		break;
	default: /* DELETE of a map */
		n = raw_head(a, out, 3, CAIRN_CMD_DELETE);
		memcpy(out + n, "\x81\x01\x02", 3);
		n += 3;
		break;
	}
	rid_commit(a, K_OTHER, -1);
	return n;
}

enum gen_id {
	G_PING,
	G_PING_WIDE,
	G_CREATE,
	G_AUTH_VALID,
	G_AUTH_BAD,
	G_AUTH_UNKNOWN,
	G_SECURE,
	G_SUBSCRIBE,
	G_ACK_DELIVERED,
	G_ACK_UNKNOWN,
	G_ACK_AHEAD,
	G_DELETE,
	G_SEND_OPEN,
	G_SEND_CRED,
	G_SEND_EMPTY,
	G_SEND_MAX,
	G_SEND_WRONG_CRED,
	G_SEND_NOBOX,
	G_SEND_TOO_BIG,
	G_REPLY_TYPE,
	G_UNKNOWN_TYPE,
	G_WRONG_FIELD,
	G_COUNT
};

/* The table: a new command is one entry here (and one in enum gen_id). WEIGHT is its share
 * of the random mix. */
static const struct generator {
	const char *name;
	unsigned weight;
	gen_fn fn;
} generators[G_COUNT] = {
    [G_PING] = {"PING", 4, gen_ping},
    [G_PING_WIDE] = {"PING, wide integers", 1, gen_ping_wide},
    [G_CREATE] = {"CREATE", 2, gen_create},
    [G_AUTH_VALID] = {"AUTH valid", 3, gen_auth_valid},
    [G_AUTH_BAD] = {"AUTH bad signature", 3, gen_auth_bad},
    [G_AUTH_UNKNOWN] = {"AUTH unknown mailbox", 2, gen_auth_unknown},
    [G_SECURE] = {"SECURE", 1, gen_secure},
    [G_SUBSCRIBE] = {"SUBSCRIBE", 2, gen_subscribe},
    [G_ACK_DELIVERED] = {"ACK delivered", 4, gen_ack_delivered},
    [G_ACK_UNKNOWN] = {"ACK unknown id", 1, gen_ack_unknown},
    [G_ACK_AHEAD] = {"ACK not yet delivered", 1, gen_ack_ahead},
    [G_DELETE] = {"DELETE", 1, gen_delete},
    [G_SEND_OPEN] = {"SEND no credential", 3, gen_send_open},
    [G_SEND_CRED] = {"SEND credential", 2, gen_send_cred},
    [G_SEND_EMPTY] = {"SEND empty", 2, gen_send_empty},
    [G_SEND_MAX] = {"SEND max size", 2, gen_send_max},
    [G_SEND_WRONG_CRED] = {"SEND wrong credential", 1, gen_send_wrong_cred},
    [G_SEND_NOBOX] = {"SEND no such mailbox", 1, gen_send_nobox},
    [G_SEND_TOO_BIG] = {"SEND too big", 1, gen_send_too_big},
    [G_REPLY_TYPE] = {"reply type as command", 1, gen_reply_type},
    [G_UNKNOWN_TYPE] = {"unknown type", 1, gen_unknown_type},
    [G_WRONG_FIELD] = {"wrong field type", 1, gen_wrong_field},
};

_Static_assert(G_COUNT <= ATTACK_GENERATORS_MAX, "attack_stats.per_generator is too small");

/* Appends generator G's command to the batch; false if it does not apply or fit. */
static bool emit(struct attack *a, enum gen_id g)
{
	size_t room = sizeof(a->c.batch) - a->c.batch_len;
	size_t n = generators[g].fn(a, a->c.batch + a->c.batch_len, room);
	if (n == 0)
		return false;
	a->c.batch_len += n;
	a->st->per_generator[g]++;
	a->st->commands++;
	a->outstanding++;
	return true;
}

static void emit_all(struct attack *a, enum gen_id g)
{
	while (emit(a, g))
		;
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
	a->exhausted = a->want_reconnect = false;
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
