/* SPDX-License-Identifier: MIT */
/*
 * What the PostgreSQL engine's files share (store_pg.c: open and commit; store_pg_load.c:
 * load, reads and size; store_pg_feed.c: the change feed's rows; store_pg_session.c:
 * connecting and the locks; store_pg_schema.c: tables and statements; store_pg_conn.c: waits,
 * statements, parameters, columns), each calling only those after it in this list, and
 * store_pg_listen.c (the feed's LISTEN thread, its own connection), which calls none: the
 * engine's struct, the prepared statements, and the helpers that bind parameters in binary
 * form and wait for results with a bound. Private to them (and to the engine's tests).
 */
#ifndef CAIRN_RELAY_PG_ENGINE_H
#define CAIRN_RELAY_PG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"

/* The prepared statements, named "cairn_<index>" on every connection. */
enum {
	PG_MAILBOX_PUT,
	PG_MAILBOX_SECURE,
	PG_MAILBOX_INTAKE,
	PG_MAILBOX_TOUCH,
	PG_MAILBOX_ENVELOPES_DELETE,
	PG_MAILBOX_DELETE,
	PG_ENVELOPE_PUT,
	PG_ENVELOPE_DELETE,
	PG_ENVELOPE_PUTS,    /* a run of STORE_ENVELOPE_PUT as arrays (unnest) */
	PG_ENVELOPE_DELETES, /* a run of STORE_ENVELOPE_DELETE as (mailbox, id) arrays */
	PG_EXPIRE,
	PG_ID_MARK,
	PG_BUNDLE_PUT,
	PG_BUNDLE_EXPIRE,
	PG_LOG_PUT,
	PG_LOG_TOUCH,
	PG_LOG_ENTRIES_DELETE,
	PG_LOG_DELETE,
	PG_LOG_ENTRY_PUT,
	PG_LOG_RAISE_NEXT_SEQ,
	PG_LOG_EXPIRE,
	PG_READ_ENVELOPE,
	PG_READ_ENVELOPES, /* read_envelopes: one mailbox's bodies by an id array */
	PG_READ_LOG_ENTRY,
	PG_READ_LOG_ENTRIES,
	PG_BEGIN,
	PG_COMMIT,
	/* The change feed (store_pg_feed.c), node != 0 only. */
	PG_FEED_PUT,
	PG_FEED_PRUNE,
	PG_FEED_NOTIFY,
	PG_FEED_READ,
	/* A node's log entries, numbered by the database (store.h's assigned_seq). */
	PG_LOG_ENTRY_PUT_NUMBERED,
	PG_FEED_PUT_SEQS,
	PG_STMT_COUNT
};

struct store_pg {
	PGconn *conn;   /* NULL while disconnected: the next call connects again */
	char *conninfo; /* [store] connection, owned */
	uint64_t disk_bytes;
	int64_t disk_sampled_ms; /* monotonic; 0 = never */
	/* The change feed (store.h's node; store_pg_feed.c). */
	uint8_t node;              /* 0: alone, writes no feed */
	uint64_t feed_seq;         /* this node's last committed feed row, read at each connect */
	int64_t feed_pruned_ms;    /* monotonic; 0 = never: the next batch prunes */
	uint64_t feed_cursor[256]; /* per node: the last row read (load's snapshot, then reads) */
	struct pg_listen *listen;  /* the LISTEN thread (store_pg_listen.c), or NULL */
	/* store_pg_claim.c: when claim_once last pruned hs_seen, monotonic; 0 = never */
	int64_t claim_pruned_ms;
	/* store_pg_session.c: when the last connect failed (monotonic; 0 = it did not), and
	 * this relay's last session on the server (its backend's pid and start), which it may
	 * end when it connects again (release_own_session). */
	int64_t connect_failed_ms;
	int32_t session_pid;
	int64_t session_start_us; /* backend_start, in microseconds since the epoch */
};

/* The meta key of node NODE's envelope id mark (SQL text of an int4 expression):
 * envelope_id_mark for a relay alone (0), envelope_id_mark.N for node N. */
#define PG_ID_MARK_KEY(node)                                                                       \
	"concat('envelope_id_mark', CASE WHEN " node " = 0 THEN '' ELSE '.' || " node " END)"

/* At most this many parameters per statement. */
#define PG_PARAMS_MAX 7

/* One statement's parameters in binary form; integers are kept here in network order. */
struct pg_params {
	const char *values[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX];
	int formats[PG_PARAMS_MAX];
	uint8_t ints[PG_PARAMS_MAX][8];
	int n;
	bool bad; /* a value the store cannot hold (an id past 2^63): the op fails */
};

void pg_param_i64(struct pg_params *p, int64_t v);
/* An id, seq or other unsigned the relay gives: past INT64_MAX sets P->bad. */
void pg_param_u64(struct pg_params *p, uint64_t v);
void pg_param_i32(struct pg_params *p, int32_t v);
/* Borrowed bytes: they must outlive the send (libpq copies them then). NULL, 0 is an empty
 * bytea, never SQL NULL. */
void pg_param_bytes(struct pg_params *p, const void *bytes, size_t len);
void pg_param_null(struct pg_params *p);
/* A one-dimensional int8[] of N ids in BUF (capacity CAP bytes): sets P->bad if it does not
 * fit or an id is past INT64_MAX. */
void pg_param_ids(struct pg_params *p, const uint64_t *ids, size_t n, uint8_t *buf, size_t cap);
/* The bytes pg_param_ids needs for N ids. */
size_t pg_ids_size(size_t n);

/* Types of binary parameters (pg_type.h's OIDs, which are fixed). */
#define PG_INT8_OID  20
#define PG_BYTEA_OID 17
/* Writing a one-dimensional array's binary form by hand: its header (at most PG_ARRAY_HEADER
 * bytes) for N elements of type OID, then each element (an int8 takes PG_ARRAY_I64 bytes, a
 * bytea 4 + its length). Each returns the bytes written. */
#define PG_ARRAY_HEADER 20
#define PG_ARRAY_I64    12
size_t pg_array_header(uint8_t *buf, uint32_t oid, size_t n);
size_t pg_array_i64(uint8_t *buf, uint64_t v);
size_t pg_array_bytes(uint8_t *buf, const void *bytes, uint32_t len);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t pg_now_ms(void);

/* Drops the connection after anything unexpected: the next call connects afresh. */
void pg_drop(struct store_pg *st);

/* Sends everything queued and waits (bounded) until a result can be read without blocking.
 * Returns 0, or -1 when the connection failed or timed out (the caller drops it). */
int pg_flush(struct store_pg *st);
int pg_wait(struct store_pg *st);

/*
 * Runs one statement outside pipeline mode: the prepared statement STMT when SQL is NULL,
 * else the text SQL (several statements allowed when P is NULL). Binary results. Returns its
 * last result (owned: PQclear it), or NULL after a connection failure (already dropped).
 */
PGresult *pg_run(struct store_pg *st, int stmt, const char *sql, const struct pg_params *p);
/* CAIRN_ECAPACITY for disk_full (SQLSTATE 53100), else CAIRN_ESTORAGE. */
int pg_error_code(const PGresult *r);

/*
 * Reads a pipeline's results up to its sync: STMTS statements, the last of them COMMIT.
 * EACH (may be NULL) sees every successful result with its statement's index, and may fail
 * it (a CAIRN_E code). Returns 0 only when every statement succeeded and COMMIT's own result
 * said COMMIT; CAIRN_ECAPACITY when a statement found the database's disk full;
 * CAIRN_ESTORAGE otherwise. *LOST is set when the connection cannot be trusted further.
 */
int pg_read_pipeline(struct store_pg *st, size_t stmts, bool *lost,
                     int (*each)(void *ctx, size_t index, const PGresult *r), void *ctx);

/* As pg_read_pipeline for a piece of a transaction that does not end in COMMIT (store_pg.c's
 * run_batch, around a COPY): 0 when every statement succeeded. */
int pg_read_piece(struct store_pg *st, size_t stmts, bool *lost);

/* Reads a binary int8 / int4 column of row ROW. Returns 0, or CAIRN_ESTORAGE for NULL or a
 * wrong width. */
int pg_col_i64(const PGresult *r, int row, int col, int64_t *out);
int pg_col_i32(const PGresult *r, int row, int col, int32_t *out);
/* Copies a bytea column of exactly LEN bytes; anything else is a damaged row. */
int pg_col_fixed(const PGresult *r, int row, int col, uint8_t *out, size_t len);

/* The parameters of one op's statement(s), ready to send. An op may need two statements
 * (a mailbox's envelopes and then its row); SECOND is -1 when it needs one. */
struct pg_op {
	int stmt, second;
	struct pg_params p, p2;
	uint8_t *ids; /* the arrays of a delete or of a run (build_run), owned */
};

/* ---- store_pg_copy.c ---- */

/* A pg_op's STMT for a run of envelope puts sent as COPY (pg_copy_build), outside the
 * prepared statements. */
#define PG_ENVELOPE_COPY (-2)
/* The shortest run of envelope puts that store_pg.c sends as COPY: a shorter one goes in the
 * pipeline as one PG_ENVELOPE_PUTS, saving COPY's two extra round trips and its set-up.
 * Measured with store-rate (docs/SCALING.md section 3): COPY cost the database more CPU per
 * envelope in batches of 10 and 100, the same in batches of 250, less in batches of 1,000. */
#define PG_COPY_MIN 256
/*
 * A run goes as COPYs of at most this many rows (ceil(n / PG_COPY_ROWS) of them, their sizes
 * within one of each other), one after the other in the batch's transaction: two round trips
 * more each. In cairn-bench durable the database's CPU per envelope about halved with one
 * sender (one mailbox, batches of 1,000); with four the medians were level, single runs on a
 * loaded machine lost (docs/SCALING.md section 3, session 18). Where many mailboxes spread a
 * run over every partition the pieces neither gain nor lose much.
 */
#define PG_COPY_ROWS 128

/* Fills OUT with the N envelope puts OPS as COPY's binary rows, in pieces of at most
 * PG_COPY_ROWS rows, each a whole COPY stream (header, rows, trailer), one after the other in
 * one block (OUT->ids owns it, OUT->p's one value points at it). Returns 0, CAIRN_ENOMEM, or
 * CAIRN_ESTORAGE for an op the store cannot hold (an id past 2^63). */
int pg_copy_build(const struct store_op *ops, size_t n, struct pg_op *out);
/*
 * Sends OP (pg_copy_build's) as one COPY per piece in the open transaction, or opening it
 * first when BEGIN, outside pipeline mode, and reads their outcome. Returns 0 once the server
 * took every row; CAIRN_ECAPACITY for a full disk; CAIRN_ESTORAGE otherwise, the transaction then
 * aborted. *LOST is set when the connection cannot be trusted further.
 */
int pg_copy_run(struct store_pg *st, const struct pg_op *op, bool begin, bool *lost);

/* ---- store_pg_feed.c ---- */

/* Feed rows are pruned by their node when older than this, at most once per PG_FEED_PRUNE_MS. */
#define PG_FEED_KEEP     "10 minutes"
#define PG_FEED_PRUNE_MS 60000

/* Node != 0: appends to OUT (room for 3) the statements that write the batch OPS[0..N) as
 * this node's next feed row, prune its old rows (once a minute) and notify the other
 * nodes. *ADDED gets how many; *PRUNES whether a prune is among them. OUT[0].ids owns the
 * encoded ops. Returns 0, CAIRN_ENOMEM or CAIRN_ESTORAGE. */
int pg_feed_stmts(struct store_pg *st, const struct store_op *ops, size_t n, struct pg_op *out,
                  size_t *added, bool *prunes);
/* After such a batch committed: the seq and the prune time move on. */
void pg_feed_committed(struct store_pg *st, bool pruned);
/* Inside load's transaction: every node's last row, the cursors feed_read starts from. */
int pg_feed_cursors(struct store_pg *st);
int pg_feed_read(void *store, struct store_feed *out);

/* ---- store_pg_listen.c ---- */

/* A thread with its own connection to CONNINFO that LISTENs for the feed's notifications and
 * calls WAKE(ARG) on those of another node than NODE and after each (re)connect. Returns 0
 * or CAIRN_ENOMEM. */
int pg_listen_start(struct pg_listen **out, const char *conninfo, uint8_t node,
                    void (*wake)(void *arg), void *arg);
/* Stops and joins the thread, closes its connection. NULL is a no-op. */
void pg_listen_stop(struct pg_listen *l);

/* ---- store_pg_session.c ---- */

/* Connects if not connected: sets the session, makes or checks the schema (pg_schema) and
 * prepares every statement. Returns 0, CAIRN_ESTATE for a newer schema, or CAIRN_ESTORAGE.
 * On failure, ERR (may be NULL) gets libpq's reason. */
int pg_connect(struct store_pg *st, char *err, size_t errcap);

/* ---- store_pg_schema.c ---- */

extern const char *const pg_stmt_sql[PG_STMT_COUNT];
/* Creates the tables in one transaction if they are absent, or checks the schema version.
 * Returns 0, CAIRN_ESTATE for a newer schema, or CAIRN_ESTORAGE. */
int pg_schema(struct store_pg *st);

/* ---- store_pg_load.c ---- */

int pg_load(void *store, const struct store_load_cb *cb, void *ctx);
int pg_read_envelope(void *store, uint64_t mailbox, uint64_t id, uint8_t *out, size_t cap,
                     size_t *len);
int pg_read_log_entry(void *store, uint64_t id, uint8_t *out, size_t cap, size_t *len);
int pg_read_log_entries(void *store, const uint64_t *ids, size_t n, uint8_t *out, size_t cap,
                        size_t *total);
uint64_t pg_disk_bytes(void *store);

/* ---- store_pg_claim.c ---- */

/* store.h claim_once. */
int pg_claim_once(void *store, const uint8_t (*keys)[32], size_t n, int64_t until, bool *fresh);

/* ---- store_pg_read.c ---- */

int pg_read_envelopes(void *store, uint64_t mailbox, const uint64_t *ids, size_t n, uint8_t *out,
                      size_t cap, size_t *lens);

#endif
