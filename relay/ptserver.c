/* SPDX-License-Identifier: MIT */
/*
 * The relay's managed obfs4proxy (see ptserver.h): uv_spawn with the pluggable transport
 * environment, its stdout read line by line into the log, a restart after a pause when it
 * exits, SIGTERM when the relay stops. Its stdin is a pipe only the relay holds, so that it
 * ends with the relay however the relay ends (TOR_PT_EXIT_ON_STDIN_CLOSE).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "ptserver.h"

extern char **environ;

#define PT_RESTART_MS 10000 /* a crashing obfs4proxy is started again this often, at most */
#define PT_LINE_MAX   1024
#define PT_VARS       7 /* the TOR_PT_ variables we set */

struct ptserver {
	uv_loop_t *loop;
	const struct relay_config *cfg;
	uv_process_t proc;
	uv_pipe_t in, out; /* its stdin (ours to close) and stdout */
	uv_timer_t restart;
	bool running;  /* PROC, IN and OUT are open */
	bool stopping; /* ptserver_stop was called: no restart */
	char line[PT_LINE_MAX];
	size_t len;
	char vars[PT_VARS][RELAY_PATH_MAX + 64];
	char **env; /* environ without TOR_PT_*, then VARS */
};

/* Logs LINE from obfs4proxy: what it says is the operator's, but printable ASCII only. */
static void pt_log_line(char *line)
{
	for (char *p = line; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	if (strncmp(line, "SMETHOD obfs4 ", 14) == 0) {
		char *sp = strchr(line + 14, ' ');
		if (sp != NULL)
			*sp = '\0'; /* ARGS: the cert goes to users, not to the log */
		log_info("obfs4proxy listening on %s", line + 14);
	} else if (strncmp(line, "ENV-ERROR", 9) == 0 || strncmp(line, "VERSION-ERROR", 13) == 0 ||
	           strncmp(line, "SMETHOD-ERROR", 13) == 0) {
		log_error("obfs4proxy refused: %s", line);
	}
}

static void pt_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	static char chunk[4096]; /* the loop thread only, consumed before the next read */
	(void)h;
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

static void pt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ptserver *pt = s->data;
	for (ssize_t i = 0; i < n; i++) {
		char c = buf->base[i];
		if (c != '\n') {
			if (pt->len + 1 < sizeof(pt->line))
				pt->line[pt->len++] = c; /* a longer line is cut, not split */
			continue;
		}
		pt->line[pt->len] = '\0';
		pt->len = 0;
		pt_log_line(pt->line);
	}
	if (n < 0)
		uv_read_stop(s); /* EOF: the exit callback follows */
}

static void pt_close_handles(struct ptserver *pt)
{
	if (!pt->running)
		return;
	pt->running = false;
	uv_close((uv_handle_t *)&pt->in, NULL);
	uv_close((uv_handle_t *)&pt->out, NULL);
	uv_close((uv_handle_t *)&pt->proc, NULL);
}

static void pt_spawn(struct ptserver *pt);

static void pt_on_restart(uv_timer_t *t)
{
	struct ptserver *pt = t->data;
	if (!pt->stopping && !pt->running)
		pt_spawn(pt);
}

static void pt_exited(uv_process_t *p, int64_t status, int sig)
{
	struct ptserver *pt = p->data;
	pt_close_handles(pt);
	if (pt->stopping)
		return;
	log_error("obfs4proxy exited (status %lld, signal %d); starting it again in %d s",
	          (long long)status, sig, PT_RESTART_MS / 1000);
	uv_timer_start(&pt->restart, pt_on_restart, PT_RESTART_MS, 0);
}

static void pt_spawn(struct ptserver *pt)
{
	const char *program = getenv("CAIRN_OBFS4PROXY");
	if (program == NULL || program[0] == '\0')
		program = "obfs4proxy";
	char *args[] = {(char *)program, NULL};
	uv_pipe_init(pt->loop, &pt->in, 0);
	uv_pipe_init(pt->loop, &pt->out, 0);
	pt->in.data = pt->out.data = pt->proc.data = pt;
	uv_stdio_container_t stdio[3] = {
	    {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&pt->in},
	    {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&pt->out},
	    {.flags = UV_IGNORE},
	};
	uv_process_options_t opt = {.exit_cb = pt_exited,
	                            .file = program,
	                            .args = args,
	                            .env = pt->env,
	                            .stdio_count = 3,
	                            .stdio = stdio};
	pt->running = true;
	pt->len = 0;
	int rc = uv_spawn(pt->loop, &pt->proc, &opt);
	if (rc != 0) {
		log_error(
		    "cannot start %s: %s (install obfs4proxy, or set CAIRN_OBFS4PROXY); trying "
		    "again in %d s",
		    program, uv_strerror(rc), PT_RESTART_MS / 1000);
		pt_close_handles(pt);
		uv_timer_start(&pt->restart, pt_on_restart, PT_RESTART_MS, 0);
		return;
	}
	uv_read_start((uv_stream_t *)&pt->out, pt_alloc, pt_read);
}

/* The child's environment: ours without TOR_PT_ variables, then the managed server's. */
static int pt_environment(struct ptserver *pt)
{
	const struct relay_config *cfg = pt->cfg;
	bool v6 = strchr(cfg->listen_host, ':') != NULL;
	int n[PT_VARS];
	n[0] = snprintf(pt->vars[0], sizeof(pt->vars[0]), "TOR_PT_MANAGED_TRANSPORT_VER=1");
	n[1] = snprintf(pt->vars[1], sizeof(pt->vars[1]), "TOR_PT_SERVER_TRANSPORTS=obfs4");
	n[2] = snprintf(pt->vars[2], sizeof(pt->vars[2]), "TOR_PT_SERVER_BINDADDR=obfs4-%s",
	                cfg->obfs4_listen);
	n[3] = snprintf(pt->vars[3], sizeof(pt->vars[3]),
	                "TOR_PT_SERVER_TRANSPORT_OPTIONS=obfs4:iat-mode=%u",
	                (unsigned)cfg->obfs4_iat_mode);
	n[4] = snprintf(pt->vars[4], sizeof(pt->vars[4]), "TOR_PT_ORPORT=%s%s%s:%u", v6 ? "[" : "",
	                cfg->listen_host, v6 ? "]" : "", (unsigned)cfg->listen_port);
	n[5] = snprintf(pt->vars[5], sizeof(pt->vars[5]), "TOR_PT_STATE_LOCATION=%s/obfs4",
	                cfg->data_dir);
	n[6] = snprintf(pt->vars[6], sizeof(pt->vars[6]), "TOR_PT_EXIT_ON_STDIN_CLOSE=1");
	for (int i = 0; i < PT_VARS; i++)
		if (n[i] < 0 || (size_t)n[i] >= sizeof(pt->vars[i]))
			return CAIRN_EINVAL;
	size_t count = 0;
	for (char **e = environ; *e != NULL; e++)
		count++;
	pt->env = calloc(count + PT_VARS + 1, sizeof(*pt->env));
	if (pt->env == NULL)
		return CAIRN_ENOMEM;
	size_t k = 0;
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "TOR_PT_", 7) != 0)
			pt->env[k++] = *e;
	for (int i = 0; i < PT_VARS; i++)
		pt->env[k++] = pt->vars[i];
	return 0;
}

struct ptserver *ptserver_start(uv_loop_t *loop, const struct relay_config *cfg)
{
	struct ptserver *pt = calloc(1, sizeof(*pt));
	if (pt == NULL || (pt->cfg = cfg, pt_environment(pt)) != 0) {
		log_error("cannot start obfs4proxy: out of memory or a path too long");
		if (pt != NULL)
			free(pt->env);
		free(pt);
		return NULL;
	}
	pt->loop = loop;
	uv_timer_init(loop, &pt->restart);
	pt->restart.data = pt;
	pt_spawn(pt);
	return pt;
}

void ptserver_stop(struct ptserver *pt)
{
	if (pt == NULL || pt->stopping)
		return;
	pt->stopping = true;
	uv_timer_stop(&pt->restart);
	uv_close((uv_handle_t *)&pt->restart, NULL);
	if (pt->running)
		(void)uv_process_kill(&pt->proc, SIGTERM);
	pt_close_handles(pt);
}

void ptserver_free(struct ptserver *pt)
{
	if (pt == NULL)
		return;
	free(pt->env);
	free(pt);
}

/* The value of " KEY=" on LINE, up to the next blank, into OUT (capacity CAP). */
static bool bridge_arg(const char *line, const char *key, char *out, size_t cap)
{
	char pat[32];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(line, pat);
	if (p == NULL)
		return false;
	p += strlen(pat);
	size_t len = strcspn(p, " \r\n");
	if (len == 0 || len >= cap)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

int ptserver_address(const struct relay_config *cfg, const char *host,
                     const uint8_t pub[static CAIRN_KEY_LEN], struct cairn_address *a)
{
	memset(a, 0, sizeof(*a));
	const char *listen = cfg->obfs4_listen;
	const char *colon = strrchr(listen, ':');
	if (listen[0] == '\0' || colon == NULL)
		return CAIRN_EINVAL;
	char path[RELAY_PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/obfs4/obfs4_bridgeline.txt", cfg->data_dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return CAIRN_ENOTFOUND;
	char line[1024], cert[128], iat[8];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strncmp(line, "Bridge obfs4 ", 13) == 0;
	fclose(f);
	size_t cert_len = 0;
	if (!found || !bridge_arg(line, "cert", cert, sizeof(cert)) ||
	    !bridge_arg(line, "iat-mode", iat, sizeof(iat)) || iat[1] != '\0' || iat[0] < '0' ||
	    iat[0] > '2' ||
	    sodium_base642bin(a->obfs4_cert, sizeof(a->obfs4_cert), cert, strlen(cert), NULL,
	                      &cert_len, NULL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
	    cert_len != CAIRN_OBFS4_CERT_LEN)
		return CAIRN_ECORRUPT;
	a->transport = CAIRN_TRANSPORT_OBFS4;
	a->obfs4_iat_mode = (uint8_t)(iat[0] - '0');
	memcpy(a->key, pub, CAIRN_KEY_LEN);
	a->port = (uint16_t)strtoul(colon + 1, NULL, 10);
	if (host == NULL) {
		/* [obfs4] listen's host, without an IPv6 literal's brackets. */
		size_t len = (size_t)(colon - listen);
		if (len >= 2 && listen[0] == '[' && listen[len - 1] == ']') {
			listen++;
			len -= 2;
		}
		if (len >= sizeof(a->host))
			return CAIRN_EINVAL;
		memcpy(a->host, listen, len);
		a->host[len] = '\0';
	} else if (strlen(host) < sizeof(a->host)) {
		strcpy(a->host, host);
	} else {
		return CAIRN_EINVAL;
	}
	return 0;
}
