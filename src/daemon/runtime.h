/*
 * What a request runs under: the configuration with everything loaded from
 * it (role map, signing keys, backends, the JWKS and discovery documents).
 * Loaded whole, validated whole, and swapped whole on SIGHUP; a request
 * holds a reference from start to end, so a reload never changes what a
 * request in flight sees.
 */
#ifndef EA_DAEMON_RUNTIME_H
#define EA_DAEMON_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>

#include "authn/authn.h"
#include "config/config.h"
#include "guard/verifier.h"
#include "policy/policy.h"
#include "token/token.h"

#define RT_BACKENDS_MAX 3

struct rt_backend {
	const struct authn_backend *be;
	void *state;
};

struct rt {
	struct cfg *cfg;
	struct pol_map *roles;
	struct tok_keyset *keys;
	struct gv *verifier; /* GET /v1/verify: keys above, with a cache */
	char *jwks;          /* the JWKS document */
	size_t jwks_len;
	char *discovery; /* /.well-known/openid-configuration */
	size_t discovery_len;
	struct rt_backend backends[RT_BACKENDS_MAX];
	size_t n_backends;
	atomic_int refs;
};

/*
 * Loads the configuration at path and everything it names. create_keys 1
 * generates missing signing keys (the daemon); 0 only reads them (-t).
 * Returns 0 and a new runtime (refcount 1), or -1 with a message.
 */
int rt_load(
    const char *path, int create_keys, struct rt **r, char *err, size_t errlen);

/* The current runtime with a new reference, or NULL before rt_swap(). */
struct rt *rt_acquire(void);

/* Drops a reference; the last one frees. NULL-safe. */
void rt_release(struct rt *rt);

/* Installs rt (taking over its reference) and releases the old one. */
void rt_swap(struct rt *rt);

/* From now on the last release frees on a thread of its own. */
void rt_reap_in_background(void);

/*
 * From now on the last release frees on the caller's thread; waits (up to
 * 10 s) for runtimes being freed in the background. Call before the final
 * rt_swap(NULL).
 */
void rt_shutdown(void);

/* The backend of rt named name, or NULL. */
const struct rt_backend *rt_backend(const struct rt *rt, const char *name);

#endif
