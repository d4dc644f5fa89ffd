/* SPDX-License-Identifier: MIT */
/*
 * The group invite (PROTOCOL.md 9.8, cairn_group_invite) through libcairn's public API over
 * the in-memory relay (tests/support/memrelay.h). Alice makes a group with her contact Bob
 * and invites Dave, whom she does not know: Dave accepts as he would any invite, and after
 * syncs all three list each other and talk both ways; Dave is Alice's contact only. The
 * invite opens once: Erin accepting the same text gets nowhere. Refused: an invite by a
 * non-admin, into no group or under a taken name, a tampered invite (CAIRN_EINVITE), and an
 * invite into a group the accepter is in already (CAIRN_EEXIST). (A group name taken where
 * it is accepted is no obstacle: test_client_group_names.)
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_group_common.h"

enum { A, B, D, E };

#define SCHEME "cairn-invite:"

/* Alice and Bob become contacts, then Alice makes group "friends" with Bob in it. */
static int setup(void **state)
{
	struct fixture *f = fixture_new(4);
	pair(f, B, "bob");
	assert_int_equal(cairn_group_create(f->w->h[A].c, "friends", f->addr), 0);
	assert_int_equal(cairn_group_add(f->w->h[A].c, "friends", "bob"), 0);
	sync_all(f, 3);
	*state = f;
	return 0;
}

/* ---- what a home sees ------------------------------------------------------------------ */

static int count_contact(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned contacts(struct cairn *c)
{
	unsigned n = 0;
	assert_int_equal(cairn_contacts(c, count_contact, &n), 0);
	return n;
}

struct find {
	const char *text, *sender;
	unsigned found;
};

static int on_read(void *ctx, const struct cairn_message *m)
{
	struct find *q = ctx;
	if (m->len == strlen(q->text) && memcmp(m->text, q->text, m->len) == 0) {
		assert_false(m->outgoing);
		assert_non_null(m->sender);
		assert_string_equal(m->sender, q->sender);
		q->found++;
	}
	return 0;
}

/* How many times C has TEXT in "friends" from SENDER. */
static unsigned found(struct cairn *c, const char *text, const char *sender)
{
	struct find q = {.text = text, .sender = sender};
	assert_int_equal(cairn_read(c, "friends", on_read, &q), 0);
	return q.found;
}

static void say(struct cairn *c, const char *text)
{
	assert_int_equal(cairn_send(c, "friends", (const uint8_t *)text, strlen(text), NULL), 0);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_invite_join_talk(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *d = f->w->h[D].c, *e = f->w->h[E].c;
	char *invite = NULL;
	/* No relay named: the invite mailbox is on the group log's relay. */
	assert_int_equal(cairn_group_invite(a, "friends", NULL, 0, "dave", &invite), 0);
	assert_non_null(invite);
	assert_int_equal(strncmp(invite, SCHEME, strlen(SCHEME)), 0);
	assert_int_equal(cairn_invite_accept(d, invite, "alice", NULL, 0), 0);
	sync_all(f, 5);

	struct members sa = members(a, "friends"), sb = members(b, "friends"),
	               sd = members(d, "friends");
	assert_int_equal(sa.n, 3);
	assert_int_equal(sb.n, 3);
	assert_int_equal(sd.n, 3);
	assert_int_equal(sa.contacts, 2); /* bob, and dave: the invite made him a contact */
	assert_int_equal(sd.contacts, 1); /* alice */
	assert_int_equal(sb.contacts, 1); /* alice; dave is a short id to bob */
	char dave[CAIRN_MEMBER_ID_LEN + 1], bob[CAIRN_MEMBER_ID_LEN + 1];
	id_of(a, "friends", "dave", dave);
	id_of(a, "friends", "bob", bob);
	assert_true(has_member(&sd, "alice"));
	assert_int_equal(contacts(d), 1);
	assert_int_equal(contacts(b), 1);
	assert_int_equal(contacts(a), 2);

	say(d, "dave here");
	say(a, "welcome dave");
	say(b, "hello dave");
	sync_all(f, 2);
	assert_int_equal(found(a, "dave here", "dave"), 1);
	assert_int_equal(found(b, "dave here", dave), 1);
	assert_int_equal(found(d, "welcome dave", "alice"), 1);
	assert_int_equal(found(d, "hello dave", bob), 1);

	/* Single use: Erin accepts the same text (its first message may not even be taken by
	 * the relay once the invite mailbox is retired) and never gets into the group. */
	int rc = cairn_invite_accept(e, invite, "alice", NULL, 0);
	assert_true(rc == 0 || rc == CAIRN_ECONNECT);
	sync_all(f, 5);
	assert_int_equal(cairn_group_members(e, "friends", on_member, &(struct members){0}),
	                 CAIRN_ENOTFOUND);
	assert_int_equal(members(a, "friends").n, 3);
	assert_int_equal(contacts(a), 2);
	cairn_free(invite);
}

/* INVITE (text) with its binary form changed by CHANGE, as text again into OUT. */
static void tamper(const char *invite, void (*change)(uint8_t *bin, size_t *len), char *out,
                   size_t cap)
{
	uint8_t bin[2048];
	size_t len = 0;
	const char *b64 = invite + strlen(SCHEME);
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), b64, strlen(b64), NULL, &len, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	change(bin, &len);
	strcpy(out, SCHEME);
	assert_true(cap > strlen(SCHEME) + sodium_base64_ENCODED_LEN(
	                                       len, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
	sodium_bin2base64(out + strlen(SCHEME), cap - strlen(SCHEME), bin, len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void cut_name(uint8_t *bin, size_t *len)
{
	(*len)--; /* the trailer's name one byte short of its name_len */
}

static void as_version_2(uint8_t *bin, size_t *len)
{
	(void)len;
	bin[0] = 2; /* a contact invite with bytes after its mailboxes */
}

static void long_name_len(uint8_t *bin, size_t *len)
{
	bin[*len - strlen("friends") - 1]++; /* name_len past the end */
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[A].c, *b = f->w->h[B].c, *d = f->w->h[D].c;
	char *invite = NULL;
	const char *relays[] = {f->addr};
	assert_int_equal(cairn_group_invite(b, "friends", relays, 1, "dave", &invite),
	                 CAIRN_EDENIED); /* Bob is no admin */
	assert_null(invite);
	assert_int_equal(cairn_group_invite(a, "nosuch", relays, 1, "dave", &invite),
	                 CAIRN_ENOTFOUND);
	assert_int_equal(cairn_group_invite(a, "friends", relays, 1, "bob", &invite), CAIRN_EEXIST);
	assert_int_equal(cairn_group_invite(a, "friends", relays, 1, "friends", &invite),
	                 CAIRN_EEXIST);
	assert_int_equal(cairn_group_invite(a, "friends", relays, 1, "", &invite), CAIRN_EINVAL);
	assert_int_equal(cairn_group_invite(a, "friends", relays, 5, "dave", &invite),
	                 CAIRN_EINVAL);
	assert_int_equal(contacts(a), 1);

	assert_int_equal(cairn_group_invite(a, "friends", relays, 1, "dave", &invite), 0);
	char bad[4096];
	void (*changes[])(uint8_t *, size_t *) = {cut_name, as_version_2, long_name_len};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		tamper(invite, changes[i], bad, sizeof(bad));
		assert_int_equal(cairn_invite_accept(d, bad, "alice", NULL, 0), CAIRN_EINVITE);
	}
	/* Bob is in the group already (under its name, too). */
	assert_int_equal(cairn_invite_accept(b, invite, "alice2", NULL, 0), CAIRN_EEXIST);
	assert_int_equal(contacts(d), 0);
	assert_int_equal(contacts(b), 1);
	cairn_free(invite);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_invite_join_talk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
