/* SPDX-License-Identifier: MIT */
/*
 * Integration, the second part of test_it_scale (see its purpose block): the relay at its
 * limits. More slow peers than max_connections, and a handshake flood against a small replay
 * cache. Shares its attack driver and statistics with test_it_scale (it_scale_common.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "it_common.h"
#include "it_scale_common.h"

/*
 * More slow peers than max_connections: the relay has no per-address limit and no
 * preference for handshaken connections, so peers that never finish a handshake hold the
 * slots until the handshake deadline and take each freed slot again at once. Legitimate
 * clients' success rate during the attack is the figure; before and after they must all be
 * served, and no descriptor may be left behind.
 */
static void test_connection_slots_exhausted(void **state)
{
	struct relayproc *r = *state;
	const int n_legit = 4;
	const size_t count[KINDS] = {LIMIT_PEERS, 0, 0, 0};
	if (nofile() < LIMIT_PEERS + 256) {
		printf("limit: descriptor limit %ld, %d needed: skipped\n", nofile(),
		       LIMIT_PEERS + 256);
		skip();
	}
	struct shared *sh = shared_new(r, n_legit);
	long fds0 = relayproc_fds(r);
	pid_t pids[LEGIT];
	start_children(sh, r, n_legit, false, 120000, pids);
	int64_t t0 = sh->t0_ms;
	while (it_mono_ms() < t0 + PRE_MS)
		it_sleep_ms(20);
	struct driver d;
	driver_init(&d, r, count);
	int64_t attack_end = t0 + PRE_MS + LIMIT_ATTACK;
	long fds_peak = fds0;
	while (it_mono_ms() < attack_end) {
		driver_step(&d, 10);
		long fds = relayproc_fds(r);
		fds_peak = fds > fds_peak ? fds : fds_peak;
	}
	driver_close_all(&d);
	int64_t post_end = attack_end + PRE_MS + HS_TIMEOUT * 1000;
	while (it_mono_ms() < post_end)
		it_sleep_ms(20);
	atomic_store(&sh->stop, 1);
	int stuck = reap_children(pids, n_legit);
	int64_t waited = wait_fds_at_most(r, fds0, 15000);
	const struct kind_stats *s = &d.st[SLOW_PRE];
	printf("limit: max_connections %d, %d slow peers (message 1 at 1 byte/s, reconnecting "
	       "at once): %llu connections, %llu closed by the relay after %lld..%lld ms; relay "
	       "fds %ld before, peak %ld\n",
	       LIMIT_CONNS, LIMIT_PEERS, (unsigned long long)s->opened,
	       (unsigned long long)s->closed, (long long)s->life_min, (long long)s->life_max, fds0,
	       fds_peak);
	struct phase_stats before = phase(sh, n_legit, 0, PRE_MS);
	struct phase_stats during = phase(sh, n_legit, PRE_MS, PRE_MS + LIMIT_ATTACK);
	/* After: once the last slow peer's slot is free again. */
	struct phase_stats after = phase(sh, n_legit, PRE_MS + LIMIT_ATTACK + 1000, INT32_MAX);
	print_phase("limit", "before", &before);
	print_phase("limit", "during", &during);
	print_phase("limit", "after", &after);
	driver_free(&d);
	assert_int_equal(stuck, 0);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", relayproc_fds(r),
		         fds0);
	assert_true(before.ok > 0 && after.ok > 0);
	assert_int_equal(before.failed + after.failed, 0);
	shared_free(sh);
}

/*
 * A handshake flood by a peer that knows the relay's address (any contact of any user of the
 * relay has it): complete handshakes, each followed by garbage, as fast as one process can.
 * Every accepted handshake takes an entry of the replay cache for one generation (2 x 120 s).
 * With the cache shrunk to REPLAY_CAP entries the flood fills it in moments, again and again:
 * a full cache forgets its older generation rather than refuse handshakes (PROTOCOL.md 2.2;
 * refusing locked every client out until the generation turned, 0% success after a flood).
 * The flood stops after twice the cache's worth of handshakes or FLOOD_MS. Printed:
 * legitimate success before, during and after the flood. Checked: the flood ran, clients
 * were served before and after it, and no descriptor is left behind.
 */
static void test_handshake_flood(void **state)
{
	struct relayproc *r = *state;
	const int n_legit = 2;
	const size_t count[KINDS] = {0, 0, 0, FLOOD_PEERS};
	struct shared *sh = shared_new(r, n_legit);
	long fds0 = relayproc_fds(r);
	pid_t pids[LEGIT];
	start_children(sh, r, n_legit, false, 120000, pids);
	int64_t t0 = sh->t0_ms;
	while (it_mono_ms() < t0 + PRE_MS)
		it_sleep_ms(20);
	struct driver d;
	driver_init(&d, r, count);
	int64_t flood_end = t0 + PRE_MS + FLOOD_MS;
	const struct kind_stats *s = &d.st[JUNK_POST];
	for (;;) {
		int64_t now = it_mono_ms();
		if (now >= flood_end || s->opened >= 2 * REPLAY_CAP ||
		    (s->handshakes > 0 && now - s->last_handshake_ms > 1000))
			break;
		driver_step(&d, 10);
	}
	flood_end = it_mono_ms();
	int64_t flood_ms = flood_end - t0 - PRE_MS;
	driver_close_all(&d);
	while (it_mono_ms() < flood_end + FLOOD_POST)
		it_sleep_ms(20);
	atomic_store(&sh->stop, 1);
	int stuck = reap_children(pids, n_legit);
	int64_t waited = wait_fds_at_most(r, fds0, 15000);
	printf("flood: replay_cache_entries %d: %d peers flooding for %lld ms: %llu connections, "
	       "%llu handshakes answered, %llu closed by the relay\n",
	       REPLAY_CAP, FLOOD_PEERS, (long long)flood_ms, (unsigned long long)s->opened,
	       (unsigned long long)s->handshakes, (unsigned long long)s->closed);
	struct phase_stats before = phase(sh, n_legit, 0, PRE_MS);
	struct phase_stats during = phase(sh, n_legit, PRE_MS, PRE_MS + flood_ms);
	struct phase_stats after = phase(sh, n_legit, PRE_MS + flood_ms, INT32_MAX);
	print_phase("flood", "before", &before);
	print_phase("flood", "during", &during);
	print_phase("flood", "after", &after);
	driver_free(&d);
	assert_int_equal(stuck, 0);
	if (waited < 0)
		fail_msg("fd leak: the relay holds %ld descriptors, %ld before", relayproc_fds(r),
		         fds0);
	assert_true(before.ok > 0);
	assert_int_equal(before.failed, 0);
	/* The flood really ran: at least half the cache's worth of handshakes. */
	assert_true(s->opened >= REPLAY_CAP / 2);
	/* And left no lockout behind. */
	assert_true(after.ok > 0);
	assert_int_equal(after.failed, 0);
	shared_free(sh);
}

int main(void)
{
	if (it_scale_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_connection_slots_exhausted, setup_limited,
	                                    it_relay_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_flood, setup_small_replay,
	                                    it_relay_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
