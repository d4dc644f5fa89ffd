/* SPDX-License-Identifier: MIT */
/*
 * The SQLite helpers every part of the client's store uses (state_int.h): error mapping and the
 * end of a kept statement's use. Their own file so that the store's parts (state.c, state_rec.c,
 * state_slots.c, state_keys.c) all lean on it and none on another in a circle.
 */
#include <errno.h>

#include "state_int.h"

/* Maps a failed SQLite call to our codes: a damaged file is not an I/O error. */
int cst_db_error(int src)
{
	switch (src & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return CAIRN_ECORRUPT;
	case SQLITE_NOMEM:
		return CAIRN_ENOMEM;
	case SQLITE_FULL:
		/* Its own code, so that `cairn` can say what to do: nothing was written (SQLite
		 * undid the statement, and the caller's transaction rolls back). */
		return CAIRN_ENOSPC;
	default:
		return CAIRN_EIO;
	}
}

/* Ends a use of a kept statement: reset, so it holds no read snapshot, and unbound, so it
 * keeps no pointer to the caller's (SQLITE_STATIC) buffers. */
void cst_stmt_release(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

int cst_db_error_on(sqlite3 *db, int src)
{
	int rc = cst_db_error(src);
	/* An fsync or the shared-memory index that found the disk full comes as an I/O error;
	 * its errno tells. */
	int err = db != NULL ? sqlite3_system_errno(db) : 0;
	if (rc == CAIRN_EIO && (err == ENOSPC || err == EDQUOT))
		return CAIRN_ENOSPC;
	return rc;
}

/* Steps a statement that returns no rows, then releases it. */
int cst_step_done(sqlite3_stmt *s)
{
	int src = sqlite3_step(s);
	int rc = src == SQLITE_DONE ? 0 : cst_db_error_on(sqlite3_db_handle(s), src);
	cst_stmt_release(s);
	return rc;
}
