/*
 * What every libconfig file of ours (emailauthd.conf, roles.conf) goes
 * through before libconfig parses it: a bounded read, and a scan for what
 * libconfig 1.5 gets wrong silently (../shared/reference/libraries.md §5).
 */
#ifndef EA_CONFIG_LCFG_H
#define EA_CONFIG_LCFG_H

#include <stddef.h>

/*
 * Reads path (at most max bytes, no NUL byte) into a new NUL-terminated
 * string the caller frees. NULL with "PATH: message" in err.
 */
char *lcfg_read(const char *path, size_t max, char *err, size_t errlen);

/*
 * Scans text: refuses @include (libconfig would open any file the process
 * can read) and, when numbers is 1, integer literals libconfig would wrap
 * (above INT_MAX without L) or clamp (above INT64_MAX with L). Comments
 * and strings are skipped as libconfig skips them. Returns 0, or -1 with
 * "NAME:LINE: message" in err.
 */
int lcfg_prescan(
    const char *text, const char *name, int numbers, char *err, size_t errlen);

/*
 * Writes "NAME:LINE: message" (or "NAME: message" when line is 0) into err,
 * the format of every configuration error.
 */
void lcfg_error(char *err, size_t errlen, const char *name, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
