/* SPDX-License-Identifier: MIT */
/*
 * The protocol channel (see channel.h): the receive path (frame reader, open, decode) and the
 * send path (encode, batch, split, seal) written once, for the relay, the client and every
 * test or benchmark peer. No I/O here: what the peer sent comes in through channel_feed and
 * what it must get goes out through channel_output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channel.h"

/* Every field of a message but its envelope fits in this many bytes of msgpack. */
#define CHANNEL_MSG_OVERHEAD 128

/* A relay embeds one per connection: with struct conn (relay/conn.h) it stays within malloc's
 * 608-byte chunk on LP64 (docs/PERFORMANCE.md, idle memory per connection). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct channel) <= 224, "struct channel grew");

/* Makes room for EXTRA more bytes in B. A buffer that holds plaintext (PLAIN) grows into a
 * new block and the old one is wiped before it is freed, which realloc would not do. */
static int buf_grow(struct channel_buf *b, size_t extra, bool plain)
{
	if (b->cap - b->len >= extra)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < extra)
		ncap *= 2;
	uint8_t *p = NULL;
	if (!plain || b->data == NULL) {
		p = realloc(b->data, ncap);
	} else if ((p = malloc(ncap)) != NULL) {
		memcpy(p, b->data, b->len);
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	if (p == NULL)
		return CAIRN_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

static int buf_reserve(struct channel_buf *b, size_t extra)
{
	return buf_grow(b, extra, false);
}

void channel_buf_free(struct channel_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Frees a buffer that has held plaintext (the open frame's content, the batch), wiped first:
 * its whole capacity, since a message may have been decoded from or encoded into any of it.
 * The output and the caller's buffers hold only sealed bytes and are freed unwiped. */
static void plain_buf_free(struct channel_buf *b)
{
	if (b->data != NULL)
		sodium_memzero(b->data, b->cap);
	channel_buf_free(b);
}

/* CH's buffers, allocated on first use: NULL when out of memory. */
static struct channel_bufs *bufs_get(struct channel *ch)
{
	if (ch->bufs == NULL)
		ch->bufs = calloc(1, sizeof(*ch->bufs));
	return ch->bufs;
}

/* Frees CH's buffers' descriptors once no buffer holds memory. */
static void bufs_put(struct channel *ch)
{
	struct channel_bufs *bs = ch->bufs;
	if (bs == NULL || bs->plain.data != NULL || bs->batch.data != NULL || bs->out.data != NULL)
		return;
	free(bs);
	ch->bufs = NULL;
}

/* Reserves EXTRA bytes more in CH's output: 0 or CAIRN_ENOMEM. */
static int out_reserve(struct channel *ch, size_t extra)
{
	return bufs_get(ch) == NULL ? CAIRN_ENOMEM : buf_reserve(&ch->bufs->out, extra);
}

static uint32_t default_uniform(void *ctx, uint32_t upper)
{
	(void)ctx;
	return randombytes_uniform(upper);
}

/* The CAIRN_HELLO_CIPHER_* bits OPT lets this side offer or choose on this CPU (2.5). */
static uint8_t transport_ciphers(const struct channel_options *opt)
{
	if (opt->transport != CHANNEL_TRANSPORT_AUTO || !noise_aesgcm_available())
		return 0;
	return CAIRN_HELLO_CIPHER_AESGCM;
}

enum channel_transport channel_transport_parse(const char *value)
{
	if (value != NULL && strcmp(value, "chacha") == 0)
		return CHANNEL_TRANSPORT_CHACHA;
	return CHANNEL_TRANSPORT_AUTO;
}

/* A handshake padding length: 0..255, or 1..255 when its first byte carries an offer or a
 * choice (2.1). */
static size_t hello_pad(const struct channel_handshake *hs)
{
	if (hs->ciphers != 0)
		return 1 + hs->uniform(hs->ctx, CAIRN_HELLO_PAD_MAX);
	return hs->uniform(hs->ctx, CAIRN_HELLO_PAD_MAX + 1);
}

/* Largest content one frame of this channel carries. */
static size_t content_max(const struct channel *ch)
{
	return ch->frame_size ? ch->frame_size - CAIRN_FRAME_CONTENT_HEADER
	                      : CAIRN_FRAME_CONTENT_MAX;
}

/* A zeroed handshake state: from CACHE (NULL: none) if it keeps one, else from calloc. */
static struct channel_handshake *handshake_new(struct channel_hs_cache *cache)
{
	struct channel_handshake *hs = cache != NULL ? spares_take(&cache->states) : NULL;
	if (hs == NULL)
		hs = calloc(1, sizeof(*hs));
	if (hs != NULL)
		hs->cache = cache;
	return hs;
}

/* The handshake state is no longer needed: wiped, then kept by its cache or freed. */
static void handshake_free(struct channel *ch)
{
	struct channel_handshake *hs = ch->hs;
	if (hs == NULL)
		return;
	ch->hs = NULL;
	struct channel_hs_cache *cache = hs->cache;
	noise_handshake_wipe(&hs->noise);
	sodium_memzero(hs, sizeof(*hs));
	if (cache == NULL || !spares_keep(&cache->states, hs, CHANNEL_HS_CACHE_SLOTS))
		free(hs);
}

/* States are wiped when they come in. */
void channel_hs_cache_tick(struct channel_hs_cache *c)
{
	spares_tick(&c->states, free);
}

void channel_hs_cache_free(struct channel_hs_cache *c)
{
	spares_free(&c->states, free);
}

/* Fatal: keep the cause, drop every secret and everything buffered. */
static void fail(struct channel *ch, int rc)
{
	if (ch->state == CHANNEL_FAILED)
		return;
	ch->state = CHANNEL_FAILED;
	ch->error = rc < 0 ? rc : CAIRN_ESTATE;
	handshake_free(ch);
	cairn_session_wipe(&ch->session);
	if (ch->bufs != NULL) {
		ch->bufs->plain.len = ch->bufs->plain_off = 0;
		ch->bufs->batch.len = 0;
		ch->bufs->batch_msgs = 0;
		ch->bufs->out.len = 0;
	}
	frame_reader_free(&ch->reader);
}

/* Appends MSG to CH's output as one frame of the handshake. */
static int append_framed(struct channel *ch, const uint8_t *msg, size_t len)
{
	if (out_reserve(ch, CAIRN_FRAME_HEADER_LEN + len) != 0)
		return CAIRN_ENOMEM;
	struct channel_buf *b = &ch->bufs->out;
	b->data[b->len] = (uint8_t)(len >> 8);
	b->data[b->len + 1] = (uint8_t)len;
	memcpy(b->data + b->len + CAIRN_FRAME_HEADER_LEN, msg, len);
	b->len += CAIRN_FRAME_HEADER_LEN + len;
	return 0;
}

static uint32_t output_max(const struct channel_options *opt)
{
	if (opt->output_max == 0)
		return CHANNEL_OUTPUT_MAX_DEFAULT;
	return opt->output_max < UINT32_MAX ? (uint32_t)opt->output_max : UINT32_MAX;
}

int channel_init(struct channel *ch, const struct channel_options *opt)
{
	memset(ch, 0, sizeof(*ch));
	if (opt == NULL || opt->now == NULL ||
	    (opt->role != CHANNEL_INITIATOR && opt->role != CHANNEL_RESPONDER) ||
	    (opt->role == CHANNEL_INITIATOR && opt->relay_public == NULL) ||
	    (opt->frame_size != 0 && (opt->frame_size < CAIRN_FRAME_FIXED_MIN ||
	                              opt->frame_size > CAIRN_FRAME_PLAINTEXT_MAX)))
		return CAIRN_EINVAL;
	ch->role = (uint8_t)opt->role;
	ch->state = CHANNEL_HANDSHAKE;
	ch->frame_size = (uint32_t)opt->frame_size; /* checked: at most CAIRN_FRAME_PLAINTEXT_MAX */
	ch->output_max = output_max(opt);
	ch->hs = handshake_new(opt->hs_cache);
	if (ch->hs == NULL)
		return CAIRN_ENOMEM;
	ch->hs->now = opt->now;
	ch->hs->uniform = opt->uniform ? opt->uniform : default_uniform;
	ch->hs->ctx = opt->ctx;
	ch->hs->ciphers = transport_ciphers(opt);
	if (opt->ephemeral != NULL) {
		ch->hs->has_ephemeral = true;
		memcpy(ch->hs->ephemeral, opt->ephemeral, CAIRN_KEY_LEN);
	}
	if (ch->role == CHANNEL_RESPONDER) {
		frame_reader_init(&ch->reader, CAIRN_HANDSHAKE1_MIN, CAIRN_HANDSHAKE1_MAX);
		return 0;
	}
	frame_reader_init(&ch->reader, CAIRN_HANDSHAKE2_MIN, CAIRN_HANDSHAKE2_MAX);
	uint8_t msg[CAIRN_HANDSHAKE1_MAX];
	size_t len = 0;
	int rc = cairn_handshake_client_start_ex(
	    &ch->hs->noise, opt->relay_public, ch->hs->has_ephemeral ? ch->hs->ephemeral : NULL,
	    ch->hs->now(ch->hs->ctx), hello_pad(ch->hs), ch->hs->ciphers, msg, sizeof(msg), &len);
	if (rc == 0)
		rc = append_framed(ch, msg, len);
	sodium_memzero(msg, sizeof(msg));
	if (rc != 0)
		channel_free(ch);
	return rc;
}

int channel_init_open(struct channel *ch, const struct channel_options *opt,
                      const struct cairn_session *session)
{
	memset(ch, 0, sizeof(*ch));
	if (opt == NULL || session == NULL ||
	    (opt->role != CHANNEL_INITIATOR && opt->role != CHANNEL_RESPONDER) ||
	    (opt->frame_size != 0 && (opt->frame_size < CAIRN_FRAME_FIXED_MIN ||
	                              opt->frame_size > CAIRN_FRAME_PLAINTEXT_MAX)))
		return CAIRN_EINVAL;
	ch->role = (uint8_t)opt->role;
	ch->frame_size = (uint32_t)opt->frame_size; /* checked: at most CAIRN_FRAME_PLAINTEXT_MAX */
	ch->output_max = output_max(opt);
	ch->session = *session;
	frame_reader_init(&ch->reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                  CAIRN_NOISE_MSG_MAX);
	ch->state = CHANNEL_OPEN;
	ch->open_reported = true;
	return 0;
}

void channel_free(struct channel *ch)
{
	handshake_free(ch);
	cairn_session_wipe(&ch->session);
	frame_reader_free(&ch->reader);
	if (ch->bufs != NULL) {
		plain_buf_free(&ch->bufs->plain);
		plain_buf_free(&ch->bufs->batch);
		channel_buf_free(&ch->bufs->out);
		free(ch->bufs);
	}
	sodium_memzero(ch, sizeof(*ch));
}

/* Message 2 (initiator): completes the session and opens the channel. */
static void on_hello_reply(struct channel *ch, const uint8_t *frame, size_t len)
{
	int rc = cairn_handshake_client_finish_ex(&ch->hs->noise, frame, len, ch->hs->ciphers,
	                                          &ch->session);
	handshake_free(ch);
	if (rc != 0) {
		fail(ch, rc);
		return;
	}
	frame_reader_set_limits(&ch->reader, CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
	                        CAIRN_NOISE_MSG_MAX);
	ch->state = CHANNEL_OPEN;
}

/* A transport frame: its content becomes the pending messages. */
static void on_frame(struct channel *ch, const uint8_t *frame, size_t len)
{
	const uint8_t *content = NULL;
	size_t content_len = 0;
	struct channel_bufs *bs = bufs_get(ch);
	/* LEN is a frame really received, at most 65535 bytes: not a claim. */
	int rc = bs == NULL ? CAIRN_ENOMEM : buf_grow(&bs->plain, len, true);
	if (rc == 0)
		rc = frame_open(&ch->session.recv, frame, len, bs->plain.data, bs->plain.cap,
		                &content, &content_len);
	/* Plaintext written: the header and the messages, the padding after them being zeros
	 * (frame_open checked them); of a frame that failed to open, as much as it was long. */
	size_t dirty = rc == 0 ? (size_t)(content - bs->plain.data) + content_len : len;
	if (bs != NULL && dirty > bs->plain_dirty)
		bs->plain_dirty = (uint32_t)dirty; /* at most a frame's length */
	if (rc != 0) {
		fail(ch, rc);
		return;
	}
	ch->frames_in++;
	bs->plain_off = (uint32_t)(content - bs->plain.data);
	bs->plain.len = bs->plain_off + content_len;
}

/* Messages of the open frame not yet returned as events. */
static bool plain_pending(const struct channel *ch)
{
	return ch->bufs != NULL && ch->bufs->plain_off < ch->bufs->plain.len;
}

static bool events_pending(const struct channel *ch)
{
	return plain_pending(ch) || (ch->state == CHANNEL_OPEN && !ch->open_reported) ||
	       ch->state == CHANNEL_HELLO_READY;
}

size_t channel_feed(struct channel *ch, const uint8_t *in, size_t len)
{
	size_t pos = 0;
	if (ch->state == CHANNEL_FAILED)
		return len;
	if (events_pending(ch))
		return 0;
	if (ch->state == CHANNEL_HELLO_PENDING) {
		if (len > 0)
			fail(ch, CAIRN_EFRAME);
		return len;
	}
	while (pos < len) {
		const uint8_t *frame = NULL;
		size_t frame_len = 0, used = 0;
		int rc =
		    frame_reader_next(&ch->reader, in + pos, len - pos, &used, &frame, &frame_len);
		pos += used;
		if (rc < 0) {
			fail(ch, rc);
			return len;
		}
		if (rc == 0)
			break;
		if (ch->state == CHANNEL_OPEN) {
			on_frame(ch, frame, frame_len);
		} else if (ch->role == CHANNEL_RESPONDER) {
			/* The reader's limits already bound it to a message 1's length. */
			memcpy(ch->hs->hello, frame, frame_len);
			ch->hs->hello_len = frame_len;
			ch->state = CHANNEL_HELLO_READY;
		} else {
			on_hello_reply(ch, frame, frame_len);
		}
		if (ch->state == CHANNEL_FAILED)
			return len;
		/* An empty frame is cover traffic: read on. */
		if (events_pending(ch))
			break;
	}
	return pos;
}

/* The ERROR code a responder answers a sound but wrong command with (5.1, 5.6). */
static int bad_message_code(int rc, const struct cairn_msg *m)
{
	if (rc == CAIRN_EUNKNOWN)
		return CAIRN_EUNKNOWN;
	if (m->type == CAIRN_CMD_SEND && m->envelope_len > CAIRN_ENVELOPE_MAX)
		return CAIRN_ETOOBIG;
	if (m->type == CAIRN_CMD_LOG_APPEND && m->envelope_len > CAIRN_LOG_ENTRY_MAX)
		return CAIRN_ETOOBIG;
	return CAIRN_EBADREQ;
}

enum channel_event_type channel_next_event(struct channel *ch, struct channel_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (ch->state == CHANNEL_FAILED) {
		ev->error = ch->error;
		return ev->type = CHANNEL_EV_FAILED;
	}
	if (ch->state == CHANNEL_HELLO_READY)
		return ev->type = CHANNEL_EV_HELLO;
	if (ch->state == CHANNEL_OPEN && !ch->open_reported) {
		ch->open_reported = true;
		return ev->type = CHANNEL_EV_OPEN;
	}
	if (!plain_pending(ch)) {
		if (ch->bufs != NULL)
			ch->bufs->plain.len = ch->bufs->plain_off = 0;
		return ev->type = CHANNEL_EV_NONE;
	}
	struct channel_buf *plain = &ch->bufs->plain;
	size_t used = 0;
	int have_id = 0;
	int rc = cairn_msg_decode(plain->data + ch->bufs->plain_off,
	                          plain->len - ch->bufs->plain_off, &used, &ev->msg, &have_id);
	if (rc == 0) {
		ch->bufs->plain_off += used;
		return ev->type = CHANNEL_EV_MESSAGE;
	}
	/* Sound structure, wrong meaning: a relay answers it and goes on (5.8). A client has
	 * no one to answer: a reply it cannot read is fatal for it. */
	if (ch->role == CHANNEL_RESPONDER && (rc == CAIRN_ETYPE || rc == CAIRN_EUNKNOWN) &&
	    have_id) {
		ch->bufs->plain_off += used;
		ev->error = bad_message_code(rc, &ev->msg);
		return ev->type = CHANNEL_EV_BAD_MESSAGE;
	}
	/* The next message's boundary is unknown: nothing more can be read. */
	fail(ch, rc);
	memset(ev, 0, sizeof(*ev));
	ev->error = ch->error;
	return ev->type = CHANNEL_EV_FAILED;
}

/* ---- responder handshake ------------------------------------------------------------ */

int channel_hello_take(struct channel *ch, struct channel_hello *w)
{
	memset(w, 0, sizeof(*w));
	if (ch->state != CHANNEL_HELLO_READY)
		return CAIRN_ESTATE;
	w->now = ch->hs->now(ch->hs->ctx);
	w->pad = hello_pad(ch->hs);
	w->may_choose = ch->hs->ciphers;
	w->len1 = ch->hs->hello_len;
	memcpy(w->msg1, ch->hs->hello, ch->hs->hello_len);
	if (ch->hs->has_ephemeral) {
		w->has_ephemeral = true;
		memcpy(w->ephemeral, ch->hs->ephemeral, CAIRN_KEY_LEN);
	}
	handshake_free(ch);
	ch->state = CHANNEL_HELLO_PENDING;
	return 0;
}

int channel_hello_respond(struct channel_hello *w, const uint8_t relay_private[static 32],
                          const uint8_t relay_public[static 32])
{
	/* The replay cache is left to channel_hello_finish, on the caller's thread. */
	w->rc = cairn_handshake_relay_respond_ex(relay_private, relay_public,
	                                         w->has_ephemeral ? w->ephemeral : NULL, NULL,
	                                         w->now, w->msg1, w->len1, w->pad, w->may_choose,
	                                         w->msg2, sizeof(w->msg2), &w->len2, &w->session);
	sodium_memzero(w->ephemeral, sizeof(w->ephemeral));
	return w->rc;
}

int channel_hello_finish(struct channel *ch, struct channel_hello *w, struct replay_cache *cache)
{
	int rc = ch->state == CHANNEL_HELLO_PENDING ? w->rc : CAIRN_ESTATE;
	/* Message 1 carries the initiator's ephemeral key in clear, first. */
	if (rc == 0 && cache != NULL)
		rc = replay_cache_add(cache, w->msg1, w->now);
	if (rc == 0)
		rc = append_framed(ch, w->msg2, w->len2);
	if (rc == 0) {
		ch->session = w->session;
		frame_reader_set_limits(&ch->reader,
		                        CAIRN_AEAD_TAG_LEN + CAIRN_FRAME_CONTENT_HEADER,
		                        CAIRN_NOISE_MSG_MAX);
		ch->state = CHANNEL_OPEN;
	} else if (rc != CAIRN_ESTATE) {
		fail(ch, rc);
	}
	cairn_session_wipe(&w->session);
	sodium_memzero(w, sizeof(*w));
	return rc;
}

int channel_accept(struct channel *ch, const uint8_t relay_private[static 32],
                   const uint8_t relay_public[static 32], struct replay_cache *cache)
{
	struct channel_hello w;
	int rc = channel_hello_take(ch, &w);
	if (rc == 0) {
		(void)channel_hello_respond(&w, relay_private, relay_public);
		rc = channel_hello_finish(ch, &w, cache);
	}
	sodium_memzero(&w, sizeof(w));
	return rc;
}

/* ---- output ------------------------------------------------------------------------- */

int channel_flush(struct channel *ch)
{
	if (ch->state == CHANNEL_FAILED)
		return ch->error;
	if (ch->bufs == NULL || ch->bufs->batch.len == 0)
		return 0;
	struct channel_buf *batch = &ch->bufs->batch, *out = &ch->bufs->out;
	size_t done = 0;
	while (done < batch->len) {
		/* One message fits one frame (channel_queue saw to it): nothing to split. At low
		 * rates most batches are one reply, and frame_split would walk it again. */
		size_t take =
		    ch->bufs->batch_msgs == 1
		        ? batch->len
		        : frame_split(batch->data + done, batch->len - done, ch->frame_size);
		size_t need = frame_wire_len(take, ch->frame_size);
		/* Cannot happen: the channel encoded this content itself. */
		int rc = take == 0 || need == 0 ? CAIRN_EINVAL : buf_reserve(out, need);
		size_t outlen = 0;
		if (rc == 0)
			rc = frame_seal(&ch->session.send, batch->data + done, take, ch->frame_size,
			                out->data + out->len, out->cap - out->len, &outlen);
		if (rc != 0) {
			/* A nonce may have been used without its frame: the stream is broken. */
			fail(ch, rc);
			return rc;
		}
		out->len += outlen;
		ch->frames_out++;
		done += take;
	}
	/* The batch may hold credentials and signatures: it is wiped when it is freed (or
	 * grows), not after every flush, as the open frame's buffer is. A busy channel keeps
	 * it and overwrites it with the next batch. */
	batch->len = 0;
	ch->bufs->batch_msgs = 0;
	return 0;
}

int channel_queue(struct channel *ch, const struct cairn_msg *m)
{
	if (m == NULL)
		return CAIRN_EINVAL;
	if (ch->state != CHANNEL_OPEN)
		return CAIRN_ESTATE;
	if (channel_output_pending(ch) >= ch->output_max)
		return CAIRN_EFULL;
	size_t max = content_max(ch);
	/* The variable fields: an envelope or entry, and private routing's (5.11). */
	size_t need = CHANNEL_MSG_OVERHEAD + (m->envelope != NULL ? m->envelope_len : 0) +
	              (m->relay != NULL ? m->relay_len : 0) +
	              (m->sealed != NULL ? m->sealed_len : 0);
	if (bufs_get(ch) == NULL)
		return CAIRN_ENOMEM;
	struct channel_buf *batch = &ch->bufs->batch;
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t room = 0;
		if (batch->len < max) {
			/* Room for this message only, so an idle peer's buffers stay small. */
			size_t want = need < max - batch->len ? need : max - batch->len;
			if (buf_grow(batch, want, true) != 0)
				return CAIRN_ENOMEM;
			room = (batch->cap < max ? batch->cap : max) - batch->len;
		}
		size_t used = 0;
		int rc = room ? cairn_msg_encode(m, batch->data + batch->len, room, &used)
		              : CAIRN_ENOBUFS;
		/* A message that did not fit may have been written into all of ROOM. */
		size_t reach = batch->len + (rc == 0 ? used : room);
		if (reach > ch->bufs->batch_dirty)
			ch->bufs->batch_dirty = (uint32_t)reach; /* at most a frame's content */
		if (rc == 0) {
			batch->len += used;
			ch->bufs->batch_msgs++;
			return 0;
		}
		/* No room left in this frame: seal the batch and start the next, once. */
		if (rc != CAIRN_ENOBUFS || batch->len == 0)
			return rc;
		if ((rc = channel_flush(ch)) != 0)
			return rc;
	}
	return CAIRN_ENOBUFS;
}

int channel_send_frame(struct channel *ch, const uint8_t *content, size_t len)
{
	if (ch->state != CHANNEL_OPEN)
		return ch->state == CHANNEL_FAILED ? ch->error : CAIRN_ESTATE;
	if (len > content_max(ch))
		return CAIRN_EINVAL;
	int rc = channel_flush(ch);
	size_t need = frame_wire_len(len, ch->frame_size), outlen = 0;
	if (rc == 0)
		rc = need == 0 ? CAIRN_EINVAL : out_reserve(ch, need);
	struct channel_buf *out = rc == 0 ? &ch->bufs->out : NULL;
	if (rc == 0)
		rc = frame_seal(&ch->session.send, content, len, ch->frame_size,
		                out->data + out->len, out->cap - out->len, &outlen);
	if (rc != 0) {
		fail(ch, rc);
		return rc;
	}
	out->len += outlen;
	ch->frames_out++;
	return 0;
}

size_t channel_output(const struct channel *ch, const uint8_t **data)
{
	if (ch->bufs == NULL) {
		*data = NULL;
		return 0;
	}
	*data = ch->bufs->out.data;
	return ch->bufs->out.len;
}

void channel_output_consume(struct channel *ch, size_t n)
{
	if (ch->bufs == NULL)
		return;
	struct channel_buf *out = &ch->bufs->out;
	if (n >= out->len) {
		out->len = 0;
		return;
	}
	memmove(out->data, out->data + n, out->len - n);
	out->len -= n;
}

void channel_output_swap(struct channel *ch, struct channel_buf *b)
{
	if (ch->bufs == NULL) {
		/* The output is empty and holds nothing: so does B now, rather than allocate the
		 * descriptors only to keep B's capacity. */
		channel_buf_free(b);
		return;
	}
	struct channel_buf t = ch->bufs->out;
	ch->bufs->out = *b;
	ch->bufs->out.len = 0;
	*b = t;
}

size_t channel_output_pending(const struct channel *ch)
{
	return ch->bufs == NULL ? 0 : ch->bufs->out.len + ch->bufs->batch.len;
}

void channel_trim_small(struct channel *ch, size_t small)
{
	struct channel_bufs *bs = ch->bufs;
	if (bs == NULL)
		return;
	if (bs->out.len == 0 && bs->out.cap <= small)
		channel_buf_free(&bs->out);
	if (bs->batch.len == 0 && bs->batch.cap <= small)
		plain_buf_free(&bs->batch);
	if (bs->plain_off >= bs->plain.len && bs->plain.cap <= small) {
		bs->plain.len = bs->plain_off = 0;
		plain_buf_free(&bs->plain);
	}
	bufs_put(ch);
}

void channel_trim(struct channel *ch)
{
	channel_trim_small(ch, SIZE_MAX);
}

void channel_close(struct channel *ch)
{
	fail(ch, CAIRN_ESTATE);
}

const struct cairn_session *channel_session(const struct channel *ch)
{
	return ch->state == CHANNEL_OPEN ? &ch->session : NULL;
}

enum channel_state channel_state(const struct channel *ch)
{
	return (enum channel_state)ch->state;
}

size_t channel_memory(const struct channel *ch)
{
	const struct channel_bufs *bs = ch->bufs;
	return frame_reader_memory(&ch->reader) +
	       (bs == NULL ? 0 : sizeof(*bs) + bs->plain.cap + bs->batch.cap + bs->out.cap);
}
