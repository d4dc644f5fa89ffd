/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the decoders of groups' commits and rosters (docs/PROTOCOL.md 9.2, 9.5) and the
 * roster transition a commit makes. The input is read three ways: as a commit, as a roster,
 * and as u16 roster_len || roster || commit, whose changes are then applied to the roster.
 * Whatever decodes must encode back to the same bytes, a failed decode must leave its output
 * zeroed, and any roster a transition makes must pass every check of 9.2.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "group_commit.h"
#include "group_commit_parts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct group_commit commit;
static struct group_roster roster;
static struct group_next next;
static uint8_t
    out[GROUP_COMMIT_MAX_LEN > GROUP_ROSTER_MAX_LEN ? GROUP_COMMIT_MAX_LEN : GROUP_ROSTER_MAX_LEN];

static void check_commit(const uint8_t *data, size_t size)
{
	size_t len = 0;
	if (group_commit_decode(data, size, &commit) != 0) {
		if (!sodium_is_zero((const uint8_t *)&commit, sizeof(commit)))
			abort();
		return;
	}
	if (group_commit_len(&commit) != size ||
	    group_commit_encode(&commit, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
}

static bool check_roster(const uint8_t *data, size_t size)
{
	size_t len = 0;
	if (group_roster_decode(data, size, &roster) != 0) {
		if (roster.count != 0 || !sodium_is_zero((const uint8_t *)&roster, sizeof(roster)))
			abort();
		return false;
	}
	if (group_roster_encode(&roster, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		abort();
	return true;
}

/* Applies COMMIT's changes to ROSTER (as epoch 7's), and to nothing (as a genesis). */
static void check_apply(void)
{
	struct group_base base = {.epoch = 7, .roster = &roster, .settings = {1, 2}};
	struct group_counted_update upd = {.index = 0,
	                                   .key_serial = roster.member[0].key_serial + 1};
	memcpy(upd.group_key, roster.member[roster.count - 1].group_key, CAIRN_KEY_LEN);
	size_t nupd = upd.key_serial != 0 && commit.change_count % 2;
	for (int genesis = 0; genesis < 2; genesis++) {
		base.genesis = genesis;
		if (group_commit_apply(&base, commit.changes, commit.change_count, &upd,
		                       genesis ? 0 : nupd, &next) != 0)
			continue;
		if (group_roster_check(&next.roster) != 0 || next.retained > next.roster.count ||
		    (genesis && next.retained != 0))
			abort();
		for (unsigned i = 0; i < next.retained; i++)
			if (next.from[i] >= roster.count ||
			    memcmp(next.roster.member[i].identity,
			           roster.member[next.from[i]].identity, CAIRN_KEY_LEN) != 0 ||
			    (i > 0 && next.from[i] <= next.from[i - 1]))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = true;
	}
	struct group_part part;
	check_commit(data, size);
	check_roster(data, size);
	if (size > 0 && group_part_parse(data, size, data[0] & 15u, &part) == 0 &&
	    (part.slice_len == 0 || part.slice + part.slice_len + 64 != data + size))
		abort();
	if (size < 2)
		return 0;
	size_t rlen = ((size_t)data[0] << 8) | data[1];
	if (rlen > size - 2 || !check_roster(data + 2, rlen))
		return 0;
	check_commit(data + 2 + rlen, size - 2 - rlen);
	if (commit.version == GROUP_COMMIT_VERSION)
		check_apply();
	return 0;
}
