/* SPDX-License-Identifier: MIT */
/*
 * The change feed's wake-up (pg_engine.h, store.h's feed_wake): a thread with a connection of
 * its own LISTENs on cairn_feed, which every node's commit notifies with its node number, and
 * calls the relay's wake on each notification of another node and after each (re)connect, since
 * rows may have come while it was away. It waits in poll() on its socket and on a pipe that
 * pg_listen_stop writes, so a stop never waits for the database. A lost connection is made again
 * after a backoff that doubles up to PG_LISTEN_BACKOFF_MAX_MS. Nothing here logs (a wake carries no
 * data).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

#define PG_LISTEN_BACKOFF_MIN_MS 100
#define PG_LISTEN_BACKOFF_MAX_MS 5000
/* How long a connect or the LISTEN may take before the thread gives up and tries again. */
#define PG_LISTEN_STEP_MS 10000

struct pg_listen {
	pthread_t thread;
	int stop[2]; /* a byte written to stop[1] stops the thread */
	char *conninfo;
	char node[4]; /* this node, as its notifications' payload says it */
	void (*wake)(void *arg);
	void *arg;
};

/* Waits up to MS (-1: forever) for FD (if >= 0) to get EVENTS, or for a stop. Returns 1 on
 * a stop, 0 when FD is ready, -1 on a timeout or an error. */
static int wait_fd(struct pg_listen *l, int fd, short events, int ms)
{
	struct pollfd pfd[2] = {{.fd = l->stop[0], .events = POLLIN}, {.fd = fd, .events = events}};
	for (;;) {
		int n = poll(pfd, fd >= 0 ? 2 : 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (pfd[0].revents != 0)
			return 1;
		return n > 0 ? 0 : -1;
	}
}

static const char *const conn_keys[] = {
    "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
    "keepalives_count", "application_name", "dbname",          NULL,
};

/* Connects without blocking past a stop. Returns the connection, or NULL (*STOPPED set if
 * it was a stop). */
static PGconn *connect_listen(struct pg_listen *l, bool *stopped)
{
	/* As the engine's own connection (store_pg_session.c): a dead server is noticed by the
	 * keepalives within about 10 + 3 * 5 s even while nothing is said. */
	const char *values[] = {"5", "1", "10", "5", "3", "cairn-relay-feed", l->conninfo, NULL};
	PGconn *c = PQconnectStartParams(conn_keys, values, 1);
	if (c == NULL)
		return NULL;
	PostgresPollingStatusType s = PGRES_POLLING_WRITING;
	while (PQstatus(c) != CONNECTION_BAD && s != PGRES_POLLING_OK &&
	       s != PGRES_POLLING_FAILED) {
		int w = wait_fd(l, PQsocket(c), s == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		                PG_LISTEN_STEP_MS);
		if (w != 0) {
			*stopped = w == 1;
			PQfinish(c);
			return NULL;
		}
		s = PQconnectPoll(c);
	}
	if (s != PGRES_POLLING_OK || PQsetnonblocking(c, 1) != 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Sends LISTEN and waits for its result. Returns 0, 1 on a stop, or -1. */
static int listen_on(struct pg_listen *l, PGconn *c)
{
	if (PQsendQuery(c, "LISTEN cairn_feed") != 1)
		return -1;
	int w;
	while (PQflush(c) == 1)
		if ((w = wait_fd(l, PQsocket(c), POLLOUT, PG_LISTEN_STEP_MS)) != 0)
			return w;
	bool ok = false;
	for (;;) {
		while (PQisBusy(c)) {
			if ((w = wait_fd(l, PQsocket(c), POLLIN, PG_LISTEN_STEP_MS)) != 0)
				return w;
			if (PQconsumeInput(c) != 1)
				return -1;
		}
		PGresult *r = PQgetResult(c);
		if (r == NULL)
			break;
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	return ok ? 0 : -1;
}

/* Calls the wake for what came in from other nodes (at most once per read): this node's own
 * commits are nothing to read. Returns 0, or -1 when the connection is gone. */
static int take_notifications(struct pg_listen *l, PGconn *c)
{
	if (PQconsumeInput(c) != 1 || PQstatus(c) != CONNECTION_OK)
		return -1;
	bool any = false;
	PGnotify *n;
	while ((n = PQnotifies(c)) != NULL) {
		any = any || n->extra == NULL || strcmp(n->extra, l->node) != 0;
		PQfreemem(n);
	}
	if (any)
		l->wake(l->arg);
	return 0;
}

static void *run(void *arg)
{
	struct pg_listen *l = arg;
	int backoff = PG_LISTEN_BACKOFF_MIN_MS;
	for (;;) {
		bool stopped = false;
		PGconn *c = connect_listen(l, &stopped);
		if (stopped)
			return NULL;
		int w = c != NULL ? listen_on(l, c) : -1;
		if (w == 0) {
			backoff = PG_LISTEN_BACKOFF_MIN_MS;
			/* Rows may have come while this connection was not there. */
			l->wake(l->arg);
			while ((w = wait_fd(l, PQsocket(c), POLLIN, -1)) == 0 &&
			       take_notifications(l, c) == 0) {
			}
		}
		PQfinish(c);
		if (w == 1 || wait_fd(l, -1, 0, backoff) == 1)
			return NULL;
		backoff =
		    backoff * 2 > PG_LISTEN_BACKOFF_MAX_MS ? PG_LISTEN_BACKOFF_MAX_MS : backoff * 2;
	}
}

int pg_listen_start(struct pg_listen **out, const char *conninfo, uint8_t node,
                    void (*wake)(void *arg), void *arg)
{
	*out = NULL;
	struct pg_listen *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CAIRN_ENOMEM;
	snprintf(l->node, sizeof(l->node), "%d", node);
	l->wake = wake;
	l->arg = arg;
	if ((l->conninfo = strdup(conninfo)) == NULL || pipe(l->stop) != 0) {
		free(l->conninfo);
		free(l);
		return CAIRN_ENOMEM;
	}
	if (pthread_create(&l->thread, NULL, run, l) != 0) {
		close(l->stop[0]);
		close(l->stop[1]);
		free(l->conninfo);
		free(l);
		return CAIRN_ENOMEM;
	}
	*out = l;
	return 0;
}

void pg_listen_stop(struct pg_listen *l)
{
	if (l == NULL)
		return;
	ssize_t w;
	do {
		w = write(l->stop[1], "x", 1);
	} while (w < 0 && errno == EINTR);
	pthread_join(l->thread, NULL);
	close(l->stop[0]);
	close(l->stop[1]);
	free(l->conninfo);
	free(l);
}
