/*
 * GET /healthz, /readyz, /metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

enum MHD_Result
route_healthz(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ok\"}";

	return http_reply(
	    r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

enum MHD_Result
route_readyz(struct http_req *r)
{
	static const char body[] = "{\"status\":\"ready\"}";
	const struct cfg *c = req_cfg(r);

	/* Ready: the state directory is usable. Later: the session store
	 * answers and a directory server is up. */
	if (access(c->state_dir, R_OK | W_OK | X_OK) == -1)
		return http_problem(r, 503, "not ready",
		    (struct http_header[]){{"Retry-After", "5"}, {NULL, NULL}});
	return http_reply(
	    r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

enum MHD_Result
route_metrics(struct http_req *r)
{
	const struct cfg *c = req_cfg(r);
	enum MHD_Result ret;
	char *text;

	if (!net_cidr_match(c->listen.metrics_allow.v,
		c->listen.metrics_allow.n, r->client_addr))
		return http_problem(r, 403,
		    "metrics are not served to this "
		    "address",
		    NULL);
	if ((text = http_server_metrics(daemon_http)) == NULL)
		return http_problem(r, 500, NULL, NULL);
	ret = http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, strlen(text), NULL);
	free(text);
	return ret;
}
