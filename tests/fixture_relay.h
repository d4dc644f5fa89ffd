/* SPDX-License-Identifier: MIT */
/*
 * For the tests that start a committed fixture's relay again (test_client_upgrade,
 * test_client_release): the fixture's homes name a fixed loopback port, so the test checks it
 * is free before and that the relay listens after.
 */
#ifndef CAIRN_TESTS_FIXTURE_RELAY_H
#define CAIRN_TESTS_FIXTURE_RELAY_H

#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Whether something accepts TCP connections on 127.0.0.1:PORT. */
static inline int fixture_relay_up(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

#endif
