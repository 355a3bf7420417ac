/*
 * Jobs: a request's blocking work on the worker pool, and its answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/jobs.h"
#include "log/log.h"
#include "util/sec.h"

void
job_free(void *p)
{
	struct job *j = p;

	if (j == NULL)
		return;
	if (j->secret.p != NULL)
		sec_wipe(j->secret.p, j->secret.len);
	free(j->secret.p);
	json_decref(j->body);
	if (j->extra_free != NULL)
		j->extra_free(j->extra);
	free(j);
}

struct job *
job_new(struct http_req *r, const char *secret, size_t len)
{
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	if ((j->secret.p = malloc(len + 1)) == NULL) {
		free(j);
		return NULL;
	}
	memcpy(j->secret.p, secret, len);
	j->secret.p[len] = '\0';
	j->secret.len = len;
	j->r = r;
	j->rt = req_rt(r);
	memcpy(j->client, r->client_ip, sizeof(j->client));
	memcpy(j->request_id, r->id, sizeof(j->request_id));
	return j;
}

/* Wipes the copy of a secret jansson holds for a parsed body. */
void
job_wipe_json_string(json_t *v)
{
	if (json_is_string(v))
		sec_wipe((char *)(uintptr_t)json_string_value(v),
		    json_string_length(v));
}

void
job_deny(struct job *j, unsigned int status, const char *detail)
{
	j->status = status;
	j->detail = detail;
	if (status == 401)
		j->www_authenticate = "Bearer realm=\"emailauth\"";
	if (status == 503)
		j->retry_after = "5";
}

enum MHD_Result
job_answer(struct http_req *r)
{
	struct job *j = r->ctx;
	struct http_header h[4];
	size_t n = 0;

	if (j->status == 200 && j->etag[0] != '\0')
		return http_reply_json(r, 200, j->body,
		    (struct http_header[]){{"ETag", j->etag}, {NULL, NULL}});
	if (j->status == 200)
		return http_reply_json(r, 200, j->body, NULL);
	if (j->status == 204)
		return http_reply(r, 204, NULL, "", 0, NULL);
	if (j->etag[0] != '\0')
		h[n++] = (struct http_header){"ETag", j->etag};
	if (j->www_authenticate != NULL)
		h[n++] = (struct http_header){
		    "WWW-Authenticate", j->www_authenticate};
	if (j->retry_after != NULL)
		h[n++] = (struct http_header){"Retry-After", j->retry_after};
	h[n] = (struct http_header){NULL, NULL};
	return http_problem(r, j->status != 0 ? j->status : 500, j->detail, h);
}

enum MHD_Result
job_start(struct http_req *r, struct job *j, void (*work)(void *))
{
	r->ctx = j;
	r->ctx_free = job_free;
	http_suspend(r, job_answer);
	if (authn_pool_submit(daemon_pool, work, j) == -1) {
		job_deny(j, 503, BUSY);
		j->retry_after = "1";
		log_event(LOG_WARN, "overloaded", LS("request_id", r->id),
		    LS("message", "worker queue full"), LOG_END);
		http_resume(r);
	}
	return MHD_YES;
}
