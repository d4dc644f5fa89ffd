/* SPDX-License-Identifier: MIT */
/*
 * A group as one member sees it (docs/PROTOCOL.md section 9): the member's state in the sealed
 * store (group_records.c), what it does with each entry of the group's log (group_recv.c, the
 * handler of group_io.h), sending into the group (group_send.c), committing as an admin
 * (group_admin.c) and joining (group_join.c). No network I/O: the transport of group_io.h
 * reads the logs and carries the group outbox.
 *
 * The rule of the 1:1 ratchet holds here: state that holds keys changes in one store
 * transaction, loaded, stepped and stored inside it, never from a copy read earlier; every
 * entry is sealed once and queued (group_out_append) in the same transaction that stores the
 * stepped chain.
 *
 * Internal API (to be exposed in include/cairn/cairn.h later).
 */
#ifndef CAIRN_CLIENT_GROUP_H
#define CAIRN_CLIENT_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "group_commit.h"
#include "group_commit_parts.h"
#include "group_entry.h"
#include "group_io.h"
#include "group_join.h"
#include "group_roster.h"
#include "records.h"

struct cairn;

/* Record kinds of the group state (records.h's enum stops at 8; 9 is REC_GROUP_OUT). */
enum group_record_kind {
	REC_GROUP = 10,         /* key group_id: struct group_state's fixed part and roster */
	REC_GROUP_CHAINS = 11,  /* key group_id || u8 slot (0 current, 1 previous epoch) */
	REC_GROUP_SKIPPED = 12, /* key group_id: skipped message keys */
	REC_GROUP_EPOCH = 13,   /* key group_id: counted updates, leaves, previous roster */
	REC_GROUP_PART = 14,    /* key group_id || u64 seq: a commit part of this epoch */
	REC_GROUP_PENDING = 15, /* key group_id: our commit not yet processed (9.5 crashes) */
	REC_GROUP_JOINING = 16, /* key group_id: the keys of a join we sent */
	REC_GROUP_WELCOME = 17, /* key group_id || identity: a welcome to send */
	REC_GROUP_LOG = 18,     /* key log_id: the group_id whose log it is */
	REC_GROUP_APPEND = 19,  /* key out_id: group_id || what (a group append in flight) */
	REC_GROUP_OFFER = 20,   /* key group_id || identity: an offer we sent */
	REC_GROUP_INVITE = 21,  /* key contact id: group_id of our group invite (9.8) to it */
	/* key group_id: group_id || when we made the join REC_GROUP_JOINING holds (u64 BE, our
	 * clock). Numbered apart from the kinds above so that kinds added meanwhile elsewhere do
	 * not meet it. */
	REC_GROUP_JOINING_AT = 30,
};

/* The key of a record about one member of one group (REC_GROUP_OFFER, which also holds kept
 * joins, and REC_GROUP_WELCOME): group_id || identity. */
#define GROUP_MEMBER_KEY_LEN (GROUP_ID_LEN + CAIRN_KEY_LEN)
static inline void group_member_key(uint8_t key[GROUP_MEMBER_KEY_LEN], const uint8_t *gid,
                                    const uint8_t *identity)
{
	memcpy(key, gid, GROUP_ID_LEN);
	memcpy(key + GROUP_ID_LEN, identity, CAIRN_KEY_LEN);
}

#define GROUP_KEYS_MAX     8  /* own group keys kept (9.6) */
#define GROUP_PARTS_KEPT   64 /* commit parts of one epoch kept until a commit wins */
#define GROUP_GRACE_READS  256
#define GROUP_GRACE_S      3600
#define GROUP_UPDATE_DELAY 3600         /* key_update_delay (9.6) */
#define GROUP_UPDATE_MIN   86400        /* key_update_min_interval (9.6) */
#define GROUP_LOG_TTL      (21 * 86400) /* a relay's default ttl (5.9): the old log's life */

/* One counting key update of the epoch, with the seq it came at. */
struct group_upd {
	struct group_counted_update u;
	uint64_t seq;
};

/* What a member keeps for a group (9.2): loaded whole, changed, stored whole, in one
 * transaction (group_load, group_store). Heap only (about 400 KB). */
struct group_state {
	uint8_t group_id[GROUP_ID_LEN];
	uint8_t conv[RECORD_ID_LEN]; /* the CONV_GROUP conversation */
	char name[GROUP_NAME_MAX + 1];
	uint64_t epoch;
	uint8_t head[GROUP_HEAD_LEN];
	struct group_settings settings;
	uint16_t self;   /* our index in the roster */
	bool removed;    /* a commit removed us: the state reads nothing more */
	bool copied;     /* a key update from our index that we did not make (9.6) */
	bool gap;        /* entries expired before we read them (9.9) */
	bool gone;       /* the current log is gone */
	bool bad_commit; /* an admin signed a commit that does not match (9.5): warn */
	bool withheld;   /* a key update's prev_count is above what we read of its sender (9.9) */
	uint8_t sign_sk[64];
	uint8_t nkeys;
	struct group_key_pair keys[GROUP_KEYS_MAX]; /* oldest first */
	/* The current log and our cursor in it; the log the last move left, read on to its end. */
	struct group_log_ref log;
	uint64_t cursor;
	bool has_delete;
	uint8_t delete_secret[CAIRN_CREDENTIAL_LEN]; /* of the current log, if we made it */
	bool has_old;
	struct group_log_ref old;
	uint64_t old_cursor, old_end; /* old_end 0: not known yet */
	int64_t old_since;            /* our clock when we followed the move */
	bool has_old_delete;
	uint8_t old_delete[CAIRN_CREDENTIAL_LEN];
	uint64_t position; /* seq of the commit that began the epoch in the current log, or 0 */
	/* Epoch e's keys (sender_base and the secret are gone, 9.3). */
	uint8_t header_key[GROUP_SECRET_LEN];
	uint8_t commit_key[GROUP_SECRET_LEN];
	uint8_t init_secret[GROUP_SECRET_LEN];
	int64_t epoch_start; /* our clock when we entered the epoch */
	uint32_t epoch_msgs; /* kind 1 texts read in the epoch (rotate_messages) */
	/* An admin's random delay before rotating (9.5: up to a tenth of each period), so
	 * that usually one admin commits. */
	uint32_t jitter_s, jitter_msgs;
	/* Sending: our own chain of the epoch. */
	uint8_t send_ck[GROUP_SECRET_LEN];
	uint32_t send_n;
	uint32_t prev_sent; /* messages we sent in the previous epoch (prev_count) */
	bool update_sent;   /* our key update of this epoch is out */
	int64_t update_at;  /* when it is due if we send nothing (9.6's random delay) */
	int64_t last_update_at;
	/* The previous epoch within its grace (9.3). */
	bool has_prev;
	uint64_t prev_epoch;
	uint8_t prev_head[GROUP_HEAD_LEN];
	uint8_t prev_header_key[GROUP_SECRET_LEN];
	uint32_t prev_reads;
	int64_t prev_since;
	uint64_t prev_end; /* the previous epoch's commit position in the current log, or 0 */
	/* Parts of this epoch's commits under way (REC_GROUP_PART keys). */
	uint8_t nparts;
	uint64_t part_seq[GROUP_PARTS_KEPT];
	/* Epoch record: counting key updates and leaves of the epoch, the previous roster. */
	uint16_t nupd;
	struct group_upd upd[GROUP_MEMBERS_MAX];
	uint16_t nleave;
	uint8_t leave[GROUP_MEMBERS_MAX][CAIRN_KEY_LEN]; /* identities that asked to leave */
	struct group_roster roster;
	struct group_roster prev_roster;
	struct group_chains chains, prev_chains;
	struct group_skipped skipped;
};

/* Our commit, stored before its first part is queued and kept until a commit of the epoch
 * is processed (9.5 "Crashes", "Two admins at once"). */
struct group_request {
	uint8_t kind; /* GROUP_CHANGE_* */
	uint8_t role;
	uint8_t identity[CAIRN_KEY_LEN];
	uint8_t sign_key[CAIRN_KEY_LEN];
	uint8_t group_key[CAIRN_KEY_LEN];
	struct group_settings settings;
};
#define GROUP_REQUESTS_MAX GROUP_CHANGES_MAX
_Static_assert(GROUP_REQUESTS_MAX <= UINT8_MAX, "a pending commit counts its requests in a u8");

struct group_pending {
	uint64_t epoch; /* the epoch it ends */
	uint8_t commit_id[GROUP_COMMIT_ID_LEN];
	uint8_t commit_secret[GROUP_SECRET_LEN];
	uint8_t nreq;
	struct group_request req[GROUP_REQUESTS_MAX];
	bool moves;
	struct group_log_ref to;
	uint8_t to_delete[CAIRN_CREDENTIAL_LEN];
	uint64_t last_part_seq; /* from appended(): the commit's position, once known */
	uint8_t nentries;
	size_t entry_len[GROUP_PARTS_MAX];
	uint8_t *entry[GROUP_PARTS_MAX]; /* owned */
	uint8_t out_id[GROUP_PARTS_MAX][16];
};

/* ---- records (group_records.c) ---- */

/* Loads group GID into a fresh *OUT (group_free). Returns 0, CAIRN_ENOTFOUND, CAIRN_ECORRUPT
 * or CAIRN_ENOMEM. Inside the caller's transaction. */
CAIRN_WARN_UNUSED int group_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                 struct group_state **out);
/* Stores G whole (inside the caller's transaction). */
CAIRN_WARN_UNUSED int group_store(struct cairn *c, const struct group_state *g);
/* Begins a transaction and loads group GID in it (rolled back on failure). */
CAIRN_WARN_UNUSED int group_txn_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                     struct group_state **g);
/* Ends it: with RC 0 stores G and commits, else rolls back; frees G. Returns the outcome. */
CAIRN_WARN_UNUSED int group_txn_end(struct cairn *c, struct group_state *g, int rc);
/* Wipes and frees G. Accepts NULL. */
void group_free(struct group_state *g);

CAIRN_WARN_UNUSED int group_pending_load(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                         struct group_pending *p);
CAIRN_WARN_UNUSED int group_pending_store(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                          const struct group_pending *p);
CAIRN_WARN_UNUSED int group_pending_del(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN]);
void group_pending_wipe(struct group_pending *p);

/* Calls CB with the fixed part and roster of every group (the rest of the state is not
 * loaded); CB returns 0 to go on. */
CAIRN_WARN_UNUSED int group_each(struct cairn *c, int (*cb)(void *ctx, const struct group_state *g),
                                 void *ctx);

/* One record's layout alone: parses IN (LEN bytes) of KIND (REC_GROUP, _EPOCH: a struct
 * group_state; _CHAINS: group_chains; _SKIPPED: group_skipped; _PENDING: group_pending, whose
 * entries are then malloc'd) into OBJ, or encodes OBJ into *OUT (malloc'd). Returns 0,
 * CAIRN_ECORRUPT or CAIRN_EINVAL (another kind). A record that parses encodes back to the
 * same bytes. */
CAIRN_WARN_UNUSED int group_record_parse(uint32_t kind, const uint8_t *in, size_t len, void *obj);
CAIRN_WARN_UNUSED int group_record_encode(uint32_t kind, const void *obj, uint8_t **out,
                                          size_t *len);

/* The group whose current or old log LOG_ID is, into GID. */
CAIRN_WARN_UNUSED int group_by_log(struct cairn *c, const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                                   uint8_t gid[static GROUP_ID_LEN]);
CAIRN_WARN_UNUSED int group_log_bind(struct cairn *c, const uint8_t log_id[static CAIRN_LOG_ID_LEN],
                                     const uint8_t gid[static GROUP_ID_LEN]);

/* Remembers that append OUT_ID belongs to group GID (WHAT: 1 a commit part, 2 a message). */
CAIRN_WARN_UNUSED int group_append_note(struct cairn *c, const uint8_t out_id[16],
                                        const uint8_t gid[static GROUP_ID_LEN], uint8_t what);

/* ---- shared helpers (group_send.c) ---- */

/* ctx(e) of G's current epoch. */
static inline void group_state_ctx(const struct group_state *g, uint8_t ctx[static GROUP_CTX_LEN])
{
	group_ctx(g->group_id, g->epoch, g->head, ctx);
}

/* Enters epoch NEXT->epoch (its secret set): keys, chains, counters; the current epoch
 * becomes the previous one (grace). */
CAIRN_WARN_UNUSED int group_enter(struct cairn *c, struct group_state *g,
                                  const struct group_next *next, uint16_t self);

/* The id a group message's sender is stored under: the contact id of the contact whose
 * identity is IDENTITY (returns 1), else the identity's first RECORD_ID_LEN bytes (returns 0;
 * stored_message has no room for more), or a negative code. Scans the contacts. */
CAIRN_WARN_UNUSED int group_sender_id(struct cairn *c, const uint8_t identity[static CAIRN_KEY_LEN],
                                      uint8_t id[static RECORD_ID_LEN]);

/* Stores a message of G's conversation once (1 new, 0 duplicate, or a negative code). SENDER
 * is the member's identity (group_sender_id says what is stored) or NULL for ours. */
int group_store_message(struct cairn *c, const struct group_state *g, const uint8_t *sender,
                        const uint8_t id[APPMSG_ID_LEN], int64_t sent_at, const uint8_t *text,
                        size_t len);
/* The same for a message of KIND (APPMSG_TEXT, or APPMSG_TIMER with its data, timer.c). */
int group_store_appmsg(struct cairn *c, const struct group_state *g, const uint8_t *sender,
                       uint8_t kind, const uint8_t id[APPMSG_ID_LEN], int64_t sent_at,
                       const uint8_t *text, size_t len);

/* Seals PAYLOAD as our next message of the epoch and queues it (transaction held). */
CAIRN_WARN_UNUSED int group_seal_queue(struct cairn *c, struct group_state *g,
                                       const uint8_t *payload, size_t len);

/* Sends our key update of the epoch now if 9.6 says it is due (FORCE: before a message). */
CAIRN_WARN_UNUSED int group_key_update_due(struct cairn *c, struct group_state *g, bool force);

/* Cuts the commit COMMIT (LEN bytes) into parts signed over CTX, seals each under K as
 * committer SELF and queues them to LOG, noting each append (WHAT) and, in P (may be NULL),
 * the entries and their out ids. */
CAIRN_WARN_UNUSED int group_post_commit(struct cairn *c, const struct group_state *g,
                                        const struct group_epoch_keys *k,
                                        const uint8_t ctx[static GROUP_CTX_LEN],
                                        const uint8_t *commit, size_t len,
                                        const uint8_t commit_id[static GROUP_COMMIT_ID_LEN],
                                        uint8_t what, struct group_pending *p);

/* A fresh X25519 key pair from C's generator. */
void group_x25519_keypair(struct cairn *c, uint8_t pk[static CAIRN_KEY_LEN],
                          uint8_t sk[static CAIRN_KEY_LEN]);

/* G's conversation into G->conv (transaction held): a new CONV_GROUP conversation labelled
 * with a local name group_name_pick chose from G's own name, claimed in the name index; or,
 * when group G is stored already (we join again after a removal), its conversation and local
 * name as they are. */
CAIRN_WARN_UNUSED int group_conversation_new(struct cairn *c, struct group_state *g);

/* A kind 2 entry of G's current epoch at SEQ whose header H opened (group_apply.c): stored
 * if it counts, and the commit it completes entered if it wins. 0 also when dropped. */
CAIRN_WARN_UNUSED int group_apply_part(struct cairn *c, struct group_state *g, uint64_t seq,
                                       const struct group_header *h, const uint8_t *entry,
                                       size_t len);

/* The local name for a group whose own name is WANTED (empty allowed) and id GID: WANTED if
 * free here, else the rule of rename.c (a " (2)" suffix...). OUT receives it. 0, CAIRN_EEXIST
 * (nothing free) or a store error. Look-ups only: the caller claims it in its transaction. */
CAIRN_WARN_UNUSED int group_name_pick(struct cairn *c, const char *wanted,
                                      const uint8_t gid[GROUP_ID_LEN],
                                      char out[CAIRN_NAME_MAX + 1]);

/* ---- operations ---- */

/* Creates a group named NAME with its log on RELAY (group_out_create, the genesis queued):
 * we are its only member, an admin. *GID receives its id. */
CAIRN_WARN_UNUSED int group_create(struct cairn *c, const char *relay, const char *name,
                                   const struct group_settings *settings,
                                   uint8_t gid[static GROUP_ID_LEN]);

/* Seals TEXT into group GID (a key update first if due), queues it, stores it as ours. ID
 * receives the message id. */
CAIRN_WARN_UNUSED int group_send_text(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                      const uint8_t *text, size_t len,
                                      uint8_t id[static APPMSG_ID_LEN]);
/* The same for a message of KIND (APPMSG_TEXT, or APPMSG_TIMER with its data), sent at
 * SENT_AT (0: our clock's now). */
CAIRN_WARN_UNUSED int group_send_appmsg(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                        uint8_t kind, const uint8_t *text, size_t len,
                                        int64_t sent_at, uint8_t id[static APPMSG_ID_LEN]);

/* Asks the admins to remove us (kind 17). */
CAIRN_WARN_UNUSED int group_leave(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN]);

/* What the clock asks of group GID now: our key update after its delay (9.6); for an admin,
 * a rotation when the epoch is old or long enough (9.5); the old log's deletion, by whoever
 * made it, once GROUP_LOG_TTL has passed since the move (9.7). Queues what is due. */
CAIRN_WARN_UNUSED int group_tick(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN]);

/* Commits REQ (N changes, by identity) as an admin, with the removals of members that asked to
 * leave; N 0 with no leave is a rotation. A removal moves the log to a fresh one on the same
 * relay. CAIRN_EEXIST while a commit of ours is pending, CAIRN_EDENIED if we are not an admin. */
CAIRN_WARN_UNUSED int group_commit(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                   const struct group_request *req, unsigned n);
/* The same inside the caller's transaction, on G loaded in it. */
CAIRN_WARN_UNUSED int group_commit_in(struct cairn *c, struct group_state *g,
                                      const struct group_request *req, unsigned n);

/* Commits again what our pending commit P asked, on the epoch G just entered after another
 * commit won (transaction held); P is left to the caller to wipe. */
CAIRN_WARN_UNUSED int group_recommit(struct cairn *c, struct group_state *g,
                                     struct group_pending *p);

/* Remembers that group GID was offered to IDENTITY (REC_GROUP_OFFER, one byte: waiting for its
 * join; a kept join replaces it), inside the caller's transaction. 0 or a store error. */
CAIRN_WARN_UNUSED int group_offer_note(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                       const uint8_t identity[static CAIRN_KEY_LEN]);
/* The offer data (kind 4) of group GID for the contact whose identity is IDENTITY, remembered
 * until its join: OUT (GROUP_OFFER_MAX), *LEN. CAIRN_EDENIED unless we are an admin. */
CAIRN_WARN_UNUSED int group_offer_make(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                       const uint8_t identity[static CAIRN_KEY_LEN],
                                       uint8_t out[static GROUP_OFFER_MAX], size_t *len);
/* A join (kind 5 data, untrusted) from IDENTITY: if it answers an offer of ours, commits the
 * add of its keys (a member joining again is removed and added in one commit). Returns 0,
 * CAIRN_ENOTFOUND (no such offer, or no such group), CAIRN_EINVAL, or group_commit's codes
 * (CAIRN_EEXIST: a commit of ours is pending; the offer stays for a later try). */
CAIRN_WARN_UNUSED int group_join_accept(struct cairn *c,
                                        const uint8_t identity[static CAIRN_KEY_LEN],
                                        const uint8_t *data, size_t len);
/* One join (kind 5 data, untrusted, LEN bytes at DATA) from IDENTITY. */
struct group_join_in {
	uint8_t identity[CAIRN_KEY_LEN];
	const uint8_t *data;
	size_t len;
};
/* The joins IN[0..N) to group GID (N <= GROUP_REQUESTS_MAX), each checked as by
 * group_join_accept, and those that answer an offer of ours committed together in one
 * commit: VERDICT[i] receives 0 (in the commit, if the call returns 0), CAIRN_ENOTFOUND (no
 * such offer, or another group's join) or CAIRN_EINVAL (malformed, or keys that would spoil
 * the commit). Returns 0 or group_commit's codes, for all of them alike (CAIRN_EEXIST: a commit
 * of ours is pending; nothing changed). */
CAIRN_WARN_UNUSED int group_joins_accept(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                         const struct group_join_in *in, unsigned n, int *verdict);

/* The join data (kind 5) for an offer of group GID named NAME: fresh keys, kept until the
 * welcome. OUT receives GROUP_JOIN_LEN bytes. */
CAIRN_WARN_UNUSED int group_join_make(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                      uint8_t out[static GROUP_JOIN_LEN]);
/* Notes when we made the join of group GID (REC_GROUP_JOINING_AT), so that a join no welcome
 * answers is forgotten after GROUP_LOG_TTL (client_groups_tick); in the caller's
 * transaction (groups.c). */
CAIRN_WARN_UNUSED int group_joining_note(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN]);
/* Forgets the joins we sent that no welcome answered within GROUP_LOG_TTL, their secret keys
 * with them (client_groups_tick). 0 or a store error. */
CAIRN_WARN_UNUSED int group_joining_sweep(struct cairn *c);
/* Room for one more of N items of SIZE bytes in *P (capacity *CAP), doubling: 0 or
 * CAIRN_ENOMEM (*P unchanged). */
CAIRN_WARN_UNUSED int group_grow(void **p, size_t *cap, size_t n, size_t size);
/* Enters the group a welcome (kind 6 data, untrusted) names, if it answers a join we sent. */
CAIRN_WARN_UNUSED int group_join_welcome(struct cairn *c, const uint8_t *data, size_t len);
/* The welcome for member IDENTITY of group GID, made when our commit that added it was
 * processed: malloc'd into *OUT (the caller wipes and frees it), and deleted from the store. */
CAIRN_WARN_UNUSED int group_welcome_take(struct cairn *c, const uint8_t gid[static GROUP_ID_LEN],
                                         const uint8_t identity[static CAIRN_KEY_LEN],
                                         uint8_t **out, size_t *len);
/* Called when our commit completes at SEQ: stores the welcomes of its adds. */
CAIRN_WARN_UNUSED int group_welcomes_make(struct cairn *c, const struct group_state *g,
                                          const struct group_next *next, uint64_t commit_seq);

/* ---- the public API's side (groups.c) ---- */

struct contact;
struct receive_effects;

/* Group NAME's id into GID through the name index (names.c): 0 or CAIRN_ENOTFOUND (also for a
 * contact's name), or a store error. */
CAIRN_WARN_UNUSED int client_group_find(struct cairn *c, const char *name,
                                        uint8_t gid[GROUP_ID_LEN]);
/* A group kind (4, 5, 6) of DATA (untrusted) from contact CID over 1:1, inside the
 * envelope's transaction, after the contact's new state is stored: an offer answered with a
 * join (queued to the contact), a join as client_group_join_in, a welcome entered. Each is
 * a savepoint of its own (state.h): what is wrong is undone alone and dropped (0); a store
 * error returns, and the caller rolls the envelope back so that it comes again. Sets
 * FX->redispatch / FX->groups. */
CAIRN_WARN_UNUSED int client_group_appmsg(struct cairn *c, const uint8_t cid[RECORD_ID_LEN],
                                          uint8_t kind, const uint8_t *data, size_t len,
                                          struct receive_effects *fx);
/* A join DATA (untrusted) from IDENTITY, inside the caller's transaction (that of the
 * envelope that carried it; the only call site for joins, kind 5 over 1:1 included):
 * committed, kept for a later try while a commit of ours is pending, or, when it answers no
 * offer of ours or is wrong, undone alone and dropped (0). A store error returns: the caller
 * rolls back. Sets FX->groups. */
CAIRN_WARN_UNUSED int client_group_join_in(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN],
                                           const uint8_t *data, size_t len,
                                           struct receive_effects *fx);
/* group_tick on every group, then the welcomes our completed commits made sent to the
 * members who are our contacts (over 1:1). */
CAIRN_WARN_UNUSED int client_groups_tick(struct cairn *c);
/* The groups' logs or outbox changed: a running engine re-lists and sends. */
void client_groups_changed(struct cairn *c);

/* ---- group invites (group_invite.c, 9.8) ---- */

struct group_invite;
/* cairn_invite_create, with GRP (may be NULL: a contact invite) the group and its name for a
 * version 3 invite, whose group id is kept with the contact (REC_GROUP_INVITE). */
CAIRN_WARN_UNUSED int client_invite_make(struct cairn *c, const char *const *relays, size_t nrelays,
                                         const char *name, const struct group_invite *grp,
                                         char **invite);
/* Whether we may accept group invite GI: CAIRN_EEXIST when we are in that group already,
 * CAIRN_EINVITE when its name is no local name (empty). A name taken here is no obstacle:
 * the welcome names the group apart. */
CAIRN_WARN_UNUSED int group_invite_acceptable(struct cairn *c, const struct group_invite *gi);
/* The first message from contact K, which answered our invite, opened (inside the envelope's
 * transaction): if the invite was a group invite, it counts from now on as an offer of the
 * group to K's identity, so that the join the message carries is committed like a contact's. */
CAIRN_WARN_UNUSED int group_invite_opened(struct cairn *c, const struct contact *k);

/* The handler the transport calls (group_io.h). */
extern const struct logio_handler group_logio_handler;

#endif
