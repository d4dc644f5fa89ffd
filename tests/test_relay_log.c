/* SPDX-License-Identifier: MIT */
/*
 * Relay logging: one line per entry with a timestamp to the minute and the level, levels
 * filter, a file is created private and appended to, and log_reopen follows a rotation.
 */
#include <regex.h>
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

#include "cairn/error.h"
#include "log.h"

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

static void test_levels_parse(void **state)
{
	enum log_level l;
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_INFO);
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("INFO", &l), CAIRN_EINVAL);
	assert_int_equal(log_level_parse("", &l), CAIRN_EINVAL);
	assert_int_equal(log_level_parse("trace", &l), CAIRN_EINVAL);
}

static void test_file_format_filter_reopen(void **state)
{
	char dir[] = "/tmp/cairn-test-log-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64], rotated[64];
	snprintf(path, sizeof(path), "%s/relay.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/relay.log.1", dir);

	assert_int_equal(log_open(LOG_INFO, path), 0);
	assert_int_equal(log_get_level(), LOG_INFO);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	log_info("hello %d", 42);
	log_debug("hidden at info");
	log_msg(LOG_DEBUG, "hidden too");
	log_error("two\nlines");

	char text[4096];
	slurp(path, text, sizeof(text));
	regex_t re;
	assert_int_equal(
	    regcomp(&re,
	            "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}Z \\[info\\] hello 42\n"
	            "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}Z \\[error\\] two\\?lines\n$",
	            REG_EXTENDED),
	    0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fail_msg("unexpected log text:\n%s", text);
	regfree(&re);

	/* Rotation: the old file keeps what was written, the reopened one gets what follows. */
	assert_int_equal(rename(path, rotated), 0);
	log_warn("after rename, before reopen");
	log_reopen();
	log_warn("after reopen");
	slurp(rotated, text, sizeof(text));
	assert_non_null(strstr(text, "before reopen"));
	assert_null(strstr(text, "after reopen"));
	slurp(path, text, sizeof(text));
	assert_non_null(strstr(text, "[warn] after reopen\n"));

	/* A long message is cut, still one line. */
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
	size_t n = slurp(path, text, sizeof(text));
	assert_int_equal(text[n - 1], '\n');
	assert_non_null(strstr(text, "xxx...\n"));

	log_close();
	assert_int_equal(log_open(LOG_ERROR, NULL), 0);
	assert_int_equal(log_get_level(), LOG_ERROR);
	log_reopen(); /* on stderr: nothing to do */
	log_close();
	unlink(path);
	unlink(rotated);
	rmdir(dir);
}

static void test_unwritable_file(void **state)
{
	assert_int_equal(log_open(LOG_INFO, "/nonexistent-dir-cairn/relay.log"), CAIRN_EIO);
	log_close();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_parse),
	    cmocka_unit_test(test_file_format_filter_reopen),
	    cmocka_unit_test(test_unwritable_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
