/* SPDX-License-Identifier: MIT */
/*
 * Integration: how a relay writes FORWARDED to the next relay (relay/outconn.c dest_write).
 * Relay A on 127.0.0.2 forwards for its user (from 127.0.0.5) to relay B on 127.0.0.3, where
 * the recipient's mailbox is (its owner reads from 127.0.0.6). B is stopped (SIGSTOP) while the
 * user sends hundreds of 16 KiB envelopes through A: the kernel's buffers fill, A's writes are
 * taken in part or not at all, and the rest waits in A. Continued, B gets every envelope once,
 * in order and intact (a byte skipped or sent twice breaks the channel's AEAD, and every
 * FORWARD would come back `unreachable`), and the connection outlives the forward timeout.
 * Left stopped while the user goes on forwarding, every FORWARD is answered `unreachable` at
 * its deadline and A closes the connection by its stalled-write rule (the oldest write waiting
 * forward_timeout), not by the idle rule, which never applies; what B had acknowledged before
 * stays stored, nothing is stored twice, and A forwards again on a new connection.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/address.h"
#include "it_common.h"
#include "it_forward.h"

#define HOST_A   "127.0.0.2"
#define HOST_B   "127.0.0.3"
#define USER     "127.0.0.5"
#define OWNER    "127.0.0.6"
#define BODY_LEN CAIRN_ENVELOPE_MAX
/* FORWARDs of 16.7 KiB sent while B is stopped: 6.7 MB, where the kernel held 3.9 to 4.0 MB. */
#define FLOOD                 400
#define FIRST_RID             1000
#define MAX_FWD               2048 /* FORWARD numbers: the burst, then those sent on */
#define TCP_ESTABLISHED_STATE 1

struct world {
	struct relayproc a, b;
	char b_text[CAIRN_ADDRESS_MAX + 1];
	struct owner own; /* the recipient's mailbox, on B */
	struct owner usr; /* the user's, on A */
	struct tclient user;
	uint8_t k_rep[MAX_FWD][32]; /* each FORWARD's reply key, by its number */
};

static struct world w;

static int start_world(const char *a_conf)
{
	memset(&w, 0, sizeof(w));
	if (relayproc_init_at(&w.a, a_conf, HOST_A) != 0 || relayproc_start(&w.a) != 0 ||
	    relayproc_init_at(&w.b, NULL, HOST_B) != 0 || relayproc_start(&w.b) != 0 ||
	    relayproc_address(&w.b, HOST_B, w.b_text, sizeof(w.b_text)) != 0) {
		fprintf(stderr, "setup: cannot start the relays\n");
		return -1;
	}
	struct tclient maker;
	if (tclient_connect_at(&maker, OWNER, HOST_B, w.b.port, w.b.pub) != 0 ||
	    tclient_create(&maker, w.own.rid, w.own.sid, w.own.pk, w.own.sk) != 0)
		return -1;
	tclient_close(&maker);
	if (tclient_connect_at(&w.user, USER, HOST_A, w.a.port, w.a.pub) != 0 ||
	    tclient_create(&w.user, w.usr.rid, w.usr.sid, w.usr.pk, w.usr.sk) != 0)
		return -1;
	return 0;
}

/* A waits long enough for B to come back (B takes 1 to 3 s for the flood); FORWARDs enough
 * for the whole flood at once. */
#define PATIENT_S 10
static int setup_patient(void **state)
{
	(void)state;
	char conf[128];
	snprintf(conf, sizeof(conf), "\n[forward]\nper_connection = 1024\ntimeout = %d\n",
	         PATIENT_S);
	return start_world(conf);
}

/* A gives up on a FORWARD after 2 s and on an unused connection 2 s later. */
static int setup_impatient(void **state)
{
	(void)state;
	return start_world("\n[forward]\nper_connection = 1024\ntimeout = 2\nidle = 2\n");
}

static int teardown(void **state)
{
	(void)state;
	tclient_close(&w.user);
	if (w.b.pid > 0)
		kill(w.b.pid, SIGCONT); /* a stopped relay would take no SIGTERM */
	int rc = w.a.pid > 0 ? relayproc_stop(&w.a, SIGTERM) : 0;
	relayproc_cleanup(&w.a);
	relayproc_cleanup(&w.b);
	return rc == 0 ? 0 : -1; /* a clean exit: no sanitizer report in A either */
}

/* Queues the user's FORWARD number I: a sealed SEND of body I to the owner's mailbox on B. */
static void queue_forward(uint32_t i)
{
	static uint8_t body[BODY_LEN], cmd[BODY_LEN + 256], sealed[FORWARD_SEALED_MAX];
	it_numbered_body(body, BODY_LEN, i);
	struct cairn_msg s = {.type = CAIRN_CMD_SEND,
	                      .sender_id = w.own.sid,
	                      .envelope = body,
	                      .envelope_len = BODY_LEN};
	size_t n, slen;
	assert_int_equal(cairn_msg_encode(&s, cmd, sizeof(cmd), &n), 0);
	assert_int_equal(forward_seal(w.b.pub, cmd, n, sealed, sizeof(sealed), &slen, w.k_rep[i]),
	                 0);
	struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
	                      .request_id = FIRST_RID + i,
	                      .relay = (const uint8_t *)w.b_text,
	                      .relay_len = strlen(w.b_text),
	                      .sealed = sealed,
	                      .sealed_len = slen};
	assert_int_equal(tclient_queue(&w.user, &f), 0);
}

/* FORWARDs FROM..TO (inclusive), flushed in groups. */
static void send_forwards(uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i <= to; i++) {
		queue_forward(i);
		if ((i - from) % 8 == 7 || i == to)
			assert_int_equal(tclient_flush(&w.user), 0);
	}
}

/* The answer REPLY to a FORWARD: sets *I to its number and returns 0 (B stored it: OK inside
 * SEALED), the inner ERROR's code, or the outer ERROR's code with *OUTER. */
static int answer_of(const struct cairn_msg *reply, uint32_t *i, bool *outer)
{
	assert_true(reply->request_id >= FIRST_RID && reply->request_id < FIRST_RID + MAX_FWD);
	*i = reply->request_id - FIRST_RID;
	return it_forward_answer(reply, w.k_rep[*i], outer);
}

/* The next answer to a FORWARD within TIMEOUT_MS, as answer_of. */
static int next_answer(int timeout_ms, uint32_t *i, bool *outer)
{
	struct cairn_msg r;
	int rc = tclient_recv(&w.user, &r, timeout_ms);
	if (rc != 0)
		fail_msg("no answer to a FORWARD within %d ms (%s)", timeout_ms,
		         cairn_strerror(rc));
	return answer_of(&r, i, outer);
}

/* FORWARD number I, answered: B stored it. */
static void forward_stored(uint32_t i)
{
	send_forwards(i, i);
	uint32_t got;
	bool outer;
	assert_int_equal(next_answer(30000, &got, &outer), 0);
	assert_int_equal(got, i);
}

/* The kernel's side of A's connections to B (/proc/net/tcp), or of the one from A_PORT: the
 * bytes A's sockets have not had acknowledged and those B's hold unread, and the state of A's
 * socket (ESTABLISHED if one is; 0: none) and its port. */
struct link {
	unsigned long a_unacked, b_unread;
	unsigned a_state;
	uint16_t a_port;
};

static struct link link_now(uint16_t a_port)
{
	struct in_addr a, b;
	inet_pton(AF_INET, HOST_A, &a);
	inet_pton(AF_INET, HOST_B, &b);
	struct link l = {0};
	FILE *f = fopen("/proc/net/tcp", "r");
	assert_non_null(f);
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned la, lp, ra, rp, st;
		unsigned long tx, rx;
		/* "sl: local:port remote:port st tx_queue:rx_queue": addresses as s_addr. */
		if (sscanf(line, " %*d: %8X:%4X %8X:%4X %2X %8lX:%8lX", &la, &lp, &ra, &rp, &st,
		           &tx, &rx) != 7)
			continue;
		if (la == a.s_addr && ra == b.s_addr && rp == w.b.port &&
		    (a_port == 0 || lp == a_port)) {
			if (l.a_state == 0 || st == TCP_ESTABLISHED_STATE)
				l.a_state = st, l.a_port = (uint16_t)lp;
			l.a_unacked += tx;
		} else if (la == b.s_addr && lp == w.b.port && ra == a.s_addr &&
		           (a_port == 0 || rp == a_port)) {
			l.b_unread += rx;
		}
	}
	fclose(f);
	return l;
}

/* Waits until the kernel holds no more of A's flood to the stopped B (unchanged for half a
 * second), and checks that it holds well under what was sent: the rest waits in A, whose
 * writes the kernel took in part or refused. Returns the bytes in the kernel. */
static unsigned long kernel_full(uint32_t count)
{
	unsigned long held = 0;
	int same = 0;
	for (int tries = 0; tries < 300 && same < 5; tries++) {
		it_sleep_ms(100);
		struct link l = link_now(0);
		unsigned long now = l.a_unacked + l.b_unread;
		same = now == held ? same + 1 : 0;
		held = now;
	}
	unsigned long sent = (unsigned long)count * FORWARD_SEALED_MAX;
	printf("forward write: the kernel holds %lu of the %lu bytes A forwarded to stopped B\n",
	       held, sent);
	assert_true(held > 0);
	assert_true(held + (1ul << 20) < sent); /* at least 1 MiB left waiting in A */
	return held;
}

/* The owner reads its mailbox on B until nothing comes for a second: bodies in increasing
 * number, each intact and at most once; SEEN[i] set for each. Returns how many. */
static uint32_t owner_reads(bool *seen, uint32_t n)
{
	struct tclient c;
	assert_int_equal(tclient_connect_at(&c, OWNER, HOST_B, w.b.port, w.b.pub), 0);
	assert_int_equal(tclient_auth(&c, w.own.rid, w.own.sk), 0);
	assert_int_equal(it_simple(&c, CAIRN_CMD_SUBSCRIBE, w.own.rid), 0);
	static uint8_t want[BODY_LEN];
	uint32_t count = 0;
	int64_t last = -1;
	struct cairn_msg m;
	while (tclient_recv(&c, &m, 1000) == 0) {
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue; /* an ACK's OK */
		assert_int_equal(m.envelope_len, BODY_LEN);
		uint32_t i = it_body_number(m.envelope);
		if (i >= n || (int64_t)i <= last)
			fail_msg("envelope %u after %lld: out of order, twice, or unknown", i,
			         (long long)last);
		it_numbered_body(want, BODY_LEN, i);
		assert_memory_equal(m.envelope, want, BODY_LEN);
		last = i;
		seen[i] = true;
		count++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .request_id = 500000 + i,
		                        .recipient_id = w.own.rid,
		                        .envelope_id = m.envelope_id};
		assert_int_equal(tclient_send(&c, &ack), 0);
	}
	tclient_close(&c);
	return count;
}

/*
 * B stopped while FLOOD envelopes go through A, then continued: every FORWARD is answered
 * with B's sealed OK, and the owner finds all of them once, in order, byte for byte.
 */
static void test_stopped_destination_resumes(void **state)
{
	(void)state;
	int64_t start = it_mono_ms();
	forward_stored(0); /* A's connection to B is open */
	uint16_t first = link_now(0).a_port;
	assert_int_not_equal(first, 0);
	assert_int_equal(kill(w.b.pid, SIGSTOP), 0);
	send_forwards(1, FLOOD);
	kernel_full(FLOOD);
	assert_int_equal(kill(w.b.pid, SIGCONT), 0);

	static bool answered[FLOOD + 1];
	memset(answered, 0, sizeof(answered));
	for (uint32_t k = 0; k < FLOOD; k++) {
		uint32_t i;
		bool outer;
		int rc = next_answer(60000, &i, &outer);
		if (rc != 0)
			fail_msg("FORWARD %u: %s error %s after %u answers", i,
			         outer ? "outer" : "inner", cairn_strerror(rc), k);
		assert_true(i >= 1 && i <= FLOOD && !answered[i]);
		answered[i] = true;
	}
	static bool seen[FLOOD + 1];
	memset(seen, 0, sizeof(seen));
	assert_int_equal(owner_reads(seen, FLOOD + 1), FLOOD + 1);
	printf("forward write: %u x 16 KiB through a stopped and continued relay in %lld ms\n",
	       FLOOD, (long long)(it_mono_ms() - start));

	/* Past the forward timeout since the first write waited, the connection still serves:
	 * the stall rule counts from the oldest write still waiting, and none is. */
	while (it_mono_ms() < start + (PATIENT_S + 1) * 1000)
		it_sleep_ms(100);
	forward_stored(FLOOD + 1);
	assert_int_equal(link_now(first).a_state, TCP_ESTABLISHED_STATE);
}

/*
 * B stopped and left so while the user goes on forwarding to it: every FORWARD is answered
 * `unreachable` at its deadline, and A closes the connection once its oldest write has waited
 * forward_timeout, though FORWARDs keep coming (the idle rule never applies), so that their
 * copies do not pile up in A. Continued, B still has the envelope it acknowledged before the
 * stop, each envelope at most once, and A forwards to it again on a new connection.
 */
static void test_stopped_destination_closed(void **state)
{
	(void)state;
	forward_stored(0);
	uint16_t first = link_now(0).a_port;
	assert_int_not_equal(first, 0);
	assert_int_equal(kill(w.b.pid, SIGSTOP), 0);
	int64_t stopped = it_mono_ms();
	send_forwards(1, FLOOD);
	kernel_full(FLOOD);

	/* 20 more every 250 ms for up to 15 s (2 s would do), each answered `unreachable`. */
	long rss0 = relayproc_rss_kb(&w.a);
	uint32_t next = FLOOD + 1, answers = 0;
	int64_t limit = stopped + 15000;
	while (link_now(first).a_state == TCP_ESTABLISHED_STATE && it_mono_ms() < limit) {
		send_forwards(next, next + 19);
		next += 20;
		struct cairn_msg r;
		for (int64_t until = it_mono_ms() + 250; it_mono_ms() < until;) {
			if (tclient_recv(&w.user, &r, 10) != 0)
				continue;
			uint32_t i;
			bool outer;
			assert_int_equal(answer_of(&r, &i, &outer), CAIRN_EUNREACHABLE);
			assert_true(outer);
			answers++;
		}
	}
	int64_t closed_ms = it_mono_ms() - stopped;
	/* A's socket left ESTABLISHED, its unsent bytes still queued behind the FIN. */
	bool closed = link_now(first).a_state != TCP_ESTABLISHED_STATE;
	long rss1 = relayproc_rss_kb(&w.a);
	while (answers < next - 1) {
		uint32_t i;
		bool outer;
		assert_int_equal(next_answer(20000, &i, &outer), CAIRN_EUNREACHABLE);
		answers++;
	}
	printf("forward write: B stopped, A's connection to it %s after %lld ms, %u FORWARDs "
	       "all answered unreachable; A's RSS %ld -> %ld KiB meanwhile\n",
	       closed ? "closed" : "still open", (long long)closed_ms, next - 1, rss0, rss1);
	assert_true(closed);

	/* B reads what the kernel had kept for it, then the owner. */
	assert_int_equal(kill(w.b.pid, SIGCONT), 0);
	static bool seen[MAX_FWD];
	memset(seen, 0, sizeof(seen));
	uint32_t stored = owner_reads(seen, next);
	printf("forward write: %u of the %u answered unreachable were stored all the same\n",
	       stored - 1, next - 1);
	assert_true(seen[0]);
	forward_stored(next); /* on a new connection */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stopped_destination_resumes, setup_patient,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_stopped_destination_closed, setup_impatient,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
