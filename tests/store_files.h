/* SPDX-License-Identifier: MIT */
/*
 * The files of the SQLite engine's store in a test's directory, removed after the test
 * (store_fixture.h, storage_fixture.h).
 */
#ifndef CAIRN_TESTS_STORE_FILES_H
#define CAIRN_TESTS_STORE_FILES_H

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

static inline void remove_store_files(const char *dir)
{
	static const char *const names[] = {"relay.db", "relay.db-wal", "relay.db-shm",
	                                    "relay.db-journal"};
	char path[128];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

#endif
