/* SPDX-License-Identifier: MIT */
/*
 * Showing untrusted text (termsafe.h): a strict UTF-8 decoder, one table of the characters a
 * terminal would act on rather than show, and the writers for the terminal, for JSON and for
 * a whole message with its header.
 */
#include <string.h>
#include <time.h>

#include "termsafe.h"

#define REPLACEMENT 0xFFFD

/*
 * Decodes one character at S (N > 0 bytes left) the way RFC 3629 allows: no overlong forms,
 * no surrogates, nothing above U+10FFFF. Returns its length and sets *CP, or returns 0 for a
 * byte that does not start a valid sequence (the caller replaces that one byte).
 */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t b = s[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	size_t len;
	uint32_t c;
	uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2;
		c = b & 0x1F;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3;
		c = b & 0x0F;
		if (b == 0xE0)
			lo = 0xA0; /* overlong */
		else if (b == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4;
		c = b & 0x07;
		if (b == 0xF0)
			lo = 0x90; /* overlong */
		else if (b == 0xF4)
			hi = 0x8F; /* beyond U+10FFFF */
	} else {
		return 0; /* a continuation byte, C0/C1 lead bytes, F5..FF */
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	c = (c << 6) | (s[1] & 0x3F);
	for (size_t i = 2; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	*cp = c;
	return len;
}

/* Characters a terminal acts on, or that reorder or break the text around them. */
static int is_hostile(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C ||
	       cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

void termsafe_write(FILE *f, const uint8_t *text, size_t len, const char *indent)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(text + i, len - i, &cp);
		if (n == 0) {
			fputs("\xEF\xBF\xBD", f); /* U+FFFD for the one byte */
			i++;
			continue;
		}
		if (cp == '\n' && indent != NULL) {
			fputc('\n', f);
			fputs(indent, f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (cp == '\r') {
			fputs("\\r", f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp < 0x20 || cp == 0x7F) {
			fprintf(f, "\\x%02x", (unsigned)cp);
		} else if (is_hostile(cp)) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(text + i, 1, n, f);
		}
		i += n;
	}
}

void termsafe_json(FILE *f, const uint8_t *text, size_t len)
{
	fputc('"', f);
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(text + i, len - i, &cp);
		if (n == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (cp == '\r')
			fputs("\\r", f);
		else if (is_hostile(cp))
			fprintf(f, "\\u%04x", (unsigned)cp);
		else
			fwrite(text + i, 1, n, f);
		i += n;
	}
	fputc('"', f);
}

/* "YYYY-MM-DD HH:MM" in local time, or "?" for a time that cannot be shown. */
static void local_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if ((int64_t)tt != t || localtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%d %H:%M", &tm) == 0)
		strcpy(out, "?");
}

void termsafe_message(FILE *f, const struct cairn_message *m)
{
	char when[32], theirs[32];
	/* Ours: when it arrived, or when we wrote it (our clock either way). */
	int64_t ours = m->outgoing || m->received_at == 0 ? m->sent_at : m->received_at;
	local_time(ours, when);
	fprintf(f, "%s %s ", when, m->outgoing ? "->" : "<-");
	termsafe_write(f, (const uint8_t *)m->contact, strlen(m->contact), NULL);
	/* Compared without subtracting: the sender's value may be anything. */
	int64_t r = m->received_at;
	if (!m->outgoing && r > 0 && (m->sent_at >= r + 60 || m->sent_at <= r - 60)) {
		local_time(m->sent_at, theirs);
		fprintf(f, " (sent %s by their clock)", theirs);
	}
	fputs(": ", f);
	termsafe_write(f, m->text, m->len, TERMSAFE_INDENT);
	fprintf(f, "%s\n", m->outgoing && m->received_at == 0 ? "  (not sent yet)" : "");
}
