/* SPDX-License-Identifier: MIT */
/*
 * The pool of idle channels' buffers (chanpool.h). A set goes into the pool whole, its
 * plaintext wiped, and comes out whole: one slot's store and load per reply cycle instead of
 * up to four allocations and four frees.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chanpool.h"

void channel_pool_lend(struct channel_pool *p, struct channel *ch)
{
	if (ch->bufs == NULL)
		ch->bufs = spares_take(&p->sets);
}

/* True when B holds nothing still to be read or sent and at most SMALL bytes. */
static bool buf_idle(const struct channel_buf *b, size_t small)
{
	return b->len == 0 && b->cap <= small;
}

/* Wipes the first *DIRTY bytes of B (all of them if it says more than its capacity). */
static void wipe(struct channel_buf *b, uint32_t *dirty)
{
	if (b->data != NULL)
		sodium_memzero(b->data, *dirty < b->cap ? *dirty : b->cap);
	*dirty = 0;
}

void channel_pool_give(struct channel_pool *p, struct channel *ch, struct channel_buf *spare,
                       size_t small)
{
	struct channel_bufs *bs = ch->bufs;
	/* Sealed bytes only, all sent: no wipe. Back into the set, or freed as it was. */
	if (spare != NULL && spare->len == 0) {
		if (bs != NULL && bs->out.data == NULL) {
			bs->out = *spare;
			memset(spare, 0, sizeof(*spare));
		} else if (spare->cap <= small) {
			channel_buf_free(spare);
		}
	}
	if (bs == NULL)
		return;
	bool plain_read = bs->plain_off >= bs->plain.len;
	if (p->sets.count >= CHANNEL_POOL_SLOTS || !plain_read ||
	    bs->plain.cap > CHANNEL_POOL_BUF_MAX || !buf_idle(&bs->batch, CHANNEL_POOL_BUF_MAX) ||
	    !buf_idle(&bs->out, CHANNEL_POOL_BUF_MAX)) {
		channel_trim_small(ch, small);
		return;
	}
	/* The open frame's content and the batch held plaintext: wiped before another channel
	 * may read them, as far as any was written (channel.c keeps the marks). */
	wipe(&bs->plain, &bs->plain_dirty);
	wipe(&bs->batch, &bs->batch_dirty);
	bs->plain.len = bs->plain_off = 0;
	bs->batch_msgs = 0;
	if (spares_keep(&p->sets, bs, CHANNEL_POOL_SLOTS)) /* there was room, above */
		ch->bufs = NULL;
}

/* Wiped when it came in: nothing but zeros and sealed bytes to free. */
static void drop_set(void *set)
{
	struct channel_bufs *bs = set;
	channel_buf_free(&bs->plain);
	channel_buf_free(&bs->batch);
	channel_buf_free(&bs->out);
	free(bs);
}

void channel_pool_tick(struct channel_pool *p)
{
	spares_tick(&p->sets, drop_set);
}

void channel_pool_free(struct channel_pool *p)
{
	spares_free(&p->sets, drop_set);
}
