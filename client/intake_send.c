/* SPDX-License-Identifier: MIT */
/*
 * The requester's side of an intake address below the engine (docs/PROTOCOL.md 10.3, 10.4,
 * 5.10): reading a relay's bundle log for the current prekey bundle, keeping the work bits it
 * names in the contact, and solving the proof of work a SEND_WORK carries. Used by accepting
 * an address (intake_accept.c) and by the engine's dispatch (engine_intake.c).
 *
 * Reading a bundle log blocks: a connection of its own (no AUTH, so the relay cannot link the
 * read to our mailboxes there), LOG_READ from 0 without follow, until END.
 */
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "intake.h"
#include "work.h"

/* A bundle log holds one entry per week or per change of bits: far fewer than this. A relay
 * that streams more is cut short, and the best bundle among what came is taken. */
#define INTAKE_READ_ENTRIES_MAX 4096

bool contact_peer_intake(const struct contact *k, size_t i)
{
	return i < CAIRN_MAILBOXES_MAX && !sodium_is_zero(k->peer_log_id[i], CAIRN_LOG_ID_LEN);
}

bool contact_from_intake(const struct contact *k)
{
	for (size_t i = 0; i < k->peer.count && i < CAIRN_MAILBOXES_MAX; i++)
		if (contact_peer_intake(k, i))
			return true;
	return false;
}

/* Whether bundle B, at seq SEQ, is preferred over the best so far (10.3: the largest
 * created, on a tie the latest seq; entries come in seq order, so a tie goes to B). */
static bool better(const struct intake_bundle *b, const struct intake_bundle *best, bool have)
{
	return !have || b->created >= best->created;
}

int client_intake_bundle(struct cairn *c, const char *relay, const uint8_t identity[CAIRN_KEY_LEN],
                         const uint8_t log_id[CAIRN_LOG_ID_LEN], struct intake_bundle *out)
{
	memset(out, 0, sizeof(*out));
	struct cnet *n = NULL;
	int rc = client_connect(c, relay, &n);
	if (rc != 0)
		return rc;
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ, .log_id = log_id, .seq = 0, .follow = 0},
	                 r;
	m.request_id = cnet_next_id(n);
	rc = cnet_queue(n, &m);
	if (rc == 0)
		rc = cnet_flush(n);
	int64_t now = client_now_s(c);
	bool have = false;
	for (unsigned entries = 0; rc == 0 && entries < INTAKE_READ_ENTRIES_MAX;) {
		if ((rc = cnet_recv(n, &r, c->timeout_ms)) != 0 || r.request_id != m.request_id)
			continue;
		if (r.type == CAIRN_REPLY_ERROR)
			rc = cairn_wire_error(r.code); /* denied: no such log (any more) */
		if (rc != 0 || r.type == CAIRN_REPLY_END)
			break;
		if (r.type != CAIRN_REPLY_LOG_ENTRY)
			continue; /* LOG_STATE */
		entries++;
		struct intake_bundle b;
		if (bundle_open(r.envelope, r.envelope_len, identity, log_id, &b) == 0 &&
		    (now < 0 || b.expires > (uint64_t)now) && better(&b, out, have)) {
			*out = b;
			have = true;
		}
	}
	cnet_close(n);
	/* A log that is gone or holds no usable bundle: the address cannot be used on this
	 * relay now (10.3). Anything else (unreachable, timed out) is the network's. */
	if (rc == CAIRN_EDENIED || (rc == 0 && !have))
		rc = CAIRN_EINVITE;
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int client_intake_set_bits(struct cairn *c, const uint8_t id[RECORD_ID_LEN], size_t i,
                           const uint8_t log_id[CAIRN_LOG_ID_LEN], uint8_t bits)
{
	struct contact k;
	memset(&k, 0, sizeof(k));
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = client_load_contact_id(c, id, &k);
	/* Only while that mailbox is still the intake mailbox read: a mailboxes message may
	 * have moved the contact meanwhile. */
	if (rc == 0 && contact_peer_intake(&k, i) && i < k.peer.count &&
	    sodium_memcmp(k.peer_log_id[i], log_id, CAIRN_LOG_ID_LEN) == 0) {
		k.peer_work_bits[i] = bits;
		rc = client_store_contact(c, &k);
	}
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	contact_wipe(&k);
	return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

int client_intake_work(struct cairn *c, const uint8_t sender_id[CAIRN_MAILBOX_ID_LEN],
                       const uint8_t *env, size_t len, unsigned bits, uint8_t work[WORK_LEN])
{
	/* A random first nonce: two envelopes solved in the same second never search the same
	 * nonces, and nothing about the solver shows in the work. */
	uint64_t nonce = 0;
	client_random(c, &nonce, sizeof(nonce));
	int64_t now = client_now_s(c);
	return work_solve(sender_id, env, len, now < 0 ? 0 : (uint64_t)now, bits, nonce, work,
	                  NULL);
}
