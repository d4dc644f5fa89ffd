/* SPDX-License-Identifier: MIT */
/*
 * A client's connection to one relay (see net.h). The socket is non-blocking from the start,
 * and every wait goes through poll() with a deadline, so neither a silent relay nor a stalled
 * proxy can hold the caller longer than it asked. With a proxy set, the relay's name is never
 * resolved here: it goes to the proxy as it is. A cairn+https address puts TLS and WebSocket
 * (wss.c) between the socket and the channel: net_send and net_recv are the one seam.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "fdio.h"
#include "net.h"
#include "socks5.h"
#include "wss.h"

/* Used when the caller passes 0: Tor may need several seconds to build a circuit. */
#define CNET_CONNECT_TIMEOUT_DEFAULT_MS 15000
/* The protocol itself (handshake, frames, batches, decoding) is the channel's; this file
 * moves its bytes through a socket with deadlines. */
/* Where a connection is: TCP connecting, the SOCKS5 exchange, TLS and the WebSocket upgrade
 * (https only), the handshake, open. */
enum cnet_phase { CNET_TCP, CNET_SOCKS, CNET_WSS, CNET_HANDSHAKE, CNET_OPEN };

/* A connection's time comes from the environment's clock (env.h), and the descriptor is
 * attempted address by address (env.h's ATTEMPT); this many at most. */
#define CNET_ATTEMPTS_MAX 8

struct cnet {
	int fd;
	enum cnet_phase phase;
	int64_t deadline_ms; /* connecting: by the environment's monotonic clock */
	unsigned attempt;    /* which address of the host (env.h) */
	bool proxied;        /* FD leads to the SOCKS5 proxy, not to the relay */
	char proxy_host[CAIRN_HOST_MAX + 1];
	uint16_t proxy_port;
	struct cairn_address relay;
	struct client_env env;
	struct socks5_client socks;
	struct wss *wss;  /* https: the stream's TLS and framing (owned), or NULL */
	bool broken;      /* a fatal error happened: every later call fails with CAIRN_EIO */
	bool peer_closed; /* the last read met an orderly close */
	uint32_t next_id;
	struct channel ch;
	size_t in_len, in_off; /* bytes received and not yet given to the channel */
	uint8_t in[16384];
};

/* The byte stream under the channel: the socket, or TLS and WebSocket over it. Both behave
 * as send(2) and recv(2) do on a non-blocking socket. */
static ssize_t net_send(struct cnet *n, const void *buf, size_t len)
{
	if (n->wss != NULL)
		return wss_send(n->wss, buf, len);
	/* MSG_NOSIGNAL: a peer that closed must not kill the process with SIGPIPE. */
	return send(n->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t net_recv(struct cnet *n, void *buf, size_t cap)
{
	if (n->wss != NULL)
		return wss_recv(n->wss, buf, cap);
	return recv(n->fd, buf, cap, 0);
}

/* Whether sealed bytes wait to be written (in the channel, or in frames and TLS). */
static bool net_output_pending(const struct cnet *n)
{
	const uint8_t *out;
	return channel_output(&n->ch, &out) > 0 || (n->wss != NULL && wss_output_pending(n->wss));
}

/* What an open connection waits for: POLLIN, with POLLOUT while bytes wait to be written (or,
 * under TLS, while a read needs a write). */
static short net_open_events(const struct cnet *n)
{
	const uint8_t *out;
	if (n->wss != NULL)
		return (short)(wss_events(n->wss) |
		               (channel_output(&n->ch, &out) > 0 ? POLLOUT : 0));
	return net_output_pending(n) ? POLLIN | POLLOUT : POLLIN;
}

/* Writes what the channel has sealed, as far as the socket takes it now; the rest waits for
 * POLLOUT. Returns 0 or CAIRN_EIO. */
static int net_write_some(struct cnet *n)
{
	const uint8_t *out;
	size_t len;
	if (n->wss != NULL && wss_flush(n->wss) != 0)
		return CAIRN_EIO;
	while ((len = channel_output(&n->ch, &out)) > 0) {
		ssize_t sent = net_send(n, out, len);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : CAIRN_EIO;
		}
		channel_output_consume(&n->ch, (size_t)sent);
	}
	return 0;
}

/* Reads what is available into N->in (which must be used up), writing what waits to be
 * written meanwhile, until DEADLINE. */
static int net_fill(struct cnet *n, int64_t deadline)
{
	n->peer_closed = false;
	for (;;) {
		bool pending = net_output_pending(n);
		/* Bytes TLS or the framing already hold are read before any wait: the socket
		 * would not wake for them. */
		bool buffered = n->wss != NULL && wss_readable(n->wss);
		int rc = buffered ? 0 : fdio_wait(n->fd, net_open_events(n), deadline);
		if (rc != 0)
			return rc;
		if (pending && (rc = net_write_some(n)) != 0)
			return rc;
		ssize_t got = net_recv(n, n->in, sizeof(n->in));
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

/* The channel's next event into *EV, reading until DEADLINE. Returns 0, or the error of the
 * read (CAIRN_ETIMEDOUT, CAIRN_EIO). */
static int net_next_event(struct cnet *n, struct channel_event *ev, int64_t deadline)
{
	for (;;) {
		if (channel_next_event(&n->ch, ev) != CHANNEL_EV_NONE)
			return 0;
		if (n->in_off < n->in_len) {
			n->in_off += channel_feed(&n->ch, n->in + n->in_off, n->in_len - n->in_off);
			continue;
		}
		int rc = net_fill(n, deadline);
		if (rc != 0)
			return rc;
	}
}

/* The channel's clock (message 1's timestamp): the environment's wall clock. */
static uint64_t net_wall_now(void *ctx)
{
	const struct client_env *env = ctx;
	return (uint64_t)env->wall_s(env->ctx);
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

/* Asks the environment for the next descriptor to try, from N->attempt on: a refusal at once
 * moves to the next address. Returns 0 (N->fd connected or connecting) or the error of the
 * last address tried (CAIRN_ECONNECT, or CAIRN_EPROXY when it was the proxy's). */
static int net_dial(struct cnet *n)
{
	const char *host = n->proxied ? n->proxy_host : n->relay.host;
	uint16_t port = n->proxied ? n->proxy_port : n->relay.port;
	/* Only the proxy's own name is resolved here; the relay's goes to the proxy as it is. */
	bool numeric = !n->proxied && n->relay.host_type != CAIRN_HOST_NAME;
	int rc = CAIRN_ECONNECT;
	for (; n->attempt < CNET_ATTEMPTS_MAX; n->attempt++) {
		rc = n->env.connect(n->env.ctx, host, port, numeric, (int)n->attempt, &n->fd);
		if (rc == 0)
			return 0;
		n->fd = -1;
		if (rc == CAIRN_ENOTFOUND)
			break; /* no more addresses */
	}
	/* An unreachable proxy is the proxy's failure, not the relay's. */
	return n->proxied ? CAIRN_EPROXY : CAIRN_ECONNECT;
}

int cnet_start(const struct cairn_address *relay, const struct cnet_options *opt, struct cnet **out)
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
	const struct client_env *env = opt != NULL && opt->env != NULL ? opt->env : env_default();

	struct cnet *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return CAIRN_ENOMEM;
	n->fd = -1;
	n->next_id = 1;
	n->env = *env;
	n->relay = *relay;
	n->deadline_ms = env->mono_ms(env->ctx) + timeout;
	n->phase = CNET_TCP;
	int rc;
	if (relay->transport == CAIRN_TRANSPORT_OBFS4) {
		/* Section 7.3: through obfs4proxy's own SOCKS5 listener. Chaining it behind
		 * another proxy (Tor) is not supported, and going around the user's proxy
		 * would show the bridge where the user is: refuse rather than leak. */
		const char *pt = opt != NULL ? opt->obfs4_socks : NULL;
		if (pt == NULL || socks != NULL) {
			rc = CAIRN_ECONNECT;
			goto fail;
		}
		socks = pt;
	}
	if (socks != NULL) {
		n->proxied = true;
		if ((rc = net_parse_proxy(socks, n->proxy_host, sizeof(n->proxy_host),
		                          &n->proxy_port)) != 0)
			goto fail;
	} else if (relay->host_type == CAIRN_HOST_ONION) {
		/* An onion service has no address outside Tor, and asking DNS for one would
		 * tell the network which service the user wants. */
		rc = CAIRN_ECONNECT;
		goto fail;
	}
	if ((rc = net_dial(n)) != 0)
		goto fail;
	*out = n;
	return 0;
fail:
	cnet_close(n);
	return rc;
}

/* The TCP connect finished, or failed: then the next address. Returns 0 (connected), 1
 * (still connecting) or an error. */
static int net_tcp_advance(struct cnet *n)
{
	for (;;) {
		struct pollfd pfd = {.fd = n->fd, .events = POLLOUT};
		int ready = poll(&pfd, 1, 0);
		if (ready == 0 || (ready < 0 && errno == EINTR))
			return 1;
		int err = 0;
		socklen_t elen = sizeof(err);
		if (ready > 0 && getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
		    err == 0)
			return 0;
		close(n->fd);
		n->fd = -1;
		n->attempt++;
		int rc = net_dial(n);
		if (rc != 0)
			return rc;
	}
}

/*
 * The client side of the handshake (PROTOCOL.md section 2) as far as it goes without
 * waiting: message 1 out, message 2 in. A relay refuses a handshake only by staying silent
 * until its own deadline and then closing (section 2.2), so a close before message 2 is
 * reported like silence: CAIRN_ETIMEDOUT. Returns 0 (open), 1 (not yet) or an error.
 */
static int net_handshake_advance(struct cnet *n)
{
	if (net_write_some(n) != 0)
		return CAIRN_ECONNECT;
	if (net_output_pending(n))
		return 1;
	for (;;) {
		struct channel_event ev;
		enum channel_event_type t = channel_next_event(&n->ch, &ev);
		if (t == CHANNEL_EV_OPEN)
			return 0;
		if (t == CHANNEL_EV_FAILED)
			return ev.error;
		if (t != CHANNEL_EV_NONE)
			continue;
		if (n->in_off < n->in_len) {
			n->in_off += channel_feed(&n->ch, n->in + n->in_off, n->in_len - n->in_off);
			continue;
		}
		ssize_t got = net_recv(n, n->in, sizeof(n->in));
		if (got > 0) {
			n->in_len = (size_t)got;
			n->in_off = 0;
		} else if (got == 0) {
			return CAIRN_ETIMEDOUT;
		} else if (errno != EINTR) {
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : CAIRN_ECONNECT;
		}
	}
}

static int net_handshake_start(struct cnet *n);

/* After TCP (and SOCKS5): TLS and the upgrade for an https address, else the handshake. */
static int net_stream_start(struct cnet *n)
{
	if (n->relay.transport != CAIRN_TRANSPORT_HTTPS)
		return net_handshake_start(n);
	n->phase = CNET_WSS;
	return wss_new(&n->relay, n->fd, &n->env, &n->wss);
}

/* Starts the SOCKS5 exchange with the credentials of section 7: the bridge's arguments for
 * obfs4proxy, else a username drawn fresh for this connection alone (Tor isolation). */
static int net_socks_start(struct cnet *n)
{
	struct socks5_auth auth;
	if (n->relay.transport == CAIRN_TRANSPORT_OBFS4) {
		int rc = socks5_auth_obfs4(&auth, &n->relay);
		if (rc != 0)
			return rc;
	} else {
		uint8_t r[SOCKS5_ISOLATION_RANDOM];
		n->env.random(n->env.ctx, r, sizeof(r));
		socks5_auth_isolation(&auth, r);
		sodium_memzero(r, sizeof(r));
	}
	int rc = socks5_start(&n->socks, &n->relay, &auth);
	sodium_memzero(&auth, sizeof(auth));
	return rc;
}

/* Starts the handshake against the relay's key. */
static int net_handshake_start(struct cnet *n)
{
	/* Commands are small and latency matters more than segment count. */
	int one = 1;
	(void)setsockopt(n->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct channel_options opt = {
	    .role = CHANNEL_INITIATOR,
	    .relay_public = n->relay.key,
	    .now = net_wall_now,
	    .ctx = &n->env,
	    .transport = channel_transport_parse(getenv("CAIRN_TRANSPORT_CIPHER"))};
	n->phase = CNET_HANDSHAKE;
	return channel_init(&n->ch, &opt);
}

int cnet_advance(struct cnet *n)
{
	if (n == NULL)
		return CAIRN_EINVAL;
	if (n->broken)
		return CAIRN_EIO;
	int rc = 0;
	while (rc == 0 && n->phase != CNET_OPEN) {
		switch (n->phase) {
		case CNET_TCP:
			if ((rc = net_tcp_advance(n)) != 0)
				break;
			if (n->proxied) {
				n->phase = CNET_SOCKS;
				rc = net_socks_start(n);
			} else {
				rc = net_stream_start(n);
			}
			break;
		case CNET_SOCKS:
			if ((rc = socks5_advance(&n->socks, n->fd)) == 0)
				rc = net_stream_start(n);
			break;
		case CNET_WSS:
			if ((rc = wss_advance(n->wss)) == 0)
				rc = net_handshake_start(n);
			break;
		default:
			if ((rc = net_handshake_advance(n)) == 0)
				n->phase = CNET_OPEN;
			break;
		}
	}
	if (rc == 1 && n->env.mono_ms(n->env.ctx) >= n->deadline_ms)
		rc = CAIRN_ETIMEDOUT;
	if (rc < 0)
		n->broken = true;
	return rc;
}

short cnet_events(const struct cnet *n)
{
	switch (n->phase) {
	case CNET_TCP:
		return POLLOUT;
	case CNET_SOCKS:
		return socks5_events(&n->socks);
	case CNET_WSS:
		return n->wss != NULL ? wss_events(n->wss) : POLLOUT; /* NULL: wss_new failed */
	case CNET_HANDSHAKE:
		if (n->wss != NULL)
			return net_open_events(n);
		return net_output_pending(n) ? POLLOUT : POLLIN;
	default:
		return net_open_events(n);
	}
}

int64_t cnet_deadline_ms(const struct cnet *n)
{
	return n->phase == CNET_OPEN ? -1 : n->deadline_ms;
}

bool cnet_open(const struct cnet *n)
{
	return n->phase == CNET_OPEN;
}

int cnet_connect(const struct cairn_address *relay, const struct cnet_options *opt,
                 struct cnet **out)
{
	if (out == NULL)
		return CAIRN_EINVAL;
	*out = NULL;
	struct cnet *n = NULL;
	int rc = cnet_start(relay, opt, &n);
	if (rc != 0)
		return rc;
	while ((rc = cnet_advance(n)) == 1) {
		int64_t left = n->deadline_ms - n->env.mono_ms(n->env.ctx);
		rc = fdio_wait(n->fd, cnet_events(n), fdio_now_ms() + (left > 0 ? left : 0));
		if (rc != 0)
			break; /* CAIRN_ETIMEDOUT, or poll failed */
	}
	if (rc != 0) {
		cnet_close(n);
		return rc == CAIRN_EIO ? CAIRN_ECONNECT : rc;
	}
	*out = n;
	return 0;
}

void cnet_close(struct cnet *n)
{
	if (n == NULL)
		return;
	/* TLS and the framing first: they borrow the descriptor. */
	wss_free(n->wss);
	if (n->fd >= 0)
		close(n->fd);
	/* The channel wipes its keys and its buffers (commands, replies) as it frees them. */
	channel_free(&n->ch);
	sodium_memzero(n, sizeof(*n));
	free(n);
}

int cnet_flush(struct cnet *n)
{
	if (n == NULL)
		return CAIRN_EINVAL;
	if (n->broken)
		return CAIRN_EIO;
	/* Frames cut where padding wastes least (PROTOCOL.md 4.2). */
	int rc = channel_flush(&n->ch);
	if (rc == 0)
		rc = net_write_some(n);
	/* A nonce used without being sent, or a failed write, breaks the stream. */
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
	int rc = channel_queue(&n->ch, m);
	if (rc != 0) {
		/* An unencodable message leaves the channel as it was; anything else broke it. */
		if (channel_state(&n->ch) == CHANNEL_FAILED)
			n->broken = true;
		return rc;
	}
	/* A full batch was sealed to make room: send what can go now rather than hold it. */
	if ((rc = net_write_some(n)) != 0)
		n->broken = true;
	return rc;
}

int cnet_recv(struct cnet *n, struct cairn_msg *m, int timeout_ms)
{
	if (n == NULL || m == NULL)
		return CAIRN_EINVAL;
	memset(m, 0, sizeof(*m));
	if (n->broken)
		return CAIRN_EIO;
	int64_t deadline = timeout_ms < 0 ? -1 : fdio_now_ms() + timeout_ms;
	struct channel_event ev;
	int rc = net_next_event(n, &ev, deadline);
	if (rc == CAIRN_ETIMEDOUT)
		return rc; /* a partial frame stays in the channel: still usable */
	if (rc == 0 && ev.type == CHANNEL_EV_MESSAGE) {
		*m = ev.msg;
		return 0;
	}
	/* Empty frames (cover traffic) raise no event; only a failure is left. */
	n->broken = true;
	return rc != 0 ? rc : ev.type == CHANNEL_EV_FAILED ? ev.error : CAIRN_ESTATE;
}

const uint8_t *cnet_handshake_hash(const struct cnet *n)
{
	/* The field, not channel_session(): valid (if wiped) even on a broken connection. */
	return n->ch.session.h;
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
