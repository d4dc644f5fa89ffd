/* SPDX-License-Identifier: MIT */
/*
 * The relay's config file: the embedded defaults are limits.h, every key can be set, every kind
 * of mistake is refused with its line number, and the file `init` writes documents the
 * defaults truthfully (it loads, commented or not, to exactly the defaults).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "config.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-test-config-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/cairn.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	unlink(path);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void test_defaults_are_limits_h(void **state)
{
	struct relay_config c;
	relay_config_defaults(&c);
	assert_string_equal(c.listen_host, CAIRN_DEFAULT_LISTEN_HOST);
	assert_int_equal(c.listen_port, CAIRN_DEFAULT_PORT);
	assert_string_equal(c.user, "");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_string_equal(c.log_file, "");
	assert_int_equal(c.stats_interval_s, CAIRN_DEFAULT_STATS_INTERVAL_S);
	assert_int_equal(c.ttl_s, CAIRN_DEFAULT_TTL_S);
	assert_int_equal(c.mailbox_max_envelopes, CAIRN_DEFAULT_MAILBOX_MAX_COUNT);
	assert_int_equal(c.mailbox_max_bytes, CAIRN_DEFAULT_MAILBOX_MAX_BYTES);
	assert_int_equal(c.mailboxes_per_connection, CAIRN_DEFAULT_MAILBOXES_PER_CONN);
	assert_int_equal(c.inflight_requests, CAIRN_DEFAULT_INFLIGHT_REQUESTS);
	assert_int_equal(c.output_buffer_max, CAIRN_DEFAULT_OUTPUT_MAX);
	assert_int_equal(c.handshake_timeout_s, CAIRN_DEFAULT_HANDSHAKE_TIMEOUT_S);
	assert_int_equal(c.idle_timeout_s, CAIRN_DEFAULT_IDLE_TIMEOUT_S);
	assert_int_equal(c.max_connections, CAIRN_DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(c.delivery_window, CAIRN_DEFAULT_DELIVERY_WINDOW);
	assert_int_equal(c.replay_cache_entries, CAIRN_DEFAULT_REPLAY_CAPACITY);
	assert_int_equal(c.frame_size, 0);
	assert_int_equal(c.max_mailboxes, CAIRN_DEFAULT_MAX_MAILBOXES);
	assert_true(c.max_stored_bytes == CAIRN_DEFAULT_MAX_STORED_BYTES);
	assert_true(c.min_free_disk == CAIRN_DEFAULT_MIN_FREE_DISK);
	assert_int_equal(c.create_burst, CAIRN_DEFAULT_CREATE_BURST);
	assert_int_equal(c.create_per_minute, CAIRN_DEFAULT_CREATE_PER_MINUTE);
	assert_int_equal(c.intake_max_envelopes, 1000);
	assert_true(c.intake_max_bytes == 16u << 20);
	assert_int_equal(c.work_window_s, 600);
	assert_int_equal(c.work_seen_max, 1000000);
	assert_string_equal(c.data_dir, CAIRN_DEFAULT_DATA_DIR);
}

static void test_valid_file_overrides_every_key(void **state)
{
	struct fixture *f = *state;
	write_file(f->path, "; a comment\n"
	                    "[relay]\n"
	                    "listen = [::1]:9000\n"
	                    "user = cairn-relay\n"
	                    "log_level = debug   ; inline comment\n"
	                    "log_file = /var/log/cairn-relay.log\n"
	                    "stats_interval = 0\n"
	                    "\n"
	                    "# another comment\n"
	                    "[limits]\n"
	                    "ttl = 2h\n"
	                    "mailbox_max_envelopes = 5\n"
	                    "mailbox_max_bytes = 2G\n"
	                    "mailboxes_per_connection = 3\n"
	                    "inflight_requests = 7\n"
	                    "output_buffer_max = 512K\n"
	                    "handshake_timeout = 5s\n"
	                    "idle_timeout = 90m\n"
	                    "max_connections = 100\n"
	                    "delivery_window = 1\n"
	                    "replay_cache_entries = 4096\n"
	                    "frame_size = 16896\n"
	                    "max_mailboxes = 12\n"
	                    "max_stored_bytes = 3G\n"
	                    "min_free_disk = 0\n"
	                    "create_burst = 2\n"
	                    "create_per_minute = 0\n"
	                    "intake_max_envelopes = 9\n"
	                    "intake_max_bytes = 1M\n"
	                    "work_window = 2m\n"
	                    "work_seen_max = 5000\n"
	                    "[obfs4]\n"
	                    "listen = [::1]:9443\n"
	                    "iat_mode = 2\n");
	struct relay_config c;
	char err[256];
	relay_config_defaults(&c);
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 9000);
	assert_string_equal(c.user, "cairn-relay");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.log_file, "/var/log/cairn-relay.log");
	assert_int_equal(c.stats_interval_s, 0);
	assert_int_equal(c.ttl_s, 7200);
	assert_int_equal(c.mailbox_max_envelopes, 5);
	assert_int_equal(c.mailbox_max_bytes, UINT64_C(2) << 30);
	assert_int_equal(c.mailboxes_per_connection, 3);
	assert_int_equal(c.inflight_requests, 7);
	assert_int_equal(c.output_buffer_max, 512 * 1024);
	assert_int_equal(c.handshake_timeout_s, 5);
	assert_int_equal(c.idle_timeout_s, 90 * 60);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.delivery_window, 1);
	assert_int_equal(c.replay_cache_entries, 4096);
	assert_int_equal(c.frame_size, 16896);
	assert_int_equal(c.max_mailboxes, 12);
	assert_true(c.max_stored_bytes == UINT64_C(3) << 30);
	assert_true(c.min_free_disk == 0);
	assert_int_equal(c.create_burst, 2);
	assert_int_equal(c.create_per_minute, 0);
	assert_int_equal(c.intake_max_envelopes, 9);
	assert_true(c.intake_max_bytes == 1u << 20);
	assert_int_equal(c.work_window_s, 120);
	assert_int_equal(c.work_seen_max, 5000);
	assert_string_equal(c.obfs4_listen, "[::1]:9443");
	assert_int_equal(c.obfs4_iat_mode, 2);
	/* Not a config key: the file must not touch it. */
	assert_string_equal(c.data_dir, CAIRN_DEFAULT_DATA_DIR);
}

static void test_suffixes_and_edges(void **state)
{
	struct fixture *f = *state;
	struct relay_config c;
	char err[256];
	write_file(f->path, "[limits]\nttl = 3d\nframe_size = 65519\n"
	                    "mailbox_max_bytes = 16384\nidle_timeout = 45\n");
	relay_config_defaults(&c);
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_int_equal(c.ttl_s, 3 * 24 * 3600);
	assert_int_equal(c.frame_size, CAIRN_FRAME_PLAINTEXT_MAX);
	assert_int_equal(c.mailbox_max_bytes, CAIRN_ENVELOPE_MAX);
	assert_int_equal(c.idle_timeout_s, 45);

	/* An empty file and an empty section are fine and change nothing. */
	write_file(f->path, "");
	struct relay_config d;
	relay_config_defaults(&c);
	relay_config_defaults(&d);
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	write_file(f->path, "[relay]\n[limits]\n");
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_memory_equal(&c, &d, sizeof(c));
}

struct bad_case {
	const char *text;
	const char *line;  /* ":N:" expected right after the path */
	const char *words; /* expected somewhere in the message */
};

static void test_bad_lines_name_their_line(void **state)
{
	struct fixture *f = *state;
	static const struct bad_case cases[] = {
	    {"[relay]\nlisten = 127.0.0.1:1\n\n[limits]\nttl_days = 3\n",
	     ":5:", "unknown key 'ttl_days'"},
	    {"[relay]\n[bogus]\n", ":2:", "unknown section [bogus]"},
	    {"[relay]\n\n[bogus]\nx = 1\n", ":3:", "unknown section [bogus]"},
	    {"[limits]\n# c\nttl = 12x\n", ":3:", "ttl: '12x' is not"},
	    {"[limits]\nttl = -5\n", ":2:", "ttl"},
	    {"[limits]\nttl = 99999999999999999999999\n", ":2:", "ttl"},
	    {"[limits]\nttl = 0\n", ":2:", "out of range"},
	    {"[limits]\nmailbox_max_envelopes = 0\n", ":2:", "mailbox_max_envelopes: 0 is out"},
	    {"[limits]\ndelivery_window = 0\n", ":2:", "delivery_window"},
	    {"[limits]\nmax_connections = 1 000\n", ":2:", "max_connections"},
	    {"[limits]\nmailbox_max_bytes = 1K\n", ":2:", "out of range"},
	    {"[limits]\noutput_buffer_max = 4096\n", ":2:", "output_buffer_max"},
	    {"[limits]\n\n\nframe_size = 100\n", ":4:", "frame_size: 100 is out of range"},
	    {"[limits]\nframe_size = 65520\n", ":2:", "frame_size"},
	    {"[limits]\nmax_mailboxes = 0\n", ":2:", "max_mailboxes: 0 is out of range"},
	    {"[limits]\nmax_stored_bytes = 1K\n", ":2:", "max_stored_bytes: 1024 is out"},
	    {"[limits]\nmin_free_disk = 10X\n", ":2:", "min_free_disk: '10X' is not"},
	    {"[limits]\ncreate_burst = 0\n", ":2:", "create_burst: 0 is out of range"},
	    {"[relay]\ncreate_per_minute = 1\n", ":2:", "belongs in [limits]"},
	    {"[limits]\nintake_max_envelopes = 0\n", ":2:", "intake_max_envelopes: 0 is out"},
	    {"[limits]\nintake_max_bytes = 16383\n", ":2:", "intake_max_bytes: 16383 is out"},
	    {"[limits]\nwork_window = 9\n", ":2:", "work_window: 9 is out of range"},
	    {"[limits]\nwork_window = 2d\n", ":2:", "work_window"},
	    {"[limits]\nwork_seen_max = 15\n", ":2:", "work_seen_max: 15 is out of range"},
	    {"[limits]\nwork_seen_max = 67108865\n", ":2:", "work_seen_max"},
	    {"[limits]\nttl =\n", ":2:", "ttl"},
	    {"[obfs4]\nlisten = 9443\n", ":2:", "listen: '9443' is not HOST:PORT"},
	    {"[obfs4]\nlisten = :9443\n", ":2:", "listen"},
	    {"[obfs4]\nlisten = 0.0.0.0:0\n", ":2:", "listen"},
	    {"[obfs4]\nlisten = 0.0.0.0:65536\n", ":2:", "listen"},
	    {"[obfs4]\nlisten = 0.0.0.0:94x\n", ":2:", "listen"},
	    {"[obfs4]\niat_mode = 3\n", ":2:", "iat_mode: 3 is out of range"},
	    {"[obfs4]\nttl = 5\n", ":2:", "unknown key 'ttl' in [obfs4]"},
	    {"ttl = 5\n", ":1:", "outside a section"},
	    {"[limits]\nttl = 5\nttl = 6\n", ":3:", "set twice"},
	    {"[limits]\nttl = 5\n  idle_timeout = 5\n", ":3:", "indented"},
	    {"[relay]\nttl = 5\n", ":2:", "belongs in [limits]"},
	    {"[https]\nlisten = 127.0.0.1\n", ":2:", "listen: '127.0.0.1' is not HOST:PORT"},
	    {"[https]\npath = a/b\n", ":2:", "path: 'a/b' is not a secret path"},
	    {"[https]\npath = ...\n", ":2:", "not a secret path"},
	    {"[https]\npath = "
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaa"
	     "aaaaaaaaa\n",
	     ":2:", "not a secret path"},
	    {"[https]\npublic = relay.example.org\n", ":2:", "public: 'relay.example.org' is not"},
	    {"[https]\npublic = 1.2.3.4.5:443\n", ":2:", "public"},
	    {"[https]\npublic = [::1:443\n", ":2:", "public"},
	    {"[https]\nttl = 5\n", ":2:", "unknown key 'ttl' in [https]"},
	    {"[tls]\n", ":1:", "[https]"},
	    {"[relay]\nlog_level = loud\n", ":2:", "log_level"},
	    {"[store]\nengine = mysql\n", ":2:", "engine: 'mysql' is not sqlite or postgresql"},
	    {"[store]\nttl = 5\n", ":2:", "unknown key 'ttl' in [store]"},
	    {"[relay]\nlisten = 1.2.3.4\n", ":2:", "listen"},
	    {"[relay]\nuser = bad user\n", ":2:", "user"},
	    {"[relay]\njunk line\n", ":2:", "syntax error"},
	    {"[relay\n", ":1:", "syntax error"},
	    /* The first mistake is the one reported, whichever kind it is. */
	    {"[relay]\njunk\nbogus = 1\n", ":2:", "syntax error"},
	    {"[relay]\nbogus = 1\njunk\n", ":2:", "unknown key 'bogus'"},
	    {"[relay]\nlog_file = /"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "\nttl = 1\n",
	     ":2:", "line longer"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct relay_config c, d;
		char err[256];
		write_file(f->path, cases[i].text);
		relay_config_defaults(&c);
		relay_config_defaults(&d);
		int rc = relay_config_load(&c, f->path, err, sizeof(err));
		if (rc != CAIRN_EINVAL || strncmp(err, f->path, strlen(f->path)) != 0 ||
		    strncmp(err + strlen(f->path), cases[i].line, strlen(cases[i].line)) != 0 ||
		    strstr(err, cases[i].words) == NULL)
			fail_msg("case %zu: rc %d, message \"%s\"; wanted %s and \"%s\"", i, rc,
			         err, cases[i].line, cases[i].words);
		/* A rejected file changes nothing. */
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	struct relay_config c;
	char err[256];
	relay_config_defaults(&c);
	unlink(f->path);
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), CAIRN_EIO);
	assert_non_null(strstr(err, f->path));
}

/* Turns "#key = value" lines into "key = value", leaving prose comments alone. */
static void uncomment_keys(char *text)
{
	char *out = text;
	for (char *p = text; *p != '\0';) {
		char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
		if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z') {
			p++;
			len--;
		}
		memmove(out, p, len);
		out += len;
		p += len;
	}
	*out = '\0';
}

static void test_default_file_round_trips(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	assert_int_equal(relay_config_write_default(f->path), 0);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	struct relay_config c, d;
	char err[256];
	relay_config_defaults(&c);
	relay_config_defaults(&d);
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_memory_equal(&c, &d, sizeof(c));

	/* Refuses to overwrite, and says so through errno. */
	assert_int_equal(relay_config_write_default(f->path), CAIRN_EIO);
	assert_int_equal(errno, EEXIST);

	/* The values shown are the real defaults: uncommented, they load to the same config. */
	char text[16384];
	FILE *fp = fopen(f->path, "r");
	assert_non_null(fp);
	size_t n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	static const char *const names[] = {
	    "listen",
	    "user",
	    "log_level",
	    "log_file",
	    "stats_interval",
	    "ttl",
	    "mailbox_max_envelopes",
	    "mailbox_max_bytes",
	    "mailboxes_per_connection",
	    "inflight_requests",
	    "output_buffer_max",
	    "handshake_timeout",
	    "idle_timeout",
	    "max_connections",
	    "delivery_window",
	    "replay_cache_entries",
	    "frame_size",
	    "max_mailboxes",
	    "max_stored_bytes",
	    "min_free_disk",
	    "create_burst",
	    "create_per_minute",
	    "path",
	    "public",
	    "pin_cert",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "\n#%s =", names[i]);
		if (strstr(text, needle) == NULL)
			fail_msg("default file lacks key %s", names[i]);
	}
	uncomment_keys(text);
	write_file(f->path, text);
	relay_config_defaults(&c);
	c.ttl_s = 1; /* so that the load must set it back */
	int rc = relay_config_load(&c, f->path, err, sizeof(err));
	if (rc != 0)
		fail_msg("uncommented default file: %s", err);
	/* The one value that is not a default: init draws a fresh secret path, 128 bits. */
	assert_int_equal(strlen(c.https_path), 22);
	memcpy(d.https_path, c.https_path, sizeof(d.https_path));
	assert_memory_equal(&c, &d, sizeof(c));
}

/* [https]: a full section loads; a listener, an address or a pin without the path is refused. */
static void test_https_section(void **state)
{
	struct fixture *f = *state;
	struct relay_config c;
	char err[256];
	relay_config_defaults(&c);
	write_file(f->path, "[https]\nlisten = 127.0.0.1:7444\npath = k3Jx9-wq_Tn2LmA7pQe0Vg\n"
	                    "public = [2001:db8::1]:443\npin_cert = /etc/ssl/site.pem\n");
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_string_equal(c.https_listen_host, "127.0.0.1");
	assert_int_equal(c.https_listen_port, 7444);
	assert_string_equal(c.https_path, "k3Jx9-wq_Tn2LmA7pQe0Vg");
	assert_string_equal(c.https_public, "[2001:db8::1]:443");
	assert_string_equal(c.https_pin_cert, "/etc/ssl/site.pem");

	static const char *const pathless[] = {
	    "[https]\nlisten = 127.0.0.1:7444\n",
	    "[https]\npublic = relay.example.org:443\n",
	    "[https]\npin_cert = /x.pem\npath =\n",
	};
	for (size_t i = 0; i < sizeof(pathless) / sizeof(pathless[0]); i++) {
		struct relay_config d;
		relay_config_defaults(&c);
		relay_config_defaults(&d);
		write_file(f->path, pathless[i]);
		assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), CAIRN_EINVAL);
		assert_non_null(strstr(err, "[https] path is required"));
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

/* [store]: the engine and its connection string; PostgreSQL without one is refused. */
static void test_store_section(void **state)
{
	struct fixture *f = *state;
	struct relay_config c;
	char err[256];
	relay_config_defaults(&c);
	assert_string_equal(c.store_engine, "sqlite");
	write_file(f->path,
	           "[store]\nengine = postgresql\n"
	           "connection = host=db1,db2 dbname=cairn target_session_attrs=read-write\n");
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), 0);
	assert_string_equal(c.store_engine, "postgresql");
	assert_string_equal(c.store_connection,
	                    "host=db1,db2 dbname=cairn target_session_attrs=read-write");
	/* The reserve file guards the data directory's disk, not the database's. */
	assert_int_equal(c.disk_reserve, 0);

	struct relay_config d;
	relay_config_defaults(&c);
	relay_config_defaults(&d);
	write_file(f->path, "[store]\nengine = postgresql\n");
	assert_int_equal(relay_config_load(&c, f->path, err, sizeof(err)), CAIRN_EINVAL);
	assert_non_null(strstr(err, "[store] connection is required"));
	assert_memory_equal(&c, &d, sizeof(c));
}

static void test_set_listen(void **state)
{
	struct relay_config c;
	relay_config_defaults(&c);
	assert_int_equal(relay_config_set_listen(&c, "127.0.0.1:7443"), 0);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 7443);
	assert_int_equal(relay_config_set_listen(&c, "[::1]:8000"), 0);
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 8000);
	assert_int_equal(relay_config_set_listen(&c, "[2001:db8::7]:1"), 0);
	assert_string_equal(c.listen_host, "2001:db8::7");
	assert_int_equal(relay_config_set_listen(&c, "0.0.0.0:65535"), 0);
	assert_int_equal(c.listen_port, 65535);
	assert_int_equal(relay_config_set_listen(&c, "relay.example.org:443"), 0);
	assert_string_equal(c.listen_host, "relay.example.org");
	assert_int_equal(relay_config_set_listen(&c, "localhost:7443"), 0);

	static const char *const bad[] = {
	    "",
	    "127.0.0.1",
	    ":80",
	    "host:",
	    "host:0",
	    "host:65536",
	    "host:80x",
	    "host:+80",
	    "host:-1",
	    "::1:80",
	    "[::1]80",
	    "[::1]:",
	    "[nothost]:80",
	    "[::1:80",
	    "[]:80",
	    "a b:80",
	    "host:99999999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		relay_config_set_listen(&c, "localhost:7443");
		if (relay_config_set_listen(&c, bad[i]) != CAIRN_EINVAL)
			fail_msg("accepted listen '%s'", bad[i]);
		/* A rejected value leaves the previous one. */
		assert_string_equal(c.listen_host, "localhost");
		assert_int_equal(c.listen_port, 7443);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_are_limits_h),
	    cmocka_unit_test_setup_teardown(test_valid_file_overrides_every_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_suffixes_and_edges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_lines_name_their_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_https_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_file_round_trips, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_section, setup, teardown),
	    cmocka_unit_test(test_set_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
