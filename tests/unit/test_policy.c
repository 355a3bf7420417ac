/*
 * Unit tests for src/policy: loading roles.conf, group -> role resolution,
 * explain, permissions and scopes, DN normalisation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The longest role name. */
#define NAME64 \
	"A234567890123456789012345678901234567890123456789012345678901-_z"

/* The sample from SPEC.md, byte for byte. */
static const char sample[] =
    "roles = {\n"
    "  admin   = { groups = [ \"mail-admins\" ];\n"
    "              permissions = [ \"emails:*\", \"admin:*\" ]; };\n"
    "  analyst = { groups = [ \"analysts\", "
    "\"cn=auditors,ou=groups,dc=example,dc=com\" ];\n"
    "              permissions = [ \"emails:read\", \"emails:label\" ]; };\n"
    "};\n";

/* The sample plus a role that shares a group and a permission. */
static const char sample2[] =
    "roles = {\n"
    "  admin   = { groups = [ \"mail-admins\" ];\n"
    "              permissions = [ \"emails:*\", \"admin:*\" ]; };\n"
    "  analyst = { groups = [ \"analysts\", "
    "\"cn=auditors,ou=groups,dc=example,dc=com\" ];\n"
    "              permissions = [ \"emails:read\", \"emails:label\" ]; };\n"
    "  reader  = { groups = ( \"Analysts\", \"readers\" );\n"
    "              permissions = ( \"emails:read\" ); };\n"
    "  nobody  = { groups = [];\n"
    "              permissions = [ \"emails:none\" ]; };\n"
    "};\n";

static struct pol_map *
load_ok(const char *text)
{
	struct pol_map *m = NULL;
	char err[512] = "";

	if (pol_load_string(text, "roles.conf", &m, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	assert_non_null(m);
	return m;
}

/* Compares a JSON value with the expected compact JSON text. */
static void
assert_json(const json_t *got, const char *want, const char *what)
{
	char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	if (strcmp(s, want) != 0) {
		char msg[1024];

		snprintf(
		    msg, sizeof(msg), "%s: got %s, want %s", what, s, want);
		free(s);
		fail_msg("%s", msg);
	}
	free(s);
}

static void
test_sample_loads(void **state)
{
	struct pol_map *m;

	(void)state;
	m = load_ok(sample);
	pol_free(m);
	m = load_ok(sample2);
	pol_free(m);
	/* No roles at all is a valid, if useless, map. */
	m = load_ok("roles = {};\n");
	pol_free(m);
	m = load_ok("roles = { " NAME64 " = { groups = [ \"a\" ];\n"
		    "permissions = [ \"a\" ]; }; };\n");
	pol_free(m);
	pol_free(NULL);
}

struct resolve_case {
	const char *name;
	const char *groups[4];
	size_t n;
	int want;
	const char *roles, *perms;
};

static const struct resolve_case resolve_cases[] = {
    {"alice, mail-admins", {"mail-admins"}, 1, 1, "[\"admin\"]",
	"[\"admin:*\",\"emails:*\"]"},
    {"name in upper case", {"MAIL-ADMINS"}, 1, 1, "[\"admin\"]",
	"[\"admin:*\",\"emails:*\"]"},
    {"name in mixed case", {"Mail-Admins"}, 1, 1, "[\"admin\"]",
	"[\"admin:*\",\"emails:*\"]"},
    {"DN in other case", {"CN=Auditors,OU=Groups,DC=example,DC=com"}, 1, 1,
	"[\"analyst\"]", "[\"emails:label\",\"emails:read\"]"},
    {"DN with spaces and escapes",
	{"cn = Aud\\69tors ,  ou=groups , dc=example,dc=com  "}, 1, 1,
	"[\"analyst\"]", "[\"emails:label\",\"emails:read\"]"},
    {"first RDN only", {"cn=auditors"}, 1, 0, "[]", "[]"},
    {"DN entry's value as a name", {"auditors"}, 1, 0, "[]", "[]"},
    {"a DN whose cn is a name entry",
	{"cn=mail-admins,ou=groups,dc=example,dc=com"}, 1, 0, "[]", "[]"},
    {"another DN", {"cn=auditors,ou=groups,dc=example,dc=org"}, 1, 0, "[]",
	"[]"},
    {"unparsable DN", {"cn=auditors,,ou=groups,dc=example,dc=com"}, 1, 0, "[]",
	"[]"},
    {"name with a trailing space", {"mail-admins "}, 1, 0, "[]", "[]"},
    {"name prefix", {"mail-admin"}, 1, 0, "[]", "[]"},
    {"empty name", {""}, 1, 0, "[]", "[]"},
    {"no matching group", {"staff", "users"}, 2, 0, "[]", "[]"},
    {"no groups", {NULL}, 0, 0, "[]", "[]"},
    {"several roles merge", {"analysts", "users", "mail-admins"}, 3, 3,
	"[\"admin\",\"analyst\",\"reader\"]",
	"[\"admin:*\",\"emails:*\",\"emails:label\",\"emails:read\"]"},
    {"one group, two roles", {"ANALYSTS"}, 1, 2, "[\"analyst\",\"reader\"]",
	"[\"emails:label\",\"emails:read\"]"},
    {"same role twice",
	{"analysts", "cn=auditors,ou=groups,dc=example,dc=com", "analysts"}, 3,
	2, "[\"analyst\",\"reader\"]", "[\"emails:label\",\"emails:read\"]"},
};

static void
test_resolve(void **state)
{
	struct pol_map *m = load_ok(sample2);
	size_t i;

	(void)state;
	for (i = 0; i < N(resolve_cases); i++) {
		const struct resolve_case *tc = &resolve_cases[i];
		json_t *roles = NULL, *perms = NULL;
		int got = pol_resolve(m, tc->groups, tc->n, &roles, &perms);

		if (got != tc->want)
			fail_msg(
			    "%s: got %d, want %d", tc->name, got, tc->want);
		assert_json(roles, tc->roles, tc->name);
		assert_json(perms, tc->perms, tc->name);
		json_decref(roles);
		json_decref(perms);
	}
	pol_free(m);
}

static void
test_resolve_errors(void **state)
{
	struct pol_map *m = load_ok(sample);
	const char *const with_null[] = {"mail-admins", NULL};
	json_t *roles = NULL, *perms = NULL;

	(void)state;
	assert_int_equal(pol_resolve(NULL, with_null, 1, &roles, &perms), -1);
	assert_int_equal(pol_resolve(m, NULL, 1, &roles, &perms), -1);
	assert_int_equal(pol_resolve(m, with_null, 2, &roles, &perms), -1);
	/* Outputs are written only on success. */
	assert_null(roles);
	assert_null(perms);
	assert_null(pol_explain(m, with_null, 2));
	assert_null(pol_explain(NULL, with_null, 1));
	pol_free(m);
}

static void
test_explain(void **state)
{
	struct pol_map *m = load_ok(sample2);
	const char *const groups[] = {"MAIL-ADMINS",
	    "CN=Auditors, OU=Groups,DC=example,DC=com", "staff", "Analysts"};
	json_t *e;

	(void)state;
	e = pol_explain(m, groups, N(groups));
	assert_non_null(e);
	assert_json(e,
	    "[{\"role\":\"admin\",\"group\":\"MAIL-ADMINS\","
	    "\"entry\":\"mail-admins\"},"
	    "{\"role\":\"analyst\",\"group\":\"CN=Auditors, "
	    "OU=Groups,DC=example,DC=com\","
	    "\"entry\":\"cn=auditors,ou=groups,dc=example,dc=com\"},"
	    "{\"role\":\"analyst\",\"group\":\"Analysts\","
	    "\"entry\":\"analysts\"},"
	    "{\"role\":\"reader\",\"group\":\"Analysts\","
	    "\"entry\":\"Analysts\"}]",
	    "explain");
	json_decref(e);
	e = pol_explain(m, groups + 2, 1);
	assert_json(e, "[]", "explain without a match");
	json_decref(e);
	pol_free(m);
}

struct permits_case {
	const char *granted[4];
	size_t n;
	const char *required;
	int want;
};

static const struct permits_case permits_cases[] = {
    {{"emails:read"}, 1, "emails:read", 1},
    {{"emails:read"}, 1, "emails:label", 0},
    {{"emails:read"}, 1, "emails", 0},
    {{"emails:read"}, 1, "emails:read:x", 0},
    {{"emails:*"}, 1, "emails:read", 1},
    {{"emails:*"}, 1, "emails:x:y", 1},
    {{"emails:*"}, 1, "emails", 0},
    {{"emails:*"}, 1, "emailsx:read", 0},
    {{"a:*"}, 1, "ab:x", 0},
    {{"a:*"}, 1, "a:x", 1},
    {{"a:b:*"}, 1, "a:b:c", 1},
    {{"a:b:*"}, 1, "a:c", 0},
    {{"a:b:*"}, 1, "a:b", 0},
    {{"a:*"}, 1, "a:*", 0},
    {{"a:*"}, 1, "", 0},
    {{"a:*"}, 1, "A:x", 0},
    {{"a:*"}, 1, "a:", 0},
    {{"*"}, 1, "a:x", 0},
    {{"*"}, 1, "a", 0},
    {{"a*"}, 1, "a:x", 0},
    {{"A:*"}, 1, "a:x", 0},
    {{"a:x:*"}, 1, "a:x:", 0},
    {{""}, 1, "a", 0},
    {{NULL}, 1, "a", 0},
    {{"x", "y", "a:*"}, 3, "a:z", 1},
    {{"x", "y", "a:*"}, 2, "a:z", 0},
    {{"admin:roles"}, 1, "admin:roles", 1},
    {{"admin:roles"}, 1, "admin:sessions", 0},
    {{NULL}, 0, "a", 0},
};

static void
test_permits(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(permits_cases); i++) {
		const struct permits_case *tc = &permits_cases[i];
		int got = pol_permits(tc->granted, tc->n, tc->required);

		if (got != tc->want)
			fail_msg("case %zu: pol_permits(%s..., '%s'): got %d, "
				 "want %d",
			    i, tc->granted[0] ? tc->granted[0] : "(null)",
			    tc->required, got, tc->want);
	}
	assert_int_equal(pol_permits(NULL, 0, "a"), 0);
	assert_int_equal(pol_permits(permits_cases[0].granted, 1, NULL), 0);
}

struct scope_case {
	const char *scope, *required;
	int want;
};

static const struct scope_case scope_cases[] = {
    {"emails:read emails:label", "emails:label", 1},
    {"emails:read emails:label", "emails:read", 1},
    {"emails:read emails:label", "emails:delete", 0},
    {"emails:read  emails:label ", "emails:label", 1},
    {" emails:read", "emails:read", 1},
    {"admin:* emails:read", "admin:roles", 1},
    {"admin:* emails:read", "admin", 0},
    {"emails:readx", "emails:read", 0},
    {"emails:rea", "emails:read", 0},
    {"emails:read\temails:label", "emails:label", 0},
    {"*", "emails:read", 0},
    {"", "emails:read", 0},
    {"   ", "emails:read", 0},
    {"a:*", "a:*", 0},
    {"a:b", "", 0},
};

static void
test_scope_permits(void **state)
{
	char big[5000];
	size_t i;

	(void)state;
	for (i = 0; i < N(scope_cases); i++) {
		const struct scope_case *tc = &scope_cases[i];
		int got = pol_scope_permits(tc->scope, tc->required);

		if (got != tc->want)
			fail_msg("pol_scope_permits('%s', '%s'): got %d, want "
				 "%d",
			    tc->scope, tc->required, got, tc->want);
	}
	assert_int_equal(pol_scope_permits(NULL, "a"), 0);
	/* 4096 bytes are read; one more and the scope is refused whole. */
	memset(big, ' ', sizeof(big));
	memcpy(big + 4096 - 3, "a:b", 3);
	big[4096] = '\0';
	assert_int_equal(pol_scope_permits(big, "a:b"), 1);
	big[4096] = ' ';
	big[4097] = '\0';
	assert_int_equal(pol_scope_permits(big, "a:b"), 0);
}

struct valid_case {
	const char *s;
	int wild, want;
};

static const struct valid_case valid_cases[] = {
    {"emails:read", 0, 1},
    {"emails", 0, 1},
    {"a.b-c_d:0:x", 0, 1},
    {"emails:*", 1, 1},
    {"a:b:*", 1, 1},
    {"emails:*", 0, 0},
    {"*", 1, 0},
    {"*", 0, 0},
    {"*:a", 1, 0},
    {"a:*:b", 1, 0},
    {"a*", 1, 0},
    {"a:b*", 1, 0},
    {"a:**", 1, 0},
    {"", 0, 0},
    {"emails:", 0, 0},
    {":emails", 0, 0},
    {"a::b", 0, 0},
    {"Emails:Read", 0, 0},
    {"emails:read ", 0, 0},
    {"emails read", 0, 0},
    {"e/mails", 0, 0},
    {"\xc3\xa9", 0, 0},
};

static void
test_permission_valid(void **state)
{
	char s[200];
	size_t i;

	(void)state;
	for (i = 0; i < N(valid_cases); i++) {
		const struct valid_case *tc = &valid_cases[i];
		int got = pol_permission_valid(tc->s, tc->wild);

		if (got != tc->want)
			fail_msg("pol_permission_valid('%s', %d): got %d, want "
				 "%d",
			    tc->s, tc->wild, got, tc->want);
	}
	assert_int_equal(pol_permission_valid(NULL, 1), 0);
	memset(s, 'a', sizeof(s));
	s[128] = '\0';
	assert_int_equal(pol_permission_valid(s, 0), 1);
	s[128] = 'a';
	s[129] = '\0';
	assert_int_equal(pol_permission_valid(s, 0), 0);
}

struct dn_case {
	const char *in, *want; /* want NULL: refused */
};

static const struct dn_case dn_cases[] = {
    {"CN=Auditors, OU=Groups,DC=Example,DC=com",
	"cn=auditors,ou=groups,dc=example,dc=com"},
    {"cn=auditors,ou=groups,dc=example,dc=com",
	"cn=auditors,ou=groups,dc=example,dc=com"},
    {"  cn = auditors  ,  dc = x  ", "cn=auditors,dc=x"},
    {"cn=a\\2cb,dc=x", "cn=a\\,b,dc=x"},
    {"cn=a\\2Cb,dc=x", "cn=a\\,b,dc=x"},
    {"cn=a\\,b,dc=x", "cn=a\\,b,dc=x"},
    {"cn=a\\+b\\\"c\\\\d\\<e\\>f\\;g\\=h,dc=x",
	"cn=a\\+b\\\"c\\\\d\\<e\\>f\\;g\\=h,dc=x"},
    {"cn=a=b,dc=x", "cn=a\\=b,dc=x"},
    {"cn=a#b,dc=x", "cn=a#b,dc=x"},
    {"cn=\\#a,dc=x", "cn=\\#a,dc=x"},
    {"cn=\\23a,dc=x", "cn=\\#a,dc=x"},
    {"cn=\\ a\\ ,dc=x", "cn=\\ a\\ ,dc=x"},
    {"cn=\\20a\\20,dc=x", "cn=\\ a\\ ,dc=x"},
    {"cn=a\\  ,dc=x", "cn=a\\ ,dc=x"},
    {"cn=a b,dc=x", "cn=a b,dc=x"},
    {"cn=\\ ,dc=x", "cn=\\ ,dc=x"},
    {"cn=\\41\\42,dc=x", "cn=ab,dc=x"},
    {"cn=\\2D,dc=x", "cn=-,dc=x"},
    {"CN=A+SN=B,DC=x", "cn=a+sn=b,dc=x"},
    {"sn=B + cn=A,dc=x", "sn=b+cn=a,dc=x"},
    {"2.5.4.3=Auditors,dc=x", "2.5.4.3=auditors,dc=x"},
    {"x-Attr1=V", "x-attr1=v"},
    {"cn=J\xc3\x89r\xc3\xb4me,dc=x", "cn=j\xc3\x89r\xc3\xb4me,dc=x"},
    {"cn=J\\c3\\a9r\\c3\\b4me,dc=x", "cn=j\xc3\xa9r\xc3\xb4me,dc=x"},
    {"cn=\xe2\x82\xac,dc=x", "cn=\xe2\x82\xac,dc=x"},
    {"cn=a\tb,dc=x", "cn=a\tb,dc=x"},
    /* refused */
    {"", NULL},
    {"   ", NULL},
    {"cn", NULL},
    {"cn=", NULL},
    {"cn=  ,dc=x", NULL},
    {"cn=a,", NULL},
    {",cn=a", NULL},
    {"cn=a,,dc=x", NULL},
    {"cn=a+,dc=x", NULL},
    {"=a", NULL},
    {"c n=a", NULL},
    {"1cn=a", NULL},
    {"2.5.4.03=a", NULL},
    {"2=a", NULL},
    {"2.5.=a", NULL},
    {"oid.2.5.4.3=a", NULL},
    {"cn=a;dc=x", NULL},
    {"cn=a<b", NULL},
    {"cn=a>b", NULL},
    {"cn=\"a,b\",dc=x", NULL},
    {"cn=#0403616263", NULL},
    {"cn= #04", NULL},
    {"cn=a\\", NULL},
    {"cn=a\\x", NULL},
    {"cn=a\\4", NULL},
    {"cn=a\\4g", NULL},
    {"cn=a\\00b", NULL},
    {"cn=\\c3", NULL},
    {"cn=\\ff", NULL},
    {"cn=\xc3(,dc=x", NULL},
    {"cn=\xed\xa0\x80", NULL},
    {"cn==", "cn=\\="},
};

static void
test_dn_normalize(void **state)
{
	char dst[256], big[3000];
	size_t i;

	(void)state;
	for (i = 0; i < N(dn_cases); i++) {
		const struct dn_case *tc = &dn_cases[i];
		int got = pol_dn_normalize(tc->in, dst, sizeof(dst));

		if (tc->want == NULL && got != -1)
			fail_msg("'%s': want refused, got '%s'", tc->in, dst);
		if (tc->want != NULL && got != 0)
			fail_msg("'%s': refused, want '%s'", tc->in, tc->want);
		if (tc->want != NULL && strcmp(dst, tc->want) != 0)
			fail_msg(
			    "'%s': got '%s', want '%s'", tc->in, dst, tc->want);
		if (tc->want == NULL)
			assert_string_equal(dst, "");
	}
	/* The output is canonical: normalising it again changes nothing. */
	for (i = 0; i < N(dn_cases); i++) {
		char again[256];

		if (dn_cases[i].want == NULL)
			continue;
		assert_int_equal(
		    pol_dn_normalize(dn_cases[i].want, again, sizeof(again)),
		    0);
		assert_string_equal(again, dn_cases[i].want);
	}
	/* cap counts the NUL. */
	assert_int_equal(pol_dn_normalize("CN=ab", dst, 6), 0);
	assert_string_equal(dst, "cn=ab");
	assert_int_equal(pol_dn_normalize("CN=abc", dst, 6), -1);
	assert_int_equal(pol_dn_normalize("cn=a", dst, 0), -1);
	/* A value of 1024 bytes is the most a value may decode to. */
	memcpy(big, "cn=", 3);
	memset(big + 3, 'x', 1024);
	big[3 + 1024] = '\0';
	assert_int_equal(pol_dn_normalize(big, dst, sizeof(dst)), -1);
	{
		char *out = malloc(2000);

		assert_non_null(out);
		assert_int_equal(pol_dn_normalize(big, out, 2000), 0);
		big[3 + 1024] = 'x';
		big[3 + 1025] = '\0';
		assert_int_equal(pol_dn_normalize(big, out, 2000), -1);
		free(out);
	}
}

struct load_case {
	const char *name, *text, *err;
};

static const struct load_case load_cases[] = {
    {"unknown key in a role",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ \"emails:*\" ];\n"
	"            color = \"red\"; };\n"
	"};\n",
	"roles.conf:4: unknown setting 'color'"},
    {"unknown top-level key",
	"roles = {};\n"
	"# comment\n"
	"users = {};\n",
	"roles.conf:3: unknown setting 'users'"},
    {"no roles", "# nothing\n", "roles.conf: missing setting 'roles'"},
    {"roles not a group", "roles = [ \"a\" ];\n",
	"roles.conf:1: 'roles' must be a group { ... }"},
    {"role not a group", "roles = {\n  admin = \"x\";\n};\n",
	"roles.conf:2: 'roles.admin' must be a group { ... }"},
    {"missing groups",
	"roles = {\n  admin = {\n permissions = [ \"a\" ]; };\n};\n",
	"roles.conf:2: 'roles.admin': missing setting 'groups'"},
    {"missing permissions",
	"roles = {\n  admin = {\n groups = [ \"a\" ]; };\n};\n",
	"roles.conf:2: 'roles.admin': missing setting 'permissions'"},
    {"permissions not a list",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = \"emails:*\"; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.permissions' must be a list of strings"},
    {"groups a group",
	"roles = {\n"
	"  admin = { groups = { a = \"b\"; };\n"
	"            permissions = [ \"emails:*\" ]; };\n"
	"};\n",
	"roles.conf:2: 'roles.admin.groups' must be a list of strings"},
    {"no permission",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.permissions' must list at least one "
	"permission"},
    {"uppercase permission",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ \"emails:read\",\n"
	"                            \"Emails:Read\" ]; };\n"
	"};\n",
	"roles.conf:4: 'roles.admin.permissions': 'Emails:Read' is not a "
	"valid permission (segments of a-z 0-9 _ . - joined by ':', the last "
	"one may be '*')"},
    {"permission with an empty segment",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ \"emails:\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.permissions': 'emails:' is not a valid "
	"permission (segments of a-z 0-9 _ . - joined by ':', the last one "
	"may be '*')"},
    {"permission *",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ \"*\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.permissions': '*' is not a valid "
	"permission (segments of a-z 0-9 _ . - joined by ':', the last one "
	"may be '*')"},
    {"permission twice",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ \"b:c\", \"a:b\",\n"
	"                            \"b:c\" ]; };\n"
	"};\n",
	"roles.conf:4: 'roles.admin.permissions' lists 'b:c' twice"},
    {"role name too long",
	"roles = {\n"
	"  " NAME64 "x = { groups = [ \"a\" ]; permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: invalid role name '" NAME64 "x' (1 to 64 of A-Z a-z "
	"0-9 _ -)"},
    {"role name with *",
	"roles = {\n"
	"  adm*n = { groups = [ \"a\" ]; permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: invalid role name 'adm*n' (1 to 64 of A-Z a-z 0-9 _ "
	"-)"},
    {"unparsable DN",
	"roles = {\n"
	"  analyst = { groups = [ \"analysts\",\n"
	"                         \"cn=auditors,,dc=example\" ];\n"
	"              permissions = [ \"emails:read\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.analyst.groups': 'cn=auditors,,dc=example' is "
	"not a valid DN"},
    {"DN written twice",
	"roles = {\n"
	"  analyst = { groups = [ \"cn=a,dc=x\",\n"
	"                         \"CN=A, DC=X\" ];\n"
	"              permissions = [ \"emails:read\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.analyst.groups' lists 'cn=a,dc=x' twice (as "
	"'cn=a,dc=x' on line 2)"},
    {"name written twice",
	"roles = {\n"
	"  analyst = { groups = [ \"Analysts\",\n"
	"                         \"ANALYSTS\" ];\n"
	"              permissions = [ \"emails:read\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.analyst.groups' lists 'ANALYSTS' twice (as "
	"'Analysts' on line 2)"},
    {"number for a group",
	"roles = {\n"
	"  admin = { groups = ( \"a\",\n"
	"                       42 );\n"
	"            permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.groups' must be a list of non-empty "
	"strings"},
    {"wrapped number for a permission",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ];\n"
	"            permissions = [ 4294967296 ]; };\n"
	"};\n",
	"roles.conf:3: 'roles.admin.permissions' must be a list of non-empty "
	"strings"},
    {"empty group",
	"roles = {\n"
	"  admin = { groups = [ \"a\", \"\" ];\n"
	"            permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: 'roles.admin.groups' must be a list of non-empty "
	"strings"},
    {"control character in a group",
	"roles = {\n"
	"  admin = { groups = [ \"a\\tb\" ];\n"
	"            permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: 'roles.admin.groups': entry is not UTF-8 text without "
	"control characters"},
    {"invalid UTF-8 in a group",
	"roles = {\n"
	"  admin = { groups = [ \"\xc3(\" ];\n"
	"            permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: 'roles.admin.groups': entry is not UTF-8 text without "
	"control characters"},
    {"@include refused",
	"# roles\n"
	"@include \"/etc/passwd\"\n"
	"roles = {};\n",
	"roles.conf:2: @include is not supported"},
    {"indented @include refused",
	"roles = {\n"
	"  \t@include \"/etc/passwd\"\n"
	"};\n",
	"roles.conf:2: @include is not supported"},
    {"@include after a string that looks like a comment",
	"roles = {\n"
	"  a = { groups = [ \"x/*\", \"y\\\"/*\" ];\n"
	"@include \"/etc/passwd\"\n"
	"        permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:3: @include is not supported"},
    {"syntax error",
	"roles = {\n"
	"  admin = { groups = [ \"a\" ;\n"
	"            permissions = [ \"a\" ]; };\n"
	"};\n",
	"roles.conf:2: syntax error"},
    {"duplicate role", "roles = {\n  a = {};\n  a = {};\n};\n",
	"roles.conf:3: duplicate setting name"},
};

static void
test_load_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(load_cases); i++) {
		const struct load_case *tc = &load_cases[i];
		struct pol_map *m = NULL;
		char err[512] = "";
		int got;

		got = pol_load_string(
		    tc->text, "roles.conf", &m, err, sizeof(err));
		if (got != -1)
			fail_msg("%s: loaded", tc->name);
		assert_null(m);
		if (strcmp(err, tc->err) != 0)
			fail_msg(
			    "%s:\n got  %s\n want %s", tc->name, err, tc->err);
	}
}

/* "@include" inside a comment or a string is text, not a directive. */
static void
test_load_at_in_text(void **state)
{
	struct pol_map *m = load_ok("roles = { /*\n"
				    "@include \"/etc/passwd\" */\n"
				    "  a = { groups = [ \"@include\" ];\n"
				    "# @include \"x\"\n"
				    "        permissions = [ \"a\" ]; };\n"
				    "};\n");

	(void)state;
	pol_free(m);
}

/*
 * Text with n roles, each with per groups (names and DNs) and two
 * permissions; the caller frees it.
 */
static char *
gen_roles(size_t n, size_t per)
{
	size_t cap = 64 + n * (120 + per * 40), o = 0, i, j;
	char *t = malloc(cap);

	assert_non_null(t);
	o += (size_t)snprintf(t + o, cap - o, "roles = {\n");
	for (i = 0; i < n; i++) {
		o += (size_t)snprintf(t + o, cap - o, "r%zu = { groups = [", i);
		for (j = 0; j < per; j++)
			o += (size_t)snprintf(t + o, cap - o,
			    j % 2 ? "%s\"cn=g%zu,dc=x\"" : "%s\"g%zu\"",
			    j ? ", " : "", j);
		o += (size_t)snprintf(t + o, cap - o,
		    "]; permissions = [ \"p:r%zu\", \"common:*\" ]; };\n", i);
		assert_true(o < cap);
	}
	o += (size_t)snprintf(t + o, cap - o, "};\n");
	assert_true(o < cap);
	return t;
}

static void
test_load_limits(void **state)
{
	struct pol_map *m = NULL;
	json_t *roles = NULL, *perms = NULL;
	const char *const g[] = {"G4", "CN=G5, DC=X"};
	char err[512] = "", *t;

	(void)state;
	t = gen_roles(2000, 1);
	assert_int_equal(pol_load_string(t, "big", &m, err, sizeof(err)), -1);
	assert_string_equal(err, "big:1: 'roles' has more than 1000 roles");
	assert_null(m);
	free(t);

	t = gen_roles(1000, 8);
	m = load_ok(t);
	free(t);
	assert_int_equal(pol_resolve(m, g, 0, &roles, &perms), 0);
	json_decref(roles);
	json_decref(perms);
	/* g4 and cn=g5 are in every role: 1000 roles, 1001 permissions. */
	assert_int_equal(pol_resolve(m, g, 2, &roles, &perms), 1000);
	assert_int_equal(json_array_size(roles), 1000);
	assert_int_equal(json_array_size(perms), 1001);
	assert_string_equal(
	    json_string_value(json_array_get(perms, 0)), "common:*");
	json_decref(roles);
	json_decref(perms);
	pol_free(m);

	t = gen_roles(1, 1000);
	m = load_ok(t);
	pol_free(m);
	free(t);
	m = NULL;

	t = gen_roles(1, 1001);
	assert_int_equal(pol_load_string(t, "big", &m, err, sizeof(err)), -1);
	assert_string_equal(
	    err, "big:2: 'roles.r0.groups' has more than 1000 entries");
	assert_null(m);
	free(t);
}

static void
test_load_long_string(void **state)
{
	struct pol_map *m = NULL;
	char t[4096], err[512] = "";
	int n;

	(void)state;
	/* A 1024-byte DN whose '=' grow when re-escaped still loads. */
	n = snprintf(t, sizeof(t),
	    "roles = { a = { groups = [ \"cn=%0*d\" ]; permissions = [ \"a\" "
	    "]; }; };\n",
	    1021, 0);
	assert_true(n > 0 && (size_t)n < sizeof(t));
	memset(strstr(t, "cn=") + 4, '=', 1020);
	m = load_ok(t);
	pol_free(m);
	m = NULL;
	n = snprintf(t, sizeof(t),
	    "roles = { a = { groups = [ \"%0*d\" ]; permissions = [ \"a\" "
	    "]; }; };\n",
	    1025, 0);
	assert_true(n > 0 && (size_t)n < sizeof(t));
	assert_int_equal(pol_load_string(t, "x", &m, err, sizeof(err)), -1);
	assert_string_equal(
	    err, "x:1: 'roles.a.groups': entry longer than 1024 bytes");
	assert_null(m);
}

static void
write_file(const char *path, const char *text, size_t n)
{
	if (n == 0)
		n = strlen(text);

	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void
test_load_file(void **state)
{
	char dir[] = "/tmp/ea-test-policy-XXXXXX", path[64], want[256];
	struct pol_map *m = NULL;
	json_t *roles = NULL, *perms = NULL;
	const char *const g[] = {"mail-admins"};
	char err[512] = "";

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/roles.conf", dir);

	write_file(path, sample, sizeof(sample) - 1);
	assert_int_equal(pol_load(path, &m, err, sizeof(err)), 0);
	assert_int_equal(pol_resolve(m, g, 1, &roles, &perms), 1);
	assert_json(roles, "[\"admin\"]", "file roles");
	assert_json(perms, "[\"admin:*\",\"emails:*\"]", "file perms");
	json_decref(roles);
	json_decref(perms);
	pol_free(m);
	m = NULL;

	write_file(path, "roles = {};\n@include \"/etc/passwd\"\n", 0);
	assert_int_equal(pol_load(path, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: @include is not supported", path);
	assert_string_equal(err, want);

	write_file(path, "roles = {};\n\0", 13);
	assert_int_equal(pol_load(path, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: contains a NUL byte", path);
	assert_string_equal(err, want);

	write_file(path, "roles = {\n  a = 1;\n};\n", 0);
	assert_int_equal(pol_load(path, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: 'roles.a' must be a group { ... }",
	    path);
	assert_string_equal(err, want);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(pol_load(path, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
	    "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(m);
	assert_int_equal(rmdir(dir), 0);
}

struct worker {
	const struct pol_map *m;
	int ok;
};

static void *
worker(void *arg)
{
	struct worker *w = arg;
	const char *const g[] = {
	    "Analysts", "cn=auditors, ou=groups, dc=example, dc=com", "x"};
	int i;

	for (i = 0; i < 300; i++) {
		json_t *roles = NULL, *perms = NULL, *e;
		char *rs, *ps;

		if (pol_resolve(w->m, g, N(g), &roles, &perms) != 2)
			return NULL;
		rs = json_dumps(roles, JSON_COMPACT);
		ps = json_dumps(perms, JSON_COMPACT);
		e = pol_explain(w->m, g, N(g));
		w->ok = rs != NULL && ps != NULL && e != NULL &&
		    strcmp(rs, "[\"analyst\",\"reader\"]") == 0 &&
		    strcmp(ps, "[\"emails:label\",\"emails:read\"]") == 0 &&
		    json_array_size(e) == 3;
		free(rs);
		free(ps);
		json_decref(roles);
		json_decref(perms);
		json_decref(e);
		if (!w->ok)
			return NULL;
	}
	return NULL;
}

/* One map, read by several threads at once (run under TSan by hand). */
static void
test_threads(void **state)
{
	struct pol_map *m = load_ok(sample2);
	struct worker w[4];
	pthread_t t[4];
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		w[i].m = m;
		w[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	for (i = 0; i < N(t); i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(w[i].ok);
	}
	pol_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sample_loads),
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_resolve_errors),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_permits),
	    cmocka_unit_test(test_scope_permits),
	    cmocka_unit_test(test_permission_valid),
	    cmocka_unit_test(test_dn_normalize),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_load_at_in_text),
	    cmocka_unit_test(test_load_limits),
	    cmocka_unit_test(test_load_long_string),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
