/* SPDX-License-Identifier: MIT */
/*
 * `cairn-relay import FILE` (import.h; docs/PROTOCOL.md 12): the operator delivers a bundle
 * to the running relay of this config as any courier does, over the relay's own listener (a
 * Cairn handshake as a client, then one FORWARDED per item, a window of them in flight), so
 * the relay's one path for BUNDLED (bundled.c) decides every item and import is idempotent
 * like any other delivery. Blocking and single-threaded: a short-lived command, not the
 * server. Prints only counts; an item's bytes, mailbox and relay never reach the terminal.
 */
#include "import.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn/error.h"
#include "channel.h"

#define IMPORT_WINDOW     16
#define IMPORT_RETRIES    8
#define IMPORT_TIMEOUT_MS 60000

struct importer {
	struct channel ch;
	int sock;
	int file;
	size_t n;
	uint8_t *done;  /* per item: answered for good */
	uint8_t *tries; /* per item: passing refusals (`storage`, `limit`) */
	struct import_counts counts;
	uint8_t in[65536]; /* read from the socket, not yet fed */
	size_t in_off, in_len;
};

static uint64_t import_clock(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL);
}

/* Connects to HOST:PORT, the relay's listener ("0.0.0.0" and "::" mean this machine). */
static int dial(const char *host, uint16_t port)
{
	if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* Writes everything the channel holds. */
static int send_output(struct importer *im)
{
	const uint8_t *data;
	size_t n;
	while ((n = channel_output(&im->ch, &data)) > 0) {
		ssize_t w = send(im->sock, data, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return CAIRN_EIO;
		channel_output_consume(&im->ch, (size_t)w);
	}
	return 0;
}

/* Waits for the next event that is not NONE: the open, a reply, or a failure. Bytes read
 * and not yet fed wait in IM's input buffer (the channel takes one frame at a time). */
static int next_event(struct importer *im, struct channel_event *ev)
{
	for (;;) {
		enum channel_event_type t = channel_next_event(&im->ch, ev);
		if (t == CHANNEL_EV_FAILED)
			return ev->error != 0 ? ev->error : CAIRN_EIO;
		if (t != CHANNEL_EV_NONE)
			return 0;
		if (im->in_off < im->in_len) {
			size_t used =
			    channel_feed(&im->ch, im->in + im->in_off, im->in_len - im->in_off);
			if (used == 0)
				return CAIRN_EIO; /* no event and nothing taken: cannot go on */
			im->in_off += used;
			continue;
		}
		struct pollfd p = {.fd = im->sock, .events = POLLIN};
		int r = poll(&p, 1, IMPORT_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return CAIRN_ETIMEDOUT;
		ssize_t got = recv(im->sock, im->in, sizeof(im->in), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return CAIRN_EIO;
		im->in_off = 0;
		im->in_len = (size_t)got;
	}
}

static int read_item(const struct importer *im, size_t i, uint8_t *out)
{
	size_t done = 0;
	while (done < CAIRN_BUNDLE_ITEM_LEN) {
		ssize_t r = pread(im->file, out + done, CAIRN_BUNDLE_ITEM_LEN - done,
		                  (off_t)(i * CAIRN_BUNDLE_ITEM_LEN + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return CAIRN_EIO;
		done += (size_t)r;
	}
	return 0;
}

/* Records the answer M to item I; returns whether I is to be sent again. */
static bool settle(struct importer *im, size_t i, const struct cairn_msg *m)
{
	int err = m->type == CAIRN_REPLY_OK ? 0 : CAIRN_ELIMIT;
	if (m->type == CAIRN_REPLY_ERROR)
		err = cairn_wire_error(m->code);
	if ((err == CAIRN_ESTORAGE || err == CAIRN_ELIMIT) && ++im->tries[i] < IMPORT_RETRIES)
		return true;
	im->done[i] = 1;
	if (err == 0)
		im->counts.taken++;
	else if (err == CAIRN_EEXPIRED)
		im->counts.expired++;
	else if (err == CAIRN_EBADREQ)
		im->counts.not_ours++;
	else
		im->counts.refused++;
	return false;
}

/* Sends every item not yet answered for good, IMPORT_WINDOW at a time. */
static int run_items(struct importer *im)
{
	struct {
		uint32_t rid;
		size_t item;
		bool used;
	} win[IMPORT_WINDOW] = {0};
	uint8_t *item = malloc(CAIRN_BUNDLE_ITEM_LEN);
	if (item == NULL)
		return CAIRN_ENOMEM;
	uint32_t rid = 1;
	size_t next = 0, inflight = 0;
	int rc = 0;
	for (;;) {
		while (rc == 0 && inflight < IMPORT_WINDOW) {
			bool busy = false; /* an item waiting in the window is still owed */
			while (next < im->n) {
				busy = false;
				for (size_t s = 0; s < IMPORT_WINDOW && !busy; s++)
					busy = win[s].used && win[s].item == next;
				if (!im->done[next] && !busy)
					break;
				next++;
			}
			if (next == im->n) {
				size_t owed = 0;
				for (size_t i = 0; i < im->n; i++)
					owed += !im->done[i];
				if (owed == 0 || owed <= inflight)
					break;
				next = 0; /* retries: another sweep */
				continue;
			}
			if ((rc = read_item(im, next, item)) != 0)
				break;
			struct cairn_msg m = {.type = CAIRN_CMD_FORWARDED,
			                      .request_id = rid,
			                      .sealed = item,
			                      .sealed_len = CAIRN_BUNDLE_ITEM_LEN};
			if ((rc = channel_queue(&im->ch, &m)) != 0)
				break;
			size_t s = 0;
			while (win[s].used)
				s++;
			win[s].rid = rid++;
			win[s].item = next++;
			win[s].used = true;
			inflight++;
		}
		if (rc != 0 || inflight == 0)
			break;
		if ((rc = channel_flush(&im->ch)) != 0 || (rc = send_output(im)) != 0)
			break;
		struct channel_event ev;
		if ((rc = next_event(im, &ev)) != 0)
			break;
		if (ev.type != CHANNEL_EV_MESSAGE)
			continue;
		for (size_t s = 0; s < IMPORT_WINDOW; s++) {
			if (!win[s].used || win[s].rid != ev.msg.request_id)
				continue;
			win[s].used = false;
			inflight--;
			(void)settle(im, win[s].item, &ev.msg);
			break;
		}
	}
	free(item);
	return rc;
}

int relay_import(const struct relay_config *cfg, const uint8_t public_key[static CAIRN_KEY_LEN],
                 const char *path, struct import_counts *out, char *err, size_t errcap)
{
	memset(out, 0, sizeof(*out));
	static struct importer im; /* one import per process; 64 KiB of input buffer */
	memset(&im, 0, sizeof(im));
	im.sock = -1;
	im.file = -1;
	int rc = CAIRN_EIO;
	im.file = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (im.file < 0 || fstat(im.file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errcap, "cannot read %s: %s", path,
		         im.file < 0 ? strerror(errno) : "not a regular file");
		goto out;
	}
	if (sb.st_size <= 0 || (uint64_t)sb.st_size % CAIRN_BUNDLE_ITEM_LEN != 0) {
		snprintf(err, errcap,
		         "%s is not a bundle (empty, or its length is not a multiple of %d "
		         "bytes): nothing imported",
		         path, CAIRN_BUNDLE_ITEM_LEN);
		rc = CAIRN_EINVAL;
		goto out;
	}
	im.n = (size_t)((uint64_t)sb.st_size / CAIRN_BUNDLE_ITEM_LEN);
	im.done = calloc(im.n, 1);
	im.tries = calloc(im.n, 1);
	if (im.done == NULL || im.tries == NULL) {
		snprintf(err, errcap, "out of memory");
		rc = CAIRN_ENOMEM;
		goto out;
	}
	im.sock = dial(cfg->listen_host, cfg->listen_port);
	if (im.sock < 0) {
		snprintf(err, errcap,
		         "cannot connect to the relay's listener (is it running with this "
		         "config?)");
		rc = CAIRN_ECONNECT;
		goto out;
	}
	struct channel_options opt = {.role = CHANNEL_INITIATOR,
	                              .relay_public = public_key,
	                              .frame_size = cfg->frame_size,
	                              .now = import_clock};
	if ((rc = channel_init(&im.ch, &opt)) != 0) {
		snprintf(err, errcap, "cannot start a connection: %s", cairn_strerror(rc));
		goto out;
	}
	struct channel_event ev;
	rc = send_output(&im);
	if (rc == 0)
		rc = next_event(&im, &ev);
	if (rc == 0 && ev.type != CHANNEL_EV_OPEN)
		rc = CAIRN_EIO;
	if (rc == 0)
		rc = run_items(&im);
	if (rc != 0)
		snprintf(err, errcap, "the relay's listener: %s", cairn_strerror(rc));
	for (size_t i = 0; i < im.n; i++)
		im.counts.unanswered += !im.done[i];
	channel_free(&im.ch);
out:
	*out = im.counts;
	out->items = im.n;
	if (im.sock >= 0)
		close(im.sock);
	if (im.file >= 0)
		close(im.file);
	free(im.done);
	free(im.tries);
	return rc;
}
