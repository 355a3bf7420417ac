/*
 * The Redis session store, shared by several emailauthd nodes.
 *
 * Keys (all under "ea:"):
 *   ea:s:SID      hash  sub backend client created last_used expires
 *                       [revoked_at]
 *   ea:t:HASH     hash  sid st (0 current, 1 rotated away); HASH is the
 *                       hex SHA-256 of the refresh token, never the token
 *   ea:u:SUB      set   the sids of SUB (stale members pruned when read)
 *   ea:rev        zset  "SID EXPIRES" scored by revoked_at, for the
 *                       revocation feed; trimmed to REV_KEEP seconds
 * A session and each of its tokens live until the session's absolute
 * end plus PURGE_GRACE (EXPIRE, relative to the caller's now), so reuse
 * of a token rotated long ago is still detected; the user set lives as
 * long as its longest session, ea:rev as long as its newest entry.
 *
 * Every change is one Lua script (EVALSHA, EVAL on NOSCRIPT): Redis runs
 * a script alone, so a refresh token is rotated at most once even when
 * two nodes receive it together, and a reused token revokes its session
 * for every node at once. The scripts derive ea:s:SID from the token's
 * record, so this needs one Redis primary (Sentinel, a managed service),
 * not Redis Cluster.
 *
 * Connections: a pool of at most opts.pool, each with the connect and
 * command timeout; a connection that failed is dropped (with every idle
 * one: after a restart of Redis they are all stale), an idle one whose
 * socket became readable (closed by Redis) is dropped before use. After
 * a failed connect, a timeout or a lost connection, no call tries again
 * for RETRY_AFTER: callers fail fast (SESS_ERROR, 503) while Redis is
 * away, and the store recovers by itself when it is back. Nothing is
 * retried: a script may have run when its answer was lost. The password never
 * passes through hiredis's buffers: AUTH is written to the socket from a buffer
 * wiped afterwards.
 */
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "util/clock.h"
#include "log/log.h"
#include "session/redis.h"
#include "util/b64.h"
#include "util/sec.h"
#include "util/str.h"

#define TOKEN_BYTES  32
#define SID_BYTES    16
#define HASH_HEX     (2 * SHA256_DIGEST_LENGTH)
#define PURGE_GRACE  86400LL /* ended sessions are kept this long */
#define REV_KEEP     90000   /* longest access token (a day) + leeway */
#define RETRY_AFTER  1.0     /* seconds without connecting after a failure */
#define PASSWORD_MAX 1024
#define KEY_MAX      600

#define P "ea:"

/* Shared by the scripts that revoke: sets revoked_at once, feeds ea:rev. */
#define LUA_REVOKE                                                 \
	"local P = '" P "'\n"                                      \
	"local function revoke(sk, sid, now)\n"                    \
	"  if redis.call('HEXISTS', sk, 'revoked_at') == 1 then\n" \
	"    return 0\n"                                           \
	"  end\n"                                                  \
	"  redis.call('HSET', sk, 'revoked_at', now)\n"            \
	"  local exp = redis.call('HGET', sk, 'expires') or '0'\n" \
	"  local rk = P .. 'rev'\n"                                \
	"  redis.call('ZADD', rk, now, sid .. ' ' .. exp)\n"       \
	"  redis.call('ZREMRANGEBYSCORE', rk, '-inf',\n"           \
	"    '(' .. (now - " EA_STR(                               \
	    REV_KEEP) "))\n"                                       \
		      "  redis.call('EXPIRE', rk, " EA_STR(        \
			  REV_KEEP) ")\n"                          \
				    "  return 1\n"                 \
				    "end\n"

#define EA_STR_(x) #x
#define EA_STR(x)  EA_STR_(x)

/*
 * KEYS: s:SID t:HASH u:SUB. ARGV: sid sub backend client now expires
 * ttl. 1 created, 0 the sid or token exists already.
 */
static const char lua_create[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 or\n"
    "   redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "local ttl = tonumber(ARGV[7])\n"
    "redis.call('HSET', KEYS[1], 'sub', ARGV[2], 'backend', ARGV[3],\n"
    "  'client', ARGV[4], 'created', ARGV[5], 'last_used', ARGV[5],\n"
    "  'expires', ARGV[6])\n"
    "redis.call('EXPIRE', KEYS[1], ttl)\n"
    "redis.call('HSET', KEYS[2], 'sid', ARGV[1], 'st', '0')\n"
    "redis.call('EXPIRE', KEYS[2], ttl)\n"
    "redis.call('SADD', KEYS[3], ARGV[1])\n"
    "local cur = redis.call('TTL', KEYS[3])\n"
    "if cur < ttl then redis.call('EXPIRE', KEYS[3], ttl) end\n"
    "return 1\n";

/*
 * KEYS: t:HASH. ARGV: mode ('r' rotate, 'p' peek) now idle newhash.
 * {code, sid, sub, backend, client, created, last_used, expires}, code
 * 'O' ok, 'U' reused (session revoked now), 'R' revoked, 'E' expired,
 * 'N' not found, 'X' the new token exists (never: 256 random bits).
 */
static const char lua_use[] = LUA_REVOKE
    "local t = redis.call('HMGET', KEYS[1], 'sid', 'st')\n"
    "if not t[1] then return {'N'} end\n"
    "local sid = t[1]\n"
    "local sk = P .. 's:' .. sid\n"
    "local s = redis.call('HMGET', sk, 'sub', 'backend', 'client',\n"
    "  'created', 'last_used', 'expires', 'revoked_at')\n"
    "if not s[1] then return {'N'} end\n"
    "local now = tonumber(ARGV[2])\n"
    "if t[2] ~= '0' then\n"
    "  revoke(sk, sid, now)\n"
    "  return {'U', sid, s[1], s[2], s[3], s[4], s[5], s[6]}\n"
    "end\n"
    "if s[7] then return {'R'} end\n"
    "if now > tonumber(s[6]) or\n"
    "   tonumber(s[5]) < now - tonumber(ARGV[3]) then return {'E'} end\n"
    "if ARGV[1] == 'r' then\n"
    "  local nk = P .. 't:' .. ARGV[4]\n"
    "  if redis.call('EXISTS', nk) == 1 then return {'X'} end\n"
    "  local ttl = redis.call('TTL', sk)\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('HSET', KEYS[1], 'st', '1')\n"
    "  redis.call('HSET', nk, 'sid', sid, 'st', '0')\n"
    "  redis.call('EXPIRE', nk, ttl)\n"
    "  redis.call('HSET', sk, 'last_used', ARGV[2])\n"
    "  s[5] = ARGV[2]\n"
    "end\n"
    "return {'O', sid, s[1], s[2], s[3], s[4], s[5], s[6]}\n";

/* KEYS: t:HASH. ARGV: now. Revokes the token's session if any. */
static const char lua_revoke_token[] =
    LUA_REVOKE "local sid = redis.call('HGET', KEYS[1], 'sid')\n"
	       "if not sid then return 0 end\n"
	       "local sk = P .. 's:' .. sid\n"
	       "if redis.call('EXISTS', sk) == 0 then return 0 end\n"
	       "return revoke(sk, sid, tonumber(ARGV[1]))\n";

/* KEYS: s:SID. ARGV: sid now. -1 no such session, else 0 or 1. */
static const char lua_revoke[] =
    LUA_REVOKE "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
	       "return revoke(KEYS[1], ARGV[1], tonumber(ARGV[2]))\n";

/* KEYS: u:SUB. ARGV: now. The number of sessions revoked now. */
static const char lua_revoke_user[] =
    LUA_REVOKE "local n = 0\n"
	       "for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	       "  local sk = P .. 's:' .. sid\n"
	       "  if redis.call('EXISTS', sk) == 0 then\n"
	       "    redis.call('SREM', KEYS[1], sid)\n"
	       "  else\n"
	       "    n = n + revoke(sk, sid, tonumber(ARGV[1]))\n"
	       "  end\n"
	       "end\n"
	       "return n\n";

/*
 * KEYS: u:SUB. The user's sessions, 8 strings each (sid, then the
 * fields of ea:s:SID, revoked_at '' when not revoked); members whose
 * session is gone are removed.
 */
static const char lua_list_user[] =
    "local out = {}\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local s = redis.call('HMGET', '" P "s:' .. sid, 'sub', 'backend',\n"
    "    'client', 'created', 'last_used', 'expires', 'revoked_at')\n"
    "  if not s[1] then\n"
    "    redis.call('SREM', KEYS[1], sid)\n"
    "  else\n"
    "    table.insert(out, sid)\n"
    "    for i = 1, 6 do table.insert(out, s[i]) end\n"
    "    table.insert(out, s[7] or '')\n"
    "  end\n"
    "end\n"
    "return out\n";

static const char *const scripts[RDS_NSCRIPTS] = {
    [RDS_CREATE] = lua_create,
    [RDS_USE] = lua_use,
    [RDS_REVOKE_TOKEN] = lua_revoke_token,
    [RDS_REVOKE] = lua_revoke,
    [RDS_REVOKE_USER] = lua_revoke_user,
    [RDS_LIST_USER] = lua_list_user,
    [RDS_RG_CHECK] = rds_lua_rg_check,
    [RDS_RG_SETTLE] = rds_lua_rg_settle,
};

static const char *const script_names[RDS_NSCRIPTS] = {
    [RDS_CREATE] = "create",
    [RDS_USE] = "rotate",
    [RDS_REVOKE_TOKEN] = "revoke_token",
    [RDS_REVOKE] = "revoke",
    [RDS_REVOKE_USER] = "revoke_user",
    [RDS_LIST_USER] = "list_user",
    [RDS_RG_CHECK] = "limit_check",
    [RDS_RG_SETTLE] = "limit_settle",
};

struct redis_store {
	struct sess_store base; /* first: the generic handle points here */
	char *host;
	int port, db;
	struct timeval tv;
	struct sec_buf *password; /* NULL: no AUTH */
	pthread_mutex_t lock;     /* everything below */
	pthread_cond_t cond;      /* a connection was released */
	int lock_ok, cond_ok;
	redisContext **idle;
	size_t nidle, nopen, max;
	double down_until; /* monotonic: no connect before */
	int down;          /* Redis did not answer last time */
	char sha[RDS_NSCRIPTS][2 * SHA_DIGEST_LENGTH + 1];
};

static const struct sess_store_ops redis_ops;

static struct redis_store *
store_of(struct sess_store *s)
{
	return (struct redis_store *)(void *)s;
}

/* Logs a failure of op; what never holds a secret. */
static void
store_fail(const char *op, const char *what)
{
	log_event(LOG_ERROR, "session_store_error", LS("store", "redis"),
	    LS("op", op), LS("error", what), LOG_END);
}

/* Marks Redis as answering again (logs the transition). Under lock. */
static void
mark_up(struct redis_store *st)
{
	if (st->down) {
		st->down = 0;
		log_event(LOG_INFO, "session_store_restored",
		    LS("store", "redis"), LOG_END);
	}
}

/*
 * Sends AUTH password on c's socket from a buffer of our own (wiped),
 * then reads the answer through hiredis. 0 or -1.
 */
static int
auth(redisContext *c, const struct sec_buf *pw, int quiet)
{
	redisReply *r = NULL;
	char *buf = NULL, head[64];
	size_t cap, len, off = 0;
	ssize_t w;
	int hn, ret = -1;

	hn = snprintf(
	    head, sizeof(head), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n", pw->len);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		goto out;
	cap = (size_t)hn + pw->len + 2;
	if ((buf = malloc(cap)) == NULL)
		goto out;
	memcpy(buf, head, (size_t)hn);
	memcpy(buf + hn, pw->p, pw->len);
	memcpy(buf + hn + pw->len, "\r\n", 2);
	len = cap;
	while (off < len) {
		w = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w <= 0) {
			if (w == -1 && errno == EINTR)
				continue;
			if (!quiet)
				store_fail("auth", "cannot send AUTH");
			goto out;
		}
		off += (size_t)w;
	}
	if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
		if (!quiet)
			store_fail("auth", c->errstr);
		goto out;
	}
	if (r->type != REDIS_REPLY_STATUS) {
		/* Redis's message names no password. */
		if (!quiet)
			store_fail("auth",
			    r->type == REDIS_REPLY_ERROR && r->str
				? r->str
				: "AUTH refused");
		goto out;
	}
	ret = 0;
out:
	if (buf != NULL) {
		sec_wipe(buf, cap);
		free(buf);
	}
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

/* A new connection, authenticated and on the database. NULL: logged. */
static redisContext *
connect_one(struct redis_store *st, int quiet)
{
	redisContext *c;
	redisReply *r = NULL;
	char dbs[16];
	const char *argv[2] = {"SELECT", dbs};
	size_t len[2];

	c = redisConnectWithTimeout(st->host, st->port, st->tv);
	if (c == NULL || c->err) {
		if (!quiet)
			store_fail(
			    "connect", c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(c, st->tv) != REDIS_OK) {
		store_fail("connect", "cannot set the timeout");
		goto fail;
	}
	redisEnableKeepAlive(c);
	if (st->password != NULL && auth(c, st->password, quiet) == -1)
		goto fail;
	if (st->db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", st->db);
		len[0] = 6;
		len[1] = strlen(dbs);
		r = redisCommandArgv(c, 2, argv, len);
		if (r == NULL || r->type != REDIS_REPLY_STATUS) {
			if (!quiet)
				store_fail("select",
				    r != NULL && r->str != NULL ? r->str
								: c->errstr);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* 1 if the idle connection c has data or EOF waiting: stale. */
static int
stale(redisContext *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

/* No connection attempt for RETRY_AFTER from now. Under lock. */
static void
mark_down(struct redis_store *st)
{
	double t = clock_mono() + RETRY_AFTER;

	if (t > st->down_until)
		st->down_until = t;
	st->down = 1;
	pthread_cond_broadcast(&st->cond);
}

/* Closes every idle connection. Under lock. */
static void
drop_idle(struct redis_store *st)
{
	while (st->nidle > 0) {
		redisFree(st->idle[--st->nidle]);
		st->nopen--;
	}
}

/*
 * A connection from the pool, or a new one; NULL when Redis does not
 * answer (or did not lately: see RETRY_AFTER) or the pool stays busy
 * for a whole timeout.
 */
static redisContext *
acquire(struct redis_store *st)
{
	redisContext *c = NULL;
	struct timespec dl;
	int quiet;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += st->tv.tv_sec > 0 ? st->tv.tv_sec : 1;
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (clock_mono() < st->down_until)
			break;
		while (st->nidle > 0) {
			c = st->idle[--st->nidle];
			if (!stale(c))
				goto out;
			redisFree(c);
			c = NULL;
			st->nopen--;
		}
		if (st->nopen < st->max) {
			st->nopen++;
			quiet = st->down;
			pthread_mutex_unlock(&st->lock);
			c = connect_one(st, quiet);
			pthread_mutex_lock(&st->lock);
			if (c != NULL) {
				mark_up(st);
				goto out;
			}
			st->nopen--;
			mark_down(st);
			break;
		}
		if (pthread_cond_timedwait(&st->cond, &st->lock, &dl) ==
		    ETIMEDOUT) {
			store_fail("pool", "no connection free in time");
			break;
		}
	}
out:
	pthread_mutex_unlock(&st->lock);
	return c;
}

/*
 * Returns c to the pool, or closes it (and the idle ones) if broken: a
 * timeout or a lost connection also holds off new ones for RETRY_AFTER,
 * so a Redis that accepts but does not answer costs one timeout per
 * second, not one per call.
 */
static void
release(struct redis_store *st, redisContext *c)
{
	pthread_mutex_lock(&st->lock);
	if (c->err) {
		redisFree(c);
		st->nopen--;
		drop_idle(st);
		mark_down(st);
	} else
		st->idle[st->nidle++] = c;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/*
 * One command. Returns the reply (freeReplyObject()) or NULL, logged
 * unless Redis is known to be away; an error reply is returned as is.
 */
static redisReply *
command(struct redis_store *st, const char *op, int argc, const char **argv,
    const size_t *len)
{
	redisContext *c;
	redisReply *r = NULL;

	if ((c = acquire(st)) == NULL)
		goto out;
	r = redisCommandArgv(c, argc, argv, len);
	if (r == NULL)
		store_fail(op, c->errstr[0] != '\0' ? c->errstr : "no answer");
	release(st, c);
out:
	return r;
}

struct redisReply *
rds_script(struct sess_store *s, enum rds_script sc, int nkeys, int argc,
    const char **argv, const size_t *len)
{
	struct redis_store *st = store_of(s);
	const char *op = script_names[sc];
	redisContext *c = NULL;
	redisReply *r = NULL;
	const char **av = NULL;
	size_t *al = NULL;
	char nk[16];
	int i;

	if ((av = calloc((size_t)argc + 3, sizeof(*av))) == NULL ||
	    (al = calloc((size_t)argc + 3, sizeof(*al))) == NULL)
		goto out;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = st->sha[sc];
	av[2] = nk;
	al[0] = 7;
	al[1] = strlen(st->sha[sc]);
	al[2] = strlen(nk);
	for (i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = len[i];
	}
	if ((c = acquire(st)) == NULL)
		goto out;
	r = redisCommandArgv(c, argc + 3, av, al);
	if (r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* Not run: Redis does not have it yet. Send it whole. */
		freeReplyObject(r);
		av[0] = "EVAL";
		av[1] = scripts[sc];
		al[0] = 4;
		al[1] = strlen(scripts[sc]);
		r = redisCommandArgv(c, argc + 3, av, al);
	}
	if (r == NULL)
		store_fail(op, c->errstr[0] != '\0' ? c->errstr : "no answer");
	else if (r->type == REDIS_REPLY_ERROR) {
		store_fail(op, r->str != NULL ? r->str : "error");
		freeReplyObject(r);
		r = NULL;
	}
	release(st, c);
out:
	free(av);
	free(al);
	return r;
}

/* SHA-256 of a token, as the hex of the key "ea:t:HEX". 0 or -1. */
static int
token_key(const char *token, char *key, size_t cap)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	char hx[HASH_HEX + 1];
	int n, ret = -1;

	if (SHA256((const unsigned char *)token, strlen(token), h) == NULL)
		goto out;
	str_hex(hx, h, sizeof(h));
	n = snprintf(key, cap, P "t:%s", hx);
	if (n > 0 && (size_t)n < cap)
		ret = 0;
out:
	sec_wipe(h, sizeof(h));
	sec_wipe(hx, sizeof(hx));
	return ret;
}

/* "ea:" kind ":" name into key. 0 or -1 when it does not fit. */
static int
make_key(char *key, size_t cap, const char *kind, const char *name)
{
	int n = snprintf(key, cap, P "%s:%s", kind, name);

	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* n random bytes, base64url-encoded into dst (B64URL_LEN(n) + 1). */
static int
random_b64(char *dst, size_t n)
{
	unsigned char raw[TOKEN_BYTES];
	int ret = -1;

	if (n > sizeof(raw) || sec_random(raw, n) == -1)
		goto out;
	b64url_encode(dst, raw, n);
	ret = 0;
out:
	sec_wipe(raw, sizeof(raw));
	return ret;
}

/* Copies bulk string e (at most cap - 1 bytes) into dst. 0 or -1. */
static int
str_of(const redisReply *e, char *dst, size_t cap)
{
	if (e == NULL || e->type != REDIS_REPLY_STRING || e->len >= cap)
		return -1;
	memcpy(dst, e->str, e->len);
	dst[e->len] = '\0';
	return 0;
}

/* A bulk string holding a decimal integer into *v. 0 or -1. */
static int
ll_of(const redisReply *e, long long *v)
{
	char buf[32], *end;

	if (str_of(e, buf, sizeof(buf)) == -1 || buf[0] == '\0')
		return -1;
	errno = 0;
	*v = strtoll(buf, &end, 10);
	return *end != '\0' || errno != 0 ? -1 : 0;
}

/*
 * Reads a session from 7 elements of a reply: sid sub backend client
 * created last_used expires. 0 or -1.
 */
static int
info_of(redisReply **e, struct sess_info *in)
{
	memset(in, 0, sizeof(*in));
	if (str_of(e[0], in->sid, sizeof(in->sid)) == -1 ||
	    str_of(e[1], in->sub, sizeof(in->sub)) == -1 ||
	    str_of(e[2], in->backend, sizeof(in->backend)) == -1 ||
	    str_of(e[3], in->client, sizeof(in->client)) == -1 ||
	    ll_of(e[4], &in->created) == -1 ||
	    ll_of(e[5], &in->last_used) == -1 ||
	    ll_of(e[6], &in->expires) == -1)
		return -1;
	return 0;
}

/* a - b, saturated at the limits of long long instead of overflowing. */
static long long
sat_sub(long long a, long long b)
{
	long long r;

	if (__builtin_sub_overflow(a, b, &r))
		r = b > 0 ? LLONG_MIN : LLONG_MAX;
	return r;
}

/* SESS_OK, SESS_REVOKED or SESS_EXPIRED, as sqlite.c's row_state(). */
static enum sess_result
state_of(const struct sess_info *in, int revoked, long long now, long long idle)
{
	if (revoked)
		return SESS_REVOKED;
	if (now > in->expires || in->last_used < sat_sub(now, idle))
		return SESS_EXPIRED;
	return SESS_OK;
}

static enum sess_result
redis_create(struct sess_store *s, const char *sub, const char *backend,
    const char *client, long long now, long long ttl, char sid_r[SESS_ID_SIZE],
    char token_r[SESS_TOKEN_SIZE])
{
	enum sess_result res = SESS_ERROR;
	char sid[SESS_ID_SIZE], token[SESS_TOKEN_SIZE];
	char ks[KEY_MAX], kt[KEY_MAX], ku[KEY_MAX], nows[24], exps[24],
	    ttls[24];
	const char *argv[10];
	size_t len[10];
	long long expires, keep;
	redisReply *r = NULL;
	int i;

	if (ttl <= 0 || __builtin_add_overflow(now, ttl, &expires) ||
	    __builtin_add_overflow(ttl, PURGE_GRACE, &keep) ||
	    random_b64(sid, SID_BYTES) == -1 ||
	    random_b64(token, TOKEN_BYTES) == -1 ||
	    make_key(ks, sizeof(ks), "s", sid) == -1 ||
	    token_key(token, kt, sizeof(kt)) == -1 ||
	    make_key(ku, sizeof(ku), "u", sub) == -1)
		goto out;
	snprintf(nows, sizeof(nows), "%lld", now);
	snprintf(exps, sizeof(exps), "%lld", expires);
	snprintf(ttls, sizeof(ttls), "%lld", keep);
	argv[0] = ks;
	argv[1] = kt;
	argv[2] = ku;
	argv[3] = sid;
	argv[4] = sub;
	argv[5] = backend;
	argv[6] = client;
	argv[7] = nows;
	argv[8] = exps;
	argv[9] = ttls;
	for (i = 0; i < 10; i++)
		len[i] = strlen(argv[i]);
	r = rds_script(s, RDS_CREATE, 3, 10, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		res = SESS_OK;
	else if (r != NULL)
		store_fail("create", "sid or token exists");
out:
	if (r != NULL)
		freeReplyObject(r);
	if (res == SESS_OK) {
		memcpy(sid_r, sid, sizeof(sid));
		memcpy(token_r, token, sizeof(token));
	}
	sec_wipe(token, sizeof(token));
	sec_wipe(kt, sizeof(kt));
	return res;
}

/* Rotation (token_r set) and its dry run, as sqlite.c's use_token(). */
static enum sess_result
use_token(struct sess_store *s, const char *token, long long now,
    long long idle, char token_r[SESS_TOKEN_SIZE], struct sess_info *info_r)
{
	enum sess_result res = SESS_ERROR;
	char token2[SESS_TOKEN_SIZE], kt[KEY_MAX], kt2[KEY_MAX], nows[24],
	    idles[24];
	const char *argv[5];
	size_t len[5];
	struct sess_info info;
	redisReply *r = NULL;
	int i;

	memset(&info, 0, sizeof(info));
	kt2[0] = '\0';
	if (token_key(token, kt, sizeof(kt)) == -1 ||
	    (token_r != NULL &&
		(random_b64(token2, TOKEN_BYTES) == -1 ||
		    token_key(token2, kt2, sizeof(kt2)) == -1)))
		goto out;
	snprintf(nows, sizeof(nows), "%lld", now);
	snprintf(idles, sizeof(idles), "%lld", idle);
	argv[0] = kt;
	argv[1] = token_r != NULL ? "r" : "p";
	argv[2] = nows;
	argv[3] = idles;
	/* The new token's hash without the "ea:t:" the script adds. */
	argv[4] = kt2[0] != '\0' ? kt2 + strlen(P "t:") : "";
	for (i = 0; i < 5; i++)
		len[i] = strlen(argv[i]);
	if ((r = rds_script(s, RDS_USE, 1, 5, argv, len)) == NULL)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len != 1) {
		store_fail("rotate", "unexpected answer");
		goto out;
	}
	switch (r->element[0]->str[0]) {
	case 'N':
		res = SESS_NOT_FOUND;
		break;
	case 'R':
		res = SESS_REVOKED;
		break;
	case 'E':
		res = SESS_EXPIRED;
		break;
	case 'U':
	case 'O':
		if (r->elements != 8 || info_of(r->element + 1, &info) == -1) {
			store_fail("rotate", "unexpected answer");
			break;
		}
		res = r->element[0]->str[0] == 'U' ? SESS_REUSED : SESS_OK;
		break;
	default:
		store_fail("rotate", "new token exists");
		break;
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	if (res == SESS_REUSED)
		log_event(LOG_WARN, "refresh_token_reused", LS("sid", info.sid),
		    LS("sub", info.sub), LOG_END);
	if (res == SESS_OK && token_r != NULL)
		memcpy(token_r, token2, sizeof(token2));
	if (res == SESS_OK)
		*info_r = info;
	sec_wipe(token2, sizeof(token2));
	sec_wipe(kt, sizeof(kt));
	sec_wipe(kt2, sizeof(kt2));
	return res;
}

static enum sess_result
redis_rotate(struct sess_store *s, const char *token, long long now,
    long long idle, char token_r[SESS_TOKEN_SIZE], struct sess_info *info_r)
{
	return use_token(s, token, now, idle, token_r, info_r);
}

static enum sess_result
redis_peek(struct sess_store *s, const char *token, long long now,
    long long idle, struct sess_info *info_r)
{
	return use_token(s, token, now, idle, NULL, info_r);
}

static enum sess_result
redis_revoke_token(struct sess_store *s, const char *token, long long now)
{
	enum sess_result res = SESS_ERROR;
	char kt[KEY_MAX], nows[24];
	const char *argv[2] = {kt, nows};
	size_t len[2];
	redisReply *r = NULL;

	if (token_key(token, kt, sizeof(kt)) == -1)
		goto out;
	snprintf(nows, sizeof(nows), "%lld", now);
	len[0] = strlen(kt);
	len[1] = strlen(nows);
	r = rds_script(s, RDS_REVOKE_TOKEN, 1, 2, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		res = SESS_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	sec_wipe(kt, sizeof(kt));
	return res;
}

static enum sess_result
redis_revoke(struct sess_store *s, const char *sid, long long now)
{
	enum sess_result res = SESS_ERROR;
	char ks[KEY_MAX], nows[24];
	const char *argv[3] = {ks, sid, nows};
	size_t len[3];
	redisReply *r = NULL;

	if (make_key(ks, sizeof(ks), "s", sid) == -1)
		goto out;
	snprintf(nows, sizeof(nows), "%lld", now);
	len[0] = strlen(ks);
	len[1] = strlen(sid);
	len[2] = strlen(nows);
	r = rds_script(s, RDS_REVOKE, 1, 3, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		res = r->integer < 0 ? SESS_NOT_FOUND : SESS_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	return res;
}

static enum sess_result
redis_revoke_user(
    struct sess_store *s, const char *sub, long long now, unsigned int *count_r)
{
	enum sess_result res = SESS_ERROR;
	char ku[KEY_MAX], nows[24];
	const char *argv[2] = {ku, nows};
	size_t len[2];
	redisReply *r = NULL;

	if (make_key(ku, sizeof(ku), "u", sub) == -1)
		goto out;
	snprintf(nows, sizeof(nows), "%lld", now);
	len[0] = strlen(ku);
	len[1] = strlen(nows);
	r = rds_script(s, RDS_REVOKE_USER, 1, 2, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
		*count_r =
		    r->integer > UINT_MAX ? UINT_MAX : (unsigned int)r->integer;
		res = SESS_OK;
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	return res;
}

static enum sess_result
redis_get(struct sess_store *s, const char *sid, long long now, long long idle,
    struct sess_info *info_r)
{
	static const char *const fields[] = {"HMGET", NULL, "sub", "backend",
	    "client", "created", "last_used", "expires", "revoked_at"};
	enum sess_result res = SESS_ERROR;
	const char *argv[9];
	size_t len[9];
	char ks[KEY_MAX];
	struct sess_info info;
	redisReply *r = NULL, *e[7];
	int i;

	if (make_key(ks, sizeof(ks), "s", sid) == -1)
		goto out;
	for (i = 0; i < 9; i++) {
		argv[i] = i == 1 ? ks : fields[i];
		len[i] = strlen(argv[i]);
	}
	r = command(store_of(s), "get", 9, argv, len);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 7)
		goto out;
	if (r->element[0]->type == REDIS_REPLY_NIL) {
		res = SESS_NOT_FOUND;
		goto out;
	}
	/* info_of() wants the sid first. */
	e[0] = &(redisReply){
	    .type = REDIS_REPLY_STRING, .str = ks + 5, .len = strlen(sid)};
	for (i = 1; i < 7; i++)
		e[i] = r->element[i - 1];
	if (info_of(e, &info) == -1) {
		store_fail("get", "unexpected answer");
		goto out;
	}
	res =
	    state_of(&info, r->element[6]->type != REDIS_REPLY_NIL, now, idle);
out:
	if (r != NULL)
		freeReplyObject(r);
	if (res == SESS_OK)
		*info_r = info;
	return res;
}

static int
newest_first(const void *a, const void *b)
{
	const struct sess_info *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return strcmp(y->sid, x->sid);
}

static enum sess_result
redis_list_user(struct sess_store *s, const char *sub, long long now,
    long long idle, struct sess_info **v_r, size_t *n_r)
{
	enum sess_result res = SESS_ERROR;
	struct sess_info *v = NULL;
	const char *argv[1];
	size_t len[1], n = 0, i;
	char ku[KEY_MAX];
	redisReply *r = NULL;

	if (make_key(ku, sizeof(ku), "u", sub) == -1)
		goto out;
	argv[0] = ku;
	len[0] = strlen(ku);
	r = rds_script(s, RDS_LIST_USER, 1, 1, argv, len);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 8 != 0)
		goto out;
	if (r->elements > 0 &&
	    (v = calloc(r->elements / 8, sizeof(*v))) == NULL)
		goto out;
	for (i = 0; i < r->elements; i += 8) {
		if (info_of(r->element + i, &v[n]) == -1 ||
		    r->element[i + 7]->type != REDIS_REPLY_STRING) {
			store_fail("list_user", "unexpected answer");
			goto out;
		}
		if (state_of(&v[n], r->element[i + 7]->len > 0, now, idle) ==
		    SESS_OK)
			n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), newest_first);
	if (n == 0) {
		free(v);
		v = NULL;
	}
	res = SESS_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (res == SESS_OK) {
		*v_r = v;
		*n_r = n;
		v = NULL;
	}
	free(v);
	return res;
}

/*
 * Redis expires sessions and tokens by itself; this trims the
 * revocation feed. Returns 0 (nothing is deleted one by one) or -1.
 */
static int
redis_purge(struct sess_store *s, long long now, long long idle)
{
	char before[32];
	const char *argv[4] = {"ZREMRANGEBYSCORE", P "rev", "-inf", before};
	size_t len[4];
	redisReply *r;
	int i, ret = -1;

	(void)idle;
	snprintf(before, sizeof(before), "(%lld", sat_sub(now, REV_KEEP));
	for (i = 0; i < 4; i++)
		len[i] = strlen(argv[i]);
	r = command(store_of(s), "purge", 4, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		ret = 0;
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

/* Redis answers PING. Fails at once while Redis is known to be away. */
static int
redis_ping(struct sess_store *s)
{
	const char *argv[1] = {"PING"};
	size_t len[1] = {4};
	redisReply *r;
	int ret;

	r = command(store_of(s), "ping", 1, argv, len);
	ret = r != NULL && r->type == REDIS_REPLY_STATUS ? 0 : -1;
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

static enum sess_result
redis_revoked_since(struct sess_store *s, long long since, size_t max,
    struct sess_revocation **v_r, size_t *n_r)
{
	enum sess_result res = SESS_ERROR;
	struct sess_revocation *v = NULL;
	char mins[24], counts[24], buf[64], *sp, *end;
	const char *argv[8] = {"ZRANGEBYSCORE", P "rev", mins, "+inf",
	    "WITHSCORES", "LIMIT", "0", counts};
	size_t len[8], n = 0, i;
	redisReply *r = NULL;
	long long sc;

	if (max == 0) {
		res = SESS_OK;
		goto out;
	}
	snprintf(mins, sizeof(mins), "%lld", since);
	snprintf(counts, sizeof(counts), "%zu", max > 100000 ? 100000 : max);
	for (i = 0; i < 8; i++)
		len[i] = strlen(argv[i]);
	r = command(store_of(s), "revoked_since", 8, argv, len);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		goto out;
	if (r->elements > 0 &&
	    (v = calloc(r->elements / 2, sizeof(*v))) == NULL)
		goto out;
	for (i = 0; i < r->elements; i += 2) {
		struct sess_revocation *e = &v[n];

		/* "SID EXPIRES", then the score: revoked_at. */
		if (str_of(r->element[i], buf, sizeof(buf)) == -1 ||
		    (sp = strchr(buf, ' ')) == NULL ||
		    (size_t)(sp - buf) != SESS_ID_SIZE - 1 ||
		    ll_of(r->element[i + 1], &sc) == -1) {
			store_fail("revoked_since", "unexpected answer");
			goto out;
		}
		memcpy(e->sid, buf, SESS_ID_SIZE - 1);
		e->sid[SESS_ID_SIZE - 1] = '\0';
		errno = 0;
		e->expires = strtoll(sp + 1, &end, 10);
		if (*end != '\0' || errno != 0) {
			store_fail("revoked_since", "unexpected answer");
			goto out;
		}
		e->revoked_at = sc;
		n++;
	}
	if (n == 0) {
		free(v);
		v = NULL;
	}
	res = SESS_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (res == SESS_OK) {
		*v_r = v;
		*n_r = n;
		v = NULL;
	}
	free(v);
	return res;
}

static void
redis_close(struct sess_store *s)
{
	struct redis_store *st = store_of(s);

	if (st == NULL)
		return;
	if (st->lock_ok) {
		pthread_mutex_lock(&st->lock);
		drop_idle(st);
		pthread_mutex_unlock(&st->lock);
		pthread_mutex_destroy(&st->lock);
	}
	if (st->cond_ok)
		pthread_cond_destroy(&st->cond);
	sec_buf_free(&st->password);
	free(st->idle);
	free(st->host);
	free(st);
}

int
sess_is_redis(const struct sess_store *s)
{
	return s != NULL && s->ops == &redis_ops;
}

int
sess_redis_open(const struct sess_redis_options *o, struct sess_store **r,
    char *err, size_t errlen)
{
	struct redis_store *st = NULL;
	pthread_condattr_t ca;
	unsigned char md[SHA_DIGEST_LENGTH];
	int ms, i, ret = -1;

	if (o == NULL || o->host == NULL || r == NULL || o->port < 1 ||
	    o->port > 65535 || o->db < 0) {
		snprintf(err, errlen, "bad Redis settings");
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->host = strdup(o->host)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	st->base.ops = &redis_ops;
	st->port = o->port;
	st->db = o->db;
	ms = o->timeout_ms > 0 ? o->timeout_ms : 1000;
	st->tv.tv_sec = ms / 1000;
	st->tv.tv_usec = (ms % 1000) * 1000;
	st->max = o->pool > 0 ? o->pool : 16;
	if ((st->idle = calloc(st->max, sizeof(*st->idle))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	st->lock_ok = pthread_mutex_init(&st->lock, NULL) == 0;
	if (pthread_condattr_init(&ca) == 0) {
		st->cond_ok =
		    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		    pthread_cond_init(&st->cond, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (!st->lock_ok || !st->cond_ok) {
		snprintf(err, errlen, "cannot create a mutex");
		goto out;
	}
	if (o->password_file != NULL) {
		st->password =
		    sec_read_file(o->password_file, PASSWORD_MAX, err, errlen);
		if (st->password == NULL)
			goto out;
		if (st->password->len == 0) {
			snprintf(err, errlen, "%s is empty", o->password_file);
			goto out;
		}
	}
	for (i = 0; i < RDS_NSCRIPTS; i++) {
		SHA1((const unsigned char *)scripts[i], strlen(scripts[i]), md);
		str_hex(st->sha[i], md, sizeof(md));
	}
	*r = &st->base;
	st = NULL;
	ret = 0;
out:
	if (st != NULL)
		redis_close(&st->base);
	return ret;
}

static const struct sess_store_ops redis_ops = {
    .name = "redis",
    .close = redis_close,
    .create = redis_create,
    .rotate = redis_rotate,
    .peek = redis_peek,
    .revoke_token = redis_revoke_token,
    .revoke = redis_revoke,
    .revoke_user = redis_revoke_user,
    .get = redis_get,
    .list_user = redis_list_user,
    .purge = redis_purge,
    .ping = redis_ping,
    .revoked_since = redis_revoked_since,
};
