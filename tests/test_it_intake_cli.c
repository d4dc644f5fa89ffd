/* SPDX-License-Identifier: MIT */
/*
 * Integration: intake addresses (issue 13) through the real `cairn` command and two real
 * relays. An officer publishes an intake address on both; three defenders who never met the
 * officer accept it and write; the officer sees three requests with previews, accepts one
 * (the conversation then goes both ways), rejects one and blocks one (their later messages
 * never appear and nothing is sent to them); a replayed first message, copied from the
 * relay's store and sent again with fresh work, is dropped; and a rotation keeps the old
 * address working for its grace period, then refuses it.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "cliproc.h"
#include "it_client_common.h"
#include "it_common.h"
#include "it_group_cli_common.h"
#include "it_intake_common.h"
#include "work.h"

#define WORK_BITS "8" /* tests use low bits; 20 is the default, measured by cairn-bench */
#define GRACE_S   2
/* Envelopes copied from the relay's store at most. */
#define STORED_MAX 8

/* ---- the relay's store ---------------------------------------------------------------- */

struct stored {
	uint8_t *body;
	size_t len;
};

/* The envelopes relay R stores for the mailbox with sender id SID, oldest first, copied out
 * of its SQLite store (read while it runs, as any reader of its WAL may): what someone who
 * took the relay's disk would hold. Returns the count (at most STORED_MAX). */
static size_t stored_envelopes(const struct relayproc *r, const uint8_t sid[24], struct stored *out)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/relay.db", r->dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT e.body FROM envelopes e JOIN mailboxes m"
	                                    " ON e.mailbox = m.id WHERE m.sender_id = ?1"
	                                    " ORDER BY e.id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_blob(st, 1, sid, 24, SQLITE_STATIC);
	size_t n = 0;
	while (n < STORED_MAX && sqlite3_step(st) == SQLITE_ROW) {
		out[n].len = (size_t)sqlite3_column_bytes(st, 0);
		out[n].body = malloc(out[n].len);
		assert_non_null(out[n].body);
		memcpy(out[n].body, sqlite3_column_blob(st, 0), out[n].len);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Sends ENV again to the intake mailbox SID on R, with fresh work at BITS: the relay takes it
 * (the work is new), so only the officer's client can tell it is a replay. */
static void replay(const struct relayproc *r, const uint8_t sid[24], const struct stored *env,
                   unsigned bits)
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, r->port, r->pub), 0);
	uint8_t work[WORK_LEN];
	assert_int_equal(work_solve(sid, env->body, env->len, (uint64_t)time(NULL), bits,
	                            randombytes_random(), work, NULL),
	                 0);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .sender_id = sid,
	                      .work = work,
	                      .envelope = env->body,
	                      .envelope_len = env->len},
	                 reply;
	assert_int_equal(tclient_call(&c, &m, &reply), 0);
	tclient_close(&c);
}

/* ---- the test -------------------------------------------------------------------------- */

static void test_officer_and_three_defenders(void **state)
{
	struct world *w = *state;
	char homes[7][96];
	for (int i = 0; i < 7; i++)
		snprintf(homes[i], sizeof(homes[i]), "%s/h%d", w->dir, i);
	const char *officer = homes[0], *d1 = homes[1], *d2 = homes[2], *d3 = homes[3];
	assert_int_equal(relayproc_init(&w->relay2, NULL), 0);
	assert_int_equal(relayproc_start(&w->relay2), 0);
	char addr1[CAIRN_ADDRESS_MAX + 1], addr2[CAIRN_ADDRESS_MAX + 1];
	address_of(&w->relay, addr1);
	address_of(&w->relay2, addr2);

	/* The officer publishes an intake address on two relays. */
	cli_check(0, CALL(.home = officer), ARGS("init"));
	struct res made = cli_expect(0, CALL(.home = officer),
	                             ARGS("intake", "create", "--relay", addr1, "--relay", addr2,
	                                  "--name", "desk", "--work", WORK_BITS));
	made.out[strcspn(made.out, "\n")] = '\0';
	char *address = strdup(made.out);
	res_free(&made);
	uint8_t sid[24];
	intake_sender_id(address, sid);

	/* Three defenders who never met the officer write through it. */
	assert_int_equal(defender_writes(d1, address, "embassy", "hello from d1"), 0);
	assert_int_equal(defender_writes(d2, address, "embassy", "hello from d2"), 0);
	assert_int_equal(defender_writes(d3, address, "embassy", "hello from d3"), 0);
	/* The relay holds what they sent; a copy is taken before the officer reads it (the
	 * attacker's replay material). */
	struct stored env[STORED_MAX];
	size_t stored = stored_envelopes(&w->relay, sid, env);
	/* Two each: the first message, which `accept` sends (type 3, as with an invite's), and
	 * the text. */
	assert_int_equal(stored, 6);
	for (size_t i = 0; i < stored; i++)
		assert_int_equal(env[i].body[0], 3);

	/* The officer sees three requests, not contacts, each with its preview. */
	sync_expect(CALL(.home = officer), 0, -1);
	struct request req[8];
	size_t n = requests(officer, req, 8);
	assert_int_equal(n, 3);
	const struct request *r1 = find_request(req, n, "hello from d1");
	const struct request *r2 = find_request(req, n, "hello from d2");
	const struct request *r3 = find_request(req, n, "hello from d3");
	assert_non_null(r1);
	assert_non_null(r2);
	assert_non_null(r3);
	assert_int_equal(r1->messages, 1);
	assert_string_equal(r1->intake, "desk");
	struct res contacts = cli_expect(0, CALL(.home = officer), ARGS("contacts"));
	assert_null(strstr(contacts.out, "d1"));
	res_free(&contacts);
	/* No answer of any kind while they are requests. */
	sync_expect(CALL(.home = d1), 0, 0);

	/* d1's first message and its text replayed (the stored bytes, fresh work): dropped, no
	 * new request, no second message in d1's. */
	replay(&w->relay, sid, &env[0], 8);
	replay(&w->relay, sid, &env[1], 8);
	sync_expect(CALL(.home = officer), 0, -1);
	n = requests(officer, req, 8);
	assert_int_equal(n, 3);
	r1 = find_request(req, n, "hello from d1");
	assert_non_null(r1);
	assert_int_equal(r1->messages, 1);
	char id1[64], id2[64], id3[64];
	strcpy(id1, r1->id);
	strcpy(id2, find_request(req, n, "hello from d2")->id);
	strcpy(id3, find_request(req, n, "hello from d3")->id);

	/* Accept d1, reject d2, block d3. */
	cli_check(0, CALL(.home = officer), ARGS("requests", "accept", id1, "--name", "d1"));
	cli_check(0, CALL(.home = officer), ARGS("requests", "reject", id2));
	cli_check(0, CALL(.home = officer), ARGS("requests", "block", id3));
	assert_int_equal(requests(officer, req, 8), 0);

	/* The accepted conversation goes both ways: the officer's first message is the first
	 * d1 gets, and d1's reply reaches the officer. */
	cli_check(0, CALL(.home = officer), ARGS("send", "d1", "welcome, d1"));
	sync_expect(CALL(.home = d1), 0, 1);
	struct convo c = read_convo(d1, "embassy");
	assert_int_equal(count_text(&c, 0, "welcome, d1"), 1);
	convo_free(&c);
	cli_check(0, CALL(.home = d1), ARGS("send", "embassy", "thank you"));
	sync_expect(CALL(.home = officer), 0, 1);
	c = read_convo(officer, "d1");
	assert_int_equal(count_text(&c, 0, "hello from d1"), 1); /* once, replay or not */
	assert_int_equal(count_text(&c, 0, "thank you"), 1);
	assert_int_equal(count_text(&c, 1, "welcome, d1"), 1);
	convo_free(&c);
	cli_check(0, CALL(.home = officer), ARGS("send", "d1", "how can we help?"));
	sync_expect(CALL(.home = d1), 0, 1);

	/* d1's first message and text replayed after the accept: still dropped. */
	replay(&w->relay, sid, &env[0], 8);
	replay(&w->relay, sid, &env[1], 8);
	sync_expect(CALL(.home = officer), 0, 0);
	assert_int_equal(requests(officer, req, 8), 0);

	/* The rejected and the blocked write again: nothing appears, nothing is sent to them. */
	cli_check(0, CALL(.home = d2), ARGS("send", "embassy", "d2 again"));
	cli_check(0, CALL(.home = d3), ARGS("send", "embassy", "d3 again"));
	replay(&w->relay, sid, &env[2], 8);
	replay(&w->relay, sid, &env[3], 8);
	replay(&w->relay, sid, &env[4], 8);
	replay(&w->relay, sid, &env[5], 8);
	sync_expect(CALL(.home = officer), 0, 0);
	assert_int_equal(requests(officer, req, 8), 0);
	sync_expect(CALL(.home = d2), 0, 0);
	sync_expect(CALL(.home = d3), 0, 0);
	/* Through the address again, with a new first message: the rejected one may ask again
	 * (a new request); the blocked one's identity is refused. */
	cli_check(0, CALL(.home = d2), ARGS("accept", address, "--name", "embassy2"));
	cli_check(0, CALL(.home = d2), ARGS("send", "embassy2", "d2 asks again"));
	cli_check(0, CALL(.home = d3), ARGS("accept", address, "--name", "embassy2"));
	cli_check(0, CALL(.home = d3), ARGS("send", "embassy2", "d3 asks again"));
	sync_expect(CALL(.home = officer), 0, -1);
	n = requests(officer, req, 8);
	assert_int_equal(n, 1);
	assert_non_null(find_request(req, n, "d2 asks again"));
	sync_expect(CALL(.home = d3), 0, 0);

	for (size_t i = 0; i < stored; i++)
		free(env[i].body);
	free(address);
}

static void test_rotation_and_grace(void **state)
{
	struct world *w = *state;
	char homes[4][96];
	for (int i = 0; i < 4; i++)
		snprintf(homes[i], sizeof(homes[i]), "%s/h%d", w->dir, i);
	const char *officer = homes[0];
	cli_check(0, CALL(.home = officer), ARGS("init"));
	struct res made = cli_expect(
	    0, CALL(.home = officer),
	    ARGS("intake", "create", "--relay", w->addr, "--name", "desk", "--work", WORK_BITS));
	made.out[strcspn(made.out, "\n")] = '\0';
	char *old = strdup(made.out);
	res_free(&made);

	/* Rotate with a short grace: a new address, and the old one still works meanwhile. The
	 * client counts the grace from its clock's whole second (old_until = now_s + grace), so
	 * it ends between 1 and 2 s after the rotation: before_rotate bounds it from below,
	 * rotated from above. */
	time_t before_rotate = time(NULL);
	struct res rot =
	    cli_expect(0, CALL(.home = officer), ARGS("intake", "rotate", "desk", "--grace", "2s"));
	double rotated = it_mono_s();
	rot.out[strcspn(rot.out, "\n")] = '\0';
	char *fresh = strdup(rot.out);
	res_free(&rot);
	assert_int_equal(strncmp(fresh, "cairn-intake:", 13), 0);
	assert_string_not_equal(fresh, old);
	assert_int_equal(defender_writes(homes[1], old, "embassy", "through the old address"), 0);
	sync_expect(CALL(.home = officer), 0, -1);
	bool within = time(NULL) < before_rotate + GRACE_S;
	struct request req[4];
	size_t n = requests(officer, req, 4);
	/* Under a slow wrapper or a loaded machine the grace may have passed before the officer's
	 * sync ended (it retires the old mailboxes, with what they held, as soon as the grace is
	 * over): only a sync that ended within the grace must have read them. */
	if (within || n > 0) {
		assert_int_equal(n, 1);
		assert_non_null(find_request(req, n, "through the old address"));
	}

	/* After the grace the officer's next sync deletes the old address's mailboxes and logs:
	 * a defender can no longer use it, and the new one works. */
	while (it_mono_s() - rotated < GRACE_S + 0.5)
		it_sleep_ms(100);
	sync_expect(CALL(.home = officer), 0, -1);
	cli_check(0, CALL(.home = homes[2]), ARGS("init"));
	struct res acc = cli_run(CALL(.home = homes[2]), ARGS("accept", old, "--name", "embassy"));
	if (acc.status == 0) {
		/* An accept that does not reach the relay: the send must then fail, not queue. */
		struct res s = cli_run(CALL(.home = homes[2]), ARGS("send", "embassy", "too late"));
		assert_int_not_equal(s.status, 0);
		res_free(&s);
	}
	res_free(&acc);
	assert_int_equal(defender_writes(homes[3], fresh, "embassy", "through the new address"), 0);
	sync_expect(CALL(.home = officer), 0, -1);
	n = requests(officer, req, 4);
	assert_non_null(find_request(req, n, "through the new address"));
	assert_null(find_request(req, n, "too late"));
	free(old);
	free(fresh);
}

int main(void)
{
	/* group_cli_init: the command, the fast KDF and the homes' passphrase. */
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_officer_and_three_defenders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_and_grace, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
