/* SPDX-License-Identifier: MIT */
/*
 * Real PostgreSQL for the tests of the relay's PostgreSQL store engine: Debian's postgres 15
 * (CAIRN_PG_BINDIR), a cluster made from scratch by initdb in a directory of the test's, run
 * in the foreground as a child of the test. postgres refuses to run as root, and the tests run
 * as root in CI: there every PostgreSQL program runs as the unprivileged `nobody` (the scratch
 * directory is handed to it); as any other user, as that user.
 *
 * The cluster listens on 127.0.0.1:PORT and on a Unix socket in its directory, trusts local
 * connections (superuser `cairn`, database `cairn`), and keeps PostgreSQL's durable defaults
 * (fsync on, synchronous_commit on, full_page_writes on). A standby is made from a running
 * primary with pg_basebackup; the primary then waits for it on every commit
 * (synchronous_standby_names), as docs/OPERATING.md sets it up.
 */
#ifndef CAIRN_TEST_PGPROC_H
#define CAIRN_TEST_PGPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "freeport.h"

struct pgproc {
	pid_t pid;          /* the postmaster, 0 when not running */
	char dir[256];      /* the data directory */
	char conninfo[320]; /* libpq connection string: host=127.0.0.1 port=PORT ... */
	uint16_t port;
};

/*
 * Makes a new cluster in DIR (which must not exist; its parent must exist) for 127.0.0.1:PORT
 * and starts it (pgproc_start). Returns 0; 1 if PostgreSQL cannot run here (its binaries are
 * missing: the reason is on stderr, the caller skips); -1 on any other failure, with the
 * reason (and the server's log) on stderr.
 */
int pgproc_init(struct pgproc *p, const char *dir, uint16_t port);

/*
 * Makes a standby of running PRIMARY in DIR (pg_basebackup, streaming replication) for
 * 127.0.0.1:PORT, starts it, and makes PRIMARY wait for it on every commit (synchronous
 * replication, application name "standby"). Returns 0 or -1.
 */
int pgproc_standby(struct pgproc *s, const struct pgproc *primary, const char *dir,
                   uint16_t port);

/*
 * pgproc_standby of PRIMARY in DIR on a free port, and into CONNINFO (capacity CAP) the
 * connection string a relay is given for the pair: both hosts, primary first,
 * target_session_attrs=read-write (docs/OPERATING.md, A synchronous standby), so that it
 * finds the standby once promoted. Returns 0 or -1.
 */
int pgproc_standby_pair(struct pgproc *s, const struct pgproc *primary, const char *dir,
                        char *conninfo, size_t cap);

/* Starts the server on its existing directory and waits (60 s at most) until it accepts
 * connections. Returns 0 or -1. */
int pgproc_start(struct pgproc *p);

/* Fast shutdown (SIGINT), and waits for the postmaster. Does nothing if not running. */
void pgproc_stop(struct pgproc *p);

/* Kills the postmaster and every server process with SIGKILL, like a machine that died: no
 * checkpoint, no goodbye to the clients. */
void pgproc_kill(struct pgproc *p);

/* Promotes standby P to a primary and waits until it accepts writes. Returns 0 or -1. */
int pgproc_promote(struct pgproc *p);

/*
 * Runs SQL through psql on P's database and puts the first row's first column (unaligned, no
 * header) into OUT (NUL-terminated, may be NULL). Returns 0, or -1 if psql failed.
 */
int pgproc_sql(const struct pgproc *p, const char *sql, char *out, size_t cap);
/* The same in database DB of P's cluster. */
int pgproc_sql_in(const struct pgproc *p, const char *db, const char *sql, char *out, size_t cap);

/*
 * TLS for the scratch cluster (docs/OPERATING.md, TLS to the database), with the openssl
 * command: pgproc_make_ca makes a throwaway certificate authority in DIR (which must exist):
 * DIR/ca.crt and DIR/ca.key (P-256, two days). pgproc_ssl signs a server certificate for
 * 127.0.0.1 (its subjectAltName, for sslmode=verify-full) with the CA in CA_DIR, puts it and
 * its key in running P's data directory, and turns on ssl = on (a reload). Both return 0 or
 * -1 (the reason on stderr).
 */
int pgproc_make_ca(const char *dir);
int pgproc_ssl(struct pgproc *p, const char *ca_dir);

/* Stops P if running and removes its directory. */
void pgproc_destroy(struct pgproc *p);

#endif
