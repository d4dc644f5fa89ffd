/* SPDX-License-Identifier: MIT */
/*
 * The NATS peers: each scenario step of bench.h against /usr/sbin/nats-server (Debian's
 * nats-server, 2.9), for `cairn-bench compare`, in plain TCP and over TLS with a certificate
 * the bench makes (tlscert.h). The server gets a generated config: one loopback listener on a
 * free port, JetStream with its store in a scratch directory, and for the TLS peer the
 * certificate and key.
 *
 * What each side does, in fairness to both: online is core NATS, at most once and
 * unacknowledged, as mosquitto's QoS 0. Durable is JetStream with file storage: a publish is
 * acknowledged once the stream holds the message, which nats-server 2.9 writes to its file
 * store without an fsync per message (it syncs every sync_interval, two minutes by default).
 * Cairn answers a SEND after the group commit's fsync.
 *
 * Idle connections and groups are not measured against NATS (the peer leaves them NULL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natsfleet.h"
#include "relayctl.h"
#include "tlscert.h"

#define NATS_BIN "/usr/sbin/nats-server"

struct bench_server {
	pid_t pid;
	uint16_t port;
	bool tls;
	char dir[256];
	char cert[300], key[300];
};

/* Writes DIR/nats.conf; returns 0 or -1. */
static int write_config(const struct bench_server *s, char *path, size_t cap)
{
	snprintf(path, cap, "%s/nats.conf", s->dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	        "# cairn-bench compare: generated, removed when the run ends\n"
	        "listen: \"127.0.0.1:%u\"\n"
	        "server_name: cairn_bench\n"
	        "jetstream {\n  store_dir: \"%s/js\"\n}\n",
	        (unsigned)s->port, s->dir);
	if (s->tls)
		fprintf(f, "tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n}\n", s->cert, s->key);
	return fclose(f) == 0 ? 0 : -1;
}

static void nats_stop(struct bench_server *s)
{
	if (s == NULL)
		return;
	relayctl_kill(s->pid);
	if (s->dir[0] != '\0')
		relayctl_remove_dir(s->dir);
	free(s);
}

/* Starts the server, its output into DIR/nats.log, and waits until it accepts. */
static int spawn(struct bench_server *s, char *conf)
{
	char log[300];
	snprintf(log, sizeof(log), "%s/nats.log", s->dir);
	char *const argv[] = {NATS_BIN, "-c", conf, NULL};
	s->pid = relayctl_spawn(argv, log, s->port);
	return s->pid > 0 ? 0 : -1;
}

static int start(bool tls, struct bench_server **out)
{
	struct bench_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -1;
	s->tls = tls;
	snprintf(s->dir, sizeof(s->dir), "/tmp/cairn-bench-nats-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		nats_stop(s);
		return -1;
	}
	char conf[300];
	s->port = loopback_free_port();
	if (s->port == 0 ||
	    (tls && tlscert_make(s->dir, s->cert, sizeof(s->cert), s->key, sizeof(s->key)) != 0) ||
	    write_config(s, conf, sizeof(conf)) != 0 || spawn(s, conf) != 0) {
		bench_note("could not start %s (is the nats-server package installed?)", NATS_BIN);
		nats_stop(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int nats_start(const struct bench_opts *o, struct bench_server **out)
{
	return start(false, out);
}

static int nats_tls_start(const struct bench_opts *o, struct bench_server **out)
{
	return start(true, out);
}

static pid_t nats_pid(const struct bench_server *s)
{
	return s->pid;
}

uint16_t peer_nats_port(const struct bench_server *s)
{
	return s->port;
}

static const char *cafile(const struct bench_server *s)
{
	return s->tls ? s->cert : NULL;
}

/* An online session is the fleet itself (struct online_session is never defined here). */
static struct natsfleet *fleet(struct online_session *os)
{
	return (struct natsfleet *)(void *)os;
}

static int nats_online_open(struct bench_server *s, const struct online_shape *shape,
                            struct online_session **out)
{
	struct natsfleet *f = natsfleet_open(s->port, s->pid, cafile(s), shape->senders,
	                                     shape->size, shape->window, false);
	*out = (struct online_session *)(void *)f;
	return f != NULL ? 0 : -1;
}

static int nats_online_run(struct online_session *os, double target_rate, double warmup_s,
                           double duration_s, struct online_run *out)
{
	return natsfleet_run(fleet(os), target_rate, warmup_s, duration_s, out);
}

static void nats_online_close(struct online_session *os)
{
	natsfleet_close(fleet(os));
}

static int nats_durable_run(struct bench_server *s, const struct durable_shape *shape,
                            struct durable_result *out)
{
	struct natsfleet *f = natsfleet_open(s->port, s->pid, cafile(s), shape->senders,
	                                     shape->size, shape->window, true);
	if (f == NULL)
		return -1;
	int rc = natsfleet_durable(f, shape->count, out);
	natsfleet_close(f);
	return rc;
}

/* The two NATS peers differ in their start only. */
#define NATS_PEER(label, starter)                                                                  \
	{                                                                                          \
		.name = label, .start = starter, .stop = nats_stop, .pid = nats_pid,               \
		.online_open = nats_online_open, .online_run = nats_online_run,                    \
		.online_close = nats_online_close, .durable_run = nats_durable_run,                \
	}

const struct bench_peer bench_peer_nats = NATS_PEER("nats", nats_start);
const struct bench_peer bench_peer_nats_tls = NATS_PEER("nats+tls", nats_tls_start);
