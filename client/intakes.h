/* SPDX-License-Identifier: MIT */
/*
 * The owner's side of intake addresses (PROTOCOL.md 10): the intake record (its address's
 * mailboxes and bundle logs on each relay, during a rotation's grace the old ones too, its
 * prekeys), the ephemeral keys of first messages seen per prekey, blocked identities and the
 * request counters, with their layouts (intake_rec.c), the relay work (intake.c) and receiving
 * and deciding requests (requests.c). Not part of the public API.
 *
 * Intake labels are a namespace of their own, not the name index (names.c): an intake is not
 * something one sends to or reads, so it must not take a contact's or a group's name.
 */
#ifndef CAIRN_CLIENT_INTAKES_H
#define CAIRN_CLIENT_INTAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "intake.h"

enum intake_record_kind {
	REC_INTAKE = 40,       /* key: intake id; struct intake */
	REC_INTAKE_EK = 41,    /* key: prekey || EK; scope: prekey; value: struct intake_ek */
	REC_INTAKE_BLOCK = 42, /* key: a blocked identity key; value: one byte */
	REC_INTAKE_META = 43,  /* key "requests": pending (u32) || dropped (u64) */
};

#define INTAKE_PREKEYS_MAX    6 /* made every 7 days, each kept 21 days */
#define INTAKE_DEFAULT_BITS   20
#define INTAKE_REQUESTS_MAX   10000
#define INTAKE_DAY            86400
#define INTAKE_PREKEY_EVERY   (7 * INTAKE_DAY)  /* a new prekey after this */
#define INTAKE_PREKEY_LIFE    (14 * INTAKE_DAY) /* a bundle's expires - created */
#define INTAKE_PREKEY_KEEP    (7 * INTAKE_DAY)  /* the private key outlives expires by this */
#define INTAKE_REAPPEND_EVERY (7 * INTAKE_DAY)  /* the bundle again before log entries expire */
#define INTAKE_GRACE_DEFAULT  (7 * INTAKE_DAY)
#define INTAKE_META_KEY       "requests"
#define INTAKE_REQUEST_ID_LEN 16 /* hex characters: the first 8 bytes of the contact id */

/* One relay of an address: the intake mailbox (MB: relay, ids, signing key) and the bundle
 * log with its credential and delete secret. */
struct intake_box {
	struct my_mailbox mb;
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t log_cred[CAIRN_CREDENTIAL_LEN];
	uint8_t log_del[CAIRN_CREDENTIAL_LEN];
};

struct intake_prekey {
	uint8_t pub[CAIRN_KEY_LEN];
	uint8_t priv[CAIRN_KEY_LEN];
	int64_t created, expires;
};

struct intake {
	uint8_t id[RECORD_ID_LEN];
	char label[CAIRN_NAME_MAX + 1];
	uint8_t work_bits;
	uint8_t n; /* the current address's relays */
	struct intake_box cur[CAIRN_MAILBOXES_MAX];
	uint8_t nold; /* a rotated address, kept until OLD_UNTIL */
	struct intake_box old[CAIRN_MAILBOXES_MAX];
	int64_t old_until;
	uint8_t nprekeys; /* oldest first */
	struct intake_prekey pk[INTAKE_PREKEYS_MAX];
	int64_t appended_at;     /* the latest bundle append to every current log */
	uint8_t appended_bits;   /* the work_bits it carried */
	uint8_t appended_prekey; /* 1 once the newest prekey's bundle is in every current log */
};

/* An ephemeral key of a first message: the request (or contact) it started, or rejected. */
enum intake_ek_kind { INTAKE_EK_CONTACT = 1, INTAKE_EK_REJECTED = 2 };
struct intake_ek {
	uint8_t kind;
	uint8_t contact[RECORD_ID_LEN];
};

/* ---- records (intake_rec.c) ---- */

/* Serializes / parses an intake record (*OUT malloc'd: the caller wipes and frees it).
 * Parse returns 0 or CAIRN_ECORRUPT. */
CAIRN_WARN_UNUSED int intake_record_encode(const struct intake *in, uint8_t **out, size_t *len);
CAIRN_WARN_UNUSED int intake_record_parse(const uint8_t *b, size_t len, struct intake *in);

/* Loads intake ID / the intake labelled LABEL (CAIRN_ENOTFOUND); stores IN under its id
 * (inside the caller's transaction, if any); deletes intake ID. */
CAIRN_WARN_UNUSED int intake_load(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                  struct intake *in);
CAIRN_WARN_UNUSED int intake_find(struct cairn *c, const char *label, struct intake *in);
CAIRN_WARN_UNUSED int intake_store(struct cairn *c, const struct intake *in);

/* Calls CB for each intake (borrowed), in creation order; a non-zero return stops the walk
 * and is returned. */
typedef int (*intake_cb)(void *ctx, const struct intake *in);
CAIRN_WARN_UNUSED int intake_each(struct cairn *c, intake_cb cb, void *ctx);

/* The EK record of (PREKEY, EK): 0 and *OUT, CAIRN_ENOTFOUND or a store error. */
CAIRN_WARN_UNUSED int intake_ek_get(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN],
                                    const uint8_t ek[CAIRN_KEY_LEN], struct intake_ek *out);
CAIRN_WARN_UNUSED int intake_ek_put(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN],
                                    const uint8_t ek[CAIRN_KEY_LEN], const struct intake_ek *e);
/* Deletes every EK record of PREKEY (its private key is gone). */
CAIRN_WARN_UNUSED int intake_ek_drop_prekey(struct cairn *c, const uint8_t prekey[CAIRN_KEY_LEN]);

/* Whether IDENTITY is blocked (1, 0, or a store error); blocks it. */
CAIRN_WARN_UNUSED int intake_blocked(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN]);
CAIRN_WARN_UNUSED int intake_block(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN]);

/* The request counters: pending requests and first messages dropped because there were
 * INTAKE_REQUESTS_MAX of them. Get never fails on a missing record (zeros). */
CAIRN_WARN_UNUSED int intake_meta_get(struct cairn *c, uint32_t *pending, uint64_t *dropped);
CAIRN_WARN_UNUSED int intake_meta_put(struct cairn *c, uint32_t pending, uint64_t dropped);

/* Wipes IN (keys). */
void intake_wipe(struct intake *in);

/* ---- relay work and periodic duties (intake.c) ---- */

/* What the clock asks of every intake (PROTOCOL.md 10.3, 10.7): a new prekey every 7 days,
 * the bundle appended again when it changed or is a week old, expired prekeys deleted with
 * their EK sets, a rotated address's old mailboxes and logs deleted after its grace. Needs
 * the relays (blocking, connections of its own); what fails is tried at the next call.
 * Returns 0 or a local (store) error. */
CAIRN_WARN_UNUSED int client_intake_sync(struct cairn *c);

/* The same without waiting for any relay, for the engine's tick: the prekeys as above, and a
 * bundle that is due goes into the group outbox for every current log (logio.c carries it).
 * A rotated address's old mailboxes and logs wait for a sync or
 * listen (client_intake_sync). Returns 0 or a local error. */
CAIRN_WARN_UNUSED int client_intake_tick(struct cairn *c);

/* ---- receiving (requests.c) ---- */

/*
 * An envelope that arrived in intake INTAKE's mailbox RECIPIENT_ID (PROTOCOL.md 10.4, 10.6):
 * in one store transaction, a type 3 envelope is opened with the session its EK started, or
 * becomes a new request; anything else is dropped. Returns 0 when the envelope may be
 * acknowledged (stored or dropped) or a negative code when it must stay on the relay. As
 * client_receive_envelope otherwise.
 */
CAIRN_WARN_UNUSED int client_receive_intake(struct cairn *c, const uint8_t intake[RECORD_ID_LEN],
                                            const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN],
                                            const uint8_t *env, size_t len,
                                            cairn_message_cb on_message, void *ctx,
                                            struct receive_effects *fx);

/* The intake mailbox RECIPIENT_ID of intake ID (current or old) into *MB: 0 or
 * CAIRN_ENOTFOUND (for the engine's AUTH). */
CAIRN_WARN_UNUSED int intake_mailbox(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                     const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN],
                                     struct my_mailbox *mb);

#endif
