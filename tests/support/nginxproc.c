/* SPDX-License-Identifier: MIT */
/*
 * The nginx harness (nginxproc.h). The site block comes from docs/OPERATING.md at test time,
 * so the configuration operators copy is the one the tests run; only the main file (paths in
 * the prefix, one worker, the access log of the decoy site kept so tests can read it) is
 * written here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nginxproc.h"
#include "relayproc.h"

#define NGINX_BIN "/usr/sbin/nginx"

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	int ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

long nginxproc_read(const struct nginxproc *n, const char *name, char *out, size_t cap)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", n->dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t len = fread(out, 1, cap - 1, f);
	out[len] = '\0';
	fclose(f);
	return (long)len;
}

/* Runs ARGV quietly (output to DIR/LOG). Returns its exit status, or -1. */
static int run(const char *dir, const char *log, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, log);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The nginx-site block of docs/OPERATING.md, owned by the caller; NULL if it is missing. */
static char *site_block(void)
{
	static const char open_fence[] = "```nginx-site\n";
	FILE *f = fopen(CAIRN_DOCS_DIR "/OPERATING.md", "r");
	if (f == NULL)
		return NULL;
	static char doc[1 << 20];
	size_t len = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[len] = '\0';
	char *start = strstr(doc, open_fence);
	if (start == NULL)
		return NULL;
	/* The fence may be indented (the block sits in a list item): so are its lines. */
	size_t indent = 0;
	while (start - indent > doc && start[-(long)indent - 1] == ' ')
		indent++;
	start += sizeof(open_fence) - 1;
	char *out = malloc(len + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (char *line = start; *line != '\0';) {
		char *nl = strchr(line, '\n');
		size_t ll = nl != NULL ? (size_t)(nl - line) + 1 : strlen(line);
		size_t skip = 0;
		while (skip < indent && skip < ll && line[skip] == ' ')
			skip++;
		if (strncmp(line + skip, "```", 3) == 0) {
			*o = '\0';
			return out;
		}
		memcpy(o, line + skip, ll - skip);
		o += ll - skip;
		line += ll;
	}
	free(out);
	return NULL;
}

/* Replaces every @NAME@ in TEXT (owned, freed) by its value. Returns owned text, or NULL if a
 * placeholder is left unknown. */
static char *substitute(char *text, const char *const names[], const char *const values[],
                        size_t count)
{
	size_t cap = strlen(text) * 2 + 4096;
	char *out = malloc(cap), *o = out;
	if (out == NULL) {
		free(text);
		return NULL;
	}
	for (const char *p = text; *p != '\0';) {
		if (*p == '@') {
			size_t i;
			for (i = 0; i < count; i++) {
				size_t nl = strlen(names[i]);
				if (strncmp(p + 1, names[i], nl) == 0 && p[1 + nl] == '@') {
					size_t vl = strlen(values[i]);
					if ((size_t)(o - out) + vl + 1 >= cap)
						break;
					memcpy(o, values[i], vl);
					o += vl;
					p += nl + 2;
					break;
				}
			}
			if (i == count) {
				fprintf(stderr, "nginxproc: unknown placeholder at: %.40s\n", p);
				free(text);
				free(out);
				return NULL;
			}
			continue;
		}
		if ((size_t)(o - out) + 2 >= cap)
			break;
		*o++ = *p++;
	}
	*o = '\0';
	free(text);
	return out;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void show_log(const struct nginxproc *n)
{
	static char buf[8192];
	if (nginxproc_read(n, "error.log", buf, sizeof(buf)) > 0)
		fprintf(stderr, "nginx error.log:\n%s\n", buf);
	if (nginxproc_read(n, "stderr.log", buf, sizeof(buf)) > 0)
		fprintf(stderr, "nginx stderr:\n%s\n", buf);
}

int nginxproc_start(struct nginxproc *n, const char *path, const char *relay_listen)
{
	memset(n, 0, sizeof(*n));
	n->pid = -1;
	snprintf(n->dir, sizeof(n->dir), "/tmp/cairn-nginx-XXXXXX");
	if (mkdtemp(n->dir) == NULL) {
		fprintf(stderr, "nginxproc: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	char www[300], tmp[300], key[320];
	snprintf(www, sizeof(www), "%s/www", n->dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", n->dir);
	snprintf(n->cert, sizeof(n->cert), "%s/cert.pem", n->dir);
	snprintf(key, sizeof(key), "%s/key.pem", n->dir);
	if (mkdir(www, 0755) != 0 || mkdir(tmp, 0700) != 0 ||
	    write_text(www, "index.html", NGINXPROC_DECOY) != 0)
		return -1;

	/* A self-signed certificate for the name and the loopback address. */
	char *const req[] = {"/usr/bin/openssl",
	                     "req",
	                     "-x509",
	                     "-newkey",
	                     "ec",
	                     "-pkeyopt",
	                     "ec_paramgen_curve:P-256",
	                     "-nodes",
	                     "-days",
	                     "2",
	                     "-subj",
	                     "/CN=" NGINXPROC_SERVER_NAME,
	                     "-addext",
	                     "subjectAltName=DNS:" NGINXPROC_SERVER_NAME ",IP:127.0.0.1",
	                     "-keyout",
	                     key,
	                     "-out",
	                     n->cert,
	                     NULL};
	if (run(n->dir, "openssl.log", req) != 0) {
		fprintf(stderr, "nginxproc: openssl req failed (see %s/openssl.log)\n", n->dir);
		return -1;
	}

	n->port = loopback_free_port();
	char port[8];
	snprintf(port, sizeof(port), "%u", n->port);
	static const char *const names[] = {
	    "SERVER_NAME", "PORT", "CERT", "KEY", "DECOY_ROOT", "PATH", "RELAY_HTTPS_LISTEN"};
	const char *const values[] = {NGINXPROC_SERVER_NAME, port, n->cert, key, www, path,
	                              relay_listen};
	char *block = site_block();
	if (block == NULL) {
		fprintf(stderr, "nginxproc: no nginx-site block in %s/OPERATING.md\n",
		        CAIRN_DOCS_DIR);
		return -1;
	}
	char *site = substitute(block, names, values, sizeof(names) / sizeof(names[0]));
	if (site == NULL)
		return -1;
	int rc = write_text(n->dir, "site.conf", site);
	free(site);
	char conf[4096];
	snprintf(conf, sizeof(conf),
	         "%s"
	         "worker_processes 1;\n"
	         "pid %s/nginx.pid;\n"
	         "error_log %s/error.log warn;\n"
	         "events { worker_connections 256; }\n"
	         "http {\n"
	         "    default_type text/html;\n"
	         "    access_log %s/access.log;\n"
	         "    client_body_temp_path %s/body;\n"
	         "    proxy_temp_path %s/proxy;\n"
	         "    fastcgi_temp_path %s/fastcgi;\n"
	         "    uwsgi_temp_path %s/uwsgi;\n"
	         "    scgi_temp_path %s/scgi;\n"
	         "    include %s/site.conf;\n"
	         "}\n",
	         geteuid() == 0 ? "user root;\n" : "", n->dir, n->dir, n->dir, tmp, tmp, tmp, tmp,
	         tmp, n->dir);
	if (rc != 0 || write_text(n->dir, "nginx.conf", conf) != 0)
		return -1;

	char prefix[300], main_conf[320];
	snprintf(prefix, sizeof(prefix), "%s/", n->dir);
	snprintf(main_conf, sizeof(main_conf), "%s/nginx.conf", n->dir);
	n->pid = fork();
	if (n->pid < 0)
		return -1;
	if (n->pid == 0) {
		char log[320];
		snprintf(log, sizeof(log), "%s/stderr.log", n->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(NGINX_BIN, NGINX_BIN, "-p", prefix, "-c", main_conf, "-g", "daemon off;",
		      (char *)NULL);
		_exit(127);
	}
	/* Ready when it accepts; gone if it exited (a bad config, a taken port). */
	int64_t deadline = mono_ms() + 20000;
	while (mono_ms() < deadline) {
		int status;
		if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
			n->pid = -1;
			fprintf(stderr, "nginxproc: nginx exited at start\n");
			show_log(n);
			return -1;
		}
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(n->port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "nginxproc: nginx did not accept within 20 s\n");
	show_log(n);
	return -1;
}

void nginxproc_stop(struct nginxproc *n)
{
	if (n->pid > 0) {
		/* SIGTERM: nginx's fast shutdown, master and worker. */
		kill(n->pid, SIGTERM);
		int status;
		while (waitpid(n->pid, &status, 0) < 0 && errno == EINTR)
			;
		n->pid = -1;
	}
	if (n->dir[0] != '\0')
		test_rm_tree(n->dir);
	n->dir[0] = '\0';
}
