/*
 * The guard's copy of emailauthd's revocation feed (GET /v1/revocations):
 * the set of revoked session ids, each kept until the last access token
 * of its session has expired (exp + leeway), refreshed by a poller
 * thread.
 */
#ifndef EA_GUARD_REVOKE_H
#define EA_GUARD_REVOKE_H

#include "emailauth/guard.h"

struct grev;

enum grev_state {
	GREV_OK,      /* not revoked, and the set is fresh */
	GREV_REVOKED, /* the session was revoked */
	GREV_STALE,   /* no complete poll for max_stale seconds (or ever) */
};

/* What grev_new() needs; strings are copied. */
struct grev_config {
	const char *url;        /* http(s)://.../v1/revocations */
	const char *ca_file;    /* NULL: the system's CAs */
	unsigned int interval;  /* seconds between polls, >= 1 */
	unsigned int timeout;   /* seconds per request, >= 1 */
	unsigned int max_stale; /* seconds, > interval */
	long long leeway;       /* kept past exp this long */
	ea_log_fn log;          /* may be NULL */
	void *log_cls;
};

/*
 * Creates the set, polls once (a failure is logged; the set stays stale
 * until a poll succeeds) and starts the poller thread. Returns the set
 * (free with grev_free()), or NULL with a message in err.
 */
struct grev *grev_new(const struct grev_config *c, char *err, size_t errlen);

/*
 * Stops the poller (an HTTP request in flight is given up) and frees the
 * set. NULL-safe. No grev_check() may run.
 */
void grev_free(struct grev *r);

/*
 * Whether the session sid may still be used at wall-clock time now.
 * sid NULL (a token without one) counts as revoked. Thread-safe.
 */
enum grev_state grev_check(struct grev *r, const char *sid, long long now);

/* The number of sessions in the set, for tests. Thread-safe. */
size_t grev_count(struct grev *r);

#endif
