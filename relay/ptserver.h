/* SPDX-License-Identifier: MIT */
/*
 * obfs4proxy as the relay's managed server transport (docs/PROTOCOL.md section 7.3, Tor's
 * pluggable transport specification version 1), when the configuration has [obfs4] listen: it
 * listens there, unwraps obfs4 and passes the stream to the relay's own listener
 * (TOR_PT_ORPORT), with its state (its identity, the cert users need) in DATA/obfs4. If it
 * exits, it is logged and started again after a pause; the relay stops it when it shuts down.
 * `cairn-relay address --obfs4` prints the address from that state (ptserver_address).
 */
#ifndef CAIRN_RELAY_PTSERVER_H
#define CAIRN_RELAY_PTSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cairn/address.h"
#include "config.h"

struct ptserver;

/*
 * Starts obfs4proxy ($CAIRN_OBFS4PROXY, else obfs4proxy from PATH) on LOOP for CFG (borrowed
 * for the server's lifetime). Returns the new server (owned: ptserver_stop, then
 * ptserver_free after the loop has closed its handles) or NULL, logged, when it cannot.
 * Failures after the start (ENV-ERROR, SMETHOD-ERROR, an exit) are logged as errors.
 */
struct ptserver *ptserver_start(uv_loop_t *loop, const struct relay_config *cfg);

/* Stops it for good: SIGTERM, its stdin closed (TOR_PT_EXIT_ON_STDIN_CLOSE), its handles
 * closed. Accepts NULL. */
void ptserver_stop(struct ptserver *pt);

/* Frees PT once the loop ran the close callbacks. Accepts NULL. */
void ptserver_free(struct ptserver *pt);

/*
 * Fills *A with the obfs4 address of the relay whose public key is PUB: the cert and iat-mode
 * from DATA/obfs4/obfs4_bridgeline.txt (written by obfs4proxy at its first start), the host
 * HOST (or [obfs4] listen's) and [obfs4] listen's port. Returns 0, CAIRN_ENOTFOUND (no bridge
 * line yet: run the relay once), CAIRN_EINVAL ([obfs4] off, or a host that is no address) or
 * CAIRN_ECORRUPT (the bridge line is not what obfs4proxy writes).
 */
int ptserver_address(const struct relay_config *cfg, const char *host,
                     const uint8_t pub[static CAIRN_KEY_LEN], struct cairn_address *a);

#endif
