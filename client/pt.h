/* SPDX-License-Identifier: MIT */
/*
 * The client's obfs4proxy (docs/PROTOCOL.md section 7.3): launched as a managed client
 * transport under Tor's pluggable transport specification, version 1, once per libcairn handle
 * and only when a cairn+obfs4 address is first dialled; or, when CAIRN_OBFS4_SOCKS names one
 * already running ("HOST:PORT" of its SOCKS5 listener), that one. cnet then connects through
 * the listener it announced (net.h's obfs4_socks) with the bridge's arguments as SOCKS5
 * credentials (socks5.h). obfs4 through Tor (obfs4proxy's own upstream proxy) is not supported.
 */
#ifndef CAIRN_CLIENT_PT_H
#define CAIRN_CLIENT_PT_H

#include <stddef.h>
#include <sys/types.h>

#include "cairn/error.h"

/* What obfs4proxy announces: "CMETHOD obfs4 socks5 ADDR:PORT" fits in this with room. */
#define PT_SOCKS_MAX 64
/* How long a launch may wait for obfs4proxy's CMETHOD line when the caller gives no bound. */
#define PT_START_TIMEOUT_MS 10000

struct client_pt {
	pid_t pid;     /* the managed obfs4proxy, or 0 */
	int stdin_fd;  /* its stdin: closing it ends it (TOR_PT_EXIT_ON_STDIN_CLOSE); 0: none */
	int stdout_fd; /* its stdout, read at launch, drained later; 0: none */
	char socks[PT_SOCKS_MAX]; /* its SOCKS5 listener, "ADDR:PORT", or "" */
	char error[128];          /* why the last launch failed, printable ASCII, or "" */
};

/*
 * Makes sure PT has a SOCKS5 listener for obfs4 and returns it (borrowed from PT, valid until
 * client_pt_stop) in *SOCKS. With CAIRN_OBFS4_SOCKS set in the environment, that. Otherwise,
 * if the managed obfs4proxy is running, its listener; if it is not (never started, or it
 * died), launches the program named by CAIRN_OBFS4PROXY, else `obfs4proxy` from PATH, with its
 * state in STATE_DIR (created 0700 if missing; borrowed) and stdout read until it announces
 * its listener.
 *
 * BLOCKING: a launch waits for obfs4proxy's answer, at most TIMEOUT_MS (PT_START_TIMEOUT_MS
 * when 0 or less); it usually takes tens of milliseconds, and happens once per handle. Returns
 * 0, or CAIRN_EPROXY with PT->error saying why (the program could not start, it answered
 * ENV-ERROR, VERSION-ERROR or CMETHOD-ERROR, or exited, or said nothing in time; nothing is
 * left running then), or CAIRN_ENOMEM.
 */
CAIRN_WARN_UNUSED int client_pt_socks(struct client_pt *pt, const char *state_dir, int timeout_ms,
                                      const char **socks);

/* Stops the managed obfs4proxy, if any (stdin closed, SIGTERM, reaped; SIGKILL after 2 s),
 * and clears PT. Accepts a zeroed PT. */
void client_pt_stop(struct client_pt *pt);

#endif
