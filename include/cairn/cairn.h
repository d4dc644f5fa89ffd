/* SPDX-License-Identifier: MIT */
/*
 * libcairn: the client library. One `struct cairn` is one person's client: an identity, its
 * contacts, conversations and outbox, all kept in one directory sealed under a passphrase.
 * The `cairn` command uses nothing but this header.
 *
 * Every function returns 0 or a negative CAIRN_E* code (cairn/error.h). Strings are UTF-8 and
 * NUL-terminated; message bodies are bytes with a length. Nothing here is thread-safe: use one
 * struct cairn from one thread.
 */
#ifndef CAIRN_CAIRN_H
#define CAIRN_CAIRN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cairn;

#define CAIRN_NAME_MAX          64           /* a contact's local name, bytes */
#define CAIRN_MESSAGE_MAX       (256 * 1024) /* one message's text; split into envelopes */
#define CAIRN_MESSAGE_ID_LEN    16
#define CAIRN_SAFETY_NUMBER_LEN 71 /* 60 digits in 12 groups of 5, spaces between, no NUL */

/* Creates a new client in HOME (a directory, created 0700) sealed under PASSPHRASE: a fresh
 * identity, no contacts. Returns CAIRN_EEXIST if HOME already holds a client. */
CAIRN_WARN_UNUSED int cairn_init(const char *home, const char *passphrase);

/* How hard the passphrase is stretched (Argon2id) before it unlocks a home. */
enum cairn_kdf {
	CAIRN_KDF_MODERATE = 0,    /* 256 MiB: cairn_init's choice */
	CAIRN_KDF_INTERACTIVE = 1, /* 64 MiB: for devices short of memory (and tests); a guess
	                            * at the passphrase costs an attacker with the disk less */
};

/* cairn_init with the passphrase stretched as KDF says (kept for later passphrases too).
 * CAIRN_EINVAL for a KDF not listed above. */
CAIRN_WARN_UNUSED int cairn_init_kdf(const char *home, const char *passphrase, enum cairn_kdf kdf);

/* Opens the client in HOME. Returns CAIRN_ENOTFOUND or CAIRN_EPASSPHRASE (nothing changed). */
CAIRN_WARN_UNUSED int cairn_open(const char *home, const char *passphrase, struct cairn **out);

/* Closes the client and wipes its keys. Accepts NULL. */
void cairn_close(struct cairn *c);

/* Network settings: a SOCKS5 proxy "HOST:PORT" (NULL: direct) and the connect/read timeout. */
CAIRN_WARN_UNUSED int cairn_set_socks(struct cairn *c, const char *hostport);
void cairn_set_timeout(struct cairn *c, int timeout_ms);

#define CAIRN_RELAYS_MAX 4 /* relays one contact can reach this client through */

/*
 * Creates an invite for a contact to be called NAME: a fresh mailbox on each of the NRELAYS
 * relays RELAYS (1..CAIRN_RELAYS_MAX addresses, cairn://..., no relay twice), each secured
 * with a fresh credential, and a one-time key. The contact writes to the first of them that
 * it can reach, in this order. Needs every one of the relays: if one is unreachable, nothing
 * is kept (CAIRN_ECONNECT or CAIRN_ETIMEDOUT). CAIRN_EADDRESS for an address that does not
 * parse, CAIRN_EINVAL for a bad count or a relay named twice (the same key).
 * *INVITE receives the invite text (a cairn-invite: URI; free it with cairn_free). The invite
 * is a secret: it travels in person (QR) or over a channel already trusted.
 */
CAIRN_WARN_UNUSED int cairn_invite_create(struct cairn *c, const char *const *relays,
                                          size_t nrelays, const char *name, char **invite);

/*
 * Accepts INVITE and adds its creator as contact NAME. Creates this client's own mailboxes
 * for the contact on the NRELAYS relays RELAYS (NRELAYS 0: the relays the invite names), on
 * every one that answers, then sends the first message. If none of them answers, nothing is
 * added (CAIRN_ECONNECT or CAIRN_ETIMEDOUT). If only the inviter's relays are unreachable,
 * the contact is added and the first message stays in the outbox for the next sync (also
 * CAIRN_ECONNECT: cairn_safety_number tells the two apart). CAIRN_EINVITE for a malformed
 * invite; CAIRN_EADDRESS / CAIRN_EINVAL for RELAYS as in cairn_invite_create; CAIRN_ETOOBIG
 * when the relay addresses are too long together to name in the first message.
 */
CAIRN_WARN_UNUSED int cairn_invite_accept(struct cairn *c, const char *invite, const char *name,
                                          const char *const *relays, size_t nrelays);

/*
 * Queues a message of LEN bytes to contact NAME and tries to send it. Stored in the outbox
 * before anything is sent. Returns 0 when a relay accepted it (the first of the contact's
 * relays that answers), CAIRN_ECONNECT when it stays queued for the next sync, send or
 * listen.
 * ID (may be NULL) receives the message id.
 */
CAIRN_WARN_UNUSED int cairn_send(struct cairn *c, const char *name, const uint8_t *text, size_t len,
                                 uint8_t id[CAIRN_MESSAGE_ID_LEN]);

/* One message of a conversation, borrowed for the duration of a callback. */
struct cairn_message {
	const char *contact;
	int outgoing;        /* 1: sent by this client */
	const uint8_t *text; /* not NUL-terminated */
	size_t len;
	int64_t sent_at;     /* sender's clock, seconds since the epoch */
	int64_t received_at; /* 0 for outgoing messages not yet accepted by the relay */
	uint8_t id[CAIRN_MESSAGE_ID_LEN];
};
typedef int (*cairn_message_cb)(void *ctx, const struct cairn_message *m);

struct cairn_sync_result {
	unsigned received; /* new messages stored */
	unsigned sent;     /* outbox messages a relay accepted (counted once, whichever relay) */
	unsigned pending;  /* still in the outbox */
	unsigned relays_failed; /* connections that could not be made or broke */
};

/*
 * Connects to every relay this client uses, sends the outbox, fetches, decrypts and stores
 * every waiting envelope on every one of our mailboxes (acknowledging each only after it is
 * stored), and disconnects. ON_MESSAGE (may be NULL) is called for each new incoming message.
 * Returns CAIRN_ECONNECT when some relay could not be reached; RESULT is filled either way,
 * and a message any relay accepted counts as sent. A delivery that could not be stored here
 * (CAIRN_EIO, CAIRN_ENOMEM, ...) is returned as that code: it was not acknowledged, and stays
 * on its relay for the next sync.
 */
CAIRN_WARN_UNUSED int cairn_sync(struct cairn *c, struct cairn_sync_result *result,
                                 cairn_message_cb on_message, void *ctx);

/*
 * Like cairn_sync, but stays connected and calls ON_MESSAGE as messages arrive, until *STOP
 * becomes non-zero (checked at least once a second). Reconnects with backoff.
 */
CAIRN_WARN_UNUSED int cairn_listen(struct cairn *c, cairn_message_cb on_message, void *ctx,
                                   volatile sig_atomic_t *stop);

/* Calls CB for each message with contact NAME, oldest first. */
CAIRN_WARN_UNUSED int cairn_read(struct cairn *c, const char *name, cairn_message_cb cb, void *ctx);

struct cairn_contact {
	const char *name;
	int established; /* 1 once the first message exchange completed */
	unsigned unread;
};
typedef int (*cairn_contact_cb)(void *ctx, const struct cairn_contact *contact);

/* Calls CB for each contact, in the order they were added. */
CAIRN_WARN_UNUSED int cairn_contacts(struct cairn *c, cairn_contact_cb cb, void *ctx);

/*
 * Renames contact OLD_NAME to NEW_NAME. Only the label changes: the conversation, its unread
 * count and anything still in the outbox stay with the contact. CAIRN_ENOTFOUND if there is
 * no OLD_NAME, CAIRN_EEXIST if NEW_NAME is taken, CAIRN_EINVAL if it is empty or longer than
 * CAIRN_NAME_MAX. Renaming to the same name changes nothing.
 */
CAIRN_WARN_UNUSED int cairn_rename(struct cairn *c, const char *old_name, const char *new_name);

/* The safety number shared with contact NAME: the same on both sides when no one is in the
 * middle. OUT receives CAIRN_SAFETY_NUMBER_LEN characters and a NUL. */
CAIRN_WARN_UNUSED int cairn_safety_number(struct cairn *c, const char *name,
                                          char out[CAIRN_SAFETY_NUMBER_LEN + 1]);

/* Frees a string returned by libcairn (wiped first). Accepts NULL. */
void cairn_free(char *s);

#ifdef __cplusplus
}
#endif
#endif
