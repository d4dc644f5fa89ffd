/* SPDX-License-Identifier: MIT */
/* Files (docs/PROTOCOL.md section 11): the vectors file/classes, file/chunk and
 * e2e/appmsg-file, a whole stream sealed and opened, and every form of the file message a
 * receiver drops (11.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "appmsg.h"
#include "file.h"
#include "mdvec.h"

static void test_classes(void **state)
{
	(void)state;
	char ns[256], cs[256];
	snprintf(ns, sizeof(ns), "%s", mdvec_str("file/classes", "n"));
	snprintf(cs, sizeof(cs), "%s", mdvec_str("file/classes", "class"));
	char *sn = NULL, *sc = NULL;
	char *a = strtok_r(ns, " ", &sn), *b = strtok_r(cs, " ", &sc);
	int count = 0;
	while (a != NULL && b != NULL) {
		assert_int_equal(file_class((uint32_t)strtoul(a, NULL, 10)), strtoul(b, NULL, 10));
		a = strtok_r(NULL, " ", &sn);
		b = strtok_r(NULL, " ", &sc);
		count++;
	}
	assert_null(a);
	assert_null(b);
	assert_int_equal(count, 9);
	/* the bounds of 11.1 */
	assert_int_equal(file_chunks(0), 1);
	assert_int_equal(file_chunks(1), 1);
	assert_int_equal(file_chunks(FILE_CHUNK_PLAIN), 1);
	assert_int_equal(file_chunks(FILE_CHUNK_PLAIN + 1), 2);
	assert_int_equal(file_chunks(32 * FILE_CHUNK_PLAIN), 32);
	assert_int_equal(file_chunks(CAIRN_FILE_SIZE_MAX), FILE_CHUNKS_MAX);
	assert_int_equal(file_chunks(CAIRN_FILE_SIZE_MAX + 1), 0);
	assert_int_equal(file_class(0), 0);
	/* padding at most 1/16 everywhere, and never shrinking */
	for (uint32_t n = 1; n < 140000; n++) {
		uint32_t c = file_class(n);
		assert_true(c >= n);
		assert_true(n <= 32 ? c == n : (uint64_t)(c - n) * 16 <= n);
	}
}

/* Entry 0 of `hello`, state set up from key and header as init_pull does (11.1). */
static void chunk_state(crypto_secretstream_xchacha20poly1305_state *st, uint8_t key[32],
                        uint8_t header[24])
{
	assert_int_equal(mdvec_hex("file/chunk", "key", key, 32), 32);
	assert_int_equal(mdvec_hex("file/chunk", "header", header, 24), 24);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(st, header, key), 0);
}

static void test_chunk(void **state)
{
	(void)state;
	uint8_t key[32], header[24], head[48], digest[32], content[16];
	crypto_secretstream_xchacha20poly1305_state st;
	chunk_state(&st, key, header);
	size_t clen = mdvec_hex("file/chunk", "content", content, sizeof(content));
	assert_int_equal(clen, atoi(mdvec_str("file/chunk", "size")));
	assert_int_equal(file_chunks(clen), atoi(mdvec_str("file/chunk", "chunks")));
	assert_int_equal(mdvec_hex("file/chunk", "entry_head", head, sizeof(head)), 48);
	assert_int_equal(mdvec_hex("file/chunk", "entry_blake2b", digest, 32), 32);
	static uint8_t plain[FILE_CHUNK_PLAIN], entry[FILE_ENTRY_LEN], back[FILE_CHUNK_PLAIN];
	memset(plain, 0, sizeof(plain));
	memcpy(plain, content, clen);
	assert_int_equal(file_entry_seal(&st, 0, true, plain, entry), 0);
	assert_memory_equal(entry, head, 48);
	uint8_t h[32];
	crypto_generichash(h, 32, entry, sizeof(entry), NULL, 0);
	assert_memory_equal(h, digest, 32);
	uint32_t i = 99;
	assert_int_equal(file_entry_index(entry, sizeof(entry), &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(file_entry_index(entry, sizeof(entry) - 1, &i), CAIRN_EINVAL);
	/* opens as the only entry; not as entry 0 of two (the tag must be final exactly last) */
	chunk_state(&st, key, header);
	assert_int_equal(file_entry_open(&st, 0, 1, entry, back), 0);
	assert_memory_equal(back, plain, sizeof(plain));
	chunk_state(&st, key, header);
	assert_int_equal(file_entry_open(&st, 0, 2, entry, back), CAIRN_EAUTH);
	/* a flipped byte anywhere after the index fails; a wrong index fails */
	size_t spots[] = {4, 5, 100, FILE_ENTRY_LEN - 1};
	for (size_t k = 0; k < sizeof(spots) / sizeof(spots[0]); k++) {
		entry[spots[k]] ^= 1;
		chunk_state(&st, key, header);
		assert_int_equal(file_entry_open(&st, 0, 1, entry, back), CAIRN_EAUTH);
		entry[spots[k]] ^= 1;
	}
	entry[3] = 1;
	chunk_state(&st, key, header);
	assert_int_equal(file_entry_open(&st, 0, 1, entry, back), CAIRN_EAUTH);
}

/* A stream of 3 entries: in order it opens; swapped, dropped or truncated it does not. */
static void test_stream(void **state)
{
	(void)state;
	uint8_t key[32], header[24];
	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_state st;
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_push(&st, header, key), 0);
	static uint8_t plain[FILE_CHUNK_PLAIN], e[3][FILE_ENTRY_LEN], back[FILE_CHUNK_PLAIN];
	for (uint32_t i = 0; i < 3; i++) {
		memset(plain, 'a' + (int)i, sizeof(plain));
		assert_int_equal(file_entry_seal(&st, i, i == 2, plain, e[i]), 0);
	}
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key), 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(file_entry_open(&st, i, 3, e[i], back), 0);
		assert_int_equal(back[0], 'a' + (int)i);
	}
	/* entry 1 where 0 belongs (index and stream both refuse) */
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key), 0);
	assert_int_equal(file_entry_open(&st, 0, 3, e[1], back), CAIRN_EAUTH);
	/* the last one dropped: entry 1 of 2 is not final */
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key), 0);
	assert_int_equal(file_entry_open(&st, 0, 2, e[0], back), 0);
	assert_int_equal(file_entry_open(&st, 1, 2, e[1], back), CAIRN_EAUTH);
	/* an index beyond the count */
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key), 0);
	assert_int_equal(file_entry_open(&st, 0, 0, e[0], back), CAIRN_EAUTH);
}

#define V "e2e/appmsg-file"

static void vector_msg(struct file_msg *m, char relay[CAIRN_ADDRESS_MAX + 1], char name[256])
{
	memset(m, 0, sizeof(*m));
	m->size = strtoull(mdvec_str(V, "size"), NULL, 10);
	m->chunks = (uint32_t)strtoul(mdvec_str(V, "chunks"), NULL, 10);
	assert_int_equal(mdvec_hex(V, "digest", m->digest, 32), 32);
	assert_int_equal(mdvec_hex(V, "key", m->key, 32), 32);
	assert_int_equal(mdvec_hex(V, "header", m->header, 24), 24);
	assert_int_equal(mdvec_hex(V, "log_id", m->log_id, 24), 24);
	assert_int_equal(mdvec_hex(V, "delete_secret", m->delete_secret, 32), 32);
	snprintf(relay, CAIRN_ADDRESS_MAX + 1, "%s", mdvec_str(V, "relay"));
	snprintf(name, 256, "%s", mdvec_str(V, "name"));
	m->relay = (const uint8_t *)relay;
	m->relay_len = strlen(relay);
	m->name = (const uint8_t *)name;
	m->name_len = strlen(name);
}

static void test_message_vector(void **state)
{
	(void)state;
	struct file_msg m, p;
	char relay[CAIRN_ADDRESS_MAX + 1], name[256];
	vector_msg(&m, relay, name);
	/* the digest is that of the content of file/chunk */
	uint8_t content[16], d[32];
	size_t clen = mdvec_hex("file/chunk", "content", content, sizeof(content));
	crypto_generichash(d, 32, content, clen, NULL, 0);
	assert_memory_equal(d, m.digest, 32);
	static uint8_t want[FILE_DATA_MAX], out[FILE_DATA_MAX],
	    hex[APPMSG_HEADER_LEN + FILE_DATA_MAX];
	size_t wlen = mdvec_hex(V, "data", want, sizeof(want)), len;
	assert_int_equal(file_msg_encode(&m, out, sizeof(out), &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(out, want, wlen);
	assert_int_equal(file_msg_encode(&m, out, wlen - 1, &len), CAIRN_ENOBUFS);
	assert_int_equal(file_msg_parse(want, wlen, &p), 0);
	assert_int_equal(p.size, m.size);
	assert_int_equal(p.chunks, m.chunks);
	assert_memory_equal(p.key, m.key, 32);
	assert_memory_equal(p.header, m.header, 24);
	assert_memory_equal(p.log_id, m.log_id, 24);
	assert_memory_equal(p.delete_secret, m.delete_secret, 32);
	assert_memory_equal(p.digest, m.digest, 32);
	assert_int_equal(p.relay_len, strlen(relay));
	assert_memory_equal(p.relay, relay, p.relay_len);
	assert_int_equal(p.name_len, strlen(name));
	assert_memory_equal(p.name, name, p.name_len);
	/* the whole application message */
	struct appmsg am = {.kind = (uint8_t)atoi(mdvec_str(V, "kind")),
	                    .sent_at = strtoull(mdvec_str(V, "sent_at"), NULL, 10),
	                    .part_index = 0,
	                    .part_count = 1,
	                    .data = out,
	                    .data_len = wlen};
	assert_int_equal(am.kind, APPMSG_FILE);
	assert_int_equal(mdvec_hex(V, "message_id", am.id, 16), 16);
	static uint8_t whole[APPMSG_HEADER_LEN + FILE_DATA_MAX];
	size_t hlen = mdvec_hex(V, "hex", hex, sizeof(hex)), alen;
	assert_int_equal(appmsg_encode(&am, whole, sizeof(whole), &alen), 0);
	assert_int_equal(alen, hlen);
	assert_memory_equal(whole, hex, hlen);
	struct appmsg back;
	assert_int_equal(appmsg_parse(hex, hlen, &back), 0);
	assert_int_equal(appmsg_check(&back, APPMSG_DIRECT), 0);
	assert_int_equal(appmsg_check(&back, APPMSG_GROUP), 0);
	back.part_count = 2;
	assert_int_equal(appmsg_check(&back, APPMSG_DIRECT), CAIRN_EINVAL);
}

/* Every form 11.2 says a receiver drops, each from the vector with one thing changed. */
static void test_message_invalid(void **state)
{
	(void)state;
	static uint8_t good[FILE_DATA_MAX + 8], b[FILE_DATA_MAX + 8];
	size_t glen = mdvec_hex(V, "data", good, sizeof(good));
	struct file_msg p;
	size_t rl = 1 + 8 + 4 + 32 + 32 + 24 + 24 + 32; /* offset of relay_len */
	size_t relay_len = ((size_t)good[rl] << 8) | good[rl + 1];
	size_t nl = rl + 2 + relay_len; /* offset of name_len */
	/* every truncation, and one byte too many */
	for (size_t i = 0; i < glen; i++)
		assert_int_equal(file_msg_parse(good, i, &p), CAIRN_EINVAL);
	memcpy(b, good, glen);
	b[glen] = 'x';
	assert_int_equal(file_msg_parse(b, glen + 1, &p), CAIRN_EINVAL);
	/* version */
	memcpy(b, good, glen);
	b[0] = 2;
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	b[0] = 0;
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	/* chunks other than the class of the size: 0, 2, and a size whose class differs */
	uint8_t chunk_vals[][4] = {{0, 0, 0, 0}, {0, 0, 0, 2}, {0, 0, 0xff, 0xff}};
	for (size_t k = 0; k < 3; k++) {
		memcpy(b, good, glen);
		memcpy(b + 9, chunk_vals[k], 4);
		assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	}
	/* a size over 2^31 with the chunk count of 2^31: dropped; 2^31 itself is fine */
	memcpy(b, good, glen);
	uint64_t sz = CAIRN_FILE_SIZE_MAX;
	for (int i = 0; i < 8; i++)
		b[1 + i] = (uint8_t)(sz >> (56 - 8 * i));
	b[9] = 0, b[10] = (uint8_t)(FILE_CHUNKS_MAX >> 16), b[11] = (uint8_t)(FILE_CHUNKS_MAX >> 8),
	b[12] = (uint8_t)FILE_CHUNKS_MAX;
	assert_int_equal(file_msg_parse(b, glen, &p), 0);
	b[8] = 1; /* 2^31 + 1 */
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	/* a relay that does not parse */
	memcpy(b, good, glen);
	b[rl + 2] = 'x';
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	memcpy(b, good, glen);
	b[rl + 2 + 10] = 0; /* a NUL inside */
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	/* relay_len 0, and one that runs past the end */
	memcpy(b, good, glen);
	b[rl] = 0, b[rl + 1] = 0;
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	memcpy(b, good, glen);
	b[rl] = 0xff;
	assert_int_equal(file_msg_parse(b, glen, &p), CAIRN_EINVAL);
	/* an empty name (the message ends at the name's length) */
	memcpy(b, good, glen);
	b[nl] = 0;
	assert_int_equal(file_msg_parse(b, nl + 1, &p), CAIRN_EINVAL);
	/* a name that is not UTF-8: a lone continuation byte, an overlong '/', a surrogate, a
	 * truncated sequence */
	const char *bad_names[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "a\xe2\x82",
	                           "\xf8\x88\x80\x80\x80"};
	for (size_t k = 0; k < sizeof(bad_names) / sizeof(bad_names[0]); k++) {
		size_t n = strlen(bad_names[k]);
		memcpy(b, good, nl);
		b[nl] = (uint8_t)n;
		memcpy(b + nl + 1, bad_names[k], n);
		assert_int_equal(file_msg_parse(b, nl + 1 + n, &p), CAIRN_EINVAL);
	}
	/* UTF-8 names of up to 255 bytes are fine */
	const char *ok_name = "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x84.pdf";
	size_t n = strlen(ok_name);
	memcpy(b, good, nl);
	b[nl] = (uint8_t)n;
	memcpy(b + nl + 1, ok_name, n);
	assert_int_equal(file_msg_parse(b, nl + 1 + n, &p), 0);
	memcpy(b, good, nl);
	b[nl] = 255;
	memset(b + nl + 1, 'n', 255);
	assert_int_equal(file_msg_parse(b, nl + 1 + 255, &p), 0);
	/* the encoder refuses what the parser would drop */
	struct file_msg m;
	char relay[CAIRN_ADDRESS_MAX + 1], name[256];
	uint8_t out[FILE_DATA_MAX];
	size_t len;
	vector_msg(&m, relay, name);
	m.chunks = 2;
	assert_int_equal(file_msg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
	vector_msg(&m, relay, name);
	m.name_len = 0;
	assert_int_equal(file_msg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
	vector_msg(&m, relay, name);
	m.relay_len = 3;
	assert_int_equal(file_msg_encode(&m, out, sizeof(out), &len), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classes),         cmocka_unit_test(test_chunk),
	    cmocka_unit_test(test_stream),          cmocka_unit_test(test_message_vector),
	    cmocka_unit_test(test_message_invalid),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
