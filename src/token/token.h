/*
 * Signing keys and JWS compact tokens on OpenSSL EVP, for the daemon (which
 * signs) and the guard (which verifies). libjwt is never used here: 1.10.2
 * trusts the header's alg and re-parses PEM keys on every call.
 *
 * Keys live in STATE_DIR/keys/ (directory 0700, files 0600, PKCS#8 PEM):
 * current.pem signs; next.pem is published before it is used; previous.pem
 * stays published until the tokens it signed have expired. Rotation moves
 * previous <- current <- next <- a new key. The algorithm of a key follows
 * from its type: EC P-256 is ES256, RSA (2048+ bits) is RS256.
 */
#ifndef EA_TOKEN_TOKEN_H
#define EA_TOKEN_TOKEN_H

#include <stddef.h>

#include <jansson.h>

/* Longest token accepted for verification. */
#define TOK_MAX_LEN 8192

/* Why a token was refused (for logs and metrics; never sent to clients). */
enum tok_err {
	TOK_OK = 0,
	TOK_MALFORMED,   /* size, segments, base64url, JSON, types */
	TOK_BAD_HEADER,  /* alg/kid/typ/crit not acceptable */
	TOK_UNKNOWN_KID, /* no loaded key has this kid */
	TOK_BAD_SIGNATURE,
	TOK_EXPIRED,
	TOK_NOT_YET_VALID,
	TOK_BAD_ISSUER,
	TOK_BAD_AUDIENCE,
	TOK_BAD_CLAIMS, /* a required claim missing or of the wrong type */
	TOK_INTERNAL,
};

/* A short name for e ("expired", "bad_signature", ...). */
const char *tok_err_name(enum tok_err e);

struct tok_key;    /* one key: parsed EVP_PKEY, alg, kid, public JWK */
struct tok_keyset; /* the keys loaded from one directory, immutable */

/* Which key in a directory. */
enum tok_slot {
	TOK_PREVIOUS,
	TOK_CURRENT,
	TOK_NEXT,
};

/*
 * Loads STATE_DIR/keys/. When create is 1 and a current or next key is
 * missing, it is generated with alg ("ES256" or "RS256") and written 0600
 * (the directory created 0700). Refuses key files readable by group or
 * others. Returns 0 and a new keyset (free with tok_keyset_free()), or -1
 * with a message in err.
 */
int tok_keyset_load(const char *state_dir, const char *alg, int create,
    struct tok_keyset **r, char *err, size_t errlen);

/*
 * Rotates the keys in STATE_DIR/keys/ (previous <- current <- next <- a
 * new alg key), holding an exclusive lock on the directory. Refuses (-1,
 * message in err) when the previous key was retired less than min_age
 * seconds ago and force is 0: its tokens might still be valid.
 */
int tok_keys_rotate(const char *state_dir, const char *alg, long long min_age,
    int force, char *err, size_t errlen);

/* Builds a keyset from a JWKS document (the guard); only public keys. */
int tok_keyset_from_jwks(const char *json, size_t len, struct tok_keyset **r,
    char *err, size_t errlen);

/* NULL-safe. */
void tok_keyset_free(struct tok_keyset *ks);

/* The key in slot, or NULL. Owned by the keyset. */
const struct tok_key *tok_keyset_get(
    const struct tok_keyset *ks, enum tok_slot slot);

/* The key with this kid (compared in full), or NULL. Owned by the keyset. */
const struct tok_key *tok_keyset_find(
    const struct tok_keyset *ks, const char *kid);

/*
 * The JWKS of every key (previous, current, next): {"keys":[...]} with
 * kty, crv/x/y or n/e, kid, alg, use "sig". New string; caller frees.
 */
char *tok_keyset_jwks(const struct tok_keyset *ks);

/* The key's kid (RFC 7638 SHA-256 thumbprint, base64url) and alg. */
const char *tok_key_kid(const struct tok_key *k);
const char *tok_key_alg(const struct tok_key *k);

/*
 * Signs claims with k: header {"alg","kid","typ":"JWT"}. Returns the
 * compact JWS as a new string (caller frees), or NULL. Thread-safe.
 */
char *tok_sign(const struct tok_key *k, const json_t *claims);

/* What a verifier expects of the claims. */
struct tok_expect {
	const char *issuer;   /* iss must equal it */
	const char *audience; /* aud (string, or array) must contain it */
	long long now;        /* Unix seconds */
	long long leeway;     /* seconds allowed on exp and nbf, <= 300 */
};

/*
 * Verifies a compact JWS of len bytes: size cap, three base64url
 * segments, header a JSON object whose alg equals the alg of the key its
 * kid names (a missing kid is refused), no crit, jku/jwk/x5u/x5c ignored
 * (never fetched or used); signature; then the claims with their JSON
 * types: iss, aud, exp (required), nbf and iat (integers when present),
 * sub (non-empty string). On success returns 0 and the claims object in
 * *claims_r (a new reference). On failure returns -1 and the reason in
 * *why. Thread-safe.
 */
int tok_verify(const struct tok_keyset *ks, const char *token, size_t len,
    const struct tok_expect *e, json_t **claims_r, enum tok_err *why);

#endif
