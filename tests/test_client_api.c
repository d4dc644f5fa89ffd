/* SPDX-License-Identifier: MIT */
/*
 * libcairn's public API in-process, with no subprocess and no network: two homes in temporary
 * directories talk through in-memory relays (tests/support/memrelay.h) that run the relay's
 * own command layer, reached through the client's injected connect function (client_set_env).
 * What is proved: invite and accept, exactly-once delivery both ways, failover between two
 * relays (one down, both down and back), the move out of the invite mailboxes (deleted on the
 * relay afterwards), a rename that keeps the conversation, and receive's edge cases.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/cairn.h"
#include "client.h"
#include "memrelay.h"

#define PASS     "correct horse battery staple"
#define RELAYS   2
#define SEEN_MAX 64

/* Messages one sync handed to its callback. */
struct seen {
	unsigned n;
	char text[SEEN_MAX][128];
	char contact[SEEN_MAX][CAIRN_NAME_MAX + 1];
};

struct world {
	char root[64];
	struct memrelay *relay[RELAYS];
	const char *addr[RELAYS];
	struct client_env env, real_env; /* skipping clock; real clock (memrelay.h) */
	struct cairn *a, *b;       /* alice and bob */
	struct listener *listener; /* Bob's listening thread, while it runs */
};

static void listener_stop(struct world *w);

/* ---- homes ------------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Homes made once (cairn_init derives a key from the passphrase: the slow part) and copied
 * for each test: each test then starts from two fresh identities' state, unpaired. */
static char templates[64];

static int copy_home(const char *from, const char *to)
{
	DIR *d = opendir(from);
	if (d == NULL || mkdir(to, 0700) != 0) {
		if (d != NULL)
			closedir(d);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char src[512], dst[512], buf[8192];
		snprintf(src, sizeof(src), "%s/%s", from, e->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
		FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
		size_t n;
		while (in != NULL && out != NULL && (n = fread(buf, 1, sizeof(buf), in)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				rc = -1;
		if (in == NULL || out == NULL || ferror(in))
			rc = -1;
		if (in != NULL)
			fclose(in);
		if (out != NULL && fclose(out) != 0)
			rc = -1;
		if (rc == 0 && chmod(dst, 0600) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

static struct cairn *home_new(struct world *w, const char *name)
{
	char from[128], path[128];
	snprintf(from, sizeof(from), "%s/%s", templates, name);
	snprintf(path, sizeof(path), "%s/%s", w->root, name);
	struct cairn *c = NULL;
	assert_int_equal(copy_home(from, path), 0);
	assert_int_equal(cairn_open(path, PASS, &c), 0);
	client_set_env(c, &w->env);
	return c;
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(templates, "/tmp/cairn-api-homes-XXXXXX");
	if (mkdtemp(templates) == NULL)
		return -1;
	const char *names[] = {"alice", "bob"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", templates, names[i]);
		if (cairn_init_kdf(path, PASS, CAIRN_KDF_INTERACTIVE) != 0)
			return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(templates, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->root, "/tmp/cairn-api-XXXXXX");
	if (mkdtemp(w->root) == NULL)
		return -1;
	for (int i = 0; i < RELAYS; i++) {
		if ((w->relay[i] = memrelay_new(NULL)) == NULL)
			return -1;
		w->addr[i] = memrelay_address(w->relay[i]);
	}
	memrelay_env_skipping(&w->env);
	w->a = home_new(w, "alice");
	w->b = home_new(w, "bob");
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	listener_stop(w); /* a failed assertion left it running */
	cairn_close(w->a);
	cairn_close(w->b);
	for (int i = 0; i < RELAYS; i++)
		memrelay_free(w->relay[i]);
	nftw(w->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(w);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct seen *s = ctx;
	assert_true(s->n < SEEN_MAX);
	assert_true(m->len < sizeof(s->text[0]));
	memcpy(s->text[s->n], m->text, m->len);
	s->text[s->n][m->len] = '\0';
	snprintf(s->contact[s->n], sizeof(s->contact[0]), "%s", m->contact);
	s->n++;
	return 0;
}

/* One cairn_sync of C: expects return code RC and that it stored RECEIVED new messages. */
static struct seen sync_expect(struct cairn *c, int rc, unsigned received)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	struct cairn_sync_result res;
	int got = cairn_sync(c, &res, on_message, &s);
	if (got != rc || res.received != received)
		print_message("sync: %d (%s), received %u sent %u pending %u failed %u\n", got,
		              cairn_strerror(got), res.received, res.sent, res.pending,
		              res.relays_failed);
	assert_int_equal(got, rc);
	assert_int_equal(res.received, received);
	assert_int_equal(s.n, received);
	return s;
}

/* How many messages of the conversation with NAME have TEXT (OUTGOING 1: ours). */
struct count_ctx {
	const char *text;
	int outgoing;
	unsigned n, all;
};

static int count_one(void *vctx, const struct cairn_message *m)
{
	struct count_ctx *x = vctx;
	x->all++;
	if (m->outgoing == x->outgoing && m->len == strlen(x->text) &&
	    memcmp(m->text, x->text, m->len) == 0)
		x->n++;
	return 0;
}

static unsigned count_text(struct cairn *c, const char *name, int outgoing, const char *text)
{
	struct count_ctx x = {.text = text, .outgoing = outgoing};
	assert_int_equal(cairn_read(c, name, count_one, &x), 0);
	return x.n;
}

static void send_text(struct cairn *c, const char *name, const char *text, int rc)
{
	int got = cairn_send(c, name, (const uint8_t *)text, strlen(text), NULL);
	if (got != rc)
		print_message("send \"%s\" to %s: %d (%s)\n", text, name, got, cairn_strerror(got));
	assert_int_equal(got, rc);
}

/*
 * Alice invites Bob over the first NRELAYS relays, Bob accepts (his own mailboxes on the same
 * relays) and his first message reaches her; she moves him out of her invite mailboxes and
 * tells him so, which he learns at his next sync. Both are then "established".
 */
static void pair(struct world *w, size_t nrelays)
{
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(w->a, w->addr, nrelays, "bob", &invite), 0);
	assert_int_equal(cairn_invite_accept(w->b, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	sync_expect(w->a, 0, 0); /* the first message is no conversation message */
	sync_expect(w->b, 0, 0); /* the new mailboxes */
}

static struct memrelay_stats stats(struct world *w, int i)
{
	struct memrelay_stats st;
	memrelay_stats(w->relay[i], &st);
	return st;
}

/* ---- the tests -------------------------------------------------------------------------- */

/* Invite, accept, then a message each way: each arrives once, in the right conversation, and
 * a second sync brings nothing again. */
static void test_send_sync_both_ways(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	send_text(w->a, "bob", "hello bob", 0);
	struct seen s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "hello bob");
	assert_string_equal(s.contact[0], "alice");
	sync_expect(w->b, 0, 0);
	send_text(w->b, "alice", "hello alice", 0);
	s = sync_expect(w->a, 0, 1);
	assert_string_equal(s.text[0], "hello alice");
	assert_string_equal(s.contact[0], "bob");
	sync_expect(w->a, 0, 0);
	assert_int_equal(count_text(w->b, "alice", 0, "hello bob"), 1);
	assert_int_equal(count_text(w->a, "bob", 0, "hello alice"), 1);
	assert_int_equal(count_text(w->a, "bob", 1, "hello bob"), 1);
	/* Everything delivered was acknowledged: the relay holds nothing. */
	assert_int_equal(stats(w, 0).stored, 0);
}

/*
 * Two relays, Bob's mailboxes on both. With the first down, a message goes through the other
 * at once. With both down it stays queued (CAIRN_ECONNECT, still pending after a sync), and
 * once one comes back the next sync sends it; it arrives once, and not again when the other
 * relay is back too.
 */
static void test_failover(void **state)
{
	struct world *w = *state;
	pair(w, 2);
	memrelay_set_down(w->relay[0], true);
	uint64_t before = stats(w, 1).accepted;
	send_text(w->a, "bob", "through the second", 0);
	assert_int_equal(stats(w, 1).accepted, before + 1);
	struct seen s = sync_expect(w->b, CAIRN_ECONNECT, 1);
	assert_string_equal(s.text[0], "through the second");

	memrelay_set_down(w->relay[1], true);
	send_text(w->a, "bob", "queued", CAIRN_ECONNECT);
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(w->a, &res, NULL, NULL), CAIRN_ECONNECT);
	assert_int_equal(res.sent, 0);
	assert_int_equal(res.pending, 1);
	assert_int_equal(res.relays_failed, 2);

	memrelay_set_down(w->relay[1], false);
	assert_int_equal(cairn_sync(w->a, &res, NULL, NULL), CAIRN_ECONNECT);
	assert_int_equal(res.sent, 1);
	assert_int_equal(res.pending, 0);
	s = sync_expect(w->b, CAIRN_ECONNECT, 1);
	assert_string_equal(s.text[0], "queued");

	memrelay_set_down(w->relay[0], false);
	sync_expect(w->b, 0, 0);
	sync_expect(w->a, 0, 0);
	assert_int_equal(count_text(w->b, "alice", 0, "queued"), 1);
	assert_int_equal(count_text(w->b, "alice", 0, "through the second"), 1);
	assert_int_equal(count_text(w->a, "bob", 1, "queued"), 1);
}

/*
 * The move out of the invite mailbox (PROTOCOL.md 8.10), counted on the relay: Alice's invite
 * mailbox, then Bob's; Alice makes a fresh one once Bob answered and tells him; once Bob has
 * written to the fresh one, Alice deletes the invite mailbox. Messages flow before, during
 * and after, each once.
 */
static void test_mailbox_move(void **state)
{
	struct world *w = *state;
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(w->a, w->addr, 1, "bob", &invite), 0);
	assert_int_equal(stats(w, 0).mailboxes, 1);
	assert_int_equal(cairn_invite_accept(w->b, invite, "alice", NULL, 0), 0);
	cairn_free(invite);
	assert_int_equal(stats(w, 0).mailboxes, 2);
	assert_int_equal(stats(w, 0).stored, 1); /* Bob's first message, in the invite mailbox */
	sync_expect(w->a, 0, 0);
	assert_int_equal(stats(w, 0).mailboxes, 3); /* the fresh one, announced to Bob */
	send_text(w->a, "bob", "during the move", 0);
	struct seen s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "during the move");
	/* Bob now writes to the fresh mailbox; the invite mailbox is deleted once that
	 * message is in. */
	send_text(w->b, "alice", "after the move", 0);
	s = sync_expect(w->a, 0, 1);
	assert_string_equal(s.text[0], "after the move");
	sync_expect(w->a, 0, 0);
	assert_int_equal(stats(w, 0).mailboxes, 2);
	assert_int_equal(stats(w, 0).stored, 0);
	/* And the conversation goes on through the fresh mailboxes. */
	send_text(w->b, "alice", "still here", 0);
	s = sync_expect(w->a, 0, 1);
	assert_string_equal(s.text[0], "still here");
	send_text(w->a, "bob", "me too", 0);
	s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "me too");
	assert_int_equal(stats(w, 0).mailboxes, 2);
}

/* A rename changes the label only: the history, and the conversation going on, stay. */
static void test_rename_keeps_conversation(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	send_text(w->b, "alice", "before the rename", 0);
	sync_expect(w->a, 0, 1);
	assert_int_equal(cairn_rename(w->a, "bob", "robert"), 0);
	send_text(w->b, "alice", "after the rename", 0);
	struct seen s = sync_expect(w->a, 0, 1);
	assert_string_equal(s.contact[0], "robert");
	assert_int_equal(count_text(w->a, "robert", 0, "before the rename"), 1);
	assert_int_equal(count_text(w->a, "robert", 0, "after the rename"), 1);
	struct count_ctx x = {.text = ""};
	assert_int_equal(cairn_read(w->a, "bob", count_one, &x), CAIRN_ENOTFOUND);
	send_text(w->a, "robert", "renamed", 0);
	s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "renamed");
}

/*
 * The same envelope through two relays: the first stores it but drops the connection before
 * its OK, so Alice sends it again through the second. Bob gets both copies and shows the
 * message once; both relays are left empty (the copy is acknowledged, not kept).
 */
static void test_duplicate_through_two_relays(void **state)
{
	struct world *w = *state;
	pair(w, 2);
	memrelay_cut_after_send(w->relay[0]);
	send_text(w->a, "bob", "once only", 0);
	assert_int_equal(stats(w, 0).stored, 1);
	assert_int_equal(stats(w, 1).stored, 1);
	struct seen s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "once only");
	sync_expect(w->b, 0, 0);
	assert_int_equal(count_text(w->b, "alice", 0, "once only"), 1);
	assert_int_equal(stats(w, 0).stored, 0);
	assert_int_equal(stats(w, 1).stored, 0);
}

/* An envelope that opens to nothing (garbage from someone holding the send credential) is
 * acknowledged and dropped: shown nowhere, not delivered again, and it blocks nothing. */
static void test_garbage_envelope_dropped(void **state)
{
	struct world *w = *state;
	pair(w, 1);
	/* Bob's own mailbox for Alice: its relay, sender id and credential are in his state. */
	struct contact k;
	assert_int_equal(client_load_contact(w->b, "alice", &k), 0);
	const struct my_mailbox *mb = NULL;
	for (size_t i = 0; i < k.nmine && mb == NULL; i++)
		if (!(k.mine[i].flags & MAILBOX_RETIRED))
			mb = &k.mine[i];
	assert_non_null(mb);
	struct cnet *n = NULL;
	assert_int_equal(client_connect(w->b, mb->relay, &n), 0);
	uint8_t junk[300];
	randombytes_buf(junk, sizeof(junk));
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = mb->sender_id,
	                      .credential = mb->credential,
	                      .envelope = junk,
	                      .envelope_len = sizeof(junk)},
	                 reply;
	assert_int_equal(client_call(w->b, n, &m, &reply), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
	cnet_close(n);
	contact_wipe(&k);
	send_text(w->a, "bob", "after the junk", 0);
	assert_int_equal(stats(w, 0).stored, 2);
	uint64_t acked = stats(w, 0).acknowledged;
	struct seen s = sync_expect(w->b, 0, 1);
	assert_string_equal(s.text[0], "after the junk");
	assert_int_equal(stats(w, 0).acknowledged, acked + 2);
	assert_int_equal(stats(w, 0).stored, 0);
	sync_expect(w->b, 0, 0);
}

/* ---- listening while relays go down ------------------------------------------------------ */

/* Bob's cairn_listen on a thread of its own (his handle is used there only). */
struct listener {
	struct cairn *c;
	pthread_t thread;
	pthread_mutex_t lock;
	struct seen seen;
	int rc;
};

/* cairn_listen's stop flag is for signal handlers: set it from the listening thread itself
 * (a signal sent to it), not from another thread, which would be a data race. */
static volatile sig_atomic_t listen_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	listen_stop = 1;
}

static int on_message_locked(void *ctx, const struct cairn_message *m)
{
	struct listener *l = ctx;
	pthread_mutex_lock(&l->lock);
	int rc = on_message(&l->seen, m);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

static void *listen_thread(void *arg)
{
	struct listener *l = arg;
	l->rc = cairn_listen(l->c, on_message_locked, l, &listen_stop);
	return NULL;
}

/* Stops and frees W's listener, if one runs. */
static void listener_stop(struct world *w)
{
	struct listener *l = w->listener;
	if (l == NULL)
		return;
	pthread_kill(l->thread, SIGUSR1);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->lock);
	free(l);
	w->listener = NULL;
}

/* Waits (10 s at most, real time) until L has seen N messages; returns how many it has. */
static unsigned wait_seen(struct listener *l, unsigned n)
{
	unsigned have = 0;
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&l->lock);
		have = l->seen.n;
		pthread_mutex_unlock(&l->lock);
		if (have >= n)
			break;
		usleep(10000);
	}
	return have;
}

/*
 * Bob listens on both relays while they go down one at a time under him: a relay going down
 * closes his open connection, the message goes through the other relay and reaches him
 * there, and once the first is back he has reconnected to it (with backoff) and receives
 * through it. Each message once.
 */
static void test_listen_through_outages(void **state)
{
	struct world *w = *state;
	pair(w, 2);
	/* Bob's thread reads the skipping clock while Alice sends: her sends wait for nothing
	 * but the relays, and keep real time. */
	memrelay_env(&w->real_env);
	client_set_env(w->a, &w->real_env);
	struct listener *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	l->c = w->b;
	assert_int_equal(pthread_mutex_init(&l->lock, NULL), 0);
	struct sigaction act;
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_stop_signal;
	assert_int_equal(sigaction(SIGUSR1, &act, NULL), 0);
	listen_stop = 0;
	assert_int_equal(pthread_create(&l->thread, NULL, listen_thread, l), 0);
	w->listener = l;
	send_text(w->a, "bob", "one", 0);
	assert_int_equal(wait_seen(l, 1), 1);
	assert_true(stats(w, 0).open_connections >= 1); /* Bob's subscription */
	memrelay_set_down(w->relay[0], true);
	assert_int_equal(stats(w, 0).open_connections, 0);
	send_text(w->a, "bob", "two", 0);
	assert_int_equal(wait_seen(l, 2), 2);
	memrelay_set_down(w->relay[0], false);
	memrelay_set_down(w->relay[1], true);
	uint64_t before = stats(w, 0).accepted;
	send_text(w->a, "bob", "three", 0);
	assert_int_equal(stats(w, 0).accepted, before + 1);
	assert_int_equal(wait_seen(l, 3), 3);
	memrelay_set_down(w->relay[1], false);
	assert_int_equal(pthread_kill(l->thread, SIGUSR1), 0);
	pthread_join(l->thread, NULL);
	w->listener = NULL;
	assert_int_equal(l->rc, 0);
	assert_int_equal(l->seen.n, 3);
	assert_string_equal(l->seen.text[0], "one");
	assert_string_equal(l->seen.text[1], "two");
	assert_string_equal(l->seen.text[2], "three");
	pthread_mutex_destroy(&l->lock);
	free(l);
	sync_expect(w->b, 0, 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_send_sync_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailbox_move, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_keeps_conversation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_through_two_relays, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_envelope_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_listen_through_outages, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
