/* SPDX-License-Identifier: MIT */
/*
 * Integration: a flood of an intake mailbox (issue 13) while an accepted defender's
 * conversation goes on, through the real `cairn` command and a real relay. An officer
 * publishes an intake address; a defender accepts it, is accepted, and both have written once.
 * Then a flooder thread keeps the intake mailbox at its quota with envelopes carrying valid
 * work: junk starting with 0x03 and, one in FLOOD_REAL, real type 3 first messages from fresh
 * identities (so the officer's client does real X3DH work on them). Meanwhile the defender and
 * the officer write to each other, each syncing and reading as a person would. Every message
 * must arrive on both sides within a generous deadline, the officer's commands must not fail,
 * junk must never become a request, and the officer's `cairn sync` time with a full intake
 * mailbox is printed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "appmsg.h"
#include "cliproc.h"
#include "e2e.h"
#include "intake.h"
#include "it_client_common.h"
#include "it_common.h"
#include "it_group_cli_common.h"
#include "it_intake_common.h"
#include "ratchet.h"
#include "work.h"
#include "x3dh.h"

#define WORK_BITS    8   /* tests use low bits; 20 is the default, measured by cairn-bench */
#define INTAKE_QUOTA 300 /* the relay's intake_max_envelopes here: a short test */
#define ENV_LEN      896 /* 8.6's short padded size */
#define FLOOD_REAL   4   /* one flood envelope in FLOOD_REAL is a real first message */
#define MESSAGES     4   /* each way, during the flood */
/* A message may take this long to arrive behind the flood (loaded machine, ASan): under the
 * sync's own deadline of about 60 s, which a sync held open by the flood would reach. */
#define DEADLINE_S 40.0
/* Envelopes a second once the mailbox is full: the intake mailbox never goes quiet for
 * ENGINE_QUIET_MS, as with a flooder of some hundred cores at the default 20 bits. A sync
 * counts intake deliveries as activity only for ENGINE_INTAKE_BUSY_MS, so it still ends; before
 * that rule each officer sync ran to its deadline (56 to 60 s a round). */
#define FLOOD_RATE 100
/* Flood envelopes sent at most: a bound on the test whatever happens. */
#define FLOOD_MAX 20000

/* ---- the flooder ----------------------------------------------------------------------- */

struct flood {
	uint16_t port;
	const uint8_t *pub;
	struct intake_address addr; /* the officer's, parsed */
	uint8_t spk[CAIRN_KEY_LEN]; /* its bundle's signed prekey */
	char reply_relay[CAIRN_ADDRESS_MAX + 1];
	atomic_int stop;
	atomic_int full;                        /* the relay answered `quota` at least once */
	atomic_ulong junk_ok, real_ok, quota_n; /* replies by kind */
	unsigned long other;                    /* anything else: a failure */
	int failed;                             /* a transport or build error */
};

/* A real-looking first message from a fresh identity into ENV (N its number, in the text);
 * returns its length, 0 on a failure. */
static size_t real_first_message(struct flood *f, unsigned n, uint8_t *env)
{
	uint8_t pk[32], sk[64], prefix[X3DH_PREFIX_LEN];
	crypto_sign_keypair(pk, sk);
	struct ratchet *r = NULL;
	size_t elen = 0;
	if (x3dh_initiate_intake(f->addr.identity, f->spk, sk, NULL, prefix, &r) != 0)
		goto out;
	char text[32];
	int tlen = snprintf(text, sizeof(text), "flood %u", n);
	uint8_t data[256], reply[E2E_REPLY_MAX];
	size_t dlen = 0, rlen = 0;
	struct appmsg am = {.kind = APPMSG_TEXT,
	                    .sent_at = (uint64_t)time(NULL),
	                    .part_count = 1,
	                    .data = (const uint8_t *)text,
	                    .data_len = (size_t)tlen};
	randombytes_buf(am.id, sizeof(am.id));
	/* A mailbox nobody owns as the place to answer: never used, the requests stay requests. */
	struct mailbox_list l = {.count = 1};
	randombytes_buf(l.box[0].sender_id, sizeof(l.box[0].sender_id));
	randombytes_buf(l.box[0].credential, sizeof(l.box[0].credential));
	strcpy(l.box[0].relay, f->reply_relay);
	if (appmsg_encode(&am, data, sizeof(data), &dlen) != 0 ||
	    appmsg_reply_encode(&l, reply, sizeof(reply), &rlen) != 0 ||
	    e2e_seal_intake(r, prefix, reply, rlen, data, dlen, env, CAIRN_ENVELOPE_MAX, &elen) !=
	        0)
		elen = 0;
out:
	ratchet_free(r);
	sodium_memzero(sk, sizeof(sk));
	return elen;
}

/* Sends flood envelopes one at a time, as fast as it can until the relay first answers
 * `quota`, then at FLOOD_RATE until told to stop, refilling what the officer's syncs drain. */
static void *flooder(void *arg)
{
	struct flood *f = arg;
	struct tclient c;
	if (tclient_connect(&c, f->port, f->pub) != 0) {
		f->failed = 1;
		atomic_store(&f->full, 1);
		return NULL;
	}
	uint8_t *env = malloc(CAIRN_ENVELOPE_MAX);
	uint8_t work[WORK_LEN];
	for (unsigned n = 0; env != NULL && n < FLOOD_MAX && !atomic_load(&f->stop); n++) {
		bool real = n % FLOOD_REAL == 0;
		size_t len = ENV_LEN;
		if (real) {
			len = real_first_message(f, n, env);
		} else {
			randombytes_buf(env, ENV_LEN);
			env[0] = E2E_TYPE_INTAKE;
		}
		if (len == 0 ||
		    work_solve(f->addr.point[0].sender_id, env, len, (uint64_t)time(NULL),
		               WORK_BITS, randombytes_random(), work, NULL) != 0) {
			f->failed = 1;
			break;
		}
		struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
		                      .sender_id = f->addr.point[0].sender_id,
		                      .work = work,
		                      .envelope = env,
		                      .envelope_len = len},
		                 reply;
		int rc = tclient_call(&c, &m, &reply);
		if (rc == 0) {
			atomic_fetch_add(real ? &f->real_ok : &f->junk_ok, 1);
		} else if (rc == CAIRN_EQUOTA) {
			atomic_fetch_add(&f->quota_n, 1);
			atomic_store(&f->full, 1);
		} else {
			f->other++;
			break;
		}
		/* A pace, not a wait for anything; a stop is seen within 50 ms. */
		for (int ms = 0;
		     atomic_load(&f->full) && !atomic_load(&f->stop) && ms < 1000 / FLOOD_RATE;
		     ms += 50)
			it_sleep_ms(50);
	}
	if (env == NULL)
		f->failed = 1;
	free(env);
	tclient_close(&c);
	atomic_store(&f->full, 1); /* never leave the main thread waiting */
	return NULL;
}

/* The intake address TEXT parsed. */
static void parse_intake(const char *text, struct intake_address *a)
{
	uint8_t bin[INTAKE_MAX_LEN];
	size_t len = 0;
	assert_int_equal(strncmp(text, INTAKE_SCHEME, strlen(INTAKE_SCHEME)), 0);
	const char *b64 = text + strlen(INTAKE_SCHEME);
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), b64, strlen(b64), NULL, &len, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	assert_int_equal(intake_parse(bin, len, a), 0);
}

/* The signed prekey of the newest valid bundle in point 0's bundle log on R, read as any
 * requester reads it. */
static void bundle_prekey(const struct relayproc *r, const struct intake_address *a,
                          uint8_t spk[CAIRN_KEY_LEN])
{
	struct tclient c;
	assert_int_equal(tclient_connect(&c, r->port, r->pub), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = 1,
	                      .log_id = a->point[0].log_id},
	                 reply;
	assert_int_equal(tclient_send(&c, &m), 0);
	bool found = false;
	uint64_t created = 0;
	for (;;) {
		assert_int_equal(tclient_recv(&c, &reply, 10000), 0);
		assert_int_not_equal(reply.type, CAIRN_REPLY_ERROR);
		if (reply.type == CAIRN_REPLY_END)
			break;
		struct intake_bundle b;
		if (reply.type == CAIRN_REPLY_LOG_ENTRY &&
		    bundle_open(reply.envelope, reply.envelope_len, a->identity, a->point[0].log_id,
		                &b) == 0 &&
		    (!found || b.created >= created)) {
			memcpy(spk, b.prekey, CAIRN_KEY_LEN);
			created = b.created;
			found = true;
		}
	}
	assert_true(found);
	tclient_close(&c);
}

/* ---- the conversation ------------------------------------------------------------------ */

struct timing {
	double first, worst, total;
	unsigned n;
};

/* HOME's `sync`, which must succeed, timed into T. */
static void timed_sync(const char *home, struct timing *t)
{
	double t0 = it_mono_s();
	sync_expect(CALL(.home = home), 0, -1);
	double s = it_mono_s() - t0;
	if (t->n == 0)
		t->first = s;
	t->worst = s > t->worst ? s : t->worst;
	t->total += s;
	t->n++;
}

/* HOME syncs (timed into T) and reads CONTACT: whether TEXT came from them, which it must at
 * most once. */
static bool arrived(const char *home, const char *contact, const char *text, struct timing *t)
{
	timed_sync(home, t);
	struct convo c = read_convo(home, contact);
	size_t k = count_text(&c, 0, text);
	convo_free(&c);
	assert_true(k <= 1);
	return k == 1;
}

/* Syncs the officer and the defender in turn until the officer has TO_OFFICER from "d1" and
 * the defender has TO_DEFENDER from "embassy", each once; fails after DEADLINE_S. */
static void both_arrive(const char *officer, const char *defender, const char *to_officer,
                        const char *to_defender, struct timing *osync, struct timing *dsync)
{
	double t0 = it_mono_s();
	bool o = false, d = false;
	while (!(o && d)) {
		assert_true(it_mono_s() - t0 < DEADLINE_S);
		o = o || arrived(officer, "d1", to_officer, osync);
		d = d || arrived(defender, "embassy", to_defender, dsync);
	}
	double took = it_mono_s() - t0;
	printf("flood-cli: both messages arrived in %.1f s\n", took);
	assert_true(took < DEADLINE_S);
}

static void test_conversation_through_a_flood(void **state)
{
	struct world *w = *state;
	char officer[96], defender[96];
	snprintf(officer, sizeof(officer), "%s/officer", w->dir);
	snprintf(defender, sizeof(defender), "%s/defender", w->dir);
	/* A relay of its own, with a small intake quota to keep the flood short. */
	assert_int_equal(relayproc_init(&w->relay2, "intake_max_envelopes = 300\n"), 0);
	assert_int_equal(relayproc_start(&w->relay2), 0);
	char addr[CAIRN_ADDRESS_MAX + 1];
	address_of(&w->relay2, addr);

	/* The officer's address; the defender accepts it and is accepted; one message each way
	 * moves the conversation off the intake mailbox. */
	cli_check(0, CALL(.home = officer), ARGS("init"));
	struct res made =
	    cli_expect(0, CALL(.home = officer),
	               ARGS("intake", "create", "--relay", addr, "--name", "desk", "--work", "8"));
	made.out[strcspn(made.out, "\n")] = '\0';
	char *address = strdup(made.out);
	res_free(&made);
	assert_int_equal(defender_writes(defender, address, "embassy", "hello from the defender"),
	                 0);
	sync_expect(CALL(.home = officer), 0, -1);
	struct request req[8];
	size_t n = requests(officer, req, 8);
	assert_int_equal(n, 1);
	cli_check(0, CALL(.home = officer), ARGS("requests", "accept", req[0].id, "--name", "d1"));
	cli_check(0, CALL(.home = officer), ARGS("send", "d1", "welcome"));
	sync_expect(CALL(.home = defender), 0, 1);
	cli_check(0, CALL(.home = defender), ARGS("send", "embassy", "thank you"));
	sync_expect(CALL(.home = officer), 0, 1);
	struct convo c = read_convo(officer, "d1");
	assert_int_equal(count_text(&c, 0, "thank you"), 1);
	convo_free(&c);

	/* The flood, until the intake mailbox is full. */
	static struct flood f;
	memset(&f, 0, sizeof(f));
	f.port = w->relay2.port;
	f.pub = w->relay2.pub;
	parse_intake(address, &f.addr);
	bundle_prekey(&w->relay2, &f.addr, f.spk);
	strcpy(f.reply_relay, addr);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flooder, &f), 0);
	double t0 = it_mono_s();
	while (!atomic_load(&f.full) && it_mono_s() - t0 < DEADLINE_S)
		it_sleep_ms(20);
	printf("flood-cli: intake mailbox full (%lu junk, %lu real accepted) in %.1f s\n",
	       (unsigned long)atomic_load(&f.junk_ok), (unsigned long)atomic_load(&f.real_ok),
	       it_mono_s() - t0);

	/* The conversation, both ways, while the flooder keeps the mailbox full. */
	struct timing osync = {0}, dsync = {0};
	for (int i = 0; i < MESSAGES; i++) {
		char up[48], down[48];
		snprintf(up, sizeof(up), "defender to officer %d", i);
		snprintf(down, sizeof(down), "officer to defender %d", i);
		cli_check(0, CALL(.home = defender), ARGS("send", "embassy", up));
		cli_check(0, CALL(.home = officer), ARGS("send", "d1", down));
		both_arrive(officer, defender, up, down, &osync, &dsync);
	}
	atomic_store(&f.stop, 1);
	pthread_join(th, NULL);
	unsigned long junk = atomic_load(&f.junk_ok), real = atomic_load(&f.real_ok);
	printf("flood-cli: flood %lu junk and %lu real accepted, %lu quota\n", junk, real,
	       (unsigned long)atomic_load(&f.quota_n));
	printf("flood-cli: officer sync with the flood: first (a full intake mailbox) %.2f s, "
	       "worst %.2f s, mean %.2f s over %u; defender sync worst %.2f s\n",
	       osync.first, osync.worst, osync.total / osync.n, osync.n, dsync.worst);
	assert_int_equal(f.failed, 0);
	assert_int_equal(f.other, 0);
	assert_true(junk + real >= INTAKE_QUOTA);

	/* The whole conversation on both sides, each message once. */
	timed_sync(officer, &osync);
	c = read_convo(officer, "d1");
	assert_int_equal(count_text(&c, 0, "hello from the defender"), 1);
	assert_int_equal(count_text(&c, 1, "welcome"), 1);
	for (int i = 0; i < MESSAGES; i++) {
		char up[48];
		snprintf(up, sizeof(up), "defender to officer %d", i);
		assert_int_equal(count_text(&c, 0, up), 1);
	}
	convo_free(&c);
	c = read_convo(defender, "embassy");
	for (int i = 0; i < MESSAGES; i++) {
		char down[48];
		snprintf(down, sizeof(down), "officer to defender %d", i);
		assert_int_equal(count_text(&c, 0, down), 1);
	}
	convo_free(&c);

	/* Requests: only real first messages (junk never becomes one), at most those accepted;
	 * some were opened (the X3DH work was done). */
	size_t cap = real + 1;
	struct request *r = calloc(cap, sizeof(*r));
	assert_non_null(r);
	n = requests(officer, r, cap);
	printf("flood-cli: officer lists %zu requests of %lu real first messages accepted by the "
	       "relay\n",
	       n, real);
	assert_true(n <= real);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(strncmp(r[i].preview, "flood ", 6), 0);
	free(r);
	free(address);
	assert_int_equal(relayproc_stop(&w->relay2, SIGTERM), 0);
}

int main(void)
{
	/* group_cli_init: the command, the fast KDF and the homes' passphrase. */
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_conversation_through_a_flood, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
