/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's session (pg_engine.h): connecting with the relay's bounds, the
 * session's settings, the schema made or checked, every statement prepared. Above the
 * connection's helpers (store_pg_conn.c) and the schema (store_pg_schema.c), which call
 * nothing here.
 */
#include <stdio.h>
#include <string.h>

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

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int pg_connect(struct store_pg *st, char *err, size_t errcap)
{
	if (st->conn != NULL && PQstatus(st->conn) == CONNECTION_OK)
		return 0;
	pg_drop(st);
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
	/* The statements name the tables, so the schema comes first (made once, checked on
	 * every connection: a newer relay may have changed it meanwhile). */
	if ((rc = pg_schema(st)) != 0)
		goto fail;
	rc = CAIRN_ESTORAGE;
	if (st->conn == NULL || prepare_all(st) != 0)
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
