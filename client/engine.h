/* SPDX-License-Identifier: MIT */
/*
 * The client's engine: the persistent state of its relay sessions (one per relay and role),
 * driven one step at a time by whoever owns the loop: the application through the public
 * cairn_engine_* calls (cairn.h), or the blocking calls (sync.c), which put a poll() around
 * the same steps. This header is the top (engine.c: the step, descriptors and deadlines,
 * handling what a relay says, the public API); the state and the layers under it are in
 * engine_state.h. Not part of the public API.
 */
#ifndef CAIRN_CLIENT_ENGINE_H
#define CAIRN_CLIENT_ENGINE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine_state.h"

/* ---- engine.c ---- */

/* A new engine for C (not yet connected: the first step plans and connects). *OUT is owned
 * by the caller (engine_free). Returns 0 or CAIRN_ENOMEM. */
CAIRN_WARN_UNUSED int engine_new(struct cairn *c, const struct engine_options *opt,
                                 struct engine **out);

/* Closes every connection and frees E (no callbacks). Accepts NULL. */
void engine_free(struct engine *e);

/* The descriptors to watch and the timeout, as cairn_engine_fds (cairn.h). */
int engine_fds(const struct engine *e, struct pollfd *fds, size_t cap, size_t *n, int *timeout_ms);

/* One step, as cairn_engine_step (cairn.h). Returns 0 or a local error (CAIRN_ENOMEM, a
 * storage error while dispatching). */
CAIRN_WARN_UNUSED int engine_step(struct engine *e, const struct pollfd *fds, size_t n);

#endif
