/* SPDX-License-Identifier: MIT */
/*
 * The relay server: binds the listener, rebuilds the mailbox index from the store, then runs
 * the loop. A once-a-second tick enforces timeouts, expires envelopes and logs the aggregate
 * statistics; a uv_check after each iteration seals and writes every connection's batched
 * output. SIGTERM/SIGINT finish pending commits, tell subscribers, and stop; SIGHUP reopens
 * the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "admission.h"
#include "cairn/error.h"
#include "commands.h"
#include "conn.h"
#include "feed.h"
#include "handshake.h"
#include "log.h"
#include "metrics.h"
#include "outconn.h"
#include "privs.h"
#include "ptserver.h"
#include "relay.h"
#include "relaypolicy.h"
#include "server.h"

#define SHUTDOWN_GRACE_MS 1000 /* time for the last replies to reach clients */

static void on_connection(uv_stream_t *server, int status)
{
	struct relay *relay = server->data;
	if (status < 0) {
		log_warn("accept failed: %s", uv_strerror(status));
		return;
	}
	/* Not accepting leaves the connection in the kernel's backlog and pauses libuv's
	 * accepting until relay_ready() takes it. */
	bool https = server == (uv_stream_t *)&relay->https_listener;
	if (!relay->ready) {
		if (https)
			relay->accept_pending_https = true;
		else
			relay->accept_pending = true;
		return;
	}
	conn_accept(relay, (uv_tcp_t *)server);
}

/* The first block of envelope ids is durable: serve. */
static void relay_ready(struct relay *relay)
{
	relay->ready = true;
	if (relay->accept_pending && !relay->stopping) {
		relay->accept_pending = false;
		conn_accept(relay, &relay->listener);
	}
	if (relay->accept_pending_https && !relay->stopping) {
		relay->accept_pending_https = false;
		conn_accept(relay, &relay->https_listener);
	}
}

static void on_flush(uv_check_t *h)
{
	conn_flush_all(h->data);
}

static void log_stats(struct relay *relay)
{
	struct metrics_snapshot snap;
	metrics_snapshot(relay, &snap);
	metrics_log_line(&snap);
}

static void on_tick(uv_timer_t *t)
{
	struct relay *relay = t->data;
	int64_t now = relay_now(relay);
	conn_check_timeouts(relay, (int64_t)uv_now(relay->loop));
	commands_expire(relay, now);
	admission_tick(relay);
	uint32_t every = relay->cfg->stats_interval_s;
	if (every > 0 && now - relay->last_stats >= every) {
		relay->last_stats = now;
		log_stats(relay);
	}
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_grace_over(uv_timer_t *t)
{
	struct relay *relay = t->data;
	while (relay->conns != NULL)
		conn_close(relay->conns);
	close_handle((uv_handle_t *)&relay->shutdown_timer);
	close_handle((uv_handle_t *)&relay->flusher);
	close_handle((uv_handle_t *)&relay->tick);
	close_handle((uv_handle_t *)&relay->sigterm);
	close_handle((uv_handle_t *)&relay->sigint);
	close_handle((uv_handle_t *)&relay->sighup);
}

/* The storage thread has committed everything and stopped: answer, then close. */
static void on_storage_closed(void *arg)
{
	struct relay *relay = arg;
	relay->storage = NULL; /* freed by now */
	feed_stop(relay);      /* the engine wakes no more */
	commands_shutdown(relay);
	conn_flush_all(relay);
	uv_timer_start(&relay->shutdown_timer, on_grace_over, SHUTDOWN_GRACE_MS, 0);
}

static void begin_shutdown(struct relay *relay)
{
	if (relay->stopping)
		return;
	relay->stopping = true;
	log_info("shutting down: finishing pending writes");
	log_stats(relay);
	close_handle((uv_handle_t *)&relay->listener);
	metrics_server_stop(relay);
	if (relay->cfg->https_listen_port != 0)
		close_handle((uv_handle_t *)&relay->https_listener);
	ptserver_stop(relay->obfs4);
	outconn_stop(relay); /* waiting FORWARDs: `unreachable` */
	uv_timer_stop(&relay->tick);
	feed_pause(relay);
	storage_close(relay->storage, on_storage_closed, relay);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct relay *relay = h->data;
	if (signum == SIGHUP) {
		log_reopen();
		log_info("log reopened");
		relay_policy_reload(relay);
		return;
	}
	begin_shutdown(relay);
}

/* Resolves HOST (numeric, or a name such as localhost) and binds LISTENER to it and PORT. */
static int bind_one(struct relay *relay, uv_tcp_t *listener, const char *host, uint16_t port_num,
                    const char *hint)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", port_num);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	uv_getaddrinfo_t req;
	int rc = uv_getaddrinfo(relay->loop, &req, NULL, host, port, &hints);
	if (rc != 0) {
		log_error("cannot resolve listen address '%s': %s", host, uv_strerror(rc));
		return CAIRN_EINVAL;
	}
	uv_tcp_init(relay->loop, listener);
	listener->data = relay;
	rc = uv_tcp_bind(listener, req.addrinfo->ai_addr, 0);
	uv_freeaddrinfo(req.addrinfo);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)listener, 1024, on_connection);
	if (rc != 0) {
		log_error("cannot listen on %s port %u: %s%s%s%s", host, port_num, uv_strerror(rc),
		          rc == UV_EADDRINUSE ? " (another process uses this port; choose "
		                                "another with "
		                              : "",
		          rc == UV_EADDRINUSE ? hint : "", rc == UV_EADDRINUSE ? ")" : "");
		return CAIRN_EIO;
	}
	return 0;
}

/* Binds the relay's listener, and its HTTPS listener when [https] listen is set. */
static int bind_listener(struct relay *relay)
{
	const struct relay_config *cfg = relay->cfg;
	int rc = bind_one(relay, &relay->listener, cfg->listen_host, cfg->listen_port,
	                  "--listen or [relay] listen");
	if (rc == 0 && cfg->https_listen_port != 0)
		rc = bind_one(relay, &relay->https_listener, cfg->https_listen_host,
		              cfg->https_listen_port, "[https] listen");
	return rc;
}

/*
 * Two relays on one data directory would hand out the same envelope ids and each believe its
 * memory is the truth: the second is refused. The lock (a POSIX record lock, released by the
 * kernel when the process ends, however it ends) is held for the relay's lifetime.
 */
static int lock_data_dir(const char *dir, int *fd_out)
{
	char path[RELAY_PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/relay.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return CAIRN_EIO;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		log_error("another cairn-relay is already serving %s (%s is locked); stop it first",
		          dir, path);
		close(fd);
		return CAIRN_EIO;
	}
	*fd_out = fd;
	return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
	close_handle(h);
}

int relay_server_run(const struct relay_config *cfg,
                     const uint8_t private_key[static CAIRN_KEY_LEN],
                     const uint8_t public_key[static CAIRN_KEY_LEN])
{
	struct relay *relay = calloc(1, sizeof(*relay));
	int lock_fd = -1;
	uv_loop_t loop;
	if (relay == NULL || uv_loop_init(&loop) != 0) {
		free(relay);
		return CAIRN_ENOMEM;
	}
	relay->loop = &loop;
	loop.data = relay; /* conn.c finds the relay through it */
	relay->cfg = cfg;
	relay->private_key = private_key;
	memcpy(relay->public_key, public_key, CAIRN_KEY_LEN);
	relay->handler = &commands_handler;
	relay->port = &conn_socket_port;
	int rc = relay_policy_start(relay);
	if (rc != 0)
		goto out;
	rc = mailbox_index_init(&relay->mailboxes);
	relay->replay = rc == 0 ? replay_cache_new(cfg->replay_cache_entries) : NULL;
	if (relay->replay == NULL) {
		log_error("out of memory");
		rc = CAIRN_ENOMEM;
		goto out;
	}
	/* Bind first, so "port in use" is reported before any work is done. */
	rc = bind_listener(relay);
	if (rc != 0)
		goto out;
	rc = lock_data_dir(cfg->data_dir, &lock_fd);
	if (rc != 0)
		goto out;
	bool pg = strcmp(cfg->store_engine, "postgresql") == 0;
	char store_why[256] = "";
	struct store_params params = {
	    .dir = cfg->data_dir,
	    .connection = cfg->store_connection,
	    .node = (uint8_t)cfg->store_node,
	    .error = store_why,
	    .error_cap = sizeof(store_why),
	};
	/* Several nodes: the change feed's wake is ready before the engine can call it. */
	relay->node = (uint8_t)cfg->store_node;
	relay->feed_lost = begin_shutdown;
	const struct store_engine *engine = pg ? &store_pg : &store_sqlite;
	rc = feed_start(relay, &loop, engine, &params);
	if (rc != 0)
		goto out;
	rc = storage_open(&loop, engine, &params, &commands_load_cb, relay, &relay->storage);
	if (rc != 0 && pg) {
		/* The database's own words (host, port, what refused): nothing about a user. */
		log_error("cannot open the store in PostgreSQL ([store] connection): %s%s%s",
		          cairn_strerror(rc), store_why[0] != '\0' ? ": " : "", store_why);
		goto out;
	}
	if (rc == CAIRN_ESTATE) {
		/* The one case an operator meets after going back to an older binary: say so. */
		log_error("the store in %s was written by a newer cairn-relay: run that version, "
		          "or restore the data directory saved before the upgrade",
		          cfg->data_dir);
		goto out;
	}
	if (rc != 0) {
		log_error("cannot open the store in %s: %s", cfg->data_dir, cairn_strerror(rc));
		goto out;
	}
	commands_load_finish(relay, relay_ready);
	feed_poll(relay); /* what the other nodes committed since load's snapshot */
	admission_init(relay);
	if (outconn_start(relay) != 0) {
		log_error("out of memory");
		rc = CAIRN_ENOMEM;
		goto out_storage;
	}
	/* Before the drop: a Unix socket's directory may be root's. */
	rc = metrics_server_start(relay);
	if (rc != 0)
		goto out_storage;
	if (cfg->user[0] != '\0') {
		char err[256];
		rc = relay_drop_privileges(cfg->user, err, sizeof(err));
		if (rc != 0) {
			log_error("%s", err);
			goto out_storage;
		}
	}
	uv_timer_init(&loop, &relay->tick);
	uv_timer_init(&loop, &relay->shutdown_timer);
	uv_check_init(&loop, &relay->flusher);
	uv_signal_init(&loop, &relay->sigterm);
	uv_signal_init(&loop, &relay->sigint);
	uv_signal_init(&loop, &relay->sighup);
	relay->tick.data = relay->shutdown_timer.data = relay->flusher.data = relay;
	relay->sigterm.data = relay->sigint.data = relay->sighup.data = relay;
	uv_timer_start(&relay->tick, on_tick, 1000, 1000);
	uv_check_start(&relay->flusher, on_flush);
	uv_signal_start(&relay->sigterm, on_signal, SIGTERM);
	uv_signal_start(&relay->sigint, on_signal, SIGINT);
	uv_signal_start(&relay->sighup, on_signal, SIGHUP);
	relay->last_stats = relay_now(relay);
	/* After the drop: obfs4proxy runs as the relay's user, never as root. */
	if (cfg->obfs4_listen[0] != '\0')
		relay->obfs4 = ptserver_start(&loop, cfg);
	log_info("relay serving on %s port %u: %zu mailboxes, %llu envelopes stored",
	         cfg->listen_host, cfg->listen_port, relay->mailboxes.count,
	         (unsigned long long)relay->mailboxes.envelopes);
	if (cfg->https_listen_port != 0)
		log_info("HTTPS listener (WebSocket behind the web server) on %s port %u",
		         cfg->https_listen_host, cfg->https_listen_port);

	uv_run(&loop, UV_RUN_DEFAULT);
	log_info("relay stopped");
	rc = relay->exit_code; /* non-zero: it could no longer follow the other nodes (feed.c) */
	goto out;

out_storage:
	storage_close(relay->storage, NULL, NULL);
out:
	outconn_stop(relay); /* error paths: the carrier's memory goes with its timer */
	metrics_server_stop(relay);
	/* Close whatever is still open (error paths) and let the callbacks run. */
	uv_walk(&loop, walk_close, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		log_warn("a libuv handle was left open at exit");
	if (lock_fd >= 0)
		close(lock_fd);
	ptserver_free(relay->obfs4);
	metrics_server_free(relay);
	replay_cache_free(relay->replay);
	mailbox_index_free(&relay->mailboxes);
	free(relay->marks);
	relay_policy_free(relay);
	channel_pool_free(&relay->bufpool);
	channel_hs_cache_free(&relay->hs_cache);
	sodium_memzero(relay, sizeof(*relay));
	free(relay);
	return rc;
}
