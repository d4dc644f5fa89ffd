/* SPDX-License-Identifier: MIT */
/*
 * The reassembly of a message of several parts (client_join_parts, shared by 1:1 texts and
 * welcomes and group texts), on a fresh home: parts in any order make the message once;
 * parts that disagree on count or sent_at, a part longer than its bound, and parts that join
 * to more than a message may hold drop the message and its stored parts; a store that fails
 * returns its error with nothing stored, so that the part can come again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "client.h"
#include "group_entry.h"

#define PASS "parts passphrase"

struct fixture {
	char root[64];
	char home[96];
	struct cairn *c;
	uint8_t conv[RECORD_ID_LEN];
	uint8_t id[APPMSG_ID_LEN];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->root, "/tmp/cairn-parts-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->home, sizeof(f->home), "%s/home", f->root);
	assert_int_equal(cairn_init_kdf(f->home, PASS, CAIRN_KDF_INTERACTIVE), 0);
	assert_int_equal(cairn_open(f->home, PASS, &f->c), 0);
	randombytes_buf(f->conv, sizeof(f->conv));
	randombytes_buf(f->id, sizeof(f->id));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cairn_close(f->c);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/*
 * Offers part INDEX of COUNT (sent at SENT_AT, LEN bytes of DATA's, each byte 'a' + INDEX)
 * of F's message to client_join_parts with bound MAX. Returns what it returns; a joined text
 * goes to *TEXT (NULL if none).
 */
static int offer(struct fixture *f, size_t max, uint16_t index, uint16_t count, uint64_t sent_at,
                 size_t len, uint8_t **text, size_t *tlen)
{
	uint8_t *data = malloc(len ? len : 1), *raw = malloc(len + APPMSG_HEADER_LEN + 16);
	assert_non_null(data);
	assert_non_null(raw);
	memset(data, 'a' + index, len);
	struct appmsg m = {.kind = APPMSG_TEXT,
	                   .sent_at = sent_at,
	                   .part_index = index,
	                   .part_count = count,
	                   .data = data,
	                   .data_len = len};
	memcpy(m.id, f->id, APPMSG_ID_LEN);
	size_t rawlen = 0;
	assert_int_equal(appmsg_encode(&m, raw, len + APPMSG_HEADER_LEN + 16, &rawlen), 0);
	struct appmsg am;
	assert_int_equal(appmsg_parse(raw, rawlen, &am), 0);
	*text = NULL;
	*tlen = 0;
	int rc = client_join_parts(f->c, f->conv, max, &am, raw, rawlen, text, tlen);
	free(data);
	free(raw);
	return rc;
}

/* Records of REC_PART kept in F's store. */
static int64_t parts_kept(struct fixture *f)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/cairn.db", f->home);
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 30000);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM records WHERE kind = 5", -1, &s, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void raw_exec(struct fixture *f, const char *sql)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/cairn.db", f->home);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 30000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Three parts in the order 2, 0, 1 under either bound: the message once, in index order, and
 * no part left; a part offered again afterwards starts a new wait. */
static void test_any_order(void **state)
{
	struct fixture *f = *state;
	const size_t bounds[] = {APPMSG_PART_MAX, GROUP_TEXT_DATA_MAX};
	for (size_t b = 0; b < 2; b++) {
		size_t max = bounds[b];
		uint8_t *t = NULL;
		size_t tl = 0;
		randombytes_buf(f->id, sizeof(f->id));
		assert_int_equal(offer(f, max, 2, 3, 7, 10, &t, &tl), 0);
		assert_int_equal(offer(f, max, 0, 3, 7, max, &t, &tl), 0);
		assert_int_equal(parts_kept(f), 2);
		assert_int_equal(offer(f, max, 1, 3, 7, max, &t, &tl), 1);
		assert_non_null(t);
		assert_int_equal(tl, 2 * max + 10);
		assert_int_equal(t[0], 'a');
		assert_int_equal(t[max], 'b');
		assert_int_equal(t[2 * max + 9], 'c');
		free(t);
		assert_int_equal(parts_kept(f), 0);
		assert_int_equal(offer(f, max, 1, 3, 7, max, &t, &tl), 0);
		assert_null(t);
		assert_int_equal(offer(f, max, 1, 3, 7, max, &t, &tl), 0); /* the same again */
		assert_int_equal(parts_kept(f), 1);
		raw_exec(f, "DELETE FROM records WHERE kind = 5");
	}
}

/* Parts that disagree on their count or their sent_at, or one longer than the bound: the
 * message is dropped with every part of it, and the right part after that completes
 * nothing. */
static void test_disagreeing_parts_drop(void **state)
{
	struct fixture *f = *state;
	uint8_t *t = NULL;
	size_t tl = 0;

	/* Count: part 1 says 3, part 0 says 2. */
	assert_int_equal(offer(f, APPMSG_PART_MAX, 1, 3, 7, 5, &t, &tl), 0);
	assert_int_equal(offer(f, APPMSG_PART_MAX, 0, 2, 7, 5, &t, &tl), 0);
	assert_null(t);
	assert_int_equal(parts_kept(f), 0);
	assert_int_equal(offer(f, APPMSG_PART_MAX, 1, 2, 7, 5, &t, &tl), 0);
	assert_null(t);
	raw_exec(f, "DELETE FROM records WHERE kind = 5");

	/* sent_at. */
	randombytes_buf(f->id, sizeof(f->id));
	assert_int_equal(offer(f, APPMSG_PART_MAX, 0, 2, 7, 5, &t, &tl), 0);
	assert_int_equal(offer(f, APPMSG_PART_MAX, 1, 2, 8, 5, &t, &tl), 0);
	assert_null(t);
	assert_int_equal(parts_kept(f), 0);

	/* A part over the group bound (a 1:1 part would fit it): dropped, not copied past the
	 * buffer the bound sized. */
	randombytes_buf(f->id, sizeof(f->id));
	assert_int_equal(offer(f, GROUP_TEXT_DATA_MAX, 1, 2, 7, 5, &t, &tl), 0);
	assert_int_equal(offer(f, GROUP_TEXT_DATA_MAX, 0, 2, 7, GROUP_TEXT_DATA_MAX + 1, &t, &tl),
	                 0);
	assert_null(t);
	assert_int_equal(parts_kept(f), 0);

	/* Parts that join to more than CAIRN_MESSAGE_MAX. */
	randombytes_buf(f->id, sizeof(f->id));
	uint16_t n = (uint16_t)(CAIRN_MESSAGE_MAX / APPMSG_PART_MAX + 1);
	for (uint16_t i = 0; i < n; i++) {
		assert_int_equal(offer(f, APPMSG_PART_MAX, i, n, 7, APPMSG_PART_MAX, &t, &tl), 0);
		assert_null(t);
	}
	assert_int_equal(parts_kept(f), 0);
}

/* The store fails at the part's write: the error returns (the caller rolls back and the
 * part comes again), and once it works the message completes. */
static void test_store_failure_returns(void **state)
{
	struct fixture *f = *state;
	uint8_t *t = NULL;
	size_t tl = 0;
	assert_int_equal(offer(f, APPMSG_PART_MAX, 0, 2, 7, 5, &t, &tl), 0);
	raw_exec(f, "CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.kind = 5"
	            " BEGIN SELECT RAISE(ABORT, 'refused'); END");
	assert_true(offer(f, APPMSG_PART_MAX, 1, 2, 7, 5, &t, &tl) < 0);
	assert_null(t);
	assert_int_equal(parts_kept(f), 1);
	raw_exec(f, "DROP TRIGGER refuse");
	assert_int_equal(offer(f, APPMSG_PART_MAX, 1, 2, 7, 5, &t, &tl), 1);
	assert_int_equal(tl, 10);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_any_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disagreeing_parts_drop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_failure_returns, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
