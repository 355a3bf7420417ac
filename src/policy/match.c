/*
 * Matching without a map: DN normalisation (RFC 4514) and permissions.
 *
 * Everything here is a pure function of its arguments: no state, no
 * locale (ASCII case folding by hand), safe from any thread.
 */
#include <string.h>

#include "policy/policy.h"
#include "util/str.h"

#define PERM_MAX  128
#define SCOPE_MAX 4096

/* Output into a fixed buffer; once it overflows, every write is dropped. */
struct out {
	char *p;
	size_t cap, len;
	int over;
};

static void
put(struct out *o, char c)
{
	if (o->len + 1 >= o->cap) {
		o->over = 1;
		return;
	}
	o->p[o->len++] = c;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static const char *
skip_spaces(const char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

/*
 * Attribute type: a keystring (ALPHA *(ALPHA / DIGIT / "-")) or a numeric
 * OID (number 1*("." number), no leading zeros). The "oid." prefix of old
 * RFC 2253 readers is not accepted. Writes it lowercased; returns the
 * position after it, or NULL.
 */
static const char *
parse_type(const char *s, struct out *o)
{
	const char *p = s;

	if (is_alpha(*p)) {
		while (is_alpha(*p) || is_digit(*p) || *p == '-')
			put(o, lower(*p++));
		return p;
	}
	if (!is_digit(*p))
		return NULL;
	for (;;) {
		if (!is_digit(*p) || (*p == '0' && is_digit(p[1])))
			return NULL;
		while (is_digit(*p))
			put(o, *p++);
		if (*p != '.')
			break;
		put(o, *p++);
	}
	/* A bare number is not an OID. */
	return memchr(s, '.', (size_t)(p - s)) != NULL ? p : NULL;
}

/*
 * Decodes one attribute value (up to an unescaped ',' '+' or the end) into
 * val (cap bytes), dropping unescaped leading and trailing spaces. Returns
 * the position after it, or NULL: an empty value, a BER "#..." value, an
 * unescaped '"' ';' '<' '>', a bad escape, a NUL byte, or a value too long.
 */
static const char *
parse_value(const char *s, char *val, size_t cap, size_t *len_r)
{
	const char *p = skip_spaces(s);
	size_t len = 0, keep = 0;
	int h, l;

	if (*p == '#')
		return NULL;
	while (*p != '\0' && *p != ',' && *p != '+') {
		char c = *p;

		if (c == '"' || c == ';' || c == '<' || c == '>')
			return NULL;
		if (c == '\\') {
			c = p[1];
			if (c != '\0' && strchr(",+\"\\<>;= #", c) != NULL) {
				p += 2;
			} else if ((h = hexval(c)) >= 0 &&
			    (l = hexval(p[2])) >= 0) {
				c = (char)(h << 4 | l);
				if (c == '\0')
					return NULL;
				p += 3;
			} else {
				return NULL;
			}
			if (len >= cap)
				return NULL;
			val[len++] = c;
			keep = len;
			continue;
		}
		if (len >= cap)
			return NULL;
		val[len++] = c;
		if (c != ' ')
			keep = len;
		p++;
	}
	if (keep == 0)
		return NULL;
	*len_r = keep;
	return p;
}

/* Writes a decoded value lowercased and escaped the one canonical way. */
static void
put_value(struct out *o, const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = v[i];

		if (strchr(",+\"\\<>;=", c) != NULL ||
		    (i == 0 && (c == ' ' || c == '#')) ||
		    (i == n - 1 && c == ' '))
			put(o, '\\');
		put(o, lower(c));
	}
}

int
pol_dn_normalize(const char *dn, char *dst, size_t cap)
{
	struct out o = {dst, cap, 0, 0};
	char val[1024]; /* the longest value matched: roles.conf's strings */
	const char *p = dn;
	size_t vlen;

	if (dst == NULL || cap == 0)
		return -1;
	if (dn == NULL)
		goto bad;
	for (;;) {
		p = skip_spaces(p);
		if ((p = parse_type(p, &o)) == NULL)
			goto bad;
		p = skip_spaces(p);
		if (*p++ != '=')
			goto bad;
		put(&o, '=');
		if ((p = parse_value(p, val, sizeof(val), &vlen)) == NULL ||
		    !str_utf8_valid(val, vlen))
			goto bad;
		put_value(&o, val, vlen);
		if (*p == '\0')
			break;
		put(&o, *p++); /* ',' between RDNs, '+' inside one */
	}
	if (o.over)
		goto bad;
	dst[o.len] = '\0';
	return 0;
bad:
	dst[0] = '\0';
	return -1;
}

/*
 * 1 if the n bytes at s are a permission: segments of [a-z0-9_.-]+ joined
 * by ':', 1 to 128 bytes. With wild, the last segment may be "*" when at
 * least one segment comes before it. "*" alone (everything) is refused on
 * purpose: one typo in roles.conf must not hand out every permission that
 * will ever exist; grant "emails:*", "admin:*" ... instead.
 */
static int
perm_valid(const char *s, size_t n, int wild)
{
	size_t i, seg = 0;

	if (n == 0 || n > PERM_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == ':') {
			if (seg == 0)
				return 0;
			seg = 0;
		} else if (c == '*') {
			return wild && i == n - 1 && i > 0 && s[i - 1] == ':';
		} else if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
		    c == '.' || c == '-') {
			seg++;
		} else {
			return 0;
		}
	}
	return seg > 0;
}

int
pol_permission_valid(const char *s, int wild)
{
	if (s == NULL)
		return 0;
	return perm_valid(s, strnlen(s, PERM_MAX + 1), wild);
}

/*
 * 1 if the granted permission (n bytes at g) covers req, which is valid
 * and not wild. An invalid grant covers nothing ("*" alone included).
 */
static int
covers(const char *g, size_t n, const char *req, size_t rn)
{
	if (!perm_valid(g, n, 1))
		return 0;
	if (g[n - 1] != '*')
		return n == rn && memcmp(g, req, n) == 0;
	/* "a:*": req must start with "a:" and go on after it. */
	return rn > n - 1 && memcmp(g, req, n - 1) == 0;
}

int
pol_permits(const char *const *granted, size_t n, const char *required)
{
	size_t i, rn;

	if (!pol_permission_valid(required, 0) || granted == NULL)
		return 0;
	rn = strlen(required);
	for (i = 0; i < n; i++)
		if (granted[i] != NULL &&
		    covers(granted[i], strnlen(granted[i], PERM_MAX + 1),
			required, rn))
			return 1;
	return 0;
}

int
pol_scope_permits(const char *scope, const char *required)
{
	const char *p, *sp;
	size_t rn, n;

	if (scope == NULL || !pol_permission_valid(required, 0) ||
	    strnlen(scope, SCOPE_MAX + 1) > SCOPE_MAX)
		return 0;
	rn = strlen(required);
	for (p = scope; *p != '\0'; p += n) {
		if (*p == ' ') {
			n = 1;
			continue;
		}
		sp = strchr(p, ' ');
		n = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (covers(p, n, required, rn))
			return 1;
	}
	return 0;
}
