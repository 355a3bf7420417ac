/*
 * The daemon's own copy of the revocation feed, for GET /v1/verify: the
 * session ids revoked in the store (by this node or, with Redis, any
 * other), read every second by a thread, each kept until the last access
 * token of its session has expired. /v1/verify then refuses a logged-out
 * or revoked session's token within about a second, with one lookup in
 * memory and no store call per request.
 */
#ifndef EA_DAEMON_REVOKED_H
#define EA_DAEMON_REVOKED_H

struct sess_store;

enum revoked_state {
	REVOKED_NO,    /* not revoked, and the set is fresh */
	REVOKED_YES,   /* revoked, or no session id */
	REVOKED_STALE, /* the store has not answered for a while: deny */
};

/*
 * Starts the reader thread on store. keep is how long a revocation
 * matters (the longest access-token lifetime plus leeway), in seconds.
 * 0 or -1.
 */
int revoked_start(struct sess_store *store, long long keep);

/* Updates keep after a reload. */
void revoked_set_keep(long long keep);

/* Stops the thread and frees the set. */
void revoked_stop(void);

/* Whether sid (NULL: none) may be used at wall-clock time now. */
enum revoked_state revoked_check(const char *sid, long long now);

#endif
