/* SPDX-License-Identifier: MIT */
/*
 * Joining a group (PROTOCOL.md 9.8): offer, join and welcome data, log locations (9.7), group
 * names and the version 3 group invite, against the vectors of 9.12 both ways, with every
 * truncation, trailing bytes and each field out of its range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "group_join.h"
#include "invite.h"
#include "mdvec.h"

static const char NAME[] = "Lawyers";

/* The group id of 9.12: 16 x 0x67, as the genesis vector has it. */
static void group_id(uint8_t out[GROUP_ID_LEN])
{
	assert_int_equal(mdvec_hex("group/genesis", "group_id", out, GROUP_ID_LEN), GROUP_ID_LEN);
}

/* Each decoder with its output as void *, so that one helper tries them all. */
typedef int (*decoder)(const uint8_t *in, size_t len, void *out);
static int dec_offer(const uint8_t *in, size_t len, void *out)
{
	return group_offer_decode(in, len, out);
}
static int dec_join(const uint8_t *in, size_t len, void *out)
{
	return group_join_decode(in, len, out);
}
static int dec_location(const uint8_t *in, size_t len, void *out)
{
	return group_location_decode(in, len, out);
}
static int dec_welcome(const uint8_t *in, size_t len, void *out)
{
	return group_welcome_decode(in, len, out);
}
static int dec_group_invite(const uint8_t *in, size_t len, void *out)
{
	return group_invite_parse(in, len, out);
}

/* Every truncation of WANT (WLEN bytes), and WANT with a zero byte after it, fail with
 * CAIRN_EINVAL and leave OUT (N bytes) zeroed. */
static void refuse_cuts(decoder dec, const uint8_t *want, size_t wlen, void *out, size_t n)
{
	uint8_t *more = malloc(wlen + 1);
	assert_non_null(more);
	for (size_t cut = 0; cut <= wlen + 1; cut++) {
		if (cut == wlen)
			continue;
		memcpy(more, want, wlen);
		more[wlen] = 0;
		assert_int_equal(dec(more, cut, out), CAIRN_EINVAL);
		assert_true(sodium_is_zero(out, n));
	}
	free(more);
}

static void test_names(void **state)
{
	static const char *good[] = {
	    "",
	    "Lawyers",
	    "Caf\xc3\xa9",
	    "\xc2\xa0",
	    "\xf0\x9f\x8c\xb2 \xe2\x80\xae",
	    "\xf4\x8f\xbf\xbf",
	    "\xed\x9f\xbf",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	static const char *bad[] = {
	    "a\nb",
	    "\x1b[2J",
	    "\x7f",
	    "\xc2\x80",
	    "\xc2\x9f",
	    "\xc0\x80",
	    "\xc1\xbf",
	    "\xe0\x9f\xbf",
	    "\xed\xa0\x80",
	    "\xf0\x8f\xbf\xbf",
	    "\xf4\x90\x80\x80",
	    "\xf5\x80\x80\x80",
	    "\x80",
	    "\xe2\x82",
	    "\xe2\x28\xa1",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(group_name_check((const uint8_t *)good[i], strlen(good[i])), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(group_name_check((const uint8_t *)bad[i], strlen(bad[i])),
		                 CAIRN_EINVAL);
	/* A NUL is a control character: it would cut the name short where it is a string. */
	assert_int_equal(group_name_check((const uint8_t *)"a\0b", 3), CAIRN_EINVAL);
}

static void test_offer(void **state)
{
	uint8_t want[GROUP_OFFER_MAX + 1], out[GROUP_OFFER_MAX + 1];
	size_t wlen = mdvec_hex("group/offer", "data", want, sizeof(want)), len;
	assert_string_equal(mdvec_str("group/offer", "name"), NAME);
	struct group_offer o = {0}, back;
	group_id(o.group_id);
	strcpy(o.name, NAME);
	assert_int_equal(group_offer_encode(&o, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(group_offer_decode(want, wlen, &back), 0);
	assert_memory_equal(&back, &o, sizeof(o));
	assert_int_equal(group_offer_encode(&o, out, wlen - 1, &len), CAIRN_ENOBUFS);
	refuse_cuts(dec_offer, want, wlen, &back, sizeof(back));
	memcpy(out, want, wlen);
	out[wlen] = 'x';       /* a byte after the name */
	out[GROUP_ID_LEN] = 8; /* the name takes it: "Lawyersx" */
	assert_int_equal(group_offer_decode(out, wlen + 1, &back), 0);
	assert_string_equal(back.name, "Lawyersx");
	out[wlen] = 0x07; /* a bell */
	assert_int_equal(group_offer_decode(out, wlen + 1, &back), CAIRN_EINVAL);
	out[wlen] = 0xff; /* not UTF-8 */
	assert_int_equal(group_offer_decode(out, wlen + 1, &back), CAIRN_EINVAL);
	/* An empty name, and the longest. */
	uint8_t big[GROUP_OFFER_MAX + 2];
	memset(big, 'n', sizeof(big));
	big[GROUP_ID_LEN] = 0;
	assert_int_equal(group_offer_decode(big, GROUP_OFFER_MIN, &back), 0);
	assert_string_equal(back.name, "");
	big[GROUP_ID_LEN] = GROUP_NAME_MAX;
	assert_int_equal(group_offer_decode(big, GROUP_OFFER_MAX, &back), 0);
	assert_int_equal(strlen(back.name), GROUP_NAME_MAX);
	big[GROUP_ID_LEN] = GROUP_NAME_MAX + 1;
	assert_int_equal(group_offer_decode(big, GROUP_OFFER_MAX + 1, &back), CAIRN_EINVAL);
	/* The encoder refuses what the decoder refuses. */
	strcpy(o.name, "tab\there");
	assert_int_equal(group_offer_encode(&o, out, sizeof(out), &len), CAIRN_EINVAL);
	memset(o.name, 'n', sizeof(o.name)); /* 65 bytes, no NUL */
	assert_int_equal(group_offer_encode(&o, out, sizeof(out), &len), CAIRN_EINVAL);
}

static void test_join(void **state)
{
	uint8_t want[GROUP_JOIN_LEN + 1], out[GROUP_JOIN_LEN + 1], seed[32], sk[64], priv[32];
	size_t wlen = mdvec_hex("group/join", "data", want, sizeof(want)), len;
	assert_int_equal(wlen, GROUP_JOIN_LEN);
	/* Bob's keys, made from the seeds of group/add as his client makes them. */
	struct group_join j = {0}, back;
	group_id(j.group_id);
	assert_int_equal(mdvec_hex("group/add", "bob_sign_seed", seed, 32), 32);
	assert_int_equal(crypto_sign_seed_keypair(j.sign_key, sk, seed), 0);
	assert_int_equal(mdvec_hex("group/add", "bob_group_private", priv, 32), 32);
	assert_int_equal(crypto_scalarmult_base(j.group_key, priv), 0);
	assert_int_equal(group_join_encode(&j, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(group_join_decode(want, wlen, &back), 0);
	assert_memory_equal(&back, &j, sizeof(j));
	assert_int_equal(group_join_encode(&j, out, wlen - 1, &len), CAIRN_ENOBUFS);
	refuse_cuts(dec_join, want, wlen, &back, sizeof(back));
	sodium_memzero(sk, sizeof(sk));
}

/* The location of group/remove: relay.example.org (the address/hostname vector), log 24 x
 * 0x78, credential 32 x 0x68 (9.12, item 6). */
static void test_location(void **state)
{
	uint8_t want[GROUP_LOCATION_MAX + 1], out[GROUP_LOCATION_MAX + 1];
	size_t wlen = mdvec_hex("group/remove", "location", want, sizeof(want)), len;
	struct group_location loc = {0}, back;
	snprintf(loc.relay, sizeof(loc.relay), "%s", mdvec_str("address/hostname", "text"));
	memset(loc.log_id, 0x78, sizeof(loc.log_id));
	memset(loc.credential, 0x68, sizeof(loc.credential));
	assert_int_equal(group_location_encode(&loc, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(group_location_decode(want, wlen, &back), 0);
	assert_memory_equal(&back, &loc, sizeof(loc));
	assert_int_equal(group_location_encode(&loc, out, wlen - 1, &len), CAIRN_ENOBUFS);
	refuse_cuts(dec_location, want, wlen, &back, sizeof(back));
	/* relay_len 0, one past the text, over 320. */
	static const uint16_t lens[] = {0, 0x4b, CAIRN_ADDRESS_MAX + 1, 0xffff};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memcpy(out, want, wlen);
		out[0] = (uint8_t)(lens[i] >> 8);
		out[1] = (uint8_t)lens[i];
		assert_int_equal(group_location_decode(out, wlen, &back), CAIRN_EINVAL);
	}
	/* 321 bytes of text, the rest whole: too long before it is even read as an address. */
	static uint8_t over[2 + CAIRN_ADDRESS_MAX + 1 + 56];
	memset(over, 'a', sizeof(over));
	over[0] = (CAIRN_ADDRESS_MAX + 1) >> 8;
	over[1] = (CAIRN_ADDRESS_MAX + 1) & 0xff;
	assert_int_equal(group_location_decode(over, sizeof(over), &back), CAIRN_EINVAL);
	over[1]--; /* 320: the structure holds, the text is no address */
	assert_int_equal(group_location_decode(over, sizeof(over) - 1, &back), CAIRN_EADDRESS);
	/* Relay text that is no address: a path after the port, a NUL inside, a bad key. */
	memcpy(out, want, wlen);
	out[2 + 0x4a - 1] = '/';
	assert_int_equal(group_location_decode(out, wlen, &back), CAIRN_EADDRESS);
	memcpy(out, want, wlen);
	out[2 + 0x4a - 1] = 0;
	assert_int_equal(group_location_decode(out, wlen, &back), CAIRN_EADDRESS);
	memcpy(out, want, wlen);
	out[2 + 8 + 42] = '9'; /* the key's last character now has nonzero unused bits */
	assert_int_equal(group_location_decode(out, wlen, &back), CAIRN_EADDRESS);
	assert_true(sodium_is_zero((const uint8_t *)&back, sizeof(back)));
	/* The encoder refuses the same. */
	strcpy(loc.relay, "cairn://relay.example.org:7443");
	assert_int_equal(group_location_encode(&loc, out, sizeof(out), &len), CAIRN_EADDRESS);
	loc.relay[0] = '\0';
	assert_int_equal(group_location_encode(&loc, out, sizeof(out), &len), CAIRN_EADDRESS);
}

/* The welcome of 9.12 as its fields say: epoch 1 of group/add, to Bob. */
static void welcome_fields(struct group_welcome *w, uint8_t roster[GROUP_WELCOME_ROSTER_MAX])
{
	memset(w, 0, sizeof(*w));
	group_id(w->group_id);
	w->epoch = 1;
	assert_int_equal(mdvec_hex("group/add", "head", w->head, 32), 32);
	assert_int_equal(mdvec_hex("group/add", "epoch_secret", w->epoch_secret, 32), 32);
	w->index = (uint16_t)atoi(mdvec_str("group/welcome", "index"));
	w->rotate_seconds = 604800;
	w->rotate_messages = 1000;
	w->commit_seq = (uint64_t)atoi(mdvec_str("group/welcome", "commit_seq"));
	snprintf(w->location.relay, sizeof(w->location.relay), "%s",
	         mdvec_str("group/welcome", "relay"));
	memset(w->location.log_id, 0x77, CAIRN_LOG_ID_LEN);
	memset(w->location.credential, 0x66, CAIRN_CREDENTIAL_LEN);
	strcpy(w->name, NAME);
	w->roster = roster;
	w->roster_len = mdvec_hex("group/add", "roster", roster, GROUP_WELCOME_ROSTER_MAX);
	assert_int_equal(w->roster_len, 2 + 3 * GROUP_WELCOME_MEMBER_LEN);
}

/* Where name_len is in welcome DATA: after the fixed head, the location and its relay text. */
static size_t name_off(const uint8_t *data)
{
	return GROUP_WELCOME_HEAD_LEN + GROUP_LOCATION_FIXED +
	       (((size_t)data[GROUP_WELCOME_HEAD_LEN] << 8) | data[GROUP_WELCOME_HEAD_LEN + 1]);
}

static void test_welcome(void **state)
{
	static uint8_t roster[GROUP_WELCOME_ROSTER_MAX], want[2048], out[2048];
	struct group_welcome w, back;
	welcome_fields(&w, roster);
	size_t wlen = mdvec_hex("group/welcome", "data", want, sizeof(want)), len;
	assert_int_equal(group_welcome_encode(&w, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(group_welcome_decode(want, wlen, &back), 0);
	assert_ptr_equal(back.roster, want + wlen - w.roster_len);
	assert_int_equal(back.roster_len, w.roster_len);
	assert_memory_equal(back.roster, roster, w.roster_len);
	back.roster = w.roster;
	assert_memory_equal(&back, &w, sizeof(w));
	group_welcome_clear(&back);
	assert_true(sodium_is_zero((const uint8_t *)&back, sizeof(back)));
	group_welcome_clear(NULL);
	assert_int_equal(group_welcome_encode(&w, out, wlen - 1, &len), CAIRN_ENOBUFS);

	/* Every truncation, and a byte after the roster. */
	refuse_cuts(dec_welcome, want, wlen, &back, sizeof(back));

	size_t loc = GROUP_WELCOME_HEAD_LEN, nm = name_off(want), ro = nm + 1 + strlen(NAME);
	/* relay_len 0 and over 320; relay text that is no address. */
	static const uint16_t lens[] = {0, CAIRN_ADDRESS_MAX + 1};
	for (size_t i = 0; i < 2; i++) {
		memcpy(out, want, wlen);
		out[loc] = (uint8_t)(lens[i] >> 8);
		out[loc + 1] = (uint8_t)lens[i];
		assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EINVAL);
	}
	memcpy(out, want, wlen);
	out[loc + 2 + 8] = '*';
	assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EADDRESS);
	assert_true(sodium_is_zero((const uint8_t *)&back, sizeof(back)));
	/* A name of 65 bytes, and one that is not UTF-8. */
	memcpy(out, want, wlen);
	out[nm] = GROUP_NAME_MAX + 1;
	assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EINVAL);
	memcpy(out, want, wlen);
	out[nm + 1] = 0xc0;
	assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EINVAL);
	/* Roster counts 0, 2 (the length says 3), 1001; the index at and past the count. */
	static const uint16_t counts[] = {0, 2, 4, GROUP_MEMBERS_MAX + 1, 0xffff};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		memcpy(out, want, wlen);
		out[ro] = (uint8_t)(counts[i] >> 8);
		out[ro + 1] = (uint8_t)counts[i];
		assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EINVAL);
	}
	memcpy(out, want, wlen);
	out[GROUP_ID_LEN + 8 + 64 + 1] = 3; /* index 3 of 3 */
	assert_int_equal(group_welcome_decode(out, wlen, &back), CAIRN_EINVAL);
	out[GROUP_ID_LEN + 8 + 64 + 1] = 2;
	assert_int_equal(group_welcome_decode(out, wlen, &back), 0);
	assert_int_equal(back.index, 2);

	/* The encoder refuses the same. */
	struct group_welcome bad = w;
	bad.index = 3;
	assert_int_equal(group_welcome_encode(&bad, out, sizeof(out), &len), CAIRN_EINVAL);
	bad = w;
	bad.roster_len--;
	assert_int_equal(group_welcome_encode(&bad, out, sizeof(out), &len), CAIRN_EINVAL);
	bad = w;
	bad.roster = NULL;
	assert_int_equal(group_welcome_encode(&bad, out, sizeof(out), &len), CAIRN_EINVAL);
	bad = w;
	strcpy(bad.name, "\x1b]0;owned\x07");
	assert_int_equal(group_welcome_encode(&bad, out, sizeof(out), &len), CAIRN_EINVAL);
	bad = w;
	strcpy(bad.location.relay, "cairn://x@127.0.0.1:1");
	assert_int_equal(group_welcome_encode(&bad, out, sizeof(out), &len), CAIRN_EADDRESS);
	sodium_memzero(&w, sizeof(w));
}

/* The largest roster a welcome may carry, and one member more. */
static void test_welcome_bounds(void **state)
{
	static uint8_t roster[GROUP_WELCOME_ROSTER_MAX + GROUP_WELCOME_MEMBER_LEN];
	struct group_welcome w, back;
	welcome_fields(&w, roster);
	memset(roster + 2, 0x01, sizeof(roster) - 2);
	roster[0] = GROUP_MEMBERS_MAX >> 8;
	roster[1] = GROUP_MEMBERS_MAX & 0xff;
	w.roster_len = GROUP_WELCOME_ROSTER_MAX;
	w.index = GROUP_MEMBERS_MAX - 1;
	uint8_t *buf = malloc(GROUP_WELCOME_MAX + GROUP_WELCOME_MEMBER_LEN);
	assert_non_null(buf);
	size_t len;
	assert_int_equal(group_welcome_encode(&w, buf, GROUP_WELCOME_MAX, &len), 0);
	assert_true(len <= GROUP_WELCOME_MAX);
	assert_int_equal(group_welcome_decode(buf, len, &back), 0);
	assert_int_equal(back.roster_len, GROUP_WELCOME_ROSTER_MAX);
	assert_int_equal(back.index, GROUP_MEMBERS_MAX - 1);
	/* 1001 members, framed consistently, are refused both ways. */
	roster[0] = (GROUP_MEMBERS_MAX + 1) >> 8;
	roster[1] = (GROUP_MEMBERS_MAX + 1) & 0xff;
	w.roster_len = sizeof(roster);
	size_t big;
	assert_int_equal(group_welcome_encode(&w, buf, GROUP_WELCOME_MAX + 101, &big),
	                 CAIRN_EINVAL);
	memcpy(buf + len - GROUP_WELCOME_ROSTER_MAX, roster, sizeof(roster));
	assert_int_equal(group_welcome_decode(buf, len + GROUP_WELCOME_MEMBER_LEN, &back),
	                 CAIRN_EINVAL);
	free(buf);
}

/* The group invite vector's fields (9.12, item 8). */
static void group_invite_fields(struct group_invite *gi)
{
	const char *V = "group/invite";
	memset(gi, 0, sizeof(*gi));
	assert_int_equal(mdvec_hex(V, "identity", gi->invite.identity, 32), 32);
	assert_int_equal(mdvec_hex(V, "onetime", gi->invite.onetime, 32), 32);
	gi->invite.mailboxes.count = 1;
	struct mailbox_addr *m = &gi->invite.mailboxes.box[0];
	assert_int_equal(mdvec_hex(V, "sender_id_1", m->sender_id, 24), 24);
	assert_int_equal(mdvec_hex(V, "credential_1", m->credential, 32), 32);
	snprintf(m->relay, sizeof(m->relay), "%s", mdvec_str(V, "relay_1"));
	assert_int_equal(mdvec_hex(V, "group_id", gi->group_id, GROUP_ID_LEN), GROUP_ID_LEN);
	snprintf(gi->name, sizeof(gi->name), "%s", mdvec_str(V, "name"));
}

static void test_group_invite(void **state)
{
	struct group_invite gi, back;
	struct invite v2;
	group_invite_fields(&gi);
	uint8_t want[INVITE_GROUP_MAX_LEN + 1], out[INVITE_GROUP_MAX_LEN + 1];
	size_t wlen = mdvec_hex("group/invite", "invite", want, sizeof(want)), len;
	assert_int_equal(group_invite_encode(&gi, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(group_invite_parse(want, wlen, &back), 0);
	assert_memory_equal(&back, &gi, sizeof(gi));
	for (size_t cap = 0; cap < wlen; cap++)
		assert_int_not_equal(group_invite_encode(&gi, out, cap, &len), 0);

	/* Every truncation (the trailer partial or missing), and a byte after it. */
	refuse_cuts(dec_group_invite, want, wlen, &back, sizeof(back));
	/* name_len over 64, or past the end; a name that is not valid. */
	size_t nm = wlen - strlen(gi.name) - 1;
	memcpy(out, want, wlen);
	out[nm] = GROUP_NAME_MAX + 1;
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);
	out[nm] = (uint8_t)strlen(gi.name) + 1;
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);
	memcpy(out, want, wlen);
	out[nm + 1] = '\r';
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);
	/* The rules of 8.2 before the trailer: an address, the identity. */
	memcpy(out, want, wlen);
	out[nm - GROUP_ID_LEN - 1] = '/';
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EADDRESS);
	memcpy(out, want, wlen);
	memset(out + 1, 0, 32);
	out[1] = 1; /* the small-order identity element */
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);

	/* Versions: 3 without a trailer is no invite of either kind; 2 with one neither. */
	size_t v2len = nm - GROUP_ID_LEN;
	memcpy(out, want, v2len);
	assert_int_equal(group_invite_parse(out, v2len, &back), CAIRN_EINVAL);
	assert_int_equal(invite_parse(out, v2len, &v2), CAIRN_EINVAL);
	assert_int_equal(invite_parse(want, wlen, &v2), CAIRN_EINVAL);
	out[0] = INVITE_VERSION;
	assert_int_equal(invite_parse(out, v2len, &v2), 0);
	assert_memory_equal(&v2, &gi.invite, sizeof(v2));
	memcpy(out, want, wlen);
	out[0] = INVITE_VERSION;
	assert_int_equal(invite_parse(out, wlen, &v2), CAIRN_EINVAL);
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);
	out[0] = 1;
	assert_int_equal(group_invite_parse(out, wlen, &back), CAIRN_EINVAL);
	/* The smallest and the largest sizes allowed are 83 and 1659 bytes. */
	assert_int_equal(INVITE_GROUP_MIN_LEN, 83);
	assert_int_equal(INVITE_GROUP_MAX_LEN, 1659);

	/* The encoder refuses a bad name, and the errors of invite_encode. */
	strcpy(gi.name, "\xe2\x82");
	assert_int_equal(group_invite_encode(&gi, out, sizeof(out), &len), CAIRN_EINVAL);
	group_invite_fields(&gi);
	strcpy(gi.invite.mailboxes.box[0].relay, "nowhere");
	assert_int_equal(group_invite_encode(&gi, out, sizeof(out), &len), CAIRN_EADDRESS);
}

/* The longest group invite: four mailboxes with the longest addresses and a 64-byte name. */
static void test_group_invite_longest(void **state)
{
	struct group_invite gi, back;
	group_invite_fields(&gi);
	gi.invite.mailboxes.count = 4;
	for (int i = 0; i < 4; i++) {
		struct cairn_address a = {.host_type = CAIRN_HOST_NAME, .port = 65535};
		memset(a.key, i + 1, sizeof(a.key));
		memset(a.host, 'a' + i, 253);
		for (int d = 63; d < 253; d += 64)
			a.host[d] = '.';
		struct mailbox_addr *m = &gi.invite.mailboxes.box[i];
		assert_int_equal(cairn_address_format(&a, m->relay, sizeof(m->relay)), 0);
		/* 311 bytes: the longest a hostname address can be, under the bound of 320. */
		assert_int_equal(strlen(m->relay), 311);
		memset(m->sender_id, i, sizeof(m->sender_id));
	}
	memset(gi.name, 'z', GROUP_NAME_MAX);
	uint8_t out[INVITE_GROUP_MAX_LEN];
	size_t len;
	assert_int_equal(group_invite_encode(&gi, out, sizeof(out), &len), 0);
	assert_int_equal(len, INVITE_GROUP_MAX_LEN - 4 * (CAIRN_ADDRESS_MAX - 311));
	assert_int_equal(group_invite_parse(out, len, &back), 0);
	assert_memory_equal(&back, &gi, sizeof(gi));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),        cmocka_unit_test(test_offer),
	    cmocka_unit_test(test_join),         cmocka_unit_test(test_location),
	    cmocka_unit_test(test_welcome),      cmocka_unit_test(test_welcome_bounds),
	    cmocka_unit_test(test_group_invite), cmocka_unit_test(test_group_invite_longest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
