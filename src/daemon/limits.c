/*
 * Request rates per route group, sign-in regulation, and their metrics.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "authn/authn.h"
#include "daemon/daemon.h"
#include "daemon/limits.h"
#include "log/audit.h"
#include "log/log.h"
#include "ratelimit/ratelimit.h"
#include "ratelimit/regulate.h"
#include "session/redis.h"
#include "util/net.h"

static struct rl_table *rates[LIM_NGROUPS];
static struct rg *regulator;
/* With the Redis session store, sign-in regulation counts there, shared
 * by every node; the local tables take over while Redis does not answer. */
static struct sess_store *shared;
static struct rg_config shared_rc;
static atomic_int fallback;         /* 1 while counting locally */
static atomic_ulong fallback_total; /* times it fell back */
static size_t max_keys;
static atomic_ulong throttled_rate[LIM_NGROUPS];
static atomic_ulong throttled_login[RG_NKEYS];

static const char *const group_names[] = {"auth", "api", "ops"};

/* Whole seconds, rounded up, at least 1 (a Retry-After of 0 invites a
 * retry that will be refused again). */
static long long
seconds_up(double s)
{
	long long n = (long long)s;

	if ((double)n < s)
		n++;
	return n < 1 ? 1 : n;
}

/*
 * The key of a client address: IPv4 as is, IPv6 by its /64 (one
 * subscriber commonly holds a whole /64: counting single addresses would
 * give him as many budgets as he likes).
 */
static void
address_key(const char *ip, char *out, size_t cap)
{
	unsigned char a[16];
	static const unsigned char v4[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (net_addr_parse(ip, a) == -1 || memcmp(a, v4, 12) == 0 ||
	    (memset(a + 8, 0, 8), net_addr_text(a, out, cap)) == -1)
		snprintf(out, cap, "%s", ip);
}

int
limits_init(const struct cfg *c)
{
	const long long rate[] = {
	    c->limits.auth.rate, c->limits.api.rate, c->limits.ops.rate};
	const long long burst[] = {
	    c->limits.auth.burst, c->limits.api.burst, c->limits.ops.burst};
	struct rg_config rc;
	int i;

	max_keys = (size_t)c->limits.max_keys;
	for (i = 0; i < LIM_NGROUPS; i++)
		if (rate[i] > 0 &&
		    (rates[i] = rl_new(
			 max_keys, (double)rate[i], (double)burst[i])) == NULL)
			return -1;
	rc.pair = (unsigned int)c->limits.login.pair;
	rc.user = (unsigned int)c->limits.login.user;
	rc.address = (unsigned int)c->limits.login.address;
	rc.window = (double)c->limits.login.window;
	rc.delay = (double)c->limits.login.delay;
	rc.delay_max = (double)c->limits.login.delay_max;
	rc.max_keys = max_keys;
	shared = sess_is_redis(daemon_store) ? daemon_store : NULL;
	shared_rc = rc;
	return (regulator = rg_new(&rc)) == NULL ? -1 : 0;
}

void
limits_free(void)
{
	int i;

	for (i = 0; i < LIM_NGROUPS; i++) {
		rl_free(rates[i]);
		rates[i] = NULL;
	}
	rg_free(regulator);
	regulator = NULL;
	shared = NULL;
}

int
limits_admit(struct http_req *r, void *cls, enum MHD_Result *ret)
{
	unsigned int g = r->route->group;
	char retry[32], limit[32], remaining[32], reset[32];
	struct rl_info info;

	(void)cls;
	if (g >= LIM_NGROUPS || rates[g] == NULL ||
	    rl_take(rates[g], r->client_ip, strlen(r->client_ip), 1,
		clock_mono(), &info))
		return 0;
	atomic_fetch_add_explicit(&throttled_rate[g], 1, memory_order_relaxed);
	trail_event(LOG_WARN, "throttled", LS("request_id", r->id),
	    LS("client", r->client_ip), LS("limit", group_names[g]),
	    LD("retry_after", info.retry_after), LOG_END);
	snprintf(retry, sizeof(retry), "%lld", seconds_up(info.retry_after));
	snprintf(limit, sizeof(limit), "%.0f", info.limit);
	snprintf(
	    remaining, sizeof(remaining), "%lld", (long long)info.remaining);
	snprintf(reset, sizeof(reset), "%lld", seconds_up(info.reset));
	*ret = http_problem(r, 429, "too many requests; retry later",
	    (struct http_header[]){{"Retry-After", retry},
		{"RateLimit-Limit", limit}, {"RateLimit-Remaining", remaining},
		{"RateLimit-Reset", reset}, {NULL, NULL}});
	return 1;
}

/* Notes whether the shared counts answered; logs each change once. */
static void
set_fallback(int local)
{
	if (atomic_exchange(&fallback, local) == local)
		return;
	if (local) {
		atomic_fetch_add(&fallback_total, 1);
		log_event(LOG_WARN, "limiter_fallback", LS("counting", "local"),
		    LS("message",
			"Redis does not answer: sign-in regulation counts on "
			"this node only"),
		    LOG_END);
	} else
		log_event(LOG_INFO, "limiter_restored",
		    LS("counting", "shared"), LOG_END);
}

/*
 * rg_check() on the shared counts when there are some and Redis answers,
 * else on the local ones. Runs on an HTTP thread: a Redis call waits at
 * most the store's timeout, and none is tried for a second after Redis
 * failed to answer (redis.c), so a Redis outage costs no more.
 */
static double
regulate_check(const char *canon, const char *key, enum rg_key *why)
{
	double wait;

	if (shared != NULL) {
		wait = sess_redis_rg_check(shared, &shared_rc, canon, key, why);
		set_fallback(wait < 0);
		if (wait >= 0)
			return wait;
	}
	return rg_check(regulator, canon, key, clock_mono(), why);
}

int
limits_login_check(struct http_req *r, const char *user, enum MHD_Result *ret)
{
	char canon[AUTHN_CANON_MAX], retry[32];
	enum rg_key why;
	double wait;

	char key[INET6_ADDRSTRLEN];

	/* A name that cannot be put in canonical form is counted as sent:
	 * never uncounted (fail closed). */
	if (rg_canonical_user(user, canon, sizeof(canon)) == -1)
		snprintf(canon, sizeof(canon), "%s", user);
	address_key(r->client_ip, key, sizeof(key));
	if ((wait = regulate_check(canon, key, &why)) <= 0)
		return 0;
	atomic_fetch_add_explicit(
	    &throttled_login[why], 1, memory_order_relaxed);
	trail_event(LOG_WARN, "login", LS("request_id", r->id),
	    LS("user", user), LS("client", r->client_ip),
	    LS("outcome", "failure"), LS("reason", "throttled"),
	    LS("limit", rg_key_name(why)), LD("retry_after", wait), LOG_END);
	snprintf(retry, sizeof(retry), "%lld", seconds_up(wait));
	/* The same answer whether the user exists or not. */
	*ret = http_problem(r, 429, "too many failed sign-ins; retry later",
	    (struct http_header[]){{"Retry-After", retry}, {NULL, NULL}});
	return 1;
}

void
limits_login_result(const char *user, const char *client, int outcome)
{
	char canon[AUTHN_CANON_MAX], key[INET6_ADDRSTRLEN];
	enum rg_outcome o;

	if (rg_canonical_user(user, canon, sizeof(canon)) == -1)
		snprintf(canon, sizeof(canon), "%s", user);
	address_key(client, key, sizeof(key));
	o = outcome > 0 ? RG_SUCCEEDED : outcome == 0 ? RG_FAILED : RG_NEUTRAL;
	/* Where the attempt was counted, as far as one can tell: a change
	 * of Redis's state in between may settle it on the other side. */
	if (shared == NULL || atomic_load(&fallback) ||
	    sess_redis_rg_settle(shared, &shared_rc, canon, key, o) == -1)
		rg_settle(regulator, canon, key, o);
}

void
limits_metrics(FILE *f)
{
	int i;

	fprintf(f,
	    "# HELP emailauth_throttled_total Requests refused with 429, "
	    "by limit.\n# TYPE emailauth_throttled_total counter\n");
	for (i = 0; i < LIM_NGROUPS; i++)
		fprintf(f, "emailauth_throttled_total{limit=\"%s\"} %lu\n",
		    group_names[i], atomic_load(&throttled_rate[i]));
	for (i = 0; i < RG_NKEYS; i++)
		fprintf(f,
		    "emailauth_throttled_total{limit=\"login_%s\"} %lu\n",
		    rg_key_name((enum rg_key)i),
		    atomic_load(&throttled_login[i]));
	fprintf(f,
	    "# HELP emailauth_limiter_keys Keys held by each limiter "
	    "table (bounded by limits.max_keys).\n"
	    "# TYPE emailauth_limiter_keys gauge\n");
	for (i = 0; i < LIM_NGROUPS; i++)
		fprintf(f, "emailauth_limiter_keys{table=\"%s\"} %zu\n",
		    group_names[i], rates[i] != NULL ? rl_size(rates[i]) : 0);
	for (i = 0; i < RG_NKEYS; i++)
		fprintf(f, "emailauth_limiter_keys{table=\"login_%s\"} %zu\n",
		    rg_key_name((enum rg_key)i),
		    rg_size(regulator, (enum rg_key)i));
	fprintf(f, "emailauth_limiter_max_keys %zu\n", max_keys);
	fprintf(f,
	    "# HELP emailauth_limiter_shared 1 when sign-in regulation "
	    "counts in Redis, shared by every node.\n"
	    "# TYPE emailauth_limiter_shared gauge\n"
	    "emailauth_limiter_shared %d\n"
	    "# HELP emailauth_limiter_fallback 1 while Redis does not answer "
	    "and sign-in regulation counts on this node only.\n"
	    "# TYPE emailauth_limiter_fallback gauge\n"
	    "emailauth_limiter_fallback %d\n"
	    "# HELP emailauth_limiter_fallback_total Times sign-in "
	    "regulation fell back to local counts.\n"
	    "# TYPE emailauth_limiter_fallback_total counter\n"
	    "emailauth_limiter_fallback_total %lu\n",
	    shared != NULL, atomic_load(&fallback),
	    atomic_load(&fallback_total));
}
