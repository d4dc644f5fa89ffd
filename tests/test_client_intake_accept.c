/* SPDX-License-Identifier: MIT */
/*
 * The requester's side of intake addresses (docs/PROTOCOL.md 10.1, 10.3, 10.4, 8.10) through
 * libcairn's public API, in-process against in-memory relays (tests/support/memrelay.h). The
 * owner's side is made by hand here, with the proto functions and relay commands: an intake
 * mailbox (CREATE, INTAKE), a bundle log (LOG_CREATE, LOG_APPEND of a signed bundle), reading
 * the intake mailbox (SUBSCRIBE) and answering with a mailboxes message. What is proved:
 * accepting an address sends a type 3 first message with valid work; a relay that raises its
 * bits makes the client read the bundle again and succeed; a clock the relay refuses gives
 * CAIRN_EWORK; no, an expired or a foreign bundle adds nothing; the first relay down, the
 * second gets it; once the owner's mailboxes message is in, messages are ordinary SENDs to
 * the fresh mailbox. Low work bits throughout (1..16).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "appmsg.h"
#include "cairn/cairn.h"
#include "client.h"
#include "e2e.h"
#include "intake.h"
#include "memrelay.h"
#include "relayproc.h"

#define PASS   "correct horse battery staple"
#define RELAYS 2
#define DAY    86400

struct world {
	char root[64];
	struct memrelay *relay[RELAYS];
	const char *addr[RELAYS];
	struct client_env env;
	struct cairn *a, *b; /* the owner (alice: her identity, her relay calls), the requester */
};

/* An intake point of the owner's on relay RELAY: its intake mailbox and bundle log. */
struct point {
	int relay;
	struct my_mailbox mb;
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t log_cred[CAIRN_CREDENTIAL_LEN];
};

/* ---- the world -------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->root, "/tmp/cairn-intake-XXXXXX");
	if (mkdtemp(w->root) == NULL)
		return -1;
	for (int i = 0; i < RELAYS; i++) {
		if ((w->relay[i] = memrelay_new(NULL)) == NULL)
			return -1;
		w->addr[i] = memrelay_address(w->relay[i]);
	}
	/* One client thread at a time: the skipping clock is exact (memrelay.h). */
	memrelay_env_skipping(&w->env);
	/* Passphrases stretched by fuzz/fastkdf.c's stand-in (tests/CMakeLists.txt). */
	struct cairn **homes[2] = {&w->a, &w->b};
	static const char *const names[2] = {"alice", "bob"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", w->root, names[i]);
		if (cairn_init(path, PASS) != 0 || cairn_open(path, PASS, homes[i]) != 0)
			return -1;
		client_set_env(*homes[i], &w->env);
	}
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	cairn_close(w->a);
	cairn_close(w->b);
	for (int i = 0; i < RELAYS; i++)
		memrelay_free(w->relay[i]);
	test_rm_tree(w->root);
	free(w);
	return 0;
}

/* ---- the owner's side, by hand ---------------------------------------------------------- */

/* One command M on a connection of the owner's to RELAY, after AUTH for MB if not NULL;
 * asserts the answer RC. */
static void owner_call(struct world *w, const char *relay, const struct my_mailbox *mb,
                       struct cairn_msg *m, int rc)
{
	struct cnet *n = NULL;
	struct cairn_msg reply;
	assert_int_equal(client_connect(w->a, relay, &n), 0);
	if (mb != NULL) {
		uint8_t sig[64];
		client_auth_signature(n, mb, sig);
		struct cairn_msg auth = {
		    .type = CAIRN_CMD_AUTH, .recipient_id = mb->recipient_id, .signature = sig};
		assert_int_equal(client_call(w->a, n, &auth, &reply), 0);
	}
	int got = client_call(w->a, n, m, &reply);
	if (got != rc)
		print_message("command %d: %d (%s)\n", (int)m->type, got, cairn_strerror(got));
	assert_int_equal(got, rc);
	cnet_close(n);
}

static void point_bits(struct world *w, const struct point *p, uint8_t bits)
{
	struct cairn_msg m = {
	    .type = CAIRN_CMD_INTAKE, .recipient_id = p->mb.recipient_id, .work_bits = bits};
	owner_call(w, w->addr[p->relay], &p->mb, &m, 0);
}

/* An intake mailbox demanding BITS and an empty bundle log on relay I. */
static void point_new(struct world *w, int i, uint8_t bits, struct point *p)
{
	memset(p, 0, sizeof(*p));
	p->relay = i;
	assert_int_equal(client_create_mailbox(w->a, w->addr[i], &p->mb), 0);
	point_bits(w, p, bits);
	uint8_t digest[32], del[32], del_digest[32];
	randombytes_buf(p->log_id, sizeof(p->log_id));
	randombytes_buf(p->log_cred, sizeof(p->log_cred));
	randombytes_buf(del, sizeof(del));
	/* Keyed with the log id (5.9). */
	crypto_generichash(digest, 32, p->log_cred, 32, p->log_id, CAIRN_LOG_ID_LEN);
	crypto_generichash(del_digest, 32, del, 32, p->log_id, CAIRN_LOG_ID_LEN);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .log_id = p->log_id,
	                      .credential = digest,
	                      .delete_digest = del_digest};
	owner_call(w, w->addr[i], NULL, &m, 0);
}

/* Appends to P's bundle log a bundle of SPK (created and expires relative to now) at BITS,
 * signed with SK (the owner's identity secret key, or another's). */
static void point_bundle(struct world *w, const struct point *p, const uint8_t spk[32],
                         int64_t created, int64_t expires, uint8_t bits, const uint8_t sk[64])
{
	int64_t now = (int64_t)time(NULL);
	struct intake_bundle b = {.created = (uint64_t)(now + created),
	                          .expires = (uint64_t)(now + expires),
	                          .work_bits = bits};
	memcpy(b.identity, sk + 32, 32);
	memcpy(b.prekey, spk, 32);
	uint8_t entry[BUNDLE_LEN];
	assert_int_equal(bundle_sign(&b, p->log_id, sk, entry), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = p->log_id,
	                      .credential = p->log_cred,
	                      .envelope = entry,
	                      .envelope_len = sizeof(entry)};
	owner_call(w, w->addr[p->relay], NULL, &m, 0);
}

/* The address of the owner's points P[0..N), as text (static buffer). */
static const char *address(struct world *w, const struct point *p, size_t n)
{
	struct intake_address a;
	memset(&a, 0, sizeof(a));
	memcpy(a.identity, w->a->identity_pk, 32);
	a.count = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		memcpy(a.point[i].sender_id, p[i].mb.sender_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(a.point[i].log_id, p[i].log_id, CAIRN_LOG_ID_LEN);
		strcpy(a.point[i].relay, w->addr[p[i].relay]);
	}
	uint8_t bin[INTAKE_MAX_LEN];
	size_t len = 0;
	assert_int_equal(intake_encode(&a, bin, sizeof(bin), &len), 0);
	static char text[2 * INTAKE_MAX_LEN];
	strcpy(text, " " INTAKE_SCHEME);
	sodium_bin2base64(text + strlen(text), sizeof(text) - strlen(text), bin, len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	strcat(text, "\n"); /* blanks around it are forgiven */
	return text;
}

#define FETCH_MAX 8
struct fetched {
	size_t n;
	uint8_t env[FETCH_MAX][CAIRN_ENVELOPE_MAX];
	size_t len[FETCH_MAX];
	uint64_t id[FETCH_MAX];
};

/* Subscribes to the owner's mailbox MB and takes EXPECT envelopes (acknowledged), waiting
 * for each as long as the client's timeout. */
static void fetch(struct world *w, const struct my_mailbox *mb, size_t expect, struct fetched *f)
{
	memset(f, 0, sizeof(*f));
	struct cnet *n = NULL;
	struct cairn_msg reply;
	assert_int_equal(client_connect(w->a, mb->relay, &n), 0);
	uint8_t sig[64];
	client_auth_signature(n, mb, sig);
	struct cairn_msg auth = {
	    .type = CAIRN_CMD_AUTH, .recipient_id = mb->recipient_id, .signature = sig};
	assert_int_equal(client_call(w->a, n, &auth, &reply), 0);
	struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE, .recipient_id = mb->recipient_id};
	assert_int_equal(client_call(w->a, n, &sub, &reply), 0);
	while (f->n < expect) {
		struct cairn_msg m;
		assert_int_equal(cnet_recv(n, &m, w->a->timeout_ms), 0);
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue;
		assert_true(f->n < FETCH_MAX);
		memcpy(f->env[f->n], m.envelope, m.envelope_len);
		f->id[f->n] = m.envelope_id;
		f->len[f->n++] = m.envelope_len;
	}
	/* Each OK awaited: the relay has let the envelopes go before the test counts. */
	for (size_t i = 0; i < f->n; i++) {
		struct cairn_msg ack = {
		    .type = CAIRN_CMD_ACK, .recipient_id = mb->recipient_id, .envelope_id = f->id[i]};
		assert_int_equal(client_call(w->a, n, &ack, &reply), 0);
	}
	cnet_close(n);
}

/* The owner's prekey for the tests. */
static void prekey(struct x3dh_onetime *spk)
{
	x3dh_onetime_generate(spk, NULL);
}

static size_t stored(struct world *w, int i)
{
	struct memrelay_stats st;
	memrelay_stats(w->relay[i], &st);
	return st.stored;
}

static size_t mailboxes(struct world *w, int i)
{
	struct memrelay_stats st;
	memrelay_stats(w->relay[i], &st);
	return st.mailboxes;
}

static int count_contact(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	(*(int *)ctx)++;
	return 0;
}

static int count_established(void *ctx, const struct cairn_contact *k)
{
	*(int *)ctx += k->established;
	return 0;
}

static int contacts(struct cairn *c)
{
	int n = 0;
	assert_int_equal(cairn_contacts(c, count_contact, &n), 0);
	return n;
}

/* Opens the type 3 envelope F->env[I] as the owner: the hello naming Bob's mailboxes. */
static struct ratchet *open_first(struct world *w, const struct x3dh_onetime *spk,
                                  const struct fetched *f, size_t i, struct mailbox_list *reply)
{
	assert_int_equal(f->env[i][0], E2E_TYPE_INTAKE);
	uint8_t buf[CAIRN_ENVELOPE_MAX], peer[32];
	struct e2e_opened op;
	struct ratchet *r = NULL;
	assert_int_equal(e2e_open_intake(w->a->identity_sk, spk, f->env[i], f->len[i], buf,
	                                 sizeof(buf), &op, peer, &r, NULL),
	                 0);
	assert_memory_equal(peer, w->b->identity_pk, 32);
	struct appmsg am;
	assert_int_equal(appmsg_parse(op.message, op.message_len, &am), 0);
	assert_int_equal(am.kind, APPMSG_HELLO);
	assert_int_equal(appmsg_reply_parse(op.reply, op.reply_len, reply), 0);
	return r;
}

static void load_bob_contact(struct world *w, struct contact *k)
{
	assert_int_equal(client_load_contact(w->b, "embassy", k), 0);
}

/* The owner's intake on relay 0 at BITS with a usable bundle of a fresh prekey SPK, and Bob
 * accepting it as "embassy". */
static void accepted(struct world *w, uint8_t bits, struct point *p, struct x3dh_onetime *spk)
{
	prekey(spk);
	point_new(w, 0, bits, p);
	point_bundle(w, p, spk->pub, -DAY, 14 * DAY, bits, w->a->identity_sk);
	assert_int_equal(cairn_invite_accept(w->b, address(w, p, 1), "embassy", NULL, 0), 0);
}

/* ---- the tests -------------------------------------------------------------------------- */

/* Accepting an address: the first message is in the intake mailbox, type 3, and opens as the
 * owner's with Bob's identity and mailboxes; the relay checked its work. The contact waits
 * (not established) with the bits and the bundle log kept. */
static void test_accept_sends_type3(void **state)
{
	struct world *w = *state;
	struct point p;
	struct x3dh_onetime spk;
	accepted(w, 10, &p, &spk);
	struct contact k;
	load_bob_contact(w, &k);
	assert_int_equal(k.state, CONTACT_ACCEPTED);
	assert_int_equal(k.peer.count, 1);
	assert_int_equal(k.peer_work_bits[0], 10);
	assert_memory_equal(k.peer_log_id[0], p.log_id, CAIRN_LOG_ID_LEN);
	assert_memory_equal(k.peer.box[0].sender_id, p.mb.sender_id, CAIRN_MAILBOX_ID_LEN);
	assert_memory_equal(k.ek, k.prefix, CAIRN_KEY_LEN);
	assert_int_equal(k.nmine, 1);
	struct fetched f;
	fetch(w, &p.mb, 1, &f);
	struct mailbox_list reply;
	struct ratchet *r = open_first(w, &spk, &f, 0, &reply);
	assert_int_equal(reply.count, 1);
	assert_memory_equal(reply.box[0].sender_id, k.mine[0].sender_id, CAIRN_MAILBOX_ID_LEN);
	assert_memory_equal(f.env[0] + 1, k.prefix, X3DH_PREFIX_LEN);
	ratchet_free(r);
	contact_wipe(&k);
	/* Shown, and not established until the owner answers. */
	int established = 0;
	assert_int_equal(contacts(w->b), 1);
	assert_int_equal(cairn_contacts(w->b, count_established, &established), 0);
	assert_int_equal(established, 0);
}

/* The relay demands more than the bundle it published said: the client reads the bundle log
 * again (the owner published the new bits), solves anew, and the same envelope goes. */
static void test_work_raised(void **state)
{
	struct world *w = *state;
	struct point p;
	struct x3dh_onetime spk;
	accepted(w, 1, &p, &spk);
	/* Work for one bit passes sixteen once in 2^15. */
	point_bits(w, &p, 16);
	point_bundle(w, &p, spk.pub, 0, 14 * DAY, 16, w->a->identity_sk);
	const char *text = "second";
	assert_int_equal(cairn_send(w->b, "embassy", (const uint8_t *)text, strlen(text), NULL), 0);
	struct contact k;
	load_bob_contact(w, &k);
	assert_int_equal(k.peer_work_bits[0], 16);
	struct fetched f;
	fetch(w, &p.mb, 2, &f);
	/* Both type 3, with the same prefix (10.4). */
	assert_int_equal(f.env[1][0], E2E_TYPE_INTAKE);
	assert_memory_equal(f.env[1] + 1, k.prefix, X3DH_PREFIX_LEN);
	assert_memory_equal(f.env[0] + 1, k.prefix, X3DH_PREFIX_LEN);
	contact_wipe(&k);
}

/* The relay refuses the work again after the bundle was read again (its bits are not the
 * bundle's; for a real client: its clock is off): CAIRN_EWORK, and the message waits. */
static void test_work_refused_twice(void **state)
{
	struct world *w = *state;
	struct point p;
	struct x3dh_onetime spk;
	accepted(w, 1, &p, &spk);
	point_bits(w, &p, 30);
	const char *text = "refused";
	assert_int_equal(cairn_send(w->b, "embassy", (const uint8_t *)text, strlen(text), NULL),
	                 CAIRN_EWORK);
	assert_int_equal(stored(w, 0), 1); /* the first message only */
	unsigned left = 0;
	assert_int_equal(client_outbox_count(w->b, NULL, &left), 0);
	assert_int_equal(left, 1);
}

/* Addresses that cannot be used: nothing is added, no mailbox is made. */
static void test_unusable(void **state)
{
	struct world *w = *state;
	struct point p;
	struct x3dh_onetime spk;
	prekey(&spk);
	point_new(w, 0, 8, &p);
	size_t boxes = mailboxes(w, 0);
	const char *text = address(w, &p, 1);
	/* No bundle in the log. */
	assert_int_equal(cairn_invite_accept(w->b, text, "embassy", NULL, 0), CAIRN_EINVITE);
	/* An expired bundle. */
	point_bundle(w, &p, spk.pub, -20 * DAY, -DAY, 8, w->a->identity_sk);
	assert_int_equal(cairn_invite_accept(w->b, text, "embassy", NULL, 0), CAIRN_EINVITE);
	/* A bundle of another identity. */
	uint8_t pk[32], sk[64];
	crypto_sign_keypair(pk, sk);
	point_bundle(w, &p, spk.pub, -DAY, 14 * DAY, 8, sk);
	assert_int_equal(cairn_invite_accept(w->b, text, "embassy", NULL, 0), CAIRN_EINVITE);
	/* Text that does not parse. */
	assert_int_equal(cairn_invite_accept(w->b, "cairn-intake:AAAA", "embassy", NULL, 0),
	                 CAIRN_EINVITE);
	assert_int_equal(contacts(w->b), 0);
	assert_int_equal(mailboxes(w, 0), boxes);
	assert_int_equal(stored(w, 0), 0);
	/* The owner's own bundle after those: usable. */
	point_bundle(w, &p, spk.pub, -DAY, 14 * DAY, 8, w->a->identity_sk);
	assert_int_equal(cairn_invite_accept(w->b, text, "embassy", NULL, 0), 0);
	assert_int_equal(contacts(w->b), 1);
	assert_int_equal(stored(w, 0), 1);
}

/* Two relays, the first down: the bundle comes from the second, and so does the message. */
static void test_first_relay_down(void **state)
{
	struct world *w = *state;
	struct point p[2];
	struct x3dh_onetime spk;
	prekey(&spk);
	for (int i = 0; i < 2; i++) {
		point_new(w, i, 8, &p[i]);
		point_bundle(w, &p[i], spk.pub, -DAY, 14 * DAY, 8, w->a->identity_sk);
	}
	const char *text = address(w, p, 2);
	memrelay_set_down(w->relay[0], true);
	const char *mine[1] = {w->addr[1]};
	assert_int_equal(cairn_invite_accept(w->b, text, "embassy", mine, 1), 0);
	struct contact k;
	load_bob_contact(w, &k);
	assert_int_equal(k.peer_work_bits[0], 0); /* not read yet */
	assert_int_equal(k.peer_work_bits[1], 8);
	contact_wipe(&k);
	assert_int_equal(stored(w, 1), 1);
	memrelay_set_down(w->relay[0], false);
	assert_int_equal(stored(w, 0), 0);
	/* With the first back, the next message goes there, its bundle read first. */
	const char *msg = "via the first";
	assert_int_equal(cairn_send(w->b, "embassy", (const uint8_t *)msg, strlen(msg), NULL), 0);
	assert_int_equal(stored(w, 0), 1);
	load_bob_contact(w, &k);
	assert_int_equal(k.peer_work_bits[0], 8);
	contact_wipe(&k);
}

/* The owner accepts: its mailboxes message (serial 1) moves Bob to a fresh, ordinary mailbox.
 * Bob is then established, keeps no intake fields, and writes there with SEND (a SEND_WORK
 * would be denied), type 2. */
static void test_moved_by_owner(void **state)
{
	struct world *w = *state;
	struct point p;
	struct x3dh_onetime spk;
	accepted(w, 8, &p, &spk);
	struct fetched f;
	fetch(w, &p.mb, 1, &f);
	struct mailbox_list reply;
	struct ratchet *r = open_first(w, &spk, &f, 0, &reply);
	/* The owner's fresh mailbox and the mailboxes message naming it. */
	struct my_mailbox fresh;
	assert_int_equal(client_create_mailbox(w->a, w->addr[1], &fresh), 0);
	struct mailbox_list l = {.count = 1};
	memcpy(l.box[0].sender_id, fresh.sender_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(l.box[0].credential, fresh.credential, CAIRN_CREDENTIAL_LEN);
	strcpy(l.box[0].relay, fresh.relay);
	uint8_t data[APPMSG_MAILBOXES_MAX], plain[CAIRN_ENVELOPE_MAX], env[CAIRN_ENVELOPE_MAX];
	size_t dlen = 0, plen = 0, elen = 0;
	assert_int_equal(appmsg_mailboxes_encode(1, &l, data, sizeof(data), &dlen), 0);
	struct appmsg am = {.kind = APPMSG_MAILBOXES,
	                    .sent_at = (uint64_t)time(NULL),
	                    .part_count = 1,
	                    .data = data,
	                    .data_len = dlen};
	randombytes_buf(am.id, sizeof(am.id));
	assert_int_equal(appmsg_encode(&am, plain, sizeof(plain), &plen), 0);
	assert_int_equal(e2e_seal(r, plain, plen, env, sizeof(env), &elen), 0);
	struct cairn_msg send = {.type = CAIRN_CMD_SEND,
	                         .sender_id = reply.box[0].sender_id,
	                         .credential = reply.box[0].credential,
	                         .envelope = env,
	                         .envelope_len = elen};
	owner_call(w, reply.box[0].relay, NULL, &send, 0);
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(w->b, &res, NULL, NULL), 0);
	struct contact k;
	load_bob_contact(w, &k);
	assert_int_equal(k.state, CONTACT_ESTABLISHED);
	assert_int_equal(k.peer.count, 1);
	assert_memory_equal(k.peer.box[0].sender_id, fresh.sender_id, CAIRN_MAILBOX_ID_LEN);
	assert_int_equal(k.peer_work_bits[0], 0);
	assert_true(sodium_is_zero(k.peer_log_id[0], CAIRN_LOG_ID_LEN));
	assert_false(contact_from_intake(&k));
	contact_wipe(&k);
	const char *msg = "now on the private mailbox";
	assert_int_equal(cairn_send(w->b, "embassy", (const uint8_t *)msg, strlen(msg), NULL), 0);
	assert_int_equal(stored(w, 0), 0); /* nothing more in the intake mailbox */
	fetch(w, &fresh, 1, &f);
	assert_int_equal(f.env[0][0], E2E_TYPE_MESSAGE);
	uint8_t buf[CAIRN_ENVELOPE_MAX];
	struct e2e_opened op;
	assert_int_equal(e2e_open(r, f.env[0], f.len[0], buf, sizeof(buf), &op, NULL), 0);
	assert_int_equal(appmsg_parse(op.message, op.message_len, &am), 0);
	assert_int_equal(am.kind, APPMSG_TEXT);
	assert_int_equal(am.data_len, strlen(msg));
	assert_memory_equal(am.data, msg, am.data_len);
	ratchet_free(r);
	int established = 0;
	assert_int_equal(cairn_contacts(w->b, count_established, &established), 0);
	assert_int_equal(established, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_accept_sends_type3, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_work_raised, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_work_refused_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unusable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_relay_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_moved_by_owner, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
