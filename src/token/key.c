/*
 * One key and a set of them: the type checks that pin the algorithm, the
 * RFC 7638 kid, the public JWK, and the lookups. keydir.c fills keysets
 * from STATE_DIR/keys/, jwks.c from a JWKS document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "token/internal.h"
#include "token/token.h"
#include "util/b64.h"

/* The largest RSA public exponent accepted, in bytes (64 bits). */
#define E_MAX 8

/* Room for a base64url member: an 8192-bit modulus and its NUL. */
#define MEMBER_MAX (B64URL_LEN(TOK_SIG_MAX) + 1)

/*
 * Tells which algorithm pkey is for: 1 for ES256 (EC on P-256), 0 for
 * RS256 (RSA of an accepted size), -1 with a message in err otherwise.
 */
static int
key_kind(const EVP_PKEY *pkey, char *err, size_t errlen)
{
	char group[64];
	int bits, ret = -1;

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) !=
			1 ||
		    (strcmp(group, "prime256v1") != 0 &&
			strcmp(group, "P-256") != 0)) {
			snprintf(
			    err, errlen, "EC key is not on the P-256 curve");
			goto out;
		}
		ret = 1;
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < TOK_RSA_MIN_BITS || bits > TOK_RSA_MAX_BITS) {
			snprintf(err, errlen,
			    "RSA key of %d bits (%d to %d accepted)", bits,
			    TOK_RSA_MIN_BITS, TOK_RSA_MAX_BITS);
			goto out;
		}
		ret = 0;
	} else
		snprintf(err, errlen, "key is neither EC P-256 nor RSA");
out:
	return ret;
}

/*
 * Writes the public members of pkey in base64url: x and y (each 32 bytes,
 * left-padded) for EC, n and e (minimal big-endian) for RSA. a and b have
 * MEMBER_MAX bytes. Returns 0 or -1.
 */
static int
key_members(const EVP_PKEY *pkey, int ec, char *a, char *b)
{
	unsigned char buf[TOK_SIG_MAX];
	BIGNUM *p = NULL, *q = NULL;
	int ret = -1;

	if (EVP_PKEY_get_bn_param(pkey,
		ec ? OSSL_PKEY_PARAM_EC_PUB_X : OSSL_PKEY_PARAM_RSA_N,
		&p) != 1 ||
	    EVP_PKEY_get_bn_param(pkey,
		ec ? OSSL_PKEY_PARAM_EC_PUB_Y : OSSL_PKEY_PARAM_RSA_E, &q) != 1)
		goto out;
	if (ec) {
		if (BN_bn2binpad(p, buf, 32) != 32)
			goto out;
		b64url_encode(a, buf, 32);
		if (BN_bn2binpad(q, buf, 32) != 32)
			goto out;
		b64url_encode(b, buf, 32);
	} else {
		if (BN_num_bytes(p) > TOK_SIG_MAX || BN_num_bytes(q) > E_MAX)
			goto out;
		b64url_encode(a, buf, (size_t)BN_bn2bin(p, buf));
		b64url_encode(b, buf, (size_t)BN_bn2bin(q, buf));
	}
	ret = 0;
out:
	BN_free(p);
	BN_free(q);
	return ret;
}

/* The thumbprint of the members m1 and m2 of key_members(), into dst. */
static int
thumbprint(int ec, const char *m1, const char *m2, char *dst)
{
	char json[MEMBER_MAX + 128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	int n;

	/* RFC 7638 §3.2: the required members only, sorted, no spaces. */
	if (ec)
		n = snprintf(json, sizeof(json),
		    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		    m1, m2);
	else
		n = snprintf(json, sizeof(json),
		    "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", m2, m1);
	if (n < 0 || (size_t)n >= sizeof(json))
		return -1;
	if (EVP_Digest(json, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	b64url_encode(dst, md, mdlen);
	return 0;
}

int
tok_key_thumbprint(const EVP_PKEY *pkey, char *dst)
{
	char a[MEMBER_MAX], b[MEMBER_MAX], kid[TOK_THUMB_LEN + 1], err[128];
	int ec;

	if (pkey == NULL || (ec = key_kind(pkey, err, sizeof(err))) == -1 ||
	    key_members(pkey, ec, a, b) == -1 ||
	    thumbprint(ec, a, b, kid) == -1)
		return -1;
	memcpy(dst, kid, sizeof(kid));
	return 0;
}

/*
 * Sets k->hdr (see struct tok_key) when k->kid is base64url, which needs
 * no JSON escaping; our kids always are. Returns 0, or -1 when out of
 * memory.
 */
static int
key_header(struct tok_key *k)
{
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789-_";
	char json[TOK_KID_MAX + 64];
	int n;

	if (strspn(k->kid, b64url) != strlen(k->kid))
		return 0;
	n = snprintf(json, sizeof(json),
	    "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", k->alg, k->kid);
	if (n < 0 || (size_t)n >= sizeof(json) ||
	    (k->hdr = malloc(B64URL_LEN((size_t)n) + 1)) == NULL)
		return -1;
	k->hdr_len =
	    b64url_encode(k->hdr, (const unsigned char *)json, (size_t)n);
	return 0;
}

/* Makes k's context templates for pkey. Returns 0 or -1. */
static int
key_templates(struct tok_key *k, EVP_PKEY *pkey)
{
	if ((k->verify_tmpl = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(
		k->verify_tmpl, NULL, EVP_sha256(), NULL, pkey) != 1)
		return -1;
	if (k->priv &&
	    ((k->sign_tmpl = EVP_MD_CTX_new()) == NULL ||
		EVP_DigestSignInit(
		    k->sign_tmpl, NULL, EVP_sha256(), NULL, pkey) != 1))
		return -1;
	return 0;
}

int
tok_key_new(EVP_PKEY *pkey, int priv, const char *kid, struct tok_key **r,
    char *err, size_t errlen)
{
	char a[MEMBER_MAX], b[MEMBER_MAX];
	struct tok_key *k = NULL;
	json_t *jwk = NULL;
	int ec, ret = -1;

	if (pkey == NULL || r == NULL) {
		snprintf(err, errlen, "no key");
		goto out;
	}
	if ((ec = key_kind(pkey, err, errlen)) == -1)
		goto out;
	if (kid != NULL && (kid[0] == '\0' || strlen(kid) > TOK_KID_MAX)) {
		snprintf(
		    err, errlen, "kid is empty or longer than %d", TOK_KID_MAX);
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	k->ec = ec;
	k->alg = ec ? "ES256" : "RS256";
	k->priv = priv != 0;
	k->sig_len = ec ? 64 : (size_t)EVP_PKEY_get_size(pkey);
	if (key_members(pkey, ec, a, b) == -1) {
		snprintf(err, errlen, "cannot read the public key");
		goto out;
	}
	if (key_templates(k, pkey) == -1) {
		snprintf(err, errlen, "cannot use the key with SHA-256");
		goto out;
	}
	if (kid != NULL)
		memcpy(k->kid, kid, strlen(kid) + 1);
	else if (thumbprint(ec, a, b, k->kid) == -1) {
		snprintf(err, errlen, "cannot compute the key thumbprint");
		goto out;
	}
	if (key_header(k) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (ec)
		jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty",
		    "EC", "crv", "P-256", "x", a, "y", b, "kid", k->kid, "alg",
		    k->alg, "use", "sig");
	else
		jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA",
		    "n", a, "e", b, "kid", k->kid, "alg", k->alg, "use", "sig");
	if (jwk == NULL ||
	    (k->jwk = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	k->pkey = pkey;
	*r = k;
	k = NULL;
	ret = 0;
out:
	json_decref(jwk);
	tok_key_free(k);
	return ret;
}

void
tok_key_free(struct tok_key *k)
{
	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->verify_tmpl);
	EVP_MD_CTX_free(k->sign_tmpl);
	EVP_PKEY_free(k->pkey);
	free(k->jwk);
	free(k->hdr);
	free(k);
}

const char *
tok_key_kid(const struct tok_key *k)
{
	return k != NULL ? k->kid : NULL;
}

const char *
tok_key_alg(const struct tok_key *k)
{
	return k != NULL ? k->alg : NULL;
}

struct tok_keyset *
tok_keyset_new(void)
{
	return calloc(1, sizeof(struct tok_keyset));
}

int
tok_keyset_add(struct tok_keyset *ks, struct tok_key *k)
{
	if (ks == NULL || k == NULL || ks->n >= TOK_SET_MAX)
		return -1;
	ks->keys[ks->n++] = k;
	return 0;
}

void
tok_keyset_free(struct tok_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++)
		tok_key_free(ks->keys[i]);
	free(ks);
}

const struct tok_key *
tok_keyset_get(const struct tok_keyset *ks, enum tok_slot slot)
{
	if (ks == NULL || (unsigned)slot > TOK_NEXT)
		return NULL;
	return ks->slot[slot];
}

const struct tok_key *
tok_keyset_find(const struct tok_keyset *ks, const char *kid)
{
	size_t i;

	if (ks == NULL || kid == NULL)
		return NULL;
	for (i = 0; i < ks->n; i++)
		if (strcmp(ks->keys[i]->kid, kid) == 0)
			return ks->keys[i];
	return NULL;
}

char *
tok_keyset_jwks(const struct tok_keyset *ks)
{
	static const char head[] = "{\"keys\":[", tail[] = "]}";
	size_t i, len, o;
	char *s;

	if (ks == NULL)
		return NULL;
	len = sizeof(head) - 1 + sizeof(tail);
	for (i = 0; i < ks->n; i++)
		len += strlen(ks->keys[i]->jwk) + 1;
	if ((s = malloc(len)) == NULL)
		return NULL;
	memcpy(s, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (i = 0; i < ks->n; i++) {
		if (i > 0)
			s[o++] = ',';
		len = strlen(ks->keys[i]->jwk);
		memcpy(s + o, ks->keys[i]->jwk, len);
		o += len;
	}
	memcpy(s + o, tail, sizeof(tail));
	return s;
}
