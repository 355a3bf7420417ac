/*
 * The verifier: a direct-mapped cache keyed by SHA-256 of the whole token
 * in front of tok_verify().
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "guard/verifier.h"
#include "util/str.h"

#define STRIPES 64

struct keys {
	atomic_int refs;
	struct tok_keyset *ks;
	int owned;
};

struct slot {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct ea_principal *p; /* NULL: empty */
};

struct gv {
	char *issuer;
	char *audience;
	long long leeway;
	/* SHA-256 fetched once: SHA256() fetches it again on every call,
	 * which costs more than hashing a token. */
	EVP_MD *sha256;
	pthread_mutex_t keys_lock;
	struct keys *keys;
	struct slot *slots;
	size_t mask;
	pthread_mutex_t stripe[STRIPES];
	atomic_ulong hits, misses;
	atomic_ulong generation; /* bumped by every gv_set_keys() */
};

static void
keys_release(struct keys *k)
{
	if (k != NULL &&
	    atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1) {
		if (k->owned)
			tok_keyset_free(k->ks);
		free(k);
	}
}

static struct keys *
keys_acquire(struct gv *v)
{
	struct keys *k;

	pthread_mutex_lock(&v->keys_lock);
	k = v->keys;
	if (k != NULL)
		atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&v->keys_lock);
	return k;
}

void
gv_release(struct ea_principal *p)
{
	size_t i;

	if (p == NULL ||
	    atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(p->sub);
	free(p->name);
	free(p->email);
	free(p->scope);
	free(p->sid);
	free(p->jti);
	for (i = 0; i < p->n_roles; i++)
		free(p->roles[i]);
	free(p->roles);
	free(p->roles_csv);
	free(p);
}

/*
 * A claim that may be absent; when present it must be a string without
 * control characters (it ends up in headers such as X-Auth-User).
 * Returns 0 (and a copy or NULL in *r), or -1 when it is unacceptable.
 */
static int
opt_string(const json_t *claims, const char *name, char **r)
{
	const json_t *v = json_object_get(claims, name);

	*r = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) ||
	    str_has_control(json_string_value(v), json_string_length(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	return (*r = strdup(json_string_value(v))) != NULL ? 0 : -1;
}

/* Builds the principal from verified claims. NULL on a wrong type. */
static struct ea_principal *
principal_of(const json_t *claims)
{
	struct ea_principal *p;
	const json_t *roles, *r;
	size_t i, csv = 0;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	atomic_init(&p->refs, 1);
	p->exp = (long long)json_integer_value(json_object_get(claims, "exp"));
	if (opt_string(claims, "sub", &p->sub) == -1 ||
	    opt_string(claims, "name", &p->name) == -1 ||
	    opt_string(claims, "email", &p->email) == -1 ||
	    opt_string(claims, "sid", &p->sid) == -1 ||
	    opt_string(claims, "jti", &p->jti) == -1 ||
	    opt_string(claims, "scope", &p->scope) == -1)
		goto fail;
	if (p->scope == NULL && (p->scope = strdup("")) == NULL)
		goto fail;
	roles = json_object_get(claims, "roles");
	if (roles != NULL &&
	    (!json_is_array(roles) || json_array_size(roles) > 256))
		goto fail;
	if (roles != NULL && json_array_size(roles) > 0) {
		p->roles = calloc(json_array_size(roles), sizeof(char *));
		if (p->roles == NULL)
			goto fail;
		json_array_foreach(roles, i, r)
		{
			/* Role names are [A-Za-z0-9_-]: anything else (a comma
			 * would forge X-Auth-Roles) is not ours. */
			if (!json_is_string(r) || json_string_length(r) == 0 ||
			    strspn(json_string_value(r),
				"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				"0123456789_-") != json_string_length(r))
				goto fail;
			if ((p->roles[p->n_roles] =
				    strdup(json_string_value(r))) == NULL)
				goto fail;
			csv += json_string_length(r) + 1;
			p->n_roles++;
		}
	}
	if ((p->roles_csv = calloc(1, csv + 1)) == NULL)
		goto fail;
	for (i = 0; i < p->n_roles; i++) {
		if (i > 0)
			strcat(p->roles_csv, ",");
		strcat(p->roles_csv, p->roles[i]);
	}
	if (p->sub == NULL || p->scope == NULL)
		goto fail;
	return p;
fail:
	gv_release(p);
	return NULL;
}

struct gv *
gv_new(const char *issuer, const char *audience, long long leeway,
    size_t cache_entries)
{
	struct gv *v;
	size_t n = 64, i;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	while (n < cache_entries && n < ((size_t)1 << 24))
		n <<= 1;
	v->mask = n - 1;
	v->leeway = leeway < 0 ? 0 : leeway > 300 ? 300 : leeway;
	if ((v->issuer = strdup(issuer)) == NULL ||
	    (v->audience = strdup(audience)) == NULL ||
	    (v->slots = calloc(n, sizeof(*v->slots))) == NULL ||
	    (v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		free(v->slots);
		free(v->issuer);
		free(v->audience);
		free(v);
		return NULL;
	}
	pthread_mutex_init(&v->keys_lock, NULL);
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&v->stripe[i], NULL);
	return v;
}

static void
cache_clear(struct gv *v)
{
	size_t i;

	for (i = 0; i <= v->mask; i++) {
		pthread_mutex_t *m = &v->stripe[i % STRIPES];
		struct ea_principal *p;

		pthread_mutex_lock(m);
		p = v->slots[i].p;
		v->slots[i].p = NULL;
		pthread_mutex_unlock(m);
		gv_release(p);
	}
}

void
gv_free(struct gv *v)
{
	size_t i;

	if (v == NULL)
		return;
	cache_clear(v);
	keys_release(v->keys);
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&v->stripe[i]);
	pthread_mutex_destroy(&v->keys_lock);
	EVP_MD_free(v->sha256);
	free(v->slots);
	free(v->issuer);
	free(v->audience);
	free(v);
}

void
gv_set_keys(struct gv *v, struct tok_keyset *ks, int owned)
{
	struct keys *k = NULL, *old;

	if (ks != NULL && (k = calloc(1, sizeof(*k))) != NULL) {
		atomic_init(&k->refs, 1);
		k->ks = ks;
		k->owned = owned;
	} else if (ks != NULL && owned)
		tok_keyset_free(ks);
	pthread_mutex_lock(&v->keys_lock);
	old = v->keys;
	v->keys = k;
	atomic_fetch_add(&v->generation, 1);
	pthread_mutex_unlock(&v->keys_lock);
	keys_release(old);
	/* A key may have been withdrawn: what it verified goes too. */
	cache_clear(v);
}

int
gv_has_keys(struct gv *v)
{
	int has;

	pthread_mutex_lock(&v->keys_lock);
	has = v->keys != NULL;
	pthread_mutex_unlock(&v->keys_lock);
	return has;
}

int
gv_verify(struct gv *v, const char *token, size_t len, long long now,
    struct ea_principal **p_r, enum tok_err *why)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	struct tok_expect e;
	struct ea_principal *p = NULL, *old;
	struct keys *k;
	json_t *claims = NULL;
	size_t idx;
	unsigned long gen;
	pthread_mutex_t *m;

	if (len == 0 || len > TOK_MAX_LEN) {
		*why = TOK_MALFORMED;
		return -1;
	}
	if (EVP_Digest(token, len, d, NULL, v->sha256, NULL) != 1) {
		*why = TOK_MALFORMED;
		return -1;
	}
	memcpy(&idx, d, sizeof(idx));
	idx &= v->mask;
	m = &v->stripe[idx % STRIPES];
	pthread_mutex_lock(m);
	if (v->slots[idx].p != NULL &&
	    memcmp(v->slots[idx].digest, d, sizeof(d)) == 0) {
		p = v->slots[idx].p;
		if (now > p->exp + v->leeway) {
			/* Expired: drop it, and verify in full below (which
			 * gives the precise reason). */
			v->slots[idx].p = NULL;
			pthread_mutex_unlock(m);
			gv_release(p);
			p = NULL;
		} else {
			atomic_fetch_add_explicit(
			    &p->refs, 1, memory_order_relaxed);
			pthread_mutex_unlock(m);
			atomic_fetch_add_explicit(
			    &v->hits, 1, memory_order_relaxed);
			*p_r = p;
			return 0;
		}
	} else
		pthread_mutex_unlock(m);
	atomic_fetch_add_explicit(&v->misses, 1, memory_order_relaxed);
	gen = atomic_load(&v->generation);
	if ((k = keys_acquire(v)) == NULL) {
		*why = TOK_UNKNOWN_KID;
		return -1;
	}
	e.issuer = v->issuer;
	e.audience = v->audience;
	e.now = now;
	e.leeway = v->leeway;
	if (tok_verify(k->ks, token, len, &e, &claims, why) == -1) {
		keys_release(k);
		return -1;
	}
	keys_release(k);
	p = principal_of(claims);
	json_decref(claims);
	if (p == NULL) {
		*why = TOK_BAD_CLAIMS;
		return -1;
	}
	/*
	 * Cache it only if no key set was installed meanwhile: one that
	 * withdrew the key that verified it must not find it cached.
	 */
	old = NULL;
	pthread_mutex_lock(m);
	if (atomic_load(&v->generation) == gen) {
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
		old = v->slots[idx].p;
		memcpy(v->slots[idx].digest, d, sizeof(d));
		v->slots[idx].p = p;
	}
	pthread_mutex_unlock(m);
	gv_release(old);
	*p_r = p;
	return 0;
}

void
gv_stats(struct gv *v, unsigned long *hits_r, unsigned long *misses_r)
{
	*hits_r = atomic_load(&v->hits);
	*misses_r = atomic_load(&v->misses);
}
