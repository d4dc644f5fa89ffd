/* SPDX-License-Identifier: MIT */
/*
 * libcairn internals shared by cairn.c (identity, invites, sending, reading) and sync.c (relay
 * sessions: delivering the outbox, receiving envelopes). Not part of the public API.
 */
#ifndef CAIRN_CLIENT_CLIENT_H
#define CAIRN_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/cairn.h"
#include "net.h"
#include "records.h"
#include "state.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 15000

struct cairn {
	struct cstate *st;
	uint8_t *identity_sk; /* sodium_malloc'd, 64 bytes */
	uint8_t identity_pk[X3DH_IDENTITY_PK_LEN];
	char socks[CAIRN_ADDRESS_MAX + 1];
	int timeout_ms;
};

/* Connects to the relay named by RELAY (address text) with the client's network settings. */
CAIRN_WARN_UNUSED int client_connect(struct cairn *c, const char *relay, struct cnet **out);

/* Loads contact NAME (CAIRN_ENOTFOUND if none) / stores it (inside the caller's transaction). */
CAIRN_WARN_UNUSED int client_load_contact(struct cairn *c, const char *name, struct contact *k);
CAIRN_WARN_UNUSED int client_store_contact(struct cairn *c, const struct contact *k);

/* Sends M on N and waits for its reply (events in between are not expected here: use only
 * before subscribing). Returns 0, the ERROR code, or a transport error. */
CAIRN_WARN_UNUSED int client_call(struct cairn *c, struct cnet *n, struct cairn_msg *m,
				  struct cairn_msg *reply);

/* The AUTH signature for mailbox MB on connection N. */
void client_auth_signature(const struct cnet *n, const struct my_mailbox *mb, uint8_t sig[64]);

/* Stores the message with id ID from K (incoming) or to K (outgoing), once. Returns 1 if it was
 * new, 0 if a duplicate, or a negative code. Inside the caller's transaction. */
int client_store_message(struct cairn *c, const struct contact *k, int outgoing,
			 const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, int64_t received_at,
			 const uint8_t *text, size_t len);

/*
 * Connects to every relay with work (our mailboxes, outbox entries), sends the outbox and
 * receives what waits. With STOP NULL it returns once every relay is drained (sync); else it
 * stays connected until *STOP (listen).
 */
CAIRN_WARN_UNUSED int client_run(struct cairn *c, struct cairn_sync_result *result,
				 cairn_message_cb on_message, void *ctx,
				 volatile sig_atomic_t *stop, bool receive);

#endif
