/*
 * Secrets: wiping, constant-time comparison, and secret files.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/sec.h"

void
sec_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

int
sec_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int
sec_stat_mode_ok(
    const struct stat *st, const char *path, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen,
		    "%s is readable or writable by group or others (mode %04o);"
		    " run chmod 600 on it",
		    path, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 0;
}

int
sec_file_mode_ok(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(
		    err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	return sec_stat_mode_ok(&st, path, err, errlen);
}

struct sec_buf *
sec_read_file(const char *path, size_t max, char *err, size_t errlen)
{
	struct sec_buf *b = NULL, *ret = NULL;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		snprintf(
		    err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(
		    err, errlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (sec_stat_mode_ok(&st, path, err, errlen) == -1)
		goto out;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->p = malloc(max + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		n = read(fd, b->p + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "%s is longer than %zu bytes",
			    path, max);
			goto out;
		}
	}
	if (len > 0 && b->p[len - 1] == '\n')
		len--;
	if (len > 0 && b->p[len - 1] == '\r')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "%s is empty", path);
		goto out;
	}
	b->len = len;
	ret = b;
	b = NULL;
out:
	if (b != NULL) {
		if (b->p != NULL)
			sec_wipe(b->p, max + 1);
		free(b->p);
		free(b);
	}
	close(fd);
	return ret;
}

void
sec_buf_free(struct sec_buf **bp)
{
	struct sec_buf *b;

	if (bp == NULL || (b = *bp) == NULL)
		return;
	if (b->p != NULL)
		sec_wipe(b->p, b->len);
	free(b->p);
	free(b);
	*bp = NULL;
}

int
sec_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	ssize_t r;

	while (n > 0) {
		r = getrandom(p, n, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}
