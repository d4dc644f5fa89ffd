/* SPDX-License-Identifier: MIT */
/*
 * Accepting an intake address (docs/PROTOCOL.md 10.1, 10.3, 10.4): what cairn_invite_accept
 * does for a "cairn-intake:" text. The owner's bundle logs are read in the address's order
 * until one holds a usable prekey bundle; the session is agreed against its prekey; the
 * contact is added in state ACCEPTED with the address's intake mailboxes as its peer list
 * (their work bits and bundle logs beside it) and our own fresh mailboxes; and the first
 * message (type 3, a hello naming our mailboxes) is queued and sent with proof of work. The
 * owner answers only once it accepts the request; until then every message is type 3 to the
 * intake mailboxes (outbox.c, engine_intake.c).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "e2e.h"
#include "intake.h"

bool client_is_intake_text(const char *text)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	return strncmp(text, INTAKE_SCHEME, strlen(INTAKE_SCHEME)) == 0;
}

static int parse_intake_text(const char *text, struct intake_address *a)
{
	uint8_t bin[INTAKE_MAX_LEN];
	size_t blen = 0;
	int rc = client_scheme_decode(text, INTAKE_SCHEME, bin, sizeof(bin), &blen);
	if (rc == 0 && intake_parse(bin, blen, a) != 0)
		rc = CAIRN_EINVITE; /* as a bad invite, whatever the parser's reason */
	return rc;
}

/*
 * Reads the bundle logs of A's points in order until one gives a usable bundle: the bundle in
 * *B, and its work bits into BITS at its point (the others stay 0: not read, or no usable
 * bundle there; read again when first sending there). Returns 0; CAIRN_EINVITE when
 * every relay reached had none; else the first relay's connection error (none reached).
 */
static int find_bundle(struct cairn *c, const struct intake_address *a, struct intake_bundle *b,
                       uint8_t bits[CAIRN_MAILBOXES_MAX])
{
	int first_rc = 0;
	bool reached = false;
	for (size_t i = 0; i < a->count; i++) {
		int rc =
		    client_intake_bundle(c, a->point[i].relay, a->identity, a->point[i].log_id, b);
		if (rc == 0) {
			bits[i] = b->work_bits;
			return 0;
		}
		reached |= rc == CAIRN_EINVITE;
		if (first_rc == 0)
			first_rc = rc;
	}
	return reached ? CAIRN_EINVITE : first_rc;
}

/* Our mailboxes for the contact: the relays asked for, or the address's. */
static size_t our_relays(const struct intake_address *a, const char *const *relays, size_t nrelays,
                         const char *ours[CAIRN_RELAYS_MAX])
{
	for (size_t i = 0; i < nrelays; i++)
		ours[i] = relays[i];
	if (nrelays > 0)
		return nrelays;
	for (size_t i = 0; i < a->count; i++)
		ours[i] = a->point[i].relay;
	return a->count;
}

/* The contact as it starts: named, ACCEPTED, the intake mailboxes as its peer list. */
static void contact_init(struct contact *k, const char *name, const struct intake_address *a,
                         const uint8_t bits[CAIRN_MAILBOXES_MAX])
{
	memset(k, 0, sizeof(*k));
	strcpy(k->name, name);
	k->state = CONTACT_ACCEPTED;
	memcpy(k->peer_identity, a->identity, CAIRN_KEY_LEN);
	k->peer.count = a->count;
	for (size_t i = 0; i < a->count; i++) {
		/* No credential: the proof of work stands in for it (5.10). */
		memcpy(k->peer.box[i].sender_id, a->point[i].sender_id, CAIRN_MAILBOX_ID_LEN);
		strcpy(k->peer.box[i].relay, a->point[i].relay);
		memcpy(k->peer_log_id[i], a->point[i].log_id, CAIRN_LOG_ID_LEN);
		k->peer_work_bits[i] = bits[i];
	}
}

/* The session against B's prekey, kept in K (its prefix and EK, the serialized ratchet). */
static int contact_session(struct cairn *c, struct contact *k, const struct intake_bundle *b)
{
	struct ratchet *r = NULL;
	int rc =
	    x3dh_initiate_intake(k->peer_identity, b->prekey, c->identity_sk, NULL, k->prefix, &r);
	if (rc == 0) {
		memcpy(k->ek, k->prefix, CAIRN_KEY_LEN); /* the prefix starts with EK (10.4) */
		rc = client_keep_session(k, r);
	}
	ratchet_free(r);
	return rc;
}

int client_intake_accept(struct cairn *c, const char *text, const char *name,
                         const char *const *relays, size_t nrelays)
{
	int rc = client_accept_args(c, name, relays, nrelays);
	if (rc != 0)
		return rc;
	struct intake_address a;
	struct intake_bundle b;
	struct contact k;
	memset(&k, 0, sizeof(k));
	memset(&b, 0, sizeof(b));
	uint8_t bits[CAIRN_MAILBOXES_MAX] = {0};
	if ((rc = parse_intake_text(text, &a)) != 0)
		return rc;
	const char *ours[CAIRN_RELAYS_MAX];
	size_t nours = our_relays(&a, relays, nrelays, ours);
	contact_init(&k, name, &a, bits);
	/* Checked before anything is read or made. */
	if ((rc = client_accept_check(c, a.identity, name)) != 0 ||
	    (rc = client_accept_mailboxes(c, &k, ours, nours, false)) != 0)
		goto out;
	/* The bundle first: an address that cannot be used now leaves nothing behind, not
	 * even a mailbox on our relays. */
	if ((rc = find_bundle(c, &a, &b, bits)) != 0)
		goto out;
	contact_init(&k, name, &a, bits);
	/* Our own mailboxes, as for an invite. */
	if ((rc = client_accept_mailboxes(c, &k, ours, nours, true)) != 0)
		goto out;
	rc = contact_session(c, &k, &b);
	uint8_t id[APPMSG_ID_LEN];
	client_random(c, id, sizeof(id));
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		/* Written only if the name is still free (another process may have taken it
		 * while we were on the network). The hello is sealed as type 3 (outbox.c). */
		rc = client_add_contact(c, &k, 0);
		if (rc == 0)
			rc =
			    client_queue_message(c, &k, APPMSG_HELLO, NULL, 0, id, client_now_s(c));
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
	}
	if (rc != 0) {
		client_drop_mailboxes(c, &k);
		goto out;
	}
	/* Added: the first message goes now, with its work, or with the next sync. */
	rc = client_send_now(c, id);
out:
	sodium_memzero(&a, sizeof(a));
	sodium_memzero(&b, sizeof(b));
	contact_wipe(&k);
	return rc;
}
