/*
 * emailauthd: what the route files share with main.c.
 */
#ifndef EA_DAEMON_DAEMON_H
#define EA_DAEMON_DAEMON_H

#include "config/config.h"
#include "http/server.h"

/* The running server (for /metrics); set by main.c before it listens. */
extern struct http_server *daemon_http;

/* The configuration a request runs under (its reference from begin). */
static inline const struct cfg *
req_cfg(const struct http_req *r)
{
	return r->app;
}

/* Routes of routes_health.c. */
enum MHD_Result route_healthz(struct http_req *r);
enum MHD_Result route_readyz(struct http_req *r);
enum MHD_Result route_metrics(struct http_req *r);

#endif
