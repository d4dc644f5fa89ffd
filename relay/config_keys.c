/* SPDX-License-Identifier: MIT */
/*
 * The table of the relay configuration's keys (config_keys.h).
 */
#include <stddef.h>
#include <string.h>

#include "cairn/limits.h"
#include "config.h"
#include "config_keys.h"

#define NUM(sec, key, field, kind, lo, hi, why)                                                    \
	{                                                                                          \
		sec, key, kind, lo, hi, offsetof(struct relay_config, field),                      \
		    (unsigned)sizeof(((struct relay_config *)0)->field), why                       \
	}
#define STR(sec, key, field, kind, why)                                                            \
	{                                                                                          \
		sec, key, kind, 0, 0, offsetof(struct relay_config, field), 0, why                 \
	}

/* A [policy] text: any UTF-8 that fits the field (relaypolicy.c). */
#define TXT(key, field, why)                                                                       \
	{                                                                                          \
		"policy", key, V_TEXT, 0, 0, offsetof(struct relay_config, field),                 \
		    (unsigned)sizeof(((struct relay_config *)0)->field), why                       \
	}

/* Every key, in the order of the default file. Ranges keep an operator's typo from becoming
 * a relay that cannot work (a window of 0) or that any client can exhaust. */
const struct key_spec config_keys[] = {
    {"relay", "listen", V_LISTEN, 0, 0, 0, 0,
     "address and port to listen on; IPv6 as [::1]:7443; the relay address uses this host"},
    STR("relay", "user", user, V_USER,
        "when started as root: drop to this user after binding and opening the store"),
    STR("relay", "log_level", log_level, V_LOGLEVEL,
        "error, warn, info or debug; only debug shows anything about single connections"),
    STR("relay", "log_file", log_file, V_PATH,
        "append the log to this file (mode 0600) instead of stderr; SIGHUP reopens it"),
    NUM("relay", "stats_interval", stats_interval_s, V_SECONDS, 0, 7 * DAY,
        "how often to log one line of aggregate counters; 0 = never"),
    NUM("limits", "ttl", ttl_s, V_SECONDS, 1, 365 * DAY,
        "an envelope not acknowledged within this time is deleted (suffix s, m, h or d)"),
    NUM("limits", "mailbox_max_envelopes", mailbox_max_envelopes, V_COUNT, 1, 10000000,
        "envelopes one mailbox may hold; a sender beyond it gets a quota error"),
    NUM("limits", "mailbox_max_bytes", mailbox_max_bytes, V_BYTES, CAIRN_ENVELOPE_MAX,
        UINT64_C(1) << 40, "bytes of envelopes one mailbox may hold (suffix K, M or G)"),
    NUM("limits", "mailboxes_per_connection", mailboxes_per_connection, V_COUNT, 1, 65536,
        "mailboxes one connection may open or subscribe to"),
    NUM("limits", "inflight_requests", inflight_requests, V_COUNT, 1, 1u << 20,
        "requests one connection may have unanswered (sends waiting for the disk)"),
    NUM("limits", "output_buffer_max", output_buffer_max, V_BYTES,
        CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX, 1u << 30,
        "bytes queued to a slow reader before backpressure, then disconnection"),
    NUM("limits", "handshake_timeout", handshake_timeout_s, V_SECONDS, 1, 300,
        "a connection must finish its handshake within this time"),
    NUM("limits", "idle_timeout", idle_timeout_s, V_SECONDS, 1, 7 * DAY,
        "a connection silent for this long is closed"),
    NUM("limits", "max_connections", max_connections, V_COUNT, 1, 1000000,
        "connections served at once; more are refused (mind the file descriptor limit)"),
    NUM("limits", "delivery_window", delivery_window, V_COUNT, 1, 65536,
        "envelopes delivered to a subscriber before it must acknowledge some"),
    NUM("limits", "online_write_hold_ms", online_write_hold_ms, V_COUNT, 0, 1000,
        "an envelope for an online owner waits this long for its ACK before it is written"),
    NUM("limits", "replay_cache_entries", replay_cache_entries, V_COUNT, 64, 1u << 28,
        "handshakes remembered to refuse replays within the clock window"),
    NUM("limits", "frame_size", frame_size, V_FRAME, 0, CAIRN_FRAME_PLAINTEXT_MAX,
        "0 pads frames to size buckets; 16896..65519 makes every frame that size"),
    NUM("limits", "max_mailboxes", max_mailboxes, V_COUNT, 1, 1000000000,
        "mailboxes on the relay in all; beyond it CREATE gets the error 'full'"),
    NUM("limits", "max_stored_bytes", max_stored_bytes, V_BYTES, 65536, UINT64_C(1) << 50,
        "envelope bytes on the relay in all (64 more per envelope); beyond it SEND gets 'full'"),
    NUM("limits", "min_free_disk", min_free_disk, V_BYTES, 0, UINT64_C(1) << 50,
        "free space kept on the data directory's disk; below it SEND and CREATE get 'full'"),
    /* [limits] disk_reserve: a full disk (docs/OPERATING.md "When the disk fills up") */
    NUM("limits", "disk_reserve", disk_reserve, V_BYTES, 0, UINT64_C(1) << 40,
        "a file of this size the relay keeps in its data directory and deletes when the disk "
        "fills up, so ACKs and expiry still free room; 0 = none"),
    /* [limits] read_ahead_bytes: how far a drain reads ahead (delivery.c) */
    NUM("limits", "read_ahead_bytes", read_ahead_bytes, V_BYTES, 0, UINT64_C(1) << 40,
        "envelope bodies read back from the store and held for subscribers, relay-wide, "
        "beyond two delivery windows each; 0 = two windows only"),
    NUM("limits", "create_burst", create_burst, V_COUNT, 1, 65536,
        "CREATE, SECURE and INTAKE commands one connection may send at once, then..."),
    NUM("limits", "create_per_minute", create_per_minute, V_COUNT, 0, 60000,
        "...this many a minute; beyond that they get the error 'limit'"),
    NUM("limits", "log_max_entries", log_max_entries, V_COUNT, 1, 10000000,
        "entries one group log may hold; an append beyond it gets a quota error"),
    NUM("limits", "log_max_bytes", log_max_bytes, V_BYTES, CAIRN_LOG_ENTRY_MAX, UINT64_C(1) << 40,
        "bytes of entries one group log may hold (suffix K, M or G)"),
    NUM("limits", "max_logs", max_logs, V_COUNT, 1, 1000000000,
        "group logs on the relay in all; beyond it LOG_CREATE gets the error 'full'"),
    NUM("limits", "logs_per_connection", logs_per_connection, V_COUNT, 1, 65536,
        "group log reads one connection may have open at once"),
    NUM("limits", "log_read_batches", log_read_batches, V_COUNT, 1, 65536,
        "group log read batches asked of the storage at once; further reads wait"),
    NUM("limits", "intake_max_envelopes", intake_max_envelopes, V_COUNT, 1, 10000000,
        "envelopes one intake mailbox may hold (instead of mailbox_max_envelopes)"),
    NUM("limits", "intake_max_bytes", intake_max_bytes, V_BYTES, CAIRN_ENVELOPE_MAX,
        UINT64_C(1) << 40, "bytes of envelopes one intake mailbox may hold (suffix K, M or G)"),
    NUM("limits", "work_window", work_window_s, V_SECONDS, 10, DAY,
        "a proof of work's time may be this far from the relay's clock, either side"),
    NUM("limits", "work_seen_max", work_seen_max, V_COUNT, 16, 1u << 26,
        "used proofs of work remembered (32 bytes each); beyond it SEND_WORK gets 'full'"),
    NUM("limits", "bundle_seen_max", bundle_seen_max, V_COUNT, 16, 1u << 26,
        "bundle items remembered until their not_after (about 64 bytes each, and a row on "
        "disk); beyond it a new item gets 'full'"),
    /* [https]: PROTOCOL.md 7.2, docs/OPERATING.md "HTTPS transport behind nginx". */
    {"https", "listen", V_HTTPS_LISTEN, 0, 0, 0, 0,
     "plain-HTTP WebSocket listener for the web server in front (e.g. 127.0.0.1:7444); "
     "empty = off"},
    STR("https", "path", https_path, V_HTTPS_PATH,
        "the secret path the web server passes to the listener (drawn at random by init)"),
    STR("https", "public", https_public, V_HTTPS_PUBLIC,
        "HOST:PORT clients dial (the web server), e.g. relay.example.org:443"),
    STR("https", "pin_cert", https_pin_cert, V_HTTPS_PIN,
        "the web server's certificate (PEM): its key's hash goes into the address as ?pin="),
    STR("obfs4", "listen", obfs4_listen, V_HOSTPORT,
        "run obfs4proxy (state in DATA/obfs4) listening on HOST:PORT; empty = no obfs4"),
    NUM("obfs4", "iat_mode", obfs4_iat_mode, V_COUNT, 0, 2,
        "obfs4's timing obfuscation: 0 none, 1 packet timing, 2 timing and sizes (slowest)"),
    /* [forward]: private routing (docs/PROTOCOL.md 5.11) */
    NUM("forward", "enabled", forward_enabled, V_COUNT, 0, 1,
        "1: carry FORWARDs of this relay's own users to other relays; 0: refuse them"),
    NUM("forward", "per_connection", forward_per_connection, V_COUNT, 1, 65536,
        "FORWARDs one connection may have waiting for their destination; more get 'limit'"),
    NUM("forward", "max", forward_max, V_COUNT, 1, 1u << 20,
        "FORWARDs waiting for their destination, relay-wide; more get 'limit'"),
    NUM("forward", "relays_max", forward_relays_max, V_COUNT, 1, 65536,
        "connections of this relay's own to destination relays, at once"),
    NUM("forward", "per_destination", forward_per_destination, V_COUNT, 1, 1u << 20,
        "FORWARDs waiting for one destination relay; more get 'limit'"),
    NUM("forward", "timeout", forward_timeout_s, V_SECONDS, 1, 3600,
        "a FORWARD its destination has not answered within this time gets 'unreachable'; a "
        "connection whose oldest write waits this long is closed"),
    NUM("forward", "idle", forward_idle_s, V_SECONDS, 1, DAY,
        "a connection to a destination relay unused for this long is closed"),
    /* [metrics]: aggregate Prometheus metrics for this machine only (metrics.h) */
    STR("metrics", "listen", metrics_listen, V_METRICS_LISTEN,
        "127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/PATH serving GET /metrics; "
        "empty = off"),
    /* [policy]: the relay's signed policy (docs/PROTOCOL.md 5.13, relaypolicy.c) */
    TXT("jurisdiction", policy_jurisdiction,
        "published policy: where the relay and its operator answer to the law; all empty = none"),
    TXT("contact", policy_contact, "published policy: how users reach the operator"),
    TXT("logging", policy_logging, "published policy: what the relay logs"),
    TXT("retention", policy_retention, "published policy: how long anything is kept"),
    TXT("statement", policy_statement, "published policy: a free-text statement (one line)"),
    TXT("statement_file", policy_statement_file,
        "a file whose text (up to 1024 bytes of UTF-8) replaces statement"),
    /* [store]: the storage engine (store.h) */
    STR("store", "engine", store_engine, V_STORE_ENGINE,
        "sqlite (the store in the data directory) or postgresql (several nodes, one database)"),
    {"store", "connection", V_TEXT, 0, 0, offsetof(struct relay_config, store_connection),
     (unsigned)sizeof(((struct relay_config *)0)->store_connection),
     "postgresql: a libpq connection string, e.g. host=a,b dbname=cairn "
     "target_session_attrs=read-write"},
    NUM("store", "node", store_node, V_COUNT, 0, 255,
        "postgresql: 0 = the only relay on this database; 1..255 = this node's number among "
        "several relays sharing the key and the database (docs/OPERATING.md)"),
};
const size_t config_key_count = sizeof(config_keys) / sizeof(config_keys[0]);
_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) <= CONFIG_KEYS_MAX,
               "raise CONFIG_KEYS_MAX");

static const char *const sections[] = {"relay",   "limits",  "https",  "obfs4",
                                       "forward", "metrics", "policy", "store"};

const char config_section_list[] =
    "[relay], [limits], [https], [obfs4], [forward], [metrics], [policy] and [store]";

const struct key_spec *config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < config_key_count; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

bool config_section_known(const char *section)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i], section) == 0)
			return true;
	return false;
}
