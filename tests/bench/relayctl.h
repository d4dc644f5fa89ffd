/* SPDX-License-Identifier: MIT */
/*
 * Runs the real cairn-relay binary for the benchmark: a fresh data directory under /tmp (a
 * real disk here, so fsync costs what it costs), a free loopback port, a config file with the
 * benchmark's limits, start, stop, and clean-up. Unlike tests/support/relayproc.c the binary
 * is chosen at run time.
 */
#ifndef CAIRN_BENCH_RELAYCTL_H
#define CAIRN_BENCH_RELAYCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <netinet/in.h>

#include "freeport.h"

struct relayctl {
	pid_t pid;
	char dir[256];
	char data[300];
	char conf[300];
	uint16_t port;
	uint8_t pub[32];
	struct sockaddr_in addr;
};

/*
 * Creates the data dir with `BIN init`, writes a config with [limits] lines LIMITS (NLIMITS
 * "key = value" strings), starts `BIN run` and waits until it accepts connections.
 * Returns 0, or -1 after cleaning up.
 */
int relayctl_start(struct relayctl *r, const char *bin, const char *const *limits, size_t nlimits);
/* The same with a [store] section of "key = value" lines STORE (NULL: none, SQLite). */
int relayctl_start_store(struct relayctl *r, const char *bin, const char *const *limits,
                         size_t nlimits, const char *store);

/* The same as node of a relay whose key file is KEY_FROM (copied into the new data dir before
 * the start): STORE names the shared database and this node's `node = K`. */
int relayctl_start_node(struct relayctl *r, const char *bin, const char *const *limits,
                        size_t nlimits, const char *store, const char *key_from);

/* Stops the relay (SIGTERM, then SIGKILL after 10 s) and removes its directory. */
void relayctl_stop(struct relayctl *r);

/* Helpers the mosquitto peer shares: whether something accepts connections on 127.0.0.1:PORT,
 * and `rm -rf DIR`. A free port is loopback_free_port (freeport.h). */
bool relayctl_accepts(uint16_t port);
void relayctl_remove_dir(const char *dir);

/* Processes the peers share. relayctl_exec starts ARGV (ARGV[0] a path) with its output into
 * LOG, or the bench's own when LOG is NULL, and returns its pid or -1. relayctl_spawn does the
 * same and waits until it accepts connections on 127.0.0.1:PORT: its pid, or -1 (stopped and
 * reaped). relayctl_kill stops PID (SIGTERM, then SIGKILL after 10 s) and reaps it. */
pid_t relayctl_exec(char *const argv[], const char *log);
pid_t relayctl_spawn(char *const argv[], const char *log, uint16_t port);
void relayctl_kill(pid_t pid);

/* Finds cairn-relay: PATH if given, else beside this program or in the build tree. */
const char *relayctl_find(const char *path, char *out, size_t cap);
/* The same for any binary: PATH if given, else NAME beside this program, else IN_TREE (a path
 * relative to this program's directory in the build tree). Returns PATH, OUT, or NULL. */
const char *relayctl_find_bin(const char *path, const char *name, const char *in_tree, char *out,
                              size_t cap);

#endif
