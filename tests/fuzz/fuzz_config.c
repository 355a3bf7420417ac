/*
 * libFuzzer target: cfg_load_string(), the daemon's reading of
 * emailauthd.conf: the @include and number pre-scan, libconfig's parser,
 * the key table walk, defaults and every cross-check. File paths in the
 * text are checked against this machine's filesystem, as at start-up;
 * nothing is written.
 *
 * Invariants (a violation traps): success gives a struct, failure none
 * and a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libconfig 1.5 (Debian 12) leaks the scanner's copy of a string token
 * when a syntax error follows it: "a = [ true \"x\" ];" loses 64 bytes
 * (strbuf_append), "is\"\"x" 1 byte (libconfig_yylex). Bugs of the
 * library, not ours (docs/fuzzing.md). Only allocations made by its
 * scanner are excused: a setting tree we failed to config_destroy() is
 * allocated by the parser and still fails the run.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = NULL;
	char err[512], *text;

	/* cfg_load() refuses a file with a NUL byte before parsing. */
	if (memchr(data, '\0', size) != NULL ||
	    (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (cfg_load_string(text, "fuzz.conf", &c, err, sizeof(err)) == -1) {
		if (c != NULL || err[0] == '\0')
			__builtin_trap();
	} else {
		if (c == NULL)
			__builtin_trap();
		(void)cfg_has_backend(c, "ldap");
	}
	cfg_free(c);
	free(text);
	return 0;
}
