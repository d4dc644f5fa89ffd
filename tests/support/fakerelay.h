/* SPDX-License-Identifier: MIT */
/*
 * A misbehaving relay for client integration tests, built only on proto/. It speaks the real
 * protocol (handshake, frames, commands) with in-memory mailboxes, and can deliver every
 * envelope twice and in shuffled order: delivery is "at least once" (docs/PROTOCOL.md 5.4),
 * and a client must stay correct when a relay bends that as far as it will go.
 *
 * It serves from a forked child process, so a test can drive the real `cairn` binary against
 * it with plain blocking calls. Supported: PING, CREATE, AUTH (the signature is verified, as
 * the real relay does), SECURE, SUBSCRIBE, ACK, SEND (the credential is checked), and the group
 * logs of 5.9 (fakerelay_log.c: LOG_CREATE, LOG_APPEND with the credential checked in constant
 * time, LOG_READ with follow, LOG_DELETE). DELETE and quotas are not: no client path under test
 * needs them.
 *
 * Group logs can be tampered with between a test's steps through fakerelay_ctl (a socket to
 * the child, answered synchronously): an old entry appended again under a new seq (replay),
 * and, for the reads that start while a "view" is set, an entry left out (withhold) or two
 * entries' bytes swapped (reorder). A test that runs one `cairn` process at a time so aims a
 * view at one member: set it, run that member's sync, clear it.
 */
#ifndef CAIRN_TEST_FAKERELAY_H
#define CAIRN_TEST_FAKERELAY_H

#include <stdint.h>
#include <sys/types.h>

#include "cairn/address.h"

/* Every delivery of a stored envelope goes out twice (same envelope id both times), and an
 * envelope acknowledged is delivered again with the next subscription, as by a relay that
 * crashed before its deletion reached the disk: only a second subscription's ACK removes it. */
#define FAKERELAY_DUPLICATE 1
/* The envelopes waiting at SUBSCRIBE are delivered in a random order, not oldest first. */
#define FAKERELAY_SHUFFLE 2
/* At SUBSCRIBE, each waiting envelope is held back with probability 1/2, once: it comes with
 * the next subscription instead, after newer ones (never all of them, so a sync progresses). */
#define FAKERELAY_WITHHOLD 4
/* POLICY (PROTOCOL.md 5.13) is answered with a body that names this relay's own key (its A)
 * but is signed by another key: what an impostor of the operator's word would send. Without
 * this mode POLICY gets `unknown command`, as from an older relay. */
#define FAKERELAY_POLICY_FORGED 8

struct fakerelay_stats {
	unsigned long sends;      /* envelopes accepted */
	unsigned long deliveries; /* ENVELOPE replies sent, duplicates included */
	unsigned long duplicates; /* of those, second copies */
	unsigned long replayed;   /* of those, copies of envelopes already acknowledged */
	unsigned long reordered;  /* deliveries that went out before an older envelope */
	unsigned long withheld;   /* envelopes held back from one subscription */
	unsigned long mixed_connections; /* managed a mailbox and sent on one connection */
	unsigned long log_appends;       /* LOG_APPEND accepted */
	unsigned long log_entries;       /* LOG_ENTRY replies sent */
	unsigned long log_replayed;      /* entries appended again by FAKERELAY_LOG_REPLAY */
	unsigned long log_hidden;        /* entries a view left out of a read */
	unsigned long log_swapped;       /* entries a view sent with another entry's bytes */
};

/* Control requests (fakerelay_ctl), all about the newest log (the one created last): */
enum {
	/* The seq its next append will get (0: no log yet). */
	FAKERELAY_LOG_NEXT_SEQ = 1,
	/* Appends again the bytes of its entry of seq A, as a new entry (sent to followers as
	 * any append). Returns the new seq. */
	FAKERELAY_LOG_REPLAY,
	/* From now on, reads leave out its entry of seq A (until FAKERELAY_LOG_CLEAR). */
	FAKERELAY_LOG_HIDE,
	/* From now on, reads send its entry of seq A with the bytes of seq B and the other way
	 * round (until FAKERELAY_LOG_CLEAR). */
	FAKERELAY_LOG_SWAP,
	/* Reads see the log as it is again. */
	FAKERELAY_LOG_CLEAR,
};

struct fakerelay {
	pid_t pid;
	int stats_fd; /* the child writes its stats here when it stops */
	int ctl_fd;   /* fakerelay_ctl's socket to the child */
	uint16_t port;
	uint8_t pub[32];
	char address[CAIRN_ADDRESS_MAX + 1]; /* cairn://KEY@127.0.0.1:PORT */
	struct fakerelay_stats stats;        /* filled by fakerelay_stop */
};

/* Binds a free loopback port, makes a key pair and forks the server with MODES (a mask of
 * FAKERELAY_*). Returns 0 or -1. */
int fakerelay_start(struct fakerelay *f, int modes);

/* Sends the control request OP (FAKERELAY_LOG_*) with A and B and waits for the child's answer:
 * once it returns, every read the child serves afterwards sees the change. Returns the answer
 * (>= 0), or -1 (no such entry, no log, or the child is gone). */
int64_t fakerelay_ctl(struct fakerelay *f, int op, uint64_t a, uint64_t b);

/* Stops the server (SIGTERM), reads its stats into F->stats. Returns 0 when it exited
 * cleanly, -1 otherwise. */
int fakerelay_stop(struct fakerelay *f);

#endif
