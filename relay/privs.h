/* SPDX-License-Identifier: MIT */
/*
 * Process hardening for a relay that holds a long-term key and users' envelopes in memory: no
 * core dumps, and root dropped for an unprivileged user once the port is bound and the store
 * is open.
 */
#ifndef CAIRN_RELAY_PRIVS_H
#define CAIRN_RELAY_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

/* Disables core dumps (RLIMIT_CORE 0, not dumpable), so a crash never writes keys or
 * envelopes to disk. Best effort: call first thing in main. */
void relay_harden_process(void);

/*
 * Checks, before anything is bound, that USER can be switched to: it exists, it is not uid 0,
 * and the process is root (or already runs as USER). Sets *UID and *GID (each may be NULL).
 * Returns 0 or CAIRN_EINVAL with a message in ERR.
 */
int relay_user_check(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errcap);

/*
 * Switches the process (every thread) to USER: its supplementary groups, gid, then uid, and
 * verifies that root cannot be regained. Already running as USER is a success. Returns 0 or
 * CAIRN_EINVAL (no such user, not root) / CAIRN_EIO (a system call failed) with a message in
 * ERR; on failure the caller must not serve.
 */
int relay_drop_privileges(const char *user, char *err, size_t errcap);

#endif
