/*
 * The admin API: the role map (GET/PUT/DELETE /v1/admin/roles[/{role}],
 * with an ETag and If-Match), explain (GET /v1/admin/explain?user=), and
 * sessions (GET /v1/admin/sessions?user=, DELETE /v1/admin/sessions/{sid},
 * DELETE /v1/admin/sessions?user= for all of a user's).
 *
 * Every route needs a valid access token of a live session whose scope
 * grants admin:roles or admin:sessions. Changes to the role map are
 * serialised, refused when they would leave no group mapped to a role
 * granting admin:roles (409: nobody could administer any more), written
 * atomically (temporary file, fsync, rename, fsync of the directory),
 * reloaded, and audited with who, what, before and after.
 */
#include <sys/stat.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "daemon/daemon.h"
#include "daemon/jobs.h"
#include "log/audit.h"
#include "log/log.h"
#include "policy/policy.h"
#include "util/file.h"
#include "util/str.h"

#define ROLES_PREFIX    "/v1/admin/roles/"
#define SESSIONS_PREFIX "/v1/admin/sessions/"

/* One role-map change at a time (read, check, write, reload). */
static pthread_mutex_t roles_lock = PTHREAD_MUTEX_INITIALIZER;

struct admin_job {
	char actor[AUTHN_USER_MAX + 1];
	char role[80];
	char if_match[80];
	json_t *role_body; /* PUT: {"groups","permissions"}; NULL: DELETE */
	char sid[64];
};

static void
admin_job_free(void *p)
{
	struct admin_job *a = p;

	if (a != NULL)
		json_decref(a->role_body);
	free(a);
}

struct ea_principal *
route_caller(struct http_req *r, const char *perm, enum MHD_Result *ret)
{
	char www[160];

	const struct rt *rt = req_rt(r);
	struct ea_principal *p = NULL;
	struct sess_info info;
	enum tok_err why;
	const char *tok;
	size_t len;
	int rc;

	if ((rc = http_bearer(r, &tok, &len)) != 1 ||
	    gv_verify(rt->verifier, tok, len, (long long)time(NULL), &p,
		&why) == -1 ||
	    p->sid == NULL ||
	    sess_get(daemon_store, p->sid, (long long)time(NULL),
		rt->cfg->tokens.refresh_idle, &info) != SESS_OK) {
		gv_release(p);
		*ret = http_problem(r, 401,
		    rc == 0 ? "an access token is required"
			    : "the access token is not valid",
		    (struct http_header[]){
			{"WWW-Authenticate",
			    rc == 0 ? "Bearer realm=\"emailauth\""
				    : "Bearer error=\"invalid_token\""},
			{NULL, NULL}});
		return NULL;
	}
	if (!pol_scope_permits(p->scope, perm)) {
		trail_event(LOG_WARN, "permission_denied",
		    LS("request_id", r->id), LS("actor", p->sub),
		    LS("client", r->client_ip), LS("needs", perm), LOG_END);
		gv_release(p);
		snprintf(www, sizeof(www),
		    "Bearer error=\"insufficient_scope\", scope=\"%s\"", perm);
		*ret = http_problem(r, 403,
		    "the token does not grant this operation",
		    (struct http_header[]){
			{"WWW-Authenticate", www}, {NULL, NULL}});
		return NULL;
	}
	return p;
}

/* The ETag of a role map: a hash of its canonical JSON. */
static void
etag_of(const json_t *roles, char *out, size_t cap)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	char *s = json_dumps(roles, JSON_COMPACT | JSON_SORT_KEYS);

	SHA256((const unsigned char *)(s != NULL ? s : ""),
	    s != NULL ? strlen(s) : 0, d);
	free(s);
	str_hex(hex, d, 16);
	snprintf(out, cap, "\"%s\"", hex);
}

enum MHD_Result
route_admin_roles_get(struct http_req *r)
{
	const struct rt *rt = req_rt(r);
	struct ea_principal *p;
	enum MHD_Result ret;
	json_t *roles, *body;
	char etag[80];

	if ((p = route_caller(r, "admin:roles", &ret)) == NULL)
		return ret;
	gv_release(p);
	if ((roles = pol_to_json(rt->roles)) == NULL)
		return http_problem(r, 500, NULL, NULL);
	etag_of(roles, etag, sizeof(etag));
	body = json_pack("{s:o}", "roles", roles);
	ret = http_reply_json(
	    r, 200, body, (struct http_header[]){{"ETag", etag}, {NULL, NULL}});
	json_decref(body);
	return ret;
}

/* 1 when some role granting admin:roles is mapped from some group. */
static int
admin_reachable(const json_t *roles)
{
	const char *name;
	const json_t *r, *v;
	size_t i;

	json_object_foreach((json_t *)(uintptr_t)roles, name, r)
	{
		const json_t *perms = json_object_get(r, "permissions");
		const char *granted[1000];
		size_t n = 0;

		if (json_array_size(json_object_get(r, "groups")) == 0)
			continue;
		json_array_foreach(perms, i, v) if (n < 1000) granted[n++] =
		    json_string_value(v);
		if (pol_permits(granted, n, "admin:roles"))
			return 1;
	}
	return 0;
}

/* Checks a PUT body: groups and permissions as the roles file wants. */
static const char *
role_body_error(const json_t *b)
{
	const json_t *groups = json_object_get(b, "groups");
	const json_t *perms = json_object_get(b, "permissions");
	char dn[2100];
	const json_t *v;
	size_t i;

	if (json_array_size(groups) > 1000 || json_array_size(perms) > 1000)
		return "too many groups or permissions";
	if (json_array_size(perms) == 0)
		return "a role needs at least one permission";
	json_array_foreach(groups, i, v)
	{
		const char *s = json_string_value(v);

		if (s == NULL || *s == '\0' || json_string_length(v) > 1024 ||
		    !str_utf8_valid(s, json_string_length(v)) ||
		    str_has_control(s, json_string_length(v)) ||
		    strlen(s) != json_string_length(v))
			return "each group must be a non-empty string";
		if (strchr(s, '=') != NULL &&
		    pol_dn_normalize(s, dn, sizeof(dn)) == -1)
			return "a group with '=' must be a valid DN";
	}
	json_array_foreach(perms, i, v)
	{
		if (!json_is_string(v) ||
		    !pol_permission_valid(json_string_value(v), 1))
			return "each permission must be like 'emails:read' or "
			       "'emails:*'";
	}
	return NULL;
}

static int
role_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	    ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) &&
	    strspn(s,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789_-") == n;
}

/* The worker: check the precondition, change, write, reload, audit. */
static void
roles_change_work(void *arg)
{
	struct job *j = arg;
	struct admin_job *a = j->extra;
	struct pol_map *check = NULL;
	json_t *before = NULL, *after = NULL, *cur;
	char etag[80], err[512], *text = NULL, *bs = NULL, *as = NULL;
	struct stat st;

	pthread_mutex_lock(&roles_lock);
	{
		/* The map on disk is what counts (another admin may have
		 * changed it since this request's runtime was loaded). */
		struct pol_map *disk;

		if (pol_load(j->rt->cfg->roles_file, &disk, err, sizeof(err)) ==
		    -1) {
			log_event(LOG_ERROR, "admin_error",
			    LS("request_id", j->request_id), LS("error", err),
			    LOG_END);
			job_deny(j, 500, "the role map cannot be read");
			goto out;
		}
		before = pol_to_json(disk);
		pol_free(disk);
	}
	if (before == NULL) {
		job_deny(j, 500, NULL);
		goto out;
	}
	etag_of(before, etag, sizeof(etag));
	if (strcmp(a->if_match, etag) != 0 && strcmp(a->if_match, "*") != 0) {
		job_deny(j, 412,
		    "the role map changed since it was read; get it again");
		snprintf(j->etag, sizeof(j->etag), "%s", etag);
		goto out;
	}
	cur = json_object_get(before, a->role);
	if (a->role_body == NULL && cur == NULL) {
		job_deny(j, 404, "no such role");
		goto out;
	}
	after = json_deep_copy(before);
	if (after == NULL) {
		job_deny(j, 500, NULL);
		goto out;
	}
	if (a->role_body != NULL)
		json_object_set(after, a->role, a->role_body);
	else
		json_object_del(after, a->role);
	if (!admin_reachable(after)) {
		job_deny(j, 409,
		    "the change would leave no group mapped to a role granting "
		    "admin:roles");
		goto out;
	}
	if ((text = pol_json_to_text(after)) == NULL ||
	    pol_load_string(text, "(new role map)", &check, err, sizeof(err)) ==
		-1) {
		log_event(LOG_ERROR, "admin_error",
		    LS("request_id", j->request_id), LS("error", err), LOG_END);
		job_deny(j, 400, "the role map would not be valid");
		goto out;
	}
	pol_free(check);
	if (stat(j->rt->cfg->roles_file, &st) == -1)
		st.st_mode = 0644;
	if (file_write_atomic(j->rt->cfg->roles_file, text, strlen(text),
		st.st_mode & 0644, err, sizeof(err)) == -1) {
		log_event(LOG_ERROR, "admin_error",
		    LS("request_id", j->request_id), LS("error", err), LOG_END);
		job_deny(j, 503, UNAVAILABLE);
		goto out;
	}
	if (daemon_reload() == -1)
		log_event(LOG_ERROR, "admin_error",
		    LS("request_id", j->request_id),
		    LS("error",
			"the new role map was written but the reload "
			"failed; see reload_failed"),
		    LOG_END);
	bs = json_dumps(json_object_get(before, a->role), JSON_COMPACT);
	as = a->role_body != NULL ? json_dumps(a->role_body, JSON_COMPACT)
				  : NULL;
	trail_event(LOG_INFO, "admin_change", LS("request_id", j->request_id),
	    LS("actor", a->actor), LS("client", j->client),
	    LS("action", a->role_body != NULL ? "put_role" : "delete_role"),
	    LS("role", a->role), LS("before", bs != NULL ? bs : "null"),
	    LS("after", as != NULL ? as : "null"), LOG_END);
	etag_of(after, j->etag, sizeof(j->etag));
	if (a->role_body != NULL) {
		j->status = 200;
		j->body =
		    json_pack("{s:s, s:O, s:O}", "role", a->role, "groups",
			json_object_get(a->role_body, "groups"), "permissions",
			json_object_get(a->role_body, "permissions"));
	} else
		j->status = 204;
out:
	pthread_mutex_unlock(&roles_lock);
	free(bs);
	free(as);
	free(text);
	json_decref(before);
	json_decref(after);
	http_resume(j->r);
}

static enum MHD_Result
roles_change(struct http_req *r, int put)
{
	static const struct http_field fields[] = {
	    {"groups", JSON_ARRAY, 1, 0},
	    {"permissions", JSON_ARRAY, 1, 0},
	};
	const char *role = r->url + strlen(ROLES_PREFIX), *im, *why;
	struct ea_principal *p;
	struct admin_job *a;
	enum MHD_Result ret;
	struct job *j;

	if ((p = route_caller(r, "admin:roles", &ret)) == NULL)
		return ret;
	if (!role_name_valid(role)) {
		gv_release(p);
		return http_problem(r, 404, "no such role", NULL);
	}
	if (put && http_check_fields(r, fields, 2, &ret) == -1) {
		gv_release(p);
		return ret;
	}
	if (put && (why = role_body_error(r->json)) != NULL) {
		gv_release(p);
		return http_problem(r, 400, why, NULL);
	}
	if ((im = http_header(r, "If-Match")) == NULL || strlen(im) >= 80) {
		gv_release(p);
		return http_problem(r, 428,
		    "send If-Match with the ETag of GET /v1/admin/roles", NULL);
	}
	if ((j = job_new(r, "", 0)) == NULL ||
	    (a = calloc(1, sizeof(*a))) == NULL) {
		job_free(j);
		gv_release(p);
		return http_problem(r, 503, UNAVAILABLE, NULL);
	}
	j->extra = a;
	j->extra_free = admin_job_free;
	snprintf(a->actor, sizeof(a->actor), "%s", p->sub);
	snprintf(a->role, sizeof(a->role), "%s", role);
	snprintf(a->if_match, sizeof(a->if_match), "%s", im);
	if (put)
		a->role_body = json_pack("{s:O, s:O}", "groups",
		    json_object_get(r->json, "groups"), "permissions",
		    json_object_get(r->json, "permissions"));
	gv_release(p);
	return job_start(r, j, roles_change_work);
}

enum MHD_Result
route_admin_role_put(struct http_req *r)
{
	return roles_change(r, 1);
}

enum MHD_Result
route_admin_role_delete(struct http_req *r)
{
	return roles_change(r, 0);
}

static void
explain_work(void *arg)
{
	struct job *j = arg;
	struct rt *rt = j->rt;
	struct authn_user *u = NULL;
	enum authn_result res = AUTHN_UNKNOWN;
	json_t *roles = NULL, *perms = NULL, *groups, *why;
	const char *backend = NULL;
	size_t i;

	for (i = 0; i < rt->n_backends; i++) {
		res = rt->backends[i].be->lookup(
		    rt->backends[i].state, j->user, &u);
		backend = rt->backends[i].be->name;
		if (res != AUTHN_UNKNOWN)
			break;
	}
	if (res == AUTHN_UNKNOWN) {
		job_deny(j, 404, "no backend knows this user");
		goto out;
	}
	if (res == AUTHN_TEMPFAIL || res == AUTHN_ERROR) {
		job_deny(j, 503, UNAVAILABLE);
		goto out;
	}
	if (res == AUTHN_DISABLED || u == NULL) {
		j->status = 200;
		j->body = json_pack("{s:s, s:s, s:b, s:[], s:[], s:[], s:[]}",
		    "user", j->user, "backend", backend, "disabled", 1,
		    "groups", "roles", "permissions", "matches");
		goto out;
	}
	groups = json_array();
	for (i = 0; i < u->n_groups; i++)
		json_array_append_new(groups, json_string(u->groups[i]));
	pol_resolve(rt->roles, (const char *const *)u->groups, u->n_groups,
	    &roles, &perms);
	why =
	    pol_explain(rt->roles, (const char *const *)u->groups, u->n_groups);
	j->status = 200;
	j->body = json_pack("{s:s, s:s, s:b, s:o, s:O, s:O, s:o}", "user",
	    u->name, "backend", backend, "disabled", 0, "groups", groups,
	    "roles", roles != NULL ? roles : json_array(), "permissions",
	    perms != NULL ? perms : json_array(), "matches",
	    why != NULL ? why : json_array());
out:
	json_decref(roles);
	json_decref(perms);
	authn_user_free(&u);
	http_resume(j->r);
}

enum MHD_Result
route_admin_explain(struct http_req *r)
{
	const char *user =
	    MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "user");
	struct ea_principal *p;
	enum MHD_Result ret;
	struct job *j;

	if ((p = route_caller(r, "admin:roles", &ret)) == NULL)
		return ret;
	gv_release(p);
	if (user == NULL || !authn_username_ok(user, strlen(user)))
		return http_problem(r, 400, "give ?user=NAME", NULL);
	if ((j = job_new(r, "", 0)) == NULL)
		return http_problem(r, 503, UNAVAILABLE, NULL);
	snprintf(j->user, sizeof(j->user), "%s", user);
	return job_start(r, j, explain_work);
}

enum MHD_Result
route_admin_sessions_get(struct http_req *r)
{
	const struct rt *rt = req_rt(r);
	const char *user =
	    MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "user");
	struct ea_principal *p;
	struct sess_info *v = NULL;
	enum MHD_Result ret;
	json_t *out, *list;
	size_t n = 0, i;

	if ((p = route_caller(r, "admin:sessions", &ret)) == NULL)
		return ret;
	gv_release(p);
	if (user == NULL || !authn_username_ok(user, strlen(user)))
		return http_problem(r, 400, "give ?user=NAME", NULL);
	if (sess_list_user(daemon_store, user, (long long)time(NULL),
		rt->cfg->tokens.refresh_idle, &v, &n) != SESS_OK)
		return http_problem(r, 503, UNAVAILABLE, NULL);
	list = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(list,
		    json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "sid", v[i].sid,
			"backend", v[i].backend, "client", v[i].client,
			"created", (json_int_t)v[i].created, "last_used",
			(json_int_t)v[i].last_used, "expires",
			(json_int_t)v[i].expires));
	free(v);
	out = json_pack("{s:s, s:o}", "user", user, "sessions", list);
	ret = http_reply_json(r, 200, out, NULL);
	json_decref(out);
	return ret;
}

static void
revoke_work(void *arg)
{
	struct job *j = arg;
	struct admin_job *a = j->extra;
	unsigned int count = 0;
	enum sess_result sr;
	long long now = (long long)time(NULL);

	if (a->sid[0] != '\0')
		sr = sess_revoke(daemon_store, a->sid, now);
	else
		sr = sess_revoke_user(daemon_store, j->user, now, &count);
	if (sr == SESS_NOT_FOUND)
		job_deny(j, 404, "no such session");
	else if (sr != SESS_OK)
		job_deny(j, 503, UNAVAILABLE);
	else if (a->sid[0] != '\0')
		j->status = 204;
	else {
		j->status = 200;
		j->body = json_pack(
		    "{s:s, s:i}", "user", j->user, "revoked", (int)count);
	}
	if (sr == SESS_OK)
		trail_event(LOG_INFO, "admin_change",
		    LS("request_id", j->request_id), LS("actor", a->actor),
		    LS("client", j->client),
		    LS("action",
			a->sid[0] != '\0' ? "revoke_session"
					  : "revoke_user_sessions"),
		    LS("sid", a->sid[0] != '\0' ? a->sid : NULL),
		    LS("user", a->sid[0] == '\0' ? j->user : NULL),
		    LI("count", a->sid[0] != '\0' ? 1 : count), LOG_END);
	http_resume(j->r);
}

static enum MHD_Result
revoke_sessions(struct http_req *r, const char *sid, const char *user)
{
	struct ea_principal *p;
	struct admin_job *a;
	enum MHD_Result ret;
	struct job *j;

	if ((p = route_caller(r, "admin:sessions", &ret)) == NULL)
		return ret;
	if ((j = job_new(r, "", 0)) == NULL ||
	    (a = calloc(1, sizeof(*a))) == NULL) {
		job_free(j);
		gv_release(p);
		return http_problem(r, 503, UNAVAILABLE, NULL);
	}
	j->extra = a;
	j->extra_free = admin_job_free;
	snprintf(a->actor, sizeof(a->actor), "%s", p->sub);
	gv_release(p);
	if (sid != NULL)
		snprintf(a->sid, sizeof(a->sid), "%s", sid);
	else
		snprintf(j->user, sizeof(j->user), "%s", user);
	return job_start(r, j, revoke_work);
}

enum MHD_Result
route_admin_session_delete(struct http_req *r)
{
	const char *sid = r->url + strlen(SESSIONS_PREFIX);

	if (strlen(sid) != SESS_ID_SIZE - 1)
		return http_problem(r, 404, "no such session", NULL);
	return revoke_sessions(r, sid, NULL);
}

enum MHD_Result
route_admin_sessions_delete(struct http_req *r)
{
	const char *user =
	    MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "user");

	if (user == NULL || !authn_username_ok(user, strlen(user)))
		return http_problem(r, 400, "give ?user=NAME", NULL);
	return revoke_sessions(r, NULL, user);
}
