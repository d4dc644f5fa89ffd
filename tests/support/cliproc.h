/* SPDX-License-Identifier: MIT */
/*
 * Runs the real `cairn` command for integration tests, exactly as a person or a script would:
 * one process per command, outputs captured, exit status checked, and `read --json` parsed
 * into a conversation. Under CAIRN_TEST_WRAPPER (see wrapper.h) every command runs inside
 * that wrapper, e.g. valgrind.
 */
#ifndef CAIRN_TEST_CLIPROC_H
#define CAIRN_TEST_CLIPROC_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* The passphrase every test home uses (given as CAIRN_PASSPHRASE). */
#define CLI_PASS "correct horse battery staple"

/* The cairn binary; set by find_cli(). */
extern char cli_path[PATH_MAX];

/* How to run one command: its home, extra environment, standard input, proxy. */
struct call {
	const char *home;
	const char *const *env; /* "NAME=value" strings, NULL-terminated; may be NULL */
	const char *in;         /* standard input (small); NULL: /dev/null */
	const char *socks;      /* adds --socks */
};

struct res {
	int status; /* exit status, or 128 + signal */
	char *out, *err;
	size_t outlen, errlen;
};

#define CALL(...) (&(struct call){__VA_ARGS__})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct msg {
	int out;    /* direction "out" */
	char *text; /* decoded from JSON, NUL-terminated */
	double sent, received;
	char id[33];
};

struct convo {
	struct msg *m;
	size_t n;
};

/* Finds the cairn binary: CAIRN_CLI, or ../client/cairn beside the test's build directory.
 * Returns 0, or -1 when it is not there. */
int find_cli(void);

/* Runs cairn with ARGS and captures both outputs. */
struct res cli_run(const struct call *k, const char *const *args);
/* The same, and fails the test unless the exit status is EXPECT (< 0: any). */
struct res cli_expect(int expect, const struct call *k, const char *const *args);
/* The same, for a command whose output does not matter. */
void cli_check(int expect, const struct call *k, const char *const *args);
/* Starts cairn with ARGS in the background, outputs discarded. Returns its pid. */
pid_t cli_spawn(const struct call *k, const char *const *args);
/* The same, with its standard output on a pipe whose read end goes to *OUT (the caller closes
 * it), and its standard error appended to the file ERRFILE (NULL: discarded). */
pid_t cli_spawn_out(const struct call *k, const char *const *args, int *out, const char *errfile);
/* Waits for PID; returns its exit status, or 128 + signal. */
int wait_status(pid_t pid);
/* The exit status of PID (or 128 + signal) if it has ended (then reaped), or -1 while it
 * runs. */
int cli_reap(pid_t pid);
void res_free(struct res *r);
/* Appends N bytes at P to the growing, NUL-terminated buffer *BUF. */
void buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n);

/* Parses `read --json` output, checking every field of every line. */
struct convo parse_convo(const char *json, const char *contact);
/* HOME's conversation with CONTACT. */
struct convo read_convo(const char *home, const char *contact);
void convo_free(struct convo *c);
/* How many messages of C in direction OUT (1: sent) have exactly TEXT. */
size_t count_text(const struct convo *c, int out, const char *text);
/* How many messages of C go in direction OUT. */
size_t count_dir(const struct convo *c, int out);

/* Runs `sync` for K, expecting exit EXPECT and a summary of RECEIVED messages (< 0: any). */
void sync_expect(const struct call *k, int expect, int received);
/* Makes A (who calls the other "bob") and B ("alice") contacts through RELAY, one message
 * each way; SOCKS (may be NULL) is used for every networked command. */
void pair(const char *a, const char *b, const char *relay, const char *socks);
/* The safety number HOME's `verify CONTACT` prints. */
char *cli_safety_number(const char *home, const char *contact);

#endif
