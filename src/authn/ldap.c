/*
 * The "ldap" backend: search-then-bind.
 *
 * A pooled service connection searches user_base for user_filter with the
 * escaped user name (size limit 2: exactly one entry, or no sign-in),
 * reading the name, e-mail, memberOf and lock attributes in the same
 * search; a separate user connection binds with the DN the server
 * returned. Groups come from memberOf and/or group_filter under
 * group_base, parents followed to nested_depth with loops cut.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authn/authn.h"
#include "authn/ldap_dir.h"
#include "config/config.h"
#include "log/log.h"
#include "policy/policy.h"

#define FILTER_MAX  4096
#define DN_NORM_MAX 2100
#define OR_CHUNK    32

struct ldap_state {
	const struct cfg *c;
	struct ldir *dir;
	char *dummy_dn; /* for the work done on unknown users */
};

/* What the user search found. */
struct found {
	int n; /* entries: 0, 1, or 2 meaning "more than one" */
	char *dn;
	char *canonical;
	char *display;
	char *email;
	char **member_of;
	size_t n_member_of;
	int locked;
};

static void
found_clear(struct found *f)
{
	size_t i;

	free(f->dn);
	free(f->canonical);
	free(f->display);
	free(f->email);
	for (i = 0; i < f->n_member_of; i++)
		free(f->member_of[i]);
	free(f->member_of);
	memset(f, 0, sizeof(*f));
}

/*
 * Writes tmpl into out with {username} and {dn} replaced by the escaped
 * values (either may be NULL: then that placeholder is refused). Returns
 * 0, or -1 when it does not fit or a value is missing.
 */
static int
expand(
    char *out, size_t cap, const char *tmpl, const char *user, const char *dn)
{
	struct berval in, esc;
	const char *p = tmpl, *v;
	size_t o = 0, n;

	while (*p != '\0') {
		if (strncmp(p, "{username}", 10) == 0 ||
		    strncmp(p, "{dn}", 4) == 0) {
			int is_user = p[1] == 'u';

			v = is_user ? user : dn;
			if (v == NULL || *v == '\0')
				return -1;
			in.bv_val = (char *)(uintptr_t)v;
			in.bv_len = strlen(v);
			esc.bv_val = NULL;
			if (ldap_bv2escaped_filter_value(&in, &esc) != 0 ||
			    esc.bv_val == NULL)
				return -1;
			n = esc.bv_len;
			if (o + n >= cap) {
				ber_memfree(esc.bv_val);
				return -1;
			}
			memcpy(out + o, esc.bv_val, n);
			ber_memfree(esc.bv_val);
			o += n;
			p += is_user ? 10 : 4;
			continue;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = *p++;
	}
	out[o] = '\0';
	return 0;
}

static char *
first_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **v = ldap_get_values_len(ld, e, attr);
	char *s = NULL;

	if (v != NULL && v[0] != NULL && v[0]->bv_len > 0 &&
	    memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL)
		s = strndup(v[0]->bv_val, v[0]->bv_len);
	ldap_value_free_len(v);
	return s;
}

struct user_search {
	const struct cfg *c;
	const char *filter;
	struct found *f;
};

static int
user_search_op(LDAP *ld, void *arg)
{
	struct user_search *u = arg;
	const struct cfg *c = u->c;
	char *attrs[8];
	struct timeval tv = {(time_t)c->ldap.timeout, 0};
	LDAPMessage *res = NULL, *e;
	struct berval **mo;
	char *dn;
	int rc, k = 0;
	size_t i;

	attrs[k++] = c->ldap.attr_username;
	attrs[k++] = c->ldap.attr_name;
	attrs[k++] = c->ldap.attr_email;
	attrs[k++] = (char *)(uintptr_t) "pwdAccountLockedTime";
	attrs[k++] = (char *)(uintptr_t) "userAccountControl";
	if (c->ldap.memberof)
		attrs[k++] = (char *)(uintptr_t) "memberOf";
	attrs[k] = NULL;
	found_clear(u->f);
	rc = ldap_search_ext_s(ld, c->ldap.user_base, LDAP_SCOPE_SUBTREE,
	    u->filter, attrs, 0, NULL, NULL, &tv, 2, &res);
	if (rc == LDAP_SIZELIMIT_EXCEEDED) {
		u->f->n = 2;
		rc = LDAP_SUCCESS;
		goto out;
	}
	if (rc != LDAP_SUCCESS)
		goto out;
	u->f->n = ldap_count_entries(ld, res);
	if (u->f->n != 1) {
		if (u->f->n > 2)
			u->f->n = 2;
		goto out;
	}
	e = ldap_first_entry(ld, res);
	if ((dn = ldap_get_dn(ld, e)) == NULL) {
		rc = LDAP_OTHER;
		goto out;
	}
	u->f->dn = strdup(dn);
	ldap_memfree(dn);
	u->f->canonical = first_value(ld, e, c->ldap.attr_username);
	u->f->display = first_value(ld, e, c->ldap.attr_name);
	u->f->email = first_value(ld, e, c->ldap.attr_email);
	{
		char *lock = first_value(ld, e, "pwdAccountLockedTime");
		char *uac = first_value(ld, e, "userAccountControl");

		/* ppolicy lock, or Active Directory's ACCOUNTDISABLE bit. */
		u->f->locked = lock != NULL ||
		    (uac != NULL && (strtoul(uac, NULL, 10) & 2) != 0);
		free(lock);
		free(uac);
	}
	if (c->ldap.memberof &&
	    (mo = ldap_get_values_len(ld, e, "memberOf")) != NULL) {
		size_t n = (size_t)ldap_count_values_len(mo);

		u->f->member_of = calloc(n + 1, sizeof(char *));
		for (i = 0;
		     u->f->member_of != NULL && i < n && i < AUTHN_GROUPS_MAX;
		     i++) {
			if ((u->f->member_of[u->f->n_member_of] = strndup(
				 mo[i]->bv_val, mo[i]->bv_len)) != NULL)
				u->f->n_member_of++;
		}
		ldap_value_free_len(mo);
	}
	if (u->f->dn == NULL)
		rc = LDAP_NO_MEMORY;
out:
	ldap_msgfree(res);
	return rc;
}

/* Groups found so far: DN (normalised, for loops) and the name. */
struct groups {
	char **dn; /* as the server wrote them */
	char **norm;
	size_t n;
	struct authn_user *u;
};

static int
groups_seen(const struct groups *g, const char *norm)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->norm[i], norm) == 0)
			return 1;
	return 0;
}

/* 1 when the normalised DN norm lies under group_base. */
static int
under_group_base(const struct cfg *c, const char *norm)
{
	char base[DN_NORM_MAX];
	size_t nb, nn = strlen(norm);

	if (c->ldap.group_base == NULL ||
	    pol_dn_normalize(c->ldap.group_base, base, sizeof(base)) == -1)
		return 0;
	nb = strlen(base);
	return nn > nb && strcmp(norm + nn - nb, base) == 0 &&
	    norm[nn - nb - 1] == ',';
}

/*
 * The group's name: the first RDN's value when its type is the name
 * attribute (cn=mail-admins,...), else name (from a search), else none.
 */
static void
group_name(
    const struct cfg *c, const char *dn, const char *name, struct authn_user *u)
{
	char norm[DN_NORM_MAX];
	LDAPDN parsed = NULL;

	if (name != NULL) {
		authn_user_add_group(u, name);
		return;
	}
	/*
	 * A memberOf value counts by name only when the group lives under
	 * group_base: whoever may create a group elsewhere in the directory
	 * (often delegated in Active Directory) must not get a role by
	 * naming it "mail-admins". Elsewhere it counts by its full DN only.
	 */
	if (pol_dn_normalize(dn, norm, sizeof(norm)) == -1 ||
	    !under_group_base(c, norm))
		return;
	if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
	    parsed != NULL && parsed[0] != NULL && parsed[0][0] != NULL) {
		LDAPAVA *ava = parsed[0][0];

		if (strncasecmp(ava->la_attr.bv_val,
			c->ldap.group_name_attribute,
			ava->la_attr.bv_len) == 0 &&
		    strlen(c->ldap.group_name_attribute) ==
			ava->la_attr.bv_len &&
		    !(ava->la_flags & LDAP_AVA_BINARY)) {
			char *v =
			    strndup(ava->la_value.bv_val, ava->la_value.bv_len);

			if (v != NULL)
				authn_user_add_group(u, v);
			free(v);
		}
	}
	ldap_dnfree(parsed);
}

/* Adds a group once; returns 1 when new, 0 when seen, -1 on error. */
static int
groups_add(
    const struct cfg *c, struct groups *g, const char *dn, const char *name)
{
	char norm[DN_NORM_MAX];
	char **a, **b;

	if (pol_dn_normalize(dn, norm, sizeof(norm)) == -1)
		return 0; /* not a DN we can compare: ignore it */
	if (groups_seen(g, norm) || g->n >= AUTHN_GROUPS_MAX)
		return 0;
	a = realloc(g->dn, (g->n + 1) * sizeof(*a));
	if (a == NULL)
		return -1;
	g->dn = a;
	b = realloc(g->norm, (g->n + 1) * sizeof(*b));
	if (b == NULL)
		return -1;
	g->norm = b;
	if ((g->dn[g->n] = strdup(dn)) == NULL)
		return -1;
	if ((g->norm[g->n] = strdup(norm)) == NULL) {
		free(g->dn[g->n]);
		return -1;
	}
	g->n++;
	authn_user_add_group(g->u, dn);
	group_name(c, dn, name, g->u);
	return 1;
}

struct group_search {
	const struct cfg *c;
	const char *filter;
	struct groups *g;
	int added;
};

/* One group search, paged (RFC 2696) when page_size is set. */
static int
group_search_op(LDAP *ld, void *arg)
{
	struct group_search *q = arg;
	const struct cfg *c = q->c;
	char *attrs[2] = {c->ldap.group_name_attribute, NULL};
	struct timeval tv = {(time_t)c->ldap.timeout, 0};
	struct berval *cookie = NULL;
	LDAPControl *page = NULL, *sctrls[2] = {NULL, NULL}, **rctrls;
	LDAPMessage *res, *e;
	int rc, err, pages = 0;

	q->added = 0;
	do {
		res = NULL;
		rctrls = NULL;
		if (c->ldap.page_size > 0) {
			rc = ldap_create_page_control(
			    ld, (ber_int_t)c->ldap.page_size, cookie, 0, &page);
			if (rc != LDAP_SUCCESS)
				break;
			sctrls[0] = page;
		}
		rc = ldap_search_ext_s(ld, c->ldap.group_base,
		    LDAP_SCOPE_SUBTREE, q->filter, attrs, 0,
		    c->ldap.page_size > 0 ? sctrls : NULL, NULL, &tv, 0, &res);
		if (page != NULL) {
			ldap_control_free(page);
			page = NULL;
		}
		if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
			ldap_msgfree(res);
			break;
		}
		if (rc == LDAP_SIZELIMIT_EXCEEDED)
			/* Fewer groups means fewer roles, never more: go on,
			 * but say so (set ldap.page_size). */
			log_event(LOG_WARN, "ldap_groups_truncated",
			    LS("message",
				"the group search hit the server's size limit; "
				"enable paging (ldap.page_size)"),
			    LOG_END);
		for (e = ldap_first_entry(ld, res); e != NULL;
		     e = ldap_next_entry(ld, e)) {
			char *dn = ldap_get_dn(ld, e);
			char *name =
			    first_value(ld, e, c->ldap.group_name_attribute);

			if (dn != NULL && groups_add(c, q->g, dn, name) == 1)
				q->added++;
			ldap_memfree(dn);
			free(name);
		}
		if (cookie != NULL) {
			ber_bvfree(cookie);
			cookie = NULL;
		}
		if (c->ldap.page_size > 0 &&
		    ldap_parse_result(ld, res, &err, NULL, NULL, NULL, &rctrls,
			0) == LDAP_SUCCESS &&
		    rctrls != NULL) {
			LDAPControl *pr = ldap_control_find(
			    LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
			ber_int_t count;
			struct berval ck = {0, NULL};

			if (pr != NULL &&
			    ldap_parse_pageresponse_control(
				ld, pr, &count, &ck) == LDAP_SUCCESS &&
			    ck.bv_len > 0)
				cookie = ber_bvdup(&ck);
			if (ck.bv_val != NULL)
				ber_memfree(ck.bv_val);
			ldap_controls_free(rctrls);
		}
		ldap_msgfree(res);
		rc = LDAP_SUCCESS;
	} while (cookie != NULL && ++pages < 1000);
	if (cookie != NULL)
		ber_bvfree(cookie);
	return rc;
}

struct base_read {
	const char *dn;
	struct groups *g;
	const struct cfg *c;
	char **parents;
	size_t n_parents;
};

/* The memberOf of one group entry (nesting without group_base). */
static int
parents_op(LDAP *ld, void *arg)
{
	struct base_read *b = arg;
	char *attrs[2] = {(char *)(uintptr_t) "memberOf", NULL};
	struct timeval tv = {(time_t)b->c->ldap.timeout, 0};
	LDAPMessage *res = NULL, *e;
	struct berval **v;
	int rc;
	size_t i, n;

	rc = ldap_search_ext_s(ld, b->dn, LDAP_SCOPE_BASE, "(objectClass=*)",
	    attrs, 0, NULL, NULL, &tv, 1, &res);
	if (rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_INSUFFICIENT_ACCESS) {
		ldap_msgfree(res);
		return LDAP_SUCCESS;
	}
	if (rc == LDAP_SUCCESS && (e = ldap_first_entry(ld, res)) != NULL &&
	    (v = ldap_get_values_len(ld, e, "memberOf")) != NULL) {
		n = (size_t)ldap_count_values_len(v);
		b->parents = calloc(n + 1, sizeof(char *));
		for (i = 0; b->parents != NULL && i < n; i++)
			if ((b->parents[b->n_parents] = strndup(
				 v[i]->bv_val, v[i]->bv_len)) != NULL)
				b->n_parents++;
		ldap_value_free_len(v);
	}
	ldap_msgfree(res);
	return rc;
}

/*
 * All groups of the user f (found by user) into u: memberOf, the group
 * search, and parents to nested_depth. Returns 0, or an LDAP code.
 */
static int
collect_groups(struct ldap_state *st, const char *user, struct found *f,
    struct authn_user *u)
{
	const struct cfg *c = st->c;
	struct groups g = {NULL, NULL, 0, u};
	char filter[FILTER_MAX], one[FILTER_MAX];
	size_t level_start = 0, level_end, i, k, o;
	int rc = LDAP_SUCCESS, depth;

	for (i = 0; i < f->n_member_of; i++)
		if (groups_add(c, &g, f->member_of[i], NULL) == -1)
			goto nomem;
	if (c->ldap.group_base != NULL) {
		struct group_search q = {c, filter, &g, 0};

		if (expand(filter, sizeof(filter), c->ldap.group_filter, user,
			f->dn) == -1) {
			rc = LDAP_FILTER_ERROR;
			goto out;
		}
		if ((rc = ldir_service(st->dir, group_search_op, &q)) !=
		    LDAP_SUCCESS)
			goto out;
	}
	/* Parents, one level at a time, loops cut by the seen-set. */
	for (depth = 0; depth < c->ldap.nested_depth && level_start < g.n;
	     depth++) {
		level_end = g.n;
		for (i = level_start; i < level_end; i += OR_CHUNK) {
			if (c->ldap.group_base != NULL &&
			    strstr(c->ldap.group_filter, "{dn}") != NULL) {
				struct group_search q = {c, filter, &g, 0};

				o = (size_t)snprintf(
				    filter, sizeof(filter), "(|");
				for (k = i; k < level_end && k < i + OR_CHUNK;
				     k++) {
					if (expand(one, sizeof(one),
						c->ldap.group_filter, user,
						g.dn[k]) == -1 ||
					    o + strlen(one) + 2 >=
						sizeof(filter))
						break;
					memcpy(filter + o, one, strlen(one));
					o += strlen(one);
				}
				filter[o++] = ')';
				filter[o] = '\0';
				if ((rc = ldir_service(st->dir, group_search_op,
					 &q)) != LDAP_SUCCESS)
					goto out;
			} else if (c->ldap.memberof) {
				for (k = i; k < level_end && k < i + OR_CHUNK;
				     k++) {
					struct base_read b = {
					    g.dn[k], &g, c, NULL, 0};
					size_t m;

					rc = ldir_service(
					    st->dir, parents_op, &b);
					for (m = 0; m < b.n_parents; m++) {
						if (rc == LDAP_SUCCESS &&
						    groups_add(c, &g,
							b.parents[m],
							NULL) == -1)
							rc = LDAP_NO_MEMORY;
						free(b.parents[m]);
					}
					free(b.parents);
					if (rc != LDAP_SUCCESS)
						goto out;
				}
			}
		}
		level_start = level_end;
	}
	goto out;
nomem:
	rc = LDAP_NO_MEMORY;
out:
	for (i = 0; i < g.n; i++) {
		free(g.dn[i]);
		free(g.norm[i]);
	}
	free(g.dn);
	free(g.norm);
	return rc;
}

static enum authn_result
from_ldap(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ||
		rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
		rc == LDAP_BUSY
	    ? AUTHN_TEMPFAIL
	    : AUTHN_ERROR;
}

/* Finds the one entry for user. AUTHN_OK with f filled, or why not. */
static enum authn_result
find_user(struct ldap_state *st, const char *user, struct found *f)
{
	char filter[FILTER_MAX];
	struct user_search q = {st->c, filter, f};
	int rc;

	if (expand(filter, sizeof(filter), st->c->ldap.user_filter, user,
		NULL) == -1)
		return AUTHN_UNKNOWN;
	rc = ldir_service(st->dir, user_search_op, &q);
	if (rc != LDAP_SUCCESS) {
		if (rc != LDAP_SERVER_DOWN)
			log_event(LOG_ERROR, "ldap_search_failed",
			    LS("error", ldap_err2string(rc)), LOG_END);
		return from_ldap(rc);
	}
	if (f->n == 0)
		return AUTHN_UNKNOWN;
	if (f->n > 1) {
		log_event(LOG_WARN, "ldap_ambiguous_user", LS("user", user),
		    LS("message", "the user filter matches several entries"),
		    LOG_END);
		return AUTHN_DENIED;
	}
	return AUTHN_OK;
}

static enum authn_result
make_user(struct ldap_state *st, const char *user, struct found *f,
    struct authn_user **user_r)
{
	struct authn_user *u;
	int rc;

	u = authn_user_new(f->canonical != NULL ? f->canonical : user);
	if (u == NULL)
		return AUTHN_ERROR;
	u->display = f->display;
	u->email = f->email;
	f->display = f->email = NULL;
	if ((rc = collect_groups(st, user, f, u)) != LDAP_SUCCESS) {
		authn_user_free(&u);
		return from_ldap(rc);
	}
	*user_r = u;
	return AUTHN_OK;
}

static enum authn_result
ldap_authenticate(void *state, const char *user, const struct sec_buf *password,
    const char *client, struct authn_user **user_r)
{
	struct ldap_state *st = state;
	struct found f;
	enum authn_result res;
	int rc, disabled = 0;

	(void)client;
	memset(&f, 0, sizeof(f));
	/* The caller refused empty passwords already (an empty one would be
	 * an unauthenticated bind, which servers accept as anonymous). */
	if (password->len == 0)
		return AUTHN_DENIED;
	if ((res = find_user(st, user, &f)) != AUTHN_OK) {
		if (res == AUTHN_UNKNOWN || res == AUTHN_DENIED)
			/*
			 * The same round trips as for a known user: a bind of
			 * a DN that does not exist (the server refuses it like
			 * a wrong password), so the answer time does not tell
			 * whether the account exists. Its result is ignored.
			 */
			ldir_user_bind(
			    st->dir, st->dummy_dn, password, &disabled);
		goto out;
	}
	rc = ldir_user_bind(st->dir, f.dn, password, &disabled);
	if (rc == LDAP_SUCCESS && f.locked)
		disabled = 1;
	if (disabled) {
		res = AUTHN_DISABLED;
		goto out;
	}
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH ||
	    rc == LDAP_UNWILLING_TO_PERFORM) {
		res = AUTHN_DENIED;
		goto out;
	}
	if (rc != LDAP_SUCCESS) {
		res = from_ldap(rc);
		goto out;
	}
	res = make_user(st, user, &f, user_r);
out:
	found_clear(&f);
	return res;
}

static enum authn_result
ldap_lookup(void *state, const char *user, struct authn_user **user_r)
{
	struct ldap_state *st = state;
	struct found f;
	enum authn_result res;

	memset(&f, 0, sizeof(f));
	if ((res = find_user(st, user, &f)) != AUTHN_OK)
		goto out;
	if (f.locked) {
		res = AUTHN_DISABLED;
		goto out;
	}
	res = make_user(st, user, &f, user_r);
out:
	found_clear(&f);
	return res;
}

static int
ldap_open(const struct cfg *c, void **state_r, char *err, size_t errlen)
{
	struct ldap_state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st->c = c;
	st->dummy_dn = malloc(strlen(c->ldap.user_base) + 32);
	if (st->dummy_dn != NULL)
		sprintf(st->dummy_dn, "cn=emailauth-no-such-user,%s",
		    c->ldap.user_base);
	if (st->dummy_dn == NULL) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ldir_new(c, &st->dir, err, errlen) == -1) {
		free(st->dummy_dn);
		free(st);
		return -1;
	}
	*state_r = st;
	return 0;
}

static int
ldap_start(void *state)
{
	struct ldap_state *st = state;

	return ldir_start(st->dir);
}

static void
ldap_close(void *state)
{
	struct ldap_state *st = state;

	if (st == NULL)
		return;
	ldir_free(st->dir);
	free(st->dummy_dn);
	free(st);
}

static int
ldap_ready(void *state)
{
	struct ldap_state *st = state;

	return ldir_ready(st->dir);
}

static char *
ldap_metrics(void *state)
{
	struct ldap_state *st = state;

	return ldir_metrics(st->dir);
}

const struct authn_backend authn_ldap_backend = {
    .name = "ldap",
    .open = ldap_open,
    .start = ldap_start,
    .close = ldap_close,
    .authenticate = ldap_authenticate,
    .lookup = ldap_lookup,
    .ready = ldap_ready,
    .metrics = ldap_metrics,
};
