/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the client's state loader: the input is the whole store file (cairn.db), opened by
 * the real libcairn as `cairn` would open it, then read the way the commands read it (contacts,
 * conversations, safety numbers, the outbox and contacts a sync plans from, a send that writes
 * new records). A damaged or hostile file must fail cleanly. Seeds are stores the tests wrote,
 * re-sealed by fuzz_state_seed for fastkdf.c's quick derivation; a proxy on a closed local port
 * keeps every connection attempt on the machine and fast.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/cairn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PASSPHRASE   "correct horse battery staple" /* the tests' (cliproc.h) */
#define CONTACTS_MAX 8

static char home[64];
static char db_path[96];

struct names {
	char name[CONTACTS_MAX][CAIRN_NAME_MAX + 1];
	size_t n;
};

static int on_contact(void *ctx, const struct cairn_contact *k)
{
	struct names *names = ctx;
	if (k->name == NULL || strlen(k->name) > CAIRN_NAME_MAX)
		abort(); /* the loader hands out only names it validated */
	if (names->n < CONTACTS_MAX)
		snprintf(names->name[names->n++], CAIRN_NAME_MAX + 1, "%s", k->name);
	return 0;
}

static int on_message(void *ctx, const struct cairn_message *m)
{
	size_t *total = ctx;
	*total += m->len;
	return 0;
}

static void remove_store(void)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[128];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", db_path, suffixes[i]);
		unlink(p);
	}
}

static void cleanup(void)
{
	remove_store();
	rmdir(home);
}

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	if (sodium_init() < 0)
		abort();
	/* tmpfs when there is one: every run writes the file and SQLite syncs it. */
	snprintf(home, sizeof(home), "%s/cairn-fuzz-state-XXXXXX",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(home) == NULL)
		abort();
	snprintf(db_path, sizeof(db_path), "%s/cairn.db", home);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	remove_store();
	FILE *f = fopen(db_path, "wb");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();

	struct cairn *c = NULL;
	if (cairn_open(home, PASSPHRASE, &c) != 0) {
		if (c != NULL)
			abort();
		remove_store();
		return 0;
	}
	/* Nothing may leave this machine: connections go to a proxy port nobody serves. */
	if (cairn_set_socks(c, "127.0.0.1:1") != 0)
		abort();
	cairn_set_timeout(c, 200);

	/* Failures are expected (a damaged record is CAIRN_ECORRUPT); crashes and leaks are not.
	 * Listing goes on after a record that fails, so every call's result is only counted. */
	struct names names = {.n = 0};
	unsigned failed = cairn_contacts(c, on_contact, &names) != 0;
	for (size_t i = 0; i < names.n; i++) {
		size_t total = 0;
		char safety[CAIRN_SAFETY_NUMBER_LEN + 1];
		failed += cairn_read(c, names.name[i], on_message, &total) != 0;
		if (cairn_safety_number(c, names.name[i], safety) == 0 &&
		    strlen(safety) != CAIRN_SAFETY_NUMBER_LEN)
			abort();
	}
	/* A sync plans from every contact and outbox record; a send adds records. */
	struct cairn_sync_result res;
	size_t total = 0;
	failed += cairn_sync(c, &res, on_message, &total) != 0;
	if (names.n > 0)
		failed += cairn_send(c, names.name[0], (const uint8_t *)"fuzz", 4, NULL) != 0;
	(void)failed;
	cairn_close(c);
	remove_store();
	return 0;
}
