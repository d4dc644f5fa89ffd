/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the SOCKS5 client's reading of a proxy's answers (client/socks5.c): the first byte
 * picks the credentials offered (none, a fresh isolation username, an obfs4 bridge's
 * arguments), the rest is everything the proxy says, then it closes. Whatever the bytes, the
 * exchange ends at once (success, or CAIRN_EPROXY: never a wait) and never reads past what a
 * well-formed answer needs: a success leaves the bytes after it unread.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	if (size < 1 || size > 4096) /* far below a socket buffer: the writes never block */
		return 0;
	struct cairn_address target;
	memset(&target, 0, sizeof(target));
	target.host_type = CAIRN_HOST_NAME;
	strcpy(target.host, "relay.example.org");
	target.port = 7443;
	target.transport = CAIRN_TRANSPORT_OBFS4;
	memset(target.obfs4_cert, 0x5a, sizeof(target.obfs4_cert));
	struct socks5_auth auth;
	const struct socks5_auth *use = NULL;
	if (data[0] % 3 == 1) {
		uint8_t r[SOCKS5_ISOLATION_RANDOM] = {0};
		socks5_auth_isolation(&auth, r);
		use = &auth;
	} else if (data[0] % 3 == 2) {
		if (socks5_auth_obfs4(&auth, &target) != 0)
			abort();
		use = &auth;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	if (size > 1 && write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	shutdown(sv[1], SHUT_WR);
	int rc = socks5_connect(sv[0], &target, use, 5000);
	if (rc != 0 && rc != CAIRN_EPROXY)
		abort();
	close(sv[0]);
	close(sv[1]);
	return 0;
}
