/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes a relay connection end to end: the real conn.c, commands.c and mailbox.c on a libuv
 * loop, reached over loopback TCP through the real accept path, after a real handshake. The
 * harness plays the client: it frames and encrypts each plaintext batch the input holds, reads
 * and checks every reply, and runs the relay until it is idle. Storage is memstorage.c, in
 * memory and driven from here, so a run is deterministic (randomness and clock are fixed too)
 * and every input starts with a fresh relay, torn down the way server.c does. Our side is a
 * protocol channel (proto/channel.h, initiator) that seals each batch as one frame, as given.
 *
 * Input: one config byte, then records: op (u8), length (u16, big-endian), payload. Config
 * bit 0 selects fixed-size frames, bit 1 tight limits. Op bits: 0x01 PATCH (fill in what the
 * fuzzer cannot know: mailbox ids from the CREATED replies seen so far, slot = op >> 6, our
 * recipient key, AUTH signatures over this session, matching credentials, delivered envelope
 * ids), 0x02 WAIT (run the relay and storage until idle after sending), 0x04 RAW (write the
 * payload to the socket as it is, unframed), 0x08 FAIL (the next storage batch fails), 0x10
 * EXPIRE (move the clock past the TTL and expire), 0x20 TICK (the once-a-second timeout pass).
 *
 * Findings besides sanitizer reports: a reply that is not a well-formed frame or message, a
 * fixed-size frame of another size, a relay that never goes idle, a repeated envelope id, a
 * libuv handle or any memory left after the relay is torn down.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "cairn/error.h"
#include "channel.h"
#include "codec.h"
#include "commands.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "memstorage.h"
#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OP_PATCH  0x01
#define OP_WAIT   0x02
#define OP_RAW    0x04
#define OP_FAIL   0x08
#define OP_EXPIRE 0x10
#define OP_TICK   0x20

#define CFG_FIXED 0x01
#define CFG_TIGHT 0x02

#define RECORDS_MAX   64
#define SLOTS_MAX     8
#define DELIVERED_MAX 16
#define ROUNDS_MAX    100000 /* a relay still busy after this many loop turns is stuck */
#define START_TIME    1767225600

/* A failed invariant is a finding: abort so that the fuzzer keeps the input. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* ---- determinism: the relay's clock and libsodium's randomness ---------------------------- */

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

/* The budget's monotonic clock follows the same fixed time, so it refills only on EXPIRE. */
static int64_t fake_clock_ms(void *ctx)
{
	(void)ctx;
	return fake_now * 1000;
}

static uint8_t rng_key[crypto_stream_chacha20_KEYBYTES];
static uint64_t rng_ctr;

static void rng_buf(void *const buf, const size_t size)
{
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	memcpy(nonce, &rng_ctr, sizeof(nonce));
	rng_ctr++;
	crypto_stream_chacha20(buf, size, nonce, rng_key);
}

static uint32_t rng_random(void)
{
	uint32_t v;
	rng_buf(&v, sizeof(v));
	return v;
}

static const char *rng_name(void)
{
	return "fuzz";
}

static void rng_stir(void)
{
}

static int rng_close(void)
{
	return 0;
}

static randombytes_implementation rng_impl = {
    .implementation_name = rng_name,
    .random = rng_random,
    .stir = rng_stir,
    .buf = rng_buf,
    .close = rng_close,
};

/* ---- the harness --------------------------------------------------------------------------- */

struct slot {
	uint8_t recipient_id[CAIRN_MAILBOX_ID_LEN];
	uint8_t sender_id[CAIRN_MAILBOX_ID_LEN];
};

struct harness {
	uv_loop_t loop;
	struct relay_config cfg;
	struct relay *relay;
	bool ready;
	bool fail_next;

	int fd; /* our end of the connection */
	bool peer_closed;
	struct channel ch;
	bool open;
	uint64_t read_bytes, msg2_bytes; /* fed to CH in all, and up to message 2's end */
	size_t out_len;                  /* bytes waiting in out_buf */

	struct slot slots[SLOTS_MAX];
	size_t nslots;
	uint64_t delivered[DELIVERED_MAX];
	size_t ndelivered;
};

static struct harness h;
static uint8_t relay_private[CAIRN_KEY_LEN];
static uint8_t relay_public[CAIRN_KEY_LEN];
static uint8_t owner_pk[crypto_sign_PUBLICKEYBYTES]; /* recipient key of patched CREATEs */
static uint8_t owner_sk[crypto_sign_SECRETKEYBYTES];
static const uint8_t credential[CAIRN_CREDENTIAL_LEN] = {0xc4, 0x11, 0x2e};
static uint8_t batch[CAIRN_FRAME_CONTENT_MAX];
static uint8_t out_buf[4 * (CAIRN_FRAME_HEADER_LEN + CAIRN_NOISE_MSG_MAX)];
static uint8_t in_buf[65536];

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	memset(rng_key, 0x42, sizeof(rng_key));
	CHECK(randombytes_set_implementation(&rng_impl) == 0);
	CHECK(sodium_init() >= 0);
	memset(relay_private, 1, sizeof(relay_private));
	crypto_scalarmult_base(relay_public, relay_private);
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(owner_pk, owner_sk, seed);
	/* Closing connections and failing writes are the point here: keep the log quiet. */
	CHECK(log_open(LOG_ERROR, "/dev/null") == 0);
}

static void configure(struct relay_config *cfg, uint8_t bits)
{
	relay_config_defaults(cfg);
	cfg->replay_cache_entries = 16;
	cfg->frame_size = (bits & CFG_FIXED) ? CAIRN_FRAME_FIXED_MIN : 0;
	if (bits & CFG_TIGHT) {
		cfg->output_buffer_max = 4096;
		cfg->delivery_window = 2;
		cfg->inflight_requests = 4;
		cfg->mailbox_max_envelopes = 4;
		cfg->mailbox_max_bytes = 20000;
		cfg->mailboxes_per_connection = 2;
	} else {
		cfg->output_buffer_max = 256 * 1024;
		cfg->delivery_window = 8;
		cfg->inflight_requests = 64;
		cfg->mailbox_max_envelopes = 64;
		cfg->mailboxes_per_connection = 8;
	}
}

/* ---- relay life cycle, as in server.c ----------------------------------------------------- */

static void on_ready(struct relay *relay)
{
	relay->ready = true;
	h.ready = true;
}

static void on_connection(uv_stream_t *server, int status)
{
	CHECK(status == 0);
	struct relay *relay = server->data;
	conn_accept(relay, &relay->listener);
}

static void on_flush(uv_check_t *c)
{
	conn_flush_all(c->data);
}

static uint16_t relay_start(void)
{
	struct relay *relay = calloc(1, sizeof(*relay));
	CHECK(relay != NULL);
	h.relay = relay;
	relay->loop = &h.loop;
	h.loop.data = relay; /* conn.c finds the relay through it, as server.c sets it */
	relay->cfg = &h.cfg;
	relay->private_key = relay_private;
	relay->clock.now = fake_clock;
	relay->clock.now_ms = fake_clock_ms;
	relay->handler = &commands_handler;
	relay->port = &conn_socket_port;
	memcpy(relay->public_key, relay_public, CAIRN_KEY_LEN);
	CHECK(mailbox_index_init(&relay->mailboxes) == 0);
	relay->replay = replay_cache_new(h.cfg.replay_cache_entries);
	relay->storage = memstorage_new();
	CHECK(relay->replay != NULL && relay->storage != NULL);
	commands_load_finish(relay, on_ready);
	/* The first id mark is durable before any connection is accepted. */
	memstorage_run_batch(relay->storage, false);
	CHECK(h.ready);

	uv_check_init(&h.loop, &relay->flusher);
	relay->flusher.data = relay;
	uv_check_start(&relay->flusher, on_flush);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	uv_tcp_init(&h.loop, &relay->listener);
	relay->listener.data = relay;
	CHECK(uv_tcp_bind(&relay->listener, (const struct sockaddr *)&sa, 0) == 0);
	CHECK(uv_listen((uv_stream_t *)&relay->listener, 8, on_connection) == 0);
	int len = sizeof(sa);
	CHECK(uv_tcp_getsockname(&relay->listener, (struct sockaddr *)&sa, &len) == 0);
	return ntohs(sa.sin_port);
}

static void close_handle(uv_handle_t *handle)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

/* server.c's on_storage_closed and on_grace_over, without the grace period. */
static void on_storage_closed(void *arg)
{
	struct relay *relay = arg;
	relay->storage = NULL;
	commands_shutdown(relay);
	conn_flush_all(relay);
	while (relay->conns != NULL)
		conn_close(relay->conns);
	close_handle((uv_handle_t *)&relay->flusher);
	close_handle((uv_handle_t *)&relay->listener);
}

static void relay_stop(void)
{
	struct relay *relay = h.relay;
	relay->stopping = true;
	storage_close(relay->storage, on_storage_closed, relay);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	/* Every handle closed, every connection freed: nothing may be left. */
	CHECK(uv_loop_close(&h.loop) == 0);
	CHECK(relay->conn_count == 0 && relay->conns == NULL);
	replay_cache_free(relay->replay);
	mailbox_index_free(&relay->mailboxes);
	free(relay->marks);
	free(relay->load.by_id);
	free(relay);
	h.relay = NULL;
}

/* ---- our side of the connection ----------------------------------------------------------- */

static void client_dial(uint16_t port)
{
	h.fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(h.fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Loopback completes the TCP handshake in the kernel; the relay accepts it later. */
	CHECK(connect(h.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	int one = 1;
	setsockopt(h.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Close with a reset: no TIME_WAIT, so a long run never runs out of ports. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(h.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	CHECK(fcntl(h.fd, F_SETFL, O_NONBLOCK) == 0);
}

static void pump(void);

static void queue_out(const void *p, size_t len)
{
	/* Full only when the relay stopped reading, which it does until storage catches up. */
	if (len > sizeof(out_buf) - h.out_len)
		pump();
	if (h.peer_closed || len > sizeof(out_buf) - h.out_len)
		return;
	memcpy(out_buf + h.out_len, p, len);
	h.out_len += len;
}

/* Writes what the socket takes. Returns true if anything was written. */
static bool client_write(void)
{
	size_t done = 0;
	while (done < h.out_len && !h.peer_closed) {
		ssize_t n = send(h.fd, out_buf + done, h.out_len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			h.peer_closed = true; /* EPIPE or a reset: the relay closed on us */
			break;
		}
		done += (size_t)n;
	}
	memmove(out_buf, out_buf + done, h.out_len - done);
	h.out_len -= done;
	if (h.peer_closed)
		h.out_len = 0;
	return done > 0;
}

/* Remembers what later commands may need to name. */
static void note_reply(const struct cairn_msg *m)
{
	if (m->type == CAIRN_REPLY_CREATED && h.nslots < SLOTS_MAX) {
		memcpy(h.slots[h.nslots].recipient_id, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
		memcpy(h.slots[h.nslots].sender_id, m->sender_id, CAIRN_MAILBOX_ID_LEN);
		h.nslots++;
	} else if (m->type == CAIRN_REPLY_ENVELOPE) {
		h.delivered[h.ndelivered++ % DELIVERED_MAX] = m->envelope_id;
	}
}

/* Takes what the relay's bytes meant: every frame must open and hold only well-formed
 * replies (an initiator's channel fails on anything else). */
static void client_events(void)
{
	struct channel_event ev;
	for (;;) {
		switch (channel_next_event(&h.ch, &ev)) {
		case CHANNEL_EV_NONE:
			return;
		case CHANNEL_EV_OPEN:
			h.open = true;
			h.msg2_bytes = h.read_bytes;
			break;
		case CHANNEL_EV_MESSAGE:
			CHECK(ev.msg.type >= CAIRN_REPLY_OK);
			note_reply(&ev.msg);
			break;
		default:
			CHECK(false);
		}
	}
}

/* Reads and checks everything the relay sent. Returns true if anything was read. */
static bool client_read(void)
{
	bool any = false;
	while (!h.peer_closed) {
		ssize_t n = recv(h.fd, in_buf, sizeof(in_buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			h.peer_closed = true;
			break;
		}
		any = true;
		for (size_t off = 0; off < (size_t)n;) {
			size_t used = channel_feed(&h.ch, in_buf + off, (size_t)n - off);
			off += used;
			h.read_bytes += used;
			client_events();
		}
	}
	return any;
}

/* With fixed-size frames, the relay's stream after message 2 is whole frames of one size:
 * checked when the relay is idle and all it sent has been read (a frame boundary). */
static void check_frame_sizes(void)
{
	if (h.cfg.frame_size == 0 || !h.open || h.peer_closed)
		return;
	CHECK(h.read_bytes - h.msg2_bytes == h.ch.frames_in * frame_wire_len(0, h.cfg.frame_size));
}

/* True once the relay has nothing left to do: no output, no writes, no storage jobs. */
static bool relay_idle(void)
{
	struct relay *relay = h.relay;
	if (relay->flush_head != NULL || storage_pending(relay->storage) > 0)
		return false;
	for (const struct conn *c = relay->conns; c != NULL; c = c->next)
		if (c->writing || conn_output_level(c) > 0 || c->state == CONN_HANDSHAKING ||
		    c->paused)
			return false;
	return true;
}

/* A handshake being answered, or an AUTH checked, on the thread pool: only waiting for it
 * makes progress. */
static bool relay_handshaking(void)
{
	for (const struct conn *c = h.relay->conns; c != NULL; c = c->next)
		if (c->state == CONN_HANDSHAKING || c->paused)
			return true;
	return false;
}

/*
 * Runs the relay, our socket and the storage until nothing moves for a few turns. Storage
 * batches run only when the loop has nothing else to do, which is when the real thread's
 * gathering (and the hold of held writes) would have ended. A handshake on libuv's thread
 * pool is waited for.
 */
static void pump(void)
{
	int quiet = 0;
	for (int round = 0; quiet < 3; round++) {
		CHECK(round < ROUNDS_MAX);
		bool moved = client_write();
		uv_run(&h.loop, relay_handshaking() ? UV_RUN_ONCE : UV_RUN_NOWAIT);
		moved |= client_read();
		if (!moved && storage_pending(h.relay->storage) > 0) {
			memstorage_run_batch(h.relay->storage, h.fail_next);
			h.fail_next = false;
			moved = true;
		}
		quiet = moved || !relay_idle() ? 0 : quiet + 1;
	}
	check_frame_sizes();
}

static uint64_t client_clock(void *ctx)
{
	(void)ctx;
	return (uint64_t)fake_now;
}

/* Message 1's padding: none, so that the client draws no randomness. */
static uint32_t client_uniform(void *ctx, uint32_t upper)
{
	(void)ctx;
	(void)upper;
	return 0;
}

/* Moves what our channel sealed to the socket's queue. The bytes are taken out of the
 * channel first: queue_out may run the relay, and our side reads meanwhile. */
static struct channel_buf sealed;

static void client_output(void)
{
	channel_output_swap(&h.ch, &sealed);
	if (sealed.len > 0)
		queue_out(sealed.data, sealed.len);
	sealed.len = 0;
}

static void client_handshake(void)
{
	uint8_t ephemeral[CAIRN_KEY_LEN];
	memset(ephemeral, 2, sizeof(ephemeral));
	struct channel_options opt = {.role = CHANNEL_INITIATOR,
	                              .relay_public = relay_public,
	                              .frame_size = h.cfg.frame_size,
	                              .now = client_clock,
	                              .uniform = client_uniform,
	                              .ephemeral = ephemeral};
	CHECK(channel_init(&h.ch, &opt) == 0);
	client_output();
	pump();
	CHECK(h.open);
}

/* ---- commands ------------------------------------------------------------------------------ */

/* Fills in M what the fuzzer cannot know (see the top of the file). */
static void patch(struct cairn_msg *m, const struct slot *s, uint8_t *sig, uint8_t *digest)
{
	switch (m->type) {
	case CAIRN_CMD_CREATE:
		m->recipient_key = owner_pk;
		return;
	case CAIRN_CMD_SEND:
		if (s != NULL)
			m->sender_id = s->sender_id;
		if (m->credential != NULL)
			m->credential = credential;
		return;
	default:
		break;
	}
	if (s != NULL && m->recipient_id != NULL)
		m->recipient_id = s->recipient_id;
	if (m->type == CAIRN_CMD_AUTH && m->recipient_id != NULL) {
		uint8_t signed_msg[12 + CAIRN_HASH_LEN + CAIRN_MAILBOX_ID_LEN];
		memcpy(signed_msg, "cairn/1 auth", 12);
		memcpy(signed_msg + 12, channel_session(&h.ch)->h, CAIRN_HASH_LEN);
		memcpy(signed_msg + 12 + CAIRN_HASH_LEN, m->recipient_id, CAIRN_MAILBOX_ID_LEN);
		crypto_sign_detached(sig, NULL, signed_msg, sizeof(signed_msg), owner_sk);
		m->signature = sig;
	} else if (m->type == CAIRN_CMD_SECURE && s != NULL) {
		/* The digest a later SEND with our credential matches. */
		crypto_generichash(digest, CAIRN_CREDENTIAL_LEN, credential, sizeof(credential),
		                   s->sender_id, CAIRN_MAILBOX_ID_LEN);
		m->credential = digest;
	} else if (m->type == CAIRN_CMD_ACK && h.ndelivered > 0) {
		size_t n = h.ndelivered < DELIVERED_MAX ? h.ndelivered : DELIVERED_MAX;
		bool seen = false;
		for (size_t i = 0; i < n; i++)
			seen |= h.delivered[i] == m->envelope_id;
		if (!seen)
			m->envelope_id = h.delivered[m->envelope_id % n];
	}
}

/* Copies the commands of IN into BATCH, patched where they decode. Returns BATCH's length. */
static size_t patch_batch(const uint8_t *in, size_t len, uint8_t op)
{
	const struct slot *s = h.nslots > 0 ? &h.slots[(size_t)(op >> 6) % h.nslots] : NULL;
	size_t off = 0, out = 0;
	while (off < len) {
		struct cairn_msg m;
		size_t used = 0, wrote = 0;
		uint8_t sig[crypto_sign_BYTES], digest[CAIRN_CREDENTIAL_LEN];
		memset(&m, 0, sizeof(m));
		int rc = cairn_msg_decode(in + off, len - off, &used, &m, NULL);
		if (rc == 0) {
			patch(&m, s, sig, digest);
			if (cairn_msg_encode(&m, batch + out, sizeof(batch) - out, &wrote) != 0)
				wrote = 0;
		}
		if (used == 0)
			used = len - off; /* undecodable: the rest goes as it is */
		if (wrote == 0) {
			size_t n = used < sizeof(batch) - out ? used : sizeof(batch) - out;
			memcpy(batch + out, in + off, n);
			wrote = n;
		}
		out += wrote;
		off += used;
	}
	return out;
}

static void send_batch(const uint8_t *content, size_t len)
{
	size_t max = h.cfg.frame_size ? h.cfg.frame_size - CAIRN_FRAME_CONTENT_HEADER
	                              : CAIRN_FRAME_CONTENT_MAX;
	if (len > max)
		len = max;
	CHECK(channel_send_frame(&h.ch, content, len) == 0);
	client_output();
}

static void run_record(uint8_t op, const uint8_t *payload, size_t len)
{
	if (op & OP_FAIL)
		h.fail_next = true;
	if (op & OP_RAW) {
		queue_out(payload, len);
	} else if (op & OP_PATCH) {
		send_batch(batch, patch_batch(payload, len, op));
	} else {
		send_batch(payload, len);
	}
	if (op & OP_WAIT)
		pump();
	if (op & OP_EXPIRE) {
		fake_now += (int64_t)h.cfg.ttl_s + 60;
		commands_expire(h.relay, fake_now);
	}
	if (op & OP_TICK)
		conn_check_timeouts(h.relay, (int64_t)uv_now(&h.loop));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1)
		return 0;
	memset(&h, 0, sizeof(h));
	rng_ctr = 0;
	fake_now = START_TIME;
	configure(&h.cfg, data[0]);
	CHECK(uv_loop_init(&h.loop) == 0);
	client_dial(relay_start());
	client_handshake();

	size_t off = 1;
	for (int records = 0; off < size && records < RECORDS_MAX && !h.peer_closed; records++) {
		uint8_t op = data[off++];
		size_t len = 0;
		if (size - off >= 2) {
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
		} else {
			off = size;
		}
		if (len > size - off)
			len = size - off;
		run_record(op, data + off, len);
		off += len;
	}
	pump();

	/* We hang up (a reset), the relay notices, then it shuts down. */
	close(h.fd);
	h.peer_closed = true;
	pump();
	relay_stop();
	channel_free(&h.ch);
	channel_buf_free(&sealed);
	return 0;
}
