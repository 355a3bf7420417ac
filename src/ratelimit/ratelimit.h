/*
 * Token buckets keyed by a string (a client address, a subject, a user
 * name), in a table of bounded size: an attacker cycling through millions
 * of keys cannot grow it. Shared by the daemon and the guard.
 */
#ifndef EA_RATELIMIT_RATELIMIT_H
#define EA_RATELIMIT_RATELIMIT_H

#include <stddef.h>

struct rl_table;

/* The state of a key's bucket after rl_take(). */
struct rl_info {
	double limit;       /* the burst: tokens when full */
	double remaining;   /* tokens left after this take (>= 0) */
	double retry_after; /* seconds until one token is back (0 if allowed) */
	double reset;       /* seconds until the bucket is full again */
};

/*
 * A table of at most max_keys buckets, each refilled at rate tokens per
 * second up to burst. When full, a new key replaces the least recently
 * used one (whose bucket is forgotten: it starts full again if it comes
 * back). Returns NULL when out of memory or rate <= 0 or burst < 1.
 */
struct rl_table *rl_new(size_t max_keys, double rate, double burst);

/* NULL-safe. */
void rl_free(struct rl_table *t);

/*
 * Takes cost tokens from key's bucket at time now (seconds, monotonic).
 * Returns 1 when allowed, 0 when limited (nothing taken); fills *info_r
 * when not NULL. Thread-safe.
 */
int rl_take(struct rl_table *t, const char *key, size_t keylen, double cost,
    double now, struct rl_info *info_r);

/* Forgets key: its bucket starts full again (a success can reset). */
void rl_forget(struct rl_table *t, const char *key, size_t keylen);

/*
 * Runs fn on key's two numbers (for a bucket: tokens and the time of the
 * last refill; other users give them their own meaning) under the
 * table's lock, and returns fn's result. A key not held is created as
 * {init0, init1} (evicting the least recently used one when full) when
 * create is 1; with create 0 fn gets NULL. fn must not block.
 */
int rl_with(struct rl_table *t, const char *key, size_t keylen, int create,
    double init0, double init1, int (*fn)(double *state, void *arg), void *arg);

/* Keys held now (for metrics and tests). */
size_t rl_size(struct rl_table *t);

#endif
