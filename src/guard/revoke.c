/*
 * The revocation set: a sorted array of (sid, exp), replaced whole under
 * a read-write lock, so a check is a binary search under a read lock.
 *
 * The poller asks for revocations since the daemon's clock at its
 * previous complete poll minus OVERLAP (a revocation is stamped before
 * its commit, and nodes' clocks differ), follows "next" while "more",
 * and only then merges what it read into a new set with the expired
 * entries pruned. Any failure (unreachable, timeout, not 200, over
 * FEED_MAX, not the expected JSON) drops the whole poll: the old set
 * stays, the failure is logged, and once no poll has completed for
 * max_stale seconds every check answers GREV_STALE (fail closed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util/clock.h"
#include "guard/fetch.h"
#include "guard/revoke.h"

#define SID_MAX   22                /* base64url of 128 bits */
#define FEED_MAX  (4 * 1024 * 1024) /* one page: 10,000 entries fit */
#define PAGES_MAX 1000              /* per poll */
#define SET_MAX   (1024 * 1024)     /* sessions in the set */
#define OVERLAP   60                /* seconds asked again each poll */
#define URL_MAX   2048

struct rev {
	char sid[SID_MAX + 1];
	long long exp;
};

/* A growable array of entries. */
struct revs {
	struct rev *v;
	size_t n, cap;
};

struct grev {
	char *url;
	char *ca_file;
	unsigned int interval, timeout, max_stale;
	long long leeway;
	ea_log_fn log;
	void *log_cls;

	pthread_rwlock_t lock; /* set, n, last_ok */
	struct rev *set;       /* sorted by sid, unique */
	size_t n;
	double last_ok; /* monotonic seconds of the last complete poll; 0 */

	long long cursor; /* daemon time to ask from; poller only */
	int failing;      /* the last poll failed; poller only */

	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	atomic_int stop;
	pthread_t thread;
	int started;
};

static void
rlog(struct grev *r, enum ea_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->log(r->log_cls, lvl, msg);
}

static int
rev_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct rev *)a)->sid, ((const struct rev *)b)->sid);
}

static int
revs_push(struct revs *a, const struct rev *e)
{
	struct rev *nv;
	size_t ncap;

	if (a->n == a->cap) {
		ncap = a->cap == 0 ? 64 : a->cap * 2;
		if (ncap > SET_MAX ||
		    (nv = realloc(a->v, ncap * sizeof(*nv))) == NULL)
			return -1;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = *e;
	return 0;
}

/* 1 when s is 1 to SID_MAX base64url characters. */
static int
sid_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
			s[i] == '_'))
			return 0;
	return 1;
}

/*
 * Parses one page into out: {"now": int, "revoked": [{"sid": str,
 * "revoked_at": int, "exp": int}, ...], "more": bool, "next": int when
 * more}. Other members are ignored. Returns 0 with *now_r, *more_r and
 * *next_r, or -1 with a message in err.
 */
static int
parse_page(const char *body, size_t len, struct revs *out, long long *now_r,
    int *more_r, long long *next_r, char *err, size_t errlen)
{
	json_t *root, *list, *e, *now, *more, *next, *sid, *exp, *at;
	json_error_t jerr;
	struct rev r;
	size_t i;
	int ret = -1;

	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(err, errlen, "not JSON (line %d)", jerr.line);
		return -1;
	}
	now = json_object_get(root, "now");
	list = json_object_get(root, "revoked");
	more = json_object_get(root, "more");
	next = json_object_get(root, "next");
	if (!json_is_object(root) || !json_is_integer(now) ||
	    !json_is_array(list) || !json_is_boolean(more) ||
	    (json_is_true(more) && !json_is_integer(next))) {
		snprintf(err, errlen, "not a revocation feed page");
		goto out;
	}
	json_array_foreach(list, i, e)
	{
		sid = json_object_get(e, "sid");
		exp = json_object_get(e, "exp");
		at = json_object_get(e, "revoked_at");
		if (!json_is_object(e) || !json_is_string(sid) ||
		    !sid_ok(json_string_value(sid), json_string_length(sid)) ||
		    !json_is_integer(exp) || !json_is_integer(at)) {
			snprintf(err, errlen, "entry %zu is malformed", i);
			goto out;
		}
		memset(&r, 0, sizeof(r));
		memcpy(r.sid, json_string_value(sid), json_string_length(sid));
		r.exp = json_integer_value(exp);
		if (revs_push(out, &r) == -1) {
			snprintf(
			    err, errlen, "more than %d revocations", SET_MAX);
			goto out;
		}
	}
	*now_r = json_integer_value(now);
	*more_r = json_is_true(more);
	*next_r = *more_r ? json_integer_value(next) : 0;
	ret = 0;
out:
	json_decref(root);
	return ret;
}

/*
 * One poll: every page from the cursor on into got. Returns 0 with the
 * daemon's time at the first page in *now_r, or -1 with a message.
 */
static int
poll_feed(struct grev *r, struct revs *got, long long *now_r, char *err,
    size_t errlen)
{
	char url[URL_MAX], *body;
	long long since = r->cursor, now, next, first = 0;
	size_t len, pages;
	int n, more = 1;

	for (pages = 0; more; pages++) {
		if (pages == PAGES_MAX) {
			snprintf(err, errlen, "more than %d pages", PAGES_MAX);
			return -1;
		}
		n = snprintf(url, sizeof(url), "%s%csince=%lld", r->url,
		    strchr(r->url, '?') != NULL ? '&' : '?',
		    since > 0 ? since : 0);
		if (n < 0 || (size_t)n >= sizeof(url)) {
			snprintf(err, errlen, "the URL is too long");
			return -1;
		}
		body = fetch_doc(url, r->ca_file, r->timeout, FEED_MAX,
		    "the revocation feed", &r->stop, &len, err, errlen);
		if (body == NULL)
			return -1;
		n = parse_page(body, len, got, &now, &more, &next, err, errlen);
		free(body);
		if (n == -1)
			return -1;
		if (pages == 0)
			first = now;
		if (more && next <= since) {
			snprintf(err, errlen, "the feed does not advance");
			return -1;
		}
		since = next;
	}
	*now_r = first;
	return 0;
}

/*
 * Merges got into a new set with the old one, dropping entries past
 * exp + leeway at wall-clock time now, and installs it. 0 or -1.
 */
static int
install(struct grev *r, struct revs *got, long long now)
{
	struct revs all = {NULL, 0, 0};
	struct rev *old;
	size_t i, k;
	int ret = -1, full = 0;

	/* The poller is the only writer: the set cannot change meanwhile. */
	pthread_rwlock_rdlock(&r->lock);
	for (i = 0; i < r->n && !full; i++)
		if (r->set[i].exp + r->leeway >= now &&
		    revs_push(&all, &r->set[i]) == -1)
			full = 1;
	pthread_rwlock_unlock(&r->lock);
	if (full)
		goto out;
	for (i = 0; i < got->n; i++)
		if (got->v[i].exp + r->leeway >= now &&
		    revs_push(&all, &got->v[i]) == -1)
			goto out;
	if (all.n > 0)
		qsort(all.v, all.n, sizeof(*all.v), rev_cmp);
	/* Unique sids, the latest exp kept. */
	for (i = 0, k = 0; i < all.n; i++) {
		if (k > 0 && strcmp(all.v[k - 1].sid, all.v[i].sid) == 0) {
			if (all.v[i].exp > all.v[k - 1].exp)
				all.v[k - 1].exp = all.v[i].exp;
			continue;
		}
		all.v[k++] = all.v[i];
	}
	all.n = k;
	pthread_rwlock_wrlock(&r->lock);
	old = r->set;
	r->set = all.v;
	r->n = all.n;
	r->last_ok = clock_mono();
	pthread_rwlock_unlock(&r->lock);
	all.v = NULL;
	free(old);
	ret = 0;
out:
	free(all.v);
	return ret;
}

/* One poll and its outcome, logged on a change. */
static void
poll_once(struct grev *r)
{
	struct revs got = {NULL, 0, 0};
	char err[256];
	long long now = 0;
	int ok = 0;

	err[0] = '\0';
	if (poll_feed(r, &got, &now, err, sizeof(err)) == 0) {
		ok = install(r, &got, (long long)time(NULL)) == 0;
		if (!ok)
			snprintf(err, sizeof(err),
			    "more than %d revoked sessions, or out of memory",
			    SET_MAX);
	}
	if (ok) {
		r->cursor = now - OVERLAP;
		if (r->failing)
			rlog(r, EA_LOG_INFO,
			    "revocations: feed reachable again");
		r->failing = 0;
	} else if (!atomic_load(&r->stop)) {
		if (err[0] == '\0')
			snprintf(err, sizeof(err), "out of memory");
		rlog(r, r->failing ? EA_LOG_DEBUG : EA_LOG_WARN,
		    "revocations: %s; keeping the sessions known as revoked",
		    err);
		r->failing = 1;
	}
	free(got.v);
}

static void *
poller(void *arg)
{
	struct grev *r = arg;
	struct timespec until;

	for (;;) {
		pthread_mutex_lock(&r->stop_lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += r->interval;
		while (!atomic_load(&r->stop) &&
		    pthread_cond_timedwait(
			&r->stop_cond, &r->stop_lock, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&r->stop_lock);
		if (atomic_load(&r->stop))
			break;
		poll_once(r);
	}
	return NULL;
}

struct grev *
grev_new(const struct grev_config *c, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct grev *r;
	int cond_ok = 0;

	if (fetch_url_allowed(c->url, "revocations_url", err, errlen) == -1)
		return NULL;
	if (strlen(c->url) > URL_MAX - 32) {
		snprintf(err, errlen, "revocations_url is too long");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto nomem;
	pthread_rwlock_init(&r->lock, NULL);
	pthread_mutex_init(&r->stop_lock, NULL);
	if (pthread_condattr_init(&ca) == 0) {
		cond_ok =
		    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		    pthread_cond_init(&r->stop_cond, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (!cond_ok) {
		pthread_mutex_destroy(&r->stop_lock);
		pthread_rwlock_destroy(&r->lock);
		free(r);
		goto nomem;
	}
	r->interval = c->interval;
	r->timeout = c->timeout;
	r->max_stale = c->max_stale;
	r->leeway = c->leeway;
	r->log = c->log;
	r->log_cls = c->log_cls;
	if ((r->url = strdup(c->url)) == NULL ||
	    (c->ca_file != NULL && (r->ca_file = strdup(c->ca_file)) == NULL))
		goto fail;
	if (fetch_init() == -1) {
		snprintf(err, errlen, "libcurl cannot start");
		goto fail_msg;
	}
	poll_once(r);
	if (pthread_create(&r->thread, NULL, poller, r) != 0) {
		snprintf(err, errlen, "cannot start the revocation poller");
		goto fail_msg;
	}
	r->started = 1;
	return r;
fail:
	snprintf(err, errlen, "out of memory");
fail_msg:
	grev_free(r);
	return NULL;
nomem:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void
grev_free(struct grev *r)
{
	if (r == NULL)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->stop_lock);
		atomic_store(&r->stop, 1);
		pthread_cond_broadcast(&r->stop_cond);
		pthread_mutex_unlock(&r->stop_lock);
		pthread_join(r->thread, NULL);
	}
	pthread_cond_destroy(&r->stop_cond);
	pthread_mutex_destroy(&r->stop_lock);
	pthread_rwlock_destroy(&r->lock);
	free(r->set);
	free(r->url);
	free(r->ca_file);
	free(r);
}

enum grev_state
grev_check(struct grev *r, const char *sid, long long now)
{
	enum grev_state st = GREV_OK;
	struct rev key, *e;
	size_t n;

	if (sid == NULL || (n = strlen(sid)) == 0 || n > SID_MAX)
		return GREV_REVOKED;
	memset(&key, 0, sizeof(key));
	memcpy(key.sid, sid, n);
	pthread_rwlock_rdlock(&r->lock);
	if (r->last_ok == 0 || clock_mono() - r->last_ok > r->max_stale)
		st = GREV_STALE;
	else if (r->n > 0 &&
	    (e = bsearch(&key, r->set, r->n, sizeof(*r->set), rev_cmp)) !=
		NULL &&
	    e->exp + r->leeway >= now)
		st = GREV_REVOKED;
	pthread_rwlock_unlock(&r->lock);
	return st;
}

size_t
grev_count(struct grev *r)
{
	size_t n;

	pthread_rwlock_rdlock(&r->lock);
	n = r->n;
	pthread_rwlock_unlock(&r->lock);
	return n;
}
