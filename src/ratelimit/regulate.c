/*
 * Sign-in regulation on three bounded tables. A key's two numbers are
 * {failures, time of the last counted attempt}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/ratelimit.h"
#include "ratelimit/regulate.h"

struct rg {
	struct rg_config c;
	struct rl_table *t[RG_NKEYS];
	unsigned int threshold[RG_NKEYS];
};

struct op {
	const struct rg *g;
	enum rg_key k;
	double now;
	double wait; /* out of check */
};

static double
delay_for(const struct rg *g, double failures, unsigned int threshold)
{
	double over = failures - threshold, d = g->c.delay;

	if (over < 0)
		return 0;
	/* delay * 2^over, capped (a loop: no libm for one doubling). */
	while (over >= 1 && d < g->c.delay_max) {
		d *= 2;
		over -= 1;
	}
	return d > g->c.delay_max ? g->c.delay_max : d;
}

/* Forgets failures older than the window. */
static void
decay(const struct rg *g, double *st, double now)
{
	if (now - st[1] > g->c.window)
		st[0] = 0;
}

static int
check_fn(double *st, void *arg)
{
	struct op *o = arg;
	unsigned int th = o->g->threshold[o->k];
	double until;

	o->wait = 0;
	if (st == NULL)
		return 0;
	decay(o->g, st, o->now);
	if (st[0] < th)
		return 0;
	until = st[1] + delay_for(o->g, st[0], th);
	if (o->now >= until)
		return 0;
	/* Held back: the attempt still counts, so hammering costs more. */
	st[0] += 1;
	st[1] = o->now;
	o->wait = delay_for(o->g, st[0], th);
	return 1;
}

static int
fail_fn(double *st, void *arg)
{
	struct op *o = arg;

	if (st == NULL)
		return 0;
	decay(o->g, st, o->now);
	st[0] += 1;
	st[1] = o->now;
	return 0;
}

/* The table key of k for user and address. */
static size_t
key_of(
    enum rg_key k, const char *user, const char *address, char *buf, size_t cap)
{
	int n;

	switch (k) {
	case RG_PAIR:
		n = snprintf(buf, cap, "%s%c%s", address, '\0', user);
		break;
	case RG_USER:
		n = snprintf(buf, cap, "%s", user);
		break;
	default:
		n = snprintf(buf, cap, "%s", address);
		break;
	}
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

struct rg *
rg_new(const struct rg_config *c)
{
	struct rg *g;
	int k;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->c = *c;
	g->threshold[RG_PAIR] = c->pair;
	g->threshold[RG_USER] = c->user;
	g->threshold[RG_ADDRESS] = c->address;
	for (k = 0; k < RG_NKEYS; k++) {
		/* The rate and burst are unused: rl_with() only stores. */
		if ((g->t[k] = rl_new(c->max_keys, 1, 1)) == NULL) {
			rg_free(g);
			return NULL;
		}
	}
	return g;
}

void
rg_free(struct rg *g)
{
	int k;

	if (g == NULL)
		return;
	for (k = 0; k < RG_NKEYS; k++)
		rl_free(g->t[k]);
	free(g);
}

double
rg_check(struct rg *g, const char *user, const char *address, double now,
    enum rg_key *why_r)
{
	char key[600];
	size_t n;
	int k;

	for (k = 0; k < RG_NKEYS; k++) {
		struct op o = {g, (enum rg_key)k, now, 0};

		if (g->threshold[k] == 0)
			continue;
		n = key_of((enum rg_key)k, user, address, key, sizeof(key));
		if (rl_with(g->t[k], key, n, 0, 0, 0, check_fn, &o)) {
			*why_r = (enum rg_key)k;
			return o.wait > 0 ? o.wait : 1;
		}
	}
	return 0;
}

void
rg_failure(struct rg *g, const char *user, const char *address, double now)
{
	char key[600];
	size_t n;
	int k;

	for (k = 0; k < RG_NKEYS; k++) {
		struct op o = {g, (enum rg_key)k, now, 0};

		if (g->threshold[k] == 0)
			continue;
		n = key_of((enum rg_key)k, user, address, key, sizeof(key));
		rl_with(g->t[k], key, n, 1, 0, now, fail_fn, &o);
	}
}

void
rg_success(struct rg *g, const char *user, const char *address)
{
	char key[600];
	size_t n = key_of(RG_PAIR, user, address, key, sizeof(key));

	rl_forget(g->t[RG_PAIR], key, n);
}

size_t
rg_size(struct rg *g, enum rg_key k)
{
	return rl_size(g->t[k]);
}

const char *
rg_key_name(enum rg_key k)
{
	static const char *const names[] = {"pair", "user", "address"};

	return k < RG_NKEYS ? names[k] : "?";
}

int
rg_canonical_user(const char *user, char *dst, size_t cap)
{
	const char *e;
	size_t n, i;

	while (*user == ' ' || *user == '\t')
		user++;
	e = user + strlen(user);
	while (e > user && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - user);
	if (n >= cap)
		return -1;
	for (i = 0; i < n; i++)
		dst[i] = user[i] >= 'A' && user[i] <= 'Z'
		    ? (char)(user[i] - 'A' + 'a')
		    : user[i];
	dst[n] = '\0';
	return 0;
}
