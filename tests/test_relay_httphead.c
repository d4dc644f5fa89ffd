/* SPDX-License-Identifier: MIT */
/*
 * The WebSocket listener's request head (relay/httphead.c, PROTOCOL.md 7.2): the upgrade a
 * client sends is accepted whatever the case of header names and tokens; every way a head can
 * ask for something else gets a 404; every way it can fail to be HTTP, or be too long, is
 * malformed; and the Sec-WebSocket-Accept value is RFC 6455's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "httphead.h"

#define PATH "k3Jx9-wq_Tn2LmA7pQe0Vg"
#define KEY  "dGhlIHNhbXBsZSBub25jZQ=="

static enum httphead_result parse(const char *text, struct httphead_request *out)
{
	return httphead_parse((const uint8_t *)text, strlen(text), PATH, out);
}

/* A head made of the request line LINE and the headers HDRS (each ending in CRLF). */
static enum httphead_result parse_parts(const char *line, const char *hdrs)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), "%s\r\n%s\r\n", line, hdrs);
	struct httphead_request r;
	return parse(buf, &r);
}

#define UPGRADE_HDRS                                                                               \
	"Host: relay.example.org\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                 \
	"Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
#define GET_LINE "GET /" PATH " HTTP/1.1"

static void test_upgrade(void **state)
{
	(void)state;
	const char *head = GET_LINE "\r\n" UPGRADE_HDRS "\r\n";
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s%s", head, "\x82\x80stream");
	struct httphead_request r;
	assert_int_equal(parse(buf, &r), HTTPHEAD_UPGRADE);
	assert_int_equal(r.head_len, strlen(head)); /* the stream's bytes are left alone */
	assert_string_equal(r.key, KEY);

	/* Every prefix is incomplete. */
	for (size_t n = 0; n < strlen(head); n++)
		assert_int_equal(httphead_parse((const uint8_t *)head, n, PATH, &r),
		                 HTTPHEAD_INCOMPLETE);
}

static void test_case_rules(void **state)
{
	(void)state;
	/* Header names and tokens in any case, token lists, spaces around values. */
	assert_int_equal(parse_parts(GET_LINE, "HOST: a\r\nupgrade:WebSocket\r\n"
	                                       "CONNECTION: keep-alive, UPGRADE\r\n"
	                                       "sec-websocket-key:  " KEY "  \r\n"
	                                       "SEC-WEBSOCKET-VERSION: 13\r\nX-Y:\r\n"),
	                 HTTPHEAD_UPGRADE);
	assert_int_equal(parse_parts(GET_LINE, "Host: a\r\nUpgrade: foo, websocket\r\n"
	                                       "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY
	                                       "\r\nSec-WebSocket-Version: 13\r\n"),
	                 HTTPHEAD_UPGRADE);
	/* The method and the path are case-sensitive. */
	assert_int_equal(parse_parts("get /" PATH " HTTP/1.1", UPGRADE_HDRS), HTTPHEAD_NOT_FOUND);
	assert_int_equal(parse_parts("GET /K3Jx9-wq_Tn2LmA7pQe0Vg HTTP/1.1", UPGRADE_HDRS),
	                 HTTPHEAD_NOT_FOUND);
}

static void test_not_found(void **state)
{
	(void)state;
	static const char *const lines[] = {
	    "GET / HTTP/1.1",
	    "GET /" PATH "x HTTP/1.1",
	    "GET /" PATH "/ HTTP/1.1",
	    "GET /" PATH "?a=b HTTP/1.1",
	    "GET //" PATH " HTTP/1.1",
	    "GET /k3Jx9-wq_Tn2LmA7pQe0V HTTP/1.1",
	    "POST /" PATH " HTTP/1.1",
	    "GET /" PATH " HTTP/1.0",
	    "GET http://a/" PATH " HTTP/1.1",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_int_equal(parse_parts(lines[i], UPGRADE_HDRS), HTTPHEAD_NOT_FOUND);

	/* The right path, without a valid version 13 upgrade. */
	static const char *const hdrs[] = {
	    "Host: a\r\n",
	    /* no Upgrade */
	    "Host: a\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\n",
	    /* Upgrade to something else */
	    "Host: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\n",
	    /* Connection without the Upgrade token */
	    "Host: a\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\n",
	    /* the token must be whole */
	    "Host: a\r\nUpgrade: websocketx\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\n",
	    /* version 8, or none, or twice */
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 8\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
	    /* a key of the wrong length, not base64, not 16 bytes, missing, twice */
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQ=\r\nSec-WebSocket-Version: 13\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZ!==\r\nSec-WebSocket-Version: 13\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQAA\r\nSec-WebSocket-Version: 13\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
	    "Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n",
	    /* no Host, or two */
	    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
	    "\r\nSec-WebSocket-Version: 13\r\n",
	    "Host: a\r\n" UPGRADE_HDRS,
	};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		assert_int_equal(parse_parts(GET_LINE, hdrs[i]), HTTPHEAD_NOT_FOUND);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const heads[] = {
	    "GET /" PATH " HTTP/1.1\n" UPGRADE_HDRS "\r\n",         /* bare LF */
	    "GET /" PATH " HTTP/1.1\r\nHost: a\rx\r\n\r\n",         /* bare CR */
	    "GET /" PATH " HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before colon */
	    "GET /" PATH " HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obsolete folding */
	    "GET /" PATH " HTTP/1.1\r\nHost a\r\n\r\n",             /* no colon */
	    "GET /" PATH " HTTP/1.1\r\n: a\r\n\r\n",                /* no name */
	    "GET /" PATH " HTTP/2.0\r\nHost: a\r\n\r\n",            /* not HTTP/1 */
	    "GET /" PATH " HTTP/1.1 \r\nHost: a\r\n\r\n",
	    "GET  /" PATH " HTTP/1.1\r\nHost: a\r\n\r\n",
	    "GET /" PATH "\r\nHost: a\r\n\r\n",              /* HTTP/0.9 */
	    "\r\nGET /" PATH " HTTP/1.1\r\nHost: a\r\n\r\n", /* empty request line */
	    "GET /" PATH " HTTP/1.1\r\nHost: a\x01\r\n\r\n", /* a control byte */
	    "GET /" PATH " HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
	    "\x16\x03\x01\x02\x01\x01\x02\x01\xfc\x03\x03\r\n\r\n", /* TLS where HTTP belongs */
	};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		struct httphead_request r;
		assert_int_equal(parse(heads[i], &r), HTTPHEAD_MALFORMED);
	}
	/* A NUL byte, which strlen would hide. */
	static const uint8_t nul[] = "GET / HTTP/1.1\r\nHost: \0a\r\n\r\n";
	struct httphead_request r;
	assert_int_equal(httphead_parse(nul, sizeof(nul) - 1, PATH, &r), HTTPHEAD_MALFORMED);
}

static void test_limits(void **state)
{
	(void)state;
	/* A head of exactly HTTPHEAD_MAX bytes passes; one byte more, or no end within the
	 * first HTTPHEAD_MAX bytes, is malformed. */
	static uint8_t buf[HTTPHEAD_MAX + 64];
	const char *start = GET_LINE "\r\n" UPGRADE_HDRS "X-Pad: ";
	size_t s = strlen(start);
	for (size_t extra = 0; extra <= 1; extra++) {
		size_t total = HTTPHEAD_MAX + extra;
		memcpy(buf, start, s);
		memset(buf + s, 'p', total - s - 4);
		memcpy(buf + total - 4, "\r\n\r\n", 4);
		struct httphead_request r;
		enum httphead_result want = extra == 0 ? HTTPHEAD_UPGRADE : HTTPHEAD_MALFORMED;
		assert_int_equal(httphead_parse(buf, total, PATH, &r), want);
		assert_int_equal(httphead_parse(buf, total - 1, PATH, &r),
		                 extra == 0 ? HTTPHEAD_INCOMPLETE : HTTPHEAD_MALFORMED);
	}
	memset(buf, 'a', sizeof(buf));
	struct httphead_request r;
	assert_int_equal(httphead_parse(buf, HTTPHEAD_MAX - 1, PATH, &r), HTTPHEAD_INCOMPLETE);
	assert_int_equal(httphead_parse(buf, HTTPHEAD_MAX, PATH, &r), HTTPHEAD_MALFORMED);
	/* An empty secret path never matches "GET /". */
	assert_int_equal(httphead_parse((const uint8_t *)"GET / HTTP/1.1\r\n" UPGRADE_HDRS "\r\n",
	                                strlen("GET / HTTP/1.1\r\n" UPGRADE_HDRS "\r\n"), "", &r),
	                 HTTPHEAD_NOT_FOUND);
}

static void test_accept(void **state)
{
	(void)state;
	/* RFC 6455 section 1.3's example. */
	char out[HTTPHEAD_ACCEPT_LEN + 1];
	assert_int_equal(httphead_accept(KEY, out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upgrade),   cmocka_unit_test(test_case_rules),
	    cmocka_unit_test(test_not_found), cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_limits),    cmocka_unit_test(test_accept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
