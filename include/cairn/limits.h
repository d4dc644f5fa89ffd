/* SPDX-License-Identifier: MIT */
/*
 * Every size and limit in Cairn, in one place. Wire constants (section 1) are fixed by
 * docs/PROTOCOL.md and shared with every peer; relay defaults (section 2) are what an operator
 * gets when the config file is silent, each overridable by the config key named beside it.
 */
#ifndef CAIRN_LIMITS_H
#define CAIRN_LIMITS_H

/* ---- 1. Wire constants (docs/PROTOCOL.md) ---------------------------------------------- */

#define CAIRN_KEY_LEN        32 /* X25519 / Ed25519 public keys, symmetric keys */
#define CAIRN_HASH_LEN       64 /* BLAKE2b-512: Noise hash, handshake hash */
#define CAIRN_AEAD_TAG_LEN   16
#define CAIRN_SIGNATURE_LEN  64 /* Ed25519 */
#define CAIRN_MAILBOX_ID_LEN 24
#define CAIRN_CREDENTIAL_LEN 32 /* sender credential and its digest */
#define CAIRN_LOG_ID_LEN     24 /* group log id (section 5.9) */
#define CAIRN_LOG_ENTRY_MAX  16384 /* a log entry, 1..16384 bytes like an envelope */

#define CAIRN_PROLOGUE "cairn/1"

/* A frame is a 2-byte big-endian length then that many bytes of Noise message. */
#define CAIRN_FRAME_HEADER_LEN     2
#define CAIRN_NOISE_MSG_MAX        65535
#define CAIRN_FRAME_PLAINTEXT_MAX  (CAIRN_NOISE_MSG_MAX - CAIRN_AEAD_TAG_LEN) /* 65519 */
#define CAIRN_FRAME_CONTENT_HEADER 2 /* u16 content length inside the plaintext */
#define CAIRN_FRAME_CONTENT_MAX    (CAIRN_FRAME_PLAINTEXT_MAX - CAIRN_FRAME_CONTENT_HEADER)
/* Padding buckets for the frame plaintext (content header + content + zero padding). */
#define CAIRN_FRAME_BUCKETS {256, 1024, 4096, 16896, CAIRN_FRAME_PLAINTEXT_MAX}
#define CAIRN_FRAME_BUCKET_COUNT 5
/* Fixed-size mode needs room for the largest single command (a full-size SEND). */
#define CAIRN_FRAME_FIXED_MIN 16896

/* Handshake payloads: version byte, timestamp, random-length zero padding. */
#define CAIRN_HELLO_VERSION     1
#define CAIRN_HELLO1_FIXED_LEN  9   /* version(1) + timestamp(8) */
#define CAIRN_HELLO2_FIXED_LEN  1   /* version(1) */
#define CAIRN_HELLO_PAD_MAX     255 /* padding is 0..255 bytes, chosen uniformly */
#define CAIRN_HELLO_WINDOW_S    120 /* accepted clock skew, either direction */
/* Noise message 1 = e(32) + payload + tag(16); message 2 likewise. */
#define CAIRN_HANDSHAKE1_MIN (CAIRN_KEY_LEN + CAIRN_HELLO1_FIXED_LEN + CAIRN_AEAD_TAG_LEN)
#define CAIRN_HANDSHAKE1_MAX (CAIRN_HANDSHAKE1_MIN + CAIRN_HELLO_PAD_MAX)
#define CAIRN_HANDSHAKE2_MIN (CAIRN_KEY_LEN + CAIRN_HELLO2_FIXED_LEN + CAIRN_AEAD_TAG_LEN)
#define CAIRN_HANDSHAKE2_MAX (CAIRN_HANDSHAKE2_MIN + CAIRN_HELLO_PAD_MAX)

/* Envelopes are opaque to the relay; larger payloads are split by the client. */
#define CAIRN_ENVELOPE_MAX 16384

/* Files (PROTOCOL.md 11): a chunk's plaintext in one 16384-byte log entry (4 bytes of index,
 * 17 of secretstream), and the largest file. */
#define CAIRN_FILE_CHUNK_PLAIN 16363
#define CAIRN_FILE_SIZE_MAX    (1ull << 31)
/* Disappearing messages (PROTOCOL.md 8.11): the longest timer, one year. */
#define CAIRN_TIMER_MAX_S 31536000
/* Bundles (PROTOCOL.md 5.12, 12): one item (a FORWARDED seal of a BUNDLED, inner 16640 bytes),
 * and how far past the relay's clock an item's not_after may be. */
#define CAIRN_BUNDLE_ITEM_LEN       16688
#define CAIRN_BUNDLE_INNER_LEN      16640
#define CAIRN_BUNDLE_LIFETIME_MAX_S (30 * 24 * 3600)

/* Mailboxes one invite, reply or mailboxes message names: one per relay, so also the number
 * of relays one contact can reach a client through (docs/PROTOCOL.md section 8.2). */
#define CAIRN_MAILBOXES_MAX 4

/* msgpack structure caps, checked before msgpack-c sees a byte. Commands are flat arrays. */
#define CAIRN_MSG_DEPTH_MAX 4
#define CAIRN_MSG_COUNT_MAX 16 /* elements of one array, or pairs of one map */

/* ---- 2. Relay defaults (config key in brackets; docs/OPERATING.md) -------------------- */

#define CAIRN_DEFAULT_LISTEN_HOST "127.0.0.1"
#define CAIRN_DEFAULT_PORT        7443
#define CAIRN_DEFAULT_DATA_DIR    "./cairn-data"

#define CAIRN_DEFAULT_TTL_S               (21 * 24 * 3600) /* [ttl] envelope lifetime */
#define CAIRN_DEFAULT_MAILBOX_MAX_COUNT   10000            /* [mailbox_max_envelopes] */
#define CAIRN_DEFAULT_MAILBOX_MAX_BYTES   (64u << 20)      /* [mailbox_max_bytes] */
#define CAIRN_DEFAULT_MAILBOXES_PER_CONN  64               /* [mailboxes_per_connection] */
#define CAIRN_DEFAULT_INFLIGHT_REQUESTS   1024             /* [inflight_requests] */
#define CAIRN_DEFAULT_OUTPUT_MAX          (1u << 20)       /* [output_buffer_max] bytes */
#define CAIRN_DEFAULT_HANDSHAKE_TIMEOUT_S 10               /* [handshake_timeout] */
#define CAIRN_DEFAULT_IDLE_TIMEOUT_S      300              /* [idle_timeout] */
#define CAIRN_DEFAULT_MAX_CONNECTIONS     16384            /* [max_connections] */
#define CAIRN_DEFAULT_DELIVERY_WINDOW     64               /* [delivery_window] unacked */
#define CAIRN_DEFAULT_REPLAY_CAPACITY     (1u << 20)       /* [replay_cache_entries] */
#define CAIRN_DEFAULT_STATS_INTERVAL_S    3600             /* [stats_interval] */

/* The relay as a whole (docs/OPERATING.md): beyond these, CREATE and SEND get ERROR `full`
 * (CAIRN_ECAPACITY) and a client tries its next relay. Nothing accepted is ever dropped. */
#define CAIRN_DEFAULT_MAX_MAILBOXES    1000000        /* [max_mailboxes] */
#define CAIRN_DEFAULT_MAX_STORED_BYTES (64ull << 30)  /* [max_stored_bytes] */
#define CAIRN_DEFAULT_MIN_FREE_DISK    (512ull << 20) /* [min_free_disk] on the data dir's fs */
/* [disk_reserve]: the reserve file given up when the data dir's disk is full; as large as the
 * relay's WAL may grow (journal_size_limit), so its checkpoint fits. */
#define CAIRN_DEFAULT_DISK_RESERVE (64ull << 20)
/* [limits] read_ahead_bytes (drain, delivery.c): bodies read back held beyond two windows each */
#define CAIRN_DEFAULT_READ_AHEAD_BYTES (64ull << 20)
/* Intake mailboxes (docs/PROTOCOL.md 5.10): each one's quotas, in place of the mailbox
 * quotas above; how far a proof of work's time may be from the relay's clock; and how many
 * used works the relay remembers (32 MiB at the default: 24 bytes each, plus a half-full
 * index of 4-byte slots), each for twice the window. */
#define CAIRN_DEFAULT_INTAKE_MAX_ENVELOPES 1000        /* [intake_max_envelopes] */
#define CAIRN_DEFAULT_INTAKE_MAX_BYTES     (16u << 20) /* [intake_max_bytes] */
#define CAIRN_DEFAULT_WORK_WINDOW_S        600         /* [work_window] */
#define CAIRN_DEFAULT_WORK_SEEN_MAX        1000000     /* [work_seen_max] */
/* What one envelope costs beyond its own bytes (its row on disk, its entry in memory):
 * counted against max_stored_bytes, so that empty envelopes are not free. */
#define CAIRN_ENVELOPE_OVERHEAD 64

/* Commands that create state (CREATE, SECURE), per connection: a token bucket of
 * [create_burst] tokens refilled at [create_per_minute]. A client creates one mailbox per
 * connection (CREATE then SECURE); more takes a new connection, and so a new handshake. */
#define CAIRN_DEFAULT_CREATE_BURST      16 /* [create_burst] */
#define CAIRN_DEFAULT_CREATE_PER_MINUTE 4  /* [create_per_minute] */

/* Group logs (docs/PROTOCOL.md 5.9): each log's quotas, the relay's number of logs, and the
 * reads one connection may have open at once. Entries count towards max_stored_bytes with
 * CAIRN_ENVELOPE_OVERHEAD each, like envelopes. */
/* A file (PROTOCOL.md 11) is a log too: the largest, 2 GiB, takes 139264 entries of 16384
 * bytes (2.13 GiB). */
#define CAIRN_DEFAULT_LOG_MAX_ENTRIES     262144       /* [log_max_entries] */
#define CAIRN_DEFAULT_LOG_MAX_BYTES       (3ull << 30) /* [log_max_bytes] */
#define CAIRN_DEFAULT_MAX_LOGS            100000       /* [max_logs] */
#define CAIRN_DEFAULT_LOGS_PER_CONNECTION 64           /* [logs_per_connection] */
/* Group log read batches (64 entries or 1 MiB each) the relay may have asked the storage for
 * at once; further reads wait, and their connections are not read meanwhile. */
#define CAIRN_DEFAULT_LOG_READ_BATCHES 256 /* [log_read_batches] */

/* Bundled items (PROTOCOL.md 5.12) whose seal the relay remembers, each until its not_after. */
#define CAIRN_DEFAULT_BUNDLE_SEEN_MAX 1000000 /* [bundle_seen_max] */

/* AUTH signature checks (~53 µs each) run on libuv's thread pool, one per connection at a
 * time, and at most this many relay-wide; the rest wait in arrival order, so that AUTH floods
 * cannot crowd handshakes out of the pool. */
#define CAIRN_AUTH_VERIFY_SLOTS 2

/* The storage thread waits this long after the first write of a batch before committing:
 * more writes share the fsync, and writes acknowledged meanwhile by their owner are dropped
 * before they reach the disk. Adds at most this much to a sender's wait for durability. */
#define CAIRN_STORAGE_GATHER_US 2000

#endif
