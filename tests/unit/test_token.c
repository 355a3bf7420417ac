/*
 * Unit tests for src/token/: keys on disk (modes, creation, rotation),
 * the RFC 7638 kid, the JWKS both ways, signing, and tok_verify() against
 * the attack catalogue of SPEC.md, each refusal with its reason.
 *
 * Tokens under attack are built here with an independent signer (OpenSSL
 * on the PEM files, the r || s conversion written again), so a bug in
 * tok_sign() cannot hide one in tok_verify(). test_libjwt_interop runs
 * the libjwt helper built beside this binary (tests/integ/jwt_interop.c)
 * both ways, and skips when it was not built.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "token/internal.h"
#include "token/token.h"
#include "util/b64.h"

#define ISS "https://auth.example.com"
#define AUD "email-api"

/* The RFC 7638 §3.1 example key and its thumbprint. */
#define RFC_N                                                                   \
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1"   \
	"RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9" \
	"yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgn" \
	"Yb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu" \
	"0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC_THUMB "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* Claim members, to write the claims of a case. */
#define C_ISS          "\"iss\":\"" ISS "\""
#define C_AUD          "\"aud\":\"" AUD "\""
#define C_SUB          "\"sub\":\"alice\""
#define C_EXP          "\"exp\":{T+300}"
#define C_IAT          "\"iat\":{T+0}"
#define CLAIMS_WITH(x) "{" C_ISS "," C_AUD "," C_SUB "," x "}"
#define CLAIMS         CLAIMS_WITH(C_EXP "," C_IAT ",\"nbf\":{T+0},\"jti\":\"j1\"")

#define HDR         "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"JWT\"}"
#define HDR_WITH(x) "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"JWT\"," x "}"

#define K16 "kkkkkkkkkkkkkkkk"

/* A key directory of the tests, and the keys parsed here on their own. */
struct fixture {
	const char *name;
	char dir[64];
	struct tok_keyset *ks;
	const struct tok_key *cur;
	EVP_PKEY *priv;      /* current.pem */
	EVP_PKEY *next_priv; /* next.pem */
	char *pub_pem;       /* the public half of current.pem, as PEM */
	int ec;
};

static struct fixture ec_fx = {.name = "ES256", .ec = 1};
static struct fixture rsa_fx = {.name = "RS256", .ec = 0};
static EVP_PKEY *attacker;
static char attacker_jwk[256], attacker_kid[TOK_THUMB_LEN + 1];
static long long now;

/* Removes dir, its files, and its subdirectories depth levels down. */
static void
rm_dir(const char *dir, int depth)
{
	char p[PATH_MAX + 300];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (depth > 0 && lstat(p, &st) == 0 &&
			    S_ISDIR(st.st_mode))
				rm_dir(p, depth - 1);
			else
				unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Removes a state directory of the tests. */
static void
rm_tree(const char *dir)
{
	rm_dir(dir, 2);
}

/* A new temporary state directory in dst (64 bytes). */
static void
make_dir(char *dst)
{
	snprintf(dst, 64, "/tmp/ea-test-tok-XXXXXX");
	if (mkdtemp(dst) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
}

/* The private key in dir/keys/name, parsed by OpenSSL alone. */
static EVP_PKEY *
read_pem(const char *dir, const char *name)
{
	char p[128];
	EVP_PKEY *k;
	FILE *f;

	snprintf(p, sizeof(p), "%s/keys/%s", dir, name);
	if ((f = fopen(p, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

/* Writes a private key as PKCS#8 PEM to path with mode. */
static void
write_pem(const char *path, EVP_PKEY *k, mode_t mode)
{
	FILE *f;

	unlink(path);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(
	    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* base64url of n bytes, as a new string. */
static char *
b64(const void *p, size_t n)
{
	char *s = malloc(B64URL_LEN(n) + 1);

	assert_non_null(s);
	b64url_encode(s, p, n);
	return s;
}

/* The member name of a JSON object string, decoded from base64url. */
static size_t
member_bytes(const json_t *o, const char *name, unsigned char *dst, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, name));
	long n;

	assert_non_null(s);
	n = b64url_decode(dst, cap, s, strlen(s));
	assert_true(n > 0);
	return (size_t)n;
}

/*
 * The RFC 7638 thumbprint of a public JWK, computed here: the required
 * members in order, SHA-256, base64url. Into dst (44 bytes).
 */
static void
thumbprint_of(const json_t *jwk, char *dst)
{
	unsigned char md[32];
	unsigned int mdlen;
	char json[2048];
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	int n;

	assert_non_null(kty);
	if (strcmp(kty, "EC") == 0)
		n = snprintf(json, sizeof(json),
		    "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		    json_string_value(json_object_get(jwk, "crv")),
		    json_string_value(json_object_get(jwk, "x")),
		    json_string_value(json_object_get(jwk, "y")));
	else
		n = snprintf(json, sizeof(json),
		    "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		    json_string_value(json_object_get(jwk, "e")),
		    json_string_value(json_object_get(jwk, "n")));
	assert_true(n > 0 && (size_t)n < sizeof(json));
	assert_int_equal(
	    EVP_Digest(json, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
	b64url_encode(dst, md, mdlen);
}

/* x and y of an EC public key, base64url, left-padded to len bytes. */
static void
ec_xy(EVP_PKEY *k, int len, char *x, char *y)
{
	unsigned char buf[66];
	BIGNUM *bx = NULL, *by = NULL;

	assert_int_equal(
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx), 1);
	assert_int_equal(
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by), 1);
	assert_int_equal(BN_bn2binpad(bx, buf, len), len);
	b64url_encode(x, buf, (size_t)len);
	assert_int_equal(BN_bn2binpad(by, buf, len), len);
	b64url_encode(y, buf, (size_t)len);
	BN_free(bx);
	BN_free(by);
}

static void
fixture_open(struct fixture *fx, const char *alg)
{
	char err[512];
	BIO *bio;
	char *p;
	long n;

	make_dir(fx->dir);
	if (tok_keyset_load(fx->dir, alg, 1, &fx->ks, err, sizeof(err)) == -1)
		fail_msg("tok_keyset_load(%s): %s", alg, err);
	assert_non_null(fx->cur = tok_keyset_get(fx->ks, TOK_CURRENT));
	assert_non_null(fx->priv = read_pem(fx->dir, "current.pem"));
	assert_non_null(fx->next_priv = read_pem(fx->dir, "next.pem"));
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_PUBKEY(bio, fx->priv), 1);
	n = BIO_get_mem_data(bio, &p);
	assert_non_null(fx->pub_pem = strndup(p, (size_t)n));
	BIO_free(bio);
}

static void
fixture_close(struct fixture *fx)
{
	tok_keyset_free(fx->ks);
	EVP_PKEY_free(fx->priv);
	EVP_PKEY_free(fx->next_priv);
	free(fx->pub_pem);
	if (fx->dir[0] != '\0')
		rm_tree(fx->dir);
}

static int
setup(void **state)
{
	char x[64], y[64];

	(void)state;
	now = (long long)time(NULL);
	fixture_open(&ec_fx, "ES256");
	fixture_open(&rsa_fx, "RS256");
	assert_non_null(attacker = EVP_EC_gen("P-256"));
	ec_xy(attacker, 32, x, y);
	snprintf(attacker_jwk, sizeof(attacker_jwk),
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x,
	    y);
	assert_int_equal(tok_key_thumbprint(attacker, attacker_kid), 0);
	return 0;
}

/* A fresh state directory for one test, in *state. */
static int
dir_setup(void **state)
{
	static char dir[64];

	make_dir(dir);
	*state = dir;
	return 0;
}

/* Removes it, whatever the test left there. */
static int
dir_teardown(void **state)
{
	rm_tree(*state);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fixture_close(&ec_fx);
	fixture_close(&rsa_fx);
	EVP_PKEY_free(attacker);
	return 0;
}

/*
 * Expands a template: {K} the current kid, {k} it without its last
 * character, {A} the key's alg, {a} it in lower case, {X} the other alg,
 * {J} the attacker's public JWK, {Q} the attacker's kid, {N} the kid of
 * the next key, {T+N} and {T-N} now plus or minus N. A new string.
 */
static char *
expand(const struct fixture *fx, const char *t)
{
	const char *kid = tok_key_kid(fx->cur);
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	assert_non_null(f = open_memstream(&out, &len));
	while (*t != '\0') {
		if (t[0] == '{' && t[1] != '\0' && t[2] == '}') {
			switch (t[1]) {
			case 'K':
				fputs(kid, f);
				t += 3;
				continue;
			case 'k':
				fprintf(f, "%.*s", (int)strlen(kid) - 1, kid);
				t += 3;
				continue;
			case 'A':
				fputs(fx->ec ? "ES256" : "RS256", f);
				t += 3;
				continue;
			case 'a':
				fputs(fx->ec ? "es256" : "rs256", f);
				t += 3;
				continue;
			case 'X':
				fputs(fx->ec ? "RS256" : "ES256", f);
				t += 3;
				continue;
			case 'J':
				fputs(attacker_jwk, f);
				t += 3;
				continue;
			case 'Q':
				fputs(attacker_kid, f);
				t += 3;
				continue;
			case 'N':
				fputs(tok_key_kid(
					  tok_keyset_get(fx->ks, TOK_NEXT)),
				    f);
				t += 3;
				continue;
			default:
				break;
			}
		}
		if (t[0] == '{' && t[1] == 'T' &&
		    (t[2] == '+' || t[2] == '-')) {
			char *end;
			long long d = strtoll(t + 3, &end, 10);

			assert_int_equal(*end, '}');
			fprintf(f, "%lld", t[2] == '+' ? now + d : now - d);
			t = end + 1;
			continue;
		}
		fputc(*t++, f);
	}
	assert_int_equal(fclose(f), 0);
	return out;
}

/* How a test token is signed. */
enum signer {
	S_KEY,      /* the fixture's current key, r || s for ES256 */
	S_KEY_DER,  /* the current key, ES256 left in DER */
	S_NEXT,     /* the fixture's next key */
	S_ATTACKER, /* a P-256 key of the attacker's */
	S_HMAC,     /* HMAC-SHA256 keyed with the public key PEM */
	S_JUNK,     /* the four characters AAAA */
	S_ZERO,     /* as many zero bytes as a real signature */
	S_EMPTY,    /* nothing */
};

/* What is done to a token after signing. */
enum mutation {
	M_NONE,
	M_TAMPER,    /* the payload swapped: sub alice becomes admin */
	M_STRIP,     /* "header.payload." */
	M_DROP,      /* "header.payload" */
	M_SIG_SHORT, /* the signature one byte short */
	M_SIG_LONG,  /* one byte long */
	M_EXTRA,     /* a fourth segment */
};

/*
 * The signature of the n bytes at msg with k, the way a JOSE signer would
 * make it (der 0: r || s for EC). Returns its length.
 */
static size_t
raw_sign(EVP_PKEY *k, int der, const char *msg, size_t n, unsigned char *sig)
{
	unsigned char d[1024];
	const unsigned char *p = d;
	const BIGNUM *r, *s;
	EVP_MD_CTX *ctx;
	ECDSA_SIG *es;
	size_t len = sizeof(d);

	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(
	    EVP_DigestSign(ctx, d, &len, (const unsigned char *)msg, n), 1);
	EVP_MD_CTX_free(ctx);
	if (!EVP_PKEY_is_a(k, "EC") || der) {
		memcpy(sig, d, len);
		return len;
	}
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)len));
	ECDSA_SIG_get0(es, &r, &s);
	assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
	assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
	ECDSA_SIG_free(es);
	return 64;
}

/* A token of the raw header and claims JSON, signed and mutated. */
static char *
make_raw(const struct fixture *fx, const char *hdr, const char *claims,
    enum signer how, enum mutation mut)
{
	unsigned char sig[1100];
	unsigned int hl;
	char *h, *p, *msg, *s, *tok, *t2;
	size_t sl = 0, len;

	h = b64(hdr, strlen(hdr));
	p = b64(claims, strlen(claims));
	len = strlen(h) + strlen(p) + 2;
	assert_non_null(msg = malloc(len));
	snprintf(msg, len, "%s.%s", h, p);
	switch (how) {
	case S_KEY:
	case S_KEY_DER:
		sl =
		    raw_sign(fx->priv, how == S_KEY_DER, msg, strlen(msg), sig);
		break;
	case S_NEXT:
		sl = raw_sign(fx->next_priv, 0, msg, strlen(msg), sig);
		break;
	case S_ATTACKER:
		sl = raw_sign(attacker, 0, msg, strlen(msg), sig);
		break;
	case S_HMAC:
		assert_non_null(
		    HMAC(EVP_sha256(), fx->pub_pem, (int)strlen(fx->pub_pem),
			(const unsigned char *)msg, strlen(msg), sig, &hl));
		sl = hl;
		break;
	case S_JUNK:
		memset(sig, 0, 3);
		sl = 3;
		break;
	case S_ZERO:
		sl = fx->ec ? 64 : (size_t)EVP_PKEY_get_size(fx->priv);
		memset(sig, 0, sl);
		break;
	case S_EMPTY:
		sl = 0;
		break;
	}
	if (mut == M_SIG_SHORT)
		sl--;
	if (mut == M_SIG_LONG)
		sig[sl++] = 0;
	s = b64(sig, sl);
	if (mut == M_TAMPER) {
		char *c = strdup(claims), *at = strstr(c, "alice");

		assert_non_null(at);
		memcpy(at, "admin", 5);
		free(p);
		p = b64(c, strlen(c));
		free(c);
	}
	len = strlen(h) + strlen(p) + strlen(s) + 16;
	assert_non_null(tok = malloc(len));
	if (mut == M_STRIP)
		snprintf(tok, len, "%s.%s.", h, p);
	else if (mut == M_DROP)
		snprintf(tok, len, "%s.%s", h, p);
	else if (mut == M_EXTRA)
		snprintf(tok, len, "%s.%s.%s.AAAA", h, p, s);
	else
		snprintf(tok, len, "%s.%s.%s", h, p, s);
	t2 = tok;
	free(h);
	free(p);
	free(s);
	free(msg);
	return t2;
}

/* make_raw() of templates. */
static char *
make_token(const struct fixture *fx, const char *hdr_t, const char *claims_t,
    enum signer how, enum mutation mut)
{
	char *hdr = expand(fx, hdr_t), *claims = expand(fx, claims_t);
	char *tok = make_raw(fx, hdr, claims, how, mut);

	free(hdr);
	free(claims);
	return tok;
}

/* tok_verify() against ks with the usual expectations; the reason. */
static enum tok_err
verify_with(const struct tok_keyset *ks, const char *tok, size_t len,
    long long leeway, json_t **claims_r)
{
	struct tok_expect e = {ISS, AUD, now, leeway};
	enum tok_err why = TOK_INTERNAL;
	json_t *claims = NULL;
	int rc;

	rc = tok_verify(ks, tok, len, &e, &claims, &why);
	/* Nothing left on OpenSSL's error queue for the caller to trip on. */
	assert_int_equal(ERR_peek_error(), 0);
	if ((rc == 0) != (why == TOK_OK))
		fail_msg("tok_verify returned %d with reason %s", rc,
		    tok_err_name(why));
	if (rc == 0)
		assert_true(json_is_object(claims));
	else
		assert_null(claims);
	if (claims_r != NULL)
		*claims_r = claims;
	else
		json_decref(claims);
	return why;
}

static enum tok_err
verify(const struct fixture *fx, const char *tok, long long leeway)
{
	return verify_with(fx->ks, tok, strlen(tok), leeway, NULL);
}

/* A case of the attack table, run against both keys unless only says. */
struct vcase {
	const char *name;
	const char *hdr;    /* template; NULL for HDR */
	const char *claims; /* template; NULL for CLAIMS */
	enum signer how;
	enum mutation mut;
	long long leeway;
	enum tok_err want;
	int only; /* 0 both, 1 ES256 only, 2 RS256 only */
};

static const struct vcase vcases[] = {
    /* What must pass. */
    {"valid", NULL, NULL, S_KEY, M_NONE, 0, TOK_OK, 0},
    {"no typ", "{\"alg\":\"{A}\",\"kid\":\"{K}\"}", NULL, S_KEY, M_NONE, 0,
	TOK_OK, 0},
    {"typ in lower case", "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"jwt\"}",
	NULL, S_KEY, M_NONE, 0, TOK_OK, 0},
    {"signed by the published next key", "{\"alg\":\"{A}\",\"kid\":\"{N}\"}",
	NULL, S_NEXT, M_NONE, 0, TOK_OK, 0},
    {"members we do not know", HDR_WITH("\"cty\":\"x\",\"zip\":1"), NULL, S_KEY,
	M_NONE, 0, TOK_OK, 0},
    /* Our header reordered or spaced: parsed, not matched, still fine. */
    {"header reordered", "{\"kid\":\"{K}\",\"typ\":\"JWT\",\"alg\":\"{A}\"}",
	NULL, S_KEY, M_NONE, 0, TOK_OK, 0},
    {"header with spaces", "{ \"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"JWT\"}",
	NULL, S_KEY, M_NONE, 0, TOK_OK, 0},
    {"header with a trailing newline", HDR "\n", NULL, S_KEY, M_NONE, 0, TOK_OK,
	0},
    {"minimal claims", NULL, CLAIMS_WITH(C_EXP), S_KEY, M_NONE, 0, TOK_OK, 0},

    /* alg none, and alg chosen by the header. */
    {"alg none, junk signature",
	"{\"alg\":\"none\",\"kid\":\"{K}\",\"typ\":\"JWT\"}", NULL, S_JUNK,
	M_NONE, 0, TOK_BAD_HEADER, 0},
    {"alg none, empty signature",
	"{\"alg\":\"none\",\"kid\":\"{K}\",\"typ\":\"JWT\"}", NULL, S_EMPTY,
	M_NONE, 0, TOK_MALFORMED, 0},
    {"alg none, signed by our key",
	"{\"alg\":\"none\",\"kid\":\"{K}\",\"typ\":\"JWT\"}", NULL, S_KEY,
	M_NONE, 0, TOK_BAD_HEADER, 0},
    {"alg NoNe", "{\"alg\":\"NoNe\",\"kid\":\"{K}\"}", NULL, S_JUNK, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg none, no kid", "{\"alg\":\"none\"}", NULL, S_JUNK, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg HS256 keyed with the public key PEM",
	"{\"alg\":\"HS256\",\"kid\":\"{K}\",\"typ\":\"JWT\"}", NULL, S_HMAC,
	M_NONE, 0, TOK_BAD_HEADER, 0},
    {"alg hs256 keyed with the public key PEM",
	"{\"alg\":\"hs256\",\"kid\":\"{K}\"}", NULL, S_HMAC, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg HS256 without kid", "{\"alg\":\"HS256\"}", NULL, S_HMAC, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg of the other family", "{\"alg\":\"{X}\",\"kid\":\"{K}\"}", NULL,
	S_KEY, M_NONE, 0, TOK_BAD_HEADER, 0},
    {"alg in lower case", "{\"alg\":\"{a}\",\"kid\":\"{K}\"}", NULL, S_KEY,
	M_NONE, 0, TOK_BAD_HEADER, 0},
    {"alg PS256", "{\"alg\":\"PS256\",\"kid\":\"{K}\"}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg a number", "{\"alg\":256,\"kid\":\"{K}\"}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"alg an array", "{\"alg\":[\"{A}\"],\"kid\":\"{K}\"}", NULL, S_KEY, M_NONE,
	0, TOK_BAD_HEADER, 0},
    {"alg missing", "{\"kid\":\"{K}\",\"typ\":\"JWT\"}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},

    /* kid. */
    {"kid unknown", "{\"alg\":\"{A}\",\"kid\":\"nosuchkey\"}", NULL, S_KEY,
	M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid path-like", "{\"alg\":\"{A}\",\"kid\":\"../../etc/passwd\"}", NULL,
	S_KEY, M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid a key file path",
	"{\"alg\":\"{A}\",\"kid\":\"/var/lib/emailauth/keys/current.pem\"}",
	NULL, S_KEY, M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid a slot name", "{\"alg\":\"{A}\",\"kid\":\"current\"}", NULL, S_KEY,
	M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid a prefix of ours", "{\"alg\":\"{A}\",\"kid\":\"{k}\"}", NULL, S_KEY,
	M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid ours plus one character", "{\"alg\":\"{A}\",\"kid\":\"{K}x\"}", NULL,
	S_KEY, M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"kid missing", "{\"alg\":\"{A}\",\"typ\":\"JWT\"}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"kid empty", "{\"alg\":\"{A}\",\"kid\":\"\"}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"kid a number", "{\"alg\":\"{A}\",\"kid\":1}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"kid null", "{\"alg\":\"{A}\",\"kid\":null}", NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"kid of 129 characters",
	"{\"alg\":\"{A}\",\"kid\":\"" K16 K16 K16 K16 K16 K16 K16 K16 "k\"}",
	NULL, S_KEY, M_NONE, 0, TOK_BAD_HEADER, 0},
    {"kid of 128 characters, unknown",
	"{\"alg\":\"{A}\",\"kid\":\"" K16 K16 K16 K16 K16 K16 K16 K16 "\"}",
	NULL, S_KEY, M_NONE, 0, TOK_UNKNOWN_KID, 0},

    /* jku, jwk, x5u, x5c: never used. */
    {"jku, jwk, x5u, x5c pointing elsewhere, signed by us",
	HDR_WITH("\"jku\":\"https://evil.example/jwks.json\",\"jwk\":{J},"
		 "\"x5u\":\"https://evil.example/k.pem\",\"x5c\":[\"MIIB\"]"),
	NULL, S_KEY, M_NONE, 0, TOK_OK, 0},
    {"attacker key in jwk, attacker kid",
	"{\"alg\":\"ES256\",\"kid\":\"{Q}\",\"jwk\":{J}}", NULL, S_ATTACKER,
	M_NONE, 0, TOK_UNKNOWN_KID, 0},
    {"attacker key in jwk, our kid", HDR_WITH("\"jwk\":{J}"), NULL, S_ATTACKER,
	M_NONE, 0, TOK_BAD_SIGNATURE, 0},
    {"attacker key, jku to the attacker's JWKS",
	HDR_WITH("\"jku\":\"https://evil.example/jwks.json\""), NULL,
	S_ATTACKER, M_NONE, 0, TOK_BAD_SIGNATURE, 0},

    /* typ and crit. */
    {"typ at+jwt", "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"at+jwt\"}", NULL,
	S_KEY, M_NONE, 0, TOK_BAD_HEADER, 0},
    {"typ JOSE", "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":\"JOSE\"}", NULL,
	S_KEY, M_NONE, 0, TOK_BAD_HEADER, 0},
    {"typ a number", "{\"alg\":\"{A}\",\"kid\":\"{K}\",\"typ\":1}", NULL, S_KEY,
	M_NONE, 0, TOK_BAD_HEADER, 0},
    {"crit", HDR_WITH("\"crit\":[\"exp\"],\"exp\":1"), NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"crit empty", HDR_WITH("\"crit\":[]"), NULL, S_KEY, M_NONE, 0,
	TOK_BAD_HEADER, 0},
    {"crit b64", HDR_WITH("\"b64\":false,\"crit\":[\"b64\"]"), NULL, S_KEY,
	M_NONE, 0, TOK_BAD_HEADER, 0},

    /* The header's JSON. */
    {"duplicate alg", "{\"alg\":\"{A}\",\"alg\":\"none\",\"kid\":\"{K}\"}",
	NULL, S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"duplicate kid", "{\"alg\":\"{A}\",\"kid\":\"x\",\"kid\":\"{K}\"}", NULL,
	S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"header an array", "[\"{A}\",\"{K}\"]", NULL, S_KEY, M_NONE, 0,
	TOK_MALFORMED, 0},
    {"header a string", "\"{A}\"", NULL, S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"header a number", "1", NULL, S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"header null", "null", NULL, S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"header not JSON", "{\"alg\":\"{A}\",", NULL, S_KEY, M_NONE, 0,
	TOK_MALFORMED, 0},
    {"header with trailing bytes", HDR " x", NULL, S_KEY, M_NONE, 0,
	TOK_MALFORMED, 0},
    {"header with a NUL escape", "{\"alg\":\"{A}\",\"kid\":\"{K}\\u0000x\"}",
	NULL, S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"header invalid UTF-8", "{\"alg\":\"{A}\",\"kid\":\"\xc3\x28\"}", NULL,
	S_KEY, M_NONE, 0, TOK_MALFORMED, 0},

    /* The signature. */
    {"tampered payload", NULL, NULL, S_KEY, M_TAMPER, 0, TOK_BAD_SIGNATURE, 0},
    {"signature stripped, a.b.", NULL, NULL, S_KEY, M_STRIP, 0, TOK_MALFORMED,
	0},
    {"signature stripped, a.b", NULL, NULL, S_KEY, M_DROP, 0, TOK_MALFORMED, 0},
    {"signature one byte short", NULL, NULL, S_KEY, M_SIG_SHORT, 0,
	TOK_BAD_SIGNATURE, 0},
    {"signature one byte long", NULL, NULL, S_KEY, M_SIG_LONG, 0,
	TOK_BAD_SIGNATURE, 0},
    {"signature all zero", NULL, NULL, S_ZERO, M_NONE, 0, TOK_BAD_SIGNATURE, 0},
    {"signature junk", NULL, NULL, S_JUNK, M_NONE, 0, TOK_BAD_SIGNATURE, 0},
    {"ES256 signature left in DER", NULL, NULL, S_KEY_DER, M_NONE, 0,
	TOK_BAD_SIGNATURE, 1},
    {"signed by our next key, kid of current", NULL, NULL, S_NEXT, M_NONE, 0,
	TOK_BAD_SIGNATURE, 0},
    {"signed by an attacker's key", NULL, NULL, S_ATTACKER, M_NONE, 0,
	TOK_BAD_SIGNATURE, 0},
    {"HMAC under our kid and alg", NULL, NULL, S_HMAC, M_NONE, 0,
	TOK_BAD_SIGNATURE, 0},
    {"four segments", NULL, NULL, S_KEY, M_EXTRA, 0, TOK_MALFORMED, 0},

    /* exp, nbf and the leeway. */
    {"expired", NULL, CLAIMS_WITH("\"exp\":{T-1000}"), S_KEY, M_NONE, 30,
	TOK_EXPIRED, 0},
    {"expired beyond the leeway", NULL, CLAIMS_WITH("\"exp\":{T-31}"), S_KEY,
	M_NONE, 30, TOK_EXPIRED, 0},
    {"expired within the leeway", NULL, CLAIMS_WITH("\"exp\":{T-30}"), S_KEY,
	M_NONE, 30, TOK_OK, 0},
    {"expired one second, no leeway", NULL, CLAIMS_WITH("\"exp\":{T-1}"), S_KEY,
	M_NONE, 0, TOK_EXPIRED, 0},
    {"exp now, no leeway", NULL, CLAIMS_WITH("\"exp\":{T+0}"), S_KEY, M_NONE, 0,
	TOK_OK, 0},
    {"negative leeway counts as 0", NULL, CLAIMS_WITH("\"exp\":{T-1}"), S_KEY,
	M_NONE, -100, TOK_EXPIRED, 0},
    {"leeway capped at 300, beyond", NULL, CLAIMS_WITH("\"exp\":{T-301}"),
	S_KEY, M_NONE, 86400, TOK_EXPIRED, 0},
    {"leeway capped at 300, within", NULL, CLAIMS_WITH("\"exp\":{T-300}"),
	S_KEY, M_NONE, 86400, TOK_OK, 0},
    {"exp the largest integer", NULL,
	CLAIMS_WITH("\"exp\":9223372036854775807"), S_KEY, M_NONE, 300, TOK_OK,
	0},
    {"exp the smallest integer", NULL,
	CLAIMS_WITH("\"exp\":-9223372036854775808"), S_KEY, M_NONE, 300,
	TOK_EXPIRED, 0},
    {"exp beyond 64 bits", NULL, CLAIMS_WITH("\"exp\":99999999999999999999"),
	S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"nbf in the future", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":{T+100}"), S_KEY,
	M_NONE, 30, TOK_NOT_YET_VALID, 0},
    {"nbf beyond the leeway", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":{T+31}"), S_KEY,
	M_NONE, 30, TOK_NOT_YET_VALID, 0},
    {"nbf within the leeway", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":{T+30}"), S_KEY,
	M_NONE, 30, TOK_OK, 0},
    {"nbf with the leeway capped", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":{T+301}"),
	S_KEY, M_NONE, 86400, TOK_NOT_YET_VALID, 0},
    {"nbf the largest integer", NULL,
	CLAIMS_WITH(C_EXP ",\"nbf\":9223372036854775807"), S_KEY, M_NONE, 300,
	TOK_NOT_YET_VALID, 0},
    {"nbf the smallest integer", NULL,
	CLAIMS_WITH(C_EXP ",\"nbf\":-9223372036854775808"), S_KEY, M_NONE, 300,
	TOK_OK, 0},

    /* iss and aud. */
    {"wrong iss", NULL,
	"{\"iss\":\"https://evil.example.com\"," C_AUD "," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_ISSUER, 0},
    {"iss with a trailing slash", NULL,
	"{\"iss\":\"" ISS "/\"," C_AUD "," C_SUB "," C_EXP "}", S_KEY, M_NONE,
	0, TOK_BAD_ISSUER, 0},
    {"iss in upper case", NULL,
	"{\"iss\":\"HTTPS://AUTH.EXAMPLE.COM\"," C_AUD "," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_ISSUER, 0},
    {"iss missing", NULL, "{" C_AUD "," C_SUB "," C_EXP "}", S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"iss a number", NULL, "{\"iss\":1," C_AUD "," C_SUB "," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},
    {"iss an array", NULL,
	"{\"iss\":[\"" ISS "\"]," C_AUD "," C_SUB "," C_EXP "}", S_KEY, M_NONE,
	0, TOK_BAD_CLAIMS, 0},
    {"wrong aud", NULL, "{" C_ISS ",\"aud\":\"other-api\"," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_AUDIENCE, 0},
    {"aud a prefix", NULL, "{" C_ISS ",\"aud\":\"email\"," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_AUDIENCE, 0},
    {"aud array with ours", NULL,
	"{" C_ISS ",\"aud\":[\"other-api\",\"" AUD "\"]," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_OK, 0},
    {"aud array without ours", NULL,
	"{" C_ISS ",\"aud\":[\"other-api\",\"x\"]," C_SUB "," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_AUDIENCE, 0},
    {"aud array empty", NULL, "{" C_ISS ",\"aud\":[]," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_AUDIENCE, 0},
    {"aud array with a number", NULL,
	"{" C_ISS ",\"aud\":[1,\"" AUD "\"]," C_SUB "," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},
    {"aud array of 16 with ours last", NULL,
	"{" C_ISS ",\"aud\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
	"\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"" AUD "\"]," C_SUB
	"," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_OK, 0},
    {"aud array of 17", NULL,
	"{" C_ISS ",\"aud\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
	"\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"" AUD
	"\"]," C_SUB "," C_EXP "}",
	S_KEY, M_NONE, 0, TOK_BAD_CLAIMS, 0},
    {"aud missing", NULL, "{" C_ISS "," C_SUB "," C_EXP "}", S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"aud an object", NULL,
	"{" C_ISS ",\"aud\":{\"" AUD "\":1}," C_SUB "," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},

    /* Types and presence of the other claims. */
    {"exp a string", NULL, CLAIMS_WITH("\"exp\":\"{T+300}\""), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"exp a real", NULL, CLAIMS_WITH("\"exp\":1.5e9"), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"exp a whole real", NULL, CLAIMS_WITH("\"exp\":{T+300}.0"), S_KEY, M_NONE,
	0, TOK_BAD_CLAIMS, 0},
    {"exp true", NULL, CLAIMS_WITH("\"exp\":true"), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"exp null", NULL, CLAIMS_WITH("\"exp\":null"), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"exp missing", NULL, CLAIMS_WITH(C_IAT), S_KEY, M_NONE, 0, TOK_BAD_CLAIMS,
	0},
    {"nbf a string", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":\"0\""), S_KEY, M_NONE,
	0, TOK_BAD_CLAIMS, 0},
    {"nbf a real", NULL, CLAIMS_WITH(C_EXP ",\"nbf\":1.5"), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"iat a string", NULL, CLAIMS_WITH(C_EXP ",\"iat\":\"{T+0}\""), S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},
    {"iat a real", NULL, CLAIMS_WITH(C_EXP ",\"iat\":1.0"), S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"sub empty", NULL, "{" C_ISS "," C_AUD ",\"sub\":\"\"," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},
    {"sub missing", NULL, "{" C_ISS "," C_AUD "," C_EXP "}", S_KEY, M_NONE, 0,
	TOK_BAD_CLAIMS, 0},
    {"sub a number", NULL, "{" C_ISS "," C_AUD ",\"sub\":7," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_BAD_CLAIMS, 0},

    /* The claims' JSON, under a good signature. */
    {"duplicate exp", NULL, CLAIMS_WITH("\"exp\":{T-1000},\"exp\":{T+300}"),
	S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"duplicate sub", NULL,
	"{" C_ISS "," C_AUD "," C_SUB ",\"sub\":\"admin\"," C_EXP "}", S_KEY,
	M_NONE, 0, TOK_MALFORMED, 0},
    {"claims an array", NULL, "[" C_EXP "]", S_KEY, M_NONE, 0, TOK_MALFORMED,
	0},
    {"claims a string", NULL, "\"alice\"", S_KEY, M_NONE, 0, TOK_MALFORMED, 0},
    {"claims not JSON", NULL, "{" C_ISS ",", S_KEY, M_NONE, 0, TOK_MALFORMED,
	0},
};

static void
run_cases(const struct fixture *fx, int kind)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		const struct vcase *c = &vcases[i];
		char *tok;
		enum tok_err got;

		if (c->only != 0 && c->only != kind)
			continue;
		tok = make_token(fx, c->hdr != NULL ? c->hdr : HDR,
		    c->claims != NULL ? c->claims : CLAIMS, c->how, c->mut);
		got = verify(fx, tok, c->leeway);
		if (got != c->want) {
			print_error("%s: case '%s': got %s, want %s\n",
			    fx->name, c->name, tok_err_name(got),
			    tok_err_name(c->want));
			failed++;
		}
		free(tok);
	}
	if (failed > 0)
		fail_msg("%d case(s) failed", failed);
}

static void
test_attacks_es256(void **state)
{
	(void)state;
	run_cases(&ec_fx, 1);
}

static void
test_attacks_rs256(void **state)
{
	(void)state;
	run_cases(&rsa_fx, 2);
}

/* Splits tok at its dots and decodes segment i into dst. */
static size_t
segment(const char *tok, int i, unsigned char *dst, size_t cap)
{
	const char *s = tok, *e;
	long n;

	while (i-- > 0)
		assert_non_null(s = strchr(s, '.')), s++;
	e = strchr(s, '.');
	n = b64url_decode(dst, cap, s, e != NULL ? (size_t)(e - s) : strlen(s));
	assert_true(n >= 0);
	return (size_t)n;
}

/* Verifies tok's signature here, without tok_verify(). */
static int
independent_verify(EVP_PKEY *k, int ec, const char *tok)
{
	unsigned char sig[1024], der[128], *p = der;
	const char *d2 = strrchr(tok, '.');
	BIGNUM *r, *s;
	EVP_MD_CTX *ctx;
	ECDSA_SIG *es;
	size_t n = segment(tok, 2, sig, sizeof(sig));
	int len, ok;

	if (ec) {
		assert_int_equal(n, 64);
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		es = ECDSA_SIG_new();
		assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
		len = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		assert_true(len > 0);
		memcpy(sig, der, (size_t)len);
		n = (size_t)len;
	}
	ctx = EVP_MD_CTX_new();
	assert_int_equal(
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	ok = EVP_DigestVerify(ctx, sig, n, (const unsigned char *)tok,
		 (size_t)(d2 - tok)) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void
round_trip(const struct fixture *fx, int rounds)
{
	unsigned char buf[1024];
	char want[256], jti[32];
	json_t *claims, *got = NULL;
	char *tok;
	size_t n;
	int i;

	snprintf(want, sizeof(want),
	    "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", fx->name,
	    tok_key_kid(fx->cur));
	for (i = 0; i < rounds; i++) {
		snprintf(jti, sizeof(jti), "jti-%d", i);
		claims = json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[s,s]}", "iss", ISS,
		    "aud", AUD, "sub", "alice", "exp", (json_int_t)now + 300,
		    "iat", (json_int_t)now, "nbf", (json_int_t)now, "jti", jti,
		    "roles", "analyst", "admin");
		assert_non_null(claims);
		assert_non_null(tok = tok_sign(fx->cur, claims));
		assert_true(strlen(tok) <= TOK_MAX_LEN);
		/* The header exactly, and a signature of the right size. */
		n = segment(tok, 0, buf, sizeof(buf));
		if (n != strlen(want) || memcmp(buf, want, n) != 0)
			fail_msg("header '%.*s', want '%s'", (int)n, buf, want);
		n = segment(tok, 2, buf, sizeof(buf));
		assert_int_equal(n, fx->ec ? 64 : 384);
		assert_true(independent_verify(fx->priv, fx->ec, tok));
		assert_int_equal(
		    verify_with(fx->ks, tok, strlen(tok), 0, &got), TOK_OK);
		assert_true(json_equal(got, claims));
		json_decref(got);
		json_decref(claims);
		free(tok);
	}
}

static void
test_round_trip(void **state)
{
	(void)state;
	/* Enough ES256 signatures that some r or s has a leading zero. */
	round_trip(&ec_fx, 1000);
	round_trip(&rsa_fx, 20);
}

static void
test_sign_fresh_nonce(void **state)
{
	unsigned char sig[3][64];
	json_t *claims;
	char *tok;
	int i, j;

	(void)state;
	/* The same claims thrice: ECDSA draws a new k, so r differs. */
	claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", ISS, "aud", AUD,
	    "sub", "alice", "exp", (json_int_t)now + 300);
	for (i = 0; i < 3; i++) {
		assert_non_null(tok = tok_sign(ec_fx.cur, claims));
		assert_int_equal(segment(tok, 2, sig[i], sizeof(sig[i])), 64);
		assert_int_equal(verify(&ec_fx, tok, 0), TOK_OK);
		free(tok);
		for (j = 0; j < i; j++)
			assert_memory_not_equal(sig[i], sig[j], 32);
	}
	json_decref(claims);
}

static void
test_sign_refused(void **state)
{
	struct tok_keyset *pub = NULL;
	json_t *claims = json_pack("{s:s}", "sub", "alice");
	json_t *arr = json_array();
	char err[256], *jwks;

	(void)state;
	assert_null(tok_sign(NULL, claims));
	assert_null(tok_sign(ec_fx.cur, NULL));
	assert_null(tok_sign(ec_fx.cur, arr));
	/* A key from a JWKS has no private half. */
	assert_non_null(jwks = tok_keyset_jwks(ec_fx.ks));
	assert_int_equal(
	    tok_keyset_from_jwks(jwks, strlen(jwks), &pub, err, sizeof(err)),
	    0);
	assert_null(
	    tok_sign(tok_keyset_find(pub, tok_key_kid(ec_fx.cur)), claims));
	/* Claims that would make a token too long to verify. */
	{
		char *big = malloc(TOK_MAX_LEN);

		memset(big, 'x', TOK_MAX_LEN - 1);
		big[TOK_MAX_LEN - 1] = '\0';
		json_object_set_new(claims, "pad", json_string(big));
		assert_null(tok_sign(ec_fx.cur, claims));
		free(big);
	}
	free(jwks);
	tok_keyset_free(pub);
	json_decref(claims);
	json_decref(arr);
}

static void
test_verify_arguments(void **state)
{
	struct tok_expect e = {ISS, AUD, 0, 0};
	enum tok_err why = TOK_OK;
	json_t *claims = NULL;
	char *tok;

	(void)state;
	e.now = now;
	tok = make_token(&ec_fx, HDR, CLAIMS, S_KEY, M_NONE);
	assert_int_equal(
	    tok_verify(NULL, tok, strlen(tok), &e, &claims, &why), -1);
	assert_int_equal(why, TOK_INTERNAL);
	assert_int_equal(
	    tok_verify(ec_fx.ks, tok, strlen(tok), NULL, &claims, &why), -1);
	assert_int_equal(why, TOK_INTERNAL);
	e.issuer = NULL;
	assert_int_equal(
	    tok_verify(ec_fx.ks, tok, strlen(tok), &e, &claims, &why), -1);
	assert_int_equal(why, TOK_INTERNAL);
	e.issuer = ISS;
	e.audience = NULL;
	assert_int_equal(
	    tok_verify(ec_fx.ks, tok, strlen(tok), &e, &claims, &why), -1);
	assert_int_equal(why, TOK_INTERNAL);
	e.audience = AUD;
	assert_null(claims);
	assert_int_equal(tok_verify(ec_fx.ks, NULL, 10, &e, &claims, &why), -1);
	assert_int_equal(why, TOK_MALFORMED);
	assert_int_equal(tok_verify(ec_fx.ks, tok, 0, &e, &claims, &why), -1);
	assert_int_equal(why, TOK_MALFORMED);
	/* No claims wanted, no reason wanted. */
	assert_int_equal(
	    tok_verify(ec_fx.ks, tok, strlen(tok), &e, NULL, NULL), 0);
	/* len counts, not the NUL: 63 bytes of signature. */
	assert_int_equal(verify_with(ec_fx.ks, tok, strlen(tok) - 2, 0, NULL),
	    TOK_BAD_SIGNATURE);
	/* A NUL inside the given length. */
	{
		size_t len = strlen(tok);

		tok[1] = '\0';
		assert_int_equal(
		    verify_with(ec_fx.ks, tok, len, 0, NULL), TOK_MALFORMED);
	}
	free(tok);
}

/*
 * A token exactly len characters long, signed by fx: padded through a
 * header member of 0 to 3 characters and a claim. NULL when none fits.
 */
static char *
token_of_length(const struct fixture *fx, size_t len)
{
	size_t hp, cp, pre, total, sig = B64URL_LEN(fx->ec ? 64 : 384);
	char hdr[128], *h, *c, *tok = NULL;

	c = expand(fx, "{" C_ISS "," C_AUD "," C_SUB "," C_EXP ",\"pad\":\"");
	pre = strlen(c);
	for (hp = 0; hp < 4 && tok == NULL; hp++) {
		snprintf(hdr, sizeof(hdr), HDR_WITH("\"x\":\"%.*s\""), (int)hp,
		    "xxx");
		h = expand(fx, hdr);
		for (cp = 0; cp < len; cp++) {
			total = B64URL_LEN(strlen(h)) + 1 +
			    B64URL_LEN(pre + cp + 2) + 1 + sig;
			if (total > len)
				break;
			if (total < len)
				continue;
			assert_non_null(c = realloc(c, pre + cp + 3));
			memset(c + pre, 'p', cp);
			memcpy(c + pre + cp, "\"}", 3);
			tok = make_raw(fx, h, c, S_KEY, M_NONE);
			assert_int_equal(strlen(tok), len);
			break;
		}
		free(h);
	}
	free(c);
	return tok;
}

static void
test_size_cap(void **state)
{
	const struct fixture *fxs[] = {&ec_fx, &rsa_fx};
	size_t i;
	char *tok;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_non_null(tok = token_of_length(fxs[i], TOK_MAX_LEN));
		assert_int_equal(verify(fxs[i], tok, 0), TOK_OK);
		free(tok);
		assert_non_null(tok = token_of_length(fxs[i], TOK_MAX_LEN + 1));
		assert_int_equal(verify(fxs[i], tok, 0), TOK_MALFORMED);
		free(tok);
	}
}

static void
test_invalid_base64url(void **state)
{
	static const char bad[] = {
	    '+', '/', '=', ' ', '\n', '\t', '!', '*', '\\', '"', '\x80'};
	char *tok, *t;
	size_t i, at, seg;
	const char *dot;

	(void)state;
	tok = make_token(&ec_fx, HDR, CLAIMS, S_KEY, M_NONE);
	assert_int_equal(verify(&ec_fx, tok, 0), TOK_OK);
	for (seg = 0; seg < 3; seg++) {
		/* The second character of the segment. */
		at = 1;
		for (dot = tok, i = 0; i < seg; i++)
			dot = strchr(dot, '.') + 1;
		at = (size_t)(dot - tok) + 1;
		for (i = 0; i < sizeof(bad); i++) {
			assert_non_null(t = strdup(tok));
			t[at] = bad[i];
			if (verify(&ec_fx, t, 0) != TOK_MALFORMED)
				fail_msg("segment %zu with 0x%02x accepted",
				    seg, (unsigned char)bad[i]);
			free(t);
		}
	}
	/*
	 * The signature is 86 characters. Padding, a length of 1 mod 4, and
	 * (as a control) characters that decode to a longer signature.
	 */
	assert_int_equal(strlen(strrchr(tok, '.') + 1), 86);
	assert_non_null(t = malloc(strlen(tok) + 8));
	sprintf(t, "%s==", tok);
	assert_int_equal(verify(&ec_fx, t, 0), TOK_MALFORMED);
	sprintf(t, "%sAAA", tok);
	assert_int_equal(verify(&ec_fx, t, 0), TOK_MALFORMED);
	sprintf(t, "%sAAAA", tok);
	assert_int_equal(verify(&ec_fx, t, 0), TOK_BAD_SIGNATURE);
	/* Its last character carries 2 bits: B sets a stray one. */
	strcpy(t, tok);
	t[strlen(t) - 1] = 'B';
	assert_int_equal(verify(&ec_fx, t, 0), TOK_MALFORMED);
	free(t);
	/* Segments empty in turn. */
	{
		static const char *const shapes[] = {".", "..", "...", "a..",
		    ".a.", "..a", "a.a.", ".a.a", "a..a", "a", ""};

		for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
			if (verify_with(ec_fx.ks, shapes[i], strlen(shapes[i]),
				0, NULL) != TOK_MALFORMED)
				fail_msg("'%s' not malformed", shapes[i]);
	}
	free(tok);
}

/* The JWKS of ks, parsed. */
static json_t *
jwks_of(const struct tok_keyset *ks)
{
	char *s = tok_keyset_jwks(ks);
	json_t *j;

	assert_non_null(s);
	assert_non_null(j = json_loads(s, JSON_REJECT_DUPLICATES, NULL));
	free(s);
	return j;
}

static void
check_jwks(const struct fixture *fx)
{
	static const char *const ec_members[] = {
	    "alg", "crv", "kid", "kty", "use", "x", "y"};
	static const char *const rsa_members[] = {
	    "alg", "e", "kid", "kty", "n", "use"};
	unsigned char buf[1024];
	char thumb[64];
	json_t *j = jwks_of(fx->ks), *keys, *k;
	size_t i, m, nm;

	keys = json_object_get(j, "keys");
	assert_int_equal(json_object_size(j), 1);
	assert_int_equal(json_array_size(keys), 2); /* current and next */
	json_array_foreach(keys, i, k)
	{
		const char *const *members = fx->ec ? ec_members : rsa_members;
		const char *kid = json_string_value(json_object_get(k, "kid"));

		nm = fx->ec ? 7 : 6;
		/* Exactly the public members: no d, p, q, ... */
		assert_int_equal(json_object_size(k), nm);
		for (m = 0; m < nm; m++)
			if (json_object_get(k, members[m]) == NULL)
				fail_msg("JWK without %s", members[m]);
		assert_string_equal(
		    json_string_value(json_object_get(k, "use")), "sig");
		assert_string_equal(
		    json_string_value(json_object_get(k, "alg")), fx->name);
		assert_non_null(kid);
		assert_int_equal(strlen(kid), TOK_THUMB_LEN);
		assert_int_equal(
		    b64url_decode(buf, sizeof(buf), kid, strlen(kid)), 32);
		thumbprint_of(k, thumb);
		assert_string_equal(kid, thumb);
		assert_non_null(tok_keyset_find(fx->ks, kid));
		if (fx->ec) {
			assert_string_equal(
			    json_string_value(json_object_get(k, "crv")),
			    "P-256");
			assert_int_equal(member_bytes(k, "x", buf, 64), 32);
			assert_int_equal(member_bytes(k, "y", buf, 64), 32);
		} else {
			assert_string_equal(
			    json_string_value(json_object_get(k, "e")), "AQAB");
			assert_int_equal(
			    member_bytes(k, "n", buf, sizeof(buf)), 384);
		}
	}
	/* In slot order: current, then next. */
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
	    tok_key_kid(fx->cur));
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
	    tok_key_kid(tok_keyset_get(fx->ks, TOK_NEXT)));
	json_decref(j);
}

static void
test_kid_and_jwks(void **state)
{
	char thumb[64];

	(void)state;
	check_jwks(&ec_fx);
	check_jwks(&rsa_fx);
	assert_string_equal(tok_key_alg(ec_fx.cur), "ES256");
	assert_string_equal(tok_key_alg(rsa_fx.cur), "RS256");
	assert_null(tok_keyset_get(ec_fx.ks, TOK_PREVIOUS));
	assert_null(tok_keyset_get(NULL, TOK_CURRENT));
	assert_null(tok_keyset_get(ec_fx.ks, (enum tok_slot)7));
	assert_null(tok_keyset_find(ec_fx.ks, NULL));
	assert_null(tok_keyset_find(NULL, "x"));
	assert_null(tok_key_kid(NULL));
	assert_null(tok_keyset_jwks(NULL));
	/* The kid is the thumbprint of the key parsed here from the file. */
	assert_int_equal(tok_key_thumbprint(ec_fx.priv, thumb), 0);
	assert_string_equal(thumb, tok_key_kid(ec_fx.cur));
	assert_int_equal(tok_key_thumbprint(rsa_fx.next_priv, thumb), 0);
	assert_string_equal(
	    thumb, tok_key_kid(tok_keyset_get(rsa_fx.ks, TOK_NEXT)));
}

static void
test_rfc7638_vector(void **state)
{
	static const char doc[] = "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"" RFC_N
				  "\",\"e\":\"AQAB\",\"alg\":\"RS256\","
				  "\"kid\":\"2011-04-29\"}]}";
	struct tok_keyset *ks = NULL;
	const struct tok_key *k;
	char err[256], thumb[64];
	json_t *rfc, *j, *jk;

	(void)state;
	/* The thumbprint computed here agrees with the RFC... */
	rfc =
	    json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", RFC_N, "e", "AQAB");
	thumbprint_of(rfc, thumb);
	assert_string_equal(thumb, RFC_THUMB);
	json_decref(rfc);
	/* ... and so does ours, on the key built from a JWKS. */
	if (tok_keyset_from_jwks(doc, strlen(doc), &ks, err, sizeof(err)) == -1)
		fail_msg("tok_keyset_from_jwks: %s", err);
	assert_non_null(k = tok_keyset_find(ks, "2011-04-29"));
	assert_string_equal(tok_key_alg(k), "RS256");
	assert_int_equal(tok_key_thumbprint(k->pkey, thumb), 0);
	assert_string_equal(thumb, RFC_THUMB);
	/* Its members come back as they went in. */
	j = jwks_of(ks);
	jk = json_array_get(json_object_get(j, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(jk, "n")), RFC_N);
	assert_string_equal(
	    json_string_value(json_object_get(jk, "e")), "AQAB");
	assert_string_equal(
	    json_string_value(json_object_get(jk, "kid")), "2011-04-29");
	json_decref(j);
	/* JWKS keys fill no slot. */
	assert_null(tok_keyset_get(ks, TOK_CURRENT));
	tok_keyset_free(ks);
}

static void
test_jwks_verifies_ours(void **state)
{
	const struct fixture *fxs[] = {&ec_fx, &rsa_fx};
	struct tok_keyset *pub;
	char err[256], *jwks, *tok;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		pub = NULL;
		jwks = tok_keyset_jwks(fxs[i]->ks);
		if (tok_keyset_from_jwks(
			jwks, strlen(jwks), &pub, err, sizeof(err)) == -1)
			fail_msg("our own JWKS: %s", err);
		assert_int_equal(pub->n, 2);
		assert_non_null(tok_keyset_find(pub, tok_key_kid(fxs[i]->cur)));
		tok = make_token(fxs[i], HDR, CLAIMS, S_KEY, M_NONE);
		assert_int_equal(
		    verify_with(pub, tok, strlen(tok), 0, NULL), TOK_OK);
		free(tok);
		tok = make_token(fxs[i], HDR, CLAIMS, S_KEY, M_TAMPER);
		assert_int_equal(verify_with(pub, tok, strlen(tok), 0, NULL),
		    TOK_BAD_SIGNATURE);
		free(tok);
		tok = make_token(fxs[i], "{\"alg\":\"HS256\",\"kid\":\"{K}\"}",
		    CLAIMS, S_HMAC, M_NONE);
		assert_int_equal(verify_with(pub, tok, strlen(tok), 0, NULL),
		    TOK_BAD_HEADER);
		free(tok);
		/* The same JWKS out again. */
		{
			char *again = tok_keyset_jwks(pub);

			assert_string_equal(again, jwks);
			free(again);
		}
		free(jwks);
		tok_keyset_free(pub);
	}
}

/* A JWK of k's public key with extra members, as a new string. */
static char *
jwk_of(EVP_PKEY *k, const char *extra)
{
	unsigned char buf[1024];
	char a[1400], b[128], *s;
	BIGNUM *bn = NULL;
	size_t n;

	if (EVP_PKEY_is_a(k, "EC")) {
		int len = (EVP_PKEY_get_bits(k) + 7) / 8;

		ec_xy(k, len, a, b);
		n = strlen(a) + strlen(b) + strlen(extra) + 128;
		s = malloc(n);
		snprintf(s, n,
		    "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
		    len == 32 ? "P-256" : "P-384", a, b, extra);
		return s;
	}
	assert_int_equal(
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	b64url_encode(a, buf, (size_t)BN_bn2bin(bn, buf));
	BN_free(bn);
	n = strlen(a) + strlen(extra) + 128;
	s = malloc(n);
	snprintf(
	    s, n, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"%s}", a, extra);
	return s;
}

/* A new string made as printf would. */
static char *xprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	assert_non_null(s = malloc((size_t)n + 1));
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static void
test_jwks_refused(void **state)
{
	EVP_PKEY *rsa1024 = EVP_RSA_gen(1024), *p384 = EVP_EC_gen("P-384");
	char *small, *big, *ours, *noalg, *enc, *es384, *nokid, *rs_es;
	char *mixed, *twice, *doc, err[256];
	struct tok_keyset *ks;
	size_t i;

	(void)state;
	assert_non_null(rsa1024);
	assert_non_null(p384);
	small = jwk_of(rsa1024, ",\"kid\":\"small\",\"alg\":\"RS256\"");
	big = jwk_of(p384, ",\"kid\":\"big\",\"alg\":\"ES384\"");
	ours = jwk_of(
	    ec_fx.priv, ",\"kid\":\"ours\",\"alg\":\"ES256\",\"use\":\"sig\"");
	noalg = jwk_of(rsa_fx.priv, ",\"kid\":\"noalg\"");
	enc = jwk_of(ec_fx.priv, ",\"kid\":\"e\",\"use\":\"enc\"");
	es384 = jwk_of(ec_fx.priv, ",\"kid\":\"e\",\"alg\":\"ES384\"");
	nokid = jwk_of(ec_fx.priv, ",\"alg\":\"ES256\"");
	rs_es = jwk_of(ec_fx.priv, ",\"kid\":\"e\",\"alg\":\"RS256\"");
	mixed = xprintf(
	    "{\"kty\":\"oct\",\"k\":\"AA\",\"kid\":\"h\"},%s,%s", big, ours);
	twice = xprintf("%s,%s", ours, ours);

	const struct {
		const char *name;
		const char *keys; /* the inside of "keys":[...] */
		size_t want_n;    /* usable keys, 0 refused */
	} cases[] = {
	    {"RSA of 1024 bits", small, 0},
	    {"EC on P-384", big, 0},
	    {"no keys", "", 0},
	    {"oct key",
		"{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"h\","
		"\"alg\":\"HS256\"}",
		0},
	    {"OKP key",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7"
		"TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"o\"}",
		0},
	    {"EC with alg ES384", es384, 0},
	    {"EC with use enc", enc, 0},
	    {"EC without kid", nokid, 0},
	    {"EC with alg RS256", rs_es, 0},
	    {"EC not on the curve",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"c\","
		"\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		"\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		0},
	    {"EC with a short x",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"c\","
		"\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		"\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		0},
	    {"a string", "\"key\"", 0},
	    {"mixed: oct, P-384, ours", mixed, 1},
	    {"RSA without alg or use", noalg, 1},
	    {"the same kid twice", twice, 1},
	    {"ours", ours, 1},
	};

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		doc = xprintf("{\"keys\":[%s]}", cases[i].keys);
		ks = NULL;
		err[0] = '\0';
		if (tok_keyset_from_jwks(
			doc, strlen(doc), &ks, err, sizeof(err)) == -1) {
			if (cases[i].want_n != 0)
				fail_msg("JWKS '%s' refused: %s", cases[i].name,
				    err);
			assert_null(ks);
			assert_true(err[0] != '\0');
		} else {
			if (cases[i].want_n == 0)
				fail_msg("JWKS '%s' accepted", cases[i].name);
			assert_int_equal(ks->n, cases[i].want_n);
		}
		assert_int_equal(ERR_peek_error(), 0);
		tok_keyset_free(ks);
		free(doc);
	}
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p384);
	free(small);
	free(big);
	free(ours);
	free(noalg);
	free(enc);
	free(es384);
	free(nokid);
	free(rs_es);
	free(mixed);
	free(twice);
}

/* A JWKS of n copies of jwk, whose kid ends it, with distinct kids. */
static char *
many_keys(const char *jwk, size_t n)
{
	size_t i, len = n * (strlen(jwk) + 8) + 32, cut = strlen(jwk) - 2;
	char *doc = malloc(len);

	assert_non_null(doc);
	assert_string_equal(jwk + cut, "\"}");
	snprintf(doc, len, "{\"keys\":[");
	for (i = 0; i < n; i++)
		snprintf(doc + strlen(doc), len - strlen(doc), "%s%.*s%zu\"}",
		    i > 0 ? "," : "", (int)cut, jwk, i);
	snprintf(doc + strlen(doc), len - strlen(doc), "]}");
	return doc;
}

static void
test_jwks_foreign_kid(void **state)
{
	static const char kid[] = "key 1/\xc3\xa9\\\"x";
	struct tok_keyset *ks = NULL;
	char err[256], *jwk, *doc, *tok, *hdr;
	const char *claims = CLAIMS_WITH(C_EXP);
	char *c;

	(void)state;
	/* A kid that is no thumbprint, with JSON escapes: parsed path. */
	jwk = jwk_of(ec_fx.priv, ",\"kid\":\"key 1/\\u00e9\\\\\\\"x\"");
	doc = xprintf("{\"keys\":[%s]}", jwk);
	if (tok_keyset_from_jwks(doc, strlen(doc), &ks, err, sizeof(err)) == -1)
		fail_msg("JWKS: %s", err);
	assert_non_null(tok_keyset_find(ks, kid));
	hdr = xprintf("{\"alg\":\"ES256\",\"kid\":\"key 1/\xc3\xa9\\\\\\\"x\","
		      "\"typ\":\"JWT\"}");
	c = expand(&ec_fx, claims);
	tok = make_raw(&ec_fx, hdr, c, S_KEY, M_NONE);
	assert_int_equal(verify_with(ks, tok, strlen(tok), 0, NULL), TOK_OK);
	free(tok);
	tok = make_raw(&ec_fx, hdr, c, S_KEY, M_TAMPER);
	assert_int_equal(
	    verify_with(ks, tok, strlen(tok), 0, NULL), TOK_BAD_SIGNATURE);
	free(tok);
	/* Such a key has no header of ours to match, so cannot sign. */
	assert_null(tok_keyset_find(ks, kid)->hdr);
	free(c);
	free(hdr);
	free(doc);
	free(jwk);
	tok_keyset_free(ks);
}

static void
test_jwks_documents_refused(void **state)
{
	static const char *const docs[] = {
	    "",
	    "not json",
	    "[]",
	    "{}",
	    "{\"keys\":{}}",
	    "{\"keys\":null}",
	    "{\"keys\":[],\"keys\":[]}",
	};
	struct tok_keyset *ks = NULL;
	char err[256], *doc, *ours;
	size_t i, o;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		if (tok_keyset_from_jwks(
			docs[i], strlen(docs[i]), &ks, err, sizeof(err)) != -1)
			fail_msg("JWKS '%s' accepted", docs[i]);
		assert_null(ks);
	}
	assert_int_equal(
	    tok_keyset_from_jwks(NULL, 0, &ks, err, sizeof(err)), -1);
	/* 16 keys are fine, 17 are too many. */
	ours = jwk_of(ec_fx.priv, ",\"kid\":\"k\"");
	doc = many_keys(ours, 16);
	if (tok_keyset_from_jwks(doc, strlen(doc), &ks, err, sizeof(err)) == -1)
		fail_msg("16 keys: %s", err);
	assert_int_equal(ks->n, 16);
	assert_non_null(tok_keyset_find(ks, "k15"));
	tok_keyset_free(ks);
	ks = NULL;
	free(doc);
	doc = many_keys(ours, 17);
	assert_int_equal(
	    tok_keyset_from_jwks(doc, strlen(doc), &ks, err, sizeof(err)), -1);
	assert_null(ks);
	free(doc);
	/* Over 64 KiB, and just under it. */
	assert_non_null(doc = malloc(70 * 1024));
	for (i = 0; i < 2; i++) {
		size_t pad = 64 * 1024 - 18 - strlen(ours) + (i == 0 ? 1 : 0);

		snprintf(doc, 70 * 1024, "{\"keys\":[%s],\"p\":\"", ours);
		o = strlen(doc);
		memset(doc + o, 'x', pad);
		memcpy(doc + o + pad, "\"}", 3);
		assert_int_equal(strlen(doc), 64 * 1024 + (i == 0 ? 1 : 0));
		ks = NULL;
		assert_int_equal(tok_keyset_from_jwks(
				     doc, strlen(doc), &ks, err, sizeof(err)),
		    i == 0 ? -1 : 0);
		tok_keyset_free(ks);
	}
	free(doc);
	free(ours);
}

/* The path of dir/keys/name in p (256 bytes). */
static char *
kpath(char *p, const char *dir, const char *name)
{
	snprintf(p, 256, "%s/keys/%s", dir, name);
	return p;
}

/* tok_keyset_load() of dir that must fail with err containing want. */
static void
load_fails(const char *dir, int create, const char *want)
{
	struct tok_keyset *ks = NULL;
	char err[512] = "";

	if (tok_keyset_load(dir, "ES256", create, &ks, err, sizeof(err)) != -1)
		fail_msg("tok_keyset_load accepted (want '%s')", want);
	assert_null(ks);
	assert_int_equal(ERR_peek_error(), 0);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
}

static struct tok_keyset *
load_ok(const char *dir, const char *alg, int create)
{
	struct tok_keyset *ks = NULL;
	char err[512];

	if (tok_keyset_load(dir, alg, create, &ks, err, sizeof(err)) == -1)
		fail_msg("tok_keyset_load: %s", err);
	return ks;
}

/* Only .lock and the three slot files are left in dir/keys. */
static void
only_key_files(const char *dir)
{
	char p[256];
	struct dirent *de;
	DIR *d;

	snprintf(p, sizeof(p), "%s/keys", dir);
	assert_non_null(d = opendir(p));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, ".lock") != 0 &&
		    strcmp(de->d_name, "previous.pem") != 0 &&
		    strcmp(de->d_name, "current.pem") != 0 &&
		    strcmp(de->d_name, "next.pem") != 0)
			fail_msg("left behind: %s", de->d_name);
	}
	closedir(d);
}

static void
test_key_files(void **state)
{
	static const mode_t bad_dir[] = {
	    0755, 0644, 0750, 0711, 0701, 0770, 0707, 0777};
	static const char *const junk[] = {
	    "not a pem\n",
	    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	};
	const char *dir = *state;
	char kd[256], k[256], real[256], moved[256], buf[64];
	char err[256], *kid, *j;
	struct tok_keyset *ks;
	struct stat st;
	EVP_PKEY *pk;
	size_t i;
	FILE *f;

	snprintf(kd, sizeof(kd), "%s/keys", dir);
	/* Nothing there and nothing to create: an empty keyset. */
	ks = load_ok(dir, NULL, 0);
	assert_null(tok_keyset_get(ks, TOK_CURRENT));
	assert_non_null(j = tok_keyset_jwks(ks));
	assert_string_equal(j, "{\"keys\":[]}");
	free(j);
	tok_keyset_free(ks);
	assert_int_equal(lstat(kd, &st), -1); /* and nothing made */

	ks = load_ok(dir, "ES256", 1);
	kid = strdup(tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)));
	assert_non_null(tok_keyset_get(ks, TOK_NEXT));
	assert_null(tok_keyset_get(ks, TOK_PREVIOUS));
	tok_keyset_free(ks);
	/* Modes and format of what was written. */
	assert_int_equal(lstat(kd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(lstat(kpath(k, dir, "next.pem"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(lstat(kpath(k, dir, "current.pem"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(f = fopen(k, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "-----BEGIN PRIVATE KEY-----\n");
	only_key_files(dir);
	/* Loading again gives the same keys. */
	ks = load_ok(dir, "ES256", 0);
	assert_string_equal(tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)), kid);
	tok_keyset_free(ks);
	ks = load_ok(dir, "ES256", 1);
	assert_string_equal(tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)), kid);
	tok_keyset_free(ks);

	/* Key file modes. */
	assert_int_equal(chmod(k, 0644), 0);
	load_fails(dir, 0, "chmod 600");
	load_fails(dir, 1, "(mode 0644)");
	assert_int_equal(chmod(k, 0640), 0);
	load_fails(dir, 0, "chmod 600");
	assert_int_equal(chmod(k, 0604), 0);
	load_fails(dir, 0, "chmod 600");
	assert_int_equal(chmod(k, 0600), 0);
	assert_int_equal(chmod(kpath(k, dir, "next.pem"), 0620), 0);
	load_fails(dir, 0, "chmod 600");
	assert_int_equal(chmod(k, 0400), 0);
	tok_keyset_free(load_ok(dir, "ES256", 0));

	/* Directory modes, for loading and for rotating. */
	for (i = 0; i < sizeof(bad_dir) / sizeof(bad_dir[0]); i++) {
		assert_int_equal(chmod(kd, bad_dir[i]), 0);
		load_fails(dir, 0, "chmod 700");
		assert_int_equal(
		    tok_keys_rotate(dir, "ES256", 0, 1, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "chmod 700"));
	}
	assert_int_equal(chmod(kd, 0700), 0);
	tok_keyset_free(load_ok(dir, "ES256", 0));

	/* A symbolic link as key file, and as directory. */
	kpath(k, dir, "current.pem");
	kpath(real, dir, "real.pem");
	assert_int_equal(rename(k, real), 0);
	assert_int_equal(symlink(real, k), 0);
	load_fails(dir, 0, "cannot open");
	assert_int_equal(unlink(k), 0);
	assert_int_equal(rename(real, k), 0);
	snprintf(moved, sizeof(moved), "%s/elsewhere", dir);
	assert_int_equal(rename(kd, moved), 0);
	assert_int_equal(symlink(moved, kd), 0);
	load_fails(dir, 0, "not a directory");
	load_fails(dir, 1, "not a directory");
	assert_int_equal(unlink(kd), 0);
	assert_int_equal(rename(moved, kd), 0);
	tok_keyset_free(load_ok(dir, "ES256", 0));

	/* Contents that are not a usable private key, as previous.pem. */
	kpath(k, dir, "previous.pem");
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_non_null(f = fopen(k, "w"));
		fputs(junk[i], f);
		fclose(f);
		assert_int_equal(chmod(k, 0600), 0);
		load_fails(dir, 0, "not a private key");
	}
	assert_non_null(f = fopen(k, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, ec_fx.priv), 1);
	fclose(f);
	load_fails(dir, 0, "not a private key");
	assert_non_null(pk = EVP_RSA_gen(1024));
	write_pem(k, pk, 0600);
	EVP_PKEY_free(pk);
	load_fails(dir, 0, "RSA key of 1024 bits");
	assert_non_null(pk = EVP_EC_gen("P-384"));
	write_pem(k, pk, 0600);
	EVP_PKEY_free(pk);
	load_fails(dir, 0, "P-256");
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	write_pem(k, pk, 0600);
	EVP_PKEY_free(pk);
	load_fails(dir, 0, "neither");
	/* An RSA key written by someone else is fine. */
	write_pem(k, rsa_fx.priv, 0600);
	ks = load_ok(dir, "ES256", 0);
	assert_string_equal(
	    tok_key_alg(tok_keyset_get(ks, TOK_PREVIOUS)), "RS256");
	assert_string_equal(tok_key_kid(tok_keyset_get(ks, TOK_PREVIOUS)),
	    tok_key_kid(rsa_fx.cur));
	tok_keyset_free(ks);
	assert_int_equal(unlink(k), 0);

	/* current missing, next there: a fresh current, next kept. */
	ks = load_ok(dir, "ES256", 0);
	free(kid);
	kid = strdup(tok_key_kid(tok_keyset_get(ks, TOK_NEXT)));
	tok_keyset_free(ks);
	assert_int_equal(unlink(kpath(k, dir, "current.pem")), 0);
	ks = load_ok(dir, "ES256", 0);
	assert_null(tok_keyset_get(ks, TOK_CURRENT));
	tok_keyset_free(ks);
	ks = load_ok(dir, "ES256", 1);
	assert_non_null(tok_keyset_get(ks, TOK_CURRENT));
	assert_string_equal(tok_key_kid(tok_keyset_get(ks, TOK_NEXT)), kid);
	assert_string_not_equal(
	    tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)), kid);
	tok_keyset_free(ks);
	free(kid);
	only_key_files(dir);

	/* Bad arguments. */
	ks = NULL;
	assert_int_equal(
	    tok_keyset_load(dir, "HS256", 1, &ks, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unsupported"));
	assert_int_equal(
	    tok_keyset_load(dir, "none", 0, &ks, err, sizeof(err)), -1);
	assert_int_equal(
	    tok_keyset_load(dir, NULL, 1, &ks, err, sizeof(err)), -1);
	assert_int_equal(
	    tok_keyset_load(NULL, "ES256", 1, &ks, err, sizeof(err)), -1);
	snprintf(moved, sizeof(moved), "%s/missing/state", dir);
	assert_int_equal(
	    tok_keyset_load(moved, "ES256", 1, &ks, err, sizeof(err)), -1);
	assert_null(ks);
}

static void
test_rotation(void **state)
{
	const char *dir = *state;
	char err[512], k[256], kid0[64], kid1[64], kid2[64];
	struct tok_keyset *ks, *ks2;
	struct fixture old = {.name = "ES256", .ec = 1};
	struct timespec ts[2];
	struct stat st;
	json_t *j;
	char *tok;

	ks = load_ok(dir, "ES256", 1);
	snprintf(kid0, sizeof(kid0), "%s",
	    tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)));
	snprintf(kid1, sizeof(kid1), "%s",
	    tok_key_kid(tok_keyset_get(ks, TOK_NEXT)));
	/* A token signed by the current key, before the rotation. */
	old.ks = ks;
	old.cur = tok_keyset_get(ks, TOK_CURRENT);
	assert_non_null(old.priv = read_pem(dir, "current.pem"));
	tok = make_token(&old, HDR, CLAIMS, S_KEY, M_NONE);
	assert_int_equal(verify(&old, tok, 0), TOK_OK);

	/* current.pem made long ago: its retirement, not its birth, counts. */
	ts[0].tv_sec = ts[1].tv_sec = (time_t)now - 86400;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(
	    utimensat(AT_FDCWD, kpath(k, dir, "current.pem"), ts, 0), 0);
	/* No previous key yet: min_age does not apply. */
	if (tok_keys_rotate(dir, "ES256", 3600, 0, err, sizeof(err)) == -1)
		fail_msg("first rotation: %s", err);
	only_key_files(dir);
	ks2 = load_ok(dir, "ES256", 0);
	assert_string_equal(
	    tok_key_kid(tok_keyset_get(ks2, TOK_PREVIOUS)), kid0);
	assert_string_equal(
	    tok_key_kid(tok_keyset_get(ks2, TOK_CURRENT)), kid1);
	snprintf(kid2, sizeof(kid2), "%s",
	    tok_key_kid(tok_keyset_get(ks2, TOK_NEXT)));
	assert_string_not_equal(kid2, kid0);
	assert_string_not_equal(kid2, kid1);
	j = jwks_of(ks2);
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(j, "keys"), 0), "kid")),
	    kid0);
	json_decref(j);
	/* The old current verifies as previous. */
	assert_int_equal(verify_with(ks2, tok, strlen(tok), 0, NULL), TOK_OK);
	/* previous.pem was touched: retired now, 0600. */
	assert_int_equal(lstat(kpath(k, dir, "previous.pem"), &st), 0);
	assert_true(st.st_mtime >= now - 5);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(lstat(kpath(k, dir, "next.pem"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	tok_keyset_free(ks2);

	/* Too soon: the previous key's tokens may still be valid. */
	err[0] = '\0';
	assert_int_equal(
	    tok_keys_rotate(dir, "ES256", 3600, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "retired"));
	ks2 = load_ok(dir, "ES256", 0);
	assert_string_equal(
	    tok_key_kid(tok_keyset_get(ks2, TOK_PREVIOUS)), kid0);
	tok_keyset_free(ks2);
	/* Retired two hours ago: fine. */
	ts[0].tv_sec = ts[1].tv_sec = (time_t)now - 7200;
	assert_int_equal(
	    utimensat(AT_FDCWD, kpath(k, dir, "previous.pem"), ts, 0), 0);
	if (tok_keys_rotate(dir, "ES256", 3600, 0, err, sizeof(err)) == -1)
		fail_msg("rotation after min_age: %s", err);
	/* And again right away, forced. */
	assert_int_equal(
	    tok_keys_rotate(dir, "ES256", 3600, 0, err, sizeof(err)), -1);
	if (tok_keys_rotate(dir, "ES256", 3600, 1, err, sizeof(err)) == -1)
		fail_msg("forced rotation: %s", err);
	only_key_files(dir);
	ks2 = load_ok(dir, "ES256", 0);
	assert_string_equal(
	    tok_key_kid(tok_keyset_get(ks2, TOK_PREVIOUS)), kid2);
	assert_null(tok_keyset_find(ks2, kid0));
	assert_null(tok_keyset_find(ks2, kid1));
	/* A token of a key rotated out: unknown kid. */
	assert_int_equal(
	    verify_with(ks2, tok, strlen(tok), 0, NULL), TOK_UNKNOWN_KID);
	tok_keyset_free(ks2);
	/* min_age 0 never refuses; a new alg comes in as next. */
	if (tok_keys_rotate(dir, "RS256", 0, 0, err, sizeof(err)) == -1)
		fail_msg("rotation to RS256: %s", err);
	ks2 = load_ok(dir, "ES256", 0);
	assert_string_equal(
	    tok_key_alg(tok_keyset_get(ks2, TOK_NEXT)), "RS256");
	assert_string_equal(
	    tok_key_alg(tok_keyset_get(ks2, TOK_CURRENT)), "ES256");
	tok_keyset_free(ks2);

	/* Refusals. */
	assert_int_equal(
	    tok_keys_rotate(dir, "HS256", 0, 1, err, sizeof(err)), -1);
	assert_int_equal(
	    tok_keys_rotate(NULL, "ES256", 0, 1, err, sizeof(err)), -1);
	assert_int_equal(unlink(kpath(k, dir, "next.pem")), 0);
	assert_int_equal(
	    tok_keys_rotate(dir, "ES256", 0, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "next.pem is missing"));
	free(tok);
	EVP_PKEY_free(old.priv);
	tok_keyset_free(ks);
	{
		char none[128];

		snprintf(none, sizeof(none), "%s/none", dir);
		assert_int_equal(
		    tok_keys_rotate(none, "ES256", 0, 1, err, sizeof(err)), -1);
	}
}

/* Verifies 200 distinct tokens; the thread's failures in *arg. */
static void *
verifier(void *arg)
{
	struct tok_expect e = {ISS, AUD, 0, 0};
	char **toks = arg;
	json_t *claims;
	enum tok_err why;
	intptr_t bad = 0;
	int i, r;

	e.now = now;
	for (r = 0; r < 5; r++)
		for (i = 0; i < 40; i++) {
			if (tok_verify(ec_fx.ks, toks[i], strlen(toks[i]), &e,
				&claims, &why) != 0)
				bad++;
			else
				json_decref(claims);
		}
	return (void *)bad;
}

static void
test_threads(void **state)
{
	char *toks[40];
	pthread_t th[4];
	void *bad;
	int i;

	(void)state;
	for (i = 0; i < 40; i++) {
		json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:i}", "iss", ISS,
		    "aud", AUD, "sub", "alice", "exp", (json_int_t)now + 60,
		    "n", i);

		assert_non_null(toks[i] = tok_sign(ec_fx.cur, c));
		json_decref(c);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, verifier, toks), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &bad), 0);
		assert_null(bad);
	}
	for (i = 0; i < 40; i++)
		free(toks[i]);
}

/*
 * Runs the libjwt helper (tests/integ/jwt_interop.c, built beside this
 * test) on input; its first output line goes to out (cap bytes). Returns
 * its exit status, or -1 when it cannot be run.
 */
static int
interop(const char *cmd, const char *input, char *out, size_t cap)
{
	char in[256];
	FILE *f;
	int st;

	snprintf(in, sizeof(in), "%s/interop-in", ec_fx.dir);
	assert_non_null(f = fopen(in, "w"));
	fputs(input, f);
	assert_int_equal(fclose(f), 0);
	{
		char line[8448];

		snprintf(line, sizeof(line), "%s < %s 2>/dev/null", cmd, in);
		if ((f = popen(line, "r")) == NULL)
			return -1;
	}
	out[0] = '\0';
	if (fgets(out, (int)cap, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	while (fgetc(f) != EOF)
		continue;
	st = pclose(f);
	unlink(in);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static void
test_libjwt_interop(void **state)
{
	const struct fixture *fxs[] = {&ec_fx, &rsa_fx};
	char exe[PATH_MAX], tool[PATH_MAX + 32], pub[256], cmd[8192];
	char claims[256], out[TOK_MAX_LEN + 2];
	ssize_t n;
	size_t i;
	int round;
	FILE *f;

	(void)state;
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		skip();
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(tool, sizeof(tool), "%s/jwt_interop", exe);
	if (access(tool, X_OK) != 0) {
		print_message("%s not built: libjwt interop skipped\n", tool);
		skip();
	}
	for (i = 0; i < 2; i++) {
		const struct fixture *fx = fxs[i];
		const char *kid = tok_key_kid(fx->cur);

		snprintf(pub, sizeof(pub), "%s/pub.pem", fx->dir);
		assert_non_null(f = fopen(pub, "w"));
		fputs(fx->pub_pem, f);
		assert_int_equal(fclose(f), 0);
		for (round = 0; round < 10; round++) {
			json_t *c, *got = NULL;
			char *tok;

			snprintf(claims, sizeof(claims),
			    "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"alice\","
			    "\"exp\":%lld,\"jti\":\"%d\"}",
			    ISS, AUD, now + 300, round);
			/* Ours, verified by libjwt: the same claims back. */
			assert_non_null(c = json_loads(claims, 0, NULL));
			assert_non_null(tok = tok_sign(fx->cur, c));
			snprintf(cmd, sizeof(cmd), "%s verify %s %s", tool,
			    fx->name, pub);
			assert_int_equal(
			    interop(cmd, tok, out, sizeof(out)), 0);
			assert_non_null(got = json_loads(out, 0, NULL));
			assert_true(json_equal(got, c));
			json_decref(got);
			/* libjwt pinned to the other alg refuses it. */
			snprintf(cmd, sizeof(cmd), "%s verify %s %s", tool,
			    fx->ec ? "RS256" : "ES256", pub);
			assert_int_equal(
			    interop(cmd, tok, out, sizeof(out)), 1);
			free(tok);
			/* libjwt's, verified by us. */
			snprintf(cmd, sizeof(cmd),
			    "%s sign %s %s/keys/current.pem %s", tool, fx->name,
			    fx->dir, kid);
			assert_int_equal(
			    interop(cmd, claims, out, sizeof(out)), 0);
			assert_int_equal(
			    verify_with(fx->ks, out, strlen(out), 0, &got),
			    TOK_OK);
			assert_true(json_equal(got, c));
			json_decref(got);
			json_decref(c);
		}
		unlink(pub);
	}
}

static void
test_err_names(void **state)
{
	static const struct {
		enum tok_err e;
		const char *name;
	} names[] = {
	    {TOK_OK, "ok"},
	    {TOK_MALFORMED, "malformed"},
	    {TOK_BAD_HEADER, "bad_header"},
	    {TOK_UNKNOWN_KID, "unknown_kid"},
	    {TOK_BAD_SIGNATURE, "bad_signature"},
	    {TOK_EXPIRED, "expired"},
	    {TOK_NOT_YET_VALID, "not_yet_valid"},
	    {TOK_BAD_ISSUER, "bad_issuer"},
	    {TOK_BAD_AUDIENCE, "bad_audience"},
	    {TOK_BAD_CLAIMS, "bad_claims"},
	    {TOK_INTERNAL, "internal"},
	    {(enum tok_err)99, "unknown"},
	};

	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(tok_err_name(names[i].e), names[i].name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_names),
	    cmocka_unit_test(test_kid_and_jwks),
	    cmocka_unit_test(test_rfc7638_vector),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_sign_fresh_nonce),
	    cmocka_unit_test(test_sign_refused),
	    cmocka_unit_test(test_attacks_es256),
	    cmocka_unit_test(test_attacks_rs256),
	    cmocka_unit_test(test_verify_arguments),
	    cmocka_unit_test(test_size_cap),
	    cmocka_unit_test(test_invalid_base64url),
	    cmocka_unit_test(test_jwks_verifies_ours),
	    cmocka_unit_test(test_jwks_refused),
	    cmocka_unit_test(test_jwks_foreign_kid),
	    cmocka_unit_test(test_jwks_documents_refused),
	    cmocka_unit_test_setup_teardown(
		test_key_files, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(
		test_rotation, dir_setup, dir_teardown),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_libjwt_interop),
	};

	return cmocka_run_group_tests_name("token", tests, setup, teardown);
}
