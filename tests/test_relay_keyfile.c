/* SPDX-License-Identifier: MIT */
/*
 * The relay key file: a generated key loads back to the same key pair, an existing key is
 * never replaced, and a key file others can read, or one that is not a key file, is refused
 * with a message that says what to do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cairn/error.h"
#include "keyfile.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || sodium_init() < 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-test-keyfile-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/" RELAY_KEY_FILE, f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

static void write_key_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_generate_load_round_trip(void **state)
{
	struct fixture *f = *state;
	char err[256];
	assert_int_equal(relay_key_generate(f->path, err, sizeof(err)), 0);

	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char text[256];
	size_t n = read_file(f->path, text, sizeof(text));
	assert_int_equal(n, strlen("cairn-relay-key-v1 ") + 43 + 1);
	assert_memory_equal(text, "cairn-relay-key-v1 ", 19);
	assert_int_equal(text[n - 1], '\n');

	uint8_t *priv = sodium_malloc(CAIRN_KEY_LEN);
	assert_non_null(priv);
	uint8_t pub[CAIRN_KEY_LEN], expect[CAIRN_KEY_LEN];
	assert_int_equal(relay_key_load(f->path, priv, pub, err, sizeof(err)), 0);
	assert_int_equal(crypto_scalarmult_base(expect, priv), 0);
	assert_memory_equal(pub, expect, CAIRN_KEY_LEN);

	/* The file holds the private key, in base64url without padding. */
	char b64[64];
	sodium_bin2base64(b64, sizeof(b64), priv, CAIRN_KEY_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_memory_equal(text + 19, b64, 43);

	/* Without its final newline (an editor may drop it) the file still loads. */
	uint8_t pub2[CAIRN_KEY_LEN];
	text[n - 1] = '\0';
	write_key_file(f->path, text, 0600);
	assert_int_equal(relay_key_load(f->path, priv, pub2, err, sizeof(err)), 0);
	assert_memory_equal(pub2, expect, CAIRN_KEY_LEN);

	/* Two relays never share a key. */
	uint8_t *other = sodium_malloc(CAIRN_KEY_LEN);
	assert_non_null(other);
	unlink(f->path);
	assert_int_equal(relay_key_generate(f->path, err, sizeof(err)), 0);
	assert_int_equal(relay_key_load(f->path, other, pub2, err, sizeof(err)), 0);
	assert_memory_not_equal(pub2, expect, CAIRN_KEY_LEN);
	sodium_free(other);
	sodium_free(priv);
}

static void test_readable_by_others_refused(void **state)
{
	struct fixture *f = *state;
	char err[512];
	assert_int_equal(relay_key_generate(f->path, err, sizeof(err)), 0);
	static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(f->path, modes[i]), 0);
		uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
		memset(priv, 0xAA, sizeof(priv));
		assert_int_equal(relay_key_load(f->path, priv, pub, err, sizeof(err)),
		                 CAIRN_EINVAL);
		char mode[32];
		snprintf(mode, sizeof(mode), "(mode %04o)", (unsigned)modes[i]);
		assert_non_null(strstr(err, "readable by group/others"));
		assert_non_null(strstr(err, mode));
		assert_non_null(strstr(err, "chmod 600"));
		assert_non_null(strstr(err, f->path));
		/* Nothing of the key is handed back. */
		uint8_t zero[CAIRN_KEY_LEN] = {0};
		assert_memory_equal(priv, zero, sizeof(zero));
	}
	/* Owner-only read (0400) is fine. */
	assert_int_equal(chmod(f->path, 0400), 0);
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
	assert_int_equal(relay_key_load(f->path, priv, pub, err, sizeof(err)), 0);
	sodium_memzero(priv, sizeof(priv));
}

static void test_malformed_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "",
	    "\n",
	    "cairn-relay-key-v1 \n",
	    /* wrong tag */
	    "cairn-relay-key-v2 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    /* one character short, one too many */
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    /* standard base64 alphabet, padding */
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A\n",
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    /* a second line */
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nx\n",
	    /* CRLF */
	    "cairn-relay-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
	    /* raw bytes, as another tool might write */
	    "0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_key_file(f->path, bad[i], 0600);
		uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
		char err[256];
		int rc = relay_key_load(f->path, priv, pub, err, sizeof(err));
		if (rc != CAIRN_EINVAL || strstr(err, "not a cairn-relay key file") == NULL)
			fail_msg("case %zu: rc %d, \"%s\"", i, rc, err);
	}
	/* A directory is not a key file either. */
	unlink(f->path);
	assert_int_equal(mkdir(f->path, 0700), 0);
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
	char err[256];
	assert_int_not_equal(relay_key_load(f->path, priv, pub, err, sizeof(err)), 0);
	assert_int_equal(rmdir(f->path), 0);
}

static void test_missing_file_says_init(void **state)
{
	struct fixture *f = *state;
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
	char err[256];
	unlink(f->path);
	assert_int_equal(relay_key_load(f->path, priv, pub, err, sizeof(err)), CAIRN_EIO);
	assert_non_null(strstr(err, "cairn-relay init"));
}

static void test_existing_file_not_overwritten(void **state)
{
	struct fixture *f = *state;
	char err[256], before[256], after[256];
	assert_int_equal(relay_key_generate(f->path, err, sizeof(err)), 0);
	read_file(f->path, before, sizeof(before));
	assert_int_equal(relay_key_generate(f->path, err, sizeof(err)), CAIRN_EIO);
	assert_non_null(strstr(err, "already exists"));
	read_file(f->path, after, sizeof(after));
	assert_string_equal(before, after);

	/* Not through a symlink either: the link's target is left alone. */
	char link[160];
	snprintf(link, sizeof(link), "%s/link.key", f->dir);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_not_equal(relay_key_generate(link, err, sizeof(err)), 0);
	read_file(f->path, after, sizeof(after));
	assert_string_equal(before, after);
	unlink(link);
	sodium_memzero(before, sizeof(before));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_generate_load_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readable_by_others_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file_says_init, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_existing_file_not_overwritten, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
