/*
 * libFuzzer target: the request-body rules of POST /v1/login and the
 * other JSON routes. The bytes are a request body, parsed as
 * http_parse_json() parses one (src/http/request.c: empty and NUL-holding
 * bodies refused, then jansson with JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL, an object required); then the checks route_login() runs
 * on "username" and "password" (authn_username_ok(), authn_password_ok())
 * and the string helpers on every string member. http_check_fields()
 * itself needs an MHD connection for its answer and is not called.
 *
 * Invariants (a violation traps): jansson hands out only valid UTF-8; an
 * accepted user name is 1-256 bytes of UTF-8 without NUL or control
 * characters and has a canonical form; an accepted password has no NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "authn/authn.h"
#include "ratelimit/regulate.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_username(const char *s, size_t n)
{
	char canon[AUTHN_CANON_MAX];

	if (!authn_username_ok(s, n))
		return;
	if (n == 0 || n > AUTHN_USER_MAX || memchr(s, '\0', n) != NULL ||
	    !str_utf8_valid(s, n) || str_has_control(s, n))
		__builtin_trap();
	/* limits_login_check() lets the attempt through unthrottled when
	 * the canonical form does not fit: it must always fit. */
	if (rg_canonical_user(s, canon, sizeof(canon)) == -1)
		__builtin_trap();
}

static void
check_password(const char *s, size_t n)
{
	if (!authn_password_ok(s, n))
		return;
	if (n == 0 || n > AUTHN_PASSWORD_MAX || memchr(s, '\0', n) != NULL)
		__builtin_trap();
}

/* Walks every value, checking the strings (depth is bounded by jansson). */
static void
walk(json_t *v)
{
	const char *key;
	json_t *m;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach(v, key, m)
		{
			if (!str_utf8_valid(key, strlen(key)))
				__builtin_trap();
			walk(m);
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, m) walk(m);
		break;
	case JSON_STRING:
		if (!str_utf8_valid(
			json_string_value(v), json_string_length(v)))
			__builtin_trap();
		(void)str_has_control(
		    json_string_value(v), json_string_length(v));
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	json_error_t jerr;
	json_t *j, *user, *pass;

	/* http_parse_json(): these never reach jansson. */
	if (size == 0 || memchr(body, '\0', size) != NULL)
		return 0;
	j = json_loadb(
	    body, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		return 0;
	if (!json_is_object(j))
		goto out;
	walk(j);
	user = json_object_get(j, "username");
	pass = json_object_get(j, "password");
	if (json_is_string(user))
		check_username(
		    json_string_value(user), json_string_length(user));
	if (json_is_string(pass))
		check_password(
		    json_string_value(pass), json_string_length(pass));
out:
	json_decref(j);
	return 0;
}
