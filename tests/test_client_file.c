/* SPDX-License-Identifier: MIT */
/*
 * Files through libcairn's API against the in-memory relay (docs/PROTOCOL.md section 11): a
 * file to a contact and to a group (uploaded once, counted at the relay), an upload and a
 * download interrupted by the relay going away and resumed without appending an acknowledged
 * chunk again, and a sender that misbehaves: a tampered chunk, padding that is not zero, a
 * wrong digest (each refused, nothing kept), junk entries among the good ones (dropped), a log
 * deleted before the fetch ("expired"), and a name that tries to leave the directory.
 */
#define _XOPEN_SOURCE 700
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "api_group_common.h"
#include "file.h"
#include "files.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static uint8_t *random_file(struct fixture *f, const char *name, size_t len, char *path, size_t cap)
{
	uint8_t *b = malloc(len ? len : 1);
	assert_non_null(b);
	randombytes_buf(b, len);
	snprintf(path, cap, "%s/%s", f->w->root, name);
	write_file(path, b, len);
	return b;
}

static void same_content(const char *path, const uint8_t *want, size_t len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *got = malloc(len + 1);
	assert_int_equal(fread(got, 1, len + 1, f), len);
	assert_memory_equal(got, want, len);
	fclose(f);
	free(got);
}

struct seen {
	unsigned n;
	struct cairn_file last;
	char name[256], safe[256];
};

static int on_file(void *ctx, const struct cairn_file *fl)
{
	struct seen *s = ctx;
	s->n++;
	s->last = *fl;
	snprintf(s->name, sizeof(s->name), "%s", fl->name);
	snprintf(s->safe, sizeof(s->safe), "%s", fl->safe_name);
	return 0;
}

/* The only file C knows. */
static struct seen only_file(struct cairn *c)
{
	struct seen s = {0};
	assert_int_equal(cairn_files(c, on_file, &s), 0);
	assert_int_equal(s.n, 1);
	return s;
}

/* Progress: the first report, and (CUT) the relay taken down past a third, by a thread of
 * its own (the callback runs inside the client's read loop, which must keep reading). */
struct prog {
	struct memrelay *r;
	int cut;
	int reports;
	uint64_t first, last;
	atomic_int want, done;
	pthread_t t;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct prog *p = ctx;
	if (p->reports++ == 0)
		p->first = done;
	assert_true(done >= p->last || p->reports == 1);
	p->last = done;
	if (p->cut && done * 3 > total && done < total) {
		p->cut = 0;
		atomic_store(&p->want, 1);
		while (!atomic_load(&p->done)) /* nothing more goes before the relay is down */
			(void)poll(NULL, 0, 1);
	}
}

static void *cutter(void *arg)
{
	struct prog *p = arg;
	while (!atomic_load(&p->want))
		(void)poll(NULL, 0, 1);
	memrelay_set_down(p->r, true);
	atomic_store(&p->done, 1);
	return NULL;
}

/* Starts P's cutter for relay R. */
static void cut_start(struct prog *p, struct memrelay *r)
{
	memset(p, 0, sizeof(*p));
	p->r = r;
	p->cut = 1;
	assert_int_equal(pthread_create(&p->t, NULL, cutter, p), 0);
}

static void cut_join(struct prog *p)
{
	assert_int_equal(atomic_load(&p->done), 1);
	pthread_join(p->t, NULL);
}

static uint64_t appended(struct memrelay *r)
{
	struct memrelay_stats st;
	memrelay_stats(r, &st);
	return st.appended;
}

static void sync1(struct cairn *c)
{
	struct cairn_sync_result res;
	assert_int_equal(cairn_sync(c, &res, NULL, NULL), 0);
}

/* How many messages of C's conversation NAME contain TEXT. */
struct grep {
	const char *text;
	unsigned n;
};
static int on_msg(void *ctx, const struct cairn_message *m)
{
	struct grep *g = ctx;
	char buf[1024];
	size_t n = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
	memcpy(buf, m->text, n);
	buf[n] = '\0';
	g->n += strstr(buf, g->text) != NULL;
	return 0;
}
static unsigned grep(struct cairn *c, const char *name, const char *text)
{
	struct grep g = {.text = text};
	assert_int_equal(cairn_read(c, name, on_msg, &g), 0);
	return g.n;
}

/* The spool directory of home I holds N files. */
static unsigned spooled(struct fixture *f, unsigned i)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ls %s/files 2>/dev/null | wc -l", f->w->h[i].path);
	FILE *p = popen(cmd, "r");
	unsigned n = 0;
	assert_int_equal(fscanf(p, "%u", &n), 1);
	pclose(p);
	return n;
}

static int setup_two(void **state)
{
	struct fixture *f = fixture_new(2);
	pair(f, 1, "bob");
	*state = f;
	return 0;
}

/* ---- honest transfers ------------------------------------------------------------------ */

static void test_direct(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[0].c, *b = f->w->h[1].c;
	char src[256], dst[256];
	size_t len = 3 * 1024 * 1024 + 7;
	uint8_t *content = random_file(f, "report.pdf", len, src, sizeof(src));
	uint64_t before = appended(f->r);
	uint8_t id[16];
	struct prog p;
	memset(&p, 0, sizeof(p));
	assert_int_equal(cairn_file_send(a, "bob", src, on_progress, &p, id), 0);
	assert_int_equal(p.last, len);
	/* uploaded exactly once: one append per entry */
	assert_int_equal(appended(f->r) - before, file_chunks(len));
	struct seen s = only_file(a);
	assert_int_equal(s.last.state, CAIRN_FILE_SENT);
	assert_int_equal(s.last.outgoing, 1);
	assert_int_equal(spooled(f, 0), 0); /* the spool went once the relay held the file */
	assert_int_equal(grep(a, "bob", "file sent: report.pdf"), 1);
	sync1(b);
	s = only_file(b);
	assert_int_equal(s.last.state, CAIRN_FILE_OFFERED);
	assert_memory_equal(s.last.id, id, 16);
	assert_int_equal(s.last.size, len);
	assert_string_equal(s.name, "report.pdf");
	assert_string_equal(s.last.conversation, "alice");
	assert_null(s.last.sender);
	assert_int_equal(grep(b, "alice", "file: report.pdf"), 1);
	snprintf(dst, sizeof(dst), "%s/got.pdf", f->w->root);
	memset(&p, 0, sizeof(p));
	assert_int_equal(cairn_file_get(b, id, dst, on_progress, &p), 0);
	assert_int_equal(p.last, len);
	same_content(dst, content, len);
	assert_int_equal(only_file(b).last.state, CAIRN_FILE_RECEIVED);
	assert_int_equal(spooled(f, 1), 0);
	/* again: nothing to do, and the output is not replaced */
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), 0);
	/* a new get of another file to an existing path is refused before any fetch */
	free(content);
}

static void test_group(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(3);
	pair(f, 1, "bob");
	pair(f, 2, "carol");
	struct cairn *a = f->w->h[0].c;
	assert_int_equal(cairn_group_create(a, "team", f->addr), 0);
	assert_int_equal(cairn_group_add(a, "team", "bob"), 0);
	assert_int_equal(cairn_group_add(a, "team", "carol"), 0);
	sync_all(f, 5);
	char src[256], dst[256];
	size_t len = 1000000;
	uint8_t *content = random_file(f, "minutes.odt", len, src, sizeof(src));
	uint64_t before = appended(f->r);
	uint8_t id[16];
	assert_int_equal(cairn_file_send(a, "team", src, NULL, NULL, id), 0);
	/* once for the whole group: the entries, and the group message (with at most a key
	 * update before it) */
	uint64_t n = appended(f->r) - before;
	assert_true(n >= file_chunks(len) + 1 && n <= file_chunks(len) + 2);
	for (unsigned i = 1; i < 3; i++) {
		struct cairn *c = f->w->h[i].c;
		sync1(c);
		struct seen s = only_file(c);
		assert_int_equal(s.last.state, CAIRN_FILE_OFFERED);
		assert_string_equal(s.name, "minutes.odt");
		assert_string_equal(s.last.conversation, "team");
		assert_non_null(s.last.sender);
		assert_string_equal(s.last.sender, "alice");
		snprintf(dst, sizeof(dst), "%s/minutes.%u", f->w->root, i);
		assert_int_equal(cairn_file_get(c, id, dst, NULL, NULL), 0);
		same_content(dst, content, len);
		assert_int_equal(grep(c, "team", "file: minutes.odt"), 1);
	}
	assert_int_equal(grep(a, "team", "file sent: minutes.odt"), 1);
	free(content);
	void *st = f;
	teardown(&st);
}

/* The relay goes away a third of the way: the send stops with a retryable error, and the same
 * call resumes past every acknowledged chunk. */
static void test_resume_upload(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[0].c, *b = f->w->h[1].c;
	char src[256], dst[256];
	size_t len = 4 * 1024 * 1024;
	uint8_t *content = random_file(f, "video.mp4", len, src, sizeof(src));
	uint32_t chunks = file_chunks(len);
	uint64_t before = appended(f->r);
	struct prog p;
	cut_start(&p, f->r);
	uint8_t id[16], id2[16];
	int rc = cairn_file_send(a, "bob", src, on_progress, &p, id);
	cut_join(&p);
	assert_true(rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT);
	struct seen s = only_file(a);
	assert_int_equal(s.last.state, CAIRN_FILE_SENDING);
	assert_true(s.last.done * 3 > len);
	uint64_t first = appended(f->r) - before;
	assert_true(first < chunks);
	memrelay_set_down(f->r, false);
	memset(&p, 0, sizeof(p));
	assert_int_equal(cairn_file_send(a, "bob", src, on_progress, &p, id2), 0);
	assert_memory_equal(id, id2, 16);
	assert_true(p.first == s.last.done); /* resumed where the record said */
	/* Every chunk appended once, but those whose APPENDED the drop took (at most a window):
	 * restarting from the first would append a third of the file again. */
	uint64_t total = appended(f->r) - before;
	assert_true(total >= chunks);
	assert_true(total - chunks <= 32);
	sync1(b);
	snprintf(dst, sizeof(dst), "%s/video.out", f->w->root);
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), 0);
	same_content(dst, content, len);
	free(content);
}

static void test_resume_download(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[0].c, *b = f->w->h[1].c;
	char src[256], dst[256];
	size_t len = 4 * 1024 * 1024 - 5;
	uint8_t *content = random_file(f, "scan.tiff", len, src, sizeof(src));
	uint8_t id[16];
	assert_int_equal(cairn_file_send(a, "bob", src, NULL, NULL, id), 0);
	sync1(b);
	snprintf(dst, sizeof(dst), "%s/scan.out", f->w->root);
	struct prog p;
	cut_start(&p, f->r);
	int rc = cairn_file_get(b, id, dst, on_progress, &p);
	cut_join(&p);
	assert_true(rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT);
	assert_int_equal(access(dst, F_OK), -1); /* nothing written before it is whole */
	struct seen s = only_file(b);
	assert_int_equal(s.last.state, CAIRN_FILE_RECEIVING);
	assert_true(s.last.done * 3 > len);
	memrelay_set_down(f->r, false);
	memset(&p, 0, sizeof(p));
	assert_int_equal(cairn_file_get(b, id, dst, on_progress, &p), 0);
	assert_true(p.first == s.last.done);
	same_content(dst, content, len);
	free(content);
}

/* A send killed while it encrypted: its record (no digest yet) names a spool cut short. The
 * next run writes the spool again and sends the file whole; no second spool is left. */
static void test_spool_resumed(void **state)
{
	struct fixture *f = *state;
	struct cairn *a = f->w->h[0].c, *b = f->w->h[1].c;
	char src[256], dst[256];
	size_t len = 500000;
	uint8_t *content = random_file(f, "photo.jpg", len, src, sizeof(src));
	memrelay_set_down(f->r, true);
	uint8_t id[16], id2[16];
	int rc = cairn_file_send(a, "bob", src, NULL, NULL, id);
	assert_true(rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT);
	memrelay_set_down(f->r, false);
	/* as if killed while encrypting: no digest, half a spool */
	struct file_rec r;
	char sp[4200];
	assert_int_equal(cfile_load(a, id, &r), 0);
	memset(r.digest, 0, sizeof(r.digest));
	assert_int_equal(cstate_begin(a->st), 0);
	assert_int_equal(cfile_store(a, &r), 0);
	assert_int_equal(cstate_commit(a->st), 0);
	assert_int_equal(cfile_spool_path(a, r.spool, sp, sizeof(sp), false), 0);
	assert_int_equal(truncate(sp, FILE_ENTRY_LEN + 100), 0);
	assert_int_equal(spooled(f, 0), 1);
	assert_int_equal(cairn_file_send(a, "bob", src, NULL, NULL, id2), 0);
	assert_memory_equal(id, id2, 16);
	assert_int_equal(spooled(f, 0), 0);
	sync1(b);
	snprintf(dst, sizeof(dst), "%s/photo.out", f->w->root);
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), 0);
	same_content(dst, content, len);
	free(content);
}

/* ---- a sender that misbehaves, built from proto/file.h ---------------------------------- */

enum craft_fault {
	FAULT_NONE,
	FAULT_FLIP,    /* a byte of entry 1 flipped */
	FAULT_PADDING, /* a non-zero byte in the last chunk's padding */
	FAULT_DIGEST,  /* the digest of other content */
	FAULT_JUNK,    /* a short entry, an index past the end, repeats: before the good ones */
	FAULT_DELETED, /* the log deleted before the receiver fetches */
};

static void append(struct cairn *c, struct cnet *n, const uint8_t log_id[24],
                   const uint8_t cred[32], const uint8_t *e, size_t len)
{
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_APPEND,
	                      .log_id = log_id,
	                      .credential = cred,
	                      .envelope = e,
	                      .envelope_len = len},
	                 reply;
	assert_int_equal(client_call(c, n, &m, &reply), 0);
}

/* Home 0 sends CONTENT (LEN bytes) named NAME to "bob" as FAULT says; *ID its id. */
static void craft(struct fixture *f, const uint8_t *content, size_t len, const char *name,
                  enum craft_fault fault, uint8_t id[16])
{
	struct cairn *c = f->w->h[0].c;
	uint8_t key[32], header[24], log_id[24], cred[32], del[32], cd[32], dd[32];
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_init_push(&st, header, key);
	randombytes_buf(log_id, sizeof(log_id));
	randombytes_buf(cred, sizeof(cred));
	randombytes_buf(del, sizeof(del));
	randombytes_buf(id, 16);
	crypto_generichash(cd, 32, cred, 32, log_id, 24);
	crypto_generichash(dd, 32, del, 32, log_id, 24);
	struct cnet *n = NULL;
	assert_int_equal(client_connect(c, f->addr, &n), 0);
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_CREATE,
	                      .log_id = log_id,
	                      .credential = cd,
	                      .delete_digest = dd},
	                 reply;
	assert_int_equal(client_call(c, n, &m, &reply), 0);
	uint32_t chunks = file_chunks(len);
	static uint8_t plain[FILE_CHUNK_PLAIN], e[FILE_ENTRY_LEN], first[FILE_ENTRY_LEN];
	if (fault == FAULT_JUNK) {
		memset(e, 0x55, sizeof(e));
		append(c, n, log_id, cred, e, 100);           /* short */
		e[0] = 0, e[1] = 0, e[2] = 0xff, e[3] = 0xff; /* index 65535 */
		append(c, n, log_id, cred, e, sizeof(e));
	}
	for (uint32_t i = 0; i < chunks; i++) {
		size_t off = (size_t)i * FILE_CHUNK_PLAIN;
		size_t k =
		    off < len ? (len - off < FILE_CHUNK_PLAIN ? len - off : FILE_CHUNK_PLAIN) : 0;
		memset(plain, 0, sizeof(plain));
		memcpy(plain, content + off, k);
		if (fault == FAULT_PADDING && i + 1 == chunks)
			plain[FILE_CHUNK_PLAIN - 1] = 1;
		assert_int_equal(file_entry_seal(&st, i, i + 1 == chunks, plain, e), 0);
		if (i == 0)
			memcpy(first, e, sizeof(e));
		if (fault == FAULT_FLIP && i == 1)
			e[200] ^= 0x10;
		append(c, n, log_id, cred, e, sizeof(e));
		if (fault == FAULT_JUNK && i == 1) {
			append(c, n, log_id, cred, first, sizeof(first)); /* a repeat of entry 0 */
			append(c, n, log_id, cred, e, sizeof(e));         /* and of entry 1 */
		}
	}
	if (fault == FAULT_DELETED) {
		struct cairn_msg d = {
		    .type = CAIRN_CMD_LOG_DELETE, .log_id = log_id, .delete_secret = del};
		assert_int_equal(client_call(c, n, &d, &reply), 0);
	}
	cnet_close(n);
	struct file_msg fm = {.size = len,
	                      .chunks = chunks,
	                      .relay = (const uint8_t *)f->addr,
	                      .relay_len = strlen(f->addr),
	                      .name = (const uint8_t *)name,
	                      .name_len = strlen(name)};
	crypto_generichash(fm.digest, 32, content, len, NULL, 0);
	if (fault == FAULT_DIGEST)
		fm.digest[0] ^= 1;
	memcpy(fm.key, key, 32);
	memcpy(fm.header, header, 24);
	memcpy(fm.log_id, log_id, 24);
	memcpy(fm.delete_secret, del, 32);
	uint8_t data[FILE_DATA_MAX];
	size_t dlen;
	assert_int_equal(file_msg_encode(&fm, data, sizeof(data), &dlen), 0);
	struct contact k;
	assert_int_equal(cstate_begin(c->st), 0);
	assert_int_equal(client_load_contact(c, "bob", &k), 0);
	assert_int_equal(client_queue_message(c, &k, APPMSG_FILE, data, dlen, id, 1767225600), 0);
	assert_int_equal(cstate_commit(c->st), 0);
	contact_wipe(&k);
	assert_int_equal(client_send_now(c, id), 0);
	sync1(f->w->h[1].c);
}

/* A transfer that must fail with WANT, keeping nothing. */
static void refused(struct fixture *f, enum craft_fault fault, int want)
{
	struct cairn *b = f->w->h[1].c;
	size_t len = 3 * FILE_CHUNK_PLAIN - 10;
	uint8_t *content = malloc(len);
	randombytes_buf(content, len);
	uint8_t id[16];
	craft(f, content, len, "evidence.jpg", fault, id);
	char dst[256];
	snprintf(dst, sizeof(dst), "%s/evidence.%d", f->w->root, (int)fault);
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), want);
	assert_int_equal(access(dst, F_OK), -1);
	struct seen s = {0};
	assert_int_equal(cairn_files(b, on_file, &s), 0);
	assert_int_equal(s.last.state, CAIRN_FILE_FAILED);
	assert_int_equal(s.last.error, want);
	assert_int_equal(spooled(f, 1), 0);
	/* asked again: the same error at once, nothing fetched */
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), want);
	free(content);
}

static void test_tampered(void **state)
{
	struct fixture *f = *state;
	refused(f, FAULT_FLIP, CAIRN_EAUTH);
	refused(f, FAULT_PADDING, CAIRN_EAUTH);
	refused(f, FAULT_DIGEST, CAIRN_EAUTH);
}

static void test_expired(void **state)
{
	refused(*state, FAULT_DELETED, CAIRN_EEXPIRED);
}

static void test_junk_dropped(void **state)
{
	struct fixture *f = *state;
	size_t len = 3 * FILE_CHUNK_PLAIN - 10;
	uint8_t *content = malloc(len);
	randombytes_buf(content, len);
	uint8_t id[16];
	craft(f, content, len, "notes.txt", FAULT_JUNK, id);
	char dst[256];
	snprintf(dst, sizeof(dst), "%s/notes.out", f->w->root);
	assert_int_equal(cairn_file_get(f->w->h[1].c, id, dst, NULL, NULL), 0);
	same_content(dst, content, len);
	free(content);
}

/* A name is a contact's text: its last component, made harmless, in the current directory. */
static void test_names(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *in, *out;
	} cases[] = {
	    {"../../etc/passwd", "passwd"},
	    {".bashrc", "_bashrc"},
	    {"a\x1b[31mb", "a_[31mb"},
	    {"dir\\x.txt", "x.txt"},
	    {"/", "_"},
	    {"..", "_."},
	    {"x/", "_"},
	    {"\xc2\x9b"
	     "2J.txt",
	     "_2J.txt"},
	    {"r\xc3\xa9sum\xc3\xa9.pdf", "r\xc3\xa9sum\xc3\xa9.pdf"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		cfile_safe_name((const uint8_t *)cases[i].in, strlen(cases[i].in), out,
		                sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
	size_t len = 1000;
	uint8_t content[1000];
	randombytes_buf(content, len);
	uint8_t id[16];
	craft(f, content, len, "../../.evil\x1b", FAULT_NONE, id);
	struct seen s = only_file(f->w->h[1].c);
	assert_string_equal(s.name, "../../.evil\x1b"); /* as sent: the caller filters it */
	assert_string_equal(s.safe, "_evil_");
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/in", f->w->root);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chdir(sub), 0);
	/* a file of that name exists already: refused, and it is left alone */
	write_file("_evil_", (const uint8_t *)"mine", 4);
	assert_int_equal(cairn_file_get(f->w->h[1].c, id, NULL, NULL, NULL), CAIRN_EEXIST);
	same_content("_evil_", (const uint8_t *)"mine", 4);
	assert_int_equal(unlink("_evil_"), 0);
	assert_int_equal(cairn_file_get(f->w->h[1].c, id, NULL, NULL, NULL), 0);
	same_content("_evil_", content, len);
	assert_int_equal(chdir(cwd), 0);
}

/* cfile_forget (the timer's expiry): the record and the spool go, a fetch finds nothing. */
static void test_forget(void **state)
{
	struct fixture *f = *state;
	struct cairn *b = f->w->h[1].c;
	size_t len = 60 * FILE_CHUNK_PLAIN;
	uint8_t *content = malloc(len);
	randombytes_buf(content, len);
	uint8_t id[16];
	craft(f, content, len, "gone.txt", FAULT_NONE, id);
	char dst[256];
	snprintf(dst, sizeof(dst), "%s/gone.out", f->w->root);
	/* half a fetch leaves a spool */
	struct prog p;
	cut_start(&p, f->r);
	int rc = cairn_file_get(b, id, dst, on_progress, &p);
	cut_join(&p);
	assert_true(rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT);
	memrelay_set_down(f->r, false);
	assert_int_equal(spooled(f, 1), 1);
	assert_int_equal(cstate_begin(b->st), 0);
	assert_int_equal(cfile_forget(b, id), 0);
	assert_int_equal(cstate_commit(b->st), 0);
	assert_int_equal(spooled(f, 1), 0);
	struct seen s = {0};
	assert_int_equal(cairn_files(b, on_file, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(cairn_file_get(b, id, dst, NULL, NULL), CAIRN_ENOTFOUND);
	assert_int_equal(cfile_forget(b, id), 0); /* absent: fine */
	free(content);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_direct, setup_two, teardown),
	    cmocka_unit_test(test_group),
	    cmocka_unit_test_setup_teardown(test_resume_upload, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_download, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_resumed, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_expired, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_junk_dropped, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_names, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_forget, setup_two, teardown),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
