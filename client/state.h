/* SPDX-License-Identifier: MIT */
/*
 * The client's local state: one SQLite file in the client's home directory, mode 0600,
 * secure_delete on. Every record is sealed (XChaCha20-Poly1305) under a key derived from the
 * passphrase with Argon2id; what a record is looked up by is stored only as a keyed hash.
 * A seized device without the passphrase yields record counts and sizes, nothing else.
 *
 * The store is a set of typed tables of opaque records: (kind, key) -> value, each with an
 * insertion sequence number for ordered listing, and optionally a scope (a group of records
 * listed on their own, such as one conversation's messages). Callers define the kinds and serialize
 * the records; this module only keeps them safe and durable.
 */
#ifndef CAIRN_CLIENT_STATE_H
#define CAIRN_CLIENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"

struct cstate;

#define CSTATE_FILE      "cairn.db"
#define CSTATE_KEY_MAX   256    /* longest lookup key */
#define CSTATE_VALUE_MAX 262144 /* longest record */

/* How hard the passphrase is stretched: Argon2id's MODERATE limits (256 MiB, the default) or
 * INTERACTIVE (64 MiB: devices short of memory, and tests). */
enum cstate_kdf { CSTATE_KDF_MODERATE, CSTATE_KDF_INTERACTIVE };

/*
 * Creates a new store in directory DIR (created 0700 if missing) sealed under PASSPHRASE with
 * the limits KDF names. Returns 0, CAIRN_EEXIST if DIR already holds a store, CAIRN_EINVAL,
 * or CAIRN_EIO.
 */
CAIRN_WARN_UNUSED int cstate_create(const char *dir, const char *passphrase, enum cstate_kdf kdf,
                                    struct cstate **out);

/*
 * Opens the store in DIR. Returns 0, CAIRN_ENOTFOUND (no store), CAIRN_EPASSPHRASE (wrong
 * passphrase: nothing was changed), CAIRN_ECORRUPT, or CAIRN_EIO.
 */
CAIRN_WARN_UNUSED int cstate_open(const char *dir, const char *passphrase, struct cstate **out);

/* Closes the store and wipes its keys. Accepts NULL. */
void cstate_close(struct cstate *st);

/*
 * Transactions group several changes atomically (a crash keeps all or none); only the
 * outermost commit writes. A begin inside a transaction opens a savepoint: its commit keeps
 * its changes in the enclosing level, its rollback undoes only what was changed since that
 * begin. If the store cannot undo only that level, the rollback undoes the whole transaction
 * and the outer levels' commits return CAIRN_ESTATE (or CAIRN_EIO). A caller whose inner
 * failure must abort everything returns the error so that the outer level rolls back too.
 */
CAIRN_WARN_UNUSED int cstate_begin(struct cstate *st);
CAIRN_WARN_UNUSED int cstate_commit(struct cstate *st);
void cstate_rollback(struct cstate *st);

/* Inserts or replaces record (KIND, KEY), with no scope (see cstate_put_scoped: a replaced
 * record leaves its scope). A replaced record keeps its sequence number. */
CAIRN_WARN_UNUSED int cstate_put(struct cstate *st, uint32_t kind, const void *key, size_t keylen,
                                 const void *value, size_t vlen);

/*
 * Reads record (KIND, KEY) into a buffer the caller must free with cstate_free_value (it is
 * wiped first). Returns 0, CAIRN_ENOTFOUND, or CAIRN_ECORRUPT (a record fails to open).
 */
CAIRN_WARN_UNUSED int cstate_get(struct cstate *st, uint32_t kind, const void *key, size_t keylen,
                                 uint8_t **value, size_t *vlen);

/* Deletes record (KIND, KEY); absent is not an error. */
CAIRN_WARN_UNUSED int cstate_del(struct cstate *st, uint32_t kind, const void *key, size_t keylen);

/*
 * Calls CB for every record of KIND in sequence order with its opened value (borrowed for
 * the call). CB returns 0 to go on, anything else to stop (returned by cstate_list).
 */
typedef int (*cstate_list_cb)(void *ctx, const uint8_t *value, size_t vlen);
CAIRN_WARN_UNUSED int cstate_list(struct cstate *st, uint32_t kind, cstate_list_cb cb, void *ctx);

/*
 * Like cstate_put, and the record belongs to scope SCOPE (SCOPELEN <= CSTATE_KEY_MAX bytes;
 * NULL: none), e.g. the conversation a message is in. A replace sets the scope anew. On disk
 * the scope is only a keyed hash, and it is sealed into the record's associated data.
 */
CAIRN_WARN_UNUSED int cstate_put_scoped(struct cstate *st, uint32_t kind, const void *key,
                                        size_t keylen, const void *scope, size_t scopelen,
                                        const void *value, size_t vlen);

/*
 * Like cstate_list, over only the records of KIND in scope SCOPE: reads none of the others
 * (an index leads to them).
 */
CAIRN_WARN_UNUSED int cstate_list_scope(struct cstate *st, uint32_t kind, const void *scope,
                                        size_t scopelen, cstate_list_cb cb, void *ctx);

/* Wipes and frees a value from cstate_get. Accepts NULL. */
void cstate_free_value(uint8_t *value, size_t vlen);

/*
 * FULL true (the default): every commit is fsynced before it returns. False: commits are
 * written to the WAL without an fsync (SQLite's synchronous=NORMAL), which survives a killed
 * process, not a power cut; for the files' per-chunk progress (files.h says why that is
 * enough). Only outside a transaction (CAIRN_ESTATE otherwise).
 */
CAIRN_WARN_UNUSED int cstate_set_durable(struct cstate *st, int full);

/* Changes the passphrase (re-seals the master key, not every record). */
CAIRN_WARN_UNUSED int cstate_rekey(struct cstate *st, const char *new_passphrase);

#endif
