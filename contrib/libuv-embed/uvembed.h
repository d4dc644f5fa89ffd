/* SPDX-License-Identifier: MIT */
/*
 * libcairn inside a libuv loop: an example of the engine API (cairn_engine_* in cairn.h) that
 * an application with its own event loop can copy. One uv_poll_t per descriptor the engine
 * names and one uv_timer_t for its deadline; each poll event or timer expiry is one
 * cairn_engine_step, after which the handles are set again from cairn_engine_fds.
 */
#ifndef CAIRN_UVEMBED_H
#define CAIRN_UVEMBED_H

#include <uv.h>

#include "cairn/cairn.h"

struct uvembed;

/*
 * Starts C's engine with CALLBACKS and CTX (as cairn_engine_start) and drives it from LOOP.
 * Returns the embedding (freed by uvembed_stop once its handles are closed), or NULL with
 * *RC set (CAIRN_ESTATE when C's engine already runs, CAIRN_ENOMEM). C stays the caller's,
 * and must outlive the embedding.
 */
struct uvembed *uvembed_start(uv_loop_t *loop, struct cairn *c,
                              const struct cairn_engine_callbacks *callbacks, void *ctx, int *rc);

/*
 * Stops the engine and closes the handles; the embedding is freed in the last close
 * callback, so LOOP's uv_run returns once nothing else is active. May be called from an
 * engine callback (it then takes effect when the step returns). Accepts NULL.
 */
void uvembed_stop(struct uvembed *u);

/* The first error a step returned (a local failure: the engine went on), or 0. */
int uvembed_error(const struct uvembed *u);

#endif
