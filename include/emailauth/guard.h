/*
 * libemailauth: the emailauth guard for libmicrohttpd services.
 *
 * The guard verifies the Bearer access tokens emailauthd issues, in
 * process: no network call per request. Per request it
 *
 *   - rate-limits by client address (and, once verified, by subject),
 *   - verifies the token (algorithm pinned per key, kid only looked up
 *     among the loaded keys, iss/aud/exp/nbf checked with a bounded
 *     leeway, every claim type-checked, size capped, jku/jwk/x5u never
 *     followed), with verified tokens cached until they expire,
 *   - checks the route's permission against the token's scope,
 *   - and answers every denial itself (401/403/429 problem+json with the
 *     security headers), so the application only handles the allowed.
 *
 * Typical use, in the access handler (see docs/guard.md):
 *
 *	struct ea_principal *p;
 *	enum MHD_Result ret;
 *
 *	p = ea_guard_check(guard, connection, "emails:read", &ret);
 *	if (p == NULL)
 *		return ret;              // the guard has answered
 *	... build the response ...
 *	ea_guard_decorate(guard, connection, response);
 *	ret = MHD_queue_response(connection, 200, response);
 *	ea_principal_free(p);
 *
 * Thread-safety: every function may be called from any thread; a guard is
 * shared by all of them. The library never exits, aborts or prints: it
 * returns errors and logs through the callback of its configuration.
 *
 * Ownership: a pointer returned by an ea_*_new() or ea_guard_check() is
 * the caller's, to be freed with the matching ea_*_free(). Strings
 * returned by ea_principal_*() belong to the principal and live as long.
 * Strings and arrays in a configuration are copied by ea_guard_new(); the
 * caller may free them as soon as it returns.
 */
#ifndef EMAILAUTH_GUARD_H
#define EMAILAUTH_GUARD_H

#include <stddef.h>

#include <microhttpd.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EA_API __attribute__((visibility("default")))
#else
#define EA_API
#endif

#define EA_GUARD_VERSION "0.1.0"

struct ea_guard;
struct ea_principal;

enum ea_log_level {
	EA_LOG_DEBUG,
	EA_LOG_INFO,
	EA_LOG_WARN,
	EA_LOG_ERROR,
};

/*
 * Called with one line of text (no secret is ever in it). May be called
 * from any thread, concurrently.
 */
typedef void (*ea_log_fn)(
    void *cls, enum ea_log_level level, const char *message);

struct ea_guard_config {
	/* Required: the issuer and audience every token must carry. */
	const char *issuer;
	const char *audience;

	/*
	 * The keys: a JWKS file, or the daemon's JWKS URL (fetched at
	 * ea_guard_new(), and again when a token names an unknown kid: one
	 * fetch at a time, at most once per jwks_min_interval seconds; the
	 * last good set is kept while the daemon is unreachable). Exactly
	 * one of the two.
	 */
	const char *jwks_file;
	const char *jwks_url;
	const char *jwks_ca_file;       /* for an https URL; NULL: system CAs */
	unsigned int jwks_min_interval; /* seconds; 0: 10 */
	unsigned int jwks_timeout;      /* seconds per fetch; 0: 3 */

	unsigned int leeway; /* seconds allowed on exp/nbf; capped at 300;
				0 means 0 */

	/* Browser origins allowed by CORS (exact; NULL-terminated array). */
	const char *const *cors_origins;
	int cors_credentials;
	/* Peers whose right-most X-Forwarded-For hop is the client
	 * (CIDR strings; NULL-terminated array). */
	const char *const *trusted_proxies;
	int hsts; /* send Strict-Transport-Security */

	/*
	 * Token buckets (requests per second and burst) per client address
	 * and per subject; 0 turns one off. Past the limit: 429 with
	 * Retry-After and RateLimit-* headers.
	 */
	double rate_per_ip;
	double burst_per_ip;
	double rate_per_subject;
	double burst_per_subject;

	size_t cache_entries; /* verified-token cache; 0: 10000 */

	ea_log_fn log; /* NULL: silent */
	void *log_cls;

	/*
	 * The revocation feed: emailauthd's GET /v1/revocations URL
	 * (NULL: off). A thread polls it every revocations_interval
	 * seconds (0: 2), with jwks_ca_file and jwks_timeout, and keeps
	 * the revoked sessions until their tokens have expired; a token of
	 * a revoked session, or without a sid, gets 401 like an invalid
	 * one. When no poll has succeeded for revocations_max_stale
	 * seconds (0: 10 x the interval; it must exceed the interval),
	 * or none yet, every token gets 503: the guard fails closed. The
	 * first poll happens in ea_guard_new().
	 */
	const char *revocations_url;
	unsigned int revocations_interval;
	unsigned int revocations_max_stale;
};

/*
 * Creates a guard. The configuration is copied. Returns 0 and the guard
 * in *guard_r, or -1 with a message in err (errlen bytes, NUL-terminated).
 * With a jwks_url the first fetch happens here; when it fails the guard is
 * still created (every token is refused until keys arrive) and the failure
 * is logged.
 */
EA_API int ea_guard_new(const struct ea_guard_config *config,
    struct ea_guard **guard_r, char *err, size_t errlen);

/*
 * Creates a guard from a group of a libconfig file (issuer, audience,
 * jwks_file or jwks_url, jwks_ca_file, leeway, cors_origins,
 * trusted_proxies, hsts, rate_per_ip, burst_per_ip, rate_per_subject,
 * burst_per_subject, cache_entries, revocations_url,
 * revocations_interval, revocations_max_stale; see docs/guard.md).
 * group is a path
 * such as "guard". Unknown settings are errors. log may be NULL.
 */
EA_API int ea_guard_new_from_file(const char *path, const char *group,
    ea_log_fn log, void *log_cls, struct ea_guard **guard_r, char *err,
    size_t errlen);

/* Frees the guard. NULL-safe. No request may be in ea_guard_check(). */
EA_API void ea_guard_free(struct ea_guard *guard);

/*
 * Checks a request: request-smuggling shapes (Content-Length with
 * Transfer-Encoding, repeated framing headers, whitespace in a header
 * name: 400 and the connection closed), rate limits, the Bearer token,
 * and the permission
 * (NULL: any valid token will do). Returns the principal (the caller
 * frees it with ea_principal_free()), or NULL after queueing the denial
 * (401, 403, 429, or 503 when no keys are loaded or the revocation feed
 * is stale); then *ret_r holds
 * MHD_queue_response()'s result, which the access handler returns.
 */
EA_API struct ea_principal *ea_guard_check(struct ea_guard *guard,
    struct MHD_Connection *connection, const char *permission,
    enum MHD_Result *ret_r);

/*
 * Rate-limits a request that needs no token (a public route) by client
 * address. Returns 1 when it may go on, or 0 after queueing a 429 (then
 * *ret_r is the result to return).
 */
EA_API int ea_guard_allow_public(struct ea_guard *guard,
    struct MHD_Connection *connection, enum MHD_Result *ret_r);

/*
 * Adds the security headers, the CORS headers for the request's Origin
 * and X-Request-Id to a response the application built, before it is
 * queued.
 */
EA_API void ea_guard_decorate(struct ea_guard *guard,
    struct MHD_Connection *connection, struct MHD_Response *response);

/*
 * Answers the request with an RFC 9457 problem (status, detail: a fixed
 * sentence, never internal detail) and the security headers. Returns
 * MHD_queue_response()'s result.
 */
EA_API enum MHD_Result ea_guard_problem(struct ea_guard *guard,
    struct MHD_Connection *connection, unsigned int status, const char *detail);

/*
 * The same with extra response headers: headers is an array of name,
 * value, name, value, ..., NULL (e.g. { "Allow", "GET, HEAD", NULL }),
 * or NULL.
 */
EA_API enum MHD_Result ea_guard_problem_headers(struct ea_guard *guard,
    struct MHD_Connection *connection, unsigned int status, const char *detail,
    const char *const *headers);

/*
 * Answers a CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) for a resource that allows methods
 * ("GET, POST"): 204 with the CORS headers when the origin is allowed and
 * the method listed, else a 403 or 405 problem. Returns 1 when it
 * answered (then *ret_r is the result to return), 0 when the request is
 * no preflight.
 */
EA_API int ea_guard_preflight(struct ea_guard *guard,
    struct MHD_Connection *connection, const char *methods,
    enum MHD_Result *ret_r);

/* The token's sub, name and email (NULL when the token has none). */
EA_API const char *ea_principal_subject(const struct ea_principal *p);
EA_API const char *ea_principal_name(const struct ea_principal *p);
EA_API const char *ea_principal_email(const struct ea_principal *p);

/* The token's scope: permissions separated by single spaces. */
EA_API const char *ea_principal_scope(const struct ea_principal *p);

/* The number of roles, and role i (0 <= i < count), or NULL. */
EA_API size_t ea_principal_role_count(const struct ea_principal *p);
EA_API const char *ea_principal_role(const struct ea_principal *p, size_t i);

/* 1 when the scope grants permission ("emails:*" grants "emails:read"). */
EA_API int ea_principal_has_permission(
    const struct ea_principal *p, const char *permission);

/* The session id (sid) and token id (jti). */
EA_API const char *ea_principal_session(const struct ea_principal *p);

/* NULL-safe. */
EA_API void ea_principal_free(struct ea_principal *p);

#ifdef __cplusplus
}
#endif

#endif
