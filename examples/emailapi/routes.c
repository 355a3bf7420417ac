/*
 * The access handler: routing, the guard's check per route, the request
 * body (capped at API_BODY_MAX) and the four email handlers.
 *
 * MHD calls the handler once with the headers, once per body chunk, and
 * once more at the end of the body. Everything that needs only the
 * headers (the route, the method, the guard, Content-Type and
 * Content-Length) is decided in the first call, so that a refused upload
 * is never read.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emailapi.h"

enum route {
	R_HEALTH,
	R_LIST,
	R_ONE,
	R_LABELS,
	R_COUNT,
};

enum op {
	OP_HEALTH,
	OP_LIST,
	OP_GET,
	OP_DELETE,
	OP_LABEL,
};

/* What each route answers to, and the permission each method needs. */
static const struct {
	enum route route;
	const char *method;
	enum op op;
	const char *permission; /* NULL: public */
} ops[] = {
    {R_HEALTH, "GET", OP_HEALTH, NULL},
    {R_HEALTH, "HEAD", OP_HEALTH, NULL},
    {R_LIST, "GET", OP_LIST, "emails:read"},
    {R_LIST, "HEAD", OP_LIST, "emails:read"},
    {R_ONE, "GET", OP_GET, "emails:read"},
    {R_ONE, "HEAD", OP_GET, "emails:read"},
    {R_ONE, "DELETE", OP_DELETE, "emails:delete"},
    {R_LABELS, "POST", OP_LABEL, "emails:label"},
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* The Allow header of each route. */
static const char *const allow[R_COUNT] = {
    [R_HEALTH] = "GET, HEAD, OPTIONS",
    [R_LIST] = "GET, HEAD, OPTIONS",
    [R_ONE] = "GET, HEAD, DELETE, OPTIONS",
    [R_LABELS] = "POST, OPTIONS",
};

#define PREFIX "/api/emails/"

/*
 * Parses a positive decimal id without sign, spaces or leading zeros
 * (at most 18 digits), ending at end. 1 and the id, or 0.
 */
static int
parse_id(const char *s, const char *end, long long *id_r)
{
	long long v = 0;
	const char *p;

	if (end - s < 1 || end - s > 18 || *s == '0')
		return 0;
	for (p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
	}
	*id_r = v;
	return 1;
}

/* The route of a path and its {id}, or -1. */
static int
route_of(const char *url, long long *id_r)
{
	const char *s, *slash;

	if (strcmp(url, "/api/health") == 0)
		return R_HEALTH;
	if (strcmp(url, "/api/emails") == 0)
		return R_LIST;
	if (strncmp(url, PREFIX, strlen(PREFIX)) != 0)
		return -1;
	s = url + strlen(PREFIX);
	if ((slash = strchr(s, '/')) == NULL)
		return parse_id(s, s + strlen(s), id_r) ? R_ONE : -1;
	if (strcmp(slash, "/labels") == 0 && parse_id(s, slash, id_r))
		return R_LABELS;
	return -1;
}

/* The entry of ops for route and method, or -1. */
static int
op_of(int route, const char *method)
{
	size_t i;

	for (i = 0; i < NOPS; i++)
		if ((int)ops[i].route == route &&
		    strcmp(ops[i].method, method) == 0)
			return (int)i;
	return -1;
}

/*
 * A query argument as an integer in [min, max]: 1 with the value (def
 * when absent), 0 when present but not a plain decimal in range.
 */
static int
query_int(struct MHD_Connection *c, const char *name, long long min,
    long long max, long long def, long long *v_r)
{
	const char *s;
	long long v = 0;
	size_t i, n;

	s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (s == NULL) {
		*v_r = def;
		return 1;
	}
	n = strlen(s);
	if (n < 1 || n > 10)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return 0;
	*v_r = v;
	return 1;
}

/* 1 when Content-Type is application/json (parameters allowed). */
static int
is_json(struct MHD_Connection *c)
{
	const char *t;
	size_t n = strlen("application/json");

	t = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (t == NULL || strncasecmp(t, "application/json", n) != 0)
		return 0;
	t += n;
	while (*t == ' ' || *t == '\t')
		t++;
	return *t == '\0' || *t == ';';
}

/* 1 when the announced Content-Length is over the cap. */
static int
too_long(struct MHD_Connection *c)
{
	const char *s;
	size_t i, n;

	s = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (s == NULL)
		return 0;
	n = strlen(s);
	for (i = 0; i < n && s[i] == '0'; i++)
		;
	if (n - i > 5)
		return 1;
	return strtoul(s, NULL, 10) > API_BODY_MAX;
}

static enum MHD_Result
problem(struct api *a, struct MHD_Connection *c, struct api_req *r,
    unsigned int status, const char *detail)
{
	r->answered = 1;
	return ea_guard_problem(a->guard, c, status, detail);
}

static enum MHD_Result
json(struct api *a, struct MHD_Connection *c, struct api_req *r,
    unsigned int status, json_t *doc)
{
	enum MHD_Result ret;

	r->answered = 1;
	if (doc == NULL)
		return ea_guard_problem(
		    a->guard, c, 500, "the server could not answer");
	ret = reply_json(a, c, status, doc);
	json_decref(doc);
	return ret;
}

/* Answers a store failure other than success. */
static enum MHD_Result
store_failed(struct api *a, struct MHD_Connection *c, struct api_req *r,
    enum store_result res)
{
	switch (res) {
	case STORE_NOT_FOUND:
		return problem(a, c, r, 404, "no such message");
	case STORE_FULL:
		return problem(a, c, r, 409, "the message has too many labels");
	default:
		return problem(a, c, r, 500, "the server could not answer");
	}
}

static enum MHD_Result
do_list(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	enum store_result res;
	long long limit, offset;
	json_t *doc = NULL;

	if (!query_int(c, "limit", 1, API_LIMIT_MAX, API_LIMIT_DEF, &limit))
		return problem(
		    a, c, r, 400, "limit must be an integer from 1 to 100");
	if (!query_int(c, "offset", 0, API_OFFSET_MAX, 0, &offset))
		return problem(
		    a, c, r, 400, "offset must be a non-negative integer");
	if ((res = store_list(a->store, limit, offset, &doc)) != STORE_OK)
		return store_failed(a, c, r, res);
	return json(a, c, r, 200, doc);
}

static enum MHD_Result
do_get(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	enum store_result res;
	json_t *doc = NULL;

	if ((res = store_get(a->store, r->id, &doc)) != STORE_OK)
		return store_failed(a, c, r, res);
	return json(a, c, r, 200, doc);
}

static void
audit(const char *event, struct api_req *r, const char *label)
{
	char id[24];

	(void)snprintf(id, sizeof(id), "%lld", r->id);
	log_event("info", event, "id", id, "sub",
	    r->who != NULL ? ea_principal_subject(r->who) : "-",
	    label != NULL ? "label" : NULL, label, NULL);
}

static enum MHD_Result
do_delete(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	enum store_result res;

	if ((res = store_delete(a->store, r->id)) != STORE_OK)
		return store_failed(a, c, r, res);
	audit("email_deleted", r, NULL);
	r->answered = 1;
	return reply_empty(a, c, 204, NULL);
}

/* 1 when s is 1 to API_LABEL_MAX characters of [a-z0-9-]. */
static int
label_valid(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > API_LABEL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* The body {"label":"..."}, exactly: the label, or NULL. */
static const char *
label_of(const json_t *doc)
{
	const json_t *v;

	if (!json_is_object(doc) || json_object_size(doc) != 1 ||
	    (v = json_object_get(doc, "label")) == NULL || !json_is_string(v))
		return NULL;
	if (!label_valid(json_string_value(v), json_string_length(v)))
		return NULL;
	return json_string_value(v);
}

static enum MHD_Result
do_label(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	enum store_result res;
	enum MHD_Result ret;
	const char *label;
	json_t *doc, *labels = NULL, *out;

	if (r->too_large)
		return problem(a, c, r, 413, "the request body is too large");
	if (r->len == 0)
		return problem(a, c, r, 400, "the request body is empty");
	doc = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL)
		return problem(a, c, r, 400, "the request body is not JSON");
	if ((label = label_of(doc)) == NULL) {
		json_decref(doc);
		return problem(a, c, r, 400,
		    "the body must be {\"label\": \"...\"} with 1 to 64 of "
		    "a-z, 0-9 and -");
	}
	res = store_add_label(a->store, r->id, label, &labels);
	if (res != STORE_OK) {
		json_decref(doc);
		return store_failed(a, c, r, res);
	}
	audit("email_labelled", r, label);
	json_decref(doc);
	out =
	    json_pack("{s:I, s:o}", "id", (json_int_t)r->id, "labels", labels);
	ret = json(a, c, r, 200, out);
	return ret;
}

/* OPTIONS: a CORS preflight (answered by the guard), else Allow. */
static enum MHD_Result
preflight(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	enum MHD_Result ret;

	r->answered = 1;
	if (ea_guard_preflight(a->guard, c, allow[r->route], &ret))
		return ret;
	return reply_empty(
	    a, c, 204, (const char *const[]){"Allow", allow[r->route], NULL});
}

/* 1 when the request announces a body. */
static int
has_body(struct MHD_Connection *c)
{
	const char *cl;

	if (MHD_lookup_connection_value(
		c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return 1;
	cl = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return cl != NULL && strspn(cl, "0") != strlen(cl);
}

/*
 * What the headers decide: the route, the method, the guard, and for a
 * body its length and type. 1 when the request may go on (r->op set), 0
 * when it has been answered (*ret_r is the result).
 */
static int
decide(struct api *a, struct MHD_Connection *c, struct api_req *r,
    const char *url, const char *method, enum MHD_Result *ret_r)
{
	int o;

	r->decided = 1;
	r->route = route_of(url, &r->id);
	o = r->route == -1 ? -1 : op_of(r->route, method);
	if (o == -1 || ops[o].permission == NULL) {
		/* Public answers are rate-limited by address. */
		if (!ea_guard_allow_public(a->guard, c, ret_r)) {
			r->answered = 1;
			return 0;
		}
		if (o != -1) {
			r->op = o;
			return 1;
		}
		if (r->route == -1)
			*ret_r = problem(a, c, r, 404, "no such resource");
		else if (strcmp(method, "OPTIONS") == 0)
			*ret_r = preflight(a, c, r);
		else {
			r->answered = 1;
			*ret_r = reply_problem(a, c, 405,
			    "the method is not allowed here",
			    (const char *const[]){
				"Allow", allow[r->route], NULL});
		}
		return 0;
	}
	if (a->no_guard)
		r->who = NULL;
	else if ((r->who = ea_guard_check(
		      a->guard, c, ops[o].permission, ret_r)) == NULL) {
		r->answered = 1;
		return 0;
	}
	r->op = o;
	if (too_long(c)) {
		*ret_r = problem(a, c, r, 413, "the request body is too large");
		return 0;
	}
	if (ops[o].op == OP_LABEL) {
		if (!is_json(c)) {
			*ret_r = problem(a, c, r, 415,
			    "the request body must be application/json");
			return 0;
		}
		if ((r->body = malloc(API_BODY_MAX)) == NULL) {
			*ret_r = problem(
			    a, c, r, 503, "the server is busy; retry later");
			return 0;
		}
	}
	return 1;
}

/* The last call: the whole request is in; run the operation. */
static enum MHD_Result
finish(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
	switch (ops[r->op].op) {
	case OP_HEALTH:
		return json(a, c, r, 200, json_pack("{s:s}", "status", "ok"));
	case OP_LIST:
		return do_list(a, c, r);
	case OP_GET:
		return do_get(a, c, r);
	case OP_DELETE:
		return do_delete(a, c, r);
	case OP_LABEL:
		return do_label(a, c, r);
	default:
		return problem(a, c, r, 500, "the server could not answer");
	}
}

/*
 * A request without a body is decided and answered in the last call
 * (so the connection stays open for the next request); one with a body
 * is decided in the first call, before any of it is read, and a refused
 * body is never read.
 */
enum MHD_Result
api_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct api_req *r = *con_cls;
	enum MHD_Result ret = MHD_YES;
	size_t n = *upload_data_size;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		*con_cls = r;
		if (has_body(c) && !decide(a, c, r, url, method, &ret))
			return ret;
		return MHD_YES;
	}
	if (n > 0) {
		/*
		 * Keep what fits; past the cap, discard and answer 413 at the
		 * end (0.9.75 cannot answer mid-upload), but drop a client
		 * that goes on far past it.
		 */
		if (n > API_DISCARD_MAX - r->seen)
			return MHD_NO;
		r->seen += n;
		if (r->body == NULL || r->too_large ||
		    n > API_BODY_MAX - r->len)
			r->too_large = 1;
		else {
			memcpy(r->body + r->len, upload_data, n);
			r->len += n;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (!r->decided && !decide(a, c, r, url, method, &ret))
		return ret;
	return finish(a, c, r);
}

void
api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct api_req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	ea_principal_free(r->who);
	free(r->body);
	free(r);
	*con_cls = NULL;
}
