/* SPDX-License-Identifier: MIT */
/*
 * Stored routes (routes.h, cairn.h's cairn_route_*): a defender behind a censor holds invites
 * that name a relay's direct address, and reaches that relay only by its https or obfs4
 * address. The table maps the relay's key (what the client authenticates) to the address to
 * use; the address a contact or an invite named stays as it was, and is never dialled while a
 * route for its key exists.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "routes.h"
#include "state.h"

#define ROUTE_VERSION  1
#define ROUTE_KEY_TEXT 43 /* base64url of 32 bytes, no padding */

/* The record: version || the address's text (no NUL). */
static int route_encode(const struct cairn_address *a, uint8_t *out, size_t cap, size_t *len)
{
	if (cap < 1)
		return CAIRN_ENOBUFS;
	out[0] = ROUTE_VERSION;
	int rc = cairn_address_format(a, (char *)out + 1, cap - 1);
	if (rc != 0)
		return rc;
	*len = 1 + strlen((const char *)out + 1);
	return 0;
}

/* Parses record VALUE (LEN bytes) into *A. Returns 0 or CAIRN_ECORRUPT. */
static int route_decode(const uint8_t *value, size_t len, struct cairn_address *a)
{
	char text[CAIRN_ADDRESS_MAX + 1];
	if (len < 2 || len - 1 > CAIRN_ADDRESS_MAX || value[0] != ROUTE_VERSION ||
	    memchr(value + 1, '\0', len - 1) != NULL)
		return CAIRN_ECORRUPT;
	memcpy(text, value + 1, len - 1);
	text[len - 1] = '\0';
	return cairn_address_parse(text, a) == 0 ? 0 : CAIRN_ECORRUPT;
}

int client_route(struct cairn *c, const struct cairn_address *relay, struct cairn_address *out)
{
	uint8_t *value = NULL;
	size_t len = 0;
	int rc = cstate_get(c->st, REC_ROUTE, relay->key, sizeof(relay->key), &value, &len);
	if (rc == CAIRN_ENOTFOUND) {
		*out = *relay;
		return 0;
	}
	if (rc != 0)
		return rc;
	rc = route_decode(value, len, out);
	cstate_free_value(value, len);
	/* A route stored for a key names that key: anything else is a damaged record. */
	if (rc == 0 && sodium_memcmp(out->key, relay->key, sizeof(out->key)) != 0)
		rc = CAIRN_ECORRUPT;
	return rc;
}

int cairn_route_set(struct cairn *c, const char *address)
{
	if (c == NULL || address == NULL)
		return CAIRN_EINVAL;
	struct cairn_address a;
	if (cairn_address_parse(address, &a) != 0)
		return CAIRN_EADDRESS;
	uint8_t value[1 + CAIRN_ADDRESS_MAX + 1];
	size_t len = 0;
	int rc = route_encode(&a, value, sizeof(value), &len);
	if (rc == 0)
		rc = cstate_put(c->st, REC_ROUTE, a.key, sizeof(a.key), value, len);
	sodium_memzero(value, sizeof(value));
	return rc;
}

/* The relay key named by TEXT, an address or the key alone, into KEY. 0 or CAIRN_EADDRESS. */
static int route_key_of(const char *text, uint8_t key[CAIRN_KEY_LEN])
{
	struct cairn_address a;
	if (cairn_address_parse(text, &a) == 0) {
		memcpy(key, a.key, CAIRN_KEY_LEN);
		return 0;
	}
	/* The key alone: canonical base64url, as an address carries it (PROTOCOL.md 1). */
	size_t n = 0;
	char again[ROUTE_KEY_TEXT + 1];
	if (strlen(text) != ROUTE_KEY_TEXT ||
	    sodium_base642bin(key, CAIRN_KEY_LEN, text, ROUTE_KEY_TEXT, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != CAIRN_KEY_LEN)
		return CAIRN_EADDRESS;
	sodium_bin2base64(again, sizeof(again), key, CAIRN_KEY_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strcmp(again, text) == 0 ? 0 : CAIRN_EADDRESS;
}

int cairn_route_remove(struct cairn *c, const char *address_or_key)
{
	if (c == NULL || address_or_key == NULL)
		return CAIRN_EINVAL;
	uint8_t key[CAIRN_KEY_LEN];
	int rc = route_key_of(address_or_key, key);
	if (rc != 0)
		return rc;
	uint8_t *value = NULL;
	size_t len = 0;
	if ((rc = cstate_get(c->st, REC_ROUTE, key, sizeof(key), &value, &len)) != 0)
		return rc;
	cstate_free_value(value, len);
	return cstate_del(c->st, REC_ROUTE, key, sizeof(key));
}

struct routes_ctx {
	cairn_route_cb cb;
	void *ctx;
	int rc; /* a record that could not be read */
};

static int route_one(void *vctx, const uint8_t *value, size_t len)
{
	struct routes_ctx *x = vctx;
	struct cairn_address a;
	char key[ROUTE_KEY_TEXT + 1], text[CAIRN_ADDRESS_MAX + 1];
	if (route_decode(value, len, &a) != 0 ||
	    cairn_address_format(&a, text, sizeof(text)) != 0) {
		x->rc = CAIRN_ECORRUPT;
		return CAIRN_ECORRUPT;
	}
	sodium_bin2base64(key, sizeof(key), a.key, sizeof(a.key),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	struct cairn_route r = {.key = key, .address = text};
	return x->cb(x->ctx, &r);
}

int cairn_routes(struct cairn *c, cairn_route_cb cb, void *ctx)
{
	if (c == NULL || cb == NULL)
		return CAIRN_EINVAL;
	struct routes_ctx x = {cb, ctx, 0};
	int rc = cstate_list(c->st, REC_ROUTE, route_one, &x);
	return x.rc < 0 ? x.rc : rc;
}
