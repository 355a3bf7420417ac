/*
 * libmicrohttpd glue shared by the daemon and the guard: the request
 * context, responses (security headers, CORS, problem+json), request
 * bodies with caps, JSON bodies, the client address.
 *
 * Every response our code makes goes through http_reply() (or, for a
 * response the application built itself, http_decorate()), so none leaves
 * without the header set of SPEC.md.
 */
#ifndef EA_HTTP_HTTP_H
#define EA_HTTP_HTTP_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "http/policy.h"

#define HTTP_ID_LEN 17

struct http_req;

/* Route flags. */
#define HTTP_JSON   0x01 /* the body must be application/json, parsed */
#define HTTP_PREFIX 0x02 /* path ends in '/'; matches one more segment */

struct http_route {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *path;
	unsigned int flags;
	unsigned int group; /* the application's route group (rate limits) */
	/* Answers the request: returns what http_reply() returned. */
	enum MHD_Result (*handler)(struct http_req *r);
};

/*
 * One request. Allocated when its headers arrive, freed by the server's
 * completion callback; everything hanging off it lives as long.
 */
struct http_req {
	struct MHD_Connection *conn;
	const struct http_policy *pol;  /* set by the server's begin hook */
	void *app;                      /* the application's per-request data */
	const struct http_route *route; /* NULL: no route for the path */
	int route_idx;
	const char *method;
	const char *url;
	char id[HTTP_ID_LEN];
	unsigned char client_addr[16];
	char client_ip[INET6_ADDRSTRLEN];
	unsigned char peer_addr[16];
	char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
	size_t body_discarded;
	int body_too_large;
	json_t *json;        /* the parsed body of HTTP_JSON routes */
	unsigned int status; /* what was answered; 0 until then */
	int responded;
	struct timespec start;
	/* Set by http_suspend(): answers the request once resumed. */
	enum MHD_Result (*on_resume)(struct http_req *r);
	/* The application's per-request state, freed with ctx_free. */
	void *ctx;
	void (*ctx_free)(void *ctx);
};

/* Header name/value pairs, ended by a NULL name. */
struct http_header {
	const char *name;
	const char *value;
};

/*
 * Queues a response with body (len bytes, copied) and content type ctype,
 * the security headers, CORS and X-Request-Id, plus the extra headers
 * (may be NULL). Returns MHD's result.
 */
enum MHD_Result http_reply(struct http_req *r, unsigned int status,
    const char *ctype, const char *body, size_t len,
    const struct http_header *extra);

/* http_reply() of obj serialised compactly (obj is not consumed). */
enum MHD_Result http_reply_json(struct http_req *r, unsigned int status,
    const json_t *obj, const struct http_header *extra);

/*
 * Answers an RFC 9457 problem: {"type","title","status","detail",
 * "request_id"}. detail must hold nothing internal (no path, errno,
 * directory message, secret). extra may be NULL.
 */
enum MHD_Result http_problem(struct http_req *r, unsigned int status,
    const char *detail, const struct http_header *extra);

/*
 * Adds the security headers, CORS headers for the request's Origin and
 * X-Request-Id to a response the caller built. The guard uses it on the
 * application's own responses.
 */
void http_decorate(struct MHD_Response *resp, struct MHD_Connection *conn,
    const struct http_policy *pol, const char *request_id);

/* The reason phrase of status ("Not Found"). */
const char *http_status_text(unsigned int status);

/*
 * Fills r->client_addr and r->client_ip: the peer, or the right-most
 * X-Forwarded-For hop when the peer is a trusted proxy. Returns 0 or -1.
 */
int http_client_addr(struct http_req *r);

/*
 * The request-smuggling shapes libmicrohttpd 0.9.75 lets through:
 * Content-Length with Transfer-Encoding, repeated framing headers, a
 * transfer coding other than chunked, an invalid Content-Length,
 * whitespace in a header name. Returns 1 after answering 400 with
 * Connection: close, 0 when the framing is sound.
 */
int http_check_framing(struct http_req *r, enum MHD_Result *ret);

/*
 * First-call checks on the request head: http_check_framing(), then a
 * Content-Length over the cap (413). Returns 1 when it answered, 0 when
 * the request may go on.
 */
int http_check_head(struct http_req *r, enum MHD_Result *ret);

/*
 * 1 if the Content-Type is application/json (charset utf-8 or none).
 */
int http_is_json_type(struct http_req *r);

/*
 * Takes a body chunk: appends it within the cap, or counts it as
 * discarded. Returns 0, or -1 when the client sent so much past the cap
 * that the connection should be dropped.
 */
int http_body_chunk(struct http_req *r, const char *data, size_t n);

/*
 * Parses r->body as one JSON object into r->json: duplicate keys, raw NUL
 * bytes, invalid UTF-8, trailing data are refused. An escaped NUL
 * ("\u0000") in a string is valid JSON; http_check_fields() refuses it
 * unless the field says nul_ok. Returns 0, or -1 after
 * answering 400.
 */
int http_parse_json(struct http_req *r, enum MHD_Result *ret);

/* One expected member of a JSON object body. */
struct http_field {
	const char *name;
	json_type type; /* JSON_STRING, JSON_ARRAY, JSON_OBJECT, ... */
	int required;
	/* 1: a string may hold U+0000 ("\u0000"): the route checks it
	 * itself (sign-in answers every bad credential alike). */
	int nul_ok;
};

/*
 * Checks r->json has only the n fields described, each of its type, the
 * required ones present, strings without U+0000 unless nul_ok. Returns 0, or -1
 * after answering 400.
 */
int http_check_fields(struct http_req *r, const struct http_field *f, size_t n,
    enum MHD_Result *ret);

/*
 * Suspends the request (call only from a route handler, which then returns
 * MHD_YES). Once another thread calls http_resume(), on_resume runs on an
 * HTTP thread and answers the request.
 */
void http_suspend(
    struct http_req *r, enum MHD_Result (*on_resume)(struct http_req *r));

/* Resumes a suspended request; callable from any thread. */
void http_resume(struct http_req *r);

/*
 * The Bearer token of the Authorization header: 1 found (*tok_r points
 * into the header, *len_r its length), 0 none (no header, or another
 * scheme), -1 malformed Bearer (or several Authorization headers).
 */
int http_bearer(struct http_req *r, const char **tok_r, size_t *len_r);

/* How many request headers are called name. */
unsigned int http_header_count(struct http_req *r, const char *name);

/* The value of request header name (first of several), or NULL. */
const char *http_header(struct http_req *r, const char *name);

#endif
