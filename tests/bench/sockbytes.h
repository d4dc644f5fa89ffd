/* SPDX-License-Identifier: MIT */
/*
 * What a TCP connection has put on the wire, read from the kernel (TCP_INFO): the bytes of
 * payload the peer has acknowledged. Shared by cairn-bench (the group scenario's upload per
 * message) and tests/test_it_group.c (the same figure asserted), so that the benchmark and
 * the test count bytes the same way. Apart from any libuv header: <linux/tcp.h>'s tcp_info
 * and the libc one that uv.h pulls in cannot meet in one file.
 */
#ifndef CAIRN_BENCH_SOCKBYTES_H
#define CAIRN_BENCH_SOCKBYTES_H

#include <stdint.h>

/*
 * Payload bytes written on socket FD that the peer has acknowledged (tcpi_bytes_acked: no
 * header, no retransmission counted twice), or UINT64_MAX if the kernel does not say. Once
 * the peer has answered everything written, this is every byte written.
 */
uint64_t sock_bytes_acked(int fd);

#endif
