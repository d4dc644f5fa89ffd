/* SPDX-License-Identifier: MIT */
/*
 * Statement helpers of the SQLite engine that its envelope and log parts both use: reading
 * one body by id, and running a load query row by row. Below store_sqlite.c and
 * store_sqlite_log.c, which call it and nothing in the other direction.
 */
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "cairn/error.h"
#include "sqlite_engine.h"

int store_sqlite_each_row(sqlite3 *db, const char *sql, store_sqlite_row_fn *row,
                          const struct store_load_cb *cb, void *ctx)
{
	sqlite3_stmt *s = NULL;
	int rc = CAIRN_ESTORAGE;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		goto out;
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (row(s, cb, ctx) != 0)
			goto out;
	}
	if (step == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int store_sqlite_read_body(sqlite3_stmt *s, uint64_t id, uint8_t *out, size_t cap, size_t *len)
{
	*len = 0;
	if (id > (uint64_t)INT64_MAX)
		return CAIRN_EDENIED;
	if (sqlite3_bind_int64(s, 1, (sqlite3_int64)id) != SQLITE_OK)
		return CAIRN_ESTORAGE;
	int rc;
	int step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = CAIRN_EDENIED;
	} else if (step != SQLITE_ROW) {
		rc = CAIRN_ESTORAGE;
	} else {
		const void *p = sqlite3_column_blob(s, 0);
		int n = sqlite3_column_bytes(s, 0);
		if (n < 0 || (n > 0 && p == NULL)) {
			rc = CAIRN_ESTORAGE;
		} else if ((size_t)n > cap) {
			rc = CAIRN_ENOBUFS;
		} else {
			if (n > 0)
				memcpy(out, p, (size_t)n);
			*len = (size_t)n;
			rc = 0;
		}
	}
	sqlite3_reset(s);
	return rc;
}
