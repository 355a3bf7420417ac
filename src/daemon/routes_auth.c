/*
 * POST /v1/login, /v1/refresh, /v1/logout; GET /v1/userinfo, the JWKS and
 * the discovery document.
 *
 * Sign-in, refresh and logout block (password hashing, the directory,
 * session writes with fsync), so their handlers only check the input,
 * suspend the connection and queue a job; the job runs on the worker pool
 * and resumes the connection, whose answer() then sends what it decided.
 * Every failure to sign in gets the same 401: unknown user, wrong
 * password, locked account and malformed input look alike; the reason is
 * only in the audit log.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "daemon/jobs.h"
#include "log/audit.h"
#include "log/log.h"
#include "util/b64.h"
#include "util/sec.h"

#define BAD_CREDENTIALS "the user name or password is not correct"
#define BAD_REFRESH     "the refresh token is not valid"

static char *
join_scope(const json_t *perms)
{
	size_t i, n = 0;
	json_t *v;
	char *s;

	json_array_foreach(perms, i, v) n += json_string_length(v) + 1;
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	n = 0;
	json_array_foreach(perms, i, v)
	{
		if (n > 0)
			s[n++] = ' ';
		memcpy(s + n, json_string_value(v), json_string_length(v));
		n += json_string_length(v);
	}
	s[n] = '\0';
	return s;
}

/*
 * Builds the 200 answer of login and refresh: a new access token for u in
 * session sid, and the refresh token.
 */
static int
issue(struct job *j, const struct authn_user *u, const char *sid,
    const char *refresh, long long created, json_t *roles, json_t *perms,
    long long now)
{
	const struct cfg *c = j->rt->cfg;
	unsigned char rnd[16];
	char jti[B64URL_LEN(16) + 1], *scope = NULL, *access = NULL;
	long long refresh_in;
	json_t *claims = NULL;
	int ret = -1;

	if (sec_random(rnd, sizeof(rnd)) == -1)
		goto out;
	b64url_encode(jti, rnd, sizeof(rnd));
	if ((scope = join_scope(perms)) == NULL)
		goto out;
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:O, s:s}",
	    "iss", c->issuer, "sub", u->name, "aud", c->tokens.audience, "exp",
	    (json_int_t)(now + c->tokens.access_ttl), "iat", (json_int_t)now,
	    "nbf", (json_int_t)now, "jti", jti, "sid", sid, "roles", roles,
	    "scope", scope);
	if (claims == NULL)
		goto out;
	if (u->display != NULL)
		json_object_set_new(claims, "name", json_string(u->display));
	if (u->email != NULL)
		json_object_set_new(claims, "email", json_string(u->email));
	if ((access = tok_sign(
		 tok_keyset_get(j->rt->keys, TOK_CURRENT), claims)) == NULL)
		goto out;
	refresh_in = created + c->tokens.refresh_ttl - now;
	if (refresh_in > c->tokens.refresh_idle)
		refresh_in = c->tokens.refresh_idle;
	j->body = json_pack("{s:s, s:s, s:I, s:s, s:I, s:O, s:s}",
	    "access_token", access, "token_type", "Bearer", "expires_in",
	    (json_int_t)c->tokens.access_ttl, "refresh_token", refresh,
	    "refresh_expires_in", (json_int_t)refresh_in, "roles", roles,
	    "scope", scope);
	if (j->body == NULL)
		goto out;
	j->status = 200;
	ret = 0;
out:
	json_decref(claims);
	free(access);
	free(scope);
	return ret;
}

static void
audit(const struct job *j, const char *event, const char *outcome,
    const char *reason, const char *backend, const char *sid)
{
	trail_event(outcome[0] == 's' ? LOG_INFO : LOG_WARN, event,
	    LS("request_id", j->request_id), LS("user", j->user),
	    LS("client", j->client), LS("outcome", outcome),
	    LS("reason", reason), LS("backend", backend), LS("sid", sid),
	    LOG_END);
}

/* The user is who he says: map his groups, open a session, answer. */
static void
grant(struct job *j, const struct authn_user *u, const char *backend,
    long long now)
{
	const struct cfg *c = j->rt->cfg;
	char sid[SESS_ID_SIZE], refresh[SESS_TOKEN_SIZE];
	json_t *roles = NULL, *perms = NULL;
	int n;

	n = pol_resolve(j->rt->roles, (const char *const *)u->groups,
	    u->n_groups, &roles, &perms);
	if (n <= 0) {
		job_deny(j, n == 0 ? 403 : 503,
		    n == 0 ? "no role is granted to this account"
			   : UNAVAILABLE);
		audit(j, "login", "failure", n == 0 ? "no_role" : "error",
		    backend, NULL);
		goto out;
	}
	if (sess_create(daemon_store, u->name, backend, j->client, now,
		c->tokens.refresh_ttl, sid, refresh) != SESS_OK) {
		job_deny(j, 503, UNAVAILABLE);
		audit(j, "login", "failure", "session_store", backend, NULL);
		goto out;
	}
	if (issue(j, u, sid, refresh, now, roles, perms, now) == -1) {
		job_deny(j, 503, UNAVAILABLE);
		sess_revoke(daemon_store, sid, now);
		audit(j, "login", "failure", "token", backend, sid);
		goto out;
	}
	audit(j, "login", "success", NULL, backend, sid);
out:
	sec_wipe(refresh, sizeof(refresh));
	json_decref(roles);
	json_decref(perms);
}

static void
login_work(void *arg)
{
	struct job *j = arg;
	struct rt *rt = j->rt;
	struct authn_user *u = NULL;
	enum authn_result res = AUTHN_UNKNOWN;
	const char *backend = NULL;
	long long now;
	size_t i;

	/* A store that cannot keep the session would turn a right password
	 * alone into a 503, and so tell a guesser it was right: when the
	 * store does not answer (Redis down), check no password at all. */
	if (sess_ping(daemon_store) != 0) {
		sec_wipe(j->secret.p, j->secret.len);
		limits_login_result(j->user, j->client, -1);
		job_deny(j, 503, UNAVAILABLE);
		audit(j, "login", "failure", "session_store", NULL, NULL);
		http_resume(j->r);
		return;
	}
	for (i = 0; i < rt->n_backends; i++) {
		res = rt->backends[i].be->authenticate(
		    rt->backends[i].state, j->user, &j->secret, j->client, &u);
		backend = rt->backends[i].be->name;
		if (res != AUTHN_UNKNOWN)
			break;
	}
	sec_wipe(j->secret.p, j->secret.len);
	now = (long long)time(NULL);
	limits_login_result(j->user, j->client,
	    res == AUTHN_OK                                   ? 1
		: res == AUTHN_TEMPFAIL || res == AUTHN_ERROR ? -1
							      : 0);
	switch (res) {
	case AUTHN_OK:
		grant(j, u, backend, now);
		break;
	case AUTHN_UNKNOWN:
	case AUTHN_DENIED:
	case AUTHN_DISABLED:
		job_deny(j, 401, BAD_CREDENTIALS);
		audit(j, "login", "failure", authn_result_name(res),
		    res == AUTHN_UNKNOWN ? NULL : backend, NULL);
		break;
	case AUTHN_TEMPFAIL:
	case AUTHN_ERROR:
		job_deny(j, 503, UNAVAILABLE);
		audit(j, "login", "failure", authn_result_name(res), backend,
		    NULL);
		break;
	}
	authn_user_free(&u);
	http_resume(j->r);
}

enum MHD_Result
route_login(struct http_req *r)
{
	static const struct http_field fields[] = {
	    {"username", JSON_STRING, 1, 1},
	    {"password", JSON_STRING, 1, 1},
	};
	json_t *user, *pass;
	enum MHD_Result ret;
	struct job *j;
	size_t ulen;

	if (http_check_fields(r, fields, 2, &ret) == -1)
		return ret;
	user = json_object_get(r->json, "username");
	pass = json_object_get(r->json, "password");
	ulen = json_string_length(user);
	/* authn_*_ok() refuse U+0000 (nul_ok above lets it through to here,
	 * so it gets the 401 of every other bad credential). */
	if (!authn_username_ok(json_string_value(user), ulen) ||
	    !authn_password_ok(
		json_string_value(pass), json_string_length(pass))) {
		job_wipe_json_string(pass);
		trail_event(LOG_WARN, "login", LS("request_id", r->id),
		    LS("client", r->client_ip), LS("outcome", "failure"),
		    LS("reason", "invalid_input"), LOG_END);
		return http_problem(r, 401, BAD_CREDENTIALS,
		    (struct http_header[]){
			{"WWW-Authenticate", "Bearer realm=\"emailauth\""},
			{NULL, NULL}});
	}
	if (limits_login_check(r, json_string_value(user), &ret)) {
		job_wipe_json_string(pass);
		return ret;
	}
	j = job_new(r, json_string_value(pass), json_string_length(pass));
	job_wipe_json_string(pass);
	if (j == NULL)
		return http_problem(r, 503, UNAVAILABLE, NULL);
	memcpy(j->user, json_string_value(user), ulen);
	j->user[ulen] = '\0';
	return job_start(r, j, login_work);
}

/* Ends a session whose user may no longer have a token. */
static void
refuse_refresh(struct job *j, const struct sess_info *info, const char *reason,
    long long now)
{
	if (info != NULL)
		sess_revoke(daemon_store, info->sid, now);
	job_deny(j, 401, BAD_REFRESH);
	j->www_authenticate = "Bearer error=\"invalid_token\"";
	audit(j, "refresh", "failure", reason,
	    info != NULL ? info->backend : NULL, info ? info->sid : NULL);
}

static void
refresh_work(void *arg)
{
	struct job *j = arg;
	const struct cfg *c = j->rt->cfg;
	const struct rt_backend *b;
	struct authn_user *u = NULL;
	struct sess_info info;
	char next[SESS_TOKEN_SIZE];
	json_t *roles = NULL, *perms = NULL;
	enum sess_result sr;
	enum authn_result res;
	long long now = (long long)time(NULL);

	/* First see whose session it is, without rotating the token, so a
	 * directory that cannot answer now costs the client nothing. */
	sr = sess_peek(daemon_store, (const char *)j->secret.p, now,
	    c->tokens.refresh_idle, &info);
	if (sr != SESS_OK) {
		if (sr == SESS_ERROR) {
			job_deny(j, 503, UNAVAILABLE);
			audit(j, "refresh", "failure", "session_store", NULL,
			    NULL);
		} else
			refuse_refresh(j, NULL,
			    sr == SESS_REUSED        ? "token_reused"
				: sr == SESS_EXPIRED ? "session_expired"
				: sr == SESS_REVOKED ? "session_revoked"
						     : "unknown_token",
			    now);
		goto out;
	}
	snprintf(j->user, sizeof(j->user), "%s", info.sub);
	if ((b = rt_backend(j->rt, info.backend)) == NULL) {
		refuse_refresh(j, &info, "backend_removed", now);
		goto out;
	}
	res = b->be->lookup(b->state, info.sub, &u);
	if (res == AUTHN_TEMPFAIL || res == AUTHN_ERROR) {
		job_deny(j, 503, UNAVAILABLE);
		audit(j, "refresh", "failure", authn_result_name(res),
		    info.backend, info.sid);
		goto out;
	}
	if (res != AUTHN_OK) {
		refuse_refresh(j, &info, authn_result_name(res), now);
		goto out;
	}
	if (pol_resolve(j->rt->roles, (const char *const *)u->groups,
		u->n_groups, &roles, &perms) <= 0) {
		refuse_refresh(j, &info, "no_role", now);
		goto out;
	}
	sr = sess_rotate(daemon_store, (const char *)j->secret.p, now,
	    c->tokens.refresh_idle, next, &info);
	if (sr != SESS_OK) {
		if (sr == SESS_ERROR) {
			job_deny(j, 503, UNAVAILABLE);
			audit(j, "refresh", "failure", "session_store",
			    info.backend, info.sid);
		} else
			refuse_refresh(j, NULL, "token_reused", now);
		goto out;
	}
	if (issue(j, u, info.sid, next, info.created, roles, perms, now) ==
	    -1) {
		job_deny(j, 503, UNAVAILABLE);
		goto out;
	}
	audit(j, "refresh", "success", NULL, info.backend, info.sid);
out:
	sec_wipe(next, sizeof(next));
	sec_wipe(j->secret.p, j->secret.len);
	json_decref(roles);
	json_decref(perms);
	authn_user_free(&u);
	http_resume(j->r);
}

/* Takes {"refresh_token": "..."}; answers itself on bad input. */
static struct job *
refresh_job(struct http_req *r, enum MHD_Result *ret)
{
	static const struct http_field fields[] = {
	    {"refresh_token", JSON_STRING, 1, 0},
	};
	json_t *t;
	struct job *j;

	if (http_check_fields(r, fields, 1, ret) == -1)
		return NULL;
	t = json_object_get(r->json, "refresh_token");
	j = job_new(r, json_string_value(t), json_string_length(t));
	job_wipe_json_string(t);
	if (j == NULL)
		*ret = http_problem(r, 503, UNAVAILABLE, NULL);
	return j;
}

enum MHD_Result
route_refresh(struct http_req *r)
{
	enum MHD_Result ret;
	struct job *j;

	if ((j = refresh_job(r, &ret)) == NULL)
		return ret;
	return job_start(r, j, refresh_work);
}

static void
logout_work(void *arg)
{
	struct job *j = arg;

	if (sess_revoke_token(daemon_store, (const char *)j->secret.p,
		(long long)time(NULL)) == SESS_ERROR) {
		/* The session may live on: do not tell the client it ended. */
		job_deny(j, 503, UNAVAILABLE);
		audit(j, "logout", "failure", "session_store", NULL, NULL);
	} else {
		j->status = 204;
		audit(j, "logout", "success", NULL, NULL, NULL);
	}
	sec_wipe(j->secret.p, j->secret.len);
	http_resume(j->r);
}

enum MHD_Result
route_logout(struct http_req *r)
{
	enum MHD_Result ret;
	struct job *j;

	if ((j = refresh_job(r, &ret)) == NULL)
		return ret;
	return job_start(r, j, logout_work);
}

static enum MHD_Result
invalid_token(struct http_req *r, int sent)
{
	return http_problem(r, 401,
	    sent ? "the access token is not valid"
		 : "an access token is required",
	    (struct http_header[]){{"WWW-Authenticate",
				       sent ? "Bearer error=\"invalid_token\""
					    : "Bearer realm=\"emailauth\""},
		{NULL, NULL}});
}

enum MHD_Result
route_userinfo(struct http_req *r)
{
	const struct rt *rt = req_rt(r);
	const struct cfg *c = rt->cfg;
	struct tok_expect e;
	struct sess_info info;
	enum tok_err why;
	enum sess_result sr;
	enum MHD_Result ret;
	json_t *claims = NULL, *o, *v;
	const char *tok, *sid;
	size_t len;
	int rc;

	if ((rc = http_bearer(r, &tok, &len)) != 1)
		return invalid_token(r, rc == -1);
	e.issuer = c->issuer;
	e.audience = c->tokens.audience;
	e.now = (long long)time(NULL);
	e.leeway = c->tokens.leeway;
	if (tok_verify(rt->keys, tok, len, &e, &claims, &why) == -1) {
		log_event(LOG_INFO, "token_refused", LS("request_id", r->id),
		    LS("reason", tok_err_name(why)), LS("client", r->client_ip),
		    LOG_END);
		return invalid_token(r, 1);
	}
	sid = json_string_value(json_object_get(claims, "sid"));
	sr = sid != NULL
	    ? sess_get(daemon_store, sid, e.now, c->tokens.refresh_idle, &info)
	    : SESS_NOT_FOUND;
	if (sr != SESS_OK) {
		json_decref(claims);
		if (sr == SESS_ERROR)
			return http_problem(r, 503, UNAVAILABLE, NULL);
		return invalid_token(r, 1);
	}
	o = json_object();
	json_object_set(o, "sub", json_object_get(claims, "sub"));
	if ((v = json_object_get(claims, "name")) != NULL)
		json_object_set(o, "name", v);
	if ((v = json_object_get(claims, "email")) != NULL)
		json_object_set(o, "email", v);
	if ((v = json_object_get(claims, "roles")) != NULL)
		json_object_set(o, "roles", v);
	if ((v = json_object_get(claims, "scope")) != NULL)
		json_object_set(o, "scope", v);
	ret = http_reply_json(r, 200, o, NULL);
	json_decref(o);
	json_decref(claims);
	return ret;
}

enum MHD_Result
route_jwks(struct http_req *r)
{
	const struct rt *rt = req_rt(r);

	return http_reply(
	    r, 200, "application/json", rt->jwks, rt->jwks_len, NULL);
}

enum MHD_Result
route_discovery(struct http_req *r)
{
	const struct rt *rt = req_rt(r);

	return http_reply(
	    r, 200, "application/json", rt->discovery, rt->discovery_len, NULL);
}
