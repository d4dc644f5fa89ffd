/* SPDX-License-Identifier: MIT */
/*
 * A connection's handshake on the thread pool (conn_handshake.h): the work, the replay cache
 * step and the claims of several nodes on one store.
 *
 * Apart from conn.c because the work and the claims are a path of their own, between two
 * threads and the storage thread; conn.c starts it (conn_handshake_start) and takes its
 * result through the ops it passes in, and nothing here calls into conn.c.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "channel.h"
#include "conn_handshake.h"
#include "log.h"
#include "relay.h"

/*
 * Message 1 answered on libuv's thread pool: its X25519 work (~100 µs of the relay's CPU per
 * handshake) would otherwise cap handshakes at what one core does, with every other
 * connection waiting behind it. The loop thread keeps the channel and the replay cache
 * (channel_hello_take and _finish), so only the pure computation crosses threads
 * (channel_hello_respond); the relay's key pair is read-only.
 */
struct hs_work {
	uv_work_t req;
	struct relay *relay;
	struct channel *ch; /* OWNER's, touched only while it waits */
	const struct conn_handshake_ops *ops;
	void *owner;
	struct channel_hello hello;
	struct storage_job claim; /* Several nodes on one store */
};

/*
 * With several nodes on one store (docs/SCALING.md 4), a message 1 that passed this
 * node's replay cache is also claimed in the store before message 2 is queued, so that the
 * same message 1 replayed to another node finds it claimed: silence there, as for any failed
 * handshake (PROTOCOL.md 2.2). The store sees a BLAKE2b of the ephemeral key keyed by the
 * relay's private key (which every node shares), never the key. Claims waiting are bounded:
 * past CONN_CLAIMS_MAX a handshake is refused as if the store had failed, so a flood of
 * handshakes costs the storage thread at most this many claims per batch (one INSERT of up
 * to STORE_CLAIM_MAX keys each), whatever the flood. A node alone (node 0) does none of it.
 */
#define CONN_CLAIMS_MAX 1024
#define CLAIM_PERSONAL  "cairn-hs-seen-v1" /* 16 bytes: BLAKE2b's personalization */

static bool hs_claims(const struct relay *relay)
{
	return relay->cfg->store_node != 0;
}

static void hs_claim_key(struct hs_work *w, const uint8_t *private_key)
{
	_Static_assert(sizeof(CLAIM_PERSONAL) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
	               "BLAKE2b's personalization is 16 bytes");
	/* Message 1 carries the initiator's ephemeral key in clear, first. */
	(void)crypto_generichash_blake2b_salt_personal(
	    w->claim.claim_key, sizeof(w->claim.claim_key), w->hello.msg1, CAIRN_KEY_LEN,
	    private_key, CAIRN_KEY_LEN, NULL, (const unsigned char *)CLAIM_PERSONAL);
}

static void hs_work_run(uv_work_t *req)
{
	struct hs_work *w = req->data;
	struct relay *relay = w->relay;
	if (channel_hello_respond(&w->hello, relay->private_key, relay->public_key) == 0 &&
	    hs_claims(relay) && w->hello.len1 >= CAIRN_KEY_LEN)
		hs_claim_key(w, relay->private_key);
}

static void hs_free(struct hs_work *w)
{
	const struct conn_handshake_ops *ops = w->ops;
	void *owner = w->owner;
	sodium_memzero(w, sizeof(*w));
	free(w);
	ops->release(owner);
}

/* Completes W's handshake, checked against CACHE (NULL: checked already), hands the result
 * to its connection, and frees W. */
static void hs_complete(struct hs_work *w, struct replay_cache *cache)
{
	int rc = channel_hello_finish(w->ch, &w->hello, cache);
	w->ops->done(w->owner, rc);
	hs_free(w);
}

/* A claim that failed for the store, or was not taken: silence (fail closed). */
static void hs_claim_failed(struct relay *relay, bool store)
{
	relay->stats.handshake_claims_failed++;
	if (store && !relay->claims_failing)
		log_warn("handshake claims are failing: the store cannot take them (handshakes"
		         " get no answer until it can)");
	relay->claims_failing = relay->claims_failing || store;
}

static void hs_claim_done(struct storage_job *job)
{
	struct hs_work *w = job->data;
	struct relay *relay = w->relay;
	relay->claims_pending--;
	if (job->status != 0)
		hs_claim_failed(relay, true);
	else if (relay->claims_failing) {
		relay->claims_failing = false;
		log_warn("handshake claims work again");
	}
	if (!w->ops->waiting(w->owner)) { /* closed or failed meanwhile */
		hs_free(w);
		return;
	}
	if (job->status != 0 || !job->claim_fresh)
		w->hello.rc = CAIRN_EREPLAY; /* answered like any replay: silence */
	hs_complete(w, NULL);
}

/*
 * Checks W's message 1 against this node's replay cache and hands its claim to the
 * storage thread. Returns 0 (W now belongs to the claim), or the handshake's error.
 */
static int hs_claim(struct hs_work *w)
{
	struct relay *relay = w->relay;
	int rc = replay_cache_add(relay->replay, w->hello.msg1, w->hello.now);
	if (rc != 0)
		return rc;
	if (relay->claims_pending >= CONN_CLAIMS_MAX || relay->storage == NULL) {
		hs_claim_failed(relay, false);
		return CAIRN_EFULL;
	}
	/* W came from malloc: the job starts zeroed but for its key (hs_work_run). */
	uint8_t key[sizeof(w->claim.claim_key)];
	memcpy(key, w->claim.claim_key, sizeof(key));
	memset(&w->claim, 0, sizeof(w->claim));
	memcpy(w->claim.claim_key, key, sizeof(key));
	w->claim.kind = STORAGE_CLAIM;
	/* Past the end of the clock window (PROTOCOL.md 2.2) on any node whose clock is
	 * within it of this one's: the message cannot be accepted anywhere later. */
	w->claim.claim_until = (int64_t)w->hello.now + 2 * CAIRN_HELLO_WINDOW_S;
	w->claim.done = hs_claim_done;
	w->claim.data = w;
	relay->claims_pending++;
	storage_submit(relay->storage, &w->claim);
	return 0;
}

static void hs_work_done(uv_work_t *req, int status)
{
	struct hs_work *w = req->data;
	struct relay *relay = w->relay;
	/* Closed, or failed (bytes after message 1), while the work ran: nothing to do. */
	if (status != 0 || !w->ops->waiting(w->owner)) {
		hs_free(w);
		return;
	}
	if (!hs_claims(relay) || w->hello.rc != 0) {
		hs_complete(w, relay->replay);
		return;
	}
	int rc = hs_claim(w);
	if (rc == 0)
		return;
	w->hello.rc = rc;
	hs_complete(w, NULL);
}

/* Reading goes on meanwhile: bytes before message 2 fail the handshake (conn.c's
 * run_events), and the work's result is then dropped. */
int conn_handshake_start(struct relay *relay, struct channel *ch,
                         const struct conn_handshake_ops *ops, void *owner)
{
	struct hs_work *w = malloc(sizeof(*w));
	if (w == NULL)
		return CAIRN_ENOMEM;
	w->req.data = w;
	w->relay = relay;
	w->ch = ch;
	w->ops = ops;
	w->owner = owner;
	int rc = channel_hello_take(ch, &w->hello);
	if (rc == 0 && uv_queue_work(relay->loop, &w->req, hs_work_run, hs_work_done) != 0)
		rc = CAIRN_ENOMEM;
	if (rc != 0) {
		sodium_memzero(w, sizeof(*w));
		free(w);
		return rc;
	}
	ops->hold(owner);
	return 0;
}
