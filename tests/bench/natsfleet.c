/* SPDX-License-Identifier: MIT */
/*
 * Publishers and subscribers against nats-server (see natsfleet.h). The online run's
 * publishers are pumped by the calling thread, which waits on a condition variable when every
 * window is full; the subscribers' delivery threads advance their sequence numbers and wake it.
 * The measured interval is fixed before a run starts and only read by the other threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>
#include <sodium.h>

#include "natsfleet.h"
#include "procscan.h"
#include "tlscert.h"

#define SUBJECT_MAX  24
#define STREAM_NAME  "CAIRNBENCH"
#define CONNECT_MS   10000
#define SETTLE_S     10.0  /* core NATS messages not received this long after a run are lost */
#define DRAIN_BATCH  1000  /* messages per pull request while draining */
#define FETCH_MS     10000 /* a fetch that returns nothing this long fails the drain */
#define JS_WAIT_MS   60000 /* a stalled asynchronous publish waits at most this long */
#define PENDING_MSGS 1000000

struct nsub {
	struct natsfleet *f;
	uint32_t index;
	char subject[SUBJECT_MAX];
	char durable[SUBJECT_MAX];
	natsConnection *nc;
	natsSubscription *sub;
	_Atomic uint64_t expect_seq;
	/* Touched by this subscriber's delivery thread while a run goes on. */
	uint64_t measured;
	struct lat_samples lat;
	uint64_t duplicates;
};

struct npub {
	struct natsfleet *f;
	uint32_t index;
	natsConnection *nc;
	jsCtx *js;
	uint8_t *body;
	uint64_t next_seq;
	uint64_t run_sent;
	uint64_t quota; /* durable: messages this publisher sends */
	int rc;
};

struct natsfleet {
	uint16_t port;
	pid_t server_pid;
	const char *cafile;
	uint32_t n, size, window;
	bool durable;
	struct npub *pubs;
	struct nsub *subs;
	/* The current online run's measured interval, monotonic ns; set before it starts. */
	uint64_t measure_from, measure_to;
	_Atomic uint64_t errors;
	_Atomic bool waiting; /* the pump sleeps on cv until a delivery makes room */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* Counts an error; true for the run's first, the one worth a note. */
static bool first_error(struct natsfleet *f)
{
	return atomic_fetch_add(&f->errors, 1) == 0;
}

/* ---- connections ---------------------------------------------------------------------- */

static natsConnection *connect_one(const struct natsfleet *f)
{
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	char url[64];
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u", f->cafile != NULL ? "tls" : "nats",
	         (unsigned)f->port);
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, CONNECT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(opts, false);
	/* The window bounds what is pending; a limit must never drop a message. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxPendingMsgs(opts, PENDING_MSGS);
	if (s == NATS_OK && f->cafile != NULL) {
		s = natsOptions_SetSecure(opts, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(opts, f->cafile);
		if (s == NATS_OK)
			s = natsOptions_SetExpectedHostname(opts, TLSCERT_HOST);
	}
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		bench_note("nats: could not connect to port %u: %s", (unsigned)f->port,
		           natsStatus_GetText(s));
		return NULL;
	}
	return nc;
}

/* ---- online --------------------------------------------------------------------------- */

static void wake_pump(struct natsfleet *f)
{
	if (!atomic_load(&f->waiting))
		return;
	pthread_mutex_lock(&f->mu);
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct nsub *s = closure;
	struct natsfleet *f = s->f;
	uint64_t now = bench_now_ns();
	const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);
	if (len < BENCH_MSG_HEADER) {
		if (first_error(f))
			bench_note("nats: a %d-byte message arrived", len);
		natsMsg_Destroy(msg);
		return;
	}
	uint64_t sent = bench_get_le64(data), seq = bench_get_le64(data + 8);
	natsMsg_Destroy(msg);
	uint64_t expect = atomic_load(&s->expect_seq);
	if (seq < expect) {
		s->duplicates++;
		if (first_error(f))
			bench_note("nats: message %llu arrived twice", (unsigned long long)seq);
		return;
	}
	if (seq != expect && first_error(f))
		bench_note("nats: message %llu arrived, %llu expected", (unsigned long long)seq,
		           (unsigned long long)expect);
	if (now >= f->measure_from && now < f->measure_to) {
		s->measured++;
		lat_add(&s->lat, now - sent);
	}
	atomic_store(&s->expect_seq, seq + 1);
	wake_pump(f);
}

static uint64_t inflight(const struct natsfleet *f, uint32_t i)
{
	return f->pubs[i].next_seq - atomic_load(&f->subs[i].expect_seq);
}

static int publish_one(struct npub *p, const char *subject)
{
	bench_put_le64(p->body, bench_now_ns());
	bench_put_le64(p->body + 8, p->next_seq);
	natsStatus s = natsConnection_Publish(p->nc, subject, p->body, (int)p->f->size);
	if (s != NATS_OK) {
		bench_note("nats publisher %u: publish failed: %s", (unsigned)p->index,
		           natsStatus_GetText(s));
		return -1;
	}
	p->next_seq++;
	p->run_sent++;
	return 0;
}

/* Publishes what every window and the pace allow; returns messages published, or -1. */
static int64_t pump(struct natsfleet *f, double rate_per_pub, uint64_t t0, uint64_t now)
{
	int64_t sent = 0;
	uint64_t allowed = UINT64_MAX;
	if (rate_per_pub > 0)
		allowed = (uint64_t)((double)(now - t0) * rate_per_pub / 1e9) + 1;
	for (uint32_t i = 0; i < f->n; i++) {
		struct npub *p = &f->pubs[i];
		while (inflight(f, i) < f->window && p->run_sent < allowed) {
			if (publish_one(p, f->subs[i].subject) != 0)
				return -1;
			sent++;
		}
	}
	return sent;
}

static bool any_room(const struct natsfleet *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (inflight(f, i) < f->window)
			return true;
	return false;
}

/* Sleeps until a delivery makes room in a window, or UNTIL_NS (monotonic). */
static void wait_for_room(struct natsfleet *f, uint64_t until_ns)
{
	pthread_mutex_lock(&f->mu);
	atomic_store(&f->waiting, true);
	if (!any_room(f)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait = until_ns > bench_now_ns() ? until_ns - bench_now_ns() : 0;
		uint64_t ns = (uint64_t)ts.tv_nsec + wait;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	atomic_store(&f->waiting, false);
	pthread_mutex_unlock(&f->mu);
}

static bool all_settled(const struct natsfleet *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		if (inflight(f, i) > 0)
			return false;
	return true;
}

int natsfleet_run(struct natsfleet *f, double target_rate, double warmup_s, double duration_s,
                  struct online_run *out)
{
	memset(out, 0, sizeof(*out));
	if (f->durable)
		return -1;
	uint64_t errors0 = atomic_load(&f->errors);
	for (uint32_t i = 0; i < f->n; i++) {
		lat_reset(&f->subs[i].lat);
		f->subs[i].measured = 0;
		f->pubs[i].run_sent = 0;
	}
	uint64_t t0 = bench_now_ns();
	f->measure_from = t0 + (uint64_t)(warmup_s * 1e9);
	f->measure_to = f->measure_from + (uint64_t)(duration_s * 1e9);
	double rate_per_pub = target_rate / f->n;
	double cpu0 = 0, cpu1 = 0, gen0 = 0, gen1 = 0;
	bool measuring = false;
	for (;;) {
		uint64_t now = bench_now_ns();
		if (!measuring && now >= f->measure_from) {
			measuring = true;
			cpu0 = proc_cpu_s(f->server_pid);
			gen0 = bench_self_cpu_s();
		}
		if (now >= f->measure_to) {
			cpu1 = proc_cpu_s(f->server_pid);
			gen1 = bench_self_cpu_s();
			break;
		}
		int64_t sent = pump(f, rate_per_pub, t0, now);
		if (sent < 0)
			return -1;
		if (sent == 0) {
			/* Paced: the next message is due within 1/rate; either way, look again
			 * within a millisecond. */
			wait_for_room(f, now + 1000000);
		}
	}
	uint64_t deadline = bench_now_ns() + (uint64_t)(SETTLE_S * 1e9);
	while (!all_settled(f) && bench_now_ns() < deadline)
		wait_for_room(f, bench_now_ns() + 1000000);
	if (!all_settled(f)) {
		uint64_t lost = 0;
		for (uint32_t i = 0; i < f->n; i++)
			lost += inflight(f, i);
		bench_note("nats: %llu messages never arrived", (unsigned long long)lost);
		atomic_fetch_add(&f->errors, lost);
		/* Later runs count from what did arrive. */
		for (uint32_t i = 0; i < f->n; i++)
			atomic_store(&f->subs[i].expect_seq, f->pubs[i].next_seq);
	}
	struct lat_samples all = {0};
	for (uint32_t i = 0; i < f->n; i++) {
		out->delivered += f->subs[i].measured;
		for (size_t k = 0; k < f->subs[i].lat.len; k++)
			lat_add(&all, (uint64_t)f->subs[i].lat.v[k]);
	}
	lat_fill(&all, out);
	lat_free(&all);
	out->target_rate = target_rate;
	out->rate = (double)out->delivered / duration_s;
	out->msgs_per_s = out->rate;
	out->relay_cpu = (cpu1 - cpu0) / duration_s;
	out->gen_cpu = (gen1 - gen0) / duration_s;
	out->errors = atomic_load(&f->errors) - errors0;
	return 0;
}

/* ---- durable -------------------------------------------------------------------------- */

static void on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct npub *p = closure;
	if (first_error(p->f))
		bench_note("nats: a JetStream publish failed: %s (%d)",
		           natsStatus_GetText(pae->Err), (int)pae->ErrCode);
}

static int make_stream(struct natsfleet *f)
{
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subjects[] = {"cb.>"};
	sc.Name = STREAM_NAME;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	/* A message goes once every consumer has acknowledged it, as cairn deletes an envelope
	 * its owner acknowledged. */
	sc.Retention = js_InterestPolicy;
	jsCtx *js = f->pubs[0].js;
	jsErrCode jerr = 0;
	natsStatus s = NATS_ERR;
	/* JetStream may come up a moment after the listener. */
	for (int attempt = 0; attempt < 50; attempt++) {
		jsStreamInfo *si = NULL;
		s = js_AddStream(&si, js, &sc, NULL, &jerr);
		jsStreamInfo_Destroy(si);
		if (s == NATS_OK)
			break;
		struct timespec ts = {0, 100000000L};
		nanosleep(&ts, NULL);
	}
	if (s != NATS_OK) {
		bench_note("nats: could not add the stream: %s (%d)", natsStatus_GetText(s),
		           (int)jerr);
		return -1;
	}
	for (uint32_t i = 0; i < f->n; i++) {
		jsConsumerConfig cc;
		jsConsumerConfig_Init(&cc);
		cc.Durable = f->subs[i].durable;
		cc.FilterSubject = f->subs[i].subject;
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverAll;
		cc.MaxAckPending = -1;
		jsConsumerInfo *ci = NULL;
		s = js_AddConsumer(&ci, js, STREAM_NAME, &cc, NULL, &jerr);
		jsConsumerInfo_Destroy(ci);
		if (s != NATS_OK) {
			bench_note("nats: could not add consumer %u: %s (%d)", (unsigned)i,
			           natsStatus_GetText(s), (int)jerr);
			return -1;
		}
	}
	return 0;
}

static void *publisher_main(void *arg)
{
	struct npub *p = arg;
	const char *subject = p->f->subs[p->index].subject;
	p->rc = 0;
	for (uint64_t k = 0; k < p->quota; k++) {
		bench_put_le64(p->body, bench_now_ns());
		bench_put_le64(p->body + 8, p->next_seq);
		natsStatus s = js_PublishAsync(p->js, subject, p->body, (int)p->f->size, NULL);
		if (s != NATS_OK) {
			bench_note("nats publisher %u: JetStream publish failed: %s",
			           (unsigned)p->index, natsStatus_GetText(s));
			p->rc = -1;
			return NULL;
		}
		p->next_seq++;
	}
	/* Every publish answered. */
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = JS_WAIT_MS;
	natsStatus s = js_PublishAsyncComplete(p->js, &po);
	if (s != NATS_OK) {
		bench_note("nats publisher %u: not every publish was acknowledged: %s",
		           (unsigned)p->index, natsStatus_GetText(s));
		p->rc = -1;
	}
	return NULL;
}

/* One subscriber's drain: connects, binds to its consumer, fetches and acknowledges. */
static void *drainer_main(void *arg)
{
	struct nsub *s = arg;
	struct natsfleet *f = s->f;
	uint64_t want = f->pubs[s->index].next_seq;
	jsCtx *js = NULL;
	natsStatus st = NATS_ERR;
	s->nc = connect_one(f);
	if (s->nc != NULL)
		st = natsConnection_JetStream(&js, s->nc, NULL);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = STREAM_NAME;
	so.Consumer = s->durable;
	jsErrCode jerr = 0;
	if (st == NATS_OK)
		st = js_PullSubscribe(&s->sub, js, s->subject, s->durable, NULL, &so, &jerr);
	while (st == NATS_OK && atomic_load(&s->expect_seq) < want) {
		natsMsgList list = {0};
		uint64_t left = want - atomic_load(&s->expect_seq);
		int batch = left < DRAIN_BATCH ? (int)left : DRAIN_BATCH;
		st = natsSubscription_Fetch(&list, s->sub, batch, FETCH_MS, &jerr);
		for (int k = 0; st == NATS_OK && k < list.Count; k++) {
			natsMsg *m = list.Msgs[k];
			uint64_t expect = atomic_load(&s->expect_seq);
			uint64_t seq = natsMsg_GetDataLength(m) >= BENCH_MSG_HEADER
			                   ? bench_get_le64((const uint8_t *)natsMsg_GetData(m) + 8)
			                   : UINT64_MAX;
			if (seq < expect) {
				s->duplicates++;
			} else {
				if (seq != expect && first_error(f))
					bench_note("nats: message %llu drained, %llu expected",
					           (unsigned long long)seq,
					           (unsigned long long)expect);
				atomic_store(&s->expect_seq, seq + 1);
			}
			st = natsMsg_Ack(m, NULL);
		}
		natsMsgList_Destroy(&list);
	}
	/* The acknowledgements are with the server once it answers a PING sent after them. */
	if (st == NATS_OK)
		st = natsConnection_FlushTimeout(s->nc, JS_WAIT_MS);
	if (st != NATS_OK)
		bench_note("nats subscriber %u: the drain failed: %s (%d)", (unsigned)s->index,
		           natsStatus_GetText(st), (int)jerr);
	jsCtx_Destroy(js);
	if (st != NATS_OK)
		atomic_fetch_add(&f->errors, 1);
	return NULL;
}

/* Runs MAIN on every element of ITEMS (N of SIZE bytes) in threads of its own, and waits. */
static int run_threads(void *(*main)(void *), void *items, size_t size, uint32_t n)
{
	pthread_t *t = calloc(n, sizeof(*t));
	if (t == NULL)
		return -1;
	uint32_t started = 0;
	while (started < n &&
	       pthread_create(&t[started], NULL, main, (char *)items + started * size) == 0)
		started++;
	for (uint32_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	return started == n ? 0 : -1;
}

int natsfleet_durable(struct natsfleet *f, uint64_t count, struct durable_result *out)
{
	if (!f->durable)
		return -1;
	uint64_t errors0 = atomic_load(&f->errors);
	for (uint32_t i = 0; i < f->n; i++)
		f->pubs[i].quota = count / f->n;
	double cpu0 = proc_cpu_s(f->server_pid);
	uint64_t t0 = bench_now_ns();
	if (run_threads(publisher_main, f->pubs, sizeof(*f->pubs), f->n) != 0)
		return -1;
	for (uint32_t i = 0; i < f->n; i++)
		if (f->pubs[i].rc != 0)
			return -1;
	uint64_t t1 = bench_now_ns();
	double cpu1 = proc_cpu_s(f->server_pid);
	if (run_threads(drainer_main, f->subs, sizeof(*f->subs), f->n) != 0)
		return -1;
	uint64_t t2 = bench_now_ns();
	double cpu2 = proc_cpu_s(f->server_pid);
	uint64_t sent = 0, duplicates = 0;
	for (uint32_t i = 0; i < f->n; i++) {
		sent += f->pubs[i].next_seq;
		duplicates += f->subs[i].duplicates;
		if (atomic_load(&f->subs[i].expect_seq) < f->pubs[i].next_seq)
			return -1;
	}
	if (duplicates > 0)
		bench_note(
		    "nats: %llu messages delivered twice (JetStream redelivers unacknowledged "
		    "ones)",
		    (unsigned long long)duplicates);
	durable_times(out, sent, t0, t1, t2, cpu0, cpu1, cpu2);
	out->errors = atomic_load(&f->errors) - errors0;
	return 0;
}

/* ---- setup ---------------------------------------------------------------------------- */

static int open_publisher(struct natsfleet *f, struct npub *p)
{
	p->body = malloc(f->size);
	if (p->body == NULL || (p->nc = connect_one(f)) == NULL)
		return -1;
	randombytes_buf(p->body, f->size);
	if (!f->durable)
		return 0;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = f->window;
	jo.PublishAsync.StallWait = JS_WAIT_MS;
	jo.PublishAsync.ErrHandler = on_pub_error;
	jo.PublishAsync.ErrHandlerClosure = p;
	return natsConnection_JetStream(&p->js, p->nc, &jo) == NATS_OK ? 0 : -1;
}

static int open_subscriber(struct natsfleet *f, struct nsub *s)
{
	if ((s->nc = connect_one(f)) == NULL)
		return -1;
	natsStatus st = natsConnection_Subscribe(&s->sub, s->nc, s->subject, on_msg, s);
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(s->sub, PENDING_MSGS, -1);
	/* Subscribed once the server has answered a PING sent after the SUB. */
	if (st == NATS_OK)
		st = natsConnection_FlushTimeout(s->nc, CONNECT_MS);
	if (st != NATS_OK)
		bench_note("nats subscriber %u: could not subscribe: %s", (unsigned)s->index,
		           natsStatus_GetText(st));
	return st == NATS_OK ? 0 : -1;
}

struct natsfleet *natsfleet_open(uint16_t port, pid_t server_pid, const char *cafile, uint32_t n,
                                 uint32_t size, uint32_t window, bool durable)
{
	static bool lib_ready;
	if (!lib_ready && nats_Open(-1) != NATS_OK)
		return NULL;
	lib_ready = true;
	struct natsfleet *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->pubs = calloc(n, sizeof(*f->pubs));
	f->subs = calloc(n, sizeof(*f->subs));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->port = port;
	f->server_pid = server_pid;
	f->cafile = cafile;
	f->n = n;
	f->size = size < BENCH_MSG_HEADER ? BENCH_MSG_HEADER : size;
	f->window = window;
	f->durable = durable;
	if (f->pubs == NULL || f->subs == NULL || n == 0) {
		natsfleet_close(f);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct nsub *s = &f->subs[i];
		s->f = f;
		s->index = i;
		snprintf(s->subject, sizeof(s->subject), "cb.%u", (unsigned)i);
		snprintf(s->durable, sizeof(s->durable), "cb%u", (unsigned)i);
		f->pubs[i].f = f;
		f->pubs[i].index = i;
	}
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && !durable && i < n; i++)
		rc = open_subscriber(f, &f->subs[i]);
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		rc = open_publisher(f, &f->pubs[i]);
	if (rc == 0 && durable)
		rc = make_stream(f);
	if (rc != 0) {
		bench_note("could not set up %u NATS publishers and subscribers", (unsigned)n);
		natsfleet_close(f);
		return NULL;
	}
	return f;
}

void natsfleet_close(struct natsfleet *f)
{
	if (f == NULL)
		return;
	for (uint32_t i = 0; f->subs != NULL && i < f->n; i++) {
		natsSubscription_Destroy(f->subs[i].sub);
		natsConnection_Destroy(f->subs[i].nc);
		lat_free(&f->subs[i].lat);
	}
	for (uint32_t i = 0; f->pubs != NULL && i < f->n; i++) {
		jsCtx_Destroy(f->pubs[i].js);
		natsConnection_Destroy(f->pubs[i].nc);
		free(f->pubs[i].body);
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f->pubs);
	free(f->subs);
	free(f);
}
