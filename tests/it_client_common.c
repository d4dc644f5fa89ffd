/* SPDX-License-Identifier: MIT */
/* The shared part of the test_it_client programs (it_client_common.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cairn/address.h"
#include "cliproc.h"
#include "fakerelay.h"
#include "wrapper.h"
#include "it_common.h"
#include "it_client_common.h"

/* ---- per-test world: a directory of homes and a relay -------------------------------- */

static void relay_address(struct world *w)
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = w->relay.port};
	memcpy(a.key, w->relay.pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	assert_int_equal(cairn_address_format(&a, w->addr, sizeof(w->addr)), 0);
}

int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	strcpy(w->dir, "/tmp/cairn-itc-XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		snprintf(w->home[i], sizeof(w->home[i]), "%s/%c", w->dir, 'A' + i);
	if (relayproc_init(&w->relay, NULL) != 0 || relayproc_start(&w->relay) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", w->relay.dir);
		return -1;
	}
	relay_address(w);
	w->started = it_mono_s();
	*state = w;
	return 0;
}

int teardown(void **state)
{
	struct world *w = *state;
	if (w == NULL)
		return 0;
	print_message("%.1f s\n", it_mono_s() - w->started);
	relayproc_cleanup(&w->relay);
	relayproc_cleanup(&w->relay2);
	if (w->fake.pid > 0)
		fakerelay_stop(&w->fake);
	if (w->proxy > 0) {
		kill(w->proxy, SIGTERM);
		wait_status(w->proxy);
	}
	if (w->listener > 0) {
		kill(w->listener, SIGKILL);
		wait_status(w->listener);
	}
	test_rm_tree(w->dir);
	free(w);
	return 0;
}

int it_client_init(void)
{
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "cannot find the cairn command (%s); set CAIRN_CLI\n", cli_path);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* CAIRN_IT_ONLY=test_socks (a cmocka pattern) runs a subset while working on one. */
	if (getenv("CAIRN_IT_ONLY") != NULL)
		cmocka_set_test_filter(getenv("CAIRN_IT_ONLY"));
	return 0;
}

uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- snapshots of a home (wrong passphrase, bad invites) ------------------------------ */

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* DIR (a home: flat) as one buffer: each entry's name, mode and size, then its bytes, in name
 * order. Two equal snapshots mean nothing was added, removed or changed. */
char *snapshot(const char *dir, size_t *len)
{
	char *buf = NULL, *names[64];
	size_t cap = 0, n = 0;
	*len = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			assert_true(n < 64);
			names[n++] = strdup(de->d_name);
		}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char path[1024], head[600];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		struct stat sb;
		assert_int_equal(lstat(path, &sb), 0);
		int hl = snprintf(head, sizeof(head), "%s mode %o size %lld\n", names[i],
		                  (unsigned)sb.st_mode, (long long)sb.st_size);
		buf_append(&buf, len, &cap, head, (size_t)hl);
		if (S_ISREG(sb.st_mode)) {
			FILE *f = fopen(path, "rb");
			assert_non_null(f);
			char chunk[8192];
			size_t got;
			while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
				buf_append(&buf, len, &cap, chunk, got);
			fclose(f);
		}
		free(names[i]);
	}
	if (buf == NULL)
		buf_append(&buf, len, &cap, "", 0);
	return buf;
}

/* ---- invites taken apart (bad invites, bad relay lists) -------------------------------- */

size_t invite_decode(const char *text, uint8_t *bin, size_t cap)
{
	size_t len = 0;
	assert_int_equal(strncmp(text, "cairn-invite:", 13), 0);
	assert_int_equal(sodium_base642bin(bin, cap, text + 13, strlen(text + 13), NULL, &len, NULL,
	                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	return len;
}

char *invite_encode_text(const uint8_t *bin, size_t len)
{
	size_t cap = 13 + sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *s = malloc(cap);
	strcpy(s, "cairn-invite:");
	sodium_bin2base64(s + 13, cap - 13, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return s;
}

/* Accepting INVITE fails with a clear error and leaves HOME byte for byte as it was. */
void expect_rejected(const char *home, const char *invite, const char *why)
{
	size_t before_len, after_len;
	char *before = snapshot(home, &before_len);
	struct res r = cli_expect(1, CALL(.home = home), ARGS("accept", invite, "--name", "alice"));
	if (strstr(r.err, "invalid invite") == NULL)
		fail_msg("%s: stderr was: %s", why, r.err);
	res_free(&r);
	char *after = snapshot(home, &after_len);
	if (before_len != after_len || memcmp(before, after, before_len) != 0)
		fail_msg("%s: the home directory changed", why);
	free(before);
	free(after);
}
