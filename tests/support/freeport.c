/*
 * freeport.c — loopback ports for the servers the tests start (relays, PostgreSQL, nginx,
 * haproxy), each given its port in its configuration before it binds.
 *
 * A port bound to 0 and closed is the kernel's choice from its ephemeral range
 * (net.ipv4.ip_local_port_range, 32768-60999 on Debian), the range every outgoing connection
 * takes its source port from: the tests beside this one (ctest -j) connect over loopback all the
 * time, and one of them could take such a port between its close and the server's bind (the
 * server then fails to listen). Ports are taken from below that range instead, where no
 * connection's source port comes from, each process walking from its own starting point (a
 * hash of its pid) so two tests running at once do not pick the same one, and skipping a port
 * something holds on any loopback address (the relays listen on 127.0.0.2 and up too).
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "freeport.h"

#define PORT_FIRST 20000u
#define PORT_END   32768u /* the default ephemeral range's start */

static bool bindable(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* No SO_REUSEADDR: a port still in TIME_WAIT from an earlier server is skipped too. The
	 * wildcard address, so that a server on 127.0.0.2 (a two-relay test's second relay, say)
	 * holding the port makes it unbindable here; 127.0.0.1 alone did not see it (a test run
	 * beside its ASan twin then failed to listen, session 18). */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

uint16_t loopback_free_port(void)
{
	static unsigned next; /* ports this process has looked at */
	const unsigned span = PORT_END - PORT_FIRST;
	/* Two pids that once shared one of 64 slices now start apart unless their hashes fall
	 * within the few dozen ports a test takes of each other. */
	const unsigned start = ((unsigned)getpid() * 2654435761u) % span;
	for (unsigned tries = 0; tries < span; tries++) {
		uint16_t port = (uint16_t)(PORT_FIRST + (start + next++) % span);
		if (bindable(port))
			return port;
	}
	return 0;
}
