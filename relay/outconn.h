/* SPDX-License-Identifier: MIT */
/*
 * The relay's own client connections to other relays, which carry FORWARDs (docs/PROTOCOL.md
 * 5.11): the forward_carrier of fwdport.h over libuv TCP and the proto channel in the
 * initiator role. Loop thread only.
 */
#ifndef CAIRN_RELAY_OUTCONN_H
#define CAIRN_RELAY_OUTCONN_H

struct relay;
struct outconn;

/* Starts the carrier for RELAY and sets relay->carrier: 0 or CAIRN_ENOMEM. Outgoing sockets
 * are bound to the listen address when it is one specific IP, so that the relay connects from
 * the address it is known by. */
int outconn_start(struct relay *relay);

/* Answers every waiting FORWARD `unreachable`, closes every outgoing connection and the timer;
 * the memory goes with the last close callback. relay->carrier is NULL afterwards. */
void outconn_stop(struct relay *relay);

#endif
