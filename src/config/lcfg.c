/*
 * Reading and pre-scanning libconfig files.
 */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/lcfg.h"
#include "util/file.h"

char *
lcfg_read(const char *path, size_t max, char *err, size_t errlen)
{
	char msg[512], *text;
	size_t n;

	if ((text = file_read(path, max, &n, msg, sizeof(msg))) == NULL) {
		if (errno != EINVAL)
			snprintf(err, errlen, "%s: cannot open: %s", path,
			    strerror(errno));
		else
			snprintf(err, errlen,
			    "%s: unreadable or larger than %zu bytes", path,
			    max);
		return NULL;
	}
	if (memchr(text, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(text);
		return NULL;
	}
	return text;
}

/*
 * libconfig 1.5 stores an integer literal that does not fit into an int
 * as a wrapped int, and an out-of-range L literal as a clamped int64, and
 * reports success. Find such literals in the text before it parses them.
 * Also refuse @include: the configuration is one file, read as one.
 */
int
lcfg_prescan(
    const char *t, const char *name, int numbers, char *err, size_t errlen)
{
	size_t i = 0, j, n = strlen(t);
	int line = 1, bol = 1;

	while (i < n) {
		char ch = t[i];

		if (ch == '\n') {
			line++;
			bol = 1;
			i++;
			continue;
		}
		if (bol && ch == '@') {
			snprintf(err, errlen,
			    "%s:%d: @include is not supported", name, line);
			return -1;
		}
		if (ch != ' ' && ch != '\t' && ch != '\r')
			bol = 0;
		if (ch == '#' || (ch == '/' && i + 1 < n && t[i + 1] == '/')) {
			while (i < n && t[i] != '\n')
				i++;
			continue;
		}
		if (ch == '/' && i + 1 < n && t[i + 1] == '*') {
			for (i += 2; i < n; i++) {
				if (t[i] == '\n')
					line++;
				if (t[i] == '*' && i + 1 < n &&
				    t[i + 1] == '/') {
					i += 2;
					break;
				}
			}
			continue;
		}
		if (ch == '"') {
			for (i++; i < n && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < n)
					i++;
				if (t[i] == '\n')
					line++;
			}
			if (i < n)
				i++;
			continue;
		}
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    ch == '*' || ch == '_') {
			while (i < n &&
			    ((t[i] >= 'a' && t[i] <= 'z') ||
				(t[i] >= 'A' && t[i] <= 'Z') ||
				(t[i] >= '0' && t[i] <= '9') || t[i] == '_' ||
				t[i] == '-' || t[i] == '*'))
				i++;
			continue;
		}
		if (ch >= '0' && ch <= '9') {
			int hex = 0, isfloat = 0, islong = 0, over = 0;
			unsigned long long v = 0, lim;

			j = i;
			if (ch == '0' && j + 1 < n &&
			    (t[j + 1] == 'x' || t[j + 1] == 'X')) {
				hex = 1;
				j += 2;
			}
			for (; j < n; j++) {
				char d = t[j];
				unsigned int dv;

				if (d >= '0' && d <= '9')
					dv = (unsigned int)(d - '0');
				else if (hex && d >= 'a' && d <= 'f')
					dv = (unsigned int)(d - 'a' + 10);
				else if (hex && d >= 'A' && d <= 'F')
					dv = (unsigned int)(d - 'A' + 10);
				else if (!hex &&
				    (d == '.' || d == 'e' || d == 'E')) {
					isfloat = 1;
					continue;
				} else if (isfloat && (d == '+' || d == '-') &&
				    (t[j - 1] == 'e' || t[j - 1] == 'E'))
					continue;
				else
					break;
				if (isfloat)
					continue;
				if (v > (ULLONG_MAX - dv) / (hex ? 16 : 10))
					over = 1;
				else
					v = v * (hex ? 16 : 10) + dv;
			}
			if (!isfloat && j < n && t[j] == 'L') {
				islong = 1;
				j++;
			}
			lim = islong ? (unsigned long long)INT64_MAX
				     : (unsigned long long)INT_MAX;
			if (numbers && !isfloat && (over || v > lim)) {
				snprintf(err, errlen,
				    "%s:%d: number %.*s is out of range", name,
				    line, (int)(j - i > 40 ? 40 : j - i),
				    t + i);
				return -1;
			}
			i = j;
			continue;
		}
		i++;
	}
	return 0;
}

void
lcfg_error(
    char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", name, line, msg);
	else
		snprintf(err, errlen, "%s: %s", name, msg);
}
