/* SPDX-License-Identifier: MIT */
/*
 * Files (docs/PROTOCOL.md section 11) inside libcairn: the sealed records of files sent and
 * offered (file_rec.c), the spool of ciphertext in HOME/files, sending (file_send.c) and
 * fetching (file_get.c). Not part of the public API.
 *
 * A file's record (REC_FILE, keyed by the file's id, its message's id) holds its keys, its
 * relay and log, its name, and for ours the path it came from; its progress (REC_FILE_PROG)
 * is a separate small record written once per chunk, so that a killed process resumes at the
 * first chunk it holds no answer for. Progress is committed with synchronous=NORMAL
 * (cstate_set_durable): that survives a killed process, not a power cut. After a power cut
 * the progress may be older than what happened: the sender appends again a few chunks the
 * relay already holds (readers drop the repeats, 11.3), the receiver reads again entries it
 * had (and drops them or rewrites the same bytes). Nothing is lost, only resent.
 *
 * The spool (a file named by 16 random bytes in hex, mode 0600 in HOME/files, 0700) holds
 * entries exactly as on the wire: ciphertext under the file key, which lives only in the
 * sealed record. Deleting the record (with secure_delete) makes the spool unreadable.
 */
#ifndef CAIRN_CLIENT_FILES_H
#define CAIRN_CLIENT_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "file.h"

enum {
	REC_FILE = 60,      /* key: file id; struct file_rec */
	REC_FILE_PROG = 61, /* key: file id; struct file_prog, rewritten per chunk */
};

#define FILE_SPOOL_DIR     "files"
#define FILE_SPOOL_NAMELEN 32 /* hex of 16 random bytes */
#define FILE_EXTRA_MAX     64 /* chunks held beyond the prefix (a window's worth) */

enum file_dir { FILE_OUT = 1, FILE_IN = 2 };

struct file_rec {
	uint8_t id[APPMSG_ID_LEN];
	uint8_t dir;   /* enum file_dir */
	uint8_t state; /* enum cairn_file_state */
	uint8_t group; /* 1: the conversation is a group's */
	int32_t error; /* FAILED: why */
	uint8_t conv[RECORD_ID_LEN];
	uint8_t peer[RECORD_ID_LEN]; /* 1:1: the contact; group, incoming: the sender's id */
	uint64_t sent_at;
	uint64_t size;
	uint32_t chunks;
	uint8_t digest[FILE_DIGEST_LEN];
	uint8_t key[FILE_KEY_LEN];
	uint8_t header[FILE_HEADER_LEN];
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t credential[CAIRN_CREDENTIAL_LEN]; /* ours only */
	uint8_t delete_secret[CAIRN_CREDENTIAL_LEN];
	char relay[CAIRN_ADDRESS_MAX + 1];
	uint8_t name[FILE_NAME_MAX]; /* untrusted when incoming: not terminated */
	uint8_t name_len;
	char path[4096]; /* ours: the source's absolute path (to resume a send of it) */
	char spool[FILE_SPOOL_NAMELEN + 1];
	uint8_t gid[RECORD_ID_LEN]; /* group: the group's id */
};

/* Which chunks are held (sent: acknowledged; received: stored in the spool): all below
 * PREFIX, and the NEXTRA indexes in EXTRA; and the seq a read resumes from. */
struct file_prog {
	uint32_t prefix;
	uint8_t nextra;
	uint32_t extra[FILE_EXTRA_MAX];
	uint64_t next_seq;
};

/* Records (file_rec.c). load: 0, CAIRN_ENOTFOUND, CAIRN_ECORRUPT. store: inside the
 * caller's transaction, if any. */
CAIRN_WARN_UNUSED int cfile_load(struct cairn *c, const uint8_t id[APPMSG_ID_LEN],
                                 struct file_rec *r);
CAIRN_WARN_UNUSED int cfile_store(struct cairn *c, const struct file_rec *r);
/* Parses a record's value (as cstate_list gives it). 0 or CAIRN_ECORRUPT. */
CAIRN_WARN_UNUSED int cfile_rec_parse(const uint8_t *in, size_t len, struct file_rec *r);
/* Progress: absent reads as nothing held. */
CAIRN_WARN_UNUSED int cfile_prog_load(struct cairn *c, const uint8_t id[APPMSG_ID_LEN],
                                      struct file_prog *p);
CAIRN_WARN_UNUSED int cfile_prog_store(struct cairn *c, const uint8_t id[APPMSG_ID_LEN],
                                       const struct file_prog *p);
/* Whether chunk I is held; marks it held (1: newly, 0: already; CAIRN_ELIMIT when more
 * than FILE_EXTRA_MAX would wait beyond the prefix). How many are held. */
bool cfile_prog_has(const struct file_prog *p, uint32_t i);
int cfile_prog_mark(struct file_prog *p, uint32_t i);
uint32_t cfile_prog_count(const struct file_prog *p);

/* Wipes R's secrets. */
void cfile_rec_wipe(struct file_rec *r);

/* HOME/files/SPOOL into OUT (CAP bytes); with MKDIR, HOME/files is made 0700 first. */
CAIRN_WARN_UNUSED int cfile_spool_path(struct cairn *c, const char *spool, char *out, size_t cap,
                                       bool mkdir_too);

/*
 * Deletes file ID's record, its progress (inside the caller's transaction, if any) and then
 * its spool. For the timer's expiry (PROTOCOL.md 8.11: the file's message expired) and for
 * failed transfers. Absent is not an error. The spool is unlinked at once, even if the
 * caller's transaction later rolls back: the record would then name a spool that is gone,
 * which a send or fetch treats as nothing spooled (a fetch starts again; a send whose spool
 * is gone fails with CAIRN_EIO and must be started anew). A file written out by cairn_file_get
 * is the user's and is not touched. Returns 0 or a store error.
 */
CAIRN_WARN_UNUSED int cfile_forget(struct cairn *c, const uint8_t id[APPMSG_ID_LEN]);

/*
 * A file message (kind 8) DATA (untrusted) that came in conversation CONV (of group GID when
 * GROUP, else NULL) from PEER (the contact, or the group sender's id) with message id ID:
 * stored as an offered file, inside the caller's transaction; TEXT (CAP bytes, *TLEN) then
 * holds the line the caller stores in the conversation. A message that does not parse is
 * dropped. Returns 1 when new, 0 when dropped or a duplicate, or a store error.
 */
CAIRN_WARN_UNUSED int cfile_offered(struct cairn *c, const uint8_t conv[RECORD_ID_LEN], bool group,
                                    const uint8_t *gid, const uint8_t peer[RECORD_ID_LEN],
                                    const uint8_t id[APPMSG_ID_LEN], uint64_t sent_at,
                                    const uint8_t *data, size_t len, char *text, size_t cap,
                                    size_t *tlen);

/* The text a conversation shows for file R: "file sent: NAME (SIZE)" or "file: NAME (SIZE)"
 * with the id to fetch it by. OUT of CAP bytes; returns its length. */
size_t cfile_message_text(const struct file_rec *r, char *out, size_t cap);

/* NAME (LEN bytes, untrusted) as a file name: its last component, control characters, '/'
 * and '\\' and a leading '.' replaced with '_'; never empty. OUT of CAP (>= 2) bytes. */
void cfile_safe_name(const uint8_t *name, size_t len, char *out, size_t cap);

/* A transfer in progress (file_send.c's upload, file_get.c's fetch): what a step needs. */
struct cfile_xfer {
	struct cairn *c;
	const struct file_rec *r;
	struct file_prog p; /* loaded by cfile_run */
	int spool;          /* the spool's descriptor */
	cairn_progress_cb cb;
	void *ctx;
	bool network;    /* set by a step that failed: worth a retry (a network error) */
	bool progressed; /* set by a step: a chunk was recorded */
};

/* One connection's worth of transfer on N: 0 when every chunk is held, else an error (the
 * step sets X->network for one worth a retry). */
typedef int (*cfile_step)(struct cfile_xfer *x, struct cnet *n);

/*
 * Runs STEP over connections to X->r's relay until every chunk is held: progress loaded and
 * reported first, commits made with synchronous=NORMAL meanwhile (the header says why),
 * reconnecting after a pause that doubles from 1 s to 30 s while chunks come, and giving up
 * after 8 timeouts (at least 120 s) without one. Returns 0 or the last step's error.
 */
CAIRN_WARN_UNUSED int cfile_run(struct cfile_xfer *x, cfile_step step);

/* Reports X's progress (bytes of the file held) to its callback, if any. */
void cfile_report(const struct cfile_xfer *x);

#endif
