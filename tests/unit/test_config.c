/*
 * Unit tests for src/config/config.c: loading, defaults, every class of
 * error with its "NAME:LINE: message", secret file modes, relative paths,
 * and the acquire/release/swap reference counting.
 *
 * Each case is the base below (six lines, each of which a case may blank
 * out, so that line numbers stay put) plus its own text from line 7.
 * "$T" in a text stands for the temp directory, "$F" for a file name.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define TEXT_MAX 4096
#define ERR_MAX  1024

#define S_ISSUER   0x01
#define S_BACKENDS 0x02
#define S_FILE     0x04
#define S_TOKENS   0x08
#define S_ROLES    0x10
#define S_STATE    0x20

static const char *const base[] = {
    "issuer = \"https://auth.example.com\";",
    "backends = [ \"file\" ];",
    "file = { path = \"$T/users\"; };",
    "tokens = { audience = \"x\"; };",
    "roles_file = \"$T/roles.conf\";",
    "state_dir = \"/tmp/x\";",
};

/* A string literal and its length without the terminating NUL. */
#define B(s) s, sizeof(s) - 1

#define LISTEN(x) "listen = { " x " };"
#define ORIGIN(o) "cors = { origins = [ \"" o "\" ]; };"
#define TOK(x)    "tokens = { audience = \"x\"; " x " };"
/* Lines 7 and 8 of a case that blanks out S_BACKENDS. */
#define LDAP_HEAD "backends = [ \"ldap\" ];\nldap = {\n"
/* The same with what LDAP needs on line 9, and x from line 10. */
#define LDAP(x) \
	LDAP_HEAD "\tuser_base = \"dc=x\"; ca_file = \"$T/ca.pem\";\n" x "\n};"

#define MODE_MSG                                                          \
	"%s is readable or writable by group or others (mode %04o); run " \
	"chmod 600 on it"

static char dir[64];
static struct cfg sentinel; /* *r must keep it when loading fails */

/* snprintf that fails the test instead of truncating. */
static void __attribute__((format(printf, 3, 4)))
xsnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	assert_true(w >= 0 && (size_t)w < n);
}

/* dir/rel, in one of two static buffers. */
static const char *
tpath(const char *rel)
{
	static char buf[2][256];
	static int k;

	k = !k;
	xsnprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, rel);
	return buf[k];
}

/* Copies in to out with $T and $F replaced. */
static void
expand(const char *in, const char *f, char *out, size_t n)
{
	size_t o = 0, k;
	const char *s;

	for (; *in != '\0'; in++) {
		s = NULL;
		if (in[0] == '$' && in[1] == 'T')
			s = dir;
		else if (in[0] == '$' && in[1] == 'F' && f != NULL)
			s = f;
		if (s == NULL) {
			assert_true(o + 1 < n);
			out[o++] = *in;
			continue;
		}
		k = strlen(s);
		assert_true(o + k < n);
		memcpy(out + o, s, k);
		o += k;
		in++;
	}
	out[o] = '\0';
}

static int
load(unsigned int skip, const char *extra, const char *f, struct cfg **r,
    char *err)
{
	char tmpl[TEXT_MAX], text[TEXT_MAX];
	size_t i, o = 0;

	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		xsnprintf(tmpl + o, sizeof(tmpl) - o, "%s\n",
		    (skip & (1u << i)) ? "" : base[i]);
		o += strlen(tmpl + o);
	}
	xsnprintf(tmpl + o, sizeof(tmpl) - o, "%s\n", extra);
	expand(tmpl, f, text, sizeof(text));
	err[0] = '\0';
	*r = &sentinel;
	return cfg_load_string(text, "T", r, err, ERR_MAX);
}

/* Loading must fail with "T:line: msg..." ("T: msg..." for line 0). */
static void
expect_error(unsigned int skip, const char *extra, const char *f, int line,
    const char *msg)
{
	char err[ERR_MAX], want[ERR_MAX], xmsg[ERR_MAX];
	struct cfg *c;

	expand(msg, f, xmsg, sizeof(xmsg));
	if (line > 0)
		xsnprintf(want, sizeof(want), "T:%d: %s", line, xmsg);
	else
		xsnprintf(want, sizeof(want), "T: %s", xmsg);
	if (load(skip, extra, f, &c, err) == 0) {
		cfg_free(c);
		fail_msg("loaded, want '%s...'\n  from: %s", want, extra);
	}
	if (c != &sentinel)
		fail_msg("*r written on failure\n  from: %s", extra);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg(
		    "got  '%s'\n  want '%s...'\n  from: %s", err, want, extra);
}

/* Writes n bytes into dir/rel, replacing it, with the given mode. */
static void
put(const char *rel, const char *data, size_t n, mode_t mode)
{
	const char *p = tpath(rel);
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static int
rm_tree(const char *path)
{
	char p[512];
	struct dirent *e;
	struct stat st;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		xsnprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	return rmdir(path);
}

static int
setup(void **state)
{
	(void)state;
	xsnprintf(dir, sizeof(dir), "/tmp/ea-test-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	put("users", B("alice:$y$j9T$x$y:admins\n"), 0600);
	put("roles.conf", B("roles = { };\n"), 0644);
	put("ca.pem", B("not parsed here\n"), 0644);
	put("ldap.secret", B("s3cret\n"), 0600);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return rm_tree(dir);
}

static void
test_defaults(void **state)
{
	char err[ERR_MAX];
	struct cfg *c;

	(void)state;
	if (load(0, "", NULL, &c, err) != 0)
		fail_msg("minimal config refused: %s", err);
	assert_string_equal(c->path, "T");
	assert_string_equal(c->listen.address, "127.0.0.1");
	assert_int_equal(c->listen.port, 8080);
	assert_null(c->listen.tls_cert);
	assert_int_equal(c->listen.trusted_proxies.n, 0);
	assert_int_equal(c->listen.max_body, 8192);
	assert_int_equal(c->listen.max_header_bytes, 16384);
	assert_int_equal(c->listen.max_connections, 1000);
	assert_int_equal(c->listen.per_ip_connections, 32);
	assert_int_equal(c->listen.timeout, 15);
	assert_int_equal(c->listen.threads, 0);
	assert_int_equal(c->listen.behind_tls, 0);
	assert_int_equal(c->listen.metrics_allow.n, 2);
	assert_string_equal(c->listen.metrics_allow_text.v[0], "127.0.0.0/8");
	assert_string_equal(c->listen.metrics_allow_text.v[1], "::1/128");
	assert_int_equal(c->listen.revocations_allow.n, 2);
	assert_string_equal(
	    c->listen.revocations_allow_text.v[0], "127.0.0.0/8");
	assert_int_equal(c->cors.origins.n, 0);
	assert_int_equal(c->cors.allow_credentials, 0);
	assert_int_equal(c->cors.max_age, 600);
	assert_string_equal(c->log.level, "info");
	assert_int_equal(c->log.access, 1);
	assert_string_equal(c->issuer, "https://auth.example.com");
	assert_string_equal(c->state_dir, "/tmp/x");
	assert_int_equal(c->backends.n, 1);
	assert_string_equal(c->backends.v[0], "file");
	assert_string_equal(c->roles_file, tpath("roles.conf"));
	assert_string_equal(c->tokens.algorithm, "ES256");
	assert_string_equal(c->tokens.audience, "x");
	assert_int_equal(c->tokens.access_ttl, 300);
	assert_int_equal(c->tokens.refresh_ttl, 28800);
	assert_int_equal(c->tokens.refresh_idle, 3600);
	assert_int_equal(c->tokens.leeway, 30);
	assert_int_equal(c->ldap.starttls, 1);
	assert_string_equal(c->ldap.user_filter,
	    "(&(objectClass=inetOrgPerson)(uid={username}))");
	assert_int_equal(c->ldap.nested_depth, 3);
	assert_string_equal(c->pam.service, "emailauth");
	assert_string_equal(c->file.path, tpath("users"));
	assert_int_equal(c->http.max_body, 8192);
	assert_int_equal(c->http.hsts, 0);
	cfg_free(c);
}

static void
test_values(void **state)
{
	static const char extra[] =
	    "listen = { address = \"::1\"; port = 0x1F90; timeout = 3600L;\n"
	    "\ttrusted_proxies = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n"
	    "\tbehind_tls = true; max_body = 1048576; metrics_allow = [ ];\n"
	    "};\n"
	    "cors = { origins = [ \"https://mail.example.com\",\n"
	    "\t\"http://localhost:3000\" ]; allow_credentials = true;\n"
	    "\tmax_age = 0; };\n"
	    "log = { level = \"debug\"; access = false; };\n"
	    "tokens = { audience = \"x\"; algorithm = \"RS256\";\n"
	    "\taccess_ttl = 86400; refresh_ttl = 31536000; };\n"
	    "pam = { service = \"svc-99999999999 @include\"; };\n"
	    "# 99999999999\n// 4294967296\n/* 0x100000000 */\n";
	char err[ERR_MAX];
	struct cfg *c;

	(void)state;
	if (load(S_TOKENS, extra, NULL, &c, err) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(c->listen.address, "::1");
	assert_int_equal(c->listen.port, 8080);
	assert_int_equal(c->listen.timeout, 3600);
	assert_int_equal(c->listen.trusted_proxies.n, 2);
	assert_int_equal(c->listen.trusted_proxies.v[0].prefix, 104);
	assert_int_equal(c->listen.trusted_proxies.v[1].prefix, 32);
	assert_int_equal(c->listen.metrics_allow.n, 0);
	assert_string_equal(c->cors.origins.v[1], "http://localhost:3000");
	assert_string_equal(c->log.level, "debug");
	assert_int_equal(c->log.access, 0);
	assert_string_equal(c->tokens.algorithm, "RS256");
	assert_int_equal(c->tokens.access_ttl, 86400);
	assert_string_equal(c->pam.service, "svc-99999999999 @include");
	/* The HTTP policy is derived from listen and cors. */
	assert_ptr_equal(c->http.trusted_proxies, c->listen.trusted_proxies.v);
	assert_int_equal(c->http.n_trusted_proxies, 2);
	assert_int_equal(c->http.n_cors_origins, 2);
	assert_string_equal(
	    c->http.cors_origins[0], "https://mail.example.com");
	assert_int_equal(c->http.cors_credentials, 1);
	assert_int_equal(c->http.cors_max_age, 0);
	assert_int_equal(c->http.hsts, 1);
	assert_int_equal(c->http.max_body, 1048576);
	cfg_free(c);
}

static void
test_loads(void **state)
{
	static const struct {
		unsigned int skip;
		const char *extra;
	} cases[] = {
	    {0, ""},
	    {S_BACKENDS | S_FILE, "backends = [ \"pam\" ];"},
	    /* The file of a backend not in use is not checked. */
	    {S_BACKENDS | S_FILE,
		"backends = [ \"pam\" ]; file = { path = \"$T/none\"; };"},
	    {S_BACKENDS, LDAP("\turi = [ \"ldap://d.example.com\" ];")},
	    {S_BACKENDS,
		LDAP_HEAD "\turi = [ \"ldap://127.0.0.1:3890\" ];\n"
			  "\tstarttls = false; insecure = true;\n"
			  "\tuser_base = \"dc=x\"; };"},
	    {S_BACKENDS,
		LDAP("\turi = [ \"ldaps://a\", \"ldaps://b:636\" ];\n"
		     "\tbind_dn = \"cn=svc,dc=example,dc=com\";\n"
		     "\tbind_password_file = \"$T/ldap.secret\";")},
	    {0, LISTEN("port = 65535L;")},
	    {0, LISTEN("address = \"::\";")},
	    {0, ORIGIN("https://m.example.com:8443")},
	    {S_TOKENS,
		TOK("access_ttl = 30; refresh_ttl = 60;\n"
		    "\trefresh_idle = 60; leeway = 0;")},
	    {S_BACKENDS, "backends = ( \"file\", \"pam\" );"},
	    {S_ISSUER, "issuer = \"https://a.example.com\";\r"},
	};

	char err[ERR_MAX];
	struct cfg *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (load(cases[i].skip, cases[i].extra, NULL, &c, err) != 0)
			fail_msg(
			    "refused: %s\n  from: %s", err, cases[i].extra);
		cfg_free(c);
	}
}

#define RANGE_PORT "'listen.port' must be between 0 and 65535"
#define ADDR_MSG   "'listen.address' must be an IPv4 or IPv6 address"
#define ALG_MSG    "'tokens.algorithm' must be ES256 or RS256"
#define NUM(v)     "number " v " is out of range"
#define MISSING(k) "missing setting '" k "'"
#define IDLE_MSG   "'tokens.refresh_idle' must not exceed 'tokens.refresh_ttl'"

static const struct {
	unsigned int skip;
	const char *extra;
	int line; /* 0: a message without a line */
	const char *msg;
} errors[] = {
    /* Names and types. */
    {0, "isuer = \"https://a\";", 7, "unknown setting 'isuer'"},
    {S_TOKENS, "tokens = {\n\taudience = \"x\";\n\tacces_ttl = 3;\n};", 9,
	"unknown setting 'acces_ttl'"},
    {0, LISTEN("\n\ttls = { crt = \"c\"; };"), 8, "unknown setting 'crt'"},
    {0, "listen = 8080;", 7, "'listen' must be a group { ... }"},
    {0, LISTEN("port = \"8080\";"), 7, "'listen.port' must be an integer"},
    {0, "log = { access = 1; };", 7, "'log.access' must be true or false"},
    {S_ISSUER, "issuer = 5;", 7, "'issuer' must be a string"},
    {0, LISTEN("trusted_proxies = \"10.0.0.0/8\";"), 7,
	"'listen.trusted_proxies' must be a list of strings"},
    {S_BACKENDS, "backends = ( \"file\",\n\t3 );", 8,
	"'backends' must be a list of non-empty strings"},
    {S_BACKENDS, "backends = [ \"file\", \"\" ];", 7,
	"'backends' must be a list of non-empty strings"},
    {0, LISTEN("port = 8080.0;"), 7, "'listen.port' must be an integer"},
    /* Ranges, and the literals libconfig 1.5 would wrap or clamp. */
    {0, LISTEN("port = 70000;"), 7, RANGE_PORT},
    {0, LISTEN("port = -1;"), 7, RANGE_PORT},
    {0, LISTEN("port = 2147483647;"), 7, RANGE_PORT},
    {0, LISTEN("port = 2147483648;"), 7, NUM("2147483648")},
    {S_TOKENS, TOK("access_ttl = 4294967296;"), 7, NUM("4294967296")},
    {S_TOKENS, TOK("access_ttl = 99999999999;"), 7, NUM("99999999999")},
    {S_TOKENS, TOK("leeway = 99999999999999999999999;"), 7,
	NUM("99999999999999999999999")},
    {S_TOKENS, TOK("access_ttl = 0x100000000;"), 7, NUM("0x100000000")},
    {0, LISTEN("port = 0xFFFFFFFF;"), 7, NUM("0xFFFFFFFF")},
    {S_TOKENS, TOK("\n\taccess_ttl = 9223372036854775808L;"), 8,
	NUM("9223372036854775808L")},
    {S_TOKENS, TOK("access_ttl = 4294967296L;"), 7,
	"'tokens.access_ttl' must be between 30 and 86400"},
    {S_TOKENS,
	"tokens = {\n\t# 99999999999\n\t/* 4294967296\n\t */\n"
	"\taudience = \"9999999999\\\"\";\n\taccess_ttl = 4294967296;\n};",
	12, NUM("4294967296")},
    {0, "@include \"x\"", 7, "@include is not supported"},
    {0, "  \t@include \"/etc/passwd\"", 7, "@include is not supported"},
    /* Required settings. */
    {S_ISSUER, "", 0, MISSING("issuer")},
    {S_BACKENDS, "", 0, MISSING("backends")},
    {S_TOKENS, "tokens = { leeway = 5; };", 0, MISSING("tokens.audience")},
    {S_FILE, "", 0, MISSING("file.path")},
    {S_BACKENDS, "backends = [ \"pam\", \"ldap\" ];", 0, MISSING("ldap.uri")},
    {S_BACKENDS, LDAP_HEAD "\turi = [ \"ldaps://d\" ]; };", 0,
	MISSING("ldap.user_base")},
    {S_BACKENDS, LDAP_HEAD "\turi = [ \"ldaps://d\" ]; user_base = \"x\";};", 0,
	MISSING("ldap.ca_file")},
    {0, LISTEN("tls = { cert = \"$T/ca.pem\"; };"), 0,
	MISSING("listen.tls.key")},
    /* Values. */
    {S_BACKENDS, "backends = [ ];", 7,
	"'backends' must name at least one backend"},
    {S_BACKENDS, "backends = [ \"file\", \"kerberos\" ];", 7,
	"'backends': unknown backend 'kerberos' (ldap, pam or file)"},
    {S_BACKENDS, "backends = [ \"file\", \"file\" ];", 7,
	"'backends' names 'file' twice"},
    {0, LISTEN("address = \"localhost\";"), 7, ADDR_MSG},
    {0, LISTEN("\n\ttrusted_proxies = [ \"127.0.0.1/32\", \"proxy\" ];"), 8,
	"'listen.trusted_proxies': 'proxy' is not an address or CIDR "
	"range"},
    {0, LISTEN("trusted_proxies = [ \"10.0.0.1/8\" ];"), 7,
	"'listen.trusted_proxies': '10.0.0.1/8' is not an address"},
    {0, LISTEN("metrics_allow = [ \"::1/129\" ];"), 7,
	"'listen.metrics_allow': '::1/129' is not an address"},
    {0, ORIGIN("https://mail.example.com/app"), 7,
	"'cors.origins': 'https://mail.example.com/app' is not an exact "
	"origin (scheme://host[:port], no path, no wildcard)"},
    {0, ORIGIN("*"), 7, "'cors.origins': '*' is not an exact origin"},
    {0, ORIGIN("https://*.example.com"), 7,
	"'cors.origins': 'https://*.example.com' is not an exact"},
    {S_BACKENDS,
	LDAP("\turi = [ \"ldaps://a\", \"ldap://b\" ]; starttls = false;"), 10,
	"'ldap.uri' has ldap:// but 'ldap.starttls' is false: passwords "
	"would cross the network in clear text"},
    {S_BACKENDS, LDAP("\turi = [ \"http://d\" ];"), 10,
	"'ldap.uri': 'http://d' must be one ldap:// or ldaps:// URI"},
    {S_BACKENDS, LDAP("\turi = [ \"ldaps://a ldaps://b\" ];"), 10,
	"'ldap.uri': 'ldaps://a ldaps://b' must be one"},
    {S_BACKENDS, LDAP("\turi = [ \"ldaps://d\" ]; bind_dn = \"cn=s\";"), 10,
	"'ldap.bind_dn' and 'ldap.bind_password_file' go together"},
    {S_BACKENDS, LDAP("\turi = [ \"ldaps://d\" ]; user_filter = \"(uid=*)\";"),
	10, "'ldap.user_filter' must contain {username}"},
    {S_TOKENS, TOK("refresh_ttl = 600;\n\trefresh_idle = 700;"), 8, IDLE_MSG},
    {S_TOKENS, TOK("refresh_ttl = 600;"), 0, IDLE_MSG},
    {S_TOKENS, TOK("access_ttl = 3600; refresh_ttl = 600; refresh_idle = 60;"),
	7, "'tokens.access_ttl' must not exceed 'tokens.refresh_ttl'"},
    {S_TOKENS, TOK("algorithm = \"HS256\";"), 7, ALG_MSG},
    {0, "log = { level = \"trace\"; };", 7,
	"'log.level' must be debug, info, warn or error"},
    {S_ISSUER, "issuer = \"auth.example.com\";", 7,
	"'issuer' must be an https:// (or, for tests, http://) URL without query or fragment"},
    {S_ISSUER, "issuer = \"https://a.example.com/?a=b\";", 7,
	"'issuer' must be an https:// (or, for tests, http://) URL"},
    {S_STATE, "state_dir = \"var/lib\";", 7,
	"'state_dir' must be an absolute path"},
    {S_ROLES, "roles_file = \"$T/none.conf\";", 7,
	"'roles_file': cannot read file $T/none.conf"},
    {S_ROLES, "roles_file = \"$T\";", 7, "'roles_file': cannot read file $T"},
    /* libconfig's own. */
    {0, "issuer = \"https://b.example.com\";", 7, "duplicate setting name"},
    {0, LISTEN("port = ;"), 7, "syntax error"},
};

static void
test_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		expect_error(errors[i].skip, errors[i].extra, NULL,
		    errors[i].line, errors[i].msg);
}

/*
 * Regression (was a bug in src/config/config.c:454-471, group_in_use()):
 * tokens.audience is F_REQ, but a required key is only enforced when its group
 * is written in the file. Leave "tokens = { ... };" out and the config loads
 * with tokens.audience == NULL: tokens without "aud", or a NULL dereference
 * later. Want "T: missing setting 'tokens.audience'"; got: loaded.
 */
static void
test_regression_no_tokens_group(void **state)
{
	(void)state;
	expect_error(S_TOKENS, "", NULL, 0, MISSING("tokens.audience"));
}

/* Secret files: mode 0600 or stricter, else refused at the key's line. */
static void
test_secret_files(void **state)
{
	/* $F: the secret file. */
	static const struct {
		unsigned int skip;
		const char *extra;
		int line;
		const char *key;
	} keys[] = {
	    {S_FILE, "file = { path = \"$T/$F\"; };", 7, "file.path"},
	    {S_BACKENDS,
		LDAP("\turi = [ \"ldaps://d\" ]; bind_dn = \"cn=s\";\n"
		     "\tbind_password_file = \"$T/$F\";"),
		11, "ldap.bind_password_file"},
	    {0, LISTEN("tls = { cert = \"$T/ca.pem\";\n\tkey = \"$T/$F\"; };"),
		8, "listen.tls.key"},
	    {0,
		"session = { backend = \"redis\";\n"
		"\tpassword_file = \"$T/$F\"; };",
		8, "session.password_file"},
	};

	static const mode_t modes[] = {0600, 0400, 0644, 0640, 0604, 0};
	char err[ERR_MAX], want[ERR_MAX];
	struct cfg *c;
	size_t k, m;

	(void)state;
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			const char *f = modes[m] != 0 ? "secret" : "missing";

			if (modes[m] != 0)
				put(f, B("s3cret\n"), modes[m]);
			if (modes[m] == 0600 || modes[m] == 0400) {
				if (load(keys[k].skip, keys[k].extra, f, &c,
					err) != 0)
					fail_msg("%s mode %04o refused: %s",
					    keys[k].key, (unsigned)modes[m],
					    err);
				cfg_free(c);
				continue;
			}
			if (modes[m] != 0)
				xsnprintf(want, sizeof(want), "'%s': " MODE_MSG,
				    keys[k].key, tpath(f), (unsigned)modes[m]);
			else
				xsnprintf(want, sizeof(want),
				    "'%s': cannot read %s: %s", keys[k].key,
				    tpath(f), strerror(ENOENT));
			expect_error(
			    keys[k].skip, keys[k].extra, f, keys[k].line, want);
		}
	}
}

/* Relative paths resolve against the directory of the config file. */
static void
test_load_relative_paths(void **state)
{
	static const char conf[] = "issuer = \"https://auth.example.com\";\n"
				   "backends = [ \"file\" ];\n"
				   "file = { path = \"users\"; };\n"
				   "tokens = { audience = \"x\"; };\n"
				   "roles_file = \"roles.conf\";\n"
				   "state_dir = \"/tmp/x\";\n";
	char err[ERR_MAX], want[ERR_MAX];
	struct cfg *c = NULL;

	(void)state;
	assert_int_equal(mkdir(tpath("etc"), 0700), 0);
	put("etc/roles.conf", B("roles = { };\n"), 0644);
	put("etc/users", B("alice:x:admins\n"), 0600);
	put("etc/emailauthd.conf", B(conf), 0644);
	if (cfg_load(tpath("etc/emailauthd.conf"), &c, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(c->path, tpath("etc/emailauthd.conf"));
	assert_string_equal(c->roles_file, tpath("etc/roles.conf"));
	assert_string_equal(c->file.path, tpath("etc/users"));
	cfg_free(c);

	/* The same file elsewhere: relative to its own directory again. */
	assert_int_equal(mkdir(tpath("etc2"), 0700), 0);
	put("etc2/emailauthd.conf", B(conf), 0644);
	xsnprintf(want, sizeof(want), "%s:5: 'roles_file': cannot read file %s",
	    tpath("etc2/emailauthd.conf"), tpath("etc2/roles.conf"));
	c = &sentinel;
	assert_int_equal(
	    cfg_load(tpath("etc2/emailauthd.conf"), &c, err, sizeof(err)), -1);
	assert_ptr_equal(c, &sentinel);
	assert_string_equal(err, want);
}

static void
test_load_file_errors(void **state)
{
	/* msg follows the path. */
	static const struct {
		const char *name, *data;
		size_t n;
		const char *msg;
	} cases[] = {
	    {"none.conf", NULL, 0, ": cannot open: No such file or directory"},
	    {"typo.conf", B("# a comment\nisuer = \"https://a\";\n"),
		":2: unknown setting 'isuer'"},
	    {"nul.conf", B("issuer = \"a\0b\";\n"), ": contains a NUL byte"},
	};

	char err[ERR_MAX], want[ERR_MAX];
	struct cfg *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].data != NULL)
			put(cases[i].name, cases[i].data, cases[i].n, 0644);
		xsnprintf(want, sizeof(want), "%s%s", tpath(cases[i].name),
		    cases[i].msg);
		c = &sentinel;
		assert_int_equal(
		    cfg_load(tpath(cases[i].name), &c, err, sizeof(err)), -1);
		assert_ptr_equal(c, &sentinel);
		assert_string_equal(err, want);
	}
}

/* session.*: SQLite by default; Redis with its URI parsed, or refused. */
static void
test_session_store(void **state)
{
	static const struct {
		const char *extra;
		const char *host;
		long long port, db;
	} good[] = {
	    {"session = { backend = \"redis\"; };", "127.0.0.1", 6379, 0},
	    {"session = { backend = \"redis\";\n"
	     "\turi = \"redis://redis.internal:6380/3\"; };",
		"redis.internal", 6380, 3},
	    {"session = { backend = \"redis\"; uri = \"redis://[::1]/\"; };",
		"::1", 6379, 0},
	    {"session = { backend = \"redis\"; uri = \"redis://h:1\";\n"
	     "\ttls = false; password_file = \"$T/ldap.secret\"; };",
		"h", 1, 0},
	};

	static const struct {
		const char *extra;
		int line;
		const char *msg;
	} bad[] = {
	    {"session = { backend = \"memcached\"; };", 7,
		"'session.backend' must be \"sqlite\" or \"redis\""},
	    {"session = { backend = \"redis\";\n\ttls = true; };", 8,
		"'session.tls': the Redis client library of this system "
		"(hiredis 0.14) has no TLS"},
	    {"session = { uri = \"redis://h\"; };", 7,
		"'session.uri' needs 'session.backend = \"redis\"'"},
	    {"session = {\n\tpassword_file = \"$T/ldap.secret\"; };", 8,
		"'session.password_file' needs 'session.backend = \"redis\"'"},
	    {"session = { tls = false; };", 7,
		"'session.tls' needs 'session.backend = \"redis\"'"},
	    {"session = { backend = \"redis\";\n\tpassword_file = 3; };", 8,
		"'session.password_file' must be a string"},
	    {"session = { backend = \"redis\"; sentinel = \"x\"; };", 7,
		"unknown setting 'sentinel'"},
	};

	static const char *const bad_uri[] = {"rediss://h:6379",
	    "redis://:pw@h:6379", "redis://user:pw@h", "redis://",
	    "redis://h:0", "redis://h:65536", "redis://h:x", "redis://h/1024",
	    "redis://h/-1", "redis://h/0?x=1", "redis://h/0/1", "redis://[::1",
	    "http://h", "redis://h:6379#f", "redis://h 1", "redis://h:+6379",
	    "redis://h/+1", "redis://h:\n6379"};
	char err[ERR_MAX], text[512];
	struct cfg *c;
	size_t i;

	(void)state;
	if (load(0, "", NULL, &c, err) != 0)
		fail_msg("refused: %s", err);
	assert_string_equal(c->session.backend, "sqlite");
	assert_null(c->session.host);
	assert_null(c->session.password_file);
	assert_int_equal(c->session.tls, 0);
	cfg_free(c);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (load(0, good[i].extra, NULL, &c, err) != 0)
			fail_msg("refused: %s\n  from: %s", err, good[i].extra);
		assert_string_equal(c->session.backend, "redis");
		assert_string_equal(c->session.host, good[i].host);
		assert_int_equal(c->session.port, good[i].port);
		assert_int_equal(c->session.db, good[i].db);
		cfg_free(c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(0, bad[i].extra, NULL, bad[i].line, bad[i].msg);
	for (i = 0; i < sizeof(bad_uri) / sizeof(bad_uri[0]); i++) {
		xsnprintf(text, sizeof(text),
		    "session = { backend = \"redis\"; uri = \"%s\"; };",
		    bad_uri[i]);
		expect_error(0, text, NULL, 7,
		    "'session.uri' must be redis://HOST[:PORT][/DB] without a "
		    "password");
	}
}

static void
test_has_backend(void **state)
{
	static const char *const names[] = {
	    "pam", "file", "ldap", "PAM", "fil", "files", ""};
	static const int want[] = {1, 1, 0, 0, 0, 0, 0};
	char err[ERR_MAX];
	struct cfg *c;
	int got[7];
	size_t i;

	(void)state;
	assert_int_equal(load(S_BACKENDS, "backends = [ \"pam\", \"file\" ];",
			     NULL, &c, err),
	    0);
	for (i = 0; i < 7; i++)
		got[i] = cfg_has_backend(c, names[i]);
	cfg_free(c);
	for (i = 0; i < 7; i++)
		if (got[i] != want[i])
			fail_msg("cfg_has_backend(\"%s\"): got %d", names[i],
			    got[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_loads),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_regression_no_tokens_group),
	    cmocka_unit_test(test_secret_files),
	    cmocka_unit_test(test_load_relative_paths),
	    cmocka_unit_test(test_load_file_errors),
	    cmocka_unit_test(test_session_store),
	    cmocka_unit_test(test_has_backend),
	};

	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
