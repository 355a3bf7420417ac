/*
 * Directory servers: connections, failover, pools, health.
 * See ../shared/reference/libraries.md §3 for why each option is set.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authn/ldap_dir.h"
#include "config/config.h"
#include "log/log.h"

#define BACKOFF_MIN    2
#define BACKOFF_MAX    60
#define PROBE_INTERVAL 5
#define POOL_MAX       64
#define PASSWORD_MAX   4096

static const double buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define N_BUCKET (sizeof(buckets) / sizeof(buckets[0]))

struct server {
	char *uri;
	int ldaps;
	/* Health, under d->lock. */
	time_t down_until; /* 0: up */
	unsigned int failures;
	int answered; /* answered at least once since the last failure */
	/* Metrics. */
	atomic_ulong ok, errors;
	atomic_ulong bucket[N_BUCKET + 1];
	atomic_ullong sum_us;
};

struct conn {
	LDAP *ld;
	size_t server;
	time_t last_used;
};

struct pool {
	struct conn v[POOL_MAX];
	size_t n;
};

struct ldir {
	const struct cfg *c; /* outlives us: the runtime owns both */
	struct server *s;
	size_t n;
	struct sec_buf *bind_pw;
	pthread_mutex_t lock;
	struct pool service, user;
	size_t pool_max;
	/* The probe thread. */
	pthread_t probe;
	int probe_started;
	int stopping;
	pthread_cond_t wake;
};

static int
conn_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ||
	    rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
	    rc == LDAP_BUSY;
}

static double
since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
observe(struct server *s, int ok, double secs)
{
	size_t i;

	atomic_fetch_add(ok ? &s->ok : &s->errors, 1);
	for (i = 0; i < N_BUCKET && secs > buckets[i]; i++)
		;
	atomic_fetch_add(&s->bucket[i], 1);
	atomic_fetch_add(&s->sum_us, (unsigned long long)(secs * 1e6));
}

static void
mark(struct ldir *d, size_t i, int up)
{
	struct server *s = &d->s[i];
	unsigned int backoff;
	int was_down;

	pthread_mutex_lock(&d->lock);
	was_down = s->down_until != 0 || !s->answered;
	if (up) {
		s->down_until = 0;
		s->failures = 0;
		s->answered = 1;
	} else {
		s->failures++;
		backoff = BACKOFF_MIN
		    << (s->failures > 5 ? 5 : s->failures - 1);
		if (backoff > BACKOFF_MAX)
			backoff = BACKOFF_MAX;
		s->down_until = time(NULL) + backoff;
		s->answered = 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (up && was_down)
		log_event(
		    LOG_INFO, "ldap_server_up", LS("uri", s->uri), LOG_END);
	else if (!up && !was_down)
		log_event(
		    LOG_WARN, "ldap_server_down", LS("uri", s->uri), LOG_END);
}

/* 1 when server i may be tried now. */
static int
usable(struct ldir *d, size_t i, time_t now)
{
	int ok;

	pthread_mutex_lock(&d->lock);
	ok = d->s[i].down_until == 0 || now >= d->s[i].down_until;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/*
 * A new connection to server i: every option set here, none taken from
 * ldap.conf or the environment. Service connections are bound as bind_dn.
 * Returns NULL with the LDAP code in *rc_r.
 */
static LDAP *
conn_open(struct ldir *d, size_t i, int service, int *rc_r)
{
	const struct cfg *c = d->c;
	struct timeval nt = {(time_t)c->ldap.network_timeout, 0};
	struct timeval ot = {(time_t)c->ldap.timeout, 0};
	int v3 = LDAP_VERSION3, zero = 0, rc;
	int req =
	    c->ldap.insecure ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
	int tlsmin = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	LDAP *ld = NULL;

	if ((rc = ldap_initialize(&ld, d->s[i].uri)) != LDAP_SUCCESS)
		goto fail;
	if ((rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &nt)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &ot)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_CONNECT_ASYNC, LDAP_OPT_ON)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req)) !=
		LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tlsmin)) !=
		LDAP_OPT_SUCCESS ||
	    (c->ldap.ca_file != NULL &&
		(rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE,
		     c->ldap.ca_file)) != LDAP_OPT_SUCCESS) ||
	    /* Last: the TLS options above apply only with a new context. */
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero)) !=
		LDAP_OPT_SUCCESS)
		goto fail;
	if (!d->s[i].ldaps && c->ldap.starttls &&
	    (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS)
		goto fail;
	if (service && c->ldap.bind_dn != NULL) {
		struct berval cred = {d->bind_pw->len, (char *)d->bind_pw->p};

		rc = ldap_sasl_bind_s(ld, c->ldap.bind_dn, LDAP_SASL_SIMPLE,
		    &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS)
			goto fail;
	}
	*rc_r = LDAP_SUCCESS;
	return ld;
fail:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	/* A TLS failure shows as a connect error: treat it as one. */
	*rc_r = rc == LDAP_SUCCESS ? LDAP_OTHER : rc;
	return NULL;
}

/* An idle pooled connection to server i, or NULL. Drops stale ones. */
static LDAP *
pool_get(struct ldir *d, struct pool *p, size_t i)
{
	time_t now = time(NULL);
	LDAP *ld = NULL, *stale[POOL_MAX];
	size_t k, n_stale = 0;

	pthread_mutex_lock(&d->lock);
	for (k = p->n; k-- > 0;) {
		struct conn *cn = &p->v[k];

		if (now - cn->last_used > d->c->ldap.idle_timeout ||
		    (ld == NULL && cn->server != i && cn->server > i)) {
			/* Idle too long, or on a server after the one we now
			 * prefer: recycle it. */
			stale[n_stale++] = cn->ld;
		} else if (ld == NULL && cn->server == i) {
			ld = cn->ld;
		} else
			continue;
		p->v[k] = p->v[--p->n];
	}
	pthread_mutex_unlock(&d->lock);
	for (k = 0; k < n_stale; k++)
		ldap_unbind_ext_s(stale[k], NULL, NULL);
	return ld;
}

static void
pool_put(struct ldir *d, struct pool *p, LDAP *ld, size_t i)
{
	int full;

	pthread_mutex_lock(&d->lock);
	full = p->n >= d->pool_max;
	if (!full)
		p->v[p->n++] = (struct conn){ld, i, time(NULL)};
	pthread_mutex_unlock(&d->lock);
	if (full)
		ldap_unbind_ext_s(ld, NULL, NULL);
}

/*
 * Runs op on a connection of the pool p (service or user), in server
 * order, skipping servers in back-off. A pooled connection that fails at
 * the connection level is retried once on a fresh one before the server
 * is marked down (the server may just have closed an idle connection).
 */
static int
with_conn(struct ldir *d, int service, int (*op)(LDAP *, void *), void *arg)
{
	struct pool *p = service ? &d->service : &d->user;
	struct timespec t0;
	time_t now = time(NULL);
	size_t i;
	int rc = LDAP_SERVER_DOWN, fresh, attempt;
	LDAP *ld;

	for (i = 0; i < d->n; i++) {
		if (!usable(d, i, now))
			continue;
		for (attempt = 0; attempt < 2; attempt++) {
			clock_gettime(CLOCK_MONOTONIC, &t0);
			ld = attempt == 0 ? pool_get(d, p, i) : NULL;
			fresh = ld == NULL;
			if (fresh &&
			    (ld = conn_open(d, i, service, &rc)) == NULL)
				break;
			rc = op(ld, arg);
			if (!conn_error(rc)) {
				observe(&d->s[i], 1, since(&t0));
				mark(d, i, 1);
				pool_put(d, p, ld, i);
				return rc;
			}
			ldap_unbind_ext_s(ld, NULL, NULL);
			if (fresh)
				break;
		}
		observe(&d->s[i], 0, since(&t0));
		if (conn_error(rc) || rc == LDAP_OTHER) {
			mark(d, i, 0);
			continue;
		}
		/* Not the network: e.g. the service password is refused. */
		log_event(LOG_ERROR, "ldap_error", LS("uri", d->s[i].uri),
		    LS("error", ldap_err2string(rc)), LOG_END);
		return rc;
	}
	return conn_error(rc) || rc == LDAP_OTHER ? LDAP_SERVER_DOWN : rc;
}

int
ldir_service(struct ldir *d, int (*op)(LDAP *ld, void *arg), void *arg)
{
	return with_conn(d, 1, op, arg);
}

struct bind_arg {
	const char *dn;
	const struct sec_buf *pw;
	const struct cfg *c;
	int disabled;
};

static int
bind_op(LDAP *ld, void *arg)
{
	struct bind_arg *b = arg;
	struct berval cred = {b->pw->len, (char *)b->pw->p};
	struct timeval tv = {(time_t)b->c->ldap.timeout, 0};
	LDAPControl *req = NULL, *sctrls[2] = {NULL, NULL}, **rctrls = NULL;
	LDAPMessage *res = NULL;
	int rc, msgid, err = LDAP_OTHER;

	if (ldap_create_passwordpolicy_control(ld, &req) == LDAP_SUCCESS)
		sctrls[0] = req;
	rc = ldap_sasl_bind(
	    ld, b->dn, LDAP_SASL_SIMPLE, &cred, sctrls, NULL, &msgid);
	if (req != NULL)
		ldap_control_free(req);
	if (rc != LDAP_SUCCESS)
		return rc;
	rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (rc == 0) {
		ldap_abandon_ext(ld, msgid, NULL, NULL);
		return LDAP_TIMEOUT;
	}
	if (rc == -1) {
		ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
		return err != LDAP_SUCCESS ? err : LDAP_SERVER_DOWN;
	}
	rc = ldap_parse_result(ld, res, &err, NULL, NULL, NULL, &rctrls, 1);
	if (rc != LDAP_SUCCESS)
		return rc;
	if (rctrls != NULL) {
		LDAPControl *pp = ldap_control_find(
		    LDAP_CONTROL_PASSWORDPOLICYRESPONSE, rctrls, NULL);
		ber_int_t expire = -1, grace = -1;
		LDAPPasswordPolicyError pperr = PP_noError;

		if (pp != NULL &&
		    ldap_parse_passwordpolicy_control(
			ld, pp, &expire, &grace, &pperr) == LDAP_SUCCESS &&
		    (pperr == PP_accountLocked || pperr == PP_passwordExpired ||
			pperr == PP_changeAfterReset))
			b->disabled = 1;
		ldap_controls_free(rctrls);
	}
	return err;
}

int
ldir_user_bind(
    struct ldir *d, const char *dn, const struct sec_buf *pw, int *disabled_r)
{
	struct bind_arg b = {dn, pw, d->c, 0};
	int rc;

	/* Never an unauthenticated bind: the caller refused empty ones, and
	 * this is the last line. */
	if (pw == NULL || pw->len == 0 || dn == NULL || *dn == '\0')
		return LDAP_INVALID_CREDENTIALS;
	rc = with_conn(d, 0, bind_op, &b);
	*disabled_r = b.disabled;
	return rc;
}

int
ldir_ready(struct ldir *d)
{
	size_t i;
	int ready = 0;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->n; i++)
		ready |= d->s[i].answered && d->s[i].down_until == 0;
	pthread_mutex_unlock(&d->lock);
	return ready;
}

static int
probe_op(LDAP *ld, void *arg)
{
	char *attrs[] = {(char *)(uintptr_t) "1.1", NULL};
	struct timeval tv = {5, 0};
	LDAPMessage *res = NULL;
	int rc;

	(void)arg;
	rc = ldap_search_ext_s(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)",
	    attrs, 0, NULL, NULL, &tv, 1, &res);
	ldap_msgfree(res);
	/* Any answer, even a refusal, shows the server is there. */
	return conn_error(rc) ? rc : LDAP_SUCCESS;
}

/* Probes server i once: a pooled connection, else a fresh one. */
static int
probe_server(struct ldir *d, size_t i)
{
	LDAP *ld;
	int rc, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		ld = attempt == 0 ? pool_get(d, &d->service, i) : NULL;
		if (ld == NULL && attempt == 0)
			attempt = 1;
		if (ld == NULL && (ld = conn_open(d, i, 1, &rc)) == NULL)
			return -1;
		if (probe_op(ld, NULL) == LDAP_SUCCESS) {
			pool_put(d, &d->service, ld, i);
			return 0;
		}
		ldap_unbind_ext_s(ld, NULL, NULL);
	}
	return -1;
}

/*
 * Every PROBE_INTERVAL: read the root DSE of each server not in back-off,
 * so /readyz and the metrics tell the truth without a sign-in, a server
 * that went away is marked down before a user meets it, and one that came
 * back is used again by itself.
 */
static void *
probe_main(void *arg)
{
	struct ldir *d = arg;
	struct timespec until;
	size_t i;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		for (i = 0; i < d->n && !d->stopping; i++) {
			struct server *s = &d->s[i];

			if (s->down_until != 0 && time(NULL) < s->down_until)
				continue;
			pthread_mutex_unlock(&d->lock);
			mark(d, i, probe_server(d, i) == 0);
			pthread_mutex_lock(&d->lock);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += PROBE_INTERVAL;
		while (!d->stopping &&
		    pthread_cond_timedwait(&d->wake, &d->lock, &until) !=
			ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int
ldir_new(const struct cfg *c, struct ldir **r, char *err, size_t errlen)
{
	struct ldir *d;
	char msg[512];
	size_t i;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->s = calloc(c->ldap.uri.n, sizeof(*d->s))) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->c = c;
	d->n = c->ldap.uri.n;
	d->pool_max = (size_t)c->workers.threads;
	if (d->pool_max > POOL_MAX)
		d->pool_max = POOL_MAX;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	for (i = 0; i < d->n; i++) {
		d->s[i].uri = c->ldap.uri.v[i];
		d->s[i].ldaps = strncmp(d->s[i].uri, "ldaps://", 8) == 0;
	}
	if (c->ldap.bind_password_file != NULL &&
	    (d->bind_pw = sec_read_file(c->ldap.bind_password_file,
		 PASSWORD_MAX, msg, sizeof(msg))) == NULL) {
		snprintf(err, errlen, "bind password: %s", msg);
		ldir_free(d);
		return -1;
	}
	*r = d;
	return 0;
}

int
ldir_start(struct ldir *d)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&d->probe, NULL, probe_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -1;
	d->probe_started = 1;
	return 0;
}

static void
pool_close(struct pool *p)
{
	size_t k;

	for (k = 0; k < p->n; k++)
		ldap_unbind_ext_s(p->v[k].ld, NULL, NULL);
	p->n = 0;
}

void
ldir_free(struct ldir *d)
{
	if (d == NULL)
		return;
	if (d->probe_started) {
		pthread_mutex_lock(&d->lock);
		d->stopping = 1;
		pthread_cond_broadcast(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->probe, NULL);
	}
	pool_close(&d->service);
	pool_close(&d->user);
	sec_buf_free(&d->bind_pw);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d->s);
	free(d);
}

char *
ldir_metrics(struct ldir *d)
{
	char *out = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&out, &len);
	unsigned long cum;

	if (f == NULL)
		return NULL;
	fprintf(f,
	    "# HELP emailauth_ldap_server_up 1 when the directory "
	    "server answers.\n# TYPE emailauth_ldap_server_up gauge\n");
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->n; i++)
		fprintf(f, "emailauth_ldap_server_up{uri=\"%s\"} %d\n",
		    d->s[i].uri, d->s[i].answered && d->s[i].down_until == 0);
	pthread_mutex_unlock(&d->lock);
	fprintf(f,
	    "# HELP emailauth_ldap_operations_total Directory "
	    "operations by server and result.\n"
	    "# TYPE emailauth_ldap_operations_total counter\n");
	for (i = 0; i < d->n; i++)
		fprintf(f,
		    "emailauth_ldap_operations_total{uri=\"%s\",result=\"ok\"} "
		    "%lu\nemailauth_ldap_operations_total{uri=\"%s\",result="
		    "\"error\"} %lu\n",
		    d->s[i].uri, atomic_load(&d->s[i].ok), d->s[i].uri,
		    atomic_load(&d->s[i].errors));
	fprintf(f,
	    "# HELP emailauth_ldap_operation_duration_seconds "
	    "Directory operation latency.\n# TYPE "
	    "emailauth_ldap_operation_duration_seconds histogram\n");
	for (i = 0; i < d->n; i++) {
		cum = 0;
		for (k = 0; k <= N_BUCKET; k++) {
			cum += atomic_load(&d->s[i].bucket[k]);
			if (k < N_BUCKET)
				fprintf(f,
				    "emailauth_ldap_operation_duration_seconds_"
				    "bucket{uri=\"%s\",le=\"%g\"} %lu\n",
				    d->s[i].uri, buckets[k], cum);
			else
				fprintf(f,
				    "emailauth_ldap_operation_duration_seconds_"
				    "bucket{uri=\"%s\",le=\"+Inf\"} %lu\n",
				    d->s[i].uri, cum);
		}
		fprintf(f,
		    "emailauth_ldap_operation_duration_seconds_sum{uri=\"%s\"} "
		    "%.6f\nemailauth_ldap_operation_duration_seconds_count{uri="
		    "\"%s\"} %lu\n",
		    d->s[i].uri, (double)atomic_load(&d->s[i].sum_us) / 1e6,
		    d->s[i].uri, cum);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
