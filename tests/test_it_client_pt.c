/* SPDX-License-Identifier: MIT */
/*
 * Reaching a relay through pluggable transports and proxies (docs/PROTOCOL.md 7.1, 7.3), with
 * the real programs: a relay running its own obfs4proxy server ([obfs4] listen), two
 * `cairn` homes that reach it only by its cairn+obfs4 address through the obfs4proxy each
 * launches for itself; and a recording SOCKS5 proxy (tests/tools/socksrec.c) showing that
 * every connection of a real home carries a username of its own (Tor isolation).
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cairn/address.h"
#include "cairn/cairn.h"
#include "cliproc.h"
#include "it_common.h"
#include "it_client_common.h"

/* Starts ARGV[0] with stdout piped back, and returns its first line that starts with PREFIX
 * (at most 30 s) in LINE. Returns the pid; the child dies with the test (PR_SET_PDEATHSIG).
 * With KEEP, the pipe stays open (*KEEP, the caller closes it): a Go program that writes to a
 * closed pipe dies of SIGPIPE. */
static pid_t spawn_line(const char *const *argv, const char *prefix, char *line, size_t cap,
                        int *keep)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	double deadline = it_mono_s() + 30;
	while (len + 1 < cap && it_mono_s() < deadline) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		char c;
		if (read(p[0], &c, 1) != 1)
			break;
		if (c != '\n') {
			line[len++] = c;
			continue;
		}
		line[len] = '\0';
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			break;
		len = 0;
	}
	line[len] = '\0';
	if (keep != NULL)
		*keep = p[0];
	else
		close(p[0]); /* these children write nothing more */
	return pid;
}

/* How many running obfs4proxy processes have their state under PREFIX (from their
 * environment: only ours can be read, and only ours can match); *PID (if not NULL) gets one. */
static int find_pt(const char *prefix, pid_t *pid)
{
	char want[512];
	snprintf(want, sizeof(want), "TOR_PT_STATE_LOCATION=%s", prefix);
	int n = 0;
	DIR *d = opendir("/proc");
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		char path[300], env[16384];
		snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, env, sizeof(env) - 1);
		close(fd);
		for (ssize_t i = 0; i < len; i += (ssize_t)strlen(env + i) + 1) {
			env[len] = '\0';
			if (strncmp(env + i, want, strlen(want)) == 0) {
				char stat[300], s[256] = "";
				snprintf(stat, sizeof(stat), "/proc/%s/stat", e->d_name);
				FILE *f = fopen(stat, "r");
				if (f != NULL) {
					if (fgets(s, sizeof(s), f) == NULL)
						s[0] = '\0';
					fclose(f);
				}
				if (strstr(s, ") Z ") == NULL) { /* a zombie is not running */
					n++;
					if (pid != NULL)
						*pid = (pid_t)atoi(e->d_name);
				}
				break;
			}
		}
	}
	closedir(d);
	return n;
}

static int count_pt(const char *prefix)
{
	return find_pt(prefix, NULL);
}

/* Waits (at most 60 s) until PORT on 127.0.0.1 accepts connections. */
static void wait_listening(uint16_t port)
{
	for (double end = it_mono_s() + 60; it_mono_s() < end; it_sleep_ms(50)) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return;
	}
	fail_msg("nothing listens on 127.0.0.1:%u", port);
}

/* ---- obfs4 end to end ---------------------------------------------------------------- */

/* The relay with [obfs4] on, as the operator would run it, and its obfs4 address as
 * `cairn-relay address --transport obfs4` prints it into LINE. */
static void obfs4_relay(struct world *w, char *line, size_t cap, uint16_t *obfs4_port)
{
	*obfs4_port = free_port();
	char conf[128];
	snprintf(conf, sizeof(conf), "[obfs4]\nlisten = 127.0.0.1:%u\niat_mode = 1\n",
	         (unsigned)*obfs4_port);
	assert_int_equal(relayproc_init(&w->relay2, conf), 0);
	assert_int_equal(relayproc_start(&w->relay2), 0);
	wait_listening(*obfs4_port);
	char data[300];
	snprintf(data, sizeof(data), "%s/data", w->relay2.dir);
	const char *const argv[] = {CAIRN_RELAY_BIN, "address",     "--data", data, "--config",
	                            w->relay2.conf,  "--transport", "obfs4",  NULL};
	pid_t pid = spawn_line(argv, "", line, cap, NULL);
	assert_int_equal(wait_status(pid), 0);
}

static void test_obfs4(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	char line[CAIRN_ADDRESS_MAX + 2];
	uint16_t obfs4_port;
	obfs4_relay(w, line, sizeof(line), &obfs4_port);
	struct cairn_address ob;
	if (cairn_address_parse(line, &ob) != 0)
		fail_msg("cairn-relay address printed no cairn+obfs4 address: '%s'", line);
	assert_int_equal(ob.transport, CAIRN_TRANSPORT_OBFS4);
	assert_int_equal(ob.obfs4_iat_mode, 1);
	assert_memory_equal(ob.key, w->relay2.pub, 32);
	assert_int_equal(ob.port, obfs4_port);

	/* The obfs4 port is not the relay's: a direct connection with the relay's key gets no
	 * handshake from it (obfs4proxy stays silent to whoever lacks the cert). */
	struct cairn_address direct = ob;
	direct.transport = CAIRN_TRANSPORT_DIRECT;
	char direct_text[CAIRN_ADDRESS_MAX + 1];
	assert_int_equal(cairn_address_format(&direct, direct_text, sizeof(direct_text)), 0);
	cli_check(0, CALL(.home = a), ARGS("init"));
	struct res r =
	    cli_run(CALL(.home = a), ARGS("--timeout", "3", "invite", "--relay", direct_text));
	assert_int_not_equal(r.status, 0);
	res_free(&r);
	test_rm_tree(a);

	/* Both homes reach the relay only by the obfs4 address: invite, accept, and messages
	 * both ways, each stored on the relay while its reader is away. */
	pair(a, b, line, NULL);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "through obfs4"));
	sync_expect(CALL(.home = a), 0, 1);
	struct convo c = read_convo(a, "bob");
	assert_int_equal(count_text(&c, 0, "through obfs4"), 1);
	convo_free(&c);

	/* Each home ran its own obfs4proxy, and none outlived its `cairn`. */
	char pt_dir[160], relay_pt[300];
	struct stat st;
	snprintf(pt_dir, sizeof(pt_dir), "%s/obfs4", a);
	snprintf(relay_pt, sizeof(relay_pt), "%s/data/obfs4", w->relay2.dir);
	assert_int_equal(stat(pt_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(count_pt(pt_dir), 0);
	assert_int_equal(count_pt(w->home[1]), 0);

	/* An obfs4proxy the user already runs (CAIRN_OBFS4_SOCKS) is used instead of a new one:
	 * it carries a send, and once it is gone the same send cannot connect. */
	char own_state[160], own_var[200], socks_var[160], cmethod[128];
	snprintf(own_state, sizeof(own_state), "%s/own-obfs4", w->dir);
	snprintf(own_var, sizeof(own_var), "TOR_PT_STATE_LOCATION=%s", own_state);
	const char *const own[] = {"env",
	                           "TOR_PT_MANAGED_TRANSPORT_VER=1",
	                           "TOR_PT_CLIENT_TRANSPORTS=obfs4",
	                           own_var,
	                           "obfs4proxy",
	                           NULL};
	int own_out = -1;
	w->proxy = spawn_line(own, "CMETHOD obfs4 socks5 ", cmethod, sizeof(cmethod), &own_out);
	if (strncmp(cmethod, "CMETHOD obfs4 socks5 ", 21) != 0)
		fail_msg("obfs4proxy announced no client listener: '%s'", cmethod);
	snprintf(socks_var, sizeof(socks_var), "CAIRN_OBFS4_SOCKS=%s", cmethod + 21);
	const char *const given[] = {socks_var, "CAIRN_OBFS4PROXY=/nonexistent", NULL};
	cli_check(0, CALL(.home = b, .env = given), ARGS("send", "alice", "through the user's"));
	sync_expect(CALL(.home = a), 0, 1);
	kill(w->proxy, SIGTERM);
	wait_status(w->proxy);
	close(own_out);
	w->proxy = 0;
	cli_check(3, CALL(.home = b, .env = given), ARGS("--timeout", "5", "send", "alice", "x"));

	/* The relay's obfs4proxy is started again when it dies. */
	pid_t old = 0, now = 0;
	assert_int_equal(find_pt(relay_pt, &old), 1);
	assert_int_equal(kill(old, SIGKILL), 0);
	for (double end = it_mono_s() + 60; it_mono_s() < end; it_sleep_ms(100))
		if (find_pt(relay_pt, &now) == 1 && now != old)
			break;
	assert_int_not_equal(now, old);
	wait_listening(obfs4_port);
	cli_check(0, CALL(.home = b), ARGS("send", "alice", "after the restart"));
	sync_expect(CALL(.home = a), 0, 2); /* with the one queued when the user's was gone */

	/* Proof that obfs4 carried it: with the relay stopped, its obfs4proxy is gone too, and
	 * the home cannot reach its relay (the send is queued, exit 3). */
	assert_int_equal(relayproc_stop(&w->relay2, SIGTERM), 0);
	assert_int_equal(count_pt(relay_pt), 0);
	cli_check(3, CALL(.home = b), ARGS("--timeout", "5", "send", "alice", "relay gone"));
	assert_int_equal(count_pt(w->dir), 0);
}

/* A CAIRN_OBFS4PROXY that is not obfs4proxy: a clear failure, quickly, nothing left running;
 * in process, cairn_transport_error says why. */
static void test_obfs4_bad_program(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0];
	cli_check(0, CALL(.home = a), ARGS("init"));
	char text[CAIRN_ADDRESS_MAX + 1];
	struct cairn_address ob;
	assert_int_equal(cairn_address_parse(w->addr, &ob), 0);
	ob.transport = CAIRN_TRANSPORT_OBFS4;
	memset(ob.obfs4_cert, 0x41, sizeof(ob.obfs4_cert));
	ob.obfs4_cert[CAIRN_OBFS4_CERT_LEN - 1] = 0x40; /* canonical: low 4 bits zero */
	assert_int_equal(cairn_address_format(&ob, text, sizeof(text)), 0);
	static const char *const bad[] = {"CAIRN_OBFS4PROXY=/bin/false",
	                                  "CAIRN_OBFS4PROXY=/nonexistent"};
	for (size_t i = 0; i < 2; i++) {
		const char *const env[] = {bad[i], NULL};
		double t0 = it_mono_s();
		struct res r =
		    cli_run(CALL(.home = a, .env = env), ARGS("invite", "--relay", text));
		assert_int_not_equal(r.status, 0);
		assert_true(it_mono_s() - t0 < 20);
		res_free(&r);
	}
	assert_int_equal(count_pt(w->dir), 0);

	char home[128];
	snprintf(home, sizeof(home), "%s/inproc", w->dir);
	assert_int_equal(cairn_init_kdf(home, PASS, CAIRN_KDF_INTERACTIVE), 0);
	struct cairn *c = NULL;
	assert_int_equal(cairn_open(home, PASS, &c), 0);
	assert_null(cairn_transport_error(c));
	static const struct {
		const char *program, *why;
	} cases[] = {{"/bin/false", "exited before announcing"}, {"/nonexistent", "cannot start"}};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(setenv("CAIRN_OBFS4PROXY", cases[i].program, 1), 0);
		const char *relays[] = {text};
		char *invite = NULL;
		assert_int_equal(cairn_invite_create(c, relays, 1, "x", &invite), CAIRN_EPROXY);
		const char *why = cairn_transport_error(c);
		assert_non_null(why);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("%s: '%s' does not say '%s'", cases[i].program, why, cases[i].why);
	}
	unsetenv("CAIRN_OBFS4PROXY");
	/* Tor set: obfs4 is refused rather than sent around it. */
	assert_int_equal(cairn_set_socks(c, "127.0.0.1:9"), 0);
	const char *relays[] = {text};
	char *invite = NULL;
	assert_int_equal(cairn_invite_create(c, relays, 1, "x", &invite), CAIRN_ECONNECT);
	cairn_close(c);
	assert_int_equal(count_pt(w->dir), 0);
}

/* ---- SOCKS5: one username per connection ---------------------------------------------- */

static bool is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void test_isolation(void **state)
{
	struct world *w = *state;
	const char *a = w->home[0], *b = w->home[1];
	char log[128], port[16], proxy[32];
	snprintf(log, sizeof(log), "%s/socks.log", w->dir);
	const char *const argv[] = {CAIRN_SOCKSREC_BIN, "0", log, NULL};
	w->proxy = spawn_line(argv, "", port, sizeof(port), NULL);
	assert_true(atoi(port) > 0);
	snprintf(proxy, sizeof(proxy), "127.0.0.1:%s", port);

	/* Six commands (invite, accept, send, sync, send, sync), then a send and a sync more. */
	pair(a, b, w->addr, proxy);
	cli_check(0, CALL(.home = b, .socks = proxy), ARGS("send", "alice", "isolated"));
	sync_expect(CALL(.home = a, .socks = proxy), 0, 1);

	FILE *f = fopen(log, "r");
	assert_non_null(f);
	char names[256][40];
	size_t n = 0;
	while (n < 256 && fgets(names[n], sizeof(names[n]), f) != NULL) {
		names[n][strcspn(names[n], "\n")] = '\0';
		if (!is_hex32(names[n]))
			fail_msg("connection %zu: username '%s' is not 32 hex characters", n,
			         names[n]);
		for (size_t k = 0; k < n; k++)
			if (strcmp(names[k], names[n]) == 0)
				fail_msg("connections %zu and %zu share the username %s", k, n,
				         names[n]);
		n++;
	}
	fclose(f);
	print_message("%zu connections, %zu usernames\n", n, n);
	/* More connections than commands: some command opened two, and they differed. */
	assert_true(n > 8);
}

int main(void)
{
	if (it_client_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_obfs4, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_obfs4_bad_program, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
