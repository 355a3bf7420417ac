/*
 * Token buckets in a table of fixed size.
 *
 * All memory is allocated by rl_new(); rl_take() and rl_forget() never
 * allocate. The table is split into stripes, each with its own mutex, its
 * own share of the capacity, its own hash chains and its own LRU list, so
 * that threads working on different keys rarely meet. A key's stripe and
 * chain come from SipHash-2-4 under a random key drawn at rl_new(): a
 * client cannot pick keys that land in one stripe or one chain.
 *
 * Stripes: one per 1024 keys of capacity, a power of two, at most 64. A
 * table of fewer than 2048 keys has a single stripe and its LRU order is
 * exact; in a larger one a new key evicts the least recently used key of
 * its own stripe, which may happen a little before the whole table holds
 * max_keys keys. The sum of the stripes' capacities is exactly max_keys.
 *
 * Keys: up to RL_KEY_INLINE (64) bytes are stored as they are (client
 * addresses take at most 45). A longer key is stored as a 128-bit digest
 * made of two SipHash-2-4 values under two more random keys; two long keys
 * share a bucket only if their digests collide, which a client cannot
 * arrange without the keys and which otherwise happens with probability
 * about n^2 / 2^129. Storing every key in full (up to 256 bytes and more)
 * would cost 28 MB for 100000 keys instead of 12 MB.
 *
 * Chains: buckets are at least twice the capacity, so chains hold about
 * one node. As a bound that holds even if the hash key leaked, a chain
 * never grows past RL_CHAIN_MAX nodes: a new key arriving at a full chain
 * evicts that chain's oldest node instead of the stripe's LRU.
 *
 * Memory: the nodes and chain heads come zeroed from calloc() and are
 * touched only when a key first uses them (a chain head holds its first
 * node's index plus one, 0 being the empty chain; nodes past the stripe's
 * high-water mark have never been used), so an idle table costs address
 * space, not resident memory.
 *
 * Time: a bucket's last time only moves forward, so a clock that steps
 * back neither crashes nor refills; the refill resumes once the clock
 * passes the last time again.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/ratelimit.h"
#include "util/sec.h"

#define RL_KEY_INLINE      64
#define RL_DIGEST_LEN      16
#define RL_LEN_DIGEST      0xff /* node's len when key holds a digest */
#define RL_STRIPES_MAX     64
#define RL_STRIPE_MIN_KEYS 1024
#define RL_STRIPE_MAX_KEYS (UINT32_C(1) << 30)
#define RL_CHAIN_MAX       16
#define RL_NIL             UINT32_MAX
/* Slack for rounding, so that waiting exactly retry_after is enough. */
#define RL_EPSILON 1e-9

struct rl_node {
	double tokens;
	double last;
	uint64_t hash;
	uint32_t next; /* in the chain, or in the free list */
	uint32_t lru_prev, lru_next;
	uint8_t len; /* key bytes, or RL_LEN_DIGEST */
	unsigned char key[RL_KEY_INLINE];
};

struct rl_stripe {
	_Alignas(64) pthread_mutex_t mu;
	struct rl_node *nodes; /* cap nodes, in rl_table's pool */
	uint32_t *buckets;     /* mask + 1 chain heads (index + 1; 0: empty), in
				  rl_table's array */
	uint32_t cap, used, mask;
	uint32_t free_head;
	uint32_t fresh; /* nodes fresh to cap - 1 have never been used */
	uint32_t lru_head, lru_tail; /* most and least recently used */
};

struct rl_table {
	double rate, burst;
	uint64_t hkey[2];          /* SipHash key for chains and stripes */
	uint64_t dkey[2][2];       /* SipHash keys for long keys' digests */
	unsigned int stripe_shift; /* 64 - log2(nstripes), or 64 */
	size_t nstripes;
	struct rl_stripe *stripes;
	struct rl_node *pool;
	uint32_t *buckets;
};

/* A key as the table stores it: its bytes, or its digest. */
struct rl_key {
	uint64_t hash;
	const unsigned char *p;
	uint8_t len;
	unsigned char digest[RL_DIGEST_LEN];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                   \
	do {                       \
		v0 += v1;          \
		v1 = ROTL(v1, 13); \
		v1 ^= v0;          \
		v0 = ROTL(v0, 32); \
		v2 += v3;          \
		v3 = ROTL(v3, 16); \
		v3 ^= v2;          \
		v0 += v3;          \
		v3 = ROTL(v3, 21); \
		v3 ^= v0;          \
		v2 += v1;          \
		v1 = ROTL(v1, 17); \
		v1 ^= v2;          \
		v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t
load64_le(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* SipHash-2-4 of len bytes at p under the 128-bit key k. */
static uint64_t
siphash24(const uint64_t k[2], const unsigned char *p, size_t len)
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, left = len & 7;
	const unsigned char *end = p + (len - left);

	for (; p != end; p += 8) {
		m = load64_le(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static void
store64_le(unsigned char *p, uint64_t v)
{
	size_t i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Fills k with the stored form of key and its hash. */
static void
key_prepare(
    const struct rl_table *t, const char *key, size_t keylen, struct rl_key *k)
{
	const unsigned char *p = (const unsigned char *)key;

	if (p == NULL)
		p = (const unsigned char *)""; /* keylen is 0 */
	if (keylen <= RL_KEY_INLINE) {
		k->p = p;
		k->len = (uint8_t)keylen;
		k->hash = siphash24(t->hkey, p, keylen);
	} else {
		store64_le(k->digest, siphash24(t->dkey[0], p, keylen));
		store64_le(k->digest + 8, siphash24(t->dkey[1], p, keylen));
		k->p = k->digest;
		k->len = RL_LEN_DIGEST;
		k->hash = siphash24(t->hkey, k->digest, RL_DIGEST_LEN);
	}
}

static size_t
key_bytes(uint8_t len)
{
	return len == RL_LEN_DIGEST ? RL_DIGEST_LEN : len;
}

static struct rl_stripe *
stripe_of(const struct rl_table *t, uint64_t hash)
{
	/* The top bits pick the stripe, the low bits the chain. */
	if (t->stripe_shift >= 64)
		return &t->stripes[0];
	return &t->stripes[hash >> t->stripe_shift];
}

static void
lru_unlink(struct rl_stripe *s, uint32_t i)
{
	struct rl_node *n = &s->nodes[i];

	if (n->lru_prev != RL_NIL)
		s->nodes[n->lru_prev].lru_next = n->lru_next;
	else
		s->lru_head = n->lru_next;
	if (n->lru_next != RL_NIL)
		s->nodes[n->lru_next].lru_prev = n->lru_prev;
	else
		s->lru_tail = n->lru_prev;
	n->lru_prev = n->lru_next = RL_NIL;
}

static void
lru_push_front(struct rl_stripe *s, uint32_t i)
{
	struct rl_node *n = &s->nodes[i];

	n->lru_prev = RL_NIL;
	n->lru_next = s->lru_head;
	if (s->lru_head != RL_NIL)
		s->nodes[s->lru_head].lru_prev = i;
	else
		s->lru_tail = i;
	s->lru_head = i;
}

/*
 * Looks k up in s. Returns the node's index, or RL_NIL with the chain's
 * length in *depth_r.
 */
static uint32_t
lookup(const struct rl_stripe *s, const struct rl_key *k, uint32_t *depth_r)
{
	uint32_t i = s->buckets[k->hash & s->mask] - 1, depth = 0;
	const struct rl_node *n;

	while (i != RL_NIL) {
		n = &s->nodes[i];
		if (n->hash == k->hash && n->len == k->len &&
		    memcmp(n->key, k->p, key_bytes(k->len)) == 0)
			break;
		i = n->next;
		depth++;
	}
	*depth_r = depth;
	return i;
}

/* Removes node i from its chain and the LRU and frees it. */
static void
node_remove(struct rl_stripe *s, uint32_t i)
{
	uint32_t *head = &s->buckets[s->nodes[i].hash & s->mask], j;

	if (*head - 1 == i)
		*head = s->nodes[i].next + 1;
	else {
		for (j = *head - 1; s->nodes[j].next != i; j = s->nodes[j].next)
			;
		s->nodes[j].next = s->nodes[i].next;
	}
	lru_unlink(s, i);
	s->nodes[i].next = s->free_head;
	s->free_head = i;
	s->used--;
}

/* The last node of k's chain, the first inserted of those there. */
static uint32_t
chain_oldest(const struct rl_stripe *s, const struct rl_key *k)
{
	uint32_t i = s->buckets[k->hash & s->mask] - 1;

	while (s->nodes[i].next != RL_NIL)
		i = s->nodes[i].next;
	return i;
}

/* Inserts k with a full bucket, evicting a node when needed. */
static uint32_t
node_insert(const struct rl_table *t, struct rl_stripe *s,
    const struct rl_key *k, uint32_t depth, double now)
{
	uint32_t i, *head = &s->buckets[k->hash & s->mask];
	struct rl_node *n;

	if (depth >= RL_CHAIN_MAX)
		node_remove(s, chain_oldest(s, k));
	else if (s->free_head == RL_NIL && s->fresh == s->cap)
		node_remove(s, s->lru_tail);
	if (s->free_head != RL_NIL) {
		i = s->free_head;
		s->free_head = s->nodes[i].next;
	} else
		i = s->fresh++;
	n = &s->nodes[i];
	n->tokens = t->burst;
	n->last = now;
	n->hash = k->hash;
	n->len = k->len;
	memcpy(n->key, k->p, key_bytes(k->len));
	n->next = *head - 1;
	*head = i + 1;
	lru_push_front(s, i);
	s->used++;
	return i;
}

static size_t
pow2_floor(size_t n)
{
	size_t p = 1;

	while (p <= n / 2)
		p *= 2;
	return p;
}

/*
 * Sets up stripe s over cap zeroed nodes at pool and nb zeroed chain heads
 * at buckets, without touching either (see Memory above).
 */
static int
stripe_init(struct rl_stripe *s, struct rl_node *pool, uint32_t cap,
    uint32_t *buckets, uint32_t nb)
{
	if (pthread_mutex_init(&s->mu, NULL) != 0)
		return -1;
	s->nodes = pool;
	s->buckets = buckets;
	s->cap = cap;
	s->used = 0;
	s->mask = nb - 1;
	s->fresh = 0;
	s->free_head = RL_NIL;
	s->lru_head = s->lru_tail = RL_NIL;
	return 0;
}

struct rl_table *
rl_new(size_t max_keys, double rate, double burst)
{
	struct rl_table *t = NULL, *ret = NULL;
	size_t i, n, cap, nb, per, extra, off_n = 0, off_b = 0, inited = 0;
	unsigned int shift = 64;
	uint64_t seed[6];

	if (max_keys == 0 || !isfinite(rate) || !(rate > 0) ||
	    !isfinite(burst) || !(burst >= 1))
		goto out;
	n = pow2_floor(max_keys / RL_STRIPE_MIN_KEYS);
	if (n > RL_STRIPES_MAX)
		n = RL_STRIPES_MAX;
	per = max_keys / n;
	extra = max_keys % n;
	if (per + (extra > 0) > RL_STRIPE_MAX_KEYS)
		goto out;
	/* Chain heads: a power of two at least twice a stripe's capacity. */
	nb = 2;
	while (nb < 2 * (per + (extra > 0)))
		nb *= 2;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	t->rate = rate;
	t->burst = burst;
	t->nstripes = n;
	while (n > 1 && (size_t)1 << (64 - shift) < n)
		shift--;
	t->stripe_shift = shift;
	if (sec_random(seed, sizeof(seed)) != 0)
		goto out;
	t->hkey[0] = seed[0];
	t->hkey[1] = seed[1];
	t->dkey[0][0] = seed[2];
	t->dkey[0][1] = seed[3];
	t->dkey[1][0] = seed[4];
	t->dkey[1][1] = seed[5];
	if (n > SIZE_MAX / nb ||
	    (t->stripes = aligned_alloc(_Alignof(struct rl_stripe),
		 n * sizeof(*t->stripes))) == NULL ||
	    (t->pool = calloc(max_keys, sizeof(*t->pool))) == NULL ||
	    (t->buckets = calloc(n * nb, sizeof(*t->buckets))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		cap = per + (i < extra);
		if (stripe_init(&t->stripes[i], t->pool + off_n, (uint32_t)cap,
			t->buckets + off_b, (uint32_t)nb) != 0)
			goto out;
		inited++;
		off_n += cap;
		off_b += nb;
	}
	ret = t;
	t = NULL;
out:
	sec_wipe(seed, sizeof(seed));
	if (t != NULL) {
		for (i = 0; i < inited; i++)
			pthread_mutex_destroy(&t->stripes[i].mu);
		t->nstripes = 0;
		rl_free(t);
	}
	return ret;
}

void
rl_free(struct rl_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nstripes; i++)
		pthread_mutex_destroy(&t->stripes[i].mu);
	free(t->stripes);
	free(t->pool);
	free(t->buckets);
	sec_wipe(t, sizeof(*t));
	free(t);
}

/*
 * An unusable argument (no table, no key bytes, a cost below 0 or not
 * finite, a time not finite) or a mutex that cannot be taken is limited,
 * with *info_r left alone.
 */
int
rl_take(struct rl_table *t, const char *key, size_t keylen, double cost,
    double now, struct rl_info *info_r)
{
	struct rl_key k;
	struct rl_stripe *s;
	struct rl_node *n;
	struct rl_info info;
	uint32_t i, depth;
	double tokens, elapsed;
	int allowed = 0;

	if (t == NULL || (key == NULL && keylen > 0) || !isfinite(cost) ||
	    !(cost >= 0) || !isfinite(now))
		goto out;
	key_prepare(t, key, keylen, &k);
	s = stripe_of(t, k.hash);
	if (pthread_mutex_lock(&s->mu) != 0)
		goto out;
	if ((i = lookup(s, &k, &depth)) == RL_NIL) {
		i = node_insert(t, s, &k, depth, now);
	} else if (i != s->lru_head) {
		lru_unlink(s, i);
		lru_push_front(s, i);
	}
	n = &s->nodes[i];
	tokens = n->tokens;
	elapsed = now - n->last;
	if (elapsed > 0) {
		/* Overflow to infinity is harmless: the bucket is full. */
		tokens += elapsed * t->rate;
		if (!(tokens < t->burst))
			tokens = t->burst;
		n->last = now;
	}
	info.limit = t->burst;
	if (tokens + RL_EPSILON >= cost) {
		tokens -= cost;
		if (tokens < 0)
			tokens = 0;
		info.retry_after = 0;
		allowed = 1;
	} else {
		info.retry_after = (cost - tokens) / t->rate;
	}
	n->tokens = tokens;
	info.remaining = tokens;
	info.reset = (t->burst - tokens) / t->rate;
	pthread_mutex_unlock(&s->mu);
	if (info_r != NULL)
		*info_r = info;
out:
	return allowed;
}

int
rl_with(struct rl_table *t, const char *key, size_t keylen, int create,
    double init0, double init1, int (*fn)(double *state, void *arg), void *arg)
{
	struct rl_key k;
	struct rl_stripe *s;
	uint32_t i, depth;
	double st[2];
	int ret;

	if (t == NULL || (key == NULL && keylen > 0))
		return fn(NULL, arg);
	key_prepare(t, key, keylen, &k);
	s = stripe_of(t, k.hash);
	if (pthread_mutex_lock(&s->mu) != 0)
		return fn(NULL, arg);
	if ((i = lookup(s, &k, &depth)) == RL_NIL) {
		if (!create) {
			pthread_mutex_unlock(&s->mu);
			return fn(NULL, arg);
		}
		i = node_insert(t, s, &k, depth, 0);
		s->nodes[i].tokens = init0;
		s->nodes[i].last = init1;
	} else if (i != s->lru_head) {
		lru_unlink(s, i);
		lru_push_front(s, i);
	}
	st[0] = s->nodes[i].tokens;
	st[1] = s->nodes[i].last;
	ret = fn(st, arg);
	s->nodes[i].tokens = st[0];
	s->nodes[i].last = st[1];
	pthread_mutex_unlock(&s->mu);
	return ret;
}

void
rl_forget(struct rl_table *t, const char *key, size_t keylen)
{
	struct rl_key k;
	struct rl_stripe *s;
	uint32_t i, depth;

	if (t == NULL || (key == NULL && keylen > 0))
		return;
	key_prepare(t, key, keylen, &k);
	s = stripe_of(t, k.hash);
	if (pthread_mutex_lock(&s->mu) != 0)
		return;
	if ((i = lookup(s, &k, &depth)) != RL_NIL)
		node_remove(s, i);
	pthread_mutex_unlock(&s->mu);
}

/* Each stripe is counted under its lock; the sum is not one snapshot. */
size_t
rl_size(struct rl_table *t)
{
	size_t i, total = 0;

	if (t == NULL)
		return 0;
	for (i = 0; i < t->nstripes; i++) {
		if (pthread_mutex_lock(&t->stripes[i].mu) != 0)
			continue;
		total += t->stripes[i].used;
		pthread_mutex_unlock(&t->stripes[i].mu);
	}
	return total;
}
