/* SPDX-License-Identifier: MIT */
/*
 * Real haproxy (Debian's /usr/sbin/haproxy) for the tests of several relay nodes behind one
 * address (docs/SCALING.md section 4): TCP mode, in the foreground, from a scratch config in a
 * directory of its own, listening on a free loopback port in front of N backends on 127.0.0.1.
 * Every backend is health-checked (a TCP connect every HAPROXYPROC_INTER_MS, down after two
 * failures, up after two successes), and a backend marked down has its sessions cut at once
 * (on-marked-down shutdown-sessions), so the clients of a dead node reconnect through the
 * balancer to another. The stats socket (admin level) says which backends are up.
 *
 * A haproxy the test forgot is stopped at the test process's exit.
 */
#ifndef CAIRN_TEST_HAPROXYPROC_H
#define CAIRN_TEST_HAPROXYPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HAPROXYPROC_MAX      8   /* backends */
#define HAPROXYPROC_INTER_MS 200 /* health check interval */

struct haproxyproc {
	pid_t pid;     /* 0 when not running */
	char dir[256]; /* haproxy.cfg, admin.sock, haproxy.log */
	uint16_t port; /* the balancer's port on 127.0.0.1 */
	size_t n;      /* backends, named n1..nN in the config */
};

/*
 * Writes the config for a balancer on 127.0.0.1:PORT in front of the N backends
 * 127.0.0.1:PORTS[i], balanced by BALANCE ("leastconn" or "roundrobin"), with its stats socket
 * at SOCK, into OUT (capacity CAP). The text an operator copies (docs/OPERATING.md). Returns
 * its length, or -1 if it does not fit.
 */
int haproxyproc_config(char *out, size_t cap, uint16_t port, const uint16_t *ports, size_t n,
                       const char *balance, const char *sock);

/*
 * Starts haproxy in front of the N backends at PORTS (1..HAPROXYPROC_MAX) with BALANCE, and
 * waits (10 s at most) until its port accepts connections and its stats socket answers.
 * Backends need not be up yet (haproxyproc_wait). Returns 0; 1 if haproxy is not installed
 * (the reason on stderr: the caller skips); -1 on any other failure (haproxy's log on stderr).
 */
int haproxyproc_start(struct haproxyproc *h, const uint16_t *ports, size_t n, const char *balance);

/* Reads which backends haproxy holds up now (UP[i] for backend i, N of them) from its stats
 * socket. Returns how many are up, or -1 if the socket did not answer. */
int haproxyproc_up(const struct haproxyproc *h, bool up[HAPROXYPROC_MAX]);

/* Waits up to TIMEOUT_MS until backend I (0-based) is up (WANT true) or down. Returns the
 * milliseconds it took, or -1 on timeout. */
long haproxyproc_wait(const struct haproxyproc *h, size_t i, bool want, int timeout_ms);

/* Stops haproxy (SIGTERM, then SIGKILL after 5 s) and removes its directory. Does nothing
 * when not started. */
void haproxyproc_stop(struct haproxyproc *h);

#endif
