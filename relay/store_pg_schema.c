/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's tables and statements (pg_engine.h). The tables mirror the SQLite
 * engine's (store_sqlite.c), with one difference that matters at scale: envelopes are
 * partitioned by hash of their mailbox, so that a mailbox's rows live in one partition and the
 * partitions' indexes stay small and hot. Each partition's only index is its primary key
 * (id, mailbox): ids only grow, so inserts append at the index's right edge, TTL expiry is a
 * range scan of that key, and a lookup by id alone would be one probe per partition, which is
 * why every read and delete of one envelope names its mailbox too (one partition).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

/* Bump when the schema changes; a store written by a newer relay is refused, not guessed at.
 * An older store is brought up one step at a time (steps[] below). */
#define PG_SCHEMA_VERSION 3

/* Envelope partitions. A power of two that spreads the hot right edges over several index
 * pages; more only adds planning and per-partition work to expiry. */
#define PG_PARTITIONS 16

/* Taken for the schema's transaction, so that two relays started together on a new database
 * (a mistake today; several nodes later, docs/SCALING.md) do not both create it. */
#define PG_SCHEMA_LOCK "4242017"

const char *const pg_stmt_sql[PG_STMT_COUNT] = {
    [PG_MAILBOX_PUT] = "INSERT INTO mailboxes (id, recipient_id, sender_id, recipient_key,"
                       " credential_digest, touched, work_bits)"
                       " VALUES ($1::int8, $2::bytea, $3::bytea, $4::bytea, $5::bytea,"
                       " $6::int8, $7::int4)",
    [PG_MAILBOX_SECURE] = "UPDATE mailboxes SET credential_digest = $2::bytea"
                          " WHERE id = $1::int8",
    [PG_MAILBOX_INTAKE] = "UPDATE mailboxes SET work_bits = $2::int4 WHERE id = $1::int8",
    [PG_MAILBOX_TOUCH] = "UPDATE mailboxes SET touched = $2::int8 WHERE id = $1::int8",
    /* The mailbox names one partition; its ids are probes of the key there. */
    [PG_MAILBOX_ENVELOPES_DELETE] = "DELETE FROM envelopes WHERE mailbox = $1::int8"
                                    " AND id = ANY ($2::int8[])",
    [PG_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = $1::int8",
    [PG_ENVELOPE_PUT] = "INSERT INTO envelopes (id, mailbox, stored_at, body)"
                        " VALUES ($1::int8, $2::int8, $3::int8, $4::bytea)",
    [PG_ENVELOPE_DELETE] = "DELETE FROM envelopes WHERE mailbox = $1::int8 AND id = $2::int8",
    /* A run of inserts or deletes in one statement: one executor start, one routing set-up
     * for the partitions, instead of one per envelope. */
    [PG_ENVELOPE_PUTS] = "INSERT INTO envelopes (id, mailbox, stored_at, body)"
                         " SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[],"
                         " $4::bytea[])",
    /* Joined pair by pair: the executor prunes the partitions per (mailbox, id), so each
     * pair is one probe of one partition's key. */
    [PG_ENVELOPE_DELETES] = "DELETE FROM envelopes AS e USING unnest($1::int8[], $2::int8[])"
                            " AS d (mailbox, id) WHERE e.mailbox = d.mailbox AND e.id = d.id",
    [PG_EXPIRE] = "DELETE FROM envelopes WHERE id <= $1::int8",
    /* Only ever raised: a mark is a promise that no id below it will be handed out again. */
    [PG_ID_MARK] = "INSERT INTO meta (key, value) VALUES (" PG_ID_MARK_KEY(
        "$2::int4") ","
                    " $1::int8)"
                    " ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value,"
                    " excluded.value)",
    /* A second delivery of a bundle item is no error (PROTOCOL.md 5.12). */
    [PG_BUNDLE_PUT] = "INSERT INTO bundle_seen (e, not_after) VALUES ($1::bytea, $2::int8)"
                      " ON CONFLICT DO NOTHING",
    [PG_BUNDLE_EXPIRE] = "DELETE FROM bundle_seen WHERE not_after < $1::int8",
    [PG_LOG_PUT] = "INSERT INTO logs (id, log_id, credential_digest, delete_digest, next_seq,"
                   " touched) VALUES ($1::int8, $2::bytea, $3::bytea, $4::bytea, $5::int8,"
                   " $6::int8)",
    [PG_LOG_TOUCH] = "UPDATE logs SET touched = $2::int8 WHERE id = $1::int8",
    [PG_LOG_ENTRIES_DELETE] = "DELETE FROM log_entries WHERE log = $1::int8"
                              " AND id = ANY ($2::int8[])",
    [PG_LOG_DELETE] = "DELETE FROM logs WHERE id = $1::int8",
    [PG_LOG_ENTRY_PUT] = "INSERT INTO log_entries (id, log, seq, stored_at, body)"
                         " VALUES ($1::int8, $2::int8, $3::int8, $4::int8, $5::bytea)",
    /* As store_sqlite_log.c: expiry raises each log's stored next_seq above the seqs it is
     * about to delete, in the same transaction, so a seq is never given twice. */
    [PG_LOG_RAISE_NEXT_SEQ] = "UPDATE logs AS l SET next_seq = greatest(l.next_seq,"
                              " e.seq + 1) FROM (SELECT log, max(seq) AS seq"
                              " FROM log_entries WHERE id <= $1::int8 GROUP BY log) AS e"
                              " WHERE l.id = e.log",
    [PG_LOG_EXPIRE] = "DELETE FROM log_entries WHERE id <= $1::int8",
    [PG_READ_ENVELOPE] = "SELECT body FROM envelopes WHERE mailbox = $1::int8"
                         " AND id = $2::int8",
    /* The mailbox's partition key first: the plan prunes to its one partition (a generic
     * plan does at execution), and one statement reads a window of ids. */
    [PG_READ_ENVELOPES] = "SELECT id, body FROM envelopes WHERE mailbox = $1::int8"
                          " AND id = ANY ($2::int8[])",
    [PG_READ_LOG_ENTRY] = "SELECT body FROM log_entries WHERE id = $1::int8",
    [PG_READ_LOG_ENTRIES] = "SELECT id, body FROM log_entries WHERE id = ANY ($1::int8[])",
    [PG_BEGIN] = "BEGIN",
    [PG_COMMIT] = "COMMIT",
    /* The change feed: one row per batch of a node != 0, in the batch's transaction. */
    [PG_FEED_PUT] = "INSERT INTO feed (node, seq, ops) VALUES ($1::int4, $2::int8, $3::bytea)",
    /* Its own rows only, as a range of its key: those below its first row young enough to
     * keep (min() walks the key from the left and stops there), so the work is the rows that
     * go, not the rows kept. In the batch that writes the node's newest row, whose `at` is
     * this transaction's now(): that one stays, so the node's last seq is still there at its
     * next connect, however long it then stays idle. */
    [PG_FEED_PRUNE] = "DELETE FROM feed WHERE node = $1::int4 AND seq < (SELECT min(seq)"
                      " FROM feed WHERE node = $1::int4"
                      " AND at >= now() - interval '" PG_FEED_KEEP "')",
    /* The payload names the node, whose own listener lets it pass. */
    [PG_FEED_NOTIFY] = "SELECT pg_notify('cairn_feed', $1::int4::text)",
    /* The other nodes' rows past the cursors ($2[node + 1]), each node's in seq order and
     * the nodes taken in turn (row_number), so that a busy node does not hold back the
     * others' rows behind the bound. */
    /* This node's own rows too: past its cursor only after a batch whose COMMIT outcome
     * was lost committed (store_pg_feed.c). */
    [PG_FEED_READ] = "SELECT node::int4, seq, ops FROM (SELECT node, seq, ops,"
                     " row_number() OVER (PARTITION BY node ORDER BY seq) AS rn FROM feed"
                     " WHERE seq > coalesce(($1::int8[])[node + 1], 0))"
                     " AS f ORDER BY rn, node LIMIT $2::int8",
    /* A node's log entry: its seq is one past the highest the log ever gave, taken under the
     * log row's lock (a second node's append waits for this transaction, then numbers
     * after it), so a log's seqs are contiguous in commit order and a failed batch gives
     * none. next_seq keeps its meaning; the entries' max covers rows a relay alone wrote,
     * which do not move it. Nothing inserted when the log was deleted meanwhile. */
    [PG_LOG_ENTRY_PUT_NUMBERED] =
        "WITH s AS (UPDATE logs SET next_seq = greatest(next_seq, coalesce((SELECT max(seq)"
        " FROM log_entries WHERE log = $2::int8), 0) + 1) + 1 WHERE id = $2::int8"
        " RETURNING next_seq - 1 AS seq)"
        " INSERT INTO log_entries (id, log, seq, stored_at, body)"
        " SELECT $1::int8, $2::int8, s.seq, $3::int8, $4::bytea FROM s",
    /* PG_FEED_PUT for a batch with such entries: the blob $3 with the 8 bytes at each offset
     * of $4 (an entry's seq field, feed_codec.c) replaced by the seq the entry of id $5 was
     * given in this transaction (0 if it was not stored); and those seqs back, in the
     * order of $5, as the column cairn_seq (store_pg.c's take_seqs finds them by its name). */
    [PG_FEED_PUT_SEQS] =
        "WITH e AS (SELECT o.k, o.off::int4 AS off, coalesce(l.seq, 0) AS seq"
        " FROM unnest($4::int8[], $5::int8[]) WITH ORDINALITY AS o (off, id, k)"
        " LEFT JOIN log_entries AS l ON l.id = o.id),"
        " f AS (INSERT INTO feed (node, seq, ops) SELECT $1::int4, $2::int8,"
        " coalesce(string_agg(p.part, ''::bytea ORDER BY p.k), ''::bytea)"
        " || substring($3::bytea FROM coalesce(max(p.tail), 0) + 1)"
        " FROM (SELECT s.k, substring($3::bytea FROM s.start + 1 FOR s.off - s.start)"
        " || int8send(s.seq) AS part, s.off + 8 AS tail"
        " FROM (SELECT e.k, e.off, e.seq, coalesce(lag(e.off) OVER (ORDER BY e.k) + 8, 0)"
        " AS start FROM e) AS s) AS p)"
        " SELECT seq AS cairn_seq FROM e ORDER BY k",
};

/* The version stored, 0 when the schema table is empty, or -1 on failure. */
static int64_t stored_version(struct store_pg *st)
{
	PGresult *r = pg_run(st, 0, "SELECT coalesce(max(version), 0)::int8 FROM cairn_schema",
	                     &(struct pg_params){0});
	int64_t v = -1;
	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    pg_col_i64(r, 0, 0, &v) != 0)
		v = -1;
	PQclear(r);
	return v;
}

static int run(struct store_pg *st, const char *sql)
{
	PGresult *r = pg_run(st, 0, sql, NULL);
	int rc = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : CAIRN_ESTORAGE;
	PQclear(r);
	return rc;
}

static const char create_sql[] =
    "CREATE TABLE mailboxes ("
    " id int8 PRIMARY KEY," /* random: see store.h */
    " recipient_id bytea NOT NULL,"
    " sender_id bytea NOT NULL,"
    " recipient_key bytea NOT NULL,"
    " credential_digest bytea,"
    " touched int8 NOT NULL DEFAULT 0,"
    " work_bits int4 NOT NULL DEFAULT 0);"
    "CREATE TABLE envelopes ("
    " id int8 NOT NULL,"
    " mailbox int8 NOT NULL,"
    " stored_at int8 NOT NULL,"
    " body bytea NOT NULL,"
    " PRIMARY KEY (id, mailbox)) PARTITION BY HASH (mailbox);"
    "CREATE TABLE meta (key text PRIMARY KEY, value int8 NOT NULL);"
    /* Keyed by (not_after, e) as in SQLite: expiry is a range at the key's left edge. */
    "CREATE TABLE bundle_seen ("
    " not_after int8 NOT NULL,"
    " e bytea NOT NULL,"
    " PRIMARY KEY (not_after, e));"
    "CREATE TABLE logs ("
    " id int8 PRIMARY KEY,"
    " log_id bytea NOT NULL,"
    " credential_digest bytea NOT NULL,"
    " delete_digest bytea NOT NULL,"
    " next_seq int8 NOT NULL,"
    " touched int8 NOT NULL);"
    "CREATE TABLE log_entries ("
    " id int8 PRIMARY KEY,"
    " log int8 NOT NULL,"
    " seq int8 NOT NULL,"
    " stored_at int8 NOT NULL,"
    " body bytea NOT NULL);";

/* Version 2: the change feed (store.h's node, docs/SCALING.md section 4). `at` is the
 * database's clock, for pruning only. */
static const char feed_sql[] = "CREATE TABLE feed ("
                               " node int2 NOT NULL,"
                               " seq int8 NOT NULL,"
                               " at timestamptz NOT NULL DEFAULT now(),"
                               " ops bytea NOT NULL,"
                               " PRIMARY KEY (node, seq));"
                               "ALTER TABLE feed ALTER COLUMN ops SET STORAGE EXTERNAL;"
                               "UPDATE cairn_schema SET version = 2";

/* Version 3, what several nodes share beyond the feed: the handshakes they claimed
 * (store_pg_claim.c), keyed hashes of message 1's ephemeral keys until the end of their clock
 * window; and a log's seqs unique, so that two nodes appending to one log at the same moment
 * (each numbering from what it has seen) cannot both store one seq (PROTOCOL.md 5.9: a seq is
 * never given to two entries): the second batch fails and its append gets `storage`. */
static const char shared_sql[] = "CREATE TABLE hs_seen ("
                                 " e bytea PRIMARY KEY,"
                                 " until timestamptz NOT NULL);"
                                 "ALTER TABLE log_entries ADD UNIQUE (log, seq);"
                                 "UPDATE cairn_schema SET version = 3";

/* Step I takes a store of version I to I + 1 (inside the caller's transaction). */
static const char *const steps[PG_SCHEMA_VERSION] = {
    [1] = feed_sql,
    [2] = shared_sql,
};

/* Creates the tables of a new store (inside the caller's transaction). */
static int create(struct store_pg *st)
{
	if (run(st, create_sql) != 0)
		return CAIRN_ESTORAGE;
	char sql[160];
	for (int i = 0; i < PG_PARTITIONS; i++) {
		snprintf(sql, sizeof(sql),
		         "CREATE TABLE envelopes_p%d PARTITION OF envelopes"
		         " FOR VALUES WITH (MODULUS %d, REMAINDER %d)",
		         i, PG_PARTITIONS, i);
		if (run(st, sql) != 0)
			return CAIRN_ESTORAGE;
	}
	/* Bodies are ciphertext: compressing them is wasted work. EXTERNAL keeps TOAST's
	 * out-of-line storage for large ones without the attempt. */
	if (run(st, "ALTER TABLE envelopes ALTER COLUMN body SET STORAGE EXTERNAL;"
	            "ALTER TABLE log_entries ALTER COLUMN body SET STORAGE EXTERNAL") != 0)
		return CAIRN_ESTORAGE;
	/* Version 1's tables; the steps make the rest. */
	return run(st, "INSERT INTO cairn_schema (version) VALUES (1)");
}

int pg_schema(struct store_pg *st)
{
	int rc = CAIRN_ESTORAGE;
	/* One transaction: a crash or a lost connection leaves no half-made schema. */
	if (run(st, "BEGIN") != 0)
		return CAIRN_ESTORAGE;
	PGresult *r = pg_run(st, 0, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", NULL);
	bool locked = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	if (!locked ||
	    run(st, "CREATE TABLE IF NOT EXISTS cairn_schema (version int4 NOT NULL)") != 0)
		goto out;
	int64_t version = stored_version(st);
	if (version < 0)
		goto out;
	if (version > PG_SCHEMA_VERSION) {
		rc = CAIRN_ESTATE;
		goto out;
	}
	if (version == 0) {
		if (create(st) != 0)
			goto out;
		version = 1;
	}
	for (; version < PG_SCHEMA_VERSION; version++)
		if (run(st, steps[version]) != 0)
			goto out;
	if (run(st, "COMMIT") != 0)
		return CAIRN_ESTORAGE;
	return 0;
out:
	if (st->conn != NULL)
		(void)run(st, "ROLLBACK");
	return rc;
}
