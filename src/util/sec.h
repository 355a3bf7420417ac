/*
 * Secrets: wiping, constant-time comparison, and secret files.
 */
#ifndef EA_UTIL_SEC_H
#define EA_UTIL_SEC_H

#include <stddef.h>

/* A secret held in memory: wiped and freed by sec_buf_free(). */
struct sec_buf {
	unsigned char *p;
	size_t len;
};

/* Wipes n bytes at p; the compiler cannot elide it. NULL-safe. */
void sec_wipe(void *p, size_t n);

/* 1 if a and b hold the same n bytes, else 0; time independent of content. */
int sec_equal(const void *a, const void *b, size_t n);

/*
 * Checks that path is a regular file that neither group nor others may read
 * or write. Returns 0 when safe, -1 otherwise with a message in err.
 */
int sec_file_mode_ok(const char *path, char *err, size_t errlen);

/* The same check on what stat() or fstat() returned for path. */
struct stat;
int sec_stat_mode_ok(
    const struct stat *st, const char *path, char *err, size_t errlen);

/*
 * Reads a secret file (mode-checked as above, at most max bytes, one
 * trailing newline dropped) into a new sec_buf the caller frees with
 * sec_buf_free(). Returns NULL with a message in err on failure.
 */
struct sec_buf *sec_read_file(
    const char *path, size_t max, char *err, size_t errlen);

/* Wipes and frees the buffer, then sets *bp to NULL. NULL-safe. */
void sec_buf_free(struct sec_buf **bp);

/* Fills buf with n bytes from the kernel CSPRNG. Returns 0 or -1. */
int sec_random(void *buf, size_t n);

#endif
