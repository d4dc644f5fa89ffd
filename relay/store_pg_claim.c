/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's handshake claims (store.h claim_once; docs/SCALING.md 4): a relay
 * node that accepts a handshake message 1 first claims its ephemeral key in hs_seen, so a
 * message 1 replayed to another node sharing the store finds it claimed and gets silence.
 * The relay hands in keyed hashes (conn.c), never the keys: the table tells whoever reads
 * the database nothing about the handshakes.
 *
 * One claim_once is one transaction sent in pipeline mode (one round trip): BEGIN, SET LOCAL
 * synchronous_commit = off, now and then the prune of expired rows, one INSERT of every key
 * (unnest, ON CONFLICT DO NOTHING RETURNING the keys it inserted), COMMIT.
 *
 * Why synchronous_commit off: the other nodes see a claim when it commits, whether or not
 * its WAL is flushed yet, so the check itself is as strong; what an asynchronous commit can
 * lose is the last few hundred milliseconds of claims when the database crashes (or the
 * standby is promoted) before its WAL writer flushed them. A message 1 whose claim was lost
 * so is still in the in-memory replay cache of the node that accepted it, and it is already
 * answered there; only a replay of it to another node within its clock window would pass,
 * the window the design accepts for a database crash. In exchange a claim does not wait
 * for a WAL flush (and a synchronous standby's): the handshake's latency is one round trip,
 * and claims do not share the disk's flushes with the envelopes' commits (a one-key claim
 * took 97-138 us so against 354-393 us with synchronous_commit on, on the test machine:
 * test_relay_store_pgclaim's test_claim_latency).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

#define CLAIM_KEY_LEN 32

/* Expired claims are deleted at most this often, by each node, in its next claim. */
#define CLAIM_PRUNE_MS 60000

static int send_text(struct store_pg *st, const char *sql, const struct pg_params *p)
{
	int sent =
	    PQsendQueryParams(st->conn, sql, p->n, NULL, p->values, p->lengths, p->formats, 1);
	return sent == 1 ? 0 : -1;
}

/* Marks FRESH[i] for the first KEYS[i] equal to E that is not marked yet. */
static void mark_fresh(const uint8_t (*keys)[CLAIM_KEY_LEN], size_t n, const uint8_t *e,
                       bool *fresh)
{
	for (size_t i = 0; i < n; i++) {
		if (!fresh[i] && memcmp(keys[i], e, CLAIM_KEY_LEN) == 0) {
			fresh[i] = true;
			return;
		}
	}
}

/* The keys of one claim_once, and where the INSERT's result comes in the pipeline. */
struct claim_read {
	const uint8_t (*keys)[CLAIM_KEY_LEN];
	size_t n, insert_at;
	bool *fresh;
};

/* pg_read_pipeline's EACH: marks fresh the keys the INSERT returned. */
static int claim_result(void *ctx, size_t index, const PGresult *r)
{
	const struct claim_read *c = ctx;
	if (index != c->insert_at)
		return 0;
	/* At most one row per key sent; anything else is not our table. */
	int rows = PQntuples(r);
	if (rows < 0 || (size_t)rows > c->n || PQnfields(r) != 1)
		return CAIRN_ESTORAGE;
	for (int i = 0; i < rows; i++) {
		if (PQgetisnull(r, i, 0) || PQgetlength(r, i, 0) != CLAIM_KEY_LEN)
			return CAIRN_ESTORAGE;
		mark_fresh(c->keys, c->n, (const uint8_t *)PQgetvalue(r, i, 0), c->fresh);
	}
	return 0;
}

int pg_claim_once(void *store, const uint8_t (*keys)[32], size_t n, int64_t until, bool *fresh)
{
	struct store_pg *st = store;
	if (n > STORE_CLAIM_MAX || (n > 0 && (keys == NULL || fresh == NULL)))
		return CAIRN_ESTORAGE;
	for (size_t i = 0; i < n; i++)
		fresh[i] = false;
	if (n == 0)
		return 0;
	uint8_t buf[PG_ARRAY_HEADER + STORE_CLAIM_MAX * (4 + CLAIM_KEY_LEN)];
	size_t len = pg_array_header(buf, PG_BYTEA_OID, n);
	for (size_t i = 0; i < n; i++)
		len += pg_array_bytes(buf + len, keys[i], CLAIM_KEY_LEN);
	struct pg_params p = {0}, none = {0};
	pg_param_bytes(&p, buf, len);
	pg_param_i64(&p, until);
	if (pg_connect(st, NULL, 0) != 0)
		return CAIRN_ESTORAGE;
	int64_t now = pg_now_ms();
	bool prune = st->claim_pruned_ms == 0 || now - st->claim_pruned_ms >= CLAIM_PRUNE_MS;
	size_t stmts = 0;
	struct claim_read read = {keys, n, 0, fresh};
	bool lost = true;
	int rc = CAIRN_ESTORAGE;
	if (PQenterPipelineMode(st->conn) != 1)
		goto out;
	if (send_text(st, "BEGIN", &none) != 0 ||
	    send_text(st, "SET LOCAL synchronous_commit = off", &none) != 0)
		goto out;
	stmts = 2;
	/* A full scan of a table that holds one clock window of handshakes, once a minute:
	 * cheaper than an index on UNTIL that every claim would pay for. */
	if (prune) {
		if (send_text(st, "DELETE FROM hs_seen WHERE until < now()", &none) != 0)
			goto out;
		stmts++;
	}
	read.insert_at = stmts;
	if (send_text(st,
	              "INSERT INTO hs_seen (e, until) SELECT k, to_timestamp($2::int8)"
	              " FROM unnest($1::bytea[]) AS k ON CONFLICT DO NOTHING RETURNING e",
	              &p) != 0 ||
	    send_text(st, "COMMIT", &none) != 0)
		goto out;
	stmts += 2;
	if (PQpipelineSync(st->conn) != 1 || pg_flush(st) != 0)
		goto out;
	rc = pg_read_pipeline(st, stmts, &lost, claim_result, &read) != 0 ? CAIRN_ESTORAGE : 0;
out:
	if (lost || st->conn == NULL) {
		pg_drop(st);
	} else if (rc != 0 && PQtransactionStatus(st->conn) != PQTRANS_IDLE) {
		PGresult *r = pg_run(st, 0, "ROLLBACK", NULL);
		PQclear(r);
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			fresh[i] = false;
	} else if (prune) {
		st->claim_pruned_ms = now;
	}
	return rc;
}
