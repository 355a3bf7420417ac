/*
 * libFuzzer target: trail_verify(), the reading of an audit trail by
 * `emailauthctl audit verify` (a file an intruder may have edited): the
 * chain-line split, the hash, the JSON check and the seq/prev run.
 *
 * Invariants (a violation traps): the result is 0 or -1, and no more
 * lines are counted good than the input has newlines.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	unsigned long long lines = 0, nl = 0;
	char path[64];
	const char *paths[1] = {path};
	int fd, rc;
	size_t i;

	if (null == NULL && (null = fopen("/dev/null", "w")) == NULL)
		abort();
	if ((fd = memfd_create("audit", 0)) == -1)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = trail_verify(paths, 1, null, &lines);
	for (i = 0; i < size; i++)
		nl += data[i] == '\n';
	if ((rc != 0 && rc != -1) || lines > nl)
		__builtin_trap();
	close(fd);
	return 0;
}
