/*
 * The Redis session store (redis.c) and the sign-in regulation counters
 * kept in the same Redis (redis_limit.c), for several emailauthd nodes
 * sharing sessions, refresh-token rotation, revocations and throttling.
 *
 * Every change is one Lua script, so rotation and reuse detection are
 * atomic across nodes; every key has a TTL. Any Redis failure answers
 * SESS_ERROR (the daemon's 503). See docs/cluster.md.
 */
#ifndef EA_SESSION_REDIS_H
#define EA_SESSION_REDIS_H

#include <stddef.h>

#include "ratelimit/regulate.h"
#include "session/session.h"

struct sess_redis_options {
	const char *host; /* a name or an address */
	int port;
	int db;                    /* SELECT db after connecting */
	const char *password_file; /* AUTH password (mode 0600), or NULL */
	int timeout_ms;            /* connect and each command; 0: 1000 */
	unsigned int pool;         /* connections at most; 0: 16 */
};

/*
 * Creates the Redis store. The password file is read (and mode-checked)
 * here; Redis itself need not answer yet: the store connects on first
 * use, and again after every failure (at most once per second while
 * Redis does not answer, so callers fail fast meanwhile). Returns 0 and
 * the store (sess_close() frees it), or -1 with a message in err.
 * Thread-safe.
 */
int sess_redis_open(const struct sess_redis_options *o, struct sess_store **r,
    char *err, size_t errlen);

/* 1 if s is a Redis store, else 0. */
int sess_is_redis(const struct sess_store *s);

/* Internal to the Redis store: one command, see redis.c. */
struct redisReply;

enum rds_script {
	RDS_CREATE,
	RDS_USE,
	RDS_REVOKE_TOKEN,
	RDS_REVOKE,
	RDS_REVOKE_USER,
	RDS_LIST_USER,
	RDS_RG_CHECK,
	RDS_RG_SETTLE,
	RDS_NSCRIPTS,
};

/* The Lua text of RDS_RG_CHECK and RDS_RG_SETTLE (redis_limit.c). */
extern const char rds_lua_rg_check[];
extern const char rds_lua_rg_settle[];

/*
 * Runs script sc (EVALSHA, then EVAL when Redis does not know it yet)
 * with nkeys keys followed by the other arguments of argv (argc in all,
 * lengths in len). Returns the reply (freeReplyObject()) or NULL when
 * Redis does not answer or answers an error. Never retried: a script
 * may have run when its answer was lost.
 */
struct redisReply *rds_script(struct sess_store *s, enum rds_script sc,
    int nkeys, int argc, const char **argv, const size_t *len);

/*
 * Sign-in regulation (src/ratelimit/regulate.h) on counters in Redis,
 * shared by every node of the store; the same rules as rg_check() and
 * rg_settle(), with Redis's clock. Keys live for c->window seconds
 * after the last counted attempt.
 *
 * sess_redis_rg_check: 0 when admitted (and counted), > 0 the seconds
 * to wait with the count holding it back in *why_r, or -1 when Redis does
 * not answer: the caller counts locally then.
 * sess_redis_rg_settle: 0, or -1 when Redis does not answer.
 */
double sess_redis_rg_check(struct sess_store *s, const struct rg_config *c,
    const char *user, const char *address, enum rg_key *why_r);
int sess_redis_rg_settle(struct sess_store *s, const struct rg_config *c,
    const char *user, const char *address, enum rg_outcome outcome);

#endif
