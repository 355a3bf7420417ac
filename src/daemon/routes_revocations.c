/*
 * GET /v1/revocations?since=UNIX_SECONDS: the revocation feed the guards
 * poll, so that a logout or an admin revoke stops a session's access
 * tokens within seconds instead of at their exp.
 *
 * Answers {"now","revoked":[{"sid","revoked_at","exp"}...],"more"} and,
 * when more is true, "next": the since of the next page. Sessions are
 * listed oldest revocation first, at most PAGE_MAX per page, and a page
 * never ends inside a second (so that since = next loses nothing); exp is
 * the latest exp an access token of the session can carry. since older
 * than the longest access-token lifetime plus the largest leeway is
 * raised to it: older revocations concern no live token.
 *
 * Who may read it: a client address in listen.revocations_allow (default
 * loopback, like /metrics), or else a valid access token of a live
 * session granting emailauth:revocations. The feed holds only opaque
 * session ids, but the set of revoked sessions and their timing is no
 * business of the public. Nothing here blocks on the writer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "log/log.h"
#include "policy/policy.h"
#include "util/net.h"

#define FEED_PERMISSION "emailauth:revocations"
#define PAGE_MAX        1000
#define SECOND_MAX      10000 /* one second's revocations on one page */
#define LEEWAY_MAX      300   /* the largest leeway a guard may allow */
#define SINCE_DIGITS    18

/*
 * 1 when the client may read the feed; else 0 after answering 401 or
 * 403 into *ret.
 */
static int
feed_allowed(struct http_req *r, enum MHD_Result *ret)
{
	const struct cfg *c = req_rt(r)->cfg;
	struct ea_principal *p;

	if (net_cidr_match(c->listen.revocations_allow.v,
		c->listen.revocations_allow.n, r->client_addr))
		return 1;
	if ((p = route_caller(r, FEED_PERMISSION, ret)) == NULL)
		return 0;
	gv_release(p);
	return 1;
}

/* Parses since: 1 to SINCE_DIGITS decimal digits. 0 or -1. */
static int
parse_since(const char *s, long long *r)
{
	long long v = 0;
	size_t i, n;

	if (s == NULL)
		return -1;
	n = strlen(s);
	if (n == 0 || n > SINCE_DIGITS)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*r = v;
	return 0;
}

static enum MHD_Result
count_since(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	unsigned int *n = cls;

	(void)kind, (void)value;
	if (key != NULL && strcmp(key, "since") == 0)
		(*n)++;
	return MHD_YES;
}

/*
 * How many of the n entries of v (oldest first) go on a page of at most
 * max when more entries follow: the page ends before the second of entry
 * max, unless that would leave it empty. 0 when v[0..max] lie in one
 * second.
 */
static size_t
page_cut(const struct sess_revocation *v, size_t n, size_t max)
{
	size_t cut = max;

	if (n <= max)
		return n;
	while (cut > 0 && v[cut - 1].revoked_at == v[max].revoked_at)
		cut--;
	return cut;
}

enum MHD_Result
route_revocations(struct http_req *r)
{
	const struct cfg *c = req_cfg(r);
	struct sess_revocation *v = NULL;
	const char *arg;
	long long now = (long long)time(NULL), since = 0, floor, exp, last;
	unsigned int nargs = 0;
	size_t n = 0, cut, i, arg_len = 0;
	json_t *list = NULL, *out = NULL;
	enum MHD_Result ret;
	int more = 0;

	if (!feed_allowed(r, &ret))
		return ret;
	if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND,
		"since", 5, &arg, &arg_len) != MHD_YES)
		arg = NULL;
	MHD_get_connection_values(
	    r->conn, MHD_GET_ARGUMENT_KIND, count_since, &nargs);
	/* A decoded %00 would end the string early: the length tells. */
	if (nargs > 1 ||
	    (arg != NULL &&
		(strlen(arg) != arg_len || parse_since(arg, &since) == -1)))
		return http_problem(r, 400,
		    "since must be one count of seconds since 1970", NULL);
	floor = now - c->tokens.access_ttl - LEEWAY_MAX;
	if (since < floor)
		since = floor;
	if (sess_revoked_since(daemon_store, since, PAGE_MAX + 1, &v, &n) !=
	    SESS_OK)
		goto unavailable;
	cut = page_cut(v, n, PAGE_MAX);
	if (cut == 0 && n > 0) {
		/* More than a page in one second: answer the whole second. */
		free(v);
		v = NULL;
		if (sess_revoked_since(
			daemon_store, since, SECOND_MAX + 1, &v, &n) != SESS_OK)
			goto unavailable;
		cut = page_cut(v, n, SECOND_MAX);
		if (cut == 0 && n > 0) {
			/* Cutting the second would hide revocations from
			 * the guards: none rather than some (fail closed;
			 * their copy goes stale and they deny). */
			log_event(LOG_ERROR, "revocations_second_too_big",
			    LI("second", v[0].revoked_at),
			    LI("max", SECOND_MAX), LOG_END);
			goto unavailable;
		}
	}
	more = cut < n;
	if ((list = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < cut; i++) {
		/* No access token of the session was signed after it was
		 * revoked or ended. */
		exp = (v[i].revoked_at < v[i].expires ? v[i].revoked_at
						      : v[i].expires) +
		    c->tokens.access_ttl;
		if (exp < now - LEEWAY_MAX)
			continue;
		if (json_array_append_new(list,
			json_pack("{s:s, s:I, s:I}", "sid", v[i].sid,
			    "revoked_at", (json_int_t)v[i].revoked_at, "exp",
			    (json_int_t)exp)) == -1)
			goto nomem;
	}
	out = json_pack("{s:I, s:O, s:b}", "now", (json_int_t)now, "revoked",
	    list, "more", more);
	if (out == NULL)
		goto nomem;
	if (more) {
		last = v[cut - 1].revoked_at;
		if (json_object_set_new(out, "next", json_integer(last + 1)) ==
		    -1)
			goto nomem;
	}
	ret = http_reply_json(r, 200, out, NULL);
	goto done;
nomem:
	ret = http_problem(r, 500, NULL, NULL);
	goto done;
unavailable:
	ret = http_problem(r, 503, "the session store is unavailable",
	    (struct http_header[]){{"Retry-After", "5"}, {NULL, NULL}});
done:
	json_decref(list);
	json_decref(out);
	free(v);
	return ret;
}
