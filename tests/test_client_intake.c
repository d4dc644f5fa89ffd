/* SPDX-License-Identifier: MIT */
/*
 * Intake addresses, the owner's side (PROTOCOL.md 10.2 to 10.7), in-process against in-memory
 * relays (tests/support/memrelay.h). The owner is a real libcairn home; the requester is made
 * by hand with the proto functions (read the bundle log, X3DH through the prekey, seal type 3,
 * solve the work, SEND_WORK; read its own mailbox and answer with the ratchet), so that every
 * step the owner takes is checked from outside. What is proved: create, a first message
 * becomes a request with its preview and nothing is sent back, accept moves it to fresh
 * mailboxes and the conversation goes both ways, reject and block drop what follows, a
 * replayed first message makes no second request, unknown and deleted prekeys are dropped,
 * prekeys rotate with the clock, rotation with grace and revocation delete the old mailboxes.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "appmsg.h"
#include "cairn/cairn.h"
#include "client.h"
#include "e2e.h"
#include "intake.h"
#include "intakes.h"
#include "logio.h"
#include "memrelay.h"
#include "relayproc.h"
#include "work.h"

#define PASS   "correct horse battery staple"
#define RELAYS 2
#define BITS   8
#define DAY    86400

struct world {
	char root[64];
	struct memrelay *relay[RELAYS];
	const char *addr[RELAYS];
	struct client_env env;
	struct cairn *owner, *req; /* the officer; the requester's identity and connections */
};

static struct cairn *home_new(struct world *w, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", w->root, name);
	struct cairn *c = NULL;
	/* Stretched by fuzz/fastkdf.c's stand-in (tests/CMakeLists.txt). */
	assert_int_equal(cairn_init(path, PASS), 0);
	assert_int_equal(cairn_open(path, PASS, &c), 0);
	client_set_env(c, &w->env);
	return c;
}

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
	/* One client thread: the skipping clock is safe (memrelay.h). */
	memrelay_env_skipping(&w->env);
	w->owner = home_new(w, "owner");
	w->req = home_new(w, "requester");
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	cairn_close(w->owner);
	cairn_close(w->req);
	for (int i = 0; i < RELAYS; i++)
		memrelay_free(w->relay[i]);
	test_rm_tree(w->root);
	free(w);
	return 0;
}

/* ---- the requester, by hand ------------------------------------------------------------ */

struct requester {
	struct intake_address addr;
	struct intake_bundle bundle; /* the one it uses */
	uint8_t prefix[X3DH_PREFIX_LEN];
	struct ratchet *r;
	struct my_mailbox mine;   /* where the owner answers it */
	struct mailbox_list peer; /* where it writes after the owner's mailboxes message */
	bool moved;
};

static void parse_address(const char *text, struct intake_address *a)
{
	size_t skip = strlen(INTAKE_SCHEME), blen = 0;
	uint8_t bin[INTAKE_MAX_LEN];
	assert_int_equal(strncmp(text, INTAKE_SCHEME, skip), 0);
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), text + skip, strlen(text + skip), NULL,
	                                   &blen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	assert_int_equal(intake_parse(bin, blen, a), 0);
}

/* Reads point P's bundle log: the newest valid bundle into *OUT. Returns 0, or the relay's
 * error (CAIRN_EDENIED: no such log), or CAIRN_ENOTFOUND (no bundle). */
static int read_bundle(struct world *w, const struct intake_address *a, size_t p,
                       struct intake_bundle *out)
{
	struct cnet *n = NULL;
	assert_int_equal(client_connect(w->req, a->point[p].relay, &n), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = cnet_next_id(n),
	                      .log_id = a->point[p].log_id},
	                 reply;
	assert_int_equal(cnet_queue(n, &m), 0);
	assert_int_equal(cnet_flush(n), 0);
	int rc = CAIRN_ENOTFOUND;
	bool found = false;
	for (;;) {
		assert_int_equal(cnet_recv(n, &reply, 10000), 0);
		if (reply.request_id != m.request_id)
			continue;
		if (reply.type == CAIRN_REPLY_ERROR) {
			rc = cairn_wire_error(reply.code);
			break;
		}
		if (reply.type == CAIRN_REPLY_END)
			break;
		struct intake_bundle b;
		if (reply.type == CAIRN_REPLY_LOG_ENTRY &&
		    bundle_open(reply.envelope, reply.envelope_len, a->identity, a->point[p].log_id,
		                &b) == 0 &&
		    (!found || b.created >= out->created)) {
			*out = b;
			found = true;
			rc = 0;
		}
	}
	cnet_close(n);
	return rc;
}

static int send_work(struct world *w, const char *relay, const uint8_t sender_id[24],
                     const uint8_t *env, size_t len, unsigned bits)
{
	uint8_t work[WORK_LEN];
	assert_int_equal(work_solve(sender_id, env, len, (uint64_t)time(NULL), bits,
	                            randombytes_random(), work, NULL),
	                 0);
	struct cnet *n = NULL;
	assert_int_equal(client_connect(w->req, relay, &n), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
	                      .sender_id = sender_id,
	                      .work = work,
	                      .envelope = env,
	                      .envelope_len = len},
	                 reply;
	int rc = client_call(w->req, n, &m, &reply);
	cnet_close(n);
	return rc;
}

/* A new requester for ADDRESS: its own mailbox on relay 0, a session through the newest
 * bundle on point 0 (or through SPK when given). */
static void req_start(struct world *w, struct requester *rq, const char *address,
                      const uint8_t *spk)
{
	memset(rq, 0, sizeof(*rq));
	parse_address(address, &rq->addr);
	assert_int_equal(read_bundle(w, &rq->addr, 0, &rq->bundle), 0);
	if (spk != NULL)
		memcpy(rq->bundle.prekey, spk, CAIRN_KEY_LEN);
	assert_int_equal(client_create_mailbox(w->req, w->addr[0], &rq->mine), 0);
	assert_int_equal(x3dh_initiate_intake(rq->addr.identity, rq->bundle.prekey,
	                                      w->req->identity_sk, NULL, rq->prefix, &rq->r),
	                 0);
}

static void req_free(struct requester *rq)
{
	ratchet_free(rq->r);
	rq->r = NULL;
}

/* Seals TEXT as the requester's next message into ENV: type 3 until it moved, then type 2. */
static size_t req_seal(struct requester *rq, const char *text, uint8_t *env)
{
	uint8_t data[2048], reply[E2E_REPLY_MAX];
	size_t dlen = 0, rlen = 0, elen = 0;
	struct appmsg am = {.kind = APPMSG_TEXT,
	                    .sent_at = (uint64_t)time(NULL),
	                    .part_count = 1,
	                    .data = (const uint8_t *)text,
	                    .data_len = strlen(text)};
	randombytes_buf(am.id, sizeof(am.id));
	assert_int_equal(appmsg_encode(&am, data, sizeof(data), &dlen), 0);
	if (rq->moved) {
		assert_int_equal(e2e_seal(rq->r, data, dlen, env, CAIRN_ENVELOPE_MAX, &elen), 0);
		return elen;
	}
	struct mailbox_list l = {.count = 1};
	memcpy(l.box[0].sender_id, rq->mine.sender_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(l.box[0].credential, rq->mine.credential, CAIRN_CREDENTIAL_LEN);
	strcpy(l.box[0].relay, rq->mine.relay);
	assert_int_equal(appmsg_reply_encode(&l, reply, sizeof(reply), &rlen), 0);
	assert_int_equal(e2e_seal_intake(rq->r, rq->prefix, reply, rlen, data, dlen, env,
	                                 CAIRN_ENVELOPE_MAX, &elen),
	                 0);
	return elen;
}

/* Sends ENV: to intake point P with work, or (moved) to the owner's fresh mailbox. */
static int req_send_env(struct world *w, struct requester *rq, size_t p, const uint8_t *env,
                        size_t len)
{
	if (!rq->moved)
		return send_work(w, rq->addr.point[p].relay, rq->addr.point[p].sender_id, env, len,
		                 BITS);
	struct cnet *n = NULL;
	assert_int_equal(client_connect(w->req, rq->peer.box[0].relay, &n), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_SEND,
	                      .sender_id = rq->peer.box[0].sender_id,
	                      .credential = rq->peer.box[0].credential,
	                      .envelope = env,
	                      .envelope_len = len},
	                 reply;
	int rc = client_call(w->req, n, &m, &reply);
	cnet_close(n);
	return rc;
}

static void req_send(struct world *w, struct requester *rq, const char *text)
{
	uint8_t env[CAIRN_ENVELOPE_MAX];
	size_t len = req_seal(rq, text, env);
	assert_int_equal(req_send_env(w, rq, 0, env, len), 0);
}

/* Reads the requester's mailbox until WANT envelopes came (generous deadline), opening each:
 * a mailboxes message moves it; texts are copied into TEXTS. Returns the texts seen. */
static unsigned req_fetch(struct world *w, struct requester *rq, unsigned want, char texts[][64])
{
	struct cnet *n = NULL;
	assert_int_equal(client_connect(w->req, rq->mine.relay, &n), 0);
	uint8_t sig[64];
	client_auth_signature(n, &rq->mine, sig);
	struct cairn_msg auth = {.type = CAIRN_CMD_AUTH,
	                         .request_id = cnet_next_id(n),
	                         .recipient_id = rq->mine.recipient_id,
	                         .signature = sig};
	struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE,
	                        .request_id = cnet_next_id(n),
	                        .recipient_id = rq->mine.recipient_id};
	assert_int_equal(cnet_queue(n, &auth), 0);
	assert_int_equal(cnet_queue(n, &sub), 0);
	assert_int_equal(cnet_flush(n), 0);
	unsigned got = 0, ntext = 0;
	uint8_t *buf = malloc(CAIRN_ENVELOPE_MAX);
	assert_non_null(buf);
	while (got < want) {
		struct cairn_msg m;
		assert_int_equal(cnet_recv(n, &m, 20000), 0);
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue;
		got++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .request_id = cnet_next_id(n),
		                        .recipient_id = rq->mine.recipient_id,
		                        .envelope_id = m.envelope_id};
		assert_int_equal(cnet_queue(n, &ack), 0);
		assert_int_equal(cnet_flush(n), 0);
		struct e2e_opened op;
		struct appmsg am;
		/* An envelope whose ACK the relay had not handled when we last closed comes
		 * again: a duplicate, as for any client. */
		int orc =
		    e2e_open(rq->r, m.envelope, m.envelope_len, buf, CAIRN_ENVELOPE_MAX, &op, NULL);
		if (orc == CAIRN_EREPLAY) {
			got--;
			continue;
		}
		assert_int_equal(orc, 0);
		assert_int_equal(appmsg_parse(op.message, op.message_len, &am), 0);
		uint32_t serial;
		if (am.kind == APPMSG_MAILBOXES) {
			assert_int_equal(
			    appmsg_mailboxes_parse(am.data, am.data_len, &serial, &rq->peer), 0);
			assert_int_equal(serial, 1);
			rq->moved = true;
		} else if (am.kind == APPMSG_TEXT && texts != NULL) {
			snprintf(texts[ntext++], 64, "%.*s", (int)am.data_len, am.data);
		}
	}
	free(buf);
	cnet_close(n);
	return ntext;
}

/* ---- the owner -------------------------------------------------------------------------- */

static void sync_owner(struct world *w)
{
	struct cairn_sync_result res;
	int rc = cairn_sync(w->owner, &res, NULL, NULL);
	if (rc != 0)
		print_message("owner sync: %s\n", cairn_strerror(rc));
	assert_int_equal(rc, 0);
}

struct reqs {
	unsigned n;
	char id[8][CAIRN_REQUEST_ID_LEN + 1];
	char preview[8][CAIRN_PREVIEW_MAX + 1];
	char intake[8][CAIRN_NAME_MAX + 1];
	unsigned messages[8];
};

static int one_request(void *ctx, const struct cairn_request *r)
{
	struct reqs *x = ctx;
	assert_true(x->n < 8);
	strcpy(x->id[x->n], r->id);
	snprintf(x->preview[x->n], sizeof(x->preview[0]), "%.*s", (int)r->preview_len, r->preview);
	strcpy(x->intake[x->n], r->intake);
	x->messages[x->n] = r->messages;
	x->n++;
	return 0;
}

static struct reqs requests(struct world *w)
{
	struct reqs x;
	memset(&x, 0, sizeof(x));
	assert_int_equal(cairn_requests(w->owner, one_request, &x), 0);
	return x;
}

static int count_reported(void *ctx, const struct cairn_message *m)
{
	assert_string_equal(m->contact, "defender");
	(*(unsigned *)ctx)++;
	return 0;
}

static int count_contact(void *ctx, const struct cairn_contact *k)
{
	(void)k;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned contacts(struct world *w)
{
	unsigned n = 0;
	assert_int_equal(cairn_contacts(w->owner, count_contact, &n), 0);
	return n;
}

static char *create(struct world *w, size_t nrelays)
{
	char *address = NULL;
	assert_int_equal(cairn_intake_create(w->owner, w->addr, nrelays, "embassy", BITS, &address),
	                 0);
	assert_non_null(address);
	return address;
}

static uint64_t accepted(struct world *w)
{
	uint64_t n = 0;
	for (int i = 0; i < RELAYS; i++) {
		struct memrelay_stats st;
		memrelay_stats(w->relay[i], &st);
		n += st.accepted;
	}
	return n;
}

/*
 * Time passes for intake LABEL: SECONDS are taken off every time its record holds, which is
 * what the owner's clock moving SECONDS ahead would do to it. (The wall clock itself cannot
 * move: the transport handshake carries it, and the relays check it.)
 */
static void age(struct world *w, int64_t seconds)
{
	struct intake in;
	assert_int_equal(intake_find(w->owner, "embassy", &in), 0);
	for (size_t i = 0; i < in.nprekeys; i++) {
		in.pk[i].created -= seconds;
		in.pk[i].expires -= seconds;
	}
	in.appended_at -= seconds;
	if (in.nold > 0)
		in.old_until -= seconds;
	assert_int_equal(intake_store(w->owner, &in), 0);
	intake_wipe(&in);
}

/* A new requester writes TEXT through ADDRESS (under SPK when given); after the owner's sync,
 * WANT requests wait. */
static void first_contact(struct world *w, const char *address, const uint8_t *spk,
                          const char *text, unsigned want)
{
	struct requester rq;
	req_start(w, &rq, address, spk);
	req_send(w, &rq, text);
	sync_owner(w);
	assert_int_equal(requests(w).n, want);
	req_free(&rq);
}

/* ---- the tests -------------------------------------------------------------------------- */

/* Create: the address parses, names both relays and our identity, and each bundle log holds a
 * bundle with our work bits; the label is taken, a bad bit count refused. */
static void test_create(void **state)
{
	struct world *w = *state;
	char *address = create(w, RELAYS);
	struct intake_address a;
	parse_address(address, &a);
	assert_int_equal(a.count, RELAYS);
	assert_memory_equal(a.identity, w->owner->identity_pk, CAIRN_KEY_LEN);
	for (size_t i = 0; i < RELAYS; i++) {
		struct intake_bundle b;
		assert_string_equal(a.point[i].relay, w->addr[i]);
		assert_int_equal(read_bundle(w, &a, i, &b), 0);
		assert_int_equal(b.work_bits, BITS);
		assert_true(b.expires > (uint64_t)time(NULL) + 13 * DAY);
	}
	char *again = NULL, *shown = NULL;
	assert_int_equal(cairn_intake_create(w->owner, w->addr, 1, "embassy", BITS, &again),
	                 CAIRN_EEXIST);
	assert_int_equal(cairn_intake_create(w->owner, w->addr, 1, "other", 41, &again),
	                 CAIRN_EINVAL);
	assert_int_equal(cairn_intake_address(w->owner, "embassy", &shown), 0);
	assert_string_equal(shown, address);
	/* New work: the relays and a new bundle say so. */
	assert_int_equal(cairn_intake_work(w->owner, "embassy", BITS + 1), 0);
	assert_int_equal(cairn_intake_work(w->owner, "embassy", 0), CAIRN_EINVAL);
	for (size_t i = 0; i < RELAYS; i++) {
		struct intake_bundle b;
		assert_int_equal(read_bundle(w, &a, i, &b), 0);
		assert_int_equal(b.work_bits, BITS + 1);
	}
	cairn_free(shown);
	cairn_free(address);
}

/* A first message becomes a request (preview, count, not a contact), nothing goes back; accept
 * moves it to fresh mailboxes, after which the conversation goes both ways. */
static void test_request_accept(void **state)
{
	struct world *w = *state;
	char *address = create(w, RELAYS);
	struct requester rq;
	req_start(w, &rq, address, NULL);
	req_send(w, &rq, "hello embassy");
	req_send(w, &rq, "second");
	uint64_t before = accepted(w);
	struct cairn_sync_result res;
	unsigned reported = 0;
	assert_int_equal(cairn_sync(w->owner, &res, count_reported, &reported), 0);
	assert_int_equal(res.received, 0); /* a request's messages are not a contact's */
	assert_int_equal(reported, 0);
	struct reqs x = requests(w);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.preview[0], "hello embassy");
	assert_string_equal(x.intake[0], "embassy");
	assert_int_equal(x.messages[0], 2);
	assert_int_equal(strlen(x.id[0]), CAIRN_REQUEST_ID_LEN);
	assert_int_equal(contacts(w), 0);
	assert_int_equal(accepted(w), before); /* nothing sent to a request */
	/* While a request waits, the intake mailbox still takes new first contacts. */
	struct requester second;
	req_start(w, &second, address, NULL);
	req_send(w, &second, "me too");
	sync_owner(w);
	x = requests(w);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.preview[1], "me too");
	req_free(&second);

	assert_int_equal(cairn_request_accept(w->owner, x.id[0], "defender"), 0);
	assert_int_equal(requests(w).n, 1);
	assert_int_equal(contacts(w), 1);
	sync_owner(w); /* the move: fresh mailboxes and the mailboxes message */
	char texts[4][64];
	assert_int_equal(req_fetch(w, &rq, 1, texts), 0);
	assert_true(rq.moved);
	assert_int_equal(rq.peer.count, RELAYS);
	for (size_t i = 0; i < RELAYS; i++)
		assert_memory_not_equal(rq.peer.box[i].sender_id, rq.addr.point[i].sender_id,
		                        CAIRN_MAILBOX_ID_LEN);
	req_send(w, &rq, "on the new mailbox");
	assert_int_equal(cairn_sync(w->owner, &res, count_reported, &reported), 0);
	assert_int_equal(res.received, 1);
	assert_int_equal(reported, 1);
	assert_int_equal(cairn_send(w->owner, "defender", (const uint8_t *)"welcome", 7, NULL), 0);
	assert_int_equal(req_fetch(w, &rq, 1, texts), 1);
	assert_string_equal(texts[0], "welcome");
	/* The intake mailboxes are shared: still there for the next requester. */
	first_contact(w, address, NULL, "a third", 2);
	req_free(&rq);
	cairn_free(address);
}

/* Texts one sync of C handed to its callback. */
struct texts {
	unsigned n;
	char text[8][64];
};

static int keep_text(void *ctx, const struct cairn_message *m)
{
	struct texts *t = ctx;
	assert_true(t->n < 8);
	snprintf(t->text[t->n++], sizeof(t->text[0]), "%.*s", (int)m->len, m->text);
	return 0;
}

static struct texts sync_texts(struct cairn *c)
{
	struct texts t;
	struct cairn_sync_result res;
	memset(&t, 0, sizeof(t));
	assert_int_equal(cairn_sync(c, &res, keep_text, &t), 0);
	return t;
}

/* The same with the requester's own client (cairn_invite_accept of the address, cairn_send
 * with work): request, accept, then both ways on the fresh mailboxes. */
static void test_with_the_requester_client(void **state)
{
	struct world *w = *state;
	char *address = create(w, RELAYS);
	assert_int_equal(cairn_invite_accept(w->req, address, "embassy", NULL, 0), 0);
	assert_int_equal(cairn_send(w->req, "embassy", (const uint8_t *)"hello embassy", 13, NULL),
	                 0);
	assert_int_equal(sync_texts(w->owner).n, 0);
	struct reqs x = requests(w);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.preview[0], "hello embassy");
	assert_int_equal(cairn_request_accept(w->owner, x.id[0], "defender"), 0);
	sync_owner(w);                         /* the move and the mailboxes message */
	assert_int_equal(sync_texts(w->req).n, 0); /* applied: it writes to the fresh ones */
	assert_int_equal(cairn_send(w->req, "embassy", (const uint8_t *)"moved", 5, NULL), 0);
	struct texts t = sync_texts(w->owner);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.text[0], "moved");
	assert_int_equal(cairn_send(w->owner, "defender", (const uint8_t *)"welcome", 7, NULL), 0);
	t = sync_texts(w->req);
	assert_int_equal(t.n, 1);
	assert_string_equal(t.text[0], "welcome");
	cairn_free(address);
}

/* Reject drops later messages unread; block drops a new first message from that identity; a
 * replayed first envelope makes no second request. */
static void test_reject_block_replay(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1);
	struct requester rq;
	uint8_t first[CAIRN_ENVELOPE_MAX];
	req_start(w, &rq, address, NULL);
	size_t flen = req_seal(&rq, "first", first);
	assert_int_equal(req_send_env(w, &rq, 0, first, flen), 0);
	sync_owner(w);
	/* The same envelope again (new work): the same request, no new message. */
	assert_int_equal(req_send_env(w, &rq, 0, first, flen), 0);
	sync_owner(w);
	struct reqs x = requests(w);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.messages[0], 1);

	assert_int_equal(cairn_request_reject(w->owner, x.id[0]), 0);
	assert_int_equal(cairn_request_reject(w->owner, x.id[0]), CAIRN_ENOTFOUND);
	req_send(w, &rq, "after the reject");
	assert_int_equal(req_send_env(w, &rq, 0, first, flen), 0);
	sync_owner(w);
	assert_int_equal(requests(w).n, 0);
	req_free(&rq);

	/* A new first message from the same identity is a new request; blocked, the next is
	 * dropped. */
	req_start(w, &rq, address, NULL);
	req_send(w, &rq, "again");
	sync_owner(w);
	x = requests(w);
	assert_int_equal(x.n, 1);
	assert_int_equal(cairn_request_block(w->owner, x.id[0]), 0);
	req_free(&rq);
	first_contact(w, address, NULL, "blocked", 0);
	cairn_free(address);
}

/* Not type 3, or under a prekey we never made: dropped (and acknowledged). */
static void test_unknown_prekey_dropped(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1);
	struct requester rq;
	uint8_t fake[CAIRN_KEY_LEN], priv[CAIRN_KEY_LEN];
	randombytes_buf(priv, sizeof(priv));
	crypto_scalarmult_base(fake, priv);
	req_start(w, &rq, address, fake);
	req_send(w, &rq, "under a prekey that is not theirs");
	uint8_t junk[200];
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 2;
	assert_int_equal(send_work(w, rq.addr.point[0].relay, rq.addr.point[0].sender_id, junk,
	                           sizeof(junk), BITS),
	                 0);
	sync_owner(w);
	assert_int_equal(requests(w).n, 0);
	struct memrelay_stats st;
	memrelay_stats(w->relay[0], &st);
	assert_int_equal(st.stored, 0); /* both acknowledged */
	req_free(&rq);
	cairn_free(address);
}

/* One intake as listed (its strings are borrowed for the call: the label is copied). */
struct listed {
	char label[CAIRN_NAME_MAX + 1];
	unsigned pending, work_bits;
};

static int one_intake(void *ctx, const struct cairn_intake *in)
{
	struct listed *out = ctx;
	snprintf(out->label, sizeof(out->label), "%s", in->label);
	out->pending = in->pending;
	out->work_bits = in->work_bits;
	return 0;
}

/* With 10,000 requests waiting, a further first message is dropped and counted; the intake's
 * listing counts its pending requests. */
static void test_requests_full(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1);
	struct requester rq;
	req_start(w, &rq, address, NULL);
	req_send(w, &rq, "one");
	sync_owner(w);
	struct listed in;
	memset(&in, 0, sizeof(in));
	assert_int_equal(cairn_intakes(w->owner, one_intake, &in), 0);
	assert_string_equal(in.label, "embassy");
	assert_int_equal(in.pending, 1);
	assert_int_equal(in.work_bits, BITS);
	req_free(&rq);
	/* The counter as 10,000 requests would leave it. */
	assert_int_equal(intake_meta_put(w->owner, INTAKE_REQUESTS_MAX, 0), 0);
	req_start(w, &rq, address, NULL);
	req_send(w, &rq, "one too many");
	sync_owner(w);
	uint64_t dropped = 0;
	assert_int_equal(cairn_requests_dropped(w->owner, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(requests(w).n, 1);
	req_free(&rq);
	cairn_free(address);
}

/* After 7 days a new prekey is published; a first message under the previous one still opens;
 * once the first prekey is past expires + 7 days, a first message under it is dropped. */
static void test_prekey_rotation(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1);
	struct requester old;
	req_start(w, &old, address, NULL);
	uint8_t p1[CAIRN_KEY_LEN];
	memcpy(p1, old.bundle.prekey, CAIRN_KEY_LEN);
	req_free(&old);

	age(w, 8 * DAY);
	sync_owner(w);
	struct requester rq;
	req_start(w, &rq, address, NULL);
	assert_memory_not_equal(rq.bundle.prekey, p1, CAIRN_KEY_LEN);
	req_free(&rq);
	first_contact(w, address, p1, "under the previous prekey", 1); /* still held: opens */

	age(w, 7 * DAY);
	sync_owner(w);
	age(w, 7 * DAY); /* 22 days: past p1's expires (14 days) + 7 */
	sync_owner(w);
	first_contact(w, address, p1, "under a deleted prekey", 1);
	cairn_free(address);
}

/* Whether the owner's engine has done what test_engine waits for: the request received, a
 * second prekey made, and the group outbox (which carries bundles for the engine) empty. */
static bool engine_done(struct world *w)
{
	struct intake in;
	unsigned queued = 1;
	if (intake_find(w->owner, "embassy", &in) != 0)
		return false;
	bool done = in.nprekeys == 2 && in.appended_prekey == 1;
	intake_wipe(&in);
	return done && group_out_count(w->owner, &queued) == 0 && queued == 0 &&
	       requests(w).n == 1;
}

/* The application's engine (cairn_engine_*) receives first messages on the intake mailboxes
 * and, at its tick, makes the weekly prekey and publishes its bundle without blocking (through
 * the group outbox). */
static void test_engine(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1);
	struct requester rq;
	req_start(w, &rq, address, NULL);
	uint8_t p1[CAIRN_KEY_LEN];
	memcpy(p1, rq.bundle.prekey, CAIRN_KEY_LEN);
	req_send(w, &rq, "to the engine");
	req_free(&rq);
	age(w, 8 * DAY);
	assert_int_equal(cairn_engine_start(w->owner, NULL, NULL), 0);
	time_t deadline = time(NULL) + 120;
	while (!engine_done(w)) {
		assert_true(time(NULL) < deadline);
		struct pollfd fds[16];
		size_t n = 0;
		int timeout = 0;
		assert_int_equal(cairn_engine_fds(w->owner, fds, 16, &n, &timeout), 0);
		if (poll(fds, n, timeout < 0 || timeout > 200 ? 200 : timeout) < 0)
			n = 0;
		assert_int_equal(cairn_engine_step(w->owner, fds, n), 0);
	}
	cairn_engine_stop(w->owner);
	struct intake_address a;
	struct intake_bundle b;
	parse_address(address, &a);
	assert_int_equal(read_bundle(w, &a, 0, &b), 0);
	assert_memory_not_equal(b.prekey, p1, CAIRN_KEY_LEN);
	cairn_free(address);
}

/* Rotation keeps the old address through its grace, then sync deletes its mailbox and log;
 * revoke deletes the new one at once. */
static void test_rotate_revoke(void **state)
{
	struct world *w = *state;
	char *address = create(w, 1), *fresh = NULL;
	struct intake_address a, b;
	struct intake_bundle bundle;
	parse_address(address, &a);
	assert_int_equal(cairn_intake_rotate(w->owner, "embassy", DAY, &fresh), 0);
	parse_address(fresh, &b);
	assert_memory_not_equal(a.point[0].sender_id, b.point[0].sender_id, CAIRN_MAILBOX_ID_LEN);
	assert_int_equal(read_bundle(w, &a, 0, &bundle), 0); /* in its grace */
	first_contact(w, address, NULL, "through the old address", 1);

	age(w, DAY + 60);
	sync_owner(w);
	assert_int_equal(read_bundle(w, &a, 0, &bundle), CAIRN_EDENIED);
	uint8_t env[300];
	randombytes_buf(env, sizeof(env));
	assert_int_equal(
	    send_work(w, a.point[0].relay, a.point[0].sender_id, env, sizeof(env), BITS),
	    CAIRN_EDENIED);
	assert_int_equal(read_bundle(w, &b, 0, &bundle), 0);

	assert_int_equal(cairn_intake_revoke(w->owner, "embassy"), 0);
	assert_int_equal(read_bundle(w, &b, 0, &bundle), CAIRN_EDENIED);
	char *none = NULL;
	assert_int_equal(cairn_intake_address(w->owner, "embassy", &none), CAIRN_ENOTFOUND);
	assert_int_equal(requests(w).n, 1); /* requests are unaffected */
	cairn_free(fresh);
	cairn_free(address);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_accept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_with_the_requester_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reject_block_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_prekey_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requests_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prekey_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_revoke, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
