/* SPDX-License-Identifier: MIT */
/*
 * Files (file.h, docs/PROTOCOL.md section 11): the size class that leaves a relay about 16
 * sizes per doubling, one entry sealed or opened on a secretstream, and the file message's
 * data. Big-endian integers as everywhere in the protocol; every length is checked before it
 * is used.
 */
#include <string.h>

#include "file.h"

uint32_t file_class(uint32_t n)
{
	if (n == 0 || n > (1u << 27))
		return 0;
	if (n <= 32)
		return n;
	unsigned bits = 0;
	for (uint32_t v = n; v != 0; v >>= 1)
		bits++;
	/* keeps the five most significant bits: a multiple of 2^(bitlen - 5), rounded up */
	uint32_t step = 1u << (bits - 5);
	return (n + step - 1) / step * step;
}

uint32_t file_chunks(uint64_t size)
{
	if (size > CAIRN_FILE_SIZE_MAX)
		return 0;
	uint64_t n = (size + FILE_CHUNK_PLAIN - 1) / FILE_CHUNK_PLAIN;
	return file_class(n == 0 ? 1 : (uint32_t)n);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int file_entry_seal(crypto_secretstream_xchacha20poly1305_state *state, uint32_t i, bool last,
                    const uint8_t plain[static FILE_CHUNK_PLAIN],
                    uint8_t out[static FILE_ENTRY_LEN])
{
	put_u32(out, i);
	uint8_t tag = last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
	                   : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
	if (crypto_secretstream_xchacha20poly1305_push(state, out + 4, NULL, plain,
	                                               FILE_CHUNK_PLAIN, NULL, 0, tag) != 0)
		return CAIRN_EINVAL;
	return 0;
}

int file_entry_index(const uint8_t *entry, size_t len, uint32_t *i)
{
	*i = 0;
	if (len != FILE_ENTRY_LEN)
		return CAIRN_EINVAL;
	*i = get_u32(entry);
	return 0;
}

int file_entry_open(crypto_secretstream_xchacha20poly1305_state *state, uint32_t i, uint32_t chunks,
                    const uint8_t entry[static FILE_ENTRY_LEN],
                    uint8_t plain[static FILE_CHUNK_PLAIN])
{
	unsigned char tag = 0;
	unsigned long long plen = 0;
	if (get_u32(entry) != i || i >= chunks ||
	    crypto_secretstream_xchacha20poly1305_pull(state, plain, &plen, &tag, entry + 4,
	                                               FILE_PUSH_LEN, NULL, 0) != 0 ||
	    plen != FILE_CHUNK_PLAIN ||
	    tag != (i + 1 == chunks ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
	                            : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)) {
		sodium_memzero(plain, FILE_CHUNK_PLAIN);
		return CAIRN_EAUTH;
	}
	return 0;
}

bool file_utf8_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t b = p[i];
		size_t n;
		uint32_t cp, min;
		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xe0) == 0xc0) {
			n = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			n = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			n = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Whether RELAY (LEN bytes, not terminated) is 1..320 bytes of an address that parses. */
static bool relay_ok(const uint8_t *relay, size_t len)
{
	char text[CAIRN_ADDRESS_MAX + 1];
	struct cairn_address a;
	if (len == 0 || len > CAIRN_ADDRESS_MAX || memchr(relay, 0, len) != NULL)
		return false;
	memcpy(text, relay, len);
	text[len] = '\0';
	return cairn_address_parse(text, &a) == 0;
}

static bool msg_ok(const struct file_msg *m)
{
	return m->size <= CAIRN_FILE_SIZE_MAX && m->chunks == file_chunks(m->size) &&
	       m->relay != NULL && relay_ok(m->relay, m->relay_len) && m->name != NULL &&
	       m->name_len >= 1 && m->name_len <= FILE_NAME_MAX &&
	       file_utf8_ok(m->name, m->name_len);
}

int file_msg_encode(const struct file_msg *m, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (!msg_ok(m))
		return CAIRN_EINVAL;
	size_t len = FILE_DATA_FIXED + m->relay_len + m->name_len;
	if (cap < len)
		return CAIRN_ENOBUFS;
	uint8_t *p = out;
	*p++ = FILE_VERSION;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(m->size >> (56 - 8 * i));
	put_u32(p, m->chunks);
	p += 4;
	memcpy(p, m->digest, FILE_DIGEST_LEN);
	p += FILE_DIGEST_LEN;
	memcpy(p, m->key, FILE_KEY_LEN);
	p += FILE_KEY_LEN;
	memcpy(p, m->header, FILE_HEADER_LEN);
	p += FILE_HEADER_LEN;
	memcpy(p, m->log_id, CAIRN_LOG_ID_LEN);
	p += CAIRN_LOG_ID_LEN;
	memcpy(p, m->delete_secret, CAIRN_CREDENTIAL_LEN);
	p += CAIRN_CREDENTIAL_LEN;
	*p++ = (uint8_t)(m->relay_len >> 8);
	*p++ = (uint8_t)m->relay_len;
	memcpy(p, m->relay, m->relay_len);
	p += m->relay_len;
	*p++ = (uint8_t)m->name_len;
	memcpy(p, m->name, m->name_len);
	*outlen = len;
	return 0;
}

int file_msg_parse(const uint8_t *in, size_t len, struct file_msg *m)
{
	memset(m, 0, sizeof(*m));
	/* the fixed fields up to the relay's length, then the relay, its name length, the name */
	size_t head = FILE_DATA_FIXED - 1;
	if (len < FILE_DATA_FIXED || in[0] != FILE_VERSION)
		return CAIRN_EINVAL;
	const uint8_t *p = in + 1;
	for (int i = 0; i < 8; i++)
		m->size = (m->size << 8) | *p++;
	m->chunks = get_u32(p);
	p += 4;
	memcpy(m->digest, p, FILE_DIGEST_LEN);
	p += FILE_DIGEST_LEN;
	memcpy(m->key, p, FILE_KEY_LEN);
	p += FILE_KEY_LEN;
	memcpy(m->header, p, FILE_HEADER_LEN);
	p += FILE_HEADER_LEN;
	memcpy(m->log_id, p, CAIRN_LOG_ID_LEN);
	p += CAIRN_LOG_ID_LEN;
	memcpy(m->delete_secret, p, CAIRN_CREDENTIAL_LEN);
	p += CAIRN_CREDENTIAL_LEN;
	m->relay_len = ((size_t)p[0] << 8) | p[1];
	p += 2;
	/* now at HEAD bytes; what is left must hold the relay, the name's length and the name */
	size_t left = len - head;
	if (left < m->relay_len + 1)
		goto bad;
	m->relay = p;
	p += m->relay_len;
	m->name_len = *p++;
	left -= m->relay_len + 1;
	if (left != m->name_len)
		goto bad;
	m->name = p;
	if (!msg_ok(m))
		goto bad;
	return 0;
bad:
	sodium_memzero(m, sizeof(*m));
	return CAIRN_EINVAL;
}
