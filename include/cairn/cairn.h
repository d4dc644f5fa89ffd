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

#include <poll.h>
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

/* ---- the seized device (wipe and duress) ---- */

/*
 * Destroys the client in HOME irrecoverably, without its passphrase, in well under a second
 * whatever its size: first the key slots are overwritten with random bytes and synced (from
 * then on no passphrase opens it, even if the rest is interrupted), then every file the client
 * keeps in HOME is removed, and HOME itself unless it holds files that are not the client's.
 * Flash wear levelling and copy-on-write filesystems may keep old copies of a slot out of
 * reach (docs/SECURITY.md). A process with the client open keeps it in memory but cannot bring
 * it back to disk. Returns 0, CAIRN_ENOTFOUND (no client in HOME), or CAIRN_EIO.
 */
CAIRN_WARN_UNUSED int cairn_wipe(const char *home);

/*
 * Sets the duress passphrase of C's home: from then on, cairn_open with PASSPHRASE silently
 * destroys the home as cairn_wipe does and opens in its place a new client (a new identity, no
 * contacts) whose passphrase is PASSPHRASE, returning as any open does. Nothing on disk tells a
 * home with a duress passphrase from one without. Returns 0, or CAIRN_EINVAL (empty, or the
 * home's own passphrase). cairn_duress_clear removes it (a later open with it fails as any
 * wrong passphrase does).
 */
CAIRN_WARN_UNUSED int cairn_duress_set(struct cairn *c, const char *passphrase);
CAIRN_WARN_UNUSED int cairn_duress_clear(struct cairn *c);

/* Network settings: a SOCKS5 proxy "HOST:PORT" (NULL: direct) and the connect/read timeout. */
CAIRN_WARN_UNUSED int cairn_set_socks(struct cairn *c, const char *hostport);
void cairn_set_timeout(struct cairn *c, int timeout_ms);
/*
 * Private routing (docs/PROTOCOL.md 5.11), off by default. On: a message for a contact's
 * mailbox on a relay that holds none of ours is sealed for that relay and sent through a relay
 * of ours (FORWARD), on a connection that has proved one of our mailboxes there, so that the
 * contact's relay never sees our address; it waits while no such connection is up (`cairn
 * sync` and `listen` make one, `send` alone does not). `unreachable` leaves it in the outbox.
 */
void cairn_set_private_routing(struct cairn *c, int on);

/*
 * A cairn+obfs4:// relay address is reached through obfs4proxy (PROTOCOL.md 7.3): the one at
 * the SOCKS5 listener named by the environment's CAIRN_OBFS4_SOCKS, else one the handle starts
 * when it first dials such an address (the program CAIRN_OBFS4PROXY, else obfs4proxy from
 * PATH; state in HOME/obfs4) and stops at cairn_close. That start waits up to the timeout for
 * obfs4proxy. When it fails, the call fails with CAIRN_EPROXY and this says why (printable
 * ASCII, owned by C, valid until the next call on C); NULL when nothing failed. With a SOCKS5
 * proxy set, obfs4 addresses fail (CAIRN_ECONNECT): obfs4 through Tor is not supported.
 */
const char *cairn_transport_error(const struct cairn *c);

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
 *
 * A group invite (cairn_group_invite) is accepted the same way: its creator becomes contact
 * NAME, and the first message asks to join the group, which appears once the creator's
 * client has synced and then ours has, under the group's name, or "NAME (2)" and so on when
 * that name is taken here (as for any group we join). CAIRN_EEXIST when we are in that group
 * already; CAIRN_EINVITE when the invite gives the group no name. Nothing is added then.
 *
 * An intake address (cairn-intake:..., docs/PROTOCOL.md section 10) is accepted the same way:
 * its owner's prekey bundle is read from its relays in order (CAIRN_EINVITE, nothing added,
 * when none holds a usable one), and the first message goes to its intake mailboxes with a
 * proof of work; NAME stays not established until the owner accepts the request and answers.
 * CAIRN_EWORK when the relays refused the work twice (most likely this computer's clock is
 * wrong): the contact is added and the first message stays in the outbox.
 */
CAIRN_WARN_UNUSED int cairn_invite_accept(struct cairn *c, const char *invite, const char *name,
                                          const char *const *relays, size_t nrelays);

/*
 * Queues a message of LEN bytes to contact NAME and tries to send it. Stored in the outbox
 * before anything is sent. Returns 0 when a relay accepted it (the first of the contact's
 * relays that answers), CAIRN_ECONNECT when it stays queued for the next sync, send or
 * listen (CAIRN_EWORK when an intake address's relays refused its proof of work: the clock).
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
	/* In a group's conversation (CONTACT is then the group's name): who sent it, as
	 * cairn_group_members names members (a contact's name, else the member's short id);
	 * NULL for our own messages and in a contact's conversation. Added last: libcairn fills
	 * this struct and lends it to callbacks, an application never allocates one, so an
	 * application built against the older header reads the same fields at the same places. */
	const char *sender;
	/* Disappearing messages (added after SENDER, for the same reason). KIND is
	 * CAIRN_MESSAGE_TEXT, or CAIRN_MESSAGE_TIMER: a change of the conversation's timer to TIMER
	 * seconds (0: off), made by SENDER (or the contact, or us: OUTGOING); TEXT is then NULL
	 * and LEN 0. EXPIRES_AT: when this device deletes the message (its clock, seconds since
	 * the epoch), 0 never. */
	int kind;
	uint32_t timer;
	int64_t expires_at;
};
#define CAIRN_MESSAGE_TEXT  0
#define CAIRN_MESSAGE_TIMER 1
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

/*
 * ---- The engine: libcairn driven from the application's own loop ----------------------
 *
 * The blocking calls above (cairn_sync, cairn_listen, cairn_send) are loops around this
 * engine. An application with a UI or an event loop of its own drives it instead, in the
 * manner of libmosquitto or c-ares:
 *
 *     cairn_engine_start(c, &callbacks, ctx);
 *     for (;;) {
 *         cairn_engine_fds(c, fds, cap, &n, &timeout_ms);  // before every wait
 *         poll(fds, n, timeout_ms);                         // or epoll, libuv, a UI loop
 *         cairn_engine_step(c, fds, n);
 *     }
 *     cairn_engine_stop(c);
 *
 * While it runs, the engine is what cairn_listen is: it stays connected to every relay that
 * holds our mailboxes, stores what arrives (acknowledging each envelope only once stored),
 * sends the outbox (cairn_queue; messages queued by another process too), pings each relay
 * to notice a dead path, reconnects with backoff, and moves contacts out of invite
 * mailboxes. contrib/libuv-embed/ shows it inside a libuv loop.
 *
 * A step never waits for the network to answer: connecting (TCP, the SOCKS5 exchange, the
 * handshake) goes on across steps, driven by the descriptors, each connection bounded by the
 * timeout of cairn_set_timeout; reading takes only what has arrived, and what the socket
 * does not take at once is written when the descriptor says it can be. What a step may still
 * wait for: resolving a relay's (or the proxy's) host name (getaddrinfo, when a connection
 * starts; never with an IP address, and with a proxy only the proxy's own name), the
 * local store (SQLite on disk), and, for a contact made through an intake address that its
 * owner has not answered yet, its intake mailboxes: solving the proof of work of each
 * envelope (about 0.3 s at the default 20 bits) and reading a relay's bundle log when the
 * bits are not known or were refused (a connection of its own, up to the timeout).
 */

/* A message's delivery state. QUEUED is the state cairn_queue returns it in (stored in the
 * outbox); SENT: a relay accepted every part of it. The protocol has no receipts: whether the
 * contact has received it cannot be known, so no state says so. */
enum cairn_delivery { CAIRN_DELIVERY_QUEUED = 0, CAIRN_DELIVERY_SENT = 1 };

/* A connection to a relay. */
enum cairn_relay_state {
	CAIRN_RELAY_CONNECTING = 0, /* connecting (TCP, proxy, handshake) */
	CAIRN_RELAY_UP = 1,         /* connected: commands flow */
	CAIRN_RELAY_DOWN = 2,       /* could not connect, or broke: retried after a pause */
};

struct cairn_relay_event {
	const char *relay; /* its address (cairn://...), borrowed for the callback */
	/* The client keeps up to two connections to a relay so that the relay cannot link the
	 * owner of our mailboxes there with the mailboxes we write to: 1 for the one that
	 * receives (our mailboxes), 0 for the one that sends. Each reports its own states. */
	int receiving;
	enum cairn_relay_state state;
	int error; /* DOWN: why (CAIRN_ECONNECT, CAIRN_ETIMEDOUT, CAIRN_EIO, ...); else 0 */
};

/*
 * What the engine reports; any member may be NULL. Every callback runs inside
 * cairn_engine_step, never elsewhere, with what it is given borrowed for the call. A callback
 * may call cairn_queue, cairn_read, cairn_contacts, cairn_rename, cairn_safety_number and
 * cairn_engine_stop (which then takes effect when the step returns); any other call of this
 * header on the same struct cairn (another step, the blocking calls) fails with CAIRN_ESTATE
 * or must not be made.
 */
struct cairn_engine_callbacks {
	/* A new incoming message was stored (each message once). Its return value is ignored. */
	cairn_message_cb message;
	/* Message ID (one of this client's, from cairn_queue or cairn_send, in this process or
	 * another) changed state. */
	void (*delivery)(void *ctx, const uint8_t id[CAIRN_MESSAGE_ID_LEN],
	                 enum cairn_delivery state);
	/* A relay connection changed state. */
	void (*relay)(void *ctx, const struct cairn_relay_event *ev);
};

/*
 * Starts the engine on C with CALLBACKS (copied; may be NULL) and CTX (passed to each). It
 * connects nothing yet: the first cairn_engine_fds asks for a step at once. Returns 0,
 * CAIRN_ESTATE if it already runs, CAIRN_ENOMEM. While it runs, cairn_sync, cairn_listen,
 * cairn_send and cairn_invite_accept return CAIRN_ESTATE (queue with cairn_queue instead);
 * cairn_close stops it.
 */
CAIRN_WARN_UNUSED int cairn_engine_start(struct cairn *c,
                                         const struct cairn_engine_callbacks *callbacks, void *ctx);

/*
 * The descriptors to wait on and for how long, valid until the next call of this header on
 * C: ask again before every wait, since a step connects, closes and reconnects. FDS receives
 * up to CAP entries (fd, events; revents 0), *N how many the engine watches, and *TIMEOUT_MS
 * when the next step is due with or without events (0: at once, -1: only on an event). The
 * descriptors stay the engine's: never read, write or close them. Returns 0, CAIRN_ENOBUFS
 * when *N > CAP (the first CAP are written), CAIRN_ESTATE when the engine is not running.
 */
CAIRN_WARN_UNUSED int cairn_engine_fds(struct cairn *c, struct pollfd *fds, size_t cap, size_t *n,
                                       int *timeout_ms);

/*
 * Does what is due: reads every descriptor FDS (N entries, as poll() left them) marks ready,
 * or every one when FDS is NULL, plus any descriptor FDS does not list; then timers, the
 * outbox, reconnects; and calls the callbacks. Call it when a descriptor is ready or the
 * timeout passed; calling it early is harmless. Connection failures are not errors of the
 * step: they are reported to the relay callback and retried. Returns 0, CAIRN_ESTATE (not
 * running, or called from a callback), or a local failure (CAIRN_ENOMEM, a store error):
 * the engine still runs, and tries again at its next tick (every 2 s).
 */
CAIRN_WARN_UNUSED int cairn_engine_step(struct cairn *c, const struct pollfd *fds, size_t n);

/* Stops the engine: closes its connections and forgets its state (the outbox stays, for the
 * next engine or sync). No callback runs. From a callback, it takes effect when the step
 * returns. Does nothing if the engine is not running; accepts NULL. */
void cairn_engine_stop(struct cairn *c);

/*
 * Stores a message of LEN bytes to contact NAME in the outbox and returns at once: its
 * delivery state is CAIRN_DELIVERY_QUEUED. A running engine sends it at its next step (and
 * reports CAIRN_DELIVERY_SENT); otherwise the next sync, send or listen does. ID (may be
 * NULL) receives the message id. Returns 0, CAIRN_ENOTFOUND (no such contact),
 * CAIRN_ETOOBIG, or a store error (then nothing was queued).
 */
CAIRN_WARN_UNUSED int cairn_queue(struct cairn *c, const char *name, const uint8_t *text,
                                  size_t len, uint8_t id[CAIRN_MESSAGE_ID_LEN]);

/* Calls CB for each message with contact NAME, oldest first. */
CAIRN_WARN_UNUSED int cairn_read(struct cairn *c, const char *name, cairn_message_cb cb, void *ctx);

struct cairn_contact {
	const char *name;
	int established; /* 1 once the first message exchange completed */
	unsigned unread;
};
typedef int (*cairn_contact_cb)(void *ctx, const struct cairn_contact *contact);

/* Calls CB for each contact, in the order they were added (groups: cairn_groups). */
CAIRN_WARN_UNUSED int cairn_contacts(struct cairn *c, cairn_contact_cb cb, void *ctx);

/*
 * Renames contact or group OLD_NAME to NEW_NAME. Only the local label changes: the
 * conversation, its unread count and anything still in the outbox stay with it; a group's
 * members see nothing (its own name, which offers carry, stays). CAIRN_ENOTFOUND if there is
 * no OLD_NAME, CAIRN_EEXIST if NEW_NAME is taken (by a contact or a group), CAIRN_EINVAL if
 * it is empty or longer than CAIRN_NAME_MAX. Renaming to the same name changes nothing.
 */
CAIRN_WARN_UNUSED int cairn_rename(struct cairn *c, const char *old_name, const char *new_name);

/* The safety number shared with contact NAME: the same on both sides when no one is in the
 * middle. OUT receives CAIRN_SAFETY_NUMBER_LEN characters and a NUL. */
CAIRN_WARN_UNUSED int cairn_safety_number(struct cairn *c, const char *name,
                                          char out[CAIRN_SAFETY_NUMBER_LEN + 1]);

/*
 * ---- Groups (PROTOCOL.md 9) ------------------------------------------------------------
 *
 * A group has a local name (like a contact's, CAIRN_NAME_MAX bytes; a group and a contact
 * cannot share one) and a log on one relay. The local name starts as the group's own name
 * (its creator's choice, carried by offers); when that is taken here, a group we join is
 * named "NAME (2)", "NAME (3)"... (an empty own name: the group id's short id first), never
 * over what holds the name. cairn_rename renames a group as it renames a contact. Its messages go
 * through the calls above with NAME the group's name: cairn_send and cairn_queue seal a message
 * into the group's log, cairn_read reads its conversation, and the message callbacks of cairn_sync,
 * cairn_listen and the engine report each new group message with its sender (struct cairn_message's
 * sender).
 *
 * A member is named (MEMBER below) by its contact's name when it is one of our contacts,
 * else by its short id: CAIRN_MEMBER_ID_LEN lowercase hex characters, the first bytes of its
 * identity key, as cairn_group_members shows them.
 *
 * Adding a contact: cairn_group_add sends the contact an offer over our 1:1 session. Its
 * client accepts offers from its established contacts automatically (9.8 allows it: the offer
 * comes over a channel the person already trusts, and joining shows nothing the adder could
 * not show by forwarding): it answers with a join over the same session, the admin's client
 * commits the add when the join arrives and, once the commit is in the log, sends the welcome;
 * with it the contact's client enters the group, which cairn_group_members then lists on both
 * sides. Each step happens in a sync, listen or engine step of the client concerned.
 */

#define CAIRN_MEMBER_ID_LEN 16 /* a member's short id: 16 hex characters (8 bytes) */

/* Creates group NAME with its log on RELAY (cairn://...): we are its only member, and its
 * admin. The log's creation and first entry wait in the group outbox for the next sync,
 * listen or engine step. CAIRN_EEXIST if NAME is a contact's or a group's name already,
 * CAIRN_EINVAL for an empty or too long name, CAIRN_EADDRESS for a relay that does not
 * parse. */
CAIRN_WARN_UNUSED int cairn_group_create(struct cairn *c, const char *name, const char *relay);

/* Offers group GROUP to contact CONTACT over our 1:1 session (queued like a message). The
 * contact becomes a member when its join comes back and our commit of the add is in the log.
 * CAIRN_ENOTFOUND (no such group or contact), CAIRN_ESTATE (the contact is not established
 * yet, or is a member already), CAIRN_EDENIED (we are not an admin of the group). */
CAIRN_WARN_UNUSED int cairn_group_add(struct cairn *c, const char *group, const char *contact);

/*
 * A group invite (PROTOCOL.md 9.8) for someone who is not a contact yet: made as
 * cairn_invite_create makes an invite (the same RELAYS rules, errors and secrecy; NRELAYS 0:
 * one mailbox on the relay of GROUP's log), naming GROUP. NAME is what we will call the
 * person who accepts it: a contact, as for any invite. Whoever accepts it (cairn_invite_accept,
 * the same call as for any invite) joins GROUP: its first message carries a join, our client
 * commits the add when that message arrives and sends the welcome over the new session, as
 * for cairn_group_add. Single use: only the first accepter gets in. CAIRN_ENOTFOUND (no such
 * group), CAIRN_EDENIED (we are not an admin of GROUP), CAIRN_EEXIST (NAME is a contact's or
 * a group's name already). *INVITE receives the text (cairn-invite:...; cairn_free).
 */
CAIRN_WARN_UNUSED int cairn_group_invite(struct cairn *c, const char *group,
                                         const char *const *relays, size_t nrelays,
                                         const char *name, char **invite);

/* Removes MEMBER from GROUP (a commit, which moves the group to a fresh log so the removed
 * member reads nothing new). CAIRN_ENOTFOUND (no such group or member), CAIRN_EDENIED (we are
 * not an admin), CAIRN_EINVAL (MEMBER is us: use cairn_group_leave), CAIRN_EEXIST (a commit of
 * ours is still pending: try again after the next sync). */
CAIRN_WARN_UNUSED int cairn_group_remove(struct cairn *c, const char *group, const char *member);

/* Makes MEMBER of GROUP an admin (a commit). Errors as cairn_group_remove; CAIRN_ESTATE when
 * MEMBER is an admin already. */
CAIRN_WARN_UNUSED int cairn_group_admin(struct cairn *c, const char *group, const char *member);

/* How often GROUP's keys change at the least (PROTOCOL.md 9.3, 9.6): a new epoch after SECONDS
 * (CAIRN_ROTATE_SECONDS_MIN..MAX) or MESSAGES messages (CAIRN_ROTATE_MESSAGES_MIN..MAX),
 * whichever comes first, besides every membership change. A commit, as cairn_group_remove (and
 * with its errors); CAIRN_EINVAL for a value out of range. A new group starts at the maximum
 * of both: 7 days, 1,000 messages. Shorter heals a copied state sooner, at the cost of one
 * commit (its size grows with the group) each time. */
#define CAIRN_ROTATE_SECONDS_MIN  3600u
#define CAIRN_ROTATE_SECONDS_MAX  604800u
#define CAIRN_ROTATE_MESSAGES_MIN 10u
#define CAIRN_ROTATE_MESSAGES_MAX 1000u
CAIRN_WARN_UNUSED int cairn_group_rotation(struct cairn *c, const char *group, uint32_t seconds,
                                           uint32_t messages);

/* Asks GROUP's admins to remove us (the request goes into the log; an admin's client acts on
 * it). Our conversation stays readable. CAIRN_ENOTFOUND, CAIRN_ESTATE (removed already). */
CAIRN_WARN_UNUSED int cairn_group_leave(struct cairn *c, const char *group);

/* One member of a group, borrowed for the duration of a callback. */
struct cairn_group_member {
	const char *name; /* how MEMBER names it: the contact's name, else ID */
	const char *id;   /* its short id: CAIRN_MEMBER_ID_LEN hex characters */
	int contact;      /* 1: one of our contacts (NAME is the contact's name) */
	int admin;        /* 1: an admin of the group */
	int self;         /* 1: this client */
};
typedef int (*cairn_group_member_cb)(void *ctx, const struct cairn_group_member *m);

/* Calls CB for each member of GROUP in the roster's order (a non-zero return stops the walk
 * and is returned). CAIRN_ENOTFOUND if there is no such group. */
CAIRN_WARN_UNUSED int cairn_group_members(struct cairn *c, const char *group,
                                          cairn_group_member_cb cb, void *ctx);

/* GROUP's safety number (9.10) at its current epoch: OUT receives CAIRN_SAFETY_NUMBER_LEN
 * characters and a NUL, *EPOCH (may be NULL) the epoch. Members who see the same number at
 * the same epoch agree on the group's whole history. */
CAIRN_WARN_UNUSED int cairn_group_safety_number(struct cairn *c, const char *group,
                                                char out[CAIRN_SAFETY_NUMBER_LEN + 1],
                                                uint64_t *epoch);

/* One of our groups, borrowed for the duration of a callback. */
struct cairn_group_info {
	const char
	    *name;       /* our local name for it (cairn_rename changes it; members never see it) */
	size_t members;  /* in its roster as we last read it, us included */
	int admin;       /* 1: we are an admin */
	int removed;     /* 1: a commit removed us (or our leave): nothing new arrives; our
	                  * history stays readable */
	uint64_t epoch;  /* its current epoch (cairn_group_safety_number's) */
	unsigned unread; /* messages not yet shown by cairn_read */
	unsigned warnings; /* CAIRN_GROUP_WARN_* bits: what we noticed of the relay or of a copy */
};

/*
 * What our client noticed in a group's log (PROTOCOL.md 9.6, 9.9). Each is set when first
 * seen and stays set: it tells the person to compare the group's safety number with the
 * other members (cairn_group_safety_number) and, for COPIED, that the device's state is in
 * someone else's hands too.
 *
 * A member's key update counts messages that never reached us: the relay withheld or
 * dropped some (WITHHELD); entries expired on the relay before we read them (EXPIRED); an admin
 * signed a commit that does not fit the history we hold (BAD_COMMIT); key updates as us that
 * we never made: a copy of our state speaks (COPIED).
 */
#define CAIRN_GROUP_WARN_WITHHELD   1u
#define CAIRN_GROUP_WARN_EXPIRED    2u
#define CAIRN_GROUP_WARN_BAD_COMMIT 4u
#define CAIRN_GROUP_WARN_COPIED     8u

typedef int (*cairn_group_cb)(void *ctx, const struct cairn_group_info *g);

/* Calls CB for each of our groups, in the order we created or joined them (a non-zero return
 * stops the walk and is returned). cairn_contacts lists contacts only; this lists groups
 * only: one namespace, two lists. */
CAIRN_WARN_UNUSED int cairn_groups(struct cairn *c, cairn_group_cb cb, void *ctx);

/*
 * ---- Intake addresses (PROTOCOL.md 10): the owner's side ------------------------------
 *
 * An intake address is public and reusable: anyone who has it can open a conversation with
 * us, each envelope paid for with proof of work. First contacts arrive as requests, which are
 * not contacts (cairn_contacts does not list them, nothing is sent to them) until accepted.
 * An intake is known by its LABEL, a namespace of its own (1..CAIRN_NAME_MAX bytes; an intake
 * is not something one sends to, so it takes no contact's or group's name). Every call below
 * that changes an address asks its relays at once, on connections of its own, and returns
 * the network's errors (CAIRN_ECONNECT, CAIRN_ETIMEDOUT, a relay's ERROR)
 * as they come; cairn_sync does what the clock asks of each intake (a new prekey every 7
 * days, bundles appended again, a rotated address's old mailboxes deleted after its grace).
 */

/* Makes intake LABEL with one intake mailbox and one bundle log on each of RELAYS (NRELAYS,
 * 1..CAIRN_RELAYS_MAX, as for cairn_invite_create) demanding WORK_BITS bits of work (0: 20;
 * else 1..40). *ADDRESS receives its text (cairn-intake:...; cairn_free). CAIRN_EEXIST if an
 * intake has LABEL already, CAIRN_EINVAL, CAIRN_EADDRESS, or a relay's error (then what was
 * made is deleted again, best effort, and nothing is kept). */
CAIRN_WARN_UNUSED int cairn_intake_create(struct cairn *c, const char *const *relays,
                                          size_t nrelays, const char *label, unsigned work_bits,
                                          char **address);

/* The current address of intake LABEL into *ADDRESS (cairn_free). CAIRN_ENOTFOUND. */
CAIRN_WARN_UNUSED int cairn_intake_address(struct cairn *c, const char *label, char **address);

/* Gives intake LABEL a new address (new mailboxes and logs on the same relays, the same
 * prekeys); the old one keeps working for GRACE_SECONDS (0: deleted now; at most 2^31 - 1),
 * then a sync deletes it. An address rotated before and still in its grace is deleted now.
 * *ADDRESS receives the new text (cairn_free). Requests and contacts are unaffected. */
CAIRN_WARN_UNUSED int cairn_intake_rotate(struct cairn *c, const char *label,
                                          uint64_t grace_seconds, char **address);

/* Deletes intake LABEL's mailboxes and logs on every relay, then the intake. If a relay does
 * not answer, its error is returned and the intake is kept (call again). Requests stay. */
CAIRN_WARN_UNUSED int cairn_intake_revoke(struct cairn *c, const char *label);

/* Changes the work intake LABEL's mailboxes demand to WORK_BITS (1..40, else CAIRN_EINVAL)
 * on every relay, and appends a bundle that says so. */
CAIRN_WARN_UNUSED int cairn_intake_work(struct cairn *c, const char *label, unsigned work_bits);

/* One intake, borrowed for the duration of a callback. */
struct cairn_intake {
	const char *label;
	const char *address; /* its current text */
	unsigned work_bits;
	unsigned pending;  /* requests that came through it and wait */
	int64_t old_until; /* a rotated address works until then (seconds); 0: none */
};
typedef int (*cairn_intake_cb)(void *ctx, const struct cairn_intake *in);

/* Calls CB for each intake, in creation order (a non-zero return stops the walk and is
 * returned). */
CAIRN_WARN_UNUSED int cairn_intakes(struct cairn *c, cairn_intake_cb cb, void *ctx);

#define CAIRN_REQUEST_ID_LEN 16 /* a request's id: 16 lowercase hex characters */
#define CAIRN_PREVIEW_MAX    160

/* A request (a first contact through one of our intakes), borrowed for a callback. */
struct cairn_request {
	const char *id;     /* CAIRN_REQUEST_ID_LEN hex characters: stable, unique */
	const char *intake; /* the label it came through ("" if that intake is revoked) */
	/* The start of its first message: at most CAIRN_PREVIEW_MAX bytes, raw (what a stranger
	 * wrote: make it safe before showing it), cut at a UTF-8 boundary. */
	const uint8_t *preview;
	size_t preview_len;
	unsigned messages; /* stored so far */
	int64_t first_at;  /* when its first message arrived (seconds) */
};
typedef int (*cairn_request_cb)(void *ctx, const struct cairn_request *r);

/* Calls CB for each pending request, oldest first (a non-zero return stops the walk and is
 * returned). */
CAIRN_WARN_UNUSED int cairn_requests(struct cairn *c, cairn_request_cb cb, void *ctx);

/* How many first messages were dropped (*DROPPED) because 10,000 requests were pending. */
CAIRN_WARN_UNUSED int cairn_requests_dropped(struct cairn *c, uint64_t *dropped);

/* Accepts request ID as contact NAME (the rules of contact names; CAIRN_EEXIST if taken): it
 * becomes a contact in every respect, and the next sync, listen or engine step moves it to
 * fresh mailboxes on the intake's relays (its first message from us). CAIRN_ENOTFOUND. */
CAIRN_WARN_UNUSED int cairn_request_accept(struct cairn *c, const char *id, const char *name);

/* Rejects request ID: it and its messages are deleted, and its later messages dropped unread.
 * Nothing is sent. CAIRN_ENOTFOUND. */
CAIRN_WARN_UNUSED int cairn_request_reject(struct cairn *c, const char *id);

/* As cairn_request_reject, and any later first message from the same identity is dropped. */
CAIRN_WARN_UNUSED int cairn_request_block(struct cairn *c, const char *id);

/* ---- routes: how to reach a relay (PROTOCOL.md section 1: a relay is its key) ---------- */

/*
 * Stores ADDRESS as the way to reach the relay whose key it carries: from now on every
 * connection this client makes to a relay with that key (named by an invite, a contact, a
 * group or our own mailboxes, under any address) goes to ADDRESS instead, e.g. its
 * cairn+https or cairn+obfs4 address where the direct one is blocked. Replaces an earlier route
 * for that key. Returns 0, CAIRN_EADDRESS, or a store error.
 */
CAIRN_WARN_UNUSED int cairn_route_set(struct cairn *c, const char *address);

/* Removes the route of the relay named by ADDRESS_OR_KEY: an address (its key counts) or the
 * key alone (43 base64url characters). Returns 0, CAIRN_ENOTFOUND, CAIRN_EADDRESS. */
CAIRN_WARN_UNUSED int cairn_route_remove(struct cairn *c, const char *address_or_key);

/* One route, borrowed for the duration of a callback. */
struct cairn_route {
	const char *key;     /* the relay's key, 43 base64url characters */
	const char *address; /* the address it is reached by */
};
typedef int (*cairn_route_cb)(void *ctx, const struct cairn_route *r);

/* Calls CB for each route, oldest first (a non-zero return stops the walk and is returned). */
CAIRN_WARN_UNUSED int cairn_routes(struct cairn *c, cairn_route_cb cb, void *ctx);

/* ---- relay policies (PROTOCOL.md 5.13) -------------------------------------------------- */

/*
 * A relay's signed policy, verified against the key of its address. Every text is what the
 * relay's operator wrote (UTF-8, at most 1024 bytes): an application shows it only through a
 * filter of control and bidirectional characters, never raw. PUBLISHED 0: the relay publishes
 * none (or is too old to say); the texts are then "" and TTL, FORWARDING and DIGEST 0/"".
 */
struct cairn_relay_policy {
	int published;
	const char *jurisdiction;
	const char *contact;
	uint32_t ttl; /* seconds an envelope waits on the relay, from its configuration */
	const char *logging;
	const char *retention;
	int forwarding; /* 1: the relay carries private-routing forwards, from its configuration */
	const char *statement;
	const char *digest; /* 64 hex characters: the BLAKE2b-256 of the signed body */
};
typedef int (*cairn_relay_policy_cb)(void *ctx, const struct cairn_relay_policy *p);

/*
 * Connects to ADDRESS, asks for its policy, verifies its signature against the key in
 * ADDRESS, and calls CB once with it (borrowed for the call; CB's return is returned). Stores
 * nothing. Returns 0, CAIRN_EADDRESS, a connection error, CAIRN_EAUTH when the relay answered
 * with a policy that is not signed by the key of ADDRESS (or does not decode), CAIRN_ESTATE
 * for any other answer.
 */
CAIRN_WARN_UNUSED int cairn_relay_info(struct cairn *c, const char *address,
                                       cairn_relay_policy_cb cb, void *ctx);

/* A relay holding our mailboxes changed its policy, or withdrew it, since SINCE (when the
 * client learned the previous one, seconds since the epoch). RELAY: the address it was
 * learned through. Sync and the engine store what they learn; these are reported once. */
struct cairn_policy_notice {
	const char *relay;
	int withdrawn;
	int64_t since;
};
typedef int (*cairn_policy_notice_cb)(void *ctx, const struct cairn_policy_notice *n);

/* Calls CB once for each notice not reported before, and forgets it (a non-zero return stops
 * the walk). Returns 0 or a store error. */
CAIRN_WARN_UNUSED int cairn_policy_notices(struct cairn *c, cairn_policy_notice_cb cb, void *ctx);

/* ---- bundles: messages carried across a shutdown (PROTOCOL.md 12) --------------------- */

/*
 * Writes the outbox to PATH as a bundle: one item (CAIRN_BUNDLE_ITEM_LEN bytes) per message
 * part waiting for a contact whose first mailbox is an ordinary one, sealed for that
 * mailbox's relay and valid for LIFETIME_S seconds (1..CAIRN_BUNDLE_LIFETIME_MAX_S), in random
 * order, through a temporary file beside PATH (fsync, rename), mode 0600. The outbox is left
 * as it is: sync or listen still sends it, and the recipient reads each message once. *ITEMS
 * (may be NULL) receives the number of items (0 writes an empty file). Group messages and
 * first messages through an intake address are not bundled. Returns 0, CAIRN_EINVAL,
 * CAIRN_ESTATE (an engine runs), CAIRN_EIO, or a store error.
 */
CAIRN_WARN_UNUSED int cairn_bundle_export(struct cairn *c, const char *path, uint32_t lifetime_s,
                                          size_t *items);

/* What one relay made of a bundle's items (cairn_bundle_deliver), borrowed for a callback. */
struct cairn_bundle_result {
	const char *relay;  /* the address tried */
	int status;         /* 0, or why the relay could not be reached or the delivery stopped */
	unsigned taken;     /* stored, now or by an earlier delivery (the relay says OK to both) */
	unsigned expired;   /* past their not_after: refused for good */
	unsigned refused;   /* refused for good by the mailbox's rules (denied, quota, full...) */
	unsigned elsewhere; /* not for this relay, or altered: tried on the next */
	unsigned failed;    /* not answered for good (busy, connection lost): try again later */
	unsigned items;     /* totals only: the bundle's items */
};
typedef int (*cairn_bundle_cb)(void *ctx, const struct cairn_bundle_result *r);

/*
 * Delivers the bundle at PATH as a courier: to each of RELAYS[0..NRELAYS) (addresses) in
 * turn, or with NRELAYS 0 to every relay this client knows (its own mailboxes' and its
 * contacts'), over the client's transports and routes, each item not yet taken in a FORWARDED
 * (PROTOCOL.md 5.12). An item a relay does not open is tried on the next. CB (may be NULL)
 * hears each relay's result; TOTAL (may be NULL) the sums, its `failed` the items no relay
 * took for good. Returns 0, CAIRN_EINVAL (PATH is not a bundle: empty, or its length is not a
 * multiple of CAIRN_BUNDLE_ITEM_LEN; nothing was sent), CAIRN_ENOTFOUND (no such file, or no
 * relay to try), CAIRN_ECONNECT (no relay could be reached), CAIRN_ESTATE, CAIRN_EIO.
 */
CAIRN_WARN_UNUSED int cairn_bundle_deliver(struct cairn *c, const char *path,
                                           const char *const *relays, size_t nrelays,
                                           cairn_bundle_cb cb, void *ctx,
                                           struct cairn_bundle_result *total);

/* ---- disappearing messages (PROTOCOL.md 8.11) ------------------------------------------ */

/*
 * Disappearing messages (docs/PROTOCOL.md 8.11). A conversation (contact or group NAME) has a
 * timer: 0 (off) or 1 to CAIRN_TIMER_MAX_S seconds. Every message stored while it is on is
 * deleted from this device that long after it was stored here (sent or received), with
 * everything the device holds of it; the other members' devices do the same. A change is a
 * message of the conversation, sent to the others and kept in the history; of changes made
 * at once on two devices, both keep the same one (the later by its sender's clock, ties by
 * id). Messages already stored keep their time. Expired messages are deleted at cairn_open,
 * at cairn_read, after a sync and while an engine or cairn_listen runs.
 *
 * cairn_timer_set queues the change and sends it like cairn_send (CAIRN_ECONNECT: queued,
 * it goes with the next sync; the timer applies here at once either way); cairn_timer_queue
 * only queues it (with an engine running). Both return 0, CAIRN_EINVAL (SECONDS over
 * CAIRN_TIMER_MAX_S), CAIRN_ENOTFOUND, CAIRN_ESTATE (no session yet, or an engine runs for
 * cairn_timer_set), or a store or network error. cairn_timer_get reads the timer in force.
 */
CAIRN_WARN_UNUSED int cairn_timer_set(struct cairn *c, const char *name, uint32_t seconds);
CAIRN_WARN_UNUSED int cairn_timer_queue(struct cairn *c, const char *name, uint32_t seconds);
CAIRN_WARN_UNUSED int cairn_timer_get(struct cairn *c, const char *name, uint32_t *seconds);

/* ---- files (docs/PROTOCOL.md section 11) ---- */

/*
 * A file of up to 2 GiB goes to a contact or a group as a log of fixed-size encrypted chunks
 * on one of our relays, and a small file message in the conversation names it and holds its
 * keys. Sending encrypts the file once into a spool in the home, uploads the chunks and then
 * sends the message; receiving stores the message as an offered file, which cairn_file_get
 * fetches, verifies whole and writes out. Both resume where they stopped (a dropped link, a
 * killed process, a relay restart): call them again. Neither may run while this handle's
 * engine runs (CAIRN_ESTATE). A file's id is its message's id.
 */
#define CAIRN_FILE_ID_LEN CAIRN_MESSAGE_ID_LEN

enum cairn_file_state {
	CAIRN_FILE_SENDING = 1,   /* ours: uploading (or waiting to resume) */
	CAIRN_FILE_SENT = 2,      /* ours: every chunk uploaded and the message queued */
	CAIRN_FILE_OFFERED = 3,   /* theirs: not fetched yet */
	CAIRN_FILE_RECEIVING = 4, /* theirs: fetching (or waiting to resume) */
	CAIRN_FILE_RECEIVED = 5,  /* theirs: verified whole and written out */
	CAIRN_FILE_FAILED = 6,    /* either: ended by an error that a retry cannot fix */
};

/* One file, borrowed for the duration of a callback. */
struct cairn_file {
	uint8_t id[CAIRN_FILE_ID_LEN];
	const char *conversation; /* the contact's or the group's name */
	const char *sender;       /* a group file from another member: who; else NULL */
	const char *name;      /* as the sender named it: UNTRUSTED text, filter before showing */
	const char *safe_name; /* NAME made safe as a file name (what cairn_file_get writes) */
	int outgoing;          /* 1: ours */
	int state;             /* enum cairn_file_state */
	int error;             /* FAILED: why (a CAIRN_E* code) */
	uint64_t size;         /* bytes */
	uint64_t done;         /* bytes uploaded or fetched so far */
	int64_t sent_at;       /* the sender's clock */
};
typedef int (*cairn_file_cb)(void *ctx, const struct cairn_file *f);

/* Progress: DONE of TOTAL bytes. Called often; keep it cheap. */
typedef void (*cairn_progress_cb)(void *ctx, uint64_t done, uint64_t total);

/*
 * Sends the file at PATH to contact or group NAME (blocking): an unfinished send of the same
 * PATH to the same conversation is resumed, else a new one starts. Returns 0 once every chunk
 * is on the relay and the file message was sent; CAIRN_ECONNECT (or CAIRN_ETIMEDOUT) when
 * the relay stayed unreachable, or the message stays queued for the next sync (call again:
 * it resumes); CAIRN_EQUOTA, CAIRN_ECAPACITY or CAIRN_EDENIED when the relay refused the
 * file (final: the file is FAILED); CAIRN_ETOOBIG over 2 GiB; CAIRN_ENOTFOUND (no such
 * conversation), CAIRN_EIO (PATH unreadable). PROGRESS (may be NULL) sees the bytes
 * uploaded. *ID_OUT (may be NULL) receives the file's id.
 */
CAIRN_WARN_UNUSED int cairn_file_send(struct cairn *c, const char *name, const char *path,
                                      cairn_progress_cb progress, void *ctx,
                                      uint8_t id_out[CAIRN_FILE_ID_LEN]);

/* Calls CB for every file sent or offered, oldest first (a non-zero return stops the walk and
 * is returned). */
CAIRN_WARN_UNUSED int cairn_files(struct cairn *c, cairn_file_cb cb, void *ctx);

/*
 * Fetches file ID (blocking), resuming a fetch that stopped, verifies it whole (every chunk
 * opens in order, the padding is zero, the digest matches) and writes it to OUTPUT (NULL:
 * its safe_name in the current directory) through a temporary file in OUTPUT's directory,
 * never replacing a file that exists (CAIRN_EEXIST). Returns 0; CAIRN_ENOTFOUND (no such
 * incoming file); CAIRN_EEXPIRED (the file has expired on the relay, or was deleted: final);
 * CAIRN_EAUTH (a chunk was damaged or tampered with, or the digest differs: final, nothing is
 * kept); CAIRN_ECONNECT / CAIRN_ETIMEDOUT (call again: it resumes); CAIRN_EIO (OUTPUT's
 * directory). A file already received returns 0 and writes nothing.
 */
CAIRN_WARN_UNUSED int cairn_file_get(struct cairn *c, const uint8_t id[CAIRN_FILE_ID_LEN],
                                     const char *output, cairn_progress_cb progress, void *ctx);

/* Frees a string returned by libcairn (wiped first). Accepts NULL. */
void cairn_free(char *s);

#ifdef __cplusplus
}
#endif
#endif
