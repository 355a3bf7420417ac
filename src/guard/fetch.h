/*
 * Fetching a JWKS document over HTTP(S) with libcurl: bounded size and
 * time, no redirects, http and https only.
 */
#ifndef EA_GUARD_FETCH_H
#define EA_GUARD_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#define FETCH_MAX (64 * 1024)

/*
 * GETs url (ca_file for https; NULL: the system's CAs), at most FETCH_MAX
 * bytes within timeout seconds. Returns a new NUL-terminated body (the
 * caller frees) with its length in *len_r, or NULL with a message in err.
 * Thread-safe once fetch_init() has run.
 */
char *fetch_url(const char *url, const char *ca_file, unsigned int timeout,
    size_t *len_r, char *err, size_t errlen);

/*
 * The same for any document: at most max bytes; what names the document
 * in messages ("the JWKS"); when stop is not NULL, the transfer is given
 * up as soon as *stop is set (from another thread).
 */
char *fetch_doc(const char *url, const char *ca_file, unsigned int timeout,
    size_t max, const char *what, const atomic_int *stop, size_t *len_r,
    char *err, size_t errlen);

/*
 * 0 when url may be fetched: https:// to any host, or http:// to a
 * loopback host only (127.x.y.z, [::1], localhost), where no network lies
 * between the guard and the daemon. Else -1 with a message naming what
 * ("jwks_url") in err.
 */
int fetch_url_allowed(
    const char *url, const char *what, char *err, size_t errlen);

/* Initialises libcurl once (thread-safe, idempotent). Returns 0 or -1. */
int fetch_init(void);

#endif
