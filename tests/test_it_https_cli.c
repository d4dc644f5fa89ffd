/* SPDX-License-Identifier: MIT */
/*
 * A defender who reaches the relay only through cairn+https, end to end with the real
 * binaries: cairn-relay with its [https] listener, real nginx running docs/OPERATING.md's site
 * (tests/support/nginxproc, a self-signed certificate, pinned), and two `cairn` homes. Once
 * with invites that name the https address, once with invites that name a direct address no
 * one listens on and a stored route (`cairn relay route`) to the https one, and once through a
 * SOCKS5 proxy (microsocks, as Tor would be: TLS inside the proxied stream). Messages go both
 * ways, each sent while its receiver is offline (store and forward).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "cairn/address.h"
#include "client_net_common.h"
#include "cliproc.h"
#include "nginxproc.h"
#include "relayproc.h"

#define PATH "k3Jx9-wq_Tn2LmA7pQe0Vg"

static struct relayproc relay;
static struct nginxproc ng;
static char https_addr[CAIRN_ADDRESS_MAX + 1];
static char root[64];

/* The pin of the certificate nginx presents: SHA-256 of its SubjectPublicKeyInfo. */
static int cert_pin(const char *pem, uint8_t pin[32])
{
	FILE *f = fopen(pem, "r");
	if (f == NULL)
		return -1;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return -1;
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	X509_free(x);
	if (len <= 0)
		return -1;
	crypto_hash_sha256(pin, der, (unsigned long long)len);
	OPENSSL_free(der);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0 || find_cli() != 0) {
		fprintf(stderr, "setup: the cairn binary is not built\n");
		return -1;
	}
	uint16_t listen_port = loopback_free_port();
	char conf[256], listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", listen_port);
	snprintf(conf, sizeof(conf), "[https]\nlisten = %s\npath = " PATH "\n", listen);
	if (relayproc_init(&relay, conf) != 0 || relayproc_start(&relay) != 0) {
		fprintf(stderr, "setup: cannot start the relay\n");
		return -1;
	}
	if (nginxproc_start(&ng, PATH, listen) != 0) {
		fprintf(stderr, "setup: nginx did not start\n");
		return -1;
	}
	struct cairn_address a;
	memset(&a, 0, sizeof(a));
	memcpy(a.key, relay.pub, sizeof(a.key));
	a.host_type = CAIRN_HOST_IPV4;
	strcpy(a.host, "127.0.0.1");
	a.port = ng.port;
	a.transport = CAIRN_TRANSPORT_HTTPS;
	strcpy(a.path, PATH);
	a.has_pin = 1;
	if (cert_pin(ng.cert, a.pin) != 0 ||
	    cairn_address_format(&a, https_addr, sizeof(https_addr)) != 0) {
		fprintf(stderr, "setup: cannot read nginx's certificate\n");
		return -1;
	}
	strcpy(root, "/tmp/cairn-https-cli-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	reap(world.socks_pid);
	nginxproc_stop(&ng);
	relayproc_stop(&relay, SIGTERM);
	relayproc_cleanup(&relay);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* A message from FROM to TO (what FROM calls it: TO_NAME), sent while TO is offline, then
 * TO's sync receives it; TEXT appears once in TO's conversation with FROM_NAME. */
static void one_way(const char *from, const char *to_name, const char *to, const char *from_name,
                    const char *text)
{
	cli_check(0, CALL(.home = from), ARGS("send", to_name, text));
	sync_expect(CALL(.home = to), 0, 1);
	struct convo c = read_convo(to, from_name);
	assert_int_equal(count_text(&c, 0, text), 1);
	convo_free(&c);
}

/* Invites naming the https address: the homes know no other. */
static void test_https_invite(void **state)
{
	(void)state;
	char a[128], b[128];
	snprintf(a, sizeof(a), "%s/a1", root);
	snprintf(b, sizeof(b), "%s/b1", root);
	/* pair: init, invite, accept, and a message each way, each through sync. */
	pair(a, b, https_addr, NULL);
	one_way(a, "bob", b, "alice", "through the web server, a to b");
	one_way(b, "alice", a, "bob", "through the web server, b to a");
}

/* Invites naming a direct address that nothing answers; the route carries every connection. */
static void test_direct_invite_and_route(void **state)
{
	(void)state;
	char a[128], b[128], direct[CAIRN_ADDRESS_MAX + 1];
	snprintf(a, sizeof(a), "%s/a2", root);
	snprintf(b, sizeof(b), "%s/b2", root);
	struct cairn_address d;
	memset(&d, 0, sizeof(d));
	memcpy(d.key, relay.pub, sizeof(d.key));
	d.host_type = CAIRN_HOST_IPV4;
	strcpy(d.host, "127.0.0.1");
	d.port = loopback_free_port(); /* closed: a censor's block */
	assert_int_equal(cairn_address_format(&d, direct, sizeof(direct)), 0);

	cli_check(0, CALL(.home = a), ARGS("init"));
	cli_check(0, CALL(.home = b), ARGS("init"));
	cli_check(0, CALL(.home = a), ARGS("relay", "route", https_addr));
	cli_check(0, CALL(.home = b), ARGS("relay", "route", https_addr));
	struct res r = cli_expect(0, CALL(.home = b), ARGS("relay", "routes", "--json"));
	assert_non_null(strstr(r.out, https_addr));
	res_free(&r);
	struct res inv =
	    cli_expect(0, CALL(.home = a), ARGS("invite", "--relay", direct, "--name", "bob"));
	inv.out[strcspn(inv.out, "\n")] = '\0';
	cli_check(0, CALL(.home = b), ARGS("accept", inv.out, "--name", "alice"));
	res_free(&inv);
	one_way(b, "alice", a, "bob", "routed, b to a");
	one_way(a, "bob", b, "alice", "routed, a to b");
	one_way(b, "alice", a, "bob", "routed again, b to a");

	/* Without the route, the direct address is all there is: nothing reaches the relay. */
	cli_check(0, CALL(.home = a), ARGS("relay", "unroute", direct));
	cli_check(3, CALL(.home = a), ARGS("send", "bob", "blocked"));
}

/* The https address through a SOCKS5 proxy: every command with --socks. */
static void test_https_through_socks5(void **state)
{
	(void)state;
	need_microsocks(&world);
	char a[128], b[128];
	snprintf(a, sizeof(a), "%s/a3", root);
	snprintf(b, sizeof(b), "%s/b3", root);
	pair(a, b, https_addr, world.socks);
	cli_check(0, CALL(.home = a, .socks = world.socks), ARGS("send", "bob", "via the proxy"));
	sync_expect(CALL(.home = b, .socks = world.socks), 0, 1);
	struct convo c = read_convo(b, "alice");
	assert_int_equal(count_text(&c, 0, "via the proxy"), 1);
	convo_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_https_invite),
	    cmocka_unit_test(test_direct_invite_and_route),
	    cmocka_unit_test(test_https_through_socks5),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
