/*
 * Unit tests for src/ratelimit: token buckets in a table of fixed size.
 * Every time is an explicit `now`; nothing sleeps. Rates, bursts and times
 * are chosen so that the expected values are exact in binary floating
 * point; the comparisons still allow 1e-9 for rounding.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ratelimit/ratelimit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A take of key at now; returns what rl_take() returned. */
static int
take(struct rl_table *t, const char *key, double cost, double now,
    struct rl_info *info_r)
{
	return rl_take(t, key, strlen(key), cost, now, info_r);
}

/* Fails the test when got is further than 1e-9 from want. */
static void
check_near(
    double got, double want, const char *what, const char *name, size_t step)
{
	double d = got - want;

	if (!(d <= 1e-9 && d >= -1e-9))
		fail_msg("%s, step %zu: %s is %.17g, want %.17g", name, step,
		    what, got, want);
}

/* Makes the key "k<i>" in buf. */
static const char *
key_n(char *buf, size_t size, size_t i)
{
	int n = snprintf(buf, size, "k%zu", i);

	assert_true(n > 0 && (size_t)n < size);
	return buf;
}

static void
test_new_args(void **state)
{
	static const struct {
		size_t max_keys;
		double rate, burst;
	} bad[] = {
	    {0, 1, 1},
	    {10, 0, 1},
	    {10, -1, 1},
	    {10, NAN, 1},
	    {10, INFINITY, 1},
	    {10, 1, 0.999},
	    {10, 1, 0},
	    {10, 1, -5},
	    {10, 1, NAN},
	    {10, 1, INFINITY},
	    {SIZE_MAX, 1, 1},
	};
	struct rl_table *t;
	struct rl_info info = {-1, -1, -1, -1};
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		if ((t = rl_new(bad[i].max_keys, bad[i].rate, bad[i].burst)) !=
		    NULL) {
			rl_free(t);
			fail_msg("case %zu: rl_new accepted it", i);
		}
	}
	rl_free(NULL);
	rl_forget(NULL, "a", 1);
	assert_int_equal(rl_size(NULL), 0);
	assert_int_equal(rl_take(NULL, "a", 1, 1, 0, &info), 0);

	t = rl_new(1, 1e-3, 1);
	assert_non_null(t);
	/* Unusable arguments are limited and leave info alone. */
	assert_int_equal(rl_take(t, NULL, 1, 1, 0, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, -1, 0, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, NAN, 0, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, INFINITY, 0, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, 1, NAN, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, 1, INFINITY, &info), 0);
	assert_int_equal(rl_take(t, "a", 1, 1, -INFINITY, &info), 0);
	assert_true(info.limit == -1 && info.remaining == -1 &&
	    info.retry_after == -1 && info.reset == -1);
	assert_int_equal(rl_size(t), 0);
	rl_forget(t, NULL, 1);
	/* The empty key is a key; info_r may be NULL. */
	assert_int_equal(rl_take(t, NULL, 0, 1, 0, NULL), 1);
	assert_int_equal(rl_take(t, "", 0, 1, 0, &info), 0);
	assert_int_equal(rl_size(t), 1);
	rl_forget(t, NULL, 0);
	assert_int_equal(rl_size(t), 0);
	rl_free(t);
}

struct burst_case {
	double rate, burst, cost;
	size_t want; /* allowed in a row at one instant */
};

static const struct burst_case burst_cases[] = {
    {1, 10, 1, 10},
    {100, 1, 1, 1},
    {1e-3, 5, 2, 2},
    {5, 7.5, 2.5, 3},
    {1, 3, 0.5, 6},
    {1, 1.5, 1, 1},
    {1, 4, 5, 0},
};

static void
test_burst_then_limited(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < N(burst_cases); i++) {
		const struct burst_case *tc = &burst_cases[i];
		struct rl_table *t = rl_new(16, tc->rate, tc->burst);
		struct rl_info info;
		size_t got = 0;

		assert_non_null(t);
		while (got < 1000 && take(t, "10.0.0.1", tc->cost, 5, &info))
			got++;
		if (got != tc->want)
			fail_msg("case %zu: %zu allowed, want %zu", i, got,
			    tc->want);
		/* Limited stays limited at the same instant. */
		for (j = 0; j < 5; j++)
			assert_int_equal(
			    take(t, "10.0.0.1", tc->cost, 5, &info), 0);
		check_near(info.limit, tc->burst, "limit", "burst", i);
		assert_true(info.retry_after > 0);
		rl_free(t);
	}
}

struct step {
	double now, cost;
	int want;
	double remaining, retry_after, reset;
};

struct seq_case {
	const char *name;
	double rate, burst;
	struct step steps[10];
	size_t n;
};

static const struct seq_case seq_cases[] = {
    {"rate 2, burst 4", 2, 4,
	{
	    {0, 1, 1, 3, 0, 0.5},
	    {0, 1, 1, 2, 0, 1},
	    {0, 1, 1, 1, 0, 1.5},
	    {0, 1, 1, 0, 0, 2},
	    {0, 1, 0, 0, 0.5, 2},
	    {0.25, 1, 0, 0.5, 0.25, 1.75},
	    {0.5, 1, 1, 0, 0, 2},
	    {1.5, 1, 1, 1, 0, 1.5},
	    {10, 1, 1, 3, 0, 0.5},
	},
	9},
    {"cost 3, rate 0.5, burst 5", 0.5, 5,
	{
	    {0, 3, 1, 2, 0, 6},
	    {0, 3, 0, 2, 2, 6},
	    {1, 3, 0, 2.5, 1, 5},
	    {2, 3, 1, 0, 0, 10},
	    {2, 0, 1, 0, 0, 10},
	    {2, 6, 0, 0, 12, 10},
	    {100, 5, 1, 0, 0, 10},
	    {100, 0.5, 0, 0, 1, 10},
	    {101, 0.5, 1, 0, 0, 10},
	},
	9},
    {"fractional burst 1.5", 1, 1.5,
	{
	    {0, 1, 1, 0.5, 0, 1},
	    {0, 1, 0, 0.5, 0.5, 1},
	    {0.5, 1, 1, 0, 0, 1.5},
	    {0.75, 0.25, 1, 0, 0, 1.5},
	    {3, 1, 1, 0.5, 0, 1},
	},
	5},
    {"slow refill, rate 1/64", 1.0 / 64, 2,
	{
	    {1000, 2, 1, 0, 0, 128},
	    {1016, 1, 0, 0.25, 48, 112},
	    {1064, 1, 1, 0, 0, 128},
	    {1064, 1, 0, 0, 64, 128},
	},
	4},
};

static void
test_sequences(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < N(seq_cases); i++) {
		const struct seq_case *tc = &seq_cases[i];
		struct rl_table *t = rl_new(100, tc->rate, tc->burst);

		assert_non_null(t);
		for (j = 0; j < tc->n; j++) {
			const struct step *st = &tc->steps[j];
			struct rl_info info;
			int got = take(
			    t, "user@example.com", st->cost, st->now, &info);

			if (got != st->want)
				fail_msg("%s, step %zu: got %d, want %d",
				    tc->name, j, got, st->want);
			check_near(info.limit, tc->burst, "limit", tc->name, j);
			check_near(info.remaining, st->remaining, "remaining",
			    tc->name, j);
			check_near(info.retry_after, st->retry_after,
			    "retry_after", tc->name, j);
			check_near(info.reset, st->reset, "reset", tc->name, j);
		}
		rl_free(t);
	}
}

struct retry_case {
	double rate, burst, cost, t0;
};

static const struct retry_case retry_cases[] = {
    {0.1, 1, 1, 1e6 + 0.3},
    {3, 5, 1, 123456.789},
    {0.7, 10, 3.3, 0.1},
    {1.0 / 3, 2, 1, 86400.0 * 365},
    {1e-4, 1, 1, 42.42},
};

/* A client that waits retry_after, and not less, gets through. */
static void
test_retry_after_suffices(void **state)
{
	size_t i, n;

	(void)state;
	for (i = 0; i < N(retry_cases); i++) {
		const struct retry_case *tc = &retry_cases[i];
		struct rl_table *t = rl_new(8, tc->rate, tc->burst);
		struct rl_info info;
		double r;

		assert_non_null(t);
		for (n = 0; n < 100 && take(t, "ip", tc->cost, tc->t0, &info);
		     n++)
			;
		assert_true(n < 100);
		r = info.retry_after;
		assert_true(r > 0);
		if (take(t, "ip", tc->cost, tc->t0 + r * 0.5, &info) != 0)
			fail_msg("case %zu: allowed at half retry_after", i);
		check_near(info.retry_after, r * 0.5, "retry_after", "half", i);
		if (take(t, "ip", tc->cost, tc->t0 + r, &info) != 1)
			fail_msg("case %zu: limited after retry_after %.17g "
				 "(retry_after now %.17g)",
			    i, r, info.retry_after);
		rl_free(t);
	}
}

static void
test_independent_keys(void **state)
{
	/* Prefixes, case, embedded NUL: all distinct keys. */
	static const struct {
		const char *p;
		size_t len;
	} keys[] = {
	    {"10.0.0.1", 8},
	    {"10.0.0.10", 9},
	    {"10.0.0.1\0", 9},
	    {"a\0b", 3},
	    {"a\0c", 3},
	    {"Alice", 5},
	    {"alice", 5},
	    {"", 0},
	};
	struct rl_table *t = rl_new(100, 1, 2), *t2 = rl_new(100, 1, 2);
	struct rl_info info;
	size_t i, j;

	(void)state;
	assert_non_null(t);
	assert_non_null(t2);
	for (i = 0; i < N(keys); i++) {
		/* Every key before i is empty, i and after are full. */
		for (j = 0; j < N(keys); j++) {
			int want = j >= i;

			if (rl_take(t, keys[j].p, keys[j].len, 0, 0, &info) !=
				1 ||
			    (info.remaining == 2) != want)
				fail_msg("exhausting key %zu: key %zu has %g",
				    i, j, info.remaining);
		}
		assert_int_equal(
		    rl_take(t, keys[i].p, keys[i].len, 2, 0, &info), 1);
		assert_int_equal(
		    rl_take(t, keys[i].p, keys[i].len, 1, 0, &info), 0);
	}
	assert_int_equal(rl_size(t), N(keys));
	/* Another table does not share buckets. */
	assert_int_equal(rl_take(t2, keys[0].p, keys[0].len, 2, 0, &info), 1);
	rl_free(t);
	rl_free(t2);
}

static void
test_time_backwards(void **state)
{
	struct rl_table *t = rl_new(10, 1, 2);
	struct rl_info info;

	(void)state;
	assert_non_null(t);
	assert_int_equal(take(t, "k", 2, 100, &info), 1);
	/* Back by 50 s: no refill, nothing granted, no crash. */
	assert_int_equal(take(t, "k", 1, 50, &info), 0);
	check_near(info.remaining, 0, "remaining", "back", 0);
	check_near(info.retry_after, 1, "retry_after", "back", 0);
	/* Back to 100: the 50 s are not counted twice. */
	assert_int_equal(take(t, "k", 1, 99.5, &info), 0);
	assert_int_equal(take(t, "k", 1, 100, &info), 0);
	check_near(info.remaining, 0, "remaining", "back", 1);
	assert_int_equal(take(t, "k", 1, 100.5, &info), 0);
	check_near(info.remaining, 0.5, "remaining", "back", 2);
	assert_int_equal(take(t, "k", 1, 101, &info), 1);
	assert_int_equal(take(t, "k", 1, 101, &info), 0);
	/* A leap to the far future and back. */
	assert_int_equal(take(t, "k", 2, 1e300, &info), 1);
	assert_int_equal(take(t, "k", 1, -1e300, &info), 0);
	check_near(info.remaining, 0, "remaining", "leap", 0);
	assert_int_equal(take(t, "k", 1, 0, &info), 0);
	/* From -1.5e308 to 1.5e308 the elapsed time overflows: full. */
	assert_int_equal(take(t, "j", 2, -1.5e308, &info), 1);
	assert_int_equal(take(t, "j", 2, 1.5e308, &info), 1);
	check_near(info.remaining, 0, "remaining", "overflow", 0);
	check_near(info.reset, 2, "reset", "overflow", 0);
	rl_free(t);
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan's allocator: glibc's mallinfo2() does not see it. */
size_t __sanitizer_get_current_allocated_bytes(void);

static size_t
heap_in_use(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
/* The bytes malloc has handed out, heap and mmap. */
static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}
#endif

static void
test_capacity_bound(void **state)
{
	static const size_t caps[] = {1, 3, 1000, 2047, 2048, 5000, 100000};
	char buf[32];
	size_t c, i, base, before, after;

	(void)state;
	for (c = 0; c < N(caps); c++) {
		size_t max = caps[c];
		struct rl_table *t;

		base = heap_in_use();
		t = rl_new(max, 1, 5);
		assert_non_null(t);
		before = heap_in_use();
		/* The accounting sees the table, so it would see growth. */
		if (before < base + max * 64)
			fail_msg("max %zu: rl_new took %zu bytes, or the heap "
				 "accounting does not work",
			    max, before - base);
		if (max == 100000)
			print_message("memory: %zu keys in %zu bytes\n", max,
			    before - base);
		for (i = 0; i < 10 * max; i++) {
			key_n(buf, sizeof(buf), i);
			if (rl_take(t, buf, strlen(buf), 1, (double)i, NULL) !=
			    1)
				fail_msg(
				    "max %zu: new key %zu limited", max, i);
			if (i % 997 == 0 && rl_size(t) > max)
				fail_msg("max %zu: %zu keys after %zu", max,
				    rl_size(t), i);
		}
		after = heap_in_use();
		if (after != before)
			fail_msg("max %zu: heap went from %zu to %zu", max,
			    before, after);
		/* Every stripe got ten times its share: all are full. */
		if (rl_size(t) != max)
			fail_msg(
			    "max %zu: %zu keys at the end", max, rl_size(t));
		rl_free(t);
	}
}

/* A take at time 0, never refilled: how much key has left after it. */
static double
remaining_after(struct rl_table *t, const char *key)
{
	struct rl_info info;

	assert_int_equal(take(t, key, 1, 0, &info), 1);
	return info.remaining;
}

static void
test_lru_eviction(void **state)
{
	/*
	 * Four slots, burst 10: a key present comes back with fewer tokens
	 * than 9, an evicted one starts full again (9 after this take).
	 * Before the steps: k0..k3 inserted in order, then k0 used again.
	 */
	static const struct {
		const char *key;
		double want;
		const char *lru; /* most to least recently used, after */
	} steps[] = {
	    {"k4", 9, "k4 k0 k3 k2"}, /* evicts k1, not k0 */
	    {"k0", 7, "k0 k4 k3 k2"}, {"k1", 9, "k1 k0 k4 k3"}, /* evicts k2 */
	    {"k3", 8, "k3 k1 k0 k4"}, {"k2", 9, "k2 k3 k1 k0"}, /* evicts k4 */
	    {"k4", 9, "k4 k2 k3 k1"},                           /* evicts k0 */
	    {"k1", 8, "k1 k4 k2 k3"}, {"k0", 9, "k0 k1 k4 k2"}, /* evicts k3 */
	};
	struct rl_table *t = rl_new(4, 1e-9, 10);
	char buf[8];
	size_t i;
	double got;

	(void)state;
	assert_non_null(t);
	for (i = 0; i < 4; i++)
		assert_true(
		    remaining_after(t, key_n(buf, sizeof(buf), i)) == 9);
	assert_true(remaining_after(t, "k0") == 8);
	for (i = 0; i < N(steps); i++) {
		got = remaining_after(t, steps[i].key);
		if (got != steps[i].want)
			fail_msg("step %zu (%s, then %s): %g left, want %g", i,
			    steps[i].key, steps[i].lru, got, steps[i].want);
		assert_int_equal(rl_size(t), 4);
	}
	rl_free(t);
}

static void
test_forget(void **state)
{
	struct rl_table *t = rl_new(3, 1e-9, 2);
	struct rl_info info;

	(void)state;
	assert_non_null(t);
	assert_int_equal(take(t, "a", 2, 0, &info), 1);
	assert_int_equal(take(t, "a", 1, 0, &info), 0);
	assert_int_equal(take(t, "b", 1, 0, &info), 1);
	assert_int_equal(take(t, "c", 1, 0, &info), 1);
	assert_int_equal(rl_size(t), 3);
	rl_forget(t, "a", 1);
	assert_int_equal(rl_size(t), 2);
	rl_forget(t, "a", 1);
	rl_forget(t, "zz", 2);
	assert_int_equal(rl_size(t), 2);
	/* "a" comes back full, in its freed slot: nothing is evicted. */
	assert_int_equal(take(t, "a", 2, 0, &info), 1);
	assert_int_equal(rl_size(t), 3);
	assert_int_equal(take(t, "b", 1, 0, &info), 1);
	check_near(info.remaining, 0, "remaining", "b kept", 0);
	assert_int_equal(take(t, "c", 1, 0, &info), 1);
	check_near(info.remaining, 0, "remaining", "c kept", 0);
	/* Forget everything, in an order other than insertion. */
	rl_forget(t, "b", 1);
	rl_forget(t, "a", 1);
	rl_forget(t, "c", 1);
	assert_int_equal(rl_size(t), 0);
	assert_int_equal(take(t, "c", 2, 0, &info), 1);
	assert_int_equal(take(t, "d", 2, 0, &info), 1);
	assert_int_equal(rl_size(t), 2);
	rl_free(t);
}

static void
test_long_keys(void **state)
{
	/* Lengths around the inline limit and beyond. */
	static const size_t lens[] = {63, 64, 65, 255, 256, 257, 1024};
	struct rl_table *t = rl_new(1000, 1e-9, 1);
	char *a = malloc(1024), *b = malloc(1024);
	struct rl_info info;
	size_t i, j, len;

	(void)state;
	assert_non_null(t);
	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'x', 1024);
	for (i = 0; i < N(lens); i++) {
		len = lens[i];
		/* A key of every length, each a prefix of the next. */
		assert_int_equal(rl_take(t, a, len, 1, 0, &info), 1);
		/* Same bytes, same bucket: now empty. */
		memcpy(b, a, len);
		assert_int_equal(rl_take(t, b, len, 1, 0, &info), 0);
		/* One byte changed, first, middle or last: distinct. */
		for (j = 0; j < 3; j++) {
			size_t at = j == 0 ? 0 : j == 1 ? len / 2 : len - 1;

			b[at] = (char)('a' + i);
			if (rl_take(t, b, len, 1, 0, &info) != 1)
				fail_msg("len %zu, byte %zu changed: limited",
				    len, at);
			b[at] = 'x';
		}
	}
	assert_int_equal(rl_size(t), N(lens) * 4);
	/* A 1 KiB key is forgotten like any other. */
	rl_forget(t, a, 1024);
	assert_int_equal(rl_size(t), N(lens) * 4 - 1);
	assert_int_equal(rl_take(t, a, 1024, 1, 0, &info), 1);
	assert_int_equal(rl_take(t, a, 257, 1, 0, &info), 0);
	free(a);
	free(b);
	rl_free(t);
}

#define THREADS        4
#define STEPS          200000
#define DT             1e-4
#define T_BASE         5000.0
#define SHARED_KEYS    16
#define CHURN_MAX_KEYS 2048

struct worker {
	struct rl_table *shared, *churn;
	size_t id;
	size_t allowed[SHARED_KEYS];
	int ok;
};

static void *
worker(void *arg)
{
	struct worker *w = arg;
	char key[32];
	size_t s, k;
	int n;

	for (s = 0; s < STEPS; s++) {
		double now = T_BASE + (double)s * DT;

		k = (s * 7 + w->id) % SHARED_KEYS;
		n = snprintf(key, sizeof(key), "shared%zu", k);
		if (rl_take(w->shared, key, (size_t)n, 1, now, NULL) == 1)
			w->allowed[k]++;
		/* Many more keys than slots: constant eviction. */
		n = snprintf(key, sizeof(key), "churn%zu-%zu", w->id, s);
		if (rl_take(w->churn, key, (size_t)n, 1, now, NULL) != 1)
			return NULL;
		if (s % 3 == 0)
			rl_forget(w->churn, key, (size_t)n);
		if (s % 1000 == 0 && rl_size(w->churn) > CHURN_MAX_KEYS)
			return NULL;
	}
	w->ok = 1;
	return NULL;
}

static void
test_threads(void **state)
{
	const double rate = 10, burst = 20;
	const double window = (STEPS - 1) * DT;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct rl_table *shared = rl_new(4096, rate, burst);
	struct rl_table *churn = rl_new(CHURN_MAX_KEYS, 1, 1);
	size_t i, k, total;

	(void)state;
	assert_non_null(shared);
	assert_non_null(churn);
	memset(w, 0, sizeof(w));
	for (i = 0; i < THREADS; i++) {
		w[i].shared = shared;
		w[i].churn = churn;
		w[i].id = i;
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < THREADS; i++)
		if (!w[i].ok)
			fail_msg("worker %zu: a churn take was limited or the "
				 "table overflowed",
			    i);
	for (k = 0; k < SHARED_KEYS; k++) {
		total = 0;
		for (i = 0; i < THREADS; i++)
			total += w[i].allowed[k];
		/* Each key was asked 50000 times: far above its budget. */
		if ((double)total > burst + rate * window ||
		    (double)total < burst)
			fail_msg("key %zu: %zu allowed, budget %g", k, total,
			    burst + rate * window);
	}
	assert_int_equal(rl_size(shared), SHARED_KEYS);
	assert_true(rl_size(churn) <= CHURN_MAX_KEYS);
	rl_free(shared);
	rl_free(churn);
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints takes per second on one thread; asserts nothing about speed. */
static void
test_benchmark(void **state)
{
	static const struct {
		const char *what;
		size_t max_keys, nkeys;
	} runs[] = {
	    {"1000 hot keys", 100000, 1000},
	    {"100000 keys, all held", 100000, 100000},
	    {"400000 keys, evicting", 100000, 400000},
	};

	enum {
		TAKES = 2000000,
		KEYS = 400000,
		KEYSIZE = 40
	};

	char *keys = malloc((size_t)KEYS * KEYSIZE);
	size_t r, i, k, allowed;
	double t0, dt;
	int n;

	(void)state;
	assert_non_null(keys);
	/* Addresses as a client would send them, made before the clock. */
	for (i = 0; i < KEYS; i++) {
		n = snprintf(keys + i * KEYSIZE, KEYSIZE, "2001:db8:%zx::%zx",
		    i * 7919 % 65536, i);
		assert_true(n > 0 && n < KEYSIZE);
	}
	for (r = 0; r < N(runs); r++) {
		struct rl_table *t = rl_new(runs[r].max_keys, 100, 50);

		assert_non_null(t);
		allowed = 0;
		t0 = seconds();
		for (i = 0; i < TAKES; i++) {
			const char *p;

			k = (i * 2654435761u) % runs[r].nkeys;
			p = keys + k * KEYSIZE;
			allowed += (size_t)rl_take(
			    t, p, strlen(p), 1, (double)i * 1e-6, NULL);
		}
		dt = seconds() - t0;
		print_message("benchmark: %s: %.0f takes/s (%zu allowed)\n",
		    runs[r].what, TAKES / dt, allowed);
		assert_true(allowed > 0);
		rl_free(t);
	}
	free(keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_args),
	    cmocka_unit_test(test_burst_then_limited),
	    cmocka_unit_test(test_sequences),
	    cmocka_unit_test(test_retry_after_suffices),
	    cmocka_unit_test(test_independent_keys),
	    cmocka_unit_test(test_time_backwards),
	    cmocka_unit_test(test_capacity_bound),
	    cmocka_unit_test(test_lru_eviction),
	    cmocka_unit_test(test_forget),
	    cmocka_unit_test(test_long_keys),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_benchmark),
	};

	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
