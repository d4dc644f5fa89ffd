/* SPDX-License-Identifier: MIT */
/*
 * SOCKS5 CONNECT, client side (see socks5.h). Every read is exact and bounded by one deadline,
 * and every reply field is checked: a proxy that answers anything but a well-formed success
 * is treated as a refusal, since the stream after it could not be trusted to be the relay's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fdio.h"
#include "socks5.h"

#define SOCKS5_VERSION     5
#define SOCKS5_NO_AUTH     0x00
#define SOCKS5_CMD_CONNECT 1
#define SOCKS5_ATYP_IPV4   1
#define SOCKS5_ATYP_NAME   3
#define SOCKS5_ATYP_IPV6   4
#define SOCKS5_REPLY_OK    0
#define SOCKS5_NAME_MAX    255

int socks5_request(const struct cairn_address *target, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t req[SOCKS5_REQUEST_MAX];
	size_t len = 0;

	*outlen = 0;
	req[len++] = SOCKS5_VERSION;
	req[len++] = SOCKS5_CMD_CONNECT;
	req[len++] = 0; /* reserved */
	switch (target->host_type) {
	case CAIRN_HOST_IPV4:
		req[len++] = SOCKS5_ATYP_IPV4;
		if (inet_pton(AF_INET, target->host, req + len) != 1)
			return CAIRN_EINVAL;
		len += 4;
		break;
	case CAIRN_HOST_IPV6:
		req[len++] = SOCKS5_ATYP_IPV6;
		if (inet_pton(AF_INET6, target->host, req + len) != 1)
			return CAIRN_EINVAL;
		len += 16;
		break;
	case CAIRN_HOST_NAME:
	case CAIRN_HOST_ONION: {
		/* The proxy resolves the name: no DNS query leaves this machine, and Tor can
		 * reach .onion services, which have no DNS records at all. */
		size_t nlen = strnlen(target->host, sizeof(target->host));
		if (nlen == 0 || nlen > SOCKS5_NAME_MAX || nlen == sizeof(target->host))
			return CAIRN_EINVAL;
		req[len++] = SOCKS5_ATYP_NAME;
		req[len++] = (uint8_t)nlen;
		memcpy(req + len, target->host, nlen);
		len += nlen;
		break;
	}
	default:
		return CAIRN_EINVAL;
	}
	req[len++] = (uint8_t)(target->port >> 8);
	req[len++] = (uint8_t)target->port;
	if (len > cap)
		return CAIRN_ENOBUFS;
	memcpy(out, req, len);
	*outlen = len;
	return 0;
}

/* Where an exchange is: each step writes OUT or reads exactly NEED bytes into IN. */
enum {
	STEP_GREETING, /* writing the method offer */
	STEP_METHOD,   /* reading VER METHOD */
	STEP_REQUEST,  /* writing CONNECT */
	STEP_REPLY,    /* reading VER REP RSV ATYP */
	STEP_NAME_LEN, /* reading the bound name's length */
	STEP_BOUND,    /* reading BND.ADDR BND.PORT (discarded: Tor reports 0.0.0.0) */
	STEP_DONE,
};

static void want_write(struct socks5_client *s, const uint8_t *buf, size_t len)
{
	memcpy(s->out, buf, len);
	s->out_len = len;
	s->out_off = 0;
}

static void want_read(struct socks5_client *s, size_t len)
{
	s->need = len;
	s->have = 0;
}

int socks5_start(struct socks5_client *s, const struct cairn_address *target)
{
	memset(s, 0, sizeof(*s));
	int rc = socks5_request(target, s->req, sizeof(s->req), &s->req_len);
	if (rc != 0)
		return rc;
	/* Method selection: we offer exactly one method, so the proxy must pick it. */
	static const uint8_t greeting[3] = {SOCKS5_VERSION, 1, SOCKS5_NO_AUTH};
	s->step = STEP_GREETING;
	want_write(s, greeting, sizeof(greeting));
	return 0;
}

short socks5_events(const struct socks5_client *s)
{
	return s->step == STEP_GREETING || s->step == STEP_REQUEST ? POLLOUT : POLLIN;
}

/* What the bytes just read mean: the next step, or CAIRN_EPROXY. The reply is checked
 * field by field: a proxy that answers anything but a well-formed success is treated as a
 * refusal, since the stream after it could not be trusted to be the relay's. */
static int socks5_next(struct socks5_client *s)
{
	switch (s->step) {
	case STEP_GREETING:
		s->step = STEP_METHOD;
		want_read(s, 2);
		return 0;
	case STEP_METHOD:
		if (s->in[0] != SOCKS5_VERSION || s->in[1] != SOCKS5_NO_AUTH)
			return CAIRN_EPROXY; /* includes 0xff, "no acceptable methods" */
		s->step = STEP_REQUEST;
		want_write(s, s->req, s->req_len);
		return 0;
	case STEP_REQUEST:
		s->step = STEP_REPLY;
		want_read(s, 4);
		return 0;
	case STEP_REPLY:
		if (s->in[0] != SOCKS5_VERSION || s->in[1] != SOCKS5_REPLY_OK || s->in[2] != 0)
			return CAIRN_EPROXY;
		s->step = STEP_BOUND;
		if (s->in[3] == SOCKS5_ATYP_IPV4) {
			want_read(s, 4 + 2);
		} else if (s->in[3] == SOCKS5_ATYP_IPV6) {
			want_read(s, 16 + 2);
		} else if (s->in[3] == SOCKS5_ATYP_NAME) {
			s->step = STEP_NAME_LEN;
			want_read(s, 1);
		} else {
			return CAIRN_EPROXY;
		}
		return 0;
	case STEP_NAME_LEN:
		if (s->in[0] == 0)
			return CAIRN_EPROXY;
		s->step = STEP_BOUND;
		want_read(s, (size_t)s->in[0] + 2);
		return 0;
	default:
		s->step = STEP_DONE;
		return 0;
	}
}

int socks5_advance(struct socks5_client *s, int fd)
{
	while (s->step != STEP_DONE) {
		if (socks5_events(s) == POLLOUT) {
			/* MSG_NOSIGNAL: a proxy that closed must not kill us with SIGPIPE. */
			ssize_t n =
			    send(fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : CAIRN_EPROXY;
			}
			s->out_off += (size_t)n;
			if (s->out_off < s->out_len)
				continue;
		} else {
			/* Exactly what is missing: never a byte of the relay's stream. */
			ssize_t n = recv(fd, s->in + s->have, s->need - s->have, 0);
			if (n == 0)
				return CAIRN_EPROXY; /* closed mid-reply */
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : CAIRN_EPROXY;
			}
			s->have += (size_t)n;
			if (s->have < s->need)
				continue;
		}
		int rc = socks5_next(s);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int socks5_connect(int fd, const struct cairn_address *target, int timeout_ms)
{
	int64_t deadline = fdio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct socks5_client s;
	int rc = socks5_start(&s, target);
	while (rc == 0 && (rc = socks5_advance(&s, fd)) == 1) {
		rc = fdio_wait(fd, socks5_events(&s), deadline);
		if (rc == CAIRN_EIO)
			rc = CAIRN_EPROXY; /* the proxy's failures are the proxy's */
	}
	return rc;
}
