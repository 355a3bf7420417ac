/*
 * Request heads and bodies: smuggling shapes, caps, JSON, client address.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "util/net.h"

/* Past the cap, a chunked body is read and dropped up to this many more
 * bytes so the client gets its 413; beyond that the connection is cut. */
#define DISCARD_MAX (1024 * 1024)

const char *
http_header(struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct xff_scan {
	const char *last;
};

static enum MHD_Result
xff_last(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct xff_scan *x = cls;

	(void)kind;
	if (strcasecmp(key, "X-Forwarded-For") == 0 && value != NULL)
		x->last = value;
	return MHD_YES;
}

int
http_client_addr(struct http_req *r)
{
	const union MHD_ConnectionInfo *ci;
	struct xff_scan x = {NULL};
	char hop[INET6_ADDRSTRLEN + 8];
	const char *p, *e;
	unsigned char a[16];
	size_t n;

	ci = MHD_get_connection_info(
	    r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL ||
	    net_sockaddr(ci->client_addr, r->peer_addr, r->client_ip,
		sizeof(r->client_ip)) == -1)
		return -1;
	memcpy(r->client_addr, r->peer_addr, 16);
	if (r->pol == NULL || r->pol->n_trusted_proxies == 0 ||
	    !net_cidr_match(r->pol->trusted_proxies, r->pol->n_trusted_proxies,
		r->peer_addr))
		return 0;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, xff_last, &x);
	if (x.last == NULL)
		return 0;
	/* The right-most hop is the one our trusted proxy appended. */
	p = strrchr(x.last, ',');
	p = p != NULL ? p + 1 : x.last;
	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - p);
	if (n == 0 || n >= sizeof(hop))
		return 0;
	memcpy(hop, p, n);
	hop[n] = '\0';
	if (net_addr_parse(hop, a) == -1)
		return 0;
	memcpy(r->client_addr, a, 16);
	net_addr_text(a, r->client_ip, sizeof(r->client_ip));
	return 0;
}

struct header_count {
	const char *name;
	unsigned int n;
};

static enum MHD_Result
count_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_count *c = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, c->name) == 0)
		c->n++;
	return MHD_YES;
}

struct head_scan {
	unsigned int n_cl;
	unsigned int n_te;
	int bad_name; /* whitespace in a header name ("Name : value") */
};

static enum MHD_Result
head_count(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct head_scan *h = cls;

	(void)kind;
	(void)value;
	if (strpbrk(key, " \t") != NULL)
		h->bad_name = 1;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		h->n_cl++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		h->n_te++;
	return MHD_YES;
}

/* A 400 that also closes the connection: after a framing error nothing
 * that follows on it may be read as another request. */
static enum MHD_Result
framing_error(struct http_req *r, const char *detail)
{
	return http_problem(r, 400, detail,
	    (struct http_header[]){{"Connection", "close"}, {NULL, NULL}});
}

int
http_check_framing(struct http_req *r, enum MHD_Result *ret)
{
	struct head_scan h = {0, 0, 0};
	const char *cl, *te;
	char *end;

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, head_count, &h);
	/* RFC 9112 5.1: whitespace between a field name and the colon must
	 * be refused ("Transfer-Encoding : chunked" is read differently by
	 * different parsers: a smuggling shape). */
	if (h.bad_name) {
		*ret = framing_error(r, "malformed header name");
		return 1;
	}
	if (h.n_cl > 0 && h.n_te > 0) {
		*ret = framing_error(
		    r, "Content-Length and Transfer-Encoding together");
		return 1;
	}
	if (h.n_cl > 1 || h.n_te > 1) {
		*ret = framing_error(r, "repeated framing header");
		return 1;
	}
	te = http_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (h.n_te == 1 && (te == NULL || strcasecmp(te, "chunked") != 0)) {
		*ret = framing_error(r, "unsupported Transfer-Encoding");
		return 1;
	}
	cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL &&
	    (!isdigit((unsigned char)*cl) ||
		(strtoull(cl, &end, 10), *end != '\0'))) {
		*ret = framing_error(r, "invalid Content-Length");
		return 1;
	}
	return 0;
}

int
http_check_head(struct http_req *r, enum MHD_Result *ret)
{
	const char *cl;

	if (http_check_framing(r, ret))
		return 1;
	cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && strtoull(cl, NULL, 10) > r->pol->max_body) {
		*ret =
		    http_problem(r, 413, "the request body is too large", NULL);
		return 1;
	}
	return 0;
}

int
http_is_json_type(struct http_req *r)
{
	const char *ct = http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *p;
	size_t n;

	if (ct == NULL)
		return 0;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n != 16 || strncasecmp(ct, "application/json", 16) != 0)
		return 0;
	p = ct + strcspn(ct, ";");
	while (*p == ';') {
		const char *q;
		size_t m;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		m = strcspn(p, ";");
		q = p;
		if (m >= 8 && strncasecmp(q, "charset=", 8) == 0) {
			q += 8;
			m -= 8;
			if (m >= 2 && *q == '"' && q[m - 1] == '"') {
				q++;
				m -= 2;
			}
			while (m > 0 && (q[m - 1] == ' ' || q[m - 1] == '\t'))
				m--;
			if (!(m == 5 && strncasecmp(q, "utf-8", 5) == 0))
				return 0;
		}
		p += strcspn(p, ";");
	}
	return 1;
}

int
http_body_chunk(struct http_req *r, const char *data, size_t n)
{
	size_t cap = r->pol->max_body;

	if (!r->body_too_large && n <= cap - r->body_len) {
		if (r->body == NULL && (r->body = malloc(cap + 1)) == NULL)
			return -1;
		memcpy(r->body + r->body_len, data, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
		return 0;
	}
	r->body_too_large = 1;
	r->body_discarded += n;
	return r->body_discarded > DISCARD_MAX ? -1 : 0;
}

int
http_parse_json(struct http_req *r, enum MHD_Result *ret)
{
	json_error_t jerr;
	json_t *j;

	if (r->body_len == 0) {
		*ret = http_problem(r, 400, "the request body is empty", NULL);
		return -1;
	}
	if (memchr(r->body, '\0', r->body_len) != NULL) {
		*ret = http_problem(
		    r, 400, "the request body has a NUL byte", NULL);
		return -1;
	}
	j = json_loadb(r->body, r->body_len,
	    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (j == NULL) {
		*ret = http_problem(r, 400,
		    "the request body is not valid JSON (or repeats a key)",
		    NULL);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*ret = http_problem(
		    r, 400, "the request body must be a JSON object", NULL);
		return -1;
	}
	r->json = j;
	return 0;
}

static const char *
type_name(json_type t)
{
	switch (t) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

int
http_check_fields(struct http_req *r, const struct http_field *f, size_t n,
    enum MHD_Result *ret)
{
	char detail[160];
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(r->json, key, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(key, f[i].name) == 0)
				break;
		if (i == n) {
			*ret = http_problem(r, 400,
			    "the request body has an unknown field", NULL);
			return -1;
		}
		if (json_typeof(v) != f[i].type &&
		    !(f[i].type == JSON_TRUE && json_is_boolean(v))) {
			snprintf(detail, sizeof(detail), "'%s' must be %s",
			    f[i].name, type_name(f[i].type));
			*ret = http_problem(r, 400, detail, NULL);
			return -1;
		}
		if (json_is_string(v) && !f[i].nul_ok &&
		    memchr(json_string_value(v), '\0', json_string_length(v)) !=
			NULL) {
			snprintf(detail, sizeof(detail),
			    "'%s' must not contain U+0000", f[i].name);
			*ret = http_problem(r, 400, detail, NULL);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (f[i].required &&
		    json_object_get(r->json, f[i].name) == NULL) {
			snprintf(detail, sizeof(detail), "'%s' is missing",
			    f[i].name);
			*ret = http_problem(r, 400, detail, NULL);
			return -1;
		}
	}
	return 0;
}

unsigned int
http_header_count(struct http_req *r, const char *name)
{
	struct header_count c = {name, 0};

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_cb, &c);
	return c.n;
}

int
http_bearer(struct http_req *r, const char **tok_r, size_t *len_r)
{
	const char *h = http_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *p, *e;

	if (h == NULL)
		return 0;
	/* Two Authorization headers: which one would a proxy have meant? */
	if (http_header_count(r, MHD_HTTP_HEADER_AUTHORIZATION) > 1)
		return -1;
	/* Another scheme (Basic, ...) is no Bearer token at all (RFC 6750
	 * §3.1: no error code then). */
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\0'))
		return 0;
	p = h + 6;
	while (*p == ' ')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == p || memchr(p, ' ', (size_t)(e - p)) != NULL)
		return -1;
	*tok_r = p;
	*len_r = (size_t)(e - p);
	return 1;
}
