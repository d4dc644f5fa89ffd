/* SPDX-License-Identifier: MIT */
/*
 * `cairn timer NAME [DURATION|off]`: shows or changes the timer of disappearing messages of
 * a contact's or a group's conversation (docs/PROTOCOL.md 8.11). A change is sent like a
 * message; with no relay reachable it stays queued (exit 3) and applies here already.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/cairn.h"
#include "cairn/limits.h"
#include "cli_timer.h"

/* The units a duration may carry (cli_common.c's cli_timer_words writes them out). */
static const struct {
	char unit;
	uint32_t seconds;
} units[] = {{'w', 604800}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
#define NUNITS (sizeof(units) / sizeof(units[0]))

int cli_timer_parse(const char *s, uint32_t *seconds)
{
	*seconds = 0;
	if (strcmp(s, "off") == 0)
		return 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0 || n > CAIRN_TIMER_MAX_S)
		return -1;
	uint32_t mult = 1;
	if (*end != '\0') {
		size_t i = 0;
		while (i < NUNITS && units[i].unit != *end)
			i++;
		if (i == NUNITS || end[1] != '\0')
			return -1;
		mult = units[i].seconds;
	}
	if (n * mult > CAIRN_TIMER_MAX_S)
		return -1;
	*seconds = (uint32_t)(n * mult);
	return 0;
}

int cli_timer(struct options *o, const char *const *words, int nwords)
{
	const char *name = nwords > 1 ? words[1] : NULL, *arg = nwords > 2 ? words[2] : NULL;
	uint32_t seconds = 0;
	if (name == NULL || nwords > 3 || (arg != NULL && cli_timer_parse(arg, &seconds) != 0)) {
		fprintf(stderr, "cairn: timer needs NAME and a duration up to a year (30s, 5m, 1h, "
		                "1d, 2w) or off\n");
		return EXIT_USAGE;
	}
	struct cairn *c;
	int st = cli_open(o, &c);
	if (st != 0)
		return st;
	char shown[48] = "off";
	int rc;
	if (arg == NULL) {
		rc = cairn_timer_get(c, name, &seconds);
		if (rc == 0 && seconds > 0)
			cli_timer_words(seconds, shown, sizeof(shown));
		if (rc == 0)
			printf("%s\n", shown);
	} else {
		rc = cairn_timer_set(c, name, seconds);
	}
	cli_close(c);
	if (rc == CAIRN_ENOTFOUND) {
		fprintf(stderr, "cairn: no contact or group called '%s'\n", name);
		return 1;
	}
	if (rc == CAIRN_ECONNECT || rc == CAIRN_ETIMEDOUT) {
		fprintf(stderr, "cairn: no relay reachable; the timer applies here and the change "
		                "goes out with the next sync, send or listen\n");
		return EXIT_QUEUED;
	}
	return rc == 0 ? 0 : cli_fail(rc, "timer");
}
