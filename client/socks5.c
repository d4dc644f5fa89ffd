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

/* The proxy's failures are the proxy's: I/O errors while talking to it are CAIRN_EPROXY. */
static int socks5_wait(int fd, short events, int64_t deadline)
{
	int rc = fdio_wait(fd, events, deadline);
	return rc == CAIRN_EIO ? CAIRN_EPROXY : rc;
}

static int socks5_send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
	int rc = fdio_send_all(fd, buf, len, deadline);
	return rc == CAIRN_EIO ? CAIRN_EPROXY : rc;
}

/* Reads exactly LEN bytes: never more, so no byte of the relay's stream is taken. */
static int socks5_recv_exact(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		int rc = socks5_wait(fd, POLLIN, deadline);
		if (rc != 0)
			return rc;
		ssize_t n = recv(fd, buf, len, 0);
		if (n == 0)
			return CAIRN_EPROXY; /* closed mid-reply */
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return CAIRN_EPROXY;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

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

/*
 * Reads the CONNECT reply: VER REP RSV ATYP BND.ADDR BND.PORT. The bound address is read and
 * discarded (Tor reports 0.0.0.0), but its type and length must be valid so that exactly the
 * reply is consumed.
 */
static int socks5_read_reply(int fd, int64_t deadline)
{
	uint8_t hdr[4], skip[SOCKS5_NAME_MAX + 2];
	size_t addr_len;
	int rc = socks5_recv_exact(fd, hdr, sizeof(hdr), deadline);
	if (rc != 0)
		return rc;
	if (hdr[0] != SOCKS5_VERSION || hdr[1] != SOCKS5_REPLY_OK || hdr[2] != 0)
		return CAIRN_EPROXY;
	switch (hdr[3]) {
	case SOCKS5_ATYP_IPV4:
		addr_len = 4;
		break;
	case SOCKS5_ATYP_IPV6:
		addr_len = 16;
		break;
	case SOCKS5_ATYP_NAME: {
		uint8_t nlen;
		if ((rc = socks5_recv_exact(fd, &nlen, 1, deadline)) != 0)
			return rc;
		if (nlen == 0)
			return CAIRN_EPROXY;
		addr_len = nlen;
		break;
	}
	default:
		return CAIRN_EPROXY;
	}
	return socks5_recv_exact(fd, skip, addr_len + 2, deadline);
}

int socks5_connect(int fd, const struct cairn_address *target, int timeout_ms)
{
	int64_t deadline = fdio_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	uint8_t req[SOCKS5_REQUEST_MAX], reply[2];
	size_t req_len = 0;
	int rc = socks5_request(target, req, sizeof(req), &req_len);
	if (rc != 0)
		return rc;

	/* Method selection: we offer exactly one method, so the proxy must pick it. */
	static const uint8_t greeting[3] = {SOCKS5_VERSION, 1, SOCKS5_NO_AUTH};
	if ((rc = socks5_send_all(fd, greeting, sizeof(greeting), deadline)) != 0)
		return rc;
	if ((rc = socks5_recv_exact(fd, reply, sizeof(reply), deadline)) != 0)
		return rc;
	if (reply[0] != SOCKS5_VERSION || reply[1] != SOCKS5_NO_AUTH)
		return CAIRN_EPROXY; /* includes 0xff, "no acceptable methods" */

	if ((rc = socks5_send_all(fd, req, req_len, deadline)) != 0)
		return rc;
	return socks5_read_reply(fd, deadline);
}
