/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench transport` (issue 14): what a transport costs, measured through the client's
 * own connection code (client/net.h, as the `cairn` command uses it) against the real relay,
 * for each transport in the same run: handshakes per second (TCP, the transport's own setup,
 * the Noise handshake, close) with the client's and the relay's CPU per handshake; then
 * throughput, envelopes of 1 KiB and 16 KiB from a sender to a subscribed owner (window of
 * SENDs in flight, every envelope ACKed), in envelopes/s and MB/s with both sides' CPU.
 * The client's CPU is this process's (sender and owner both); the relay's is read from
 * /proc; a front server's (nginx, when a transport has one) likewise from its processes.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench.h"
#include "cairn/address.h"
#include "cairn/limits.h"
#include "procscan.h"
#include "net.h"
#include "relayctl.h"
#include "transport.h"

/* SENDs in flight, as in the other scenarios: over cairn+https, 64 of 1 KiB make a write
 * over 64 KiB, which client/wss.c cuts into frames the relay takes (at most 64 KiB each). */
#define WINDOW TRANSPORT_WINDOW

/* CPU seconds of the transport's servers: the relay, and its front processes if any. */
static double servers_cpu(const struct transport_target *t, double *front)
{
	*front = 0;
	for (size_t i = 0; i < t->front_len; i++) {
		double s = proc_cpu_s(t->front[i]);
		if (s > 0)
			*front += s;
	}
	return proc_cpu_s(t->relay_pid);
}

static int handshakes(const struct transport_target *t, uint32_t count, struct transport_result *r)
{
	struct cnet_options opt = {.connect_timeout_ms = 15000};
	double f0, s0 = servers_cpu(t, &f0), c0 = bench_self_cpu_s();
	uint64_t t0 = bench_now_ns();
	for (uint32_t i = 0; i < count; i++) {
		struct cnet *n = NULL;
		int rc = cnet_connect(&t->addr, &opt, &n);
		if (rc != 0) {
			bench_note("transport %s: handshake %u failed: %s", t->name, i,
			           cairn_strerror(rc));
			return -1;
		}
		cnet_close(n);
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	double f1, s1 = servers_cpu(t, &f1), c1 = bench_self_cpu_s();
	r->hs_per_s = count / secs;
	r->hs_client_ms = (c1 - c0) * 1000 / count;
	r->hs_relay_ms = (s1 - s0) * 1000 / count;
	r->hs_front_ms = (f1 - f0) * 1000 / count;
	return 0;
}

/* Sends M on N and waits for its single reply into *R (setup steps only). */
static int call(struct cnet *n, struct cairn_msg *m, struct cairn_msg *r)
{
	m->request_id = cnet_next_id(n);
	int rc = cnet_queue(n, m);
	if (rc == 0)
		rc = cnet_flush(n);
	if (rc == 0)
		rc = cnet_recv(n, r, 15000);
	if (rc == 0 && r->type == CAIRN_REPLY_ERROR)
		rc = CAIRN_ESTATE;
	return rc;
}

/* A mailbox on OWN, secured with CRED and subscribed; its sender id into SID. */
static int mailbox(struct cnet *own, const uint8_t cred[CAIRN_CREDENTIAL_LEN],
                   uint8_t rid[CAIRN_MAILBOX_ID_LEN], uint8_t sid[CAIRN_MAILBOX_ID_LEN])
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(pk, sk);
	sodium_memzero(sk, sizeof(sk)); /* never used: the mailbox lives one connection */
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .recipient_key = pk}, r;
	int rc = call(own, &m, &r);
	if (rc != 0 || r.type != CAIRN_REPLY_CREATED)
		return rc != 0 ? rc : CAIRN_ESTATE;
	memcpy(rid, r.recipient_id, CAIRN_MAILBOX_ID_LEN);
	memcpy(sid, r.sender_id, CAIRN_MAILBOX_ID_LEN);
	uint8_t digest[CAIRN_CREDENTIAL_LEN];
	crypto_generichash(digest, sizeof(digest), cred, CAIRN_CREDENTIAL_LEN, sid,
	                   CAIRN_MAILBOX_ID_LEN);
	m = (struct cairn_msg){.type = CAIRN_CMD_SECURE, .recipient_id = rid, .credential = digest};
	if ((rc = call(own, &m, &r)) != 0)
		return rc;
	m = (struct cairn_msg){.type = CAIRN_CMD_SUBSCRIBE, .recipient_id = rid};
	return call(own, &m, &r);
}

/* Drains what N has now; counts OKs and envelopes (ACKing each on OWN). */
static int drain(struct cnet *n, bool owner, const uint8_t *rid, uint64_t *oks, uint64_t *delivered)
{
	struct cairn_msg m;
	int rc;
	while ((rc = cnet_recv(n, &m, 0)) == 0) {
		if (m.type == CAIRN_REPLY_ENVELOPE && owner) {
			(*delivered)++;
			struct cairn_msg ack = {.type = CAIRN_CMD_ACK,
			                        .request_id = cnet_next_id(n),
			                        .recipient_id = rid,
			                        .envelope_id = m.envelope_id};
			if ((rc = cnet_queue(n, &ack)) != 0)
				return rc;
		} else if (m.type == CAIRN_REPLY_OK) {
			(*oks)++;
		} else if (m.type == CAIRN_REPLY_ERROR) {
			bench_note("transport: ERROR code %u", (unsigned)m.code);
			return CAIRN_ESTATE;
		}
	}
	if (rc != CAIRN_ETIMEDOUT)
		return rc;
	return owner ? cnet_flush(n) : 0;
}

static int throughput(const struct transport_target *t, uint32_t size, uint32_t count,
                      struct transport_rate *out)
{
	struct cnet_options opt = {.connect_timeout_ms = 15000};
	struct cnet *own = NULL, *snd = NULL;
	uint8_t cred[CAIRN_CREDENTIAL_LEN], rid[CAIRN_MAILBOX_ID_LEN], sid[CAIRN_MAILBOX_ID_LEN];
	randombytes_buf(cred, sizeof(cred));
	uint8_t *body = malloc(size);
	int rc = body == NULL ? CAIRN_ENOMEM : cnet_connect(&t->addr, &opt, &own);
	if (rc == 0)
		rc = cnet_connect(&t->addr, &opt, &snd);
	if (rc == 0 && (rc = mailbox(own, cred, rid, sid)) != 0)
		bench_note("transport %s: no mailbox: %s", t->name, cairn_strerror(rc));
	uint64_t sent = 0, oks = 0, delivered = 0, acks = 0, none = 0;
	double f0 = 0, s0 = servers_cpu(t, &f0), c0 = bench_self_cpu_s();
	uint64_t t0 = bench_now_ns(), limit = t0 + (uint64_t)120e9;
	if (body != NULL)
		randombytes_buf(body, size);
	while (rc == 0 && (delivered < count || oks < count)) {
		while (sent < count && sent - oks < WINDOW && rc == 0) {
			struct cairn_msg m = {.type = CAIRN_CMD_SEND,
			                      .request_id = cnet_next_id(snd),
			                      .sender_id = sid,
			                      .credential = cred,
			                      .envelope = body,
			                      .envelope_len = size};
			rc = cnet_queue(snd, &m);
			sent++;
		}
		if (rc == 0)
			rc = cnet_flush(snd);
		struct pollfd p[2] = {{.fd = cnet_fd(snd), .events = cnet_events(snd)},
		                      {.fd = cnet_fd(own), .events = cnet_events(own)}};
		/* Short: a TLS transport may hold decrypted bytes the descriptor does not show. */
		if (rc == 0)
			(void)poll(p, 2, 2);
		if (rc == 0 && (rc = drain(snd, false, rid, &oks, &none)) != 0)
			bench_note("transport %s: the sender's connection: %s", t->name,
			           cairn_strerror(rc));
		if (rc == 0 && (rc = drain(own, true, rid, &acks, &delivered)) != 0)
			bench_note("transport %s: the owner's connection: %s", t->name,
			           cairn_strerror(rc));
		if (bench_now_ns() > limit)
			rc = CAIRN_ETIMEDOUT;
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	double f1 = 0, s1 = servers_cpu(t, &f1), c1 = bench_self_cpu_s();
	if (rc == 0) {
		out->size = size;
		out->env_per_s = count / secs;
		out->mb_per_s = out->env_per_s * size / 1e6;
		out->client_cores = (c1 - c0) / secs;
		out->relay_cores = (s1 - s0) / secs;
		out->front_cores = (f1 - f0) / secs;
	} else {
		bench_note("transport %s: %u-byte run failed after %llu delivered: %s", t->name,
		           size, (unsigned long long)delivered, cairn_strerror(rc));
	}
	cnet_close(snd);
	cnet_close(own);
	free(body);
	return rc == 0 ? 0 : -1;
}

int transport_measure(const struct bench_opts *o, const struct transport_target *t,
                      struct transport_result *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", t->name);
	uint32_t hs = o->quick ? 100 : 1000;
	bench_note("transport %s: %u handshakes", t->name, hs);
	if (handshakes(t, hs, r) != 0)
		return -1;
	static const uint32_t sizes[TRANSPORT_SIZES] = {1024, 16384};
	for (size_t i = 0; i < TRANSPORT_SIZES; i++) {
		uint32_t count = (o->quick ? 5000 : 100000) / (sizes[i] > 1024 ? 4 : 1);
		bench_note("transport %s: %u envelopes of %u bytes", t->name, count, sizes[i]);
		if (throughput(t, sizes[i], count, &r->rate[i]) != 0)
			return -1;
	}
	return 0;
}
