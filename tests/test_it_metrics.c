/* SPDX-License-Identifier: MIT */
/*
 * The relay's metrics end to end (issue 16, part 2): the real relay with [metrics] on, driven
 * by the test client (mailboxes, sends, a refused SEND, a subscription, acks, a failed
 * handshake), scraped: the figures moved as they should, the text is valid exposition format,
 * and it holds no mailbox id, no key and no client address. `cairn-relay status` prints the
 * same; a non-loopback listener is refused at start; a Unix socket is 0600 and removed at
 * exit; and local clients that send a huge or a slow request do not stall the relay.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_common.h"
#include "metrics_expo.h"
#include "wsclient.h"

#define SCRAPE_MAX (256 * 1024)

/* A socket connected to 127.0.0.1:PORT, or to the Unix socket PATH if PATH is set. */
static int metrics_dial(uint16_t port, const char *path)
{
	int fd;
	if (path != NULL) {
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads FD until the peer closes it or TIMEOUT_MS passes. Returns the bytes read, or -1 on
 * timeout. */
static ssize_t read_to_close(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;
	int64_t deadline = it_mono_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - it_mono_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0 || len + (size_t)n >= cap - 1) {
			if (n > 0)
				len += (size_t)n;
			buf[len] = '\0';
			return (ssize_t)len;
		}
		len += (size_t)n;
	}
}

/* GET /metrics: the body into BUF (NUL-terminated), or -1 if refused or not 200. */
static int scrape(uint16_t port, const char *path, char *buf, size_t cap)
{
	int fd = metrics_dial(port, path);
	if (fd < 0)
		return -1;
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	ssize_t n = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1
	                ? read_to_close(fd, buf, cap, 20000)
	                : -1;
	close(fd);
	if (n < 0 || strncmp(buf, "HTTP/1.0 200 OK\r\n", 17) != 0 ||
	    strstr(buf, "Content-Type: text/plain; version=0.0.4") == NULL)
		return -1;
	char *body = strstr(buf, "\r\n\r\n");
	if (body == NULL)
		return -1;
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return 0;
}

/* Scrapes until one succeeds (the listener may be busy with others), for up to 30 s. */
static void scrape_parse(uint16_t port, const char *path, char *buf, struct expo *e)
{
	int64_t deadline = it_mono_ms() + 30000;
	while (scrape(port, path, buf, SCRAPE_MAX) != 0) {
		assert_true(it_mono_ms() < deadline);
		it_sleep_ms(50);
	}
	expo_parse(buf, e);
}

static double get(const struct expo *e, const char *name, const char *labels)
{
	char full[128];
	snprintf(full, sizeof(full), "cairn_relay_%s", name);
	double v = expo_get(e, full, labels);
	if (v < 0)
		fail_msg("no sample %s{%s}", full, labels);
	return v;
}

/* Runs CMD (a shell command line of test paths) and returns its exit status, output in OUT. */
static int run_capture(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t len = fread(out, 1, cap - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void assert_absent(const char *text, const void *bytes, size_t len, const char *what)
{
	char enc[128];
	if (memmem(text, strlen(text), bytes, len) != NULL)
		fail_msg("the metrics hold a %s (raw)", what);
	sodium_bin2hex(enc, sizeof(enc), bytes, len);
	if (strcasestr(text, enc) != NULL)
		fail_msg("the metrics hold a %s (hex)", what);
	static const int variants[] = {
	    sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
	    sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
	for (size_t i = 0; i < 4; i++) {
		sodium_bin2base64(enc, sizeof(enc), bytes, len, variants[i]);
		/* Any 12 characters of it: a truncated id is an id too. */
		enc[12] = '\0';
		if (strstr(text, enc) != NULL)
			fail_msg("the metrics hold a %s (base64)", what);
	}
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

/* The relay of the running test: stopped and removed by teardown, also when it fails. */
static struct relayproc g_relay;

static int teardown(void **state)
{
	(void)state;
	if (g_relay.dir[0] != '\0')
		relayproc_cleanup(&g_relay);
	memset(&g_relay, 0, sizeof(g_relay));
	return 0;
}

static int start_with_metrics(struct relayproc *r, const char *limits, const char *listen)
{
	char text[1024];
	snprintf(text, sizeof(text), "%s\n[metrics]\nlisten = %s\n", limits, listen);
	return relayproc_init(r, text) == 0 && relayproc_start(r) == 0 ? 0 : -1;
}

static void status_cmd(const struct relayproc *r, char *cmd, size_t cap)
{
	snprintf(cmd, cap, "%s status --data %s/data --config %s 2>&1", CAIRN_RELAY_BIN, r->dir,
	         r->conf);
}

static void test_traffic_counted_nothing_identifying(void **state)
{
	(void)state;
	static char text[SCRAPE_MAX];
	static struct expo before, after;
	struct relayproc *rp = &g_relay;
	uint16_t mport = loopback_free_port();
	char listen[32];
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", mport);
	assert_int_equal(start_with_metrics(rp, "mailbox_max_envelopes = 2", listen), 0);
	scrape_parse(mport, NULL, text, &before);
	assert_true(get(&before, "mailboxes", "") == 0);

	struct tclient owner, sender;
	struct owner o;
	assert_int_equal(tclient_connect(&owner, rp->port, rp->pub), 0);
	assert_int_equal(tclient_connect(&sender, rp->port, rp->pub), 0);
	assert_int_equal(tclient_create(&owner, o.rid, o.sid, o.pk, o.sk), 0);
	assert_int_equal(it_send(&sender, o.sid, NULL, "one", 3), 0);
	assert_int_equal(it_send(&sender, o.sid, NULL, "two", 3), 0);
	assert_int_equal(it_send(&sender, o.sid, NULL, "three", 5), CAIRN_EQUOTA);
	assert_int_equal(tclient_auth(&owner, o.rid, o.sk), 0);
	assert_int_equal(it_simple(&owner, CAIRN_CMD_SUBSCRIBE, o.rid), 0);
	uint64_t ids[2];
	for (int i = 0; i < 2; i++) {
		struct cairn_msg env;
		assert_int_equal(tclient_recv(&owner, &env, 10000), 0);
		assert_int_equal(env.type, CAIRN_REPLY_ENVELOPE);
		ids[i] = env.envelope_id;
	}
	assert_int_equal(it_ack(&owner, o.rid, ids[0]), 0);
	assert_int_equal(it_ack(&owner, o.rid, ids[1]), 0);
	uint16_t ports[3] = {local_port(owner.fd), local_port(sender.fd), 0};

	/* A handshake that fails: random bytes of message 1's length. */
	struct tclient bad;
	assert_int_equal(tclient_dial(&bad, rp->port), 0);
	ports[2] = local_port(bad.fd);
	uint8_t junk[2 + 100];
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 0;
	junk[1] = 100;
	assert_int_equal(tclient_write_raw(&bad, junk, sizeof(junk)), 0);
	int64_t deadline = it_mono_ms() + 30000;
	do {
		assert_true(it_mono_ms() < deadline);
		it_sleep_ms(20);
		scrape_parse(mport, NULL, text, &after);
	} while (get(&after, "handshakes_failed_total", "") < 1);

	/* What moved, and by how much. */
	assert_true(get(&after, "handshakes_accepted_total", "") -
	                get(&before, "handshakes_accepted_total", "") >=
	            2);
	assert_true(get(&after, "handshakes_failed_total", "") == 1);
	assert_true(get(&after, "envelopes_accepted_total", "") == 2);
	assert_true(get(&after, "envelopes_delivered_total", "") >= 2);
	assert_true(get(&after, "envelopes_acknowledged_total", "") == 2);
	assert_true(get(&after, "requests_refused_total", "cause=\"quota\"") == 1);
	assert_true(get(&after, "requests_refused_total", "cause=\"denied\"") == 0);
	assert_true(get(&after, "requests_failed_total", "cause=\"storage\"") == 0);
	assert_true(get(&after, "mailboxes", "") == 1);
	assert_true(get(&after, "envelopes_stored", "") == 0);
	assert_true(get(&after, "connections", "transport=\"direct\"") >= 2);
	assert_true(get(&after, "connections", "transport=\"https\"") == 0);
	assert_true(get(&after, "commits_total", "") > get(&before, "commits_total", ""));
	assert_true(get(&after, "commit_duration_seconds_count", "") >=
	            get(&after, "commits_total", "") - 1);
	assert_true(get(&after, "disk_free_bytes", "") > 0);
	for (size_t i = 0; i < before.n; i++) {
		const struct expo_family *f = expo_family(&before, before.s[i].name);
		if (f != NULL && strcmp(f->type, "counter") == 0)
			assert_true(expo_get(&after, before.s[i].name, before.s[i].labels) >=
			            before.s[i].value);
	}

	/* Nothing that names a user, a mailbox, a key or a peer. */
	assert_absent(text, o.rid, sizeof(o.rid), "recipient id");
	assert_absent(text, o.sid, sizeof(o.sid), "sender id");
	assert_absent(text, o.pk, sizeof(o.pk), "mailbox key");
	assert_absent(text, rp->pub, sizeof(rp->pub), "relay key");
	assert_null(strstr(text, "127.0.0.1"));
	for (size_t i = 0; i < after.n; i++)
		for (size_t k = 0; k < 3; k++)
			if (after.s[i].value == ports[k])
				fail_msg("%s is a client's port", after.s[i].name);

	/* `cairn-relay status` prints the same figures. */
	char cmd[4096], out[4096];
	status_cmd(rp, cmd, sizeof(cmd));
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 0);
	fprintf(stderr, "%s", out);
	assert_non_null(strstr(out, "mailboxes          1\n"));
	assert_non_null(strstr(out, "envelopes          2 accepted"));
	assert_non_null(strstr(out, "2 acknowledged"));
	assert_non_null(strstr(out, "refused            quota 1\n"));
	assert_non_null(strstr(out, "failed             none\n"));
	assert_non_null(strstr(out, "handshakes"));
	tclient_close(&bad);
	tclient_close(&owner);
	tclient_close(&sender);

	/* Stopped: status says so and fails. */
	assert_int_equal(relayproc_stop(rp, SIGTERM), 0);
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no relay answers at 127.0.0.1:"));
	teardown(NULL);
}

/* Scrapes until connections{transport=TRANSPORT} is WANT, for up to 30 s. */
static void wait_connections(uint16_t mport, const char *transport, double want)
{
	static char text[SCRAPE_MAX];
	static struct expo e;
	char label[64];
	snprintf(label, sizeof(label), "transport=\"%s\"", transport);
	int64_t deadline = it_mono_ms() + 30000;
	for (;;) {
		scrape_parse(mport, NULL, text, &e);
		double v = get(&e, "connections", label);
		if (v == want)
			return;
		if (it_mono_ms() >= deadline)
			fail_msg("connections{%s} is %g, not %g", label, v, want);
		it_sleep_ms(50);
	}
}

/* A connection on the HTTPS listener counts as transport "https", and only there. */
static void test_https_transport(void **state)
{
	(void)state;
	struct relayproc *rp = &g_relay;
	uint16_t mport = loopback_free_port(), https_port;
	char extra[96];
	snprintf(extra, sizeof(extra), "[metrics]\nlisten = 127.0.0.1:%u\n", mport);
	assert_int_equal(
	    relayproc_start_https(rp, NULL, "k3Jx9-wq_Tn2LmA7pQe0Vg", extra, &https_port), 0);
	static struct wsc w;
	assert_int_equal(wsc_dial(&w, https_port), 0);
	wait_connections(mport, "https", 1);
	wait_connections(mport, "direct", 0);
	wsc_close(&w);
	wait_connections(mport, "https", 0);
	assert_int_equal(relayproc_stop(rp, SIGTERM), 0);
	teardown(NULL);
}

static void test_status_when_off(void **state)
{
	(void)state;
	struct relayproc *rp = &g_relay;
	assert_int_equal(relayproc_init(rp, NULL), 0);
	char cmd[4096], out[4096];
	status_cmd(rp, cmd, sizeof(cmd));
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "metrics are off: set [metrics] listen"));
	teardown(NULL);
}

static void test_non_loopback_refused_at_start(void **state)
{
	(void)state;
	static const char *const bad[] = {"0.0.0.0:9464", "[::]:9464", "192.0.2.1:9464"};
	for (size_t i = 0; i < 3; i++) {
		struct relayproc *rp = &g_relay;
		assert_int_equal(relayproc_init(rp, NULL), 0);
		FILE *f = fopen(rp->conf, "a");
		assert_non_null(f);
		fprintf(f, "[metrics]\nlisten = %s\n", bad[i]);
		fclose(f);
		char cmd[4096], out[4096];
		/* timeout: a relay that started anyway would otherwise hang the test. */
		snprintf(cmd, sizeof(cmd), "timeout 60 %s run --data %s/data --config %s 2>&1",
		         CAIRN_RELAY_BIN, rp->dir, rp->conf);
		assert_int_equal(run_capture(cmd, out, sizeof(out)), 1);
		assert_non_null(strstr(out, "[metrics] listen"));
		assert_non_null(strstr(out, "not a loopback address"));
		assert_null(strstr(out, "serving"));
		teardown(NULL);
	}
}

static void test_unix_socket(void **state)
{
	(void)state;
	static char text[SCRAPE_MAX];
	static struct expo e;
	char sock[128], listen[160];
	snprintf(sock, sizeof(sock), "/tmp/cairn-test-msock-%ld", (long)getpid());
	snprintf(listen, sizeof(listen), "unix:%s", sock);
	struct relayproc *rp = &g_relay;
	assert_int_equal(start_with_metrics(rp, "", listen), 0);
	struct stat st;
	/* The relay's port takes connections into its backlog from the bind on; the metrics
	 * listener comes a moment later. */
	int64_t deadline = it_mono_ms() + 30000;
	while (lstat(sock, &st) != 0 && it_mono_ms() < deadline)
		it_sleep_ms(20);
	assert_int_equal(lstat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	scrape_parse(0, sock, text, &e);
	assert_true(get(&e, "mailboxes", "") == 0);
	char cmd[4096], out[4096];
	status_cmd(rp, cmd, sizeof(cmd));
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "envelopes stored   0 (0 B)\n"));
	assert_int_equal(relayproc_stop(rp, SIGTERM), 0);
	assert_int_equal(lstat(sock, &st), -1);
	assert_int_equal(errno, ENOENT);
	teardown(NULL);
}

/* One PING on C answered within LIMIT_MS. */
static void ping_within(struct tclient *c, int64_t limit_ms)
{
	int64_t t0 = it_mono_ms();
	struct cairn_msg m = {.type = CAIRN_CMD_PING}, reply;
	assert_int_equal(tclient_call(c, &m, &reply), 0);
	int64_t took = it_mono_ms() - t0;
	if (took > limit_ms)
		fail_msg("a PING took %lld ms while metrics clients misbehaved", (long long)took);
}

/*
 * Local clients that hold metrics connections open (silent, or one byte at a time), or send
 * a head far over the bound: the relay goes on answering on its own port at once, closes
 * the oversized head, drops each slow one at its timeout, and serves a scrape afterwards.
 */
static void test_hostile_metrics_clients(void **state)
{
	(void)state;
	static char text[SCRAPE_MAX];
	static struct expo e;
	struct relayproc *rp = &g_relay;
	uint16_t mport = loopback_free_port();
	char listen[32];
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", mport);
	assert_int_equal(start_with_metrics(rp, "", listen), 0);
	struct tclient c;
	assert_int_equal(tclient_connect(&c, rp->port, rp->pub), 0);
	ping_within(&c, 10000);
	scrape_parse(mport, NULL, text, &e);
	/* The relay's descriptors at rest, with C open (the store has opened all its files). */
	long fds_before = relayproc_fds(rp);

	enum { SLOW = 24 };
	int slow[SLOW];
	for (int i = 0; i < SLOW; i++) {
		slow[i] = metrics_dial(mport, NULL);
		assert_true(slow[i] >= 0);
	}
	/* A head of 64 KiB that never ends: closed once past the bound, unanswered. */
	int huge = metrics_dial(mport, NULL);
	assert_true(huge >= 0);
	static char junk[65536];
	memset(junk, 'A', sizeof(junk));
	(void)!send(huge, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
	/* The slow ones trickle a request for a while, pings on the relay's port meanwhile. */
	static const char req[] = "GET /metrics HTTP/1.0\r\n";
	for (size_t k = 0; k < sizeof(req) - 1; k++) {
		for (int i = 0; i < SLOW; i++)
			(void)!send(slow[i], req + k, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		ping_within(&c, IT_ASAN ? 3000 : 1500);
		it_sleep_ms(100);
	}
	char buf[512];
	ssize_t n = read_to_close(huge, buf, sizeof(buf), 30000);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(huge);
	/* Each slow connection is closed by the relay (its timeout, or the cap at once). */
	for (int i = 0; i < SLOW; i++) {
		buf[0] = '\0';
		n = read_to_close(slow[i], buf, sizeof(buf), 30000);
		assert_true(n >= 0 || errno == ECONNRESET);
		assert_null(strstr(buf, "200 OK"));
		close(slow[i]);
	}
	ping_within(&c, IT_ASAN ? 3000 : 1500);
	scrape_parse(mport, NULL, text, &e);
	assert_true(get(&e, "connections", "transport=\"direct\"") == 1);
	/* Nothing held: the relay's descriptors are back where they were (the scrape's is
	 * closed by the time read_to_close saw the end). */
	int64_t deadline = it_mono_ms() + 20000;
	while (relayproc_fds(rp) > fds_before && it_mono_ms() < deadline)
		it_sleep_ms(50);
	if (relayproc_fds(rp) > fds_before)
		fail_msg("the relay holds %ld descriptors, %ld before", relayproc_fds(rp),
		         fds_before);
	tclient_close(&c);
	assert_int_equal(relayproc_stop(rp, SIGTERM), 0);
	teardown(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_traffic_counted_nothing_identifying, teardown),
	    cmocka_unit_test_teardown(test_https_transport, teardown),
	    cmocka_unit_test_teardown(test_status_when_off, teardown),
	    cmocka_unit_test_teardown(test_non_loopback_refused_at_start, teardown),
	    cmocka_unit_test_teardown(test_unix_socket, teardown),
	    cmocka_unit_test_teardown(test_hostile_metrics_clients, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
