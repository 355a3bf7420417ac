/*
 * Responses: the security header set, CORS, problem+json.
 */
#include <stdio.h>
#include <string.h>

#include "http/http.h"

static const struct http_header security_headers[] = {
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cache-Control", "no-store"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy",
	"accelerometer=(), camera=(), display-capture=(), "
	"geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
	"midi=(), payment=(), publickey-credentials-get=(), usb=()"},
    /* The old XSS auditor could itself be abused; turn it off. */
    {"X-XSS-Protection", "0"},
    {NULL, NULL},
};

#define HSTS "max-age=31536000; includeSubDomains"

const char *
http_status_text(unsigned int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static const char *
allowed_origin(struct MHD_Connection *conn, const struct http_policy *pol)
{
	const char *o;
	size_t i;

	if (pol == NULL || pol->n_cors_origins == 0)
		return NULL;
	o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (o == NULL)
		return NULL;
	for (i = 0; i < pol->n_cors_origins; i++)
		if (strcmp(o, pol->cors_origins[i]) == 0)
			return pol->cors_origins[i];
	return NULL;
}

void
http_decorate(struct MHD_Response *resp, struct MHD_Connection *conn,
    const struct http_policy *pol, const char *request_id)
{
	const struct http_header *h;
	const char *origin;

	for (h = security_headers; h->name != NULL; h++)
		MHD_add_response_header(resp, h->name, h->value);
	if (pol != NULL && pol->hsts)
		MHD_add_response_header(
		    resp, "Strict-Transport-Security", HSTS);
	if (request_id != NULL)
		MHD_add_response_header(resp, "X-Request-Id", request_id);
	MHD_add_response_header(resp, "Vary", "Origin");
	if (conn != NULL && (origin = allowed_origin(conn, pol)) != NULL) {
		MHD_add_response_header(
		    resp, "Access-Control-Allow-Origin", origin);
		if (pol->cors_credentials)
			MHD_add_response_header(
			    resp, "Access-Control-Allow-Credentials", "true");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
		    "Retry-After, RateLimit-Limit, RateLimit-Remaining, "
		    "RateLimit-Reset, WWW-Authenticate, X-Request-Id, ETag");
	}
}

enum MHD_Result
http_reply(struct http_req *r, unsigned int status, const char *ctype,
    const char *body, size_t len, const struct http_header *extra)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(
	    len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (ctype != NULL)
		MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	http_decorate(resp, r->conn, r->pol, r->id);
	for (; extra != NULL && extra->name != NULL; extra++) {
		if (MHD_add_response_header(resp, extra->name, extra->value) !=
		    MHD_YES) {
			/* A header we meant to send cannot be sent (a value
			 * with CR/LF): never answer without it (a 200 without
			 * X-Auth-User would let a proxy through as nobody). */
			MHD_destroy_response(resp);
			if (status >= 500)
				return MHD_NO;
			return http_problem(r, 500, NULL, NULL);
		}
	}
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->status = status;
		r->responded = 1;
	}
	return ret;
}

enum MHD_Result
http_reply_json(struct http_req *r, unsigned int status, const json_t *obj,
    const struct http_header *extra)
{
	enum MHD_Result ret;
	char *s;

	s = json_dumps(obj, JSON_COMPACT);
	if (s == NULL)
		return MHD_NO;
	ret = http_reply(r, status, "application/json", s, strlen(s), extra);
	free(s);
	return ret;
}

enum MHD_Result
http_problem(struct http_req *r, unsigned int status, const char *detail,
    const struct http_header *extra)
{
	json_t *o;
	enum MHD_Result ret;

	o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank",
	    "title", http_status_text(status), "status", (int)status, "detail",
	    detail != NULL ? detail : http_status_text(status), "request_id",
	    r->id);
	if (o == NULL)
		return MHD_NO;
	{
		char *s = json_dumps(o, JSON_COMPACT);

		json_decref(o);
		if (s == NULL)
			return MHD_NO;
		ret = http_reply(
		    r, status, "application/problem+json", s, strlen(s), extra);
		free(s);
	}
	return ret;
}
