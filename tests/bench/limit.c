/* SPDX-License-Identifier: MIT */
/*
 * The hardware's side of the comparison, measured in the same run: loopback TCP throughput
 * with 1 KiB writes (a plain connected socket pair, a writer and a reader thread), and the
 * cost of the cryptography the relay does per envelope (one AEAD seal and one open, amortised
 * per frame) and per handshake (X25519) or recipient proof (Ed25519 verify).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"

#define LOOPBACK_WRITE 1024

struct reader_arg {
	int fd;
	uint64_t bytes;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	static uint8_t buf[256 * 1024];
	ssize_t n;
	while ((n = read(a->fd, buf, sizeof(buf))) > 0)
		a->bytes += (uint64_t)n;
	return NULL;
}

/* A connected TCP pair over 127.0.0.1: *A from connect, *B from accept. */
static int tcp_pair(int *a, int *b)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	*a = *b = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0 ||
	    (*a = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(*a, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (*b = accept(l, NULL, NULL)) < 0) {
		if (l >= 0)
			close(l);
		if (*a >= 0)
			close(*a);
		return -1;
	}
	close(l);
	return 0;
}

static int loopback(double seconds, struct limit_result *out)
{
	int a, b;
	if (tcp_pair(&a, &b) != 0)
		return -1;
	struct reader_arg ra = {.fd = b};
	pthread_t t;
	if (pthread_create(&t, NULL, reader_main, &ra) != 0) {
		close(a);
		close(b);
		return -1;
	}
	uint8_t buf[LOOPBACK_WRITE];
	memset(buf, 0x5a, sizeof(buf));
	uint64_t writes = 0, t0 = bench_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), now = t0;
	while (now < end) {
		for (int i = 0; i < 256; i++)
			if (write(a, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
				writes++;
		now = bench_now_ns();
	}
	close(a);
	pthread_join(t, NULL);
	close(b);
	double s = (double)(now - t0) / 1e9;
	out->loopback_writes_per_s = (double)writes / s;
	out->loopback_mib_per_s = (double)writes * LOOPBACK_WRITE / s / 1048576.0;
	return 0;
}

/* The seals aead_ns times. */
enum aead_kind {
	AEAD_CHACHA,    /* ChaCha20-Poly1305 IETF */
	AEAD_AES_STATE, /* AES-256-GCM over a precomputed crypto_aead_aes256gcm_state */
	AEAD_AES_KEY,   /* AES-256-GCM taking the key, as proto/cipher.c's transport does */
};

/* Nanoseconds per AEAD seal of LEN bytes, the best of three rounds, of KIND (for AES-256-GCM
 * the caller checked that this CPU has AES). */
static double aead_ns(size_t len, enum aead_kind kind)
{
	bool aes = kind == AEAD_AES_STATE;
	static uint8_t msg[16384], out[16384 + crypto_aead_chacha20poly1305_ietf_ABYTES];
	_Static_assert(crypto_aead_aes256gcm_ABYTES == crypto_aead_chacha20poly1305_ietf_ABYTES,
	               "one output buffer");
	uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
	randombytes_buf(key, sizeof(key));
	crypto_aead_aes256gcm_state aes_state;
	if (aes)
		crypto_aead_aes256gcm_beforenm(&aes_state, key);
	unsigned iters = (unsigned)(200u * 1024 * 1024 / (len + 256) / 10);
	double best = 1e30;
	for (int round = 0; round < 3; round++) {
		uint64_t t0 = bench_now_ns();
		for (unsigned i = 0; i < iters; i++) {
			nonce[0] = (uint8_t)i;
			if (aes)
				crypto_aead_aes256gcm_encrypt_afternm(out, NULL, msg, len, NULL, 0,
				                                      NULL, nonce, &aes_state);
			else if (kind == AEAD_AES_KEY)
				(void)crypto_aead_aes256gcm_encrypt(out, NULL, msg, len, NULL, 0,
				                                    NULL, nonce, key);
			else
				crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, msg, len, NULL,
				                                          0, NULL, nonce, key);
		}
		double ns = (double)(bench_now_ns() - t0) / iters;
		if (ns < best)
			best = ns;
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&aes_state, sizeof(aes_state));
	return best;
}

/* This thread's CPU time in ns: what a handshake's floor is compared in (the relay's CPU). */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double limit_x25519_ns(bool cpu_time)
{
	uint64_t (*now)(void) = cpu_time ? thread_cpu_ns : bench_now_ns;
	uint8_t sk[crypto_scalarmult_SCALARBYTES], pk[crypto_scalarmult_BYTES];
	uint8_t q[crypto_scalarmult_BYTES];
	randombytes_buf(sk, sizeof(sk));
	crypto_scalarmult_base(pk, sk);
	const unsigned iters = 2000;
	uint64_t t0 = now();
	for (unsigned i = 0; i < iters; i++)
		if (crypto_scalarmult(q, sk, pk) != 0)
			break;
	return (double)(now() - t0) / iters;
}

static double ed25519_verify_ns(void)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t sig[crypto_sign_BYTES], msg[100] = {0};
	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
	const unsigned iters = 1000;
	unsigned ok = 0;
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++)
		ok += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
	double ns = (double)(bench_now_ns() - t0) / iters;
	sodium_memzero(sk, sizeof(sk));
	return ok == iters ? ns : -1;
}

int limit_measure(const struct bench_opts *o, struct limit_result *res)
{
	bench_note("limit: loopback TCP and cryptography");
	if (loopback(o->quick ? 1.0 : 3.0, res) != 0)
		return -1;
	static const size_t sizes[] = {64, 256, 1024, 16384};
	for (size_t i = 0; i < 4; i++)
		res->aead_ns[i] = aead_ns(sizes[i], AEAD_CHACHA);
	if (crypto_aead_aes256gcm_is_available()) {
		res->aes_gcm_1k_ns = aead_ns(1024, AEAD_AES_STATE);
		res->aes_gcm_1k_key_ns = aead_ns(1024, AEAD_AES_KEY);
	}
	res->x25519_ns = limit_x25519_ns(false);
	res->ed25519_verify_ns = ed25519_verify_ns();
	return 0;
}

int scenario_limit(const struct bench_opts *o, struct bench_results *r)
{
	int rc = limit_measure(o, &r->limit);
	r->have_limit = rc == 0;
	return rc;
}
