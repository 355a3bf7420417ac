/*
 * Responses and the log. Every response leaves through the guard: its
 * problems (ea_guard_problem()) or its decoration (ea_guard_decorate()),
 * so each carries the security headers, CORS and X-Request-Id.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emailapi.h"

/* Adds extra headers (name, value, ..., NULL). 0 / -1. */
static int
add_extra(struct MHD_Response *resp, const char *const *extra)
{
	for (; extra != NULL && extra[0] != NULL; extra += 2)
		if (MHD_add_response_header(resp, extra[0], extra[1]) !=
		    MHD_YES)
			return -1;
	return 0;
}

/* Queues resp and drops our reference. */
static enum MHD_Result
queue(struct MHD_Connection *c, unsigned int status, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
reply_json(struct api *a, struct MHD_Connection *c, unsigned int status,
    const json_t *doc)
{
	struct MHD_Response *resp;
	char *s;

	if ((s = json_dumps(doc, JSON_COMPACT)) == NULL)
		return ea_guard_problem(
		    a->guard, c, 500, "the server could not answer");
	resp = MHD_create_response_from_buffer(
	    strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(s);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		"application/json") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ea_guard_decorate(a->guard, c, resp);
	return queue(c, status, resp);
}

enum MHD_Result
reply_empty(struct api *a, struct MHD_Connection *c, unsigned int status,
    const char *const *extra)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(
	    0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	if (add_extra(resp, extra) == -1) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ea_guard_decorate(a->guard, c, resp);
	return queue(c, status, resp);
}

/* MHD_KeyValueIterator: copies one header onto the response in cls. */
static enum MHD_Result
copy_header(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	return MHD_add_response_header(cls, key, value);
}

enum MHD_Result
reply_problem(struct api *a, struct MHD_Connection *c, unsigned int status,
    const char *detail, const char *const *extra)
{
	struct MHD_Response *scratch = NULL, *resp = NULL;
	enum MHD_Result ret = MHD_NO;
	const char *id;
	json_t *doc = NULL;
	char *s = NULL;

	if (extra == NULL || extra[0] == NULL)
		return ea_guard_problem(a->guard, c, status, detail);
	/*
	 * ea_guard_problem() takes no extra header, so decorate an empty
	 * response to learn the request id and the headers, and copy them
	 * onto ours (the body's request_id must match X-Request-Id).
	 */
	scratch = MHD_create_response_from_buffer(
	    0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
	if (scratch == NULL)
		goto out;
	ea_guard_decorate(a->guard, c, scratch);
	if ((id = MHD_get_response_header(scratch, "X-Request-Id")) == NULL)
		id = "";
	doc = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank",
	    "title", MHD_get_reason_phrase_for(status), "status", (int)status,
	    "detail", detail, "request_id", id);
	if (doc == NULL || (s = json_dumps(doc, JSON_COMPACT)) == NULL)
		goto out;
	resp = MHD_create_response_from_buffer(
	    strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		goto out;
	s = NULL;
	if (MHD_get_response_headers(scratch, copy_header, resp) < 0 ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		"application/problem+json") != MHD_YES ||
	    add_extra(resp, extra) == -1)
		goto out;
	ret = MHD_queue_response(c, status, resp);
out:
	if (resp != NULL)
		MHD_destroy_response(resp);
	if (scratch != NULL)
		MHD_destroy_response(scratch);
	json_decref(doc);
	free(s);
	return ret;
}

enum MHD_Result
reply_preflight(
    struct api *a, struct MHD_Connection *c, const char *allow, int method_ok)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(
	    0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	/* The guard adds Access-Control-Allow-Origin only for its list. */
	ea_guard_decorate(a->guard, c, resp);
	if (MHD_get_response_header(resp, "Access-Control-Allow-Origin") ==
	    NULL) {
		MHD_destroy_response(resp);
		return ea_guard_problem(a->guard, c, 403, "origin not allowed");
	}
	if (!method_ok) {
		MHD_destroy_response(resp);
		return reply_problem(a, c, 405,
		    "the method is not allowed here",
		    (const char *const[]){"Allow", allow, NULL});
	}
	if (MHD_add_response_header(
		resp, "Access-Control-Allow-Methods", allow) != MHD_YES ||
	    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
		"Authorization, Content-Type") != MHD_YES ||
	    MHD_add_response_header(resp, "Access-Control-Max-Age", "600") !=
		MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return queue(c, 204, resp);
}

/* Writes one line with one write(2), so lines never interleave. */
static void
emit(json_t *o)
{
	char *s;
	size_t n;

	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		return;
	n = strlen(s);
	s[n] = '\n'; /* json_dumps' NUL becomes the newline */
	(void)!write(STDERR_FILENO, s, n + 1);
	free(s);
}

static void
vlog_event(const char *level, const char *event, va_list ap)
{
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	const char *k, *v;
	json_t *o, *s;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		ts[0] = '\0';
	o = json_pack(
	    "{s:s, s:s, s:s}", "ts", ts, "level", level, "event", event);
	if (o == NULL)
		return;
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		/* json_string() refuses invalid UTF-8: keep the line. */
		if ((s = v != NULL ? json_string(v) : json_null()) == NULL)
			s = json_string("(not UTF-8)");
		if (json_object_set_new(o, k, s) == -1)
			break;
	}
	emit(o);
	json_decref(o);
}

void
log_event(const char *level, const char *event, ...)
{
	va_list ap;

	va_start(ap, event);
	vlog_event(level, event, ap);
	va_end(ap);
}

void
log_guard(void *cls, enum ea_log_level level, const char *message)
{
	static const char *const names[] = {
	    [EA_LOG_DEBUG] = "debug",
	    [EA_LOG_INFO] = "info",
	    [EA_LOG_WARN] = "warn",
	    [EA_LOG_ERROR] = "error",
	};

	(void)cls;
	log_event((unsigned int)level <= EA_LOG_ERROR ? names[level] : "error",
	    "guard", "message", message, NULL);
}
