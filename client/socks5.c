/* SPDX-License-Identifier: MIT */
/*
 * SOCKS5 CONNECT, client side (see socks5.h), with RFC 1929 credentials when the proxy asks
 * for them. Every read is exact and bounded by one deadline, and every reply field is checked:
 * a proxy that answers anything but a well-formed success is treated as a refusal, since the
 * stream after it could not be trusted to be the relay's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include "fdio.h"
#include "socks5.h"

#define SOCKS5_VERSION     5
#define SOCKS5_NO_AUTH     0x00
#define SOCKS5_USER_PASS    0x02
#define SOCKS5_AUTH_VERSION 1 /* RFC 1929's sub-negotiation version */
#define SOCKS5_AUTH_OK      0
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

void socks5_auth_isolation(struct socks5_auth *a,
                           const uint8_t random[static SOCKS5_ISOLATION_RANDOM])
{
	char hex[2 * SOCKS5_ISOLATION_RANDOM + 1];
	memset(a, 0, sizeof(*a));
	sodium_bin2hex(hex, sizeof(hex), random, SOCKS5_ISOLATION_RANDOM);
	memcpy(a->user, hex, 2 * SOCKS5_ISOLATION_RANDOM);
	a->user_len = 2 * SOCKS5_ISOLATION_RANDOM;
	a->pass[0] = 'x';
	a->pass_len = 1;
}

/* Appends KEY=VALUE to A's username as the pt-spec writes SOCKS arguments: ';' between pairs,
 * and '\', ';', '=' inside a value escaped with a backslash. Returns 0 or CAIRN_EINVAL when
 * it does not fit in 255 bytes. */
static int pt_arg(struct socks5_auth *a, const char *key, const char *value)
{
	size_t cap = sizeof(a->user);
	if (a->user_len > 0) {
		if (a->user_len >= cap)
			return CAIRN_EINVAL;
		a->user[a->user_len++] = ';';
	}
	for (const char *k = key; *k != '\0'; k++) {
		if (a->user_len >= cap)
			return CAIRN_EINVAL;
		a->user[a->user_len++] = (uint8_t)*k;
	}
	if (a->user_len >= cap)
		return CAIRN_EINVAL;
	a->user[a->user_len++] = '=';
	for (const char *v = value; *v != '\0'; v++) {
		bool esc = *v == '\\' || *v == ';' || *v == '=';
		if (a->user_len + (esc ? 2u : 1u) > cap)
			return CAIRN_EINVAL;
		if (esc)
			a->user[a->user_len++] = '\\';
		a->user[a->user_len++] = (uint8_t)*v;
	}
	return 0;
}

int socks5_auth_obfs4(struct socks5_auth *a, const struct cairn_address *target)
{
	memset(a, 0, sizeof(*a));
	if (target->transport != CAIRN_TRANSPORT_OBFS4 || target->obfs4_iat_mode > 2)
		return CAIRN_EINVAL;
	/* Standard base64 without padding: 70 characters, exactly as the address spells it. */
	char cert[sodium_base64_ENCODED_LEN(CAIRN_OBFS4_CERT_LEN,
	                                    sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
	sodium_bin2base64(cert, sizeof(cert), target->obfs4_cert, CAIRN_OBFS4_CERT_LEN,
	                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	char iat[2] = {(char)('0' + target->obfs4_iat_mode), '\0'};
	int rc = pt_arg(a, "cert", cert);
	if (rc == 0)
		rc = pt_arg(a, "iat-mode", iat);
	if (rc != 0) {
		memset(a, 0, sizeof(*a));
		return rc;
	}
	/* The pt-spec: a password is required by RFC 1929, so a lone NUL stands for none. */
	a->pass[0] = 0;
	a->pass_len = 1;
	a->required = true;
	return 0;
}

/* Where an exchange is: each step writes OUT or reads exactly NEED bytes into IN. */
enum {
	STEP_GREETING,   /* writing the method offer */
	STEP_METHOD,     /* reading VER METHOD */
	STEP_AUTH,       /* writing the RFC 1929 request */
	STEP_AUTH_REPLY, /* reading VER STATUS */
	STEP_REQUEST,    /* writing CONNECT */
	STEP_REPLY,      /* reading VER REP RSV ATYP */
	STEP_NAME_LEN,   /* reading the bound name's length */
	STEP_BOUND,      /* reading BND.ADDR BND.PORT (discarded: Tor reports 0.0.0.0) */
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

int socks5_start(struct socks5_client *s, const struct cairn_address *target,
                 const struct socks5_auth *auth)
{
	memset(s, 0, sizeof(*s));
	int rc = socks5_request(target, s->req, sizeof(s->req), &s->req_len);
	if (rc != 0)
		return rc;
	uint8_t greeting[4] = {SOCKS5_VERSION, 1, SOCKS5_NO_AUTH};
	size_t glen = 3;
	if (auth != NULL) {
		/* RFC 1929 allows 1..255 bytes of each. */
		if (auth->user_len == 0 || auth->user_len > sizeof(auth->user) ||
		    auth->pass_len == 0 || auth->pass_len > sizeof(auth->pass))
			return CAIRN_EINVAL;
		s->auth[s->auth_len++] = SOCKS5_AUTH_VERSION;
		s->auth[s->auth_len++] = (uint8_t)auth->user_len;
		memcpy(s->auth + s->auth_len, auth->user, auth->user_len);
		s->auth_len += auth->user_len;
		s->auth[s->auth_len++] = (uint8_t)auth->pass_len;
		memcpy(s->auth + s->auth_len, auth->pass, auth->pass_len);
		s->auth_len += auth->pass_len;
		s->auth_required = auth->required;
		if (auth->required) {
			greeting[2] = SOCKS5_USER_PASS;
		} else {
			greeting[1] = 2;
			greeting[3] = SOCKS5_USER_PASS;
			glen = 4;
		}
	}
	s->step = STEP_GREETING;
	want_write(s, greeting, glen);
	return 0;
}

short socks5_events(const struct socks5_client *s)
{
	return s->step == STEP_GREETING || s->step == STEP_AUTH || s->step == STEP_REQUEST ? POLLOUT
	                                                                                   : POLLIN;
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
		if (s->in[0] != SOCKS5_VERSION)
			return CAIRN_EPROXY;
		/* Only a method we offered: anything else, 0xff ("no acceptable methods")
		 * included, is the proxy's failure. */
		if (s->in[1] == SOCKS5_USER_PASS && s->auth_len > 0) {
			s->step = STEP_AUTH;
			want_write(s, s->auth, s->auth_len);
			return 0;
		}
		if (s->in[1] != SOCKS5_NO_AUTH || s->auth_required)
			return CAIRN_EPROXY;
		s->step = STEP_REQUEST;
		want_write(s, s->req, s->req_len);
		return 0;
	case STEP_AUTH:
		s->step = STEP_AUTH_REPLY;
		want_read(s, 2);
		return 0;
	case STEP_AUTH_REPLY:
		if (s->in[0] != SOCKS5_AUTH_VERSION || s->in[1] != SOCKS5_AUTH_OK)
			return CAIRN_EPROXY;
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

int socks5_connect(int fd, const struct cairn_address *target, const struct socks5_auth *auth,
                   int timeout_ms)
{
	int64_t deadline = fdio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct socks5_client s;
	int rc = socks5_start(&s, target, auth);
	while (rc == 0 && (rc = socks5_advance(&s, fd)) == 1) {
		rc = fdio_wait(fd, socks5_events(&s), deadline);
		if (rc == CAIRN_EIO)
			rc = CAIRN_EPROXY; /* the proxy's failures are the proxy's */
	}
	return rc;
}
