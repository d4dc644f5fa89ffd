/* SPDX-License-Identifier: MIT */
/*
 * CAIRN_TEST_WRAPPER: a command line the integration tests put in front of every cairn and
 * cairn-relay they start, e.g. "valgrind --error-exitcode=97 --leak-check=full" (make
 * test-valgrind). Words are split on spaces; no quoting.
 */
#ifndef CAIRN_TEST_WRAPPER_H
#define CAIRN_TEST_WRAPPER_H

#include <stddef.h>

#define TEST_WRAPPER_MAX 16

/* The exit status `make test-valgrind` gives valgrind (--error-exitcode): a process that ends
 * with it had a memory error or leak, which fails the test that ran it, whatever it expected. */
#define TEST_WRAPPER_ERROR_STATUS 97

/* Writes the wrapper's words (at most TEST_WRAPPER_MAX) to the start of ARGV and returns how
 * many; 0 without a wrapper. The words point into a static copy of the variable. */
size_t test_wrapper_argv(char **argv);

#endif
