/* SPDX-License-Identifier: MIT */
/*
 * POLICY in the relay's command layer (docs/PROTOCOL.md 5.13), on the rig of
 * test_relay_commands.c (support/cmdrig.h): no policy configured (the reply is nil whatever
 * `have` is), a published policy (nil and stale `have` get the signed body, the current digest
 * gets OK), ttl and forwarding taken from the running configuration, statement_file, and the
 * SIGHUP reload (relay_policy_reload) from the config file: a change, a broken file that keeps
 * the old policy, and a withdrawal. POLICY is answered even at the in-flight limit, like PING.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "relaypolicy.h"
#include "support/cmdrig.h"

static uint8_t relay_sk[32];
static char conf_path[64];

static int pol_setup(void **state)
{
	int rc = setup(state);
	memset(relay_sk, 0x72, sizeof(relay_sk));
	relay->private_key = relay_sk;
	crypto_scalarmult_base(relay->public_key, relay_sk);
	snprintf(conf_path, sizeof(conf_path), "/tmp/cairn-test-policy-XXXXXX");
	int fd = mkstemp(conf_path);
	if (fd < 0)
		return -1;
	close(fd);
	snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", conf_path);
	return rc;
}

static int pol_teardown(void **state)
{
	relay_policy_free(relay);
	unlink(conf_path);
	cfg.config_file[0] = '\0';
	memset(cfg.policy_jurisdiction, 0, sizeof(cfg.policy_jurisdiction));
	memset(cfg.policy_contact, 0, sizeof(cfg.policy_contact));
	memset(cfg.policy_statement, 0, sizeof(cfg.policy_statement));
	memset(cfg.policy_statement_file, 0, sizeof(cfg.policy_statement_file));
	return teardown(state);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void policy_cmd(struct conn *c, uint32_t rid, const uint8_t *have)
{
	struct cairn_msg m = {.type = CAIRN_CMD_POLICY, .request_id = rid, .credential = have};
	command(c, &m);
}

/* The next reply of C is POLICY for RID: nil (WANT_NIL) or a body that verifies; its digest
 * goes to DIGEST. */
static void expect_policy(struct conn *c, uint32_t rid, int want_nil, uint8_t digest[32])
{
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_equal(r->type, CAIRN_REPLY_POLICY);
	assert_int_equal(r->request_id, rid);
	if (want_nil) {
		assert_int_equal(r->policy_len, 0);
		return;
	}
	assert_true(r->policy_len > 0);
	assert_int_equal(r->policy_verified, 0);
	if (digest != NULL)
		memcpy(digest, r->policy_digest, 32);
}

static void test_no_policy(void **state)
{
	(void)state;
	struct conn *c = open_conn();
	uint8_t have[32];
	memset(have, 0x5a, sizeof(have));
	/* relay->policy NULL: as a rig without the module's start */
	policy_cmd(c, 1, NULL);
	expect_policy(c, 1, 1, NULL);
	/* started with nothing in [policy]: none published */
	assert_int_equal(relay_policy_start(relay), 0);
	assert_false(relay->policy->present);
	policy_cmd(c, 2, NULL);
	expect_policy(c, 2, 1, NULL);
	policy_cmd(c, 3, have);
	expect_policy(c, 3, 1, NULL);
	expect_nothing(c);
}

static void test_published(void **state)
{
	(void)state;
	snprintf(cfg.policy_jurisdiction, sizeof(cfg.policy_jurisdiction), "Iceland");
	snprintf(cfg.policy_contact, sizeof(cfg.policy_contact), "ops@example.org");
	cfg.forward_enabled = 1;
	assert_int_equal(relay_policy_start(relay), 0);
	assert_true(relay->policy->present);
	struct policy p;
	assert_int_equal(policy_verify(relay->public_key, relay->policy->body,
	                               relay->policy->body_len, relay->policy->sig, &p),
	                 0);
	assert_string_equal(p.jurisdiction, "Iceland");
	assert_int_equal(p.ttl_s, TTL_S); /* from the running configuration */
	assert_int_equal(p.forwarding, 1);

	struct conn *c = open_conn(); /* anonymous: no mailbox */
	uint8_t d[32], stale[32];
	policy_cmd(c, 1, NULL);
	expect_policy(c, 1, 0, d);
	assert_memory_equal(d, relay->policy->digest, 32);
	policy_cmd(c, 2, d);
	expect_ok(c, 2);
	memcpy(stale, d, 32);
	stale[31] ^= 1;
	policy_cmd(c, 3, stale);
	expect_policy(c, 3, 0, NULL);

	/* at the in-flight limit, POLICY is still answered, like PING */
	relay_policy_free(relay);
	uint32_t saved = cfg.inflight_requests;
	cfg.inflight_requests = 0;
	assert_int_equal(relay_policy_start(relay), 0);
	policy_cmd(c, 4, d);
	struct reply *r = next_reply(c);
	assert_non_null(r);
	assert_int_not_equal(r->type, CAIRN_REPLY_ERROR);
	cfg.inflight_requests = saved;
	expect_nothing(c);
}

static void test_statement_file(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/cairn-test-stmt-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "We keep nothing.\n", 17), 17);
	close(fd);
	snprintf(cfg.policy_statement_file, sizeof(cfg.policy_statement_file), "%s", path);
	struct relay_policy pol;
	struct policy f;
	char err[256];
	assert_int_equal(relay_policy_build(&cfg, &cfg, relay_sk, &pol, &f, err, sizeof(err)), 0);
	assert_true(pol.present);
	assert_string_equal(f.statement, "We keep nothing.");
	/* over 1024 bytes: refused with a message */
	static char big[1100];
	memset(big, 'x', sizeof(big));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	close(fd);
	assert_int_not_equal(relay_policy_build(&cfg, &cfg, relay_sk, &pol, &f, err, sizeof(err)),
	                     0);
	assert_non_null(strstr(err, "statement_file"));
	unlink(path);
	assert_int_not_equal(relay_policy_build(&cfg, &cfg, relay_sk, &pol, &f, err, sizeof(err)),
	                     0);
}

static void test_reload(void **state)
{
	(void)state;
	write_conf("[policy]\ncontact = first\n");
	struct relay_config texts;
	char err[256];
	relay_config_defaults(&texts);
	assert_int_equal(relay_config_load(&texts, conf_path, err, sizeof(err)), 0);
	memcpy(cfg.policy_contact, texts.policy_contact, sizeof(cfg.policy_contact));
	assert_int_equal(relay_policy_start(relay), 0);
	struct conn *c = open_conn();
	uint8_t d1[32], d2[32];
	policy_cmd(c, 1, NULL);
	expect_policy(c, 1, 0, d1);

	/* the operator changes it and sends SIGHUP */
	write_conf("[policy]\ncontact = second\n");
	relay_policy_reload(relay);
	policy_cmd(c, 2, d1);
	expect_policy(c, 2, 0, d2);
	assert_memory_not_equal(d1, d2, 32);
	struct policy p;
	assert_int_equal(policy_decode(relay->policy->body, relay->policy->body_len, &p), 0);
	assert_string_equal(p.contact, "second");

	/* a broken file: the old policy is still served */
	write_conf("[policy]\ncontact = third\nnot a key line\n");
	relay_policy_reload(relay);
	policy_cmd(c, 3, d2);
	expect_ok(c, 3);

	/* withdrawn */
	write_conf("[policy]\n");
	relay_policy_reload(relay);
	policy_cmd(c, 4, d2);
	expect_policy(c, 4, 1, NULL);
	expect_nothing(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_policy, pol_setup, pol_teardown),
	    cmocka_unit_test_setup_teardown(test_published, pol_setup, pol_teardown),
	    cmocka_unit_test_setup_teardown(test_statement_file, pol_setup, pol_teardown),
	    cmocka_unit_test_setup_teardown(test_reload, pol_setup, pol_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
