/* SPDX-License-Identifier: MIT */
/*
 * Integration: the client's transport of group logs (client/logio.c) against the real
 * cairn-relay and its SQLite store. A relay holding at most two entries per log: the third
 * append is refused with `quota`, stays queued and is reported, and a second pass ends too
 * (no loop); a reader in another home reads the two in order; after the relay restarts, the
 * log and the reader's cursor hold (nothing read twice), and the refused append still waits.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "logio.h"
#include "relayproc.h"

#define PASS "correct horse battery staple"

struct th {
	struct group_log_ref log;
	uint64_t cursor;
	unsigned n, appended;
	char text[8][16];
};

static int th_logs(struct cairn *c, void *ctx,
                   int (*each)(void *, const struct group_log_ref *, uint64_t), void *each_ctx)
{
	(void)c;
	struct th *t = ctx;
	return each(each_ctx, &t->log, t->cursor + 1);
}

static int th_state(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t first,
                    uint64_t next)
{
	(void)c;
	(void)ctx;
	(void)log;
	assert_true(first <= next);
	return 0;
}

static int th_entry(struct cairn *c, void *ctx, const struct group_log_ref *log, uint64_t seq,
                    const uint8_t *entry, size_t len)
{
	(void)c;
	(void)log;
	struct th *t = ctx;
	assert_true(seq > t->cursor);
	assert_true(t->n < 8 && len < sizeof(t->text[0]));
	memcpy(t->text[t->n], entry, len);
	t->text[t->n++][len] = '\0';
	t->cursor = seq;
	return 0;
}

static int th_appended(struct cairn *c, void *ctx, const uint8_t out_id[16], uint64_t seq)
{
	(void)c;
	(void)out_id;
	(void)seq;
	((struct th *)ctx)->appended++;
	return 0;
}

static int th_gone(struct cairn *c, void *ctx, const struct group_log_ref *log)
{
	(void)c;
	(void)ctx;
	(void)log;
	fail_msg("no log is gone here");
	return 0;
}

static const struct logio_handler handler = {th_logs, th_state, th_entry, th_appended, th_gone};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct cairn *home(const char *root, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	struct cairn *c = NULL;
	assert_int_equal(cairn_init_kdf(path, PASS, CAIRN_KDF_INTERACTIVE), 0);
	assert_int_equal(cairn_open(path, PASS, &c), 0);
	return c;
}

/* How many items C's group outbox holds. */
static unsigned queued(struct cairn *c)
{
	unsigned n = 0;
	assert_int_equal(group_out_count(c, &n), 0);
	return n;
}

/* Starts a relay with LIMITS in R, makes ROOT (a "/tmp/...-XXXXXX" template) and a log on
 * the relay in *LOG (fresh id and credential). */
static void world(struct relayproc *r, const char *limits, char *root, struct group_log_ref *log)
{
	assert_int_equal(relayproc_init(r, limits), 0);
	assert_int_equal(relayproc_start(r), 0);
	assert_non_null(mkdtemp(root));
	struct cairn_address addr = {.host_type = CAIRN_HOST_IPV4, .port = r->port};
	memcpy(addr.key, r->pub, sizeof(addr.key));
	strcpy(addr.host, "127.0.0.1");
	memset(log, 0, sizeof(*log));
	assert_int_equal(cairn_address_format(&addr, log->relay, sizeof(log->relay)), 0);
	randombytes_buf(log->log_id, sizeof(log->log_id));
	randombytes_buf(log->credential, sizeof(log->credential));
}

static void test_quota_and_restart(void **state)
{
	(void)state;
	struct relayproc r;
	char root[64] = "/tmp/cairn-itlogio-XXXXXX";
	struct th ta = {0}, tb = {0};
	world(&r, "log_max_entries = 2\n", root, &ta.log);
	struct cairn *a = home(root, "a"), *b = home(root, "b");
	tb.log = ta.log;

	uint8_t secret[32], id[16];
	randombytes_buf(secret, sizeof(secret));
	assert_int_equal(cstate_begin(a->st), 0);
	assert_int_equal(group_out_create(a, &ta.log, secret), 0);
	const char *text[] = {"first", "second", "third"};
	for (int k = 0; k < 3; k++)
		assert_int_equal(
		    group_out_append(a, &ta.log, (const uint8_t *)text[k], strlen(text[k]), id), 0);
	assert_int_equal(cstate_commit(a->st), 0);

	struct logio_result res;
	assert_int_equal(logio_sync(a, &handler, &ta, &res), 0);
	assert_int_equal(res.sent, 3);
	assert_int_equal(res.refused, 1);
	assert_int_equal(ta.appended, 2);
	assert_int_equal(queued(a), 1);
	/* Again: refused again, and the pass ends. */
	assert_int_equal(logio_sync(a, &handler, &ta, &res), 0);
	assert_int_equal(res.refused, 1);
	assert_int_equal(queued(a), 1);

	assert_int_equal(logio_sync(b, &handler, &tb, &res), 0);
	assert_int_equal(tb.n, 2);
	assert_string_equal(tb.text[0], "first");
	assert_string_equal(tb.text[1], "second");

	assert_int_equal(relayproc_stop(&r, SIGTERM), 0);
	assert_int_equal(relayproc_start(&r), 0);
	assert_int_equal(logio_sync(b, &handler, &tb, &res), 0);
	assert_int_equal(res.relays_failed, 0);
	assert_int_equal(tb.n, 2);
	assert_int_equal(logio_sync(a, &handler, &ta, &res), 0);
	assert_int_equal(res.refused, 1);
	assert_int_equal(queued(a), 1);

	cairn_close(a);
	cairn_close(b);
	assert_int_equal(relayproc_stop(&r, SIGTERM), 0);
	relayproc_cleanup(&r);
	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A relay holding one log: the second log's create is refused with `full`; it stays queued,
 * and neither that log's append nor its read goes out before the create lands (the relay's
 * `denied` would mean the log is gone: th_gone fails the test). */
static void test_full_create_holds_its_log(void **state)
{
	(void)state;
	struct relayproc r;
	char root[64] = "/tmp/cairn-itlogio-XXXXXX";
	struct th t1 = {0}, t2 = {0};
	world(&r, "max_logs = 1\n", root, &t1.log);
	struct cairn *a = home(root, "a");
	t2.log = t1.log;
	t2.log.log_id[0] ^= 1;

	uint8_t secret[32] = {1}, id[16];
	assert_int_equal(cstate_begin(a->st), 0);
	assert_int_equal(group_out_create(a, &t1.log, secret), 0);
	assert_int_equal(group_out_create(a, &t2.log, secret), 0);
	assert_int_equal(group_out_append(a, &t2.log, (const uint8_t *)"held", 4, id), 0);
	assert_int_equal(cstate_commit(a->st), 0);

	struct logio_result res;
	assert_int_equal(logio_sync(a, &handler, &t2, &res), 0); /* reads the second log */
	assert_int_equal(res.sent, 1);
	assert_int_equal(res.refused, 1);
	assert_int_equal(res.gone, 0);
	assert_int_equal(queued(a), 2);
	assert_int_equal(t2.appended, 0);

	cairn_close(a);
	assert_int_equal(relayproc_stop(&r, SIGTERM), 0);
	relayproc_cleanup(&r);
	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quota_and_restart),
	    cmocka_unit_test(test_full_create_holds_its_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
