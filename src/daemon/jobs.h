/*
 * Blocking work of a request (backends, session writes with fsync, file
 * writes) runs on the worker pool: the handler fills a job, job_start()
 * suspends the connection and queues the work; the work decides the
 * answer (status, body, headers) and resumes the connection; job_answer()
 * then sends it on an HTTP thread. A full queue answers 503 at once.
 */
#ifndef EA_DAEMON_JOBS_H
#define EA_DAEMON_JOBS_H

#include <jansson.h>

#include "authn/authn.h"
#include "http/http.h"
#include "util/sec.h"

#define BUSY        "the service is busy; retry later"
#define UNAVAILABLE "the service is unavailable; retry later"

struct rt;

struct job {
	struct http_req *r;
	struct rt *rt; /* the request's reference */
	char user[AUTHN_USER_MAX + 1];
	struct sec_buf secret; /* password or refresh token; wiped */
	char client[INET6_ADDRSTRLEN];
	char request_id[HTTP_ID_LEN];
	void *extra; /* the route's own data, freed with extra_free */
	void (*extra_free)(void *);
	/* The answer, decided on the worker. */
	unsigned int status;
	json_t *body;
	const char *detail;
	const char *www_authenticate;
	const char *retry_after;
	char etag[80]; /* sent as ETag when not empty */
};

/* A job for r holding a copy of secret (len bytes, may be ""), or NULL. */
struct job *job_new(struct http_req *r, const char *secret, size_t len);

/* Frees the job (the request's ctx_free). */
void job_free(void *j);

/* Sets a refusal: status, a fixed detail, and the headers that go with
 * it (WWW-Authenticate on 401, Retry-After on 503). */
void job_deny(struct job *j, unsigned int status, const char *detail);

/* Suspends r and queues work(j); answers 503 when the queue is full. */
enum MHD_Result job_start(
    struct http_req *r, struct job *j, void (*work)(void *));

/* Sends what the work decided (http_suspend's on_resume). */
enum MHD_Result job_answer(struct http_req *r);

/* Wipes the copy of a secret jansson holds for a parsed body. */
void job_wipe_json_string(json_t *v);

#endif
