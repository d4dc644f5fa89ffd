/* SPDX-License-Identifier: MIT */
/*
 * Relay policies (policies.h, cairn.h's cairn_relay_info and cairn_policy_notices). The
 * record, sealed in the store like every record:
 *
 *     version 1 (1) || flags (1) || learned (i64 BE) || since (i64 BE) ||
 *     address length (u16 BE) || address || signature (64) || body length (u16 BE) || body
 *
 * LEARNED: when the held body was first received; SINCE: for a pending notice, when the body
 * it replaced (or the withdrawn one) was learned. A record without a body holds only a pending
 * withdrawal notice, and is deleted once reported.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "client.h"
#include "codec.h"
#include "net.h"
#include "policies.h"
#include "policy.h"
#include "state.h"

#define PREC_VERSION   1
#define PREC_CHANGED   1 /* a change not yet reported */
#define PREC_WITHDRAWN 2 /* a withdrawal not yet reported (no body) */
#define PREC_HEAD      (1 + 1 + 8 + 8 + 2)
#define PREC_MAX       (PREC_HEAD + CAIRN_ADDRESS_MAX + POLICY_SIG_LEN + 2 + POLICY_BODY_MAX)

struct prec {
	uint8_t flags;
	int64_t learned, since;
	char relay[CAIRN_ADDRESS_MAX + 1];
	uint8_t sig[POLICY_SIG_LEN];
	uint8_t body[POLICY_BODY_MAX];
	size_t body_len; /* 0: no body */
};

static void be64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
		p[i] = (uint8_t)v;
}

static int64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

static size_t prec_encode(const struct prec *r, uint8_t *out)
{
	size_t alen = strlen(r->relay), n = 0;
	out[n++] = PREC_VERSION;
	out[n++] = r->flags;
	be64(out + n, r->learned);
	be64(out + n + 8, r->since);
	n += 16;
	out[n++] = (uint8_t)(alen >> 8);
	out[n++] = (uint8_t)alen;
	memcpy(out + n, r->relay, alen);
	n += alen;
	memcpy(out + n, r->sig, POLICY_SIG_LEN);
	n += POLICY_SIG_LEN;
	out[n++] = (uint8_t)(r->body_len >> 8);
	out[n++] = (uint8_t)r->body_len;
	memcpy(out + n, r->body, r->body_len);
	return n + r->body_len;
}

static int prec_decode(const uint8_t *v, size_t len, struct prec *r)
{
	memset(r, 0, sizeof(*r));
	if (len < PREC_HEAD || v[0] != PREC_VERSION)
		return CAIRN_ECORRUPT;
	r->flags = v[1];
	r->learned = rd64(v + 2);
	r->since = rd64(v + 10);
	size_t alen = (size_t)v[18] << 8 | v[19], n = PREC_HEAD;
	if (alen > CAIRN_ADDRESS_MAX || len - n < alen + POLICY_SIG_LEN + 2)
		return CAIRN_ECORRUPT;
	memcpy(r->relay, v + n, alen);
	r->relay[alen] = '\0';
	n += alen;
	memcpy(r->sig, v + n, POLICY_SIG_LEN);
	n += POLICY_SIG_LEN;
	r->body_len = (size_t)v[n] << 8 | v[n + 1];
	n += 2;
	if (r->body_len > POLICY_BODY_MAX || len - n != r->body_len)
		return CAIRN_ECORRUPT;
	memcpy(r->body, v + n, r->body_len);
	return 0;
}

/* Reads the record of KEY into R: 0, CAIRN_ENOTFOUND, or a store error. */
static int prec_get(struct cairn *c, const uint8_t key[CAIRN_KEY_LEN], struct prec *r)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rc = cstate_get(c->st, REC_POLICY, key, CAIRN_KEY_LEN, &v, &len);
	if (rc != 0)
		return rc;
	rc = prec_decode(v, len, r);
	cstate_free_value(v, len);
	return rc;
}

static int prec_put(struct cairn *c, const uint8_t key[CAIRN_KEY_LEN], const struct prec *r)
{
	uint8_t *out = malloc(PREC_MAX);
	if (out == NULL)
		return CAIRN_ENOMEM;
	size_t n = prec_encode(r, out);
	int rc = cstate_put(c->st, REC_POLICY, key, CAIRN_KEY_LEN, out, n);
	free(out);
	return rc;
}

int client_policy_command(struct cairn *c, const char *relay, uint32_t request_id, uint8_t have[32],
                          struct cairn_msg *m)
{
	*m = (struct cairn_msg){.type = CAIRN_CMD_POLICY, .request_id = request_id};
	struct cairn_address a;
	if (cairn_address_parse(relay, &a) != 0)
		return CAIRN_EADDRESS;
	struct prec *r = malloc(sizeof(*r));
	if (r == NULL)
		return CAIRN_ENOMEM;
	int rc = prec_get(c, a.key, r);
	if (rc == 0 && r->body_len > 0) {
		policy_digest(r->body, r->body_len, have);
		m->credential = have;
	}
	free(r);
	return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

/* What REPLY says: 1 a body (verified into nothing here), 0 none published, -1 nothing. */
static int answer_kind(const struct cairn_msg *reply)
{
	if (reply->type == CAIRN_REPLY_POLICY)
		return reply->policy != NULL ? 1 : 0;
	/* An older relay: no policy (5.13). */
	if (reply->type == CAIRN_REPLY_ERROR && cairn_wire_error(reply->code) == CAIRN_EUNKNOWN)
		return 0;
	return -1; /* OK (unchanged), or a failure: the next connection asks again */
}

int client_policy_answer(struct cairn *c, const char *relay, const struct cairn_msg *reply)
{
	int kind = answer_kind(reply);
	if (kind < 0)
		return 0;
	struct cairn_address a;
	if (cairn_address_parse(relay, &a) != 0 || strlen(relay) > CAIRN_ADDRESS_MAX)
		return CAIRN_EADDRESS;
	if (kind == 1) {
		int v =
		    policy_verify(a.key, reply->policy, reply->policy_len, reply->signature, NULL);
		if (v != 0)
			return v;
	}
	struct prec *old = malloc(sizeof(*old)), *nw = malloc(sizeof(*nw));
	int rc = old != NULL && nw != NULL ? cstate_begin(c->st) : CAIRN_ENOMEM;
	if (rc != 0)
		goto out;
	int64_t now = client_now_s(c);
	rc = prec_get(c, a.key, old);
	bool found = rc == 0, held = found && old->body_len > 0;
	if (rc == CAIRN_ENOTFOUND)
		rc = 0;
	if (rc == 0 && kind == 0 && held) {
		/* Withdrawn: keep only the notice. */
		memset(nw, 0, sizeof(*nw));
		nw->flags = PREC_WITHDRAWN;
		nw->learned = now;
		nw->since = (old->flags & PREC_CHANGED) ? old->since : old->learned;
		strcpy(nw->relay, relay);
		rc = prec_put(c, a.key, nw);
	} else if (rc == 0 && kind == 1 &&
	           !(held && old->body_len == reply->policy_len &&
	             memcmp(old->body, reply->policy, old->body_len) == 0)) {
		memset(nw, 0, sizeof(*nw));
		nw->learned = now;
		strcpy(nw->relay, relay);
		memcpy(nw->sig, reply->signature, POLICY_SIG_LEN);
		memcpy(nw->body, reply->policy, reply->policy_len);
		nw->body_len = reply->policy_len;
		if (held) { /* a change: one notice, since the oldest unreported policy */
			nw->flags = PREC_CHANGED;
			nw->since = (old->flags & PREC_CHANGED) ? old->since : old->learned;
		} else if (found && old->flags != 0) {
			nw->flags = old->flags; /* a pending withdrawal notice stays pending */
			nw->since = old->since;
		}
		rc = prec_put(c, a.key, nw);
	}
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
out:
	free(old);
	free(nw);
	return rc;
}

/* ---- public: notices ------------------------------------------------------------------ */

struct notice_list {
	uint8_t (*keys)[CAIRN_KEY_LEN];
	size_t n, cap;
	struct cairn *c;
};

static int notice_collect(void *ctx, const uint8_t *v, size_t len)
{
	struct notice_list *l = ctx;
	struct prec *r = malloc(sizeof(*r));
	if (r == NULL)
		return CAIRN_ENOMEM;
	struct cairn_address a;
	if (prec_decode(v, len, r) == 0 && r->flags != 0 &&
	    cairn_address_parse(r->relay, &a) == 0) {
		if (l->n == l->cap) {
			size_t ncap = l->cap ? 2 * l->cap : 8;
			void *p = realloc(l->keys, ncap * sizeof(*l->keys));
			if (p == NULL) {
				free(r);
				return CAIRN_ENOMEM;
			}
			l->keys = p;
			l->cap = ncap;
		}
		memcpy(l->keys[l->n++], a.key, CAIRN_KEY_LEN);
	}
	free(r);
	return 0;
}

int cairn_policy_notices(struct cairn *c, cairn_policy_notice_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct notice_list l = {.c = c};
	int rc = cstate_list(c->st, REC_POLICY, notice_collect, &l);
	struct prec *r = malloc(sizeof(*r));
	if (r == NULL)
		rc = CAIRN_ENOMEM;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		/* Cleared in one transaction with its read, then reported: a notice is shown at
		 * most once, never twice from two processes. */
		if ((rc = cstate_begin(c->st)) != 0)
			break;
		rc = prec_get(c, l.keys[i], r);
		if (rc == 0 && r->flags == 0) {
			cstate_rollback(c->st);
			continue;
		}
		struct cairn_policy_notice n = {.relay = r->relay,
		                                .withdrawn = (r->flags & PREC_WITHDRAWN) != 0,
		                                .since = r->since};
		if (rc == 0 && r->body_len == 0) {
			rc = cstate_del(c->st, REC_POLICY, l.keys[i], CAIRN_KEY_LEN);
		} else if (rc == 0) {
			r->flags = 0;
			r->since = 0;
			rc = prec_put(c, l.keys[i], r);
		}
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
		if (rc == 0 && cb(ctx, &n) != 0)
			break;
	}
	free(r);
	free(l.keys);
	return rc;
}

/* ---- public: cairn_relay_info --------------------------------------------------------- */

int cairn_relay_info(struct cairn *c, const char *address, cairn_relay_policy_cb cb, void *ctx)
{
	if (c == NULL || address == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct cairn_address a;
	if (cairn_address_parse(address, &a) != 0)
		return CAIRN_EADDRESS;
	struct cnet *n = NULL;
	int rc = client_connect(c, address, &n);
	if (rc != 0)
		return rc;
	struct cairn_msg m = {.type = CAIRN_CMD_POLICY}, reply;
	rc = client_call(c, n, &m, &reply);
	struct policy *p = calloc(1, sizeof(*p));
	char digest[2 * POLICY_DIGEST_LEN + 1] = "";
	struct cairn_relay_policy out = {.jurisdiction = "",
	                                 .contact = "",
	                                 .logging = "",
	                                 .retention = "",
	                                 .statement = "",
	                                 .digest = digest};
	if (p == NULL && rc == 0)
		rc = CAIRN_ENOMEM;
	if (rc == CAIRN_EUNKNOWN) {
		rc = 0; /* an older relay: no policy */
	} else if (rc == 0 && reply.type != CAIRN_REPLY_POLICY) {
		rc = CAIRN_ESTATE;
	} else if (rc == 0 && reply.policy != NULL) {
		rc = policy_verify(a.key, reply.policy, reply.policy_len, reply.signature, p);
		if (rc != 0 && rc != CAIRN_EAUTH)
			rc = CAIRN_EAUTH; /* a body that does not decode is as false as a bad
			                     signature */
		if (rc == 0) {
			uint8_t d[POLICY_DIGEST_LEN];
			policy_digest(reply.policy, reply.policy_len, d);
			sodium_bin2hex(digest, sizeof(digest), d, sizeof(d));
			out = (struct cairn_relay_policy){.published = 1,
			                                  .jurisdiction = p->jurisdiction,
			                                  .contact = p->contact,
			                                  .ttl = p->ttl_s,
			                                  .logging = p->logging,
			                                  .retention = p->retention,
			                                  .forwarding = p->forwarding,
			                                  .statement = p->statement,
			                                  .digest = digest};
		}
	}
	cnet_close(n);
	if (rc == 0)
		rc = cb(ctx, &out);
	free(p);
	return rc;
}
