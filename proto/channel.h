/* SPDX-License-Identifier: MIT */
/*
 * One protocol channel (docs/PROTOCOL.md sections 2 to 5) as a sans-I/O engine, after nghttp2
 * and ngtcp2: bytes in (channel_feed), events out (channel_next_event), messages in
 * (channel_queue), bytes out (channel_output). It holds the handshake state, the frame reader,
 * the batch being built, its cutting into frames, sealing and opening, and message decoding;
 * sockets, polling, timeouts and threads belong to the caller. Clock and randomness are
 * injected, so a test can replay a handshake byte for byte.
 *
 * Memory is bounded and grows only with bytes really received or queued: the frame reader
 * never allocates from a claimed length, the plaintext of one frame is at most 65535 bytes,
 * and sealed output stops growing at the output limit (channel_queue then refuses).
 */
#ifndef CAIRN_PROTO_CHANNEL_H
#define CAIRN_PROTO_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/error.h"
#include "cairn/limits.h"
#include "codec.h"
#include "frame.h"
#include "handshake.h"
#include "spares.h"

enum channel_role {
	CHANNEL_INITIATOR, /* the client: writes message 1 at init */
	CHANNEL_RESPONDER, /* the relay: answers message 1 (possibly on another thread) */
};

/* The transport cipher a channel offers (initiator) or may choose (responder), PROTOCOL.md
 * 2.5. The handshake itself is always ChaChaPoly. */
enum channel_transport {
	CHANNEL_TRANSPORT_AUTO = 0, /* AES-256-GCM where this CPU has it, else ChaCha20-Poly1305 */
	CHANNEL_TRANSPORT_CHACHA,   /* ChaCha20-Poly1305 only: no offer, no choice */
};

/* The value of CAIRN_TRANSPORT_CIPHER (the client's and the bench's override, read by them):
 * "chacha" is CHANNEL_TRANSPORT_CHACHA; NULL or anything else CHANNEL_TRANSPORT_AUTO. */
enum channel_transport channel_transport_parse(const char *value);

/* Sealed output buffered beyond which channel_queue refuses, when the caller passes 0. */
#define CHANNEL_OUTPUT_MAX_DEFAULT (8u << 20)

struct channel_options {
	enum channel_role role;
	/* Initiator: the relay's static public key (copied). Unused by a responder, whose key
	 * pair goes to channel_hello_respond, so that the channel itself holds no long-term
	 * secret. */
	const uint8_t *relay_public;
	/* 0 for bucket padding, else the fixed plaintext size of every frame this side sends
	 * (CAIRN_FRAME_FIXED_MIN..CAIRN_FRAME_PLAINTEXT_MAX); receiving accepts either. */
	size_t frame_size;
	/* Bound on output buffered in the channel (sealed frames plus the open batch);
	 * 0 means CHANNEL_OUTPUT_MAX_DEFAULT, more than UINT32_MAX means UINT32_MAX. */
	size_t output_max;
	/* Unix time in seconds, for the handshake timestamp and its check. Required: proto/
	 * reads no clock of its own. */
	uint64_t (*now)(void *ctx);
	/* A uniform integer in 0..upper-1, for handshake padding lengths;
	 * NULL: randombytes_uniform(). */
	uint32_t (*uniform)(void *ctx, uint32_t upper);
	void *ctx;
	/* Tests and vectors only: a fixed ephemeral private key (32 bytes, copied), else NULL. */
	const uint8_t *ephemeral;
	/* Which transport ciphers to offer or choose (2.5); 0 is CHANNEL_TRANSPORT_AUTO. */
	enum channel_transport transport;
	/* Where the handshake state comes from and goes back to (struct channel_hs_cache), or
	 * NULL for malloc's. */
	struct channel_hs_cache *hs_cache;
};

enum channel_state {
	CHANNEL_HANDSHAKE,     /* waiting for the peer's handshake message */
	CHANNEL_HELLO_READY,   /* responder: message 1 arrived, channel_hello_take() it */
	CHANNEL_HELLO_PENDING, /* responder: message 2 being computed (channel_hello_finish) */
	CHANNEL_OPEN,          /* handshake done: frames both ways */
	CHANNEL_FAILED,        /* fatal error: input is discarded, no more output */
};

enum channel_event_type {
	CHANNEL_EV_NONE,        /* nothing until more input (or the hello is handled) */
	CHANNEL_EV_HELLO,       /* responder: message 1 is ready for channel_hello_take() */
	CHANNEL_EV_OPEN,        /* the handshake completed; channel_session() is valid */
	CHANNEL_EV_MESSAGE,     /* MSG holds one decoded command or reply */
	CHANNEL_EV_BAD_MESSAGE, /* responder: a command of sound structure but wrong type,
	                         * fields or unknown kind (5.1); MSG.request_id is valid and ERROR
	                         * is the code its ERROR reply carries; the channel goes on */
	CHANNEL_EV_FAILED,      /* fatal (ERROR): sticky; a responder that fails before OPEN must
	                         * stay silent until its deadline (2.2), after it close (5.8) */
};

struct channel_event {
	enum channel_event_type type;
	int error; /* BAD_MESSAGE: CAIRN_EBADREQ, CAIRN_ETOOBIG or CAIRN_EUNKNOWN; FAILED: cause */
	/* MESSAGE and BAD_MESSAGE. Pointer fields borrow from the channel and stay valid until
	 * the next call of channel_next_event, channel_feed, channel_trim or channel_free. */
	struct cairn_msg msg;
};

/* A growable byte buffer whose ownership can move between channel and caller. */
struct channel_buf {
	uint8_t *data;
	size_t len, cap;
};

/* The handshake's state, on the heap only until the channel opens or fails: a relay holds
 * thousands of open channels, which need none of it. */
struct channel_handshake {
	/* The clock and the padding lengths (channel_options): read only while the handshake
	 * runs, so an open channel keeps none of them. */
	uint64_t (*now)(void *ctx);
	uint32_t (*uniform)(void *ctx, uint32_t upper);
	void *ctx;
	struct noise_handshake noise; /* initiator, until message 2 */
	uint8_t ciphers; /* CAIRN_HELLO_CIPHER_* offered (initiator) or choosable (responder) */
	bool has_ephemeral;
	uint8_t ephemeral[CAIRN_KEY_LEN];
	/* Message 1, held from its arrival until channel_hello_take (responder). */
	uint8_t hello[CAIRN_HANDSHAKE1_MAX];
	size_t hello_len;
	struct channel_hs_cache *cache; /* where it goes back (channel_options), or NULL */
};

/*
 * A bounded cache of handshake states that channels have finished with, for a caller that
 * accepts many channels on one thread. A relay's connection holds one (848-byte malloc chunk)
 * from its accept to its message 1; given back to malloc, each left a hole that the next
 * connection's longer-lived block (672 bytes) was cut from, stranding the 176 bytes left,
 * too small for anything a connection keeps (docs/PERFORMANCE.md, idle memory). Kept here,
 * handshake states reuse each other's memory. The cache never holds more states than were
 * in use at once, so it adds nothing to the peak; the bound covers the bursts of hundreds of
 * concurrent handshakes that a relay sees when clients reconnect together (64 slots were
 * too few). States are wiped before the cache keeps them. Not thread-safe; a zeroed cache is
 * empty and ready.
 */
#define CHANNEL_HS_CACHE_SLOTS 1024 /* at most 1,024 x 848 bytes, 848 KiB */

struct channel_hs_cache {
	struct spares states; /* struct channel_handshake, at most CHANNEL_HS_CACHE_SLOTS */
};

/* Called now and then (a relay: once a second): when no state was taken since the last call,
 * the cache frees them all, so that a caller that accepts nothing holds none. */
void channel_hs_cache_tick(struct channel_hs_cache *c);

/* Frees every state the cache holds; it is empty and usable again. */
void channel_hs_cache_free(struct channel_hs_cache *c);

/* The channel's buffers, on the heap only while one of them holds memory: an idle channel
 * (every buffer empty and given back by channel_trim) holds none of them, not even these
 * descriptors (88 bytes of each idle connection of a relay). */
struct channel_bufs {
	/* The open frame's content, decoded one message per event. */
	struct channel_buf plain;
	uint32_t plain_off; /* at most a frame's length */
	/* How much of PLAIN's block has held plaintext since it was last wiped, so that a pool
	 * (chanpool.h) wipes that much and not the whole capacity; BATCH_DIRTY the same. */
	uint32_t plain_dirty;
	struct channel_buf batch; /* encoded messages not yet sealed */
	uint32_t batch_msgs;      /* how many: one is sealed as it is, without frame_split */
	uint32_t batch_dirty;
	struct channel_buf out; /* sealed bytes not yet taken */
};

/* Visible so that callers can embed it; use the functions (tests that bend the protocol may
 * reach in, e.g. to seal a frame with the session's cipher). A relay embeds one per
 * connection: what only the handshake needs lives in HS, the buffers in BUFS. */
struct channel {
	uint32_t frame_size; /* channel_options' (at most CAIRN_FRAME_PLAINTEXT_MAX) */
	uint32_t output_max; /* channel_options', at most UINT32_MAX */
	int error;           /* the cause, once FAILED */
	uint8_t role;        /* enum channel_role */
	uint8_t state;       /* enum channel_state */
	bool open_reported;  /* EV_OPEN was returned */
	/* Until message 2 is read (initiator) or message 1 taken (responder), else NULL. */
	struct channel_handshake *hs;
	struct cairn_session session;
	struct frame_reader reader;
	/* NULL until a buffer is needed, and again once channel_trim has freed them all. */
	struct channel_bufs *bufs;
	/* Frames opened and sealed, modulo 2^32: callers compare them only to see one arrive. */
	uint32_t frames_in, frames_out;
};

/*
 * Initializes CH per OPT (borrowed; keys copied). An initiator starts the handshake here:
 * message 1, framed, is in the output at once. Returns 0, CAIRN_EINVAL (missing key, bad
 * frame size) or a handshake error; on failure CH is wiped and needs no channel_free.
 */
CAIRN_WARN_UNUSED int channel_init(struct channel *ch, const struct channel_options *opt);

/*
 * Initializes CH as already OPEN over SESSION (copied), a handshake run elsewhere: by a test
 * that bends message 1, or a caller that keeps the handshake to itself. OPT->now,
 * relay_public and ephemeral are not used. No CHANNEL_EV_OPEN follows. Returns 0 or
 * CAIRN_EINVAL (CH wiped).
 */
CAIRN_WARN_UNUSED int channel_init_open(struct channel *ch, const struct channel_options *opt,
                                        const struct cairn_session *session);

/* Wipes every key and frees every buffer. Safe on a zeroed channel, and twice. */
void channel_free(struct channel *ch);

/*
 * Gives the channel received bytes IN (LEN, borrowed). It consumes them until one frame is
 * complete and handled, so the caller drains channel_next_event before feeding the rest;
 * while events are pending it consumes nothing. Returns the bytes consumed (0..LEN). A fatal
 * error is not returned here but as CHANNEL_EV_FAILED; once FAILED, everything is consumed
 * and discarded (a relay reads and drops what follows a failed handshake, 2.2). Bytes that
 * arrive while message 2 is being computed fail the handshake: an initiator cannot send a
 * frame before it has read message 2.
 */
size_t channel_feed(struct channel *ch, const uint8_t *in, size_t len);

/*
 * The next event, in order, into *EV. Returns EV->type; CHANNEL_EV_NONE when the caller must
 * feed more input (or, responder, run the hello). A decode error an ERROR reply can answer
 * is CHANNEL_EV_BAD_MESSAGE for a responder; any other decode error, any error of an
 * initiator's reply, a frame that fails to open, or an oversize length is CHANNEL_EV_FAILED.
 */
enum channel_event_type channel_next_event(struct channel *ch, struct channel_event *ev);

/*
 * Responder handshake, in three steps so that the X25519 work can run off the caller's
 * thread: channel_hello_take (caller's thread) moves message 1, the clock reading and a
 * padding length into W; channel_hello_respond (any thread, touching no channel) computes
 * message 2 and the session; channel_hello_finish (caller's thread again) checks the replay
 * cache, installs the session and queues message 2. Each wipes what it no longer needs.
 */
struct channel_hello {
	uint64_t now;
	size_t len1, pad, len2;
	int rc;
	uint8_t may_choose; /* CAIRN_HELLO_CIPHER_* the relay may choose */
	bool has_ephemeral;
	uint8_t ephemeral[CAIRN_KEY_LEN];
	uint8_t msg1[CAIRN_HANDSHAKE1_MAX];
	uint8_t msg2[CAIRN_HANDSHAKE2_MAX];
	struct cairn_session session;
};

/* Returns 0, or CAIRN_ESTATE unless CH is CHANNEL_HELLO_READY. CH becomes HELLO_PENDING. */
CAIRN_WARN_UNUSED int channel_hello_take(struct channel *ch, struct channel_hello *w);

/* Thread-safe; reads the relay's key pair (borrowed). Sets and returns W->rc. */
int channel_hello_respond(struct channel_hello *w, const uint8_t relay_private[static 32],
                          const uint8_t relay_public[static 32]);

/*
 * Completes the handshake with W (then wiped) and CACHE (may be NULL: no replay check).
 * Returns 0 (CH is OPEN, message 2 in its output, CHANNEL_EV_OPEN next); or the handshake
 * error, CH being FAILED (stay silent, 2.2); or CAIRN_ESTATE when CH failed meanwhile.
 */
CAIRN_WARN_UNUSED int channel_hello_finish(struct channel *ch, struct channel_hello *w,
                                           struct replay_cache *cache);

/* The three steps at once, on the caller's thread (tests, the fake relay). */
CAIRN_WARN_UNUSED int channel_accept(struct channel *ch, const uint8_t relay_private[static 32],
                                     const uint8_t relay_public[static 32],
                                     struct replay_cache *cache);

/*
 * Encodes M (borrowed) into the open batch. A message that does not fit the batch's frame
 * content seals the batch first (split into frames as channel_flush does). Returns 0,
 * CAIRN_ESTATE unless OPEN, CAIRN_EFULL when output would pass the output limit (nothing
 * queued), CAIRN_ENOMEM, or an encoding error (CAIRN_EINVAL; nothing queued).
 */
CAIRN_WARN_UNUSED int channel_queue(struct channel *ch, const struct cairn_msg *m);

/*
 * Seals the open batch as frames cut where padding wastes least (frame_split, 4.2), or with
 * a fixed frame size as many messages per frame as fit, and appends them to the output.
 * Returns 0, or a fatal sealing error (CH is FAILED: a nonce was used without its frame).
 */
CAIRN_WARN_UNUSED int channel_flush(struct channel *ch);

/*
 * Seals CONTENT (LEN bytes, borrowed) as exactly one frame, as given: no check that it holds
 * whole messages, no split. For tests and tools that send what a correct peer would not.
 * Seals the open batch first, to keep order. Returns 0, CAIRN_ESTATE unless OPEN,
 * CAIRN_EINVAL when LEN exceeds one frame's content, or a fatal sealing error.
 */
CAIRN_WARN_UNUSED int channel_send_frame(struct channel *ch, const uint8_t *content, size_t len);

/* Sealed bytes ready to send: sets *DATA (borrowed, valid until the next call that queues,
 * flushes, feeds or finishes the hello) and returns their number. */
size_t channel_output(const struct channel *ch, const uint8_t **data);

/* Drops the first N (<= channel_output()) bytes of output, once they are sent. */
void channel_output_consume(struct channel *ch, size_t n);

/* Swaps the output buffer with B, whose LEN must be 0 (its capacity is reused): the caller
 * owns the sealed bytes now, e.g. for a write in flight, without a copy. */
void channel_output_swap(struct channel *ch, struct channel_buf *b);

/* Bytes buffered for output: sealed, plus encoded and not yet sealed. */
size_t channel_output_pending(const struct channel *ch);

/* Gives back the buffers an idle channel does not need (call when output drained). */
void channel_trim(struct channel *ch);

/* As channel_trim, but only the buffers of at most SMALL bytes: a busy peer keeps its large
 * ones rather than allocate them again for every write (a relay's trade-off between memory
 * per idle connection and throughput). */
void channel_trim_small(struct channel *ch, size_t small);

/*
 * The caller is done with CH (its connection closes): CH fails at once (CAIRN_ESTATE), its
 * keys wiped and everything buffered dropped, but its buffers stay allocated until
 * channel_free, so that an event's borrowed pointers stay valid for a handler still running.
 */
void channel_close(struct channel *ch);

/* Frees a buffer taken with channel_output_swap, or any other buffer of sealed or received
 * wire bytes, without wiping it: such bytes are ciphertext. (The channel wipes its own
 * plaintext buffers before it frees them.) */
void channel_buf_free(struct channel_buf *b);

/* The session once OPEN (the handshake hash signs AUTH), else NULL. */
const struct cairn_session *channel_session(const struct channel *ch);

enum channel_state channel_state(const struct channel *ch);

/* Heap bytes the channel holds now. */
size_t channel_memory(const struct channel *ch);

#endif
