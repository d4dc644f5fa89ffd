/* SPDX-License-Identifier: MIT */
/*
 * Relay configuration: embedded defaults, a strict INI file read with libinih, and the
 * HOST:PORT parser the command line shares. Strict means an operator's typo never passes
 * silently: an unknown section or key, a malformed number or a value out of its range is an
 * error naming the file, the line and the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "fsutil.h"
#include "cairn/address.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "config.h"
#include "httpsaddr.h"

void relay_config_defaults(struct relay_config *cfg)
{
	/* Zero first so that two default configs compare equal byte for byte. */
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "%s", CAIRN_DEFAULT_LISTEN_HOST);
	cfg->listen_port = CAIRN_DEFAULT_PORT;
	cfg->log_level = LOG_INFO;
	cfg->stats_interval_s = CAIRN_DEFAULT_STATS_INTERVAL_S;
	cfg->ttl_s = CAIRN_DEFAULT_TTL_S;
	cfg->mailbox_max_envelopes = CAIRN_DEFAULT_MAILBOX_MAX_COUNT;
	cfg->mailbox_max_bytes = CAIRN_DEFAULT_MAILBOX_MAX_BYTES;
	cfg->mailboxes_per_connection = CAIRN_DEFAULT_MAILBOXES_PER_CONN;
	cfg->inflight_requests = CAIRN_DEFAULT_INFLIGHT_REQUESTS;
	cfg->output_buffer_max = CAIRN_DEFAULT_OUTPUT_MAX;
	cfg->handshake_timeout_s = CAIRN_DEFAULT_HANDSHAKE_TIMEOUT_S;
	cfg->idle_timeout_s = CAIRN_DEFAULT_IDLE_TIMEOUT_S;
	cfg->max_connections = CAIRN_DEFAULT_MAX_CONNECTIONS;
	cfg->delivery_window = CAIRN_DEFAULT_DELIVERY_WINDOW;
	cfg->online_write_hold_ms = 20;
	cfg->replay_cache_entries = CAIRN_DEFAULT_REPLAY_CAPACITY;
	cfg->frame_size = 0;
	cfg->max_mailboxes = CAIRN_DEFAULT_MAX_MAILBOXES;
	cfg->max_stored_bytes = CAIRN_DEFAULT_MAX_STORED_BYTES;
	cfg->min_free_disk = CAIRN_DEFAULT_MIN_FREE_DISK;
	cfg->create_burst = CAIRN_DEFAULT_CREATE_BURST;
	cfg->create_per_minute = CAIRN_DEFAULT_CREATE_PER_MINUTE;
	cfg->log_max_entries = CAIRN_DEFAULT_LOG_MAX_ENTRIES;
	cfg->log_max_bytes = CAIRN_DEFAULT_LOG_MAX_BYTES;
	cfg->max_logs = CAIRN_DEFAULT_MAX_LOGS;
	cfg->logs_per_connection = CAIRN_DEFAULT_LOGS_PER_CONNECTION;
	cfg->log_read_batches = CAIRN_DEFAULT_LOG_READ_BATCHES;
	cfg->intake_max_envelopes = CAIRN_DEFAULT_INTAKE_MAX_ENVELOPES;
	cfg->intake_max_bytes = CAIRN_DEFAULT_INTAKE_MAX_BYTES;
	cfg->work_window_s = CAIRN_DEFAULT_WORK_WINDOW_S;
	cfg->work_seen_max = CAIRN_DEFAULT_WORK_SEEN_MAX;
	cfg->bundle_seen_max = CAIRN_DEFAULT_BUNDLE_SEEN_MAX;
	/* [forward] (docs/PROTOCOL.md 5.11) */
	cfg->forward_enabled = 1;
	cfg->forward_per_connection = 64;
	cfg->forward_max = 4096;
	cfg->forward_relays_max = 64;
	cfg->forward_per_destination = 1024;
	cfg->forward_timeout_s = 30;
	cfg->forward_idle_s = 120;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", CAIRN_DEFAULT_DATA_DIR);
}

/* ---- HOST:PORT --------------------------------------------------------------------------- */

/* Decimal digits only, no sign, no spaces; sets *OUT. Returns false on anything else. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* A host name or IPv4 address as a listen host: letters, digits, dots and dashes. */
static bool host_chars_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* Parses "HOST:PORT" or "[V6]:PORT" into HOST_OUT (HOST_CAP bytes) and *PORT_OUT. */
static int parse_hostport(const char *hostport, char *host_out, size_t host_cap, uint16_t *port_out)
{
	const char *host = hostport, *host_end, *port;
	bool v6 = hostport[0] == '[';
	if (v6) {
		host = hostport + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL || host_end[1] != ':')
			return CAIRN_EINVAL;
		port = host_end + 2;
	} else {
		/* The last colon, so that a bare IPv6 address is caught by the host check below. */
		host_end = strrchr(hostport, ':');
		if (host_end == NULL)
			return CAIRN_EINVAL;
		port = host_end + 1;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= host_cap || hlen >= 256)
		return CAIRN_EINVAL;

	char hbuf[256];
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	if (v6) {
		unsigned char bin[16];
		if (inet_pton(AF_INET6, hbuf, bin) != 1)
			return CAIRN_EINVAL;
	} else if (!host_chars_valid(hbuf, hlen)) {
		return CAIRN_EINVAL;
	}

	uint64_t p;
	if (!parse_u64(port, &p) || p == 0 || p > UINT16_MAX)
		return CAIRN_EINVAL;
	memcpy(host_out, hbuf, hlen + 1);
	*port_out = (uint16_t)p;
	return 0;
}

int relay_config_set_listen(struct relay_config *cfg, const char *hostport)
{
	return parse_hostport(hostport, cfg->listen_host, sizeof(cfg->listen_host),
	                      &cfg->listen_port);
}

/* ---- [https] ------------------------------------------------------------------------------ */

/* The relay's key does not change what is valid: check with a zero one. */
static const uint8_t no_key[CAIRN_KEY_LEN];

/* PATH as the secret path of a cairn+https address (PROTOCOL.md section 1). */
static bool https_path_valid(const char *path)
{
	struct cairn_address a;
	return https_address_build("127.0.0.1:443", path, no_key, &a) == 0;
}

/* HOSTPORT as the host and port of a relay address (section 1), for [https] public. */
static bool https_public_valid(const char *hostport)
{
	struct cairn_address a;
	return https_address_build(hostport, "p", no_key, &a) == 0;
}

/* A POSIX-portable user name (or "" for none): letters, digits, '.', '_', '-', not first '-'. */
static bool user_name_valid(const char *s)
{
	if (s[0] == '-')
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* ---- Values ------------------------------------------------------------------------------ */

enum value_kind {
	V_COUNT,    /* plain integer */
	V_SECONDS,  /* integer with an optional s, m, h or d suffix */
	V_BYTES,    /* integer with an optional K, M or G suffix (powers of 1024) */
	V_FRAME,    /* 0, or CAIRN_FRAME_FIXED_MIN..CAIRN_FRAME_PLAINTEXT_MAX */
	V_LISTEN,   /* HOST:PORT */
	V_USER,     /* a user name, or empty */
	V_LOGLEVEL, /* error, warn, info, debug */
	V_PATH,     /* a path, or empty */
	/* [https] */
	V_HTTPS_LISTEN, /* HOST:PORT, or empty for none */
	V_HTTPS_PATH,   /* a secret path (PROTOCOL.md section 1), or empty */
	V_HTTPS_PUBLIC, /* the host and port of a relay address, or empty */
	V_HTTPS_PIN,    /* a file's path, or empty */
	V_HOSTPORT, /* HOST:PORT or [IPv6]:PORT, or empty (obfs4_listen) */
};

struct key_spec {
	const char *section;
	const char *name;
	enum value_kind kind;
	uint64_t min, max;
	size_t offset;   /* of the field in struct relay_config */
	unsigned width;  /* 2, 4 or 8 bytes for numeric fields */
	const char *why; /* one line for the default file */
};

#define DAY (24u * 3600u)
#define NUM(sec, key, field, kind, lo, hi, why)                                                    \
	{                                                                                          \
		sec, key, kind, lo, hi, offsetof(struct relay_config, field),                      \
		    (unsigned)sizeof(((struct relay_config *)0)->field), why                       \
	}
#define STR(sec, key, field, kind, why)                                                            \
	{                                                                                          \
		sec, key, kind, 0, 0, offsetof(struct relay_config, field), 0, why                 \
	}

/* Every key, in the order of the default file. Ranges keep an operator's typo from becoming
 * a relay that cannot work (a window of 0) or that any client can exhaust. */
static const struct key_spec keys[] = {
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
        "a FORWARD its destination has not answered within this time gets 'unreachable'"),
    NUM("forward", "idle", forward_idle_s, V_SECONDS, 1, DAY,
        "a connection to a destination relay unused for this long is closed"),
};
#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

/* Parses TEXT as KIND into *OUT (before range checks). Returns false if malformed. */
static bool parse_number(const char *text, enum value_kind kind, uint64_t *out)
{
	char digits[32];
	size_t len = strlen(text);
	if (len == 0 || len >= sizeof(digits))
		return false;
	memcpy(digits, text, len + 1);

	uint64_t mult = 1;
	char last = digits[len - 1];
	if (kind == V_SECONDS && (last == 's' || last == 'm' || last == 'h' || last == 'd')) {
		mult = last == 's' ? 1 : last == 'm' ? 60 : last == 'h' ? 3600 : DAY;
		digits[--len] = '\0';
	} else if (kind == V_BYTES && (last == 'K' || last == 'M' || last == 'G' || last == 'k' ||
	                               last == 'm' || last == 'g')) {
		mult = (last == 'K' || last == 'k')   ? 1024u
		       : (last == 'M' || last == 'm') ? 1024u * 1024u
		                                      : 1024u * 1024u * 1024u;
		digits[--len] = '\0';
	}
	uint64_t v;
	if (!parse_u64(digits, &v) || v > UINT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

static void store_number(struct relay_config *cfg, const struct key_spec *k, uint64_t v)
{
	char *field = (char *)cfg + k->offset;
	if (k->width == 8) {
		uint64_t x = v;
		memcpy(field, &x, sizeof(x));
	} else if (k->width == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, sizeof(x));
	} else {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, sizeof(x));
	}
}

static const struct key_spec *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool section_known(const char *section)
{
	return strcmp(section, "relay") == 0 || strcmp(section, "limits") == 0 ||
	       strcmp(section, "https") == 0 || strcmp(section, "obfs4") == 0 ||
	       strcmp(section, "forward") == 0;
}

/* ---- Reading the file -------------------------------------------------------------------- */

struct load_ctx {
	struct relay_config *cfg;
	const char *path;
	FILE *file;
	unsigned line;      /* number of the line libinih is looking at */
	bool line_indented; /* it starts with white space */
	unsigned char seen[KEY_COUNT];
	unsigned error_line; /* first error we reported, 0 if none */
	char *err;
	size_t errcap;
};

static void
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    load_error(struct load_ctx *c, const char *fmt, ...)
{
	if (c->error_line != 0)
		return; /* the first error is the one worth reading */
	c->error_line = c->line;
	int n = snprintf(c->err, c->errcap, "%s:%u: ", c->path, c->line);
	if (n < 0 || (size_t)n >= c->errcap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errcap - (size_t)n, fmt, ap);
	va_end(ap);
}

/*
 * libinih's reader: one physical line per call, so C->line is the number of the line the
 * handler is called for. A line too long for the buffer is consumed whole and reported, rather
 * than split into lines libinih would misnumber. Section headers are checked here because
 * libinih reports only key lines to the handler, and an empty unknown section is still a typo.
 */
static char *load_read_line(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	if (fgets(str, num, c->file) == NULL)
		return NULL;
	c->line++;
	size_t len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(c->file)) {
		int ch;
		while ((ch = fgetc(c->file)) != EOF && ch != '\n')
			;
		load_error(c, "line longer than %d characters", num - 3);
		str[0] = '\0';
		return str;
	}
	c->line_indented = str[0] == ' ' || str[0] == '\t';

	const char *p = str;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		const char *end = strchr(p, ']');
		if (end != NULL) {
			char name[64];
			size_t n = (size_t)(end - p - 1);
			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, p + 1, n);
			name[n] = '\0';
			if (!section_known(name))
				load_error(c,
				           "unknown section [%s] (sections are [relay], [limits], "
				           "[https], [obfs4] and [forward])",
				           name);
		}
	}
	return str;
}

static int load_handle(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *c = user;
	if (section[0] == '\0') {
		load_error(c, "'%s' is outside a section; put it under [relay] or [limits]", name);
		return 0;
	}
	if (!section_known(section))
		return 0; /* already reported by the reader */
	const struct key_spec *k = key_find(section, name);
	if (k == NULL) {
		const char *other = strcmp(section, "relay") == 0 ? "limits" : "relay";
		if (strcmp(section, "https") != 0 && key_find(other, name) != NULL)
			load_error(c, "key '%s' belongs in [%s], not [%s]", name, other, section);
		else
			load_error(c, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	size_t idx = (size_t)(k - keys);
	if (c->seen[idx]) {
		if (c->line_indented)
			load_error(c,
			           "indented line continues the value of '%s'; remove the "
			           "indentation",
			           name);
		else
			load_error(c, "key '%s' is set twice", name);
		return 0;
	}
	c->seen[idx] = 1;

	struct relay_config *cfg = c->cfg;
	switch (k->kind) {
	case V_LISTEN:
		if (relay_config_set_listen(cfg, value) != 0) {
			load_error(c,
			           "listen: '%s' is not HOST:PORT or [IPv6]:PORT (port 1..65535)",
			           value);
			return 0;
		}
		return 1;
	case V_USER: {
		size_t len = strlen(value);
		if (len >= sizeof(cfg->user) || !user_name_valid(value)) {
			load_error(c, "user: '%s' is not a valid user name", value);
			return 0;
		}
		memcpy(cfg->user, value, len + 1);
		return 1;
	}
	case V_LOGLEVEL:
		if (log_level_parse(value, &cfg->log_level) != 0) {
			load_error(c, "log_level: '%s' is not error, warn, info or debug", value);
			return 0;
		}
		return 1;
	case V_HOSTPORT: {
		size_t len = strlen(value);
		const char *colon = strrchr(value, ':');
		char *end = NULL;
		unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
		if (len > 0 && (len >= sizeof(cfg->obfs4_listen) || colon == value ||
		                colon == NULL || colon[1] == '\0' || *end != '\0' || port == 0 ||
		                port > 65535 || strchr(value, ' ') != NULL)) {
			load_error(c, "%s: '%s' is not HOST:PORT or [IPv6]:PORT (port 1..65535)",
			           name, value);
			return 0;
		}
		memcpy(cfg->obfs4_listen, value, len + 1);
		return 1;
	}
	case V_PATH: {
		size_t len = strlen(value);
		if (len >= sizeof(cfg->log_file)) {
			load_error(c, "%s: path too long", name);
			return 0;
		}
		memcpy(cfg->log_file, value, len + 1);
		return 1;
	}
	case V_HTTPS_LISTEN:
		if (value[0] == '\0') {
			cfg->https_listen_host[0] = '\0';
			cfg->https_listen_port = 0;
		} else if (parse_hostport(value, cfg->https_listen_host,
		                          sizeof(cfg->https_listen_host),
		                          &cfg->https_listen_port) != 0) {
			load_error(c,
			           "listen: '%s' is not HOST:PORT or [IPv6]:PORT (port 1..65535); "
			           "leave it empty for no HTTPS listener",
			           value);
			return 0;
		}
		return 1;
	case V_HTTPS_PATH:
		if (value[0] != '\0' && !https_path_valid(value)) {
			load_error(
			    c,
			    "path: '%s' is not a secret path (1 to 96 characters from A-Z a-z "
			    "0-9 - _ . ~, not only dots)",
			    value);
			return 0;
		}
		snprintf(cfg->https_path, sizeof(cfg->https_path), "%s", value);
		return 1;
	case V_HTTPS_PUBLIC:
		if (value[0] != '\0' &&
		    (strlen(value) >= sizeof(cfg->https_public) || !https_public_valid(value))) {
			load_error(c,
			           "public: '%s' is not HOST:PORT or [IPv6]:PORT a client can dial "
			           "(a DNS name or an IP address, port 1..65535)",
			           value);
			return 0;
		}
		snprintf(cfg->https_public, sizeof(cfg->https_public), "%s", value);
		return 1;
	case V_HTTPS_PIN:
		if (strlen(value) >= sizeof(cfg->https_pin_cert)) {
			load_error(c, "pin_cert: path too long");
			return 0;
		}
		snprintf(cfg->https_pin_cert, sizeof(cfg->https_pin_cert), "%s", value);
		return 1;
	case V_COUNT:
	case V_SECONDS:
	case V_BYTES:
	case V_FRAME:
		break;
	}

	uint64_t v;
	if (!parse_number(value, k->kind, &v)) {
		static const char *const hint[] = {
		    [V_COUNT] = "a whole number",
		    [V_SECONDS] = "seconds, optionally with s, m, h or d",
		    [V_BYTES] = "bytes, optionally with K, M or G",
		    [V_FRAME] = "a whole number",
		};
		load_error(c, "%s: '%s' is not %s", name, value, hint[k->kind]);
		return 0;
	}
	if (k->kind == V_FRAME) {
		if (v != 0 && (v < CAIRN_FRAME_FIXED_MIN || v > CAIRN_FRAME_PLAINTEXT_MAX)) {
			load_error(c, "frame_size: %" PRIu64 " is out of range (0, or %d..%d)", v,
			           CAIRN_FRAME_FIXED_MIN, CAIRN_FRAME_PLAINTEXT_MAX);
			return 0;
		}
	} else if (v < k->min || v > k->max) {
		load_error(c, "%s: %" PRIu64 " is out of range (%" PRIu64 "..%" PRIu64 ")", name, v,
		           k->min, k->max);
		return 0;
	}
	store_number(cfg, k, v);
	return 1;
}

int relay_config_load(struct relay_config *cfg, const char *path, char *err, size_t errcap)
{
	if (errcap > 0)
		err[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
		return CAIRN_EIO;
	}
	/* Parse into a copy, so a file with an error leaves CFG as it was. */
	struct relay_config tmp = *cfg;
	struct load_ctx c = {.cfg = &tmp, .path = path, .file = f, .err = err, .errcap = errcap};
	int rc = ini_parse_stream(load_read_line, &c, load_handle, &c);
	bool read_failed = ferror(f) != 0;
	fclose(f);

	if (read_failed) {
		snprintf(err, errcap, "%s: read error", path);
		return CAIRN_EIO;
	}
	if (rc > 0 && (c.error_line == 0 || (unsigned)rc < c.error_line)) {
		/* A line libinih could not parse, before anything we found wrong. */
		snprintf(err, errcap, "%s:%d: syntax error (expected [section] or key = value)",
		         path, rc);
		return CAIRN_EINVAL;
	}
	if (c.error_line != 0)
		return CAIRN_EINVAL;
	if (rc < 0) {
		snprintf(err, errcap, "%s: cannot parse (error %d)", path, rc);
		return CAIRN_EIO;
	}
	/* A listener or an address without the path would serve, or name, nothing. */
	if ((tmp.https_listen_port != 0 || tmp.https_public[0] != '\0' ||
	     tmp.https_pin_cert[0] != '\0') &&
	    tmp.https_path[0] == '\0') {
		snprintf(err, errcap,
		         "%s: [https] path is required when listen, public or pin_cert is set",
		         path);
		return CAIRN_EINVAL;
	}
	*cfg = tmp;
	return 0;
}

/* ---- The default file -------------------------------------------------------------------- */

/* Writes KEY's default value, as the file would spell it, into OUT. */
static void format_default(const struct relay_config *d, const struct key_spec *k, char *out,
                           size_t cap)
{
	const char *field = (const char *)d + k->offset;
	uint64_t v = 0;
	switch (k->kind) {
	case V_LISTEN:
		snprintf(out, cap, "%s:%u", d->listen_host, (unsigned)d->listen_port);
		return;
	case V_HTTPS_PATH: {
		/* A fresh secret for every relay (PROTOCOL.md section 1): 128 random bits. */
		uint8_t r[16];
		randombytes_buf(r, sizeof(r));
		sodium_bin2base64(out, cap, r, sizeof(r), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		sodium_memzero(r, sizeof(r));
		return;
	}
	case V_HTTPS_LISTEN:
		if (d->https_listen_port == 0)
			snprintf(out, cap, "%s", "");
		else
			snprintf(out, cap, "%s:%u", d->https_listen_host,
			         (unsigned)d->https_listen_port);
		return;
	case V_HTTPS_PUBLIC:
	case V_HTTPS_PIN:
	case V_USER:
	case V_PATH:
	case V_HOSTPORT:
		snprintf(out, cap, "%s", field);
		return;
	case V_LOGLEVEL:
		snprintf(out, cap, "%s",
		         d->log_level == LOG_ERROR  ? "error"
		         : d->log_level == LOG_WARN ? "warn"
		         : d->log_level == LOG_INFO ? "info"
		                                    : "debug");
		return;
	case V_COUNT:
	case V_SECONDS:
	case V_BYTES:
	case V_FRAME:
		break;
	}
	if (k->width == 8) {
		memcpy(&v, field, 8);
	} else {
		uint32_t x;
		memcpy(&x, field, 4);
		v = x;
	}
	if (k->kind == V_SECONDS && v != 0 && v % DAY == 0)
		snprintf(out, cap, "%" PRIu64 "d", v / DAY);
	else if (k->kind == V_SECONDS && v != 0 && v % 3600 == 0)
		snprintf(out, cap, "%" PRIu64 "h", v / 3600);
	else if (k->kind == V_SECONDS && v != 0 && v % 60 == 0)
		snprintf(out, cap, "%" PRIu64 "m", v / 60);
	else if (k->kind == V_BYTES && v != 0 && v % (1024 * 1024 * 1024) == 0)
		snprintf(out, cap, "%" PRIu64 "G", v / (1024 * 1024 * 1024));
	else if (k->kind == V_BYTES && v != 0 && v % (1024 * 1024) == 0)
		snprintf(out, cap, "%" PRIu64 "M", v / (1024 * 1024));
	else if (k->kind == V_BYTES && v != 0 && v % 1024 == 0)
		snprintf(out, cap, "%" PRIu64 "K", v / 1024);
	else
		snprintf(out, cap, "%" PRIu64, v);
}

/*
 * Every key appears commented out with its default, so the file documents the relay without
 * pinning the defaults: an upgrade that improves a default still reaches this relay. Returns
 * 0, or CAIRN_EIO with errno set (EEXIST if PATH exists, which is never overwritten).
 */
int relay_config_write_default(const char *path)
{
	struct relay_config d;
	relay_config_defaults(&d);

	char buf[12288];
	size_t n = 0;
	int m = snprintf(buf, sizeof(buf),
	                 "# cairn-relay configuration (docs/OPERATING.md describes every key).\n"
	                 "# Every key is commented out: the relay uses the default shown. To "
	                 "change one,\n"
	                 "# remove the '#' before it. Durations take s, m, h or d; sizes K, M "
	                 "or G.\n");
	if (m < 0)
		return CAIRN_EIO;
	n = (size_t)m;
	const char *section = "";
	for (size_t i = 0; i < KEY_COUNT && n < sizeof(buf); i++) {
		const struct key_spec *k = &keys[i];
		if (strcmp(section, k->section) != 0) {
			section = k->section;
			m = snprintf(buf + n, sizeof(buf) - n, "\n[%s]\n", section);
			if (m < 0)
				return CAIRN_EIO;
			n += (size_t)m;
			if (n >= sizeof(buf))
				break;
		}
		char value[300];
		format_default(&d, k, value, sizeof(value));
		/* No trailing blank after an empty value: "#user =" loads as user = "". */
		m = snprintf(buf + n, sizeof(buf) - n, "\n# %s\n#%s =%s%s\n", k->why, k->name,
		             value[0] != '\0' ? " " : "", value);
		if (m < 0)
			return CAIRN_EIO;
		n += (size_t)m;
	}
	if (n >= sizeof(buf)) {
		errno = ENOBUFS;
		return CAIRN_EIO;
	}

	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return CAIRN_EIO;
	if (fs_write_all(fd, buf, n) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return CAIRN_EIO;
	}
	if (close(fd) != 0) {
		int e = errno;
		unlink(path);
		errno = e;
		return CAIRN_EIO;
	}
	return 0;
}
