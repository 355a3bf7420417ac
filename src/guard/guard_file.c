/*
 * ea_guard_new_from_file(): a guard configured by a group of a libconfig
 * file, checked as strictly as emailauthd.conf (unknown settings, types
 * and ranges are errors with their line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "config/lcfg.h"
#include "emailauth/guard.h"

#define FILE_MAX (256 * 1024)
#define LIST_MAX 64

enum kind {
	STR,
	NUM,
	BOOLEAN,
	LIST,
};

static const struct {
	const char *name;
	enum kind kind;
	double max;
} keys[] = {
    {"issuer", STR, 0},
    {"audience", STR, 0},
    {"jwks_file", STR, 0},
    {"jwks_url", STR, 0},
    {"jwks_ca_file", STR, 0},
    {"jwks_min_interval", NUM, 86400},
    {"jwks_timeout", NUM, 60},
    {"leeway", NUM, 300},
    {"cors_origins", LIST, 0},
    {"cors_credentials", BOOLEAN, 0},
    {"trusted_proxies", LIST, 0},
    {"hsts", BOOLEAN, 0},
    {"rate_per_ip", NUM, 1e6},
    {"burst_per_ip", NUM, 1e6},
    {"rate_per_subject", NUM, 1e6},
    {"burst_per_subject", NUM, 1e6},
    {"cache_entries", NUM, 16777216},
    {"revocations_url", STR, 0},
    {"revocations_interval", NUM, 3600},
    {"revocations_max_stale", NUM, 86400},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
number(const config_setting_t *s, double *r)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		*r = (double)config_setting_get_int64(s);
		return 0;
	case CONFIG_TYPE_FLOAT:
		*r = config_setting_get_float(s);
		return 0;
	default:
		return -1;
	}
}

/* Copies a list of strings into v (NULL-terminated, at most LIST_MAX). */
static int
list(const config_setting_t *s, const char **v)
{
	int i, n = config_setting_length(s);

	if ((config_setting_type(s) != CONFIG_TYPE_ARRAY &&
		config_setting_type(s) != CONFIG_TYPE_LIST) ||
	    n > LIST_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned int)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return -1;
		v[i] = config_setting_get_string(e);
	}
	v[n] = NULL;
	return 0;
}

int
ea_guard_new_from_file(const char *path, const char *group, ea_log_fn log,
    void *log_cls, struct ea_guard **guard_r, char *err, size_t errlen)
{
	struct ea_guard_config c;
	const char *origins[LIST_MAX + 1], *proxies[LIST_MAX + 1];
	const config_setting_t *g;
	config_t lc;
	char *text;
	int ret = -1, i, n;
	size_t k;

	memset(&c, 0, sizeof(c));
	origins[0] = proxies[0] = NULL;
	if ((text = lcfg_read(path, FILE_MAX, err, errlen)) == NULL)
		return -1;
	config_init(&lc);
	if (lcfg_prescan(text, path, 1, err, errlen) == -1)
		goto out;
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&lc),
		    config_error_text(&lc));
		goto out;
	}
	g = config_lookup(&lc, group);
	if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP) {
		snprintf(err, errlen, "%s: no group '%s'", path, group);
		goto out;
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *s =
		    config_setting_get_elem(g, (unsigned int)i);
		const char *name = config_setting_name(s);
		int line = config_setting_source_line(s);
		double v = 0;

		for (k = 0; k < NKEYS; k++)
			if (strcmp(keys[k].name, name) == 0)
				break;
		if (k == NKEYS) {
			snprintf(err, errlen, "%s:%d: unknown setting '%.64s'",
			    path, line, name);
			goto out;
		}
		if ((keys[k].kind == STR &&
			config_setting_type(s) != CONFIG_TYPE_STRING) ||
		    (keys[k].kind == BOOLEAN &&
			config_setting_type(s) != CONFIG_TYPE_BOOL) ||
		    (keys[k].kind == NUM &&
			(number(s, &v) == -1 || v < 0 || v > keys[k].max))) {
			snprintf(err, errlen,
			    "%s:%d: '%s' has the wrong type or is out of range",
			    path, line, name);
			goto out;
		}
		if (keys[k].kind == LIST &&
		    list(s,
			strcmp(name, "cors_origins") == 0 ? origins
							  : proxies) == -1) {
			snprintf(err, errlen,
			    "%s:%d: '%s' must be a list of at most %d strings",
			    path, line, name, LIST_MAX);
			goto out;
		}
		if (strcmp(name, "issuer") == 0)
			c.issuer = config_setting_get_string(s);
		else if (strcmp(name, "audience") == 0)
			c.audience = config_setting_get_string(s);
		else if (strcmp(name, "jwks_file") == 0)
			c.jwks_file = config_setting_get_string(s);
		else if (strcmp(name, "jwks_url") == 0)
			c.jwks_url = config_setting_get_string(s);
		else if (strcmp(name, "jwks_ca_file") == 0)
			c.jwks_ca_file = config_setting_get_string(s);
		else if (strcmp(name, "jwks_min_interval") == 0)
			c.jwks_min_interval = (unsigned int)v;
		else if (strcmp(name, "jwks_timeout") == 0)
			c.jwks_timeout = (unsigned int)v;
		else if (strcmp(name, "leeway") == 0)
			c.leeway = (unsigned int)v;
		else if (strcmp(name, "cors_credentials") == 0)
			c.cors_credentials = config_setting_get_bool(s);
		else if (strcmp(name, "hsts") == 0)
			c.hsts = config_setting_get_bool(s);
		else if (strcmp(name, "rate_per_ip") == 0)
			c.rate_per_ip = v;
		else if (strcmp(name, "burst_per_ip") == 0)
			c.burst_per_ip = v;
		else if (strcmp(name, "rate_per_subject") == 0)
			c.rate_per_subject = v;
		else if (strcmp(name, "burst_per_subject") == 0)
			c.burst_per_subject = v;
		else if (strcmp(name, "cache_entries") == 0)
			c.cache_entries = (size_t)v;
		else if (strcmp(name, "revocations_url") == 0)
			c.revocations_url = config_setting_get_string(s);
		else if (strcmp(name, "revocations_interval") == 0)
			c.revocations_interval = (unsigned int)v;
		else if (strcmp(name, "revocations_max_stale") == 0)
			c.revocations_max_stale = (unsigned int)v;
	}
	c.cors_origins = origins;
	c.trusted_proxies = proxies;
	c.log = log;
	c.log_cls = log_cls;
	/* ea_guard_new() copies what it keeps: the tree may go after it. */
	ret = ea_guard_new(&c, guard_r, err, errlen);
out:
	config_destroy(&lc);
	free(text);
	return ret;
}
