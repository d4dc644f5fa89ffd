/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "wrapper.h"

size_t test_wrapper_argv(char **argv)
{
	static char copy[1024];
	static char *words[TEST_WRAPPER_MAX];
	static size_t nwords;
	static int parsed;
	if (!parsed) {
		parsed = 1;
		const char *env = getenv("CAIRN_TEST_WRAPPER");
		if (env != NULL && strlen(env) < sizeof(copy)) {
			strcpy(copy, env);
			for (char *save, *w = strtok_r(copy, " ", &save);
			     w != NULL && nwords < TEST_WRAPPER_MAX; w = strtok_r(NULL, " ", &save))
				words[nwords++] = w;
		}
	}
	memcpy(argv, words, nwords * sizeof(*argv));
	return nwords;
}
