/* SPDX-License-Identifier: MIT */
/*
 * The client's records and their byte layouts inside the sealed state store (state.h): the
 * identity, contacts (with their mailboxes and ours, and the ratchet), conversations, the name
 * index, stored messages, outbox entries and parts of messages still being reassembled.
 *
 * Identities, not names: every contact and every conversation has a random 16-byte id that
 * never changes. Messages, parts and outbox entries are keyed by their conversation's id, and
 * a conversation's messages are one store scope (listed without touching any other's). A name
 * is a label found through the name index; renaming changes the label and nothing else. A
 * conversation is 1:1 (one member, the contact whose record names it) or a group (many
 * members, one history): the layout holds both. Homes written before ids (records_v1.h) are
 * rewritten on first open (upgrade.c). Parsing is strict even though the store is
 * authenticated: a record from an older or damaged client must fail cleanly, never crash.
 */
#ifndef CAIRN_CLIENT_RECORDS_H
#define CAIRN_CLIENT_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appmsg.h"
#include "cairn/address.h"
#include "cairn/cairn.h"
#include "group_io.h"
#include "x3dh.h"

/*
 * Record kinds are one number space shared by several headers; a kind used twice would mix two
 * layouts under one listing. Taken: 1-9 and 70 here, 10-39 group.h, 40-49 intakes.h, 50
 * routes.h, 51 policies.h, 60-69 files.h. test_client_records checks that no two are equal.
 */
enum record_kind {
	REC_IDENTITY = 1,     /* key "self": the identity secret key */
	REC_CONTACT = 2,      /* key: contact id */
	REC_MESSAGE = 3,      /* key: conversation id || message id; scope: conversation id */
	REC_OUTBOX = 4,       /* key: a random outbox id */
	REC_PART = 5,         /* key: conversation id || message id || part index (u16) */
	REC_CONVERSATION = 6, /* key: conversation id */
	REC_NAME = 7,         /* key: a name; value: what it names (name_entry) */
	REC_META = 8,         /* key "model": the data model version (one byte) */
	REC_GROUP_OUT = 9,    /* key: a random out id; the group outbox (group_io.h) */
	/* Disappearing messages (timer.c): one per message (or message still in parts) stored
	 * under a timer; key: conversation id || message id; value: expiry_entry. */
	REC_EXPIRY = 70,
};

#define RECORD_ID_LEN   16 /* contact and conversation ids */
#define RECORD_MODEL    3  /* 1: keyed by names (records_v1.h); 2: ids; 3: groups' names indexed */
#define RECORD_META_KEY "model"

enum contact_state {
	CONTACT_INVITED = 1,     /* we invited; waiting for their first message */
	CONTACT_ACCEPTED = 2,    /* we accepted; they have not answered yet */
	CONTACT_ESTABLISHED = 3, /* both sides hold the session */
	CONTACT_REQUEST = 4,     /* a first contact through our intake address (PROTOCOL.md 10.6):
	                          * not a contact until accepted; no name, nothing sent to them */
};

/* Room for our current mailboxes for one contact and, while we move out of them, the invite
 * mailboxes they replace. */
#define CONTACT_MINE_MAX (2 * CAIRN_MAILBOXES_MAX)

enum my_mailbox_flag {
	MAILBOX_INVITE = 1,  /* named by our invite (docs/PROTOCOL.md section 8.10) */
	MAILBOX_RETIRED = 2, /* replaced by a fresh one; deleted once the contact writes there */
	MAILBOX_INTAKE = 4, /* a copy of our intake mailbox (no keys): shared, never deleted here */
};

/* A mailbox of ours: where this contact writes to us. */
struct my_mailbox {
	char relay[CAIRN_ADDRESS_MAX + 1];
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sign_sk[64]; /* Ed25519: proves ownership to the relay */
	uint8_t credential[CAIRN_CREDENTIAL_LEN];
	uint8_t flags; /* enum my_mailbox_flag */
};

/* Moving a contact out of our invite mailboxes (docs/PROTOCOL.md section 8.10). */
enum contact_move {
	MOVE_NONE = 0,      /* nothing to do: we accepted, or the invite mailboxes are gone */
	MOVE_WANTED = 1,    /* they answered our invite: fresh mailboxes to create and announce */
	MOVE_SENT = 2,      /* announced; the old ones wait for a message on a fresh one */
	MOVE_CONFIRMED = 3, /* they write to the fresh ones: delete the retired mailboxes */
};

struct contact {
	uint8_t id[RECORD_ID_LEN];
	uint8_t conv[RECORD_ID_LEN];   /* our 1:1 conversation with them */
	char name[CAIRN_NAME_MAX + 1]; /* the label; the name index points here */
	uint8_t state;
	uint8_t peer_identity[X3DH_IDENTITY_PK_LEN]; /* zero while INVITED */
	uint8_t nmine;
	struct my_mailbox mine[CONTACT_MINE_MAX]; /* in the order we announced them */
	struct mailbox_list peer;                 /* theirs, in order; count 0 while INVITED */
	uint8_t move;                             /* enum contact_move */
	uint32_t my_serial;                       /* of the last mailboxes message we sent */
	uint32_t peer_serial;                     /* of the last one we applied */
	struct x3dh_onetime onetime;              /* INVITED only */
	uint8_t prefix[X3DH_PREFIX_LEN];          /* ACCEPTED only */
	uint8_t *ratchet;                         /* serialized state, owned; NULL while INVITED */
	size_t ratchet_len;
	/* Intake (PROTOCOL.md 10). Ours to them: PEER's mailbox I is an intake mailbox while
	 * PEER_WORK_BITS[I] is not 0 (SEND_WORK, that many bits), whose bundle log is
	 * PEER_LOG_ID[I]. Theirs to us: INTAKE is the id of our intake they came through (zero
	 * if none), and the ephemeral key of their first message is EK. */
	uint8_t peer_work_bits[CAIRN_MAILBOXES_MAX];
	uint8_t peer_log_id[CAIRN_MAILBOXES_MAX][CAIRN_LOG_ID_LEN];
	uint8_t intake[RECORD_ID_LEN];
	uint8_t ek[CAIRN_KEY_LEN];
};

/* The intake trailer of an encoded contact: a record from before intake addresses ends before
 * it, reads with those fields zero, and is written back with it. */
#define CONTACT_INTAKE_TRAILER_LEN                                                                 \
	(CAIRN_MAILBOXES_MAX * (1 + CAIRN_LOG_ID_LEN) + RECORD_ID_LEN + CAIRN_KEY_LEN)

/* Serializes C into a malloc'd buffer (*OUT, *LEN); the caller wipes and frees it. */
CAIRN_WARN_UNUSED int contact_encode(const struct contact *c, uint8_t **out, size_t *len);
/* Parses IN into C (C->ratchet malloc'd). Returns 0 or CAIRN_ECORRUPT. */
CAIRN_WARN_UNUSED int contact_parse(const uint8_t *in, size_t len, struct contact *c);
/* Wipes C and frees what it owns. */
void contact_wipe(struct contact *c);

/* The conversation a contact or group is: unread counts live here, one per history. */
enum conversation_kind {
	CONV_DIRECT = 1, /* one member: the contact */
	CONV_GROUP = 2,  /* many members */
};
#define CONV_MEMBERS_MAX 1024

struct conversation {
	uint8_t id[RECORD_ID_LEN];
	uint8_t kind; /* enum conversation_kind */
	char label[CAIRN_NAME_MAX + 1];
	uint32_t unread;
	uint32_t nmembers;
	uint8_t (*members)[RECORD_ID_LEN]; /* contact ids, malloc'd */
	/* The timer (PROTOCOL.md 8.11): seconds, 0 off, and the timer message that set it, the
	 * last in the order (sent_at, id); all zero when none was ever sent or received. A record
	 * from before timers ends before them (the timer trailer) and reads with them zero. */
	uint32_t timer;
	uint64_t timer_sent_at;
	uint8_t timer_id[APPMSG_ID_LEN];
};

CAIRN_WARN_UNUSED int conversation_encode(const struct conversation *v, uint8_t **out, size_t *len);
/* Parses IN into V (V->members malloc'd). Returns 0, CAIRN_ECORRUPT or CAIRN_ENOMEM. */
CAIRN_WARN_UNUSED int conversation_parse(const uint8_t *in, size_t len, struct conversation *v);
void conversation_wipe(struct conversation *v);

/* What a name in the name index stands for. */
enum name_kind {
	NAME_CONTACT = 1,
	NAME_CONVERSATION = 2, /* a conversation of no one (upgrade.c's orphans) */
	NAME_GROUP = 3,        /* a group: ID is its group id (GROUP_ID_LEN == RECORD_ID_LEN) */
};
struct name_entry {
	uint8_t kind; /* enum name_kind */
	uint8_t id[RECORD_ID_LEN];
};
#define NAME_ENTRY_LEN (2 + RECORD_ID_LEN)
void name_entry_encode(const struct name_entry *n, uint8_t out[static NAME_ENTRY_LEN]);
CAIRN_WARN_UNUSED int name_entry_parse(const uint8_t *in, size_t len, struct name_entry *n);

struct stored_message {
	uint8_t conv[RECORD_ID_LEN];
	uint8_t sender[RECORD_ID_LEN]; /* the contact who wrote it; zero for our own */
	uint8_t outgoing;
	int64_t sent_at, received_at;
	uint8_t id[APPMSG_ID_LEN];
	const uint8_t *text; /* borrowed from the buffer parsed, or the caller's when encoding */
	size_t len;
	/* The timer trailer (a record from before timers ends before it: a text that never
	 * expires). KIND: APPMSG_TEXT, or APPMSG_TIMER (TEXT is then the 4 bytes of its data);
	 * 0 is read as a text. EXPIRES_AT: our clock's second when it is deleted, 0 never. */
	uint8_t kind;
	int64_t expires_at;
};

CAIRN_WARN_UNUSED int message_encode(const struct stored_message *m, uint8_t **out, size_t *len);
CAIRN_WARN_UNUSED int message_parse(const uint8_t *in, size_t len, struct stored_message *m);

/*
 * An envelope waiting to be sent: sealed once, resent unchanged until a relay says OK. It goes
 * to the contact's mailboxes as they are when it is sent, not as they were when it was sealed,
 * so a mailboxes message that arrives meanwhile redirects it.
 */
struct outbox_entry {
	uint8_t conv[RECORD_ID_LEN];    /* the conversation it belongs to */
	uint8_t contact[RECORD_ID_LEN]; /* the member it goes to */
	uint8_t message_id[APPMSG_ID_LEN];
	uint8_t outbox_id[16];
	uint8_t kind;            /* the application message kind (APPMSG_*) */
	const uint8_t *envelope; /* borrowed */
	size_t envelope_len;
};

CAIRN_WARN_UNUSED int outbox_encode(const struct outbox_entry *e, uint8_t **out, size_t *len);
CAIRN_WARN_UNUSED int outbox_parse(const uint8_t *in, size_t len, struct outbox_entry *e);

/*
 * An item of the group outbox (group_io.h, group_out.c): a command for a group log, queued by
 * the group's state inside its transaction and carried by the transport (logio.c) until the
 * relay confirms it. Items are listed in queue order (the store's insertion order).
 */
enum group_out_op {
	GROUP_OUT_CREATE = 1, /* LOG_CREATE: digest_a = credential digest, digest_b = delete */
	GROUP_OUT_APPEND = 2, /* LOG_APPEND of entry with log.credential */
	GROUP_OUT_DELETE = 3, /* LOG_DELETE: digest_a = the delete secret */
};
struct group_out_item {
	uint8_t out_id[16];
	uint8_t op; /* enum group_out_op */
	struct group_log_ref log;
	uint8_t digest_a[CAIRN_CREDENTIAL_LEN];
	uint8_t digest_b[CAIRN_CREDENTIAL_LEN];
	const uint8_t *entry; /* APPEND: borrowed from the buffer parsed or the caller's */
	size_t len;
};

CAIRN_WARN_UNUSED int group_out_encode(const struct group_out_item *g, uint8_t **out, size_t *len);
/* Parses IN into G (G->entry borrowed from IN). Returns 0 or CAIRN_ECORRUPT. */
CAIRN_WARN_UNUSED int group_out_parse(const uint8_t *in, size_t len, struct group_out_item *g);

/* The expiry index (REC_EXPIRY): the message ID of conversation CONV is deleted at our
 * clock's EXPIRES_AT (timer.c). */
struct expiry_entry {
	uint8_t conv[RECORD_ID_LEN];
	uint8_t id[APPMSG_ID_LEN];
	int64_t expires_at;
};
#define EXPIRY_ENTRY_LEN (1 + RECORD_ID_LEN + APPMSG_ID_LEN + 8)
void expiry_entry_encode(const struct expiry_entry *x, uint8_t out[static EXPIRY_ENTRY_LEN]);
CAIRN_WARN_UNUSED int expiry_entry_parse(const uint8_t *in, size_t len, struct expiry_entry *x);

/* Record keys: writes the key for (CONV, ID[, INDEX]) into OUT and returns its length. */
size_t message_key(uint8_t *out, const uint8_t conv[static RECORD_ID_LEN],
                   const uint8_t id[static APPMSG_ID_LEN]);
size_t part_key(uint8_t *out, const uint8_t conv[static RECORD_ID_LEN],
                const uint8_t id[static APPMSG_ID_LEN], uint16_t index);
#define RECORD_KEY_MAX (RECORD_ID_LEN + APPMSG_ID_LEN + 2)

#endif
