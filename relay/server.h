/* SPDX-License-Identifier: MIT */
/*
 * The relay server: one libuv loop (network, Noise, parsing, mailbox logic) and one storage
 * thread. relay_server_run() returns when a SIGTERM or SIGINT has been handled: pending
 * commits finished, clients told, everything closed.
 */
#ifndef CAIRN_RELAY_SERVER_H
#define CAIRN_RELAY_SERVER_H

#include <stdint.h>

#include "cairn/limits.h"
#include "config.h"

/*
 * Binds, opens the store under CFG->data_dir, drops privileges if CFG->user is set, and
 * serves until a terminating signal. Returns 0 on a clean shutdown, else a CAIRN_E code after
 * logging why (port in use, store not writable, ...). Borrows the keys for its lifetime.
 */
int relay_server_run(const struct relay_config *cfg, const uint8_t private_key[static CAIRN_KEY_LEN],
		     const uint8_t public_key[static CAIRN_KEY_LEN]);

#endif
