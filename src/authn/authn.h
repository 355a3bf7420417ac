/*
 * Authentication backends: a table of functions per backend (ldap, pam,
 * file), and the rules every backend's input obeys.
 *
 * Only AUTHN_OK grants. Every other result denies: AUTHN_UNKNOWN lets the
 * next backend in the chain try; AUTHN_DENIED (wrong password),
 * AUTHN_DISABLED (locked, expired) stop the chain with 401; AUTHN_TEMPFAIL
 * stops it with 503. Backend functions block (directory, PAM, yescrypt):
 * they run on the worker pool, never on an HTTP thread.
 */
#ifndef EA_AUTHN_AUTHN_H
#define EA_AUTHN_AUTHN_H

#include <stddef.h>

#include "util/sec.h"

struct cfg;

#define AUTHN_USER_MAX     256
#define AUTHN_PASSWORD_MAX 1024
#define AUTHN_GROUPS_MAX   1024
#define AUTHN_CANON_MAX    (AUTHN_USER_MAX + 1)

enum authn_result {
	AUTHN_OK = 0,
	AUTHN_UNKNOWN,  /* no such user here: ask the next backend */
	AUTHN_DENIED,   /* the backend knows the user; credentials wrong */
	AUTHN_DISABLED, /* the account is locked, expired or disabled */
	AUTHN_TEMPFAIL, /* the backend cannot answer now (503) */
	AUTHN_ERROR,    /* anything else: deny */
};

/* A short name for r ("ok", "unknown_user", ...), for logs. */
const char *authn_result_name(enum authn_result r);

/* Who signed in: what the backend knows of the user. */
struct authn_user {
	char *name;    /* canonical user name (the token's sub) */
	char *display; /* display name, or NULL */
	char *email;   /* or NULL */
	char **groups; /* group names and/or DNs */
	size_t n_groups;
};

/* NULL-safe; sets *up to NULL. */
void authn_user_free(struct authn_user **up);

/* A new user with a copy of name, no groups. NULL when out of memory. */
struct authn_user *authn_user_new(const char *name);

/* Appends a copy of group (duplicates and past AUTHN_GROUPS_MAX skipped).
 * Returns 0 or -1. */
int authn_user_add_group(struct authn_user *u, const char *group);

struct authn_backend {
	const char *name; /* "ldap", "pam", "file" */
	/*
	 * Opens the backend for configuration c: returns its state in
	 * *state_r, or -1 with a message in err (start-up or reload fails).
	 */
	int (*open)(
	    const struct cfg *c, void **state_r, char *err, size_t errlen);
	/* Starts background work (connection probes); NULL if none. Not
	 * called for -t, which must not connect anywhere. */
	int (*start)(void *state);
	void (*close)(void *state);
	/*
	 * Checks user's password. On AUTHN_OK, *user_r is the new user (the
	 * caller frees). client is the client address, for the backend's
	 * own logs or PAM_RHOST.
	 */
	enum authn_result (*authenticate)(void *state, const char *user,
	    const struct sec_buf *password, const char *client,
	    struct authn_user **user_r);
	/*
	 * Looks the user up again without a password (refresh, explain):
	 * AUTHN_OK with fresh groups, AUTHN_UNKNOWN when gone, AUTHN_DISABLED
	 * when locked.
	 */
	enum authn_result (*lookup)(
	    void *state, const char *user, struct authn_user **user_r);
	/* 1 when the backend can answer now (/readyz); NULL: always. */
	int (*ready)(void *state);
	/* Prometheus text of the backend's own metrics (a new string the
	 * caller frees), or NULL. May itself be NULL. */
	char *(*metrics)(void *state);
};

/* The backend named name, or NULL. */
const struct authn_backend *authn_backend_find(const char *name);

/*
 * The input rules, checked before any backend is called: the user name is
 * 1-256 bytes of valid UTF-8 without control characters; the password
 * 1-1024 bytes without NUL. Returns 1 when acceptable.
 */
int authn_username_ok(const char *user, size_t len);
int authn_password_ok(const char *password, size_t len);

extern const struct authn_backend authn_file_backend;
extern const struct authn_backend authn_ldap_backend;
extern const struct authn_backend authn_pam_backend;

#endif
