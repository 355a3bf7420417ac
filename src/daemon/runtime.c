/*
 * The runtime bundle: configuration + role map + keys + backends.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon/runtime.h"

static void
rt_free(struct rt *rt)
{
	size_t i;

	if (rt == NULL)
		return;
	for (i = 0; i < rt->n_backends; i++)
		rt->backends[i].be->close(rt->backends[i].state);
	gv_free(rt->verifier);
	free(rt->discovery);
	free(rt->jwks);
	tok_keyset_free(rt->keys);
	pol_free(rt->roles);
	cfg_free(rt->cfg);
	free(rt);
}

static char *
discovery_doc(const struct cfg *c)
{
	json_t *o;
	char *s, url[4][600];
	const char *iss = c->issuer;
	size_t n = strlen(iss);

	while (n > 0 && iss[n - 1] == '/')
		n--;
	snprintf(
	    url[0], sizeof(url[0]), "%.*s/.well-known/jwks.json", (int)n, iss);
	snprintf(url[1], sizeof(url[1]), "%.*s/v1/userinfo", (int)n, iss);
	snprintf(url[2], sizeof(url[2]), "%.*s/v1/login", (int)n, iss);
	snprintf(url[3], sizeof(url[3]), "%.*s/v1/refresh", (int)n, iss);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[]}",
	    "issuer", iss, "jwks_uri", url[0], "userinfo_endpoint", url[1],
	    "login_endpoint", url[2], "refresh_endpoint", url[3],
	    "id_token_signing_alg_values_supported", c->tokens.algorithm,
	    "token_endpoint_auth_methods_supported", "none",
	    "subject_types_supported", "public", "response_types_supported");
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "claims_supported",
	    json_pack("[s,s,s,s,s,s,s,s,s,s,s,s]", "iss", "sub", "aud", "exp",
		"iat", "nbf", "jti", "sid", "roles", "scope", "name", "email"));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

int
rt_load(
    const char *path, int create_keys, struct rt **r, char *err, size_t errlen)
{
	struct rt *rt;
	char msg[1024];
	size_t i;
	int ret = -1;

	if ((rt = calloc(1, sizeof(*rt))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	atomic_init(&rt->refs, 1);
	if (cfg_load(path, &rt->cfg, err, errlen) == -1)
		goto out;
	if (pol_load(rt->cfg->roles_file, &rt->roles, err, errlen) == -1)
		goto out;
	if (tok_keyset_load(rt->cfg->state_dir, rt->cfg->tokens.algorithm,
		create_keys, &rt->keys, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: signing keys: %s", path, msg);
		goto out;
	}
	if (tok_keyset_get(rt->keys, TOK_CURRENT) == NULL && create_keys) {
		snprintf(err, errlen, "%s: no current signing key", path);
		goto out;
	}
	if ((rt->jwks = tok_keyset_jwks(rt->keys)) == NULL ||
	    (rt->discovery = discovery_doc(rt->cfg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rt->jwks_len = strlen(rt->jwks);
	rt->verifier = gv_new(rt->cfg->issuer, rt->cfg->tokens.audience,
	    rt->cfg->tokens.leeway, (size_t)rt->cfg->tokens.verify_cache);
	if (rt->verifier == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	gv_set_keys(rt->verifier, rt->keys, 0);
	rt->discovery_len = strlen(rt->discovery);
	for (i = 0; i < rt->cfg->backends.n && i < RT_BACKENDS_MAX; i++) {
		const struct authn_backend *be =
		    authn_backend_find(rt->cfg->backends.v[i]);

		if (be == NULL) {
			snprintf(err, errlen,
			    "%s: backend '%s' is not available in this build",
			    path, rt->cfg->backends.v[i]);
			goto out;
		}
		if (be->open(rt->cfg, &rt->backends[i].state, msg,
			sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s: backend %s: %s", path,
			    be->name, msg);
			goto out;
		}
		rt->backends[i].be = be;
		rt->n_backends++;
		if (create_keys && be->start != NULL &&
		    be->start(rt->backends[i].state) == -1) {
			snprintf(err, errlen, "%s: backend %s cannot start",
			    path, be->name);
			goto out;
		}
	}
	*r = rt;
	rt = NULL;
	ret = 0;
out:
	rt_free(rt);
	return ret;
}

const struct rt_backend *
rt_backend(const struct rt *rt, const char *name)
{
	size_t i;

	for (i = 0; i < rt->n_backends; i++)
		if (strcmp(rt->backends[i].be->name, name) == 0)
			return &rt->backends[i];
	return NULL;
}

static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rt *cur;

struct rt *
rt_acquire(void)
{
	struct rt *rt;

	pthread_mutex_lock(&cur_lock);
	rt = cur;
	if (rt != NULL)
		atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&cur_lock);
	return rt;
}

/*
 * The last release of a runtime replaced by a reload often happens on an
 * HTTP or worker thread, and freeing it can wait (an LDAP backend joins
 * its probe thread, which may sit in a connect timeout): so it is freed
 * on a thread of its own while the daemon serves (rt_reap_in_background()
 * to rt_shutdown()).
 */
static atomic_int reaping;         /* runtimes being freed by a reaper */
static atomic_int free_inline = 1; /* not serving: free on the caller's
					 thread */

static void *
reap(void *arg)
{
	rt_free(arg);
	atomic_fetch_sub(&reaping, 1);
	return NULL;
}

void
rt_release(struct rt *rt)
{
	pthread_attr_t a;
	pthread_t t;
	int started = 0;

	if (rt == NULL ||
	    atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (!atomic_load(&free_inline) && pthread_attr_init(&a) == 0) {
		atomic_fetch_add(&reaping, 1);
		if (pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) ==
			0 &&
		    pthread_create(&t, &a, reap, rt) == 0)
			started = 1;
		else
			atomic_fetch_sub(&reaping, 1);
		pthread_attr_destroy(&a);
	}
	if (!started)
		rt_free(rt);
}

void
rt_reap_in_background(void)
{
	atomic_store(&free_inline, 0);
}

void
rt_shutdown(void)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int i;

	atomic_store(&free_inline, 1);
	for (i = 0; i < 1000 && atomic_load(&reaping) > 0; i++)
		nanosleep(&ts, NULL);
}

void
rt_swap(struct rt *rt)
{
	struct rt *old;

	pthread_mutex_lock(&cur_lock);
	old = cur;
	cur = rt;
	pthread_mutex_unlock(&cur_lock);
	rt_release(old);
}
