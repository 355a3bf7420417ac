/*
 * The worker pool: a fixed ring of jobs under one mutex.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "authn/pool.h"

struct job {
	void (*fn)(void *);
	void *arg;
};

struct authn_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *ring;
	unsigned int cap, head, len;
	unsigned int busy;
	int stopping;
	pthread_t *threads;
	unsigned int n_threads;
};

static void *
worker(void *arg)
{
	struct authn_pool *p = arg;
	struct job j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->len == 0 && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->len == 0)
			break;
		j = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		p->busy++;
		pthread_mutex_unlock(&p->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&p->lock);
		p->busy--;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct authn_pool *
authn_pool_new(unsigned int threads, unsigned int queue_max)
{
	struct authn_pool *p;
	sigset_t all, old;
	unsigned int i;

	if (threads == 0 || queue_max == 0 ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->cap = queue_max;
	if ((p->ring = calloc(queue_max, sizeof(*p->ring))) == NULL ||
	    (p->threads = calloc(threads, sizeof(*p->threads))) == NULL) {
		free(p->ring);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* Workers take no signals; the main thread handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->n_threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->n_threads != threads) {
		authn_pool_free(p);
		return NULL;
	}
	return p;
}

int
authn_pool_submit(struct authn_pool *p, void (*fn)(void *), void *arg)
{
	int ret = -1;

	pthread_mutex_lock(&p->lock);
	if (!p->stopping && p->len < p->cap) {
		p->ring[(p->head + p->len) % p->cap] = (struct job){fn, arg};
		p->len++;
		pthread_cond_signal(&p->cond);
		ret = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

unsigned int
authn_pool_queued(struct authn_pool *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->len;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned int
authn_pool_busy(struct authn_pool *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->busy;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
authn_pool_free(struct authn_pool *p)
{
	unsigned int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p->ring);
	free(p);
}
