/* SPDX-License-Identifier: MIT */
/*
 * Showing untrusted text: what a contact wrote reaches a terminal (or a JSON consumer) as
 * visible characters only. A message could otherwise carry escape sequences that erase or
 * rewrite lines, retitle the window or reorder text on the screen (bidirectional overrides),
 * or a line break followed by a forged header from someone else.
 *
 * For the terminal, every character that is not plain printable text becomes a visible
 * escape made of ASCII: C0 controls but newline, and DEL, as \xHH (\t and \r for tab and
 * carriage return); C1 controls (U+0080..U+009F), the bidirectional controls (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069) and the line and paragraph separators (U+2028,
 * U+2029) as \uHHHH; each byte that is not part of valid UTF-8 (raw 0x80..0xFF bytes, overlong
 * forms, surrogates, beyond U+10FFFF) as U+FFFD. Newlines are kept, each followed by an indent,
 * so that every line of a message starts under its header and none can pass for a header.
 */
#ifndef CAIRN_CLIENT_TERMSAFE_H
#define CAIRN_CLIENT_TERMSAFE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cairn/cairn.h"

/* The indent under a message header, for every line after a message's first. */
#define TERMSAFE_INDENT "    "

/*
 * Writes LEN bytes of untrusted TEXT (borrowed) to F as described above. With INDENT NULL a
 * newline is escaped too (\n), for text that must stay on one line (a name).
 */
void termsafe_write(FILE *f, const uint8_t *text, size_t len, const char *indent);

/*
 * Writes LEN bytes of TEXT to F as one JSON string, quotes included. Valid UTF-8 comes back
 * exactly from any JSON parser; every control character, C1 control, bidirectional control
 * and line separator is written as a \u escape (so the JSON itself is safe to look at on a
 * terminal), and each byte of invalid UTF-8 as \ufffd.
 */
void termsafe_json(FILE *f, const uint8_t *text, size_t len);

/*
 * Writes message M for people: one header line, then the text indented under it. The header
 * carries our own clock's time: when we received it, or when we wrote it (outgoing). The
 * sender's clock, which the sender sets, is shown only labelled as theirs, and only when it
 * differs from ours by a minute or more:
 *   2026-12-04 12:03 <- alice (sent 2026-12-04 11:40 by their clock): first line
 *       next line
 */
void termsafe_message(FILE *f, const struct cairn_message *m);

#endif
