/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL storage engine (store.h): one relay process per database (node 0), or
 * several as nodes 1..255 that each write their batches to a change feed the others read
 * (store_pg_feed.c, docs/SCALING.md section 4); the database may have a synchronous standby
 * (docs/OPERATING.md). A batch is one transaction sent in libpq's pipeline mode: BEGIN, one
 * prepared statement per op, COMMIT and a sync go out together, so a batch costs about one
 * round trip and one commit (synchronous_commit on: one WAL flush, and the synchronous
 * standby's, for the whole batch), as the SQLite engine's group commit does.
 *
 * Never a false OK: a batch is durable only when COMMIT's own result came back. A connection
 * lost at any point, even during COMMIT (whose outcome is then unknown), fails the batch with
 * CAIRN_ESTORAGE; the relay then answers the senders an error and keeps nothing of the batch
 * in memory, and the next call connects again by itself. Nothing here logs.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "feed_codec.h"
#include "pg_engine.h"

/* The digest column is NULL for an open mailbox. */
static void param_digest(struct pg_params *p, const struct store_mailbox *m)
{
	if (m->secured)
		pg_param_bytes(p, m->credential_digest, sizeof(m->credential_digest));
	else
		pg_param_null(p);
}

/* Array parameter IDS/N for OUT->p2 (with KEY first). Returns 0 or CAIRN_ENOMEM. */
static int ids_param(struct pg_op *out, uint64_t key, const uint64_t *ids, size_t n)
{
	size_t cap = pg_ids_size(n);
	out->ids = malloc(cap);
	if (out->ids == NULL)
		return CAIRN_ENOMEM;
	pg_param_u64(&out->p, key);
	pg_param_ids(&out->p, ids, n, out->ids, cap);
	/* The row itself, after its envelopes or entries. */
	pg_param_u64(&out->p2, key);
	return 0;
}

/* Fills OUT for OP. Returns 0, or CAIRN_ESTORAGE for an op the store cannot hold (a NULL
 * mailbox, an id past 2^63), which fails the batch before anything is sent. */
static int build(const struct store_op *op, uint8_t node, struct pg_op *out)
{
	memset(out, 0, sizeof(*out));
	out->second = -1;
	struct pg_params *p = &out->p;
	switch (op->kind) {
	case STORE_MAILBOX_PUT:
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		out->stmt = PG_MAILBOX_PUT;
		pg_param_u64(p, op->mailbox->id);
		pg_param_bytes(p, op->mailbox->recipient_id, sizeof(op->mailbox->recipient_id));
		pg_param_bytes(p, op->mailbox->sender_id, sizeof(op->mailbox->sender_id));
		pg_param_bytes(p, op->mailbox->recipient_key, sizeof(op->mailbox->recipient_key));
		param_digest(p, op->mailbox);
		pg_param_i64(p, op->mailbox->touched);
		pg_param_i32(p, op->mailbox->work_bits);
		break;
	case STORE_MAILBOX_SECURE:
		/* Securing or converting a mailbox that is not stored changes nothing. */
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		out->stmt = PG_MAILBOX_SECURE;
		pg_param_u64(p, op->mailbox->id);
		param_digest(p, op->mailbox);
		break;
	case STORE_MAILBOX_INTAKE:
		if (op->mailbox == NULL)
			return CAIRN_ESTORAGE;
		out->stmt = PG_MAILBOX_INTAKE;
		pg_param_u64(p, op->mailbox->id);
		pg_param_i32(p, op->mailbox->work_bits);
		break;
	case STORE_MAILBOX_TOUCH:
		out->stmt = PG_MAILBOX_TOUCH;
		pg_param_u64(p, op->mailbox_id);
		pg_param_i64(p, op->stored_at);
		break;
	case STORE_MAILBOX_DELETE:
		out->stmt = PG_MAILBOX_ENVELOPES_DELETE;
		out->second = PG_MAILBOX_DELETE;
		if (ids_param(out, op->mailbox_id, op->envelope_ids, op->n_envelope_ids) != 0)
			return CAIRN_ESTORAGE;
		break;
	case STORE_ENVELOPE_PUT:
		out->stmt = PG_ENVELOPE_PUT;
		pg_param_u64(p, op->envelope_id);
		pg_param_u64(p, op->mailbox_id);
		pg_param_i64(p, op->stored_at);
		pg_param_bytes(p, op->body, op->len);
		if (op->bundle_e != NULL) {
			/* A bundled envelope's seen row, in the same transaction (5.12 rule 3). */
			out->second = PG_BUNDLE_PUT;
			pg_param_bytes(&out->p2, op->bundle_e, CAIRN_KEY_LEN);
			pg_param_i64(&out->p2, op->bundle_until);
		}
		break;
	case STORE_ENVELOPE_DELETE:
		out->stmt = PG_ENVELOPE_DELETE;
		pg_param_u64(p, op->mailbox_id);
		pg_param_u64(p, op->envelope_id);
		break;
	case STORE_EXPIRE: {
		/* "id < bound" as "id <= bound - 1", which also covers a bound past 2^63. Log
		 * entries share the id space: the same bound expires them, after their logs'
		 * next_seq is raised above what goes. */
		if (op->envelope_id == 0) {
			out->stmt = -1;
			return 0;
		}
		uint64_t last = op->envelope_id - 1;
		if (last > (uint64_t)INT64_MAX)
			last = (uint64_t)INT64_MAX;
		out->stmt = PG_EXPIRE;
		pg_param_u64(p, last);
		out->second = PG_LOG_RAISE_NEXT_SEQ;
		pg_param_u64(&out->p2, last);
		break;
	}
	case STORE_ID_MARK:
		/* Each node its own mark: its ids carry its number in their low byte, so only its
		 * own could repeat; a shared mark would make the nodes leapfrog a block ahead of
		 * each other's clocks. */
		out->stmt = PG_ID_MARK;
		pg_param_u64(p, op->envelope_id);
		pg_param_i32(p, node);
		break;
	case STORE_BUNDLE_EXPIRE:
		out->stmt = PG_BUNDLE_EXPIRE;
		pg_param_i64(p, op->stored_at);
		break;
	case STORE_LOG_PUT:
		if (op->log == NULL)
			return CAIRN_ESTORAGE;
		out->stmt = PG_LOG_PUT;
		pg_param_u64(p, op->log->id);
		pg_param_bytes(p, op->log->log_id, sizeof(op->log->log_id));
		pg_param_bytes(p, op->log->credential_digest, sizeof(op->log->credential_digest));
		pg_param_bytes(p, op->log->delete_digest, sizeof(op->log->delete_digest));
		pg_param_u64(p, op->log->next_seq);
		pg_param_i64(p, op->log->touched);
		break;
	case STORE_LOG_TOUCH:
		out->stmt = PG_LOG_TOUCH;
		pg_param_u64(p, op->log_key);
		pg_param_i64(p, op->stored_at);
		break;
	case STORE_LOG_DELETE:
		out->stmt = PG_LOG_ENTRIES_DELETE;
		out->second = PG_LOG_DELETE;
		if (ids_param(out, op->log_key, op->envelope_ids, op->n_envelope_ids) != 0)
			return CAIRN_ESTORAGE;
		break;
	case STORE_LOG_ENTRY_PUT:
		/* A seq is stored signed and next_seq as seq + 1, which must not overflow. */
		if (op->seq >= (uint64_t)INT64_MAX)
			return CAIRN_ESTORAGE;
		if (op->assigned_seq != NULL) {
			/* A node's: the database numbers it (PG_LOG_ENTRY_PUT_NUMBERED). */
			out->stmt = PG_LOG_ENTRY_PUT_NUMBERED;
			pg_param_u64(p, op->envelope_id);
			pg_param_u64(p, op->log_key);
			pg_param_i64(p, op->stored_at);
			pg_param_bytes(p, op->body, op->len);
			break;
		}
		out->stmt = PG_LOG_ENTRY_PUT;
		pg_param_u64(p, op->envelope_id);
		pg_param_u64(p, op->log_key);
		pg_param_u64(p, op->seq);
		pg_param_i64(p, op->stored_at);
		pg_param_bytes(p, op->body, op->len);
		break;
	default:
		return CAIRN_ESTORAGE;
	}
	return out->p.bad || out->p2.bad ? CAIRN_ESTORAGE : 0;
}

/* Whether OP may join a run of its kind in one array statement (build_run). */
static bool runs(const struct store_op *op)
{
	return (op->kind == STORE_ENVELOPE_PUT && op->bundle_e == NULL) ||
	       op->kind == STORE_ENVELOPE_DELETE;
}

/*
 * Fills OUT for the N > 1 consecutive ops OPS of one kind (runs()): their envelopes as arrays
 * in one statement. Consecutive ops only, so the batch's order is kept. Returns 0,
 * CAIRN_ENOMEM, or CAIRN_ESTORAGE for an op the store cannot hold.
 */
static int build_run(const struct store_op *ops, size_t n, struct pg_op *out)
{
	memset(out, 0, sizeof(*out));
	out->second = -1;
	bool put = ops[0].kind == STORE_ENVELOPE_PUT;
	out->stmt = put ? PG_ENVELOPE_PUTS : PG_ENVELOPE_DELETES;
	size_t cap = PG_ARRAY_HEADER + PG_ARRAY_I64 * n;
	if (!put) {
		cap *= 2;
	} else {
		cap = 3 * cap + PG_ARRAY_HEADER;
		for (size_t i = 0; i < n; i++) {
			if (ops[i].body == NULL && ops[i].len != 0)
				return CAIRN_ESTORAGE;
			cap += 4 + (size_t)ops[i].len;
		}
	}
	if (cap > INT32_MAX)
		return CAIRN_ESTORAGE;
	uint8_t *buf = out->ids = malloc(cap);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	size_t off = 0;
	/* One array per column: inserts' ids, mailboxes, times and bodies; deletes' mailboxes
	 * and ids (the statement's order). */
	static const int put_cols[] = {0, 1, 2, 3}, delete_cols[] = {1, 0};
	const int *cols = put ? put_cols : delete_cols;
	for (int c = 0; c < (put ? 4 : 2); c++) {
		int col = cols[c];
		size_t start = off;
		off += pg_array_header(buf + off, col == 3 ? PG_BYTEA_OID : PG_INT8_OID, n);
		for (size_t i = 0; i < n; i++) {
			const struct store_op *op = &ops[i];
			uint64_t v = col == 0   ? op->envelope_id
			             : col == 1 ? op->mailbox_id
			                        : (uint64_t)op->stored_at;
			if (col < 2 && v > (uint64_t)INT64_MAX)
				return CAIRN_ESTORAGE;
			off += col == 3 ? pg_array_bytes(buf + off, op->body, op->len)
			                : pg_array_i64(buf + off, v);
		}
		pg_param_bytes(&out->p, buf + start, off - start);
	}
	return out->p.bad ? CAIRN_ESTORAGE : 0;
}

static int send_stmt(struct store_pg *st, int stmt, const struct pg_params *p)
{
	static const char *const names[] = {
#define N(i) [i] = "cairn_" #i
	    N(0),  N(1),  N(2),  N(3),  N(4),  N(5),  N(6),  N(7),  N(8),  N(9),  N(10),
	    N(11), N(12), N(13), N(14), N(15), N(16), N(17), N(18), N(19), N(20), N(21),
	    N(22), N(23), N(24), N(25), N(26), N(27), N(28), N(29), N(30), N(31), N(32),
#undef N
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == PG_STMT_COUNT, "name every statement");
	return PQsendQueryPrepared(st->conn, names[stmt], p->n, p->values, p->lengths, p->formats,
	                           1) == 1
	           ? 0
	           : -1;
}

/* Queues a piece of the batch: BEGIN when BEGIN, OPS' statements in order, COMMIT when
 * COMMIT, sync. STMTS counts what was queued (each gives one result). Returns 0, or -1 if
 * libpq refused (the connection). */
static int send_batch(struct store_pg *st, const struct pg_op *ops, size_t n, bool begin,
                      bool commit, size_t *stmts)
{
	static const struct pg_params none;
	*stmts = 0;
	if (begin && send_stmt(st, PG_BEGIN, &none) != 0)
		return -1;
	*stmts += begin;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].stmt < 0)
			continue;
		if (send_stmt(st, ops[i].stmt, &ops[i].p) != 0)
			return -1;
		(*stmts)++;
		/* Expiry raises the logs' next_seq before it deletes their entries. */
		if (ops[i].stmt == PG_EXPIRE) {
			if (send_stmt(st, PG_LOG_RAISE_NEXT_SEQ, &ops[i].p2) != 0 ||
			    send_stmt(st, PG_LOG_EXPIRE, &ops[i].p2) != 0)
				return -1;
			*stmts += 2;
		} else if (ops[i].second >= 0) {
			if (send_stmt(st, ops[i].second, &ops[i].p2) != 0)
				return -1;
			(*stmts)++;
		}
	}
	if (commit && send_stmt(st, PG_COMMIT, &none) != 0)
		return -1;
	*stmts += commit;
	return PQpipelineSync(st->conn) == 1 && pg_flush(st) == 0 ? 0 : -1;
}

/* ---- Log entries a node's database numbers (store.h's assigned_seq) ---- */

/* Where an entry's seq is in its op's feed encoding (feed_codec.c: kind, envelope_id,
 * log_key, seq). */
#define FEED_ENTRY_SEQ_AT (1 + 8 + 8)

/*
 * The batch OPS[0..N) numbers log entries in the database: FEED (pg_feed_stmts's row) becomes
 * PG_FEED_PUT_SEQS, which writes each entry's seq into the encoded row in the same
 * transaction, so the other nodes read the database's seqs. FEED->ids (the blob) grows by
 * the offsets and ids arrays. Returns 0 (also when there is nothing to number), CAIRN_ENOMEM
 * or CAIRN_ESTORAGE.
 */
static int feed_with_seqs(const struct store_pg *st, const struct store_op *ops, size_t n,
                          struct pg_op *feed)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ops[i].kind == STORE_LOG_ENTRY_PUT && ops[i].assigned_seq != NULL;
	if (k == 0)
		return 0;
	size_t len = (size_t)feed->p.lengths[2], arr = pg_ids_size(k);
	uint8_t *buf = realloc(feed->ids, len + 2 * arr);
	if (buf == NULL)
		return CAIRN_ENOMEM;
	feed->ids = buf;
	uint64_t *at = malloc(2 * k * sizeof(*at));
	if (at == NULL)
		return CAIRN_ENOMEM;
	uint64_t *ids = at + k;
	size_t off = 1, j = 0; /* past the version byte */
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == STORE_LOG_ENTRY_PUT && ops[i].assigned_seq != NULL) {
			at[j] = off + FEED_ENTRY_SEQ_AT;
			ids[j++] = ops[i].envelope_id;
		}
		off += feed_encoded_len(&ops[i], 1) - 1;
	}
	feed->stmt = PG_FEED_PUT_SEQS;
	feed->p = (struct pg_params){0};
	pg_param_i32(&feed->p, st->node);
	pg_param_u64(&feed->p, st->feed_seq + 1);
	pg_param_bytes(&feed->p, buf, len);
	pg_param_ids(&feed->p, at, k, buf + len, arr);
	pg_param_ids(&feed->p, ids, k, buf + len + arr, arr);
	free(at);
	return off == len && !feed->p.bad ? 0 : CAIRN_ESTORAGE;
}

/* pg_read_pipeline's EACH: PG_FEED_PUT_SEQS's result (known by its column's name, wherever
 * the statement stands in the pipeline) gives each numbered entry of OPS[0..N) its seq. */
struct seq_take {
	const struct store_op *ops;
	size_t n;
};

static int take_seqs(void *ctx, size_t index, const PGresult *r)
{
	(void)index;
	const struct seq_take *t = ctx;
	if (PQnfields(r) != 1 || strcmp(PQfname(r, 0), "cairn_seq") != 0)
		return 0;
	int row = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->ops[i].kind != STORE_LOG_ENTRY_PUT || t->ops[i].assigned_seq == NULL)
			continue;
		int64_t seq;
		if (row >= PQntuples(r) || pg_col_i64(r, row++, 0, &seq) != 0 || seq < 0)
			return CAIRN_ESTORAGE;
		*t->ops[i].assigned_seq = (uint64_t)seq; /* 0: the log is gone, nothing stored */
	}
	return row == PQntuples(r) ? 0 : CAIRN_ESTORAGE;
}

/*
 * Runs the built ops OPS[0..N) as one transaction. Pipelined statements go together in one
 * round trip; a COPY (PG_ENVELOPE_COPY) cannot join them, so the transaction is sent in
 * pieces: the statements before a COPY (with BEGIN) and their sync, the COPY, and so on, and
 * the last piece with COMMIT. A batch that starts with a COPY sends its BEGIN with it. Still
 * one transaction, one commit: a piece that fails leaves the transaction aborted and nothing
 * of the batch is kept. EACH and CTX see the last piece's results (pg_read_pipeline).
 * Returns as pg_read_pipeline, with *LOST set likewise.
 */
static int run_batch(struct store_pg *st, const struct pg_op *ops, size_t n, bool *lost,
                     int (*each)(void *, size_t, const PGresult *), void *ctx)
{
	bool begun = false;
	for (size_t i = 0;;) {
		size_t j = i;
		while (j < n && ops[j].stmt != PG_ENVELOPE_COPY)
			j++;
		/* The statements before the next COPY (none when the batch starts with one), or
		 * the last ones with COMMIT. */
		if (j > i || j == n) {
			size_t stmts;
			*lost = true;
			if (PQenterPipelineMode(st->conn) != 1 ||
			    send_batch(st, &ops[i], j - i, !begun, j == n, &stmts) != 0)
				return CAIRN_ESTORAGE;
			int rc = j == n ? pg_read_pipeline(st, stmts, lost, each, ctx)
			                : pg_read_piece(st, stmts, lost);
			if (rc != 0 || j == n)
				return rc;
			begun = true;
		}
		int rc = pg_copy_run(st, &ops[j], !begun, lost);
		if (rc != 0)
			return rc;
		begun = true;
		i = j + 1;
	}
}

/*
 * Applies OPS as one transaction. Returns 0 once COMMIT came back (durable), CAIRN_ECAPACITY
 * when the database's disk was full (SQLSTATE 53100), or CAIRN_ESTORAGE with nothing applied
 * as far as the relay may assume: an error, a lost connection, an unknown COMMIT outcome.
 */
static int pg_commit(void *store, const struct store_op *ops, size_t n)
{
	struct store_pg *st = store;
	if (n == 0)
		return 0;
	if (ops == NULL)
		return CAIRN_ESTORAGE;
	/* Room for the feed's statements after the ops' (node != 0). */
	struct pg_op *built = calloc(n + 3, sizeof(*built));
	if (built == NULL)
		return CAIRN_ESTORAGE;
	bool prunes = false;
	int rc = 0;
	size_t m = 0;
	for (size_t i = 0, j; i < n && rc == 0; i = j, m++) {
		for (j = i + 1;
		     runs(&ops[i]) && j < n && ops[j].kind == ops[i].kind && runs(&ops[j]);)
			j++;
		if (j - i >= PG_COPY_MIN && ops[i].kind == STORE_ENVELOPE_PUT)
			rc = pg_copy_build(&ops[i], j - i, &built[m]);
		else
			rc = j - i > 1 ? build_run(&ops[i], j - i, &built[m])
			               : build(&ops[i], st->node, &built[m]);
	}
	if (rc != 0) {
		rc = CAIRN_ESTORAGE;
		goto out;
	}
	/* A lock refused at a reconnect (another relay took this node meanwhile) is a storage
	 * failure to the relay, as store.h's commit says. */
	if (pg_connect(st, NULL, 0) != 0) {
		rc = CAIRN_ESTORAGE;
		goto out;
	}
	if (st->node != 0) {
		/* After the connect, which reads the node's last seq. */
		size_t added;
		if ((rc = pg_feed_stmts(st, ops, n, &built[m], &added, &prunes)) != 0) {
			free(built[m].ids);
			rc = CAIRN_ESTORAGE;
			goto out;
		}
		rc = feed_with_seqs(st, ops, n, &built[m]);
		m += added;
		if (rc != 0) {
			rc = CAIRN_ESTORAGE;
			goto out;
		}
	}
	bool lost = true;
	/* The feed's statements are the last built ops, never a COPY: in the last piece. */
	rc = run_batch(st, built, m, &lost, st->node != 0 ? take_seqs : NULL,
	               &(struct seq_take){.ops = ops, .n = n});
	if (rc == 0 && st->node != 0)
		pg_feed_committed(st, prunes);
	if (lost) {
		pg_drop(st);
	} else if (rc != 0 && PQtransactionStatus(st->conn) != PQTRANS_IDLE) {
		/* The failed statement left the transaction open and aborted. */
		PGresult *r = pg_run(st, 0, "ROLLBACK", NULL);
		PQclear(r);
	}
out:
	for (size_t i = 0; i < m; i++)
		free(built[i].ids);
	free(built);
	return rc;
}

static void store_free(struct store_pg *st)
{
	if (st == NULL)
		return;
	pg_listen_stop(st->listen);
	pg_drop(st);
	free(st->conninfo);
	free(st);
}

/*
 * Connects to PARAMS->connection and makes the schema if absent. Returns 0, CAIRN_EINVAL
 * without a connection string, CAIRN_ENOMEM, CAIRN_ESTATE for a newer schema, or
 * CAIRN_ESTORAGE when the database cannot be reached (PARAMS->error says why).
 */
static int pg_open(const struct store_params *params, void **out)
{
	*out = NULL;
	if (params == NULL || params->connection == NULL || params->connection[0] == '\0')
		return CAIRN_EINVAL;
	struct store_pg *st = calloc(1, sizeof(*st));
	if (st == NULL || (st->conninfo = strdup(params->connection)) == NULL) {
		free(st);
		return CAIRN_ENOMEM;
	}
	st->node = params->node;
	int rc = pg_connect(st, params->error, params->error_cap);
	/* The other nodes' commits wake the caller (store.h's feed_wake). */
	if (rc == 0 && st->node != 0 && params->feed_wake != NULL)
		rc = pg_listen_start(&st->listen, st->conninfo, st->node, params->feed_wake,
		                     params->feed_wake_arg);
	if (rc != 0) {
		store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

static void pg_close(void *store)
{
	store_free(store);
}

const struct store_engine store_pg = {
    .name = "postgresql",
    .open = pg_open,
    .commit = pg_commit,
    .load = pg_load,
    .read_envelope = pg_read_envelope,
    .read_log_entry = pg_read_log_entry,
    .read_log_entries = pg_read_log_entries,
    .read_envelopes = pg_read_envelopes, /* store_pg_read.c */
    .disk_bytes = pg_disk_bytes,
    .reclaim = NULL,    /* the database's own space is PostgreSQL's to manage */
    .free_bytes = NULL, /* VACUUM's free space is not ours to count */
    .feed_read = pg_feed_read,
    .close = pg_close,
    .claim_once = pg_claim_once,
};
