/*
 * emailauthd's abuse limits: request rates per client address for each
 * route group, and sign-in regulation. The tables live for the process
 * (a SIGHUP keeps their state; their sizes and rates change on restart).
 */
#ifndef EA_DAEMON_LIMITS_H
#define EA_DAEMON_LIMITS_H

#include <stdio.h>

#include "config/config.h"
#include "http/http.h"

/* Route groups (struct http_route.group). */
enum lim_group {
	LIM_AUTH, /* sign-in, refresh, logout */
	LIM_API,  /* userinfo, verify, JWKS, discovery */
	LIM_OPS,  /* health, readiness, metrics */
	LIM_NGROUPS,
};

/* Creates the tables from c. Returns 0 or -1 (out of memory). */
int limits_init(const struct cfg *c);

/* Frees them. */
void limits_free(void);

/* The server's admit hook: the request rate of the route's group. */
int limits_admit(struct http_req *r, void *cls, enum MHD_Result *ret);

/*
 * Before a sign-in: 0 when user may try from the request's client
 * address, else 1 after answering 429 (and auditing it).
 */
int limits_login_check(
    struct http_req *r, const char *user, enum MHD_Result *ret);

/*
 * Settles an admitted sign-in: outcome 1 right password, 0 refused by a
 * backend (wrong password, unknown user, locked), -1 no answer.
 */
void limits_login_result(const char *user, const char *client, int outcome);

/* Appends the limiter metrics in the Prometheus text format. */
void limits_metrics(FILE *f);

#endif
