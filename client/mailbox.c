/* SPDX-License-Identifier: MIT */
/*
 * Our mailboxes on relays: creating one (a fresh recipient key, secured with a fresh sender
 * credential), deleting one, and moving a contact out of the mailboxes our invite named
 * (docs/PROTOCOL.md section 8.10): fresh mailboxes on the same relays, announced in a
 * mailboxes message; sync.c deletes the old ones once the contact writes to the new ones.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client.h"

void client_mailbox_keys(struct my_mailbox *mb, uint8_t pk[crypto_sign_PUBLICKEYBYTES])
{
	memset(mb, 0, sizeof(*mb));
	crypto_sign_keypair(pk, mb->sign_sk);
}

void client_mailbox_created(struct cairn *c, struct my_mailbox *mb, const struct cairn_msg *reply,
                            uint8_t digest[CAIRN_CREDENTIAL_LEN])
{
	memcpy(mb->recipient_id, reply->recipient_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(mb->sender_id, reply->sender_id, CAIRN_MAILBOX_ID_LEN);
	client_random(c, mb->credential, CAIRN_CREDENTIAL_LEN);
	crypto_generichash(digest, CAIRN_CREDENTIAL_LEN, mb->credential, CAIRN_CREDENTIAL_LEN,
	                   mb->sender_id, CAIRN_MAILBOX_ID_LEN);
}

int client_create_mailbox(struct cairn *c, const char *relay, struct my_mailbox *mb)
{
	memset(mb, 0, sizeof(*mb));
	if (strlen(relay) >= sizeof(mb->relay))
		return CAIRN_EADDRESS;
	struct cnet *n = NULL;
	int rc = client_connect(c, relay, &n);
	if (rc != 0)
		return rc;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	client_mailbox_keys(mb, pk);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .recipient_key = pk}, reply;
	rc = client_call(c, n, &m, &reply);
	if (rc == 0 && reply.type != CAIRN_REPLY_CREATED)
		rc = CAIRN_ESTATE;
	if (rc == 0) {
		uint8_t digest[CAIRN_CREDENTIAL_LEN];
		client_mailbox_created(c, mb, &reply, digest);
		struct cairn_msg sec = {.type = CAIRN_CMD_SECURE,
		                        .recipient_id = mb->recipient_id,
		                        .credential = digest};
		rc = client_call(c, n, &sec, &reply);
	}
	cnet_close(n);
	if (rc == 0)
		strcpy(mb->relay, relay);
	else
		sodium_memzero(mb, sizeof(*mb));
	return rc;
}

int client_delete_mailbox(struct cairn *c, const struct my_mailbox *mb)
{
	struct cnet *n = NULL;
	int rc = client_connect(c, mb->relay, &n);
	if (rc != 0)
		return rc;
	uint8_t sig[64];
	client_auth_signature(n, mb, sig);
	struct cairn_msg auth = {.type = CAIRN_CMD_AUTH,
	                         .recipient_id = mb->recipient_id,
	                         .signature = sig},
	                 reply;
	rc = client_call(c, n, &auth, &reply);
	struct cairn_msg del = {.type = CAIRN_CMD_DELETE, .recipient_id = mb->recipient_id};
	if (rc == 0)
		rc = client_call(c, n, &del, &reply);
	cnet_close(n);
	return rc;
}

/* ---- moving out of the invite mailboxes ---------------------------------------------- */

struct names {
	uint8_t (*id)[RECORD_ID_LEN];
	size_t n, cap;
	int rc;
};

static int collect_wanted(void *vctx, const uint8_t *v, size_t vlen)
{
	struct names *x = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0; /* a damaged record must not stop the others */
	if (k.move == MOVE_WANTED && k.state == CONTACT_ESTABLISHED) {
		if (x->n == x->cap) {
			size_t ncap = x->cap ? 2 * x->cap : 8;
			void *p = realloc(x->id, ncap * sizeof(*x->id));
			if (p == NULL) {
				x->rc = CAIRN_ENOMEM;
				contact_wipe(&k);
				return 1;
			}
			x->id = p;
			x->cap = ncap;
		}
		memcpy(x->id[x->n++], k.id, RECORD_ID_LEN);
	}
	contact_wipe(&k);
	return 0;
}

int client_move_commit(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                       const struct my_mailbox *fresh, size_t nfresh)
{
	struct contact k;
	uint8_t data[APPMSG_MAILBOXES_MAX];
	size_t dlen = 0;
	int rc = nfresh > 0 ? cstate_begin(c->st) : CAIRN_ESTATE; /* nothing to move out of */
	if (rc != 0)
		return rc == CAIRN_ESTATE ? 0 : rc;
	rc = client_load_contact_id(c, id, &k);
	if (rc == 0 && (k.move != MOVE_WANTED || k.state != CONTACT_ESTABLISHED))
		rc = CAIRN_ESTATE; /* another process moved it meanwhile */
	if (rc == 0) {
		for (size_t i = 0; i < k.nmine; i++)
			if (k.mine[i].flags & MAILBOX_INVITE)
				k.mine[i].flags |= MAILBOX_RETIRED;
		for (size_t i = 0; i < nfresh && k.nmine < CONTACT_MINE_MAX; i++)
			k.mine[k.nmine++] = fresh[i];
		k.my_serial++;
		k.move = MOVE_SENT;
		struct mailbox_list now;
		contact_current_mailboxes(&k, &now);
		rc = appmsg_mailboxes_encode(k.my_serial, &now, data, sizeof(data), &dlen);
		sodium_memzero(&now, sizeof(now));
	}
	uint8_t msg_id[APPMSG_ID_LEN];
	client_random(c, msg_id, sizeof(msg_id));
	if (rc == 0)
		rc = client_queue_message(c, &k, APPMSG_MAILBOXES, data, dlen, msg_id,
		                          client_now_s(c));
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	contact_wipe(&k);
	sodium_memzero(data, sizeof(data));
	if (rc == 0)
		return 1;
	return rc == CAIRN_ESTATE ? 0 : rc;
}

/*
 * Creates a fresh mailbox beside each invite mailbox of contact ID (on connections of its
 * own, waiting for each relay), then commits the move (client_move_commit). Returns 1 when
 * queued, 0 when not (a relay did not answer: the next sync tries again), or a negative code.
 */
static int move_one(struct cairn *c, const uint8_t id[RECORD_ID_LEN])
{
	struct contact k;
	struct my_mailbox fresh[CAIRN_MAILBOXES_MAX];
	size_t nfresh = 0;
	int rc = client_load_contact_id(c, id, &k);
	if (rc != 0)
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	/* Network first, outside any transaction: every relay of the invite, or none. */
	for (size_t i = 0; i < k.nmine && rc == 0; i++) {
		if ((k.mine[i].flags & (MAILBOX_INVITE | MAILBOX_RETIRED)) != MAILBOX_INVITE)
			continue;
		if (nfresh == CAIRN_MAILBOXES_MAX || k.nmine + nfresh >= CONTACT_MINE_MAX)
			rc = CAIRN_ECORRUPT;
		else
			rc = client_create_mailbox(c, k.mine[i].relay, &fresh[nfresh]);
		if (rc == 0)
			nfresh++;
	}
	contact_wipe(&k);
	/* A relay that did not answer (any network error) is tried again at the next sync. */
	int net_failed = rc != 0 && rc != CAIRN_ECORRUPT;
	int queued = rc == 0 ? client_move_commit(c, id, fresh, nfresh) : 0;
	/* Mailboxes made for a move that did not happen would only sit on their relays. */
	for (size_t i = 0; queued != 1 && i < nfresh; i++) {
		int gone = client_delete_mailbox(c, &fresh[i]);
		(void)gone; /* best effort: one left behind sits empty on its relay */
	}
	sodium_memzero(fresh, sizeof(fresh));
	if (queued == 1)
		return 1;
	return net_failed ? 0 : rc != 0 ? rc : queued;
}

int client_moves_wanted(struct cairn *c, uint8_t (**ids)[RECORD_ID_LEN], size_t *n)
{
	struct names x = {0};
	int rc = cstate_list(c->st, REC_CONTACT, collect_wanted, &x);
	if (rc >= 0)
		rc = x.rc;
	if (rc < 0) {
		free(x.id);
		x.id = NULL;
		x.n = 0;
	}
	*ids = x.id;
	*n = x.n;
	return rc < 0 ? rc : 0;
}

int client_move_contacts(struct cairn *c, bool *queued)
{
	*queued = false;
	uint8_t(*ids)[RECORD_ID_LEN] = NULL;
	size_t n = 0;
	int rc = client_moves_wanted(c, &ids, &n);
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		int r = move_one(c, ids[i]);
		if (r == 1)
			*queued = true;
		else if (r < 0)
			rc = r;
	}
	free(ids);
	return rc < 0 ? rc : 0;
}
