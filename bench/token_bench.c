/*
 * token_bench: tok_verify() and tok_sign() against raw OpenSSL on the same
 * messages with a key parsed once, on one core (SPEC.md, Performance:
 * token verify ÷ raw ES256 verify ≥ 0.9).
 *
 *   token_bench [N [ROUNDS]]     N ES256 tokens (default 20000; RS256
 *				  uses N / 20), ROUNDS rounds (default 5)
 *
 * Every token is distinct (its own jti) and fresh; no cache is involved.
 * The raw baseline gets every advantage: DER signatures and the signing
 * inputs computed beforehand, one EVP_MD_CTX reused, a public-only key.
 * tok_verify() does all its work per call: split, base64url, header JSON,
 * key lookup, r || s to DER, its own EVP_MD_CTX, claims JSON and checks.
 * Its EVP_MD_CTX is copied from one the key initialised at load, which
 * is cheaper than EVP_DigestVerifyInit(); the "raw, EVP_MD_CTX_copy_ex"
 * row does the same with raw OpenSSL, so that the price of everything
 * else tok_verify() does shows against it too.
 * The rows are measured interleaved: each round walks the tokens in blocks
 * of BLOCK, and every operation runs over a block before the next block,
 * in an order that rotates, so a noisy neighbour hurts all rows alike.
 * ops/s is from the summed loop times, p50/p99 from per-operation
 * CLOCK_MONOTONIC samples.
 */
#define _GNU_SOURCE /* sched_setaffinity() */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "guard/verifier.h"
#include "token/token.h"
#include "util/b64.h"

#define ISS "https://auth.example.com"
#define AUD "email-api"

/* Tokens per interleaved block (a tenth for RS256, whose signing is slow). */
#define BLOCK 200

/* The cached verification: untimed iterations, then timed samples. */
#define CACHED_ITERS   2000000
#define CACHED_CHUNKS  11
#define CACHED_SAMPLES 200000

/* One measured operation over all the tokens of a key. */
enum op {
	OP_RAW_VERIFY,
	OP_RAW_VERIFY_COPY, /* the same, context copied from an initialised one
			     */
	OP_VERIFY,          /* tok_verify(), keyset from the keys directory */
	OP_VERIFY_JWKS,     /* tok_verify(), keyset from the JWKS (the guard) */
	OP_GUARD,           /* gv_verify(), the guard's verifier, cache cold */
	OP_RAW_SIGN,
	OP_SIGN,
	OP_COUNT,
};

static const char *const op_name[OP_COUNT] = {
    [OP_RAW_VERIFY] = "verify  raw EVP_DigestVerify",
    [OP_RAW_VERIFY_COPY] = "verify  raw, EVP_MD_CTX_copy_ex",
    [OP_VERIFY] = "verify  tok_verify (keys dir)",
    [OP_VERIFY_JWKS] = "verify  tok_verify (JWKS)",
    [OP_GUARD] = "verify  guard gv_verify, cold",
    [OP_RAW_SIGN] = "sign    raw EVP_DigestSign",
    [OP_SIGN] = "sign    tok_sign",
};

/* Everything measured for one algorithm. */
struct alg_run {
	const char *alg;
	size_t n;
	struct tok_keyset *ks, *guard;
	EVP_PKEY *priv, *pub; /* parsed once, for the raw rows */
	json_t **claims;
	char **tok;
	size_t *msg_len;     /* header.payload of each token */
	unsigned char **der; /* the signature as OpenSSL wants it */
	size_t *der_len;
	double *lat[OP_COUNT];  /* per-operation seconds, n per round */
	double total[OP_COUNT]; /* summed loop seconds */
	size_t done[OP_COUNT];  /* operations measured */
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "token_bench: %s\n", what);
	exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* The private key in dir/keys/current.pem and its public half. */
static void
parse_keys(const char *dir, struct alg_run *r)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	char path[256];
	FILE *f;
	int len;

	snprintf(path, sizeof(path), "%s/keys/current.pem", dir);
	if ((f = fopen(path, "r")) == NULL ||
	    (r->priv = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		die("cannot parse current.pem");
	fclose(f);
	if ((len = i2d_PUBKEY(r->priv, &der)) <= 0)
		die("i2d_PUBKEY");
	p = der;
	if ((r->pub = d2i_PUBKEY(NULL, &p, len)) == NULL)
		die("d2i_PUBKEY");
	OPENSSL_free(der);
}

/* Makes the keys, the tokens and what the raw rows need. */
static void
prepare(struct alg_run *r, const char *dir, long long now, int rounds)
{
	unsigned char sig[1024], der[128], *dp;
	char err[512], *jwks;
	size_t i, sl;
	int op;

	if (tok_keyset_load(dir, r->alg, 1, &r->ks, err, sizeof(err)) == -1)
		die(err);
	if ((jwks = tok_keyset_jwks(r->ks)) == NULL ||
	    tok_keyset_from_jwks(
		jwks, strlen(jwks), &r->guard, err, sizeof(err)) == -1)
		die("JWKS");
	free(jwks);
	parse_keys(dir, r);
	r->claims = xcalloc(r->n, sizeof(*r->claims));
	r->tok = xcalloc(r->n, sizeof(*r->tok));
	r->msg_len = xcalloc(r->n, sizeof(*r->msg_len));
	r->der = xcalloc(r->n, sizeof(*r->der));
	r->der_len = xcalloc(r->n, sizeof(*r->der_len));
	for (op = 0; op < OP_COUNT; op++)
		r->lat[op] = xcalloc(r->n * (size_t)rounds, sizeof(double));
	for (i = 0; i < r->n; i++) {
		char jti[32];
		const char *dot;

		snprintf(jti, sizeof(jti), "bench-%zu", i);
		r->claims[i] = json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:[s], s:s}",
		    "iss", ISS, "sub", "alice", "aud", AUD, "exp",
		    (json_int_t)(now + 3600), "iat", (json_int_t)now, "nbf",
		    (json_int_t)now, "jti", jti, "sid", "s-0123456789abcdef",
		    "roles", "analyst", "scope", "emails:read emails:label");
		if (r->claims[i] == NULL ||
		    (r->tok[i] = tok_sign(tok_keyset_get(r->ks, TOK_CURRENT),
			 r->claims[i])) == NULL)
			die("tok_sign");
		dot = strrchr(r->tok[i], '.');
		r->msg_len[i] = (size_t)(dot - r->tok[i]);
		sl = (size_t)b64url_decode(
		    sig, sizeof(sig), dot + 1, strlen(dot + 1));
		if (strcmp(r->alg, "ES256") == 0) {
			ECDSA_SIG *es = ECDSA_SIG_new();
			BIGNUM *br = BN_bin2bn(sig, 32, NULL);
			BIGNUM *bs = BN_bin2bn(sig + 32, 32, NULL);
			int len;

			if (es == NULL || br == NULL || bs == NULL ||
			    ECDSA_SIG_set0(es, br, bs) != 1)
				die("ECDSA_SIG");
			dp = der;
			if ((len = i2d_ECDSA_SIG(es, &dp)) <= 0)
				die("i2d_ECDSA_SIG");
			ECDSA_SIG_free(es);
			memcpy(sig, der, (size_t)len);
			sl = (size_t)len;
		}
		r->der[i] = xcalloc(1, sl);
		memcpy(r->der[i], sig, sl);
		r->der_len[i] = sl;
	}
}

/*
 * One pass of op over tokens lo to hi - 1; the samples go to round's
 * slice of the op's latencies.
 */
static void
pass(struct alg_run *r, int op, int round, size_t lo, size_t hi, long long now)
{
	struct tok_expect e = {ISS, AUD, now, 30};
	unsigned char sig[1024];
	const struct tok_key *cur = tok_keyset_get(r->ks, TOK_CURRENT);
	double *lat = r->lat[op] + (size_t)round * r->n, t0, t1, start;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *tmpl = EVP_MD_CTX_new();
	struct ea_principal *who;
	struct gv *gv = NULL;
	json_t *claims;
	enum tok_err why;
	size_t i, sl;
	char *t;

	/* A verifier of its own per pass: every token misses its cache. */
	if (op == OP_GUARD) {
		if ((gv = gv_new(ISS, AUD, 30, 64)) == NULL)
			die("gv_new");
		gv_set_keys(gv, r->guard, 0);
	}
	if (ctx == NULL || tmpl == NULL ||
	    EVP_DigestVerifyInit(tmpl, NULL, EVP_sha256(), NULL, r->pub) != 1)
		die("EVP_MD_CTX_new");
	start = mono();
	for (i = lo; i < hi; i++) {
		t0 = mono();
		switch (op) {
		case OP_RAW_VERIFY:
			if (EVP_DigestVerifyInit(
				ctx, NULL, EVP_sha256(), NULL, r->pub) != 1 ||
			    EVP_DigestVerify(ctx, r->der[i], r->der_len[i],
				(const unsigned char *)r->tok[i],
				r->msg_len[i]) != 1)
				die("raw verify failed");
			EVP_MD_CTX_reset(ctx);
			break;
		case OP_RAW_VERIFY_COPY:
			if (EVP_MD_CTX_copy_ex(ctx, tmpl) != 1 ||
			    EVP_DigestVerify(ctx, r->der[i], r->der_len[i],
				(const unsigned char *)r->tok[i],
				r->msg_len[i]) != 1)
				die("raw verify failed");
			EVP_MD_CTX_reset(ctx);
			break;
		case OP_VERIFY:
		case OP_VERIFY_JWKS:
			if (tok_verify(op == OP_VERIFY ? r->ks : r->guard,
				r->tok[i], strlen(r->tok[i]), &e, &claims,
				&why) != 0)
				die(tok_err_name(why));
			json_decref(claims);
			break;
		case OP_GUARD:
			if (gv_verify(gv, r->tok[i], strlen(r->tok[i]), now,
				&who, &why) != 0)
				die(tok_err_name(why));
			gv_release(who);
			break;
		case OP_RAW_SIGN:
			sl = sizeof(sig);
			if (EVP_DigestSignInit(
				ctx, NULL, EVP_sha256(), NULL, r->priv) != 1 ||
			    EVP_DigestSign(ctx, sig, &sl,
				(const unsigned char *)r->tok[i],
				r->msg_len[i]) != 1)
				die("raw sign failed");
			EVP_MD_CTX_reset(ctx);
			break;
		default:
			if ((t = tok_sign(cur, r->claims[i])) == NULL)
				die("tok_sign failed");
			free(t);
			break;
		}
		t1 = mono();
		lat[i] = t1 - t0;
	}
	r->total[op] += mono() - start;
	r->done[op] += hi - lo;
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(tmpl);
	gv_free(gv);
}

/* Operations per second of op in r. */
static double
rate_of(const struct alg_run *r, int op)
{
	return (double)r->done[op] / r->total[op];
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(struct alg_run *r, int rounds)
{
	size_t n;
	double rate[OP_COUNT], base, ratio;
	int op;

	for (op = 0; op < OP_COUNT; op++) {
		n = r->n * (size_t)rounds;
		qsort(r->lat[op], n, sizeof(double), cmp_double);
		rate[op] = rate_of(r, op);
		base = op <= OP_GUARD ? rate[OP_RAW_VERIFY] : rate[OP_RAW_SIGN];
		ratio = rate[op] / base;
		printf("%s %-32s %10.0f %7.3f %9.1f %9.1f\n", r->alg,
		    op_name[op], rate[op], ratio, r->lat[op][n / 2] * 1e6,
		    r->lat[op][n * 99 / 100] * 1e6);
	}
}

static void
release(struct alg_run *r)
{
	size_t i;
	int op;

	for (i = 0; i < r->n; i++) {
		json_decref(r->claims[i]);
		free(r->tok[i]);
		free(r->der[i]);
	}
	for (op = 0; op < OP_COUNT; op++)
		free(r->lat[op]);
	free(r->claims);
	free(r->tok);
	free(r->msg_len);
	free(r->der);
	free(r->der_len);
	tok_keyset_free(r->ks);
	tok_keyset_free(r->guard);
	EVP_PKEY_free(r->priv);
	EVP_PKEY_free(r->pub);
}

/* Removes what tok_keyset_load() made in dir, and dir. */
static void
cleanup(const char *dir)
{
	static const char *const files[] = {
	    "previous.pem", "current.pem", "next.pem", ".lock"};
	char p[256];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/keys/%s", dir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/keys", dir);
	rmdir(p);
	rmdir(dir);
}

/*
 * The guard's verifier on one token again and again (its cache): the rate
 * is the median of CACHED_CHUNKS untimed loops (a loaded machine preempts
 * some of them), p50/p99 come from a second, timed loop.
 */
static void
cached(struct alg_run *r, long long now)
{
	size_t iters = CACHED_ITERS / CACHED_CHUNKS, i, k, n = CACHED_SAMPLES;
	double chunk[CACHED_CHUNKS];
	struct ea_principal *who;
	struct gv *gv;
	enum tok_err why;
	const char *t = r->tok[0];
	size_t len = strlen(t);
	double start, rate, t0, *lat = xcalloc(n, sizeof(double));

	if ((gv = gv_new(ISS, AUD, 30, 10000)) == NULL)
		die("gv_new");
	gv_set_keys(gv, r->guard, 0);
	if (gv_verify(gv, t, len, now, &who, &why) != 0)
		die(tok_err_name(why));
	gv_release(who);
	for (k = 0; k < CACHED_CHUNKS; k++) {
		start = mono();
		for (i = 0; i < iters; i++) {
			if (gv_verify(gv, t, len, now, &who, &why) != 0)
				die(tok_err_name(why));
			gv_release(who);
		}
		chunk[k] = (double)iters / (mono() - start);
	}
	qsort(chunk, CACHED_CHUNKS, sizeof(double), cmp_double);
	rate = chunk[CACHED_CHUNKS / 2];
	for (i = 0; i < n; i++) {
		t0 = mono();
		if (gv_verify(gv, t, len, now, &who, &why) != 0)
			die(tok_err_name(why));
		gv_release(who);
		lat[i] = mono() - t0;
	}
	qsort(lat, n, sizeof(double), cmp_double);
	printf("ES256 guard gv_verify, one token again (cache): %.0f/s, p50 "
	       "%.2f us, p99 %.2f us (target >= 500000/s: %s)\n",
	    rate, lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6,
	    rate >= 500000 ? "met" : "NOT met");
	printf("BENCH verify_cached figure=%.0f p50_us=%.2f p99_us=%.2f\n",
	    rate, lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
	free(lat);
	gv_free(gv);
}

int
main(int argc, char **argv)
{
	static const int order[][OP_COUNT] = {
	    {OP_RAW_VERIFY, OP_VERIFY, OP_RAW_VERIFY_COPY, OP_VERIFY_JWKS,
		OP_GUARD, OP_RAW_SIGN, OP_SIGN},
	    {OP_GUARD, OP_VERIFY_JWKS, OP_RAW_VERIFY_COPY, OP_VERIFY,
		OP_RAW_VERIFY, OP_SIGN, OP_RAW_SIGN},
	};
	struct alg_run runs[2];
	char dirs[2][64];
	size_t n = 20000;
	long long now = (long long)time(NULL);
	double es_ratio;
	int rounds = 5, cpu, i, round, k;
	cpu_set_t set;

	if (argc > 1 && (n = strtoul(argv[1], NULL, 10)) < 20)
		die("usage: token_bench [N >= 20 [ROUNDS]]");
	if (argc > 2 && (rounds = atoi(argv[2])) < 1)
		die("usage: token_bench [N >= 20 [ROUNDS]]");
	/* One core: stay on the one we started on. */
	cpu = sched_getcpu();
	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == -1)
		cpu = -1;
	memset(runs, 0, sizeof(runs));
	runs[0].alg = "ES256";
	runs[0].n = n;
	runs[1].alg = "RS256";
	runs[1].n = n / 20;
	for (i = 0; i < 2; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "/tmp/ea-bench-tok-XXXXXX");
		if (mkdtemp(dirs[i]) == NULL)
			die("mkdtemp");
		prepare(&runs[i], dirs[i], now, rounds);
	}
	/* Warm-up, unmeasured: one pass of each over a few tokens. */
	for (i = 0; i < 2; i++)
		for (k = 0; k < OP_COUNT; k++) {
			struct alg_run w = runs[i];

			pass(&w, k, 0, 0, w.n < 10 ? w.n : 10, now);
		}
	for (round = 0; round < rounds; round++)
		for (i = 0; i < 2; i++) {
			size_t lo, hi, b = i == 0 ? BLOCK : BLOCK / 10;

			for (lo = 0; lo < runs[i].n; lo += b) {
				hi = lo + b < runs[i].n ? lo + b : runs[i].n;
				for (k = 0; k < OP_COUNT; k++)
					pass(&runs[i],
					    order[(round + lo / b) % 2]
						 [(k + lo / b) % OP_COUNT],
					    round, lo, hi, now);
			}
		}

	printf("token_bench: %zu ES256 and %zu RS256 distinct tokens, %d "
	       "rounds, one thread%s",
	    runs[0].n, runs[1].n, rounds, cpu >= 0 ? ", pinned to CPU " : "");
	if (cpu >= 0)
		printf("%d", cpu);
	printf("\n%-5s %-32s %10s %7s %9s %9s\n", "alg", "operation", "ops/s",
	    "ratio", "p50 us", "p99 us");
	for (i = 0; i < 2; i++)
		report(&runs[i], rounds);
	es_ratio =
	    rate_of(&runs[0], OP_GUARD) / rate_of(&runs[0], OP_RAW_VERIFY);
	printf("ES256 guard (cold) / raw verify = %.3f (target >= 0.90: "
	       "%s); / raw verify with a copied context = %.3f\n",
	    es_ratio, es_ratio >= 0.9 ? "met" : "NOT met",
	    rate_of(&runs[0], OP_GUARD) /
		rate_of(&runs[0], OP_RAW_VERIFY_COPY));
	/* For bench/run.py: the figure, the baseline, p50 and p99 in us. */
	printf("BENCH verify_cold figure=%.0f baseline=%.0f p50_us=%.2f "
	       "p99_us=%.2f\n",
	    rate_of(&runs[0], OP_GUARD), rate_of(&runs[0], OP_RAW_VERIFY),
	    runs[0].lat[OP_GUARD][runs[0].n * (size_t)rounds / 2] * 1e6,
	    runs[0].lat[OP_GUARD][runs[0].n * (size_t)rounds * 99 / 100] * 1e6);
	cached(&runs[0], now);
	for (i = 0; i < 2; i++) {
		release(&runs[i]);
		cleanup(dirs[i]);
	}
	return 0;
}
