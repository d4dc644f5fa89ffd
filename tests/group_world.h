/* SPDX-License-Identifier: MIT */
/*
 * A world for the group state's tests (test_client_group*.c): N homes in one temporary
 * directory, a fake clock, and the relay played in memory: group logs as arrays of entries
 * whose seq is their index + 1. pump() takes a home's group outbox in queue order (LOG_CREATE,
 * LOG_APPEND, LOG_DELETE), tells the home each append's seq (appended()), and feed() hands
 * the home every entry of every log its state lists (logs()), in log order, as the transport
 * of group_io.h does. Header-only: each test file includes it once.
 */
#ifndef CAIRN_TESTS_GROUP_WORLD_H
#define CAIRN_TESTS_GROUP_WORLD_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "client.h"
#include "group.h"
#include "logio.h"

#define GW_PASS    "correct horse battery staple"
#define GW_LOGS    32
#define GW_ENTRIES 4096
#define GW_HOMES   64
#define GW_RELAY   "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@relay.example:7400"

struct gw_log {
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint64_t n; /* entries; seq i + 1 is ent[i] */
	bool deleted;
	struct {
		uint8_t *e;
		size_t len;
	} ent[GW_ENTRIES];
};

struct gw_home {
	struct cairn *c;
	char path[256];
	bool offline;
};

struct world {
	char root[64];
	int64_t now;
	unsigned nlogs;
	struct gw_log *logs; /* GW_LOGS */
	unsigned n;
	struct gw_home h[GW_HOMES];
	struct client_env env;
	bool lose_replies; /* pump: appends land but appended() is not called, items stay */
	/* gw_sync's carrying when set (test_client_group_logio: client/logio.c over memrelay)
	 * instead of the logs played in memory here */
	void (*sync)(struct world *w);
};

static inline int64_t gw_mono(void *ctx)
{
	return ((struct world *)ctx)->now * 1000;
}
static inline int64_t gw_wall(void *ctx)
{
	return ((struct world *)ctx)->now;
}
static inline void gw_random(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	randombytes_buf(buf, len);
}

static inline int gw_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline struct world *gw_new(void)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->logs = calloc(GW_LOGS, sizeof(*w->logs));
	assert_non_null(w->logs);
	/* tmpfs when there is one: the store syncs every transaction, and fifty homes do many. */
	struct stat sb;
	strcpy(w->root, stat("/dev/shm", &sb) == 0 ? "/dev/shm/cairn-group-XXXXXX"
	                                           : "/tmp/cairn-group-XXXXXX");
	assert_non_null(mkdtemp(w->root));
	w->now = 1700000000;
	w->env = (struct client_env){
	    .mono_ms = gw_mono, .wall_s = gw_wall, .random = gw_random, .ctx = w};
	return w;
}

/* Opens home I (made if new) with the fast KDF. */
static inline struct cairn *gw_open(struct world *w, unsigned i)
{
	struct gw_home *h = &w->h[i];
	struct stat sb;
	char root[sizeof(w->root)]; /* a copy: GCC fears overlap within W */
	memcpy(root, w->root, sizeof(root));
	snprintf(h->path, sizeof(h->path), "%s/h%u", root, i);
	if (stat(h->path, &sb) != 0)
		assert_int_equal(cairn_init_kdf(h->path, GW_PASS, CAIRN_KDF_INTERACTIVE), 0);
	assert_int_equal(cairn_open(h->path, GW_PASS, &h->c), 0);
	client_set_env(h->c, &w->env);
	return h->c;
}

static inline void gw_homes(struct world *w, unsigned n)
{
	for (unsigned i = w->n; i < n; i++)
		gw_open(w, i);
	w->n = n > w->n ? n : w->n;
}

/* Copies home FROM's directory to a new home (closed meanwhile, then reopened): a copy of
 * its whole state, as a seized device gives it. Returns the new home's index. */
static inline unsigned gw_copy(struct world *w, unsigned from)
{
	unsigned to = w->n++;
	cairn_close(w->h[from].c);
	char root[sizeof(w->root)];
	memcpy(root, w->root, sizeof(root));
	snprintf(w->h[to].path, sizeof(w->h[to].path), "%s/h%u", root, to);
	assert_int_equal(mkdir(w->h[to].path, 0700), 0);
	DIR *d = opendir(w->h[from].path);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char src[600], dst[600], buf[8192];
		snprintf(src, sizeof(src), "%s/%s", w->h[from].path, e->d_name);
		snprintf(dst, sizeof(dst), "%s/%s", w->h[to].path, e->d_name);
		FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
		assert_true(in != NULL && out != NULL);
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
		assert_int_equal(fclose(out), 0);
		assert_int_equal(chmod(dst, 0600), 0);
	}
	closedir(d);
	gw_open(w, from);
	gw_open(w, to);
	return to;
}

/* Closes and opens home I again: a restart. */
static inline void gw_restart(struct world *w, unsigned i)
{
	cairn_close(w->h[i].c);
	gw_open(w, i);
}

static inline void gw_free(struct world *w)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->h[i].c != NULL)
			cairn_close(w->h[i].c);
	for (unsigned l = 0; l < w->nlogs; l++)
		for (uint64_t s = 0; s < w->logs[l].n; s++)
			free(w->logs[l].ent[s].e);
	nftw(w->root, gw_rm, 8, FTW_DEPTH | FTW_PHYS);
	free(w->logs);
	free(w);
}

static inline struct gw_log *gw_find(struct world *w, const uint8_t log_id[CAIRN_LOG_ID_LEN])
{
	for (unsigned l = 0; l < w->nlogs; l++)
		if (memcmp(w->logs[l].log_id, log_id, CAIRN_LOG_ID_LEN) == 0)
			return &w->logs[l];
	return NULL;
}

/* Appends a copy of E to LOG; returns its seq. */
static inline uint64_t gw_append(struct gw_log *lg, const uint8_t *e, size_t len)
{
	assert_true(lg->n < GW_ENTRIES);
	lg->ent[lg->n].e = malloc(len);
	assert_non_null(lg->ent[lg->n].e);
	memcpy(lg->ent[lg->n].e, e, len);
	lg->ent[lg->n].len = len;
	return ++lg->n;
}

struct gw_item {
	struct group_out_item it;
	uint8_t *entry;
};
struct gw_items {
	struct gw_item *v;
	size_t n;
};

static inline int gw_collect(void *ctx, const struct group_out_item *g)
{
	struct gw_items *l = ctx;
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	struct gw_item *x = &l->v[l->n++];
	x->it = *g;
	x->entry = NULL;
	if (g->len > 0) {
		x->entry = malloc(g->len);
		memcpy(x->entry, g->entry, g->len);
	}
	return 0;
}

/* The relay takes home I's group outbox. Returns the number of appends that landed. */
static inline unsigned gw_pump(struct world *w, unsigned i)
{
	struct cairn *c = w->h[i].c;
	struct gw_items l = {0};
	if (w->h[i].offline)
		return 0;
	assert_int_equal(group_out_list(c, NULL, gw_collect, &l), 0);
	unsigned landed = 0;
	for (size_t k = 0; k < l.n; k++) {
		struct gw_item *x = &l.v[k];
		struct gw_log *lg = gw_find(w, x->it.log.log_id);
		uint64_t seq = 0;
		if (x->it.op == GROUP_OUT_CREATE && lg == NULL) {
			assert_true(w->nlogs < GW_LOGS);
			lg = &w->logs[w->nlogs++];
			memcpy(lg->log_id, x->it.log.log_id, CAIRN_LOG_ID_LEN);
		} else if (x->it.op == GROUP_OUT_APPEND && lg != NULL && !lg->deleted) {
			seq = gw_append(lg, x->entry, x->it.len);
			landed++;
		} else if (x->it.op == GROUP_OUT_DELETE && lg != NULL) {
			lg->deleted = true;
		}
		if (!w->lose_replies) {
			assert_int_equal(group_out_done(c, x->it.out_id), 0);
			if (seq != 0)
				assert_int_equal(
				    group_logio_handler.appended(c, NULL, x->it.out_id, seq), 0);
		}
		free(x->entry);
	}
	free(l.v);
	return landed;
}

struct gw_reads {
	struct group_log_ref ref[8];
	uint64_t from[8];
	unsigned n;
};

static inline int gw_each(void *ctx, const struct group_log_ref *log, uint64_t from)
{
	struct gw_reads *r = ctx;
	if (r->n < 8) {
		r->ref[r->n] = *log;
		r->from[r->n++] = from;
	}
	return 0;
}

/* Home I reads every log it lists until nothing new comes. Returns the entries handed. */
static inline unsigned gw_feed(struct world *w, unsigned i)
{
	struct cairn *c = w->h[i].c;
	unsigned total = 0, got;
	if (w->h[i].offline)
		return 0;
	do {
		struct gw_reads r = {0};
		got = 0;
		assert_int_equal(group_logio_handler.logs(c, NULL, gw_each, &r), 0);
		for (unsigned k = 0; k < r.n; k++) {
			struct gw_log *lg = gw_find(w, r.ref[k].log_id);
			if (lg == NULL || lg->deleted)
				continue;
			assert_int_equal(
			    group_logio_handler.log_state(c, NULL, &r.ref[k], 1, lg->n + 1), 0);
			for (uint64_t s = r.from[k]; s <= lg->n; s++, got++)
				assert_int_equal(group_logio_handler.entry(c, NULL, &r.ref[k], s,
				                                           lg->ent[s - 1].e,
				                                           lg->ent[s - 1].len),
				                 0);
		}
		total += got;
	} while (got > 0);
	return total;
}

/* Everyone online sends and reads until nothing lands and nothing is read (reading may
 * queue: a re-commit, a message sent again). */
static inline void gw_sync(struct world *w)
{
	if (w->sync != NULL) {
		w->sync(w);
		return;
	}
	unsigned moved;
	do {
		moved = 0;
		for (unsigned i = 0; i < w->n; i++)
			moved += gw_pump(w, i);
		for (unsigned i = 0; i < w->n; i++)
			moved += gw_feed(w, i);
	} while (moved > 0);
}

/* ---- looking at a home's group ---- */

static inline struct group_state *gw_state(struct world *w, unsigned i,
                                           const uint8_t gid[GROUP_ID_LEN])
{
	struct group_state *g = NULL;
	assert_int_equal(group_load(w->h[i].c, gid, &g), 0);
	return g;
}

struct gw_count {
	unsigned n;
	const char *want;
	bool found;
};

static inline int gw_count_one(void *ctx, const uint8_t *v, size_t len)
{
	struct gw_count *k = ctx;
	struct stored_message m;
	assert_int_equal(message_parse(v, len, &m), 0);
	k->n++;
	if (k->want != NULL && m.len == strlen(k->want) && memcmp(m.text, k->want, m.len) == 0)
		k->found = true;
	return 0;
}

/* The number of messages home I holds in group GID; *FOUND: whether WANT is among them. */
static inline unsigned gw_messages(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN],
                                   const char *want, bool *found)
{
	struct group_state *g = gw_state(w, i, gid);
	struct gw_count k = {.want = want};
	assert_int_equal(
	    cstate_list_scope(w->h[i].c->st, REC_MESSAGE, g->conv, RECORD_ID_LEN, gw_count_one, &k),
	    0);
	group_free(g);
	if (found != NULL)
		*found = k.found;
	return k.n;
}

static inline bool gw_has(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN],
                          const char *text)
{
	bool found = false;
	(void)gw_messages(w, i, gid, text, &found);
	return found;
}

static inline void gw_say(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN],
                          const char *text)
{
	uint8_t id[APPMSG_ID_LEN];
	assert_int_equal(group_send_text(w->h[i].c, gid, (const uint8_t *)text, strlen(text), id),
	                 0);
}

/* ---- joining ---- */

/* Admin A commits the adds of homes J[0..N) (each makes its join) and welcomes them. */
static inline void gw_add(struct world *w, unsigned a, const uint8_t gid[GROUP_ID_LEN],
                          const unsigned *j, unsigned n)
{
	struct group_request *req = calloc(n, sizeof(*req));
	assert_non_null(req);
	for (unsigned k = 0; k < n; k++) {
		uint8_t data[GROUP_JOIN_LEN];
		struct group_join jn;
		assert_int_equal(group_join_make(w->h[j[k]].c, gid, data), 0);
		assert_int_equal(group_join_decode(data, sizeof(data), &jn), 0);
		req[k].kind = GROUP_CHANGE_ADD;
		req[k].role = GROUP_ROLE_MEMBER;
		memcpy(req[k].identity, w->h[j[k]].c->identity_pk, CAIRN_KEY_LEN);
		memcpy(req[k].sign_key, jn.sign_key, CAIRN_KEY_LEN);
		memcpy(req[k].group_key, jn.group_key, CAIRN_KEY_LEN);
	}
	assert_int_equal(group_commit(w->h[a].c, gid, req, n), 0);
	free(req);
	gw_sync(w);
	for (unsigned k = 0; k < n; k++) {
		uint8_t *wel = NULL;
		size_t len = 0;
		assert_int_equal(
		    group_welcome_take(w->h[a].c, gid, w->h[j[k]].c->identity_pk, &wel, &len), 0);
		assert_int_equal(group_join_welcome(w->h[j[k]].c, wel, len), 0);
		sodium_memzero(wel, len);
		free(wel);
	}
	gw_sync(w);
}

static inline void gw_remove(struct world *w, unsigned a, const uint8_t gid[GROUP_ID_LEN],
                             unsigned r)
{
	struct group_request q = {.kind = GROUP_CHANGE_REMOVE};
	memcpy(q.identity, w->h[r].c->identity_pk, CAIRN_KEY_LEN);
	assert_int_equal(group_commit(w->h[a].c, gid, &q, 1), 0);
}

/* A world of HOMES homes where home 0 made group GID (SETTINGS, named NAME) and homes
 * [1, MEMBERS) joined it in one commit. */
static inline struct world *gw_group(unsigned homes, unsigned members, const char *name,
                                     const struct group_settings *settings,
                                     uint8_t gid[GROUP_ID_LEN])
{
	struct world *w = gw_new();
	gw_homes(w, homes);
	assert_int_equal(group_create(w->h[0].c, GW_RELAY, name, settings, gid), 0);
	gw_sync(w);
	unsigned j[GW_HOMES];
	for (unsigned k = 1; k < members; k++)
		j[k - 1] = k;
	if (members > 1)
		gw_add(w, 0, gid, j, members - 1);
	return w;
}

static inline uint64_t gw_epoch(struct world *w, unsigned i, const uint8_t gid[GROUP_ID_LEN])
{
	struct group_state *g = gw_state(w, i, gid);
	uint64_t e = g->epoch;
	group_free(g);
	return e;
}

#endif
