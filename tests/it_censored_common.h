/* SPDX-License-Identifier: MIT */
/*
 * What test_it_censored.c (the four scenarios) uses of it_censored_common.c (the network, the
 * world of a test, the faultproxy, and the driving and checking of a scenario). One program
 * built from both; see test_it_censored.c for what is tested. test_it_file_faults.c (a 200 MiB
 * file) is another program on the same network, world and faultproxy.
 */
#ifndef CAIRN_TEST_IT_CENSORED_COMMON_H
#define CAIRN_TEST_IT_CENSORED_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn/address.h"
#include "relayproc.h"

#define NS_PREFIX  "cairnt-"
#define RELAY_IP   "10.77.0.1"
#define CLIENT_IP  "10.77.0.2"
#define DEV_RELAY  "cr0"
#define DEV_CLIENT "cc0"
#define LOSS       "0.2"
#define RATE       "64kbit"
#define OUTAGE_S   30.0

/* Messages per scenario: ping-pong rounds (one message each way, each sent once the one
 * before it has arrived), then a burst from B to A (each send starting when the one before it
 * exits). The counts keep the program near two minutes, and it runs again under ASan. */
#define LOSS_BURST   (IT_ASAN ? 8 : 10)
#define TBF_BURST    20
#define OUTAGE_BURST 4 /* before the outage; 1 + 6 more are sent while it lasts */
#define PROXY_BURST  (IT_ASAN ? 5 : 6)
#define MSGS_MAX     64
#define DEADLINE_S   150.0 /* a scenario that has not delivered by then has failed */

enum { NS_RELAY, NS_CLIENT };

/* The namespaces and the relay, shared by all tests (group_setup makes them). */
struct net {
	bool ready;
	char why[512];
	char ns[2][32];
	int nsfd[2], rootfd;
	char iptables[32]; /* a working iptables with the statistic match, or "" */
	bool tbf;
	struct relayproc relay;
	char addr[CAIRN_ADDRESS_MAX + 1];
};
extern struct net g;

/* ---- one test: two people, their listens, their messages ----------------------------- */

struct listener {
	pid_t pid;
	int fd;
	size_t len;
	char buf[16384];
};

struct message {
	char text[64];
	int from;            /* 0: A to B, 1: B to A */
	bool after_delivery; /* sent only once the message before it has arrived */
	int group;           /* reported together: GROUP_* */
	bool launched;
	pid_t pid;
	int status; /* of its `cairn send`: 0 sent, 3 queued */
	double t_launch, t_exit, t_recv;
	int seen; /* lines the recipient's listen printed for it */
};

struct world {
	char dir[64];
	char home[2][96]; /* A (calls the other "bob"), B ("alice") */
	char addr[CAIRN_ADDRESS_MAX + 1];
	struct listener lsn[2];
	struct message m[MSGS_MAX];
	size_t n;
	int unexpected;
	/* What this test changed, undone by teardown even when an assertion fails. */
	bool lossy, throttled, down;
	pid_t proxy;
	char proxy_log[96];
	/* The outage scenario. */
	size_t down_after; /* take the link down once this message has started */
	double t_down, t_up;
};

enum { GROUP_ONE, GROUP_BURST, GROUP_OUTAGE, GROUPS };

/* Contracts: at each function in it_censored_common.c. */
int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void plan(struct world *w, int from, bool after_delivery, int group, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int proxy_stop(struct world *w);
int teardown(void **state);
void need_net(void);
bool under_wrapper(void);
void not_under_wrapper(void);
uint16_t proxy_start(struct world *w, uint16_t port, const char *extra);
void address_with_port(struct world *w, uint16_t port);
void listeners_start(struct world *w);
void plan_traffic(struct world *w, const char *tag, int rounds, int count);
void drive(struct world *w, double *t_start);
void report(const struct world *w, const char *name, double t_start);
void verify(struct world *w);

#endif
