/*
 * roles.conf -> struct pol_map, and the lookups on it.
 *
 * Like src/config/config.c, the file is read once into memory, scanned for
 * @include (refused: libconfig would open any file), parsed with libconfig
 * and walked: anything that is not exactly roles = { NAME = { groups = [..];
 * permissions = [..]; }; ... } is an error with its line. Every string is
 * copied, so nothing points into the libconfig tree afterwards.
 *
 * The loaded map keeps roles sorted by name and two indexes of mapping
 * entries, sorted by key then role: group names (key: the name in ASCII
 * lowercase) and group DNs (key: the normalised DN). A user's group is
 * looked up by binary search. Once loaded, the map is only read, so any
 * number of threads may use it until pol_free().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "config/lcfg.h"
#include "policy/policy.h"
#include "util/str.h"

#define POL_FILE_MAX  (1024 * 1024)
#define POL_ROLES_MAX 1000
#define POL_LIST_MAX  1000
#define POL_STR_MAX   1024
#define POL_NAME_MAX  64
/* A normalised DN may grow: an unescaped '=' becomes "\=". */
#define POL_DN_MAX (2 * POL_STR_MAX + 1)

struct pol_key {
	char *entry; /* as mapped: the name as written, or the normalised DN */
	char *key;   /* the name lowercased; NULL for a DN (entry is the key) */
	size_t role; /* index into roles */
	int line;    /* where the entry was written (load time only) */
};

struct pol_role {
	char *name;
	char **perms; /* sorted (strcmp), unique */
	size_t nperms;
};

struct pol_map {
	struct pol_role *roles; /* sorted by name (strcmp) */
	size_t nroles;
	struct pol_key *names; /* sorted by key, then role */
	size_t nnames;
	struct pol_key *dns; /* sorted by key, then role */
	size_t ndns;
};

struct loader {
	const char *name; /* file name for messages */
	char *err;
	size_t errlen;
	struct pol_map *m;
};

/* An error with its line, in the loader's message buffer. */
#define fail(ld, line, ...) \
	lcfg_error((ld)->err, (ld)->errlen, (ld)->name, (line), __VA_ARGS__)

static const char *
key_of(const struct pol_key *k)
{
	return k->key != NULL ? k->key : k->entry;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct pol_key *ka = a, *kb = b;
	int c = strcmp(key_of(ka), key_of(kb));

	if (c != 0)
		return c;
	if (ka->role != kb->role)
		return ka->role < kb->role ? -1 : 1;
	return (ka->line > kb->line) - (ka->line < kb->line);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
role_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return i >= 1 && i <= POL_NAME_MAX;
}

/*
 * Checks that s (the role's "groups" or "permissions") is a list or array
 * of at most POL_LIST_MAX strings, each 1 to POL_STR_MAX bytes of UTF-8
 * without control characters, and each a valid permission or, for a group
 * written with '=', a valid DN. Adds the number of DN entries to *ndns.
 */
static int
check_list(struct loader *ld, const config_setting_t *s, const char *role,
    size_t *ndns)
{
	const char *what = config_setting_name(s);
	int perms = strcmp(what, "permissions") == 0;
	int i, n, line = config_setting_source_line(s);
	char dn[POL_DN_MAX + 1];

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		fail(ld, line, "'roles.%s.%s' must be a list of strings", role,
		    what);
		return -1;
	}
	if ((n = config_setting_length(s)) > POL_LIST_MAX) {
		fail(ld, line, "'roles.%s.%s' has more than %d entries", role,
		    what, POL_LIST_MAX);
		return -1;
	}
	if (perms && n == 0) {
		fail(ld, line,
		    "'roles.%s.permissions' must list at least one permission",
		    role);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned int)i);
		const char *v = config_setting_get_string(e);
		size_t len;

		line = config_setting_source_line(e);
		if (config_setting_type(e) != CONFIG_TYPE_STRING || v == NULL ||
		    *v == '\0') {
			fail(ld, line,
			    "'roles.%s.%s' must be a list of non-empty strings",
			    role, what);
			return -1;
		}
		if ((len = strlen(v)) > POL_STR_MAX) {
			fail(ld, line,
			    "'roles.%s.%s': entry longer than %d bytes", role,
			    what, POL_STR_MAX);
			return -1;
		}
		if (!str_utf8_valid(v, len) || str_has_control(v, len)) {
			fail(ld, line,
			    "'roles.%s.%s': entry is not UTF-8 text without "
			    "control characters",
			    role, what);
			return -1;
		}
		if (perms && !pol_permission_valid(v, 1)) {
			fail(ld, line,
			    "'roles.%s.permissions': '%.64s' is not a valid "
			    "permission (segments of a-z 0-9 _ . - joined by "
			    "':', the last one may be '*')",
			    role, v);
			return -1;
		}
		if (!perms && strchr(v, '=') != NULL) {
			if (pol_dn_normalize(v, dn, sizeof(dn)) == -1) {
				fail(ld, line,
				    "'roles.%s.groups': '%.64s' is not a valid "
				    "DN",
				    role, v);
				return -1;
			}
			(*ndns)++;
		}
	}
	return 0;
}

/*
 * Checks one role: a valid name, a group of exactly "groups" and
 * "permissions" (see check_list()). Counts its DN and name entries.
 */
static int
check_role(
    struct loader *ld, const config_setting_t *r, size_t *ndns, size_t *nnames)
{
	const config_setting_t *groups = NULL, *perms = NULL;
	const char *name = config_setting_name(r);
	int i, n, line = config_setting_source_line(r);
	size_t d = 0;

	if (!role_name_ok(name)) {
		fail(ld, line,
		    "invalid role name '%.80s' (1 to %d of A-Z a-z 0-9 _ -)",
		    name, POL_NAME_MAX);
		return -1;
	}
	if (config_setting_type(r) != CONFIG_TYPE_GROUP) {
		fail(ld, line, "'roles.%s' must be a group { ... }", name);
		return -1;
	}
	n = config_setting_length(r);
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(r, (unsigned int)i);
		const char *en = config_setting_name(e);

		if (strcmp(en, "groups") == 0) {
			groups = e;
		} else if (strcmp(en, "permissions") == 0) {
			perms = e;
		} else {
			fail(ld, config_setting_source_line(e),
			    "unknown setting '%.100s'", en);
			return -1;
		}
	}
	if (groups == NULL || perms == NULL) {
		fail(ld, line, "'roles.%s': missing setting '%s'", name,
		    groups == NULL ? "groups" : "permissions");
		return -1;
	}
	if (check_list(ld, groups, name, &d) == -1 ||
	    check_list(ld, perms, name, &d) == -1)
		return -1;
	*ndns += d;
	*nnames += (size_t)config_setting_length(groups) - d;
	return 0;
}

static char *
lower_dup(const char *s)
{
	char *r = strdup(s);
	size_t i;

	for (i = 0; r != NULL && r[i] != '\0'; i++)
		if (r[i] >= 'A' && r[i] <= 'Z')
			r[i] = (char)(r[i] - 'A' + 'a');
	return r;
}

/* Adds the role's group entries to the indexes (sorted later). */
static int
add_groups(struct loader *ld, const config_setting_t *s, size_t role)
{
	struct pol_map *m = ld->m;
	char dn[POL_DN_MAX + 1];
	int i, n = config_setting_length(s);

	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned int)i);
		const char *v = config_setting_get_string(e);
		int line = config_setting_source_line(e);
		struct pol_key *k;

		if (strchr(v, '=') != NULL) {
			/* Cannot fail: check_list() normalised it. */
			(void)pol_dn_normalize(v, dn, sizeof(dn));
			k = &m->dns[m->ndns++];
			k->entry = strdup(dn);
		} else {
			k = &m->names[m->nnames++];
			k->entry = strdup(v);
			if ((k->key = lower_dup(v)) == NULL) {
				fail(ld, 0, "out of memory");
				return -1;
			}
		}
		k->role = role;
		k->line = line;
		if (k->entry == NULL) {
			fail(ld, 0, "out of memory");
			return -1;
		}
	}
	return 0;
}

/*
 * Copies the role's permissions (checked, at least one), sorted; one
 * written twice is an error.
 */
static int
add_perms(struct loader *ld, const config_setting_t *s, struct pol_role *r)
{
	int i, n = config_setting_length(s);
	size_t j;

	if ((r->perms = calloc((size_t)n, sizeof(char *))) == NULL) {
		fail(ld, 0, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned int)i);
		const char *v = config_setting_get_string(e);

		if ((r->perms[r->nperms] = strdup(v)) == NULL) {
			fail(ld, 0, "out of memory");
			return -1;
		}
		r->nperms++;
	}
	qsort(r->perms, r->nperms, sizeof(char *), str_cmp);
	for (j = 1; j < r->nperms; j++) {
		if (strcmp(r->perms[j - 1], r->perms[j]) != 0)
			continue;
		/* Report the second time it is written. */
		for (i = 0; i < n; i++)
			if (strcmp(config_setting_get_string_elem(s, i),
				r->perms[j]) == 0)
				break;
		for (i++; i < n; i++)
			if (strcmp(config_setting_get_string_elem(s, i),
				r->perms[j]) == 0)
				break;
		fail(ld,
		    config_setting_source_line(
			config_setting_get_elem(s, (unsigned int)i)),
		    "'roles.%s.permissions' lists '%s' twice", r->name,
		    r->perms[j]);
		return -1;
	}
	return 0;
}

/* A group written twice for one role (same name or the same DN). */
static int
check_dups(struct loader *ld, const struct pol_key *k, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		if (k[i].role == k[i - 1].role &&
		    strcmp(key_of(&k[i]), key_of(&k[i - 1])) == 0) {
			fail(ld, k[i].line,
			    "'roles.%s.groups' lists '%.64s' twice (as "
			    "'%.64s' on line %d)",
			    ld->m->roles[k[i].role].name, k[i].entry,
			    k[i - 1].entry, k[i - 1].line);
			return -1;
		}
	}
	return 0;
}

static int
setting_cmp(const void *a, const void *b)
{
	return strcmp(config_setting_name(*(const config_setting_t *const *)a),
	    config_setting_name(*(const config_setting_t *const *)b));
}

static int
build(struct loader *ld, const config_setting_t *root)
{
	const config_setting_t *roles = NULL, **sorted = NULL;
	struct pol_map *m = ld->m;
	size_t i, n, ndns = 0, nnames = 0;
	int ret = -1;

	for (i = 0; i < (size_t)config_setting_length(root); i++) {
		const config_setting_t *e =
		    config_setting_get_elem(root, (unsigned int)i);

		if (strcmp(config_setting_name(e), "roles") != 0) {
			fail(ld, config_setting_source_line(e),
			    "unknown setting '%.100s'", config_setting_name(e));
			goto out;
		}
		roles = e;
	}
	if (roles == NULL) {
		fail(ld, 0, "missing setting 'roles'");
		goto out;
	}
	if (config_setting_type(roles) != CONFIG_TYPE_GROUP) {
		fail(ld, config_setting_source_line(roles),
		    "'roles' must be a group { ... }");
		goto out;
	}
	if ((n = (size_t)config_setting_length(roles)) > POL_ROLES_MAX) {
		fail(ld, config_setting_source_line(roles),
		    "'roles' has more than %d roles", POL_ROLES_MAX);
		goto out;
	}
	if (n == 0) {
		ret = 0;
		goto out;
	}
	if ((sorted = calloc(n, sizeof(*sorted))) == NULL ||
	    (m->roles = calloc(n, sizeof(*m->roles))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		sorted[i] = config_setting_get_elem(roles, (unsigned int)i);
		if (check_role(ld, sorted[i], &ndns, &nnames) == -1)
			goto out;
	}
	qsort(sorted, n, sizeof(*sorted), setting_cmp);
	if ((ndns > 0 && (m->dns = calloc(ndns, sizeof(*m->dns))) == NULL) ||
	    (nnames > 0 &&
		(m->names = calloc(nnames, sizeof(*m->names))) == NULL))
		goto nomem;
	for (i = 0; i < n; i++) {
		struct pol_role *r = &m->roles[i];

		if ((r->name = strdup(config_setting_name(sorted[i]))) == NULL)
			goto nomem;
		m->nroles++;
		if (add_perms(ld,
			config_setting_get_member(sorted[i], "permissions"),
			r) == -1 ||
		    add_groups(ld,
			config_setting_get_member(sorted[i], "groups"),
			i) == -1)
			goto out;
	}
	if (m->ndns > 0)
		qsort(m->dns, m->ndns, sizeof(*m->dns), key_cmp);
	if (m->nnames > 0)
		qsort(m->names, m->nnames, sizeof(*m->names), key_cmp);
	if (check_dups(ld, m->dns, m->ndns) == -1 ||
	    check_dups(ld, m->names, m->nnames) == -1)
		goto out;
	ret = 0;
	goto out;
nomem:
	fail(ld, 0, "out of memory");
out:
	free(sorted);
	return ret;
}

void
pol_free(struct pol_map *m)
{
	size_t i, j;

	if (m == NULL)
		return;
	for (i = 0; i < m->nroles; i++) {
		for (j = 0; j < m->roles[i].nperms; j++)
			free(m->roles[i].perms[j]);
		free(m->roles[i].perms);
		free(m->roles[i].name);
	}
	for (i = 0; i < m->nnames; i++) {
		free(m->names[i].entry);
		free(m->names[i].key);
	}
	for (i = 0; i < m->ndns; i++)
		free(m->dns[i].entry);
	free(m->roles);
	free(m->names);
	free(m->dns);
	free(m);
}

int
pol_load_string(const char *text, const char *name, struct pol_map **r,
    char *err, size_t errlen)
{
	struct loader ld = {0};
	config_t lc;
	int ret = -1;

	ld.name = name != NULL ? name : "(roles)";
	ld.err = err;
	ld.errlen = errlen;
	config_init(&lc);
	if (text == NULL || r == NULL) {
		fail(&ld, 0, "nothing to load");
		goto out;
	}
	/* No setting of this file is a number: any number is refused for
	 * its type, so only @include needs the scan. */
	if (lcfg_prescan(text, ld.name, 0, err, errlen) == -1)
		goto out;
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		fail(&ld, config_error_line(&lc), "%s", config_error_text(&lc));
		goto out;
	}
	if ((ld.m = calloc(1, sizeof(*ld.m))) == NULL) {
		fail(&ld, 0, "out of memory");
		goto out;
	}
	if (build(&ld, config_root_setting(&lc)) == -1)
		goto out;
	*r = ld.m;
	ld.m = NULL;
	ret = 0;
out:
	pol_free(ld.m);
	config_destroy(&lc);
	return ret;
}

int
pol_load(const char *path, struct pol_map **r, char *err, size_t errlen)
{
	char *text;
	int ret;

	if ((text = lcfg_read(path, POL_FILE_MAX, err, errlen)) == NULL)
		return -1;
	ret = pol_load_string(text, path, r, err, errlen);
	free(text);
	return ret;
}

/* The first of the n sorted keys that is not below key, or n. */
static size_t
lower_bound(const struct pol_key *k, size_t n, const char *key)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(key_of(&k[mid]), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The mapping entries that match the user's group g: *n_r of them from the
 * returned pointer. A group with '=' is a DN and meets only DN entries (not
 * even its first RDN value meets a name entry: a backend that knows the
 * group's name passes it as well); one without meets only name entries. A
 * DN that does not parse, or a name or DN longer than any entry can be,
 * matches nothing. buf (cap bytes) holds the key.
 */
static const struct pol_key *
find(const struct pol_map *m, const char *g, char *buf, size_t cap, size_t *n_r)
{
	const struct pol_key *idx;
	size_t n, i, lo, len;

	*n_r = 0;
	if (strchr(g, '=') != NULL) {
		if (pol_dn_normalize(g, buf, cap) == -1)
			return NULL;
		idx = m->dns;
		n = m->ndns;
	} else {
		if ((len = strnlen(g, POL_STR_MAX + 1)) > POL_STR_MAX ||
		    len >= cap)
			return NULL;
		for (i = 0; i <= len; i++)
			buf[i] = g[i] >= 'A' && g[i] <= 'Z'
			    ? (char)(g[i] - 'A' + 'a')
			    : g[i];
		idx = m->names;
		n = m->nnames;
	}
	if (n == 0)
		return NULL;
	lo = lower_bound(idx, n, buf);
	for (i = lo; i < n && strcmp(key_of(&idx[i]), buf) == 0; i++)
		;
	*n_r = i - lo;
	return idx + lo;
}

int
pol_resolve(const struct pol_map *m, const char *const *groups, size_t n,
    json_t **roles_r, json_t **perms_r)
{
	char buf[POL_DN_MAX + 1];
	const struct pol_key *k;
	const char **perms = NULL;
	unsigned char *hit = NULL;
	json_t *roles = NULL, *pa = NULL;
	size_t i, j, cnt, np = 0, nroles = 0;
	int ret = -1;

	if (m == NULL || (groups == NULL && n > 0) || roles_r == NULL ||
	    perms_r == NULL)
		return -1;
	if (m->nroles > 0 && (hit = calloc(m->nroles, 1)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (groups[i] == NULL)
			goto out;
		k = find(m, groups[i], buf, sizeof(buf), &cnt);
		for (j = 0; j < cnt; j++)
			hit[k[j].role] = 1;
	}
	for (i = 0; i < m->nroles; i++)
		if (hit[i])
			np += m->roles[i].nperms;
	if ((roles = json_array()) == NULL || (pa = json_array()) == NULL ||
	    (np > 0 && (perms = calloc(np, sizeof(*perms))) == NULL))
		goto out;
	np = 0;
	for (i = 0; i < m->nroles; i++) {
		if (!hit[i])
			continue;
		if (json_array_append_new(
			roles, json_string(m->roles[i].name)) == -1)
			goto out;
		nroles++;
		for (j = 0; j < m->roles[i].nperms; j++)
			perms[np++] = m->roles[i].perms[j];
	}
	if (np > 0)
		qsort(perms, np, sizeof(*perms), str_cmp);
	for (i = 0; i < np; i++)
		if ((i == 0 || strcmp(perms[i - 1], perms[i]) != 0) &&
		    json_array_append_new(pa, json_string(perms[i])) == -1)
			goto out;
	*roles_r = roles;
	*perms_r = pa;
	roles = pa = NULL;
	ret = (int)nroles;
out:
	json_decref(roles);
	json_decref(pa);
	free(perms);
	free(hit);
	return ret;
}

json_t *
pol_explain(const struct pol_map *m, const char *const *groups, size_t n)
{
	char buf[POL_DN_MAX + 1];
	const struct pol_key *k;
	json_t *a, *o, *ret = NULL;
	size_t i, j, cnt;

	if (m == NULL || (groups == NULL && n > 0) ||
	    (a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (groups[i] == NULL)
			goto out;
		k = find(m, groups[i], buf, sizeof(buf), &cnt);
		for (j = 0; j < cnt; j++) {
			o = json_pack("{s:s, s:s, s:s}", "role",
			    m->roles[k[j].role].name, "group", groups[i],
			    "entry", k[j].entry);
			if (json_array_append_new(a, o) == -1)
				goto out;
		}
	}
	ret = a;
	a = NULL;
out:
	json_decref(a);
	return ret;
}

json_t *
pol_to_json(const struct pol_map *m)
{
	json_t *out = json_object(), *r, *groups, *perms;
	size_t i, k;

	if (out == NULL)
		return NULL;
	for (i = 0; i < m->nroles; i++) {
		groups = json_array();
		perms = json_array();
		r = json_pack(
		    "{s:o, s:o}", "groups", groups, "permissions", perms);
		if (r == NULL || json_object_set_new(out, m->roles[i].name, r))
			goto fail;
		for (k = 0; k < m->nnames; k++)
			if (m->names[k].role == i &&
			    json_array_append_new(
				groups, json_string(m->names[k].entry)))
				goto fail;
		for (k = 0; k < m->ndns; k++)
			if (m->dns[k].role == i &&
			    json_array_append_new(
				groups, json_string(m->dns[k].entry)))
				goto fail;
		for (k = 0; k < m->roles[i].nperms; k++)
			if (json_array_append_new(
				perms, json_string(m->roles[i].perms[k])))
				goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* Appends s as a libconfig string literal; -1 on a control character. */
static int
put_literal(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -1;
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
	return 0;
}

static int
put_list(FILE *f, const json_t *a)
{
	const json_t *v;
	size_t i;

	fputs("[", f);
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return -1;
		fputs(i > 0 ? ", " : " ", f);
		if (put_literal(f, json_string_value(v)) == -1)
			return -1;
	}
	fputs(" ]", f);
	return 0;
}

char *
pol_json_to_text(const json_t *roles)
{
	const char *name;
	const json_t *r;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int bad = 0;

	if (!json_is_object(roles) || (f = open_memstream(&text, &len)) == NULL)
		return NULL;
	fputs("# Written by emailauthd (the admin API); edits by hand are "
	      "fine too:\n# reload the daemon afterwards.\nroles = {\n",
	    f);
	json_object_foreach((json_t *)(uintptr_t)roles, name, r)
	{
		if (!role_name_ok(name) ||
		    !json_is_array(json_object_get(r, "groups")) ||
		    !json_is_array(json_object_get(r, "permissions"))) {
			bad = 1;
			break;
		}
		fprintf(f, "  %s = {\n    groups = ", name);
		bad |= put_list(f, json_object_get(r, "groups")) == -1;
		fputs(";\n    permissions = ", f);
		bad |= put_list(f, json_object_get(r, "permissions")) == -1;
		fputs(";\n  };\n", f);
	}
	fputs("};\n", f);
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}
