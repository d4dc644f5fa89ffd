/* SPDX-License-Identifier: MIT */
/*
 * Private routing in the command layer (docs/PROTOCOL.md 5.11).
 *
 * FORWARDED, open to any peer: the sealed command is opened off the loop thread (one X25519
 * and one AEAD over at most 16 KiB, like AUTH's signature check, through the port's defer, so
 * the connection runs nothing else meanwhile and the relay runs at most
 * CAIRN_AUTH_VERIFY_SLOTS such tasks at once). The inner SEND or SEND_WORK then runs through
 * the ordinary handler under the FORWARDED's request id, its OK or ERROR sealed into SEALED by
 * peer_reply (peer.c) when it is ready: an OK only once the envelope is durable. What does not
 * open gets an unsealed `bad request`, which tells the peer nothing it does not know. A
 * BUNDLED (5.12), in a seal of a bundle item's size only, runs through the handler too, with
 * the seal's E (peer->bundle_e), answered unsealed.
 *
 * FORWARD, for a connection that manages a mailbox here: checked (5.11 steps 1 and 2), then
 * handed to the relay's carrier (fwdport.h, outconn.c), whose answer becomes SEALED or ERROR
 * `unreachable`; a FORWARD for this relay's own key is run as a FORWARDED. Nothing here logs
 * a destination, an address or a size.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "command_layer.h"
#include "commands.h"
#include "forward.h"
#include "fwdport.h"
#include "port.h"
#include "relay.h"

/* One FORWARDED being opened. INNER and the reply key are wiped before it is freed. */
struct open_task {
	struct conn_task task;
	struct peer *peer;
	struct relay *relay;
	uint32_t request_id;
	int rc; /* forward_open's, or CAIRN_EBADREQ for an inner command of the wrong kind */
	int kind; /* the inner command's type, once opened */
	const uint8_t *command;
	size_t command_len, sealed_len;
	uint8_t k_rep[CAIRN_KEY_LEN];
	uint8_t inner[FORWARD_INNER_MAX];
	uint8_t sealed[]; /* sealed_len bytes */
};

static void open_run(struct conn_task *t)
{
	struct open_task *o = (struct open_task *)t;
	o->rc = forward_open(o->relay->private_key, o->relay->public_key, o->sealed, o->sealed_len,
	                     o->inner, &o->command, &o->command_len, o->k_rep);
	if (o->rc == 0) {
		o->kind = forward_sealed_kind(o->command, o->command_len, o->sealed_len);
		if (o->kind < 0)
			o->rc = CAIRN_EBADREQ;
	}
}

/* The ERROR a sound command with a faulty argument gets, as the channel answers it directly
 * (proto/channel.c): `too big` for a SEND's envelope over the limit, else `bad request`. */
static int faulty_code(const struct cairn_msg *m)
{
	if ((m->type == CAIRN_CMD_SEND || m->type == CAIRN_CMD_BUNDLED) &&
	    m->envelope_len > CAIRN_ENVELOPE_MAX)
		return CAIRN_ETOOBIG;
	return CAIRN_EBADREQ;
}

/* Runs the opened BUNDLED of O for its peer, answered unsealed. */
static void run_bundled(struct open_task *o)
{
	struct cairn_msg m;
	int have_id = 0;
	int rc = cairn_msg_decode(o->command, o->command_len, NULL, &m, &have_id);
	m.request_id = o->request_id;
	if (rc != 0) {
		peer_reply_error(o->peer, o->request_id, faulty_code(&m));
		return;
	}
	/* Through the handler, with the seal's E (its first 32 bytes), as any command runs. */
	o->peer->bundle_e = o->sealed;
	commands_handler.command(o->peer, &m);
	o->peer->bundle_e = NULL;
}

/* Runs the opened command of O for its peer, its reply to be sealed with O's key. */
static void run_inner(struct open_task *o)
{
	struct peer *p = o->peer;
	if (o->rc != 0) {
		peer_reply_error(p, o->request_id, CAIRN_EBADREQ);
		return;
	}
	if (o->kind == CAIRN_CMD_BUNDLED) {
		/* Answered unsealed, to the courier (5.12). */
		run_bundled(o);
		return;
	}
	int rc = peer_seal_next(p, o->request_id, o->k_rep);
	if (rc != 0) {
		/* Unsealed: the peer reused a waiting request id, or memory ran out. */
		peer_reply_error(p, o->request_id,
		                 rc == CAIRN_ELIMIT ? CAIRN_ELIMIT : CAIRN_ESTORAGE);
		return;
	}
	struct cairn_msg m;
	int have_id = 0;
	rc = cairn_msg_decode(o->command, o->command_len, NULL, &m, &have_id);
	m.request_id = o->request_id; /* the inner request id (0 by the spec) is not used */
	if (rc != 0)
		peer_reply_error(p, o->request_id, faulty_code(&m)); /* sealed */
	else
		commands_handler.command(p, &m);
}

static void open_done(struct conn_task *t, bool closed)
{
	struct open_task *o = (struct open_task *)t;
	if (!closed)
		run_inner(o);
	sodium_memzero(o->inner, sizeof(o->inner));
	sodium_memzero(o->k_rep, sizeof(o->k_rep));
	free(o);
}

/* Opens SEALED (LEN bytes) for P's command REQUEST_ID off the loop thread, then runs it. */
static void open_and_run(struct peer *p, uint32_t request_id, const uint8_t *sealed, size_t len)
{
	struct open_task *o = malloc(sizeof(*o) + len);
	if (o == NULL) {
		peer_reply_error(p, request_id, CAIRN_ESTORAGE);
		return;
	}
	memset(o, 0, sizeof(*o));
	o->task.run = open_run;
	o->task.done = open_done;
	o->peer = p;
	o->relay = p->relay;
	o->request_id = request_id;
	o->sealed_len = len;
	memcpy(o->sealed, sealed, len);
	p->relay->port->defer(p->conn, &o->task);
}

void forwarded_command(struct peer *p, const struct cairn_msg *m)
{
	/* The codec bounds the field; the handler does not count on it. */
	if (m->sealed == NULL || m->sealed_len < FORWARD_SEALED_MIN ||
	    m->sealed_len > FORWARD_SEALED_MAX) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return;
	}
	open_and_run(p, m->request_id, m->sealed, m->sealed_len);
}

/* ---- FORWARD --------------------------------------------------------------------------- */

/* One FORWARD waiting for its destination: holds its connection (peer_hold). */
struct forward_wait {
	struct peer *peer;
	uint32_t request_id;
};

static void forward_done(void *arg, int rc, const uint8_t *reply, size_t len)
{
	struct forward_wait *w = arg;
	struct peer *p = w->peer;
	struct relay *relay = p->relay;
	if (rc == 0 && reply != NULL && len >= CODEC_SEALED_REPLY_MIN &&
	    len <= CODEC_SEALED_REPLY_MAX) {
		struct cairn_msg m = {.type = CAIRN_REPLY_SEALED,
		                      .request_id = w->request_id,
		                      .sealed = reply,
		                      .sealed_len = len};
		peer_reply(p, &m);
	} else {
		peer_reply_error(p, w->request_id, CAIRN_EUNREACHABLE);
	}
	p->forwards--;
	relay->forwards--;
	free(w);
	peer_release(p); /* may free P */
}

/* Whether the address text of M's `relay` is a direct address; sets *DEST. */
static bool forward_dest(const struct cairn_msg *m, struct cairn_address *dest)
{
	char text[CAIRN_ADDRESS_MAX + 1];
	if (m->relay == NULL || m->relay_len == 0 || m->relay_len > CAIRN_ADDRESS_MAX ||
	    memchr(m->relay, '\0', m->relay_len) != NULL)
		return false;
	memcpy(text, m->relay, m->relay_len);
	text[m->relay_len] = '\0';
	return cairn_address_parse(text, dest) == 0 && dest->transport == CAIRN_TRANSPORT_DIRECT;
}

void forward_command(struct peer *p, const struct cairn_msg *m)
{
	struct relay *relay = p->relay;
	const struct relay_config *cfg = relay->cfg;
	/* 1: a relay forwards for its own users only. */
	if (!cfg->forward_enabled || p->authed_len == 0) {
		peer_reply_error(p, m->request_id, CAIRN_EDENIED);
		return;
	}
	/* 2: the address, the sealed bytes, the limits. */
	struct cairn_address dest;
	if (!forward_dest(m, &dest) || m->sealed == NULL || m->sealed_len < FORWARD_SEALED_MIN ||
	    m->sealed_len > FORWARD_SEALED_MAX) {
		peer_reply_error(p, m->request_id, CAIRN_EBADREQ);
		return;
	}
	if (sodium_memcmp(dest.key, relay->public_key, CAIRN_KEY_LEN) == 0) {
		/* For this relay itself: a FORWARDED on the same connection (5.11). */
		open_and_run(p, m->request_id, m->sealed, m->sealed_len);
		return;
	}
	if (p->forwards >= cfg->forward_per_connection || relay->forwards >= cfg->forward_max) {
		peer_reply_error(p, m->request_id, CAIRN_ELIMIT);
		return;
	}
	if (relay->carrier == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_EUNREACHABLE);
		return;
	}
	struct forward_wait *w = malloc(sizeof(*w));
	if (w == NULL) {
		peer_reply_error(p, m->request_id, CAIRN_ESTORAGE);
		return;
	}
	w->peer = p;
	w->request_id = m->request_id;
	int rc = relay->carrier->carry(relay->carrier->impl, &dest, m->sealed, m->sealed_len,
	                               forward_done, w);
	if (rc != 0) {
		free(w);
		peer_reply_error(p, m->request_id,
		                 rc == CAIRN_ELIMIT ? CAIRN_ELIMIT : CAIRN_ESTORAGE);
		return;
	}
	p->forwards++;
	relay->forwards++;
	peer_hold(p);
}
