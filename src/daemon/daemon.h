/*
 * emailauthd: what the route files share with main.c.
 */
#ifndef EA_DAEMON_DAEMON_H
#define EA_DAEMON_DAEMON_H

#include "authn/pool.h"
#include "daemon/limits.h"
#include "daemon/runtime.h"
#include "http/server.h"
#include "session/session.h"

/* Process-wide parts, set by main.c before it listens. */
extern struct http_server *daemon_http;
extern struct authn_pool *daemon_pool;
extern struct sess_store *daemon_store;

/*
 * Loads the configuration again and swaps it in (SIGHUP, and the admin
 * API after it rewrote the role map). Returns 0, or -1 when the new one is
 * refused (logged; the running one stays). Serialised; thread-safe.
 */
int daemon_reload(void);

/* What a request runs under (its reference, taken when it began). */
static inline struct rt *
req_rt(const struct http_req *r)
{
	return r->app;
}

static inline const struct cfg *
req_cfg(const struct http_req *r)
{
	return ((const struct rt *)r->app)->cfg;
}

/* routes_health.c */
enum MHD_Result route_healthz(struct http_req *r);
enum MHD_Result route_readyz(struct http_req *r);
enum MHD_Result route_metrics(struct http_req *r);

/* routes_auth.c */
enum MHD_Result route_login(struct http_req *r);
enum MHD_Result route_refresh(struct http_req *r);
enum MHD_Result route_logout(struct http_req *r);
enum MHD_Result route_userinfo(struct http_req *r);
enum MHD_Result route_jwks(struct http_req *r);
enum MHD_Result route_discovery(struct http_req *r);

/* routes_admin.c */
enum MHD_Result route_admin_roles_get(struct http_req *r);
enum MHD_Result route_admin_role_put(struct http_req *r);
enum MHD_Result route_admin_role_delete(struct http_req *r);
enum MHD_Result route_admin_explain(struct http_req *r);
enum MHD_Result route_admin_sessions_get(struct http_req *r);
enum MHD_Result route_admin_sessions_delete(struct http_req *r);
enum MHD_Result route_admin_session_delete(struct http_req *r);

/* routes_verify.c */
enum MHD_Result route_verify(struct http_req *r);

/*
 * The caller of a protected route (routes_admin.c): a verified token of a
 * live session granting perm. Returns the principal (release with
 * gv_release()), or NULL after answering 401 or 403 into *ret (a 403 is
 * audited as permission_denied).
 */
struct ea_principal *route_caller(
    struct http_req *r, const char *perm, enum MHD_Result *ret);

/* routes_revocations.c */
enum MHD_Result route_revocations(struct http_req *r);

#endif
