/*
 * Sign-in regulation on three bounded tables. A key's two numbers are
 * {failures, time of the last counted attempt}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/ratelimit.h"
#include "ratelimit/regulate.h"
#include "util/str.h"

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

static int
admit_fn(double *st, void *arg)
{
	struct op *o = arg;

	if (st == NULL)
		return 0;
	decay(o->g, st, o->now);
	st[0] += 1;
	st[1] = o->now;
	return 0;
}

static int
undo_fn(double *st, void *arg)
{
	(void)arg;
	if (st != NULL && st[0] >= 1)
		st[0] -= 1;
	return 0;
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
	/* Admitted: count it now (settled when the result is known). */
	for (k = 0; k < RG_NKEYS; k++) {
		struct op o = {g, (enum rg_key)k, now, 0};

		if (g->threshold[k] == 0)
			continue;
		n = key_of((enum rg_key)k, user, address, key, sizeof(key));
		rl_with(g->t[k], key, n, 1, 0, now, admit_fn, &o);
	}
	return 0;
}

void
rg_settle(struct rg *g, const char *user, const char *address,
    enum rg_outcome outcome)
{
	char key[600];
	size_t n;
	int k;

	if (outcome == RG_FAILED)
		return;
	for (k = 0; k < RG_NKEYS; k++) {
		if (g->threshold[k] == 0)
			continue;
		n = key_of((enum rg_key)k, user, address, key, sizeof(key));
		if (k == RG_PAIR && outcome == RG_SUCCEEDED)
			rl_forget(g->t[k], key, n);
		else
			rl_with(g->t[k], key, n, 0, 0, 0, undo_fn, NULL);
	}
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

/* The code point at s (n bytes left), its length in *len_r; -1 if bad. */
static long
next_cp(const unsigned char *s, size_t n, size_t *len_r)
{
	size_t need, k;
	long cp;

	if (s[0] < 0x80) {
		*len_r = 1;
		return s[0];
	}
	need = s[0] >= 0xf0 ? 3 : s[0] >= 0xe0 ? 2 : s[0] >= 0xc0 ? 1 : 0;
	if (need == 0 || n <= need)
		return -1;
	cp = s[0] & (0x3f >> need);
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	*len_r = need + 1;
	return cp;
}

static int
is_space(long cp)
{
	return cp == ' ' || cp == '\t' || cp == 0xa0 || cp == 0x1680 ||
	    (cp >= 0x2000 && cp <= 0x200b) || cp == 0x202f || cp == 0x205f ||
	    cp == 0x3000 || cp == 0xfeff || cp == 0x180e;
}

static long
fold(long cp)
{
	if (cp >= 0xff01 && cp <= 0xff5e) /* fullwidth ASCII */
		cp -= 0xfee0;
	if (cp >= 'A' && cp <= 'Z')
		cp += 'a' - 'A';
	else if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) /* Latin-1 */
		cp += 0x20;
	return cp;
}

int
rg_canonical_user(const char *user, char *dst, size_t cap)
{
	const unsigned char *p = (const unsigned char *)user;
	size_t n = strlen(user), i = 0, o = 0, len;
	int pending_space = 0;
	size_t enc;
	long cp;

	/* Valid UTF-8 only (no overlong forms: "C0 80" must not become a
	 * NUL). The output is never longer than the input. */
	if (cap == 0 || !str_utf8_valid(user, n))
		return -1;
	while (i < n) {
		if ((cp = next_cp(p + i, n - i, &len)) < 0)
			return -1;
		i += len;
		if (is_space(cp)) {
			pending_space = o > 0;
			continue;
		}
		cp = fold(cp);
		enc = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (o + (pending_space ? 1 : 0) + enc + 1 > cap)
			return -1;
		if (pending_space)
			dst[o++] = ' ';
		pending_space = 0;
		if (cp < 0x80) {
			dst[o++] = (char)cp;
		} else if (cp < 0x800) {
			dst[o++] = (char)(0xc0 | (cp >> 6));
			dst[o++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			dst[o++] = (char)(0xe0 | (cp >> 12));
			dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			dst[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			dst[o++] = (char)(0xf0 | (cp >> 18));
			dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			dst[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	dst[o] = '\0';
	return 0;
}
