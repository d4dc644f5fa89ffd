/* SPDX-License-Identifier: MIT */
/*
 * Bundles (docs/PROTOCOL.md 12, 5.12; cairn.h cairn_bundle_*): the outbox written to a file a
 * person carries across a shutdown, and the courier's side that delivers such a file.
 *
 * Export: one item per 1:1 outbox entry whose contact's first mailbox is an ordinary one (a
 * SEND_WORK's proof of work would be stale, 5.10), a BUNDLED of the entry's envelope to that
 * mailbox sealed for its relay's key (forward.h bundle_seal), in random order, written
 * through a temporary file beside the target (fsync, rename, fsync of the directory), mode
 * 0600. The outbox is left as it is: the exporter sends it itself when it can (12).
 *
 * Deliver: each item in a FORWARDED to each relay named, over the client's own transports
 * and routes (session.c client_connect), a window of items in flight per connection. `bad
 * request` means "not for this relay, or altered": the item waits for the next relay; OK,
 * `expired` and SEND's errors are final for it; `storage`, `limit` and `shutdown` are tried
 * again a few times. Nothing here is logged; no item is read but to send it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/address.h"
#include "client.h"
#include "forward.h"
#include "net.h"

#define BUNDLE_WINDOW  16 /* FORWARDEDs in flight on one connection */
#define BUNDLE_RETRIES 4  /* passes over one relay for items answered `storage` or `limit` */

/* ---- export ---------------------------------------------------------------------------- */

struct export_ctx {
	struct cairn *c;
	uint64_t not_after;
	uint8_t *items; /* n items of CAIRN_BUNDLE_ITEM_LEN */
	size_t n, cap;
	int rc;
};

/* Seals entry OE for its contact's first mailbox into the next item; skips what cannot go. */
static int export_one(void *vctx, const uint8_t *v, size_t vlen)
{
	struct export_ctx *x = vctx;
	struct outbox_entry oe;
	struct contact k;
	if (outbox_parse(v, vlen, &oe) != 0)
		return 0;
	if (client_load_contact_id(x->c, oe.contact, &k) != 0)
		return 0; /* the contact is gone: the engine drops its entries too */
	struct cairn_address addr;
	int rc = 0;
	if (k.peer.count == 0 || contact_peer_intake(&k, 0) ||
	    cairn_address_parse(k.peer.box[0].relay, &addr) != 0)
		goto out;
	if (x->n == x->cap) {
		size_t ncap = x->cap ? 2 * x->cap : 16;
		uint8_t *p = realloc(x->items, ncap * CAIRN_BUNDLE_ITEM_LEN);
		if (p == NULL) {
			rc = CAIRN_ENOMEM;
			goto out;
		}
		x->items = p;
		x->cap = ncap;
	}
	struct cairn_msg m = {.type = CAIRN_CMD_BUNDLED,
	                      .request_id = 0,
	                      .not_after = x->not_after,
	                      .sender_id = k.peer.box[0].sender_id,
	                      .credential = k.peer.box[0].credential,
	                      .envelope = oe.envelope,
	                      .envelope_len = oe.envelope_len};
	uint8_t *buf = malloc(CAIRN_MSG_ENCODED_MAX);
	size_t len = 0;
	rc = buf == NULL ? CAIRN_ENOMEM : cairn_msg_encode(&m, buf, CAIRN_MSG_ENCODED_MAX, &len);
	if (rc == 0)
		rc = bundle_seal(addr.key, buf, len, x->items + x->n * CAIRN_BUNDLE_ITEM_LEN);
	if (buf != NULL) {
		sodium_memzero(buf, CAIRN_MSG_ENCODED_MAX); /* the credential */
		free(buf);
	}
	if (rc == 0)
		x->n++;
	else if (rc == CAIRN_EINVAL || rc == CAIRN_ECRYPTO)
		rc = 0; /* an envelope too big for an item, a relay key of low order: it waits */
out:
	contact_wipe(&k);
	if (rc != 0) {
		x->rc = rc;
		return 1;
	}
	return 0;
}

/* Writes LEN bytes of BUF to FD. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return CAIRN_EIO;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* PATH's directory, for its fsync after the rename ("." for a bare name). */
static int open_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(dir))
		return -1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Writes N items at ITEMS to PATH through a temporary file beside it, mode 0600. */
static int write_bundle(const char *path, const uint8_t *items, size_t n)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return CAIRN_EINVAL;
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0)
		return CAIRN_EIO;
	int rc = fchmod(fd, 0600) == 0 ? 0 : CAIRN_EIO;
	if (rc == 0)
		rc = write_all(fd, items, n * CAIRN_BUNDLE_ITEM_LEN);
	if (rc == 0 && fsync(fd) != 0)
		rc = CAIRN_EIO;
	if (close(fd) != 0 && rc == 0)
		rc = CAIRN_EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = CAIRN_EIO;
	if (rc != 0) {
		(void)unlink(tmp);
		return rc;
	}
	int dfd = open_parent(path);
	if (dfd >= 0) {
		(void)fsync(
		    dfd); /* the rename itself; some file systems refuse, which is no loss */
		close(dfd);
	}
	return 0;
}

int cairn_bundle_export(struct cairn *c, const char *path, uint32_t lifetime_s, size_t *items)
{
	if (items != NULL)
		*items = 0;
	if (c == NULL || path == NULL || path[0] == '\0' || lifetime_s == 0 ||
	    lifetime_s > CAIRN_BUNDLE_LIFETIME_MAX_S)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	int64_t now = client_now_s(c);
	struct export_ctx x = {.c = c, .not_after = (uint64_t)(now < 0 ? 0 : now) + lifetime_s};
	int rc = cstate_list(c->st, REC_OUTBOX, export_one, &x);
	if (rc >= 0)
		rc = x.rc;
	if (rc == 0) {
		/* Random order (12): the file shows nothing of the order messages were written. */
		uint8_t tmp[CAIRN_BUNDLE_ITEM_LEN];
		for (size_t i = x.n; i > 1; i--) {
			size_t j = randombytes_uniform((uint32_t)i);
			memcpy(tmp, x.items + (i - 1) * CAIRN_BUNDLE_ITEM_LEN, sizeof(tmp));
			memcpy(x.items + (i - 1) * CAIRN_BUNDLE_ITEM_LEN,
			       x.items + j * CAIRN_BUNDLE_ITEM_LEN, sizeof(tmp));
			memcpy(x.items + j * CAIRN_BUNDLE_ITEM_LEN, tmp, sizeof(tmp));
		}
		rc = write_bundle(path, x.items, x.n);
	}
	free(x.items); /* sealed bytes: nothing secret left in them */
	if (rc == 0 && items != NULL)
		*items = x.n;
	return rc < 0 ? rc : 0;
}

/* ---- deliver --------------------------------------------------------------------------- */

enum item_state { ITEM_WAITING, ITEM_TAKEN, ITEM_EXPIRED, ITEM_REFUSED };

struct deliver_ctx {
	struct cairn *c;
	int fd;
	size_t n;
	uint8_t *state; /* enum item_state per item */
	uint8_t *tries; /* transient refusals on the current relay */
};

struct slot {
	uint32_t rid;
	size_t item;
	bool used;
};

/* Reads item I of the file into OUT. */
static int read_item(const struct deliver_ctx *d, size_t i, uint8_t out[CAIRN_BUNDLE_ITEM_LEN])
{
	size_t done = 0;
	while (done < CAIRN_BUNDLE_ITEM_LEN) {
		ssize_t r = pread(d->fd, out + done, CAIRN_BUNDLE_ITEM_LEN - done,
		                  (off_t)(i * CAIRN_BUNDLE_ITEM_LEN + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return CAIRN_EIO;
		done += (size_t)r;
	}
	return 0;
}

/* Records the relay's answer M to item I in R; returns whether I is to be sent again. */
static bool settle(struct deliver_ctx *d, size_t i, const struct cairn_msg *m,
                   struct cairn_bundle_result *r)
{
	if (m->type == CAIRN_REPLY_OK) {
		d->state[i] = ITEM_TAKEN;
		r->taken++;
		return false;
	}
	/* Anything but OK or ERROR: counted as a passing failure. */
	int err = m->type == CAIRN_REPLY_ERROR ? cairn_wire_error(m->code) : CAIRN_ELIMIT;
	switch (err) {
	case CAIRN_EEXPIRED:
		d->state[i] = ITEM_EXPIRED;
		r->expired++;
		return false;
	case CAIRN_EBADREQ:
		r->elsewhere++; /* not sealed for this relay (or altered): the next one may take it
		                 */
		return false;
	case CAIRN_ESTORAGE: /* its first delivery is still being written */
	case CAIRN_ELIMIT:
	case CAIRN_ESHUTDOWN:
		if (++d->tries[i] < BUNDLE_RETRIES)
			return true;
		r->failed++;
		return false;
	default: /* SEND's own refusals (denied, quota, too big, work, full): final */
		d->state[i] = ITEM_REFUSED;
		r->refused++;
		return false;
	}
}

/* Sends every waiting item to the relay at N, BUNDLE_WINDOW at a time. */
static int deliver_on(struct deliver_ctx *d, struct cnet *n, struct cairn_bundle_result *r)
{
	struct slot win[BUNDLE_WINDOW];
	memset(win, 0, sizeof(win));
	memset(d->tries, 0, d->n);
	uint8_t *item = malloc(CAIRN_BUNDLE_ITEM_LEN);
	if (item == NULL)
		return CAIRN_ENOMEM;
	size_t next = 0, inflight = 0;
	int rc = 0;
	/* Items to retry go round again: NEXT sweeps the file until nothing is owed. */
	bool *again = calloc(d->n ? d->n : 1, sizeof(*again));
	if (again == NULL) {
		free(item);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < d->n; i++)
		again[i] = d->state[i] == ITEM_WAITING;
	for (;;) {
		while (inflight < BUNDLE_WINDOW && rc == 0) {
			while (next < d->n && !again[next])
				next++;
			if (next == d->n) {
				/* One more sweep if a retry was owed, once the window has drained.
				 */
				bool owed = false;
				for (size_t i = 0; i < d->n && !owed; i++)
					owed = again[i];
				if (!owed || inflight > 0)
					break;
				next = 0;
				continue;
			}
			again[next] = false;
			if ((rc = read_item(d, next, item)) != 0)
				break;
			struct cairn_msg m = {.type = CAIRN_CMD_FORWARDED,
			                      .request_id = cnet_next_id(n),
			                      .sealed = item,
			                      .sealed_len = CAIRN_BUNDLE_ITEM_LEN};
			if ((rc = cnet_queue(n, &m)) != 0)
				break;
			size_t s = 0;
			while (win[s].used)
				s++;
			win[s] = (struct slot){.rid = m.request_id, .item = next, .used = true};
			inflight++;
			next++;
		}
		if (rc != 0 || inflight == 0)
			break;
		if ((rc = cnet_flush(n)) != 0)
			break;
		struct cairn_msg reply;
		if ((rc = cnet_recv(n, &reply, d->c->timeout_ms)) != 0)
			break;
		for (size_t s = 0; s < BUNDLE_WINDOW; s++) {
			if (!win[s].used || win[s].rid != reply.request_id)
				continue;
			win[s].used = false;
			inflight--;
			if (settle(d, win[s].item, &reply, r))
				again[win[s].item] = true;
			break;
		}
	}
	/* A broken connection: what was in flight is owed to a later run, or the next relay. */
	r->failed += (unsigned)inflight;
	free(again);
	free(item);
	return rc;
}

/* The relays of C: its own mailboxes' and its contacts', each once, into a list. */
struct relay_list {
	char (*relay)[CAIRN_ADDRESS_MAX + 1];
	size_t n, cap;
	int rc;
};

static void relay_add(struct relay_list *l, const char *relay)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->relay[i], relay) == 0)
			return;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		void *p = realloc(l->relay, ncap * sizeof(*l->relay));
		if (p == NULL) {
			l->rc = CAIRN_ENOMEM;
			return;
		}
		l->relay = p;
		l->cap = ncap;
	}
	snprintf(l->relay[l->n++], sizeof(l->relay[0]), "%s", relay);
}

static int relay_of_contact(void *vctx, const uint8_t *b, size_t blen)
{
	struct relay_list *l = vctx;
	struct contact k;
	if (contact_parse(b, blen, &k) != 0)
		return 0;
	for (size_t i = 0; i < k.nmine; i++)
		relay_add(l, k.mine[i].relay);
	for (size_t i = 0; i < k.peer.count; i++)
		relay_add(l, k.peer.box[i].relay);
	contact_wipe(&k);
	return l->rc != 0;
}

/* Opens PATH as a bundle into D. */
static int open_bundle(const char *path, struct deliver_ctx *d)
{
	d->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO;
	struct stat sb;
	if (fstat(d->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return CAIRN_EIO;
	/* A whole number of items, or not a bundle at all (12). */
	if (sb.st_size <= 0 || (uint64_t)sb.st_size % CAIRN_BUNDLE_ITEM_LEN != 0)
		return CAIRN_EINVAL;
	d->n = (size_t)((uint64_t)sb.st_size / CAIRN_BUNDLE_ITEM_LEN);
	d->state = calloc(d->n, 1);
	d->tries = calloc(d->n, 1);
	return d->state != NULL && d->tries != NULL ? 0 : CAIRN_ENOMEM;
}

int cairn_bundle_deliver(struct cairn *c, const char *path, const char *const *relays,
                         size_t nrelays, cairn_bundle_cb cb, void *ctx,
                         struct cairn_bundle_result *total)
{
	if (total != NULL)
		memset(total, 0, sizeof(*total));
	if (c == NULL || path == NULL || (nrelays > 0 && relays == NULL))
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct deliver_ctx d = {.c = c, .fd = -1};
	struct relay_list l = {0};
	int rc = open_bundle(path, &d);
	for (size_t i = 0; rc == 0 && i < nrelays; i++)
		relay_add(&l, relays[i]);
	if (rc == 0 && nrelays == 0) {
		int lrc = cstate_list(c->st, REC_CONTACT, relay_of_contact, &l);
		if (lrc < 0)
			rc = lrc;
	}
	if (rc == 0)
		rc = l.rc;
	if (rc == 0 && l.n == 0)
		rc = CAIRN_ENOTFOUND; /* no relay to try */
	size_t reached = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		bool waiting = false;
		for (size_t j = 0; j < d.n && !waiting; j++)
			waiting = d.state[j] == ITEM_WAITING;
		if (!waiting)
			break;
		struct cairn_bundle_result r = {.relay = l.relay[i]};
		struct cnet *n = NULL;
		r.status = client_connect(c, l.relay[i], &n);
		if (r.status == 0) {
			reached++;
			r.status = deliver_on(&d, n, &r);
			if (r.status == CAIRN_ENOMEM || r.status == CAIRN_EIO)
				rc = r.status;
			cnet_close(n);
		}
		if (total != NULL) {
			total->taken += r.taken;
			total->expired += r.expired;
			total->refused += r.refused;
		}
		if (cb != NULL && cb(ctx, &r) != 0)
			break;
	}
	if (total != NULL) {
		for (size_t j = 0; j < d.n; j++)
			total->failed += d.state[j] == ITEM_WAITING;
		total->items = (unsigned)d.n;
	}
	if (rc == 0 && reached == 0)
		rc = CAIRN_ECONNECT;
	if (d.fd >= 0)
		close(d.fd);
	free(d.state);
	free(d.tries);
	free(l.relay);
	return rc;
}
