/* SPDX-License-Identifier: MIT */
/*
 * Fetching a file (cairn_file_get; docs/PROTOCOL.md 11.3): LOG_READ from seq 1, or from one
 * past the last seq stored after an interruption, each entry kept the first time its index
 * comes (written to the spool at its place, as ciphertext) and repeats, other sizes and
 * indexes out of range dropped; when every chunk is held, opened in order and checked (tags,
 * zero padding, digest) while written to a temporary file beside the output, which becomes
 * the output only once whole (fsync, then a link that never replaces a file). A 1:1 file's log
 * is then deleted with its delete secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "files.h"

/* Stores R (its state changed) in a transaction of its own. */
static int store_now(struct cairn *c, const struct file_rec *r)
{
	int rc = cstate_begin(c->st);
	if (rc != 0)
		return rc;
	rc = cfile_store(c, r);
	return rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
}

/*
 * One read of R's log on N from P->next_seq to its end. Returns 0 at END (whole or not),
 * CAIRN_EEXPIRED (the log is gone, or entries we need expired), or another error (*NETWORK:
 * worth a retry).
 */
static int read_on(struct cfile_xfer *x, struct cnet *n)
{
	struct cairn *c = x->c;
	const struct file_rec *r = x->r;
	struct file_prog *p = &x->p;
	bool *network = &x->network;
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_READ,
	                      .request_id = cnet_next_id(n),
	                      .log_id = r->log_id,
	                      .seq = p->next_seq > 0 ? p->next_seq : 1,
	                      .follow = 0},
	                 reply;
	int rc = cnet_queue(n, &m);
	if (rc == 0)
		rc = cnet_flush(n);
	while (rc == 0) {
		if ((rc = cnet_recv(n, &reply, c->timeout_ms)) != 0)
			break;
		if (reply.request_id != m.request_id)
			continue;
		if (reply.type == CAIRN_REPLY_ERROR) {
			rc = cairn_wire_error(reply.code);
			if (rc == CAIRN_EDENIED) {
				*network = false;
				rc = CAIRN_EEXPIRED;
			}
			break;
		}
		if (reply.type == CAIRN_REPLY_END) {
			/* the whole log read, chunks missing: they will not come */
			if (cfile_prog_count(p) < r->chunks) {
				*network = false;
				rc = CAIRN_EEXPIRED;
			}
			break;
		}
		if (reply.type == CAIRN_REPLY_LOG_STATE) {
			/* entries we have not read are gone while chunks are missing: expired */
			if (reply.first_seq > m.seq && cfile_prog_count(p) < r->chunks) {
				*network = false;
				rc = CAIRN_EEXPIRED;
			}
			continue;
		}
		if (reply.type != CAIRN_REPLY_LOG_ENTRY)
			continue;
		uint32_t i;
		bool keep = file_entry_index(reply.envelope, reply.envelope_len, &i) == 0 &&
		            i < r->chunks && !cfile_prog_has(p, i);
		if (keep && pwrite(x->spool, reply.envelope, FILE_ENTRY_LEN,
		                   (off_t)i * FILE_ENTRY_LEN) != FILE_ENTRY_LEN) {
			rc = CAIRN_EIO;
			*network = false;
			break;
		}
		if (keep && cfile_prog_mark(p, i) < 0) {
			/* more than a window beyond the order: not a sender of ours */
			rc = CAIRN_EAUTH;
			*network = false;
			break;
		}
		p->next_seq = reply.seq + 1;
		/* recorded at once (synchronous=NORMAL, files.h); the spool's bytes are in the
		 * kernel's cache, which a killed process does not lose */
		if ((rc = cstate_begin(c->st)) == 0) {
			rc = cfile_prog_store(c, r->id, p);
			rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
		}
		if (rc != 0) {
			*network = false;
			break;
		}
		x->progressed = true;
		if (keep)
			cfile_report(x);
	}
	return rc;
}

/* Opens the spool in order into TMP (a new file), checking everything 11.3 says. */
static int verify_into(const struct file_rec *r, int spool, int tmp)
{
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_generichash_state h;
	uint8_t digest[FILE_DIGEST_LEN];
	uint8_t *entry = malloc(FILE_ENTRY_LEN), *plain = malloc(FILE_CHUNK_PLAIN);
	int rc = entry == NULL || plain == NULL ? CAIRN_ENOMEM : 0;
	if (rc == 0 && crypto_secretstream_xchacha20poly1305_init_pull(&st, r->header, r->key) != 0)
		rc = CAIRN_EAUTH;
	crypto_generichash_init(&h, NULL, 0, FILE_DIGEST_LEN);
	uint64_t left = r->size;
	for (uint32_t i = 0; i < r->chunks && rc == 0; i++) {
		if (pread(spool, entry, FILE_ENTRY_LEN, (off_t)i * FILE_ENTRY_LEN) !=
		    FILE_ENTRY_LEN) {
			rc = CAIRN_EAUTH; /* a hole: the spool lost it (a power cut) */
			break;
		}
		if ((rc = file_entry_open(&st, i, r->chunks, entry, plain)) != 0)
			break;
		size_t n = left < FILE_CHUNK_PLAIN ? (size_t)left : FILE_CHUNK_PLAIN;
		for (size_t k = n; k < FILE_CHUNK_PLAIN; k++)
			if (plain[k] != 0)
				rc = CAIRN_EAUTH; /* 11.3: the padding must be zero */
		crypto_generichash_update(&h, plain, n);
		if (rc == 0 && n > 0 && write(tmp, plain, n) != (ssize_t)n)
			rc = CAIRN_EIO;
		left -= n;
	}
	crypto_generichash_final(&h, digest, sizeof(digest));
	if (rc == 0 && sodium_memcmp(digest, r->digest, FILE_DIGEST_LEN) != 0)
		rc = CAIRN_EAUTH;
	if (rc == 0 && fsync(tmp) != 0)
		rc = CAIRN_EIO;
	if (plain != NULL) {
		sodium_memzero(plain, FILE_CHUNK_PLAIN);
		free(plain);
	}
	free(entry);
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* Writes the verified file to OUT through a temporary file in its directory. */
static int write_out(struct cairn *c, const struct file_rec *r, int spool, const char *out)
{
	char dir[4096], tmp[4200];
	snprintf(dir, sizeof(dir), "%s", out);
	char *d = dirname(dir);
	/* Named after the spool (random, and the same for this file each time): a fetch killed
	 * while it wrote leaves this behind, and the next one replaces it. */
	(void)c;
	if (snprintf(tmp, sizeof(tmp), "%s/.cairn-%.16s.part", d, r->spool) >= (int)sizeof(tmp))
		return CAIRN_EINVAL;
	(void)unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return CAIRN_EIO;
	int rc = verify_into(r, spool, fd);
	if (close(fd) != 0 && rc == 0)
		rc = CAIRN_EIO;
	/* link() never replaces: a file that appeared meanwhile stays as it is */
	if (rc == 0 && link(tmp, out) != 0)
		rc = errno == EEXIST ? CAIRN_EEXIST : CAIRN_EIO;
	(void)unlink(tmp);
	if (rc == 0) {
		int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return rc;
}

/* A 1:1 file is whole: its log is deleted with the delete secret, best effort (else it
 * expires on the relay). */
static void delete_log(struct cairn *c, const struct file_rec *r)
{
	if (sodium_is_zero(r->delete_secret, CAIRN_CREDENTIAL_LEN))
		return;
	struct cnet *n = NULL;
	if (client_connect(c, r->relay, &n) != 0)
		return;
	struct cairn_msg m = {.type = CAIRN_CMD_LOG_DELETE,
	                      .log_id = r->log_id,
	                      .delete_secret = r->delete_secret},
	                 reply;
	if (client_call(c, n, &m, &reply) != 0) {
		/* left to expire on the relay */
	}
	cnet_close(n);
}

/* The transfer failed for good: the record says why, the spool and progress go. */
static void fail(struct cairn *c, struct file_rec *r, int err, const char *spool_path)
{
	r->state = CAIRN_FILE_FAILED;
	r->error = err;
	if (cstate_begin(c->st) != 0)
		return;
	int rc = cfile_store(c, r);
	if (rc == 0)
		rc = cstate_del(c->st, REC_FILE_PROG, r->id, APPMSG_ID_LEN);
	if (rc == 0 && cstate_commit(c->st) == 0) {
		(void)unlink(spool_path);
		return;
	}
	cstate_rollback(c->st);
}

int cairn_file_get(struct cairn *c, const uint8_t id[CAIRN_FILE_ID_LEN], const char *output,
                   cairn_progress_cb cb, void *ctx)
{
	if (c == NULL || id == NULL)
		return CAIRN_EINVAL;
	if (c->engine != NULL)
		return CAIRN_ESTATE;
	struct file_rec r;
	int rc = cfile_load(c, id, &r);
	if (rc == 0 && r.dir != FILE_IN)
		rc = CAIRN_ENOTFOUND;
	if (rc != 0)
		goto out;
	if (r.state == CAIRN_FILE_RECEIVED)
		goto out;
	if (r.state == CAIRN_FILE_FAILED) {
		rc = r.error != 0 ? r.error : CAIRN_EAUTH;
		goto out;
	}
	char safe[FILE_NAME_MAX + 1], out[4096], spool_path[4200];
	cfile_safe_name(r.name, r.name_len, safe, sizeof(safe));
	snprintf(out, sizeof(out), "%s", output != NULL ? output : safe);
	if (access(out, F_OK) == 0) {
		rc = CAIRN_EEXIST; /* said before a byte is fetched */
		goto out;
	}
	if ((rc = cfile_spool_path(c, r.spool, spool_path, sizeof(spool_path), true)) != 0)
		goto out;
	int spool = open(spool_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (spool < 0) {
		rc = CAIRN_EIO;
		goto out;
	}
	if (r.state == CAIRN_FILE_OFFERED) {
		r.state = CAIRN_FILE_RECEIVING;
		rc = store_now(c, &r);
	}
	if (rc == 0)
		rc = cfile_run(
		    &(struct cfile_xfer){.c = c, .r = &r, .spool = spool, .cb = cb, .ctx = ctx},
		    read_on);
	if (rc == 0) {
		rc = write_out(c, &r, spool, out);
		if (rc == 0 && cb != NULL)
			cb(ctx, r.size, r.size);
	}
	close(spool);
	if (rc == 0) {
		r.state = CAIRN_FILE_RECEIVED;
		if ((rc = cstate_begin(c->st)) == 0) {
			rc = cfile_store(c, &r);
			if (rc == 0)
				rc = cstate_del(c->st, REC_FILE_PROG, r.id, APPMSG_ID_LEN);
			rc = rc == 0 ? cstate_commit(c->st) : (cstate_rollback(c->st), rc);
		}
		if (rc == 0) {
			(void)unlink(spool_path);
			delete_log(c, &r);
		}
	} else if (rc == CAIRN_EAUTH || rc == CAIRN_EEXPIRED) {
		fail(c, &r, rc, spool_path); /* keeps nothing */
	}
out:
	cfile_rec_wipe(&r);
	return rc;
}
