/*
 * libFuzzer target: JWS compact tokens, mostly well formed. The seed
 * corpus (tests/data/fuzz/jws/) holds real tokens signed by the test keys
 * of fuzz_keys.h, valid ones and one of each refusal. Every input is
 * verified twice against a keyset built once from the test JWKS:
 *
 *   1. as it is: size, segments, base64url, header JSON and checks, the
 *      signature (a mutated token mostly stops here);
 *   2. re-signed: its "header.payload" part (everything before the last
 *      dot, or all of it when it has one dot) signed here with the test
 *      EC key, so mutated claims get past the signature and reach the
 *      claim checks.
 *
 * Invariants (a violation traps): as in fuzz_bearer.c, plus: a re-signed
 * token whose header is byte for byte the one tok_sign() writes for the EC
 * key is never refused for its signature.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fuzz_keys.h"
#include "token/token.h"
#include "util/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok_keyset *keyset;
static EVP_PKEY *ec_key;
/* base64url of {"alg":"ES256","kid":FUZZ_EC_KID,"typ":"JWT"} */
static char fast_hdr[128];
static size_t fast_hdr_len;

static void
init(void)
{
	static const char h[] =
	    "{\"alg\":\"ES256\",\"kid\":\"" FUZZ_EC_KID "\",\"typ\":\"JWT\"}";
	char err[256];
	BIO *b;

	if (tok_keyset_from_jwks(fuzz_jwks, strlen(fuzz_jwks), &keyset, err,
		sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_jws: test JWKS refused: %s\n", err);
		__builtin_trap();
	}
	if ((b = BIO_new_mem_buf(fuzz_ec_pem, -1)) == NULL ||
	    (ec_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
		__builtin_trap();
	BIO_free(b);
	if (B64URL_LEN(sizeof(h) - 1) >= sizeof(fast_hdr))
		__builtin_trap();
	fast_hdr_len =
	    b64url_encode(fast_hdr, (const unsigned char *)h, sizeof(h) - 1);
}

/* Verifies; returns the reason (TOK_OK on success). */
static enum tok_err
verify(const char *tok, size_t len)
{
	static const struct tok_expect e = {FUZZ_ISS, FUZZ_AUD, FUZZ_NOW, 30};
	enum tok_err why = TOK_INTERNAL;
	json_t *claims = NULL;
	const char *sub;

	if (tok_verify(keyset, tok, len, &e, &claims, &why) == -1) {
		if (claims != NULL || why == TOK_OK)
			__builtin_trap();
		return why;
	}
	sub = json_string_value(json_object_get(claims, "sub"));
	if (why != TOK_OK || !json_is_object(claims) || sub == NULL ||
	    *sub == '\0' ||
	    strcmp(json_string_value(json_object_get(claims, "iss")),
		FUZZ_ISS) != 0)
		__builtin_trap();
	json_decref(claims);
	return TOK_OK;
}

/* ES256 over the n bytes at msg as r || s, into sig (64 bytes). */
static int
sign_es256(const char *msg, size_t n, unsigned char *sig)
{
	unsigned char der[80];
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *es = NULL;
	EVP_MD_CTX *ctx;
	size_t len = sizeof(der);
	int ret = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ec_key) != 1 ||
	    EVP_DigestSign(ctx, der, &len, (const unsigned char *)msg, n) !=
		1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 ||
	    BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	ret = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return ret;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data, *d1, *last = NULL, *p;
	unsigned char sig[64];
	enum tok_err why;
	size_t n;
	char *tok;

	if (keyset == NULL)
		init();
	(void)verify(t, size);

	/* The part to sign: up to the last dot when there are two or more,
	 * else all of it (one dot: "header.payload"). */
	if (size > TOK_MAX_LEN || (d1 = memchr(t, '.', size)) == NULL)
		return 0;
	for (p = d1 + 1; (p = memchr(p, '.', size - (size_t)(p - t))) != NULL;
	     p++)
		last = p;
	n = last != NULL ? (size_t)(last - t) : size;
	if (sign_es256(t, n, sig) == -1) {
		ERR_clear_error();
		return 0;
	}
	if ((tok = malloc(n + 1 + B64URL_LEN(sizeof(sig)) + 1)) == NULL)
		return 0;
	memcpy(tok, t, n);
	tok[n] = '.';
	n += 1 + b64url_encode(tok + n + 1, sig, sizeof(sig));
	why = verify(tok, n);
	if (why == TOK_BAD_SIGNATURE && (size_t)(d1 - t) == fast_hdr_len &&
	    memcmp(t, fast_hdr, fast_hdr_len) == 0)
		__builtin_trap();
	free(tok);
	return 0;
}
