/* SPDX-License-Identifier: MIT */
/*
 * The relay's signed policy (relaypolicy.h). One XEdDSA signature at start and per SIGHUP,
 * on the loop thread: the operator, not a peer, decides when that happens.
 */
#include "relaypolicy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/error.h"
#include "codec.h"
#include "command_layer.h"
#include "log.h"
#include "relay.h"

/* Reads PATH (at most POLICY_TEXT_MAX bytes of UTF-8; one trailing newline dropped). */
static int read_statement(const char *path, char out[POLICY_TEXT_MAX + 1], char *err, size_t errcap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errcap, "[policy] statement_file %s: %s", path, strerror(errno));
		return CAIRN_EIO;
	}
	char buf[POLICY_TEXT_MAX + 2];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errcap, "[policy] statement_file %s: %s", path,
			         strerror(errno));
			close(fd);
			return CAIRN_EIO;
		}
		if (r == 0 || (n += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > POLICY_TEXT_MAX || !policy_text_valid(buf, n)) {
		snprintf(err, errcap,
		         "[policy] statement_file %s: more than %d bytes, or not UTF-8 text", path,
		         POLICY_TEXT_MAX);
		return CAIRN_EINVAL;
	}
	memcpy(out, buf, n);
	out[n] = '\0';
	return 0;
}

int relay_policy_build(const struct relay_config *running, const struct relay_config *texts,
                       const uint8_t private_key[32], struct relay_policy *out,
                       struct policy *fields, char *err, size_t errcap)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errcap, "out of memory");
		return CAIRN_ENOMEM;
	}
	memset(out, 0, sizeof(*out));
	int rc = 0;
	snprintf(p->jurisdiction, sizeof(p->jurisdiction), "%s", texts->policy_jurisdiction);
	snprintf(p->contact, sizeof(p->contact), "%s", texts->policy_contact);
	snprintf(p->logging, sizeof(p->logging), "%s", texts->policy_logging);
	snprintf(p->retention, sizeof(p->retention), "%s", texts->policy_retention);
	snprintf(p->statement, sizeof(p->statement), "%s", texts->policy_statement);
	if (texts->policy_statement_file[0] != '\0')
		rc = read_statement(texts->policy_statement_file, p->statement, err, errcap);
	if (rc != 0)
		goto out;
	p->ttl_s = running->ttl_s;
	p->forwarding = running->forward_enabled ? 1 : 0;
	if (fields != NULL)
		*fields = *p;
	/* Nothing written by the operator: no policy (ttl and forwarding alone promise nothing
	 * an operator chose to publish). */
	if (p->jurisdiction[0] == '\0' && p->contact[0] == '\0' && p->logging[0] == '\0' &&
	    p->retention[0] == '\0' && p->statement[0] == '\0')
		goto out;
	rc = policy_edwards(private_key, p->edwards);
	if (rc == 0)
		rc = policy_encode(p, out->body, sizeof(out->body), &out->body_len);
	if (rc == CAIRN_ENOBUFS) {
		snprintf(err, errcap,
		         "[policy]: the texts together are over %d bytes; shorten them",
		         POLICY_BODY_MAX - 64);
		goto out;
	}
	if (rc == 0)
		rc = policy_sign(private_key, out->body, out->body_len, NULL, out->sig);
	if (rc != 0) {
		snprintf(err, errcap, "[policy]: cannot sign: %s", cairn_strerror(rc));
		goto out;
	}
	if (fields != NULL)
		memcpy(fields->edwards, p->edwards, 32);
	policy_digest(out->body, out->body_len, out->digest);
	out->present = true;
out:
	free(p);
	return rc;
}

int relay_policy_start(struct relay *relay)
{
	char err[512];
	relay->policy = calloc(1, sizeof(*relay->policy));
	if (relay->policy == NULL)
		return CAIRN_ENOMEM;
	int rc = relay_policy_build(relay->cfg, relay->cfg, relay->private_key, relay->policy, NULL,
	                            err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		return rc;
	}
	if (relay->policy->present)
		log_info("publishing a signed policy (%zu bytes)", relay->policy->body_len);
	return 0;
}

void relay_policy_reload(struct relay *relay)
{
	char err[512];
	const struct relay_config *cfg = relay->cfg;
	struct relay_config *texts = malloc(sizeof(*texts));
	struct relay_policy *next = malloc(sizeof(*next));
	if (texts == NULL || next == NULL) {
		log_warn("policy not reloaded: out of memory");
		goto out;
	}
	relay_config_defaults(texts);
	if (cfg->config_file[0] != '\0' &&
	    relay_config_load(texts, cfg->config_file, err, sizeof(err)) != 0) {
		log_warn("policy not reloaded, the old one is still served: %s", err);
		goto out;
	}
	if (relay_policy_build(cfg, texts, relay->private_key, next, NULL, err, sizeof(err)) != 0) {
		log_warn("policy not reloaded, the old one is still served: %s", err);
		goto out;
	}
	bool changed = next->present != relay->policy->present ||
	               (next->present && memcmp(next->digest, relay->policy->digest, 32) != 0);
	free(relay->policy);
	relay->policy = next;
	next = NULL;
	log_info(changed ? "policy reloaded: changed (%s)" : "policy reloaded: unchanged (%s)",
	         relay->policy->present ? "published" : "none published");
out:
	free(texts);
	free(next);
}

void relay_policy_free(struct relay *relay)
{
	free(relay->policy);
	relay->policy = NULL;
}

void relay_policy_command(struct peer *p, const struct cairn_msg *m)
{
	const struct relay_policy *pol = p->relay->policy;
	struct cairn_msg r = {.type = CAIRN_REPLY_POLICY, .request_id = m->request_id};
	if (pol != NULL && pol->present) {
		if (m->credential != NULL && sodium_memcmp(m->credential, pol->digest, 32) == 0) {
			peer_reply_ok(p, m->request_id);
			return;
		}
		r.policy = pol->body;
		r.policy_len = pol->body_len;
		r.signature = pol->sig;
	}
	peer_reply(p, &r);
}
