/*
 * Sign-in regulation counters in Redis: the rules of
 * src/ratelimit/regulate.c (per pair, user and address; a progressive
 * delay past each threshold; an admitted attempt counted at once and
 * settled later) as two Lua scripts, so that every node counts into the
 * same numbers and guesses spread over several nodes add up.
 *
 * Keys: ea:rg:p:ADDRESS NUL USER, ea:rg:u:USER, ea:rg:a:ADDRESS, each a
 * hash {f failures, t time of the last counted attempt} that expires
 * window seconds after that attempt (older failures are forgotten
 * anyway). The time is Redis's own (TIME), so the nodes' clocks do not
 * matter here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "session/redis.h"

#define RG_KEY_MAX 640

/*
 * KEYS: pair user address. ARGV: the three thresholds (0: not counted),
 * window, delay, delay_max. {0, "0"} admitted and counted, or {k, wait}
 * with k the 1-based key that holds the attempt back.
 */
const char rds_lua_rg_check[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) + tonumber(tm[2]) / 1000000\n"
    "local window = tonumber(ARGV[4])\n"
    "local delay = tonumber(ARGV[5])\n"
    "local dmax = tonumber(ARGV[6])\n"
    "local ttl = math.ceil(window) + 1\n"
    "local function delay_for(f, th)\n"
    "  local over = f - th\n"
    "  if over < 0 then return 0 end\n"
    "  local d = delay\n"
    "  while over >= 1 and d < dmax do d = d * 2; over = over - 1 end\n"
    "  if d > dmax then d = dmax end\n"
    "  return d\n"
    "end\n"
    "local function load(k)\n"
    "  local v = redis.call('HMGET', k, 'f', 't')\n"
    "  local f, t = tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"
    "  if now - t > window then f = 0 end\n"
    "  return f, t\n"
    "end\n"
    "local function save(k, f)\n"
    "  redis.call('HSET', k, 'f', f, 't', string.format('%.6f', now))\n"
    "  redis.call('EXPIRE', k, ttl)\n"
    "end\n"
    "for i = 1, 3 do\n"
    "  local th = tonumber(ARGV[i])\n"
    "  if th > 0 then\n"
    "    local f, t = load(KEYS[i])\n"
    "    if f >= th and now < t + delay_for(f, th) then\n"
    "      save(KEYS[i], f + 1)\n"
    "      return {i, string.format('%.6f', delay_for(f + 1, th))}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = 1, 3 do\n"
    "  if tonumber(ARGV[i]) > 0 then\n"
    "    local f = load(KEYS[i])\n"
    "    save(KEYS[i], f + 1)\n"
    "  end\n"
    "end\n"
    "return {0, '0'}\n";

/*
 * KEYS: pair user address. ARGV: 's' succeeded or 'n' neutral, then the
 * three thresholds. A success forgets the pair; otherwise each count
 * loses the attempt.
 */
const char rds_lua_rg_settle[] =
    "for i = 1, 3 do\n"
    "  if tonumber(ARGV[i + 1]) > 0 then\n"
    "    if i == 1 and ARGV[1] == 's' then\n"
    "      redis.call('DEL', KEYS[1])\n"
    "    else\n"
    "      local f = tonumber(redis.call('HGET', KEYS[i], 'f'))\n"
    "      if f and f >= 1 then redis.call('HSET', KEYS[i], 'f', f - 1) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return 0\n";

/* The three keys of user and address into k (lengths in len). 0 or -1. */
static int
rg_keys(
    char k[3][RG_KEY_MAX], size_t len[3], const char *user, const char *address)
{
	size_t ul = strlen(user), al = strlen(address);
	int n;

	if (ul + al + 16 > RG_KEY_MAX)
		return -1;
	/* A NUL between the two: neither may contain one. */
	n = snprintf(k[0], RG_KEY_MAX, "ea:rg:p:%s", address);
	k[0][n] = '\0';
	memcpy(k[0] + n + 1, user, ul);
	len[0] = (size_t)n + 1 + ul;
	len[1] = (size_t)snprintf(k[1], RG_KEY_MAX, "ea:rg:u:%s", user);
	len[2] = (size_t)snprintf(k[2], RG_KEY_MAX, "ea:rg:a:%s", address);
	return 0;
}

double
sess_redis_rg_check(struct sess_store *s, const struct rg_config *c,
    const char *user, const char *address, enum rg_key *why_r)
{
	char k[3][RG_KEY_MAX], a[6][32], buf[32], *end;
	const char *argv[9];
	size_t len[9];
	redisReply *r = NULL;
	double ret = -1, wait;
	long long which;
	int i;

	if (!sess_is_redis(s) || rg_keys(k, len, user, address) == -1)
		goto out;
	snprintf(a[0], sizeof(a[0]), "%u", c->pair);
	snprintf(a[1], sizeof(a[1]), "%u", c->user);
	snprintf(a[2], sizeof(a[2]), "%u", c->address);
	snprintf(a[3], sizeof(a[3]), "%.3f", c->window);
	snprintf(a[4], sizeof(a[4]), "%.3f", c->delay);
	snprintf(a[5], sizeof(a[5]), "%.3f", c->delay_max);
	for (i = 0; i < 3; i++)
		argv[i] = k[i];
	for (i = 0; i < 6; i++) {
		argv[i + 3] = a[i];
		len[i + 3] = strlen(a[i]);
	}
	r = rds_script(s, RDS_RG_CHECK, 3, 9, argv, len);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[1]->len >= sizeof(buf))
		goto out;
	which = r->element[0]->integer;
	memcpy(buf, r->element[1]->str, r->element[1]->len);
	buf[r->element[1]->len] = '\0';
	wait = strtod(buf, &end);
	if (*end != '\0' || which < 0 || which > RG_NKEYS)
		goto out;
	if (which == 0) {
		ret = 0;
		goto out;
	}
	*why_r = (enum rg_key)(which - 1);
	ret = wait > 0 ? wait : 1;
out:
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}

int
sess_redis_rg_settle(struct sess_store *s, const struct rg_config *c,
    const char *user, const char *address, enum rg_outcome outcome)
{
	char k[3][RG_KEY_MAX], a[3][16];
	const char *argv[7];
	size_t len[7];
	redisReply *r = NULL;
	int i, ret = -1;

	if (outcome == RG_FAILED)
		return 0;
	if (!sess_is_redis(s) || rg_keys(k, len, user, address) == -1)
		goto out;
	snprintf(a[0], sizeof(a[0]), "%u", c->pair);
	snprintf(a[1], sizeof(a[1]), "%u", c->user);
	snprintf(a[2], sizeof(a[2]), "%u", c->address);
	for (i = 0; i < 3; i++) {
		argv[i] = k[i];
		argv[i + 4] = a[i];
		len[i + 4] = strlen(a[i]);
	}
	argv[3] = outcome == RG_SUCCEEDED ? "s" : "n";
	len[3] = 1;
	r = rds_script(s, RDS_RG_SETTLE, 3, 7, argv, len);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	return ret;
}
