/* SPDX-License-Identifier: MIT */
/*
 * libcairn internals shared by its modules, which call one way: cairn.c (the public API:
 * identity, invites, sending, reading) over sync.c (the blocking calls, poll() around the
 * engine) over the engine (engine.h, engine_state.h: relay sessions, the outbox's dispatch,
 * moving and retiring mailboxes) over mailbox.c (creating and deleting our mailboxes) and
 * receive.c, over outbox.c (sealing into the outbox), session.c (one relay connection) and
 * contacts.c (contacts, conversations, names); under them the sealed store (state.c), the
 * record layouts (records.c), the connection (net.c over the channel) and the environment
 * (env.c). Not part of the public API.
 */
#ifndef CAIRN_CLIENT_CLIENT_H
#define CAIRN_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/cairn.h"
#include "env.h"
#include "net.h"
#include "pt.h"
#include "records.h"
#include "state.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 15000

struct engine;
struct logio_handler;

struct cairn {
	struct cstate *st;
	uint8_t *identity_sk; /* sodium_malloc'd, 64 bytes */
	uint8_t identity_pk[X3DH_IDENTITY_PK_LEN];
	char socks[CAIRN_ADDRESS_MAX + 1];
	char *home;          /* the home directory (malloc'd): obfs4proxy's state goes under it */
	struct client_pt pt; /* obfs4proxy, launched at the first cairn+obfs4 address (pt.h) */
	int timeout_ms;
	struct client_env env; /* clocks, ids, connecting: env_default() unless a test says */
	struct engine *engine; /* the application's engine (cairn_engine_start), or NULL */
	const struct logio_handler *group_h; /* group logs (group_io.h): NULL, none */
	void *group_ctx;
	struct engine *reporting; /* the receiving engine group messages are reported to */
	/* A sending run's engine saw an intake mailbox refuse our work twice (engine_intake.c):
	 * client_send_now reports CAIRN_EWORK rather than CAIRN_ECONNECT. */
	bool work_refused;
	bool private_routing; /* cairn_set_private_routing: FORWARD through our relays */
	/* Disappearing messages (timer.c): our clock's second of the next expiry (0: none
	 * known), and the monotonic time of the last sweep. */
	int64_t expiry_next;
	int64_t expiry_swept_ms;
	bool expiry_unflushed; /* deleted, the log not yet truncated (cstate_checkpoint) */
};

/* The handler of C's group logs (group_io.h) and its context, borrowed until replaced; NULL:
 * the engine carries no group log. Takes effect when an engine starts (sync, listen,
 * cairn_engine_start). */
void client_set_group_handler(struct cairn *c, const struct logio_handler *h, void *ctx);

/* A new incoming group message (stored, in the store's transaction): counted and reported to
 * the receiving engine's message callback, if one runs (engine_notify.c). */
void client_report_group(struct cairn *c, const struct cairn_message *m);

/* A running engine of C (if any) dispatches the outbox at its next step (engine_notify.c). */
void client_engine_wake(struct cairn *c);

/* Replaces C's environment (tests: a fake clock, counted ids, an in-memory relay). */
void client_set_env(struct cairn *c, const struct client_env *env);

/* The environment's readings, for the modules' convenience. */
static inline int64_t client_now_s(const struct cairn *c)
{
	return c->env.wall_s(c->env.ctx);
}
static inline int64_t client_mono_ms(const struct cairn *c)
{
	return c->env.mono_ms(c->env.ctx);
}
static inline void client_random(const struct cairn *c, void *buf, size_t len)
{
	c->env.random(c->env.ctx, buf, len);
}

/* Connects to the relay named by RELAY (address text) with the client's network settings,
 * waiting until the connection is open (at most the timeout). */
CAIRN_WARN_UNUSED int client_connect(struct cairn *c, const char *relay, struct cnet **out);

/* The same without waiting: *OUT is connecting (cnet_advance, net.h). Except once per handle:
 * the first cairn+obfs4 address starts obfs4proxy and waits for it to listen, at most the
 * timeout (pt.h), as name resolution may wait (env.h). */
CAIRN_WARN_UNUSED int client_connect_start(struct cairn *c, const char *relay, struct cnet **out);

/* ---- contacts, conversations, names (contacts.c) ---- */

/* Whether NAME can be a contact's name: 1 to CAIRN_NAME_MAX bytes. */
int client_valid_name(const char *name);

/* Loads contact NAME through the name index / by its id (CAIRN_ENOTFOUND if none). */
CAIRN_WARN_UNUSED int client_load_contact(struct cairn *c, const char *name, struct contact *k);
CAIRN_WARN_UNUSED int client_load_contact_id(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                             struct contact *k);
/* Stores K under its id (inside the caller's transaction). */
CAIRN_WARN_UNUSED int client_store_contact(struct cairn *c, const struct contact *k);

/* Adds K, a new contact: ids made if zero, its 1:1 conversation (UNREAD unread) and its name,
 * in one transaction; CAIRN_EEXIST if the name is taken meanwhile. */
CAIRN_WARN_UNUSED int client_add_contact(struct cairn *c, struct contact *k, uint32_t unread);

/* ---- the one namespace of contacts and groups (names.c) ---- */

/* Looks NAME up in the name index into N. 0, CAIRN_ENOTFOUND or a store error. */
CAIRN_WARN_UNUSED int client_name_lookup(struct cairn *c, const char *name, struct name_entry *n);
/* Points NAME at (KIND, ID) unless it names anything already (CAIRN_EEXIST; CAIRN_EINVAL for
 * an invalid name). Inside the caller's transaction, which also holds the look-up. */
CAIRN_WARN_UNUSED int client_name_claim(struct cairn *c, const char *name, uint8_t kind,
                                        const uint8_t id[RECORD_ID_LEN]);

/* Model 2 to 3 (upgrade.c): an index entry for every group, under its own name or, when that
 * is taken, group_name_pick's; in the caller's transaction. */
CAIRN_WARN_UNUSED int client_names_upgrade(struct cairn *c);

/* A member's short id (cairn.h's CAIRN_MEMBER_ID_LEN hex characters) from the first bytes of
 * P, an identity key or the id a group message stores for its sender. */
void client_short_id(const uint8_t *p, char out[CAIRN_MEMBER_ID_LEN + 1]);
/* How a stored group message's SENDER (group_sender_id's id) is shown: its contact's name,
 * else its short id. */
void client_group_sender_name(struct cairn *c, const uint8_t sender[RECORD_ID_LEN],
                              char out[CAIRN_NAME_MAX + 1]);

/* Loads / stores a conversation (V->members malloc'd; conversation_wipe). */
CAIRN_WARN_UNUSED int client_load_conversation(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                               struct conversation *v);
CAIRN_WARN_UNUSED int client_store_conversation(struct cairn *c, const struct conversation *v);

/*
 * Rewrites a home of an older data model (1: keyed by names, records_v1.h; 2: groups not in
 * the name index) in the current model, in one transaction, on its first open (upgrade.c);
 * does nothing to a current one. Returns 0 or a
 * negative code (the home is then left as it was).
 */
CAIRN_WARN_UNUSED int client_upgrade(struct cairn *c);

/* Sends M on N and waits for its reply (events in between are not expected here: use only
 * before subscribing). Returns 0, the ERROR code, or a transport error. */
CAIRN_WARN_UNUSED int client_call(struct cairn *c, struct cnet *n, struct cairn_msg *m,
                                  struct cairn_msg *reply);

/* The AUTH signature for mailbox MB on connection N. */
void client_auth_signature(const struct cnet *n, const struct my_mailbox *mb, uint8_t sig[64]);

/* Stores M (conversation, id, sender, text...) once: returns 1 if it was new (an incoming one
 * then counts as unread in its conversation), 0 if its id was stored already, or a negative
 * code. Inside the caller's transaction. */
int client_put_message(struct cairn *c, const struct stored_message *m);

/*
 * Keeps RAW (RAWLEN bytes, opened and checked: AM is its parse), one part of a message of
 * several parts in conversation CONV whose parts hold at most PART_MAX bytes each (a 1:1 and
 * a group part differ), inside the caller's transaction; once every part is there, joins them
 * and deletes the parts. Returns 1 when the message is complete (*TEXT malloc'd, owned by the
 * caller, who wipes and frees it; *LEN bytes), 0 while parts are missing or when the message
 * is dropped (parts that disagree on kind, count or sent_at, a part record that no longer
 * opens, more than CAIRN_MESSAGE_MAX joined), or a negative code: the store failed, and the
 * caller rolls back so that the part is offered again rather than lost.
 */
struct appmsg;
CAIRN_WARN_UNUSED int client_join_parts(struct cairn *c, const uint8_t conv[static RECORD_ID_LEN],
                                        size_t part_max, const struct appmsg *am,
                                        const uint8_t *raw, size_t rawlen, uint8_t **text,
                                        size_t *len);

/* Stores the message with id ID from K (incoming) or to K (outgoing), once, in K's 1:1
 * conversation; a new incoming one counts as unread there. Returns 1 if it was new, 0 if a
 * duplicate, or a negative code. Inside the caller's transaction. */
int client_store_message(struct cairn *c, const struct contact *k, int outgoing,
                         const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, int64_t received_at,
                         const uint8_t *text, size_t len);
/* The same for a message of KIND: APPMSG_TEXT, or APPMSG_TIMER (TEXT its data), which also
 * changes the conversation's timer when it is the latest (expiry.c). */
int client_store_appmsg(struct cairn *c, const struct contact *k, int outgoing, uint8_t kind,
                        const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, int64_t received_at,
                        const uint8_t *text, size_t len);

/* ---- disappearing messages (PROTOCOL.md 8.11): what storing a message does (expiry.c) ---- */

/* Applies the timer message M (kind APPMSG_TIMER) to V if it is later in the order of 8.11
 * than the one V holds. Returns whether V changed. */
bool client_timer_take(struct conversation *v, const struct stored_message *m);

/* Records that message ID of CONV is deleted at our clock's EXPIRES_AT (the expiry index), in
 * the caller's transaction. */
CAIRN_WARN_UNUSED int client_expiry_note(struct cairn *c, const uint8_t conv[RECORD_ID_LEN],
                                         const uint8_t id[APPMSG_ID_LEN], int64_t expires_at);

/* ---- disappearing messages: the sweep (timer.c) ---- */

/* A part of message ID of CONV was kept (client_join_parts): under a timer, the parts
 * expire like the message would, unless the message completes first. Caller's transaction. */
CAIRN_WARN_UNUSED int client_expiry_note_part(struct cairn *c, const uint8_t conv[RECORD_ID_LEN],
                                              const uint8_t id[APPMSG_ID_LEN]);

/*
 * Deletes every message whose time has come (our clock), with its parts, its unsent outbox
 * entries, its part of the unread count and its index entry, in one transaction, then
 * checkpoints the store so that the bytes leave its files. Returns how many were deleted, or
 * a negative code. Sets C's next expiry time.
 */
CAIRN_WARN_UNUSED int client_expire(struct cairn *c);

/* client_expire when C's next expiry time has come, or when it was last run more than a
 * while ago (another process may have stored messages under a timer). For the engine's tick. */
void client_expire_due(struct cairn *c);

/* Fills OUT's timer fields (kind, timer, expires_at) from stored message M. */
void client_timer_message(const struct cairn *c, const struct stored_message *m,
                          struct cairn_message *out);

/* Queues an application message of KIND (APPMSG_TEXT, APPMSG_TIMER) with TEXT for contact
 * or group NAME, as cairn_queue does: sealed into the outbox (or the group's log outbox) with
 * our copy stored, in one transaction, sent at SENT_AT (0: our clock's now); ID receives its
 * id. */
CAIRN_WARN_UNUSED int client_queue_appmsg(struct cairn *c, const char *name, uint8_t kind,
                                          const uint8_t *text, size_t len, int64_t sent_at,
                                          uint8_t id[APPMSG_ID_LEN]);

/* Sends what cairn_queue or cairn_timer_queue queued for NAME (message ID): accepted by a
 * relay, 0; CAIRN_ECONNECT when it stays queued (cairn.c). */
CAIRN_WARN_UNUSED int client_send_queued(struct cairn *c, const char *name,
                                         const uint8_t id[APPMSG_ID_LEN]);
/* Sends the group outbox (every group's queued entries) by one pass of the log transport:
 * 0 when nothing is left queued, CAIRN_ECONNECT when something is (cairn.c). */
CAIRN_WARN_UNUSED int client_send_group_out(struct cairn *c);

/* Creates a mailbox of ours on RELAY: a fresh recipient key, secured with a fresh sender
 * credential (MB->flags 0). Needs the relay; on failure *MB is zeroed. */
CAIRN_WARN_UNUSED int client_create_mailbox(struct cairn *c, const char *relay,
                                            struct my_mailbox *mb);

/* The two halves of making a mailbox, for whoever carries the commands: a fresh signing key
 * (MB zeroed, PK receives its public half for CREATE), then, from the relay's CREATED
 * REPLY, MB's ids and a fresh credential, whose DIGEST goes in SECURE. */
void client_mailbox_keys(struct my_mailbox *mb, uint8_t pk[32]);
void client_mailbox_created(struct cairn *c, struct my_mailbox *mb, const struct cairn_msg *reply,
                            uint8_t digest[CAIRN_CREDENTIAL_LEN]);

/* The contacts that answered our invite and wait to be moved: *IDS (malloc'd, *N of them;
 * free it). Returns 0 or a negative code. */
CAIRN_WARN_UNUSED int client_moves_wanted(struct cairn *c, uint8_t (**ids)[RECORD_ID_LEN],
                                          size_t *n);

/*
 * Commits the move of contact ID to the NFRESH mailboxes FRESH (made on the relays of its
 * invite mailboxes, one each): in one transaction with the contact as it is by then, marks
 * the invite mailboxes retired, adds the fresh ones and queues the mailboxes message.
 * Returns 1 when queued, 0 when not (moved meanwhile by another process, or NFRESH 0: the
 * fresh mailboxes are then the caller's to delete), or a negative code.
 */
CAIRN_WARN_UNUSED int client_move_commit(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                         const struct my_mailbox *fresh, size_t nfresh);

/* Deletes our mailbox MB on its relay (AUTH, DELETE on a connection of its own). */
CAIRN_WARN_UNUSED int client_delete_mailbox(struct cairn *c, const struct my_mailbox *mb);

/* What receiving one envelope changed besides the store, for the session loop. */
struct receive_effects {
	unsigned received; /* new messages stored (and reported) */
	bool redispatch;   /* the contact named new mailboxes: unsent outbox entries follow them */
	bool recheck;      /* the contact moved to our new mailboxes: old ones may be deleted */
	bool groups;       /* a join or welcome changed a group: its logs are listed again */
};

/*
 * Opens an envelope that arrived in our mailbox RECIPIENT_ID for contact CONTACT (an id) and
 * stores what
 * it holds (receive.c), reporting each new message to ON_MESSAGE (may be NULL) and adding to
 * *FX. The same envelope may come through several relays (a sender that never saw a relay's
 * OK tries the next one): the second copy no longer opens, and is dropped like any
 * duplicate. Returns 0 when the envelope may be acknowledged (stored, or dropped as a
 * duplicate or forgery), or a negative code when it must stay on the relay (local storage
 * failed).
 */
CAIRN_WARN_UNUSED int client_receive_envelope(struct cairn *c, const uint8_t contact[RECORD_ID_LEN],
                                              const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN],
                                              const uint8_t *env, size_t len,
                                              cairn_message_cb on_message, void *ctx,
                                              struct receive_effects *fx);

/* The index in K->mine of our mailbox RECIPIENT_ID, or -1. */
int contact_find_mine(const struct contact *k, const uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN]);

/* Our mailboxes for K that are not retired, in order: what K should write to. */
void contact_current_mailboxes(const struct contact *k, struct mailbox_list *out);

/* Our reply for K's first messages (the mailboxes where K answers us, PROTOCOL.md 8.9) into
 * OUT (capacity CAP). Returns 0 or an appmsg_reply_encode error. */
CAIRN_WARN_UNUSED int client_build_reply(const struct contact *k, uint8_t *out, size_t cap,
                                         size_t *len);

/*
 * Seals TEXT (split into parts) for K and puts every envelope into the outbox, advancing and
 * storing K's ratchet: the caller holds a transaction. KIND is an APPMSG_* kind.
 */
CAIRN_WARN_UNUSED int client_queue_message(struct cairn *c, struct contact *k, uint8_t kind,
                                           const uint8_t *text, size_t len,
                                           const uint8_t id[APPMSG_ID_LEN], int64_t sent_at);

/*
 * Moves every contact that answered our invite out of the invite mailboxes (PROTOCOL.md
 * section 8.10): creates fresh mailboxes on the same relays and queues a mailboxes message.
 * A contact whose relays do not all answer waits for the next call. *QUEUED tells whether a
 * message was queued (to be sent). Returns 0 or a local error.
 */
CAIRN_WARN_UNUSED int client_move_contacts(struct cairn *c, bool *queued);

/*
 * How many outbox entries wait: those of message ID, or with ID NULL every one but the
 * mailboxes messages (which are the client's own business, retried by itself).
 */
CAIRN_WARN_UNUSED int client_outbox_count(struct cairn *c, const uint8_t *id, unsigned *n);

/*
 * Connects to every relay with work (our mailboxes, outbox entries), sends the outbox and
 * receives what waits. Each outbox entry goes to the first of its contact's mailboxes whose
 * relay answers and accepts it. With STOP NULL it returns once every relay is drained (sync);
 * else it stays connected until *STOP (listen). RECEIVE false: sending only.
 */
CAIRN_WARN_UNUSED int client_run(struct cairn *c, struct cairn_sync_result *result,
                                 cairn_message_cb on_message, void *ctx,
                                 volatile sig_atomic_t *stop, bool receive);
/* A sending run (client_run), after which the outbox holds no part of message ID any more:
 * 0, CAIRN_ECONNECT when some of it stays queued for the next sync, or an error. What else
 * waits in the outbox is not this message's business. */
CAIRN_WARN_UNUSED int client_send_now(struct cairn *c, const uint8_t *id);

/* ---- intake addresses, the requester's side (intake_send.c, intake_accept.c) ---- */

struct intake_bundle;

/* Whether K's peer mailbox I is an intake mailbox (SEND_WORK; PROTOCOL.md 10.4), and whether
 * any is: K came from an intake address and the owner has not moved it yet (type 3). */
bool contact_peer_intake(const struct contact *k, size_t i);
bool contact_from_intake(const struct contact *k);

/*
 * Reads the bundle log LOG_ID on RELAY (a connection of its own, LOG_READ from 0 without
 * follow) and picks the bundle 10.3 says, for the owner IDENTITY and our clock, into *OUT.
 * Blocks for up to the client's timeout. Returns 0; CAIRN_EINVITE when the log is gone or
 * holds no usable bundle; or a connection error (CAIRN_ECONNECT, CAIRN_ETIMEDOUT...).
 */
CAIRN_WARN_UNUSED int client_intake_bundle(struct cairn *c, const char *relay,
                                           const uint8_t identity[CAIRN_KEY_LEN],
                                           const uint8_t log_id[CAIRN_LOG_ID_LEN],
                                           struct intake_bundle *out);

/* Stores BITS as the work bits of contact ID's peer mailbox I, in a transaction of its own,
 * if that mailbox is still the intake mailbox of bundle log LOG_ID (else nothing). */
CAIRN_WARN_UNUSED int client_intake_set_bits(struct cairn *c, const uint8_t id[RECORD_ID_LEN],
                                             size_t i, const uint8_t log_id[CAIRN_LOG_ID_LEN],
                                             uint8_t bits);

/* Solves the proof of work (5.10) for ENV (LEN bytes) to SENDER_ID at BITS, with the client's
 * clock and a random first nonce, into WORK (16 bytes). Takes 2^BITS hashes on average (about
 * 0.3 s at 20 bits): never call it holding a store transaction. 0 or CAIRN_EINVAL. */
CAIRN_WARN_UNUSED int client_intake_work(struct cairn *c,
                                         const uint8_t sender_id[CAIRN_MAILBOX_ID_LEN],
                                         const uint8_t *env, size_t len, unsigned bits,
                                         uint8_t work[16]);

/* Whether TEXT (blanks around it forgiven) is in the intake address's text form. */
bool client_is_intake_text(const char *text);

/* cairn_invite_accept for an intake address (intake_accept.c); as documented there. */
CAIRN_WARN_UNUSED int client_intake_accept(struct cairn *c, const char *text, const char *name,
                                           const char *const *relays, size_t nrelays);

/* ---- what accepting an invite or an intake address share (accept.c) ---- */

/* A list of relays for our own mailboxes (1..CAIRN_RELAYS_MAX valid,
 * distinct addresses: CAIRN_EINVAL, CAIRN_EADDRESS), and deleting K's mailboxes again, best
 * effort, for a contact that is not kept. */
CAIRN_WARN_UNUSED int client_check_relays(const char *const *relays, size_t n);
void client_drop_mailboxes(struct cairn *c, const struct contact *k);

/* What accepting an invite or an intake address checks first: no application
 * engine running (CAIRN_ESTATE), a valid NAME (CAIRN_EINVAL), RELAYS as client_check_relays
 * says when given; then, against the text's owner IDENTITY: not our own (CAIRN_EINVITE),
 * NAME free (CAIRN_EEXIST). */
CAIRN_WARN_UNUSED int client_accept_args(struct cairn *c, const char *name,
                                         const char *const *relays, size_t nrelays);
CAIRN_WARN_UNUSED int client_accept_check(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN],
                                          const char *name);
/* Our mailboxes for K, a contact being accepted, on the NOURS relays OURS: with CREATE false,
 * only whether they all fit a first message's reply (CAIRN_ETOOBIG...); with CREATE true,
 * made on every relay that answers (K->mine), 0 if one did, else the first relay's error. */
CAIRN_WARN_UNUSED int client_accept_mailboxes(struct cairn *c, struct contact *k,
                                              const char *const *ours, size_t nours, bool create);
/* Keeps the session R in K (serialized, K->ratchet malloc'd). 0 or CAIRN_ENOMEM. */
struct ratchet;
CAIRN_WARN_UNUSED int client_keep_session(struct contact *k, const struct ratchet *r);

/* Encodes BIN (LEN bytes) as SCHEME then base64url without padding into *TEXT (malloc'd;
 * the caller frees it, wiping it if it is secret). Returns 0 or CAIRN_ENOMEM. */
CAIRN_WARN_UNUSED int client_scheme_encode(const char *scheme, const uint8_t *bin, size_t len,
                                           char **text);
/* Decodes TEXT in the form SCHEME then base64url without padding (blanks around forgiven)
 * into BIN (capacity CAP, *LEN bytes). Returns 0 or CAIRN_EINVITE. */
CAIRN_WARN_UNUSED int client_scheme_decode(const char *text, const char *scheme, uint8_t *bin,
                                           size_t cap, size_t *len);

#endif
