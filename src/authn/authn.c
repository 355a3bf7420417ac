/*
 * The backend table, input rules, and the user record.
 */
#include <stdlib.h>
#include <string.h>

#include "authn/authn.h"
#include "util/str.h"

static const struct authn_backend *const backends[] = {
    &authn_file_backend,
    &authn_ldap_backend,
    &authn_pam_backend,
};

const struct authn_backend *
authn_backend_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const char *
authn_result_name(enum authn_result r)
{
	switch (r) {
	case AUTHN_OK:
		return "ok";
	case AUTHN_UNKNOWN:
		return "unknown_user";
	case AUTHN_DENIED:
		return "bad_credentials";
	case AUTHN_DISABLED:
		return "account_disabled";
	case AUTHN_TEMPFAIL:
		return "backend_unavailable";
	case AUTHN_ERROR:
		break;
	}
	return "error";
}

int
authn_username_ok(const char *user, size_t len)
{
	return len >= 1 && len <= AUTHN_USER_MAX &&
	    memchr(user, '\0', len) == NULL && str_utf8_valid(user, len) &&
	    !str_has_control(user, len);
}

int
authn_password_ok(const char *password, size_t len)
{
	return len >= 1 && len <= AUTHN_PASSWORD_MAX &&
	    memchr(password, '\0', len) == NULL;
}

struct authn_user *
authn_user_new(const char *name)
{
	struct authn_user *u;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	if ((u->name = strdup(name)) == NULL) {
		free(u);
		return NULL;
	}
	return u;
}

int
authn_user_add_group(struct authn_user *u, const char *group)
{
	char **v;
	size_t i;

	for (i = 0; i < u->n_groups; i++)
		if (strcmp(u->groups[i], group) == 0)
			return 0;
	if (u->n_groups >= AUTHN_GROUPS_MAX)
		return 0;
	v = realloc(u->groups, (u->n_groups + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	u->groups = v;
	if ((v[u->n_groups] = strdup(group)) == NULL)
		return -1;
	u->n_groups++;
	return 0;
}

void
authn_user_free(struct authn_user **up)
{
	struct authn_user *u;
	size_t i;

	if (up == NULL || (u = *up) == NULL)
		return;
	for (i = 0; i < u->n_groups; i++)
		free(u->groups[i]);
	free(u->groups);
	free(u->name);
	free(u->display);
	free(u->email);
	free(u);
	*up = NULL;
}
