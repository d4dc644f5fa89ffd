/* SPDX-License-Identifier: MIT */
/*
 * The registry of group logs (grouplog.h): two chained hash tables keyed with a random
 * SipHash key (so that a peer choosing log ids cannot choose collisions), grown when they
 * average one log a bucket, an idle list, and per log an array of its stored entries that
 * expiry trims from the front.
 */
#include "grouplog.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/error.h"

#define INITIAL_BUCKETS 64

static size_t bucket_of(const struct log_registry *reg, const uint8_t *p, size_t n)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, p, n, reg->hash_key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (reg->buckets - 1));
}

static size_t bucket_of_key(const struct log_registry *reg, uint64_t key)
{
	uint8_t in[8];
	for (int i = 0; i < 8; i++)
		in[i] = (uint8_t)(key >> (8 * i));
	return bucket_of(reg, in, sizeof(in));
}

/* Allocates the tables with NB buckets and moves every log into them. 0 or CAIRN_ENOMEM
 * (the old tables stay). */
static int rehash(struct log_registry *reg, size_t nb)
{
	struct glog **a = calloc(nb, sizeof(*a)), **k = calloc(nb, sizeof(*k));
	if (a == NULL || k == NULL) {
		free(a);
		free(k);
		return CAIRN_ENOMEM;
	}
	struct glog **old = reg->by_log_id;
	size_t old_n = reg->buckets;
	free(reg->by_key);
	reg->by_log_id = a;
	reg->by_key = k;
	reg->buckets = nb;
	for (size_t b = 0; b < old_n; b++) {
		struct glog *log = old[b];
		while (log != NULL) {
			struct glog *next = log->next_by_log_id;
			size_t ba = bucket_of(reg, log->rec.log_id, CAIRN_LOG_ID_LEN);
			size_t bk = bucket_of_key(reg, log->rec.id);
			log->next_by_log_id = a[ba];
			a[ba] = log;
			log->next_by_key = k[bk];
			k[bk] = log;
			log = next;
		}
	}
	free(old);
	return 0;
}

void log_registry_free(struct log_registry *reg)
{
	for (size_t b = 0; reg->by_log_id != NULL && b < reg->buckets; b++) {
		struct glog *log = reg->by_log_id[b];
		while (log != NULL) {
			struct glog *next = log->next_by_log_id;
			free(log->e);
			sodium_memzero(log, sizeof(*log));
			free(log);
			log = next;
		}
	}
	free(reg->by_log_id);
	free(reg->by_key);
	sodium_memzero(reg, sizeof(*reg));
}

/* LOG becomes the most recently touched. */
static void idle_append(struct log_registry *reg, struct glog *log)
{
	log->idle_prev = reg->idle_tail;
	if (reg->idle_tail != NULL)
		reg->idle_tail->idle_next = log;
	else
		reg->idle_head = log;
	reg->idle_tail = log;
}

static void idle_unlink(struct log_registry *reg, struct glog *log)
{
	if (log->idle_prev != NULL)
		log->idle_prev->idle_next = log->idle_next;
	else
		reg->idle_head = log->idle_next;
	if (log->idle_next != NULL)
		log->idle_next->idle_prev = log->idle_prev;
	else
		reg->idle_tail = log->idle_prev;
	log->idle_prev = log->idle_next = NULL;
}

struct glog *glog_add(struct log_registry *reg, const struct store_log *rec)
{
	if (reg->buckets == 0) {
		randombytes_buf(reg->hash_key, sizeof(reg->hash_key));
		if (rehash(reg, INITIAL_BUCKETS) != 0)
			return NULL;
	} else if (reg->count >= reg->buckets) {
		(void)rehash(reg, reg->buckets * 2); /* longer chains are still correct */
	}
	struct glog *log = calloc(1, sizeof(*log));
	if (log == NULL)
		return NULL;
	log->rec = *rec;
	log->gone_below = rec->next_seq;
	size_t ba = bucket_of(reg, rec->log_id, CAIRN_LOG_ID_LEN);
	size_t bk = bucket_of_key(reg, rec->id);
	log->next_by_log_id = reg->by_log_id[ba];
	reg->by_log_id[ba] = log;
	log->next_by_key = reg->by_key[bk];
	reg->by_key[bk] = log;
	idle_append(reg, log);
	reg->count++;
	return log;
}

void glog_remove(struct log_registry *reg, struct glog *log)
{
	struct glog **pp = &reg->by_log_id[bucket_of(reg, log->rec.log_id, CAIRN_LOG_ID_LEN)];
	while (*pp != log)
		pp = &(*pp)->next_by_log_id;
	*pp = log->next_by_log_id;
	pp = &reg->by_key[bucket_of_key(reg, log->rec.id)];
	while (*pp != log)
		pp = &(*pp)->next_by_key;
	*pp = log->next_by_key;
	idle_unlink(reg, log);
	reg->count--;
	reg->entries -= log->count;
	reg->bytes -= log->bytes;
	free(log->e);
	sodium_memzero(log, sizeof(*log));
	free(log);
}

struct glog *glog_by_log_id(const struct log_registry *reg,
                            const uint8_t log_id[static CAIRN_LOG_ID_LEN])
{
	if (reg->buckets == 0)
		return NULL;
	struct glog *log = reg->by_log_id[bucket_of(reg, log_id, CAIRN_LOG_ID_LEN)];
	while (log != NULL && memcmp(log->rec.log_id, log_id, CAIRN_LOG_ID_LEN) != 0)
		log = log->next_by_log_id;
	return log;
}

struct glog *glog_by_key(const struct log_registry *reg, uint64_t key)
{
	if (reg->buckets == 0)
		return NULL;
	struct glog *log = reg->by_key[bucket_of_key(reg, key)];
	while (log != NULL && log->rec.id != key)
		log = log->next_by_key;
	return log;
}

void glog_touched(struct log_registry *reg, struct glog *log)
{
	if (reg->idle_tail == log)
		return;
	idle_unlink(reg, log);
	idle_append(reg, log);
}

int glog_push(struct glog *log, uint64_t id, uint64_t seq, uint32_t len)
{
	if (log->e_head + log->e_len == log->e_cap) {
		if (log->e_head > 0 && log->e_head >= log->e_len) {
			/* Half or more of the array is expired slots: slide down instead. */
			memmove(log->e, log->e + log->e_head, log->e_len * sizeof(*log->e));
			log->e_head = 0;
		} else {
			size_t ncap = log->e_cap ? log->e_cap * 2 : 8;
			struct log_entry_ref *p = realloc(log->e, ncap * sizeof(*p));
			if (p == NULL)
				return CAIRN_ENOMEM;
			log->e = p;
			log->e_cap = ncap;
		}
	}
	log->e[log->e_head + log->e_len++] = (struct log_entry_ref){id, seq, len};
	return 0;
}

int glog_insert(struct glog *log, uint64_t id, uint64_t seq, uint32_t len)
{
	size_t at = glog_find_seq(log, seq);
	if (at < log->e_len && glog_at(log, at)->seq == seq)
		return CAIRN_EEXIST;
	int rc = glog_push(log, id, seq, len);
	if (rc != 0 || at == log->e_len - 1)
		return rc;
	struct log_entry_ref *base = log->e + log->e_head;
	memmove(base + at + 1, base + at, (log->e_len - 1 - at) * sizeof(*base));
	base[at] = (struct log_entry_ref){id, seq, len};
	return 0;
}

size_t glog_find_seq(const struct glog *log, uint64_t seq)
{
	size_t lo = 0, hi = log->e_len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (glog_at(log, mid)->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t glog_expire(struct log_registry *reg, struct glog *log, uint64_t cutoff)
{
	size_t n = 0;
	while (log->e_len > 0 && glog_at(log, 0)->id < cutoff) {
		uint32_t len = glog_at(log, 0)->len;
		if (glog_at(log, 0)->seq >= log->gone_below)
			log->gone_below = glog_at(log, 0)->seq + 1;
		log->count--;
		log->bytes -= len;
		reg->entries--;
		reg->bytes -= len;
		log->e_head++;
		log->e_len--;
		n++;
	}
	if (log->e_len == 0)
		log->e_head = 0;
	return n;
}
