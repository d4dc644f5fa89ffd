/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's session (pg_engine.h): connecting with the relay's bounds, the
 * session's settings, the schema made or checked, every statement prepared. Above the
 * connection's helpers (store_pg_conn.c) and the schema (store_pg_schema.c), which call
 * nothing here.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

/* Runs SQL that returns no rows we need; 0 or CAIRN_ESTORAGE / CAIRN_ECAPACITY. */
static int run_ok(struct store_pg *st, const char *sql)
{
	PGresult *r = pg_run(st, 0, sql, NULL);
	if (r == NULL)
		return CAIRN_ESTORAGE;
	ExecStatusType s = PQresultStatus(r);
	int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : pg_error_code(r);
	PQclear(r);
	return rc;
}

/* Prepares every statement in one round trip (pipeline mode). */
static int prepare_all(struct store_pg *st)
{
	if (PQenterPipelineMode(st->conn) == 0)
		return CAIRN_ESTORAGE;
	char name[16];
	for (int i = 0; i < PG_STMT_COUNT; i++) {
		snprintf(name, sizeof(name), "cairn_%d", i);
		if (PQsendPrepare(st->conn, name, pg_stmt_sql[i], 0, NULL) == 0)
			return CAIRN_ESTORAGE;
	}
	if (PQpipelineSync(st->conn) == 0 || pg_flush(st) != 0)
		return CAIRN_ESTORAGE;
	int ok = 0, nulls = 0;
	for (;;) {
		if (pg_wait(st) != 0)
			return CAIRN_ESTORAGE;
		PGresult *r = PQgetResult(st->conn);
		if (r == NULL) {
			if (++nulls > PG_STMT_COUNT || PQstatus(st->conn) != CONNECTION_OK)
				return CAIRN_ESTORAGE;
			continue;
		}
		ExecStatusType s = PQresultStatus(r);
		PQclear(r);
		if (s == PGRES_PIPELINE_SYNC)
			break;
		if (s == PGRES_COMMAND_OK)
			ok++;
	}
	if (ok != PG_STMT_COUNT || PQexitPipelineMode(st->conn) == 0)
		return CAIRN_ESTORAGE;
	return 0;
}

/* The session advisory locks that keep the relays sharing a database apart (store.h's node),
 * in a class of two-key locks of their own (the schema's one-key lock is another space). */
#define PG_NODE_LOCK  "4242018"
#define PG_LOCK_TRIES 20 /* 100 ms apart */

/* After a connect that failed after PG_SLOW_FAIL_MS or more, the next is tried no sooner
 * than PG_RETRY_MS later (pg_connect). */
#define PG_RETRY_MS     1000
#define PG_SLOW_FAIL_MS 500

/*
 * Takes this connection's locks: node 0 the whole store exclusively; node N the store shared
 * and N exclusively. Without waiting: a holder is another running relay, and waiting for it
 * would hang a start that should fail. Returns 0, CAIRN_EEXIST with ERR saying who holds it,
 * or CAIRN_ESTORAGE. Session locks go with the session: a relay that exits or whose
 * connection closes lets go at once; a dead host's go when the server's keepalives give up
 * (set below).
 */
static int take_locks(struct store_pg *st, char *err, size_t errcap)
{
	char sql[160];
	if (st->node == 0)
		snprintf(sql, sizeof(sql),
		         "SELECT pg_try_advisory_lock(" PG_NODE_LOCK ", 0), true");
	else
		snprintf(sql, sizeof(sql),
		         "SELECT pg_try_advisory_lock_shared(" PG_NODE_LOCK ", 0),"
		         " pg_try_advisory_lock(" PG_NODE_LOCK ", %d)",
		         st->node);
	bool store = false, node = false;
	/* A few tries: the server may not have ended this relay's own previous session yet (a
	 * reopen, a reconnect after a dropped connection), whose locks go with it. */
	for (int i = 0; i < PG_LOCK_TRIES && !(store && node); i++) {
		if (i > 0)
			nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
		PGresult *r = pg_run(st, 0, sql, NULL);
		if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
		    PQnfields(r) != 2) {
			PQclear(r);
			return CAIRN_ESTORAGE;
		}
		/* Only what this try took counts; a lock taken twice is held until the session
		 * ends, as once. */
		store = store || strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		node = node || strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		PQclear(r);
	}
	if (store && node)
		return 0;
	if (err != NULL && errcap > 0) {
		if (st->node == 0)
			snprintf(err, errcap,
			         "another relay holds this store (a relay with no [store] node, or"
			         " nodes of several): stop it, or give every relay its own node");
		else if (!store)
			snprintf(err, errcap,
			         "a relay with no [store] node holds this store alone: stop it, or"
			         " give it a node too");
		else
			snprintf(err, errcap, "another relay holds [store] node %d of this store",
			         st->node);
	}
	return CAIRN_EEXIST;
}

/* A backend's start in pg_stat_activity, in microseconds since the epoch: with its pid, the
 * server's name for one session (a pid is reused, a pid with its start is not). */
#define PG_BACKEND_START_US "(extract(epoch FROM backend_start) * 1000000)::int8"

/* Ends a session the server may still hold for longer than this waits. */
#define PG_RELEASE_WAIT_MS "3000"

/*
 * Ends this relay's previous session on the server if the server still has it. A
 * connection the relay dropped (a timeout; a database host that went quiet without closing
 * anything) lives on in the server until its keepalives give up, up to 25 s, and holds the
 * relay's locks: the reconnect would find the store taken, and the relay stop as if another
 * relay held it. The pid and start recorded when it connected (remember_session) show the
 * session is this relay's own, so it is ended here, waiting for it to go, before the locks
 * are taken. What it had not committed rolls back; its batch was answered 'storage' already
 * (store.h: it may or may not be stored). Best effort: where the role may not end it, the
 * lock tries decide as before.
 */
static void release_own_session(struct store_pg *st)
{
	if (st->session_pid == 0)
		return;
	struct pg_params p = {0};
	pg_param_i32(&p, st->session_pid);
	pg_param_i64(&p, st->session_start_us);
	PGresult *r = pg_run(st, 0,
	                     "SELECT pg_terminate_backend(pid, " PG_RELEASE_WAIT_MS ")"
	                     " FROM pg_stat_activity WHERE pid = $1::int4"
	                     " AND " PG_BACKEND_START_US " = $2::int8",
	                     &p);
	PQclear(r);
}

/* Records which session on the server is this connection's (release_own_session). */
static int remember_session(struct store_pg *st)
{
	/* With parameters (none), so the results are binary. */
	PGresult *r = pg_run(st, 0,
	                     "SELECT pid, " PG_BACKEND_START_US
	                     " FROM pg_stat_activity WHERE pid = pg_backend_pid()",
	                     &(struct pg_params){0});
	int rc = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	                 pg_col_i32(r, 0, 0, &st->session_pid) == 0 &&
	                 pg_col_i64(r, 0, 1, &st->session_start_us) == 0
	             ? 0
	             : CAIRN_ESTORAGE;
	PQclear(r);
	return rc;
}

/* This node's last feed row (its feed_seq): read at every connect, since a batch whose
 * COMMIT outcome was lost with the connection may have written one. */
static int read_feed_seq(struct store_pg *st)
{
	struct pg_params p = {0};
	pg_param_i32(&p, st->node);
	PGresult *r =
	    pg_run(st, 0, "SELECT coalesce(max(seq), 0)::int8 FROM feed WHERE node = $1::int4", &p);
	int64_t seq = -1;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    pg_col_i64(r, 0, 0, &seq) != 0 || seq < 0) {
		PQclear(r);
		return CAIRN_ESTORAGE;
	}
	PQclear(r);
	st->feed_seq = (uint64_t)seq;
	return 0;
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int connect_session(struct store_pg *st, char *err, size_t errcap)
{
	/*
	 * Our bounds come first and the operator's string second (expand_dbname), so a value
	 * set there wins: a connect that cannot finish gives up after connect_timeout, and a
	 * server that stops answering mid-commit is noticed by TCP within tcp_user_timeout
	 * instead of the kernel's minutes. Several hosts with target_session_attrs=read-write
	 * find the promoted standby after a failover.
	 */
	static const char *const keys[] = {
	    "connect_timeout",  "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "application_name", "dbname",          NULL,
	};
	const char *values[] = {"5", "20000", "10", "5", "3", "cairn-relay", st->conninfo, NULL};
	st->conn = PQconnectdbParams(keys, values, 1);
	if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
		if (err != NULL && errcap > 0) {
			snprintf(err, errcap, "%s",
			         st->conn != NULL ? PQerrorMessage(st->conn) : "out of memory");
			err[strcspn(err, "\n")] = '\0';
		}
		pg_drop(st);
		return CAIRN_ESTORAGE;
	}
	/* The server's notices (a table that exists already) are not the relay's to print. */
	PQsetNoticeProcessor(st->conn, ignore_notice, NULL);
	/* Non-blocking: every wait goes through poll with PG_WAIT_MS (wait_socket). */
	int rc = CAIRN_ESTORAGE;
	if (PQsetnonblocking(st->conn, 1) != 0)
		goto fail;
	/*
	 * synchronous_commit on, whatever the server's or the role's default: a batch the relay
	 * answers OK for must be on the primary's disk (and on a synchronous standby's, when one
	 * is configured).
	 */
	if ((rc = run_ok(st, "SET synchronous_commit = on")) != 0)
		goto fail;
	/*
	 * The server's keepalives on this session, so that the locks of a relay whose host died
	 * (no FIN, no RST) are let go within about 10 + 3 * 5 = 25 s, and another relay may take
	 * its node. Ignored on a Unix socket, where the kernel tells the server at once.
	 */
	if ((rc = run_ok(st, "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
	                     " SET tcp_keepalives_count = 3")) != 0)
		goto fail;
	release_own_session(st);
	if ((rc = take_locks(st, err, errcap)) != 0) {
		pg_drop(st);
		return rc;
	}
	if ((rc = remember_session(st)) != 0)
		goto fail;
	/* The statements name the tables, so the schema comes first (made once, checked on
	 * every connection: a newer relay may have changed it meanwhile). */
	if ((rc = pg_schema(st)) != 0)
		goto fail;
	rc = CAIRN_ESTORAGE;
	if (st->conn == NULL || prepare_all(st) != 0)
		goto fail;
	if (st->node != 0 && read_feed_seq(st) != 0)
		goto fail;
	return 0;
fail:
	if (err != NULL && errcap > 0 && st->conn != NULL) {
		snprintf(err, errcap, "%s", PQerrorMessage(st->conn));
		err[strcspn(err, "\n")] = '\0';
	}
	pg_drop(st);
	return rc;
}

int pg_connect(struct store_pg *st, char *err, size_t errcap)
{
	if (st->conn != NULL && PQstatus(st->conn) == CONNECTION_OK)
		return 0;
	pg_drop(st);
	/*
	 * For PG_RETRY_MS after a connect that failed slowly, calls fail at once. Where the
	 * database's host is gone without a word each try waits out connect_timeout, and a batch,
	 * the disk-size sample after it and the feed's check would each wait that long in turn
	 * before the SENDs behind them get their 'storage'. A connect refused at once (the host
	 * is there, the server is not) costs nothing to try again, and finds a restarted server
	 * at the next call.
	 */
	int64_t start = pg_now_ms();
	if (st->connect_failed_ms != 0 && start - st->connect_failed_ms < PG_RETRY_MS) {
		if (err != NULL && errcap > 0)
			snprintf(err, errcap, "the database was unreachable moments ago");
		return CAIRN_ESTORAGE;
	}
	int rc = connect_session(st, err, errcap);
	int64_t end = pg_now_ms();
	st->connect_failed_ms = rc != 0 && end - start >= PG_SLOW_FAIL_MS ? end : 0;
	return rc;
}
