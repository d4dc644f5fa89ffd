/* SPDX-License-Identifier: MIT */
/*
 * The engine's part of writing to intake mailboxes (docs/PROTOCOL.md 10.4, 5.10; the sending
 * itself is engine_outbox.c's send_on): an intake mailbox whose work bits are not known yet
 * (its relay's bundle log was not read when we accepted) has its bundle log read before the
 * first SEND_WORK there, and an ERROR work makes the engine read it again (the owner may have
 * raised the bits) and send the same envelope once more, solved anew; a second ERROR work is
 * a refusal like any other, and the client reports CAIRN_EWORK if no relay takes the entry.
 *
 * Both block the engine's thread, against engine.h's contract that a step never waits:
 * reading a bundle log is a connection and a LOG_READ of its own (up to the client's timeout
 * for a relay that does not answer), and solving the work (send_on) 2^bits hashes, about
 * 0.3 s at the default 20 bits. Neither holds a store transaction meanwhile. It happens only
 * for a contact that has not been accepted yet, at most twice per envelope and relay. A
 * non-blocking design would pipeline the LOG_READ on the sending session (its replies handled
 * like a SEND's) and solve on a worker thread whose result wakes the loop through a pipe,
 * the entry counting as in flight meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_state.h"
#include "intake.h"

void engine_intake_need(struct engine *e, const uint8_t outbox_id[16],
                        const uint8_t contact[RECORD_ID_LEN], size_t peer, const struct session *s)
{
	if (e->nneeds == e->capneeds) {
		size_t ncap = e->capneeds ? 2 * e->capneeds : 8;
		struct bundle_need *p = realloc(e->needs, ncap * sizeof(*p));
		if (p == NULL)
			return; /* the next pass finds it again */
		e->needs = p;
		e->capneeds = ncap;
	}
	struct bundle_need *n = &e->needs[e->nneeds++];
	memcpy(n->outbox_id, outbox_id, 16);
	memcpy(n->contact, contact, RECORD_ID_LEN);
	n->peer = (uint8_t)peer;
	n->session = (size_t)(s - e->s);
}

/*
 * Reads the bundle log of contact ID's peer mailbox PEER again and stores the bits it names.
 * Returns 0 (read and stored, or the contact has moved on: nothing to read), CAIRN_EINVITE (no
 * usable bundle there) or another error (the relay, the store).
 */
static int reread(struct engine *e, const uint8_t id[RECORD_ID_LEN], size_t peer)
{
	struct cairn *c = e->c;
	struct contact k;
	memset(&k, 0, sizeof(k));
	int rc = client_load_contact_id(c, id, &k);
	if (rc != 0 || !contact_peer_intake(&k, peer) || peer >= k.peer.count) {
		contact_wipe(&k);
		return rc == CAIRN_ENOTFOUND ? 0 : rc;
	}
	struct intake_bundle b;
	rc = client_intake_bundle(c, k.peer.box[peer].relay, k.peer_identity, k.peer_log_id[peer],
	                          &b);
	if (rc == 0)
		rc = client_intake_set_bits(c, id, peer, k.peer_log_id[peer], b.work_bits);
	sodium_memzero(&b, sizeof(b));
	contact_wipe(&k);
	return rc;
}

void engine_intake_read(struct engine *e)
{
	for (size_t i = 0; i < e->nneeds; i++) {
		struct bundle_need *n = &e->needs[i];
		/* One read per mailbox: the other entries for it wait for its outcome. */
		size_t j = 0;
		while (j < i && (memcmp(e->needs[j].contact, n->contact, RECORD_ID_LEN) != 0 ||
		                 e->needs[j].peer != n->peer))
			j++;
		int rc = n->rc = j < i ? e->needs[j].rc : reread(e, n->contact, n->peer);
		/* Nowhere to write on that relay now (no bundle, not reachable): the entry
		 * goes to the contact's next mailbox, as after a refusal. */
		if (rc != 0 && n->session < e->n)
			engine_refuse(e, n->outbox_id, &e->s[n->session]);
	}
	e->nneeds = 0;
	e->redispatch = true;
}

bool engine_intake_work_refused(struct engine *e, struct session *s, const struct pending_send *ps)
{
	size_t at = (size_t)(s - e->s);
	if (engine_noted(e->reworked, e->nreworked, ps->outbox_id, at)) {
		/* Refused again with fresh bits: most likely our clock is off (5.10). */
		e->c->work_refused = true;
		return false;
	}
	engine_note(&e->reworked, &e->nreworked, &e->capreworked, ps->outbox_id, at);
	if (!engine_noted(e->reworked, e->nreworked, ps->outbox_id, at))
		return false; /* out of memory: no second try, rather than one without end */
	return reread(e, ps->contact, ps->peer) == 0;
}
