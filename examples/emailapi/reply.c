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

enum MHD_Result
reply_problem(struct api *a, struct MHD_Connection *c, unsigned int status,
    const char *detail, const char *const *extra)
{
	/* The guard writes the problem+json body and every security header;
	 * extra adds ours (Allow on a 405). */
	return ea_guard_problem_headers(a->guard, c, status, detail, extra);
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
