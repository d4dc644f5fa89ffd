/* SPDX-License-Identifier: MIT */
/*
 * Runs the real cairn-relay binary for integration tests: a fresh data directory, a free
 * loopback port, extra config lines, start, stop with any signal, restart, and RSS readings.
 *
 * The store engine follows the environment: CAIRN_TEST_STORE=postgresql runs every relay of
 * the test process on PostgreSQL (support/pgproc.h): one cluster per test process, started
 * with the first relay and torn down at the process's exit, and a fresh database for each
 * relay's data directory, dropped by relayproc_cleanup. Unset or "sqlite": the embedded
 * default, nothing written.
 */
#ifndef CAIRN_TEST_RELAYPROC_H
#define CAIRN_TEST_RELAYPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "freeport.h"

struct relayproc {
	pid_t pid;
	char dir[256];
	char conf[320];
	uint16_t port;
	uint8_t pub[32];
	char host[64]; /* the IPv4 address it listens on; "" is 127.0.0.1 */
	const char *bin; /* the binary relayproc_start runs; NULL is CAIRN_RELAY_BIN (set it
	                  * after relayproc_init: the power-cut test's weakened relay) */
	char store[512]; /* the config's [store] section ("" for the default engine) */
	char pg_db[32];  /* the database relayproc made for it on the test's cluster, or "" */
};

struct pgproc;
/* The test process's PostgreSQL cluster, started on the first call (and removed at exit by
 * the process that started it). NULL if it cannot run: the reason is on stderr. */
struct pgproc *relayproc_pg(void);
/* Makes R's relays use PostgreSQL through the libpq connection string CONNINFO, as given (a
 * test of its own cluster: a standby, several hosts): rewrites R's config. Call after
 * relayproc_init, before relayproc_start. Returns 0 or -1. */
int relayproc_use_pg(struct relayproc *r, const char *conninfo);

/* Node NODE (1..255) of several relays sharing one database (`[store] node`, docs/SCALING.md
 * section 4): sets `node = NODE` in R's [store] section (after relayproc_use_pg), replacing
 * one set before. Returns 0 or -1. */
int relayproc_set_node(struct relayproc *r, unsigned node);
/* Makes R node NODE of FIRST's cluster: relayproc_init with LIMITS, FIRST's relay.key copied
 * into R's data dir (so R's address key is FIRST's), FIRST's [store] section with node = NODE.
 * R's database is FIRST's (relayproc_cleanup of R drops none). Returns 0 or -1. */
int relayproc_join(struct relayproc *r, const struct relayproc *first, unsigned node,
                   const char *limits);

/* Creates a data dir with `cairn-relay init`, picks a port, and writes a config file with
 * [limits] lines LIMITS (may be NULL, "key = value\n..."). Returns 0 or -1. */
int relayproc_init(struct relayproc *r, const char *limits);
/* The same, listening on the IPv4 address HOST instead of 127.0.0.1 (in a network namespace,
 * say: the port is picked, and relayproc_start waits, in the caller's namespace). */
int relayproc_init_at(struct relayproc *r, const char *limits, const char *host);
/* Starts the relay and waits until it accepts connections. Returns 0 or -1. */
int relayproc_start(struct relayproc *r);
/* Sends SIG and waits for the exit. Returns the exit status (0..255) or 128+signal. */
int relayproc_stop(struct relayproc *r, int sig);
/* Stops the relay if running and removes the data dir. */
void relayproc_cleanup(struct relayproc *r);
/* Removes DIR and everything under it (rm -rf), quietly: a test's own temporary tree. */
void test_rm_tree(const char *dir);
/*
 * relayproc_init and relayproc_start with LIMITS (as for relayproc_init) and an [https]
 * section: the WebSocket listener on 127.0.0.1 at a free port (written to *HTTPS_PORT), the
 * secret PATH, and EXTRA (more [https] lines, or NULL). Returns 0 or -1.
 */
int relayproc_start_https(struct relayproc *r, const char *limits, const char *path,
                          const char *extra, uint16_t *https_port);
/* Runs a second relay on R's data directory, listening on 127.0.0.1:PORT, and waits up to
 * TIMEOUT_MS for it to exit. Returns its exit status, or -1 if it was still running (then it
 * is killed). */
int relayproc_run_second(const struct relayproc *r, uint16_t port, int timeout_ms);

/* R's address text with HOST as its host (the address it listens on) into OUT (capacity
 * CAP, CAIRN_ADDRESS_MAX + 1 suffice). Returns 0 or -1. */
int relayproc_address(const struct relayproc *r, const char *host, char *out, size_t cap);
/* Whether an established TCP connection to the IPv4 HOST:PORT comes from FROM, by
 * /proc/net/tcp (which lists the whole network namespace): who a relay has accepted. */
bool tcp_established_from(const char *host, uint16_t port, const char *from);

/* Resident set size of the running relay, in KiB, or -1. */
long relayproc_rss_kb(const struct relayproc *r);
/* Open file descriptors of the running relay, or -1. */
long relayproc_fds(const struct relayproc *r);
/* CPU time the running relay has used so far (user + system, all threads), in ms, or -1. */
long relayproc_cpu_ms(const struct relayproc *r);

#endif
