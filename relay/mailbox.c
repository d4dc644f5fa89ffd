/* SPDX-License-Identifier: MIT */
/*
 * The in-memory mailbox index: two chained hash tables (by recipient id, by sender id) keyed
 * with SipHash under a random key, and per mailbox a ring of pending envelope ids. Acks may
 * arrive out of order, so an acked entry becomes a tombstone; tombstones are trimmed from the
 * front, and the ring is compacted once they outnumber the live entries (plus a little), so a
 * mailbox's memory follows what it holds whatever the order of acks. Ids only grow, so a
 * lookup by id is a binary search.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"
#include "mailbox.h"

#define INITIAL_BUCKETS 1024
/* Mailboxes per bucket, on average, before the tables double. Two keeps a lookup to about two
 * short compares while the three tables cost 12 to 24 bytes a mailbox (at one, 24 to 48: a
 * good part of what an idle connection costs the relay; docs/PERFORMANCE.md). */
#define MAX_LOAD 2
/* Idle memory per connection counts it (docs/PERFORMANCE.md): 232 bytes, a 240-byte chunk. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct mailbox) <= 232, "struct mailbox grew");

#define INITIAL_QUEUE   8
/* Tombstones allowed beyond the live count before a compaction: keeps a small mailbox from
 * compacting on every other ack. */
#define QUEUE_SLACK 32

static size_t bucket_of(const struct mailbox_index *ix, const uint8_t id[CAIRN_MAILBOX_ID_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, id, CAIRN_MAILBOX_ID_LEN, ix->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (ix->buckets - 1));
}

static size_t bucket_of_store_id(const struct mailbox_index *ix, uint64_t id)
{
	uint8_t h[crypto_shorthash_BYTES], in[8];
	for (int i = 0; i < 8; i++)
		in[i] = (uint8_t)(id >> (8 * i));
	crypto_shorthash(h, in, sizeof(in), ix->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (ix->buckets - 1));
}

int mailbox_index_init(struct mailbox_index *ix)
{
	memset(ix, 0, sizeof(*ix));
	ix->buckets = INITIAL_BUCKETS;
	ix->by_recipient = calloc(ix->buckets, sizeof(*ix->by_recipient));
	ix->by_sender = calloc(ix->buckets, sizeof(*ix->by_sender));
	ix->by_store_id = calloc(ix->buckets, sizeof(*ix->by_store_id));
	if (ix->by_recipient == NULL || ix->by_sender == NULL || ix->by_store_id == NULL) {
		free(ix->by_recipient);
		free(ix->by_sender);
		free(ix->by_store_id);
		return CAIRN_ENOMEM;
	}
	randombytes_buf(ix->hash_key, sizeof(ix->hash_key));
	return 0;
}

void mailbox_index_free(struct mailbox_index *ix)
{
	for (size_t b = 0; ix->by_recipient != NULL && b < ix->buckets; b++) {
		struct mailbox *mb = ix->by_recipient[b];
		while (mb != NULL) {
			struct mailbox *next = mb->next_by_recipient;
			free(mb->q);
			sodium_memzero(mb, sizeof(*mb));
			free(mb);
			mb = next;
		}
	}
	free(ix->by_recipient);
	free(ix->by_sender);
	free(ix->by_store_id);
	sodium_memzero(ix, sizeof(*ix));
}

/* Doubles the tables when they average more than MAX_LOAD mailboxes a bucket. */
static void maybe_grow(struct mailbox_index *ix)
{
	if (ix->count < MAX_LOAD * ix->buckets)
		return;
	size_t nb = ix->buckets * 2;
	struct mailbox **r = calloc(nb, sizeof(*r)), **s = calloc(nb, sizeof(*s)),
	               **t = calloc(nb, sizeof(*t));
	if (r == NULL || s == NULL || t == NULL) {
		/* Still correct with longer chains; try again on the next insert. */
		free(r);
		free(s);
		free(t);
		return;
	}
	struct mailbox **old_r = ix->by_recipient;
	size_t old_n = ix->buckets;
	free(ix->by_sender);
	free(ix->by_store_id);
	ix->by_recipient = r;
	ix->by_sender = s;
	ix->by_store_id = t;
	ix->buckets = nb;
	/* Every table is rebuilt from the recipient chains, which list every mailbox once. */
	for (size_t b = 0; b < old_n; b++) {
		struct mailbox *mb = old_r[b];
		while (mb != NULL) {
			struct mailbox *next = mb->next_by_recipient;
			size_t br = bucket_of(ix, mb->rec.recipient_id);
			size_t bs = bucket_of(ix, mb->rec.sender_id);
			size_t bt = bucket_of_store_id(ix, mb->rec.id);
			mb->next_by_recipient = r[br];
			r[br] = mb;
			mb->next_by_sender = s[bs];
			s[bs] = mb;
			mb->next_by_store_id = t[bt];
			t[bt] = mb;
			mb = next;
		}
	}
	free(old_r);
}

static void idle_unlink(struct mailbox_index *ix, struct mailbox *mb)
{
	if (mb->idle_prev != NULL)
		mb->idle_prev->idle_next = mb->idle_next;
	else
		ix->idle_head = mb->idle_next;
	if (mb->idle_next != NULL)
		mb->idle_next->idle_prev = mb->idle_prev;
	else
		ix->idle_tail = mb->idle_prev;
	mb->idle_prev = mb->idle_next = NULL;
}

static void idle_append(struct mailbox_index *ix, struct mailbox *mb)
{
	mb->idle_next = NULL;
	mb->idle_prev = ix->idle_tail;
	if (ix->idle_tail != NULL)
		ix->idle_tail->idle_next = mb;
	else
		ix->idle_head = mb;
	ix->idle_tail = mb;
}

void mailbox_touched(struct mailbox_index *ix, struct mailbox *mb)
{
	if (ix->idle_tail == mb)
		return;
	idle_unlink(ix, mb);
	idle_append(ix, mb);
}

struct mailbox *mailbox_add(struct mailbox_index *ix, const struct store_mailbox *rec)
{
	maybe_grow(ix);
	struct mailbox *mb = calloc(1, sizeof(*mb));
	if (mb == NULL)
		return NULL;
	mb->rec = *rec;
	size_t br = bucket_of(ix, rec->recipient_id), bs = bucket_of(ix, rec->sender_id);
	mb->next_by_recipient = ix->by_recipient[br];
	ix->by_recipient[br] = mb;
	mb->next_by_sender = ix->by_sender[bs];
	ix->by_sender[bs] = mb;
	size_t bt = bucket_of_store_id(ix, rec->id);
	mb->next_by_store_id = ix->by_store_id[bt];
	ix->by_store_id[bt] = mb;
	idle_append(ix, mb);
	ix->count++;
	return mb;
}

void mailbox_remove(struct mailbox_index *ix, struct mailbox *mb)
{
	struct mailbox **p = &ix->by_recipient[bucket_of(ix, mb->rec.recipient_id)];
	while (*p != mb)
		p = &(*p)->next_by_recipient;
	*p = mb->next_by_recipient;
	p = &ix->by_sender[bucket_of(ix, mb->rec.sender_id)];
	while (*p != mb)
		p = &(*p)->next_by_sender;
	*p = mb->next_by_sender;
	p = &ix->by_store_id[bucket_of_store_id(ix, mb->rec.id)];
	while (*p != mb)
		p = &(*p)->next_by_store_id;
	*p = mb->next_by_store_id;
	idle_unlink(ix, mb);
	ix->count--;
	ix->envelopes -= mb->count;
	ix->bytes -= mb->bytes;
	free(mb->q);
	sodium_memzero(mb, sizeof(*mb));
	free(mb);
}

/* Ids are random, so comparing them in constant time matters little, but it costs nothing
 * and keeps lookups free of timing that depends on how much of an id matched. Two of
 * libsodium's constant-time 16-byte compares, overlapping, cover the 24 bytes: sodium_memcmp
 * takes a byte at a time (callgrind, online at 1,500/s: 421 instructions per envelope in the
 * lookups of a SEND and an ACK). */
_Static_assert(CAIRN_MAILBOX_ID_LEN == 24, "two 16-byte compares cover an id");
static bool id_equal(const uint8_t a[static CAIRN_MAILBOX_ID_LEN],
                     const uint8_t b[static CAIRN_MAILBOX_ID_LEN])
{
	return (crypto_verify_16(a, b) | crypto_verify_16(a + 8, b + 8)) == 0;
}

struct mailbox *mailbox_by_recipient(const struct mailbox_index *ix,
                                     const uint8_t id[static CAIRN_MAILBOX_ID_LEN])
{
	for (struct mailbox *mb = ix->by_recipient[bucket_of(ix, id)]; mb != NULL;
	     mb = mb->next_by_recipient)
		if (id_equal(mb->rec.recipient_id, id))
			return mb;
	return NULL;
}

struct mailbox *mailbox_by_sender(const struct mailbox_index *ix,
                                  const uint8_t id[static CAIRN_MAILBOX_ID_LEN])
{
	for (struct mailbox *mb = ix->by_sender[bucket_of(ix, id)]; mb != NULL;
	     mb = mb->next_by_sender)
		if (id_equal(mb->rec.sender_id, id))
			return mb;
	return NULL;
}

_Static_assert(CAIRN_HASH_LEN == crypto_verify_64_BYTES, "a handshake hash is 64 bytes");
void mailbox_send_digest(struct mailbox_index *ix, const uint8_t *conn,
                         const uint8_t sender_id[static CAIRN_MAILBOX_ID_LEN],
                         const uint8_t credential[static CAIRN_CREDENTIAL_LEN],
                         uint8_t digest[static CAIRN_CREDENTIAL_LEN])
{
	struct mailbox_send_memo *memo = &ix->last_send;
	if (conn != NULL && memo->full) {
		/* All three compared whichever differs: no timing from how much matched. */
		int differ = crypto_verify_64(memo->conn, conn);
		differ |= crypto_verify_32(memo->credential, credential);
		if ((differ | !id_equal(memo->sender_id, sender_id)) == 0) {
			memcpy(digest, memo->digest, CAIRN_CREDENTIAL_LEN);
			return;
		}
	}
	crypto_generichash(digest, CAIRN_CREDENTIAL_LEN, credential, CAIRN_CREDENTIAL_LEN,
	                   sender_id, CAIRN_MAILBOX_ID_LEN);
	if (conn == NULL) {
		/* Empty: it keeps no other SEND's credential. */
		sodium_memzero(memo, sizeof(*memo));
		return;
	}
	memo->full = true;
	memcpy(memo->conn, conn, CAIRN_HASH_LEN);
	memcpy(memo->sender_id, sender_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(memo->credential, credential, CAIRN_CREDENTIAL_LEN);
	memcpy(memo->digest, digest, CAIRN_CREDENTIAL_LEN);
}

void mailbox_send_forget(struct mailbox_index *ix, const uint8_t *conn)
{
	struct mailbox_send_memo *memo = &ix->last_send;
	if (memo->full && crypto_verify_64(memo->conn, conn) == 0)
		sodium_memzero(memo, sizeof(*memo));
}

struct mailbox *mailbox_by_store_id(const struct mailbox_index *ix, uint64_t id)
{
	for (struct mailbox *mb = ix->by_store_id[bucket_of_store_id(ix, id)]; mb != NULL;
	     mb = mb->next_by_store_id)
		if (mb->rec.id == id)
			return mb;
	return NULL;
}

struct pending *mailbox_at(const struct mailbox *mb, size_t i)
{
	return &mb->q[(mb->q_head + i) & (mailbox_q_cap(mb) - 1)];
}

/* Moves the ring to a new array of NCAP entries (a power of two >= q_len), head at 0. */
static int requeue(struct mailbox *mb, size_t ncap)
{
	struct pending *nq = NULL;
	if (ncap > MAILBOX_QUEUE_MAX) /* no mailbox's limit comes near */
		return CAIRN_ENOMEM;
	if (ncap > 0 && (nq = malloc(ncap * sizeof(*nq))) == NULL)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < mb->q_len; i++)
		nq[i] = *mailbox_at(mb, i);
	free(mb->q);
	mb->q = nq;
	mb->q_shift = 0;
	while (((size_t)1 << mb->q_shift) < ncap)
		mb->q_shift++;
	mb->q_head = 0;
	return 0;
}

int mailbox_push(struct mailbox_index *ix, struct mailbox *mb, uint64_t id, uint32_t len,
                 struct envelope *env)
{
	size_t cap = mailbox_q_cap(mb);
	if (mb->q_len == cap && requeue(mb, cap ? cap * 2 : INITIAL_QUEUE) != 0)
		return CAIRN_ENOMEM;
	struct pending *p = mailbox_at(mb, mb->q_len);
	p->id = id;
	p->len = len;
	p->acked = false;
	p->env = env;
	mb->q_len++;
	mb->count++;
	mb->bytes += len;
	ix->envelopes++;
	ix->bytes += len;
	return 0;
}

/* The offset of the first entry (live or not) whose id is at least ID. */
static size_t first_at_least(const struct mailbox *mb, uint64_t id)
{
	size_t lo = 0, hi = mb->q_len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mailbox_at(mb, mid)->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int mailbox_insert(struct mailbox_index *ix, struct mailbox *mb, uint64_t id, uint32_t len,
                   size_t *pos)
{
	size_t lo = first_at_least(mb, id);
	if (lo < mb->q_len && mailbox_at(mb, lo)->id == id)
		return CAIRN_EEXIST; /* live, or acknowledged here and kept as a tombstone */
	int rc = mailbox_push(ix, mb, id, len, NULL);
	if (rc != 0)
		return rc;
	/* Moved from the back to its place: the ring has no gap, so shift the entries above. */
	for (size_t i = mb->q_len - 1; i > lo; i--)
		*mailbox_at(mb, i) = *mailbox_at(mb, i - 1);
	struct pending *p = mailbox_at(mb, lo);
	*p = (struct pending){.id = id, .len = len};
	*pos = lo;
	return 0;
}

long mailbox_find(const struct mailbox *mb, uint64_t id)
{
	size_t i = first_at_least(mb, id);
	if (i >= mb->q_len || mailbox_at(mb, i)->id != id || mailbox_at(mb, i)->acked)
		return -1;
	return (long)i;
}

/* Gives memory back once the ring is at most a quarter full. */
static void maybe_shrink(struct mailbox *mb)
{
	if (mailbox_q_cap(mb) <= INITIAL_QUEUE || (size_t)mb->q_len * 4 > mailbox_q_cap(mb))
		return;
	size_t ncap = INITIAL_QUEUE;
	while (ncap < (size_t)mb->q_len * 2)
		ncap *= 2;
	if (mb->q_len == 0)
		ncap = 0;
	(void)requeue(mb, ncap); /* still correct, only larger, if it fails */
}

static void trim_front(struct mailbox *mb)
{
	while (mb->q_len > 0 && mailbox_at(mb, 0)->acked) {
		mb->q_head = (mb->q_head + 1) & (mailbox_q_cap(mb) - 1);
		mb->q_len--;
		if (mb->cursor > 0)
			mb->cursor--;
	}
}

void mailbox_compact(struct mailbox *mb)
{
	size_t w = 0, cursor = 0;
	for (size_t r = 0; r < mb->q_len; r++) {
		struct pending *p = mailbox_at(mb, r);
		if (p->acked)
			continue;
		if (r < mb->cursor)
			cursor++; /* a live entry before the cursor stays before it */
		if (w != r)
			*mailbox_at(mb, w) = *p; /* w < r: that slot was already read */
		w++;
	}
	mb->q_len = w;
	mb->cursor = cursor;
	maybe_shrink(mb);
}

void mailbox_rewind(struct mailbox *mb, size_t max_skip)
{
	if (mb->q_len - mb->count > max_skip)
		mailbox_compact(mb);
	mb->cursor = 0;
	mb->inflight = 0;
	mb->acks = 0;
}

struct envelope *mailbox_ack(struct mailbox_index *ix, struct mailbox *mb, size_t i)
{
	struct pending *p = mailbox_at(mb, i);
	struct envelope *env = p->env;
	p->acked = true;
	p->env = NULL;
	mb->count--;
	mb->bytes -= p->len;
	ix->envelopes--;
	ix->bytes -= p->len;
	if (i < mb->cursor && mb->inflight > 0)
		mb->inflight--;
	trim_front(mb);
	/* Amortised O(1): a compaction of n entries follows at least n / 2 acks. */
	if (mb->q_len - mb->count > (size_t)mb->count + QUEUE_SLACK)
		mailbox_compact(mb);
	else
		maybe_shrink(mb);
	return env;
}

size_t mailbox_expire(struct mailbox_index *ix, struct mailbox *mb, uint64_t cutoff,
                      void (*drop)(void *ctx, struct envelope *env), void *ctx)
{
	size_t dropped = 0;
	while (mb->q_len > 0 && mailbox_at(mb, 0)->id < cutoff) {
		if (!mailbox_at(mb, 0)->acked) {
			struct envelope *env = mailbox_ack(ix, mb, 0);
			dropped++;
			drop(ctx, env);
		} else {
			trim_front(mb);
		}
	}
	maybe_shrink(mb);
	return dropped;
}
