/* SPDX-License-Identifier: MIT */
/*
 * Relay configuration: embedded defaults (include/cairn/limits.h), then an INI file (libinih)
 * whose keys are documented in the commented default file `cairn-relay init` writes and in
 * docs/OPERATING.md, then command-line overrides.
 */
#ifndef CAIRN_RELAY_CONFIG_H
#define CAIRN_RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define RELAY_PATH_MAX 4096

struct relay_config {
	/* [relay] */
	char listen_host[256]; /* IPv4, IPv6 (no brackets) or "localhost" */
	uint16_t listen_port;
	char user[64]; /* drop root to this user after bind/open; "" = don't */
	enum log_level log_level;
	char log_file[RELAY_PATH_MAX]; /* "" = stderr */
	uint32_t stats_interval_s;     /* aggregate statistics line; 0 = never */
	/* [limits] */
	uint32_t ttl_s;
	uint32_t mailbox_max_envelopes;
	uint64_t mailbox_max_bytes;
	uint32_t mailboxes_per_connection;
	uint32_t inflight_requests;
	uint32_t output_buffer_max;
	uint32_t handshake_timeout_s;
	uint32_t idle_timeout_s;
	uint32_t max_connections;
	uint32_t delivery_window;
	uint32_t online_write_hold_ms;
	uint32_t replay_cache_entries;
	uint32_t frame_size; /* 0 = bucket padding, else fixed plaintext size */
	uint32_t max_mailboxes;
	uint64_t max_stored_bytes;
	uint64_t min_free_disk;
	uint32_t create_burst;
	uint32_t create_per_minute;
	uint32_t log_max_entries;
	uint64_t log_max_bytes;
	uint32_t max_logs;
	uint32_t logs_per_connection;
	uint32_t log_read_batches;
	uint32_t intake_max_envelopes;
	uint64_t intake_max_bytes;
	uint32_t work_window_s;
	uint32_t work_seen_max;
	uint32_t bundle_seen_max; /* bundle items remembered (PROTOCOL.md 5.12) */
	/* [https] (PROTOCOL.md 7.2): the WebSocket listener behind a web server */
	char https_listen_host[256]; /* as listen_host; "" (port 0) = no HTTPS listener */
	uint16_t https_listen_port;
	char https_path[97];    /* the secret path, without '/'; "" = none */
	char https_public[300]; /* HOST:PORT clients dial (the web server); "" = none */
	char https_pin_cert[RELAY_PATH_MAX]; /* the web server's certificate (PEM); "" = no pin */
	/* [obfs4]: obfs4proxy as a managed server transport in front of the listener (ptserver.h)
	 */
	char obfs4_listen[300];  /* HOST:PORT it listens on, "" = off */
	uint32_t obfs4_iat_mode; /* 0, 1 or 2 */
	/* [forward]: private routing, docs/PROTOCOL.md 5.11 (forwarded.c, outconn.c) */
	uint32_t forward_enabled;         /* 0 or 1: FORWARD for this relay's own users */
	uint32_t forward_per_connection;  /* FORWARDs one connection may have waiting */
	uint32_t forward_max;             /* FORWARDs waiting, relay-wide */
	uint32_t forward_relays_max;      /* outgoing connections to destination relays */
	uint32_t forward_per_destination; /* FORWARDs waiting for one destination */
	uint32_t forward_timeout_s;       /* a FORWARD unanswered this long is `unreachable` */
	uint32_t forward_idle_s;          /* an outgoing connection idle this long is closed */
	/* [metrics]: the local-only Prometheus listener (metrics.h); validated by
	 * metrics_addr_parse, "" = off */
	char metrics_listen[RELAY_PATH_MAX];
	/* [limits] disk_reserve (admission.c, storage.h): the reserve file's size, 0 = none */
	uint64_t disk_reserve;
	/* [limits] read_ahead_bytes (delivery.c): bodies read back held relay-wide beyond the
	 * two windows every subscriber reads ahead */
	uint64_t read_ahead_bytes;
	/* [policy]: the relay's signed policy, docs/PROTOCOL.md 5.13 (relaypolicy.c); all empty =
	 * no policy. One line of UTF-8 each (POLICY_TEXT_MAX bytes); statement_file, a path whose
	 * text replaces statement, read at start and on SIGHUP. config_file is not a key: the
	 * file this configuration was read from ("" = none), which SIGHUP reads [policy] from. */
	char policy_jurisdiction[1025];
	char policy_contact[1025];
	char policy_logging[1025];
	char policy_retention[1025];
	char policy_statement[1025];
	char policy_statement_file[RELAY_PATH_MAX];
	char config_file[RELAY_PATH_MAX];
	/* [store]: which engine holds the store (store.h): "sqlite" (in data_dir) or
	 * "postgresql", then at the libpq connection string store_connection (required) */
	char store_engine[16];
	char store_connection[1025];
	/* 0: the only relay on the store. 1..255: node STORE_NODE of several relays that share
	 * the relay key and the PostgreSQL database (store.h's change feed). */
	uint32_t store_node;
	/* not from the file */
	char data_dir[RELAY_PATH_MAX];
};

/* Fills every field with its embedded default. */
void relay_config_defaults(struct relay_config *cfg);

/*
 * Reads PATH over CFG. On error returns CAIRN_EINVAL (or CAIRN_EIO if unreadable) and writes
 * a message an operator can act on into ERR (e.g. "config.ini:12: unknown key 'ttl_days'").
 */
int relay_config_load(struct relay_config *cfg, const char *path, char *err, size_t errcap);

/* Writes the commented default config file to PATH (mode 0600, refuses to overwrite). */
int relay_config_write_default(const char *path);

/* Parses "HOST:PORT", "[V6]:PORT" into CFG. Returns 0 or CAIRN_EINVAL. */
int relay_config_set_listen(struct relay_config *cfg, const char *hostport);

#endif
