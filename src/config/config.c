/*
 * emailauthd.conf -> struct cfg.
 *
 * The file is read once into memory, scanned for the integer literals
 * libconfig 1.5 silently wraps (see ../shared/reference/libraries.md §5),
 * parsed with libconfig, and then walked against a table of every known
 * setting: an unknown name, a wrong type or an out-of-range number is an
 * error with its line. Every string is copied, so nothing points into the
 * libconfig tree after cfg_load() returns.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "config/config.h"
#include "config/lcfg.h"
#include "log/log.h"
#include "util/sec.h"

#define CFG_FILE_MAX (1024 * 1024)
#define CFG_STR_MAX  4096
#define CFG_LIST_MAX 256

enum kind {
	K_GROUP,
	K_STR,
	K_INT,
	K_BOOL,
	K_LIST,
};

#define F_REQ    0x01 /* required when its group is in use */
#define F_SECRET 0x02 /* a secret file: must exist, mode 0600 or stricter */
#define F_FILE   0x04 /* a file that must exist and be readable */

struct key {
	const char *path;
	enum kind kind;
	size_t off;
	long long min, max, def_int;
	const char *def_str;
	unsigned int flags;
};

#define O(m) offsetof(struct cfg, m)
#define GROUP(p)                                \
	{                                       \
		p, K_GROUP, 0, 0, 0, 0, NULL, 0 \
	}
#define STR(p, m, def, fl)                       \
	{                                        \
		p, K_STR, O(m), 0, 0, 0, def, fl \
	}
#define INT(p, m, lo, hi, def)                       \
	{                                            \
		p, K_INT, O(m), lo, hi, def, NULL, 0 \
	}
#define BOOL(p, m, def)                             \
	{                                           \
		p, K_BOOL, O(m), 0, 1, def, NULL, 0 \
	}
#define LIST(p, m, fl)                             \
	{                                          \
		p, K_LIST, O(m), 0, 0, 0, NULL, fl \
	}

static const struct key keys[] = {
    GROUP("listen"),
    STR("listen.address", listen.address, "127.0.0.1", 0),
    INT("listen.port", listen.port, 0, 65535, 8080),
    GROUP("listen.tls"),
    STR("listen.tls.cert", listen.tls_cert, NULL, F_REQ | F_FILE),
    STR("listen.tls.key", listen.tls_key, NULL, F_REQ | F_SECRET),
    LIST("listen.trusted_proxies", listen.trusted_proxies_text, 0),
    INT("listen.max_body", listen.max_body, 256, 1048576, 8192),
    INT("listen.max_header_bytes", listen.max_header_bytes, 4096, 1048576,
	16384),
    INT("listen.max_connections", listen.max_connections, 8, 100000, 1000),
    INT("listen.per_ip_connections", listen.per_ip_connections, 1, 100000, 32),
    INT("listen.timeout", listen.timeout, 1, 3600, 15),
    INT("listen.threads", listen.threads, 0, 256, 0),
    BOOL("listen.behind_tls", listen.behind_tls, 0),
    LIST("listen.metrics_allow", listen.metrics_allow_text, 0),
    LIST("listen.revocations_allow", listen.revocations_allow_text, 0),

    GROUP("cors"),
    LIST("cors.origins", cors.origins, 0),
    BOOL("cors.allow_credentials", cors.allow_credentials, 0),
    INT("cors.max_age", cors.max_age, 0, 86400, 600),

    GROUP("log"),
    STR("log.level", log.level, "info", 0),
    BOOL("log.access", log.access, 1),

    GROUP("audit"),
    STR("audit.file", audit.file, NULL, 0),
    BOOL("audit.syslog", audit.syslog, 0),

    GROUP("limits"),
    INT("limits.max_keys", limits.max_keys, 1000, 10000000, 100000),
    GROUP("limits.auth"),
    INT("limits.auth.rate", limits.auth.rate, 0, 100000, 5),
    INT("limits.auth.burst", limits.auth.burst, 1, 100000, 20),
    GROUP("limits.api"),
    INT("limits.api.rate", limits.api.rate, 0, 1000000, 500),
    INT("limits.api.burst", limits.api.burst, 1, 1000000, 1000),
    GROUP("limits.ops"),
    INT("limits.ops.rate", limits.ops.rate, 0, 100000, 50),
    INT("limits.ops.burst", limits.ops.burst, 1, 100000, 100),
    GROUP("limits.login"),
    INT("limits.login.pair", limits.login.pair, 0, 1000, 5),
    INT("limits.login.user", limits.login.user, 0, 100000, 20),
    INT("limits.login.address", limits.login.address, 0, 1000000, 30),
    INT("limits.login.window", limits.login.window, 60, 86400, 3600),
    INT("limits.login.delay", limits.login.delay, 1, 60, 1),
    INT("limits.login.delay_max", limits.login.delay_max, 1, 86400, 900),

    GROUP("session"),
    STR("session.backend", session.backend, "sqlite", 0),
    STR("session.uri", session.uri, "redis://127.0.0.1:6379/0", 0),
    STR("session.password_file", session.password_file, NULL, F_SECRET),
    BOOL("session.tls", session.tls, 0),

    GROUP("workers"),
    INT("workers.threads", workers.threads, 1, 256, 8),
    INT("workers.queue", workers.queue, 1, 100000, 256),

    STR("issuer", issuer, NULL, F_REQ),
    STR("state_dir", state_dir, "/var/lib/emailauth", 0),
    LIST("backends", backends, F_REQ),
    STR("roles_file", roles_file, "/etc/emailauth/roles.conf", F_FILE),

    GROUP("tokens"),
    STR("tokens.algorithm", tokens.algorithm, "ES256", 0),
    STR("tokens.audience", tokens.audience, NULL, F_REQ),
    INT("tokens.access_ttl", tokens.access_ttl, 30, 86400, 300),
    INT("tokens.refresh_ttl", tokens.refresh_ttl, 60, 31536000, 28800),
    INT("tokens.refresh_idle", tokens.refresh_idle, 60, 31536000, 3600),
    INT("tokens.leeway", tokens.leeway, 0, 300, 30),
    INT("tokens.verify_cache", tokens.verify_cache, 64, 16777216, 10000),

    GROUP("ldap"),
    LIST("ldap.uri", ldap.uri, F_REQ),
    BOOL("ldap.starttls", ldap.starttls, 1),
    STR("ldap.ca_file", ldap.ca_file, NULL, F_FILE),
    BOOL("ldap.insecure", ldap.insecure, 0),
    STR("ldap.bind_dn", ldap.bind_dn, NULL, 0),
    STR("ldap.bind_password_file", ldap.bind_password_file, NULL, F_SECRET),
    STR("ldap.user_base", ldap.user_base, NULL, F_REQ),
    STR("ldap.user_filter", ldap.user_filter,
	"(&(objectClass=inetOrgPerson)(uid={username}))", 0),
    STR("ldap.group_base", ldap.group_base, NULL, 0),
    STR("ldap.group_filter", ldap.group_filter,
	"(&(objectClass=groupOfNames)(member={dn}))", 0),
    STR("ldap.group_name_attribute", ldap.group_name_attribute, "cn", 0),
    BOOL("ldap.memberof", ldap.memberof, 1),
    INT("ldap.nested_depth", ldap.nested_depth, 0, 10, 3),
    GROUP("ldap.attributes"),
    STR("ldap.attributes.username", ldap.attr_username, "uid", 0),
    STR("ldap.attributes.name", ldap.attr_name, "displayName", 0),
    STR("ldap.attributes.email", ldap.attr_email, "mail", 0),
    INT("ldap.network_timeout", ldap.network_timeout, 1, 60, 3),
    INT("ldap.timeout", ldap.timeout, 1, 120, 5),
    INT("ldap.idle_timeout", ldap.idle_timeout, 10, 86400, 300),
    INT("ldap.page_size", ldap.page_size, 0, 10000, 500),

    GROUP("pam"),
    STR("pam.service", pam.service, "emailauth", 0),

    GROUP("file"),
    STR("file.path", file.path, NULL, F_REQ | F_SECRET),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct loader {
	const char *name; /* file name for messages */
	const char *dir;  /* relative file paths resolve against it; or NULL */
	char *err;
	size_t errlen;
	struct cfg *c;
	int line[NKEYS]; /* 0: not set in the file */
};

/* An error with its line, in the loader's message buffer. */
#define fail(ld, line, ...) \
	lcfg_error((ld)->err, (ld)->errlen, (ld)->name, (line), __VA_ARGS__)

static const struct key *
find_key(const char *path, size_t *idx_r)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].path, path) == 0) {
			*idx_r = i;
			return &keys[i];
		}
	}
	return NULL;
}

static void *
field(struct cfg *c, const struct key *k)
{
	return (char *)c + k->off;
}

static char *
copy_str(struct loader *ld, const config_setting_t *s, const char *path)
{
	const char *v = config_setting_get_string(s);
	char *r;

	if (v == NULL) {
		fail(ld, config_setting_source_line(s), "'%s' must be a string",
		    path);
		return NULL;
	}
	if (strlen(v) > CFG_STR_MAX) {
		fail(ld, config_setting_source_line(s), "'%s' is too long",
		    path);
		return NULL;
	}
	if ((r = strdup(v)) == NULL)
		fail(ld, 0, "out of memory");
	return r;
}

static int
store(struct loader *ld, const struct key *k, const config_setting_t *s,
    const char *path)
{
	int line = config_setting_source_line(s), type = config_setting_type(s);
	struct cfg_strlist *l;
	long long v;
	int i, n;

	switch (k->kind) {
	case K_STR:
		if (type != CONFIG_TYPE_STRING) {
			fail(ld, line, "'%s' must be a string", path);
			return -1;
		}
		if ((*(char **)field(ld->c, k) = copy_str(ld, s, path)) == NULL)
			return -1;
		return 0;
	case K_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
			fail(ld, line, "'%s' must be an integer", path);
			return -1;
		}
		v = config_setting_get_int64(s);
		if (v < k->min || v > k->max) {
			fail(ld, line, "'%s' must be between %lld and %lld",
			    path, k->min, k->max);
			return -1;
		}
		*(long long *)field(ld->c, k) = v;
		return 0;
	case K_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			fail(ld, line, "'%s' must be true or false", path);
			return -1;
		}
		*(int *)field(ld->c, k) = config_setting_get_bool(s);
		return 0;
	case K_LIST:
		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
			fail(ld, line, "'%s' must be a list of strings", path);
			return -1;
		}
		n = config_setting_length(s);
		if (n > CFG_LIST_MAX) {
			fail(ld, line, "'%s' has more than %d entries", path,
			    CFG_LIST_MAX);
			return -1;
		}
		l = field(ld->c, k);
		if (n > 0 &&
		    (l->v = calloc((size_t)n, sizeof(char *))) == NULL) {
			fail(ld, 0, "out of memory");
			return -1;
		}
		for (i = 0; i < n; i++) {
			const config_setting_t *e =
			    config_setting_get_elem(s, (unsigned int)i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING ||
			    *config_setting_get_string(e) == '\0') {
				fail(ld, config_setting_source_line(e),
				    "'%s' must be a list of non-empty strings",
				    path);
				return -1;
			}
			if ((l->v[l->n] = copy_str(ld, e, path)) == NULL)
				return -1;
			l->n++;
		}
		return 0;
	case K_GROUP:
		break;
	}
	return -1;
}

static int
walk(struct loader *ld, const config_setting_t *group, const char *prefix)
{
	char path[256];
	const struct key *k;
	size_t idx;
	int i, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		const config_setting_t *s =
		    config_setting_get_elem(group, (unsigned int)i);
		const char *name = config_setting_name(s);
		int line = config_setting_source_line(s);
		int w;

		if (name == NULL)
			continue;
		w = snprintf(path, sizeof(path), "%s%s%s", prefix,
		    *prefix ? "." : "", name);
		if (w < 0 || (size_t)w >= sizeof(path) ||
		    (k = find_key(path, &idx)) == NULL) {
			fail(ld, line, "unknown setting '%.100s'", name);
			return -1;
		}
		ld->line[idx] = line;
		if (k->kind == K_GROUP) {
			if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
				fail(ld, line, "'%s' must be a group { ... }",
				    path);
				return -1;
			}
			if (walk(ld, s, path) == -1)
				return -1;
			continue;
		}
		if (store(ld, k, s, path) == -1)
			return -1;
	}
	return 0;
}

/*
 * 1 if the group holding key k is in use, so its F_REQ keys are needed:
 * a backend's group when the backend is listed, listen.tls when written,
 * every other group always.
 */
static int
group_in_use(struct loader *ld, const struct key *k)
{
	size_t idx;

	if (strncmp(k->path, "ldap.", 5) == 0)
		return cfg_has_backend(ld->c, "ldap");
	if (strncmp(k->path, "file.", 5) == 0)
		return cfg_has_backend(ld->c, "file");
	if (strncmp(k->path, "pam.", 4) == 0)
		return cfg_has_backend(ld->c, "pam");
	if (strncmp(k->path, "session.", 8) == 0)
		return ld->c->session.backend != NULL &&
		    strcmp(ld->c->session.backend, "redis") == 0;
	if (strncmp(k->path, "listen.tls.", 11) == 0)
		return find_key("listen.tls", &idx) != NULL &&
		    ld->line[idx] > 0;
	return 1;
}

static int
defaults(struct loader *ld)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];

		if (ld->line[i] > 0 || k->kind == K_GROUP)
			continue;
		if ((k->flags & F_REQ) && group_in_use(ld, k)) {
			fail(ld, 0, "missing setting '%s'", k->path);
			return -1;
		}
		if (k->kind == K_STR && k->def_str != NULL &&
		    (*(char **)field(ld->c, k) = strdup(k->def_str)) == NULL) {
			fail(ld, 0, "out of memory");
			return -1;
		}
		if (k->kind == K_INT)
			*(long long *)field(ld->c, k) = k->def_int;
		if (k->kind == K_BOOL)
			*(int *)field(ld->c, k) = (int)k->def_int;
	}
	return 0;
}

static int
line_of(struct loader *ld, const char *path)
{
	size_t idx;

	return find_key(path, &idx) != NULL ? ld->line[idx] : 0;
}

/* Makes a relative file path relative to the config file's directory. */
static int
resolve(struct loader *ld, char **pp)
{
	char *abs;
	size_t n;

	if (ld->dir == NULL || (*pp)[0] == '/')
		return 0;
	n = strlen(ld->dir) + strlen(*pp) + 2;
	if ((abs = malloc(n)) == NULL)
		return -1;
	snprintf(abs, n, "%s/%s", ld->dir, *pp);
	free(*pp);
	*pp = abs;
	return 0;
}

static int
check_files(struct loader *ld)
{
	char msg[512];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const char *p;
		struct stat st;

		if (k->kind != K_STR || !(k->flags & (F_FILE | F_SECRET)))
			continue;
		if (*(char **)field(ld->c, k) == NULL)
			continue;
		if (resolve(ld, (char **)field(ld->c, k)) == -1) {
			fail(ld, 0, "out of memory");
			return -1;
		}
		p = *(char **)field(ld->c, k);
		if (!group_in_use(ld, k))
			continue;
		if (k->flags & F_SECRET) {
			if (sec_file_mode_ok(p, msg, sizeof(msg)) == -1) {
				fail(ld, ld->line[i], "'%s': %s", k->path, msg);
				return -1;
			}
		} else if (stat(p, &st) == -1 || !S_ISREG(st.st_mode) ||
		    access(p, R_OK) == -1) {
			fail(ld, ld->line[i], "'%s': cannot read file %s",
			    k->path, p);
			return -1;
		} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
			/* The role map is the authorization policy; nobody but
			 * its owner may change any of these files. */
			fail(ld, ld->line[i],
			    "'%s': %s is writable by group or others (mode "
			    "%04o)",
			    k->path, p, (unsigned)(st.st_mode & 07777));
			return -1;
		}
	}
	return 0;
}

static int
parse_cidrs(struct loader *ld, const struct cfg_strlist *text,
    struct cfg_cidrs *r, const char *path)
{
	size_t i;

	if (text->n == 0)
		return 0;
	if ((r->v = calloc(text->n, sizeof(*r->v))) == NULL) {
		fail(ld, 0, "out of memory");
		return -1;
	}
	for (i = 0; i < text->n; i++) {
		if (net_cidr_parse(text->v[i], &r->v[i]) == -1) {
			fail(ld, line_of(ld, path),
			    "'%s': '%.64s' is not an address or CIDR range",
			    path, text->v[i]);
			return -1;
		}
		r->n++;
	}
	return 0;
}

static int
origin_ok(const char *o)
{
	const char *host;

	if (strncmp(o, "https://", 8) == 0)
		host = o + 8;
	else if (strncmp(o, "http://", 7) == 0)
		host = o + 7;
	else
		return 0;
	if (*host == '\0' || strpbrk(host, "/?#*@ \t") != NULL)
		return 0;
	return 1;
}

/*
 * Parses a redis://host[:port][/db] URI into c->session.host, port, db:
 * host a name or an address ([v6] in brackets), no user or password (the
 * password comes from session.password_file), no query. 0 or -1.
 */
static int
parse_redis_uri(struct cfg *c, const char *u)
{
	const char *h, *e, *p;
	char *end;
	long long port = 6379, db = 0;
	size_t hl;

	if (strncmp(u, "redis://", 8) != 0)
		return -1;
	h = u + 8;
	if (*h == '[') {
		if ((e = strchr(h, ']')) == NULL)
			return -1;
		h++;
		hl = (size_t)(e - h);
		p = e + 1;
	} else {
		hl = strcspn(h, ":/");
		p = h + hl;
	}
	if (hl == 0 || hl > 253 || strpbrk(u + 8, "@?# \t") != NULL)
		return -1;
	/* Digits only: strtoll() would take a sign or spaces. */
	if ((*p == ':' || *p == '/') && p[1] != '\0' &&
	    (p[1] < '0' || p[1] > '9'))
		return -1;
	if (*p == ':') {
		port = strtoll(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return -1;
		p = end;
	}
	if (*p == '/' && p[1] != '\0') {
		db = strtoll(p + 1, &end, 10);
		if (end == p + 1 || db < 0 || db > 1023)
			return -1;
		p = end;
	} else if (*p == '/')
		p++;
	if (*p != '\0' || (c->session.host = strndup(h, hl)) == NULL)
		return -1;
	c->session.port = port;
	c->session.db = db;
	return 0;
}

/* The session store settings: the backend, and Redis's when used. */
static int
session_ok(struct loader *ld)
{
	struct cfg *c = ld->c;
	static const char *const redis_only[] = {
	    "session.uri", "session.password_file", "session.tls"};
	size_t i;

	if (strcmp(c->session.backend, "sqlite") == 0) {
		/* Redis settings without the Redis store are a mistake that
		 * would leave each node with its own sessions: refuse. */
		for (i = 0; i < 3; i++)
			if (line_of(ld, redis_only[i]) > 0) {
				fail(ld, line_of(ld, redis_only[i]),
				    "'%s' needs 'session.backend = \"redis\"'",
				    redis_only[i]);
				return -1;
			}
		return 0;
	}
	if (strcmp(c->session.backend, "redis") != 0) {
		fail(ld, line_of(ld, "session.backend"),
		    "'session.backend' must be \"sqlite\" or \"redis\"");
		return -1;
	}
	if (c->session.tls) {
		fail(ld, line_of(ld, "session.tls"),
		    "'session.tls': the Redis client library of this system "
		    "(hiredis 0.14) has no TLS; reach Redis over loopback or a "
		    "tunnel (docs/cluster.md)");
		return -1;
	}
	if (parse_redis_uri(c, c->session.uri) == -1) {
		fail(ld, line_of(ld, "session.uri"),
		    "'session.uri' must be redis://HOST[:PORT][/DB] without a "
		    "password (use 'session.password_file'; rediss:// is not "
		    "supported)");
		return -1;
	}
	return 0;
}

static int
validate(struct loader *ld)
{
	struct cfg *c = ld->c;
	enum log_level lvl;
	unsigned char a[16];
	size_t i, j;

	if (net_addr_parse(c->listen.address, a) == -1) {
		fail(ld, line_of(ld, "listen.address"),
		    "'listen.address' must be an IPv4 or IPv6 address");
		return -1;
	}
	if (parse_cidrs(ld, &c->listen.trusted_proxies_text,
		&c->listen.trusted_proxies, "listen.trusted_proxies") == -1)
		return -1;
	if (line_of(ld, "listen.metrics_allow") == 0) {
		static const char *const def[] = {"127.0.0.0/8", "::1/128"};

		c->listen.metrics_allow_text.v = calloc(2, sizeof(char *));
		if (c->listen.metrics_allow_text.v == NULL)
			goto nomem;
		for (i = 0; i < 2; i++) {
			c->listen.metrics_allow_text.v[i] = strdup(def[i]);
			if (c->listen.metrics_allow_text.v[i] == NULL)
				goto nomem;
			c->listen.metrics_allow_text.n++;
		}
	}
	if (parse_cidrs(ld, &c->listen.metrics_allow_text,
		&c->listen.metrics_allow, "listen.metrics_allow") == -1)
		return -1;
	if (line_of(ld, "listen.revocations_allow") == 0) {
		static const char *const def[] = {"127.0.0.0/8", "::1/128"};

		c->listen.revocations_allow_text.v = calloc(2, sizeof(char *));
		if (c->listen.revocations_allow_text.v == NULL)
			goto nomem;
		for (i = 0; i < 2; i++) {
			c->listen.revocations_allow_text.v[i] = strdup(def[i]);
			if (c->listen.revocations_allow_text.v[i] == NULL)
				goto nomem;
			c->listen.revocations_allow_text.n++;
		}
	}
	if (parse_cidrs(ld, &c->listen.revocations_allow_text,
		&c->listen.revocations_allow, "listen.revocations_allow") == -1)
		return -1;
	for (i = 0; i < c->cors.origins.n; i++) {
		if (!origin_ok(c->cors.origins.v[i])) {
			fail(ld, line_of(ld, "cors.origins"),
			    "'cors.origins': '%.64s' is not an exact origin "
			    "(scheme://host[:port], no path, no wildcard)",
			    c->cors.origins.v[i]);
			return -1;
		}
	}
	if (log_level_parse(c->log.level, &lvl) == -1) {
		fail(ld, line_of(ld, "log.level"),
		    "'log.level' must be debug, info, warn or error");
		return -1;
	}
	if (c->audit.file != NULL && c->audit.file[0] != '/') {
		fail(ld, line_of(ld, "audit.file"),
		    "'audit.file' must be an absolute path");
		return -1;
	}
	if ((strncmp(c->issuer, "https://", 8) != 0 &&
		strncmp(c->issuer, "http://", 7) != 0) ||
	    strpbrk(c->issuer, "?# \t") != NULL || strlen(c->issuer) > 512) {
		fail(ld, line_of(ld, "issuer"),
		    "'issuer' must be an https:// (or, for tests, http://) "
		    "URL without query or fragment");
		return -1;
	}
	if (c->state_dir[0] != '/') {
		fail(ld, line_of(ld, "state_dir"),
		    "'state_dir' must be an absolute path");
		return -1;
	}
	if (c->backends.n == 0) {
		fail(ld, line_of(ld, "backends"),
		    "'backends' must name at least one backend");
		return -1;
	}
	for (i = 0; i < c->backends.n; i++) {
		const char *b = c->backends.v[i];

		if (strcmp(b, "ldap") != 0 && strcmp(b, "pam") != 0 &&
		    strcmp(b, "file") != 0) {
			fail(ld, line_of(ld, "backends"),
			    "'backends': unknown backend '%.32s' (ldap, pam "
			    "or file)",
			    b);
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(b, c->backends.v[j]) == 0) {
				fail(ld, line_of(ld, "backends"),
				    "'backends' names '%s' twice", b);
				return -1;
			}
		}
	}
	if (strcmp(c->tokens.algorithm, "ES256") != 0 &&
	    strcmp(c->tokens.algorithm, "RS256") != 0) {
		fail(ld, line_of(ld, "tokens.algorithm"),
		    "'tokens.algorithm' must be ES256 or RS256");
		return -1;
	}
	if (c->tokens.refresh_idle > c->tokens.refresh_ttl) {
		fail(ld, line_of(ld, "tokens.refresh_idle"),
		    "'tokens.refresh_idle' must not exceed "
		    "'tokens.refresh_ttl'");
		return -1;
	}
	if (c->tokens.access_ttl > c->tokens.refresh_ttl) {
		fail(ld, line_of(ld, "tokens.access_ttl"),
		    "'tokens.access_ttl' must not exceed 'tokens.refresh_ttl'");
		return -1;
	}
	if (session_ok(ld) == -1)
		return -1;
	if (cfg_has_backend(c, "ldap")) {
		for (i = 0; i < c->ldap.uri.n; i++) {
			const char *u = c->ldap.uri.v[i];
			int plain = strncmp(u, "ldap://", 7) == 0;

			if ((!plain && strncmp(u, "ldaps://", 8) != 0) ||
			    strpbrk(u, " \t,") != NULL) {
				fail(ld, line_of(ld, "ldap.uri"),
				    "'ldap.uri': '%.64s' must be one ldap:// "
				    "or ldaps:// URI per entry",
				    u);
				return -1;
			}
			if (plain && !c->ldap.starttls && !c->ldap.insecure) {
				fail(ld, line_of(ld, "ldap.starttls"),
				    "'ldap.uri' has ldap:// but 'ldap.starttls' "
				    "is false: passwords would cross the "
				    "network in clear text (set "
				    "'ldap.insecure = true' only for tests)");
				return -1;
			}
		}
		if (c->ldap.uri.n == 0) {
			fail(ld, line_of(ld, "ldap.uri"),
			    "'ldap.uri' must list at least one server");
			return -1;
		}
		if (c->ldap.ca_file == NULL && !c->ldap.insecure) {
			fail(ld, 0,
			    "missing setting 'ldap.ca_file' (the CA that signed "
			    "the directory's certificate)");
			return -1;
		}
		if ((c->ldap.bind_dn == NULL) !=
		    (c->ldap.bind_password_file == NULL)) {
			fail(ld, line_of(ld, "ldap.bind_dn"),
			    "'ldap.bind_dn' and 'ldap.bind_password_file' go "
			    "together");
			return -1;
		}
		if (strstr(c->ldap.user_filter, "{username}") == NULL) {
			fail(ld, line_of(ld, "ldap.user_filter"),
			    "'ldap.user_filter' must contain {username}");
			return -1;
		}
		if (c->ldap.group_base != NULL &&
		    strstr(c->ldap.group_filter, "{dn}") == NULL &&
		    strstr(c->ldap.group_filter, "{username}") == NULL) {
			fail(ld, line_of(ld, "ldap.group_filter"),
			    "'ldap.group_filter' must contain {dn} or "
			    "{username}");
			return -1;
		}
	}
	c->http.trusted_proxies = c->listen.trusted_proxies.v;
	c->http.n_trusted_proxies = c->listen.trusted_proxies.n;
	c->http.cors_origins = c->cors.origins.v;
	c->http.n_cors_origins = c->cors.origins.n;
	c->http.cors_credentials = c->cors.allow_credentials;
	c->http.cors_max_age = c->cors.max_age;
	c->http.hsts = c->listen.tls_cert != NULL || c->listen.behind_tls;
	c->http.max_body = (size_t)c->listen.max_body;
	return check_files(ld);
nomem:
	fail(ld, 0, "out of memory");
	return -1;
}

static void
strlist_free(struct cfg_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

void
cfg_free(struct cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].kind == K_STR)
			free(*(char **)field(c, &keys[i]));
		else if (keys[i].kind == K_LIST)
			strlist_free(field(c, &keys[i]));
	}
	free(c->listen.trusted_proxies.v);
	free(c->listen.metrics_allow.v);
	free(c->session.host);
	free(c->listen.revocations_allow.v);
	free(c->path);
	free(c);
}

static int
load_text(const char *text, const char *name, const char *dir, struct cfg **r,
    char *err, size_t errlen)
{
	struct loader ld = {0};
	config_t lc;
	int ret = -1;

	ld.name = name;
	ld.dir = dir;
	ld.err = err;
	ld.errlen = errlen;
	config_init(&lc);
	if (lcfg_prescan(text, name, 1, err, errlen) == -1)
		goto out;
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		fail(&ld, config_error_line(&lc), "%s", config_error_text(&lc));
		goto out;
	}
	if ((ld.c = calloc(1, sizeof(*ld.c))) == NULL ||
	    (ld.c->path = strdup(name)) == NULL) {
		fail(&ld, 0, "out of memory");
		goto out;
	}
	if (walk(&ld, config_root_setting(&lc), "") == -1 ||
	    defaults(&ld) == -1 || validate(&ld) == -1)
		goto out;
	*r = ld.c;
	ld.c = NULL;
	ret = 0;
out:
	cfg_free(ld.c);
	config_destroy(&lc);
	return ret;
}

int
cfg_load_string(const char *text, const char *name, struct cfg **r, char *err,
    size_t errlen)
{
	return load_text(text, name, NULL, r, err, errlen);
}

int
cfg_load(const char *path, struct cfg **r, char *err, size_t errlen)
{
	char *text, *dir = NULL, *slash;
	int ret = -1;

	if ((text = lcfg_read(path, CFG_FILE_MAX, err, errlen)) == NULL)
		return -1;
	if ((dir = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	ret = load_text(text, path, dir, r, err, errlen);
out:
	free(dir);
	free(text);
	return ret;
}

int
cfg_has_backend(const struct cfg *c, const char *b)
{
	size_t i;

	for (i = 0; i < c->backends.n; i++)
		if (strcmp(c->backends.v[i], b) == 0)
			return 1;
	return 0;
}
