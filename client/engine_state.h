/* SPDX-License-Identifier: MIT */
/*
 * The engine's state and its lower layers (engine.h is the top): the sessions (one per relay
 * and role) and what engine.c's step calls, each file calling only the ones listed after it:
 *
 *   engine.c ─── the step, descriptors and deadlines, what a relay says, the public API
 *     ├── engine_move.c ──── moving contacts out of our invite mailboxes
 *     ├── engine_outbox.c ── dispatching the outbox; a relay's OK or refusal
 *     │     └── engine_intake.c ── intake mailboxes: bundle logs, proof of work
 *     ├── engine_retire.c ── deleting the mailboxes a contact has moved out of
 *     └──> engine_sessions.c ── connecting, subscribing, closing, backoff
 *
 * A session's closing does not call up: it bumps the session's gen, and a layer above that
 * waits for an answer on the connection notices the change itself. Not part of the public API.
 */
#ifndef CAIRN_CLIENT_ENGINE_STATE_H
#define CAIRN_CLIENT_ENGINE_STATE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

#define ENGINE_QUIET_MS 400 /* a drained relay stays silent this long */
/* How long a session's intake deliveries count as activity: a sync reads the backlog of an
 * intake mailbox (its quota, about a thousand envelopes, takes a second or two), but a flood
 * that never lets the mailbox go quiet must not hold every sync to its deadline. */
#define ENGINE_INTAKE_BUSY_MS 5000
/* listen: below the relay's idle timeout, and how soon a dead path is noticed (plus the
 * connection timeout) */
#define ENGINE_PING_EVERY_MS  30000
#define ENGINE_TICK_MS        2000 /* listen: moves, new mailboxes, other processes' outbox */
#define ENGINE_BACKOFF_MAX_MS 60000
/* listen: how soon an intake mailbox that refused our work twice (most likely our clock is
 * off, PROTOCOL.md 10.4) is solved for again: solving costs about 0.3 s at 20 bits */
#define ENGINE_WORK_RETRY_MS 60000

struct sub {
	uint32_t rid;                   /* of the SUBSCRIBE; 0 until subscribed */
	uint32_t delete_rid;            /* of a DELETE in flight, or 0 */
	uint8_t contact[RECORD_ID_LEN]; /* whose mailbox: a contact's id, or an intake's */
	bool intake;                    /* an intake mailbox (intakes.h): CONTACT is its intake */
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
};

struct pending_send {
	uint32_t rid;
	uint8_t outbox_id[16];
	uint8_t message_id[APPMSG_ID_LEN];
	uint8_t kind;
	uint8_t conv[RECORD_ID_LEN];
	/* A SEND_WORK to an intake mailbox (engine_intake.c): whose, and which of its peer
	 * mailboxes, so that ERROR work can read that relay's bundle log again. */
	bool work;
	uint8_t peer;
	uint8_t contact[RECORD_ID_LEN];
	/* Sent as a FORWARD through one of our relays (PROTOCOL.md 5.11): the reply key, and
	 * the index of the destination relay's sending session, which refusals are noted on. */
	bool forwarded;
	uint8_t k_rep[CAIRN_KEY_LEN];
	size_t dest;
};

/* An outbox entry a session's relay refused: it goes to the contact's next mailbox. */
struct refusal {
	uint8_t outbox_id[16];
	size_t session;
};

/* An intake mailbox whose bundle log must be read before the outbox entry goes there
 * (engine_intake.c): its work bits are not known yet. */
struct bundle_need {
	uint8_t outbox_id[16];
	uint8_t contact[RECORD_ID_LEN];
	uint8_t peer; /* index in the contact's peer list */
	size_t session;
	int rc; /* the read's outcome, once read */
};

/*
 * Each relay gets up to two connections: one that manages our mailboxes there (AUTH,
 * SUBSCRIBE, ACK, DELETE) and one that only sends. On one connection, the relay could link
 * "the owner of these mailboxes" with "writes to that mailbox", i.e. learn who talks to whom.
 */
enum session_role { ROLE_RECEIVE, ROLE_SEND };

struct session {
	char relay[CAIRN_ADDRESS_MAX + 1];
	enum session_role role;
	struct cnet *net;
	struct sub *subs;
	size_t nsubs;
	struct pending_send *sends;
	size_t nsends, capsends;
	uint32_t ping_rid;
	bool ping_done;
	uint32_t policy_rid; /* the POLICY asked on this connection (policies.h), 0 once answered */
	int64_t opened_ms; /* when the connection was set up (ENGINE_INTAKE_BUSY_MS) */
	int64_t ping_due_ms; /* an unanswered PING by then means the path is dead */
	size_t acks, deletes;
	bool tried;          /* sync: connecting was tried in this run */
	bool down;           /* the last attempt to connect failed */
	bool retire_checked; /* retired mailboxes looked for since the last change */
	uint32_t gen;        /* bumped at every close: which connection a request went on */
	int64_t last_ms, next_ping_ms, retry_ms, backoff_ms;
};

struct logio;

/* What an engine is for: sync (receive, then end once drained), send (the outbox only, then
 * end), or listen (receive and send until stopped). */
struct engine_options {
	bool receive; /* subscribe to our mailboxes; false: sending only */
	bool listen;  /* stay connected (reconnect with backoff, ping, tick) */
	/* receive: the group logs only, no mailbox. Only deliveries need the quiet period
	 * (session_drained), so such a pass ends as soon as every log is read to its end. */
	bool logs_only;
	struct cairn_engine_callbacks cb;
	void *ctx;
};

struct engine {
	struct cairn *c;
	struct session *s; /* grows: hold no pointer into it across session_for */
	size_t n;
	bool receive, listen, logs_only;
	bool started;    /* the first step planned and opened the sessions */
	bool finished;   /* sync/send: every relay drained, or the deadline passed */
	bool redispatch; /* outbox entries may need a (new) relay */
	bool recheck;    /* a contact moved: look for mailboxes to delete again */
	bool in_step;    /* a callback is running: cairn_engine_stop is deferred */
	bool stop_asked; /* cairn_engine_stop was called from a callback */
	struct refusal *refused;
	size_t nrefused, caprefused;
	struct refusal *reworked; /* refused for work once: the bundle was read again */
	size_t nreworked, capreworked;
	/* Refused for work twice: not tried there again (nor solved for) until WORK_RETRY_MS,
	 * when both lists are cleared; listen's tick clears the other refusals every 2 s. */
	struct refusal *workfail;
	size_t nworkfail, capworkfail;
	int64_t work_retry_ms;
	struct bundle_need *needs; /* found by a dispatch pass, read after it */
	size_t nneeds, capneeds;
	struct move *moves; /* contacts being moved out of our invite mailboxes (listen) */
	size_t nmoves;
	struct cairn_sync_result res;
	int local_rc; /* the first local failure (storing a delivery): what sync reports */
	int64_t deadline_ms, next_tick_ms;
	int64_t step_ms; /* the time the last step decided what was due by */
	struct cairn_engine_callbacks cb;
	void *ctx;
	struct logio *logs; /* the group logs' transport (logio.h), or NULL without a handler */
};

/* ---- engine_sessions.c ---- */

/* The session of role ROLE with RELAY, made (disconnected) if there is none; NULL when out of
 * memory. */
struct session *session_for(struct engine *e, const char *relay, enum session_role role);

/* Starts connecting S, without waiting: S->net is then connecting (or S is down, retried
 * after a growing pause in listen). Reports the connection's states. */
void session_open(struct engine *e, struct session *s, int64_t now);

/* Takes S's connection further without waiting; once open, queues its AUTH, SUBSCRIBE and
 * PING commands and reports it up; on failure S is down. */
void session_advance(struct engine *e, struct session *s, int64_t now);

/* Whether S's connection is open (connected, handshake done). */
static inline bool session_up(const struct session *s)
{
	return s->net != NULL && cnet_open(s->net);
}

/* Closes S's connection. Sends in flight there are forgotten: redispatched elsewhere. */
void session_close(struct engine *e, struct session *s);

/* S could not connect or broke with ERR: closed, counted, reported, and (listen) retried
 * after a growing pause. */
void session_failed(struct engine *e, struct session *s, int64_t now, int err);

/* Adds a subscription for every mailbox of one contact (a REC_CONTACT value) that has none;
 * a cstate_list callback with E as its context. */
int engine_plan_contact(void *e, const uint8_t *v, size_t vlen);

/* Adds a subscription for every intake mailbox (current and old) that has none. Returns 0 or
 * a store error. */
CAIRN_WARN_UNUSED int engine_plan_intakes(struct engine *e);

/* Whether S has nothing left to ask or receive (quiet for ENGINE_QUIET_MS if subscribed). */
bool session_drained(const struct session *s, int64_t now);

/* ---- engine_outbox.c ---- */

/* Queues every outbox entry not in flight on the first of its contact's mailboxes whose
 * relay is connected (or connects now) and has not refused it in this round. Returns 0 or a
 * local error. */
CAIRN_WARN_UNUSED int engine_dispatch(struct engine *e, int64_t now);

/* A relay accepted PS: it leaves the outbox; the message's delivery state is reported once
 * none of its entries waits any more. */
void engine_send_accepted(struct engine *e, const struct pending_send *ps);

/* VIA answered PS, a FORWARD, with M: SEALED with the inner reply (then as a direct SEND's),
 * or anything else (`unreachable`, a refusal of the FORWARD, a SEALED that does not open):
 * not sent, the entry waits (refused on VIA for this round). Wipes PS's key. */
void engine_forward_reply(struct engine *e, struct session *via, struct pending_send *ps,
                          const struct cairn_msg *m);

/* S's relay refused the outbox entry OUTBOX_ID: it goes to the contact's next mailbox. */
void engine_refuse(struct engine *e, const uint8_t outbox_id[16], const struct session *s);

/* Appends (OUTBOX_ID, S) to the list *L (*N of *CAP); out of memory, nothing happens. */
void engine_note(struct refusal **l, size_t *n, size_t *cap, const uint8_t outbox_id[16],
                 size_t session);
/* Whether (OUTBOX_ID, SESSION) is in the list L of N. */
bool engine_noted(const struct refusal *l, size_t n, const uint8_t outbox_id[16], size_t session);

/* ---- engine_intake.c ---- */

/* The work bits of that mailbox are not known: its bundle log is read after this pass. */
void engine_intake_need(struct engine *e, const uint8_t outbox_id[16],
                        const uint8_t contact[RECORD_ID_LEN], size_t peer, const struct session *s);

/* Reads the bundle logs the last pass needed (blocking, a connection each), stores their
 * bits; where none is usable, the entry is refused on that session (the next mailbox). */
void engine_intake_read(struct engine *e);

/* S's relay answered PS, a SEND_WORK, with ERROR work. The first time for this entry and
 * relay, its bundle log is read again and true returned: the entry goes again, solved anew.
 * Else false (refused as any ERROR), and the client remembers it for CAIRN_EWORK. */
bool engine_intake_work_refused(struct engine *e, struct session *s, const struct pending_send *ps);

/* ---- engine_retire.c ---- */

/* Once S is drained, deletes there the retired mailboxes of contacts that have moved. */
void engine_retire_check(struct engine *e, struct session *s);

/* The relay deleted our mailbox of S->subs[I]: it leaves the contact (and the session). */
void engine_mailbox_gone(struct engine *e, struct session *s, size_t i);

/* ---- engine_move.c ---- */

/* Starts moving every contact that answered our invite and is not being moved yet, whose
 * invite mailboxes' relays all have their receiving session up (else at a later tick). */
void engine_moves_start(struct engine *e);

/* Whether M (from S's relay) answers a move's CREATE or SECURE; then it is handled. */
bool engine_move_reply(struct engine *e, struct session *s, const struct cairn_msg *m);

/* Commits every move whose mailboxes are all made, and gives up (deleting what was made)
 * every move of which one failed. */
void engine_moves_finish(struct engine *e);

/* Forgets every move (wiping their keys). */
void engine_moves_free(struct engine *e);

#endif
