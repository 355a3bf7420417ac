/*
 * JSON-lines logger on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

#define LINE_MAX_BYTES  4096
#define VALUE_MAX_BYTES 1024

static _Atomic int min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_set_level(enum log_level lvl)
{
	atomic_store(&min_level, (int)lvl);
}

int
log_enabled(enum log_level lvl)
{
	return (int)lvl >=
	    atomic_load_explicit(&min_level, memory_order_relaxed);
}

int
log_level_parse(const char *s, enum log_level *r)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

size_t
log_json_escape(char *buf, size_t cap, const char *s, size_t maxin)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i;

	for (i = 0; p[i] != '\0' && i < maxin; i++) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\') {
			if (o + 2 >= cap)
				break;
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (o + 6 >= cap)
				break;
			memcpy(buf + o, "\\u00", 4);
			buf[o + 4] = hex[c >> 4];
			buf[o + 5] = hex[c & 15];
			o += 6;
		} else {
			if (o + 1 >= cap)
				break;
			buf[o++] = (char)c;
		}
	}
	/* Never end inside a UTF-8 sequence: drop a trailing partial one. */
	if (o > 0 && ((unsigned char)buf[o - 1] & 0x80)) {
		size_t k = o;

		while (k > 0 && ((unsigned char)buf[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)buf[k - 1] & 0xc0) == 0xc0) {
			unsigned char lead = (unsigned char)buf[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (o - (k - 1) < want)
				o = k - 1;
		}
	}
	buf[o] = '\0';
	return o;
}

static size_t
put(char *line, size_t o, const char *s)
{
	size_t n = strlen(s);

	if (o + n >= LINE_MAX_BYTES - 2)
		n = LINE_MAX_BYTES - 2 - o - 1;
	memcpy(line + o, s, n);
	return o + n;
}

static size_t
put_str(char *line, size_t o, const char *s)
{
	if (o + 3 >= LINE_MAX_BYTES - 2)
		return o;
	line[o++] = '"';
	o += log_json_escape(
	    line + o, LINE_MAX_BYTES - 3 - o, s, VALUE_MAX_BYTES);
	line[o++] = '"';
	return o;
}

void
log_event(enum log_level lvl, const char *event, ...)
{
	char line[LINE_MAX_BYTES], num[64];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t o = 0, w;
	ssize_t n;
	int tag, saved_errno = errno;

	if (!log_enabled(lvl))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	o = (size_t)snprintf(line, sizeof(line),
	    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
	    "\"event\":",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl]);
	o = put_str(line, o, event);
	va_start(ap, event);
	while ((tag = va_arg(ap, int)) != LOG_END) {
		const char *key = va_arg(ap, const char *);

		if (tag == LOG_F_STR) {
			const char *v = va_arg(ap, const char *);

			if (v == NULL)
				continue;
			o = put(line, o, ",");
			o = put_str(line, o, key);
			o = put(line, o, ":");
			o = put_str(line, o, v);
		} else if (tag == LOG_F_INT) {
			snprintf(
			    num, sizeof(num), "%lld", va_arg(ap, long long));
			o = put(line, o, ",");
			o = put_str(line, o, key);
			o = put(line, o, ":");
			o = put(line, o, num);
		} else if (tag == LOG_F_DBL) {
			snprintf(num, sizeof(num), "%.6f", va_arg(ap, double));
			o = put(line, o, ",");
			o = put_str(line, o, key);
			o = put(line, o, ":");
			o = put(line, o, num);
		} else
			break;
	}
	va_end(ap);
	line[o++] = '}';
	line[o++] = '\n';
	for (w = 0; w < o;) {
		n = write(STDERR_FILENO, line + w, o - w);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		w += (size_t)n;
	}
	errno = saved_errno;
}
