/* SPDX-License-Identifier: MIT */
/*
 * Relay logging: levels, stderr or a file, reopened on SIGHUP. Nothing that could identify a
 * user (addresses, mailbox ids, sizes, precise times) may be logged at LOG_INFO or above; such
 * detail, where useful for debugging, goes to LOG_DEBUG only.
 */
#ifndef CAIRN_RELAY_LOG_H
#define CAIRN_RELAY_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the level and destination (PATH NULL or "" = stderr). Returns 0 or CAIRN_EIO. */
int log_open(enum log_level level, const char *path);
/* Reopens the log file (after rotation); a no-op on stderr. */
void log_reopen(void);
void log_close(void);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug". Returns 0 or CAIRN_EINVAL. */
int log_level_parse(const char *name, enum log_level *out);

/* One line: a coarse timestamp (to the minute), the level, the message. */
void log_msg(enum log_level level, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                         \
	do {                                                                                   \
		if (log_get_level() >= LOG_DEBUG)                                              \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
