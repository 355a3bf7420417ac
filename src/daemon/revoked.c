/*
 * The daemon's copy of the revoked sessions, for GET /v1/verify.
 *
 * A thread asks the store every second for the revocations since its last
 * answer (less a minute, for writes stamped just before they committed
 * and for other nodes' clocks) and merges them into a sorted array of
 * (sid, until), until = revoked_at + keep. The array is replaced whole
 * under a write lock; lookups take the read lock and a binary search.
 * When the store has not answered for STALE_AFTER seconds (Redis down),
 * every lookup says REVOKED_STALE and /v1/verify denies: a revocation it
 * cannot see must not pass.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/revoked.h"
#include "log/log.h"
#include "session/session.h"

#define POLL_SECONDS 1
#define OVERLAP      60
#define STALE_AFTER  10
#define PAGE         10000
#define SET_MAX      1000000 /* beyond: the oldest are dropped, logged */

struct entry {
	char sid[SESS_ID_SIZE];
	long long until;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct entry *set; /* sorted by sid */
static size_t set_n;
static _Atomic long long fresh_at; /* wall clock of the last full answer */
static _Atomic long long keep_s;

static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static int stopping, running;
static pthread_t thread;
static struct sess_store *store;

static int
by_sid(const void *a, const void *b)
{
	return strcmp(
	    ((const struct entry *)a)->sid, ((const struct entry *)b)->sid);
}

static int
by_until(const void *a, const void *b)
{
	long long x = ((const struct entry *)a)->until,
		  y = ((const struct entry *)b)->until;

	return x < y ? 1 : x > y ? -1 : 0; /* newest first */
}

/*
 * The current set, without what ended before now, plus v[0..n): a new
 * sorted array in *r_r. 0 or -1 (out of memory).
 */
static int
merge(const struct sess_revocation *v, size_t n, long long now,
    struct entry **r_r, size_t *n_r)
{
	long long keep = atomic_load(&keep_s);
	struct entry *r;
	size_t i, k = 0, w;

	pthread_rwlock_rdlock(&lock);
	r = malloc((set_n + n + 1) * sizeof(*r));
	if (r == NULL) {
		pthread_rwlock_unlock(&lock);
		return -1;
	}
	for (i = 0; i < set_n; i++)
		if (set[i].until >= now)
			r[k++] = set[i];
	pthread_rwlock_unlock(&lock);
	for (i = 0; i < n; i++) {
		if (v[i].revoked_at + keep < now)
			continue;
		memcpy(r[k].sid, v[i].sid, SESS_ID_SIZE);
		r[k].sid[SESS_ID_SIZE - 1] = '\0';
		r[k].until = v[i].revoked_at + keep;
		k++;
	}
	qsort(r, k, sizeof(*r), by_sid);
	/* One entry per sid: the latest until. */
	for (i = 0, w = 0; i < k; i++) {
		if (w > 0 && strcmp(r[w - 1].sid, r[i].sid) == 0) {
			if (r[i].until > r[w - 1].until)
				r[w - 1].until = r[i].until;
		} else
			r[w++] = r[i];
	}
	if (w > SET_MAX) {
		log_event(LOG_ERROR, "revocations_dropped",
		    LI("count", (long long)(w - SET_MAX)), LOG_END);
		qsort(r, w, sizeof(*r), by_until);
		w = SET_MAX;
		qsort(r, w, sizeof(*r), by_sid);
	}
	*r_r = r;
	*n_r = w;
	return 0;
}

/* Swaps the merge of v[0..n) into the set. 0 or -1. */
static int
take(const struct sess_revocation *v, size_t n, long long now)
{
	struct entry *nset, *old;
	size_t nn;

	if (merge(v, n, now, &nset, &nn) == -1)
		return -1;
	pthread_rwlock_wrlock(&lock);
	old = set;
	set = nset;
	set_n = nn;
	pthread_rwlock_unlock(&lock);
	free(old);
	return 0;
}

/*
 * One round: every revocation since since; 0 or -1. A full page may end
 * inside a second: that second is read again with the next page (since
 * = its start; a sid read twice merges into one entry), and a second
 * that fills a whole page is read with a larger one. A second too big
 * even for SET_MAX fails the round, so the set goes stale (fail closed)
 * rather than miss a revocation.
 */
static int
poll_once(long long since, long long now)
{
	struct sess_revocation *v = NULL;
	size_t n = 0, page = PAGE, keep;
	int ret = -1;

	for (;;) {
		if (sess_revoked_since(store, since, page, &v, &n) != SESS_OK)
			return -1;
		if (n < page) {
			ret = take(v, n, now);
			break;
		}
		if (v[0].revoked_at == v[n - 1].revoked_at) {
			/* One second fills the page: read it whole. */
			free(v);
			v = NULL;
			if (page >= SET_MAX)
				break;
			page = page * 10 > SET_MAX ? SET_MAX : page * 10;
			continue;
		}
		for (keep = n; v[keep - 1].revoked_at == v[n - 1].revoked_at;)
			keep--;
		if (take(v, keep, now) == -1)
			break;
		since = v[n - 1].revoked_at;
		page = PAGE;
		free(v);
		v = NULL;
	}
	free(v);
	return ret;
}

static void *
run(void *arg)
{
	long long now, last;
	struct timespec ts;
	int was_ok = 1;

	(void)arg;
	pthread_mutex_lock(&stop_mu);
	while (!stopping) {
		pthread_mutex_unlock(&stop_mu);
		now = (long long)time(NULL);
		/* From the last full answer (revoked_start's, at first). */
		last = atomic_load(&fresh_at);
		if (poll_once(
			last > 0 ? last - OVERLAP : now - atomic_load(&keep_s),
			now) == 0) {
			atomic_store(&fresh_at, now);
			if (!was_ok)
				log_event(
				    LOG_INFO, "revocations_restored", LOG_END);
			was_ok = 1;
		} else if (was_ok) {
			log_event(LOG_WARN, "revocations_unavailable",
			    LS("message",
				"the session store does not answer; "
				"/v1/verify denies once the copy of "
				"revoked sessions is stale"),
			    LOG_END);
			was_ok = 0;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += POLL_SECONDS;
		pthread_mutex_lock(&stop_mu);
		if (!stopping)
			pthread_cond_timedwait(&stop_cv, &stop_mu, &ts);
	}
	pthread_mutex_unlock(&stop_mu);
	return NULL;
}

int
revoked_start(struct sess_store *s, long long keep)
{
	long long now = (long long)time(NULL);

	store = s;
	atomic_store(&keep_s, keep);
	/* The first round before any request is served. */
	if (poll_once(now - keep, now) == 0)
		atomic_store(&fresh_at, now);
	stopping = 0;
	if (pthread_create(&thread, NULL, run, NULL) != 0)
		return -1;
	running = 1;
	return 0;
}

void
revoked_set_keep(long long keep)
{
	atomic_store(&keep_s, keep);
}

void
revoked_stop(void)
{
	if (running) {
		pthread_mutex_lock(&stop_mu);
		stopping = 1;
		pthread_cond_signal(&stop_cv);
		pthread_mutex_unlock(&stop_mu);
		pthread_join(thread, NULL);
		running = 0;
	}
	pthread_rwlock_wrlock(&lock);
	free(set);
	set = NULL;
	set_n = 0;
	pthread_rwlock_unlock(&lock);
}

enum revoked_state
revoked_check(const char *sid, long long now)
{
	struct entry key, *e;
	enum revoked_state st = REVOKED_NO;

	if (sid == NULL || strlen(sid) != SESS_ID_SIZE - 1)
		return REVOKED_YES;
	if (now - atomic_load(&fresh_at) > STALE_AFTER)
		return REVOKED_STALE;
	memcpy(key.sid, sid, SESS_ID_SIZE);
	pthread_rwlock_rdlock(&lock);
	e = set_n > 0 ? bsearch(&key, set, set_n, sizeof(*set), by_sid) : NULL;
	if (e != NULL && e->until >= now)
		st = REVOKED_YES;
	pthread_rwlock_unlock(&lock);
	return st;
}
