/*
 * The audit trail: one JSON line per security event (sign-in success and
 * failure, throttling, refresh, reuse, logout, admin changes, key
 * rotation), appended to a file opened O_APPEND with mode 0600 and/or sent
 * to syslog (LOG_AUTHPRIV). Each event also goes to the ordinary log on
 * stderr.
 *
 * The lines form a hash chain. Each ends with
 *
 *   ,"seq":N,"prev":"<64 hex>","hash":"<64 hex>"}
 *
 * where prev is the previous line's hash (64 zeros before the first line
 * of a chain) and hash is the SHA-256 of the line's bytes up to, not
 * including, the ,"hash": field. An edited line no longer matches its own
 * hash; a deleted line breaks the next line's prev and the seq run. Anyone
 * who can write the file can rebuild the whole chain, so the chain shows
 * gaps and edits; send the lines to a remote syslog to keep them out of
 * an intruder's reach (docs/operations.md).
 *
 * Several processes may append to one file (the daemon and emailauthctl):
 * every append holds an flock(2) on the file and picks the chain up from
 * the file's last line when the file grew behind this process's back.
 * Never pass a secret: there is no field that may hold one.
 */
#ifndef EA_LOG_AUDIT_H
#define EA_LOG_AUDIT_H

#include <stddef.h>
#include <stdio.h>

#include "log/log.h"

#define AUDIT_HASH_HEX 64

/*
 * Opens (creating, mode 0600) the audit file path, when not NULL, and
 * syslog when use_syslog; replaces the sink in use (the old file is
 * closed). The chain continues from the file's last line. Refused (-1, a
 * message in err, the old sink kept) when the file is a symlink, is
 * group-writable or world-accessible, or its last line is not a chain
 * line. Called at start, on every reload (so a rotated file is reopened)
 * and by emailauthctl. Thread-safe.
 */
int trail_open(const char *path, int use_syslog, const char *ident, char *err,
    size_t errlen);

/* Closes the sink; later events only go to the log. */
void trail_close(void);

/*
 * Writes the event to the log at lvl and appends it to the audit sink.
 * Fields as log_event(), ending with LOG_END. A failed append is logged
 * (audit_write_failed) and counted.
 */
void trail_event(enum log_level lvl, const char *event, ...);

/* Appends that failed since start. */
unsigned long long trail_errors(void);

/*
 * Checks the chain of the files paths[0..n-1], in order (a rotated file
 * first). Returns 0 when every line is a well-formed chain line whose hash
 * matches, whose prev is the hash of the line before and whose seq is one
 * more; else -1, with the file and line (1-based) of the first bad line
 * and the reason on report. The first line of the first file may start
 * the chain anywhere (a file rotated away earlier); that is reported too.
 * *lines_r gets the number of good lines.
 */
int trail_verify(const char *const *paths, size_t n, FILE *report,
    unsigned long long *lines_r);

#endif
