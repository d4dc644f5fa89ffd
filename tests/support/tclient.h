/* SPDX-License-Identifier: MIT */
/*
 * A small blocking relay client for tests and tools, built only on proto/: TCP to a relay on
 * loopback, the Cairn handshake, batched commands, and replies one at a time. Not part of
 * libcairn; it exists so tests can speak the real protocol to the real relay binary, and so
 * hostile tests can bend it.
 */
#ifndef CAIRN_TEST_TCLIENT_H
#define CAIRN_TEST_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "codec.h"
#include "frame.h"
#include "handshake.h"

/*
 * The protocol runs in CH (proto/channel.h); this struct adds the socket. The other fields
 * are the surface hostile tests and the attack driver bend the protocol through: SESSION is
 * kept in step with the channel's both ways (a test may seal a frame of its own with it, or
 * run the handshake by hand into it, and the channel then takes it over); BATCH is the
 * content of the next frame, sent as given by tclient_flush; READER (its limits set for
 * transport frames by tclient_connect) serves a test that reads frames itself. Callers that
 * read or seal after tclient_connect without tclient_recv or tclient_flush (the attack
 * driver) use CH.
 */
struct tclient {
	int fd;
	struct channel ch;
	struct cairn_session session;
	struct frame_reader reader;
	uint8_t in[65536];
	size_t in_len, in_off;
	uint8_t batch[CAIRN_FRAME_CONTENT_MAX];
	size_t batch_len;
	uint32_t next_id;
};

/* TCP connect to 127.0.0.1:PORT only (no handshake). Returns 0 or -1. */
int tclient_dial(struct tclient *c, uint16_t port);
/* Dial and handshake against RELAY_PUBLIC. Returns 0 or a negative code. */
int tclient_connect(struct tclient *c, uint16_t port, const uint8_t relay_public[32]);
/* tclient_connect from the IPv4 address FROM (NULL: the kernel's choice) to TO (NULL:
 * 127.0.0.1), for tests that look at who connected from where. */
int tclient_connect_at(struct tclient *c, const char *from, const char *to, uint16_t port,
                       const uint8_t relay_public[32]);
void tclient_close(struct tclient *c);

/* Adds M to the batch (M->request_id is set from a counter if 0 is passed? no: as given). */
int tclient_queue(struct tclient *c, const struct cairn_msg *m);
/* Seals the batch into one frame, as given, and sends it. */
int tclient_flush(struct tclient *c);
/* Queue + flush. */
int tclient_send(struct tclient *c, const struct cairn_msg *m);
/* Writes raw bytes to the socket. */
int tclient_write_raw(struct tclient *c, const void *buf, size_t len);

/*
 * Next reply, waiting up to TIMEOUT_MS. Pointers in *M stay valid until the next call.
 * Returns 0, CAIRN_EIO on timeout (errno ETIMEDOUT/EAGAIN) or closed connection
 * (tclient_closed tells which), or a decode error.
 */
int tclient_recv(struct tclient *c, struct cairn_msg *m, int timeout_ms);
/* True if the peer closed the connection (seen by the last recv). */
bool tclient_peer_closed(const struct tclient *c);

/* Seconds added to the wall clock for the handshake's timestamp of connections made from now
 * on (0: the real clock): a test of a relay whose clock jumped (test_it_clock) sets it. */
extern int64_t tclient_clock_offset;

/* The transport cipher connections made from now on offer (PROTOCOL.md 2.5; 0: AES-256-GCM
 * where the CPU has it): test_it_transport_cipher sets CHANNEL_TRANSPORT_CHACHA. */
extern enum channel_transport tclient_transport;

/* Creates a mailbox with a fresh signing key pair; returns ids and the secret key. */
int tclient_create(struct tclient *c, uint8_t recipient_id[24], uint8_t sender_id[24],
                   uint8_t sign_pk[32], uint8_t sign_sk[64]);
/* Proves ownership of RECIPIENT_ID on this connection. Returns 0 or the ERROR code. */
int tclient_auth(struct tclient *c, const uint8_t recipient_id[24], const uint8_t sign_sk[64]);
/* One request, waiting for its reply (ENVELOPE and END events met meanwhile are skipped).
 * Returns 0 for OK/CREATED, the negative code of an ERROR, or a negative transport error. */
int tclient_call(struct tclient *c, struct cairn_msg *m, struct cairn_msg *reply);

#endif
