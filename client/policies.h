/* SPDX-License-Identifier: MIT */
/*
 * Relay policies held by the client (docs/PROTOCOL.md 5.13; policies.c): per relay key, the
 * last verified body and signature, when it was learned, and a notice of a change or a
 * withdrawal not yet shown to the user. The engine asks each relay that holds our mailboxes
 * with the digest it holds and hands the answer here; `cairn relay info` asks afresh.
 */
#ifndef CAIRN_CLIENT_POLICIES_H
#define CAIRN_CLIENT_POLICIES_H

#include <stdbool.h>
#include <stdint.h>

#include "cairn/error.h"

struct cairn;
struct cairn_msg;

enum { REC_POLICY = 51 }; /* key: the relay's 32-byte key; value: policies.c's record */

/*
 * The POLICY command for the relay at RELAY (address text) into *M, with REQUEST_ID and the
 * digest of the body held for its key (in HAVE, which M borrows) or nil. Returns 0, or an
 * error reading the store (the command is then sent with nil).
 */
int client_policy_command(struct cairn *c, const char *relay, uint32_t request_id, uint8_t have[32],
                          struct cairn_msg *m);

/*
 * The answer REPLY (OK, POLICY, or ERROR) to that command from RELAY: verified against the key
 * in RELAY and stored in one transaction, with a notice when it replaces or withdraws one
 * held. Returns 0; CAIRN_EAUTH or a decode code when a body does not verify (nothing stored);
 * or a store error.
 */
int client_policy_answer(struct cairn *c, const char *relay, const struct cairn_msg *reply);

#endif
