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
#include "util/str.h"

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
	size_t o = 0, i, k, n;

	if (cap == 0)
		return 0;
	for (i = 0; p[i] != '\0' && i < maxin; i += n) {
		unsigned char c = p[i];

		n = 1;
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
		} else if (c < 0x80) {
			if (o + 1 >= cap)
				break;
			buf[o++] = (char)c;
		} else {
			/* A whole valid UTF-8 sequence, or U+FFFD for a bad
			 * byte: the line stays valid JSON whatever came in. */
			n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			for (k = 1; k < n && i + k < maxin && p[i + k] != '\0';)
				k++;
			if (k != n && i + k >= maxin)
				break; /* cut by maxin: drop the partial tail */
			if (k != n || !str_utf8_valid(s + i, n)) {
				n = 1;
				if (o + 6 >= cap)
					break;
				memcpy(buf + o, "\\ufffd", 6);
				o += 6;
				continue;
			}
			if (o + n >= cap)
				break;
			memcpy(buf + o, s + i, n);
			o += n;
		}
	}
	buf[o] = '\0';
	return o;
}

/*
 * Appends ,"key":value to line when the whole field fits in cap (with room
 * for the closing brace and newline); a field that does not fit is
 * dropped. String values longer than vmax bytes are cut.
 */
static size_t
put_field(char *line, size_t o, size_t cap, size_t vmax, const char *key,
    const char *str, const char *num)
{
	char f[LOG_LINE_MAX];
	size_t n = 0;

	f[n++] = ',';
	f[n++] = '"';
	n += log_json_escape(f + n, 130, key, 128);
	f[n++] = '"';
	f[n++] = ':';
	if (str != NULL) {
		f[n++] = '"';
		n += log_json_escape(f + n, sizeof(f) - n - 1, str, vmax);
		f[n++] = '"';
	} else {
		size_t m = strlen(num);

		memcpy(f + n, num, m);
		n += m;
	}
	if (o + n + 2 > cap)
		return o;
	memcpy(line + o, f, n);
	return o + n;
}

size_t
log_vformat(char *line, size_t cap, size_t vmax, enum log_level lvl,
    const char *event, va_list ap)
{
	char num[64];
	struct timespec ts;
	struct tm tm;
	size_t o;
	int tag;

	if (cap > LOG_LINE_MAX)
		cap = LOG_LINE_MAX;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	o = (size_t)snprintf(line, cap,
	    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
	    "\"event\":",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl]);
	line[o++] = '"';
	o += log_json_escape(line + o, 130, event, 128);
	line[o++] = '"';
	while ((tag = va_arg(ap, int)) != LOG_END) {
		const char *key = va_arg(ap, const char *);

		if (tag == LOG_F_STR) {
			const char *v = va_arg(ap, const char *);

			if (v != NULL)
				o = put_field(line, o, cap, vmax, key, v, NULL);
		} else if (tag == LOG_F_INT) {
			snprintf(
			    num, sizeof(num), "%lld", va_arg(ap, long long));
			o = put_field(line, o, cap, vmax, key, NULL, num);
		} else if (tag == LOG_F_DBL) {
			snprintf(num, sizeof(num), "%.6f", va_arg(ap, double));
			o = put_field(line, o, cap, vmax, key, NULL, num);
		} else
			break;
	}
	return o;
}

int
log_write_all(int fd, const char *buf, size_t len)
{
	size_t w;
	ssize_t n;

	for (w = 0; w < len;) {
		n = write(fd, buf + w, len - w);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		w += (size_t)n;
	}
	return 0;
}

void
log_vevent(enum log_level lvl, const char *event, va_list ap)
{
	char line[LINE_MAX_BYTES];
	size_t o;
	int saved_errno = errno;

	if (!log_enabled(lvl))
		return;
	o = log_vformat(line, sizeof(line), VALUE_MAX_BYTES, lvl, event, ap);
	line[o++] = '}';
	line[o++] = '\n';
	(void)log_write_all(STDERR_FILENO, line, o);
	errno = saved_errno;
}

void
log_event(enum log_level lvl, const char *event, ...)
{
	va_list ap;

	va_start(ap, event);
	log_vevent(lvl, event, ap);
	va_end(ap);
}
