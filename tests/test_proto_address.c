/* SPDX-License-Identifier: MIT */
/*
 * Relay addresses: valid forms parse and format back to their canonical text, a long list of
 * near misses is rejected with the output zeroed, the formatter refuses what the parser would,
 * and the address vectors of docs/PROTOCOL.md section 1 agree with the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/address.h"
#include "mdvec.h"

/* Keys used below: all zero, and 0x00..0x1f. */
#define KZ            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define KS            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
/* An obfs4 certificate (52 bytes, standard base64): canonical, with unused bits set, and in
 * the URL-safe alphabet (which obfs4 does not use). */
#define CERT          "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+w"
#define CERT_NONCANON "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+x"
#define CERT_URLSAFE  "yMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-w"
#define ONION56       "eaqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd"
#define ONION56_UPPER "EAQSEIZEEUTCOKBJFIVSYLJOF4YDCMRTGQ2TMNZYHE5DWPB5HY74YHQD"

static const uint8_t key_seq[CAIRN_KEY_LEN] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

struct valid_case {
	const char *text;
	enum cairn_host_type type;
	const char *host;
	uint16_t port;
	const char *canonical; /* formatter output; NULL means the same as TEXT */
};

static const struct valid_case valid[] = {
    {"cairn://" KS "@127.0.0.1:7443", CAIRN_HOST_IPV4, "127.0.0.1", 7443, NULL},
    {"cairn://" KS "@0.0.0.0:1", CAIRN_HOST_IPV4, "0.0.0.0", 1, NULL},
    {"cairn://" KS "@255.255.255.255:65535", CAIRN_HOST_IPV4, "255.255.255.255", 65535, NULL},
    {"cairn://" KS "@10.0.100.9:80", CAIRN_HOST_IPV4, "10.0.100.9", 80, NULL},
    {"cairn://" KS "@[::1]:7443", CAIRN_HOST_IPV6, "::1", 7443, NULL},
    {"cairn://" KS "@[2001:db8::1]:443", CAIRN_HOST_IPV6, "2001:db8::1", 443, NULL},
    {"cairn://" KS "@[2001:0DB8:0000:0000:0000:0000:0000:0001]:443", CAIRN_HOST_IPV6, "2001:db8::1",
     443, "cairn://" KS "@[2001:db8::1]:443"},
    {"cairn://" KS "@[::ffff:192.0.2.1]:9", CAIRN_HOST_IPV6, "::ffff:192.0.2.1", 9, NULL},
    {"cairn://" KS "@localhost:7443", CAIRN_HOST_NAME, "localhost", 7443, NULL},
    {"cairn://" KS "@relay.example.org:7443", CAIRN_HOST_NAME, "relay.example.org", 7443, NULL},
    {"cairn://" KS "@sub.domain.example.com:10", CAIRN_HOST_NAME, "sub.domain.example.com", 10,
     NULL},
    {"cairn://" KS "@Relay.Example.ORG:7443", CAIRN_HOST_NAME, "Relay.Example.ORG", 7443, NULL},
    {"cairn://" KS "@a-b.c0:1", CAIRN_HOST_NAME, "a-b.c0", 1, NULL},
    {"cairn://" KS "@1.2.3.x:1", CAIRN_HOST_NAME, "1.2.3.x", 1, NULL},
    {"cairn://" KS "@xn--bcher-kva.example:1", CAIRN_HOST_NAME, "xn--bcher-kva.example", 1, NULL},
    {"cairn://" KS "@" ONION56 ".onion:7443", CAIRN_HOST_ONION, ONION56 ".onion", 7443, NULL},
    {"cairn://" KS "@" ONION56_UPPER ".ONION:7443", CAIRN_HOST_ONION, ONION56 ".onion", 7443,
     "cairn://" KS "@" ONION56 ".onion:7443"},
};

static void check_valid(const struct valid_case *v)
{
	struct cairn_address a, b;
	if (cairn_address_parse(v->text, &a) != 0)
		fail_msg("rejected valid address %s", v->text);
	assert_memory_equal(a.key, key_seq, CAIRN_KEY_LEN);
	assert_int_equal(a.host_type, v->type);
	assert_string_equal(a.host, v->host);
	assert_int_equal(a.port, v->port);

	char text[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, v->canonical ? v->canonical : v->text);
	assert_int_equal(cairn_address_parse(text, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_valid(void **state)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		check_valid(&valid[i]);
}

static void test_canonical_key_endings(void **state)
{
	/* The last character carries 4 data bits and 2 zero bits: 16 of 64 characters fit. */
	const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char text[128];
	struct cairn_address a;
	for (int i = 0; i < 64; i++) {
		snprintf(text, sizeof(text),
		         "cairn://"
		         "%.42s%c@h:1",
		         KZ, alphabet[i]);
		int rc = cairn_address_parse(text, &a);
		if (i % 4 == 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(a.key[31], (uint8_t)(i >> 2));
		} else {
			assert_int_equal(rc, CAIRN_EADDRESS);
		}
	}
}

/* Builds "cairn://KS@" + N copies of C + SUFFIX + ":1" into BUF. */
static const char *long_host(char *buf, size_t cap, const char *prefix, char c, size_t n,
                             const char *suffix)
{
	int k = snprintf(buf, cap, "cairn://" KS "@%s", prefix);
	assert_true(k > 0 && (size_t)k + n + strlen(suffix) + 3 < cap);
	memset(buf + k, c, n);
	snprintf(buf + k + n, cap - (size_t)k - n, "%s:1", suffix);
	return buf;
}

static void test_length_boundaries(void **state)
{
	char buf[1024];
	struct cairn_address a;
	/* A 63-character label is fine, 64 is not. */
	assert_int_equal(cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 63, ".com"), &a),
	                 0);
	assert_int_equal(cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 64, ".com"), &a),
	                 CAIRN_EADDRESS);
	/* A 253-character name (labels of 63, 63, 63, 59 and 1) is the longest. */
	char name[300];
	memset(name, 'a', 253);
	name[63] = name[127] = name[191] = name[251] = '.';
	name[253] = '\0';
	snprintf(buf, sizeof(buf), "cairn://" KS "@%s:65535", name);
	assert_int_equal(cairn_address_parse(buf, &a), 0);
	assert_int_equal(strlen(a.host), 253);
	char text[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, buf);
	/* The longest valid address fits comfortably within CAIRN_ADDRESS_MAX. */
	assert_true(strlen(buf) <= CAIRN_ADDRESS_MAX);
	/* 254 characters (labels of 63, 63, 63, 60 and 1) is one too many. */
	memset(name, 'a', 254);
	name[63] = name[127] = name[191] = name[252] = '.';
	name[254] = '\0';
	snprintf(buf, sizeof(buf), "cairn://" KS "@%s:1", name);
	assert_int_equal(strlen(name), 254);
	assert_int_equal(cairn_address_parse(buf, &a), CAIRN_EADDRESS);
	/* Overlong input is rejected by length before anything else. */
	assert_int_equal(cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 400, ""), &a),
	                 CAIRN_EADDRESS);
	memset(buf, 'x', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	assert_int_equal(cairn_address_parse(buf, &a), CAIRN_EADDRESS);
	/* .onion with 55 and 57 characters. */
	assert_int_equal(
	    cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 56, ".onion"), &a), 0);
	assert_int_equal(a.host_type, CAIRN_HOST_ONION);
	assert_int_equal(
	    cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 55, ".onion"), &a),
	    CAIRN_EADDRESS);
	assert_int_equal(
	    cairn_address_parse(long_host(buf, sizeof(buf), "", 'a', 57, ".onion"), &a),
	    CAIRN_EADDRESS);
}

static const char *const invalid[] = {
    "",
    "cairn:",
    "cairn://",
    "cairn://" KS,
    "cairn://" KS "@",
    "cairn://" KS "@:",
    /* scheme */
    "http://" KS "@127.0.0.1:7443",
    "CAIRN://" KS "@127.0.0.1:7443",
    "Cairn://" KS "@127.0.0.1:7443",
    "cairn:/" KS "@127.0.0.1:7443",
    "cairn:" KS "@127.0.0.1:7443",
    "cairn:///" KS "@127.0.0.1:7443",
    "cairn//" KS "@127.0.0.1:7443",
    " cairn://" KS "@127.0.0.1:7443",
    /* key and '@' */
    "cairn://" KS "127.0.0.1:7443",
    "cairn://" KS "@@127.0.0.1:7443",
    "cairn://user@" KS "@127.0.0.1:7443",
    "cairn://@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh=@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd+h8@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd/h8@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd h8@127.0.0.1:7443",
    "cairn://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw\nHh8@127.0.0.1:7443",
    "cairn://" KZ "=@127.0.0.1:7443",
    /* IPv4 */
    "cairn://" KS "@01.2.3.4:7443",
    "cairn://" KS "@1.2.3.04:7443",
    "cairn://" KS "@1.2.00.4:7443",
    "cairn://" KS "@256.1.1.1:7443",
    "cairn://" KS "@1.2.3.256:7443",
    "cairn://" KS "@1.2.3.999:7443",
    "cairn://" KS "@1234.1.1.1:7443",
    "cairn://" KS "@1.2.3:7443",
    "cairn://" KS "@1.2.3.4.5:7443",
    "cairn://" KS "@1..2.3:7443",
    "cairn://" KS "@1.2.3.4.:7443",
    "cairn://" KS "@.1.2.3.4:7443",
    "cairn://" KS "@0x7f.0.0.1:7443",
    "cairn://" KS "@127.1:7443",
    "cairn://" KS "@2130706433:7443",
    "cairn://" KS "@-1.2.3.4:7443",
    "cairn://" KS "@+1.2.3.4:7443",
    /* IPv6 */
    "cairn://" KS "@::1:7443",
    "cairn://" KS "@2001:db8::1:443",
    "cairn://" KS "@[::g]:7443",
    "cairn://" KS "@[1:2:3:4:5:6:7:8:9]:7443",
    "cairn://" KS "@[1:2:3:4:5:6:7]:7443",
    "cairn://" KS "@[1::2::3]:7443",
    "cairn://" KS "@[]:7443",
    "cairn://" KS "@[::1]",
    "cairn://" KS "@[::1]:",
    "cairn://" KS "@[::1]x:7443",
    "cairn://" KS "@[::1]]:7443",
    "cairn://" KS "@[[::1]]:7443",
    "cairn://" KS "@[::1:7443",
    "cairn://" KS "@::1]:7443",
    "cairn://" KS "@[::1%eth0]:7443",
    "cairn://" KS "@[::1%25eth0]:7443",
    "cairn://" KS "@[127.0.0.1]:7443",
    "cairn://" KS "@[ ::1]:7443",
    "cairn://" KS "@[localhost]:7443",
    "cairn://" KS "@[0000:0000:0000:0000:0000:0000:0000:0000:0000]:7443",
    /* DNS names */
    "cairn://" KS "@-relay.example:7443",
    "cairn://" KS "@relay-.example:7443",
    "cairn://" KS "@relay.-example:7443",
    "cairn://" KS "@relay.example-:7443",
    "cairn://" KS "@relay..example:7443",
    "cairn://" KS "@.relay.example:7443",
    "cairn://" KS "@relay.example.:7443",
    "cairn://" KS "@relay_1.example:7443",
    "cairn://" KS "@relay example:7443",
    "cairn://" KS "@relay.example.123:7443",
    "cairn://" KS "@123:7443",
    "cairn://" KS "@a.0:7443",
    "cairn://" KS "@r\xc3\xa9lay.example:7443",
    "cairn://" KS "@relay.example\t:7443",
    "cairn://" KS "@relay*.example:7443",
    "cairn://" KS "@-:7443",
    "cairn://" KS "@.:7443",
    /* onion */
    "cairn://" KS "@onion:7443",
    "cairn://" KS "@.onion:7443",
    "cairn://" KS "@x.onion:7443",
    "cairn://" KS "@facebookcorewwwi.onion:7443",
    "cairn://" KS "@www." ONION56 ".onion:7443",
    "cairn://" KS "@" ONION56 ".www.onion:7443",
    "cairn://" KS "@" ONION56 ".onion.:7443",
    "cairn://" KS "@1aqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion:7443",
    "cairn://" KS "@8aqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion:7443",
    "cairn://" KS "@0aqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion:7443",
    "cairn://" KS "@-aqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion:7443",
    "cairn://" KS "@eaqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhq-.onion:7443",
    /* port */
    "cairn://" KS "@127.0.0.1:0",
    "cairn://" KS "@127.0.0.1:00",
    "cairn://" KS "@127.0.0.1:65536",
    "cairn://" KS "@127.0.0.1:99999",
    "cairn://" KS "@127.0.0.1:100000",
    "cairn://" KS "@127.0.0.1:07443",
    "cairn://" KS "@127.0.0.1:",
    "cairn://" KS "@127.0.0.1",
    "cairn://" KS "@relay.example",
    "cairn://" KS "@127.0.0.1:-1",
    "cairn://" KS "@127.0.0.1:+1",
    "cairn://" KS "@127.0.0.1:1a",
    "cairn://" KS "@127.0.0.1:0x10",
    "cairn://" KS "@127.0.0.1:7443:1",
    "cairn://" KS "@127.0.0.1::7443",
    "cairn://" KS "@127.0.0.1:18446744073709551617",
    /* trailing */
    "cairn://" KS "@127.0.0.1:7443/",
    "cairn://" KS "@127.0.0.1:7443/path",
    "cairn://" KS "@127.0.0.1:7443?q",
    "cairn://" KS "@127.0.0.1:7443#f",
    "cairn://" KS "@127.0.0.1:7443 ",
    "cairn://" KS "@127.0.0.1:7443\n",
    "cairn://" KS "@127.0.0.1: 7443",
    "cairn://" KS "@127.0.0.1 :7443",
    "cairn://" KS "@ 127.0.0.1:7443",
    "cairn://" KS "@[::1]:7443/",
    "cairn://" KS "@relay.example:7443@x",
    /* transports: the parameters exactly, and only where they belong */
    "cairn://" KS "@relay.example:443/path",
    "cairn://" KS "@relay.example:7443?cert=" CERT "&iat-mode=0",
    "cairn+http://" KS "@relay.example:443/path",
    "cairn+HTTPS://" KS "@relay.example:443/path",
    "cairn+https://" KS "@relay.example:443",
    "cairn+https://" KS "@relay.example:443/",
    "cairn+https://" KS "@relay.example:443//path",
    "cairn+https://" KS "@relay.example:443/a/b",
    "cairn+https://" KS "@relay.example:443/..",
    "cairn+https://" KS "@relay.example:443/.",
    "cairn+https://" KS "@relay.example:443/pa th",
    "cairn+https://" KS "@relay.example:443/pa%20th",
    "cairn+https://" KS "@relay.example:443/path?",
    "cairn+https://" KS "@relay.example:443/path?pin=",
    "cairn+https://" KS "@relay.example:443/path?pin=" KS "&x=1",
    "cairn+https://" KS "@relay.example:443/path?pin=" KS "#",
    "cairn+https://" KS "@relay.example:443/path?pin=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",
    "cairn+https://" KS "@relay.example:443/path?PIN=" KS,
    "cairn+https://" KS "@relay.example:443/path#pin=" KS,
    "cairn+https://" KS "@relay.example/path",
    "cairn+https://" KS "@relay.example:0443/path",
    "cairn+https://" KS "@relay.example:443/"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaa",
    "cairn+obfs4://" KS "@192.0.2.7:9443",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT,
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT "&iat-mode=3",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT "&iat-mode=00",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT "&iat-mode=",
    "cairn+obfs4://" KS "@192.0.2.7:9443?iat-mode=0&cert=" CERT,
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT "=&iat-mode=0",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT "A&iat-mode=0",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT_NONCANON "&iat-mode=0",
    "cairn+obfs4://" KS "@192.0.2.7:9443?cert=" CERT_URLSAFE "&iat-mode=0",
    "cairn+obfs4://" KS "@192.0.2.7:9443/path?cert=" CERT "&iat-mode=0",
};

static void test_invalid(void **state)
{
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct cairn_address a;
		memset(&a, 0xa5, sizeof(a));
		if (cairn_address_parse(invalid[i], &a) != CAIRN_EADDRESS)
			fail_msg("accepted invalid address #%zu: %s", i, invalid[i]);
		static const struct cairn_address zero;
		assert_memory_equal(&a, &zero, sizeof(a));
	}
	struct cairn_address a;
	assert_int_equal(cairn_address_parse(NULL, &a), CAIRN_EADDRESS);
}

static void test_format_rejects(void **state)
{
	struct cairn_address a;
	char text[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(cairn_address_parse("cairn://" KS "@relay.example:7443", &a), 0);
	struct cairn_address good = a;

	/* Buffer sizes: exactly the text plus its NUL, and one less. */
	size_t need = strlen("cairn://" KS "@relay.example:7443") + 1;
	assert_int_equal(cairn_address_format(&a, text, need), 0);
	assert_int_equal(cairn_address_format(&a, text, need - 1), CAIRN_ENOBUFS);
	assert_int_equal(cairn_address_format(&a, text, 0), CAIRN_ENOBUFS);

	a.port = 0;
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), CAIRN_EINVAL);
	static const struct {
		enum cairn_host_type type;
		const char *host;
	} bad[] = {
	    {CAIRN_HOST_NAME, "1.2.3.4"},
	    {CAIRN_HOST_NAME, ONION56 ".onion"},
	    {CAIRN_HOST_NAME, "bad_name"},
	    {CAIRN_HOST_NAME, ""},
	    {CAIRN_HOST_IPV4, "01.2.3.4"},
	    {CAIRN_HOST_IPV4, "relay.example"},
	    {CAIRN_HOST_IPV6, "1.2.3.4"},
	    {CAIRN_HOST_IPV6, "[::1]"},
	    {CAIRN_HOST_IPV6, "::1%lo"},
	    {CAIRN_HOST_ONION, "relay.example"},
	    {CAIRN_HOST_ONION, "a." ONION56 ".onion"},
	    {(enum cairn_host_type)0, "relay.example"},
	    {(enum cairn_host_type)99, "relay.example"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = good;
		a.host_type = bad[i].type;
		snprintf(a.host, sizeof(a.host), "%s", bad[i].host);
		if (cairn_address_format(&a, text, sizeof(text)) != CAIRN_EINVAL)
			fail_msg("formatted invalid host #%zu: %s", i, bad[i].host);
		assert_string_equal(text, "");
	}
	/* A host without its terminating NUL. */
	a = good;
	memset(a.host, 'a', sizeof(a.host));
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), CAIRN_EINVAL);

	/* The formatter normalises what it can without changing meaning. */
	a = good;
	a.host_type = CAIRN_HOST_IPV6;
	snprintf(a.host, sizeof(a.host), "2001:DB8:0::1");
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, "cairn://" KS "@[2001:db8::1]:7443");
	a.host_type = CAIRN_HOST_ONION;
	snprintf(a.host, sizeof(a.host), "%s", ONION56_UPPER ".onion");
	assert_int_equal(cairn_address_format(&a, text, sizeof(text)), 0);
	assert_string_equal(text, "cairn://" KS "@" ONION56 ".onion:7443");
}

static enum cairn_host_type type_named(const char *name)
{
	static const struct {
		const char *name;
		enum cairn_host_type type;
	} types[] = {
	    {"ipv4", CAIRN_HOST_IPV4},
	    {"ipv6", CAIRN_HOST_IPV6},
	    {"name", CAIRN_HOST_NAME},
	    {"onion", CAIRN_HOST_ONION},
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i].name, name) == 0)
			return types[i].type;
	fail_msg("unknown host_type %s", name);
	return (enum cairn_host_type)0;
}

static void test_vectors(void **state)
{
	static const char *const names[] = {"address/ipv4",   "address/ipv6",  "address/hostname",
	                                    "address/onion",  "address/https", "address/https-pin",
	                                    "address/obfs4"};
	/* The first four are direct and say nothing of a transport. */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cairn_address fields, parsed;
		memset(&fields, 0, sizeof(fields));
		assert_int_equal(mdvec_hex(names[i], "key", fields.key, sizeof(fields.key)),
		                 CAIRN_KEY_LEN);
		fields.host_type = type_named(mdvec_str(names[i], "host_type"));
		snprintf(fields.host, sizeof(fields.host), "%s", mdvec_str(names[i], "host"));
		fields.port = (uint16_t)strtoul(mdvec_str(names[i], "port"), NULL, 10);
		if (i >= 4 && strcmp(mdvec_str(names[i], "transport"), "https") == 0) {
			fields.transport = CAIRN_TRANSPORT_HTTPS;
			snprintf(fields.path, sizeof(fields.path), "%s", mdvec_str(names[i], "path"));
			if (strcmp(names[i], "address/https-pin") == 0) {
				fields.has_pin = 1;
				assert_int_equal(mdvec_hex(names[i], "pin", fields.pin, CAIRN_PIN_LEN),
				                 CAIRN_PIN_LEN);
			}
		} else if (i >= 4) {
			assert_string_equal(mdvec_str(names[i], "transport"), "obfs4");
			fields.transport = CAIRN_TRANSPORT_OBFS4;
			assert_int_equal(mdvec_hex(names[i], "cert", fields.obfs4_cert,
			                           CAIRN_OBFS4_CERT_LEN),
			                 CAIRN_OBFS4_CERT_LEN);
			fields.obfs4_iat_mode =
			    (uint8_t)strtoul(mdvec_str(names[i], "iat_mode"), NULL, 10);
		}

		char text[CAIRN_ADDRESS_MAX + 1];
		assert_int_equal(cairn_address_format(&fields, text, sizeof(text)), 0);
		assert_string_equal(text, mdvec_str(names[i], "text"));
		assert_int_equal(cairn_address_parse(mdvec_str(names[i], "text"), &parsed), 0);
		assert_memory_equal(&parsed, &fields, sizeof(fields));
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_canonical_key_endings),
	    cmocka_unit_test(test_length_boundaries),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_format_rejects),
	    cmocka_unit_test(test_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
