/*
 * Sign-in regulation: failures counted per (user, address) pair, per user
 * and per address, each with its own threshold; past it a progressive
 * delay (answered with 429 and Retry-After, never by sleeping) that grows
 * with every further attempt. The pair threshold is tight and the user
 * one looser, so one attacker address is stopped by its pair before the
 * real user's account is slowed down; an address guessing across many
 * names is stopped by the address count. A success resets the pair.
 * Memory is bounded by max_keys per table.
 */
#ifndef EA_RATELIMIT_REGULATE_H
#define EA_RATELIMIT_REGULATE_H

#include <stddef.h>

struct rg_config {
	unsigned int pair;    /* failures before the delay: (user, address) */
	unsigned int user;    /* ... per user, from any address */
	unsigned int address; /* ... per client address, any user */
	double window;        /* seconds without a failure that forget them */
	double delay;         /* the first delay, seconds; doubles each time */
	double delay_max;     /* cap, seconds */
	size_t max_keys;      /* per table */
};

/* Which count holds an attempt back. */
enum rg_key {
	RG_PAIR,
	RG_USER,
	RG_ADDRESS,
	RG_NKEYS,
};

struct rg;

/* NULL when out of memory. */
struct rg *rg_new(const struct rg_config *c);

/* NULL-safe. */
void rg_free(struct rg *g);

/*
 * May user (canonical form) try to sign in from address now? Returns 0
 * when yes -- and then the attempt is already counted as a failure in all
 * three counts, so concurrent guesses cannot all slip through before the
 * first result comes back; rg_settle() corrects it. Else returns the
 * seconds to wait (> 0), with the count that holds it back in *why_r; a
 * held-back attempt counts against that count, so hammering makes the
 * wait grow. Thread-safe, never blocks on I/O.
 */
double rg_check(struct rg *g, const char *user, const char *address, double now,
    enum rg_key *why_r);

enum rg_outcome {
	RG_FAILED,    /* wrong password, unknown user, locked: stays counted */
	RG_SUCCEEDED, /* the pair starts afresh; the others lose the attempt */
	RG_NEUTRAL,   /* no answer (backend down): the attempt is uncounted */
};

/* Settles an attempt rg_check() admitted. */
void rg_settle(struct rg *g, const char *user, const char *address,
    enum rg_outcome outcome);

/* Keys held in each table (metrics, tests). */
size_t rg_size(struct rg *g, enum rg_key k);

/* "pair", "user", "address". */
const char *rg_key_name(enum rg_key k);

/*
 * The canonical form of a user name for counting, close to how
 * directories compare names (caseIgnoreMatch): fullwidth forms folded to
 * ASCII, Unicode spaces (no-break, ideographic, zero-width, ...) treated
 * as spaces, leading and trailing spaces dropped, inner runs made one,
 * ASCII and Latin-1 letters lowercased. Writes into dst (cap bytes).
 * Returns 0, or -1 when it does not fit or is not UTF-8.
 */
int rg_canonical_user(const char *user, char *dst, size_t cap);

#endif
