/* SPDX-License-Identifier: MIT */
/*
 * libcairn's public API (include/cairn/cairn.h): the identity, invites, sending (the outbox),
 * reading and safety numbers. Network sessions live in sync.c; contacts, conversations, names
 * and renaming in contacts.c; the upgrade of older homes, run by cairn_open, in upgrade.c.
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

#define INVITE_SCHEME "cairn-invite:"
#define SELF_KEY      "self"

/* ---- open and close ------------------------------------------------------------------ */

int cairn_init(const char *home, const char *passphrase)
{
	return cairn_init_kdf(home, passphrase, CAIRN_KDF_MODERATE);
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
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(pk, sk);
	/* The identity and the data model it is kept in, together. */
	const uint8_t model = RECORD_MODEL;
	rc = cstate_begin(st);
	if (rc == 0 &&
	    (rc = cstate_put(st, REC_IDENTITY, SELF_KEY, strlen(SELF_KEY), sk, sizeof(sk))) == 0)
		rc = cstate_put(st, REC_META, RECORD_META_KEY, strlen(RECORD_META_KEY), &model, 1);
	if (rc == 0)
		rc = cstate_commit(st);
	else
		cstate_rollback(st);
	sodium_memzero(sk, sizeof(sk));
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
	int rc = cstate_open(home, passphrase, &c->st);
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
	/* Group logs ride along with every sync, listen and engine (group_io.h). */
	client_set_group_handler(c, &group_logio_handler, NULL);
	if (rc != 0) {
		cairn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cairn_close(struct cairn *c)
{
	if (c == NULL)
		return;
	cairn_engine_stop(c);
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

void client_set_env(struct cairn *c, const struct client_env *env)
{
	c->env = *env;
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

/* ---- invites ------------------------------------------------------------------------- */

/*
 * Checks a list of relay addresses given for our own mailboxes: 1..CAIRN_RELAYS_MAX of them,
 * each an address (CAIRN_EADDRESS), no relay twice (CAIRN_EINVAL). The same relay under two
 * host names is one relay: the key decides.
 */
static int check_relays(const char *const *relays, size_t n)
{
	struct cairn_address a[CAIRN_RELAYS_MAX];
	if (relays == NULL || n == 0 || n > CAIRN_RELAYS_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (relays[i] == NULL || cairn_address_parse(relays[i], &a[i]) != 0)
			return CAIRN_EADDRESS;
		for (size_t j = 0; j < i; j++)
			if (memcmp(a[i].key, a[j].key, CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
	}
	return 0;
}

/* Deletes the mailboxes of K again, best effort: made for a contact that is not kept. */
static void drop_mailboxes(struct cairn *c, const struct contact *k)
{
	for (size_t i = 0; i < k->nmine; i++) {
		int rc = client_delete_mailbox(c, &k->mine[i]);
		(void)rc; /* one left behind sits empty on its relay */
	}
}

int client_invite_make(struct cairn *c, const char *const *relays, size_t nrelays, const char *name,
                       const struct group_invite *grp, char **invite)
{
	*invite = NULL;
	_Static_assert(CAIRN_RELAYS_MAX == CAIRN_MAILBOXES_MAX, "one mailbox per relay");
	int rc = check_relays(relays, nrelays);
	if (rc != 0)
		return rc;
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	/* A contact's or a group's (one namespace, names.c): refused before any mailbox is
	 * made; client_add_contact checks again in its transaction. */
	struct contact k;
	struct name_entry taken;
	rc = client_name_lookup(c, name, &taken);
	if (rc == 0)
		return CAIRN_EEXIST;
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	memset(&k, 0, sizeof(k));
	strcpy(k.name, name);
	k.state = CONTACT_INVITED;
	char *text = NULL;
	rc = 0;
	for (size_t i = 0; i < nrelays && rc == 0; i++) {
		rc = client_create_mailbox(c, relays[i], &k.mine[k.nmine]);
		if (rc == 0)
			k.mine[k.nmine++].flags = MAILBOX_INVITE;
	}
	if (rc != 0)
		goto out;
	x3dh_onetime_generate(&k.onetime, NULL);
	struct group_invite gi;
	memset(&gi, 0, sizeof(gi));
	if (grp != NULL) {
		memcpy(gi.group_id, grp->group_id, GROUP_ID_LEN);
		memcpy(gi.name, grp->name, sizeof(gi.name));
	}
	memcpy(gi.invite.identity, c->identity_pk, CAIRN_KEY_LEN);
	memcpy(gi.invite.onetime, k.onetime.pub, CAIRN_KEY_LEN);
	contact_current_mailboxes(&k, &gi.invite.mailboxes);
	uint8_t bin[INVITE_GROUP_MAX_LEN];
	size_t blen = 0;
	rc = grp != NULL ? group_invite_encode(&gi, bin, sizeof(bin), &blen)
	                 : invite_encode(&gi.invite, bin, sizeof(bin), &blen);
	sodium_memzero(&gi, sizeof(gi));
	if (rc != 0)
		goto out;
	size_t tlen = strlen(INVITE_SCHEME) +
	              sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	text = malloc(tlen);
	if (text == NULL) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	strcpy(text, INVITE_SCHEME);
	sodium_bin2base64(text + strlen(INVITE_SCHEME), tlen - strlen(INVITE_SCHEME), bin, blen,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(bin, sizeof(bin));
	/* Stored before it is shown: an invite handed out always has its keys kept, and a
	 * group invite its group, with them. */
	rc = cstate_begin(c->st);
	if (rc == 0)
		rc = client_add_contact(c, &k, 0);
	if (rc == 0 && grp != NULL)
		rc = cstate_put(c->st, REC_GROUP_INVITE, k.id, RECORD_ID_LEN, grp->group_id,
		                GROUP_ID_LEN);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	if (rc == 0) {
		*invite = text;
		text = NULL;
	}
out:
	cairn_free(text);
	if (rc != 0)
		drop_mailboxes(c, &k);
	contact_wipe(&k);
	return rc;
}

int cairn_invite_create(struct cairn *c, const char *const *relays, size_t nrelays,
                        const char *name, char **invite)
{
	return client_invite_make(c, relays, nrelays, name, NULL, invite);
}

/* Parses invite text: the scheme, then base64url; surrounding blanks are forgiven. A group
 * invite (version 3, 9.8) sets *GROUP and fills GI's trailer; any other only GI->invite. */
static int parse_invite_text(const char *text, struct group_invite *gi, bool *group)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	size_t n = strlen(text);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
	                 text[n - 1] == '\t'))
		n--;
	size_t sl = strlen(INVITE_SCHEME);
	if (n <= sl || strncmp(text, INVITE_SCHEME, sl) != 0)
		return CAIRN_EINVITE;
	uint8_t bin[INVITE_GROUP_MAX_LEN];
	size_t blen = 0;
	const char *end = NULL;
	int rc = sodium_base642bin(bin, sizeof(bin), text + sl, n - sl, NULL, &blen, &end,
	                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*group = rc == 0 && blen > 0 && bin[0] == INVITE_GROUP_VERSION;
	if (rc == 0 && end == text + n)
		rc = *group ? group_invite_parse(bin, blen, gi)
		            : invite_parse(bin, blen, &gi->invite);
	if (rc != 0 || end != text + n)
		rc = CAIRN_EINVITE;
	sodium_memzero(bin, sizeof(bin));
	return rc;
}

int cairn_invite_accept(struct cairn *c, const char *invite, const char *name,
                        const char *const *relays, size_t nrelays)
{
	if (c->engine != NULL)
		return CAIRN_ESTATE; /* its first message would wait for the engine's relays */
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	int rc = nrelays > 0 ? check_relays(relays, nrelays) : 0;
	if (rc != 0)
		return rc;
	struct group_invite gi;
	const struct invite *inv = &gi.invite;
	bool group = false;
	rc = invite == NULL ? CAIRN_EINVITE : parse_invite_text(invite, &gi, &group);
	if (rc == 0 && group)
		rc = group_invite_acceptable(c, &gi);
	if (rc != 0) {
		sodium_memzero(&gi, sizeof(gi));
		return rc;
	}
	struct contact k;
	memset(&k, 0, sizeof(k));
	struct ratchet *r = NULL;
	uint8_t reply[APPMSG_REPLY_MAX];
	size_t reply_len = 0;
	/* Our mailboxes: the relays asked for, or the invite's. */
	const char *ours[CAIRN_RELAYS_MAX];
	size_t nours = nrelays;
	for (size_t i = 0; i < nrelays; i++)
		ours[i] = relays[i];
	for (size_t i = 0; nrelays == 0 && i < inv->mailboxes.count; i++)
		ours[nours++] = inv->mailboxes.box[i].relay;
	if (sodium_memcmp(inv->identity, c->identity_pk, CAIRN_KEY_LEN) == 0) {
		rc = CAIRN_EINVITE; /* our own invite */
		goto out;
	}
	struct name_entry taken;
	rc = client_name_lookup(c, name, &taken); /* a contact's or a group's */
	if (rc != CAIRN_ENOTFOUND) {
		rc = rc == 0 ? CAIRN_EEXIST : rc;
		goto out;
	}
	memset(&k, 0, sizeof(k));
	strcpy(k.name, name);
	k.state = CONTACT_ACCEPTED;
	memcpy(k.peer_identity, inv->identity, CAIRN_KEY_LEN);
	k.peer = inv->mailboxes;
	/* Every first message names all our mailboxes: they must fit its reply. */
	for (size_t i = 0; i < nours; i++)
		strcpy(k.mine[i].relay, ours[i]);
	k.nmine = (uint8_t)nours;
	rc = client_build_reply(&k, reply, sizeof(reply), &reply_len);
	k.nmine = 0;
	if (rc != 0)
		goto out;
	/* Our own mailboxes for this contact come first: the first message names them. A relay
	 * that does not answer is left out; one that does is enough. */
	int first_rc = 0;
	for (size_t i = 0; i < nours; i++) {
		int one = client_create_mailbox(c, ours[i], &k.mine[k.nmine]);
		if (one == 0)
			k.nmine++;
		else if (first_rc == 0)
			first_rc = one;
	}
	if (k.nmine == 0) {
		rc = first_rc;
		goto out;
	}
	rc = x3dh_initiate(inv->identity, inv->onetime, c->identity_sk, NULL, k.prefix, &r);
	if (rc == 0) {
		k.ratchet_len = ratchet_serialized_len(r);
		k.ratchet = malloc(k.ratchet_len);
		rc = k.ratchet ? ratchet_serialize(r, k.ratchet, k.ratchet_len, &k.ratchet_len)
		               : CAIRN_ENOMEM;
	}
	uint8_t id[APPMSG_ID_LEN], join[GROUP_JOIN_LEN];
	client_random(c, id, sizeof(id));
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		/* Written only if the name is still free: the check above was before the
		 * network, and another process may have taken the name meanwhile. A group
		 * invite's first message carries a join, with fresh keys kept for the welcome,
		 * instead of the hello (9.8). */
		rc = client_add_contact(c, &k, 0);
		if (rc == 0 && group)
			rc = group_join_make(c, gi.group_id, join);
		if (rc == 0)
			rc = group ? client_queue_message(c, &k, APPMSG_GROUP_JOIN, join,
			                                  sizeof(join), id, client_now_s(c))
			           : client_queue_message(c, &k, APPMSG_HELLO, NULL, 0, id,
			                                  client_now_s(c));
		sodium_memzero(join, sizeof(join));
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
	}
	if (rc != 0) {
		drop_mailboxes(c, &k);
		goto out;
	}
	/* The contact exists now; the first message goes out now or with the next sync. */
	struct cairn_sync_result res;
	unsigned left = 0;
	rc = client_run(c, &res, NULL, NULL, NULL, false);
	if (rc == 0)
		rc = client_outbox_count(c, id, &left);
	if (rc == 0 && left > 0)
		rc = CAIRN_ECONNECT; /* as documented: added, first message still queued */
out:
	ratchet_free(r);
	sodium_memzero(reply, sizeof(reply));
	sodium_memzero(&gi, sizeof(gi));
	contact_wipe(&k);
	return rc;
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
	client_random(c, id, sizeof(id));
	int64_t now = client_now_s(c);
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
		rc = client_group_queue(c, name, text, len, id);
		if (rc == 0 && id_out != NULL)
			memcpy(id_out, id, APPMSG_ID_LEN);
		return rc;
	}
	if (rc == 0)
		rc = client_queue_message(c, &k, APPMSG_TEXT, text, len, id, now);
	/* 1: stored; a negative code is the store's own, passed on as it is. */
	if (rc == 0 && (rc = client_store_message(c, &k, 1, id, now, 0, text, len)) > 0)
		rc = 0;
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	contact_wipe(&k);
	if (rc != 0)
		return rc;
	if (id_out != NULL)
		memcpy(id_out, id, APPMSG_ID_LEN);
	client_engine_wake(c);
	return 0;
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
	uint8_t gid[GROUP_ID_LEN];
	if (client_group_find(c, name, gid) == 0) {
		/* A group's message: its log's outbox, sent (with whatever else waits there) by one
		 * pass of the log transport, which also reads what the group's log holds. */
		struct logio_result lr;
		unsigned n = 0;
		rc = logio_sync(c, c->group_h != NULL ? c->group_h : &group_logio_handler,
		                c->group_ctx, &lr);
		if (rc == 0)
			rc = group_out_count(c, &n);
		return rc == 0 && n > 0 ? CAIRN_ECONNECT : rc;
	}
	/* Sent means accepted by any one relay; what else waits in the outbox is not this
	 * message's business. */
	struct cairn_sync_result res;
	unsigned left = 0;
	rc = client_run(c, &res, NULL, NULL, NULL, false);
	if (rc == 0)
		rc = client_outbox_count(c, id, &left);
	if (rc == 0 && left > 0)
		rc = CAIRN_ECONNECT;
	return rc;
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
	int rc = client_load_contact(c, name, &k);
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
