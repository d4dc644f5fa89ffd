/* SPDX-License-Identifier: MIT */
/*
 * The cairn-relay command: `init` creates a data directory (key and commented config),
 * `address` prints the relay address, `run` serves. Exit status: 0 success, 1 a runtime error
 * (the message says what to fix), 2 a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "cairn/address.h"
#include "certpin.h"
#include "httpsaddr.h"
#include "cairn/error.h"
#include "cairn/limits.h"
#include "config.h"
#include "fsutil.h"
#include "import.h"
#include "keyfile.h"
#include "log.h"
#include "privs.h"
#include "ptserver.h"
#include "relaypolicy.h"
#include "server.h"
#include "status.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "0.1.0"
#endif

#define CONFIG_FILE    "cairn-relay.conf"
#define STRINGIFY_(x)  #x
#define STRINGIFY(x)   STRINGIFY_(x)
#define DEFAULT_LISTEN CAIRN_DEFAULT_LISTEN_HOST ":" STRINGIFY(CAIRN_DEFAULT_PORT)

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Options each subcommand accepts. */
enum {
	OPT_DATA = 1 << 0,
	OPT_LISTEN = 1 << 1,
	OPT_CONFIG = 1 << 2,
	OPT_LOG_LEVEL = 1 << 3,
	OPT_HOST = 1 << 4,
	OPT_TRANSPORT = 1 << 5,
};

struct opts {
	const char *data;
	const char *listen;
	const char *config;
	const char *log_level;
	const char *host;
	const char *transport; /* address: "obfs4" prints the [obfs4] address */
};

static const char usage_main[] =
    "usage: cairn-relay COMMAND [OPTIONS]\n"
    "\n"
    "A store-and-forward relay for Cairn: it keeps end-to-end encrypted envelopes in\n"
    "mailboxes until their owners fetch them.\n"
    "\n"
    "commands:\n"
    "  init     create a data directory: a fresh relay key and a commented config file\n"
    "  address  print the relay address clients need\n"
    "  run      serve until SIGTERM or SIGINT\n"
    "  import   deliver a bundle (cairn bundle export) to the running relay\n"
    "  status   print the running relay's figures (needs [metrics] listen)\n"
    "  policy   print the signed policy the relay publishes ([policy] in the config)\n"
    "\n"
    "  cairn-relay COMMAND --help   options of one command\n"
    "  cairn-relay --version        print the version\n"
    "\n"
    "Exit status: 0 success, 1 runtime error, 2 usage error. docs/OPERATING.md has more.\n";

static const char usage_init[] =
    "usage: cairn-relay init [--data DIR]\n"
    "\n"
    "Creates DIR (mode 0700) holding relay.key, the relay's identity (mode 0600), and\n"
    "cairn-relay.conf, every setting commented out at its default. Prints the relay\n"
    "address on stdout. Refuses a DIR that already holds a key.\n"
    "\n"
    "  --data DIR   data directory (default " CAIRN_DEFAULT_DATA_DIR ")\n";

static const char usage_address[] =
    "usage: cairn-relay address [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
    "                           [--host HOST] [--transport direct|https|obfs4]\n"
    "\n"
    "Prints the relay address, cairn://KEY@HOST:PORT, on stdout; with [https] public and\n"
    "path set, the cairn+https address on the next line too (with ?pin= when [https]\n"
    "pin_cert names the web server's certificate).\n"
    "\n"
    "  --data DIR          data directory (default " CAIRN_DEFAULT_DATA_DIR ")\n"
    "  --listen HOST:PORT  as for run; the address uses this host and port\n"
    "  --config FILE       config file (default DIR/" CONFIG_FILE " if present)\n"
    "  --host HOST         the host clients should dial, when it differs from the\n"
    "                      listen host (e.g. listening on 0.0.0.0)\n"
    "  --transport T       only the address of transport T: direct, https, or obfs4:\n"
    "                      cairn+obfs4://KEY@HOST:PORT?cert=.. ([obfs4] listen's port,\n"
    "                      the cert from DIR/obfs4 once the relay has run with [obfs4])\n";

static const char usage_run[] =
    "usage: cairn-relay run [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
    "                       [--log-level LEVEL]\n"
    "\n"
    "Serves until SIGTERM or SIGINT; SIGHUP reopens the log file.\n"
    "\n"
    "  --data DIR          data directory made by init (default " CAIRN_DEFAULT_DATA_DIR ")\n"
    "  --listen HOST:PORT  overrides [relay] listen (default " DEFAULT_LISTEN ");\n"
    "                      IPv6 as [::1]:7443\n"
    "  --config FILE       config file (default DIR/" CONFIG_FILE " if present)\n"
    "  --log-level LEVEL   error, warn, info or debug; overrides [relay] log_level\n";

static const char usage_status[] =
    "usage: cairn-relay status [--data DIR] [--config FILE]\n"
    "\n"
    "Prints the running relay's aggregate figures, read from its metrics listener ([metrics]\n"
    "listen in the config). Exit status 1 when metrics are off or the relay is not running.\n";

static const char usage_import[] =
    "usage: cairn-relay import FILE [--data DIR] [--config FILE] [--listen HOST:PORT]\n"
    "\n"
    "Delivers the bundle FILE (written by 'cairn bundle export', carried here on a stick)\n"
    "to the relay of this config, which must be running: it connects to the relay's own\n"
    "listener as any courier does. Prints how many items the relay took (new or already\n"
    "there: importing twice stores nothing twice), how many had expired, were refused, or\n"
    "are sealed for another relay. Exit status 3 when some items got no answer (run it\n"
    "again).\n"
    "\n"
    "  --data DIR          data directory (default " CAIRN_DEFAULT_DATA_DIR ")\n"
    "  --config FILE       config file (default DIR/" CONFIG_FILE " if present)\n"
    "  --listen HOST:PORT  the relay's listener, if not [relay] listen\n";

static void
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    say(const char *fmt, ...)
{
	va_list ap;
	fputs("cairn-relay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Parses ARGV (after the command name) into O, accepting the options in ALLOWED as "--opt
 * VALUE" or "--opt=VALUE". Returns -1 to go on, else the exit status (help printed: 0; a
 * usage error reported: 2).
 */
static int parse_opts(int argc, char **argv, const char *cmd, const char *usage, unsigned allowed,
                      struct opts *o)
{
	static const struct {
		const char *name;
		unsigned bit;
		size_t field;
	} table[] = {
	    {"--data", OPT_DATA, offsetof(struct opts, data)},
	    {"--listen", OPT_LISTEN, offsetof(struct opts, listen)},
	    {"--config", OPT_CONFIG, offsetof(struct opts, config)},
	    {"--log-level", OPT_LOG_LEVEL, offsetof(struct opts, log_level)},
	    {"--host", OPT_HOST, offsetof(struct opts, host)},
	    {"--transport", OPT_TRANSPORT, offsetof(struct opts, transport)},
	};
	memset(o, 0, sizeof(*o));
	o->data = CAIRN_DEFAULT_DATA_DIR;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			fputs(usage, stdout);
			return EXIT_OK;
		}
		const char *eq = strchr(arg, '=');
		size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		size_t t = 0;
		for (; t < sizeof(table) / sizeof(table[0]); t++)
			if ((allowed & table[t].bit) && strlen(table[t].name) == name_len &&
			    strncmp(arg, table[t].name, name_len) == 0)
				break;
		if (t == sizeof(table) / sizeof(table[0])) {
			say("%s: unknown %s '%s'; see 'cairn-relay %s --help'", cmd,
			    arg[0] == '-' ? "option" : "argument", arg, cmd);
			return EXIT_USAGE;
		}
		const char *value;
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			say("%s: %s needs a value; see 'cairn-relay %s --help'", cmd, arg, cmd);
			return EXIT_USAGE;
		}
		if (value[0] == '\0') {
			say("%s: %.*s needs a non-empty value", cmd, (int)name_len, arg);
			return EXIT_USAGE;
		}
		memcpy((char *)o + table[t].field, &value, sizeof(value));
	}
	return -1;
}

/* DIR/NAME into OUT. Returns false (after saying why) if it does not fit. */
static bool path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap) {
		say("path too long: %s/%s", dir, name);
		return false;
	}
	return true;
}

/*
 * Builds the configuration: defaults, then --config FILE or else DIR/cairn-relay.conf when
 * present, then --listen and --log-level. Returns -1 to go on, else an exit status.
 */
static int config_build(const struct opts *o, struct relay_config *cfg)
{
	char path[RELAY_PATH_MAX + 64], err[512];
	relay_config_defaults(cfg);
	if (strlen(o->data) >= sizeof(cfg->data_dir) - 64) {
		say("data directory path too long");
		return EXIT_USAGE;
	}
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", o->data);

	const char *file = o->config;
	if (file == NULL) {
		if (!path_join(path, sizeof(path), o->data, CONFIG_FILE))
			return EXIT_RUNTIME;
		struct stat st;
		if (stat(path, &st) == 0)
			file = path;
		else if (errno != ENOENT) {
			say("cannot read %s: %s", path, strerror(errno));
			return EXIT_RUNTIME;
		}
	}
	if (file != NULL && relay_config_load(cfg, file, err, sizeof(err)) != 0) {
		say("%s", err);
		return EXIT_RUNTIME;
	}
	/* [policy] is read again from it on SIGHUP (relaypolicy.c); the relay never changes
	 * directory, so a relative path still names the same file. */
	if (file != NULL) {
		if (strlen(file) >= sizeof(cfg->config_file)) {
			say("config file path too long");
			return EXIT_USAGE;
		}
		memcpy(cfg->config_file, file, strlen(file) + 1);
	}
	if (o->listen != NULL && relay_config_set_listen(cfg, o->listen) != 0) {
		say("--listen '%s': expected HOST:PORT or [IPv6]:PORT, port 1..65535", o->listen);
		return EXIT_USAGE;
	}
	if (o->log_level != NULL && log_level_parse(o->log_level, &cfg->log_level) != 0) {
		say("--log-level '%s': expected error, warn, info or debug", o->log_level);
		return EXIT_USAGE;
	}
	return -1;
}

/*
 * Formats the relay address for PUB at HOST (or the listen host) and the listen port. The
 * shared formatter validates the host; we only tell it which kind of host this is.
 */
static int address_format_as(struct cairn_address *a0, char *out, size_t cap);

static int address_format(const struct relay_config *cfg, const char *host,
                          const uint8_t pub[static CAIRN_KEY_LEN], char *out, size_t cap)
{
	struct cairn_address a;
	memset(&a, 0, sizeof(a));
	if (host == NULL)
		host = cfg->listen_host;
	size_t hlen = strlen(host);
	if (hlen >= sizeof(a.host))
		return CAIRN_EINVAL;
	memcpy(a.key, pub, CAIRN_KEY_LEN);
	memcpy(a.host, host, hlen + 1);
	a.port = cfg->listen_port;
	return address_format_as(&a, out, cap);
}

/* Formats A (all but its host type) into OUT, finding which kind of host A->host is. */
static int address_format_as(struct cairn_address *a0, char *out, size_t cap)
{
	static const enum cairn_host_type kinds[] = {CAIRN_HOST_IPV4, CAIRN_HOST_NAME,
	                                             CAIRN_HOST_ONION};
	struct cairn_address a = *a0;
	if (strchr(a.host, ':') != NULL) {
		a.host_type = CAIRN_HOST_IPV6;
		return cairn_address_format(&a, out, cap);
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		a.host_type = kinds[i];
		if (cairn_address_format(&a, out, cap) == 0)
			return 0;
	}
	return CAIRN_EINVAL;
}

/*
 * Formats the cairn+https address for PUB from [https] public, path and pin_cert into OUT.
 * Returns 0, or an error with a message in ERR.
 */
static int https_address_format(const struct relay_config *cfg,
                                const uint8_t pub[static CAIRN_KEY_LEN], char *out, size_t cap,
                                char *err, size_t errcap)
{
	struct cairn_address a;
	if (https_address_build(cfg->https_public, cfg->https_path, pub, &a) != 0) {
		snprintf(err, errcap, "[https] public '%s' and path do not make an address",
		         cfg->https_public);
		return CAIRN_EINVAL;
	}
	if (cfg->https_pin_cert[0] != '\0') {
		int rc = certpin_from_pem(cfg->https_pin_cert, a.pin, err, errcap);
		if (rc != 0)
			return rc;
		a.has_pin = 1;
	}
	if (cairn_address_format(&a, out, cap) != 0) {
		snprintf(err, errcap, "the [https] settings do not make an address");
		return CAIRN_EINVAL;
	}
	return 0;
}

/* Which addresses `address` prints: the direct one and the https one when [https] makes one
 * (ADDR_DEFAULT), or the one --transport names. */
enum addr_which { ADDR_DEFAULT, ADDR_DIRECT, ADDR_HTTPS, ADDR_OBFS4 };

/* Loads the key and prints the addresses WHICH names on stdout, one per line. Returns an exit
 * status. */
static int print_address(const struct relay_config *cfg, const char *host, enum addr_which which)
{
	char path[RELAY_PATH_MAX + 64], err[512], addr[CAIRN_ADDRESS_MAX + 1];
	uint8_t pub[CAIRN_KEY_LEN];
	int status = EXIT_RUNTIME, rc;
	uint8_t *priv = sodium_malloc(CAIRN_KEY_LEN);
	if (priv == NULL) {
		say("out of memory");
		return EXIT_RUNTIME;
	}
	if (!path_join(path, sizeof(path), cfg->data_dir, RELAY_KEY_FILE))
		goto out;
	if (relay_key_load(path, priv, pub, err, sizeof(err)) != 0) {
		say("%s", err);
		goto out;
	}
	bool obfs4 = which == ADDR_OBFS4;
	if (which == ADDR_HTTPS && (cfg->https_public[0] == '\0' || cfg->https_path[0] == '\0')) {
		say("https is off: set public and path in [https] (docs/OPERATING.md)");
		goto out;
	}
	if (obfs4) {
		struct cairn_address a;
		rc = ptserver_address(cfg, host, pub, &a);
		if (rc == CAIRN_EINVAL && cfg->obfs4_listen[0] == '\0')
			say("obfs4 is off: set listen in [obfs4] (docs/OPERATING.md)");
		else if (rc == CAIRN_ENOTFOUND)
			say("no obfs4 bridge line in %s/obfs4 yet: run the relay with [obfs4] once",
			    cfg->data_dir);
		else if (rc == CAIRN_ECORRUPT)
			say("%s/obfs4/obfs4_bridgeline.txt is not what obfs4proxy writes",
			    cfg->data_dir);
		if (rc == 0 && (rc = address_format_as(&a, addr, sizeof(addr))) != 0)
			say("'%s' cannot appear in a relay address; give the host clients should "
			    "dial with --host",
			    a.host);
		if (rc != 0)
			goto out;
	} else if (address_format(cfg, host, pub, addr, sizeof(addr)) != 0) {
		say("'%s' cannot appear in a relay address; give the host clients should dial with "
		    "--host",
		    host != NULL ? host : cfg->listen_host);
		status = host != NULL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	const char *h = host != NULL ? host : cfg->listen_host;
	if (!obfs4 && (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0))
		say("note: %s means every interface, not a host clients can dial; use --host", h);
	if (which != ADDR_HTTPS)
		printf("%s\n", addr);
	if ((which == ADDR_DEFAULT || which == ADDR_HTTPS) && cfg->https_public[0] != '\0' &&
	    cfg->https_path[0] != '\0') {
		if (https_address_format(cfg, pub, addr, sizeof(addr), err, sizeof(err)) != 0) {
			fflush(stdout);
			say("%s", err);
			goto out;
		}
		printf("%s\n", addr);
	}
	status = fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
out:
	sodium_free(priv);
	return status;
}

static int cmd_init(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, "init", usage_init, OPT_DATA, &o);
	if (rc >= 0)
		return rc;

	char key_path[RELAY_PATH_MAX + 64], conf_path[RELAY_PATH_MAX + 64], err[512];
	if (!path_join(key_path, sizeof(key_path), o.data, RELAY_KEY_FILE) ||
	    !path_join(conf_path, sizeof(conf_path), o.data, CONFIG_FILE))
		return EXIT_USAGE;

	struct stat st;
	bool made_dir = mkdir(o.data, 0700) == 0;
	if (!made_dir) {
		if (errno != EEXIST) {
			say("cannot create %s: %s", o.data, strerror(errno));
			return EXIT_RUNTIME;
		}
		if (stat(o.data, &st) != 0 || !S_ISDIR(st.st_mode)) {
			say("%s exists and is not a directory", o.data);
			return EXIT_RUNTIME;
		}
	}
	if (lstat(key_path, &st) == 0) {
		say("%s is already initialized: %s exists (the relay's identity; it is never "
		    "replaced). 'cairn-relay address --data %s' prints the address.",
		    o.data, key_path, o.data);
		return EXIT_RUNTIME;
	}
	if (relay_key_generate(key_path, err, sizeof(err)) != 0) {
		say("%s", err);
		return EXIT_RUNTIME;
	}
	if (relay_config_write_default(conf_path) != 0) {
		if (errno != EEXIST) {
			say("cannot write %s: %s", conf_path, strerror(errno));
			return EXIT_RUNTIME;
		}
		say("keeping the existing %s", conf_path);
	}
	/* The key survives a power cut from here on; and the directory, if we made it and may
	 * read its parent (a parent we cannot open is the operator's to have made durable). */
	if (fs_sync_dir(o.data) != 0) {
		say("cannot make %s durable: %s", o.data, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (made_dir)
		(void)fs_sync_parent(o.data);
	say("created %s (the relay's identity: keep it secret, back it up) and %s", key_path,
	    conf_path);

	struct relay_config cfg;
	rc = config_build(&o, &cfg);
	if (rc >= 0)
		return rc;
	return print_address(&cfg, NULL, ADDR_DEFAULT);
}

static int cmd_address(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, "address", usage_address,
	                    OPT_DATA | OPT_LISTEN | OPT_CONFIG | OPT_HOST | OPT_TRANSPORT, &o);
	if (rc >= 0)
		return rc;
	static const char *const names[] = {
	    [ADDR_DIRECT] = "direct", [ADDR_HTTPS] = "https", [ADDR_OBFS4] = "obfs4"};
	enum addr_which which = ADDR_DEFAULT;
	if (o.transport != NULL) {
		for (which = ADDR_DIRECT; which <= ADDR_OBFS4; which++)
			if (strcmp(o.transport, names[which]) == 0)
				break;
		if (which > ADDR_OBFS4) {
			say("address: --transport takes direct, https or obfs4");
			return EXIT_USAGE;
		}
	}
	struct relay_config cfg;
	rc = config_build(&o, &cfg);
	if (rc >= 0)
		return rc;
	return print_address(&cfg, o.host, which);
}

/* The data directory must exist and take new files (the store creates its own). */
static bool data_dir_usable(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT)
			say("data directory %s does not exist; create it with 'cairn-relay init "
			    "--data %s'",
			    dir, dir);
		else
			say("cannot use data directory %s: %s", dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		say("%s is not a directory", dir);
		return false;
	}
	/* Creating a file is the only honest test: access() ignores read-only mounts for root. */
	char probe[RELAY_PATH_MAX + 64];
	char name[64];
	snprintf(name, sizeof(name), ".write-test-%ld", (long)getpid());
	if (!path_join(probe, sizeof(probe), dir, name))
		return false;
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		say("data directory %s is not writable: %s (the relay stores envelopes there)", dir,
		    strerror(errno));
		return false;
	}
	close(fd);
	unlink(probe);
	if ((st.st_mode & 077) != 0)
		say("warning: %s is accessible by group/others (mode %04o); consider chmod 700",
		    dir, (unsigned)(st.st_mode & 07777));
	return true;
}

/*
 * Before root is dropped: a log file we just created as root is given to the relay's user, so
 * that SIGHUP can reopen it later; a data directory the user cannot write gets a warning, since
 * the store may need to create files there after the drop. Only a regular file is chowned.
 */
static void hand_over(const struct relay_config *cfg, uid_t uid, gid_t gid)
{
	struct stat st;
	if (cfg->log_file[0] != '\0' && lstat(cfg->log_file, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == 0 && chown(cfg->log_file, uid, gid) != 0)
		log_warn("cannot give %s to user %s: %s; SIGHUP will not be able to reopen it",
		         cfg->log_file, cfg->user, strerror(errno));
	if (stat(cfg->data_dir, &st) == 0 && st.st_uid != uid)
		log_warn("data directory %s is not owned by user %s, which the relay runs as once "
		         "started; run: chown -R %s: %s",
		         cfg->data_dir, cfg->user, cfg->user, cfg->data_dir);
}

static int cmd_import(int argc, char **argv)
{
	struct opts o;
	const char *file = argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
	int rc = parse_opts(argc - (file != NULL), argv + (file != NULL), "import", usage_import,
	                    OPT_DATA | OPT_CONFIG | OPT_LISTEN, &o);
	if (rc >= 0)
		return rc;
	if (file == NULL) {
		say("import: which file? see 'cairn-relay import --help'");
		return EXIT_USAGE;
	}
	struct relay_config cfg;
	if ((rc = config_build(&o, &cfg)) >= 0)
		return rc;
	char path[RELAY_PATH_MAX + 64], err[512];
	uint8_t pub[CAIRN_KEY_LEN];
	uint8_t *priv = sodium_malloc(CAIRN_KEY_LEN);
	if (priv == NULL || !path_join(path, sizeof(path), cfg.data_dir, RELAY_KEY_FILE) ||
	    relay_key_load(path, priv, pub, err, sizeof(err)) != 0) {
		if (priv != NULL)
			say("%s", err);
		sodium_free(priv);
		return EXIT_RUNTIME;
	}
	sodium_free(priv); /* only the public key is needed: import is a courier */
	struct import_counts n;
	rc = relay_import(&cfg, pub, file, &n, err, sizeof(err));
	if (n.items > 0 && rc != CAIRN_EINVAL)
		printf("%zu items: %zu taken (new or already there), %zu expired, %zu refused, "
		       "%zu for another relay or altered, %zu unanswered\n",
		       n.items, n.taken, n.expired, n.refused, n.not_ours, n.unanswered);
	if (rc != 0) {
		say("import: %s", err);
		return EXIT_RUNTIME;
	}
	return n.unanswered > 0 ? 3 : EXIT_OK;
}

static int cmd_status(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, "status", usage_status, OPT_DATA | OPT_CONFIG, &o);
	if (rc >= 0)
		return rc;
	struct relay_config cfg;
	rc = config_build(&o, &cfg);
	if (rc >= 0)
		return rc;
	char err[600];
	if (relay_status(&cfg, stdout, err, sizeof(err)) != 0) {
		say("status: %s", err);
		return EXIT_RUNTIME;
	}
	return EXIT_OK;
}

static int cmd_run(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, "run", usage_run,
	                    OPT_DATA | OPT_LISTEN | OPT_CONFIG | OPT_LOG_LEVEL, &o);
	if (rc >= 0)
		return rc;
	struct relay_config cfg;
	rc = config_build(&o, &cfg);
	if (rc >= 0)
		return rc;
	if (!data_dir_usable(cfg.data_dir))
		return EXIT_RUNTIME;

	char path[RELAY_PATH_MAX + 64], err[512], addr[CAIRN_ADDRESS_MAX + 1];
	uid_t uid = 0;
	gid_t gid = 0;
	bool dropping = cfg.user[0] != '\0' && geteuid() == 0;
	if (cfg.user[0] != '\0' && relay_user_check(cfg.user, &uid, &gid, err, sizeof(err)) != 0) {
		say("%s", err);
		return EXIT_RUNTIME;
	}
	if (log_open(cfg.log_level, cfg.log_file) != 0) {
		say("cannot open log file %s: %s", cfg.log_file, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (dropping)
		hand_over(&cfg, uid, gid);

	int status = EXIT_RUNTIME;
	uint8_t pub[CAIRN_KEY_LEN];
	uint8_t *priv = sodium_malloc(CAIRN_KEY_LEN);
	if (priv == NULL) {
		say("out of memory");
		goto out;
	}
	if (!path_join(path, sizeof(path), cfg.data_dir, RELAY_KEY_FILE))
		goto out;
	if (relay_key_load(path, priv, pub, err, sizeof(err)) != 0) {
		say("%s", err);
		goto out;
	}
	/* The server only reads the key: a stray write through a bad pointer now faults. */
	(void)sodium_mprotect_readonly(priv);

	if (geteuid() == 0 && cfg.user[0] == '\0')
		log_warn("running as root with no 'user' in [relay]: the relay keeps root "
		         "privileges while serving; set user = <an unprivileged user> or use "
		         "contrib/cairn-relay.service");
	if (address_format(&cfg, NULL, pub, addr, sizeof(addr)) == 0)
		log_info("cairn-relay %s starting; relay address %s", CAIRN_VERSION, addr);
	else
		log_info("cairn-relay %s starting", CAIRN_VERSION);

	/* A peer that closes mid-write must cost an EPIPE, not the process. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	/* The server logs why it stopped; here only the exit status remains to be chosen. */
	status = relay_server_run(&cfg, priv, pub) == 0 ? EXIT_OK : EXIT_RUNTIME;
out:
	sodium_free(priv);
	sodium_memzero(pub, sizeof(pub));
	log_close();
	return status;
}

static const char usage_policy[] =
    "usage: cairn-relay policy [--data DIR] [--config FILE]\n"
    "\n"
    "Prints the policy the relay publishes with this configuration, field by field, as\n"
    "clients will see it (`cairn relay info`), with ttl and forwarding taken from the\n"
    "configuration, and its digest; or says that none is published. A running relay\n"
    "signs it again on SIGHUP (systemctl reload cairn-relay).\n"
    "\n"
    "  --data DIR     data directory (default " CAIRN_DEFAULT_DATA_DIR ")\n"
    "  --config FILE  config file (default DIR/" CONFIG_FILE " if present)\n";

static int cmd_policy(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, "policy", usage_policy, OPT_DATA | OPT_CONFIG, &o);
	if (rc >= 0)
		return rc;
	struct relay_config cfg;
	rc = config_build(&o, &cfg);
	if (rc >= 0)
		return rc;
	char path[RELAY_PATH_MAX + 64], err[512];
	uint8_t pub[CAIRN_KEY_LEN];
	uint8_t *priv = sodium_malloc(CAIRN_KEY_LEN);
	struct relay_policy *pol = malloc(sizeof(*pol));
	struct policy *f = malloc(sizeof(*f));
	int status = EXIT_RUNTIME;
	if (priv == NULL || pol == NULL || f == NULL) {
		say("out of memory");
		goto out;
	}
	if (!path_join(path, sizeof(path), cfg.data_dir, RELAY_KEY_FILE))
		goto out;
	if (relay_key_load(path, priv, pub, err, sizeof(err)) != 0 ||
	    relay_policy_build(&cfg, &cfg, priv, pol, f, err, sizeof(err)) != 0) {
		say("%s", err);
		goto out;
	}
	if (!pol->present) {
		printf("no policy published: [policy] sets no text\n");
		status = EXIT_OK;
		goto out;
	}
	char hex[2 * POLICY_DIGEST_LEN + 1];
	sodium_bin2hex(hex, sizeof(hex), pol->digest, POLICY_DIGEST_LEN);
	printf("jurisdiction: %s\ncontact: %s\nttl: %u seconds\nlogging: %s\nretention: %s\n"
	       "forwarding: %s\nstatement: %s\nbody: %zu bytes\ndigest: %s\n",
	       f->jurisdiction, f->contact, (unsigned)f->ttl_s, f->logging, f->retention,
	       f->forwarding ? "on" : "off", f->statement, pol->body_len, hex);
	status = EXIT_OK;
out:
	sodium_free(priv);
	free(pol);
	free(f);
	return status;
}

int main(int argc, char **argv)
{
	/* Before anything holds a secret, so no crash can ever dump one. */
	relay_harden_process();
	if (sodium_init() < 0) {
		say("libsodium failed to initialize");
		return EXIT_RUNTIME;
	}
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_main, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("cairn-relay %s\n", CAIRN_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 2, argv + 2);
	if (strcmp(cmd, "address") == 0)
		return cmd_address(argc - 2, argv + 2);
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(argc - 2, argv + 2);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 2, argv + 2);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(argc - 2, argv + 2);
	say("unknown command '%s'; see 'cairn-relay --help'", cmd);
	return EXIT_USAGE;
}
