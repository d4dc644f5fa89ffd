/* SPDX-License-Identifier: MIT */
/*
 * A commit in the log (docs/PROTOCOL.md section 9.5 "Parts and entries"): cut into one to
 * sixteen slices, each signed by the committer as a part, each carried by one kind 2 entry
 * (sealed by group_part_seal of group_entry.h); and the assembler that takes the parts a
 * member reads, in log order, and says when a commit is complete and at which seq.
 *
 * The part content is commit_id (16) || part_count (u8) || slice || part_sig (64), part_sig
 * = Ed25519(S_committer, "cairn/1 group commit part" || ctx(e) || commit_id || u8 k || u8
 * part_count || slice), k being the entry header's n.
 */
#ifndef CAIRN_PROTO_GROUP_COMMIT_PARTS_H
#define CAIRN_PROTO_GROUP_COMMIT_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "group_keys.h"
#include "group_roster.h"

#define GROUP_COMMIT_ID_LEN    16
#define GROUP_PARTS_MAX        16
#define GROUP_PART_SLICE_MAX   16238 /* 16384 - 63 - 2 - 17 - 64 */
#define GROUP_PART_OVERHEAD    (GROUP_COMMIT_ID_LEN + 1 + CAIRN_SIGNATURE_LEN) /* 81 */
#define GROUP_PART_CONTENT_MAX (GROUP_PART_OVERHEAD + GROUP_PART_SLICE_MAX)
#define GROUP_PARTS_BYTES_MAX  (GROUP_PARTS_MAX * GROUP_PART_SLICE_MAX)

/* The number of parts a commit of LEN bytes takes, or 0 if LEN is 0 or over
 * GROUP_PARTS_BYTES_MAX. */
unsigned group_commit_part_count(size_t len);

/*
 * Writes the content of part K of the commit COMMIT (LEN bytes) into OUT (capacity CAP;
 * GROUP_PART_CONTENT_MAX suffices), signed with SIGN_SECRET (libsodium's 64-byte Ed25519
 * secret key) over CTX, the ctx(e) of the epoch whose keys seal the part (ctx(0) for the
 * genesis). Returns 0, CAIRN_EINVAL (LEN or K out of range) or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int group_commit_part(const uint8_t *commit, size_t len, unsigned k,
                                        const uint8_t commit_id[static GROUP_COMMIT_ID_LEN],
                                        const uint8_t ctx[static GROUP_CTX_LEN],
                                        const uint8_t *sign_secret, uint8_t *out, size_t cap,
                                        size_t *outlen);

/* A part's content as parsed: pointers into the caller's buffer. */
struct group_part {
	const uint8_t *commit_id;
	uint8_t part_count;
	const uint8_t *slice;
	size_t slice_len;
	const uint8_t *sig;
};

/*
 * Parses the part content IN (LEN bytes, untrusted) that is part K (the header's n) of its
 * commit: part_count 1..16, K below it, a slice of exactly GROUP_PART_SLICE_MAX bytes but
 * for the last part's 1..GROUP_PART_SLICE_MAX. The signature is not checked. Returns 0 or
 * CAIRN_EINVAL (*OUT zeroed).
 */
CAIRN_WARN_UNUSED int group_part_parse(const uint8_t *in, size_t len, uint32_t k,
                                       struct group_part *out);

/* Checks part K's signature under SIGN_KEY over CTX. Returns 0 or CAIRN_EAUTH. */
CAIRN_WARN_UNUSED int group_part_verify(const struct group_part *p, uint32_t k,
                                        const uint8_t ctx[static GROUP_CTX_LEN],
                                        const uint8_t sign_key[static CAIRN_KEY_LEN]);

/* What group_assembler_add did with a part. Negative values are CAIRN_E* codes: the part
 * was dropped. */
#define GROUP_PART_DUPLICATE 0 /* a later copy of a counted part, or of a complete commit's */
#define GROUP_PART_COUNTED   1 /* counted; the commit is still incomplete */
#define GROUP_PART_COMPLETE  2 /* counted, and it completes its commit */

/* Commits assembled at once: an epoch normally sees one, two when admins race. */
#define GROUP_ASSEMBLIES_MAX 8

/*
 * The parts of one epoch's log, in log order. The roster and ctx are epoch e's, borrowed
 * and copied respectively; slices are kept in heap buffers until their commit completes.
 * Make one per epoch with group_assembler_init, release it with group_assembler_free.
 */
struct group_assembler {
	const struct group_roster *roster;
	uint8_t ctx[GROUP_CTX_LEN];
	uint64_t last_seq; /* of the latest part offered; parts come in log order */
	struct group_assembly {
		bool used, done;
		uint8_t commit_id[GROUP_COMMIT_ID_LEN];
		uint8_t part_count;
		uint16_t have; /* bit k: part k counted */
		uint64_t first_seq;
		size_t last_len; /* the last slice's length, once counted */
		uint8_t *buf;    /* part_count x GROUP_PART_SLICE_MAX, until done */
	} a[GROUP_ASSEMBLIES_MAX];
};

/* Starts assembling the parts of epoch e, whose roster is ROSTER (borrowed: it must outlive
 * AS) and whose context is CTX. */
void group_assembler_init(struct group_assembler *as, const struct group_roster *roster,
                          const uint8_t ctx[static GROUP_CTX_LEN]);

/* Frees AS's buffers (AS may then be initialized again). */
void group_assembler_free(struct group_assembler *as);

/*
 * Offers the content (LEN bytes, untrusted) of the kind 2 entry at SEQ, whose header named
 * SENDER and N. Parts must come in log order (SEQ increasing). A part counts if SENDER is an
 * admin of the roster, its signature verifies under that admin's sign key, it is the first
 * of its (commit_id, k), and its part_count is its commit's (the first counting part's).
 * When it completes its commit, the commit's bytes go to OUT (capacity CAP;
 * GROUP_PARTS_BYTES_MAX suffices), its first part's seq to *FIRST_SEQ, and SEQ is its
 * position. Returns GROUP_PART_COMPLETE, GROUP_PART_COUNTED, GROUP_PART_DUPLICATE, or a part
 * dropped: CAIRN_EINVAL (malformed, a part_count other than its commit's, SEQ not after the
 * last), CAIRN_EAUTH (no admin, bad signature), CAIRN_EFULL (GROUP_ASSEMBLIES_MAX commits
 * under way), CAIRN_ENOMEM or CAIRN_ENOBUFS (the commit is then lost: the caller's bug).
 */
CAIRN_WARN_UNUSED int group_assembler_add(struct group_assembler *as, uint64_t seq, uint16_t sender,
                                          uint32_t n, const uint8_t *content, size_t len,
                                          uint8_t *out, size_t cap, size_t *outlen,
                                          uint64_t *first_seq);

#endif
