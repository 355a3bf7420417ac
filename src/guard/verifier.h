/*
 * Token verification with a cache of verified tokens, over a key set that
 * can be swapped while requests run. Used by the guard library and by
 * emailauthd's GET /v1/verify.
 */
#ifndef EA_GUARD_VERIFIER_H
#define EA_GUARD_VERIFIER_H

#include <stdatomic.h>
#include <stddef.h>

#include "token/token.h"

/*
 * What a verified token says. Immutable and reference-counted: the cache
 * and every caller holding it share one. It is the library's public
 * struct ea_principal.
 */
struct ea_principal {
	atomic_int refs;
	long long exp;
	char *sub;
	char *name;  /* or NULL */
	char *email; /* or NULL */
	char *scope; /* "" when none */
	char *sid;   /* or NULL */
	char *jti;   /* or NULL */
	char **roles;
	size_t n_roles;
	char *roles_csv; /* "admin,analyst" */
};

struct gv;

/*
 * A verifier for tokens of issuer and audience, with leeway seconds
 * (capped at 300) and a cache of about cache_entries verified tokens.
 * Returns NULL when out of memory.
 */
struct gv *gv_new(const char *issuer, const char *audience, long long leeway,
    size_t cache_entries);

/* NULL-safe; no verification may be running. */
void gv_free(struct gv *v);

/*
 * Installs a key set (NULL: none, every token refused). When owned is 1
 * the verifier frees it once no verification uses it any more; else the
 * caller keeps it alive as long as the verifier may use it. Empties the
 * cache. Thread-safe.
 */
void gv_set_keys(struct gv *v, struct tok_keyset *ks, int owned);

/* 1 when a key set is installed. */
int gv_has_keys(struct gv *v);

/*
 * Verifies token (len bytes) at time now: from the cache when this exact
 * token was verified before and has not expired, else in full. Returns 0
 * and a new reference in *p_r (release with gv_release()), or -1 with the
 * reason in *why. Thread-safe.
 */
int gv_verify(struct gv *v, const char *token, size_t len, long long now,
    struct ea_principal **p_r, enum tok_err *why);

/* Drops a reference. NULL-safe. */
void gv_release(struct ea_principal *p);

/* Cache statistics, for metrics and tests. */
void gv_stats(struct gv *v, unsigned long *hits_r, unsigned long *misses_r);

#endif
