/* SPDX-License-Identifier: MIT */
/*
 * Intake addresses, the owner's side (cairn.h; PROTOCOL.md 10.1 to 10.3, 10.7): making one
 * (on each relay an intake mailbox and a bundle log with a signed bundle), showing it,
 * changing its work, rotating and revoking it, and what the clock asks of it at every sync
 * (client_intake_sync: new prekeys, bundles appended again, expired prekeys and a rotated
 * address's old mailboxes and logs deleted). Relay work runs on connections of its own,
 * outside any store transaction; the record changes after it, in one transaction each.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "intakes.h"
#include "logio.h"
#include "work.h"

/* A reply of type TYPE to M on N, else an error. */
static int call_expect(struct cairn *c, struct cnet *n, struct cairn_msg *m, uint8_t type,
                       struct cairn_msg *reply)
{
	int rc = client_call(c, n, m, reply);
	return rc == 0 && reply->type != type ? CAIRN_ESTATE : rc;
}

/* The bundle of IN's newest prekey for log LOG_ID, signed, into OUT. */
static int make_bundle(struct cairn *c, const struct intake *in,
                       const uint8_t log_id[CAIRN_LOG_ID_LEN], uint8_t out[BUNDLE_LEN])
{
	if (in->nprekeys == 0)
		return CAIRN_ESTATE;
	const struct intake_prekey *p = &in->pk[in->nprekeys - 1];
	struct intake_bundle b = {.created = (uint64_t)p->created,
	                          .expires = (uint64_t)p->expires,
	                          .work_bits = in->work_bits};
	memcpy(b.identity, c->identity_pk, CAIRN_KEY_LEN);
	memcpy(b.prekey, p->pub, CAIRN_KEY_LEN);
	return bundle_sign(&b, log_id, c->identity_sk, out);
}

/* Appends IN's current bundle to BOX's log on N (connected to its relay). */
static int append_bundle(struct cairn *c, struct cnet *n, const struct intake *in,
                         const struct intake_box *box)
{
	uint8_t bundle[BUNDLE_LEN];
	struct cairn_msg reply;
	int rc = make_bundle(c, in, box->log_id, bundle);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = box->log_id,
	                      .credential = box->log_cred,
	                      .envelope = bundle,
	                      .envelope_len = sizeof(bundle)};
	if (rc == 0)
		rc = call_expect(c, n, &m, CAIRN_REPLY_APPENDED, &reply);
	return rc;
}

/* AUTH for BOX's intake mailbox on N. */
static int box_auth(struct cairn *c, struct cnet *n, const struct intake_box *box)
{
	uint8_t sig[64];
	struct cairn_msg reply;
	client_auth_signature(n, &box->mb, sig);
	struct cairn_msg auth = {
	    .type = CAIRN_CMD_AUTH, .recipient_id = box->mb.recipient_id, .signature = sig};
	return client_call(c, n, &auth, &reply);
}

/* Deletes BOX's mailbox and, with LOG, its log, on N (connected to its relay). `denied`
 * counts as done: the relay no longer has it (deleted before, or expired). */
static int box_delete_on(struct cairn *c, struct cnet *n, const struct intake_box *box, bool log)
{
	struct cairn_msg reply;
	struct cairn_msg del = {.type = CAIRN_CMD_DELETE, .recipient_id = box->mb.recipient_id};
	struct cairn_msg ldel = {
	    .type = CAIRN_CMD_LOG_DELETE, .log_id = box->log_id, .delete_secret = box->log_del};
	int rc = box_auth(c, n, box);
	if (rc == 0)
		rc = client_call(c, n, &del, &reply);
	if (log && (rc == 0 || rc == CAIRN_EDENIED))
		rc = client_call(c, n, &ldel, &reply);
	return rc == CAIRN_EDENIED ? 0 : rc;
}

/* Makes BOX on RELAY for IN: the intake mailbox (CREATE, INTAKE with IN's work bits) and the
 * bundle log (LOG_CREATE, then the current bundle). On failure what was made is deleted again
 * (best effort) and BOX is zeroed. */
static int box_make(struct cairn *c, const char *relay, const struct intake *in,
                    struct intake_box *box)
{
	memset(box, 0, sizeof(*box));
	if (strlen(relay) >= sizeof(box->mb.relay))
		return CAIRN_EADDRESS;
	struct cnet *n = NULL;
	int rc = client_connect(c, relay, &n);
	if (rc != 0)
		return rc;
	uint8_t pk[32], digest[CAIRN_CREDENTIAL_LEN], ddigest[CAIRN_CREDENTIAL_LEN];
	client_mailbox_keys(&box->mb, pk);
	struct cairn_msg m = {.type = CAIRN_CMD_CREATE, .recipient_key = pk}, reply;
	rc = call_expect(c, n, &m, CAIRN_REPLY_CREATED, &reply);
	bool made = rc == 0, logged = false;
	if (rc == 0) {
		memcpy(box->mb.recipient_id, reply.recipient_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(box->mb.sender_id, reply.sender_id, CAIRN_MAILBOX_ID_LEN);
		struct cairn_msg im = {.type = CAIRN_CMD_INTAKE,
		                       .recipient_id = box->mb.recipient_id,
		                       .work_bits = in->work_bits};
		rc = call_expect(c, n, &im, CAIRN_REPLY_OK, &reply);
	}
	if (rc == 0) {
		client_random(c, box->log_id, CAIRN_LOG_ID_LEN);
		client_random(c, box->log_cred, CAIRN_CREDENTIAL_LEN);
		client_random(c, box->log_del, CAIRN_CREDENTIAL_LEN);
		struct group_log_ref ref;
		memset(&ref, 0, sizeof(ref));
		memcpy(ref.log_id, box->log_id, CAIRN_LOG_ID_LEN);
		memcpy(ref.credential, box->log_cred, CAIRN_CREDENTIAL_LEN);
		group_log_digests(&ref, box->log_del, digest, ddigest);
		sodium_memzero(&ref, sizeof(ref));
		struct cairn_msg lm = {.type = CAIRN_CMD_LOG_CREATE,
		                       .log_id = box->log_id,
		                       .credential = digest,
		                       .delete_digest = ddigest};
		rc = call_expect(c, n, &lm, CAIRN_REPLY_OK, &reply);
		logged = rc == 0;
	}
	if (rc == 0)
		rc = append_bundle(c, n, in, box);
	if (rc != 0 && made && cnet_open(n)) {
		/* Best effort, on the same connection. */
		int gone = box_delete_on(c, n, box, logged);
		(void)gone; /* what stays sits empty on its relay until it expires */
	}
	cnet_close(n);
	if (rc == 0)
		strcpy(box->mb.relay, relay);
	else
		sodium_memzero(box, sizeof(*box));
	return rc;
}

/* Deletes BOX's mailbox and log on its relay (AUTH, DELETE, LOG_DELETE). */
static int box_drop(struct cairn *c, const struct intake_box *box)
{
	struct cnet *n = NULL;
	int rc = client_connect(c, box->mb.relay, &n);
	if (rc != 0)
		return rc;
	rc = box_delete_on(c, n, box, true);
	cnet_close(n);
	return rc;
}

/* Sets the work bits of BOX's intake mailbox (AUTH, INTAKE) and, with APPEND, appends IN's
 * bundle to its log. */
static int box_update(struct cairn *c, const struct intake *in, const struct intake_box *box,
                      bool bits, bool append)
{
	struct cnet *n = NULL;
	int rc = client_connect(c, box->mb.relay, &n);
	if (rc != 0)
		return rc;
	struct cairn_msg reply;
	if (bits) {
		struct cairn_msg im = {.type = CAIRN_CMD_INTAKE,
		                       .recipient_id = box->mb.recipient_id,
		                       .work_bits = in->work_bits};
		rc = box_auth(c, n, box);
		if (rc == 0)
			rc = call_expect(c, n, &im, CAIRN_REPLY_OK, &reply);
	}
	if (rc == 0 && append)
		rc = append_bundle(c, n, in, box);
	cnet_close(n);
	return rc;
}

/* The text of the address made of BOXES (N of them) of IN: "cairn-intake:" and base64url. */
static int address_text(struct cairn *c, const struct intake_box *boxes, size_t n, char **out)
{
	struct intake_address a;
	uint8_t bin[INTAKE_MAX_LEN];
	size_t blen = 0;
	*out = NULL;
	memset(&a, 0, sizeof(a));
	memcpy(a.identity, c->identity_pk, CAIRN_KEY_LEN);
	a.count = (uint8_t)n;
	for (size_t i = 0; i < n && i < INTAKE_POINTS_MAX; i++) {
		memcpy(a.point[i].sender_id, boxes[i].mb.sender_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(a.point[i].log_id, boxes[i].log_id, CAIRN_LOG_ID_LEN);
		snprintf(a.point[i].relay, sizeof(a.point[i].relay), "%s", boxes[i].mb.relay);
	}
	int rc = intake_encode(&a, bin, sizeof(bin), &blen);
	if (rc != 0)
		return rc;
	return client_scheme_encode(INTAKE_SCHEME, bin, blen, out);
}

/* Checks RELAYS for a new address before any relay is asked: 1..CAIRN_RELAYS_MAX of them,
 * that the address encoder accepts (addresses that parse, no relay twice). */
static int check_relays(struct cairn *c, const char *const *relays, size_t n)
{
	struct intake_box boxes[CAIRN_MAILBOXES_MAX];
	char *text = NULL;
	if (relays == NULL || n == 0 || n > CAIRN_RELAYS_MAX)
		return CAIRN_EINVAL;
	memset(boxes, 0, sizeof(boxes));
	for (size_t i = 0; i < n; i++) {
		if (relays[i] == NULL || strlen(relays[i]) >= sizeof(boxes[i].mb.relay))
			return CAIRN_EADDRESS;
		strcpy(boxes[i].mb.relay, relays[i]);
	}
	int rc = address_text(c, boxes, n, &text);
	free(text);
	return rc;
}

/* A fresh prekey made at NOW, added to IN (the oldest dropped if IN is full: sync deletes
 * expired ones first, so only a clock that jumped back fills it). */
static void prekey_add(struct intake *in, int64_t now)
{
	struct x3dh_onetime k;
	x3dh_onetime_generate(&k, NULL);
	if (in->nprekeys == INTAKE_PREKEYS_MAX) {
		memmove(&in->pk[0], &in->pk[1], (INTAKE_PREKEYS_MAX - 1) * sizeof(in->pk[0]));
		in->nprekeys--;
	}
	struct intake_prekey *p = &in->pk[in->nprekeys++];
	memcpy(p->pub, k.pub, CAIRN_KEY_LEN);
	memcpy(p->priv, k.priv, CAIRN_KEY_LEN);
	p->created = now;
	p->expires = now + INTAKE_PREKEY_LIFE;
	in->appended_prekey = 0;
	sodium_memzero(&k, sizeof(k));
}

/*
 * Stores IN in one transaction with a check against another process: a NEW intake unless
 * another holds its label (CAIRN_EEXIST); otherwise only if it still exists (revoked
 * meanwhile: CAIRN_ENOTFOUND).
 */
static int store_checked(struct cairn *c, const struct intake *in, bool new)
{
	struct intake *other = malloc(sizeof(*other));
	if (other == NULL)
		return CAIRN_ENOMEM;
	int rc = cstate_begin(c->st);
	if (rc == 0) {
		rc = new ? intake_find(c, in->label, other) : intake_load(c, in->id, other);
		if (new)
			rc = rc == 0 ? CAIRN_EEXIST : rc == CAIRN_ENOTFOUND ? 0 : rc;
		if (rc == 0)
			rc = intake_store(c, in);
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
	}
	intake_wipe(other);
	free(other);
	return rc;
}

int cairn_intake_create(struct cairn *c, const char *const *relays, size_t nrelays,
                        const char *label, unsigned work_bits, char **address)
{
	if (address != NULL)
		*address = NULL;
	if (c == NULL || address == NULL || !client_valid_name(label))
		return CAIRN_EINVAL;
	if (work_bits == 0)
		work_bits = INTAKE_DEFAULT_BITS;
	if (work_bits < WORK_BITS_MIN || work_bits > WORK_BITS_MAX)
		return CAIRN_EINVAL;
	int rc = check_relays(c, relays, nrelays);
	if (rc != 0)
		return rc;
	struct intake *in = calloc(1, sizeof(*in)), *other = malloc(sizeof(*other));
	if (in == NULL || other == NULL) {
		free(in);
		free(other);
		return CAIRN_ENOMEM;
	}
	/* Refused before any relay is asked; store_checked checks again in its transaction. */
	rc = intake_find(c, label, other);
	rc = rc == 0 ? CAIRN_EEXIST : rc == CAIRN_ENOTFOUND ? 0 : rc;
	client_random(c, in->id, RECORD_ID_LEN);
	strcpy(in->label, label);
	in->work_bits = (uint8_t)work_bits;
	int64_t now = client_now_s(c);
	prekey_add(in, now);
	for (size_t i = 0; i < nrelays && rc == 0; i++)
		if ((rc = box_make(c, relays[i], in, &in->cur[i])) == 0)
			in->n++;
	in->appended_at = now;
	in->appended_bits = in->work_bits;
	in->appended_prekey = 1;
	if (rc == 0)
		rc = address_text(c, in->cur, in->n, address);
	/* Stored before it is shown: an address handed out always has its keys kept. */
	if (rc == 0)
		rc = store_checked(c, in, true);
	if (rc != 0) {
		for (size_t i = 0; i < in->n; i++) {
			int gone = box_drop(c, &in->cur[i]);
			(void)gone; /* best effort: what stays sits empty until it expires */
		}
		free(*address); /* public: nothing to wipe */
		*address = NULL;
	}
	intake_wipe(in);
	intake_wipe(other);
	free(in);
	free(other);
	return rc;
}

int cairn_intake_address(struct cairn *c, const char *label, char **address)
{
	if (address != NULL)
		*address = NULL;
	if (c == NULL || address == NULL || label == NULL)
		return CAIRN_EINVAL;
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL)
		return CAIRN_ENOMEM;
	int rc = intake_find(c, label, in);
	if (rc == 0)
		rc = address_text(c, in->cur, in->n, address);
	intake_wipe(in);
	free(in);
	return rc;
}

/* Loads intake LABEL into a fresh allocation (*OUT; intake_wipe and free it). */
static int load_label(struct cairn *c, const char *label, struct intake **out)
{
	*out = NULL;
	if (c == NULL || label == NULL)
		return CAIRN_EINVAL;
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL)
		return CAIRN_ENOMEM;
	int rc = intake_find(c, label, in);
	if (rc != 0) {
		free(in);
		return rc;
	}
	*out = in;
	return 0;
}

static void free_intake(struct intake *in)
{
	if (in != NULL) {
		intake_wipe(in);
		free(in);
	}
}

int cairn_intake_rotate(struct cairn *c, const char *label, uint64_t grace_seconds, char **address)
{
	if (address != NULL)
		*address = NULL;
	if (address == NULL || grace_seconds > (uint64_t)INT32_MAX)
		return CAIRN_EINVAL;
	struct intake *in = NULL;
	int rc = load_label(c, label, &in);
	if (rc != 0)
		return rc;
	/* An address rotated before, still in its grace, goes now: one old address at most. */
	for (size_t i = 0; i < in->nold && rc == 0; i++)
		rc = box_drop(c, &in->old[i]);
	struct intake_box fresh[CAIRN_MAILBOXES_MAX];
	size_t nfresh = 0;
	for (size_t i = 0; i < in->n && rc == 0; i++)
		if ((rc = box_make(c, in->cur[i].mb.relay, in, &fresh[i])) == 0)
			nfresh++;
	if (rc == 0) {
		memcpy(in->old, in->cur, sizeof(in->old));
		in->nold = in->n;
		in->old_until = client_now_s(c) + (int64_t)grace_seconds;
		memcpy(in->cur, fresh, sizeof(in->cur));
		rc = address_text(c, in->cur, in->n, address);
	}
	if (rc == 0)
		rc = store_checked(c, in, false);
	if (rc != 0) {
		for (size_t i = 0; i < nfresh; i++) {
			int gone = box_drop(c, &fresh[i]);
			(void)gone; /* best effort */
		}
		free(*address); /* public: nothing to wipe */
		*address = NULL;
	}
	sodium_memzero(fresh, sizeof(fresh));
	free_intake(in);
	/* A grace of 0: the old address goes at once, as at the end of any grace. */
	if (rc == 0 && grace_seconds == 0)
		rc = client_intake_sync(c);
	return rc;
}

int cairn_intake_revoke(struct cairn *c, const char *label)
{
	struct intake *in = NULL;
	int rc = load_label(c, label, &in);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < in->n && rc == 0; i++)
		rc = box_drop(c, &in->cur[i]);
	for (size_t i = 0; i < in->nold && rc == 0; i++)
		rc = box_drop(c, &in->old[i]);
	/* Kept until every relay has dropped it, so that a failed revoke can be repeated. */
	if (rc == 0 && (rc = cstate_begin(c->st)) == 0) {
		for (size_t i = 0; i < in->nprekeys && rc == 0; i++)
			rc = intake_ek_drop_prekey(c, in->pk[i].pub);
		if (rc == 0)
			rc = cstate_del(c->st, REC_INTAKE, in->id, RECORD_ID_LEN);
		if (rc == 0)
			rc = cstate_commit(c->st);
		else
			cstate_rollback(c->st);
	}
	free_intake(in);
	return rc;
}

int cairn_intake_work(struct cairn *c, const char *label, unsigned work_bits)
{
	if (work_bits < WORK_BITS_MIN || work_bits > WORK_BITS_MAX)
		return CAIRN_EINVAL;
	struct intake *in = NULL;
	int rc = load_label(c, label, &in);
	if (rc != 0)
		return rc;
	in->work_bits = (uint8_t)work_bits;
	/* The relays first (raised bits refuse cheaper work at once), then the bundles that
	 * tell requesters. */
	for (size_t i = 0; i < in->n && rc == 0; i++)
		rc = box_update(c, in, &in->cur[i], true, true);
	for (size_t i = 0; i < in->nold && rc == 0; i++)
		rc = box_update(c, in, &in->old[i], true, true);
	if (rc == 0) {
		in->appended_at = client_now_s(c);
		in->appended_bits = in->work_bits;
		in->appended_prekey = 1;
		rc = store_checked(c, in, false);
	}
	free_intake(in);
	return rc;
}

/* ---- listing ------------------------------------------------------------------------- */

struct count_ctx {
	const uint8_t *intake;
	unsigned n;
};

static int count_requests(void *vctx, const uint8_t *v, size_t vlen)
{
	struct count_ctx *x = vctx;
	struct contact k;
	if (contact_parse(v, vlen, &k) != 0)
		return 0;
	if (k.state == CONTACT_REQUEST && sodium_memcmp(k.intake, x->intake, RECORD_ID_LEN) == 0)
		x->n++;
	contact_wipe(&k);
	return 0;
}

struct intakes_ctx {
	struct cairn *c;
	cairn_intake_cb cb;
	void *ctx;
	int rc;
};

static int intake_one(void *vctx, const struct intake *in)
{
	struct intakes_ctx *x = vctx;
	char *text = NULL;
	struct count_ctx cc = {in->id, 0};
	int rc = address_text(x->c, in->cur, in->n, &text);
	if (rc == 0 && (rc = cstate_list(x->c->st, REC_CONTACT, count_requests, &cc)) > 0)
		rc = 0;
	if (rc != 0) {
		x->rc = rc;
		free(text);
		return 1;
	}
	struct cairn_intake out = {.label = in->label,
	                           .address = text,
	                           .work_bits = in->work_bits,
	                           .pending = cc.n,
	                           .old_until = in->nold > 0 ? in->old_until : 0};
	int stop = x->cb(x->ctx, &out);
	free(text);
	return stop;
}

int cairn_intakes(struct cairn *c, cairn_intake_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct intakes_ctx x = {c, cb, ctx, 0};
	int rc = intake_each(c, intake_one, &x);
	if (x.rc < 0)
		return x.rc;
	return rc;
}

/* ---- what the clock asks (sync) ------------------------------------------------------ */

struct ids {
	uint8_t (*id)[RECORD_ID_LEN];
	size_t n, cap;
};

static int collect_id(void *vctx, const struct intake *in)
{
	struct ids *x = vctx;
	if (x->n == x->cap) {
		size_t ncap = x->cap ? 2 * x->cap : 8;
		void *p = realloc(x->id, ncap * sizeof(*x->id));
		if (p == NULL)
			return CAIRN_ENOMEM;
		x->id = p;
		x->cap = ncap;
	}
	memcpy(x->id[x->n++], in->id, RECORD_ID_LEN);
	return 0;
}

/* The local half of intake ID's duties at NOW, in one transaction: a prekey past its keeping
 * goes with its EK set, a new one is made when the newest is a week old. *IN receives the
 * intake as stored. */
static int sync_keys(struct cairn *c, const uint8_t id[RECORD_ID_LEN], int64_t now,
                     struct intake *in)
{
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = intake_load(c, id, in);
	for (size_t i = 0; rc == 0 && i < in->nprekeys;) {
		/* The newest stays whatever its age: it is what the bundle names. */
		if (i + 1 == in->nprekeys || now < in->pk[i].expires + INTAKE_PREKEY_KEEP) {
			i++;
			continue;
		}
		rc = intake_ek_drop_prekey(c, in->pk[i].pub);
		sodium_memzero(&in->pk[i], sizeof(in->pk[i]));
		memmove(&in->pk[i], &in->pk[i + 1], (in->nprekeys - i - 1) * sizeof(in->pk[0]));
		in->nprekeys--;
	}
	if (rc == 0 &&
	    (in->nprekeys == 0 || now - in->pk[in->nprekeys - 1].created >= INTAKE_PREKEY_EVERY))
		prekey_add(in, now);
	if (rc == 0)
		rc = intake_store(c, in);
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	return rc;
}

/* Whether IN's bundle is due in its logs again at NOW (10.3). */
static bool append_due(const struct intake *in, int64_t now)
{
	return !in->appended_prekey || in->appended_bits != in->work_bits ||
	       now - in->appended_at >= INTAKE_REAPPEND_EVERY;
}

/* The relay half for intake IN at NOW (network; the record is updated after). */
static int sync_relays(struct cairn *c, struct intake *in, int64_t now)
{
	int rc = 0;
	bool append = append_due(in, now);
	for (size_t i = 0; append && i < in->n && rc == 0; i++)
		rc = box_update(c, in, &in->cur[i], false, true);
	bool changed = append && rc == 0;
	if (changed) {
		in->appended_at = now;
		in->appended_bits = in->work_bits;
		in->appended_prekey = 1;
	}
	if (in->nold > 0 && now >= in->old_until) {
		int drc = 0;
		for (size_t i = 0; i < in->nold && drc == 0; i++)
			drc = box_drop(c, &in->old[i]);
		if (drc == 0) {
			sodium_memzero(in->old, sizeof(in->old));
			in->nold = 0;
			in->old_until = 0;
			changed = true;
		}
		if (rc == 0)
			rc = drc;
	}
	int src = changed ? store_checked(c, in, false) : 0;
	/* A relay that did not answer is tried at the next sync; the store's failure is ours. */
	return src != 0 && src != CAIRN_ENOTFOUND ? src : 0;
}

/* The engine's half for intake ID at NOW, in one transaction: the bundle, when due, goes into
 * the group outbox for every current log (logio carries it, and retries it until the relay
 * confirms), and the intake is marked appended with it. */
static int tick_one(struct cairn *c, const uint8_t id[RECORD_ID_LEN], int64_t now,
                    struct intake *in)
{
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = intake_load(c, id, in);
	bool due = rc == 0 && append_due(in, now);
	for (size_t i = 0; due && rc == 0 && i < in->n; i++) {
		uint8_t bundle[BUNDLE_LEN], out_id[16];
		struct group_log_ref ref;
		memset(&ref, 0, sizeof(ref));
		strcpy(ref.relay, in->cur[i].mb.relay);
		memcpy(ref.log_id, in->cur[i].log_id, CAIRN_LOG_ID_LEN);
		memcpy(ref.credential, in->cur[i].log_cred, CAIRN_CREDENTIAL_LEN);
		rc = make_bundle(c, in, ref.log_id, bundle);
		if (rc == 0)
			rc = group_out_append(c, &ref, bundle, sizeof(bundle), out_id);
		sodium_memzero(&ref, sizeof(ref));
	}
	if (due && rc == 0) {
		in->appended_at = now;
		in->appended_bits = in->work_bits;
		in->appended_prekey = 1;
		rc = intake_store(c, in);
	}
	if (rc == 0)
		rc = cstate_commit(c->st);
	else
		cstate_rollback(c->st);
	return rc;
}

/* Every intake's duties at the client's clock: the relay half waiting for the relays (WAIT)
 * or through the group outbox. */
static int duties(struct cairn *c, bool wait)
{
	struct ids x = {0};
	int rc = intake_each(c, collect_id, &x);
	struct intake *in = malloc(sizeof(*in));
	if (in == NULL)
		rc = CAIRN_ENOMEM;
	int64_t now = client_now_s(c);
	for (size_t i = 0; rc >= 0 && i < x.n; i++) {
		int r = sync_keys(c, x.id[i], now, in);
		if (r == 0)
			r = wait ? sync_relays(c, in, now) : tick_one(c, x.id[i], now, in);
		if (r < 0 && r != CAIRN_ENOTFOUND)
			rc = r;
		intake_wipe(in);
	}
	free(in);
	free(x.id);
	return rc < 0 ? rc : 0;
}

int client_intake_tick(struct cairn *c)
{
	return duties(c, false);
}

int client_intake_sync(struct cairn *c)
{
	return duties(c, true);
}
