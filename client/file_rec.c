/* SPDX-License-Identifier: MIT */
/*
 * Files' records (files.h): their layouts in the sealed store, the progress kept per chunk,
 * the spool's place, a file message that came in (stored as an offered file and a line in
 * the conversation), forgetting a file, and cairn_files.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "files.h"
#include "group.h"
#include "records_io.h"

#define FILE_REC_VERSION 1

static inline uint32_t r_u32(struct reader *r)
{
	const uint8_t *p = r_take(r, 4);
	return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
	         : 0;
}

static inline void w_u32(struct writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	w_bytes(w, b, 4);
}

/* A variable field of at most CAP - 1 bytes into OUT, terminated. */
static void r_text(struct reader *r, char *out, size_t cap)
{
	uint32_t n = r_u32(r);
	if (n >= cap) {
		r->err = CAIRN_ECORRUPT;
		return;
	}
	r_bytes(r, out, n);
	out[r->err ? 0 : n] = '\0';
}

static int rec_encode(const struct file_rec *f, uint8_t **out, size_t *len)
{
	struct writer w = {0};
	w_u8(&w, FILE_REC_VERSION);
	w_bytes(&w, f->id, APPMSG_ID_LEN);
	w_u8(&w, f->dir);
	w_u8(&w, f->state);
	w_u8(&w, f->group);
	w_u32(&w, (uint32_t)f->error);
	w_bytes(&w, f->conv, RECORD_ID_LEN);
	w_bytes(&w, f->peer, RECORD_ID_LEN);
	w_bytes(&w, f->gid, RECORD_ID_LEN);
	w_u64(&w, f->sent_at);
	w_u64(&w, f->size);
	w_u32(&w, f->chunks);
	w_bytes(&w, f->digest, FILE_DIGEST_LEN);
	w_bytes(&w, f->key, FILE_KEY_LEN);
	w_bytes(&w, f->header, FILE_HEADER_LEN);
	w_bytes(&w, f->log_id, CAIRN_LOG_ID_LEN);
	w_bytes(&w, f->credential, CAIRN_CREDENTIAL_LEN);
	w_bytes(&w, f->delete_secret, CAIRN_CREDENTIAL_LEN);
	w_str(&w, f->relay, CAIRN_ADDRESS_MAX);
	w_var(&w, f->name, f->name_len);
	w_str(&w, f->path, sizeof(f->path) - 1);
	w_str(&w, f->spool, FILE_SPOOL_NAMELEN);
	return w_finish(&w, out, len);
}

int cfile_rec_parse(const uint8_t *in, size_t len, struct file_rec *f)
{
	memset(f, 0, sizeof(*f));
	struct reader r = {.p = in, .left = len};
	if (r_u8(&r) != FILE_REC_VERSION)
		return CAIRN_ECORRUPT;
	r_bytes(&r, f->id, APPMSG_ID_LEN);
	f->dir = r_u8(&r);
	f->state = r_u8(&r);
	f->group = r_u8(&r);
	f->error = (int32_t)r_u32(&r);
	r_bytes(&r, f->conv, RECORD_ID_LEN);
	r_bytes(&r, f->peer, RECORD_ID_LEN);
	r_bytes(&r, f->gid, RECORD_ID_LEN);
	f->sent_at = r_u64(&r);
	f->size = r_u64(&r);
	f->chunks = r_u32(&r);
	r_bytes(&r, f->digest, FILE_DIGEST_LEN);
	r_bytes(&r, f->key, FILE_KEY_LEN);
	r_bytes(&r, f->header, FILE_HEADER_LEN);
	r_bytes(&r, f->log_id, CAIRN_LOG_ID_LEN);
	r_bytes(&r, f->credential, CAIRN_CREDENTIAL_LEN);
	r_bytes(&r, f->delete_secret, CAIRN_CREDENTIAL_LEN);
	r_text(&r, f->relay, sizeof(f->relay));
	uint32_t n = r_u32(&r);
	if (n == 0 || n > FILE_NAME_MAX)
		r.err = CAIRN_ECORRUPT;
	r_bytes(&r, f->name, n);
	f->name_len = (uint8_t)n;
	r_text(&r, f->path, sizeof(f->path));
	r_text(&r, f->spool, sizeof(f->spool));
	if (r.err || r.left != 0 || (f->dir != FILE_OUT && f->dir != FILE_IN) ||
	    f->chunks != file_chunks(f->size)) {
		cfile_rec_wipe(f);
		return CAIRN_ECORRUPT;
	}
	return 0;
}

void cfile_rec_wipe(struct file_rec *r)
{
	sodium_memzero(r, sizeof(*r));
}

int cfile_load(struct cairn *c, const uint8_t id[APPMSG_ID_LEN], struct file_rec *r)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_FILE, id, APPMSG_ID_LEN, &v, &vlen);
	if (rc == 0)
		rc = cfile_rec_parse(v, vlen, r);
	cstate_free_value(v, vlen);
	return rc;
}

int cfile_store(struct cairn *c, const struct file_rec *r)
{
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = rec_encode(r, &v, &vlen);
	if (rc == 0)
		rc = cstate_put(c->st, REC_FILE, r->id, APPMSG_ID_LEN, v, vlen);
	if (v != NULL) {
		sodium_memzero(v, vlen);
		free(v);
	}
	return rc;
}

int cfile_prog_load(struct cairn *c, const uint8_t id[APPMSG_ID_LEN], struct file_prog *p)
{
	memset(p, 0, sizeof(*p));
	uint8_t *v = NULL;
	size_t vlen = 0;
	int rc = cstate_get(c->st, REC_FILE_PROG, id, APPMSG_ID_LEN, &v, &vlen);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	struct reader r = {.p = v, .left = vlen};
	if (r_u8(&r) != FILE_REC_VERSION)
		r.err = CAIRN_ECORRUPT;
	p->prefix = r_u32(&r);
	p->next_seq = r_u64(&r);
	p->nextra = r_u8(&r);
	if (p->nextra > FILE_EXTRA_MAX)
		r.err = CAIRN_ECORRUPT;
	for (uint8_t i = 0; i < p->nextra && !r.err; i++)
		p->extra[i] = r_u32(&r);
	cstate_free_value(v, vlen);
	if (r.err || r.left != 0) {
		memset(p, 0, sizeof(*p));
		return CAIRN_ECORRUPT;
	}
	return 0;
}

int cfile_prog_store(struct cairn *c, const uint8_t id[APPMSG_ID_LEN], const struct file_prog *p)
{
	uint8_t buf[1 + 4 + 8 + 1 + 4 * FILE_EXTRA_MAX];
	size_t n = 0;
	buf[n++] = FILE_REC_VERSION;
	for (int i = 3; i >= 0; i--)
		buf[n++] = (uint8_t)(p->prefix >> (8 * i));
	for (int i = 7; i >= 0; i--)
		buf[n++] = (uint8_t)(p->next_seq >> (8 * i));
	buf[n++] = p->nextra;
	for (uint8_t k = 0; k < p->nextra; k++)
		for (int i = 3; i >= 0; i--)
			buf[n++] = (uint8_t)(p->extra[k] >> (8 * i));
	return cstate_put(c->st, REC_FILE_PROG, id, APPMSG_ID_LEN, buf, n);
}

bool cfile_prog_has(const struct file_prog *p, uint32_t i)
{
	if (i < p->prefix)
		return true;
	for (uint8_t k = 0; k < p->nextra; k++)
		if (p->extra[k] == i)
			return true;
	return false;
}

int cfile_prog_mark(struct file_prog *p, uint32_t i)
{
	if (cfile_prog_has(p, i))
		return 0;
	if (i != p->prefix) {
		if (p->nextra >= FILE_EXTRA_MAX)
			return CAIRN_ELIMIT;
		p->extra[p->nextra++] = i;
		return 1;
	}
	p->prefix++;
	/* the prefix swallows the extras it reaches */
	for (bool moved = true; moved;) {
		moved = false;
		for (uint8_t k = 0; k < p->nextra; k++)
			if (p->extra[k] == p->prefix) {
				p->extra[k] = p->extra[--p->nextra];
				p->prefix++;
				moved = true;
				break;
			}
	}
	return 1;
}

uint32_t cfile_prog_count(const struct file_prog *p)
{
	return p->prefix + p->nextra;
}

int cfile_spool_path(struct cairn *c, const char *spool, char *out, size_t cap, bool mkdir_too)
{
	if (snprintf(out, cap, "%s/%s", c->home, FILE_SPOOL_DIR) >= (int)cap)
		return CAIRN_EINVAL;
	if (mkdir_too && mkdir(out, 0700) != 0 && errno != EEXIST)
		return CAIRN_EIO;
	if (mkdir_too && chmod(out, 0700) != 0)
		return CAIRN_EIO;
	size_t n = strlen(out);
	if (snprintf(out + n, cap - n, "/%s", spool) >= (int)(cap - n))
		return CAIRN_EINVAL;
	return 0;
}

int cfile_forget(struct cairn *c, const uint8_t id[APPMSG_ID_LEN])
{
	struct file_rec r;
	int rc = cfile_load(c, id, &r);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc == 0 && (rc = cstate_del(c->st, REC_FILE, id, APPMSG_ID_LEN)) == 0)
		rc = cstate_del(c->st, REC_FILE_PROG, id, APPMSG_ID_LEN);
	char path[4200];
	if (rc == 0 && r.spool[0] != '\0' &&
	    cfile_spool_path(c, r.spool, path, sizeof(path), false) == 0)
		(void)unlink(path); /* ciphertext whose key just went: absent is fine */
	cfile_rec_wipe(&r);
	return rc;
}

void cfile_safe_name(const uint8_t *name, size_t len, char *out, size_t cap)
{
	/* the last component only: after the last '/' or '\\' */
	size_t start = 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == '\\')
			start = i + 1;
	size_t n = 0;
	for (size_t i = start; i < len && n + 1 < cap; i++) {
		uint8_t b = name[i];
		bool bad = b < 0x20 || b == 0x7f || (n == 0 && b == '.');
		/* a C1 control (U+0080..U+009F, 0xc2 0x80..0x9f in UTF-8) is replaced whole */
		if (b == 0xc2 && i + 1 < len && name[i + 1] >= 0x80 && name[i + 1] <= 0x9f) {
			bad = true;
			i++;
		}
		out[n++] = bad ? '_' : (char)b;
	}
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
}

static void human_size(uint64_t size, char *out, size_t cap)
{
	if (size < 1024)
		snprintf(out, cap, "%" PRIu64 " bytes", size);
	else if (size < 1024 * 1024)
		snprintf(out, cap, "%.1f KiB", (double)size / 1024);
	else if (size < 1024ull * 1024 * 1024)
		snprintf(out, cap, "%.1f MiB", (double)size / (1024 * 1024));
	else
		snprintf(out, cap, "%.2f GiB", (double)size / (1024.0 * 1024 * 1024));
}

size_t cfile_message_text(const struct file_rec *r, char *out, size_t cap)
{
	char sz[32], hex[2 * APPMSG_ID_LEN + 1];
	human_size(r->size, sz, sizeof(sz));
	sodium_bin2hex(hex, sizeof(hex), r->id, APPMSG_ID_LEN);
	int n = r->dir == FILE_OUT
	            ? snprintf(out, cap, "file sent: %.*s (%s)", (int)r->name_len,
	                       (const char *)r->name, sz)
	            : snprintf(out, cap, "file: %.*s (%s); fetch it with: cairn files get %s",
	                       (int)r->name_len, (const char *)r->name, sz, hex);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int cfile_offered(struct cairn *c, const uint8_t conv[RECORD_ID_LEN], bool group,
                  const uint8_t *gid, const uint8_t peer[RECORD_ID_LEN],
                  const uint8_t id[APPMSG_ID_LEN], uint64_t sent_at, const uint8_t *data,
                  size_t len, char *text, size_t cap, size_t *tlen)
{
	*tlen = 0;
	struct file_msg m;
	if (file_msg_parse(data, len, &m) != 0)
		return 0;
	struct file_rec r;
	int rc = cfile_load(c, id, &r);
	cfile_rec_wipe(&r);
	if (rc == 0)
		return 0; /* ours coming back, or a repeat */
	if (rc != CAIRN_ENOTFOUND)
		return rc;
	r = (struct file_rec){.dir = FILE_IN,
	                      .state = CAIRN_FILE_OFFERED,
	                      .group = group,
	                      .sent_at = sent_at,
	                      .size = m.size,
	                      .chunks = m.chunks,
	                      .name_len = (uint8_t)m.name_len};
	memcpy(r.id, id, APPMSG_ID_LEN);
	memcpy(r.conv, conv, RECORD_ID_LEN);
	memcpy(r.peer, peer, RECORD_ID_LEN);
	if (gid != NULL)
		memcpy(r.gid, gid, RECORD_ID_LEN);
	memcpy(r.digest, m.digest, FILE_DIGEST_LEN);
	memcpy(r.key, m.key, FILE_KEY_LEN);
	memcpy(r.header, m.header, FILE_HEADER_LEN);
	memcpy(r.log_id, m.log_id, CAIRN_LOG_ID_LEN);
	memcpy(r.delete_secret, m.delete_secret, CAIRN_CREDENTIAL_LEN);
	memcpy(r.relay, m.relay, m.relay_len);
	memcpy(r.name, m.name, m.name_len);
	/* the spool's name is drawn now, so a fetch never has to store the record to begin */
	uint8_t rnd[FILE_SPOOL_NAMELEN / 2];
	client_random(c, rnd, sizeof(rnd));
	sodium_bin2hex(r.spool, sizeof(r.spool), rnd, sizeof(rnd));
	rc = cfile_store(c, &r);
	*tlen = cfile_message_text(&r, text, cap);
	cfile_rec_wipe(&r);
	sodium_memzero(&m, sizeof(m));
	return rc == 0 ? 1 : rc;
}

/* ---- cairn_files ---- */

struct list_ctx {
	struct cairn *c;
	cairn_file_cb cb;
	void *ctx;
};

static int list_one(void *ctx, const uint8_t *v, size_t vlen)
{
	struct list_ctx *l = ctx;
	struct file_rec r;
	if (cfile_rec_parse(v, vlen, &r) != 0)
		return 0; /* a damaged record is not listed */
	struct file_prog p;
	uint64_t done = 0;
	if (r.state == CAIRN_FILE_SENT || r.state == CAIRN_FILE_RECEIVED)
		done = r.size;
	else if (cfile_prog_load(l->c, r.id, &p) == 0 && r.chunks > 0)
		done = cfile_prog_count(&p) >= r.chunks ? r.size
		       : (uint64_t)cfile_prog_count(&p) * FILE_CHUNK_PLAIN < r.size
		           ? (uint64_t)cfile_prog_count(&p) * FILE_CHUNK_PLAIN
		           : r.size;
	char conv[CAIRN_NAME_MAX + 1] = "", sender[CAIRN_NAME_MAX + 1] = "";
	char name[FILE_NAME_MAX + 1], safe[FILE_NAME_MAX + 1];
	struct conversation cv;
	if (client_load_conversation(l->c, r.conv, &cv) == 0) {
		memcpy(conv, cv.label, sizeof(conv));
		conversation_wipe(&cv);
	}
	bool named_sender = r.group && r.dir == FILE_IN;
	if (named_sender)
		client_group_sender_name(l->c, r.peer, sender);
	memcpy(name, r.name, r.name_len);
	name[r.name_len] = '\0';
	cfile_safe_name(r.name, r.name_len, safe, sizeof(safe));
	struct cairn_file f = {.conversation = conv,
	                       .sender = named_sender ? sender : NULL,
	                       .name = name,
	                       .safe_name = safe,
	                       .outgoing = r.dir == FILE_OUT,
	                       .state = r.state,
	                       .error = r.error,
	                       .size = r.size,
	                       .done = done,
	                       .sent_at = (int64_t)r.sent_at};
	memcpy(f.id, r.id, APPMSG_ID_LEN);
	cfile_rec_wipe(&r);
	return l->cb(l->ctx, &f);
}

int cairn_files(struct cairn *c, cairn_file_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct list_ctx l = {.c = c, .cb = cb, .ctx = ctx};
	return cstate_list(c->st, REC_FILE, list_one, &l);
}

/* A pause before trying a relay again, doubling from 1 s to 30 s, on the client's clock
 * (env.h), so that a test's clock that skips idle time skips it. */
static void backoff(struct cairn *c, int *backoff_ms)
{
	int64_t until = client_mono_ms(c) + *backoff_ms;
	for (int64_t now; (now = client_mono_ms(c)) < until;)
		(void)poll(NULL, 0, until - now < 10 ? (int)(until - now) : 10);
	*backoff_ms = *backoff_ms * 2 > 30000 ? 30000 : *backoff_ms * 2;
}

void cfile_report(const struct cfile_xfer *x)
{
	if (x->cb == NULL)
		return;
	uint64_t done = (uint64_t)cfile_prog_count(&x->p) * FILE_CHUNK_PLAIN;
	x->cb(x->ctx, done < x->r->size ? done : x->r->size, x->r->size);
}

int cfile_run(struct cfile_xfer *x, cfile_step step)
{
	struct cairn *c = x->c;
	int rc = cfile_prog_load(c, x->r->id, &x->p);
	if (rc != 0)
		return rc;
	cfile_report(x);
	int pause = 1000;
	int64_t stall_ms =
	    8 * (int64_t)c->timeout_ms > 120000 ? 8 * (int64_t)c->timeout_ms : 120000;
	int64_t last = client_mono_ms(c);
	if ((rc = cstate_set_durable(c->st, 0)) != 0)
		return rc;
	while (cfile_prog_count(&x->p) < x->r->chunks) {
		struct cnet *n = NULL;
		x->network = true;
		x->progressed = false;
		rc = client_connect(c, x->r->relay, &n);
		if (rc == 0)
			rc = step(x, n);
		cnet_close(n);
		if (rc == 0 || !x->network)
			break;
		if (x->progressed) {
			last = client_mono_ms(c);
			pause = 1000;
		}
		if (client_mono_ms(c) - last > stall_ms)
			break;
		backoff(c, &pause);
	}
	if (cstate_set_durable(c->st, 1) != 0 && rc == 0)
		rc = CAIRN_EIO;
	return rc;
}
