/*
 * Sessions and refresh tokens behind a store interface. SQLite in
 * state_dir is the embedded store; a Redis store can implement the same
 * operations later.
 *
 * A session is created at sign-in and carries its refresh token. Only the
 * SHA-256 of a refresh token is stored. Every refresh rotates the token;
 * presenting a token that was already rotated away revokes the whole
 * session (reuse detection). A session ends at its absolute expiry
 * (created + refresh_ttl), when unused for refresh_idle, or when revoked.
 */
#ifndef EA_SESSION_SESSION_H
#define EA_SESSION_SESSION_H

#include <stddef.h>

/* A session id: 128 random bits, base64url (22 chars) + NUL. */
#define SESS_ID_SIZE 23
/* A refresh token: 256 random bits, base64url (43 chars) + NUL. */
#define SESS_TOKEN_SIZE 44

enum sess_result {
	SESS_OK = 0,
	SESS_NOT_FOUND, /* no such token or session */
	SESS_REUSED,    /* a rotated token was presented: session revoked now */
	SESS_EXPIRED,   /* absolute or idle lifetime over */
	SESS_REVOKED,
	SESS_ERROR, /* the store failed: deny (503) */
};

struct sess_info {
	char sid[SESS_ID_SIZE];
	char sub[257];     /* the user, as the backend named him */
	char backend[16];  /* "ldap", "pam", "file" */
	long long created; /* Unix seconds */
	long long last_used;
	long long expires; /* absolute end */
	char client[46];   /* address at sign-in */
};

/* A revoked session, for the revocation feed. */
struct sess_revocation {
	char sid[SESS_ID_SIZE];
	long long revoked_at; /* Unix seconds */
	long long expires;    /* the session's absolute end */
};

struct sess_store;

struct sess_store_ops {
	const char *name;
	void (*close)(struct sess_store *s);
	enum sess_result (*create)(struct sess_store *s, const char *sub,
	    const char *backend, const char *client, long long now,
	    long long ttl, char sid_r[SESS_ID_SIZE],
	    char token_r[SESS_TOKEN_SIZE]);
	enum sess_result (*rotate)(struct sess_store *s, const char *token,
	    long long now, long long idle, char token_r[SESS_TOKEN_SIZE],
	    struct sess_info *info_r);
	enum sess_result (*peek)(struct sess_store *s, const char *token,
	    long long now, long long idle, struct sess_info *info_r);
	enum sess_result (*revoke_token)(
	    struct sess_store *s, const char *token, long long now);
	enum sess_result (*revoke)(
	    struct sess_store *s, const char *sid, long long now);
	enum sess_result (*revoke_user)(struct sess_store *s, const char *sub,
	    long long now, unsigned int *count_r);
	enum sess_result (*get)(struct sess_store *s, const char *sid,
	    long long now, long long idle, struct sess_info *info_r);
	enum sess_result (*list_user)(struct sess_store *s, const char *sub,
	    long long now, long long idle, struct sess_info **v_r, size_t *n_r);
	int (*purge)(struct sess_store *s, long long now, long long idle);
	int (*ping)(struct sess_store *s);
	enum sess_result (*revoked_since)(struct sess_store *s, long long since,
	    size_t max, struct sess_revocation **v_r, size_t *n_r);
};

struct sess_store {
	const struct sess_store_ops *ops;
};

/*
 * Opens (creating if needed) STATE_DIR/sessions.db: WAL, synchronous=FULL,
 * file mode 0600. Returns 0 and the store, or -1 with a message in err.
 * The store is thread-safe.
 */
int sess_sqlite_open(
    const char *state_dir, struct sess_store **r, char *err, size_t errlen);

/*
 * Wrappers over the ops. Outputs are written only on SESS_OK.
 *
 * sess_create: a new session for sub with a fresh refresh token. ttl is the
 * absolute lifetime (refresh_ttl).
 * sess_rotate: token must be the session's current token, the session not
 * revoked, not past expires, and not idle for more than idle seconds
 * (now - last_used > idle); then a new token replaces it, last_used = now.
 * A token rotated away earlier gives SESS_REUSED and revokes the session.
 * sess_peek: the same checks as sess_rotate (a rotated token also gives
 * SESS_REUSED and revokes the session) but nothing else changes: the
 * session of a token, before the caller decides to rotate it.
 * sess_revoke_token: logout; SESS_OK also when the token is unknown.
 * sess_get: the session when active (not revoked, expired or idle).
 * sess_list_user: active sessions of sub, newest first; *v_r is a new
 * array the caller frees with free().
 * sess_purge: deletes sessions (and their tokens) that ended more than a
 * day ago; returns the number deleted or -1.
 * sess_ping: 0 when the store answers.
 */
void sess_close(struct sess_store *s);
enum sess_result sess_create(struct sess_store *s, const char *sub,
    const char *backend, const char *client, long long now, long long ttl,
    char sid_r[SESS_ID_SIZE], char token_r[SESS_TOKEN_SIZE]);
enum sess_result sess_rotate(struct sess_store *s, const char *token,
    long long now, long long idle, char token_r[SESS_TOKEN_SIZE],
    struct sess_info *info_r);
enum sess_result sess_peek(struct sess_store *s, const char *token,
    long long now, long long idle, struct sess_info *info_r);
enum sess_result sess_revoke_token(
    struct sess_store *s, const char *token, long long now);
enum sess_result sess_revoke(
    struct sess_store *s, const char *sid, long long now);
enum sess_result sess_revoke_user(struct sess_store *s, const char *sub,
    long long now, unsigned int *count_r);
enum sess_result sess_get(struct sess_store *s, const char *sid, long long now,
    long long idle, struct sess_info *info_r);
enum sess_result sess_list_user(struct sess_store *s, const char *sub,
    long long now, long long idle, struct sess_info **v_r, size_t *n_r);
int sess_purge(struct sess_store *s, long long now, long long idle);
int sess_ping(struct sess_store *s);

/*
 * sess_revoked_since: sessions whose revoked_at >= since, oldest
 * revocation first, at most max of them; *v_r is a new array the caller
 * frees with free() (NULL when *n_r is 0). SESS_ERROR when the store
 * fails or does not keep revocations.
 */
enum sess_result sess_revoked_since(struct sess_store *s, long long since,
    size_t max, struct sess_revocation **v_r, size_t *n_r);

#endif
