/* SPDX-License-Identifier: MIT */
/*
 * Offer, join and welcome data, group names and log locations (docs/PROTOCOL.md sections 9.7
 * and 9.8). Fixed layouts with big-endian integers: a reader walks the input with a cursor
 * that refuses to move past the end, so no length from the wire is used before it is checked
 * against the bytes present. Relay text is parsed only once the whole structure holds.
 */
#include <string.h>

#include <sodium.h>

#include "group_bytes.h"
#include "group_join.h"

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

/*
 * The length of the UTF-8 sequence at S (N > 0 bytes) if it is a valid character other than
 * a control character, else 0. Lead bytes follow RFC 3629's table: the second byte's range
 * excludes overlong forms, surrogates and code points above U+10FFFF.
 */
static size_t name_char(const uint8_t *s, size_t n)
{
	static const struct {
		uint8_t first_lo, first_hi, len, second_lo, second_hi;
	} rows[] = {
	    {0xC2, 0xDF, 2, 0x80, 0xBF}, {0xE0, 0xE0, 3, 0xA0, 0xBF}, {0xE1, 0xEC, 3, 0x80, 0xBF},
	    {0xED, 0xED, 3, 0x80, 0x9F}, {0xEE, 0xEF, 3, 0x80, 0xBF}, {0xF0, 0xF0, 4, 0x90, 0xBF},
	    {0xF1, 0xF3, 4, 0x80, 0xBF}, {0xF4, 0xF4, 4, 0x80, 0x8F},
	};
	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7F; /* C0 controls and DEL */
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (s[0] < rows[r].first_lo || s[0] > rows[r].first_hi)
			continue;
		size_t len = rows[r].len;
		if (n < len || s[1] < rows[r].second_lo || s[1] > rows[r].second_hi)
			return 0;
		for (size_t i = 2; i < len; i++)
			if ((s[i] & 0xC0) != 0x80)
				return 0;
		/* C1 controls, U+0080..U+009F, are C2 80..C2 9F. */
		return s[0] == 0xC2 && s[1] <= 0x9F ? 0 : len;
	}
	return 0; /* a continuation byte, C0/C1 lead bytes, F5..FF */
}

int group_name_check(const uint8_t *name, size_t len)
{
	if (len > GROUP_NAME_MAX)
		return CAIRN_EINVAL;
	for (size_t off = 0; off < len;) {
		size_t n = name_char(name + off, len - off);
		if (n == 0)
			return CAIRN_EINVAL;
		off += n;
	}
	return 0;
}

/* Writes name_len || name at P for NAME, LEN bytes already checked; returns the end. */
static uint8_t *put_name(uint8_t *p, const char *name, size_t len)
{
	*p++ = (uint8_t)len;
	return put(p, name, len);
}

/* Length of the string NAME if it is a valid group name, else -1. */
static long name_len(const char name[static GROUP_NAME_MAX + 1])
{
	size_t len = strnlen(name, GROUP_NAME_MAX + 1);
	if (group_name_check((const uint8_t *)name, len) != 0)
		return -1;
	return (long)len;
}

/* Reads name_len || name into OUT (GROUP_NAME_MAX + 1 bytes). Returns 0 or CAIRN_EINVAL. */
static int take_name(struct group_reader *c, char out[static GROUP_NAME_MAX + 1])
{
	const uint8_t *len = group_take(c, 1), *name;
	if (len == NULL || *len > GROUP_NAME_MAX || (name = group_take(c, *len)) == NULL ||
	    group_name_check(name, *len) != 0)
		return CAIRN_EINVAL;
	memcpy(out, name, *len);
	out[*len] = '\0';
	return 0;
}

/* Length of LOC's relay text if it is an address of section 1, else 0. */
static size_t relay_len(const struct group_location *loc)
{
	size_t len = strnlen(loc->relay, sizeof(loc->relay));
	struct cairn_address a;
	if (len == 0 || len > CAIRN_ADDRESS_MAX || cairn_address_parse(loc->relay, &a) != 0)
		return 0;
	return len;
}

static uint8_t *put_location(uint8_t *p, const struct group_location *loc, size_t rlen)
{
	p = group_put_be(p, rlen, 2);
	p = put(p, loc->relay, rlen);
	p = put(p, loc->log_id, CAIRN_LOG_ID_LEN);
	return put(p, loc->credential, CAIRN_CREDENTIAL_LEN);
}

/*
 * Reads a location's structure into OUT. Returns 0 or CAIRN_EINVAL; sets *NUL when the relay
 * text holds a NUL (the address is checked later, by check_relay, once all structure holds).
 */
static int take_location(struct group_reader *c, struct group_location *out, int *nul)
{
	const uint8_t *len = group_take(c, 2), *relay, *rest;
	size_t rlen = len != NULL ? (size_t)group_get_be(len, 2) : 0;
	if (rlen == 0 || rlen > CAIRN_ADDRESS_MAX || (relay = group_take(c, rlen)) == NULL ||
	    (rest = group_take(c, CAIRN_LOG_ID_LEN + CAIRN_CREDENTIAL_LEN)) == NULL)
		return CAIRN_EINVAL;
	/* A NUL inside the text would hide bytes from the address parser. */
	*nul = memchr(relay, 0, rlen) != NULL;
	memcpy(out->relay, relay, rlen);
	out->relay[rlen] = '\0';
	memcpy(out->log_id, rest, CAIRN_LOG_ID_LEN);
	memcpy(out->credential, rest + CAIRN_LOG_ID_LEN, CAIRN_CREDENTIAL_LEN);
	return 0;
}

static int check_relay(const struct group_location *loc, int nul)
{
	struct cairn_address a;
	return nul || cairn_address_parse(loc->relay, &a) != 0 ? CAIRN_EADDRESS : 0;
}

int group_location_encode(const struct group_location *loc, uint8_t *out, size_t cap,
                          size_t *outlen)
{
	*outlen = 0;
	size_t rlen = relay_len(loc);
	if (rlen == 0)
		return CAIRN_EADDRESS;
	if (cap < GROUP_LOCATION_FIXED + rlen)
		return CAIRN_ENOBUFS;
	*outlen = (size_t)(put_location(out, loc, rlen) - out);
	return 0;
}

int group_location_decode(const uint8_t *in, size_t len, struct group_location *out)
{
	struct group_reader c = {in, len};
	int nul = 0;
	memset(out, 0, sizeof(*out));
	int rc = take_location(&c, out, &nul);
	if (rc == 0 && c.left != 0)
		rc = CAIRN_EINVAL;
	if (rc == 0)
		rc = check_relay(out, nul);
	if (rc != 0)
		sodium_memzero(out, sizeof(*out));
	return rc;
}

int group_offer_encode(const struct group_offer *o, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	long nlen = name_len(o->name);
	if (nlen < 0)
		return CAIRN_EINVAL;
	if (cap < GROUP_OFFER_MIN + (size_t)nlen)
		return CAIRN_ENOBUFS;
	uint8_t *p = put(out, o->group_id, GROUP_ID_LEN);
	*outlen = (size_t)(put_name(p, o->name, (size_t)nlen) - out);
	return 0;
}

int group_offer_decode(const uint8_t *in, size_t len, struct group_offer *out)
{
	struct group_reader c = {in, len};
	memset(out, 0, sizeof(*out));
	const uint8_t *id = group_take(&c, GROUP_ID_LEN);
	if (id == NULL || take_name(&c, out->name) != 0 || c.left != 0) {
		memset(out, 0, sizeof(*out));
		return CAIRN_EINVAL;
	}
	memcpy(out->group_id, id, GROUP_ID_LEN);
	return 0;
}

int group_join_encode(const struct group_join *j, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (cap < GROUP_JOIN_LEN)
		return CAIRN_ENOBUFS;
	uint8_t *p = put(out, j->group_id, GROUP_ID_LEN);
	p = put(p, j->sign_key, CAIRN_KEY_LEN);
	put(p, j->group_key, CAIRN_KEY_LEN);
	*outlen = GROUP_JOIN_LEN;
	return 0;
}

int group_join_decode(const uint8_t *in, size_t len, struct group_join *out)
{
	memset(out, 0, sizeof(*out));
	if (len != GROUP_JOIN_LEN)
		return CAIRN_EINVAL;
	memcpy(out->group_id, in, GROUP_ID_LEN);
	memcpy(out->sign_key, in + GROUP_ID_LEN, CAIRN_KEY_LEN);
	memcpy(out->group_key, in + GROUP_ID_LEN + CAIRN_KEY_LEN, CAIRN_KEY_LEN);
	return 0;
}

/* The roster's member count if ROSTER (LEN bytes) is framed as 9.2 says, else 0. */
static size_t roster_count(const uint8_t *roster, size_t len)
{
	if (roster == NULL || len < 2)
		return 0;
	size_t count = (size_t)group_get_be(roster, 2);
	if (count == 0 || count > GROUP_MEMBERS_MAX || len != 2 + GROUP_WELCOME_MEMBER_LEN * count)
		return 0;
	return count;
}

int group_welcome_encode(const struct group_welcome *w, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	long nlen = name_len(w->name);
	size_t count = roster_count(w->roster, w->roster_len);
	if (nlen < 0 || count == 0 || w->index >= count)
		return CAIRN_EINVAL;
	size_t rlen = relay_len(&w->location);
	if (rlen == 0)
		return CAIRN_EADDRESS;
	size_t need =
	    GROUP_WELCOME_HEAD_LEN + GROUP_LOCATION_FIXED + rlen + 1 + (size_t)nlen + w->roster_len;
	if (cap < need)
		return CAIRN_ENOBUFS;
	uint8_t *p = put(out, w->group_id, GROUP_ID_LEN);
	p = group_put_be(p, w->epoch, 8);
	p = put(p, w->head, GROUP_HEAD_LEN);
	p = put(p, w->epoch_secret, GROUP_SECRET_LEN);
	p = group_put_be(p, w->index, 2);
	p = group_put_be(p, w->rotate_seconds, 4);
	p = group_put_be(p, w->rotate_messages, 4);
	p = group_put_be(p, w->commit_seq, 8);
	p = put_location(p, &w->location, rlen);
	p = put_name(p, w->name, (size_t)nlen);
	put(p, w->roster, w->roster_len);
	*outlen = need;
	return 0;
}

int group_welcome_decode(const uint8_t *in, size_t len, struct group_welcome *out)
{
	struct group_reader c = {in, len};
	int nul = 0, rc = CAIRN_EINVAL;
	memset(out, 0, sizeof(*out));
	const uint8_t *h = group_take(&c, GROUP_WELCOME_HEAD_LEN);
	if (h == NULL || take_location(&c, &out->location, &nul) != 0 ||
	    take_name(&c, out->name) != 0)
		goto fail;
	/* The roster runs to the end: its framing says how long it must be. */
	size_t count = roster_count(c.p, c.left);
	if (count == 0)
		goto fail;
	memcpy(out->group_id, h, GROUP_ID_LEN);
	h += GROUP_ID_LEN;
	out->epoch = group_get_be(h, 8);
	memcpy(out->head, h + 8, GROUP_HEAD_LEN);
	h += 8 + GROUP_HEAD_LEN;
	memcpy(out->epoch_secret, h, GROUP_SECRET_LEN);
	h += GROUP_SECRET_LEN;
	out->index = (uint16_t)group_get_be(h, 2);
	out->rotate_seconds = (uint32_t)group_get_be(h + 2, 4);
	out->rotate_messages = (uint32_t)group_get_be(h + 6, 4);
	out->commit_seq = group_get_be(h + 10, 8);
	if (out->index >= count)
		goto fail;
	if ((rc = check_relay(&out->location, nul)) != 0)
		goto fail;
	out->roster = c.p;
	out->roster_len = c.left;
	return 0;
fail:
	group_welcome_clear(out);
	return rc;
}

void group_welcome_clear(struct group_welcome *w)
{
	if (w != NULL)
		sodium_memzero(w, sizeof(*w));
}
