/*
 * JWS compact serialization (RFC 7515) with ES256 and RS256 (RFC 7518):
 * signing with the current key, verifying against a keyset. The algorithm
 * is the key's, never the header's: a header naming any other alg (none,
 * HS256 and the rest) is refused before any cryptography. Nothing here
 * logs; the reason for a refusal goes back as an enum tok_err.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "token/internal.h"
#include "token/token.h"
#include "util/b64.h"
#include "util/str.h"

/* Most bytes the three segments of a TOK_MAX_LEN token decode to. */
#define DECODED_MAX (TOK_MAX_LEN / 4 * 3 + 2)

/* The longest accepted leeway, whatever the caller asks for. */
#define LEEWAY_MAX 300

/* Most audiences accepted in an aud array. */
#define AUD_MAX 16

/* The DER encoding of an ECDSA P-256 signature is at most 72 bytes. */
#define ES256_DER_MAX 80

const char *
tok_err_name(enum tok_err e)
{
	switch (e) {
	case TOK_OK:
		return "ok";
	case TOK_MALFORMED:
		return "malformed";
	case TOK_BAD_HEADER:
		return "bad_header";
	case TOK_UNKNOWN_KID:
		return "unknown_kid";
	case TOK_BAD_SIGNATURE:
		return "bad_signature";
	case TOK_EXPIRED:
		return "expired";
	case TOK_NOT_YET_VALID:
		return "not_yet_valid";
	case TOK_BAD_ISSUER:
		return "bad_issuer";
	case TOK_BAD_AUDIENCE:
		return "bad_audience";
	case TOK_BAD_CLAIMS:
		return "bad_claims";
	case TOK_INTERNAL:
		return "internal";
	}
	return "unknown";
}

/* A new context from a key's template (see struct tok_key), or NULL. */
static EVP_MD_CTX *
ctx_from(const EVP_MD_CTX *tmpl)
{
	EVP_MD_CTX *ctx;

	if (tmpl == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_MD_CTX_copy_ex(ctx, tmpl) != 1) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Signs the n bytes at msg with k into sig (TOK_SIG_MAX bytes): for ES256
 * the 64-byte r || s of RFC 7518 §3.4, for RS256 PKCS #1 v1.5. Returns
 * the signature's length, or 0.
 */
static size_t
sign_bytes(
    const struct tok_key *k, const char *msg, size_t n, unsigned char *sig)
{
	unsigned char der[ES256_DER_MAX];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es = NULL;
	EVP_MD_CTX *ctx = NULL;
	size_t len, ret = 0;

	if ((ctx = ctx_from(k->sign_tmpl)) == NULL)
		goto out;
	if (!k->ec) {
		len = k->sig_len;
		if (EVP_DigestSign(
			ctx, sig, &len, (const unsigned char *)msg, n) != 1 ||
		    len != k->sig_len)
			goto out;
		ret = len;
		goto out;
	}
	len = sizeof(der);
	if (EVP_DigestSign(ctx, der, &len, (const unsigned char *)msg, n) !=
		1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 ||
	    BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	ret = 64;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return ret;
}

char *
tok_sign(const struct tok_key *k, const json_t *claims)
{
	unsigned char sig[TOK_SIG_MAX];
	char *body = NULL, *tok = NULL, *ret = NULL;
	size_t blen, total, o, slen;

	ERR_set_mark();
	/* Our keys' kids are thumbprints: k->hdr is always there. */
	if (k == NULL || !k->priv || k->hdr == NULL ||
	    !json_is_object(claims) ||
	    (body = json_dumps(claims, JSON_COMPACT)) == NULL)
		goto out;
	blen = strlen(body);
	/* Never issue what tok_verify() would refuse as too long. */
	if (blen > TOK_MAX_LEN)
		goto out;
	total = k->hdr_len + 1 + B64URL_LEN(blen) + 1 + B64URL_LEN(k->sig_len);
	if (total > TOK_MAX_LEN || (tok = malloc(total + 1)) == NULL)
		goto out;
	memcpy(tok, k->hdr, k->hdr_len);
	o = k->hdr_len;
	tok[o++] = '.';
	o += b64url_encode(tok + o, (const unsigned char *)body, blen);
	if ((slen = sign_bytes(k, tok, o, sig)) == 0)
		goto out;
	tok[o++] = '.';
	b64url_encode(tok + o, sig, slen);
	ret = tok;
	tok = NULL;
out:
	free(body);
	free(tok);
	ERR_pop_to_mark();
	return ret;
}

/*
 * Checks the header: no crit, typ JWT when present, a string alg, a kid
 * naming a loaded key whose alg is exactly the header's. Sets *k_r.
 */
static enum tok_err
check_header(
    const struct tok_keyset *ks, const json_t *h, const struct tok_key **k_r)
{
	const json_t *alg, *kid, *typ;
	const struct tok_key *k;

	if (json_object_get(h, "crit") != NULL)
		return TOK_BAD_HEADER;
	typ = json_object_get(h, "typ");
	if (typ != NULL &&
	    (!json_is_string(typ) || !str_ieq(json_string_value(typ), "JWT")))
		return TOK_BAD_HEADER;
	alg = json_object_get(h, "alg");
	kid = json_object_get(h, "kid");
	if (!json_is_string(alg) || !json_is_string(kid) ||
	    json_string_length(kid) == 0 ||
	    json_string_length(kid) > TOK_KID_MAX)
		return TOK_BAD_HEADER;
	/* Found by kid among the loaded keys only: no path, no fetch. */
	if ((k = tok_keyset_find(ks, json_string_value(kid))) == NULL)
		return TOK_UNKNOWN_KID;
	if (strcmp(json_string_value(alg), k->alg) != 0)
		return TOK_BAD_HEADER;
	*k_r = k;
	return TOK_OK;
}

/* The key whose tok_sign() header is the n bytes at seg, or NULL. */
static const struct tok_key *
known_header(const struct tok_keyset *ks, const char *seg, size_t n)
{
	const struct tok_key *k;
	size_t i;

	for (i = 0; i < ks->n; i++) {
		k = ks->keys[i];
		if (k->hdr != NULL && k->hdr_len == n &&
		    memcmp(k->hdr, seg, n) == 0)
			return k;
	}
	return NULL;
}

/* Verifies sig (sn bytes) over the n bytes at msg with k. */
static enum tok_err
check_signature(const struct tok_key *k, const char *msg, size_t n,
    const unsigned char *sig, size_t sn)
{
	unsigned char der[ES256_DER_MAX], *p = der;
	const unsigned char *vs = sig;
	BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG *es = NULL;
	EVP_MD_CTX *ctx = NULL;
	enum tok_err ret = TOK_BAD_SIGNATURE;
	size_t vn = sn;
	int len;

	if (sn != k->sig_len)
		goto out;
	ret = TOK_INTERNAL;
	if (k->ec) {
		/* RFC 7518 §3.4: r || s, back to the DER OpenSSL wants. */
		if ((r = BN_bin2bn(sig, 32, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL ||
		    (es = ECDSA_SIG_new()) == NULL ||
		    ECDSA_SIG_set0(es, r, s) != 1)
			goto out;
		r = s = NULL;
		if ((len = i2d_ECDSA_SIG(es, &p)) <= 0)
			goto out;
		vs = der;
		vn = (size_t)len;
	}
	if ((ctx = ctx_from(k->verify_tmpl)) == NULL)
		goto out;
	if (EVP_DigestVerify(ctx, vs, vn, (const unsigned char *)msg, n) != 1) {
		ret = TOK_BAD_SIGNATURE;
		goto out;
	}
	ret = TOK_OK;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* 1 if the JSON string v holds exactly the C string want. */
static int
string_is(const json_t *v, const char *want)
{
	size_t n = strlen(want);

	return json_string_length(v) == n &&
	    memcmp(json_string_value(v), want, n) == 0;
}

/* Checks the audience: a string, or an array of at most AUD_MAX strings. */
static enum tok_err
check_audience(const json_t *aud, const char *want)
{
	const json_t *v;
	size_t i;
	int found = 0;

	if (json_is_string(aud))
		return string_is(aud, want) ? TOK_OK : TOK_BAD_AUDIENCE;
	if (!json_is_array(aud) || json_array_size(aud) > AUD_MAX)
		return TOK_BAD_CLAIMS;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return TOK_BAD_CLAIMS;
		found |= string_is(v, want);
	}
	return found ? TOK_OK : TOK_BAD_AUDIENCE;
}

/*
 * Checks the claims: types first (exp an integer and required; nbf and iat
 * integers when present; sub a non-empty string; iss a string; aud a
 * string or an array of strings), then iss, aud, exp and nbf against e.
 */
static enum tok_err
check_claims(const json_t *c, const struct tok_expect *e)
{
	const json_t *exp, *nbf, *iat, *sub, *iss, *aud;
	unsigned long long leeway;
	long long t;
	enum tok_err ret;

	exp = json_object_get(c, "exp");
	nbf = json_object_get(c, "nbf");
	iat = json_object_get(c, "iat");
	sub = json_object_get(c, "sub");
	iss = json_object_get(c, "iss");
	aud = json_object_get(c, "aud");
	if (!json_is_integer(exp) || (nbf != NULL && !json_is_integer(nbf)) ||
	    (iat != NULL && !json_is_integer(iat)) || !json_is_string(sub) ||
	    json_string_length(sub) == 0 || !json_is_string(iss) || aud == NULL)
		return TOK_BAD_CLAIMS;
	if ((ret = check_audience(aud, e->audience)) == TOK_BAD_CLAIMS)
		return ret;
	if (!string_is(iss, e->issuer))
		return TOK_BAD_ISSUER;
	if (ret != TOK_OK)
		return ret;
	leeway = e->leeway < 0       ? 0
	    : e->leeway > LEEWAY_MAX ? LEEWAY_MAX
				     : (unsigned long long)e->leeway;
	/* Differences in unsigned arithmetic: no overflow for any value. */
	t = json_integer_value(exp);
	if (e->now > t &&
	    (unsigned long long)e->now - (unsigned long long)t > leeway)
		return TOK_EXPIRED;
	if (nbf != NULL) {
		t = json_integer_value(nbf);
		if (t > e->now &&
		    (unsigned long long)t - (unsigned long long)e->now > leeway)
			return TOK_NOT_YET_VALID;
	}
	return TOK_OK;
}

int
tok_verify(const struct tok_keyset *ks, const char *token, size_t len,
    const struct tok_expect *e, json_t **claims_r, enum tok_err *why)
{
	unsigned char buf[DECODED_MAX];
	const char *d1, *d2;
	const struct tok_key *k = NULL;
	json_t *hdr = NULL, *claims = NULL;
	enum tok_err err = TOK_INTERNAL;
	long hn, pn, sn;
	int ret = -1;

	if (ks == NULL || e == NULL || e->issuer == NULL || e->audience == NULL)
		goto out;
	err = TOK_MALFORMED;
	if (token == NULL || len == 0 || len > TOK_MAX_LEN)
		goto out;
	/* Exactly two dots, three non-empty segments. */
	if ((d1 = memchr(token, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))) ==
		NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL ||
	    d1 == token || d2 == d1 + 1 || d2 + 1 == token + len)
		goto out;
	/*
	 * The header we write, byte for byte, names its key: it passes every
	 * check below by construction, so it is neither decoded nor parsed.
	 */
	k = known_header(ks, token, (size_t)(d1 - token));
	/* The segments decode into one buffer: header, payload, signature. */
	hn = 0;
	if ((k == NULL &&
		(hn = b64url_decode(
		     buf, sizeof(buf), token, (size_t)(d1 - token))) == -1) ||
	    (pn = b64url_decode(buf + hn, sizeof(buf) - (size_t)hn, d1 + 1,
		 (size_t)(d2 - d1 - 1))) == -1 ||
	    (sn = b64url_decode(buf + hn + pn, sizeof(buf) - (size_t)(hn + pn),
		 d2 + 1, len - (size_t)(d2 + 1 - token))) == -1)
		goto out;
	if (k == NULL) {
		hdr = json_loadb((const char *)buf, (size_t)hn,
		    JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(hdr))
			goto out;
		/* jku, jwk, x5u, x5c and all other members: never looked at. */
		if ((err = check_header(ks, hdr, &k)) != TOK_OK)
			goto out;
		json_decref(hdr);
		hdr = NULL;
	}
	/* Over the encoded header.payload; the claims only after it. */
	ERR_set_mark();
	err = check_signature(
	    k, token, (size_t)(d2 - token), buf + hn + pn, (size_t)sn);
	ERR_pop_to_mark();
	if (err != TOK_OK)
		goto out;
	err = TOK_MALFORMED;
	claims = json_loadb(
	    (const char *)buf + hn, (size_t)pn, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(claims))
		goto out;
	if ((err = check_claims(claims, e)) != TOK_OK)
		goto out;
	if (claims_r != NULL) {
		*claims_r = claims;
		claims = NULL;
	}
	ret = 0;
out:
	if (why != NULL)
		*why = err;
	json_decref(hdr);
	json_decref(claims);
	return ret;
}
