/* SPDX-License-Identifier: MIT */
/*
 * The relay configuration's keys: one table, in the order of the default file, with each key's
 * section, kind of value, range and one line of explanation. config.c reads and writes the file
 * from it; adding a key is one line here and a field in struct relay_config.
 */
#ifndef CAIRN_RELAY_CONFIG_KEYS_H
#define CAIRN_RELAY_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	V_HTTPS_LISTEN,   /* HOST:PORT, or empty for none */
	V_HTTPS_PATH,     /* a secret path (PROTOCOL.md section 1), or empty */
	V_HTTPS_PUBLIC,   /* the host and port of a relay address, or empty */
	V_HTTPS_PIN,      /* a file's path, or empty */
	V_HOSTPORT,       /* HOST:PORT or [IPv6]:PORT, or empty (obfs4_listen) */
	V_METRICS_LISTEN, /* a loopback HOST:PORT or unix:/PATH (metrics_addr.h), or empty */
	V_TEXT, /* [policy]: UTF-8 text, or empty, into the char array at offset (width bytes) */
	V_STORE_ENGINE, /* [store] engine: sqlite or postgresql */
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

/* At least the number of keys (checked where the table is), so readers can size arrays. */
#define CONFIG_KEYS_MAX 128

extern const struct key_spec config_keys[];
extern const size_t config_key_count;

/* The sections a file may have, as "[relay], [limits], ... and [forward]" for messages. */
extern const char config_section_list[];

/* The key NAME in SECTION, or NULL. */
const struct key_spec *config_key_find(const char *section, const char *name);

/* Whether SECTION is one the file may have. */
bool config_section_known(const char *section);

#endif
