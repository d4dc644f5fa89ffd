/* SPDX-License-Identifier: MIT */
/*
 * libcairn's public API (include/cairn/cairn.h): the identity, sending (the outbox), reading
 * and safety numbers; invites are in invites.c. Network sessions live in sync.c; contacts,
 * conversations, names and renaming in contacts.c; the upgrade of older homes, run by cairn_open,
 * in upgrade.c.
 *
 * Every change that must survive a crash as a whole (a ratchet step and the envelope it
 * sealed, a received message and the ratchet step that opened it) is one state transaction.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client.h"
#include "e2e.h"
#include "group.h"
#include "logio.h"
#include "invite.h"
#include "safety.h"

#define SELF_KEY      "self"

/* ---- open and close ------------------------------------------------------------------ */

int cairn_init(const char *home, const char *passphrase)
{
	return cairn_init_kdf(home, passphrase, CAIRN_KDF_MODERATE);
}

/* Gives the new, empty store ST what a new home holds: a fresh identity and the data model it
 * is kept in, together, in one transaction. */
static int home_populate(struct cstate *st)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(pk, sk);
	const uint8_t model = RECORD_MODEL;
	int rc = cstate_begin(st);
	if (rc == 0 &&
	    (rc = cstate_put(st, REC_IDENTITY, SELF_KEY, strlen(SELF_KEY), sk, sizeof(sk))) == 0)
		rc = cstate_put(st, REC_META, RECORD_META_KEY, strlen(RECORD_META_KEY), &model, 1);
	if (rc == 0)
		rc = cstate_commit(st);
	else
		cstate_rollback(st);
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

int cairn_init_kdf(const char *home, const char *passphrase, enum cairn_kdf kdf)
{
	if (home == NULL || passphrase == NULL ||
	    (kdf != CAIRN_KDF_MODERATE && kdf != CAIRN_KDF_INTERACTIVE))
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_ECRYPTO;
	struct cstate *st = NULL;
	int rc = cstate_create(
	    home, passphrase,
	    kdf == CAIRN_KDF_INTERACTIVE ? CSTATE_KDF_INTERACTIVE : CSTATE_KDF_MODERATE, &st);
	if (rc != 0)
		return rc;
	rc = home_populate(st);
	cstate_close(st);
	return rc;
}

int cairn_open(const char *home, const char *passphrase, struct cairn **out)
{
	*out = NULL;
	if (home == NULL || passphrase == NULL)
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_ECRYPTO;
	struct cairn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CAIRN_ENOMEM;
	c->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	c->env = *env_default();
	if ((c->home = strdup(home)) == NULL) {
		free(c);
		return CAIRN_ENOMEM;
	}
	int rc = cstate_open(home, passphrase, &c->st);
	/* The duress passphrase: the home was wiped and this store is new, so it gets what
	 * cairn_init gives one, and then opens as any other. */
	if (rc == 0 && cstate_fresh(c->st))
		rc = home_populate(c->st);
	uint8_t *sk = NULL;
	size_t sklen = 0;
	if (rc == 0) {
		rc = cstate_get(c->st, REC_IDENTITY, SELF_KEY, strlen(SELF_KEY), &sk, &sklen);
		if (rc == CAIRN_ENOTFOUND)
			rc = CAIRN_ECORRUPT; /* a store without an identity is not ours */
	}
	if (rc == 0 && sklen != X3DH_IDENTITY_SK_LEN)
		rc = CAIRN_ECORRUPT;
	if (rc == 0 && (c->identity_sk = sodium_malloc(X3DH_IDENTITY_SK_LEN)) == NULL)
		rc = CAIRN_ENOMEM;
	if (rc == 0) {
		memcpy(c->identity_sk, sk, X3DH_IDENTITY_SK_LEN);
		crypto_sign_ed25519_sk_to_pk(c->identity_pk, c->identity_sk);
	}
	cstate_free_value(sk, sklen);
	/* A home written before ids is rewritten now, whole or not at all. */
	if (rc == 0)
		rc = client_upgrade(c);
	/* Messages whose time came while the home was closed go before anything is shown
	 * (8.11). A sweep that fails here (another process holding the store too long) does not
	 * keep the home shut: cairn_read sweeps again, and refuses to show anything if it fails. */
	if (rc == 0) {
		int expired = client_expire(c);
		(void)expired;
	}
	/* Group logs ride along with every sync, listen and engine (group_io.h). */
	client_set_group_handler(c, &group_logio_handler, NULL);
	if (rc != 0) {
		cairn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int cairn_wipe(const char *home)
{
	if (home == NULL || home[0] == '\0')
		return CAIRN_EINVAL;
	return cstate_wipe(home);
}

int cairn_duress_set(struct cairn *c, const char *passphrase)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	return cstate_duress_set(c->st, passphrase);
}

int cairn_duress_clear(struct cairn *c)
{
	if (c == NULL)
		return CAIRN_EINVAL;
	return cstate_duress_clear(c->st);
}

void cairn_close(struct cairn *c)
{
	if (c == NULL)
		return;
	cairn_engine_stop(c);
	client_pt_stop(&c->pt);
	free(c->home);
	cstate_close(c->st);
	if (c->identity_sk != NULL)
		sodium_free(c->identity_sk);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

int cairn_set_socks(struct cairn *c, const char *hostport)
{
	if (hostport == NULL) {
		c->socks[0] = '\0';
		return 0;
	}
	if (strlen(hostport) >= sizeof(c->socks) || strchr(hostport, ':') == NULL)
		return CAIRN_EINVAL;
	strcpy(c->socks, hostport);
	return 0;
}

const char *cairn_transport_error(const struct cairn *c)
{
	return c->pt.error[0] != '\0' ? c->pt.error : NULL;
}

void client_set_env(struct cairn *c, const struct client_env *env)
{
	c->env = *env;
}

void cairn_set_private_routing(struct cairn *c, int on)
{
	c->private_routing = on != 0;
}

void cairn_set_timeout(struct cairn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
}

void cairn_free(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

/* ---- sending and reading ------------------------------------------------------------- */

int cairn_queue(struct cairn *c, const char *name, const uint8_t *text, size_t len,
                uint8_t id_out[CAIRN_MESSAGE_ID_LEN])
{
	if (c == NULL || name == NULL)
		return CAIRN_EINVAL;
	if (len > CAIRN_MESSAGE_MAX || (len > 0 && text == NULL))
		return CAIRN_ETOOBIG;
	uint8_t id[APPMSG_ID_LEN];
	int rc = client_queue_appmsg(c, name, APPMSG_TEXT, text, len, 0, id);
	if (rc == 0 && id_out != NULL)
		memcpy(id_out, id, APPMSG_ID_LEN);
	return rc;
}

int client_queue_appmsg(struct cairn *c, const char *name, uint8_t kind, const uint8_t *text,
                        size_t len, int64_t sent_at, uint8_t id[APPMSG_ID_LEN])
{
	client_random(c, id, APPMSG_ID_LEN);
	int64_t now = sent_at != 0 ? sent_at : client_now_s(c);
	/* In the outbox, with the ratchet step and our copy of the message, before any send.
	 * The contact is read inside the transaction: BEGIN IMMEDIATE holds the write lock, so
	 * no other process (a second send, a listen storing a delivery) can step the same
	 * ratchet between our read and our write. Outside it, two sends would seal two
	 * messages with one message key. */
	struct contact k;
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = client_load_contact(c, name, &k);
	if (rc == CAIRN_ENOTFOUND) {
		/* Not a contact: a group of that name, sealed into its log (9.4). */
		cstate_rollback(c->st);
		uint8_t gid[GROUP_ID_LEN];
		rc = client_group_find(c, name, gid);
		if (rc == 0)
			rc = group_send_appmsg(c, gid, kind, text, len, sent_at, id);
		if (rc == 0)
			client_engine_wake(c);
		return rc;
	}
	if (rc == 0)
		rc = client_queue_message(c, &k, kind, text, len, id, now);
	/* 1: stored; a negative code is the store's own, passed on as it is. */
	if (rc == 0 && (rc = client_store_appmsg(c, &k, 1, kind, id, now, 0, text, len)) > 0)
		rc = 0;
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	contact_wipe(&k);
	if (rc == 0)
		client_engine_wake(c);
	return rc;
}

int cairn_send(struct cairn *c, const char *name, const uint8_t *text, size_t len,
               uint8_t id_out[CAIRN_MESSAGE_ID_LEN])
{
	if (c != NULL && c->engine != NULL)
		return CAIRN_ESTATE; /* the engine owns the relays: cairn_queue */
	uint8_t id[APPMSG_ID_LEN];
	int rc = cairn_queue(c, name, text, len, id);
	if (rc != 0)
		return rc;
	if (id_out != NULL)
		memcpy(id_out, id, APPMSG_ID_LEN);
	return client_send_queued(c, name, id);
}

int client_send_group_out(struct cairn *c)
{
	/* The group outbox, sent (with whatever else waits there) by one pass of the log
	 * transport, which also reads what the groups' logs hold. */
	struct logio_result lr;
	unsigned n = 0;
	int rc = logio_sync(c, c->group_h != NULL ? c->group_h : &group_logio_handler, c->group_ctx,
	                    &lr);
	if (rc == 0)
		rc = group_out_count(c, &n);
	return rc == 0 && n > 0 ? CAIRN_ECONNECT : rc;
}

int client_send_queued(struct cairn *c, const char *name, const uint8_t id[APPMSG_ID_LEN])
{
	uint8_t gid[GROUP_ID_LEN];
	if (client_group_find(c, name, gid) == 0)
		return client_send_group_out(c);
	/* Sent means accepted by any one relay. */
	return client_send_now(c, id);
}

struct read_ctx {
	struct cairn *c;
	const char *name; /* shown as the conversation's contact */
	bool group;       /* a group's conversation: each message names its sender */
	const uint8_t *conv;
	cairn_message_cb cb;
	void *ctx;
	int rc;
};

static int read_one(void *vctx, const uint8_t *v, size_t vlen)
{
	struct read_ctx *r = vctx;
	struct stored_message m;
	if (message_parse(v, vlen, &m) != 0 || sodium_memcmp(m.conv, r->conv, RECORD_ID_LEN) != 0) {
		r->rc = CAIRN_ECORRUPT;
		return 1;
	}
	struct cairn_message out = {.contact = r->name,
	                            .outgoing = m.outgoing,
	                            .text = m.text,
	                            .len = m.len,
	                            .sent_at = m.sent_at,
	                            .received_at = m.received_at};
	memcpy(out.id, m.id, sizeof(out.id));
	client_timer_message(r->c, &m, &out);
	char who[CAIRN_NAME_MAX + 1];
	if (r->group && !m.outgoing) {
		client_group_sender_name(r->c, m.sender, who);
		out.sender = who;
	}
	return r->cb(r->ctx, &out);
}

/* The conversation of group NAME into CONV. */
static int group_conv(struct cairn *c, const char *name, uint8_t conv[RECORD_ID_LEN])
{
	uint8_t gid[GROUP_ID_LEN];
	struct group_state *g = NULL;
	int rc = client_group_find(c, name, gid);
	if (rc == 0)
		rc = group_load(c, gid, &g);
	if (rc == 0)
		memcpy(conv, g->conv, RECORD_ID_LEN);
	group_free(g);
	return rc;
}

/*
 * Shows the conversation, then marks what was unread as read. Only the conversation's own
 * messages are read (one store scope). They are listed outside any transaction (the callback
 * may block on a slow terminal; a write lock held meanwhile would stall every send and
 * delivery of other processes). The unread count is then changed in a transaction of its own
 * on the conversation as it is by then; the contact is never written here: a copy loaded
 * before would undo what another process did meanwhile, a ratchet step above all, and the next
 * send would reuse a message key. Messages stored during the listing stay unread even if the
 * listing showed them: counted twice rather than never.
 */
int cairn_read(struct cairn *c, const char *name, cairn_message_cb cb, void *ctx)
{
	struct contact k;
	struct conversation v;
	/* Nothing whose time has come is shown (8.11), whatever the clock did since open. */
	int rc = client_expire(c);
	if (rc < 0)
		return rc;
	rc = client_load_contact(c, name, &k);
	uint8_t conv[RECORD_ID_LEN];
	char label[CAIRN_NAME_MAX + 1];
	memcpy(conv, k.conv, RECORD_ID_LEN);
	strcpy(label, k.name);
	contact_wipe(&k);
	bool group = false;
	if (rc == CAIRN_ENOTFOUND && (rc = group_conv(c, name, conv)) == 0) {
		group = true;
		snprintf(label, sizeof(label), "%s", name);
	}
	if (rc != 0)
		return rc;
	rc = client_load_conversation(c, conv, &v);
	unsigned seen = v.unread;
	conversation_wipe(&v);
	if (rc != 0)
		return rc;
	struct read_ctx r = {.c = c, .name = label, .group = group, .conv = conv, .cb = cb, .ctx = ctx};
	rc = cstate_list_scope(c->st, REC_MESSAGE, conv, RECORD_ID_LEN, read_one, &r);
	if (rc >= 0 && r.rc != 0)
		rc = r.rc;
	if (rc < 0 || seen == 0)
		return rc < 0 ? rc : 0;
	if ((rc = cstate_begin(c->st)) != 0)
		return rc;
	rc = client_load_conversation(c, conv, &v);
	if (rc == 0 && v.unread > 0) {
		v.unread = v.unread > seen ? v.unread - seen : 0;
		rc = client_store_conversation(c, &v);
	}
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	conversation_wipe(&v);
	/* Gone meanwhile: there is nothing left to mark. */
	return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

int cairn_safety_number(struct cairn *c, const char *name, char out[CAIRN_SAFETY_NUMBER_LEN + 1])
{
	struct contact k;
	int rc = client_load_contact(c, name, &k);
	if (rc != 0)
		return rc;
	if (k.state == CONTACT_INVITED) {
		contact_wipe(&k);
		return CAIRN_ESTATE; /* their identity is not known until they accept */
	}
	_Static_assert(SAFETY_TEXT_LEN == CAIRN_SAFETY_NUMBER_LEN + 1, "safety number length");
	safety_number(c->identity_pk, k.peer_identity, out);
	contact_wipe(&k);
	return 0;
}
