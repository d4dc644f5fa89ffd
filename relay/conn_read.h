/* SPDX-License-Identifier: MIT */
/*
 * What the write path (conn_write.c) calls in the read side (conn_read.c): a connection's
 * output drained, so it may read again. Private to the connection's files.
 */
#ifndef CAIRN_RELAY_CONN_READ_H
#define CAIRN_RELAY_CONN_READ_H

struct conn;

/* Starts or stops reading C, as its state, pause, output level and command layer allow. */
void conn_update_read_state(struct conn *c);

#endif
