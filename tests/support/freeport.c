/*
 * freeport.c — loopback ports for the servers the tests start (relays, PostgreSQL, nginx,
 * haproxy), each given its port in its configuration before it binds.
 *
 * A port bound to 0 and closed is the kernel's choice from its ephemeral range
 * (net.ipv4.ip_local_port_range, 32768-60999 on Debian), the range every outgoing connection
 * takes its source port from: the tests beside this one (ctest -j) connect over loopback all the
 * time, and one of them could take such a port between its close and the server's bind (the
 * server then fails to listen). Ports are taken from below that range instead, where no
 * connection's source port comes from, each process walking its own slice (from its pid) so
 * two tests running at once do not pick the same one, and skipping a port something holds.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "freeport.h"

#define PORT_FIRST 20000u
#define PORT_END   32768u /* the default ephemeral range's start */
#define SLICES     64u

static bool bindable(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* No SO_REUSEADDR: a port still in TIME_WAIT from an earlier server is skipped too. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

uint16_t loopback_free_port(void)
{
	static unsigned next; /* ports this process has looked at */
	const unsigned span = PORT_END - PORT_FIRST;
	const unsigned slice = (unsigned)getpid() % SLICES * (span / SLICES);
	for (unsigned tries = 0; tries < span; tries++) {
		uint16_t port = (uint16_t)(PORT_FIRST + (slice + next++) % span);
		if (bindable(port))
			return port;
	}
	return 0;
}
