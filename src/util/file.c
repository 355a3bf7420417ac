/*
 * Atomic file replacement and bounded reads.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"
#include "util/sec.h"

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char tmp[4096], dir[4096], rnd[8];
	const char *p = data;
	unsigned char r[4];
	size_t off = 0;
	ssize_t n;
	int fd = -1, dfd = -1, ret = -1, w;

	if (sec_random(r, sizeof(r)) == -1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	snprintf(rnd, sizeof(rnd), "%02x%02x%02x", r[0], r[1], r[2]);
	w = snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, rnd);
	if (w < 0 || (size_t)w >= sizeof(tmp) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd == -1) {
		snprintf(
		    err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) == -1)
		goto ioerr;
	/* Replacing a file keeps its owner (emailauthctl run as root on a
	 * file the daemon's user owns must not take it away from it). */
	{
		struct stat old;

		if (stat(path, &old) == 0 &&
		    fchown(fd, old.st_uid, old.st_gid) == -1 && errno != EPERM)
			goto ioerr;
	}
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto ioerr;
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto ioerr;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto ioerr;
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
ioerr:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return ret;
}

char *
file_read(const char *path, size_t max, size_t *len_r, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		saved = errno;
		snprintf(
		    err, errlen, "cannot open %s: %s", path, strerror(errno));
		errno = saved;
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (;;) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "%s is larger than %zu bytes",
			    path, max);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*len_r = len;
	return buf;
fail:
	close(fd);
	free(buf);
	errno = EINVAL;
	return NULL;
}
