/* SPDX-License-Identifier: MIT */
/*
 * The seam between the command layer's FORWARD (forwarded.c) and what carries a sealed command
 * to another relay over a connection of the relay's own (outconn.c, docs/PROTOCOL.md 5.11).
 * The command layer sees only this table, kept in struct relay, so it runs in tests without
 * sockets (a NULL carrier: every remote FORWARD is `unreachable`). Loop thread only.
 */
#ifndef CAIRN_RELAY_FWDPORT_H
#define CAIRN_RELAY_FWDPORT_H

#include <stddef.h>
#include <stdint.h>

struct cairn_address;

/* The end of one carried command: RC 0 with the destination's SEALED bytes (REPLY, LEN,
 * borrowed for the call), or CAIRN_EUNREACHABLE (REPLY NULL). */
typedef void (*forward_done_fn)(void *arg, int rc, const uint8_t *reply, size_t len);

struct forward_carrier {
	/*
	 * Sends SEALED (LEN bytes, copied) as FORWARDED to the relay at DEST (a direct address
	 * whose key is not this relay's). Returns 0, after which DONE runs exactly once, later,
	 * on the loop thread (also when the relay stops: CAIRN_EUNREACHABLE); or CAIRN_ELIMIT
	 * (too many destinations or commands waiting), CAIRN_EUNREACHABLE (no way to reach DEST
	 * from here: a name, an onion, no socket) or CAIRN_ENOMEM, and DONE never runs.
	 */
	int (*carry)(void *impl, const struct cairn_address *dest, const uint8_t *sealed,
	             size_t len, forward_done_fn done, void *arg);
	void *impl;
};

#endif
