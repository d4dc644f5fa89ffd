/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL engine's read_envelopes (store.h): one mailbox's envelopes in one
 * statement on its one partition (PG_READ_ENVELOPES, prepared like the others, so a read is
 * not parsed and planned again each time), one round trip and one snapshot for a whole batch.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cairn/error.h"
#include "pg_engine.h"

/* Row of RES whose id is ID, or -1. At most STORAGE_READ_ENVELOPES_MAX rows, in id order
 * from the index most of the time: the search starts where the last one ended. */
static int row_of(const PGresult *res, int rows, uint64_t id, int *from)
{
	for (int k = 0; k < rows; k++) {
		int row = (*from + k) % rows;
		int64_t v;
		if (pg_col_i64(res, row, 0, &v) == 0 && (uint64_t)v == id) {
			*from = row + 1;
			return row;
		}
	}
	return -1;
}

int pg_read_envelopes(void *store, uint64_t mailbox, const uint64_t *ids, size_t n, uint8_t *out,
                      size_t cap, size_t *lens)
{
	struct store_pg *st = store;
	if (n > 0 && (ids == NULL || lens == NULL || out == NULL))
		return CAIRN_EINVAL;
	if (n == 0)
		return 0;
	if (mailbox > (uint64_t)INT64_MAX || n > (size_t)INT32_MAX / PG_ARRAY_I64 ||
	    pg_connect(st, NULL, 0) != 0)
		return CAIRN_ESTORAGE;
	/* An id above INT64_MAX was never stored (read_envelope says absent): not asked. */
	size_t cap_ids = pg_ids_size(n), asked = 0;
	uint8_t *buf = malloc(cap_ids);
	uint64_t *valid = malloc(n * sizeof(*valid));
	for (size_t i = 0; valid != NULL && i < n; i++)
		if (ids[i] <= (uint64_t)INT64_MAX)
			valid[asked++] = ids[i];
	struct pg_params p = {0};
	pg_param_u64(&p, mailbox);
	if (buf != NULL && valid != NULL)
		pg_param_ids(&p, valid, asked, buf, cap_ids);
	PGresult *res =
	    buf == NULL || valid == NULL || p.bad ? NULL : pg_run(st, PG_READ_ENVELOPES, NULL, &p);
	free(buf);
	free(valid);
	int rc = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : CAIRN_ESTORAGE;
	int rows = rc == 0 ? PQntuples(res) : 0, from = 0;
	size_t sum = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int row = ids[i] > (uint64_t)INT64_MAX ? -1 : row_of(res, rows, ids[i], &from);
		if (row < 0) {
			lens[i] = STORE_ABSENT;
		} else if (PQgetisnull(res, row, 1)) {
			rc = CAIRN_ESTORAGE;
		} else if ((size_t)PQgetlength(res, row, 1) > cap - sum) {
			rc = CAIRN_ENOBUFS;
		} else {
			lens[i] = (size_t)PQgetlength(res, row, 1);
			memcpy(out + sum, PQgetvalue(res, row, 1), lens[i]);
			sum += lens[i];
		}
	}
	PQclear(res);
	return rc;
}
