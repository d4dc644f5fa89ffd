/* SPDX-License-Identifier: MIT */
/*
 * Relay addresses, cairn://<key>@<host>:<port> and the transports' cairn+https and cairn+obfs4
 * forms (docs/PROTOCOL.md section 1). The parser is strict: one spelling per key, pin and
 * certificate (canonical base64), IPv4 without leading zeros, LDH hostnames, v3 onion names,
 * and after the port exactly the transport's parameters. The formatter writes exactly what it
 * would accept.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cairn/address.h"

#define KEY_B64_LEN     43 /* 32 bytes in base64url without padding */
#define CERT_B64_LEN    70 /* obfs4's 52 bytes in standard base64 without padding */
#define LABEL_MAX       63
#define ONION_LABEL_LEN 56
#define PORT_DIGITS_MAX 5

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* The transports (section 1): scheme, and the base64 variant of their binary parameters. */
static const char *const schemes[] = {
    [CAIRN_TRANSPORT_DIRECT] = "cairn://",
    [CAIRN_TRANSPORT_HTTPS] = "cairn+https://",
    [CAIRN_TRANSPORT_OBFS4] = "cairn+obfs4://",
};
#define URLSAFE  sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define STANDARD sodium_base64_VARIANT_ORIGINAL_NO_PADDING

/*
 * Decodes exactly LEN characters of base64 (VARIANT, without padding) into exactly BIN_LEN
 * bytes. The re-encoding comparison rejects a last character with non-zero unused bits, so
 * every key, pin and certificate has exactly one accepted spelling.
 */
static int b64_parse(const char *s, size_t len, uint8_t *bin, size_t bin_len, int variant)
{
	char again[CERT_B64_LEN + 1];
	size_t got = 0;
	const char *end = NULL;
	if (len != sodium_base64_encoded_len(bin_len, variant) - 1 || len >= sizeof(again))
		return -1;
	if (sodium_base642bin(bin, bin_len, s, len, NULL, &got, &end, variant) != 0 ||
	    got != bin_len || end != s + len)
		return -1;
	sodium_bin2base64(again, sizeof(again), bin, bin_len, variant);
	return memcmp(again, s, len) == 0 ? 0 : -1;
}

/* Strict dotted quad: four decimal numbers 0..255, no leading zeros, nothing else. */
static bool ipv4_valid(const char *s, size_t len)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned value = 0;
		while (i < len && is_digit(s[i]) && i - start < 3) {
			value = value * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		size_t digits = i - start;
		if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0'))
			return false;
	}
	return i == len;
}

static bool onion_label_valid(const char *s, size_t len)
{
	if (len != ONION_LABEL_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = to_lower(s[i]);
		if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
			return false;
	}
	return true;
}

/* True when the last label of the name S (LEN bytes, already LDH-checked) is "onion", any case. */
static bool last_label_is_onion(const char *s, size_t len)
{
	static const char onion[] = "onion";
	size_t n = sizeof(onion) - 1;
	if (len < n || (len > n && s[len - n - 1] != '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (to_lower(s[len - n + i]) != onion[i])
			return false;
	return true;
}

/*
 * Checks a DNS name by the LDH rules of section 1 and classifies it as a plain name or a v3
 * onion name. Returns 0 and sets *TYPE, or -1.
 */
static int name_classify(const char *s, size_t len, enum cairn_host_type *type)
{
	if (len == 0 || len > CAIRN_HOST_MAX)
		return -1;
	size_t labels = 0, first_len = 0, start = 0;
	bool all_digits = true;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			char c = s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '-')
				return -1;
			continue;
		}
		size_t label_len = i - start;
		if (label_len == 0 || label_len > LABEL_MAX)
			return -1;
		if (s[start] == '-' || s[i - 1] == '-')
			return -1;
		all_digits = true;
		for (size_t j = start; j < i; j++)
			all_digits = all_digits && is_digit(s[j]);
		if (labels == 0)
			first_len = label_len;
		labels++;
		start = i + 1;
	}
	/* A final all-digit label would be a mistyped IPv4 address. */
	if (all_digits)
		return -1;
	if (!last_label_is_onion(s, len)) {
		*type = CAIRN_HOST_NAME;
		return 0;
	}
	if (labels != 2 || !onion_label_valid(s, first_len))
		return -1;
	*type = CAIRN_HOST_ONION;
	return 0;
}

/*
 * Parses a host (without brackets; BRACKETED says whether it had them) into its type and
 * normalised text: IPv6 as inet_ntop writes it, onion names in lower case, others unchanged.
 */
static int host_parse(const char *s, size_t len, bool bracketed, enum cairn_host_type *type,
                      char out[static CAIRN_HOST_MAX + 1])
{
	if (bracketed) {
		char tmp[INET6_ADDRSTRLEN];
		unsigned char bin[16];
		if (len == 0 || len >= sizeof(tmp))
			return -1;
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return -1;
		if (inet_ntop(AF_INET6, bin, out, CAIRN_HOST_MAX + 1) == NULL)
			return -1;
		*type = CAIRN_HOST_IPV6;
		return 0;
	}
	if (ipv4_valid(s, len)) {
		*type = CAIRN_HOST_IPV4;
	} else if (name_classify(s, len, type) != 0) {
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (*type == CAIRN_HOST_ONION) ? to_lower(s[i]) : s[i];
	out[len] = '\0';
	return 0;
}

/* Decimal 1..65535, no leading zeros, no sign. */
static int port_parse(const char *s, size_t len, uint16_t *port)
{
	if (len == 0 || len > PORT_DIGITS_MAX || s[0] == '0')
		return -1;
	uint32_t value = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		value = value * 10 + (uint32_t)(s[i] - '0');
	}
	if (value > UINT16_MAX)
		return -1;
	*port = (uint16_t)value;
	return 0;
}

/* A secret path: 1..CAIRN_PATH_MAX characters of A-Z a-z 0-9 - _ . ~, not dots only. */
static bool path_valid(const char *s, size_t len)
{
	bool dots_only = true;
	if (len == 0 || len > CAIRN_PATH_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.' && c != '~')
			return false;
		dots_only = dots_only && c == '.';
	}
	return !dots_only;
}

/* True when S (up to END) starts with the literal LIT; then *S moves past it. */
static bool take(const char **s, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(end - *s) < n || memcmp(*s, lit, n) != 0)
		return false;
	*s += n;
	return true;
}

/* What follows the port of a cairn+https address: /<path>[?pin=<pin>]. */
static int https_parse(const char *p, const char *end, struct cairn_address *out)
{
	if (!take(&p, end, "/"))
		return -1;
	const char *q = memchr(p, '?', (size_t)(end - p));
	const char *path_end = q != NULL ? q : end;
	if (!path_valid(p, (size_t)(path_end - p)))
		return -1;
	memcpy(out->path, p, (size_t)(path_end - p));
	out->path[path_end - p] = '\0';
	if (q == NULL)
		return 0;
	p = q;
	if (!take(&p, end, "?pin=") ||
	    b64_parse(p, (size_t)(end - p), out->pin, CAIRN_PIN_LEN, URLSAFE) != 0)
		return -1;
	out->has_pin = 1;
	return 0;
}

/* What follows the port of a cairn+obfs4 address: ?cert=<cert>&iat-mode=<n>. */
static int obfs4_parse(const char *p, const char *end, struct cairn_address *out)
{
	if (!take(&p, end, "?cert=") || (size_t)(end - p) < CERT_B64_LEN ||
	    b64_parse(p, CERT_B64_LEN, out->obfs4_cert, CAIRN_OBFS4_CERT_LEN, STANDARD) != 0)
		return -1;
	p += CERT_B64_LEN;
	if (!take(&p, end, "&iat-mode=") || end - p != 1 || *p < '0' || *p > '2')
		return -1;
	out->obfs4_iat_mode = (uint8_t)(*p - '0');
	return 0;
}

static int address_parse(const char *text, struct cairn_address *out)
{
	size_t len = strnlen(text, CAIRN_ADDRESS_MAX + 1);
	if (len > CAIRN_ADDRESS_MAX)
		return -1;
	const char *p = text;
	const char *end = text + len;
	size_t t = 0;
	while (t < sizeof(schemes) / sizeof(schemes[0]) && !take(&p, end, schemes[t]))
		t++;
	if (t == sizeof(schemes) / sizeof(schemes[0]))
		return -1;
	out->transport = (enum cairn_transport)t;
	if ((size_t)(end - p) < KEY_B64_LEN + 1 || p[KEY_B64_LEN] != '@')
		return -1;
	if (b64_parse(p, KEY_B64_LEN, out->key, CAIRN_KEY_LEN, URLSAFE) != 0)
		return -1;
	p += KEY_B64_LEN + 1;

	const char *host = p, *host_end;
	bool bracketed = p < end && *p == '[';
	if (bracketed) {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (host_end == NULL)
			return -1;
		p = host_end + 1;
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (host_end == NULL)
			return -1;
		p = host_end;
	}
	if (p >= end || *p != ':')
		return -1;
	p++;
	if (host_parse(host, (size_t)(host_end - host), bracketed, &out->host_type, out->host) != 0)
		return -1;
	/* The port ends where the transport's parameters begin. */
	const char *port_end = p;
	while (port_end < end && is_digit(*port_end))
		port_end++;
	if (port_parse(p, (size_t)(port_end - p), &out->port) != 0)
		return -1;
	switch (out->transport) {
	case CAIRN_TRANSPORT_HTTPS:
		return https_parse(port_end, end, out);
	case CAIRN_TRANSPORT_OBFS4:
		return obfs4_parse(port_end, end, out);
	default:
		return port_end == end ? 0 : -1;
	}
}

/* Writes A's transport parameters (what follows the port) into OUT (capacity CAP).
 * Returns -1 for parameters the parser would refuse. */
static int params_format(const struct cairn_address *a, char *out, size_t cap)
{
	char b64[CERT_B64_LEN + 1];
	size_t plen = strnlen(a->path, sizeof(a->path));
	int n;
	switch (a->transport) {
	case CAIRN_TRANSPORT_DIRECT:
		n = snprintf(out, cap, "%s", "");
		break;
	case CAIRN_TRANSPORT_HTTPS:
		if (!path_valid(a->path, plen) || (a->has_pin != 0 && a->has_pin != 1))
			return -1;
		sodium_bin2base64(b64, sizeof(b64), a->pin, CAIRN_PIN_LEN, URLSAFE);
		n = snprintf(out, cap, "/%s%s%s", a->path, a->has_pin ? "?pin=" : "",
		             a->has_pin ? b64 : "");
		break;
	case CAIRN_TRANSPORT_OBFS4:
		if (a->obfs4_iat_mode > 2)
			return -1;
		sodium_bin2base64(b64, sizeof(b64), a->obfs4_cert, CAIRN_OBFS4_CERT_LEN, STANDARD);
		n = snprintf(out, cap, "?cert=%s&iat-mode=%u", b64, (unsigned)a->obfs4_iat_mode);
		break;
	default:
		return -1;
	}
	return n >= 0 && (size_t)n < cap ? 0 : -1;
}

int cairn_address_parse(const char *text, struct cairn_address *out)
{
	memset(out, 0, sizeof(*out));
	if (text == NULL || address_parse(text, out) != 0) {
		sodium_memzero(out, sizeof(*out));
		return CAIRN_EADDRESS;
	}
	return 0;
}

int cairn_address_format(const struct cairn_address *a, char *out, size_t cap)
{
	if (cap > 0)
		out[0] = '\0';
	size_t hlen = strnlen(a->host, sizeof(a->host));
	if (hlen == sizeof(a->host) || a->port == 0)
		return CAIRN_EINVAL;

	/* Re-validate the host as the parser would, so only parseable text is ever written. */
	char host[CAIRN_HOST_MAX + 1];
	enum cairn_host_type type;
	bool bracketed = a->host_type == CAIRN_HOST_IPV6;
	if (host_parse(a->host, hlen, bracketed, &type, host) != 0 || type != a->host_type)
		return CAIRN_EINVAL;

	char params[CAIRN_ADDRESS_MAX + 1];
	if (params_format(a, params, sizeof(params)) != 0)
		return CAIRN_EINVAL;
	char key[KEY_B64_LEN + 1];
	sodium_bin2base64(key, sizeof(key), a->key, CAIRN_KEY_LEN, URLSAFE);
	char buf[CAIRN_ADDRESS_MAX + 1];
	const char *open = bracketed ? "[" : "", *close = bracketed ? "]" : "";
	int n = snprintf(buf, sizeof(buf), "%s%s@%s%s%s:%u%s", schemes[a->transport], key, open,
	                 host, close, (unsigned)a->port, params);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return CAIRN_EINVAL;
	if ((size_t)n >= cap)
		return CAIRN_ENOBUFS;
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}
