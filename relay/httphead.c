/* SPDX-License-Identifier: MIT */
/*
 * The WebSocket listener's request head (PROTOCOL.md 7.2). Strict where strictness costs a
 * legitimate client nothing (the web server in front speaks clean HTTP/1.1): CRLF line ends
 * only, no folded headers, no space before a colon, no control bytes. Anything that is not
 * HTTP is closed silently; well-formed HTTP that does not name the secret path with a valid
 * upgrade gets the same 404 a web server gives.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "httphead.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* RFC 7230 tchar. */
static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* True if the LEN bytes at S equal the NUL-terminated lower-case WORD, ignoring case. */
static bool equal_nocase(const uint8_t *s, size_t len, const char *word)
{
	if (strlen(word) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (lower(s[i]) != (uint8_t)word[i])
			return false;
	return true;
}

/* True if the comma-separated list V (LEN bytes) has the token WORD (lower case), any case. */
static bool has_token(const uint8_t *v, size_t len, const char *word)
{
	size_t i = 0;
	while (i <= len) {
		size_t start = i;
		while (i < len && v[i] != ',')
			i++;
		size_t end = i;
		while (start < end && (v[start] == ' ' || v[start] == '\t'))
			start++;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (equal_nocase(v + start, end - start, word))
			return true;
		i++; /* past the comma (or the end) */
	}
	return false;
}

/* The headers an upgrade needs, as far as they were seen. */
struct upgrade_seen {
	unsigned host, key, version;
	bool upgrade_websocket, connection_upgrade, version_13, key_valid;
	char key_text[HTTPHEAD_KEY_LEN + 1];
};

static void note_header(struct upgrade_seen *u, const uint8_t *name, size_t nlen, const uint8_t *v,
                        size_t vlen)
{
	if (equal_nocase(name, nlen, "host")) {
		u->host++;
	} else if (equal_nocase(name, nlen, "upgrade")) {
		u->upgrade_websocket |= has_token(v, vlen, "websocket");
	} else if (equal_nocase(name, nlen, "connection")) {
		u->connection_upgrade |= has_token(v, vlen, "upgrade");
	} else if (equal_nocase(name, nlen, "sec-websocket-version")) {
		u->version++;
		u->version_13 = vlen == 2 && v[0] == '1' && v[1] == '3';
	} else if (equal_nocase(name, nlen, "sec-websocket-key")) {
		u->key++;
		uint8_t bin[16];
		size_t bin_len = 0;
		u->key_valid =
		    vlen == HTTPHEAD_KEY_LEN &&
		    sodium_base642bin(bin, sizeof(bin), (const char *)v, vlen, NULL, &bin_len, NULL,
		                      sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    bin_len == sizeof(bin);
		if (u->key_valid) {
			memcpy(u->key_text, v, HTTPHEAD_KEY_LEN);
			u->key_text[HTTPHEAD_KEY_LEN] = '\0';
		}
	}
}

/* Finds the end of the head (after its blank line) in the first LIMIT bytes, or 0. */
static size_t head_end(const uint8_t *buf, size_t limit)
{
	for (size_t i = 0; i + 4 <= limit; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n')
			return i + 4;
	return 0;
}

/* Parses the request line "METHOD SP TARGET SP HTTP/1.d" at LINE (LEN bytes, no CRLF). */
static bool parse_request_line(const uint8_t *line, size_t len, const uint8_t **target,
                               size_t *tlen, bool *get, bool *http11)
{
	size_t i = 0;
	while (i < len && is_tchar(line[i]))
		i++;
	if (i == 0 || i == len || line[i] != ' ')
		return false;
	*get = i == 3 && memcmp(line, "GET", 3) == 0; /* the method is case-sensitive */
	size_t t = ++i;
	while (i < len && line[i] > ' ' && line[i] < 0x7f)
		i++;
	if (i == t || i == len || line[i] != ' ')
		return false;
	*target = line + t;
	*tlen = i - t;
	i++;
	if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0 || line[i + 7] < '0' ||
	    line[i + 7] > '9')
		return false;
	*http11 = line[i + 7] == '1';
	return true;
}

enum httphead_result httphead_parse(const uint8_t *buf, size_t len, const char *path,
                                    struct httphead_request *out)
{
	memset(out, 0, sizeof(*out));
	size_t end = head_end(buf, len < HTTPHEAD_MAX ? len : HTTPHEAD_MAX);
	if (end == 0)
		return len >= HTTPHEAD_MAX ? HTTPHEAD_MALFORMED : HTTPHEAD_INCOMPLETE;

	/* Every line ends in CRLF and holds no other control byte but tab. */
	for (size_t i = 0; i < end; i++) {
		uint8_t c = buf[i];
		if (c == '\r' && (i + 1 >= end || buf[i + 1] != '\n'))
			return HTTPHEAD_MALFORMED;
		if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return HTTPHEAD_MALFORMED;
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
			return HTTPHEAD_MALFORMED;
	}

	const uint8_t *line = buf;
	const uint8_t *eol = memchr(line, '\r', end);
	const uint8_t *target = NULL;
	size_t tlen = 0;
	bool get = false, http11 = false;
	if (!parse_request_line(line, (size_t)(eol - line), &target, &tlen, &get, &http11))
		return HTTPHEAD_MALFORMED;

	struct upgrade_seen u;
	memset(&u, 0, sizeof(u));
	for (line = eol + 2; line < buf + end - 2; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(buf + end - line));
		size_t llen = (size_t)(eol - line);
		size_t n = 0;
		while (n < llen && is_tchar(line[n]))
			n++;
		/* No name, a folded line, or a space before the colon (RFC 7230 3.2.4). */
		if (n == 0 || n == llen || line[n] != ':')
			return HTTPHEAD_MALFORMED;
		const uint8_t *v = line + n + 1, *vend = eol;
		while (v < vend && (*v == ' ' || *v == '\t'))
			v++;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		note_header(&u, line, n, v, (size_t)(vend - v));
	}

	out->head_len = end;
	size_t plen = strlen(path);
	bool path_ok = plen > 0 && tlen == plen + 1 && target[0] == '/' &&
	               sodium_memcmp(target + 1, path, plen) == 0;
	if (get && http11 && path_ok && u.host == 1 && u.upgrade_websocket &&
	    u.connection_upgrade && u.version == 1 && u.version_13 && u.key == 1 && u.key_valid) {
		memcpy(out->key, u.key_text, sizeof(out->key));
		return HTTPHEAD_UPGRADE;
	}
	return HTTPHEAD_NOT_FOUND;
}

int httphead_accept(const char key[static HTTPHEAD_KEY_LEN],
                    char out[static HTTPHEAD_ACCEPT_LEN + 1])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	         EVP_DigestUpdate(ctx, key, HTTPHEAD_KEY_LEN) == 1 &&
	         EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
	         EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 20;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return CAIRN_ENOMEM;
	sodium_bin2base64(out, HTTPHEAD_ACCEPT_LEN + 1, md, md_len, sodium_base64_VARIANT_ORIGINAL);
	return 0;
}
