/*
 * What the files of src/token/ share and nothing outside them (and their
 * unit test) may use: the layout of a key and of a keyset.
 */
#ifndef EA_TOKEN_INTERNAL_H
#define EA_TOKEN_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "token/token.h"

/* Longest kid accepted, in a token header or a JWKS. */
#define TOK_KID_MAX 128

/* Characters of an RFC 7638 SHA-256 thumbprint in base64url. */
#define TOK_THUMB_LEN 43

/* RSA moduli accepted, in bits. */
#define TOK_RSA_MIN_BITS 2048
#define TOK_RSA_MAX_BITS 8192

/* Largest signature of any key accepted (an 8192-bit RSA one). */
#define TOK_SIG_MAX (TOK_RSA_MAX_BITS / 8)

/* Keys one keyset holds: the three slots, or the keys of a JWKS. */
#define TOK_SET_MAX 16

struct tok_key {
	EVP_PKEY *pkey;  /* never modified after tok_key_new() */
	const char *alg; /* "ES256" or "RS256", static */
	int ec;          /* 1 for ES256, 0 for RS256 */
	int priv;        /* 1 when pkey holds the private key */
	size_t sig_len;  /* 64, or the RSA modulus in bytes */
	char kid[TOK_KID_MAX + 1];
	char *jwk; /* the public JWK, compact JSON, sorted members */
	/*
	 * The header tok_sign() writes, {"alg","kid","typ":"JWT"} in that
	 * order, base64url: a token starting with exactly these bytes needs
	 * no header parsing. NULL when the kid is not base64url (a foreign
	 * JWKS key); every token then takes the parsing path.
	 */
	char *hdr;
	size_t hdr_len;
	/*
	 * EVP_DigestVerifyInit() and EVP_DigestSignInit() (priv only) done
	 * once with SHA-256: each use copies one (EVP_MD_CTX_copy_ex()
	 * reads it only), which costs a tenth of an init.
	 */
	EVP_MD_CTX *verify_tmpl;
	EVP_MD_CTX *sign_tmpl;
};

struct tok_keyset {
	struct tok_key *keys[TOK_SET_MAX]; /* owned */
	size_t n;
	const struct tok_key *slot[3]; /* by enum tok_slot, into keys[] */
};

/*
 * Wraps pkey in a new key after checking it: EC on P-256 (ES256) or RSA
 * of TOK_RSA_MIN_BITS to TOK_RSA_MAX_BITS bits (RS256). kid NULL means
 * the RFC 7638 thumbprint; otherwise it is copied (1 to TOK_KID_MAX
 * characters). priv says whether pkey can sign. Returns 0 and the key in
 * *r, which then owns pkey (free with tok_key_free()); or -1 with a
 * message in err, pkey still the caller's.
 */
int tok_key_new(EVP_PKEY *pkey, int priv, const char *kid, struct tok_key **r,
    char *err, size_t errlen);

/* Frees k and its EVP_PKEY. NULL-safe. */
void tok_key_free(struct tok_key *k);

/*
 * Writes the RFC 7638 SHA-256 thumbprint of an EC P-256 or RSA public key,
 * base64url, into dst (TOK_THUMB_LEN + 1 bytes, NUL-terminated). Returns
 * 0, or -1 for another key type or an OpenSSL failure (dst untouched).
 */
int tok_key_thumbprint(const EVP_PKEY *pkey, char *dst);

/* A new empty keyset (free with tok_keyset_free()), or NULL. */
struct tok_keyset *tok_keyset_new(void);

/*
 * Adds k to ks, which then owns it. Returns 0, or -1 when ks is full (k
 * still the caller's).
 */
int tok_keyset_add(struct tok_keyset *ks, struct tok_key *k);

#endif
