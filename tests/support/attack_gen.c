/* SPDX-License-Identifier: MIT */
/*
 * The attack-mix driver's generator table (see attack.h, attack_internal.h): one function per
 * command, right or wrong, that encodes it into the batch, and the table of their names and
 * weights. The patterns that choose among them are attack.c.
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
#include "forward.h"
#include "tclient.h"
#include "work.h"

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

/* POLICY (PROTOCOL.md 5.13), open to anyone: with nil or a digest that is random (so almost
 * always stale: the relay answers with its body, or nil when it publishes none). */
static size_t gen_policy(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t have[32];
	rnd_bytes(a, have, sizeof(have));
	struct cairn_msg m = {.type = CAIRN_CMD_POLICY, .credential = rnd(a) % 2 ? have : NULL};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* POLICY with a `have` of the wrong size or type: `bad request`. */
static size_t gen_policy_bad(struct attack *a, uint8_t *out, size_t cap)
{
	if (cap < 5 + 2 + 33)
		return 0;
	size_t n = raw_head(a, out, 3, CAIRN_CMD_POLICY);
	if (rnd(a) % 2) {
		out[n++] = 0xc4;
		out[n++] = 31 + (uint8_t)(rnd(a) % 2) * 2; /* 31 or 33 bytes */
		rnd_bytes(a, out + n, out[n - 1]);
		n += out[n - 1];
	} else {
		out[n++] = 0xa1; /* a string */
		out[n++] = 'x';
	}
	rid_commit(a, K_OTHER, -1);
	return n;
}

/* ---- the generator table ------------------------------------------------------------------ */

/* Each generator encodes one command into OUT (CAP bytes) and returns its length, or 0 when
 * it does not apply now (no mailbox of the kind it needs) or does not fit. State changes only
 * when it returns non-zero. */
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
	/* The random mix keeps some of the create budget for SECURE and INTAKE. */
	if (a->exhausted || (a->cfg->pattern == ATTACK_MIX && a->pending_creates >= 4))
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

size_t subscribe_to(struct attack *a, int i, uint8_t *out, size_t cap)
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
	/* Intake mailboxes stay: few are made (INTAKE is on the create budget). */
	int i = pick(a, W_AUTHED | W_NOT_FILLED | W_NOT_INTAKE);
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
	/* Past POLICY (18), the last command type, and the reply types (64..73). */
	uint8_t t = (uint8_t)(rnd(a) % 2 ? 19 + rnd(a) % 45 : 74 + rnd(a) % 54);
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

/* ---- group logs (PROTOCOL.md 5.9) ------------------------------------------------------------ */

/* The attacker's logs: LOG_KEYS of them, each with an id, a credential and a delete secret
 * derived from its index and the attacker's key, so every connection of one attack (and no
 * other) can use them without remembering anything. */
#define LOG_KEYS 8

static void log_key(const struct attack *a, unsigned i, char what, uint8_t *out, size_t n)
{
	uint8_t in[2] = {(uint8_t)what, (uint8_t)i};
	crypto_generichash(out, n, in, sizeof(in), a->pk, sizeof(a->pk));
}

/* LOG_CREATE of log I (OK once, then OK again for the same digests): draws on the budget. */
static size_t gen_log_create(struct attack *a, uint8_t *out, size_t cap)
{
	unsigned i = (unsigned)(rnd(a) % LOG_KEYS);
	uint8_t id[CAIRN_LOG_ID_LEN], cred[32], del[32], cd[32], dd[32];
	log_key(a, i, 'i', id, sizeof(id));
	log_key(a, i, 'c', cred, sizeof(cred));
	log_key(a, i, 'd', del, sizeof(del));
	crypto_generichash(cd, 32, cred, 32, id, sizeof(id));
	crypto_generichash(dd, 32, del, 32, id, sizeof(id));
	struct cairn_msg m = {
	    .type = CAIRN_CMD_LOG_CREATE, .log_id = id, .credential = cd, .delete_digest = dd};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* LOG_APPEND to log I with its credential (or a wrong one): 1 byte to the maximum. */
static size_t log_append_to(struct attack *a, uint8_t *out, size_t cap, bool right)
{
	unsigned i = (unsigned)(rnd(a) % LOG_KEYS);
	uint8_t id[CAIRN_LOG_ID_LEN], cred[32];
	log_key(a, i, 'i', id, sizeof(id));
	if (right)
		log_key(a, i, 'c', cred, sizeof(cred));
	else
		rnd_bytes(a, cred, sizeof(cred));
	size_t len = rnd(a) % 4 == 0 ? CAIRN_LOG_ENTRY_MAX : 1 + rnd(a) % 256;
	rnd_bytes(a, a->body, len);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = id,
	                      .credential = cred,
	                      .envelope = a->body,
	                      .envelope_len = len};
	return put(a, &m, out, cap, K_OTHER, -1);
}

static size_t gen_log_append(struct attack *a, uint8_t *out, size_t cap)
{
	return log_append_to(a, out, cap, true);
}

static size_t gen_log_append_wrong(struct attack *a, uint8_t *out, size_t cap)
{
	return log_append_to(a, out, cap, false);
}

/* LOG_READ of log I from the start, or from far ahead, following or not: a second read of the
 * same log ends the first, and followers fill their output. */
static size_t gen_log_read(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t id[CAIRN_LOG_ID_LEN];
	log_key(a, (unsigned)(rnd(a) % LOG_KEYS), 'i', id, sizeof(id));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .log_id = id,
	                      .seq = rnd(a) % 2 ? 1 : rnd(a),
	                      .follow = (uint8_t)(rnd(a) % 2)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* LOG_READ of a log nobody created: `denied`, at the cost of a lookup. */
static size_t gen_log_read_unknown(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t id[CAIRN_LOG_ID_LEN];
	rnd_bytes(a, id, sizeof(id));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .log_id = id,
	                      .seq = rnd(a),
	                      .follow = (uint8_t)(rnd(a) % 2)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* LOG_DELETE of one of its logs with a wrong secret: `denied`, nothing deleted. */
static size_t gen_log_delete_wrong(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t id[CAIRN_LOG_ID_LEN], secret[32];
	log_key(a, (unsigned)(rnd(a) % LOG_KEYS), 'i', id, sizeof(id));
	rnd_bytes(a, secret, sizeof(secret));
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_DELETE, .log_id = id, .delete_secret = secret};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* ---- intake mailboxes (PROTOCOL.md 5.10) ------------------------------------------------------
 */

/* INTAKE on an own mailbox: cheap bits the attacker then solves for, or once it has two such
 * mailboxes, one time in four the most there is (40), which makes every SEND_WORK to it
 * `work`. In force as soon as the relay reads it, like SECURE; a refusal (the create budget)
 * clears it again. */
static size_t gen_intake(struct attack *a, uint8_t *out, size_t cap)
{
	bool few = count(a, W_INTAKE) < 2;
	int i = pick(a, W_AUTHED | W_NOT_FILLED | (few ? W_NOT_INTAKE : 0));
	if (i < 0)
		return 0;
	bool cheap = few || rnd(a) % 4 != 0;
	uint8_t bits = (uint8_t)(cheap ? 1 + rnd(a) % WORK_CHEAP_BITS : WORK_BITS_MAX);
	struct cairn_msg m = {
	    .type = CAIRN_CMD_INTAKE, .recipient_id = a->mb[i].rid, .work_bits = bits};
	size_t n = put(a, &m, out, cap, K_INTAKE, i);
	if (n > 0) {
		a->mb[i].intake_bits = bits;
		a->intake_pending = true;
	}
	return n;
}

/* INTAKE with bits the encoder refuses (0, 41..255, or a 64-bit integer): `bad request`. */
static size_t gen_intake_bad_bits(struct attack *a, uint8_t *out, size_t cap)
{
	if (cap < 5 + 26 + 9)
		return 0;
	int i = pick(a, 0);
	uint8_t rid[CAIRN_MAILBOX_ID_LEN];
	if (i >= 0)
		memcpy(rid, a->mb[i].rid, sizeof(rid));
	else
		rnd_bytes(a, rid, sizeof(rid));
	size_t n = raw_head(a, out, 4, CAIRN_CMD_INTAKE);
	n += raw_bin(out + n, rid, sizeof(rid));
	switch (rnd(a) % 3) {
	case 0:
		out[n++] = 0x00;
		break;
	case 1:
		out[n++] = 0xcc;
		out[n++] = (uint8_t)(WORK_BITS_MAX + 1 + rnd(a) % (255 - WORK_BITS_MAX));
		break;
	default:
		out[n++] = 0xcf;
		rnd_bytes(a, out + n, 8);
		out[n] |= 0x80;
		n += 8;
		break;
	}
	rid_commit(a, K_OTHER, -1);
	return n;
}

/* A SEND_WORK of LEN body bytes to SID with WORK; kind K_SEND for mailbox I (or K_OTHER). */
static size_t send_work(struct attack *a, const uint8_t *sid, const uint8_t *work, size_t len,
                        int i, uint8_t *out, size_t cap)
{
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .sender_id = sid,
	                      .work = work,
	                      .envelope = a->body,
	                      .envelope_len = len};
	return put(a, &m, out, cap, i >= 0 ? K_SEND : K_OTHER, i);
}

/* Work solved now for LEN body bytes to SID at BITS. */
static void solve(struct attack *a, const uint8_t *sid, size_t len, unsigned bits,
                  uint8_t work[WORK_LEN])
{
	if (work_solve(sid, a->body, len, (uint64_t)time(NULL), bits, rnd(a), work, NULL) != 0)
		memset(work, 0, WORK_LEN);
}

/* Valid work to an own intake mailbox of cheap bits: OK until its quota, then `quota`. It is
 * remembered for G_SEND_WORK_REUSED. */
static size_t gen_send_work_valid(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_INTAKE | W_NOT_FULL);
	if (i < 0)
		return 0;
	size_t len = rnd(a) % sizeof(a->work_env);
	rnd_bytes(a, a->body, len);
	uint8_t work[WORK_LEN];
	solve(a, a->mb[i].sid, len, a->mb[i].intake_bits, work);
	size_t n = send_work(a, a->mb[i].sid, work, len, i, out, cap);
	if (n > 0) {
		a->have_work = true;
		memcpy(a->work_sid, a->mb[i].sid, sizeof(a->work_sid));
		memcpy(a->work, work, sizeof(a->work));
		memcpy(a->work_env, a->body, len);
		a->work_env_len = len;
	}
	return n;
}

/* Random work to any own mailbox: `work` for an intake mailbox, `denied` for another. */
static size_t gen_send_work_garbage(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, 0);
	if (i < 0)
		return 0;
	uint8_t work[WORK_LEN];
	rnd_bytes(a, work, sizeof(work));
	return send_work(a, a->mb[i].sid, work, rnd(a) % 2049, -1, out, cap);
}

/* Valid work for a mailbox nobody created: solved, then `denied` at the cost of a lookup. */
static size_t gen_send_work_nobox(struct attack *a, uint8_t *out, size_t cap)
{
	uint8_t sid[CAIRN_MAILBOX_ID_LEN], work[WORK_LEN];
	rnd_bytes(a, sid, sizeof(sid));
	size_t len = rnd(a) % 1025;
	solve(a, sid, len, 1 + rnd(a) % WORK_CHEAP_BITS, work);
	return send_work(a, sid, work, len, -1, out, cap);
}

/* The last valid SEND_WORK again, byte for byte: `work` (reused), or `quota` first. */
static size_t gen_send_work_reused(struct attack *a, uint8_t *out, size_t cap)
{
	if (!a->have_work)
		return 0;
	memcpy(a->body, a->work_env, a->work_env_len);
	return send_work(a, a->work_sid, a->work, a->work_env_len, -1, out, cap);
}

/* ---- private routing (PROTOCOL.md 5.11) ------------------------------------------------- */

/* FORWARDED with random sealed bytes, one time in two of a size that opens (32 + 1024 + 16):
 * an X25519 and a failed tag off the relay's loop thread, then `bad request`. */
static size_t gen_forwarded_garbage(struct attack *a, uint8_t *out, size_t cap)
{
	static const size_t sizes[] = {1072, 4144, 49, 777};
	size_t len = sizes[rnd(a) % 4];
	if (rnd(a) % 2 == 0)
		len = 1072;
	if (cap < len + 16 || len > sizeof(a->body))
		return 0;
	rnd_bytes(a, a->body, len);
	struct cairn_msg m = {.type = CAIRN_CMD_FORWARDED, .sealed = a->body, .sealed_len = len};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* FORWARD of garbage to a relay that is not there (a random key at 127.0.0.1:1): `denied`
 * before the connection has a mailbox, then `unreachable` (or `limit` at the relay's caps). */
static size_t gen_forward(struct attack *a, uint8_t *out, size_t cap)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char text[80] = "cairn://";
	for (int i = 0; i < 42; i++)
		text[8 + i] = b64[rnd(a) % 64];
	text[50] = b64[(rnd(a) % 16) * 4]; /* the last character holds 2 bits of nothing */
	strcpy(text + 51, "@127.0.0.1:1");
	uint8_t sealed[49];
	rnd_bytes(a, sealed, sizeof(sealed));
	struct cairn_msg m = {.type = CAIRN_CMD_FORWARD,
	                      .relay = (const uint8_t *)text,
	                      .relay_len = strlen(text),
	                      .sealed = sealed,
	                      .sealed_len = sizeof(sealed)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* ---- bundles (PROTOCOL.md 5.12) -------------------------------------------------------- */

/* A FORWARDED of a bundle item's size full of random bytes: an X25519 and a failed tag off
 * the loop thread, then `bad request`. */
static size_t gen_bundled_garbage(struct attack *a, uint8_t *out, size_t cap)
{
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN];
	if (cap < sizeof(item) + 16)
		return 0;
	rnd_bytes(a, item, sizeof(item));
	struct cairn_msg m = {
	    .type = CAIRN_CMD_FORWARDED, .sealed = item, .sealed_len = sizeof(item)};
	return put(a, &m, out, cap, K_OTHER, -1);
}

/* A bundle item for mailbox I, sealed for the relay under test, valid until NOT_AFTER: a
 * SEND's answer when still valid, `expired` after. */
static size_t bundled_to(struct attack *a, int i, uint64_t not_after, enum kind kind, uint8_t *out,
                         size_t cap)
{
	static uint8_t item[CAIRN_BUNDLE_ITEM_LEN], cmd[2048];
	struct mbox *b = &a->mb[i];
	struct cairn_msg in = {.type = CAIRN_CMD_BUNDLED,
	                       .not_after = not_after,
	                       .sender_id = b->sid,
	                       .credential = b->secured ? b->cred : NULL,
	                       .envelope = a->body,
	                       .envelope_len = rnd(a) % 1025};
	size_t clen;
	if (cap < sizeof(item) + 16 || cairn_msg_encode(&in, cmd, sizeof(cmd), &clen) != 0 ||
	    bundle_seal(a->cfg->relay_pub, cmd, clen, item) != 0)
		return 0;
	struct cairn_msg m = {
	    .type = CAIRN_CMD_FORWARDED, .sealed = item, .sealed_len = sizeof(item)};
	return put(a, &m, out, cap, kind, i);
}

static size_t gen_bundled_expired(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL);
	return i < 0 ? 0 : bundled_to(a, i, (uint64_t)time(NULL) - 60, K_OTHER, out, cap);
}

/* Stored like a SEND (and answered like one: `quota`, `denied`), remembered for a day. */
static size_t gen_bundled_valid(struct attack *a, uint8_t *out, size_t cap)
{
	int i = pick(a, W_NOT_FULL);
	return i < 0 ? 0 : bundled_to(a, i, (uint64_t)time(NULL) + 86400, K_SEND, out, cap);
}

/* The table: a new command is one entry here (and one in enum gen_id). WEIGHT is its share
 * of the random mix. */
const struct generator generators[G_COUNT] = {
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
    [G_LOG_CREATE] = {"LOG_CREATE", 1, gen_log_create},
    [G_LOG_APPEND] = {"LOG_APPEND", 2, gen_log_append},
    [G_LOG_APPEND_WRONG] = {"LOG_APPEND wrong credential", 1, gen_log_append_wrong},
    [G_LOG_READ] = {"LOG_READ", 1, gen_log_read},
    [G_LOG_READ_UNKNOWN] = {"LOG_READ unknown log", 1, gen_log_read_unknown},
    [G_LOG_DELETE_WRONG] = {"LOG_DELETE wrong secret", 1, gen_log_delete_wrong},
    [G_INTAKE] = {"INTAKE", 1, gen_intake},
    [G_INTAKE_BAD_BITS] = {"INTAKE bits out of range", 1, gen_intake_bad_bits},
    [G_SEND_WORK_VALID] = {"SEND_WORK valid", 2, gen_send_work_valid},
    [G_SEND_WORK_GARBAGE] = {"SEND_WORK garbage work", 1, gen_send_work_garbage},
    [G_SEND_WORK_NOBOX] = {"SEND_WORK no such mailbox", 1, gen_send_work_nobox},
    [G_SEND_WORK_REUSED] = {"SEND_WORK reused work", 1, gen_send_work_reused},
    [G_FORWARDED_GARBAGE] = {"FORWARDED garbage", 1, gen_forwarded_garbage},
    [G_FORWARD] = {"FORWARD nowhere", 1, gen_forward},
    [G_BUNDLED_GARBAGE] = {"BUNDLED garbage", 1, gen_bundled_garbage},
    [G_BUNDLED_EXPIRED] = {"BUNDLED expired", 1, gen_bundled_expired},
    [G_BUNDLED_VALID] = {"BUNDLED valid", 1, gen_bundled_valid},
    [G_POLICY] = {"POLICY", 1, gen_policy},
    [G_POLICY_BAD] = {"POLICY bad have", 1, gen_policy_bad},
};

_Static_assert(G_COUNT <= ATTACK_GENERATORS_MAX, "attack_stats.per_generator is too small");

/* Appends generator G's command to the batch; false if it does not apply or fit. */
bool emit(struct attack *a, enum gen_id g)
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

void emit_all(struct attack *a, enum gen_id g)
{
	while (emit(a, g))
		;
}
