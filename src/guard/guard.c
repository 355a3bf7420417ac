/*
 * libemailauth: the public API of include/emailauth/guard.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "emailauth/guard.h"
#include "guard/fetch.h"
#include "guard/revoke.h"
#include "guard/verifier.h"
#include "http/http.h"
#include "policy/policy.h"
#include "ratelimit/ratelimit.h"
#include "util/net.h"
#include "util/sec.h"

#define RL_KEYS 100000

struct ea_guard {
	struct gv *verifier;
	struct http_policy pol;
	char **origins;
	struct net_cidr *proxies;
	char *jwks_url;
	char *jwks_ca_file;
	unsigned int jwks_min_interval;
	unsigned int jwks_timeout;
	pthread_mutex_t fetch_lock; /* one fetch at a time */
	double last_fetch;          /* monotonic seconds, under fetch_lock */
	struct rl_table *rl_ip, *rl_sub;
	struct grev *revoked; /* NULL: no revocation feed */
	ea_log_fn log;
	void *log_cls;
	atomic_ullong next_id;
	unsigned int id_prefix;
};

static void
glog(struct ea_guard *g, enum ea_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (g->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	g->log(g->log_cls, lvl, msg);
}

static char **
copy_list(const char *const *v, size_t *n_r)
{
	size_t n = 0, i;
	char **r;

	while (v != NULL && v[n] != NULL)
		n++;
	if ((r = calloc(n + 1, sizeof(char *))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((r[i] = strdup(v[i])) == NULL) {
			while (i-- > 0)
				free(r[i]);
			free(r);
			return NULL;
		}
	}
	*n_r = n;
	return r;
}

/*
 * Fetches the JWKS and installs it: at most once per jwks_min_interval,
 * one fetch at a time (a request that finds a fetch running does not
 * wait). Returns 1 when a new set was installed.
 */
static int
refresh_keys(struct ea_guard *g, int force)
{
	struct tok_keyset *ks;
	char err[256], *body;
	size_t len;
	double now = clock_mono();
	int ret = 0;

	if (g->jwks_url == NULL)
		return 0;
	if (pthread_mutex_trylock(&g->fetch_lock) != 0)
		return 0;
	if (!force && g->last_fetch != 0 &&
	    now - g->last_fetch < g->jwks_min_interval)
		goto out;
	g->last_fetch = now;
	body = fetch_url(g->jwks_url, g->jwks_ca_file, g->jwks_timeout, &len,
	    err, sizeof(err));
	if (body == NULL) {
		glog(g, EA_LOG_WARN, "jwks: %s; keeping the keys loaded", err);
		goto out;
	}
	if (tok_keyset_from_jwks(body, len, &ks, err, sizeof(err)) == -1) {
		glog(g, EA_LOG_WARN, "jwks: %s; keeping the keys loaded", err);
		free(body);
		goto out;
	}
	free(body);
	gv_set_keys(g->verifier, ks, 1);
	glog(g, EA_LOG_INFO, "jwks: loaded from %s", g->jwks_url);
	ret = 1;
out:
	pthread_mutex_unlock(&g->fetch_lock);
	return ret;
}

static int
load_file_keys(struct ea_guard *g, const char *path, char *err, size_t errlen)
{
	struct tok_keyset *ks;
	char msg[256], *text;
	size_t len = 0;
	FILE *f;
	int ret = -1;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "cannot open %s", path);
		return -1;
	}
	if ((text = malloc(FETCH_MAX + 1)) != NULL)
		len = fread(text, 1, FETCH_MAX + 1, f);
	fclose(f);
	if (text == NULL || len > FETCH_MAX) {
		snprintf(err, errlen, "%s: unreadable or too large", path);
		goto out;
	}
	if (tok_keyset_from_jwks(text, len, &ks, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto out;
	}
	gv_set_keys(g->verifier, ks, 1);
	ret = 0;
out:
	free(text);
	return ret;
}

/* Starts the revocation feed's poller. 0 or -1 with a message. */
static int
start_revocations(struct ea_guard *g, const struct ea_guard_config *c,
    char *err, size_t errlen)
{
	struct grev_config rc = {
	    .url = c->revocations_url,
	    .ca_file = c->jwks_ca_file,
	    .interval = c->revocations_interval ? c->revocations_interval : 2,
	    .timeout = g->jwks_timeout,
	    .leeway = c->leeway > 300 ? 300 : c->leeway,
	    .log = c->log,
	    .log_cls = c->log_cls,
	};

	rc.max_stale = c->revocations_max_stale ? c->revocations_max_stale
						: 10 * rc.interval;
	if (rc.max_stale <= rc.interval) {
		snprintf(err, errlen,
		    "revocations_max_stale must exceed revocations_interval");
		return -1;
	}
	if ((g->revoked = grev_new(&rc, err, errlen)) == NULL)
		return -1;
	return 0;
}

int
ea_guard_new(const struct ea_guard_config *c, struct ea_guard **guard_r,
    char *err, size_t errlen)
{
	struct ea_guard *g;
	char **proxies = NULL;
	size_t n_proxies = 0, i;

	if (c == NULL || c->issuer == NULL || c->audience == NULL ||
	    (c->jwks_file == NULL) == (c->jwks_url == NULL)) {
		snprintf(err, errlen,
		    "issuer, audience and one of jwks_file, jwks_url are "
		    "required");
		return -1;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		goto nomem;
	pthread_mutex_init(&g->fetch_lock, NULL);
	g->log = c->log;
	g->log_cls = c->log_cls;
	g->jwks_min_interval = c->jwks_min_interval ? c->jwks_min_interval : 10;
	g->jwks_timeout = c->jwks_timeout ? c->jwks_timeout : 3;
	if (sec_random(&g->id_prefix, sizeof(g->id_prefix)) == -1)
		g->id_prefix = 0x5eed;
	g->verifier = gv_new(c->issuer, c->audience, c->leeway,
	    c->cache_entries ? c->cache_entries : 10000);
	if (g->verifier == NULL)
		goto nomem;
	if ((g->origins = copy_list(c->cors_origins, &g->pol.n_cors_origins)) ==
	    NULL)
		goto nomem;
	g->pol.cors_origins = g->origins;
	g->pol.cors_credentials = c->cors_credentials;
	g->pol.cors_max_age = 600;
	g->pol.hsts = c->hsts;
	g->pol.max_body = 8192;
	if ((proxies = copy_list(c->trusted_proxies, &n_proxies)) == NULL)
		goto nomem;
	if (n_proxies > 0 &&
	    (g->proxies = calloc(n_proxies, sizeof(*g->proxies))) == NULL)
		goto nomem;
	for (i = 0; i < n_proxies; i++) {
		if (net_cidr_parse(proxies[i], &g->proxies[i]) == -1) {
			snprintf(err, errlen,
			    "trusted_proxies: '%.64s' is not a CIDR range",
			    proxies[i]);
			goto fail;
		}
	}
	g->pol.trusted_proxies = g->proxies;
	g->pol.n_trusted_proxies = n_proxies;
	if (c->rate_per_ip > 0 &&
	    (g->rl_ip = rl_new(RL_KEYS, c->rate_per_ip,
		 c->burst_per_ip >= 1 ? c->burst_per_ip : 1)) == NULL)
		goto nomem;
	if (c->rate_per_subject > 0 &&
	    (g->rl_sub = rl_new(RL_KEYS, c->rate_per_subject,
		 c->burst_per_subject >= 1 ? c->burst_per_subject : 1)) == NULL)
		goto nomem;
	if (c->jwks_file != NULL &&
	    load_file_keys(g, c->jwks_file, err, errlen) == -1)
		goto fail;
	if (c->jwks_url != NULL) {
		if (fetch_url_allowed(c->jwks_url, "jwks_url", err, errlen) ==
		    -1)
			goto fail;
		if ((g->jwks_url = strdup(c->jwks_url)) == NULL ||
		    (c->jwks_ca_file != NULL &&
			(g->jwks_ca_file = strdup(c->jwks_ca_file)) == NULL))
			goto nomem;
		if (fetch_init() == -1) {
			snprintf(err, errlen, "libcurl cannot start");
			goto fail;
		}
		refresh_keys(g, 1);
	}
	if (c->revocations_url != NULL &&
	    start_revocations(g, c, err, errlen) == -1)
		goto fail;
	for (i = 0; i < n_proxies; i++)
		free(proxies[i]);
	free(proxies);
	*guard_r = g;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	for (i = 0; proxies != NULL && proxies[i] != NULL; i++)
		free(proxies[i]);
	free(proxies);
	ea_guard_free(g);
	return -1;
}

void
ea_guard_free(struct ea_guard *g)
{
	size_t i;

	if (g == NULL)
		return;
	grev_free(g->revoked);
	gv_free(g->verifier);
	for (i = 0; g->origins != NULL && g->origins[i] != NULL; i++)
		free(g->origins[i]);
	free(g->origins);
	free(g->proxies);
	free(g->jwks_url);
	free(g->jwks_ca_file);
	rl_free(g->rl_ip);
	rl_free(g->rl_sub);
	pthread_mutex_destroy(&g->fetch_lock);
	free(g);
}

/* A request context for the shared HTTP helpers. */
static void
req_init(struct ea_guard *g, struct http_req *r, struct MHD_Connection *c)
{
	unsigned long long n =
	    atomic_fetch_add_explicit(&g->next_id, 1, memory_order_relaxed);

	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->pol = &g->pol;
	snprintf(r->id, sizeof(r->id), "%08x%08x", g->id_prefix,
	    (unsigned int)(n & 0xffffffffu));
}

static enum MHD_Result
too_many(struct http_req *r, const struct rl_info *info)
{
	char retry[32], limit[32], remaining[32], reset[32];

	long long ra = (long long)info->retry_after,
		  rs = (long long)info->reset;

	/* Whole seconds, rounded up, at least 1. */
	if ((double)ra < info->retry_after || ra < 1)
		ra++;
	if ((double)rs < info->reset || rs < 1)
		rs++;
	snprintf(retry, sizeof(retry), "%lld", ra);
	snprintf(limit, sizeof(limit), "%.0f", info->limit);
	snprintf(
	    remaining, sizeof(remaining), "%lld", (long long)info->remaining);
	snprintf(reset, sizeof(reset), "%lld", rs);
	return http_problem(r, 429, "too many requests; retry later",
	    (struct http_header[]){{"Retry-After", retry},
		{"RateLimit-Limit", limit}, {"RateLimit-Remaining", remaining},
		{"RateLimit-Reset", reset}, {NULL, NULL}});
}

/* 1 when the client address may go on; else answered 429. */
static int
ip_allowed(struct ea_guard *g, struct http_req *r, enum MHD_Result *ret_r)
{
	struct rl_info info;

	if (g->rl_ip == NULL)
		return 1;
	if (http_client_addr(r) == -1) {
		*ret_r = http_problem(r, 400, "no client address", NULL);
		return 0;
	}
	if (rl_take(g->rl_ip, r->client_ip, strlen(r->client_ip), 1,
		clock_mono(), &info))
		return 1;
	glog(g, EA_LOG_INFO, "request %s: rate limited: client %s", r->id,
	    r->client_ip);
	*ret_r = too_many(r, &info);
	return 0;
}

int
ea_guard_allow_public(
    struct ea_guard *g, struct MHD_Connection *c, enum MHD_Result *ret_r)
{
	struct http_req r;

	req_init(g, &r, c);
	if (http_check_framing(&r, ret_r))
		return 0;
	return ip_allowed(g, &r, ret_r);
}

static enum MHD_Result
unauthorized(struct http_req *r, int sent)
{
	return http_problem(r, 401,
	    sent ? "the access token is not valid"
		 : "an access token is required",
	    (struct http_header[]){{"WWW-Authenticate",
				       sent ? "Bearer error=\"invalid_token\""
					    : "Bearer realm=\"emailauth\""},
		{NULL, NULL}});
}

struct ea_principal *
ea_guard_check(struct ea_guard *g, struct MHD_Connection *c,
    const char *permission, enum MHD_Result *ret_r)
{
	struct ea_principal *p = NULL;
	struct http_req r;
	struct rl_info info;
	enum tok_err why = TOK_OK;
	const char *tok;
	size_t len;
	int rc;

	req_init(g, &r, c);
	/* Smuggling shapes first: 400 and the connection closed, whatever
	 * the token (libmicrohttpd 0.9.75 lets them through). */
	if (http_check_framing(&r, ret_r))
		return NULL;
	if (!ip_allowed(g, &r, ret_r))
		return NULL;
	if ((rc = http_bearer(&r, &tok, &len)) != 1) {
		*ret_r = unauthorized(&r, rc == -1);
		return NULL;
	}
	if (!gv_has_keys(g->verifier) && refresh_keys(g, 0) == 0 &&
	    !gv_has_keys(g->verifier)) {
		glog(
		    g, EA_LOG_ERROR, "no signing keys loaded; refusing tokens");
		*ret_r = http_problem(&r, 503, "the service is unavailable",
		    (struct http_header[]){{"Retry-After", "5"}, {NULL, NULL}});
		return NULL;
	}
	if (gv_verify(g->verifier, tok, len, (long long)time(NULL), &p, &why) ==
		-1 &&
	    why == TOK_UNKNOWN_KID && refresh_keys(g, 0) == 1)
		gv_verify(
		    g->verifier, tok, len, (long long)time(NULL), &p, &why);
	if (p == NULL) {
		glog(g, EA_LOG_INFO, "request %s: token refused: %s", r.id,
		    tok_err_name(why));
		*ret_r = unauthorized(&r, 1);
		return NULL;
	}
	/* After the cache too: a revocation outlives no cached token. */
	if (g->revoked != NULL) {
		switch (grev_check(g->revoked, p->sid, (long long)time(NULL))) {
		case GREV_OK:
			break;
		case GREV_REVOKED:
			glog(g, EA_LOG_INFO, "request %s: token refused: %s",
			    r.id, p->sid != NULL ? "revoked" : "no sid");
			*ret_r = unauthorized(&r, 1);
			gv_release(p);
			return NULL;
		case GREV_STALE:
			glog(g, EA_LOG_ERROR,
			    "request %s: revocation feed stale; refusing tokens",
			    r.id);
			*ret_r =
			    http_problem(&r, 503, "the service is unavailable",
				(struct http_header[]){
				    {"Retry-After", "5"}, {NULL, NULL}});
			gv_release(p);
			return NULL;
		}
	}
	if (g->rl_sub != NULL &&
	    !rl_take(
		g->rl_sub, p->sub, strlen(p->sub), 1, clock_mono(), &info)) {
		glog(g, EA_LOG_INFO, "request %s: rate limited: subject %s",
		    r.id, p->sub);
		*ret_r = too_many(&r, &info);
		gv_release(p);
		return NULL;
	}
	if (permission != NULL && !pol_scope_permits(p->scope, permission)) {
		char hdr[256];

		snprintf(hdr, sizeof(hdr),
		    "Bearer error=\"insufficient_scope\", scope=\"%s\"",
		    pol_permission_valid(permission, 0) ? permission : "");
		*ret_r = http_problem(&r, 403,
		    "the token does not grant this operation",
		    (struct http_header[]){
			{"WWW-Authenticate", hdr}, {NULL, NULL}});
		gv_release(p);
		return NULL;
	}
	return p;
}

void
ea_guard_decorate(
    struct ea_guard *g, struct MHD_Connection *c, struct MHD_Response *resp)
{
	struct http_req r;

	req_init(g, &r, c);
	http_decorate(resp, c, &g->pol, r.id);
}

enum MHD_Result
ea_guard_problem(struct ea_guard *g, struct MHD_Connection *c,
    unsigned int status, const char *detail)
{
	struct http_req r;

	req_init(g, &r, c);
	return http_problem(&r, status, detail, NULL);
}

enum MHD_Result
ea_guard_problem_headers(struct ea_guard *g, struct MHD_Connection *c,
    unsigned int status, const char *detail, const char *const *headers)
{
	struct http_header h[17];
	struct http_req r;
	size_t n = 0;

	req_init(g, &r, c);
	while (headers != NULL && headers[2 * n] != NULL &&
	    headers[2 * n + 1] != NULL && n < 16) {
		h[n].name = headers[2 * n];
		h[n].value = headers[2 * n + 1];
		n++;
	}
	h[n].name = h[n].value = NULL;
	return http_problem(&r, status, detail, h);
}

/* 1 when method is one of the comma-separated methods. */
static int
method_listed(const char *methods, const char *method)
{
	size_t n = strlen(method);
	const char *p = methods;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, method, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

int
ea_guard_preflight(struct ea_guard *g, struct MHD_Connection *c,
    const char *methods, enum MHD_Result *ret_r)
{
	const char *origin, *want;
	char age[32];
	struct http_req r;
	size_t i;
	int ok = 0;

	req_init(g, &r, c);
	origin = http_header(&r, "Origin");
	want = http_header(&r, "Access-Control-Request-Method");
	if (origin == NULL || want == NULL)
		return 0;
	for (i = 0; i < g->pol.n_cors_origins; i++)
		ok |= strcmp(origin, g->pol.cors_origins[i]) == 0;
	if (!ok) {
		*ret_r = http_problem(&r, 403, "origin not allowed", NULL);
		return 1;
	}
	if (methods == NULL || !method_listed(methods, want)) {
		*ret_r = http_problem(&r, 405, "method not allowed",
		    (struct http_header[]){
			{"Allow", methods != NULL ? methods : ""},
			{NULL, NULL}});
		return 1;
	}
	snprintf(age, sizeof(age), "%lld", g->pol.cors_max_age);
	*ret_r = http_reply(&r, 204, NULL, "", 0,
	    (struct http_header[]){{"Access-Control-Allow-Methods", methods},
		{"Access-Control-Allow-Headers",
		    "Authorization, Content-Type, If-Match"},
		{"Access-Control-Max-Age", age}, {NULL, NULL}});
	return 1;
}

const char *
ea_principal_subject(const struct ea_principal *p)
{
	return p->sub;
}

const char *
ea_principal_name(const struct ea_principal *p)
{
	return p->name;
}

const char *
ea_principal_email(const struct ea_principal *p)
{
	return p->email;
}

const char *
ea_principal_scope(const struct ea_principal *p)
{
	return p->scope;
}

size_t
ea_principal_role_count(const struct ea_principal *p)
{
	return p->n_roles;
}

const char *
ea_principal_role(const struct ea_principal *p, size_t i)
{
	return i < p->n_roles ? p->roles[i] : NULL;
}

int
ea_principal_has_permission(
    const struct ea_principal *p, const char *permission)
{
	return permission != NULL && pol_scope_permits(p->scope, permission);
}

const char *
ea_principal_session(const struct ea_principal *p)
{
	return p->sid;
}

void
ea_principal_free(struct ea_principal *p)
{
	gv_release(p);
}
