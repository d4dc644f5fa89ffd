/* SPDX-License-Identifier: MIT */
/*
 * The mosquitto peer: each scenario step of bench.h against /usr/sbin/mosquitto (the Debian
 * package), for `cairn-bench compare`. The broker gets a generated config: one loopback
 * listener on a free port, anonymous clients, persistence into a scratch directory, and the
 * queue and in-flight limits set so the benchmark's shapes are neither dropped nor throttled
 * by a default that the cairn side does not have.
 *
 * What mosquitto's "durable" means here, in fairness to both: a QoS 1 PUBLISH is answered
 * (PUBACK) once the broker holds it in memory. Persistence writes the whole in-memory
 * database every autosave_interval seconds (1800, the default) and at exit; nothing is
 * written or fsynced per message. Cairn answers a SEND after the group commit's fsync.
 *
 * mosquitto+TLS is the same broker with its listener on TLS (a certificate the bench makes,
 * tlscert.h) and the same generator over TLS; it runs online and durable only.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "mqfleet.h"
#include "mqidle.h"
#include "relayctl.h"
#include "tlscert.h"

#define MOSQUITTO_BIN  "/usr/sbin/mosquitto"
#define INFLIGHT_OUT   64 /* broker -> subscriber QoS 1 window: cairn's delivery_window */
#define IDLE_MAX_TOTAL 20000

struct bench_server {
	pid_t pid;
	uint16_t port;
	bool tls;
	char dir[256];
	char cert[300], key[300];
};

struct online_session {
	struct mqfleet *fleet;
};

struct idle_session {
	struct mqidle *pool;
};

/* Writes DIR/mosquitto.conf; returns 0 or -1. */
static int write_config(const struct bench_server *s, const struct bench_opts *o, char *path,
                        size_t cap)
{
	snprintf(path, cap, "%s/mosquitto.conf", s->dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	/* Run as ourselves: as root, mosquitto would otherwise switch to its own user, who may not
	 * write the scratch directory. The cairn relay runs as us too. */
	const struct passwd *pw = getpwuid(geteuid());
	fprintf(f,
	        "# cairn-bench compare: generated, removed when the run ends\n"
	        "listener %u 127.0.0.1\n"
	        "%s%s%s%s%s%s"
	        "allow_anonymous true\n"
	        "%s%s%s"
	        "persistence true\n"
	        "persistence_location %s/\n"
	        "autosave_interval 1800\n"
	        /* A durable run queues count/senders messages per offline subscriber. */
	        "max_queued_messages %llu\n"
	        "max_inflight_messages %u\n"
	        "set_tcp_nodelay true\n"
	        "sys_interval 0\n"
	        "log_dest stderr\n"
	        "log_type error\n"
	        "log_type warning\n",
	        (unsigned)s->port, s->tls ? "certfile " : "", s->tls ? s->cert : "",
	        s->tls ? "\n" : "", s->tls ? "keyfile " : "", s->tls ? s->key : "",
	        s->tls ? "\n" : "", pw != NULL ? "user " : "", pw != NULL ? pw->pw_name : "",
	        pw != NULL ? "\n" : "", s->dir, (unsigned long long)o->durable_count + 1000,
	        (unsigned)INFLIGHT_OUT);
	return fclose(f) == 0 ? 0 : -1;
}

static void mq_stop(struct bench_server *s)
{
	if (s == NULL)
		return;
	relayctl_kill(s->pid); /* SIGTERM saves the database */
	if (s->dir[0] != '\0')
		relayctl_remove_dir(s->dir);
	free(s);
}

static int spawn(struct bench_server *s, const char *bin, char *conf)
{
	char *const argv[] = {(char *)bin, "-c", conf, NULL};
	s->pid = relayctl_spawn(argv, NULL, s->port);
	return s->pid > 0 ? 0 : -1;
}

static int start(const struct bench_opts *o, bool tls, struct bench_server **out)
{
	static bool lib_ready;
	if (!lib_ready && mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
		return -1;
	lib_ready = true;
	struct bench_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -1;
	s->tls = tls;
	snprintf(s->dir, sizeof(s->dir), "/tmp/cairn-bench-mq-XXXXXX");
	char conf[300];
	if (mkdtemp(s->dir) == NULL) {
		s->dir[0] = '\0';
		mq_stop(s);
		return -1;
	}
	const char *bin = o->mosquitto_bin != NULL ? o->mosquitto_bin : MOSQUITTO_BIN;
	s->port = loopback_free_port();
	if (s->port == 0 ||
	    (tls && tlscert_make(s->dir, s->cert, sizeof(s->cert), s->key, sizeof(s->key)) != 0) ||
	    write_config(s, o, conf, sizeof(conf)) != 0 || spawn(s, bin, conf) != 0) {
		bench_note("could not start %s (is the mosquitto package installed?)", bin);
		mq_stop(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int mq_start(const struct bench_opts *o, struct bench_server **out)
{
	return start(o, false, out);
}

static int mq_tls_start(const struct bench_opts *o, struct bench_server **out)
{
	return start(o, true, out);
}

uint16_t peer_mosquitto_port(const struct bench_server *s)
{
	return s->port;
}

/* The certificate the generator trusts: NULL for plain TCP. */
static const char *cafile(const struct bench_server *s)
{
	return s->tls ? s->cert : NULL;
}

static pid_t mq_pid(const struct bench_server *s)
{
	return s->pid;
}

static int mq_online_open(struct bench_server *s, const struct online_shape *shape,
                          struct online_session **out)
{
	struct online_session *os = calloc(1, sizeof(*os));
	if (os == NULL)
		return -1;
	os->fleet = mqfleet_open(s->port, s->pid, cafile(s), shape->senders, shape->size,
	                         shape->window, false);
	if (os->fleet == NULL) {
		free(os);
		return -1;
	}
	*out = os;
	return 0;
}

static int mq_online_run(struct online_session *os, double target_rate, double warmup_s,
                         double duration_s, struct online_run *out)
{
	return mqfleet_run(os->fleet, target_rate, warmup_s, duration_s, out);
}

static void mq_online_close(struct online_session *os)
{
	if (os == NULL)
		return;
	mqfleet_close(os->fleet);
	free(os);
}

static int mq_durable_run(struct bench_server *s, const struct durable_shape *shape,
                          struct durable_result *out)
{
	struct mqfleet *f = mqfleet_open(s->port, s->pid, cafile(s), shape->senders, shape->size,
	                                 shape->window, true);
	if (f == NULL)
		return -1;
	int rc = mqfleet_durable(f, shape->count, out);
	mqfleet_close(f);
	return rc;
}

static int mq_idle_open(struct bench_server *s, uint32_t workers, struct idle_session **out)
{
	struct idle_session *is = calloc(1, sizeof(*is));
	if (is == NULL)
		return -1;
	is->pool = mqidle_open(s->port, s->pid, IDLE_MAX_TOTAL);
	if (is->pool == NULL) {
		free(is);
		return -1;
	}
	*out = is;
	return 0;
}

static int mq_idle_grow(struct idle_session *is, uint32_t total, struct idle_step *step)
{
	return mqidle_grow(is->pool, total, step);
}

static void mq_idle_close(struct idle_session *is)
{
	if (is == NULL)
		return;
	mqidle_close(is->pool);
	free(is);
}

static int mq_group_run(struct bench_server *s, const struct group_shape *shape, double warmup_s,
                        double duration_s, struct online_run *out)
{
	struct mqfleet *f =
	    mqfleet_open_fanout(s->port, s->pid, shape->members, shape->size, shape->window);
	if (f == NULL)
		return -1;
	int rc = mqfleet_run(f, 0, warmup_s, duration_s, out);
	mqfleet_close(f);
	return rc;
}

/* What both mosquitto peers share: everything but the start, idle connections and groups. */
#define MQ_PEER_COMMON                                                                             \
	.stop = mq_stop, .pid = mq_pid, .online_open = mq_online_open,                             \
	.online_run = mq_online_run, .online_close = mq_online_close,                              \
	.durable_run = mq_durable_run

const struct bench_peer bench_peer_mosquitto = {
    MQ_PEER_COMMON,
    .name = "mosquitto",
    .start = mq_start,
    .idle_open = mq_idle_open,
    .idle_grow = mq_idle_grow,
    .idle_close = mq_idle_close,
    .group_run = mq_group_run,
};

const struct bench_peer bench_peer_mosquitto_tls = {
    MQ_PEER_COMMON,
    .name = "mosquitto+tls",
    .start = mq_tls_start,
};
