/* SPDX-License-Identifier: MIT */
/*
 * Stored routes (routes.c): "reach the relay with key K by address A", sealed in the store like
 * every record (REC_ROUTE, looked up by the store's keyed hash of K). One function turns the
 * address a module names into the one to connect to, so that every connection to a relay
 * (session.c's connect_with, and whatever else opens a cnet) follows the same table.
 */
#ifndef CAIRN_CLIENT_ROUTES_H
#define CAIRN_CLIENT_ROUTES_H

#include "cairn/address.h"
#include "cairn/error.h"

struct cairn;

enum { REC_ROUTE = 50 }; /* key: the relay's 32-byte key; value: version 1 || address text */

/*
 * The address to connect to for RELAY (borrowed): the stored route for its key, else RELAY
 * itself, into *OUT. Returns 0, or a store error (CAIRN_ECORRUPT, CAIRN_EIO): a route that
 * cannot be read is never replaced by the address it was stored to avoid.
 */
CAIRN_WARN_UNUSED int client_route(struct cairn *c, const struct cairn_address *relay,
                                   struct cairn_address *out);

#endif
