/* SPDX-License-Identifier: MIT */
/*
 * The attack-mix driver: one hostile peer speaking the real protocol (handshake, sealed frames
 * of batched msgpack commands) that composes the worst frames it can, as close to 64 KiB as
 * the content allows, from a seed. It writes as fast as the relay reads and drains replies
 * without ever waiting on one, so the relay, not the attacker, sets the pace.
 *
 * Commands come from one table of generators (attack.c, `generators`): every command of
 * docs/PROTOCOL.md 5.2 in its valid and hostile forms, reply types sent as commands, and
 * malformed-but-decodable commands (wrong field types and sizes, non-shortest integers) that
 * get an ERROR and leave the connection open. A new command joins the attack as one entry
 * of that table (a name, a weight in the random mix, a function that encodes it); the named
 * patterns below then pick from the table.
 */
#ifndef CAIRN_TEST_ATTACK_H
#define CAIRN_TEST_ATTACK_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * The known worst cases (issue 10), and the random mix of everything:
 * - TOMBSTONES: SEND to an own subscribed mailbox and ACK every delivery except the first
 *   (each ACK leaves a tombstone behind it), for the first half of the run; then frames of
 *   SUBSCRIBEs (some 2,200 per frame) on that mailbox.
 * - AUTH: frames of ~675 AUTHs (valid, bad signature, unknown mailbox), each an Ed25519
 *   verify for the relay.
 * - DELETE_STORM: fill own mailboxes with full-size envelopes for the first 70% of the run,
 *   then CREATE and DELETE empty mailboxes as fast as replies allow.
 * - CREATE_FLOOD: frames full of CREATEs; a new connection once this one is refused.
 * - FILL: full-size SENDs to own mailboxes, never subscribed, as fast as the relay stores.
 * - MIX: every generator at random, weighted; mailboxes are created, secured, subscribed,
 *   filled, acknowledged and deleted along the way.
 */
enum attack_pattern {
	ATTACK_TOMBSTONES,
	ATTACK_AUTH,
	ATTACK_DELETE_STORM,
	ATTACK_CREATE_FLOOD,
	ATTACK_FILL,
	ATTACK_MIX,
	ATTACK_PATTERNS
};

/* The generators of the table, for per-command counts (attack_generator_name). */
#define ATTACK_GENERATORS_MAX 48

struct attack_config {
	uint16_t port;
	const uint8_t *relay_pub; /* 32 bytes */
	enum attack_pattern pattern;
	uint64_t seed;
	int64_t duration_ms;
	const _Atomic int *stop; /* optional: ends the run early when non-zero */
};

struct attack_stats {
	uint64_t connections;     /* handshakes completed */
	uint64_t closed_by_relay; /* connections the relay closed */
	uint64_t frames, bytes_out, commands;
	uint64_t replies, envelopes, ends;
	uint64_t ok, created, errors[16]; /* errors by wire code (0: codes above 15) */
	uint64_t per_generator[ATTACK_GENERATORS_MAX];
	int64_t write_blocked_ms; /* time the relay left the attacker's output unread */
};

/*
 * Runs one attacker until CFG->duration_ms has passed (or *CFG->stop): connects, composes and
 * writes frames of CFG->pattern, drains replies, reconnects whenever the relay closes the
 * connection or the pattern needs a fresh one. Fills *ST. Returns 0, or -1 if it never
 * completed a handshake.
 */
int attack_run(const struct attack_config *cfg, struct attack_stats *st);

const char *attack_pattern_name(enum attack_pattern p);
/* Name of generator I, or NULL past the end of the table. */
const char *attack_generator_name(unsigned i);

#endif
