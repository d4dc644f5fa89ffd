/* SPDX-License-Identifier: MIT */
/*
 * `cairn-bench work`: the cost of intake mailboxes' proof of work (PROTOCOL.md 5.10) on this
 * machine, with no relay: the solve time at the default bits (median and p90 over many
 * solves, the number of tries being geometric), the BLAKE2b block rate a solver runs at, and
 * what work_verify costs the relay per envelope at the three padded sizes of 8.6 and the
 * largest envelope. It prints figures; it never passes or fails on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench.h"
#include "work.h"

/* The envelope sizes the relay sees: 8.6's three padded sizes and the largest (section 6). */
static const size_t verify_sizes[] = {896, 3968, 16384};
#define VERIFY_RUNS  15
#define VERIFY_CALLS 20000
#define BLOCK_CALLS  2000000

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile Q (0..1) of the LEN values of V, sorted in place (nearest rank). */
static double percentile(double *v, size_t len, double q)
{
	qsort(v, len, sizeof(*v), cmp_double);
	size_t i = (size_t)(q * (double)(len - 1) + 0.5);
	return v[i < len ? i : len - 1];
}

/* One-block BLAKE2b-256 calls per second: a solver's try is exactly one such call. */
static double block_rate(void)
{
	uint8_t in[84], out[32];
	randombytes_buf(in, sizeof(in));
	uint64_t t0 = bench_now_ns();
	for (uint32_t i = 0; i < BLOCK_CALLS; i++) {
		in[83] = (uint8_t)i;
		in[82] = (uint8_t)(i >> 8);
		crypto_generichash(out, sizeof(out), in, sizeof(in), NULL, 0);
	}
	return BLOCK_CALLS / ((double)(bench_now_ns() - t0) / 1e9);
}

/* SOLVES solves at BITS of fresh 896-byte envelopes: times in seconds into SECS, the tries
 * (nonces) they took summed into *TRIES. Returns 0 or -1. */
static int solve_runs(unsigned bits, uint32_t solves, double *secs, uint64_t *tries)
{
	uint8_t sender[CAIRN_MAILBOX_ID_LEN], env[896], work[WORK_LEN];
	*tries = 0;
	for (uint32_t i = 0; i < solves; i++) {
		randombytes_buf(sender, sizeof(sender));
		randombytes_buf(env, sizeof(env));
		uint64_t t0 = bench_now_ns();
		if (work_solve(sender, env, sizeof(env), (uint64_t)time(NULL), bits, 0, work,
		               NULL) != 0)
			return -1;
		secs[i] = (double)(bench_now_ns() - t0) / 1e9;
		/* The nonce is the work's last 8 bytes; from 0, it is the tries made minus one. */
		uint64_t nonce = 0;
		for (int b = 8; b < 16; b++)
			nonce = nonce << 8 | work[b];
		*tries += nonce + 1;
	}
	return 0;
}

/* Median over VERIFY_RUNS runs of VERIFY_CALLS work_verify calls on a SIZE-byte envelope
 * with valid work, in ns per call. */
static double verify_ns(size_t size)
{
	uint8_t sender[CAIRN_MAILBOX_ID_LEN], work[WORK_LEN], digest[WORK_HASH_LEN];
	uint8_t *env = malloc(size);
	if (env == NULL)
		return -1;
	randombytes_buf(sender, sizeof(sender));
	randombytes_buf(env, size);
	double runs[VERIFY_RUNS];
	unsigned ok = 0;
	if (work_solve(sender, env, size, (uint64_t)time(NULL), 8, 0, work, NULL) != 0) {
		free(env);
		return -1;
	}
	for (int r = 0; r < VERIFY_RUNS; r++) {
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < VERIFY_CALLS; i++)
			ok += work_verify(sender, env, size, work, 8, digest);
		runs[r] = (double)(bench_now_ns() - t0) / VERIFY_CALLS;
	}
	free(env);
	/* Every call must have verified, or the loop timed something else. */
	return ok == (unsigned)VERIFY_RUNS * VERIFY_CALLS ? percentile(runs, VERIFY_RUNS, 0.5) : -1;
}

int work_bench_run(const struct bench_opts *o)
{
	unsigned bits = o->work_bits > 0 ? o->work_bits : WORK_BITS_DEFAULT;
	uint32_t solves = o->work_solves > 0 ? o->work_solves : (o->quick ? 16 : 64);
	bench_note("work: BLAKE2b block rate (%u one-block hashes)", BLOCK_CALLS);
	double rate = block_rate();
	bench_note("work: %u solves at %u bits (about %.1f s each expected)", (unsigned)solves,
	           bits, (double)(1ull << bits) / rate);
	double *secs = calloc(solves, sizeof(*secs));
	uint64_t tries;
	if (secs == NULL || solve_runs(bits, solves, secs, &tries) != 0) {
		free(secs);
		return 1;
	}
	double total = 0;
	for (uint32_t i = 0; i < solves; i++)
		total += secs[i];
	double solve_rate = (double)tries / total;
	double med = percentile(secs, solves, 0.5), p90 = percentile(secs, solves, 0.9);
	double vns[sizeof(verify_sizes) / sizeof(verify_sizes[0])];
	for (size_t i = 0; i < sizeof(verify_sizes) / sizeof(verify_sizes[0]); i++) {
		bench_note("work: verify on %zu-byte envelopes", verify_sizes[i]);
		vns[i] = verify_ns(verify_sizes[i]);
		if (vns[i] < 0) {
			free(secs);
			return 1;
		}
	}
	if (o->json) {
		printf(
		    "{\"bits\":%u,\"solves\":%u,\"solve_median_s\":%.4f,\"solve_p90_s\":%.4f,"
		    "\"solve_mean_s\":%.4f,\"solve_hashes_per_s\":%.0f,\"block_hashes_per_s\":%.0f,"
		    "\"verify_ns\":{",
		    bits, (unsigned)solves, med, p90, total / solves, solve_rate, rate);
		for (size_t i = 0; i < sizeof(verify_sizes) / sizeof(verify_sizes[0]); i++)
			printf("%s\"%zu\":%.0f", i ? "," : "", verify_sizes[i], vns[i]);
		printf("}}\n");
	} else {
		printf("proof of work (PROTOCOL.md 5.10), one core\n");
		printf("  BLAKE2b one-block hashes       %12.0f /s\n", rate);
		printf(
		    "  solve at %2u bits, %4u solves   median %.3f s   p90 %.3f s   mean %.3f s\n",
		    bits, (unsigned)solves, med, p90, total / solves);
		printf("  solver's hash rate              %12.0f tries/s (%.0f tries per solve)\n",
		       solve_rate, (double)tries / solves);
		for (size_t i = 0; i < sizeof(verify_sizes) / sizeof(verify_sizes[0]); i++)
			printf("  work_verify, %5zu-byte envelope %8.0f ns (median of %d runs of "
			       "%d)\n",
			       verify_sizes[i], vns[i], VERIFY_RUNS, VERIFY_CALLS);
	}
	free(secs);
	return 0;
}
