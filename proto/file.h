/* SPDX-License-Identifier: MIT */
/*
 * Files as logs of fixed-size encrypted chunks (docs/PROTOCOL.md section 11): the size class,
 * building and opening one log entry with libsodium's secretstream, and the file message's
 * `data` (kind 8, 11.2) with every check a receiver makes. Pure: no files, no sockets; the
 * caller owns the secretstream state and the bytes.
 */
#ifndef CAIRN_PROTO_FILE_H
#define CAIRN_PROTO_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"

#define APPMSG_FILE 8 /* the file message's kind (8.9), 1:1 and in group logs */

#define FILE_CHUNK_PLAIN CAIRN_FILE_CHUNK_PLAIN /* P: plaintext bytes per chunk */
#define FILE_ENTRY_LEN   CAIRN_LOG_ENTRY_MAX    /* every entry: index || push */
#define FILE_PUSH_LEN    (FILE_CHUNK_PLAIN + crypto_secretstream_xchacha20poly1305_ABYTES)
#define FILE_KEY_LEN     crypto_secretstream_xchacha20poly1305_KEYBYTES    /* 32 */
#define FILE_HEADER_LEN  crypto_secretstream_xchacha20poly1305_HEADERBYTES /* 24 */
#define FILE_DIGEST_LEN  32
#define FILE_NAME_MAX    255
#define FILE_VERSION     1
#define FILE_CHUNKS_MAX  139264u /* class(ceil(2^31 / P)) */
/* The fixed part of `data`: everything but the relay's and the name's bytes. */
#define FILE_DATA_FIXED                                                                            \
	(1 + 8 + 4 + FILE_DIGEST_LEN + FILE_KEY_LEN + FILE_HEADER_LEN + CAIRN_LOG_ID_LEN +         \
	 CAIRN_CREDENTIAL_LEN + 2 + 1)
#define FILE_DATA_MAX (FILE_DATA_FIXED + CAIRN_ADDRESS_MAX + FILE_NAME_MAX)

/* class(n) of 11.1, for 1 <= n <= 2^27 (0 for n out of that range). */
uint32_t file_class(uint32_t n);

/* The number of entries of a file of SIZE bytes: class(max(1, ceil(SIZE / P))); 0 when SIZE is
 * over CAIRN_FILE_SIZE_MAX. */
uint32_t file_chunks(uint64_t size);

/*
 * Entry I of a file: I (u32, big-endian, as every integer of the protocol) then the push of
 * PLAIN (exactly P bytes of the padded stream) on STATE, tagged final when LAST. Advances
 * STATE. OUT receives FILE_ENTRY_LEN bytes. Returns 0 or CAIRN_EINVAL.
 */
CAIRN_WARN_UNUSED int file_entry_seal(crypto_secretstream_xchacha20poly1305_state *state,
                                      uint32_t i, bool last,
                                      const uint8_t plain[static FILE_CHUNK_PLAIN],
                                      uint8_t out[static FILE_ENTRY_LEN]);

/* The index an entry carries (ENTRY's first four bytes; LEN must be FILE_ENTRY_LEN, else
 * CAIRN_EINVAL). */
CAIRN_WARN_UNUSED int file_entry_index(const uint8_t *entry, size_t len, uint32_t *i);

/*
 * Opens ENTRY (FILE_ENTRY_LEN bytes) as entry I of a file of CHUNKS entries on STATE
 * (initialised with init_pull and advanced by the I entries before it): its index must be I,
 * the push must open, and its tag must be final exactly when I is the last. PLAIN receives P
 * bytes (wiped on failure). Returns 0 or CAIRN_EAUTH (STATE is then unusable).
 */
CAIRN_WARN_UNUSED int file_entry_open(crypto_secretstream_xchacha20poly1305_state *state,
                                      uint32_t i, uint32_t chunks,
                                      const uint8_t entry[static FILE_ENTRY_LEN],
                                      uint8_t plain[static FILE_CHUNK_PLAIN]);

/* The file message's fields (11.2). NAME and RELAY are borrowed: from the caller when
 * encoding, from the parsed buffer when parsing (not NUL-terminated). */
struct file_msg {
	uint64_t size;
	uint32_t chunks;
	uint8_t digest[FILE_DIGEST_LEN];
	uint8_t key[FILE_KEY_LEN];
	uint8_t header[FILE_HEADER_LEN];
	uint8_t log_id[CAIRN_LOG_ID_LEN];
	uint8_t delete_secret[CAIRN_CREDENTIAL_LEN]; /* zero in a group */
	const uint8_t *relay;
	size_t relay_len;
	const uint8_t *name;
	size_t name_len;
};

/*
 * Encodes M into OUT (capacity CAP, *OUTLEN bytes; FILE_DATA_MAX always suffices). M must
 * pass every check of file_msg_parse. Returns 0, CAIRN_EINVAL or CAIRN_ENOBUFS.
 */
CAIRN_WARN_UNUSED int file_msg_encode(const struct file_msg *m, uint8_t *out, size_t cap,
                                      size_t *outlen);

/*
 * Parses IN (LEN bytes) into M with every receiver check of 11.2: version 1, size at most
 * 2^31, chunks equal to file_chunks(size), a relay of 1..320 bytes that parses as an address,
 * a name of 1..255 bytes of UTF-8, and nothing after the name. M's pointers borrow IN.
 * Returns 0 or CAIRN_EINVAL (M zeroed).
 */
CAIRN_WARN_UNUSED int file_msg_parse(const uint8_t *in, size_t len, struct file_msg *m);

/* Whether P (LEN bytes) is well-formed UTF-8 (no overlong forms, no surrogates). */
bool file_utf8_ok(const uint8_t *p, size_t len);

#endif
