/* SPDX-License-Identifier: MIT */
/*
 * What the intake tests through the real `cairn` command share: see it_intake_common.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cliproc.h"
#include "it_common.h"
#include "it_intake_common.h"

/* HOME's `requests --json`, every field of every request checked, into R (up to CAP);
 * returns the count. */
size_t requests(const char *home, struct request *r, size_t cap)
{
	struct res out = cli_expect(0, CALL(.home = home), ARGS("requests", "--json"));
	cJSON *a = cJSON_Parse(out.out);
	if (a == NULL)
		fprintf(stderr, "requests --json is not JSON: %s\n", out.out);
	assert_true(cJSON_IsArray(a));
	size_t n = 0;
	for (cJSON *o = a->child; o != NULL; o = o->next) {
		assert_int_equal(cJSON_GetArraySize(o), 5);
		cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
		cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "intake");
		cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "preview");
		cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "messages");
		cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "first_at");
		assert_true(cJSON_IsString(id) && cJSON_IsString(in) && cJSON_IsString(p) &&
		            cJSON_IsNumber(m) && cJSON_IsNumber(t));
		assert_true(m->valueint >= 1);
		assert_true(t->valuedouble > 1.7e9);
		assert_true(n < cap);
		snprintf(r[n].id, sizeof(r[n].id), "%s", id->valuestring);
		snprintf(r[n].intake, sizeof(r[n].intake), "%s", in->valuestring);
		snprintf(r[n].preview, sizeof(r[n].preview), "%s", p->valuestring);
		r[n].messages = m->valueint;
		n++;
	}
	cJSON_Delete(a);
	res_free(&out);
	return n;
}

/* The request whose preview starts with TEXT, or NULL. */
const struct request *find_request(const struct request *r, size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(r[i].preview, text, strlen(text)) == 0)
			return &r[i];
	return NULL;
}

void address_of(const struct relayproc *r, char out[CAIRN_ADDRESS_MAX + 1])
{
	struct cairn_address a = {.host_type = CAIRN_HOST_IPV4, .port = r->port};
	memcpy(a.key, r->pub, sizeof(a.key));
	strcpy(a.host, "127.0.0.1");
	assert_int_equal(cairn_address_format(&a, out, CAIRN_ADDRESS_MAX + 1), 0);
}

/* The sender id of the first point of the intake address TEXT (PROTOCOL.md 10.1: version,
 * identity, count, then the points, each starting with its sender id). */
void intake_sender_id(const char *text, uint8_t sid[24])
{
	uint8_t bin[1514];
	size_t len = 0;
	assert_int_equal(strncmp(text, "cairn-intake:", 13), 0);
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), text + 13, strlen(text + 13), NULL,
	                                   &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
	                 0);
	assert_true(len >= 85);
	assert_int_equal(bin[0], 4);
	memcpy(sid, bin + 34, 24);
}

/* Creates HOME and has it accept ADDRESS as NAME and send TEXT; the send's exit status. */
int defender_writes(const char *home, const char *address, const char *name, const char *text)
{
	cli_check(0, CALL(.home = home), ARGS("init"));
	cli_check(0, CALL(.home = home), ARGS("accept", address, "--name", name));
	struct res r = cli_run(CALL(.home = home), ARGS("send", name, text));
	int status = r.status;
	if (status != 0)
		fprintf(stderr, "%s: send: %s", home, r.err);
	res_free(&r);
	return status;
}
