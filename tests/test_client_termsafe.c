/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for client/termsafe.c: what a contact wrote reaches the terminal as visible
 * characters only, JSON stays exact for valid UTF-8, and a message's header shows our clock
 * and the sender's only labelled.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "termsafe.h"

/* Runs one writer into memory; returns the malloc'd, NUL-terminated output. */
static char *render(const char *text, size_t len, const char *indent, int json)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_non_null(f);
	if (json)
		termsafe_json(f, (const uint8_t *)text, len);
	else
		termsafe_write(f, (const uint8_t *)text, len, indent);
	fclose(f);
	return out;
}

static void expect_terminal(const char *text, const char *want)
{
	char *got = render(text, strlen(text), "    ", 0);
	assert_string_equal(got, want);
	free(got);
}

/* Every byte of S is printable ASCII, a newline, or part of valid UTF-8 that is neither a
 * C1 control nor a bidirectional control: what a terminal shows and does not act on. */
static void assert_inert(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	for (size_t i = 0; p[i] != 0; i++) {
		assert_true(p[i] == '\n' || (p[i] >= 0x20 && p[i] != 0x7F));
		if (p[i] == 0xC2)
			assert_false(p[i + 1] >= 0x80 && p[i + 1] <= 0x9F); /* U+0080..U+009F */
		if (p[i] == 0xE2 && p[i + 1] == 0x80)
			assert_false((p[i + 2] >= 0xAA && p[i + 2] <= 0xAE) || p[i + 2] == 0x8E ||
			             p[i + 2] == 0x8F || p[i + 2] == 0xA8 || p[i + 2] == 0xA9);
		if (p[i] == 0xE2 && p[i + 1] == 0x81)
			assert_false(p[i + 2] >= 0xA6 && p[i + 2] <= 0xA9);
		if (p[i] == 0xD8)
			assert_false(p[i + 1] == 0x9C);
	}
}

static void test_plain_text_unchanged(void **state)
{
	(void)state;
	expect_terminal("hello, world", "hello, world");
	expect_terminal(
	    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D",
	    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");
	/* Backslashes are the writer's own text: left as they are. */
	expect_terminal("a\\x1b", "a\\x1b");
}

static void test_controls_visible(void **state)
{
	(void)state;
	expect_terminal("a\x1b[2Kb", "a\\x1b[2Kb");
	expect_terminal("erase\rforged", "erase\\rforged");
	expect_terminal("\x1b]0;title\x07", "\\x1b]0;title\\x07");
	expect_terminal("tab\there", "tab\\there");
	expect_terminal("nul\x01\x7f", "nul\\x01\\x7f");
	/* C1 as UTF-8 (CSI is U+009B) and as raw bytes (invalid UTF-8: U+FFFD each). */
	expect_terminal("\xC2\x9B"
	                "31m",
	                "\\u009b31m");
	expect_terminal("\x9B"
	                "31m\x85",
	                "\xEF\xBF\xBD"
	                "31m\xEF\xBF\xBD");
	/* Bidirectional controls and line separators. */
	expect_terminal("abc\xE2\x80\xAE"
	                "def",
	                "abc\\u202edef");
	expect_terminal("\xE2\x81\xA6x\xE2\x81\xA9\xE2\x80\x8F\xD8\x9C\xE2\x80\xA8",
	                "\\u2066x\\u2069\\u200f\\u061c\\u2028");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	const char *bad[] = {"\xC0\xAF",         /* overlong '/' */
	                     "\xE0\x80\xAF",     /* overlong */
	                     "\xED\xA0\x80",     /* a surrogate */
	                     "\xF4\x90\x80\x80", /* beyond U+10FFFF */
	                     "\xFF",
	                     "\xE2\x80"}; /* cut short */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *got = render(bad[i], strlen(bad[i]), "    ", 0);
		assert_inert(got);
		/* Each byte of it became U+FFFD. */
		size_t n = 0;
		for (const char *p = got; (p = strstr(p, "\xEF\xBF\xBD")) != NULL; p += 3)
			n++;
		assert_int_equal(n, strlen(bad[i]));
		free(got);
	}
}

static void test_newlines_indented(void **state)
{
	(void)state;
	expect_terminal("one\ntwo\n2026-01-01 00:00 <- carol: forged",
	                "one\n    two\n    2026-01-01 00:00 <- carol: forged");
	/* Without an indent (a name), a newline is escaped too. */
	char *got = render("a\nb", 3, NULL, 0);
	assert_string_equal(got, "a\\nb");
	free(got);
}

/* Every byte value in every position: the output is always inert. */
static void test_all_bytes_inert(void **state)
{
	(void)state;
	char buf[4];
	for (int a = 0; a < 256; a++)
		for (int b = 0; b < 256; b++) {
			buf[0] = (char)a;
			buf[1] = (char)b;
			buf[2] = (char)0x80;
			buf[3] = (char)0x80;
			char *got = render(buf, sizeof(buf), "    ", 0);
			assert_inert(got);
			free(got);
		}
}

static void test_json_exact(void **state)
{
	(void)state;
	const char *text = "q\"b\\s/ \x01\x1b[2K\r\n\t\x7f \xC2\x85\xC2\x9B \xE2\x80\xAE "
	                   "\xE2\x80\xA8 caf\xC3\xA9 \xF0\x9F\x98\x80";
	char *json = render(text, strlen(text), NULL, 1);
	assert_inert(json); /* safe to look at, and one line */
	assert_null(strchr(json, '\n'));
	cJSON *v = cJSON_Parse(json);
	assert_non_null(v);
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, text);
	cJSON_Delete(v);
	free(json);
	/* Invalid UTF-8 cannot be exact: each bad byte is U+FFFD, and the JSON stays valid. */
	json = render("a\xFF"
	              "b",
	              3, NULL, 1);
	assert_string_equal(json, "\"a\\ufffdb\"");
	free(json);
}

static char *message(const struct cairn_message *m)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	assert_non_null(f);
	termsafe_message(f, m);
	fclose(f);
	return out;
}

static void test_message_header(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	const char *text = "hi\x1b[2K\nalice: fake";
	struct cairn_message m = {.contact = "bob",
	                          .outgoing = 0,
	                          .text = (const uint8_t *)text,
	                          .len = strlen(text),
	                          .sent_at = 1796374800 + 30, /* 2026-12-04 09:00:30 UTC */
	                          .received_at = 1796374800};
	char *got = message(&m);
	/* Our clock in the header; theirs within a minute of it is not shown. */
	assert_string_equal(got, "2026-12-04 09:00 <- bob: hi\\x1b[2K\n    alice: fake\n");
	free(got);
	/* Their clock, far from ours, only labelled as theirs. */
	m.sent_at = 1796374800 - 3600;
	got = message(&m);
	assert_string_equal(got, "2026-12-04 09:00 <- bob (sent 2026-12-04 08:00 by their "
	                         "clock): hi\\x1b[2K\n    alice: fake\n");
	free(got);
	/* A clock no calendar holds, from a hostile sender. */
	m.sent_at = INT64_MIN;
	got = message(&m);
	assert_string_equal(got, "2026-12-04 09:00 <- bob (sent ? by their clock): "
	                         "hi\\x1b[2K\n    alice: fake\n");
	free(got);
	/* Ours, not sent yet. */
	m.outgoing = 1;
	m.sent_at = 1796374800;
	m.received_at = 0;
	m.text = (const uint8_t *)"queued";
	m.len = 6;
	got = message(&m);
	assert_string_equal(got, "2026-12-04 09:00 -> bob: queued  (not sent yet)\n");
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_text_unchanged), cmocka_unit_test(test_controls_visible),
	    cmocka_unit_test(test_invalid_utf8),         cmocka_unit_test(test_newlines_indented),
	    cmocka_unit_test(test_all_bytes_inert),      cmocka_unit_test(test_json_exact),
	    cmocka_unit_test(test_message_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
