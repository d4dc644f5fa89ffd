/* SPDX-License-Identifier: MIT */
/*
 * The command layer's per-connection state (struct peer) and requests: replies go through the
 * relay's port (port.h); a request that waits for the store holds its connection; which
 * mailboxes a connection may manage; the sealing of a forwarded command's reply (5.11).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "command_layer.h"
#include "forward.h"
#include "port.h"
#include "relay.h"

/* Idle memory per connection counts it (docs/PERFORMANCE.md): 120 bytes, a 128-byte chunk. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct peer) <= 120, "struct peer grew");

/* The waiting slot for REQUEST_ID, or -1. */
static long seal_find(const struct peer *p, uint32_t request_id)
{
	for (uint32_t i = 0; p->sealed != NULL && i < p->sealed->len; i++)
		if (p->sealed->slot[i].request_id == request_id)
			return (long)i;
	return -1;
}

/*
 * Sends M, the inner command's reply, as SEALED with slot I's key, and frees the slot. The
 * inner reply carries request id 0 (5.11). A reply that cannot be encoded or sealed (it
 * cannot happen for OK and ERROR) becomes an unsealed ERROR `storage`.
 */
static void seal_reply(struct peer *p, long i, const struct cairn_msg *m)
{
	struct peer_seals *s = p->sealed;
	struct sealed_slot slot = s->slot[i];
	s->slot[i] = s->slot[--s->len];
	sodium_memzero(&s->slot[s->len], sizeof(slot));

	struct cairn_msg inner = *m;
	inner.request_id = 0;
	uint8_t plain[64], sealed[FORWARD_REPLY_SEALED];
	size_t len;
	struct cairn_msg out = {.type = CAIRN_REPLY_SEALED, .request_id = slot.request_id};
	if (cairn_msg_encode(&inner, plain, sizeof(plain), &len) != 0 ||
	    forward_reply_seal(slot.k_rep, plain, len, sealed) != 0) {
		out.type = CAIRN_REPLY_ERROR;
		out.code = (uint32_t)-CAIRN_ESTORAGE;
	} else {
		out.sealed = sealed;
		out.sealed_len = sizeof(sealed);
	}
	sodium_memzero(&slot, sizeof(slot));
	p->relay->port->reply(p->conn, &out);
}

void peer_reply(struct peer *p, const struct cairn_msg *m)
{
	/* Only a command's final reply is sealed: ENVELOPE and END name subscriptions. */
	if (p->sealed != NULL && p->sealed->len > 0 &&
	    (m->type == CAIRN_REPLY_OK || m->type == CAIRN_REPLY_ERROR)) {
		long i = seal_find(p, m->request_id);
		if (i >= 0) {
			seal_reply(p, i, m);
			return;
		}
	}
	p->relay->port->reply(p->conn, m);
}

int peer_seal_next(struct peer *p, uint32_t request_id, const uint8_t k_rep[static CAIRN_KEY_LEN])
{
	uint32_t max = p->relay->cfg->inflight_requests + 1;
	uint32_t len = p->sealed != NULL ? p->sealed->len : 0;
	if (len >= max || seal_find(p, request_id) >= 0)
		return CAIRN_ELIMIT;
	if (grow_block((void **)&p->sealed, offsetof(struct peer_seals, slot),
	               sizeof(p->sealed->slot[0]), len, max) != 0)
		return CAIRN_ENOMEM;
	struct sealed_slot *slot = &p->sealed->slot[p->sealed->len++];
	slot->request_id = request_id;
	memcpy(slot->k_rep, k_rep, CAIRN_KEY_LEN);
	return 0;
}

void peer_seal_free(struct peer *p)
{
	if (p->sealed != NULL)
		sodium_memzero(p->sealed->slot,
		               (size_t)p->sealed->len * sizeof(p->sealed->slot[0]));
	free(p->sealed);
	p->sealed = NULL;
}

void peer_reply_ok(struct peer *p, uint32_t request_id)
{
	struct cairn_msg m = {.type = CAIRN_REPLY_OK, .request_id = request_id};
	peer_reply(p, &m);
}

/* CODE is a CAIRN_E* code in the wire range. */
void peer_reply_error(struct peer *p, uint32_t request_id, int code)
{
	struct cairn_msg m = {
	    .type = CAIRN_REPLY_ERROR, .request_id = request_id, .code = (uint32_t)-code};
	if (m.code < RELAY_WIRE_CODES)
		p->relay->stats.refused[m.code]++;
	peer_reply(p, &m);
}

/* A request of P's waits for the store: P's connection stays in memory until peer_release. */
void peer_hold(struct peer *p)
{
	p->relay->port->ref(p->conn);
	p->inflight++;
}

void peer_release(struct peer *p)
{
	p->inflight--;
	p->relay->port->unref(p->conn); /* may free P */
}

struct request *request_new(struct peer *p, uint32_t request_id, void (*done)(struct storage_job *))
{
	/* A kept request was wiped (zeroed) when it came in. */
	struct request *r = p != NULL ? spares_take(&p->relay->requests) : NULL;
	if (r == NULL)
		r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->peer = p;
	r->request_id = request_id;
	r->job.kind = STORAGE_WRITE;
	r->job.done = done;
	r->job.data = r;
	if (p != NULL)
		peer_hold(p);
	return r;
}

/* Answers and frees a request whose reply is a plain OK or a storage error: `full` when the
 * disk had no room for it (which puts the relay in the full state, admission.c). */
void request_finish(struct request *r)
{
	struct relay *relay = r->peer != NULL ? r->peer->relay : NULL; /* P may go below */
	if (r->peer != NULL) {
		admission_write_done(r->peer->relay, r->job.status);
		if (r->job.status == 0)
			peer_reply_ok(r->peer, r->request_id);
		else
			peer_reply_error(r->peer, r->request_id,
			                 r->job.status == CAIRN_ECAPACITY ? CAIRN_ECAPACITY
			                                                  : CAIRN_ESTORAGE);
		peer_release(r->peer);
	}
	free(r->ids);
	request_free(relay, r);
}

void request_free(struct relay *relay, struct request *r)
{
	if (r == NULL)
		return;
	/* A request's record may hold a credential's digest (SECURE): wiped either way. */
	sodium_memzero(r, sizeof(*r));
	if (relay == NULL || !spares_keep(&relay->requests, r, REQUEST_CACHE_SLOTS))
		free(r);
}

void request_done(struct storage_job *job)
{
	request_finish(job->data);
}

void relay_submit(struct relay *relay, struct storage_job *job)
{
	storage_submit(relay->storage, job);
}

/* Makes room for element LEN of *ARRAY (ELEM bytes each, at most MAX elements), growing the
 * allocation when LEN reaches its capacity (3, 6, 12, ...): connections that use one mailbox
 * pay for three, not for the limit, and three pointers fill glibc's smallest chunk (32 bytes,
 * 24 usable). While *ARRAY points to ONE (not NULL), its capacity is one, in the caller's
 * own struct: it moves to the heap when a second element comes. Returns 0 or CAIRN_ENOMEM. */
static int grow(void **array, const void *one, size_t head, size_t elem, uint32_t len, uint32_t max)
{
	bool in_one = one != NULL && *array == one;
	/* Capacity doubles from 3 each time LEN reaches it, so it is implied by LEN. */
	if (in_one ? len < 1 : (len > 0 && (len % 3 != 0 || ((len / 3) & (len / 3 - 1)) != 0)))
		return 0;
	size_t cap = len <= 1 ? 3 : (size_t)len * 2;
	if (cap > max)
		cap = max;
	void *q = in_one ? malloc(head + cap * elem) : realloc(*array, head + cap * elem);
	if (q == NULL)
		return CAIRN_ENOMEM;
	if (in_one)
		memcpy(q, one, (size_t)len * elem);
	else if (*array == NULL)
		memset(q, 0, head);
	*array = q;
	return 0;
}

int grow_array_from(void **array, const void *one, size_t elem, uint32_t len, uint32_t max)
{
	return grow(array, one, 0, elem, len, max);
}

int grow_array(void **array, size_t elem, uint32_t len, uint32_t max)
{
	return grow(array, NULL, 0, elem, len, max);
}

int grow_block(void **block, size_t head, size_t elem, uint32_t len, uint32_t max)
{
	return grow(block, NULL, head, elem, len, max);
}

/* Whether P may manage mailbox STORE_ID. */
bool peer_is_authed(const struct peer *p, uint64_t store_id)
{
	for (uint32_t i = 0; i < p->authed_len; i++)
		if (p->authed[i] == store_id)
			return true;
	return false;
}

/* Lets P manage mailbox STORE_ID: 0, or CAIRN_ELIMIT when P manages as many as it may. */
int peer_grant(struct peer *p, uint64_t store_id)
{
	if (peer_is_authed(p, store_id))
		return 0;
	uint32_t max = p->relay->cfg->mailboxes_per_connection;
	if (p->authed_len >= max)
		return CAIRN_ELIMIT;
	int rc = grow_array_from((void **)&p->authed, &p->authed_one, sizeof(*p->authed),
	                         p->authed_len, max);
	if (rc != 0)
		return rc;
	p->authed[p->authed_len++] = store_id;
	return 0;
}
