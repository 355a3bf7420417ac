/*
 * The monotonic clock in seconds, for timeouts, back-offs and rate
 * limits (never for anything shown or compared with wall-clock time).
 */
#ifndef EA_UTIL_CLOCK_H
#define EA_UTIL_CLOCK_H

#include <time.h>

static inline double
clock_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif
