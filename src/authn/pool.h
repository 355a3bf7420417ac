/*
 * A bounded pool of worker threads for blocking work (directory, PAM,
 * yescrypt, session writes), so none of it runs on an HTTP thread.
 */
#ifndef EA_AUTHN_POOL_H
#define EA_AUTHN_POOL_H

struct authn_pool;

/*
 * Starts threads workers with a queue of at most queue_max waiting jobs.
 * Returns NULL when out of memory or threads cannot start.
 */
struct authn_pool *authn_pool_new(unsigned int threads, unsigned int queue_max);

/*
 * Queues fn(arg). Returns 0, or -1 when the queue is full or the pool is
 * stopping (the caller answers 503 and still owns arg). Thread-safe.
 */
int authn_pool_submit(struct authn_pool *p, void (*fn)(void *), void *arg);

/* Jobs waiting, and jobs running (for metrics and readiness). */
unsigned int authn_pool_queued(struct authn_pool *p);
unsigned int authn_pool_busy(struct authn_pool *p);

/*
 * Refuses new jobs, runs every queued one to its end, joins the threads
 * and frees the pool. NULL-safe.
 */
void authn_pool_free(struct authn_pool *p);

#endif
