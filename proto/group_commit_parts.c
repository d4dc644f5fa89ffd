/* SPDX-License-Identifier: MIT */
/*
 * Commit parts (docs/PROTOCOL.md section 9.5 "Parts and entries"): cutting a commit into
 * signed slices, and putting them together in log order with the counting rules that make
 * every member take the same parts, so that a member that is not an admin cannot spoil an
 * admin's commit by posting a forged part first.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "group_commit_parts.h"

static const char PART_LABEL[] = "cairn/1 group commit part";
#define PART_LABEL_LEN (sizeof(PART_LABEL) - 1)
/* label || ctx || commit_id || k || part_count, then the slice. */
#define PART_PREFIX_LEN (PART_LABEL_LEN + GROUP_CTX_LEN + GROUP_COMMIT_ID_LEN + 2)

unsigned group_commit_part_count(size_t len)
{
	if (len == 0 || len > GROUP_PARTS_BYTES_MAX)
		return 0;
	return (unsigned)((len + GROUP_PART_SLICE_MAX - 1) / GROUP_PART_SLICE_MAX);
}

/* The message a part signature covers, in a buffer of its own (NULL if memory is short). */
static uint8_t *part_message(const uint8_t ctx[static GROUP_CTX_LEN], const uint8_t *commit_id,
                             unsigned k, unsigned count, const uint8_t *slice, size_t slice_len)
{
	uint8_t *m = malloc(PART_PREFIX_LEN + slice_len);
	if (m == NULL)
		return NULL;
	uint8_t *p = m;
	memcpy(p, PART_LABEL, PART_LABEL_LEN);
	p += PART_LABEL_LEN;
	memcpy(p, ctx, GROUP_CTX_LEN);
	p += GROUP_CTX_LEN;
	memcpy(p, commit_id, GROUP_COMMIT_ID_LEN);
	p += GROUP_COMMIT_ID_LEN;
	*p++ = (uint8_t)k;
	*p++ = (uint8_t)count;
	memcpy(p, slice, slice_len);
	return m;
}

int group_commit_part(const uint8_t *commit, size_t len, unsigned k,
                      const uint8_t commit_id[static GROUP_COMMIT_ID_LEN],
                      const uint8_t ctx[static GROUP_CTX_LEN], const uint8_t *sign_secret,
                      uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	unsigned count = group_commit_part_count(len);
	if (count == 0 || k >= count)
		return CAIRN_EINVAL;
	const uint8_t *slice = commit + (size_t)k * GROUP_PART_SLICE_MAX;
	size_t slice_len =
	    k + 1 < count ? GROUP_PART_SLICE_MAX : len - (size_t)k * GROUP_PART_SLICE_MAX;
	if (cap < GROUP_PART_OVERHEAD + slice_len)
		return CAIRN_ENOBUFS;
	uint8_t *msg = part_message(ctx, commit_id, k, count, slice, slice_len);
	if (msg == NULL)
		return CAIRN_ENOMEM;
	memcpy(out, commit_id, GROUP_COMMIT_ID_LEN);
	out[GROUP_COMMIT_ID_LEN] = (uint8_t)count;
	memcpy(out + GROUP_COMMIT_ID_LEN + 1, slice, slice_len);
	crypto_sign_detached(out + GROUP_COMMIT_ID_LEN + 1 + slice_len, NULL, msg,
	                     PART_PREFIX_LEN + slice_len, sign_secret);
	free(msg);
	*outlen = GROUP_PART_OVERHEAD + slice_len;
	return 0;
}

int group_part_parse(const uint8_t *in, size_t len, uint32_t k, struct group_part *out)
{
	memset(out, 0, sizeof(*out));
	if (len <= GROUP_PART_OVERHEAD || len > GROUP_PART_CONTENT_MAX)
		return CAIRN_EINVAL;
	uint8_t count = in[GROUP_COMMIT_ID_LEN];
	size_t slice_len = len - GROUP_PART_OVERHEAD;
	if (count < 1 || count > GROUP_PARTS_MAX || k >= count ||
	    (k + 1 < count && slice_len != GROUP_PART_SLICE_MAX))
		return CAIRN_EINVAL;
	out->commit_id = in;
	out->part_count = count;
	out->slice = in + GROUP_COMMIT_ID_LEN + 1;
	out->slice_len = slice_len;
	out->sig = out->slice + slice_len;
	return 0;
}

int group_part_verify(const struct group_part *p, uint32_t k,
                      const uint8_t ctx[static GROUP_CTX_LEN],
                      const uint8_t sign_key[static CAIRN_KEY_LEN])
{
	uint8_t *msg = part_message(ctx, p->commit_id, k, p->part_count, p->slice, p->slice_len);
	if (msg == NULL)
		return CAIRN_ENOMEM;
	int ok = crypto_sign_verify_detached(p->sig, msg, PART_PREFIX_LEN + p->slice_len, sign_key);
	free(msg);
	return ok == 0 ? 0 : CAIRN_EAUTH;
}

void group_assembler_init(struct group_assembler *as, const struct group_roster *roster,
                          const uint8_t ctx[static GROUP_CTX_LEN])
{
	memset(as, 0, sizeof(*as));
	as->roster = roster;
	memcpy(as->ctx, ctx, GROUP_CTX_LEN);
}

void group_assembler_free(struct group_assembler *as)
{
	for (unsigned i = 0; i < GROUP_ASSEMBLIES_MAX; i++) {
		free(as->a[i].buf);
		as->a[i].buf = NULL;
	}
}

/* The assembly of COMMIT_ID, or a slot for it (a free one, else one whose commit is done:
 * its later copies then count as a new commit, which only repeats a commit already seen), or
 * NULL. */
static struct group_assembly *assembly_for(struct group_assembler *as, const uint8_t *commit_id,
                                           bool *fresh)
{
	struct group_assembly *free_slot = NULL, *done_slot = NULL;
	*fresh = false;
	for (unsigned i = 0; i < GROUP_ASSEMBLIES_MAX; i++) {
		struct group_assembly *a = &as->a[i];
		if (a->used && memcmp(a->commit_id, commit_id, GROUP_COMMIT_ID_LEN) == 0)
			return a;
		if (!a->used && free_slot == NULL)
			free_slot = a;
		if (a->used && a->done && done_slot == NULL)
			done_slot = a;
	}
	*fresh = true;
	return free_slot != NULL ? free_slot : done_slot;
}

static int complete(struct group_assembly *a, uint8_t *out, size_t cap, size_t *outlen,
                    uint64_t *first_seq)
{
	size_t len = (size_t)(a->part_count - 1) * GROUP_PART_SLICE_MAX + a->last_len;
	int rc = 0;
	if (cap < len)
		rc = CAIRN_ENOBUFS;
	else
		memcpy(out, a->buf, len);
	free(a->buf);
	a->buf = NULL;
	a->done = true;
	if (rc != 0)
		return rc;
	*outlen = len;
	*first_seq = a->first_seq;
	return GROUP_PART_COMPLETE;
}

int group_assembler_add(struct group_assembler *as, uint64_t seq, uint16_t sender, uint32_t n,
                        const uint8_t *content, size_t len, uint8_t *out, size_t cap,
                        size_t *outlen, uint64_t *first_seq)
{
	struct group_part p;
	bool fresh;
	int rc;

	*outlen = 0;
	*first_seq = 0;
	if (seq <= as->last_seq)
		return CAIRN_EINVAL;
	as->last_seq = seq;
	if (group_part_parse(content, len, n, &p) != 0)
		return CAIRN_EINVAL;
	if (sender >= as->roster->count || as->roster->member[sender].role != GROUP_ROLE_ADMIN)
		return CAIRN_EAUTH;
	/* Duplicates are recognized before the signature is checked again. */
	struct group_assembly *a = assembly_for(as, p.commit_id, &fresh);
	if (!fresh && (a->done || (a->have & (1u << n))))
		return GROUP_PART_DUPLICATE;
	if (!fresh && p.part_count != a->part_count)
		return CAIRN_EINVAL;
	if ((rc = group_part_verify(&p, n, as->ctx, as->roster->member[sender].sign_key)) != 0)
		return rc;
	if (fresh) {
		if (a == NULL)
			return CAIRN_EFULL;
		uint8_t *buf = malloc((size_t)p.part_count * GROUP_PART_SLICE_MAX);
		if (buf == NULL)
			return CAIRN_ENOMEM;
		free(a->buf);
		memset(a, 0, sizeof(*a));
		a->used = true;
		memcpy(a->commit_id, p.commit_id, GROUP_COMMIT_ID_LEN);
		a->part_count = p.part_count;
		a->first_seq = seq;
		a->buf = buf;
	}
	memcpy(a->buf + (size_t)n * GROUP_PART_SLICE_MAX, p.slice, p.slice_len);
	if (n + 1u == a->part_count)
		a->last_len = p.slice_len;
	a->have |= (uint16_t)(1u << n);
	if (a->have != (uint16_t)((1u << a->part_count) - 1))
		return GROUP_PART_COUNTED;
	return complete(a, out, cap, outlen, first_seq);
}
