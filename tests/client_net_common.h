/* SPDX-License-Identifier: MIT */
/*
 * What test_client_net.c (the tests) uses of client_net_common.c (its fixtures and helpers).
 */
#ifndef CAIRN_TEST_CLIENT_NET_COMMON_H
#define CAIRN_TEST_CLIENT_NET_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <sys/types.h>

#include "cairn/address.h"
#include "net.h"
#include "relayproc.h"

#define ONION_HOST "eaqseizeeutcokbjfivsyljof4ydcmrtgq2tmnzyhe5dwpb5hy74yhqd.onion"

/* getaddrinfo, wrapped (-Wl,--wrap=getaddrinfo): the real one, and the wrapper that records every
 * name looked up. */
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

/* The relay, and microsocks once a test needs it (need_microsocks); set up for the group. */
struct world {
	struct relayproc relay;
	pid_t socks_pid;
	uint16_t socks_port;
	char socks[32];
};

extern struct world world;

/* Names looked up through getaddrinfo since the program started (looked_up). */
extern int lookup_count;

enum fake_mode {
	FAKE_RECORD,      /* SOCKS5: record greeting and request, then close before replying */
	FAKE_AUTH_RECORD, /* SOCKS5: pick 0x02, record the credentials too, then as FAKE_RECORD */
	FAKE_REFUSE,      /* SOCKS5: reply code 0x05, connection refused */
	FAKE_TRUNCATED,   /* SOCKS5: half a success reply, then close */
	FAKE_BAD_VERSION, /* SOCKS5: a reply with version 4 */
	FAKE_BAD_RSV,     /* SOCKS5: a success reply with a non-zero reserved byte */
	FAKE_BAD_ATYP,    /* SOCKS5: a success reply with address type 9 */
	FAKE_NO_METHOD,   /* SOCKS5: method 0xff, no acceptable method */
	FAKE_SILENT,      /* accept, then say nothing */
	FAKE_HS_CLOSE,    /* relay: read message 1, close */
	FAKE_HS_GARBAGE,  /* relay: answer message 1 with a well-sized, undecryptable message 2 */
};

struct fake {
	pid_t pid;
	int rec_fd; /* the child writes what it recorded here */
	uint16_t port;
	char socks[32];
};

/* Contracts: at each function in client_net_common.c. */
bool looked_up(const char *name);
int64_t now_ms(void);
void sleep_ms(long ms);
int listen_any(int family, uint16_t want_port, uint16_t *port);
uint16_t closed_port(void);
void make_addr(struct cairn_address *a, const uint8_t key[32], const char *host, uint16_t port);
void pump(int a, int b);
void reap(pid_t pid);
void ping(struct cnet *n);
int group_setup(void **state);
int group_teardown(void **state);
void need_microsocks(struct world *w);
void fake_start(struct fake *f, enum fake_mode mode);
size_t fake_finish(struct fake *f, uint8_t *rec, size_t cap);
int via_fake(enum fake_mode mode, const struct cairn_address *target, int timeout_ms, uint8_t *rec,
             size_t cap, size_t *rec_len);

#endif
