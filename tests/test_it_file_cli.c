/* SPDX-License-Identifier: MIT */
/*
 * Files through the real `cairn` and `cairn-relay` (docs/PROTOCOL.md section 11): a 20 MiB file
 * sent and fetched bit-identical, `cairn files --json`, the conversation's lines on both sides;
 * the sender SIGKILLed mid-upload and the receiver SIGKILLed mid-download, each re-run
 * resuming (its first progress line is past zero) and the file arriving whole; the size
 * limit. Groups: test_client_file.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <sodium.h>

#include "cliproc.h"
#include "it_client_common.h"
#include "it_group_cli_common.h"

#define BIG   (20u * 1024 * 1024 + 12345) /* not a multiple of a chunk */
#define KILLS (6u * 1024 * 1024 + 777)    /* the files of the SIGKILL tests */

/* A file of LEN random bytes at PATH. */
static void make_file(const char *path, size_t len)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	randombytes_buf(b, len);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(b);
}

static void same_files(const char *a, const char *b)
{
	size_t la = 0, lb = 0;
	char *x = NULL, *y = NULL;
	FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
	assert_non_null(f);
	assert_non_null(g);
	struct stat sa, sb;
	assert_int_equal(fstat(fileno(f), &sa), 0);
	assert_int_equal(fstat(fileno(g), &sb), 0);
	assert_int_equal(sa.st_size, sb.st_size);
	la = (size_t)sa.st_size;
	lb = (size_t)sb.st_size;
	x = malloc(la + 1);
	y = malloc(lb + 1);
	assert_int_equal(fread(x, 1, la, f), la);
	assert_int_equal(fread(y, 1, lb, g), lb);
	assert_memory_equal(x, y, la);
	fclose(f);
	fclose(g);
	free(x);
	free(y);
}

/* The id of the only file HOME's `files --json` lists with STATE (fails otherwise), and its
 * name into NAME. */
static void file_id(const char *home, const char *state, char id[33], char *name, size_t cap)
{
	struct res r = cli_expect(0, CALL(.home = home), ARGS("files", "--json"));
	int found = 0;
	for (char *line = strtok(r.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		cJSON *o = cJSON_Parse(line);
		assert_non_null(o);
		cJSON *s = cJSON_GetObjectItem(o, "state"), *i = cJSON_GetObjectItem(o, "id"),
		      *n = cJSON_GetObjectItem(o, "name");
		assert_true(cJSON_IsString(s) && cJSON_IsString(i) && cJSON_IsString(n));
		assert_non_null(cJSON_GetObjectItem(o, "size"));
		assert_non_null(cJSON_GetObjectItem(o, "conversation"));
		if (strcmp(s->valuestring, state) == 0) {
			found++;
			snprintf(id, 33, "%s", i->valuestring);
			if (name != NULL)
				snprintf(name, cap, "%s", n->valuestring);
		}
		cJSON_Delete(o);
	}
	res_free(&r);
	assert_int_equal(found, 1);
}

/* Runs ARGS for HOME with --json progress on a pipe; SIGKILLs it once a progress line says
 * more than a third is done. Returns whether it was killed (else it ended first). */
static int kill_at_third(const char *home, const char *const *args)
{
	int out = -1;
	pid_t pid = cli_spawn_out(CALL(.home = home), args, &out, NULL);
	FILE *f = fdopen(out, "r");
	assert_non_null(f);
	char line[512];
	int killed = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long done, total;
		if (sscanf(line, "{\"event\":\"progress\",\"bytes\":%llu,\"total\":%llu", &done,
		           &total) == 2 &&
		    done * 3 > total && done < total) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
	}
	fclose(f);
	int st = wait_status(pid);
	if (killed)
		assert_int_equal(st, 128 + SIGKILL);
	return killed;
}

/* The first progress line of a --json run's output: its bytes. */
static unsigned long long first_progress(const char *out)
{
	unsigned long long done = 0, total = 0;
	const char *p = strstr(out, "{\"event\":\"progress\"");
	assert_non_null(p);
	assert_int_equal(
	    sscanf(p, "{\"event\":\"progress\",\"bytes\":%llu,\"total\":%llu", &done, &total), 2);
	return done;
}

static void test_big_file(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	char src[160], dst[160];
	snprintf(src, sizeof(src), "%s/evidence.bin", w->dir);
	snprintf(dst, sizeof(dst), "%s/got.bin", w->dir);
	make_file(src, BIG);
	/* usage errors: exit 2 with a hint */
	const char *const *usage[] = {
	    ARGS("send", "bob", "--file"),          ARGS("send", "--file", src),
	    ARGS("send", "bob", "x", "--file", src), ARGS("files", "get"),
	    ARGS("files", "get", "zz"),             ARGS("files", "get", "abcd", "--max-size", "x"),
	    ARGS("files", "bogus"),                 ARGS("files", "get", "a", "b"),
	};
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		struct res u = cli_expect(2, CALL(.home = a), usage[i]);
		assert_true(u.errlen > 0);
		res_free(&u);
	}
	/* a file that is not there, a conversation that is not there */
	cli_check(1, CALL(.home = a), ARGS("send", "bob", "--file", "/nonexistent/x"));
	cli_check(1, CALL(.home = a), ARGS("send", "nobody", "--file", src));
	struct res r = cli_expect(0, CALL(.home = a), ARGS("send", "bob", "--file", src, "--json"));
	assert_non_null(strstr(r.out, "{\"event\":\"progress\""));
	assert_non_null(strstr(r.out, "{\"event\":\"done\""));
	res_free(&r);
	char id[33], name[64];
	file_id(a, "sent", id, name, sizeof(name));
	assert_string_equal(name, "evidence.bin");
	sync_expect(CALL(.home = b), 0, 1);
	char id2[33];
	file_id(b, "offered", id2, name, sizeof(name));
	assert_string_equal(id, id2);
	assert_string_equal(name, "evidence.bin");
	r = cli_expect(0, CALL(.home = b), ARGS("files", "get", id, "--output", dst, "--json"));
	assert_non_null(strstr(r.out, "{\"event\":\"done\""));
	res_free(&r);
	same_files(src, dst);
	file_id(b, "received", id2, NULL, 0);
	/* a second get writes nothing and succeeds; the output is never replaced */
	cli_check(0, CALL(.home = b), ARGS("files", "get", id, "--output", dst));
	/* over the size limit without --yes and without a terminal: refused, before anything */
	char dst2[160];
	snprintf(dst2, sizeof(dst2), "%s/got.2", w->dir);
	r = cli_expect(1, CALL(.home = b),
	               ARGS("files", "get", id, "--output", dst2, "--max-size", "1M"));
	assert_non_null(strstr(r.err, "--yes"));
	res_free(&r);
	assert_int_equal(access(dst2, F_OK), -1);
	/* both conversations show the file */
	struct convo cb = read_convo(b, "alice"), ca = read_convo(a, "bob");
	int in = 0, out = 0;
	for (size_t i = 0; i < cb.n; i++)
		in += !cb.m[i].out && strstr(cb.m[i].text, "evidence.bin") != NULL;
	for (size_t i = 0; i < ca.n; i++)
		out += ca.m[i].out && strstr(ca.m[i].text, "file sent: evidence.bin") != NULL;
	assert_int_equal(in, 1);
	assert_int_equal(out, 1);
	convo_free(&cb);
	convo_free(&ca);
	/* the home holds no copy of the file: the sender's spool went with the upload */
	char spool[160];
	snprintf(spool, sizeof(spool), "%s/files", a);
	struct stat sb;
	assert_int_equal(stat(spool, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
}

static void test_sender_killed(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	char src[160], dst[160];
	snprintf(src, sizeof(src), "%s/video.bin", w->dir);
	snprintf(dst, sizeof(dst), "%s/video.out", w->dir);
	make_file(src, KILLS);
	assert_true(kill_at_third(a, ARGS("send", "bob", "--file", src, "--json")));
	char id[33];
	file_id(a, "sending", id, NULL, 0);
	/* the same command again resumes past what the relay acknowledged */
	struct res r = cli_expect(0, CALL(.home = a), ARGS("send", "bob", "--file", src, "--json"));
	assert_true(first_progress(r.out) * 3 > KILLS);
	res_free(&r);
	char id2[33];
	file_id(a, "sent", id2, NULL, 0);
	assert_string_equal(id, id2);
	sync_expect(CALL(.home = b), 0, 1);
	cli_check(0, CALL(.home = b), ARGS("files", "get", id, "--output", dst));
	same_files(src, dst);
}

static void test_receiver_killed(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	pair(a, b, w->addr, NULL);
	char src[160], dst[160];
	snprintf(src, sizeof(src), "%s/scan.bin", w->dir);
	snprintf(dst, sizeof(dst), "%s/scan.out", w->dir);
	make_file(src, KILLS);
	cli_check(0, CALL(.home = a), ARGS("send", "bob", "--file", src));
	sync_expect(CALL(.home = b), 0, 1);
	char id[33];
	file_id(b, "offered", id, NULL, 0);
	assert_true(kill_at_third(b, ARGS("files", "get", id, "--output", dst, "--json")));
	assert_int_equal(access(dst, F_OK), -1); /* nothing shown before it is whole */
	file_id(b, "receiving", id, NULL, 0);
	struct res r =
	    cli_expect(0, CALL(.home = b), ARGS("files", "get", id, "--output", dst, "--json"));
	assert_true(first_progress(r.out) * 3 > KILLS);
	res_free(&r);
	same_files(src, dst);
	/* a 1:1 file's log is deleted once whole: fetching it again from a fresh record would
	 * find it gone; the record says received */
	file_id(b, "received", id, NULL, 0);
}

int main(void)
{
	if (group_cli_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_big_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sender_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_receiver_killed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
