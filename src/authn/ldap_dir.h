/*
 * The directory servers of the ldap backend: one URI per connection,
 * failover in our code with per-server health and back-off, pooled
 * service connections (bound as bind_dn) and pooled user-bind connections
 * (never used for a service search), a probe thread that keeps the health
 * true and recovers servers by itself.
 *
 * Every connection: protocol 3, referrals off, both timeouts,
 * CONNECT_ASYNC (so a stalled TLS handshake is bounded), TLS certificate
 * DEMANDed against ca_file with TLS 1.2+, options applied with NEWCTX;
 * plaintext or unverified only with ldap.insecure.
 */
#ifndef EA_AUTHN_LDAP_DIR_H
#define EA_AUTHN_LDAP_DIR_H

#include <ldap.h>

#include "util/sec.h"

struct cfg;
struct ldir;

/*
 * Prepares the servers of c (no connection is made here; the probe thread
 * connects in the background). Returns 0 and the directory, or -1 with a
 * message (e.g. the bind password file is unreadable).
 */
int ldir_new(const struct cfg *c, struct ldir **r, char *err, size_t errlen);

/* Starts the probe thread (not at -t, which must never connect). */
int ldir_start(struct ldir *d);

/* Stops the probe thread, closes every connection. NULL-safe. */
void ldir_free(struct ldir *d);

/*
 * Runs op on a service connection, failing over between servers: op
 * returns an LDAP result code; a connection-level one (server down,
 * timeout, connect error) marks the server down and moves on to the next.
 * Returns op's code, or LDAP_SERVER_DOWN when no server could run it.
 */
int ldir_service(struct ldir *d, int (*op)(LDAP *ld, void *arg), void *arg);

/*
 * Checks dn's password with a simple bind on a user connection (with the
 * ppolicy request control). Returns LDAP_SUCCESS, LDAP_INVALID_CREDENTIALS,
 * LDAP_SERVER_DOWN (no server), or another code. *disabled_r is set to 1
 * when the server says the account is locked or its password expired.
 */
int ldir_user_bind(
    struct ldir *d, const char *dn, const struct sec_buf *pw, int *disabled_r);

/* 1 when at least one server answered its last probe or operation. */
int ldir_ready(struct ldir *d);

/* Prometheus text of per-server health, latency and errors (new string). */
char *ldir_metrics(struct ldir *d);

#endif
