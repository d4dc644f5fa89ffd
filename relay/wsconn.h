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

struct wsconn;

/*
 * What the filter needs of its connection (conn.c), passed in so that this module depends on
 * nothing of conn.c's: OWNER is the connection.
 * - input: the Cairn stream's next bytes (borrowed), as a TCP read would give them;
 * - close: close the connection (idempotent); closing: whether it is closing;
 * - hold/release: keep the connection's memory while a control write is in flight.
 */
struct wsconn_ops {
	void (*input)(void *owner, const uint8_t *in, size_t len);
	void (*close)(void *owner);
	bool (*closing)(const void *owner);
	void (*hold)(void *owner);
	void (*release)(void *owner);
};

#define WSCONN_FRAME_MAX   65536  /* payload bytes of one frame, either way */
#define WSCONN_MESSAGE_MAX 131072 /* payload bytes of one received message */

/*
 * A new filter, reading a request head for the secret PATH (borrowed, outlives it), writing on
 * STREAM, on behalf of OWNER through OPS. Returns owned memory, or NULL.
 */
struct wsconn *wsconn_new(const struct wsconn_ops *ops, void *owner, uv_stream_t *stream,
                          const char *path);
/* Frees WS (NULL is fine). Called when its connection's memory goes. */
void wsconn_free(struct wsconn *ws);

/* Takes LEN bytes read from the socket (borrowed). May close the connection. */
void wsconn_read(struct wsconn *ws, const uint8_t *in, size_t len);

/*
 * Writes DATA (LEN bytes, borrowed until CB) as binary frames with REQ and CB: one uv_write
 * of the frame headers and the payload in place. Returns 0 or a libuv error.
 * wsconn_write_done frees the frame headers.
 */
int wsconn_write(struct wsconn *ws, uv_write_t *req, const uint8_t *data, size_t len,
                 uv_write_cb cb);
void wsconn_write_done(struct wsconn *ws);

/* Bytes WS holds for output besides the channel's: frame headers and control frames. */
size_t wsconn_pending(const struct wsconn *ws);

#endif
