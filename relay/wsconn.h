/* SPDX-License-Identifier: MIT */
/*
 * The WebSocket side of a connection accepted on the relay's HTTPS listener (PROTOCOL.md
 * 7.2): conn.c's input and output filter. Input: one HTTP request head (relay/httphead.c),
 * answered 101 or 404, then client frames through wslay whose binary payloads go to the
 * connection's channel (conn_input) exactly as TCP reads do. Output: the channel's sealed
 * bytes go out as unmasked binary frames, the frame headers written beside the payload
 * (no copy of it); pong and close through wslay.
 */
#ifndef CAIRN_RELAY_WSCONN_H
#define CAIRN_RELAY_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct conn;
struct wsconn;

#define WSCONN_FRAME_MAX   65536  /* payload bytes of one frame, either way */
#define WSCONN_MESSAGE_MAX 131072 /* payload bytes of one received message */

/* A new filter, reading a request head. Returns owned memory, or NULL. */
struct wsconn *wsconn_new(void);
/* Frees WS (NULL is fine). Called when its connection's memory goes. */
void wsconn_free(struct wsconn *ws);

/* Takes LEN bytes read from C's socket (borrowed). May close C. */
void wsconn_read(struct conn *c, const uint8_t *in, size_t len);

/*
 * Writes C's flight (c->flight) as binary frames, with CB as the write's callback, on
 * c->write_req. Returns 0 or a libuv error. wsconn_write_done frees the frame headers.
 */
int wsconn_write(struct conn *c, uv_write_cb cb);
void wsconn_write_done(struct wsconn *ws);

/* Bytes WS holds for output besides the channel's: frame headers and control frames. */
size_t wsconn_pending(const struct wsconn *ws);

#endif
