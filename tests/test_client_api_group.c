/* SPDX-License-Identifier: MIT */
/*
 * Groups through libcairn's public API (cairn.h) over the in-memory relay
 * (tests/support/memrelay.h): three homes that are contacts of the first; Alice makes a group
 * and adds Bob and Carol with offers, joins and welcomes carried over their 1:1 sessions; all
 * three talk and read each message with its sender; Alice removes Carol, who reads nothing
 * new; an engine reports a group message with its sender; bad input to each group function is
 * refused and changes nothing.
 */
#define _XOPEN_SOURCE 700
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_group_common.h"

enum { A, B, C };

static int setup(void **state)
{
	struct fixture *f = fixture_new(3);
	pair(f, B, "bob");
	pair(f, C, "carol");
	*state = f;
	return 0;
}

/* cairn_read's view: whether TEXT is there, from SENDER (NULL: ours). */
struct find {
	const char *text, *sender;
	unsigned found, total;
};

static int on_read(void *ctx, const struct cairn_message *m)
{
	struct find *q = ctx;
	q->total++;
	assert_string_equal(m->contact, "friends");
	if (m->len == strlen(q->text) && memcmp(m->text, q->text, m->len) == 0) {
		if (q->sender == NULL) {
			assert_true(m->outgoing);
			assert_null(m->sender);
		} else {
			assert_false(m->outgoing);
			assert_non_null(m->sender);
			assert_string_equal(m->sender, q->sender);
		}
		q->found++;
	}
	return 0;
}

static int on_read_direct(void *ctx, const struct cairn_message *m)
{
	struct find *q = ctx;
	assert_null(m->sender); /* a contact's conversation names no sender */
	if (m->len == strlen(q->text) && memcmp(m->text, q->text, m->len) == 0)
		q->found++;
	return 0;
}

static struct find find(struct cairn *c, const char *text, const char *sender)
{
	struct find q = {.text = text, .sender = sender};
	assert_int_equal(cairn_read(c, "friends", on_read, &q), 0);
	return q;
}

static void say(struct cairn *c, const char *text)
{
	assert_int_equal(cairn_send(c, "friends", (const uint8_t *)text, strlen(text), NULL), 0);
}

static void make_group(struct fixture *f)
{
	struct cairn *a = f->w->h[A].c;
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	/* Both at once: Carol's join comes while the commit adding Bob is pending; it is kept
	 * and committed once that one is in. */
	assert_int_equal(cairn_group_add(a, "friends", "bob"), 0);
	assert_int_equal(cairn_group_add(a, "friends", "carol"), 0);
	sync_all(f, 5);
	struct members s = members(f->w->h[B].c, "friends");
	assert_true(has_member(&s, "alice"));
}

static void test_create_add_talk_remove(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *c = f->w->h[C].c;
	make_group(f);
	struct members sa = members(a, "friends"), sb = members(b, "friends"),
	               sc = members(c, "friends");
	assert_int_equal(sa.n, 3);
	assert_int_equal(sb.n, 3);
	assert_int_equal(sc.n, 3);
	assert_int_equal(sa.admins, 1);
	assert_int_equal(sb.selfs, 1);
	assert_int_equal(sa.contacts, 2); /* bob and carol */
	assert_int_equal(sb.contacts, 1); /* alice; carol is a short id to bob */
	assert_true(has_member(&sa, "bob") && has_member(&sa, "carol"));
	char carol_at_b[CAIRN_MEMBER_ID_LEN + 1], bob_at_c[CAIRN_MEMBER_ID_LEN + 1];
	id_of(a, "friends", "carol", carol_at_b);
	assert_true(has_member(&sb, carol_at_b)); /* the same short id on both sides */
	id_of(a, "friends", "bob", bob_at_c);

	char na[CAIRN_SAFETY_NUMBER_LEN + 1], nb[CAIRN_SAFETY_NUMBER_LEN + 1],
	    nc[CAIRN_SAFETY_NUMBER_LEN + 1];
	uint64_t ea = 0, eb = 1;
	assert_int_equal(cairn_group_safety_number(a, "friends", na, &ea), 0);
	assert_int_equal(cairn_group_safety_number(b, "friends", nb, &eb), 0);
	assert_int_equal(cairn_group_safety_number(c, "friends", nc, NULL), 0);
	assert_int_equal(ea, eb);
	assert_string_equal(na, nb);
	assert_string_equal(na, nc);
	assert_int_equal(strlen(na), CAIRN_SAFETY_NUMBER_LEN);

	say(a, "from alice");
	say(b, "from bob");
	say(c, "from carol");
	sync_all(f, 2);
	assert_int_equal(find(a, "from alice", NULL).found, 1);
	assert_int_equal(find(a, "from bob", "bob").found, 1);
	assert_int_equal(find(a, "from carol", "carol").found, 1);
	assert_int_equal(find(b, "from alice", "alice").found, 1);
	assert_int_equal(find(b, "from carol", carol_at_b).found, 1);
	assert_int_equal(find(c, "from bob", bob_at_c).found, 1);
	assert_int_equal(find(c, "from alice", "alice").found, 1);

	/* Alice removes Carol: the group moves, Carol reads nothing new. */
	assert_int_equal(cairn_group_remove(a, "friends", "carol"), 0);
	sync_all(f, 3);
	unsigned before = find(c, "x", NULL).total;
	say(a, "without carol");
	say(b, "bob without carol");
	sync_all(f, 2);
	assert_int_equal(find(b, "without carol", "alice").found, 1);
	assert_int_equal(find(a, "bob without carol", "bob").found, 1);
	assert_int_equal(find(c, "x", NULL).total, before);
	assert_int_equal(members(a, "friends").n, 2);
	assert_int_equal(members(b, "friends").n, 2);
	/* Removed: Carol can neither send nor leave. */
	assert_int_equal(cairn_group_leave(c, "friends"), CAIRN_ESTATE);

	/* Bob made admin; Alice and Bob see the same safety number again. */
	assert_int_equal(cairn_group_admin(a, "friends", "bob"), 0);
	sync_all(f, 2);
	assert_int_equal(members(b, "friends").admins, 2);
	assert_int_equal(cairn_group_safety_number(a, "friends", na, &ea), 0);
	assert_int_equal(cairn_group_safety_number(b, "friends", nb, &eb), 0);
	assert_int_equal(ea, eb);
	assert_string_equal(na, nb);
}

struct seen {
	unsigned n;
	char sender[CAIRN_NAME_MAX + 1];
	char text[64];
};

static int on_engine_message(void *ctx, const struct cairn_message *m)
{
	struct seen *s = ctx;
	if (strcmp(m->contact, "friends") != 0 || m->sender == NULL)
		return 0;
	s->n++;
	snprintf(s->sender, sizeof(s->sender), "%s", m->sender);
	snprintf(s->text, sizeof(s->text), "%.*s", (int)m->len, (const char *)m->text);
	return 0;
}

/* Steps C's engine until S has seen N messages (a few steps at least). */
static void steps_until(struct cairn *c, struct seen *s, unsigned n)
{
	struct pollfd fds[16];
	for (int k = 0; k < 10 || s->n < n; k++) {
		assert_true(k < 400);
		size_t nfds = 0;
		int timeout = 0;
		assert_int_equal(cairn_engine_fds(c, fds, 16, &nfds, &timeout), 0);
		assert_true(poll(fds, nfds, timeout < 0 || timeout > 50 ? 50 : timeout) >= 0);
		assert_int_equal(cairn_engine_step(c, fds, nfds), 0);
	}
}

static void test_engine_reports_sender(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	assert_int_equal(cairn_group_add(a, "friends", "bob"), 0);
	sync_all(f, 3);
	assert_int_equal(members(b, "friends").n, 2);

	struct seen s = {0};
	struct cairn_engine_callbacks cb = {.message = on_engine_message};
	assert_int_equal(cairn_engine_start(b, &cb, &s), 0);
	struct pollfd fds[16];
	for (int k = 0; k < 20; k++) { /* the follow read is open */
		size_t n = 0;
		int timeout = 0;
		assert_int_equal(cairn_engine_fds(b, fds, 16, &n, &timeout), 0);
		assert_true(poll(fds, n, timeout < 0 || timeout > 20 ? 20 : timeout) >= 0);
		assert_int_equal(cairn_engine_step(b, fds, n), 0);
	}
	say(a, "to the engine");
	steps_until(b, &s, 1);
	assert_string_equal(s.sender, "alice");
	assert_string_equal(s.text, "to the engine");

	/* Carol added and removed while Bob's engine runs: the group moves to a fresh log, which
	 * the engine follows on its own. */
	struct cairn *c = f->w->h[C].c;
	struct cairn_sync_result res;
	assert_int_equal(cairn_group_add(a, "friends", "carol"), 0);
	for (int r = 0; r < 4; r++) {
		assert_int_equal(cairn_sync(a, &res, NULL, NULL), 0);
		assert_int_equal(cairn_sync(c, &res, NULL, NULL), 0);
		steps_until(b, &s, 1);
	}
	assert_int_equal(members(c, "friends").n, 3);
	assert_int_equal(cairn_group_remove(a, "friends", "carol"), 0);
	assert_int_equal(cairn_sync(a, &res, NULL, NULL), 0);
	assert_int_equal(cairn_sync(a, &res, NULL, NULL), 0);
	say(a, "after the move");
	steps_until(b, &s, 2);
	cairn_engine_stop(b);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.text, "after the move");
	assert_int_equal(members(b, "friends").n, 2);
}


static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c;
	char long_name[CAIRN_NAME_MAX + 2];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(cairn_group_create(a, "", f->addr), CAIRN_EINVAL);
	assert_int_equal(cairn_group_create(a, NULL, f->addr), CAIRN_EINVAL);
	assert_int_equal(cairn_group_create(a, long_name, f->addr), CAIRN_EINVAL);
	assert_int_equal(cairn_group_create(NULL, "g", f->addr), CAIRN_EINVAL);
	assert_int_equal(cairn_group_create(a, "g", "cairn://nonsense"), CAIRN_EADDRESS);
	assert_int_equal(cairn_group_create(a, "g", NULL), CAIRN_EADDRESS);
	assert_int_equal(cairn_group_create(a, "bob", f->addr), CAIRN_EEXIST); /* a contact */
	unsigned queued = 0;
	assert_int_equal(group_out_count(a, &queued), 0);
	assert_int_equal(queued, 0); /* nothing made */

	assert_int_equal(cairn_group_create(a, "friends", f->addr), 0);
	assert_int_equal(cairn_group_create(a, "friends", f->addr), CAIRN_EEXIST);
	sync_all(f, 1);
	char n0[CAIRN_SAFETY_NUMBER_LEN + 1], n1[CAIRN_SAFETY_NUMBER_LEN + 1];
	assert_int_equal(cairn_group_safety_number(a, "friends", n0, NULL), 0);
	unsigned outbox0 = 0, outbox1 = 0;
	assert_int_equal(client_outbox_count(a, NULL, &outbox0), 0);

	assert_int_equal(cairn_group_add(a, "nope", "bob"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_add(a, "friends", "nobody"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_add(a, "friends", NULL), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_add(b, "friends", "alice"), CAIRN_ENOTFOUND); /* not b's */
	assert_int_equal(cairn_group_remove(a, "friends", "nobody"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_remove(a, "nope", "bob"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_remove(a, "friends", "bob"), CAIRN_ENOTFOUND); /* no member */
	char self[CAIRN_MEMBER_ID_LEN + 1];
	struct members s = members(a, "friends");
	assert_int_equal(s.n, 1);
	memcpy(self, s.ids[0], sizeof(self));
	assert_int_equal(cairn_group_remove(a, "friends", self), CAIRN_EINVAL);
	assert_int_equal(cairn_group_admin(a, "friends", self), CAIRN_EINVAL);
	assert_int_equal(cairn_group_admin(a, "friends", "nobody"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_leave(a, "nope"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_members(a, "nope", on_member, &s), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_members(a, "friends", NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_group_safety_number(a, "nope", n1, NULL), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_safety_number(a, "friends", NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_send(a, "nope", (const uint8_t *)"x", 1, NULL), CAIRN_ENOTFOUND);
	struct find q = {.text = "x"};
	assert_int_equal(cairn_read(a, "nope", on_read, &q), CAIRN_ENOTFOUND);

	/* Nothing changed: the same epoch and head, nothing queued anywhere. */
	assert_int_equal(cairn_group_safety_number(a, "friends", n1, NULL), 0);
	assert_string_equal(n0, n1);
	assert_int_equal(group_out_count(a, &queued), 0);
	assert_int_equal(queued, 0);
	assert_int_equal(client_outbox_count(a, NULL, &outbox1), 0);
	assert_int_equal(outbox0, outbox1);
	assert_int_equal(members(a, "friends").n, 1);

	/* Over 1:1, a join that answers no offer and an offer that does not decode: dropped, and
	 * the session goes on (the text after them arrives). */
	struct contact k;
	uint8_t junk[GROUP_JOIN_LEN], id[APPMSG_ID_LEN];
	randombytes_buf(junk, sizeof(junk));
	assert_int_equal(cstate_begin(b->st), 0);
	assert_int_equal(client_load_contact(b, "alice", &k), 0);
	randombytes_buf(id, sizeof(id));
	assert_int_equal(client_queue_message(b, &k, APPMSG_GROUP_JOIN, junk, sizeof(junk), id, 1), 0);
	randombytes_buf(id, sizeof(id));
	assert_int_equal(client_queue_message(b, &k, APPMSG_GROUP_OFFER, junk, 3, id, 1), 0);
	assert_int_equal(cstate_commit(b->st), 0);
	contact_wipe(&k);
	assert_int_equal(cairn_send(b, "alice", (const uint8_t *)"after junk", 10, NULL), 0);
	sync_all(f, 1);
	struct find t = {.text = "after junk", .sender = "bob"};
	assert_int_equal(cairn_read(a, "bob", on_read_direct, &t), 0);
	assert_int_equal(t.found, 1);
	assert_int_equal(members(a, "friends").n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_add_talk_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_reports_sender, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
