/* SPDX-License-Identifier: MIT */
/*
 * A strict reader of the relay's Prometheus text (exposition format 0.0.4) for tests: every
 * line must be a HELP, a TYPE or a sample of a family typed before it; counters end in
 * _total; labels come only from the relay's fixed sets; histograms' buckets ascend, are
 * cumulative and end in +Inf equal to _count. Any breach fails the calling test.
 */
#ifndef CAIRN_TEST_METRICS_EXPO_H
#define CAIRN_TEST_METRICS_EXPO_H

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EXPO_MAX 256

struct expo_family {
	char name[96];
	char type[16];
};

struct expo_sample {
	char name[128];
	char labels[160]; /* as written, without the braces; "" if none */
	double value;
};

struct expo {
	struct expo_family fam[EXPO_MAX];
	size_t nfam;
	struct expo_sample s[EXPO_MAX];
	size_t n;
};

static const struct expo_family *expo_family(const struct expo *e, const char *name)
{
	for (size_t i = 0; i < e->nfam; i++)
		if (strcmp(e->fam[i].name, name) == 0)
			return &e->fam[i];
	return NULL;
}

static bool expo_name_ok(const char *p, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
			return false;
	return strncmp(p, "cairn_relay_", 12) == 0;
}

/* LABELS ("k=\"v\",k2=\"v2\""): every key from the fixed set, every value plain text. */
static void expo_check_labels(const char *labels, const char *line)
{
	static const char *const keys[] = {"transport", "cause", "le", "version"};
	const char *p = labels;
	while (*p != '\0') {
		size_t k = strcspn(p, "=");
		bool known = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known = known || (strlen(keys[i]) == k && strncmp(p, keys[i], k) == 0);
		if (!known || p[k] != '=' || p[k + 1] != '"')
			fail_msg("bad label in: %s", line);
		p += k + 2;
		size_t v = strcspn(p, "\"\\\n");
		if (p[v] != '"' || v > 32)
			fail_msg("bad label value in: %s", line);
		p += v + 1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			fail_msg("bad label list in: %s", line);
	}
}

static void expo_histograms(const struct expo *e);

/* Parses TEXT into E, failing the test at the first line that breaks the format. */
static void expo_parse(const char *text, struct expo *e)
{
	memset(e, 0, sizeof(*e));
	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	char line[512];
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\n");
		assert_true(len > 0 && len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + 1;
		if (strncmp(line, "# HELP ", 7) == 0) {
			size_t n = strcspn(line + 7, " ");
			if (!expo_name_ok(line + 7, n) || line[7 + n] != ' ' || line[8 + n] == '\0')
				fail_msg("bad HELP: %s", line);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			size_t n = strcspn(line + 7, " ");
			const char *type = line + 8 + n;
			if (!expo_name_ok(line + 7, n) || n >= sizeof(e->fam[0].name) ||
			    (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0 &&
			     strcmp(type, "histogram") != 0))
				fail_msg("bad TYPE: %s", line);
			struct expo_family *f = &e->fam[e->nfam++];
			assert_true(e->nfam < EXPO_MAX);
			memcpy(f->name, line + 7, n);
			f->name[n] = '\0';
			if (expo_family(e, f->name) != f)
				fail_msg("TYPE given twice: %s", line);
			snprintf(f->type, sizeof(f->type), "%s", type);
			if (strcmp(type, "counter") == 0 &&
			    (n < 6 || strcmp(f->name + n - 6, "_total") != 0))
				fail_msg("counter not ending in _total: %s", line);
			continue;
		}
		if (line[0] == '#')
			fail_msg("unknown comment: %s", line);
		struct expo_sample *s = &e->s[e->n++];
		assert_true(e->n < EXPO_MAX);
		size_t n = strcspn(line, "{ ");
		if (!expo_name_ok(line, n) || n >= sizeof(s->name))
			fail_msg("bad sample name: %s", line);
		memcpy(s->name, line, n);
		s->name[n] = '\0';
		const char *q = line + n;
		if (*q == '{') {
			const char *end = strchr(q, '}');
			if (end == NULL || (size_t)(end - q - 1) >= sizeof(s->labels))
				fail_msg("bad labels: %s", line);
			memcpy(s->labels, q + 1, (size_t)(end - q - 1));
			s->labels[end - q - 1] = '\0';
			expo_check_labels(s->labels, line);
			q = end + 1;
		}
		if (*q != ' ')
			fail_msg("no value: %s", line);
		char *vend = NULL;
		s->value = strtod(q + 1, &vend);
		if (vend == q + 1 || *vend != '\0' || !isfinite(s->value) || s->value < 0)
			fail_msg("bad value: %s", line);
		/* Its family: the name itself, or a histogram's with a suffix taken off. */
		const struct expo_family *f = expo_family(e, s->name);
		if (f == NULL) {
			static const char *const sfx[] = {"_bucket", "_sum", "_count"};
			for (size_t i = 0; i < 3 && f == NULL; i++) {
				size_t sl = strlen(sfx[i]);
				if (n > sl && strcmp(s->name + n - sl, sfx[i]) == 0) {
					char base[128];
					memcpy(base, s->name, n - sl);
					base[n - sl] = '\0';
					f = expo_family(e, base);
					if (f != NULL && strcmp(f->type, "histogram") != 0)
						f = NULL;
				}
			}
		}
		if (f == NULL)
			fail_msg("sample of no typed family: %s", line);
	}
	expo_histograms(e);
}

/* The value of NAME with LABELS ("" for none), or -1 if absent. */
static double expo_get(const struct expo *e, const char *name, const char *labels)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
			return e->s[i].value;
	return -1;
}

static void expo_histograms(const struct expo *e)
{
	for (size_t f = 0; f < e->nfam; f++) {
		if (strcmp(e->fam[f].type, "histogram") != 0)
			continue;
		char bucket[128], name[128];
		snprintf(bucket, sizeof(bucket), "%s_bucket", e->fam[f].name);
		double last_le = -INFINITY, last = 0;
		bool inf = false;
		size_t buckets = 0;
		for (size_t i = 0; i < e->n; i++) {
			if (strcmp(e->s[i].name, bucket) != 0)
				continue;
			if (inf)
				fail_msg("%s: a bucket after +Inf", bucket);
			const char *le = e->s[i].labels;
			assert_true(strncmp(le, "le=\"", 4) == 0);
			double b =
			    strncmp(le + 4, "+Inf\"", 5) == 0 ? INFINITY : strtod(le + 4, NULL);
			inf = isinf(b);
			if (!(b > last_le) || e->s[i].value < last)
				fail_msg("%s: buckets not ascending and cumulative", bucket);
			last_le = b;
			last = e->s[i].value;
			buckets++;
		}
		if (!inf || buckets < 2)
			fail_msg("%s: no +Inf bucket", bucket);
		snprintf(name, sizeof(name), "%s_count", e->fam[f].name);
		assert_true(expo_get(e, name, "") == last);
		snprintf(name, sizeof(name), "%s_sum", e->fam[f].name);
		assert_true(expo_get(e, name, "") >= 0);
	}
}

#endif
