/* SPDX-License-Identifier: MIT */
/*
 * The client's record layouts (client/records.c) for several relays per contact: a contact
 * with our mailboxes (invite, retired and fresh ones) and the peer's, and an outbox entry that
 * names no destination, round-trip exactly; counts, flags and states out of range are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <regex.h>
#include <sodium.h>

#include "files.h"
#include "records.h"
#include "work.h"

static uint8_t ratchet_bytes[400];

static void make_contact(struct contact *k, int nmine, int npeer)
{
	memset(k, 0, sizeof(*k));
	strcpy(k->name, "bob");
	k->state = CONTACT_ESTABLISHED;
	memset(k->peer_identity, 0x11, sizeof(k->peer_identity));
	k->nmine = (uint8_t)nmine;
	for (int i = 0; i < nmine; i++) {
		snprintf(k->mine[i].relay, sizeof(k->mine[i].relay),
		         "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:%d",
		         7000 + i);
		memset(k->mine[i].recipient_id, 0x20 + i, CAIRN_MAILBOX_ID_LEN);
		memset(k->mine[i].sender_id, 0x30 + i, CAIRN_MAILBOX_ID_LEN);
		memset(k->mine[i].sign_sk, 0x40 + i, sizeof(k->mine[i].sign_sk));
		memset(k->mine[i].credential, 0x50 + i, CAIRN_CREDENTIAL_LEN);
		k->mine[i].flags = i < nmine / 2 ? MAILBOX_INVITE | MAILBOX_RETIRED : 0;
	}
	k->peer.count = (uint8_t)npeer;
	for (int i = 0; i < npeer; i++) {
		snprintf(k->peer.box[i].relay, sizeof(k->peer.box[i].relay),
		         "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@[::1]:%d", 9000 + i);
		memset(k->peer.box[i].sender_id, 0x60 + i, CAIRN_MAILBOX_ID_LEN);
		memset(k->peer.box[i].credential, 0x70 + i, CAIRN_CREDENTIAL_LEN);
	}
	k->move = MOVE_SENT;
	k->my_serial = 1;
	k->peer_serial = 7;
	memset(k->id, 0xa1, sizeof(k->id));
	memset(k->conv, 0xa2, sizeof(k->conv));
	memset(ratchet_bytes, 0x99, sizeof(ratchet_bytes));
	k->ratchet = ratchet_bytes;
	k->ratchet_len = sizeof(ratchet_bytes);
	for (int i = 0; i < npeer; i++) {
		k->peer_work_bits[i] = (uint8_t)(8 + i);
		memset(k->peer_log_id[i], 0x80 + i, CAIRN_LOG_ID_LEN);
	}
	memset(k->intake, 0xa3, sizeof(k->intake));
	memset(k->ek, 0xa4, sizeof(k->ek));
}

#define TRAILER_LEN CONTACT_INTAKE_TRAILER_LEN

/* Parses IN and checks it against WANT field by field (the ratchet is a fresh copy). */
static void check_same(const uint8_t *in, size_t len, const struct contact *want)
{
	struct contact got;
	assert_int_equal(contact_parse(in, len, &got), 0);
	assert_string_equal(got.name, want->name);
	assert_int_equal(got.nmine, want->nmine);
	assert_memory_equal(got.mine, want->mine, want->nmine * sizeof(want->mine[0]));
	assert_memory_equal(&got.peer, &want->peer, sizeof(want->peer));
	assert_int_equal(got.move, want->move);
	assert_int_equal(got.my_serial, want->my_serial);
	assert_int_equal(got.peer_serial, want->peer_serial);
	assert_memory_equal(got.id, want->id, sizeof(want->id));
	assert_memory_equal(got.conv, want->conv, sizeof(want->conv));
	assert_int_equal(got.ratchet_len, want->ratchet_len);
	assert_memory_equal(got.ratchet, want->ratchet, want->ratchet_len);
	assert_memory_equal(got.peer_work_bits, want->peer_work_bits, sizeof(got.peer_work_bits));
	assert_memory_equal(got.peer_log_id, want->peer_log_id, sizeof(got.peer_log_id));
	assert_memory_equal(got.intake, want->intake, sizeof(got.intake));
	assert_memory_equal(got.ek, want->ek, sizeof(got.ek));
	contact_wipe(&got);
}

static void test_contact_round_trip(void **state)
{
	struct contact k;
	const int shapes[][2] = {{1, 0}, {1, 1}, {2, 2}, {CONTACT_MINE_MAX, CAIRN_MAILBOXES_MAX}};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		make_contact(&k, shapes[i][0], shapes[i][1]);
		uint8_t *v = NULL;
		size_t len = 0;
		assert_int_equal(contact_encode(&k, &v, &len), 0);
		check_same(v, len, &k);
		/* Every truncation and a trailing byte fail cleanly. */
		for (size_t cut = 0; cut < len; cut += 7) {
			if (cut == len - TRAILER_LEN)
				continue; /* a record from before intake addresses: below */
			struct contact bad;
			assert_int_equal(contact_parse(v, cut, &bad), CAIRN_ECORRUPT);
			assert_true(sodium_is_zero((const uint8_t *)&bad, sizeof(bad)));
		}
		uint8_t *longer = malloc(len + 1);
		memcpy(longer, v, len);
		longer[len] = 0;
		struct contact bad;
		assert_int_equal(contact_parse(longer, len + 1, &bad), CAIRN_ECORRUPT);
		free(longer);
		free(v);
	}
	/* A record from before intake addresses reads with the intake fields zero. */
	make_contact(&k, 1, 1);
	memset(k.peer_work_bits, 0, sizeof(k.peer_work_bits));
	memset(k.peer_log_id, 0, sizeof(k.peer_log_id));
	memset(k.intake, 0, sizeof(k.intake));
	memset(k.ek, 0, sizeof(k.ek));
	uint8_t *old = NULL;
	size_t old_len = 0;
	assert_int_equal(contact_encode(&k, &old, &old_len), 0);
	check_same(old, old_len - TRAILER_LEN, &k);
	free(old);
	/* Too many mailboxes cannot be written. */
	make_contact(&k, 2, 2);
	uint8_t *v = NULL;
	size_t len = 0;
	k.nmine = CONTACT_MINE_MAX + 1;
	assert_int_equal(contact_encode(&k, &v, &len), CAIRN_EINVAL);
	k.nmine = 2;
	k.peer.count = CAIRN_MAILBOXES_MAX + 1;
	assert_int_equal(contact_encode(&k, &v, &len), CAIRN_EINVAL);
}

/* Values out of range in an encoded contact of one mailbox each way. The offsets follow the
 * layout: version, id, conversation id, name (u32 length + 3), state, identity, then the
 * counts and mailboxes. */
static void test_contact_refused(void **state)
{
	struct contact k, got;
	make_contact(&k, 1, 1);
	k.mine[0].flags = MAILBOX_INVITE | MAILBOX_RETIRED;
	uint8_t *v = NULL;
	size_t len = 0;
	assert_int_equal(contact_encode(&k, &v, &len), 0);
	const size_t nmine_at = 1 + 16 + 16 + 4 + 3 + 1 + 32;
	const size_t relay_len = strlen(k.mine[0].relay);
	const size_t flags_at = nmine_at + 1 + 4 + relay_len + 24 + 24 + 64 + 32;
	const size_t npeer_at = flags_at + 1;
	const size_t move_at = npeer_at + 1 + 4 + strlen(k.peer.box[0].relay) + 24 + 32;
	assert_int_equal(v[nmine_at], 1);
	assert_int_equal(v[flags_at], MAILBOX_INVITE | MAILBOX_RETIRED);
	assert_int_equal(v[npeer_at], 1);
	assert_int_equal(v[move_at], MOVE_SENT);
	struct {
		size_t at;
		uint8_t value;
	} bad[] = {
	    {0, 1},                              /* the layout before several relays */
	    {0, 2},                              /* the layout before ids (records_v1.h) */
	    {nmine_at, CONTACT_MINE_MAX + 1},    /* too many of ours */
	    {flags_at, 8},                       /* an unknown flag (4 is MAILBOX_INTAKE) */
	    {npeer_at, CAIRN_MAILBOXES_MAX + 1}, /* too many of theirs */
	    {move_at, MOVE_CONFIRMED + 1},       /* an unknown move state */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t keep = v[bad[i].at];
		v[bad[i].at] = bad[i].value;
		assert_int_equal(contact_parse(v, len, &got), CAIRN_ECORRUPT);
		v[bad[i].at] = keep;
	}
	check_same(v, len, &k);
	/* Work bits beyond WORK_BITS_MAX, and a nameless contact that is no request. */
	v[len - TRAILER_LEN] = WORK_BITS_MAX + 1;
	assert_int_equal(contact_parse(v, len, &got), CAIRN_ECORRUPT);
	free(v);
	make_contact(&k, 1, 1);
	k.name[0] = '\0';
	assert_int_equal(contact_encode(&k, &v, &len), 0);
	assert_int_equal(contact_parse(v, len, &got), CAIRN_ECORRUPT);
	free(v);
	k.state = CONTACT_REQUEST;
	assert_int_equal(contact_encode(&k, &v, &len), 0);
	check_same(v, len, &k);
	free(v);
}

static void test_outbox_round_trip(void **state)
{
	struct outbox_entry e, got;
	memset(&e, 0, sizeof(e));
	memset(e.conv, 0x56, sizeof(e.conv));
	memset(e.contact, 0x78, sizeof(e.contact));
	memset(e.message_id, 0x12, sizeof(e.message_id));
	memset(e.outbox_id, 0x34, sizeof(e.outbox_id));
	e.kind = APPMSG_MAILBOXES;
	uint8_t env[896];
	memset(env, 0x02, sizeof(env));
	e.envelope = env;
	e.envelope_len = sizeof(env);
	uint8_t *v = NULL, *again = NULL;
	size_t len = 0, alen = 0;
	assert_int_equal(outbox_encode(&e, &v, &len), 0);
	assert_int_equal(outbox_parse(v, len, &got), 0);
	assert_memory_equal(got.conv, e.conv, sizeof(e.conv));
	assert_memory_equal(got.contact, e.contact, sizeof(e.contact));
	assert_int_equal(got.kind, APPMSG_MAILBOXES);
	assert_int_equal(got.envelope_len, sizeof(env));
	assert_memory_equal(got.envelope, env, sizeof(env));
	assert_int_equal(outbox_encode(&got, &again, &alen), 0);
	assert_int_equal(alen, len);
	assert_memory_equal(again, v, len);
	v[0] = 1; /* the layout that named one destination */
	assert_int_equal(outbox_parse(v, len, &got), CAIRN_ECORRUPT);
	v[0] = 2; /* the layout that named the contact (records_v1.h) */
	assert_int_equal(outbox_parse(v, len, &got), CAIRN_ECORRUPT);
	free(v);
	free(again);
}

/* Record kinds are one number space spread over several headers (records.h says which takes
 * which): read every client header's `REC_NAME = N` and require each N once, so a kind a
 * branch adds cannot land on another's (the timer's index once took REC_GROUP_OFFER's 20). */
static void test_record_kinds_distinct(void **state)
{
	(void)state;
	const char *dir = CAIRN_DOCS_DIR "/../client";
	DIR *d = opendir(dir);
	assert_non_null(d);
	regex_t re;
	assert_int_equal(regcomp(&re, "(^|[^A-Za-z0-9_])(REC_[A-Z0-9_]+)[[:space:]]*=[[:space:]]*([0-9]+)",
	                         REG_EXTENDED | REG_NEWLINE),
	                 0);
	char names[256][48] = {{0}};
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0)
			continue;
		char path[4096], line[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f) != NULL) {
			regmatch_t m[4];
			if (regexec(&re, line, 4, m, 0) != 0)
				continue;
			long v = strtol(line + m[3].rm_so, NULL, 10);
			assert_true(v > 0 && v < 256);
			line[m[2].rm_eo] = '\0';
			if (names[v][0] != '\0')
				fail_msg("record kind %ld is both %s and %s (%s)", v, names[v],
				         line + m[2].rm_so, e->d_name);
			snprintf(names[v], sizeof(names[v]), "%s", line + m[2].rm_so);
			found++;
		}
		fclose(f);
	}
	closedir(d);
	regfree(&re);
	/* The reader saw the kinds it must: the first, and ones from three headers. */
	assert_true(found >= 30);
	assert_string_equal(names[REC_IDENTITY], "REC_IDENTITY");
	assert_string_equal(names[REC_EXPIRY], "REC_EXPIRY");
	assert_string_equal(names[REC_FILE], "REC_FILE");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_contact_round_trip),
	    cmocka_unit_test(test_contact_refused),
	    cmocka_unit_test(test_outbox_round_trip),
	    cmocka_unit_test(test_record_kinds_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
