/* SPDX-License-Identifier: MIT */
/*
 * prober: probes a suspected server the way the Great Firewall of China does after its passive
 * test flags a flow (Wu et al., USENIX Security 2023, section 6; Alice et al., IMC 2020):
 * a replay of the client's recorded first packet, random bytes of the lengths the GFW's
 * probers send, a plaintext HTTP GET, and for a TLS target, requests over TLS for a few paths
 * and a WebSocket upgrade guess. For the censorship test (tests/test_it_censor.c), which
 * asserts on what it learned.
 *
 * Each probe runs on its own connection in its own process, all at once, and writes one line
 * to the output file (--out):
 *   probe NAME sent N got M end END ms T first "LINE" hex HEX
 * where END is closed (FIN), reset (RST), timeout (nothing ended it within --wait), refused,
 * or tls-error (the TLS handshake failed), LINE is the first line of the answer with bytes
 * outside printable ASCII shown as '.', and HEX its first 16 bytes. With --dump DIR the whole
 * answer (at most 64 KiB) is kept in DIR/NAME.bin. Usage: prober --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX 65536
#define PROBES_MAX 24

struct options {
	const char *target, *out, *replay, *dump, *sni;
	bool tls;
	int wait_s;
};

struct probe {
	char name[48];
	bool tls;
	uint8_t *data;
	size_t len;
};

struct answer {
	uint8_t buf[ANSWER_MAX];
	size_t len;
	const char *end;
};

static void usage(FILE *f)
{
	fputs("usage: prober --target HOST:PORT --out FILE [options]\n"
	      "  --replay FILE  first probe: these bytes, as recorded (censor --record)\n"
	      "  --tls          the target speaks TLS: also probe GET over TLS\n"
	      "  --sni NAME     server name for the TLS probes (default: none)\n"
	      "  --wait S       how long a probe waits for an answer or a close (default 20)\n"
	      "  --dump DIR     keep each answer in DIR/NAME.bin\n",
	      f);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects to HOST:PORT (numeric) with a receive timeout of WAIT_S. Returns the fd or -1. */
static int dial(const char *target, int wait_s)
{
	char host[256];
	const char *colon = strrchr(target, ':');
	if (colon == NULL || (size_t)(colon - target) >= sizeof(host))
		return -1;
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
	                *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -1;
	int fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		struct timeval tv = {.tv_sec = wait_s};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* Reads until close, reset, the deadline or a full buffer, over TCP. */
static void read_plain(int fd, struct answer *a, double deadline)
{
	for (;;) {
		if (a->len == ANSWER_MAX) {
			a->end = "full";
			return;
		}
		ssize_t n = recv(fd, a->buf + a->len, ANSWER_MAX - a->len, 0);
		if (n > 0) {
			a->len += (size_t)n;
			continue;
		}
		if (n == 0)
			a->end = "closed";
		else if (errno == EINTR && now_s() < deadline)
			continue;
		else if (errno == ECONNRESET)
			a->end = "reset";
		else
			a->end = "timeout";
		return;
	}
}

static void read_tls(SSL *ssl, struct answer *a)
{
	for (;;) {
		if (a->len == ANSWER_MAX) {
			a->end = "full";
			return;
		}
		errno = 0;
		int n = SSL_read(ssl, a->buf + a->len, (int)(ANSWER_MAX - a->len));
		if (n > 0) {
			a->len += (size_t)n;
			continue;
		}
		int e = SSL_get_error(ssl, n);
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			a->end = "timeout"; /* SO_RCVTIMEO ran out, whatever OpenSSL calls it */
		else if (e == SSL_ERROR_ZERO_RETURN)
			a->end = "closed";
		else if (e == SSL_ERROR_SYSCALL && errno == 0)
			a->end = "closed"; /* EOF without close_notify, as nginx may do */
		else if (e == SSL_ERROR_SYSCALL && errno == ECONNRESET)
			a->end = "reset";
		else
			a->end = "tls-error";
		return;
	}
}

/* Runs probe P against the target and fills A. */
static void run(const struct options *o, const struct probe *p, struct answer *a)
{
	a->len = 0;
	int fd = dial(o->target, o->wait_s);
	if (fd < 0) {
		a->end = "refused";
		return;
	}
	double deadline = now_s() + o->wait_s;
	if (!p->tls) {
		if (p->len > 0 && send(fd, p->data, p->len, MSG_NOSIGNAL) != (ssize_t)p->len)
			a->end = errno == ECONNRESET || errno == EPIPE ? "reset" : "send-error";
		else
			read_plain(fd, a, deadline);
		close(fd);
		return;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;
	static const unsigned char alpn[] = "\x08http/1.1";
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0 ||
	    (o->sni != NULL && SSL_set_tlsext_host_name(ssl, o->sni) != 1) || SSL_connect(ssl) != 1)
		a->end = "tls-error"; /* a prober does not verify: any certificate will do */
	else if (SSL_write(ssl, p->data, (int)p->len) != (int)p->len)
		a->end = "tls-error";
	else
		read_tls(ssl, a);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
}

/* Appends the result line of P to the output file in one write (children share it). */
static void report(const struct options *o, const struct probe *p, const struct answer *a,
                   double ms)
{
	char first[96], hex[40];
	size_t i = 0;
	for (; i < a->len && i + 1 < sizeof(first) && a->buf[i] != '\r' && a->buf[i] != '\n'; i++)
		first[i] = a->buf[i] >= 0x20 && a->buf[i] < 0x7f && a->buf[i] != '"'
		               ? (char)a->buf[i]
		               : '.';
	first[i] = '\0';
	hex[0] = '\0';
	for (size_t k = 0; k < a->len && k < 16; k++)
		snprintf(hex + 2 * k, sizeof(hex) - 2 * k, "%02x", a->buf[k]);
	char line[512];
	int n = snprintf(line, sizeof(line),
	                 "probe %s sent %zu got %zu end %s ms %.0f first \"%s\" hex %s\n", p->name,
	                 p->len, a->len, a->end, ms, first, hex[0] ? hex : "-");
	int fd = open(o->out, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, (size_t)n);
		close(fd);
	}
	if (o->dump != NULL) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s.bin", o->dump, p->name);
		FILE *f = fopen(path, "wb");
		if (f != NULL) {
			fwrite(a->buf, 1, a->len, f);
			fclose(f);
		}
	}
}

static void add(struct probe *ps, size_t *n, const char *name, bool tls, const void *data,
                size_t len)
{
	if (*n == PROBES_MAX)
		return;
	struct probe *p = &ps[(*n)++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->tls = tls;
	p->data = malloc(len > 0 ? len : 1);
	if (p->data == NULL)
		exit(1);
	memcpy(p->data, data, len);
	p->len = len;
}

/* Adds an HTTP request for PATH (over TLS or not), with a WebSocket upgrade if UPGRADE. */
static void add_http(struct probe *ps, size_t *n, const struct options *o, const char *name,
                     bool tls, const char *path, bool upgrade)
{
	char req[512];
	int len = snprintf(req, sizeof(req),
	                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0\r\n%s"
	                   "Connection: %s\r\n\r\n",
	                   path, o->sni != NULL ? o->sni : "localhost",
	                   upgrade ? "Upgrade: websocket\r\nSec-WebSocket-Key: "
	                             "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	                           : "",
	                   upgrade ? "Upgrade" : "close");
	add(ps, n, name, tls, req, (size_t)len);
}

static size_t plan(const struct options *o, struct probe *ps)
{
	size_t n = 0;
	if (o->replay != NULL) {
		static uint8_t rec[65536];
		FILE *f = fopen(o->replay, "rb");
		size_t len = f != NULL ? fread(rec, 1, sizeof(rec), f) : 0;
		if (f != NULL)
			fclose(f);
		if (len == 0) {
			fprintf(stderr, "prober: cannot read %s\n", o->replay);
			exit(2);
		}
		add(ps, &n, "replay", false, rec, len);
	}
	static const size_t lens[] = {1, 50, 221, 400, 1000};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t r[1000];
		if (getrandom(r, lens[i], 0) != (ssize_t)lens[i])
			exit(1);
		char name[32];
		snprintf(name, sizeof(name), "random-%zu", lens[i]);
		add(ps, &n, name, false, r, lens[i]);
	}
	add_http(ps, &n, o, "http-get", false, "/", false);
	if (o->tls) {
		add_http(ps, &n, o, "tls-get-root", true, "/", false);
		add_http(ps, &n, o, "tls-get-index", true, "/index.html", false);
		add_http(ps, &n, o, "tls-get-robots", true, "/robots.txt", false);
		add_http(ps, &n, o, "tls-get-missing", true, "/a8f3c0de", false);
		add_http(ps, &n, o, "tls-upgrade-root", true, "/", true);
		add_http(ps, &n, o, "tls-upgrade-ws", true, "/ws", true);
		add_http(ps, &n, o, "tls-upgrade-cairn", true, "/cairn", true);
	}
	return n;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	*o = (struct options){.wait_s = 20};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--tls") == 0) {
			o->tls = true;
			continue;
		} else if (v == NULL) {
			return -1;
		} else if (strcmp(a, "--target") == 0) {
			o->target = v;
		} else if (strcmp(a, "--out") == 0) {
			o->out = v;
		} else if (strcmp(a, "--replay") == 0) {
			o->replay = v;
		} else if (strcmp(a, "--dump") == 0) {
			o->dump = v;
		} else if (strcmp(a, "--sni") == 0) {
			o->sni = v;
		} else if (strcmp(a, "--wait") == 0) {
			o->wait_s = atoi(v);
		} else {
			return -1;
		}
		i++;
	}
	return o->target != NULL && o->out != NULL && o->wait_s > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse_args(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	static struct probe ps[PROBES_MAX];
	size_t n = plan(&o, ps);
	pid_t pids[PROBES_MAX];
	for (size_t i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			static struct answer a;
			double t0 = now_s();
			run(&o, &ps[i], &a);
			report(&o, &ps[i], &a, (now_s() - t0) * 1000);
			_exit(0);
		}
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		int st = 0;
		if (pids[i] < 0 || waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed = 1;
		free(ps[i].data);
	}
	return failed;
}
