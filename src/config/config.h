/*
 * emailauthd.conf (libconfig syntax) read into one validated, immutable
 * struct. The key names are those of SPEC.md; docs/configuration.md and
 * etc/emailauthd.conf describe each one.
 *
 * A loaded struct cfg is never modified. SIGHUP loads a new one (with
 * everything it names, src/daemon/runtime.h) and swaps it in whole.
 */
#ifndef EA_CONFIG_CONFIG_H
#define EA_CONFIG_CONFIG_H

#include <stddef.h>

#include "http/policy.h"
#include "util/net.h"

struct cfg_strlist {
	char **v;
	size_t n;
};

struct cfg_cidrs {
	struct net_cidr *v;
	size_t n;
};

struct cfg {
	char *path; /* the file this was read from */

	struct {
		char *address;
		long long port;
		char *tls_cert; /* NULL: plain HTTP */
		char *tls_key;
		struct cfg_strlist trusted_proxies_text;
		struct cfg_cidrs trusted_proxies;
		long long max_body;
		long long max_header_bytes; /* per-connection memory */
		long long max_connections;
		long long per_ip_connections;
		long long timeout;
		long long threads; /* 0: one per CPU */
		int behind_tls;    /* send HSTS although we serve HTTP */
		struct cfg_strlist metrics_allow_text;
		struct cfg_cidrs metrics_allow;
		/* GET /v1/revocations without a token (default loopback) */
		struct cfg_strlist revocations_allow_text;
		struct cfg_cidrs revocations_allow;
	} listen;

	struct {
		struct cfg_strlist origins;
		int allow_credentials;
		long long max_age;
	} cors;

	struct {
		char *level;
		int access;
	} log;

	struct {
		long long max_keys; /* per limiter table */

		struct {
			long long rate, burst; /* per client address */
		} auth, api, ops;

		struct {
			long long pair, user, address; /* failures allowed */
			long long window, delay, delay_max;
		} login;
	} limits;

	struct {
		char *file; /* the hash-chained audit trail, or NULL */
		int syslog; /* also to syslog, LOG_AUTHPRIV */
	} audit;

	struct {
		char *backend;       /* "sqlite" (state_dir) or "redis" */
		char *uri;           /* redis://host[:port][/db] */
		char *password_file; /* Redis AUTH password, or NULL */
		int tls;             /* refused: hiredis 0.14 has no TLS */
		char *host;          /* parsed from uri */
		long long port, db;
	} session;

	struct {
		long long threads; /* blocking sign-in work */
		long long queue;   /* jobs waiting; beyond: 503 */
	} workers;

	char *issuer;
	char *state_dir;
	struct cfg_strlist backends;
	char *roles_file;

	struct {
		char *algorithm;
		char *audience;
		long long access_ttl;
		long long refresh_ttl;
		long long refresh_idle;
		long long leeway;
		long long verify_cache; /* verified tokens kept by /v1/verify */
	} tokens;

	struct {
		struct cfg_strlist uri;
		int starttls;
		char *ca_file;
		int insecure;
		char *bind_dn;
		char *bind_password_file;
		char *user_base;
		char *user_filter;
		char *group_base;
		char *group_filter;
		char *group_name_attribute;
		int memberof;
		long long nested_depth;
		char *attr_username;
		char *attr_name;
		char *attr_email;
		long long network_timeout;
		long long timeout;
		long long idle_timeout;
		long long page_size;
	} ldap;

	struct {
		char *service;
	} pam;

	struct {
		char *path;
	} file;

	struct http_policy http; /* derived from listen and cors */
};

/*
 * Reads and validates path. On success returns 0 and a new struct in *r
 * (free with cfg_free()). On failure returns -1 and
 * writes "FILE:LINE: message" (or "FILE: message") into err.
 */
int cfg_load(const char *path, struct cfg **r, char *err, size_t errlen);

/* Same, from a string; name is used in messages. For tests and fuzzing. */
int cfg_load_string(const char *text, const char *name, struct cfg **r,
    char *err, size_t errlen);

/* 1 if the backends list names b ("ldap", "pam", "file"). */
int cfg_has_backend(const struct cfg *c, const char *b);

/* Frees a struct from cfg_load(). NULL-safe. */
void cfg_free(struct cfg *c);

#endif
