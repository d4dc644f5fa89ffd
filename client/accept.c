/* SPDX-License-Identifier: MIT */
/*
 * What accepting an invite and accepting an intake address share (client.h): the checks of
 * the arguments and of the inviter's identity against our names, our own mailboxes for the
 * reply, keeping the new session, and reading the text form (a scheme, then base64url).
 * invites.c and intake_accept.c build on it; it knows neither.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client.h"

/*
 * Checks a list of relay addresses given for our own mailboxes: 1..CAIRN_RELAYS_MAX of them,
 * each an address (CAIRN_EADDRESS), no relay twice (CAIRN_EINVAL). The same relay under two
 * host names is one relay: the key decides.
 */
int client_check_relays(const char *const *relays, size_t n)
{
	struct cairn_address a[CAIRN_RELAYS_MAX];
	if (relays == NULL || n == 0 || n > CAIRN_RELAYS_MAX)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (relays[i] == NULL || cairn_address_parse(relays[i], &a[i]) != 0)
			return CAIRN_EADDRESS;
		for (size_t j = 0; j < i; j++)
			if (memcmp(a[i].key, a[j].key, CAIRN_KEY_LEN) == 0)
				return CAIRN_EINVAL;
	}
	return 0;
}

/* Deletes the mailboxes of K again, best effort: made for a contact that is not kept. */
void client_drop_mailboxes(struct cairn *c, const struct contact *k)
{
	for (size_t i = 0; i < k->nmine; i++) {
		int rc = client_delete_mailbox(c, &k->mine[i]);
		(void)rc; /* one left behind sits empty on its relay */
	}
}

int client_accept_args(struct cairn *c, const char *name, const char *const *relays, size_t nrelays)
{
	if (c->engine != NULL)
		return CAIRN_ESTATE; /* its first message would wait for the engine's relays */
	if (!client_valid_name(name))
		return CAIRN_EINVAL;
	return nrelays > 0 ? client_check_relays(relays, nrelays) : 0;
}

int client_accept_check(struct cairn *c, const uint8_t identity[CAIRN_KEY_LEN], const char *name)
{
	if (sodium_memcmp(identity, c->identity_pk, CAIRN_KEY_LEN) == 0)
		return CAIRN_EINVITE; /* our own */
	struct name_entry taken;
	int rc = client_name_lookup(c, name, &taken); /* a contact's or a group's */
	if (rc != CAIRN_ENOTFOUND)
		return rc == 0 ? CAIRN_EEXIST : rc;
	return 0;
}

int client_accept_mailboxes(struct cairn *c, struct contact *k, const char *const *ours,
                            size_t nours, bool create)
{
	if (!create) {
		/* Every first message names all our mailboxes: they must fit its reply. */
		uint8_t reply[APPMSG_REPLY_MAX];
		size_t reply_len = 0;
		for (size_t i = 0; i < nours; i++)
			strcpy(k->mine[i].relay, ours[i]);
		k->nmine = (uint8_t)nours;
		int rc = client_build_reply(k, reply, sizeof(reply), &reply_len);
		memset(k->mine, 0, sizeof(k->mine));
		k->nmine = 0;
		sodium_memzero(reply, sizeof(reply));
		return rc;
	}
	/* A relay that does not answer is left out; one that does is enough. */
	int first_rc = 0;
	for (size_t i = 0; i < nours; i++) {
		int one = client_create_mailbox(c, ours[i], &k->mine[k->nmine]);
		if (one == 0)
			k->nmine++;
		else if (first_rc == 0)
			first_rc = one;
	}
	return k->nmine > 0 ? 0 : first_rc;
}

int client_keep_session(struct contact *k, const struct ratchet *r)
{
	k->ratchet_len = ratchet_serialized_len(r);
	k->ratchet = malloc(k->ratchet_len);
	return k->ratchet ? ratchet_serialize(r, k->ratchet, k->ratchet_len, &k->ratchet_len)
	                  : CAIRN_ENOMEM;
}

int client_scheme_decode(const char *text, const char *scheme, uint8_t *bin, size_t cap,
                         size_t *len)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	size_t n = strlen(text);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
	                 text[n - 1] == '\t'))
		n--;
	size_t sl = strlen(scheme);
	*len = 0;
	if (n <= sl || strncmp(text, scheme, sl) != 0)
		return CAIRN_EINVITE;
	const char *end = NULL;
	int rc = sodium_base642bin(bin, cap, text + sl, n - sl, NULL, len, &end,
	                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return rc == 0 && end == text + n ? 0 : CAIRN_EINVITE;
}

int client_scheme_encode(const char *scheme, const uint8_t *bin, size_t len, char **text)
{
	size_t skip = strlen(scheme);
	size_t tlen =
	    skip + sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*text = malloc(tlen);
	if (*text == NULL)
		return CAIRN_ENOMEM;
	memcpy(*text, scheme, skip);
	sodium_bin2base64(*text + skip, tlen - skip, bin, len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}
