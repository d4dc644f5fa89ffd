/* SPDX-License-Identifier: MIT */
/*
 * A client's connection to one relay (see net.h). The socket is non-blocking from the start,
 * and every wait goes through poll() with a deadline, so neither a silent relay nor a stalled
 * proxy can hold the caller longer than it asked. With a proxy set, the relay's name is never
 * resolved here: it goes to the proxy as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "frame.h"
#include "handshake.h"
#include "fdio.h"
#include "net.h"
#include "socks5.h"

/* Used when the caller passes 0: Tor may need several seconds to build a circuit. */
#define CNET_CONNECT_TIMEOUT_DEFAULT_MS 15000
/* Smallest frame body after the handshake: a tag and a content header (PROTOCOL.md 4.1). */
#define CNET_FRAME_MIN (CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER)

struct cnet {
	int fd;
	int io_timeout_ms; /* bound on each flush: the connect timeout */
	bool broken;       /* a fatal error happened: every later call fails with CAIRN_EIO */
	bool peer_closed;  /* the last read met an orderly close */
	uint32_t next_id;
	struct cairn_session session;
	struct frame_reader reader;
	size_t in_len, in_off;  /* bytes received and not yet given to the reader */
	const uint8_t *content; /* the current frame's content, inside plain */
	size_t content_len, content_off;
	size_t batch_len; /* encoded commands waiting for cnet_flush */
	uint8_t in[16384];
	uint8_t plain[CAIRN_NOISE_MSG_MAX];
	uint8_t batch[CAIRN_FRAME_CONTENT_MAX];
	uint8_t out[CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX];
};

/* Reads what is available into N->in (which must be used up). */
static int net_fill(struct cnet *n, int64_t deadline)
{
	n->peer_closed = false;
	for (;;) {
		int rc = fdio_wait(n->fd, POLLIN, deadline);
		if (rc != 0)
			return rc;
		ssize_t got = recv(n->fd, n->in, sizeof(n->in), 0);
		if (got > 0) {
			n->in_len = (size_t)got;
			n->in_off = 0;
			return 0;
		}
		if (got == 0) {
			n->peer_closed = true;
			return CAIRN_EIO;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return CAIRN_EIO;
	}
}

/* The next whole frame body; valid until the next call. */
static int net_next_frame(struct cnet *n, const uint8_t **frame, size_t *len, int64_t deadline)
{
	for (;;) {
		if (n->in_off < n->in_len) {
			size_t used = 0;
			int rc = frame_reader_next(&n->reader, n->in + n->in_off,
			                           n->in_len - n->in_off, &used, frame, len);
			n->in_off += used;
			if (rc != 0)
				return rc < 0 ? rc : 0;
		}
		int rc = net_fill(n, deadline);
		if (rc != 0)
			return rc;
	}
}

/* Sets O_NONBLOCK and FD_CLOEXEC (SOCK_CLOEXEC is not in POSIX.1-2008). */
static int net_prepare_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -1;
	int fdfl = fcntl(fd, F_GETFD);
	if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) != 0)
		return -1;
	return 0;
}

/* One non-blocking connect to AI, bounded by DEADLINE. Returns 0 with *FD set, or an error. */
static int net_dial_one(const struct addrinfo *ai, int64_t deadline, int *fd)
{
	int s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (s < 0)
		return CAIRN_ECONNECT;
	int rc = CAIRN_ECONNECT;
	if (net_prepare_fd(s) != 0)
		goto fail;
	if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		if ((rc = fdio_wait(s, POLLOUT, deadline)) != 0)
			goto fail;
		int err = 0;
		socklen_t elen = sizeof(err);
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
			rc = CAIRN_ECONNECT;
			goto fail;
		}
	}
	/* Commands are small and latency matters more than segment count. */
	int one = 1;
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd = s;
	return 0;
fail:
	close(s);
	return rc == CAIRN_ETIMEDOUT ? rc : CAIRN_ECONNECT;
}

/*
 * Resolves HOST (a literal only, when NUMERIC) and tries each address in turn until one
 * accepts or DEADLINE passes. Returns 0 with *FD set, CAIRN_ECONNECT or CAIRN_ETIMEDOUT.
 * getaddrinfo() itself cannot be bounded; the system resolver's own timeouts apply.
 */
static int net_dial(const char *host, uint16_t port, bool numeric, int64_t deadline, int *fd)
{
	struct addrinfo hints, *res = NULL;
	char service[8];
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return CAIRN_ECONNECT;
	int rc = CAIRN_ECONNECT;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rc = net_dial_one(ai, deadline, fd);
		if (rc == 0 || rc == CAIRN_ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

/*
 * Splits a proxy's "HOST:PORT" or "[IPV6]:PORT" into HOST (capacity CAP) and *PORT.
 * Returns 0 or CAIRN_EINVAL.
 */
static int net_parse_proxy(const char *text, char *host, size_t cap, uint16_t *port)
{
	const char *h = text, *colon;
	size_t hlen;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL || end[1] != ':')
			return CAIRN_EINVAL;
		h = text + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL)
			return CAIRN_EINVAL;
		hlen = (size_t)(colon - text);
		if (memchr(text, ':', hlen) != NULL)
			return CAIRN_EINVAL; /* an IPv6 literal needs brackets */
	}
	if (hlen == 0 || hlen >= cap)
		return CAIRN_EINVAL;
	const char *p = colon + 1;
	size_t plen = strlen(p);
	if (plen == 0 || plen > 5 || p[0] == '0')
		return CAIRN_EINVAL;
	unsigned long v = 0;
	for (size_t i = 0; i < plen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return CAIRN_EINVAL;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return CAIRN_EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/*
 * Runs the client side of the handshake (PROTOCOL.md section 2) against RELAY_KEY. A relay
 * refuses a handshake only by staying silent until its own deadline and then closing
 * (section 2.2), so a close before message 2 is reported like silence: CAIRN_ETIMEDOUT.
 */
static int net_handshake(struct cnet *n, const uint8_t relay_key[static CAIRN_KEY_LEN],
                         int64_t deadline)
{
	struct noise_handshake hs;
	uint8_t msg[CAIRN_FRAME_HEADER_LEN + CAIRN_HANDSHAKE1_MAX];
	const uint8_t *frame = NULL;
	size_t len = 0, flen = 0;

	int rc = cairn_handshake_client_start(&hs, relay_key, NULL, (uint64_t)time(NULL),
	                                      randombytes_uniform(CAIRN_HELLO_PAD_MAX + 1),
	                                      msg + CAIRN_FRAME_HEADER_LEN,
	                                      sizeof(msg) - CAIRN_FRAME_HEADER_LEN, &len);
	if (rc != 0)
		goto out;
	msg[0] = (uint8_t)(len >> 8);
	msg[1] = (uint8_t)len;
	if ((rc = fdio_send_all(n->fd, msg, CAIRN_FRAME_HEADER_LEN + len, deadline)) != 0) {
		rc = rc == CAIRN_ETIMEDOUT ? rc : CAIRN_ECONNECT;
		goto out;
	}
	rc = net_next_frame(n, &frame, &flen, deadline);
	if (rc == CAIRN_EIO)
		rc = n->peer_closed ? CAIRN_ETIMEDOUT : CAIRN_ECONNECT;
	if (rc != 0)
		goto out;
	if ((rc = cairn_handshake_client_finish(&hs, frame, flen, &n->session)) != 0)
		goto out;
	frame_reader_set_limits(&n->reader, CNET_FRAME_MIN, CAIRN_NOISE_MSG_MAX);
out:
	noise_handshake_wipe(&hs);
	sodium_memzero(msg, sizeof(msg));
	return rc;
}

int cnet_connect(const struct cairn_address *relay, const struct cnet_options *opt,
                 struct cnet **out)
{
	if (out != NULL)
		*out = NULL;
	if (relay == NULL || out == NULL || (opt != NULL && opt->connect_timeout_ms < 0))
		return CAIRN_EINVAL;
	if (sodium_init() < 0)
		return CAIRN_ECRYPTO;
	int timeout = opt != NULL && opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms
	                                                         : CNET_CONNECT_TIMEOUT_DEFAULT_MS;
	const char *socks = opt != NULL ? opt->socks : NULL;
	int64_t deadline = fdio_now_ms() + timeout;

	struct cnet *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return CAIRN_ENOMEM;
	n->fd = -1;
	n->io_timeout_ms = timeout;
	n->next_id = 1;
	frame_reader_init(&n->reader, CAIRN_HANDSHAKE2_MIN, CAIRN_HANDSHAKE2_MAX);

	int rc;
	if (socks != NULL) {
		char phost[CAIRN_HOST_MAX + 1];
		uint16_t pport = 0;
		if ((rc = net_parse_proxy(socks, phost, sizeof(phost), &pport)) != 0)
			goto fail;
		/* Only the proxy's own name is resolved here; an unreachable proxy is the
		 * proxy's failure, not the relay's. */
		rc = net_dial(phost, pport, false, deadline, &n->fd);
		if (rc == CAIRN_ECONNECT)
			rc = CAIRN_EPROXY;
		if (rc != 0)
			goto fail;
		int left = fdio_left_ms(deadline);
		if (left == 0) {
			rc = CAIRN_ETIMEDOUT;
			goto fail;
		}
		if ((rc = socks5_connect(n->fd, relay, left)) != 0)
			goto fail;
	} else {
		/* An onion service has no address outside Tor, and asking DNS for one would
		 * tell the network which service the user wants. */
		if (relay->host_type == CAIRN_HOST_ONION) {
			rc = CAIRN_ECONNECT;
			goto fail;
		}
		rc = net_dial(relay->host, relay->port, relay->host_type != CAIRN_HOST_NAME,
		              deadline, &n->fd);
		if (rc != 0)
			goto fail;
	}
	if ((rc = net_handshake(n, relay->key, deadline)) != 0)
		goto fail;
	*out = n;
	return 0;
fail:
	cnet_close(n);
	return rc;
}

void cnet_close(struct cnet *n)
{
	if (n == NULL)
		return;
	if (n->fd >= 0)
		close(n->fd);
	frame_reader_free(&n->reader);
	cairn_session_wipe(&n->session);
	/* The batch may hold credentials and signatures, the plaintext buffer replies. */
	sodium_memzero(n, sizeof(*n));
	free(n);
}

int cnet_flush(struct cnet *n)
{
	if (n == NULL)
		return CAIRN_EINVAL;
	if (n->broken)
		return CAIRN_EIO;
	if (n->batch_len == 0)
		return 0;
	/* Frames cut where padding wastes least (PROTOCOL.md 4.2), sent one at a time. */
	int rc = 0;
	for (size_t done = 0, take; rc == 0 && done < n->batch_len; done += take) {
		take = frame_split(n->batch + done, n->batch_len - done, 0);
		size_t len = 0;
		rc = take == 0 ? CAIRN_EINVAL
		               : frame_seal(&n->session.send, n->batch + done, take, 0, n->out,
		                            sizeof(n->out), &len);
		if (rc == 0)
			rc = fdio_send_all(n->fd, n->out, len, fdio_now_ms() + n->io_timeout_ms);
	}
	sodium_memzero(n->batch, n->batch_len);
	n->batch_len = 0;
	/* A frame half written, or a nonce used without being sent, breaks the stream. */
	if (rc != 0)
		n->broken = true;
	return rc;
}

int cnet_queue(struct cnet *n, const struct cairn_msg *m)
{
	if (n == NULL || m == NULL)
		return CAIRN_EINVAL;
	if (n->broken)
		return CAIRN_EIO;
	for (;;) {
		size_t used = 0;
		int rc = cairn_msg_encode(m, n->batch + n->batch_len,
		                          sizeof(n->batch) - n->batch_len, &used);
		if (rc == 0) {
			n->batch_len += used;
			return 0;
		}
		/* Full: send what is there and try again in an empty batch, once. */
		if (rc != CAIRN_ENOBUFS || n->batch_len == 0)
			return rc;
		if ((rc = cnet_flush(n)) != 0)
			return rc;
	}
}

int cnet_recv(struct cnet *n, struct cairn_msg *m, int timeout_ms)
{
	if (n == NULL || m == NULL)
		return CAIRN_EINVAL;
	memset(m, 0, sizeof(*m));
	if (n->broken)
		return CAIRN_EIO;
	int64_t deadline = timeout_ms < 0 ? -1 : fdio_now_ms() + timeout_ms;
	int rc;
	/* Frames with no content are cover traffic: read on. */
	while (n->content_off >= n->content_len) {
		const uint8_t *frame = NULL;
		size_t flen = 0;
		rc = net_next_frame(n, &frame, &flen, deadline);
		if (rc == CAIRN_ETIMEDOUT)
			return rc; /* a partial frame stays in the reader: still usable */
		if (rc != 0)
			goto broken;
		rc = frame_open(&n->session.recv, frame, flen, n->plain, sizeof(n->plain),
		                &n->content, &n->content_len);
		if (rc != 0)
			goto broken;
		n->content_off = 0;
	}
	size_t used = 0;
	rc = cairn_msg_decode(n->content + n->content_off, n->content_len - n->content_off, &used,
	                      m, NULL);
	if (rc != 0)
		goto broken;
	n->content_off += used;
	return 0;
broken:
	n->broken = true;
	n->content = NULL;
	n->content_len = n->content_off = 0;
	memset(m, 0, sizeof(*m));
	return rc;
}

const uint8_t *cnet_handshake_hash(const struct cnet *n)
{
	return n->session.h;
}

uint32_t cnet_next_id(struct cnet *n)
{
	uint32_t id = n->next_id++;
	if (n->next_id == 0)
		n->next_id = 1; /* 0 is legal on the wire, but callers may use it as "unset" */
	return id;
}

int cnet_fd(const struct cnet *n)
{
	return n->fd;
}
