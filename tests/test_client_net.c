/* SPDX-License-Identifier: MIT */
/*
 * Integration: client/net.c and client/socks5.c against the real cairn-relay on loopback,
 * directly and through a real SOCKS5 proxy (microsocks, which must be installed: see
 * scripts/install-deps.sh), plus small forked fake servers for what a real proxy or relay will
 * not do on demand: refuse, answer garbage, stay silent, and record the bytes of a request.
 * getaddrinfo() is wrapped at link time so the tests can prove no relay name is resolved
 * locally when a proxy is set.
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

#define ONION_HOST "eaqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion"

/* ---- getaddrinfo, wrapped (-Wl,--wrap=getaddrinfo): every name looked up is recorded ---- */

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

static char lookups[16][256];
static int lookup_count;

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
	if (lookup_count < 16)
		snprintf(lookups[lookup_count], sizeof(lookups[0]), "%s", node ? node : "(null)");
	lookup_count++;
	return __real_getaddrinfo(node, service, hints, res);
}

static bool looked_up(const char *name)
{
	for (int i = 0; i < lookup_count && i < 16; i++)
		if (strcmp(lookups[i], name) == 0)
			return true;
	return false;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A listening loopback socket on a kernel-chosen port. */
static int listen_any(int family, uint16_t want_port, uint16_t *port)
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
static uint16_t closed_port(void)
{
	uint16_t port = 0;
	int fd = listen_any(AF_INET, 0, &port);
	assert_true(fd >= 0);
	close(fd);
	return port;
}

static void make_addr(struct cairn_address *a, const uint8_t key[32], const char *host,
                      uint16_t port)
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
static void pump(int a, int b)
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

static void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* PING on N; asserts the OK echoes the request id. */
static void ping(struct cnet *n)
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

struct world {
	struct relayproc relay;
	pid_t socks_pid;
	uint16_t socks_port;
	char socks[32];
};

static struct world world;

static int group_setup(void **state)
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

static int group_teardown(void **state)
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
static void need_microsocks(struct world *w)
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

enum fake_mode {
	FAKE_RECORD,      /* SOCKS5: record greeting and request, then close before replying */
	FAKE_REFUSE,      /* SOCKS5: reply code 0x05, connection refused */
	FAKE_TRUNCATED,   /* SOCKS5: half a success reply, then close */
	FAKE_BAD_VERSION, /* SOCKS5: a reply with version 4 */
	FAKE_BAD_RSV,     /* SOCKS5: a success reply with a non-zero reserved byte */
	FAKE_BAD_ATYP,    /* SOCKS5: a success reply with address type 9 */
	FAKE_NO_METHOD,   /* SOCKS5: method 0xff, no acceptable method */
	FAKE_SILENT,      /* accept, then say nothing */
	FAKE_HS_CLOSE,    /* relay: read message 1, close */
	FAKE_HS_GARBAGE,  /* relay: answer message 1 with a well-sized, undecryptable message 2 */
};

struct fake {
	pid_t pid;
	int rec_fd; /* the child writes what it recorded here */
	uint16_t port;
	char socks[32];
};

static void fake_socks(int c, int wfd, enum fake_mode mode)
{
	uint8_t rec[600];
	size_t len = 0;
	static const uint8_t ok_method[] = {5, 0}, no_method[] = {5, 0xff};
	if (!read_n(c, rec, 3))
		goto done;
	len = 3;
	if (mode == FAKE_NO_METHOD) {
		write_all(c, no_method, sizeof(no_method));
		goto done;
	}
	write_all(c, ok_method, sizeof(ok_method));
	if (!read_n(c, rec + len, 4))
		goto done;
	len += 4;
	size_t alen = 0;
	if (rec[6] == 1) {
		alen = 4;
	} else if (rec[6] == 4) {
		alen = 16;
	} else if (rec[6] == 3) {
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

static void fake_start(struct fake *f, enum fake_mode mode)
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
static size_t fake_finish(struct fake *f, uint8_t *rec, size_t cap)
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
static int via_fake(enum fake_mode mode, const struct cairn_address *target, int timeout_ms,
                    uint8_t *rec, size_t cap, size_t *rec_len)
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

/* ---- direct connections ------------------------------------------------------------------ */

static void test_direct_ping(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	assert_non_null(n);
	assert_true(looked_up("127.0.0.1"));
	assert_true(cnet_fd(n) >= 0);
	static const uint8_t zero[CAIRN_HASH_LEN];
	assert_memory_not_equal(cnet_handshake_hash(n), zero, CAIRN_HASH_LEN);
	ping(n);

	/* Three commands batched into one frame; three replies, in order. */
	uint32_t ids[3];
	for (int i = 0; i < 3; i++) {
		ids[i] = cnet_next_id(n);
		struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = ids[i]};
		assert_int_equal(cnet_queue(n, &m), 0);
	}
	assert_int_equal(cnet_flush(n), 0);
	for (int i = 0; i < 3; i++) {
		struct cairn_msg r;
		assert_int_equal(cnet_recv(n, &r, 5000), 0);
		assert_int_equal(r.type, CAIRN_REPLY_OK);
		assert_int_equal(r.request_id, ids[i]);
	}
	assert_true(ids[0] != ids[1] && ids[1] != ids[2]);

	/* Nothing pending: a short wait times out and leaves the connection usable. */
	struct cairn_msg r;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_recv(n, &r, 200), CAIRN_ETIMEDOUT);
	assert_true(now_ms() - t0 >= 150);
	ping(n);
	assert_int_equal(cnet_flush(n), 0); /* an empty flush is a no-op */

	/* A zero timeout still returns a reply that has already arrived. */
	struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
	assert_int_equal(cnet_queue(n, &m), 0);
	assert_int_equal(cnet_flush(n), 0);
	struct pollfd p = {.fd = cnet_fd(n), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(cnet_recv(n, &r, 0), 0);
	assert_int_equal(r.request_id, m.request_id);
	assert_int_equal(cnet_recv(n, &r, 0), CAIRN_ETIMEDOUT);
	cnet_close(n);
	cnet_close(NULL);
}

static void test_direct_hostname(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	struct cnet *n = NULL;
	lookup_count = 0;
	/* Default options: localhost may resolve to ::1 first, which refuses; the next
	 * address is tried. */
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	assert_true(looked_up("localhost"));
	ping(n);
	cnet_close(n);
}

static void test_wrong_key(void **state)
{
	struct world *w = *state;
	uint8_t key[32];
	randombytes_buf(key, sizeof(key));
	struct cairn_address a;
	make_addr(&a, key, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.connect_timeout_ms = 3000};
	struct cnet *n = (struct cnet *)1;
	int64_t t0 = now_ms();
	/* The relay stays silent and closes at its 2 s handshake deadline: a timeout. */
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_null(n);
	assert_true(took >= 1000);
	assert_true(took < 3800);
}

static void test_refused(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", closed_port());
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = (struct cnet *)1;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ECONNECT);
	assert_true(now_ms() - t0 < 1000);
	assert_null(n);
}

static void test_onion_needs_proxy(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, ONION_HOST, 7443);
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, NULL, &n), CAIRN_ECONNECT);
	assert_int_equal(lookup_count, 0); /* never asked DNS for an onion name */
}

static void test_bad_arguments(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet *n = NULL;
	struct cnet_options opt = {.connect_timeout_ms = -1};
	assert_int_equal(cnet_connect(NULL, NULL, &n), CAIRN_EINVAL);
	assert_int_equal(cnet_connect(&a, NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EINVAL);
	static const char *const bad[] = {
	    "",      "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",    "127.0.0.1:99999",
	    ":1080", "::1:1080", "[::1]1080", "[::1]:",     "127.0.0.1:10x8", "127.0.0.1:01080"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opt = (struct cnet_options){.socks = bad[i], .connect_timeout_ms = 1000};
		lookup_count = 0;
		assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EINVAL);
		assert_int_equal(lookup_count, 0);
		assert_null(n);
	}
}

/* A peer that reads message 1 and closes is a relay refusing the handshake (section 2.2). */
static void test_handshake_closed(void **state)
{
	struct world *w = *state;
	struct fake f;
	fake_start(&f, FAKE_HS_CLOSE);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", f.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	int64_t t0 = now_ms();
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_ETIMEDOUT);
	assert_true(now_ms() - t0 < 2000);
	uint8_t rec[8];
	fake_finish(&f, rec, sizeof(rec));
}

/* An impostor that answers message 1 with bytes it cannot have computed: CAIRN_EAUTH. */
static void test_handshake_impostor(void **state)
{
	struct world *w = *state;
	struct fake f;
	fake_start(&f, FAKE_HS_GARBAGE);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", f.port);
	struct cnet_options opt = {.connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EAUTH);
	assert_null(n);
	uint8_t rec[8];
	fake_finish(&f, rec, sizeof(rec));
}

/* The relay going away: the connection reports CAIRN_EIO and stays failed. */
static void test_relay_gone(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	ping(n);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	/* Writing to the closed connection: the first send may still be taken by the kernel,
	 * a later one fails with EPIPE, which must not raise SIGPIPE (SIGPIPE is not ignored in
	 * this process, so a missing MSG_NOSIGNAL would kill the test). */
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		struct cairn_msg m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
		assert_int_equal(cnet_queue(n, &m), 0);
		rc = cnet_flush(n);
		sleep_ms(50);
	}
	assert_int_equal(rc, CAIRN_EIO);
	/* Failed once, failed for good. */
	struct cairn_msg r, m = {.type = CAIRN_CMD_PING, .request_id = cnet_next_id(n)};
	assert_int_equal(cnet_recv(n, &r, 10), CAIRN_EIO);
	assert_int_equal(cnet_queue(n, &m), CAIRN_EIO);
	assert_int_equal(cnet_flush(n), CAIRN_EIO);
	cnet_close(n);

	/* Reading side: the relay's close is reported as CAIRN_EIO. */
	assert_int_equal(relayproc_start(&w->relay), 0);
	assert_int_equal(cnet_connect(&a, NULL, &n), 0);
	ping(n);
	assert_int_equal(relayproc_stop(&w->relay, SIGTERM), 0);
	do
		rc = cnet_recv(n, &r, 5000); /* anything sent before the close, then the close */
	while (rc == 0);
	assert_int_equal(rc, CAIRN_EIO);
	assert_int_equal(cnet_recv(n, &r, 10), CAIRN_EIO);
	cnet_close(n);
	assert_int_equal(relayproc_start(&w->relay), 0);
}

/* ---- through microsocks, a real SOCKS5 proxy --------------------------------------------- */

static void test_socks_ip(void **state)
{
	struct world *w = *state;
	need_microsocks(w);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	struct cnet_options opt = {.socks = w->socks, .connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	assert_int_equal(cnet_connect(&a, &opt, &n), 0);
	assert_int_equal(lookup_count, 1); /* the proxy's address, nothing else */
	ping(n);
	ping(n);
	cnet_close(n);
}

/*
 * Where microsocks will connect for "localhost": it takes the first address only. If that is
 * ::1 (usual when /etc/hosts lists ::1 localhost), a forwarder child carries [::1]:PORT to the
 * relay's 127.0.0.1:PORT. Returns the forwarder's pid, or 0 when none is needed.
 */
static pid_t localhost_forwarder(uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	assert_int_equal(__real_getaddrinfo("localhost", NULL, &hints, &res), 0);
	int family = res->ai_family;
	freeaddrinfo(res);
	if (family != AF_INET6)
		return 0;
	uint16_t got = 0;
	int lfd = listen_any(AF_INET6, port, &got);
	assert_true(lfd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		int r = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (c >= 0 && r >= 0 && connect(r, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			pump(c, r);
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void test_socks_hostname(void **state)
{
	struct world *w = *state;
	need_microsocks(w);
	pid_t fwd = localhost_forwarder(w->relay.port);
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	struct cnet_options opt = {.socks = w->socks, .connect_timeout_ms = 5000};
	struct cnet *n = NULL;
	lookup_count = 0;
	int rc = cnet_connect(&a, &opt, &n);
	assert_int_equal(rc, 0);
	/* The proxy resolved the name; this process never did. */
	assert_int_equal(lookup_count, 1);
	assert_true(looked_up("127.0.0.1"));
	assert_false(looked_up("localhost"));
	ping(n);
	cnet_close(n);
	reap(fwd);
}

static void test_socks_unreachable(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	char socks[32];
	snprintf(socks, sizeof(socks), "127.0.0.1:%u", (unsigned)closed_port());
	struct cnet_options opt = {.socks = socks, .connect_timeout_ms = 2000};
	struct cnet *n = NULL;
	assert_int_equal(cnet_connect(&a, &opt, &n), CAIRN_EPROXY);
}

/* ---- what a proxy receives, and how its failures are reported (fake proxy) -------------- */

static void test_socks_request_bytes(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	uint8_t out[SOCKS5_REQUEST_MAX];
	size_t len = 0;

	make_addr(&a, w->relay.pub, "192.0.2.7", 7443);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	static const uint8_t v4[] = {5, 1, 0, 1, 192, 0, 2, 7, 0x1d, 0x13};
	assert_int_equal(len, sizeof(v4));
	assert_memory_equal(out, v4, sizeof(v4));

	make_addr(&a, w->relay.pub, "[2001:db8::1]", 443);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	static const uint8_t v6[] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	                             0, 0, 0, 0, 0,    0,    0,    0,    1, 1, 0xbb};
	assert_int_equal(len, sizeof(v6));
	assert_memory_equal(out, v6, sizeof(v6));

	make_addr(&a, w->relay.pub, "relay.example.org", 1);
	assert_int_equal(socks5_request(&a, out, sizeof(out), &len), 0);
	assert_int_equal(len, 5 + 17 + 2);
	assert_int_equal(out[3], 3);
	assert_int_equal(out[4], 17);
	assert_memory_equal(out + 5, "relay.example.org", 17);
	assert_int_equal(out[22], 0);
	assert_int_equal(out[23], 1);
	assert_int_equal(socks5_request(&a, out, 10, &len), CAIRN_ENOBUFS);
}

static void test_fake_hostname(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "localhost", w->relay.port);
	uint8_t rec[600];
	size_t len = 0;
	lookup_count = 0;
	assert_int_equal(via_fake(FAKE_RECORD, &a, 3000, rec, sizeof(rec), &len), CAIRN_EPROXY);
	assert_false(looked_up("localhost"));
	/* Greeting: version 5, one method, no authentication. */
	assert_int_equal(len, 3 + 5 + 9 + 2);
	static const uint8_t greet[] = {5, 1, 0}, head[] = {5, 1, 0, 3, 9};
	assert_memory_equal(rec, greet, 3);
	assert_memory_equal(rec + 3, head, 5);
	assert_memory_equal(rec + 8, "localhost", 9);
	assert_int_equal(rec[17], w->relay.port >> 8);
	assert_int_equal(rec[18], w->relay.port & 0xff);
}

static void test_fake_onion(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	char text[CAIRN_ADDRESS_MAX + 1], b64[64];
	sodium_bin2base64(b64, sizeof(b64), w->relay.pub, 32,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(text, sizeof(text), "cairn://%s@%s:7443", b64, ONION_HOST);
	assert_int_equal(cairn_address_parse(text, &a), 0);
	assert_int_equal(a.host_type, CAIRN_HOST_ONION);
	uint8_t rec[600];
	size_t len = 0;
	lookup_count = 0;
	assert_int_equal(via_fake(FAKE_RECORD, &a, 3000, rec, sizeof(rec), &len), CAIRN_EPROXY);
	/* The only lookup was of the proxy's own address literal. */
	assert_int_equal(lookup_count, 1);
	assert_true(looked_up("127.0.0.1"));
	size_t nlen = strlen(ONION_HOST);
	assert_int_equal(nlen, 62);
	assert_int_equal(len, 3 + 5 + nlen + 2);
	assert_int_equal(rec[6], 3);
	assert_int_equal(rec[7], nlen);
	assert_memory_equal(rec + 8, ONION_HOST, nlen);
	assert_int_equal(rec[8 + nlen], 7443 >> 8);
	assert_int_equal(rec[9 + nlen], 7443 & 0xff);
}

static void test_fake_failures(void **state)
{
	struct world *w = *state;
	struct cairn_address a;
	make_addr(&a, w->relay.pub, "127.0.0.1", w->relay.port);
	uint8_t rec[600];
	size_t len = 0;
	static const enum fake_mode modes[] = {FAKE_REFUSE,  FAKE_TRUNCATED, FAKE_BAD_VERSION,
	                                       FAKE_BAD_RSV, FAKE_BAD_ATYP,  FAKE_NO_METHOD};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int64_t t0 = now_ms();
		assert_int_equal(via_fake(modes[i], &a, 3000, rec, sizeof(rec), &len),
		                 CAIRN_EPROXY);
		assert_true(now_ms() - t0 < 2000);
		/* IPv4 literal: ATYP 1 with the four bytes (except where no request was sent). */
		if (modes[i] != FAKE_NO_METHOD) {
			assert_int_equal(len, 3 + 10);
			assert_int_equal(rec[6], 1);
		} else {
			assert_int_equal(len, 3);
		}
	}
	/* A proxy that accepts and says nothing: the deadline, not a hang. */
	int64_t t0 = now_ms();
	assert_int_equal(via_fake(FAKE_SILENT, &a, 1000, rec, sizeof(rec), &len), CAIRN_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 900 && took < 2500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_direct_ping),         cmocka_unit_test(test_direct_hostname),
	    cmocka_unit_test(test_wrong_key),           cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_onion_needs_proxy),   cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_handshake_closed),    cmocka_unit_test(test_handshake_impostor),
	    cmocka_unit_test(test_relay_gone),          cmocka_unit_test(test_socks_ip),
	    cmocka_unit_test(test_socks_hostname),      cmocka_unit_test(test_socks_unreachable),
	    cmocka_unit_test(test_socks_request_bytes), cmocka_unit_test(test_fake_hostname),
	    cmocka_unit_test(test_fake_onion),          cmocka_unit_test(test_fake_failures),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
