/* SPDX-License-Identifier: MIT */
/*
 * cairn-uv-listen: `cairn listen` as a libuv application would write it, with libcairn
 * embedded in the application's loop (uvembed.h). Usage: cairn-uv-listen HOME [COUNT]; the
 * passphrase comes from CAIRN_PASSPHRASE. Prints each message as "CONTACT: TEXT" (text as
 * received: a real application escapes it, see client/termsafe.h) and each change of a relay
 * connection on stderr; exits after COUNT messages (0 or none: at SIGINT or SIGTERM).
 */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "uvembed.h"

struct app {
	struct uvembed *u;
	uv_signal_t sigint, sigterm;
	unsigned count, seen;
};

static void app_close(struct app *a)
{
	uvembed_stop(a->u);
	a->u = NULL;
	if (!uv_is_closing((uv_handle_t *)&a->sigint)) {
		uv_close((uv_handle_t *)&a->sigint, NULL);
		uv_close((uv_handle_t *)&a->sigterm, NULL);
	}
}

static int on_message(void *ctx, const struct cairn_message *m)
{
	struct app *a = ctx;
	printf("%s: %.*s\n", m->contact, (int)m->len, (const char *)m->text);
	fflush(stdout);
	if (a->count > 0 && ++a->seen == a->count)
		app_close(a);
	return 0;
}

static void on_relay(void *ctx, const struct cairn_relay_event *ev)
{
	static const char *const names[] = {"connecting", "up", "down"};
	fprintf(stderr, "%s (%s): %s%s%s\n", ev->relay, ev->receiving ? "receiving" : "sending",
	        names[ev->state], ev->error ? ": " : "",
	        ev->error ? cairn_strerror(ev->error) : "");
}

static void on_signal(uv_signal_t *s, int signum)
{
	app_close(s->data);
}

int main(int argc, char **argv)
{
	const char *pass = getenv("CAIRN_PASSPHRASE");
	if (argc < 2 || argc > 3 || pass == NULL) {
		fprintf(stderr, "usage: CAIRN_PASSPHRASE=... cairn-uv-listen HOME [COUNT]\n");
		return 2;
	}
	struct app a = {.count = argc == 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 0};
	struct cairn *c = NULL;
	int rc = cairn_open(argv[1], pass, &c);
	if (rc != 0) {
		fprintf(stderr, "cairn-uv-listen: %s\n", cairn_strerror(rc));
		return 1;
	}
	uv_loop_t *loop = uv_default_loop();
	struct cairn_engine_callbacks cb = {.message = on_message, .relay = on_relay};
	a.u = uvembed_start(loop, c, &cb, &a, &rc);
	if (a.u == NULL) {
		fprintf(stderr, "cairn-uv-listen: %s\n", cairn_strerror(rc));
		cairn_close(c);
		return 1;
	}
	uv_signal_init(loop, &a.sigint);
	uv_signal_init(loop, &a.sigterm);
	a.sigint.data = a.sigterm.data = &a;
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	uv_run(loop, UV_RUN_DEFAULT); /* until the embedding and the signals are closed */
	cairn_close(c);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
