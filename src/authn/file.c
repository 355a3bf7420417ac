/*
 * The "file" backend: break-glass local accounts in a file of
 *
 *   user:yescrypt-hash:group,group
 *
 * lines ('#' comments and blank lines allowed; a hash starting with '!' is
 * a locked account). The file must be mode 0600 and is read once per
 * (re)load. An unknown user costs the same yescrypt work as a known one,
 * so the answer time does not tell whether an account exists.
 */
#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authn/authn.h"
#include "config/config.h"
#include "util/sec.h"

#define FILE_MAX  (16 * 1024 * 1024)
#define LINE_MAX_ 8192
#define USERS_MAX 100000

struct file_entry {
	char *user;
	char *hash; /* without a leading '!' */
	int locked;
	char **groups;
	size_t n_groups;
};

struct file_state {
	struct file_entry *v;
	size_t n;
	char dummy_hash[CRYPT_OUTPUT_SIZE]; /* the work for unknown users */
};

static void
entry_free(struct file_entry *e)
{
	size_t k;

	free(e->user);
	if (e->hash != NULL)
		sec_wipe(e->hash, strlen(e->hash));
	free(e->hash);
	for (k = 0; k < e->n_groups; k++)
		free(e->groups[k]);
	free(e->groups);
}

static void
entries_free(struct file_state *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		entry_free(&st->v[i]);
	free(st->v);
}

static void
file_close(void *state)
{
	struct file_state *st = state;

	if (st == NULL)
		return;
	entries_free(st);
	free(st);
}

static int
parse_groups(struct file_entry *e, char *s)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char **v;

		if (*tok == '\0')
			continue;
		v = realloc(e->groups, (e->n_groups + 1) * sizeof(*v));
		if (v == NULL)
			return -1;
		e->groups = v;
		if ((v[e->n_groups] = strdup(tok)) == NULL)
			return -1;
		e->n_groups++;
	}
	return 0;
}

/* Parses one line into e. Returns 1 entry, 0 blank/comment, -1 error. */
static int
parse_line(char *line, struct file_entry *e, const char **why)
{
	char *user, *hash, *groups, *c1, *c2;

	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	if ((c1 = strchr(line, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL) {
		*why = "expected user:hash:groups";
		return -1;
	}
	*c1 = *c2 = '\0';
	user = line;
	hash = c1 + 1;
	groups = c2 + 1;
	if (!authn_username_ok(user, strlen(user))) {
		*why = "invalid user name";
		return -1;
	}
	if (*hash == '!') {
		e->locked = 1;
		hash++;
	}
	if (strncmp(hash, "$y$", 3) != 0 || strlen(hash) >= CRYPT_OUTPUT_SIZE) {
		*why = "the hash is not a yescrypt ($y$) hash; make one with "
		       "emailauthctl passwd";
		return -1;
	}
	if ((e->user = strdup(user)) == NULL ||
	    (e->hash = strdup(hash)) == NULL || parse_groups(e, groups) == -1) {
		*why = "out of memory";
		return -1;
	}
	return 1;
}

static const struct file_entry *
find(const struct file_state *st, const char *user)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->v[i].user, user) == 0)
			return &st->v[i];
	return NULL;
}

static int
file_open(const struct cfg *c, void **state_r, char *err, size_t errlen)
{
	struct file_state *st = NULL;
	struct sec_buf *buf = NULL;
	char *text = NULL, *line, *save = NULL,
	     setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *why = NULL;
	int ret = -1, lineno = 0, r;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (cd = calloc(1, sizeof(*cd))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((buf = sec_read_file(c->file.path, FILE_MAX, err, errlen)) ==
	    NULL) {
		/* An empty file is a valid empty account list. */
		if (strstr(err, " is empty") == NULL)
			goto out;
	} else {
		if ((text = malloc(buf->len + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		memcpy(text, buf->p, buf->len);
		text[buf->len] = '\0';
		if (memchr(text, '\0', buf->len) != NULL) {
			snprintf(err, errlen, "%s: contains a NUL byte",
			    c->file.path);
			goto out;
		}
	}
	for (line = text != NULL ? strtok_r(text, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save)) {
		struct file_entry e;
		struct file_entry *v;

		lineno++;
		if (strlen(line) > LINE_MAX_) {
			why = "line too long";
			goto bad;
		}
		memset(&e, 0, sizeof(e));
		if ((r = parse_line(line, &e, &why)) == 0)
			continue;
		if (r == 1 && find(st, e.user) != NULL) {
			why = "user listed twice";
			r = -1;
		}
		if (r == 1 && st->n >= USERS_MAX) {
			why = "too many users";
			r = -1;
		}
		if (r == 1 &&
		    (v = realloc(st->v, (st->n + 1) * sizeof(*v))) == NULL) {
			why = "out of memory";
			r = -1;
		}
		if (r == -1) {
			entry_free(&e);
			goto bad;
		}
		st->v = v;
		st->v[st->n++] = e;
	}
	/*
	 * Unknown users are checked against a hash with the parameters the
	 * accounts use (those of the first one), so both cost the same.
	 */
	if (st->n > 0) {
		snprintf(st->dummy_hash, sizeof(st->dummy_hash), "%s",
		    st->v[0].hash);
	} else if (crypt_gensalt_rn(
		       "$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL ||
	    crypt_r("unused", setting, cd) == NULL || cd->output[0] == '*') {
		snprintf(err, errlen, "libcrypt has no yescrypt");
		goto out;
	} else {
		snprintf(
		    st->dummy_hash, sizeof(st->dummy_hash), "%s", cd->output);
	}
	*state_r = st;
	st = NULL;
	ret = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s:%d: %s", c->file.path, lineno, why);
out:
	if (text != NULL) {
		sec_wipe(text, buf != NULL ? buf->len : 0);
		free(text);
	}
	sec_buf_free(&buf);
	if (cd != NULL) {
		sec_wipe(cd, sizeof(*cd));
		free(cd);
	}
	file_close(st);
	return ret;
}

static struct authn_user *
user_of(const struct file_entry *e)
{
	struct authn_user *u;
	size_t k;

	if ((u = authn_user_new(e->user)) == NULL)
		return NULL;
	for (k = 0; k < e->n_groups; k++) {
		if (authn_user_add_group(u, e->groups[k]) == -1) {
			authn_user_free(&u);
			return NULL;
		}
	}
	return u;
}

static enum authn_result
file_authenticate(void *state, const char *user, const struct sec_buf *password,
    const char *client, struct authn_user **user_r)
{
	struct file_state *st = state;
	const struct file_entry *e = find(st, user);
	const char *hash = e != NULL ? e->hash : st->dummy_hash;
	struct crypt_data *cd;
	char *phrase;
	enum authn_result ret = AUTHN_ERROR;
	int match;

	(void)client;
	if ((cd = calloc(1, sizeof(*cd))) == NULL ||
	    (phrase = malloc(password->len + 1)) == NULL) {
		free(cd);
		return AUTHN_ERROR;
	}
	memcpy(phrase, password->p, password->len);
	phrase[password->len] = '\0';
	if (crypt_r(phrase, hash, cd) == NULL || cd->output[0] == '*')
		goto out;
	match = strlen(cd->output) == strlen(hash) &&
	    sec_equal(cd->output, hash, strlen(hash));
	if (e == NULL)
		ret = AUTHN_UNKNOWN;
	else if (!match)
		ret = AUTHN_DENIED;
	else if (e->locked)
		ret = AUTHN_DISABLED;
	else if ((*user_r = user_of(e)) != NULL)
		ret = AUTHN_OK;
out:
	sec_wipe(phrase, password->len);
	free(phrase);
	sec_wipe(cd, sizeof(*cd));
	free(cd);
	return ret;
}

static enum authn_result
file_lookup(void *state, const char *user, struct authn_user **user_r)
{
	const struct file_entry *e = find(state, user);

	if (e == NULL)
		return AUTHN_UNKNOWN;
	if (e->locked)
		return AUTHN_DISABLED;
	if ((*user_r = user_of(e)) == NULL)
		return AUTHN_ERROR;
	return AUTHN_OK;
}

const struct authn_backend authn_file_backend = {
    .name = "file",
    .open = file_open,
    .close = file_close,
    .authenticate = file_authenticate,
    .lookup = file_lookup,
};
