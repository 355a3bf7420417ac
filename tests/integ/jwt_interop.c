/*
 * jwt_interop: libjwt 1.10.2 as the independent second implementation of
 * our tokens, for the tests only (libraries.md §1: never in the product).
 *
 *   jwt_interop verify ALG PUBKEY_PEM_FILE < token
 *	Decodes the token with jwt_decode() and the public key, then
 *	requires jwt_get_alg() to be ALG (ES256 or RS256): 1.10.2 takes the
 *	alg from the header, so without that check alg none or HS256 keyed
 *	with the PEM would pass. Prints the claims JSON and exits 0 when
 *	valid; exits 1 when not. No claim is checked here (exp, iss, ...):
 *	this is about the signature and the encoding.
 *
 *   jwt_interop sign ALG PRIVKEY_PEM_FILE KID < claims.json
 *	Prints a token made by libjwt: jwt_new(), jwt_add_grants_json(),
 *	headers kid and typ JWT, jwt_set_alg(), jwt_encode_str().
 *
 * Exit status 2 is a usage or I/O error. The token read is capped at
 * 8 KiB (jwt_decode() alloca()s each segment); one trailing newline or
 * other whitespace is dropped. The public key PEM for verify comes from
 * our private key file:
 *
 *   openssl pkey -in STATE_DIR/keys/current.pem -pubout -out pub.pem
 *
 * Example, both directions (build-tok/ being a build directory):
 *
 *   build-tok/tests/jwt_interop verify ES256 pub.pem < token.txt
 *   echo '{"sub":"alice","exp":4102444800}' |
 *       build-tok/tests/jwt_interop sign ES256 current.pem KID
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

/* The longest token accepted, as tok_verify(): TOK_MAX_LEN. */
#define TOKEN_MAX 8192

/* The longest key file or claims document. */
#define INPUT_MAX (64 * 1024)

/*
 * Reads at most max bytes from f into a new NUL-terminated buffer (one
 * more byte than max is allocated to detect overlong input). Returns the
 * buffer and its length in *len_r, or NULL when f is empty, longer than
 * max, unreadable, or holds a NUL byte.
 */
static char *
read_all(FILE *f, size_t max, size_t *len_r)
{
	char *buf = NULL, *ret = NULL;
	size_t n;

	if ((buf = malloc(max + 2)) == NULL)
		goto out;
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n == 0 || n > max || memchr(buf, '\0', n) != NULL)
		goto out;
	buf[n] = '\0';
	*len_r = n;
	ret = buf;
	buf = NULL;
out:
	free(buf);
	return ret;
}

/* read_all() of the file at path. */
static char *
read_path(const char *path, size_t max, size_t *len_r)
{
	FILE *f;
	char *ret;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	ret = read_all(f, max, len_r);
	fclose(f);
	return ret;
}

/* The only algorithms our keys have; JWT_ALG_INVAL for anything else. */
static jwt_alg_t
pinned_alg(const char *name)
{
	if (strcmp(name, "ES256") == 0)
		return JWT_ALG_ES256;
	if (strcmp(name, "RS256") == 0)
		return JWT_ALG_RS256;
	return JWT_ALG_INVAL;
}

static int
verify(jwt_alg_t alg, const char *key_path)
{
	char *key = NULL, *tok = NULL, *claims = NULL;
	size_t klen, tlen;
	jwt_t *jwt = NULL;
	int rc, ret = 2;

	if ((key = read_path(key_path, INPUT_MAX, &klen)) == NULL) {
		fprintf(stderr, "jwt_interop: cannot read %s\n", key_path);
		goto out;
	}
	if ((tok = read_all(stdin, TOKEN_MAX + 1, &tlen)) == NULL) {
		fprintf(stderr, "jwt_interop: no token on stdin\n");
		goto out;
	}
	while (tlen > 0 && strchr(" \t\r\n", tok[tlen - 1]) != NULL)
		tok[--tlen] = '\0';
	ret = 1;
	if (tlen == 0 || tlen > TOKEN_MAX) {
		fprintf(stderr, "jwt_interop: token empty or over %d bytes\n",
		    TOKEN_MAX);
		goto out;
	}
	/* Never a NULL key or a zero length: libjwt would skip the check. */
	rc = jwt_decode(&jwt, tok, (const unsigned char *)key, (int)klen);
	if (rc != 0) {
		fprintf(stderr, "jwt_interop: jwt_decode: %s\n", strerror(rc));
		goto out;
	}
	if (jwt_get_alg(jwt) != alg) {
		fprintf(stderr, "jwt_interop: alg %s, want %s\n",
		    jwt_alg_str(jwt_get_alg(jwt)), jwt_alg_str(alg));
		goto out;
	}
	if ((claims = jwt_get_grants_json(jwt, NULL)) == NULL) {
		fprintf(stderr, "jwt_interop: no claims\n");
		goto out;
	}
	printf("%s\n", claims);
	ret = 0;
out:
	free(claims);
	jwt_free(jwt);
	free(tok);
	free(key);
	return ret;
}

static int
sign(jwt_alg_t alg, const char *key_path, const char *kid)
{
	char *key = NULL, *claims = NULL, *tok = NULL;
	size_t klen = 0, clen;
	jwt_t *jwt = NULL;
	int rc, ret = 2;

	if ((key = read_path(key_path, INPUT_MAX, &klen)) == NULL) {
		fprintf(stderr, "jwt_interop: cannot read %s\n", key_path);
		goto out;
	}
	if ((claims = read_all(stdin, INPUT_MAX, &clen)) == NULL) {
		fprintf(stderr, "jwt_interop: no claims on stdin\n");
		goto out;
	}
	ret = 1;
	if ((rc = jwt_new(&jwt)) != 0 ||
	    (rc = jwt_add_grants_json(jwt, claims)) != 0 ||
	    (rc = jwt_add_header(jwt, "kid", kid)) != 0 ||
	    (rc = jwt_add_header(jwt, "typ", "JWT")) != 0 ||
	    (rc = jwt_set_alg(
		 jwt, alg, (const unsigned char *)key, (int)klen)) != 0) {
		fprintf(stderr, "jwt_interop: %s\n", strerror(rc));
		goto out;
	}
	if ((tok = jwt_encode_str(jwt)) == NULL) {
		fprintf(stderr, "jwt_interop: jwt_encode_str: %s\n",
		    strerror(errno));
		goto out;
	}
	printf("%s\n", tok);
	ret = 0;
out:
	free(tok);
	jwt_free(jwt);
	free(claims);
	if (key != NULL)
		explicit_bzero(key, klen);
	free(key);
	return ret;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: jwt_interop verify ES256|RS256 PUBKEY_PEM"
	    " < token\n"
	    "       jwt_interop sign ES256|RS256 PRIVKEY_PEM KID"
	    " < claims.json\n");
}

int
main(int argc, char **argv)
{
	jwt_alg_t alg;

	if (argc < 4 || (alg = pinned_alg(argv[2])) == JWT_ALG_INVAL) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "verify") == 0 && argc == 4)
		return verify(alg, argv[3]);
	if (strcmp(argv[1], "sign") == 0 && argc == 5)
		return sign(alg, argv[3], argv[4]);
	usage();
	return 2;
}
