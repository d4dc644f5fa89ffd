/* SPDX-License-Identifier: MIT */
/*
 * Commands and replies (codec.h). One table gives each type's arguments; the encoder walks it
 * with msgpack-c's packer writing into the caller's buffer, the decoder walks it with a cursor
 * over bytes that msgcheck has already bounded (both are mpbuf.h's, shared with policy.c).
 * Neither side allocates.
 */
#include "codec.h"

#include <string.h>

#include "mpbuf.h"
#include "msgcheck.h"
#include "work.h"

/* The kinds of argument a message can carry, in wire order per type (PROTOCOL.md 5.2, 5.3). */
enum codec_field {
	F_RECIPIENT_KEY, /* bin 32 */
	F_RECIPIENT_ID,  /* bin 24 */
	F_SENDER_ID,     /* bin 24 */
	F_SIGNATURE,     /* bin 64 */
	F_DIGEST,        /* bin 32, kept in m->credential */
	F_CREDENTIAL,    /* bin 32 or nil */
	F_ENVELOPE_ID,   /* uint 64 */
	F_ENVELOPE,      /* bin 0..CAIRN_ENVELOPE_MAX */
	F_CODE,          /* uint 32 */
	F_LOG_ID,        /* bin 24 */
	F_DELETE_DIGEST, /* bin 32 */
	F_DELETE_SECRET, /* bin 32 */
	F_SEQ,           /* uint 64: from_seq, or an entry's seq */
	F_FIRST_SEQ,     /* uint 64 */
	F_NEXT_SEQ,      /* uint 64 */
	F_FOLLOW,        /* uint 0 or 1 */
	F_ENTRY,         /* bin 1..CAIRN_LOG_ENTRY_MAX, kept in m->envelope */
	F_WORK_BITS,     /* uint 1..WORK_BITS_MAX */
	F_WORK,          /* bin 16 */
	F_RELAY,         /* bin 1..CODEC_RELAY_MAX */
	F_SEALED,        /* bin CODEC_SEALED_MIN..CODEC_SEALED_MAX */
	F_SEALED_REPLY,  /* bin CODEC_SEALED_REPLY_MIN..CODEC_SEALED_REPLY_MAX, in m->sealed */
	F_NOT_AFTER,     /* uint 64 */
	F_POLICY,        /* bin 1..CODEC_POLICY_MAX or nil */
};

#define CODEC_ARGS_MAX 4

struct codec_layout {
	uint8_t type;
	uint8_t nargs;
	/* 1: the last argument is absent exactly when the one before it is nil (POLICY's reply
	 * without a policy has no signature field) */
	uint8_t nil_ends;
	const char *name;
	enum codec_field args[CODEC_ARGS_MAX];
};

static const struct codec_layout codec_layouts[] = {
    {CAIRN_CMD_PING, 0, 0, "PING", {0}},
    {CAIRN_CMD_CREATE, 1, 0, "CREATE", {F_RECIPIENT_KEY}},
    {CAIRN_CMD_AUTH, 2, 0, "AUTH", {F_RECIPIENT_ID, F_SIGNATURE}},
    {CAIRN_CMD_SECURE, 2, 0, "SECURE", {F_RECIPIENT_ID, F_DIGEST}},
    {CAIRN_CMD_SUBSCRIBE, 1, 0, "SUBSCRIBE", {F_RECIPIENT_ID}},
    {CAIRN_CMD_ACK, 2, 0, "ACK", {F_RECIPIENT_ID, F_ENVELOPE_ID}},
    {CAIRN_CMD_DELETE, 1, 0, "DELETE", {F_RECIPIENT_ID}},
    {CAIRN_CMD_SEND, 3, 0, "SEND", {F_SENDER_ID, F_CREDENTIAL, F_ENVELOPE}},
    {CAIRN_CMD_LOG_CREATE, 3, 0, "LOG_CREATE", {F_LOG_ID, F_DIGEST, F_DELETE_DIGEST}},
    {CAIRN_CMD_LOG_APPEND, 3, 0, "LOG_APPEND", {F_LOG_ID, F_DIGEST, F_ENTRY}},
    {CAIRN_CMD_LOG_READ, 3, 0, "LOG_READ", {F_LOG_ID, F_SEQ, F_FOLLOW}},
    {CAIRN_CMD_LOG_DELETE, 2, 0, "LOG_DELETE", {F_LOG_ID, F_DELETE_SECRET}},
    {CAIRN_CMD_INTAKE, 2, 0, "INTAKE", {F_RECIPIENT_ID, F_WORK_BITS}},
    {CAIRN_CMD_SEND_WORK, 3, 0, "SEND_WORK", {F_SENDER_ID, F_WORK, F_ENVELOPE}},
    {CAIRN_CMD_FORWARD, 2, 0, "FORWARD", {F_RELAY, F_SEALED}},
    {CAIRN_CMD_FORWARDED, 1, 0, "FORWARDED", {F_SEALED}},
    {CAIRN_CMD_BUNDLED, 4, 0, "BUNDLED", {F_NOT_AFTER, F_SENDER_ID, F_CREDENTIAL, F_ENVELOPE}},
    {CAIRN_CMD_POLICY, 1, 0, "POLICY", {F_CREDENTIAL}},
    {CAIRN_REPLY_OK, 0, 0, "OK", {0}},
    {CAIRN_REPLY_CREATED, 2, 0, "CREATED", {F_RECIPIENT_ID, F_SENDER_ID}},
    {CAIRN_REPLY_ERROR, 1, 0, "ERROR", {F_CODE}},
    {CAIRN_REPLY_ENVELOPE, 2, 0, "ENVELOPE", {F_ENVELOPE_ID, F_ENVELOPE}},
    {CAIRN_REPLY_END, 1, 0, "END", {F_CODE}},
    {CAIRN_REPLY_APPENDED, 1, 0, "APPENDED", {F_SEQ}},
    {CAIRN_REPLY_LOG_STATE, 2, 0, "LOG_STATE", {F_FIRST_SEQ, F_NEXT_SEQ}},
    {CAIRN_REPLY_LOG_ENTRY, 2, 0, "LOG_ENTRY", {F_SEQ, F_ENTRY}},
    {CAIRN_REPLY_SEALED, 1, 0, "SEALED", {F_SEALED_REPLY}},
    {CAIRN_REPLY_POLICY, 2, 1, "POLICY", {F_POLICY, F_SIGNATURE}},
};

static const struct codec_layout *codec_layout(uint64_t type)
{
	for (size_t i = 0; i < sizeof(codec_layouts) / sizeof(codec_layouts[0]); i++)
		if (codec_layouts[i].type == type)
			return &codec_layouts[i];
	return NULL;
}

const char *cairn_msg_type_name(int type)
{
	const struct codec_layout *l = type < 0 ? NULL : codec_layout((uint64_t)type);
	return l != NULL ? l->name : "?";
}

/* Where a fixed-size binary field lives in the message, and its size. */
static const uint8_t **codec_bin_slot(enum codec_field f, struct cairn_msg *m, size_t *size)
{
	switch (f) {
	case F_RECIPIENT_KEY:
		*size = CAIRN_KEY_LEN;
		return &m->recipient_key;
	case F_RECIPIENT_ID:
		*size = CAIRN_MAILBOX_ID_LEN;
		return &m->recipient_id;
	case F_SENDER_ID:
		*size = CAIRN_MAILBOX_ID_LEN;
		return &m->sender_id;
	case F_SIGNATURE:
		*size = CAIRN_SIGNATURE_LEN;
		return &m->signature;
	case F_DIGEST: /* also LOG_APPEND's credential: bin 32, never nil */
	case F_CREDENTIAL:
		*size = CAIRN_CREDENTIAL_LEN;
		return &m->credential;
	case F_LOG_ID:
		*size = CAIRN_LOG_ID_LEN;
		return &m->log_id;
	case F_DELETE_DIGEST:
		*size = CAIRN_CREDENTIAL_LEN;
		return &m->delete_digest;
	case F_DELETE_SECRET:
		*size = CAIRN_CREDENTIAL_LEN;
		return &m->delete_secret;
	case F_WORK:
		*size = WORK_LEN;
		return &m->work;
	default:
		return NULL;
	}
}

/* Where a variable-length binary field of private routing lives, and its bounds. */
static int codec_var_slot(enum codec_field f, struct cairn_msg *m, const uint8_t ***data,
                          size_t **len, size_t *min, size_t *max)
{
	switch (f) {
	case F_RELAY:
		*data = &m->relay;
		*len = &m->relay_len;
		*min = 1;
		*max = CODEC_RELAY_MAX;
		return 1;
	case F_SEALED:
		*data = &m->sealed;
		*len = &m->sealed_len;
		*min = CODEC_SEALED_MIN;
		*max = CODEC_SEALED_MAX;
		return 1;
	case F_SEALED_REPLY:
		*data = &m->sealed;
		*len = &m->sealed_len;
		*min = CODEC_SEALED_REPLY_MIN;
		*max = CODEC_SEALED_REPLY_MAX;
		return 1;
	default:
		return 0;
	}
}

/* ---- Encoding ------------------------------------------------------------------------- */

/* Checks that M carries every field its type needs (the first NARGS of L's), in range. */
static int codec_check_fields(const struct codec_layout *l, unsigned nargs, struct cairn_msg *m)
{
	for (unsigned i = 0; i < nargs; i++) {
		enum codec_field f = l->args[i];
		size_t size;
		const uint8_t **slot = codec_bin_slot(f, m, &size);
		if (slot != NULL && *slot == NULL && f != F_CREDENTIAL)
			return CAIRN_EINVAL;
		if (f == F_ENVELOPE && (m->envelope_len > CAIRN_ENVELOPE_MAX ||
		                        (m->envelope == NULL && m->envelope_len > 0)))
			return CAIRN_EINVAL;
		if (f == F_ENTRY && (m->envelope_len == 0 ||
		                     m->envelope_len > CAIRN_LOG_ENTRY_MAX || m->envelope == NULL))
			return CAIRN_EINVAL;
		if (f == F_FOLLOW && m->follow > 1)
			return CAIRN_EINVAL;
		if (f == F_WORK_BITS && (m->work_bits < WORK_BITS_MIN || m->work_bits > WORK_BITS_MAX))
			return CAIRN_EINVAL;
		if (f == F_POLICY && m->policy != NULL &&
		    (m->policy_len == 0 || m->policy_len > CODEC_POLICY_MAX))
			return CAIRN_EINVAL;
		const uint8_t **data;
		size_t *len, min, max;
		if (codec_var_slot(f, m, &data, &len, &min, &max) &&
		    (*data == NULL || *len < min || *len > max))
			return CAIRN_EINVAL;
	}
	return 0;
}

static int codec_pack_field(struct mpbuf_out *w, enum codec_field f, struct cairn_msg *m)
{
	msgpack_packer *pk = &w->pk;
	size_t size;
	const uint8_t **slot = codec_bin_slot(f, m, &size);

	if (slot != NULL) {
		if (*slot == NULL) /* only an absent SEND credential gets here */
			return msgpack_pack_nil(pk);
		return mpbuf_put_bin(w, *slot, size);
	}
	const uint8_t **data;
	size_t *len, min, max;
	if (codec_var_slot(f, m, &data, &len, &min, &max))
		return mpbuf_put_bin(w, *data, *len);
	switch (f) {
	case F_ENVELOPE_ID:
		return msgpack_pack_uint64(pk, m->envelope_id);
	case F_SEQ:
		return msgpack_pack_uint64(pk, m->seq);
	case F_FIRST_SEQ:
		return msgpack_pack_uint64(pk, m->first_seq);
	case F_NOT_AFTER:
		return msgpack_pack_uint64(pk, m->not_after);
	case F_NEXT_SEQ:
		return msgpack_pack_uint64(pk, m->next_seq);
	case F_FOLLOW:
		return msgpack_pack_uint8(pk, m->follow);
	case F_POLICY:
		if (m->policy == NULL)
			return msgpack_pack_nil(pk);
		return mpbuf_put_bin(w, m->policy, m->policy_len);
	case F_WORK_BITS:
		return msgpack_pack_uint8(pk, m->work_bits);
	case F_CODE:
		return msgpack_pack_uint32(pk, m->code);
	case F_ENTRY:
	case F_ENVELOPE:
		return mpbuf_put_bin(w, m->envelope, m->envelope_len);
	default:
		return -1;
	}
}

/* Writes V at P in msgpack's shortest unsigned form (what msgpack-c's packer writes, 5.1);
 * returns its length, 1 to 9 bytes. */
static size_t codec_put_uint(uint8_t *p, uint64_t v)
{
	size_t width;
	if (v <= 0x7f) {
		p[0] = (uint8_t)v;
		return 1;
	}
	if (v <= UINT8_MAX) {
		p[0] = 0xcc;
		width = 1;
	} else if (v <= UINT16_MAX) {
		p[0] = 0xcd;
		width = 2;
	} else if (v <= UINT32_MAX) {
		p[0] = 0xce;
		width = 4;
	} else {
		p[0] = 0xcf;
		width = 8;
	}
	for (size_t i = 0; i < width; i++)
		p[1 + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
	return 1 + width;
}

/* Longest encoding of OK, ERROR and ENVELOPE without the envelope's bytes: the array's
 * header, the type, a uint32 request id, a uint64 (envelope id or code) and a bin 16 header. */
#define CODEC_REPLY_HEAD_MAX (1 + 1 + 5 + 9 + 3)
_Static_assert(CAIRN_ENVELOPE_MAX <= UINT16_MAX, "an envelope's bin header is bin 8 or bin 16");

/*
 * OK, ERROR and ENVELOPE, the replies a relay sends for every envelope, written byte by byte:
 * the same bytes as the table's path below (test_proto_codec compares them), without its copy
 * of the message and the packer's calls through mpbuf_sink (callgrind, online at 1,500/s:
 * cairn_msg_encode took 1,494 instructions per envelope). Returns 1 with *RC set when M is
 * one of them, else 0.
 */
static int codec_encode_reply(const struct cairn_msg *m, uint8_t *out, size_t cap, size_t *outlen,
                              int *rc)
{
	uint8_t head[CODEC_REPLY_HEAD_MAX];
	size_t n = 1, body = 0;
	switch (m->type) {
	case CAIRN_REPLY_OK:
		head[0] = 0x92;
		break;
	case CAIRN_REPLY_ERROR:
		head[0] = 0x93;
		break;
	case CAIRN_REPLY_ENVELOPE:
		if (m->envelope_len > CAIRN_ENVELOPE_MAX ||
		    (m->envelope == NULL && m->envelope_len > 0)) {
			*rc = CAIRN_EINVAL;
			return 1;
		}
		head[0] = 0x94;
		body = m->envelope_len;
		break;
	default:
		return 0;
	}
	n += codec_put_uint(head + n, m->type);
	n += codec_put_uint(head + n, m->request_id);
	if (m->type == CAIRN_REPLY_ERROR) {
		n += codec_put_uint(head + n, m->code);
	} else if (m->type == CAIRN_REPLY_ENVELOPE) {
		n += codec_put_uint(head + n, m->envelope_id);
		/* bin 8 or 16 (bin has no fix form; BODY <= CAIRN_ENVELOPE_MAX < 65536) */
		if (body <= UINT8_MAX) {
			head[n++] = 0xc4;
			head[n++] = (uint8_t)body;
		} else {
			head[n++] = 0xc5;
			head[n++] = (uint8_t)(body >> 8);
			head[n++] = (uint8_t)body;
		}
	}
	if (cap < n || cap - n < body) {
		*rc = CAIRN_ENOBUFS;
		return 1;
	}
	memcpy(out, head, n);
	if (body > 0)
		memcpy(out + n, m->envelope, body);
	*outlen = n + body;
	*rc = 0;
	return 1;
}

int cairn_msg_encode(const struct cairn_msg *msg, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	int fast_rc;
	if (out != NULL && codec_encode_reply(msg, out, cap, outlen, &fast_rc))
		return fast_rc;

	/* A copy, so that one table of field slots (codec_bin_slot) serves both directions. */
	struct cairn_msg copy = *msg, *m = &copy;

	const struct codec_layout *l = codec_layout(m->type);
	if (l == NULL || (out == NULL && cap > 0))
		return CAIRN_EINVAL;
	/* POLICY's reply without a policy ends at its nil. */
	unsigned nargs = l->nil_ends && m->policy == NULL ? l->nargs - 1u : l->nargs;
	int rc = codec_check_fields(l, nargs, m);
	if (rc != 0)
		return rc;

	struct mpbuf_out w;
	mpbuf_out_init(&w, out, cap);
	/* msgpack-c writes every integer and length in its shortest form, as 5.1 requires. */
	int err = msgpack_pack_array(&w.pk, 2u + nargs);
	if (err == 0)
		err = msgpack_pack_uint8(&w.pk, m->type);
	if (err == 0)
		err = msgpack_pack_uint32(&w.pk, m->request_id);
	for (unsigned i = 0; err == 0 && i < nargs; i++)
		err = codec_pack_field(&w, l->args[i], m);
	if (err != 0 || w.overflow)
		return CAIRN_ENOBUFS; /* a full buffer is the packer's only failure */
	*outlen = w.len;
	return 0;
}

/* ---- Decoding ------------------------------------------------------------------------- */

static int codec_read_field(struct mpbuf_in *r, enum codec_field f, struct cairn_msg *m)
{
	uint64_t v;
	size_t size, n;
	const uint8_t *data;
	const uint8_t **slot = codec_bin_slot(f, m, &size);
	int rc;

	if (slot != NULL) {
		if (f == F_CREDENTIAL && mpbuf_take_nil(r)) {
			*slot = NULL;
			return 0;
		}
		rc = mpbuf_read_bin(r, &data, &n);
		if (rc != 0)
			return rc;
		if (n != size)
			return CAIRN_ETYPE;
		*slot = data;
		return 0;
	}
	const uint8_t **var;
	size_t *varlen, min, max;
	if (codec_var_slot(f, m, &var, &varlen, &min, &max)) {
		rc = mpbuf_read_bin(r, &data, &n);
		if (rc != 0)
			return rc;
		if (n < min || n > max)
			return CAIRN_ETYPE;
		*var = data;
		*varlen = n;
		return 0;
	}
	switch (f) {
	case F_ENVELOPE_ID:
		return mpbuf_read_uint(r, &m->envelope_id);
	case F_SEQ:
		return mpbuf_read_uint(r, &m->seq);
	case F_FIRST_SEQ:
		return mpbuf_read_uint(r, &m->first_seq);
	case F_NOT_AFTER:
		return mpbuf_read_uint(r, &m->not_after);
	case F_NEXT_SEQ:
		return mpbuf_read_uint(r, &m->next_seq);
	case F_FOLLOW:
		rc = mpbuf_read_uint(r, &v);
		if (rc != 0)
			return rc;
		if (v > 1)
			return CAIRN_ETYPE;
		m->follow = (uint8_t)v;
		return 0;
	case F_WORK_BITS:
		rc = mpbuf_read_uint(r, &v);
		if (rc != 0)
			return rc;
		if (v < WORK_BITS_MIN || v > WORK_BITS_MAX)
			return CAIRN_ETYPE;
		m->work_bits = (uint8_t)v;
		return 0;
	case F_CODE:
		rc = mpbuf_read_uint(r, &v);
		if (rc != 0)
			return rc;
		if (v > UINT32_MAX)
			return CAIRN_ETYPE;
		m->code = (uint32_t)v;
		return 0;
	case F_ENVELOPE:
		rc = mpbuf_read_bin(r, &data, &n);
		if (rc != 0)
			return rc;
		/* Filled in even when too long, so that the relay can answer `too big`. */
		m->envelope = n > 0 ? data : NULL;
		m->envelope_len = n;
		return n > CAIRN_ENVELOPE_MAX ? CAIRN_ETYPE : 0;
	case F_POLICY:
		if (mpbuf_take_nil(r)) {
			m->policy = NULL;
			m->policy_len = 0;
			return 0;
		}
		rc = mpbuf_read_bin(r, &data, &n);
		if (rc != 0)
			return rc;
		if (n == 0 || n > CODEC_POLICY_MAX)
			return CAIRN_ETYPE;
		m->policy = data;
		m->policy_len = n;
		return 0;
	case F_ENTRY:
		rc = mpbuf_read_bin(r, &data, &n);
		if (rc != 0)
			return rc;
		/* As an envelope: filled in when too long, for `too big`; empty is `bad request`.
		 */
		m->envelope = n > 0 ? data : NULL;
		m->envelope_len = n;
		return n == 0 || n > CAIRN_LOG_ENTRY_MAX ? CAIRN_ETYPE : 0;
	default:
		return CAIRN_ETYPE;
	}
}

int cairn_msg_decode(const uint8_t *buf, size_t len, size_t *used, struct cairn_msg *m,
                     int *have_id)
{
	*m = (struct cairn_msg){0};
	if (used != NULL)
		*used = 0;
	if (have_id != NULL)
		*have_id = 0;

	size_t objlen;
	int rc = cairn_msgcheck(buf, len, &objlen);
	if (rc != 0)
		return rc;
	if (used == NULL && objlen != len)
		return CAIRN_ETRAILING;
	if (used != NULL)
		*used = objlen;

	struct mpbuf_in r = {buf, objlen, 0};
	uint32_t count;
	uint64_t type, id;
	rc = mpbuf_read_array(&r, &count);
	if (rc != 0 || count < 2)
		return CAIRN_ETYPE;
	if (mpbuf_read_uint(&r, &type) != 0)
		return CAIRN_ETYPE;
	if (mpbuf_read_uint(&r, &id) != 0 || id > UINT32_MAX)
		return CAIRN_ETYPE;
	m->request_id = (uint32_t)id;
	if (have_id != NULL)
		*have_id = 1;

	const struct codec_layout *l = codec_layout(type);
	if (l == NULL)
		return CAIRN_EUNKNOWN;
	m->type = l->type;
	unsigned nargs = l->nargs;
	if (l->nil_ends && count == 1u + l->nargs)
		nargs--; /* must then end with its nil: checked below */
	if (count != 2u + nargs)
		return CAIRN_ETYPE;
	for (unsigned i = 0; i < nargs; i++) {
		rc = codec_read_field(&r, l->args[i], m);
		if (rc != 0)
			return rc == CAIRN_ETRUNCATED ? CAIRN_ETRUNCATED : CAIRN_ETYPE;
	}
	/* The one layout with nil_ends is POLICY's reply: nil exactly when it is short. */
	if (l->nil_ends && (m->policy == NULL) != (nargs < l->nargs))
		return CAIRN_ETYPE;
	return 0;
}

/* ---- Wire error codes ----------------------------------------------------------------- */

uint32_t cairn_wire_code(int err)
{
	if (err <= -CAIRN_WIRE_ERROR_MIN && err >= -CAIRN_WIRE_ERROR_MAX)
		return (uint32_t)-err;
	switch (err) {
	case CAIRN_EMALFORMED:
	case CAIRN_ETRUNCATED:
	case CAIRN_ECOUNT:
	case CAIRN_EDEPTH:
	case CAIRN_ETRAILING:
	case CAIRN_ETYPE:
		return (uint32_t)-CAIRN_EBADREQ;
	default:
		return 0;
	}
}

int cairn_wire_error(uint32_t code)
{
	if (code == 0)
		return 0;
	if (code <= CAIRN_WIRE_ERROR_MAX)
		return -(int)code;
	return CAIRN_EINVAL;
}
