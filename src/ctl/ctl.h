/*
 * emailauthctl: what its command files share.
 */
#ifndef EA_CTL_CTL_H
#define EA_CTL_CTL_H

#include <jansson.h>

struct cfg;

/* Exit codes (docs/operations.md). */
enum ctl_exit {
	CTL_OK = 0,          /* done */
	CTL_FAILED = 1,      /* refused, not found, not valid, local error */
	CTL_USAGE = 2,       /* bad command line */
	CTL_UNREACHABLE = 3, /* the daemon did not answer, or answered 5xx */
	CTL_DENIED = 4,      /* 401/403: no, a bad or a weak token */
	CTL_CONFLICT = 5,    /* 409/412: refused to keep the map safe, or
				an edit raced another */
};

/* Options given before the command (or the environment). */
struct ctl_opts {
	const char *config_path;
	const char *url;        /* --url, EMAILAUTH_URL */
	const char *token_file; /* --token-file, EMAILAUTH_TOKEN_FILE */
	const char *cacert;     /* --cacert */
	int json;               /* --json anywhere */
};

extern struct ctl_opts ctl;

/* Loads ctl.config_path; NULL after printing why. */
struct cfg *ctl_load_config(void);

/* 1 when an admin token is at hand (EMAILAUTH_TOKEN or a token file). */
int ctl_have_token(void);

/*
 * One request to the daemon's admin API. path is already escaped; body
 * (may be NULL) is sent as JSON; if_match (may be NULL) as If-Match.
 * Returns CTL_OK with *status_r, *resp_r (the JSON body or NULL; the
 * caller decrefs) and etag_r (empty when none) when an answer came,
 * else an exit code after printing why.
 */
int ctl_api(const char *method, const char *path, json_t *body,
    const char *if_match, long *status_r, json_t **resp_r, char etag_r[128]);

/* Prints a non-2xx answer's problem detail; returns its exit code. */
int ctl_api_failed(long status, json_t *resp);

/* Escapes s for a URL path segment or query value; free() it. */
char *ctl_escape(const char *s);

/* Prints j: compact JSON with --json, else indented. */
void ctl_print_json(json_t *j);

int cmd_roles_api(int argc, char **argv);
int cmd_sessions(int argc, char **argv);

#endif
