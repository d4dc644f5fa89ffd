/* SPDX-License-Identifier: MIT */
/*
 * The fixtures of test_client_net (client_net_common.h): getaddrinfo wrapped, small socket
 * helpers, the relay and microsocks, and the forked fake servers. One program with
 * test_client_net.c (the tests), linked with -Wl,--wrap=getaddrinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/address.h"
#include "cairn/error.h"
#include "net.h"
#include "relayproc.h"
#include "socks5.h"
#include "client_net_common.h"

/* ---- getaddrinfo, wrapped (-Wl,--wrap=getaddrinfo): every name looked up is recorded ---- */

static char lookups[16][256];
int lookup_count;

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
	if (lookup_count < 16)
		snprintf(lookups[lookup_count], sizeof(lookups[0]), "%s", node ? node : "(null)");
	lookup_count++;
	return __real_getaddrinfo(node, service, hints, res);
}

bool looked_up(const char *name)
{
	for (int i = 0; i < lookup_count && i < 16; i++)
		if (strcmp(lookups[i], name) == 0)
			return true;
	return false;
}

/* ---- small helpers ---------------------------------------------------------------------- */

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A listening loopback socket on a kernel-chosen port. */
int listen_any(int family, uint16_t want_port, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(want_port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(want_port);
		len = sizeof(*s4);
	}
	int fd = socket(family, SOCK_STREAM, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                 : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* A loopback port with nothing listening on it. */
uint16_t closed_port(void)
{
	uint16_t port = 0;
	int fd = listen_any(AF_INET, 0, &port);
	assert_true(fd >= 0);
	close(fd);
	return port;
}

void make_addr(struct cairn_address *a, const uint8_t key[32], const char *host, uint16_t port)
{
	char b64[64], text[CAIRN_ADDRESS_MAX + 1];
	sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(text, sizeof(text), "cairn://%s@%s:%u", b64, host, (unsigned)port);
	assert_int_equal(cairn_address_parse(text, a), 0);
}

static bool read_n(int fd, uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* For the forked fakes only (sockets and pipes alike): a SIGPIPE ends just the child. */
static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Reads and drops until the peer closes. */
static void drain(int fd)
{
	uint8_t buf[512];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Copies bytes both ways between A and B until either side closes. */
void pump(int a, int b)
{
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	uint8_t buf[4096];
	for (;;) {
		if (poll(p, 2, 10000) <= 0)
			return;
		for (int i = 0; i < 2; i++) {
			if (p[i].revents == 0)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0)
				return;
			write_all(p[1 - i].fd, buf, (size_t)n);
		}
	}
}

void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* PING on N; asserts the OK echoes the request id. */
void ping(struct cnet *n)
{
	uint32_t id = cnet_next_id(n);
	struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = id}, reply;
	assert_int_equal(cnet_queue(n, &m), 0);
	assert_int_equal(cnet_flush(n), 0);
	assert_int_equal(cnet_recv(n, &reply, 5000), 0);
	assert_int_equal(reply.type, CAIRN_REPLY_OK);
	assert_int_equal(reply.request_id, id);
}

/* ---- fixtures: the relay, and microsocks on demand -------------------------------------- */

struct world world;

int group_setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	/* A short handshake deadline so the wrong-key test is quick. */
	if (relayproc_init(&world.relay, "handshake_timeout = 2\n") != 0 ||
	    relayproc_start(&world.relay) != 0) {
		fprintf(stderr, "setup: cannot start the relay in %s\n", world.relay.dir);
		return -1;
	}
	*state = &world;
	return 0;
}

int group_teardown(void **state)
{
	reap(world.socks_pid);
	world.socks_pid = 0;
	relayproc_cleanup(&world.relay);
	return 0;
}

/* The microsocks binary: $CAIRN_MICROSOCKS, else the first one on $PATH. */
static bool find_microsocks(char *out, size_t cap)
{
	const char *env = getenv("CAIRN_MICROSOCKS");
	if (env != NULL && access(env, X_OK) == 0) {
		snprintf(out, cap, "%s", env);
		return true;
	}
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/microsocks", d);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* Starts microsocks once, on a free loopback port. A missing binary fails the test loudly:
 * CI installs it with scripts/install-deps.sh, and a skipped proxy test proves nothing. */
void need_microsocks(struct world *w)
{
	if (w->socks_pid > 0)
		return;
	char bin[512];
	if (!find_microsocks(bin, sizeof(bin)))
		fail_msg("microsocks not found on PATH (Debian package microsocks; run "
		         "scripts/install-deps.sh, or set CAIRN_MICROSOCKS)");
	w->socks_port = closed_port();
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)w->socks_port);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(bin, bin, "-i", "127.0.0.1", "-p", port, (char *)NULL);
		_exit(127);
	}
	w->socks_pid = pid;
	snprintf(w->socks, sizeof(w->socks), "127.0.0.1:%u", (unsigned)w->socks_port);
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->socks_port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			w->socks_pid = 0;
			fail_msg("microsocks (%s) exited at start", bin);
		}
		sleep_ms(10);
	}
	fail_msg("microsocks did not start listening on %s", w->socks);
}

/* ---- fake servers, each a forked child serving one connection ---------------------------- */

static void fake_socks(int c, int wfd, enum fake_mode mode)
{
	uint8_t rec[600];
	size_t len = 0;
	static const uint8_t ok_method[] = {5, 0}, no_method[] = {5, 0xff}, pass_method[] = {5, 2},
	                     auth_ok[] = {1, 0};
	if (!read_n(c, rec, 2) || !read_n(c, rec + 2, rec[1]))
		goto done;
	len = 2 + (size_t)rec[1];
	if (mode == FAKE_NO_METHOD) {
		write_all(c, no_method, sizeof(no_method));
		goto done;
	}
	if (mode == FAKE_AUTH_RECORD) {
		/* RFC 1929: VER ULEN USER PLEN PASS, all recorded. */
		write_all(c, pass_method, sizeof(pass_method));
		if (!read_n(c, rec + len, 2) || !read_n(c, rec + len + 2, rec[len + 1]))
			goto done;
		len += 2 + (size_t)rec[len + 1];
		if (!read_n(c, rec + len, 1) || !read_n(c, rec + len + 1, rec[len]))
			goto done;
		len += 1 + (size_t)rec[len];
		write_all(c, auth_ok, sizeof(auth_ok));
	} else {
		write_all(c, ok_method, sizeof(ok_method));
	}
	if (!read_n(c, rec + len, 4))
		goto done;
	len += 4;
	size_t alen = 0;
	uint8_t atyp = rec[len - 1];
	if (atyp == 1) {
		alen = 4;
	} else if (atyp == 4) {
		alen = 16;
	} else if (atyp == 3) {
		if (!read_n(c, rec + len, 1))
			goto done;
		alen = rec[len++];
	}
	if (!read_n(c, rec + len, alen + 2))
		goto done;
	len += alen + 2;

	static const uint8_t refuse[] = {5, 5, 0, 1, 0, 0, 0, 0, 0, 0},
	                     truncated[] = {5, 0, 0, 1, 127, 0},
	                     bad_version[] = {4, 0, 0, 1, 127, 0, 0, 1, 0, 80},
	                     bad_rsv[] = {5, 0, 1, 1, 127, 0, 0, 1, 0, 80},
	                     bad_atyp[] = {5, 0, 0, 9, 127, 0, 0, 1, 0, 80};
	switch (mode) {
	case FAKE_REFUSE:
		write_all(c, refuse, sizeof(refuse));
		break;
	case FAKE_TRUNCATED:
		write_all(c, truncated, sizeof(truncated));
		break;
	case FAKE_BAD_VERSION:
		write_all(c, bad_version, sizeof(bad_version));
		break;
	case FAKE_BAD_RSV:
		write_all(c, bad_rsv, sizeof(bad_rsv));
		break;
	case FAKE_BAD_ATYP:
		write_all(c, bad_atyp, sizeof(bad_atyp));
		break;
	default:
		break;
	}
done:
	write_all(wfd, rec, len);
}

static void fake_child(int lfd, int wfd, enum fake_mode mode)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(1);
	uint8_t buf[2 + 512];
	switch (mode) {
	case FAKE_SILENT:
		drain(c); /* until the client gives up and closes */
		break;
	case FAKE_HS_CLOSE:
		if (read_n(c, buf, 2))
			(void)read_n(c, buf + 2, (size_t)(buf[0] << 8 | buf[1]) & 511);
		break;
	case FAKE_HS_GARBAGE:
		if (read_n(c, buf, 2) && read_n(c, buf + 2, (size_t)(buf[0] << 8 | buf[1]) & 511)) {
			uint8_t hs2[2 + 49] = {0, 49};
			memset(hs2 + 2, 0x41, 49);
			write_all(c, hs2, sizeof(hs2));
			drain(c);
		}
		break;
	default:
		fake_socks(c, wfd, mode);
		break;
	}
	close(wfd);
	close(c);
	_exit(0);
}

void fake_start(struct fake *f, enum fake_mode mode)
{
	int pfd[2];
	int lfd = listen_any(AF_INET, 0, &f->port);
	assert_true(lfd >= 0);
	assert_int_equal(pipe(pfd), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		close(pfd[0]);
		fake_child(lfd, pfd[1], mode);
	}
	close(lfd);
	close(pfd[1]);
	f->rec_fd = pfd[0];
	snprintf(f->socks, sizeof(f->socks), "127.0.0.1:%u", (unsigned)f->port);
}

/* Collects what the fake recorded (waiting up to 5 s) and reaps it. Returns the length. */
size_t fake_finish(struct fake *f, uint8_t *rec, size_t cap)
{
	size_t len = 0;
	struct pollfd p = {.fd = f->rec_fd, .events = POLLIN};
	while (len < cap && poll(&p, 1, 5000) > 0) {
		ssize_t n = read(f->rec_fd, rec + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(f->rec_fd);
	reap(f->pid);
	return len;
}

/* Connects to TARGET through the fake proxy in MODE; returns cnet_connect's result and what
 * the proxy recorded. */
int via_fake(enum fake_mode mode, const struct cairn_address *target, int timeout_ms, uint8_t *rec,
             size_t cap, size_t *rec_len)
{
	struct fake f;
	fake_start(&f, mode);
	struct cnet_options opt = {.socks = f.socks, .connect_timeout_ms = timeout_ms};
	struct cnet *n = (struct cnet *)1;
	int rc = cnet_connect(target, &opt, &n);
	assert_null(n);
	*rec_len = fake_finish(&f, rec, cap);
	return rc;
}
