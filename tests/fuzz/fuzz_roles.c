/*
 * libFuzzer target: the role map (roles.conf) and DN normalisation.
 * pol_load_string() parses the input as a roles file; a map it accepts
 * resolves a fixed set of groups. pol_dn_normalize() takes the same input
 * as a DN (it is fed group DNs from the directory and from roles.conf).
 *
 * Invariants (a violation traps): a normalised DN is valid UTF-8, fits a
 * buffer of exactly its size but not one byte less, and normalises to
 * itself; a resolution's roles and permissions are arrays of strings,
 * as many roles as pol_resolve() says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy.h"
#include "util/str.h"

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

#define DN_CAP 2048

static void
check_map(const struct pol_map *m)
{
	static const char *const groups[] = {
	    "mail-admins",
	    "Analysts",
	    "cn=auditors,ou=groups,dc=example,dc=com",
	    "CN=Auditors, OU=Groups, DC=Example, DC=Com",
	    "cn=a\\,b+uid=x,dc=example",
	};
	json_t *roles = NULL, *perms = NULL, *ex;
	int n;

	n = pol_resolve(
	    m, groups, sizeof(groups) / sizeof(groups[0]), &roles, &perms);
	if (n >= 0 &&
	    (!json_is_array(roles) || !json_is_array(perms) ||
		json_array_size(roles) != (size_t)n))
		__builtin_trap();
	json_decref(roles);
	json_decref(perms);
	ex = pol_explain(m, groups, sizeof(groups) / sizeof(groups[0]));
	json_decref(ex);
}

static void
check_dn(const char *dn)
{
	char *out, *again, *exact;
	size_t n;

	if ((out = malloc(DN_CAP)) == NULL)
		return;
	if (pol_dn_normalize(dn, out, DN_CAP) == -1) {
		if (out[0] != '\0')
			__builtin_trap();
		free(out);
		return;
	}
	n = strlen(out);
	if (!str_utf8_valid(out, n))
		__builtin_trap();
	/* Exactly sized buffers: ASan sees a write past them. */
	if ((again = malloc(n + 1)) == NULL ||
	    (exact = malloc(n + 1)) == NULL) {
		free(again);
		free(out);
		return;
	}
	if (pol_dn_normalize(dn, exact, n + 1) != 0 || strcmp(exact, out) != 0)
		__builtin_trap();
	if (pol_dn_normalize(dn, exact, n) != -1)
		__builtin_trap();
	if (pol_dn_normalize(out, again, n + 1) != 0 || strcmp(again, out) != 0)
		__builtin_trap();
	free(exact);
	free(again);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_map *m = NULL;
	char err[512], *text;

	/* pol_load() refuses a file with a NUL byte before parsing. */
	if (memchr(data, '\0', size) != NULL ||
	    (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (pol_load_string(text, "fuzz-roles.conf", &m, err, sizeof(err)) ==
	    -1) {
		if (m != NULL || err[0] == '\0')
			__builtin_trap();
	} else {
		if (m == NULL)
			__builtin_trap();
		check_map(m);
	}
	pol_free(m);
	check_dn(text);
	free(text);
	return 0;
}
