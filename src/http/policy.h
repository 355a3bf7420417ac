/*
 * What the HTTP helpers need to know from a configuration: who may send
 * X-Forwarded-For, which origins CORS allows, whether to send HSTS, the
 * body cap. Plain data, so both the daemon's struct cfg and the guard's
 * own configuration can embed one.
 */
#ifndef EA_HTTP_POLICY_H
#define EA_HTTP_POLICY_H

#include <stddef.h>

#include "util/net.h"

struct http_policy {
	const struct net_cidr *trusted_proxies; /* X-Forwarded-For from these */
	size_t n_trusted_proxies;
	char *const *cors_origins; /* exact origins, compared byte for byte */
	size_t n_cors_origins;
	int cors_credentials;   /* Access-Control-Allow-Credentials: true */
	long long cors_max_age; /* preflight cache, seconds */
	int hsts;               /* send Strict-Transport-Security */
	size_t max_body;        /* request bodies above this: 413 */
};

#endif
