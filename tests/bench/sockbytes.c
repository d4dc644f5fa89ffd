/* SPDX-License-Identifier: MIT */
/* TCP_INFO's acknowledged-bytes counter (see sockbytes.h). */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "sockbytes.h"

uint64_t sock_bytes_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	/* A kernel older than 4.1 fills a shorter struct without the counter. */
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
		return UINT64_MAX;
	return ti.tcpi_bytes_acked;
}
