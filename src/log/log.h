/*
 * JSON-lines logger on stderr. One write(2) per line, so lines from
 * several threads never interleave. Never pass a secret to it: there is no
 * level at which secrets are logged.
 */
#ifndef EA_LOG_LOG_H
#define EA_LOG_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* The longest line log_vformat() builds. */
#define LOG_LINE_MAX 16384

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* Field tags for log_event()'s variable arguments. */
enum log_field {
	LOG_END = 0,
	LOG_F_STR, /* const char *key, const char *value (NULL: skipped) */
	LOG_F_INT, /* const char *key, long long value */
	LOG_F_DBL, /* const char *key, double value */
};

#define LS(k, v) LOG_F_STR, (const char *)(k), (const char *)(v)
#define LI(k, v) LOG_F_INT, (const char *)(k), (long long)(v)
#define LD(k, v) LOG_F_DBL, (const char *)(k), (double)(v)

/* Sets the lowest level written (thread-safe). */
void log_set_level(enum log_level lvl);

/* 1 if lvl would be written. */
int log_enabled(enum log_level lvl);

/* Parses "debug", "info", "warn", "error". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *r);

/*
 * Writes {"ts":...,"level":...,"event":event, key: value, ...} and a
 * newline to stderr. Fields end with LOG_END. Values are JSON-escaped and
 * long ones truncated. Thread-safe; never fails visibly.
 */
void log_event(enum log_level lvl, const char *event, ...);

/* log_event() with a va_list. */
void log_vevent(enum log_level lvl, const char *event, va_list ap);

/*
 * Formats {"ts":...,"level":...,"event":event and the fields of ap into
 * line (at most cap, itself at most LOG_LINE_MAX, bytes), without the
 * closing brace; string values are cut at vmax bytes and a field that
 * does not fit (leaving 2 bytes spare) is dropped. Returns the length;
 * not NUL-terminated.
 */
size_t log_vformat(char *line, size_t cap, size_t vmax, enum log_level lvl,
    const char *event, va_list ap);

/* Writes all of buf to fd (retrying on EINTR). 0 or -1. */
int log_write_all(int fd, const char *buf, size_t len);

/* Appends s to the JSON string being built in buf (without quotes). */
size_t log_json_escape(char *buf, size_t cap, const char *s, size_t maxin);

#endif
