/* SPDX-License-Identifier: MIT */
/*
 * Integration: a flood of intake requests with valid work (issue 13) against the real
 * cairn-relay. A flooder thread solves and sends 10,000 envelopes to one intake mailbox at
 * low bits while two clients keep a private conversation on ordinary mailboxes of the same
 * relay. Every private message must arrive within a generous deadline, the intake mailbox
 * must hold its quota and no more (the rest refused `quota`), and the test prints what the
 * flood cost the flooder (CPU per accepted envelope) and the relay (CPU per SEND_WORK).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "it_common.h"
#include "work.h"
#include "wrapper.h"

#define FLOOD_BITS   10   /* tests use low bits; the cost at 20 is PERFORMANCE.md's */
#define INTAKE_QUOTA 1000 /* the relay's default intake_max_envelopes, set to be sure */
#define ENV_LEN      896  /* 8.6's short padded size */
#define WINDOW       32   /* SEND_WORKs in flight: 32 x ~950 bytes fit one frame */
/* A private message may wait this long behind the flood; the test fails beyond it. */
#define PRIVATE_DEADLINE_MS 10000

struct flood {
	uint16_t port;
	const uint8_t *pub;
	uint8_t sid[24];
	unsigned count;
	uint64_t ok, quota, other; /* replies by kind */
	double cpu_s;              /* the flooder thread's CPU time, solving included */
	double wall_s;
	atomic_int done;
	int failed; /* a transport error: the flood did not finish */
};

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_reply(struct flood *f, const struct cairn_msg *m)
{
	if (m->type == CAIRN_REPLY_OK)
		f->ok++;
	else if (m->type == CAIRN_REPLY_ERROR && m->code == (uint32_t)-CAIRN_EQUOTA)
		f->quota++;
	else
		f->other++;
}

/* The flooder: solves each envelope's work just before sending it, WINDOW in flight. */
static void *flooder(void *arg)
{
	struct flood *f = arg;
	struct tclient c;
	double cpu0 = thread_cpu_s(), t0 = it_mono_s();
	if (tclient_connect(&c, f->port, f->pub) != 0) {
		f->failed = 1;
		atomic_store(&f->done, 1);
		return NULL;
	}
	uint8_t env[ENV_LEN], work[WORK_LEN];
	randombytes_buf(env, sizeof(env));
	unsigned sent = 0, answered = 0;
	while (answered < f->count) {
		for (; sent < f->count && sent - answered < WINDOW; sent++) {
			/* Every envelope differs, as a real flooder's must (the same envelope and
			 * time would need a fresh nonce anyway). */
			memcpy(env, &sent, sizeof(sent));
			if (work_solve(f->sid, env, sizeof(env), (uint64_t)time(NULL), FLOOD_BITS,
			               randombytes_random(), work, NULL) != 0)
				f->failed = 1;
			struct cairn_msg m = {.type = CAIRN_CMD_SEND_WORK,
			                      .request_id = sent + 1,
			                      .sender_id = f->sid,
			                      .work = work,
			                      .envelope = env,
			                      .envelope_len = sizeof(env)};
			if (tclient_queue(&c, &m) != 0)
				f->failed = 1;
		}
		if (c.batch_len > 0 && tclient_flush(&c) != 0)
			f->failed = 1;
		struct cairn_msg reply;
		if (f->failed || tclient_recv(&c, &reply, 60000) != 0) {
			f->failed = 1;
			break;
		}
		count_reply(f, &reply);
		answered++;
	}
	tclient_close(&c);
	f->cpu_s = thread_cpu_s() - cpu0;
	f->wall_s = it_mono_s() - t0;
	atomic_store(&f->done, 1);
	return NULL;
}

/* One side of the private conversation: a send-only connection and a subscribed one. */
struct side {
	struct tclient tx, rx;
	struct owner o;
};

static void side_open(struct side *s, const struct relayproc *r)
{
	assert_int_equal(tclient_connect(&s->tx, r->port, r->pub), 0);
	assert_int_equal(tclient_connect(&s->rx, r->port, r->pub), 0);
	assert_int_equal(tclient_create(&s->rx, s->o.rid, s->o.sid, s->o.pk, s->o.sk), 0);
	assert_int_equal(it_simple(&s->rx, CAIRN_CMD_SUBSCRIBE, s->o.rid), 0);
}

static void side_close(struct side *s)
{
	tclient_close(&s->tx);
	tclient_close(&s->rx);
}

/*
 * FROM sends message I to TO, which receives and acknowledges it. Only one message is ever
 * in flight per mailbox, so the ACK's wait skips no delivery. Returns the latency in ms.
 */
static int64_t private_message(struct side *from, struct side *to, unsigned i)
{
	char text[48];
	int n = snprintf(text, sizeof(text), "private %u", i);
	int64_t t0 = it_mono_ms();
	assert_int_equal(it_send(&from->tx, to->o.sid, NULL, text, (size_t)n), 0);
	struct cairn_msg env;
	assert_int_equal(tclient_recv(&to->rx, &env, PRIVATE_DEADLINE_MS), 0);
	int64_t ms = it_mono_ms() - t0;
	assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
	assert_int_equal(env.envelope_len, (size_t)n);
	assert_memory_equal(env.envelope, text, (size_t)n);
	assert_int_equal(it_ack(&to->rx, to->o.rid, env.envelope_id), 0);
	return ms;
}

/* The relay, stopped by teardown even when an assertion fails. */
static int setup(void **state)
{
	static struct relayproc r;
	if (relayproc_init(&r, "intake_max_envelopes = 1000\n") != 0 || relayproc_start(&r) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", r.dir);
		relayproc_cleanup(&r);
		return -1;
	}
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	relayproc_cleanup(*state);
	return 0;
}

static void test_flood_leaves_conversations_alone(void **state)
{
	struct relayproc *r = *state;

	/* The officer's intake mailbox, nobody draining it during the flood. */
	struct tclient officer;
	struct owner intake;
	assert_int_equal(tclient_connect(&officer, r->port, r->pub), 0);
	assert_int_equal(tclient_create(&officer, intake.rid, intake.sid, intake.pk, intake.sk), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_INTAKE,
	                      .recipient_id = intake.rid,
	                      .work_bits = FLOOD_BITS},
	                 reply;
	assert_int_equal(tclient_call(&officer, &m, &reply), 0);

	struct side a, b;
	side_open(&a, r);
	side_open(&b, r);

	/* Under valgrind everything runs some 20 times slower: a tenth of the flood, still ten
	 * times the quota. */
	static struct flood f;
	memset(&f, 0, sizeof(f));
	f.port = r->port;
	f.pub = r->pub;
	memcpy(f.sid, intake.sid, sizeof(f.sid));
	f.count =
	    test_wrapper_argv((char *[TEST_WRAPPER_MAX]){0}) > 0 ? 1000 + INTAKE_QUOTA : 10000;
	long relay_cpu0 = relayproc_cpu_ms(r);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flooder, &f), 0);

	/* The private conversation, both ways, for as long as the flood lasts (and at least a
	 * few rounds). */
	unsigned rounds = 0;
	int64_t worst = 0, total = 0;
	while (!atomic_load(&f.done) || rounds < 10) {
		int64_t there = private_message(&a, &b, rounds);
		int64_t back = private_message(&b, &a, rounds);
		worst = there > worst ? there : worst;
		worst = back > worst ? back : worst;
		total += there + back;
		rounds++;
	}
	pthread_join(th, NULL);
	long relay_cpu = relayproc_cpu_ms(r) - relay_cpu0;

	printf("flood: %u SEND_WORK at %d bits in %.1f s: %llu OK, %llu quota, %llu other\n",
	       f.count, FLOOD_BITS, f.wall_s, (unsigned long long)f.ok, (unsigned long long)f.quota,
	       (unsigned long long)f.other);
	printf("flood: flooder CPU %.2f s: %.2f ms per envelope sent, %.2f ms per envelope "
	       "accepted\n",
	       f.cpu_s, f.cpu_s * 1e3 / f.count, f.ok ? f.cpu_s * 1e3 / (double)f.ok : 0.0);
	printf("flood: relay CPU %ld ms over the flood: %.1f us per SEND_WORK (the private "
	       "conversation's %u rounds included)\n",
	       relay_cpu, relay_cpu * 1e3 / f.count, rounds);
	printf("flood: private conversation: %u messages each way, latency worst %lld ms, mean "
	       "%.1f ms (deadline %d ms)\n",
	       rounds, (long long)worst, (double)total / (2.0 * rounds), PRIVATE_DEADLINE_MS);

	assert_int_equal(f.failed, 0);
	assert_int_equal(f.other, 0);
	/* The intake mailbox holds its quota and no more; everything else was refused. */
	assert_int_equal(f.ok, INTAKE_QUOTA);
	assert_int_equal(f.quota, f.count - INTAKE_QUOTA);
	assert_true(worst < PRIVATE_DEADLINE_MS);

	/* The relay still refuses one more with valid work: the flood's envelopes stay. */
	uint8_t env[ENV_LEN] = {0}, work[WORK_LEN];
	assert_int_equal(work_solve(intake.sid, env, sizeof(env), (uint64_t)time(NULL), FLOOD_BITS,
	                            0, work, NULL),
	                 0);
	struct cairn_msg sw = {.type = CAIRN_CMD_SEND_WORK,
	                       .sender_id = intake.sid,
	                       .work = work,
	                       .envelope = env,
	                       .envelope_len = sizeof(env)};
	assert_int_equal(tclient_call(&a.tx, &sw, &reply), CAIRN_EQUOTA);

	side_close(&a);
	side_close(&b);
	tclient_close(&officer);
	assert_int_equal(relayproc_stop(r, SIGTERM), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_flood_leaves_conversations_alone, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
