/* SPDX-License-Identifier: MIT */
/*
 * An envelope in the relay's memory and its life, as one state: where it is (in its mailbox's
 * queue or not), what the storage is doing with it (its PUT, a read of its body, its DELETE)
 * and whether it is on disk. Every step goes through envelope_enter, which checks it against
 * the table below in debug builds (and with CAIRN_CHECK_STATES). Command layer only.
 */
#ifndef CAIRN_RELAY_ENVELOPE_H
#define CAIRN_RELAY_ENVELOPE_H

#include <stdbool.h>
#include <stdint.h>

#include "storage.h"

struct mailbox;
struct peer;
struct relay;

/*
 * The life of an envelope. A SEND makes it WRITING; its body is then dropped (EVICTED) or kept
 * (STORED) once durable; an envelope whose body was dropped is made again, READING, when
 * delivery needs the body back. It leaves its mailbox's queue when acknowledged (ACK), or
 * expired or its mailbox deleted (DROP: the store operation that removes it on disk follows).
 * A job the storage has not taken yet is cancelled then; one it has taken is waited for in
 * one of the *_ACKED / *_LEFT states. Whether a PUT is held back, queued or taken is the
 * storage's state of the job, not the envelope's: storage_cancel tells.
 *
 *   NEW ──SEND──▶ WRITING ──PUT done──▶ STORED ──ACK──▶ DELETING ──DELETE done──▶ GONE
 *    │               │                   ▲  │
 *    │               │ ACK before the    │  └──body not needed soon──▶ EVICTED
 *    │               │ PUT was taken     │                             (entry kept)
 *    │               └──────▶ CANCELLED  │
 *    └─read back─▶ READING ─read done────┘
 *
 *   from           event                                    to
 *   NEW            SEND: its PUT submitted (held or not)    WRITING
 *                  delivery needs a dropped body back       READING
 *                  not queued (out of memory)               GONE
 *   WRITING        PUT done                                 STORED
 *                  PUT failed: not accepted                 GONE
 *                  ACK or DROP, PUT taken back              CANCELLED: never on disk
 *                  ACK, PUT already taken                   WRITING_ACKED: DELETE queued
 *                  DROP, PUT already taken                  WRITING_LEFT
 *   STORED         body not needed soon, or no subscriber   EVICTED
 *                  ACK                                      DELETING
 *                  DROP                                     GONE
 *   READING        read done                                STORED
 *                  read failed, still on disk               EVICTED
 *                  read failed: no longer on disk           GONE
 *                  ACK, read taken back                     DELETING
 *                  ACK, read already taken                  READING_ACKED: DELETE queued
 *                  DROP, read taken back                    GONE
 *                  DROP, read already taken                 READING_LEFT
 *   WRITING_ACKED  PUT done or failed                       DELETING
 *   WRITING_LEFT   PUT done or failed                       GONE
 *   READING_ACKED  read done or failed                      DELETING
 *   READING_LEFT   read done or failed                      GONE
 *   DELETING       DELETE done (or failed: logged)          GONE
 *
 * A cancelled PUT's sender is answered OK at once (the owner has it, or it expired or its
 * mailbox went). A job queued behind one already taken completes after it (the storage hands
 * batches back in order), so a DELETE is never done before the PUT or read it followed.
 * CANCELLED, EVICTED and GONE are final: entering one frees the struct. An EVICTED envelope
 * is still on disk and in its mailbox's queue, as an entry without a body.
 */
enum envelope_state {
	/* Made by envelope_new; its mailbox's pending entry may already point to it. */
	ENV_NEW,
	/* In its mailbox's queue (env->mailbox is set): */
	ENV_WRITING, /* its PUT with the storage (held, queued or taken); body in memory */
	ENV_STORED,  /* on disk, body in memory, no job in flight */
	ENV_READING, /* on disk, its body being read back for delivery */
	/* Out of its queue (env->mailbox is NULL), waiting for the storage: */
	ENV_WRITING_ACKED, /* acknowledged while its PUT was taken; its DELETE queued after it */
	ENV_WRITING_LEFT,  /* dropped while its PUT was taken; the removal on disk follows it */
	ENV_READING_ACKED, /* acknowledged while its read was taken; its DELETE queued */
	ENV_READING_LEFT,  /* dropped while its read was taken: the body is not wanted */
	ENV_DELETING,      /* acknowledged: its DELETE with the storage */
	/* Final: the struct is freed on entering these. */
	ENV_CANCELLED, /* its PUT taken back before the storage took it: never on disk */
	ENV_EVICTED,   /* body dropped from memory; still on disk and queued, without a body */
	ENV_GONE,      /* not on disk or removed there, and nothing of it in flight */
	ENV_STATES
};

/*
 * An envelope in memory: one allocation holding the body (when it came from a SEND) and the
 * two storage jobs it may need, so the hot path allocates nothing else.
 */
/* What a bundled envelope (PROTOCOL.md 5.12) carries to the store with it: its seal's E and
 * not_after, for the seen row written in the same op. */
struct bundle_mark {
	uint8_t e[CAIRN_KEY_LEN];
	int64_t not_after;
};

struct envelope {
	struct relay *relay;
	uint64_t id;
	struct mailbox *mailbox; /* set exactly while in its mailbox's queue */
	uint32_t len;
	enum envelope_state state;
	int64_t stored_at;
	uint8_t *body;       /* inline after the struct, or malloc'd by a storage read */
	struct peer *sender; /* waiting for its OK; holds a reference on its connection */
	uint32_t sender_rid;
	/* JOB is the PUT (WRITING, WRITING_*) or the read (READING, READING_*), never both: an
	 * envelope from a SEND is written, one made again for delivery is read. */
	struct storage_job job, del_job;
	/* A BUNDLED's (owned, freed with the envelope) or NULL. Its write is never cancelled,
	 * so the seen row reaches the disk even when the owner acknowledges at once. */
	struct bundle_mark *bundle;
	/* Made to be read back (delivery.c), its LEN counted in relay->read_back_bytes
	 * until it is freed */
	bool read_back;
};

/* Whether FROM -> TO is a step of the table above. */
bool envelope_step_legal(enum envelope_state from, enum envelope_state to);
/* The state's name, for logs. */
const char *envelope_state_name(enum envelope_state s);

/*
 * Moves ENV to TO (checked against the table in debug builds and with CAIRN_CHECK_STATES: an
 * illegal step is logged and aborts). Leaving the queue clears env->mailbox; a final state
 * frees ENV and its body, so the caller must not touch ENV after that. The caller has done
 * what the step means for the mailbox's queue and the storage.
 */
void envelope_enter(struct envelope *env, enum envelope_state to);

/* A new envelope of MB with id ID and LEN bytes (BODY copied in, or NULL: read back later),
 * NEW, its delete job ready. NULL when out of memory. */
struct envelope *envelope_new(struct relay *relay, struct mailbox *mb, uint64_t id,
                              const uint8_t *body, uint32_t len);
/* A NEW envelope from SENDER's SEND REQUEST_ID, already in MB's queue, stored at NOW: its PUT
 * is submitted (held back when MB's owner is subscribed) and it is WRITING. */
void envelope_write(struct envelope *env, struct peer *sender, uint32_t request_id, int64_t now);
/* Sends ENV's sender its answer (once) and releases it. */
void envelope_answer_sender(struct envelope *env, int status);
/* ENV (its mailbox's entry already acknowledged) leaves the queue; its record is deleted on
 * disk once there, or its PUT taken back. ENV may be freed. */
void envelope_ack(struct envelope *env);
/* ENV (its mailbox's entry already removed) leaves the queue for a store operation that
 * removes it on disk (range expiry, its mailbox deleted); its PUT is taken back if it can be.
 * ENV may be freed. */
void envelope_drop(struct envelope *env);

#endif
