/*
 * Files written so that a crash leaves either the old or the new content.
 */
#ifndef EA_UTIL_FILE_H
#define EA_UTIL_FILE_H

#include <sys/types.h>
#include <stddef.h>

/*
 * Replaces path with len bytes of data: a temporary file in the same
 * directory (created with mode, O_EXCL), fsync, rename over path, fsync of
 * the directory. Returns 0, or -1 with a message in err (path untouched).
 */
int file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, char *err, size_t errlen);

/*
 * Reads at most max bytes of path into a new NUL-terminated buffer (the
 * caller frees); *len_r gets the length. Returns NULL with a message in
 * err; errno is ENOENT when the file does not exist.
 */
char *file_read(
    const char *path, size_t max, size_t *len_r, char *err, size_t errlen);

#endif
