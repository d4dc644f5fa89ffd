/* SPDX-License-Identifier: MIT */
/*
 * The mailbox queue on its own (relay/mailbox.c): acknowledgements in any order keep the
 * queue's memory proportional to its live envelopes, compaction keeps the delivery cursor on
 * the same envelope, and what is left is still every unacknowledged id, in order. Lookups by
 * id see every byte of it, and a SEND's credential digest is the hash's, memo or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mailbox.h"

struct fixture {
	struct mailbox_index ix;
	struct mailbox *mb;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	if (mailbox_index_init(&f.ix) != 0)
		return -1;
	struct store_mailbox rec = {.id = 7};
	rec.recipient_id[0] = 1;
	rec.sender_id[0] = 2;
	f.mb = mailbox_add(&f.ix, &rec);
	if (f.mb == NULL)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mailbox_index_free(&f->ix);
	return 0;
}

/* The live ids from the head, in queue order, into OUT (at most CAP). Returns how many. */
static size_t live_ids(const struct mailbox *mb, uint64_t *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < mb->q_len; i++) {
		const struct pending *p = mailbox_at(mb, i);
		if (!p->acked && n < cap)
			out[n++] = p->id;
	}
	return n;
}

/*
 * The attack of issue 10 item 5: every envelope but the first is acknowledged as soon as it
 * arrives. The head never leaves, so trimming from the front alone kept one tombstone per
 * send. The queue must stay within a constant of its one live envelope.
 */
static void test_acks_behind_a_live_head_stay_bounded(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = f->mb;
	assert_int_equal(mailbox_push(&f->ix, mb, 1, 10, NULL), 0);
	for (uint64_t id = 2; id < 100000; id++) {
		assert_int_equal(mailbox_push(&f->ix, mb, id, 10, NULL), 0);
		long i = mailbox_find(mb, id);
		assert_true(i > 0);
		assert_null(mailbox_ack(&f->ix, mb, (size_t)i));
	}
	assert_int_equal(mb->count, 1);
	assert_int_equal(mb->bytes, 10);
	/* Before the fix: q_len 99999, q_cap 131072 (3 MiB for one envelope). */
	if (mb->q_len > 64 || mailbox_q_cap(mb) > 128)
		fail_msg("one live envelope holds %zu entries (capacity %zu)", (size_t)mb->q_len,
		         (size_t)mailbox_q_cap(mb));
	assert_int_equal(mailbox_at(mb, 0)->id, 1);
	assert_int_equal(mailbox_find(mb, 1), 0);
}

/* The ring's head wraps, then the ring doubles with its head mid-array: the order holds, and
 * the capacity (kept as a log2 beside the head) is what was allocated. */
static void test_ring_wraps_and_grows(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = f->mb;
	assert_int_equal(mailbox_q_cap(mb), 0);
	for (uint64_t id = 1; id <= 8; id++)
		assert_int_equal(mailbox_push(&f->ix, mb, id, 10, NULL), 0);
	assert_int_equal(mailbox_q_cap(mb), 8);
	for (int k = 0; k < 5; k++)
		assert_null(mailbox_ack(&f->ix, mb, 0));
	assert_int_equal(mb->q_head, 5);
	for (uint64_t id = 9; id <= 20; id++)
		assert_int_equal(mailbox_push(&f->ix, mb, id, 10, NULL), 0);
	assert_int_equal(mailbox_q_cap(mb), 16);
	assert_int_equal(mb->q_len, 15);
	for (size_t i = 0; i < mb->q_len; i++)
		assert_int_equal(mailbox_at(mb, i)->id, 6 + i);
	while (mb->q_len > 0)
		assert_null(mailbox_ack(&f->ix, mb, 0));
	assert_int_equal(mailbox_q_cap(mb), 8); /* shrunk back to the first size */
}

/* The first live id at or after the cursor (0 if none), and how many live ids precede it. */
static uint64_t at_cursor(const struct mailbox *mb, size_t *before)
{
	*before = 0;
	for (size_t i = 0; i < mb->cursor && i < mb->q_len; i++)
		if (!mailbox_at(mb, i)->acked)
			(*before)++;
	for (size_t i = mb->cursor; i < mb->q_len; i++)
		if (!mailbox_at(mb, i)->acked)
			return mailbox_at(mb, i)->id;
	return 0;
}

/*
 * Acknowledgements in a pseudo-random order, before and after the cursor, with sends in
 * between: after every step the cursor is still on the same envelope (the same live entries
 * precede it), what is left is exactly the unacknowledged ids in increasing order, and the
 * queue never holds many more entries than live envelopes.
 */
static void test_cursor_and_order_survive_compaction(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = f->mb;
	enum { N = 3000 };
	static bool acked[N + 1];
	memset(acked, 0, sizeof(acked));
	uint64_t next = 1, x = 12345;
	for (int step = 0; step < 20000; step++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		unsigned r = (unsigned)(x >> 33);
		if (next <= N && (r % 3 == 0 || mb->count == 0)) {
			assert_int_equal(mailbox_push(&f->ix, mb, next, 1, NULL), 0);
			next++;
		} else if (r % 7 == 1 && mb->cursor < mb->q_len) {
			mb->cursor++; /* delivered one more */
			mb->inflight++;
		} else if (mb->count > 0) {
			/* Acknowledge a live id: mostly recent ones, so a live head stays. */
			uint64_t span = next - 1;
			uint64_t id = next - 1 - (r / 8) % (span < 50 ? span : 50);
			long i = mailbox_find(mb, id);
			if (i < 0)
				continue;
			size_t before;
			uint64_t cur = at_cursor(mb, &before);
			bool was_before = (size_t)i < mb->cursor;
			mailbox_ack(&f->ix, mb, (size_t)i);
			acked[id] = true;
			size_t before2;
			uint64_t cur2 = at_cursor(mb, &before2);
			assert_int_equal(before2, before - (was_before ? 1 : 0));
			if (cur != id)
				assert_int_equal(cur2, cur);
		}
		/* At most a constant more entries than live ones. */
		if (mb->q_len > 2 * (size_t)mb->count + 64)
			fail_msg("step %d: %zu entries for %u live", step, mb->q_len, mb->count);
	}
	static uint64_t ids[N];
	size_t n = live_ids(mb, ids, N), k = 0;
	assert_int_equal(n, mb->count);
	for (uint64_t id = 1; id < next; id++)
		if (!acked[id])
			assert_int_equal(ids[k++], id);
	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++)
		assert_true(mailbox_find(mb, ids[i]) >= 0);
}

/*
 * A new subscription delivers from the head, skipping tombstones on the loop thread. With
 * half the entries acknowledged (which alone does not trigger a compaction), rewinding must
 * leave at most the given number of tombstones to walk over.
 */
static void test_rewind_bounds_the_walk(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = f->mb;
	for (uint64_t id = 1; id <= 2000; id++)
		assert_int_equal(mailbox_push(&f->ix, mb, id, 1, NULL), 0);
	mb->cursor = 1500;
	mb->inflight = 64;
	for (uint64_t id = 2; id <= 2000; id += 2)
		mailbox_ack(&f->ix, mb, (size_t)mailbox_find(mb, id));
	assert_int_equal(mb->count, 1000);
	assert_true(mb->q_len - mb->count > 64); /* many tombstones are still there */
	mailbox_rewind(mb, 64);
	assert_int_equal(mb->cursor, 0);
	assert_int_equal(mb->inflight, 0);
	assert_true(mb->q_len - mb->count <= 64);
	/* Walking to the 64th live entry skips at most 64 tombstones, and meets ids in order. */
	size_t skipped = 0, live = 0;
	uint64_t last = 0;
	for (size_t i = 0; i < mb->q_len && live < 64; i++) {
		const struct pending *p = mailbox_at(mb, i);
		if (p->acked) {
			skipped++;
			continue;
		}
		assert_true(p->id > last);
		assert_int_equal(p->id % 2, 1);
		last = p->id;
		live++;
	}
	assert_int_equal(live, 64);
	assert_true(skipped <= 64);
}

/* The index's bucket of ID (mailbox.c's bucket_of): SipHash under the index's key. */
static size_t bucket(const struct mailbox_index *ix, const uint8_t *id)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, id, CAIRN_MAILBOX_ID_LEN, ix->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (ix->buckets - 1));
}

/*
 * A lookup by either id compares the whole id: for each byte, an id that differs from the
 * mailbox's in that byte (and one more, to find one) yet falls in its bucket, so that the
 * lookup reaches the compare, finds nothing. A compare that left out any byte finds it.
 */
static void test_lookup_compares_every_byte(void **state)
{
	struct fixture *f = *state;
	const uint8_t *ids[2] = {f->mb->rec.recipient_id, f->mb->rec.sender_id};
	for (int which = 0; which < 2; which++) {
		for (size_t i = 0; i < CAIRN_MAILBOX_ID_LEN; i++) {
			uint8_t id[CAIRN_MAILBOX_ID_LEN];
			size_t j = (i + 1) % CAIRN_MAILBOX_ID_LEN, tries = 0;
			do {
				memcpy(id, ids[which], sizeof(id));
				id[i] ^= (uint8_t)(1 + tries % 255);
				id[j] ^= (uint8_t)(tries / 255);
				assert_true(++tries < 255 * 256);
			} while (bucket(&f->ix, id) != bucket(&f->ix, ids[which]));
			assert_null(which == 0 ? mailbox_by_recipient(&f->ix, id)
			                       : mailbox_by_sender(&f->ix, id));
		}
	}
	assert_ptr_equal(mailbox_by_recipient(&f->ix, ids[0]), f->mb);
	assert_ptr_equal(mailbox_by_sender(&f->ix, ids[1]), f->mb);
}

/* mailbox_send_digest's answer against BLAKE2b's, computed here every time. */
static void check_digest(struct mailbox_index *ix, const uint8_t *conn, const uint8_t *sender,
                         const uint8_t *credential)
{
	uint8_t got[CAIRN_CREDENTIAL_LEN], want[CAIRN_CREDENTIAL_LEN];
	crypto_generichash(want, sizeof(want), credential, CAIRN_CREDENTIAL_LEN, sender,
	                   CAIRN_MAILBOX_ID_LEN);
	mailbox_send_digest(ix, conn, sender, credential, got);
	assert_memory_equal(got, want, sizeof(want));
	/* The memo is this SEND's, whoever sent before: a connection's digest is never taken
	 * from another connection's SEND (nor from one without a credential, which it forgets). */
	const struct mailbox_send_memo *memo = &ix->last_send;
	if (conn == NULL) {
		static const struct mailbox_send_memo empty;
		assert_memory_equal(memo, &empty, sizeof(empty));
		return;
	}
	assert_true(memo->full);
	assert_memory_equal(memo->conn, conn, CAIRN_HASH_LEN);
	assert_memory_equal(memo->sender_id, sender, CAIRN_MAILBOX_ID_LEN);
	assert_memory_equal(memo->credential, credential, CAIRN_CREDENTIAL_LEN);
}

/*
 * A SEND's credential digest is BLAKE2b's whatever came before: repeated (the memo's case),
 * then with one bit of the credential, of the sender id or of the connection changed at every
 * position, each followed by the first again, and without a connection. A memo that compared
 * less than all of the three would hand a changed credential the digest of the right one.
 */
static void test_send_digest_is_the_hash(void **state)
{
	struct fixture *f = *state;
	uint8_t conn[CAIRN_HASH_LEN], sender[CAIRN_MAILBOX_ID_LEN], cred[CAIRN_CREDENTIAL_LEN];
	randombytes_buf(conn, sizeof(conn));
	randombytes_buf(sender, sizeof(sender));
	randombytes_buf(cred, sizeof(cred));
	for (int i = 0; i < 3; i++)
		check_digest(&f->ix, conn, sender, cred);
	uint8_t *fields[] = {cred, sender, conn};
	size_t lens[] = {sizeof(cred), sizeof(sender), sizeof(conn)};
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < lens[k]; i++) {
			fields[k][i] ^= 0x80;
			check_digest(&f->ix, conn, sender, cred);
			check_digest(&f->ix, conn, sender, cred);
			fields[k][i] ^= 0x80;
			check_digest(&f->ix, conn, sender, cred);
		}
	}
	check_digest(&f->ix, NULL, sender, cred);
	check_digest(&f->ix, conn, sender, cred);
	cred[0] ^= 1;
	check_digest(&f->ix, NULL, sender, cred);
	cred[0] ^= 1;
	check_digest(&f->ix, conn, sender, cred);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_acks_behind_a_live_head_stay_bounded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_ring_wraps_and_grows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cursor_and_order_survive_compaction, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rewind_bounds_the_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_compares_every_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_digest_is_the_hash, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
