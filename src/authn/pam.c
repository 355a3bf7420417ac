/*
 * The "pam" backend: sign-in through a Linux-PAM stack (pam_sss, winbind,
 * pam_unix, ...), groups from NSS.
 *
 * One PAM handle per sign-in, on a worker thread (libpam is thread-safe
 * only with a handle per thread): pam_start(pam.service), PAM_RHOST,
 * pam_authenticate and pam_acct_mgmt with PAM_SILENT and
 * PAM_DISALLOW_NULL_AUTHTOK, pam_end. No pam_setcred, no session. Our own
 * PAM_FAIL_DELAY function keeps libpam from sleeping in the worker (the
 * sign-in regulation of the daemon slows guessers without a thread).
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "authn/authn.h"
#include "config/config.h"
#include "log/log.h"
#include "util/sec.h"

#define NSS_BUF_MAX (1024 * 1024)

struct pam_state {
	const struct cfg *c;
};

struct conv_data {
	const char *user;
	const struct sec_buf *password; /* NULL: no password (refresh) */
};

/*
 * Answers the password prompt (echo off) with the password and the name
 * prompt (echo on) with the user; info and error messages get an empty
 * answer. Never blocks. On failure everything allocated is wiped and
 * freed.
 */
static int
conversation(int n, const struct pam_message **msg, struct pam_response **resp,
    void *appdata)
{
	const struct conv_data *d = appdata;
	struct pam_response *r;
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if ((r = calloc((size_t)n, sizeof(*r))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			if (d->password == NULL)
				goto fail;
			r[i].resp = strndup(
			    (const char *)d->password->p, d->password->len);
			break;
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(d->user);
			break;
		case PAM_TEXT_INFO:
		case PAM_ERROR_MSG:
			r[i].resp = NULL;
			continue;
		default:
			goto fail;
		}
		if (r[i].resp == NULL)
			goto fail;
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			sec_wipe(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
	return PAM_CONV_ERR;
}

/* Takes the delay a module asks for and does not sleep. */
static void
no_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)usec;
	(void)appdata;
}

static enum authn_result
from_pam(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTHN_OK;
	case PAM_USER_UNKNOWN:
		return AUTHN_UNKNOWN;
	case PAM_AUTH_ERR:
	case PAM_MAXTRIES:
	case PAM_CRED_INSUFFICIENT:
		return AUTHN_DENIED;
	case PAM_ACCT_EXPIRED:
	case PAM_PERM_DENIED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return AUTHN_DISABLED;
	case PAM_AUTHINFO_UNAVAIL:
	case PAM_TRY_AGAIN:
		return AUTHN_TEMPFAIL;
	default:
		return AUTHN_ERROR;
	}
}

/* The user's groups from NSS (primary and supplementary), by name. */
static int
nss_groups(struct authn_user *u)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp;
	gid_t *gids = NULL;
	char *buf = NULL;
	size_t cap = 4096;
	int n = 64, i, rc, ret = -1;

	for (;;) {
		char *nb = realloc(buf, cap);

		if (nb == NULL)
			goto out;
		buf = nb;
		rc = getpwnam_r(u->name, &pw, buf, cap, &pwp);
		if (rc != ERANGE || cap >= NSS_BUF_MAX)
			break;
		cap *= 2;
	}
	if (pwp == NULL) {
		ret = 0; /* PAM knows him, NSS does not: no groups */
		goto out;
	}
	for (;;) {
		gid_t *ng = realloc(gids, (size_t)n * sizeof(*gids));
		int want = n;

		if (ng == NULL)
			goto out;
		gids = ng;
		if (getgrouplist(u->name, pw.pw_gid, gids, &want) != -1) {
			n = want;
			break;
		}
		if (want <= n || want > AUTHN_GROUPS_MAX)
			goto out;
		n = want;
	}
	for (i = 0; i < n; i++) {
		for (;;) {
			rc = getgrgid_r(gids[i], &gr, buf, cap, &grp);
			if (rc != ERANGE || cap >= NSS_BUF_MAX)
				break;
			cap *= 2;
			{
				char *nb = realloc(buf, cap);

				if (nb == NULL)
					goto out;
				buf = nb;
			}
		}
		if (rc == 0 && grp != NULL &&
		    authn_user_add_group(u, grp->gr_name) == -1)
			goto out;
	}
	ret = 0;
out:
	free(gids);
	free(buf);
	return ret;
}

/*
 * One PAM transaction: authenticate (when password is not NULL) and the
 * account check. On AUTHN_OK *user_r is the user with his NSS groups.
 */
static enum authn_result
transact(struct pam_state *st, const char *user, const struct sec_buf *password,
    const char *client, struct authn_user **user_r)
{
	struct conv_data d = {user, password};
	struct pam_conv conv = {conversation, &d};
	const int flags = PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK;
	pam_handle_t *ph = NULL;
	const void *item = NULL;
	struct authn_user *u = NULL;
	enum authn_result res;
	int rc;

	rc = pam_start(st->c->pam.service, user, &conv, &ph);
	if (rc != PAM_SUCCESS) {
		log_event(LOG_ERROR, "pam_error", LS("step", "pam_start"),
		    LI("code", rc), LOG_END);
		return AUTHN_ERROR;
	}
	if ((rc = pam_set_item(ph, PAM_FAIL_DELAY,
		 (const void *)(uintptr_t)no_delay)) != PAM_SUCCESS ||
	    (client != NULL &&
		(rc = pam_set_item(ph, PAM_RHOST, client)) != PAM_SUCCESS))
		goto done;
	if (password != NULL &&
	    (rc = pam_authenticate(ph, flags)) != PAM_SUCCESS)
		goto done;
	/* Expired accounts, access rules, a password that must change: the
	 * account check decides (a new password is not ours to take). */
	if ((rc = pam_acct_mgmt(ph, flags)) != PAM_SUCCESS)
		goto done;
	/* A module may have canonicalised the name. */
	if (pam_get_item(ph, PAM_USER, &item) != PAM_SUCCESS || item == NULL ||
	    !authn_username_ok(item, strlen(item)))
		item = user;
	if ((u = authn_user_new(item)) == NULL || nss_groups(u) == -1) {
		rc = PAM_BUF_ERR;
		goto done;
	}
done:
	res = from_pam(rc);
	if (res == AUTHN_ERROR)
		log_event(LOG_ERROR, "pam_error", LS("user", user),
		    LS("error", pam_strerror(ph, rc)), LOG_END);
	else if (res != AUTHN_OK)
		log_event(LOG_INFO, "pam_refused", LS("user", user),
		    LS("reason", pam_strerror(ph, rc)), LOG_END);
	pam_end(ph, rc);
	if (res == AUTHN_OK)
		*user_r = u;
	else
		authn_user_free(&u);
	return res;
}

static enum authn_result
pam_authenticate_user(void *state, const char *user,
    const struct sec_buf *password, const char *client,
    struct authn_user **user_r)
{
	/* Never a NULL authentication token (an empty password). */
	if (password == NULL || password->len == 0)
		return AUTHN_DENIED;
	return transact(state, user, password, client, user_r);
}

static enum authn_result
pam_lookup(void *state, const char *user, struct authn_user **user_r)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	/* Refresh: the account must still exist (NSS) and pass the account
	 * check; the groups are read again. */
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return AUTHN_UNKNOWN;
	return transact(state, user, NULL, NULL, user_r);
}

static int
pam_open(const struct cfg *c, void **state_r, char *err, size_t errlen)
{
	struct pam_state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st->c = c;
	*state_r = st;
	return 0;
}

static void
pam_close(void *state)
{
	free(state);
}

const struct authn_backend authn_pam_backend = {
    .name = "pam",
    .open = pam_open,
    .close = pam_close,
    .authenticate = pam_authenticate_user,
    .lookup = pam_lookup,
};
