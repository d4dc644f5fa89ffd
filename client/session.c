/* SPDX-License-Identifier: MIT */
/*
 * One relay connection as the client's modules use it (client.h): connecting with the
 * client's network settings, a request and its reply, and the AUTH signature that binds a
 * mailbox's key to this connection's handshake. The layer under mailboxes, sending and
 * receiving; it calls none of them.
 */
#include <string.h>

#include <sodium.h>

#include "client.h"
#include "routes.h"

/* Connects (BLOCKING) or starts connecting to RELAY with C's settings. */
static int connect_with(struct cairn *c, const char *relay, bool blocking, struct cnet **out)
{
	*out = NULL;
	struct cairn_address named, a;
	if (cairn_address_parse(relay, &named) != 0)
		return CAIRN_EADDRESS;
	/* The stored route for the relay's key, if any (routes.h): the one place where an
	 * address becomes a connection. */
	int rc = client_route(c, &named, &a);
	if (rc != 0)
		return rc;
	struct cnet_options opt = {.socks = c->socks[0] ? c->socks : NULL,
	                           .connect_timeout_ms = c->timeout_ms,
	                           .env = &c->env};
	/* obfs4 goes through the handle's own obfs4proxy, launched now if this is the first
	 * such address (BLOCKING, pt.h); never behind another proxy (net.h). */
	if (a.transport == CAIRN_TRANSPORT_OBFS4 && opt.socks == NULL) {
		char dir[4096];
		if (snprintf(dir, sizeof(dir), "%s/obfs4", c->home) >= (int)sizeof(dir))
			return CAIRN_EINVAL;
		rc = client_pt_socks(&c->pt, dir, c->timeout_ms, &opt.obfs4_socks);
		if (rc != 0)
			return rc;
	}
	return blocking ? cnet_connect(&a, &opt, out) : cnet_start(&a, &opt, out);
}

int client_connect(struct cairn *c, const char *relay, struct cnet **out)
{
	return connect_with(c, relay, true, out);
}

int client_connect_start(struct cairn *c, const char *relay, struct cnet **out)
{
	return connect_with(c, relay, false, out);
}

int client_call(struct cairn *c, struct cnet *n, struct cairn_msg *m, struct cairn_msg *reply)
{
	m->request_id = cnet_next_id(n);
	int rc = cnet_queue(n, m);
	if (rc == 0)
		rc = cnet_flush(n);
	while (rc == 0) {
		rc = cnet_recv(n, reply, c->timeout_ms);
		if (rc == 0 && reply->request_id == m->request_id &&
		    reply->type != CAIRN_REPLY_ENVELOPE && reply->type != CAIRN_REPLY_END)
			return reply->type == CAIRN_REPLY_ERROR ? cairn_wire_error(reply->code) : 0;
	}
	return rc;
}

void client_auth_signature(const struct cnet *n, const struct my_mailbox *mb, uint8_t sig[64])
{
	uint8_t msg[12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN];
	memcpy(msg, "cairn/1 auth", 12);
	memcpy(msg + 12, cnet_handshake_hash(n), CAIRN_HASH_LEN);
	memcpy(msg + 12 + CAIRN_HASH_LEN, mb->recipient_id, CAIRN_MAILBOX_ID_LEN);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), mb->sign_sk);
}
