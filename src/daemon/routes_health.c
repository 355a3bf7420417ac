/*
 * GET /healthz, /readyz, /metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "log/audit.h"

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

	const struct rt *rt = req_rt(r);
	size_t i;
	int ready;

	/* Ready: the state directory is usable, the session store answers,
	 * and every backend that can tell (a directory server answers its
	 * probes) says it can serve. Health is kept by the backends'
	 * own probes: nothing here blocks. */
	ready = access(c->state_dir, R_OK | W_OK | X_OK) == 0 &&
	    sess_ping(daemon_store) == 0;
	for (i = 0; ready && i < rt->n_backends; i++)
		if (rt->backends[i].be->ready != NULL &&
		    !rt->backends[i].be->ready(rt->backends[i].state))
			ready = 0;
	if (!ready)
		return http_problem(r, 503, "not ready",
		    (struct http_header[]){{"Retry-After", "5"}, {NULL, NULL}});
	return http_reply(
	    r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

enum MHD_Result
route_metrics(struct http_req *r)
{
	const struct rt *rt = req_rt(r);
	const struct cfg *c = rt->cfg;
	size_t i, len = 0;
	enum MHD_Result ret;
	char *text = NULL, *part;
	FILE *f;

	if (!net_cidr_match(c->listen.metrics_allow.v,
		c->listen.metrics_allow.n, r->client_addr))
		return http_problem(r, 403,
		    "metrics are not served to this "
		    "address",
		    NULL);
	if ((f = open_memstream(&text, &len)) == NULL)
		return http_problem(r, 500, NULL, NULL);
	if ((part = http_server_metrics(daemon_http)) != NULL)
		fputs(part, f);
	free(part);
	for (i = 0; i < rt->n_backends; i++) {
		const struct rt_backend *b = &rt->backends[i];

		if (b->be->metrics != NULL &&
		    (part = b->be->metrics(b->state)) != NULL) {
			fputs(part, f);
			free(part);
		}
	}
	limits_metrics(f);
	fprintf(f,
	    "# HELP emailauth_audit_write_errors_total Audit lines that "
	    "could not be appended.\n"
	    "# TYPE emailauth_audit_write_errors_total counter\n"
	    "emailauth_audit_write_errors_total %llu\n",
	    trail_errors());
	if (fclose(f) != 0) {
		free(text);
		return http_problem(r, 500, NULL, NULL);
	}
	ret = http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, strlen(text), NULL);
	free(text);
	return ret;
}
