/* SPDX-License-Identifier: MIT */
/*
 * cairn_groups (cairn.h): our groups as a person sees them, each with its local name (its
 * conversation's label, names.c), size, our role, epoch, unread count and what we noticed
 * (CAIRN_GROUP_WARN_*), in the store's order of their records (the order we created or joined
 * them). Only each group's fixed part and roster are read (group_each), and its conversation.
 */
#include <string.h>

#include "client.h"
#include "group.h"

struct list_ctx {
	struct cairn *c;
	cairn_group_cb cb;
	void *ctx;
	int rc; /* a store error, or what CB returned */
};

static int list_one(void *vctx, const struct group_state *g)
{
	struct list_ctx *x = vctx;
	struct conversation v;
	int rc = client_load_conversation(x->c, g->conv, &v);
	if (rc != 0) {
		x->rc = rc;
		return 1;
	}
	char name[CAIRN_NAME_MAX + 1];
	memcpy(name, v.label, sizeof(name));
	struct cairn_group_info out = {
	    .name = name,
	    .members = g->roster.count,
	    .admin = !g->removed && g->roster.member[g->self].role == GROUP_ROLE_ADMIN,
	    .removed = g->removed,
	    .epoch = g->epoch,
	    .unread = v.unread,
	    .warnings = (g->withheld ? CAIRN_GROUP_WARN_WITHHELD : 0u) |
	                (g->gap ? CAIRN_GROUP_WARN_EXPIRED : 0u) |
	                (g->bad_commit ? CAIRN_GROUP_WARN_BAD_COMMIT : 0u) |
	                (g->copied ? CAIRN_GROUP_WARN_COPIED : 0u),
	};
	conversation_wipe(&v);
	x->rc = x->cb(x->ctx, &out);
	return x->rc != 0;
}

int cairn_groups(struct cairn *c, cairn_group_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct list_ctx x = {.c = c, .cb = cb, .ctx = ctx};
	int rc = group_each(c, list_one, &x);
	if (rc < 0)
		return rc;
	return x.rc;
}
