/* SPDX-License-Identifier: MIT */
/*
 * Cairn error codes: one table for the whole project. Public functions return 0 on success or
 * one of these negative codes. Codes -1 to -15 are also wire codes: an ERROR reply carries the
 * absolute value (docs/PROTOCOL.md, "Error codes"), so they must never be renumbered.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CAIRN_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define CAIRN_WARN_UNUSED
#endif

/* XX(name, value, message). Values are stable: append, never renumber. */
#define CAIRN_ERRNO_MAP(XX)                                                                        \
	/* Wire codes (an ERROR reply carries -value). */                                          \
	XX(EBADREQ, -1, "malformed request")                                                       \
	XX(EUNKNOWN, -2, "unknown command")                                                        \
	XX(EDENIED, -3, "denied")                                                                  \
	XX(EQUOTA, -4, "mailbox quota exceeded")                                                   \
	XX(ETOOBIG, -5, "envelope too large")                                                      \
	XX(ELIMIT, -6, "limit reached")                                                            \
	XX(ESTORAGE, -7, "relay storage failure")                                                  \
	XX(ESHUTDOWN, -8, "relay shutting down")                                                   \
	XX(ECAPACITY, -9, "the relay is full; try another relay or later")                         \
	XX(EWORK, -10, "proof of work refused: too weak, stale or reused (check the clock)")       \
	XX(EUNREACHABLE, -11, "the destination relay could not be reached; retry later")           \
	XX(EEXPIRED, -12, "expired")                                                               \
	/* Local codes. */                                                                         \
	XX(EINVAL, -20, "invalid argument")                                                        \
	XX(ENOMEM, -21, "out of memory")                                                           \
	XX(ENOBUFS, -22, "output buffer too small")                                                \
	XX(ECRYPTO, -23, "cryptographic operation failed")                                         \
	XX(EAUTH, -24, "message authentication failed")                                            \
	XX(ENONCE, -25, "nonce space exhausted")                                                   \
	XX(ESTATE, -26, "operation not valid in this state")                                       \
	XX(EREPLAY, -27, "replayed handshake")                                                     \
	XX(ECLOCK, -28, "timestamp outside the accepted window")                                   \
	XX(EFRAME, -29, "invalid frame length")                                                    \
	XX(EPADDING, -30, "invalid frame padding")                                                 \
	XX(EMALFORMED, -31, "malformed msgpack")                                                   \
	XX(ETRUNCATED, -32, "msgpack length exceeds the bytes remaining")                          \
	XX(EDEPTH, -33, "msgpack nesting too deep")                                                \
	XX(ETRAILING, -34, "trailing bytes after message")                                         \
	XX(ETYPE, -35, "wrong msgpack type")                                                       \
	XX(ECOUNT, -36, "too many msgpack elements")                                               \
	XX(EADDRESS, -37, "invalid relay address")                                                 \
	XX(EIO, -38, "input/output error")                                                         \
	XX(EFULL, -39, "table full")                                                               \
	/* Client codes. */                                                                        \
	XX(EPASSPHRASE, -40, "wrong passphrase")                                                   \
	XX(ENOTFOUND, -41, "not found")                                                            \
	XX(EEXIST, -42, "already exists")                                                          \
	XX(EPROXY, -43, "SOCKS5 proxy refused or failed")                                          \
	XX(ETIMEDOUT, -44, "timed out")                                                            \
	XX(ECONNECT, -45, "cannot connect to the relay")                                           \
	XX(EINVITE, -46, "invalid invite")                                                         \
	XX(ECORRUPT, -47, "local state is corrupt")                                                \
	XX(ENOSPC, -48, "no space left on the device holding the home")

enum cairn_error {
	CAIRN_OK = 0,
#define CAIRN_XX_(name, value, msg) CAIRN_##name = (value),
	CAIRN_ERRNO_MAP(CAIRN_XX_)
#undef CAIRN_XX_
};

/* Returns a static, human-readable string for a code (never NULL; unknown codes say so). */
const char *cairn_strerror(int code);

/* Returns the symbolic name of a code, e.g. "CAIRN_EDENIED" (never NULL). */
const char *cairn_strerror_name(int code);

/* The wire range: codes an ERROR reply may carry. */
#define CAIRN_WIRE_ERROR_MIN 1
#define CAIRN_WIRE_ERROR_MAX 15

#ifdef __cplusplus
}
#endif
#endif
