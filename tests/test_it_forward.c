/* SPDX-License-Identifier: MIT */
/*
 * Private routing between two real relays (docs/PROTOCOL.md 5.11): relay A on 127.0.0.2
 * forwards for its own user, who connects from 127.0.0.5, to relay B on 127.0.0.3, where the
 * recipient's mailbox is (its owner connects from 127.0.0.6). The sealed SEND arrives, the first
 * ones in the order they were sent although they waited for A's handshake with B; B's
 * established connections show A's address and never the user's, and A's connection closes
 * when idle; B killed and restarted mid-way loses nothing the user is told was stored, and what
 * it was not told is sent again (dedup by body), and so does A killed with a FORWARD in flight;
 * A's limits hold against a flood of FORWARDs from one user (per connection, relay-wide,
 * destinations) while another user is still served.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn/address.h"
#include "it_common.h"
#include "it_forward.h"

#define HOST_A "127.0.0.2"
#define HOST_B "127.0.0.3"
#define USER   "127.0.0.5"
#define OWNER  "127.0.0.6"

struct world {
	struct relayproc a, b;
	char b_text[CAIRN_ADDRESS_MAX + 1];
};

static void address_of(const struct relayproc *r, const char *host, char *out)
{
	assert_int_equal(relayproc_address(r, host, out, CAIRN_ADDRESS_MAX + 1), 0);
}

static int setup(void **state)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	/* A answers a silent destination within 3 s, closes a connection idle for 2 s; small limits
	 * for the flood. */
	const char *a_conf = "\n[forward]\ntimeout = 3\nper_connection = 4\nmax = 6\n"
	                     "relays_max = 3\nidle = 2\n";
	if (relayproc_init_at(&w.a, a_conf, HOST_A) != 0 || relayproc_start(&w.a) != 0 ||
	    relayproc_init_at(&w.b, NULL, HOST_B) != 0 || relayproc_start(&w.b) != 0) {
		fprintf(stderr, "setup: cannot start the relays\n");
		return -1;
	}
	address_of(&w.b, HOST_B, w.b_text);
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	relayproc_cleanup(&w->a);
	relayproc_cleanup(&w->b);
	return 0;
}

/* Builds in F the FORWARD, request RID, of a sealed SEND of BODY to SENDER_ID at DEST_TEXT (key
 * DEST_PUB), sealed into SEALED (FORWARD_SEALED_MAX bytes); K_REP opens its answer. */
static void forward_build(struct cairn_msg *f, uint32_t rid, const char *dest_text,
                          const uint8_t dest_pub[32], const uint8_t sender_id[24], const char *body,
                          uint8_t *sealed, uint8_t k_rep[32])
{
	uint8_t cmd[256];
	size_t n, slen;
	struct cairn_msg s = {.type = CAIRN_CMD_SEND,
	                      .sender_id = sender_id,
	                      .envelope = (const uint8_t *)body,
	                      .envelope_len = strlen(body)};
	assert_int_equal(cairn_msg_encode(&s, cmd, sizeof(cmd), &n), 0);
	assert_int_equal(forward_seal(dest_pub, cmd, n, sealed, FORWARD_SEALED_MAX, &slen, k_rep),
	                 0);
	*f = (struct cairn_msg){.type = CAIRN_CMD_FORWARD,
	                        .request_id = rid,
	                        .relay = (const uint8_t *)dest_text,
	                        .relay_len = strlen(dest_text),
	                        .sealed = sealed,
	                        .sealed_len = slen};
}

/* FORWARD of a sealed SEND of BODY to SENDER_ID at DEST_TEXT (key DEST_PUB) on C, request
 * RID: returns 0 (OK inside SEALED), the inner ERROR's code, or the outer ERROR's code. */
static int forward_send(struct tclient *c, uint32_t rid, const char *dest_text,
                        const uint8_t dest_pub[32], const uint8_t sender_id[24], const char *body,
                        bool *outer)
{
	uint8_t sealed[FORWARD_SEALED_MAX], k_rep[32];
	struct cairn_msg f;
	forward_build(&f, rid, dest_text, dest_pub, sender_id, body, sealed, k_rep);
	assert_int_equal(tclient_send(c, &f), 0);
	struct cairn_msg r;
	do
		assert_int_equal(tclient_recv(c, &r, 30000), 0);
	while (r.request_id != rid || r.type == CAIRN_REPLY_ENVELOPE);
	return it_forward_answer(&r, k_rep, outer);
}

/* The bodies delivered to SUB_RID on C until none comes for WAIT_MS, counted per index. */
static void drain(struct tclient *c, uint32_t sub_rid, const uint8_t recipient_id[24], int *counts,
                  int n, int wait_ms)
{
	struct cairn_msg m;
	while (tclient_recv(c, &m, wait_ms) == 0) {
		if (m.type != CAIRN_REPLY_ENVELOPE || m.request_id != sub_rid)
			continue;
		int i = -1;
		char body[32] = {0};
		memcpy(body, m.envelope, m.envelope_len < 31 ? m.envelope_len : 31);
		if (sscanf(body, "fwd-%d", &i) == 1 && i >= 0 && i < n)
			counts[i]++;
		struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
		                        .request_id = 900000 + (uint32_t)i,
		                        .recipient_id = recipient_id,
		                        .envelope_id = m.envelope_id};
		assert_int_equal(tclient_send(c, &ack), 0);
	}
}

static void test_forward_private(void **state)
{
	struct world *w = *state;
	struct tclient owner, user;
	uint8_t rid[24], sid[24], pk[32], sk[64], urid[24], usid[24];
	assert_int_equal(tclient_connect_at(&owner, OWNER, HOST_B, w->b.port, w->b.pub), 0);
	assert_int_equal(tclient_create(&owner, rid, sid, pk, sk), 0);
	assert_int_equal(tclient_connect_at(&user, USER, HOST_A, w->a.port, w->a.pub), 0);
	bool outer;
	/* Not yet one of A's users: denied. */
	assert_int_equal(forward_send(&user, 10, w->b_text, w->b.pub, sid, "fwd-0", &outer),
	                 CAIRN_EDENIED);
	assert_true(outer);
	assert_int_equal(tclient_create(&user, urid, usid, pk, sk), 0);
	assert_int_equal(forward_send(&user, 11, w->b_text, w->b.pub, sid, "fwd-0", &outer), 0);

	/* B has accepted the owner and A, never the user. */
	assert_true(tcp_established_from(HOST_B, w->b.port, HOST_A));
	assert_true(tcp_established_from(HOST_B, w->b.port, OWNER));
	assert_false(tcp_established_from(HOST_B, w->b.port, USER));

	/* Inner errors come back sealed, as a direct SEND's. */
	uint8_t nobody[24];
	memset(nobody, 0x99, sizeof(nobody));
	assert_int_equal(forward_send(&user, 12, w->b_text, w->b.pub, nobody, "x", &outer),
	                 CAIRN_EDENIED);
	assert_false(outer);

	struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 5, .recipient_id = rid};
	assert_int_equal(tclient_send(&owner, &sub), 0);
	int counts[1] = {0};
	drain(&owner, 5, rid, counts, 1, 1000);
	assert_int_equal(counts[0], 1);

	/* Nothing more to forward: A closes its connection to B after `idle` (2 s, checked every
	 * 250 ms), and the next FORWARD opens a new one. */
	int waited_ms = 0;
	while (tcp_established_from(HOST_B, w->b.port, HOST_A) && waited_ms < 6000) {
		it_sleep_ms(100);
		waited_ms += 100;
	}
	assert_false(tcp_established_from(HOST_B, w->b.port, HOST_A));
	assert_int_equal(forward_send(&user, 13, w->b_text, w->b.pub, sid, "fwd-1", &outer), 0);
	assert_true(tcp_established_from(HOST_B, w->b.port, HOST_A));
	tclient_close(&owner);
	tclient_close(&user);
}

/* The first FORWARDs to a destination wait in A while A connects to B and runs its handshake:
 * they reach B, and so the owner, in the order the user sent them. */
static void test_forward_order(void **state)
{
	struct world *w = *state;
	struct tclient owner, user;
	uint8_t rid[24], sid[24], pk[32], sk[64], urid[24], usid[24];
	assert_int_equal(tclient_connect_at(&owner, OWNER, HOST_B, w->b.port, w->b.pub), 0);
	assert_int_equal(tclient_create(&owner, rid, sid, pk, sk), 0);
	assert_int_equal(tclient_connect_at(&user, USER, HOST_A, w->a.port, w->a.pub), 0);
	assert_int_equal(tclient_create(&user, urid, usid, pk, sk), 0);
	enum { N = 4 }; /* A's per_connection */
	uint8_t k_rep[N][32], sealed[N][FORWARD_SEALED_MAX];
	for (uint32_t i = 0; i < N; i++) {
		char body[16];
		snprintf(body, sizeof(body), "fwd-%u", i);
		struct cairn_msg f;
		forward_build(&f, 20 + i, w->b_text, w->b.pub, sid, body, sealed[i], k_rep[i]);
		assert_int_equal(tclient_queue(&user, &f), 0);
	}
	assert_int_equal(tclient_flush(&user), 0); /* all N reach A in one read */
	for (int i = 0; i < N; i++) {
		struct cairn_msg r;
		bool outer;
		assert_int_equal(tclient_recv(&user, &r, 30000), 0);
		assert_true(r.request_id >= 20 && r.request_id < 20 + N);
		assert_int_equal(it_forward_answer(&r, k_rep[r.request_id - 20], &outer), 0);
	}
	struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 5, .recipient_id = rid};
	assert_int_equal(tclient_send(&owner, &sub), 0);
	int next = 0;
	struct cairn_msg m;
	while (next < N && tclient_recv(&owner, &m, 5000) == 0) {
		if (m.type != CAIRN_REPLY_ENVELOPE)
			continue;
		char body[16];
		snprintf(body, sizeof(body), "fwd-%d", next);
		assert_int_equal(m.envelope_len, strlen(body));
		assert_memory_equal(m.envelope, body, m.envelope_len);
		next++;
	}
	assert_int_equal(next, N);
	tclient_close(&owner);
	tclient_close(&user);
}

/* B is killed while sends go through A: each send the user was not told was stored is sent
 * again until it is; in the end every body is in the mailbox, duplicates only of bodies whose
 * answer was lost. */
static void test_forward_restart(void **state)
{
	struct world *w = *state;
	struct tclient owner, user;
	uint8_t rid[24], sid[24], pk[32], sk[64], urid[24], usid[24], upk[32], usk[64];
	assert_int_equal(tclient_connect_at(&owner, OWNER, HOST_B, w->b.port, w->b.pub), 0);
	assert_int_equal(tclient_create(&owner, rid, sid, pk, sk), 0);
	tclient_close(&owner);
	assert_int_equal(tclient_connect_at(&user, USER, HOST_A, w->a.port, w->a.pub), 0);
	assert_int_equal(tclient_create(&user, urid, usid, upk, usk), 0);

	enum { N = 30 };
	bool stored[N] = {0};
	int unreachable = 0;
	uint32_t req = 100;
	for (int i = 0; i < N; i++) {
		if (i == 10)
			assert_int_equal(relayproc_stop(&w->b, SIGKILL), 128 + SIGKILL);
		if (i == 15)
			assert_int_equal(relayproc_start(&w->b), 0);
		char body[32];
		snprintf(body, sizeof(body), "fwd-%d", i);
		bool outer;
		int rc = forward_send(&user, req++, w->b_text, w->b.pub, sid, body, &outer);
		if (rc == 0)
			stored[i] = true;
		else
			assert_int_equal(rc, CAIRN_EUNREACHABLE), unreachable++;
	}
	assert_true(unreachable >= 5); /* the outage was seen */
	/* Retry what was not stored, as the client's outbox does. */
	for (int round = 0; round < 20; round++) {
		bool all = true;
		for (int i = 0; i < N; i++) {
			if (stored[i])
				continue;
			char body[32];
			snprintf(body, sizeof(body), "fwd-%d", i);
			bool outer;
			stored[i] =
			    forward_send(&user, req++, w->b_text, w->b.pub, sid, body, &outer) == 0;
			all = all && stored[i];
		}
		if (all)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
	}
	for (int i = 0; i < N; i++)
		assert_true(stored[i]);

	/* A killed with a FORWARD of the user's in flight: the user's connection breaks, it
	 * connects again once A is back, proves its mailbox and sends the same body again. */
	{
		uint8_t cmd[64], sealed[FORWARD_SEALED_MAX], k_rep[32];
		size_t n, slen;
		struct cairn_msg s = {.type = CAIRN_CMD_SEND,
		                      .sender_id = sid,
		                      .envelope = (const uint8_t *)"fwd-30",
		                      .envelope_len = 6};
		assert_int_equal(cairn_msg_encode(&s, cmd, sizeof(cmd), &n), 0);
		assert_int_equal(
		    forward_seal(w->b.pub, cmd, n, sealed, sizeof(sealed), &slen, k_rep), 0);
		struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
		                      .request_id = req++,
		                      .relay = (const uint8_t *)w->b_text,
		                      .relay_len = strlen(w->b_text),
		                      .sealed = sealed,
		                      .sealed_len = slen};
		assert_int_equal(tclient_send(&user, &f), 0);
		assert_int_equal(relayproc_stop(&w->a, SIGKILL), 128 + SIGKILL);
		struct cairn_msg r;
		while (tclient_recv(&user, &r, 5000) == 0)
			; /* the answer, if it came before the kill, then the close */
		tclient_close(&user);
		assert_int_equal(relayproc_start(&w->a), 0);
		assert_int_equal(tclient_connect_at(&user, USER, HOST_A, w->a.port, w->a.pub), 0);
		assert_int_equal(tclient_auth(&user, urid, usk), 0);
		bool outer;
		assert_int_equal(
		    forward_send(&user, req++, w->b_text, w->b.pub, sid, "fwd-30", &outer), 0);
	}

	/* The owner finds every body, each at least once. */
	assert_int_equal(tclient_connect_at(&owner, OWNER, HOST_B, w->b.port, w->b.pub), 0);
	assert_int_equal(tclient_auth(&owner, rid, sk), 0);
	struct cairn_msg sub = {.type = CAIRN_CMD_SUBSCRIBE, .request_id = 5, .recipient_id = rid};
	assert_int_equal(tclient_send(&owner, &sub), 0);
	int counts[N + 1] = {0};
	drain(&owner, 5, rid, counts, N + 1, 1500);
	for (int i = 0; i < N + 1; i++)
		if (counts[i] < 1)
			fail_msg("body %d lost", i);
	tclient_close(&owner);
	tclient_close(&user);
}

/* A listener that accepts and never answers: a destination that refuses the handshake. */
static int silent_listener(const char *host, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, host, &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	socklen_t len = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_forward_flood(void **state)
{
	struct world *w = *state;
	struct tclient flood, flood2, other;
	uint8_t rid[24], sid[24], pk[32], sk[64];
	assert_int_equal(tclient_connect_at(&flood, USER, HOST_A, w->a.port, w->a.pub), 0);
	assert_int_equal(tclient_create(&flood, rid, sid, pk, sk), 0);
	assert_int_equal(tclient_connect_at(&flood2, USER, HOST_A, w->a.port, w->a.pub), 0);
	assert_int_equal(tclient_auth(&flood2, rid, sk), 0);
	assert_int_equal(tclient_connect_at(&other, "127.0.0.7", HOST_A, w->a.port, w->a.pub), 0);
	uint8_t orid[24], osid[24];
	assert_int_equal(tclient_create(&other, orid, osid, pk, sk), 0);

	uint16_t sport;
	int lfd = silent_listener("127.0.0.4", &sport);
	struct relayproc fake = {.port = sport};
	memset(fake.pub, 0x42, 32);
	crypto_scalarmult_base(fake.pub, fake.pub);
	char silent[CAIRN_ADDRESS_MAX + 1];
	address_of(&fake, "127.0.0.4", silent);

	/* 40 FORWARDs at once to the silent destination on one connection: 4 wait, the rest get
	 * `limit` at once; then they time out `unreachable`. */
	uint8_t cmd[64] = {0x92, 0x01, 0x00}, sealed[FORWARD_SEALED_MAX], k_rep[32];
	size_t slen;
	assert_int_equal(forward_seal(fake.pub, cmd, 3, sealed, sizeof(sealed), &slen, k_rep), 0);
	long rss0 = relayproc_rss_kb(&w->a), fds0 = relayproc_fds(&w->a);
	for (uint32_t i = 0; i < 40; i++) {
		struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
		                      .request_id = 1000 + i,
		                      .relay = (const uint8_t *)silent,
		                      .relay_len = strlen(silent),
		                      .sealed = sealed,
		                      .sealed_len = slen};
		assert_int_equal(tclient_queue(&flood, &f), 0);
		if (i % 8 == 7)
			assert_int_equal(tclient_flush(&flood), 0);
	}
	/* A second connection of the same user: 2 more fit under the relay-wide 6. */
	for (uint32_t i = 0; i < 4; i++) {
		struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
		                      .request_id = 2000 + i,
		                      .relay = (const uint8_t *)silent,
		                      .relay_len = strlen(silent),
		                      .sealed = sealed,
		                      .sealed_len = slen};
		assert_int_equal(tclient_send(&flood2, &f), 0);
	}
	int limit = 0, unreach = 0;
	struct cairn_msg r;
	for (int i = 0; i < 40; i++) {
		assert_int_equal(tclient_recv(&flood, &r, 30000), 0);
		assert_int_equal(r.type, CAIRN_REPLY_ERROR);
		if (r.code == 6)
			limit++;
		else if (r.code == 11)
			unreach++;
	}
	assert_int_equal(limit, 36);
	assert_int_equal(unreach, 4);
	int limit2 = 0;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(tclient_recv(&flood2, &r, 30000), 0);
		assert_int_equal(r.type, CAIRN_REPLY_ERROR);
		limit2 += r.code == 6;
	}
	assert_int_equal(limit2, 2); /* relay-wide max 6: 4 + 2 */

	/* Distinct destinations: at most relays_max (3) connections; further ones `limit`. */
	int dest_limit = 0;
	for (int i = 0; i < 4; i++) {
		struct relayproc d = {.port = (uint16_t)(sport)};
		memset(d.pub, 0x50 + i, 32);
		crypto_scalarmult_base(d.pub, d.pub);
		char text[CAIRN_ADDRESS_MAX + 1];
		address_of(&d, "127.0.0.4", text);
		struct cairn_msg f = {.type = CAIRN_CMD_FORWARD,
		                      .request_id = 3000 + (uint32_t)i,
		                      .relay = (const uint8_t *)text,
		                      .relay_len = strlen(text),
		                      .sealed = sealed,
		                      .sealed_len = slen};
		assert_int_equal(tclient_send(&flood, &f), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(tclient_recv(&flood, &r, 30000), 0);
		dest_limit += r.type == CAIRN_REPLY_ERROR && r.code == 6;
	}
	/* The silent destination, idle by now, made room for a third; the fourth is refused. */
	assert_int_equal(dest_limit, 1);

	/* Another user is served meanwhile, and A stayed small. */
	bool outer;
	assert_int_equal(forward_send(&other, 7, w->b_text, w->b.pub, osid, "fwd-1", &outer),
	                 CAIRN_EDENIED); /* osid is on A, not B: B's sealed denial */
	assert_false(outer);
	long rss1 = relayproc_rss_kb(&w->a), fds1 = relayproc_fds(&w->a);
	fprintf(stderr, "relay A: rss %ld -> %ld KiB, fds %ld -> %ld\n", rss0, rss1, fds0, fds1);
	assert_true(fds1 - fds0 <= 4);
	assert_true(rss1 - rss0 < 16 * 1024);
	close(lfd);
	tclient_close(&flood);
	tclient_close(&flood2);
	tclient_close(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_forward_private, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_flood, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
