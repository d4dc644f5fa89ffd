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
#include "config_keys.h"
#include "metrics_addr.h"
#include "httpsaddr.h"
#include "policy.h"

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
	cfg->disk_reserve = CAIRN_DEFAULT_DISK_RESERVE;
	cfg->read_ahead_bytes = CAIRN_DEFAULT_READ_AHEAD_BYTES;
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
	snprintf(cfg->store_engine, sizeof(cfg->store_engine), "%s", "sqlite");
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

/* ---- Reading the file -------------------------------------------------------------------- */

struct load_ctx {
	struct relay_config *cfg;
	const char *path;
	FILE *file;
	unsigned line;      /* number of the line libinih is looking at */
	bool line_indented; /* it starts with white space */
	unsigned char seen[CONFIG_KEYS_MAX];
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
			if (!config_section_known(name))
				load_error(c, "unknown section [%s] (sections are %s)", name,
				           config_section_list);
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
	if (!config_section_known(section))
		return 0; /* already reported by the reader */
	const struct key_spec *k = config_key_find(section, name);
	if (k == NULL) {
		const char *other = strcmp(section, "relay") == 0 ? "limits" : "relay";
		if (strcmp(section, "https") != 0 && config_key_find(other, name) != NULL)
			load_error(c, "key '%s' belongs in [%s], not [%s]", name, other, section);
		else
			load_error(c, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	size_t idx = (size_t)(k - config_keys);
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
	case V_METRICS_LISTEN: {
		struct metrics_addr a;
		char why[300];
		if (value[0] != '\0' && metrics_addr_parse(value, &a, why, sizeof(why)) != 0) {
			load_error(c, "[metrics] listen: %s", why);
			return 0;
		}
		snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s", value);
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
	case V_STORE_ENGINE:
		if (strcmp(value, "sqlite") != 0 && strcmp(value, "postgresql") != 0) {
			load_error(c, "engine: '%s' is not sqlite or postgresql", value);
			return 0;
		}
		snprintf(cfg->store_engine, sizeof(cfg->store_engine), "%s", value);
		return 1;
	case V_TEXT: {
		size_t len = strlen(value);
		if (len >= k->width || !policy_text_valid(value, len)) {
			load_error(c, "%s: more than %u bytes, or not UTF-8", name, k->width - 1);
			return 0;
		}
		memcpy((char *)cfg + k->offset, value, len + 1);
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
	if (strcmp(tmp.store_engine, "postgresql") == 0 && tmp.store_connection[0] == '\0') {
		snprintf(err, errcap,
		         "%s: [store] connection is required when engine is postgresql", path);
		return CAIRN_EINVAL;
	}
	if (tmp.store_node != 0 && strcmp(tmp.store_engine, "postgresql") != 0) {
		snprintf(err, errcap,
		         "%s: [store] node needs engine = postgresql (nodes share one database)",
		         path);
		return CAIRN_EINVAL;
	}
	/* The reserve file is room kept on the store's file system for a full disk's deletes
	 * (storage.h); PostgreSQL's files are on another machine's, whose fullness the database
	 * reports itself (disk_full: the SEND gets 'full'). min_free_disk still guards the data
	 * directory's disk, where the log file may grow. */
	if (strcmp(tmp.store_engine, "postgresql") == 0)
		tmp.disk_reserve = 0;
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
	case V_METRICS_LISTEN:
	case V_TEXT:
	case V_STORE_ENGINE:
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
	for (size_t i = 0; i < config_key_count && n < sizeof(buf); i++) {
		const struct key_spec *k = &config_keys[i];
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
