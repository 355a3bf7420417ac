/*
 * GET /v1/verify: forward authentication for nginx auth_request and
 * Traefik forwardAuth. The Bearer token is verified in process (cached
 * until it expires); X-Required-Permission, when sent, must be granted by
 * its scope. 200 carries X-Auth-User, X-Auth-Roles, X-Auth-Email for the
 * proxy to pass upstream; 401 / 403 otherwise. A token of a revoked or
 * logged-out session is refused within about a second (revoked.c); while
 * the store cannot say which sessions are revoked, 503. Nothing here
 * blocks.
 */
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "daemon/jobs.h"
#include "daemon/revoked.h"
#include "log/log.h"
#include "policy/policy.h"

enum MHD_Result
route_verify(struct http_req *r)
{
	const struct rt *rt = req_rt(r);
	struct ea_principal *p = NULL;
	struct http_header h[5];
	enum MHD_Result ret;
	enum tok_err why;
	const char *tok, *need;
	size_t len, n = 0;
	int rc;

	if ((rc = http_bearer(r, &tok, &len)) != 1)
		return http_problem(r, 401,
		    rc == 0 ? "an access token is required"
			    : "the access token is not valid",
		    (struct http_header[]){
			{"WWW-Authenticate",
			    rc == 0 ? "Bearer realm=\"emailauth\""
				    : "Bearer error=\"invalid_token\""},
			{NULL, NULL}});
	if (gv_verify(rt->verifier, tok, len, (long long)time(NULL), &p,
		&why) == -1) {
		log_event(LOG_INFO, "token_refused", LS("request_id", r->id),
		    LS("reason", tok_err_name(why)), LS("client", r->client_ip),
		    LOG_END);
		return http_problem(r, 401, "the access token is not valid",
		    (struct http_header[]){
			{"WWW-Authenticate", "Bearer error=\"invalid_token\""},
			{NULL, NULL}});
	}
	switch (revoked_check(p->sid, (long long)time(NULL))) {
	case REVOKED_NO:
		break;
	case REVOKED_YES:
		gv_release(p);
		log_event(LOG_INFO, "token_refused", LS("request_id", r->id),
		    LS("reason", "session_revoked"), LS("client", r->client_ip),
		    LOG_END);
		return http_problem(r, 401, "the access token is not valid",
		    (struct http_header[]){
			{"WWW-Authenticate", "Bearer error=\"invalid_token\""},
			{NULL, NULL}});
	case REVOKED_STALE:
		gv_release(p);
		return http_problem(r, 503, UNAVAILABLE,
		    (struct http_header[]){{"Retry-After", "5"}, {NULL, NULL}});
	}
	need = http_header(r, "X-Required-Permission");
	if (http_header_count(r, "X-Required-Permission") > 1) {
		/* A proxy that appends instead of replacing would let the
		 * client pick which one counts: refuse. */
		gv_release(p);
		return http_problem(
		    r, 400, "X-Required-Permission is repeated", NULL);
	}
	if (need != NULL &&
	    (!pol_permission_valid(need, 0) ||
		!pol_scope_permits(p->scope, need))) {
		gv_release(p);
		return http_problem(r, 403,
		    "the token does not grant this operation",
		    (struct http_header[]){
			{"WWW-Authenticate",
			    "Bearer error=\"insufficient_scope\""},
			{NULL, NULL}});
	}
	h[n++] = (struct http_header){"X-Auth-User", p->sub};
	h[n++] = (struct http_header){"X-Auth-Roles", p->roles_csv};
	if (p->email != NULL)
		h[n++] = (struct http_header){"X-Auth-Email", p->email};
	if (p->name != NULL)
		h[n++] = (struct http_header){"X-Auth-Name", p->name};
	h[n] = (struct http_header){NULL, NULL};
	ret = http_reply(r, 200, NULL, "", 0, h);
	gv_release(p);
	return ret;
}
