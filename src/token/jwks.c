/*
 * A keyset from a JWKS document (RFC 7517), for the guard: public keys
 * only. A key is used when it is EC P-256 with alg ES256 (or none) or RSA
 * of 2048+ bits with alg RS256 (or none), has a kid, and its use, when
 * given, is "sig". Other keys are skipped, not fatal: a JWKS may carry
 * keys for other purposes. jku, x5u, x5c and private members are never
 * read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "token/internal.h"
#include "token/token.h"
#include "util/b64.h"

/* Largest JWKS document accepted. */
#define JWKS_MAX (64 * 1024)

/* The largest RSA public exponent accepted, in bytes (64 bits). */
#define E_MAX 8

/* A string member of o, or NULL when absent or not a string. */
static const char *
member(const json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/* Decodes the base64url string member name of o into at most cap bytes. */
static long
member_bytes(const json_t *o, const char *name, unsigned char *dst, size_t cap)
{
	const json_t *v = json_object_get(o, name);

	if (!json_is_string(v))
		return -1;
	return b64url_decode(
	    dst, cap, json_string_value(v), json_string_length(v));
}

/* Builds an EVP_PKEY of type ("EC" or "RSA") from params, or NULL. */
static EVP_PKEY *
from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL, *ret = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* For EC: the point is on the curve, not at infinity. */
	if (strcmp(type, "EC") == 0 &&
	    ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
		EVP_PKEY_public_check(check) != 1))
		goto out;
	ret = pkey;
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return ret;
}

/* The EC P-256 public key of a JWK, or NULL with the reason in why. */
static EVP_PKEY *
ec_key(const json_t *jwk, const char **why)
{
	unsigned char pt[65];
	const char *crv = member(jwk, "crv");
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *ret = NULL;

	if (crv == NULL || strcmp(crv, "P-256") != 0) {
		*why = "EC key not on P-256";
		goto out;
	}
	/* An uncompressed point: 04 || x || y, each exactly 32 bytes. */
	pt[0] = 0x04;
	if (member_bytes(jwk, "x", pt + 1, 32) != 32 ||
	    member_bytes(jwk, "y", pt + 33, 32) != 32) {
		*why = "EC key with a bad x or y";
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(
		bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(
		bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) != 1 ||
	    (ret = from_params("EC", bld)) == NULL)
		*why = "EC key not a valid P-256 point";
out:
	OSSL_PARAM_BLD_free(bld);
	return ret;
}

/* The RSA public key of a JWK, or NULL with the reason in why. */
static EVP_PKEY *
rsa_key(const json_t *jwk, const char **why)
{
	unsigned char n[TOK_SIG_MAX], e[E_MAX];
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *ret = NULL;
	long nl, el;

	if ((nl = member_bytes(jwk, "n", n, sizeof(n))) <= 0 ||
	    (el = member_bytes(jwk, "e", e, sizeof(e))) <= 0) {
		*why = "RSA key with a bad or too long n or e";
		goto out;
	}
	if ((bn = BN_bin2bn(n, (int)nl, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)el, NULL)) == NULL) {
		*why = "out of memory";
		goto out;
	}
	if (!BN_is_odd(be) || BN_is_one(be) || !BN_is_odd(bn) ||
	    BN_num_bits(bn) < TOK_RSA_MIN_BITS ||
	    BN_num_bits(bn) > TOK_RSA_MAX_BITS) {
		*why = "RSA key too small, too large or malformed";
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (ret = from_params("RSA", bld)) == NULL)
		*why = "RSA key not accepted by OpenSSL";
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return ret;
}

/*
 * Turns one JWK into a key. Returns 1 and the key in *r, or 0 when the
 * key is not usable (the reason in *why; running out of memory counts).
 */
static int
jwk_key(const json_t *jwk, struct tok_key **r, const char **why)
{
	const char *kty, *alg, *use, *kid;
	const json_t *v;
	EVP_PKEY *pkey = NULL;
	char msg[128];
	int ec, ret = 0;

	if (!json_is_object(jwk)) {
		*why = "a key is not a JSON object";
		goto out;
	}
	kty = member(jwk, "kty");
	alg = member(jwk, "alg");
	use = member(jwk, "use");
	v = json_object_get(jwk, "kid");
	kid = json_string_value(v);
	if (kty == NULL ||
	    (strcmp(kty, "EC") != 0 && strcmp(kty, "RSA") != 0)) {
		*why = "key type neither EC nor RSA";
		goto out;
	}
	ec = strcmp(kty, "EC") == 0;
	if (json_object_get(jwk, "alg") != NULL &&
	    (alg == NULL || strcmp(alg, ec ? "ES256" : "RS256") != 0)) {
		*why = "alg neither ES256 for EC nor RS256 for RSA";
		goto out;
	}
	if (json_object_get(jwk, "use") != NULL &&
	    (use == NULL || strcmp(use, "sig") != 0)) {
		*why = "use is not sig";
		goto out;
	}
	if (kid == NULL || json_string_length(v) == 0 ||
	    json_string_length(v) > TOK_KID_MAX ||
	    strlen(kid) != json_string_length(v)) {
		*why = "kid missing, empty or too long";
		goto out;
	}
	if ((pkey = ec ? ec_key(jwk, why) : rsa_key(jwk, why)) == NULL)
		goto out;
	if (tok_key_new(pkey, 0, kid, r, msg, sizeof(msg)) == -1) {
		*why = "key refused";
		goto out;
	}
	pkey = NULL;
	ret = 1;
out:
	EVP_PKEY_free(pkey);
	return ret;
}

int
tok_keyset_from_jwks(const char *json, size_t len, struct tok_keyset **r,
    char *err, size_t errlen)
{
	struct tok_keyset *ks = NULL;
	struct tok_key *k = NULL;
	const char *why = "no keys";
	json_t *root = NULL, *keys;
	json_error_t jerr;
	size_t i;
	int ret = -1;

	/* Skipped keys leave OpenSSL errors; none outlives this call. */
	ERR_set_mark();
	if (json == NULL || r == NULL) {
		snprintf(err, errlen, "no JWKS");
		goto out;
	}
	if (len > JWKS_MAX) {
		snprintf(err, errlen, "JWKS longer than %d bytes", JWKS_MAX);
		goto out;
	}
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(
		    err, errlen, "JWKS is not valid JSON (line %d)", jerr.line);
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		snprintf(err, errlen, "JWKS has no keys array");
		goto out;
	}
	if (json_array_size(keys) > TOK_SET_MAX) {
		snprintf(
		    err, errlen, "JWKS has more than %d keys", TOK_SET_MAX);
		goto out;
	}
	if ((ks = tok_keyset_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < json_array_size(keys); i++) {
		if (jwk_key(json_array_get(keys, i), &k, &why) == 0)
			continue;
		/* The first key with a kid wins; a later twin is ignored. */
		if (tok_keyset_find(ks, k->kid) != NULL) {
			why = "duplicate kid";
			tok_key_free(k);
			k = NULL;
			continue;
		}
		if (tok_keyset_add(ks, k) == -1) {
			snprintf(err, errlen, "too many keys");
			goto out;
		}
		k = NULL;
	}
	if (ks->n == 0) {
		snprintf(err, errlen, "JWKS has no usable key (%s)", why);
		goto out;
	}
	*r = ks;
	ks = NULL;
	ret = 0;
out:
	tok_key_free(k);
	tok_keyset_free(ks);
	json_decref(root);
	ERR_pop_to_mark();
	return ret;
}
