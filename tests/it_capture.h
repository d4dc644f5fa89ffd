/* SPDX-License-Identifier: MIT */
/*
 * A relay that must refuse to start, with what it printed: relayproc_run_second (a relay on
 * R's data directory and [store] section, listening on PORT) with the child's stderr caught
 * in a file of the test's instead of the test's own. For the PostgreSQL tests that check why
 * a start is refused (test_it_cluster_failover: a node's lock; test_it_pgtls: a certificate).
 */
#ifndef CAIRN_TEST_IT_CAPTURE_H
#define CAIRN_TEST_IT_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "relayproc.h"

/* Runs the second relay (up to TIMEOUT_MS) and puts its stderr into OUT (capacity CAP,
 * NUL-terminated, cut to fit). Returns relayproc_run_second's result, or -2 if the capture
 * could not be set up. */
static inline int it_run_second_captured(const struct relayproc *r, uint16_t port, int timeout_ms,
                                         char *out, size_t cap)
{
	char path[] = "/tmp/cairn-capture-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -2;
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	if (saved < 0 || dup2(fd, 2) < 0) {
		close(fd);
		if (saved >= 0)
			close(saved);
		return -2;
	}
	int rc = relayproc_run_second(r, port, timeout_ms);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? (size_t)n : 0] = '\0';
	close(fd);
	return rc;
}

#endif
