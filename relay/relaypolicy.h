/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (docs/PROTOCOL.md 5.13): built and signed from the [policy] keys
 * and the running configuration's ttl and [forward] enabled once at start and once per SIGHUP,
 * never per request; the POLICY command copies the prepared body and signature.
 */
#ifndef CAIRN_RELAY_RELAYPOLICY_H
#define CAIRN_RELAY_RELAYPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

struct relay;
struct peer;
struct cairn_msg;

/* A prepared policy: PRESENT false when the operator publishes none (every text empty). */
struct relay_policy {
	bool present;
	uint8_t body[POLICY_BODY_MAX];
	size_t body_len;
	uint8_t digest[POLICY_DIGEST_LEN];
	uint8_t sig[POLICY_SIG_LEN];
};

/*
 * Builds OUT from TEXTS' [policy] keys (statement_file read here) and RUNNING's ttl and
 * [forward] enabled, signed with PRIVATE_KEY. FIELDS, when non-NULL, gets the decoded body
 * (for `cairn-relay policy`). Returns 0, or CAIRN_EINVAL / CAIRN_EIO with a message in ERR.
 */
int relay_policy_build(const struct relay_config *running, const struct relay_config *texts,
                       const uint8_t private_key[32], struct relay_policy *out,
                       struct policy *fields, char *err, size_t errcap);

/* At start: builds relay->policy (allocated, owned by RELAY, freed by relay_policy_free).
 * Returns 0 or an error after logging what to fix. */
int relay_policy_start(struct relay *relay);

/* SIGHUP: reads [policy] again from cfg->config_file and swaps the policy in; on any error
 * logs it and keeps serving the old one. */
void relay_policy_reload(struct relay *relay);

void relay_policy_free(struct relay *relay);

/* The POLICY command (costs as PING: a compare and a copy). */
void relay_policy_command(struct peer *p, const struct cairn_msg *m);

#endif
