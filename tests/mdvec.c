/* SPDX-License-Identifier: MIT */
/*
 * Reader for the "```vector NAME" blocks of docs/PROTOCOL.md (see mdvec.h). The file is read
 * once per process; lookups scan it linearly, which is plenty for a few dozen vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mdvec.h"

static char *spec;

static const char *spec_text(void)
{
	if (spec != NULL)
		return spec;
	const char *path = CAIRN_DOCS_DIR "/PROTOCOL.md";
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	spec = malloc((size_t)n + 1);
	assert_non_null(spec);
	assert_int_equal(fread(spec, 1, (size_t)n, f), (size_t)n);
	spec[n] = '\0';
	fclose(f);
	return spec;
}

const char *mdvec_str(const char *name, const char *key)
{
	static char value[70000];
	char opener[256];
	snprintf(opener, sizeof(opener), "```vector %s\n", name);
	const char *block = strstr(spec_text(), opener);
	if (block == NULL)
		fail_msg("docs/PROTOCOL.md has no vector '%s'", name);
	block += strlen(opener);
	const char *end = strstr(block, "```");
	size_t klen = strlen(key);
	for (const char *line = block; line != NULL && line < end;) {
		const char *eol = strchr(line, '\n');
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			const char *v = line + klen + 1;
			while (*v == ' ')
				v++;
			size_t vlen = (size_t)(eol - v);
			assert_true(vlen < sizeof(value));
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			return value;
		}
		line = eol ? eol + 1 : NULL;
	}
	fail_msg("vector '%s' has no key '%s'", name, key);
	return NULL;
}

size_t test_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t len = 0;
	if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL) != 0)
		fail_msg("bad hex or too long (cap %zu): %.60s", cap, hex);
	return len;
}

size_t mdvec_hex(const char *name, const char *key, uint8_t *out, size_t cap)
{
	return test_unhex(mdvec_str(name, key), out, cap);
}
