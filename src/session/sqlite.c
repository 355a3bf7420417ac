/*
 * The SQLite session store: STATE_DIR/sessions.db in WAL mode with durable
 * (synchronous=FULL) commits. Opening and the schema are in sqlite_db.c.
 *
 * Two connections. The writer makes every change with group commit:
 * concurrent changes are queued, and one thread at a time (the leader)
 * runs a batch of them in one BEGIN IMMEDIATE ... COMMIT transaction, each
 * in a savepoint of its own, so that they share one fsync instead of
 * waiting for one each (a commit's fsync, 1-3 ms, used to cap sign-ins at
 * about 1 / fsync latency). No change is answered before the COMMIT that
 * made it durable succeeded; see "Group commit" below for the protocol.
 * Changes run one after another, so a refresh token is rotated at most
 * once even when several threads (or processes: BEGIN IMMEDIATE) present
 * it together. The reader answers get, list and the revocation feed under
 * its own mutex and, thanks to WAL, never waits for the writer.
 * Statements are prepared once at open and reset after each use. Any
 * SQLite error rolls the change (or the batch) back and answers
 * SESS_ERROR: the store fails closed and never leaves partial state.
 *
 * The ops expect the inputs the wrappers in session.c have validated
 * (bounds, token and sid syntax); memory safety does not depend on it.
 */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <sqlite3.h>

#include "log/log.h"
#include "session/session.h"
#include "util/b64.h"
#include "util/sec.h"

#define TOKEN_BYTES 32
#define SID_BYTES   16
#define HASH_BYTES  SHA256_DIGEST_LENGTH
#define PURGE_GRACE 86400 /* ended sessions are kept this long */

#define TOKEN_ROTATED 1

/* At most this many changes share one transaction and one fsync. */
#define BATCH_MAX 64

_Static_assert(B64URL_LEN(SID_BYTES) + 1 == SESS_ID_SIZE, "sid size");
_Static_assert(B64URL_LEN(TOKEN_BYTES) + 1 == SESS_TOKEN_SIZE, "token size");

/* In sqlite_db.c; see the contract there. */
int sess_sqlite_db_open(
    const char *path, int reader, sqlite3 **db_r, char *err, size_t errlen);

/* Columns of a session row, read by col_row(). */
#define SESSION_COLS                                                  \
	"s.sid, s.sub, s.backend, s.client, s.created, s.last_used, " \
	"s.expires, s.revoked_at"
#define NSESSION_COLS 8

/* The writer's statements. */
enum wstmt {
	W_BEGIN,
	W_COMMIT,
	W_ROLLBACK,
	W_SAVEPOINT,
	W_RELEASE,
	W_ROLLBACK_TO,
	W_INS_SESSION,
	W_INS_TOKEN,
	W_FIND_TOKEN,
	W_RETIRE_TOKEN,
	W_TOUCH,
	W_REVOKE_SID,
	W_REVOKE_TOKEN,
	W_REVOKE_USER,
	W_PURGE,
	W_COUNT,
};

static const char *const wsql[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_SAVEPOINT] = "SAVEPOINT op",
    [W_RELEASE] = "RELEASE op",
    [W_ROLLBACK_TO] = "ROLLBACK TO op",
    [W_INS_SESSION] = "INSERT INTO sessions (sid, sub, backend, client,"
		      " created, last_used, expires)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    [W_INS_TOKEN] = "INSERT INTO tokens (hash, sid, state, created)"
		    " VALUES (?1, ?2, 0, ?3)",
    [W_FIND_TOKEN] = "SELECT " SESSION_COLS ", t.state FROM tokens t"
		     " JOIN sessions s ON s.sid = t.sid WHERE t.hash = ?1",
    [W_RETIRE_TOKEN] = "UPDATE tokens SET state = 1"
		       " WHERE hash = ?1 AND state = 0",
    [W_TOUCH] = "UPDATE sessions SET last_used = ?2 WHERE sid = ?1",
    [W_REVOKE_SID] = "UPDATE sessions"
		     " SET revoked_at = coalesce(revoked_at, ?2)"
		     " WHERE sid = ?1",
    [W_REVOKE_TOKEN] = "UPDATE sessions SET revoked_at = ?2"
		       " WHERE revoked_at IS NULL"
		       " AND sid = (SELECT sid FROM tokens WHERE hash = ?1)",
    [W_REVOKE_USER] = "UPDATE sessions SET revoked_at = ?2"
		      " WHERE sub = ?1 AND revoked_at IS NULL",
    [W_PURGE] = "DELETE FROM sessions WHERE revoked_at < ?1"
		" OR expires < ?1 OR last_used < ?2",
};

/* The reader's statements. */
enum rstmt {
	R_GET,
	R_LIST,
	R_PING,
	R_REVOKED,
	R_COUNT,
};

static const char *const rsql[R_COUNT] = {
    [R_GET] = "SELECT " SESSION_COLS " FROM sessions s WHERE s.sid = ?1",
    [R_LIST] = "SELECT " SESSION_COLS " FROM sessions s"
	       " WHERE s.sub = ?1 AND s.revoked_at IS NULL"
	       " AND s.expires >= ?2 AND s.last_used >= ?3"
	       " ORDER BY s.created DESC, s.rowid DESC",
    [R_PING] = "SELECT 1 FROM sessions LIMIT 1",
    [R_REVOKED] = "SELECT sid, revoked_at, expires FROM sessions"
		  " WHERE revoked_at >= ?1 ORDER BY revoked_at, sid LIMIT ?2",
};

struct wop;

struct sqlite_store {
	struct sess_store base; /* first: the generic handle points here */
	pthread_mutex_t glock;  /* the write queue and busy */
	pthread_mutex_t rlock;  /* the reader and its statements */
	int glock_ok, rlock_ok;
	struct wop *qhead;  /* changes waiting for a batch, oldest first */
	struct wop **qtail; /* &qhead or &last->next */
	int busy;           /* a leader owns w and ws[] */
	sqlite3 *w;         /* the writer: only the leader uses it */
	sqlite3 *r;
	sqlite3_stmt *ws[W_COUNT];
	sqlite3_stmt *rs[R_COUNT];
};

/* A session row as read from the database. */
struct row {
	struct sess_info info;
	int revoked;
};

static const struct sess_store_ops sqlite_ops;

static struct sqlite_store *
store_of(struct sess_store *s)
{
	return (struct sqlite_store *)(void *)s;
}

/* a - b, saturated at the limits of long long instead of overflowing. */
static long long
sat_sub(long long a, long long b)
{
	long long r;

	if (__builtin_sub_overflow(a, b, &r))
		r = b > 0 ? LLONG_MIN : LLONG_MAX;
	return r;
}

/* Logs a SQLite failure of op: code and message, never a bound value. */
static void
db_fail(sqlite3 *db, const char *op)
{
	log_event(LOG_ERROR, "session_store_error", LS("store", "sqlite"),
	    LS("op", op), LI("code", sqlite3_extended_errcode(db)),
	    LS("error", sqlite3_errmsg(db)), LOG_END);
}

/* Resets q and drops its bindings, ready for the next use. */
static void
done(sqlite3_stmt *q)
{
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

/*
 * Binds the arguments to ?1, ?2, ... of q as fmt says, one letter each:
 * 't' const char * (text), 'i' long long, 'h' const unsigned char *
 * (a HASH_BYTES hash). They must outlive the statement's use. 0 or -1.
 */
static int
bind_args(sqlite3_stmt *q, const char *fmt, ...)
{
	const unsigned char *h;
	const char *t;
	va_list ap;
	int i, rc = SQLITE_OK;

	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		switch (fmt[i]) {
		case 't':
			t = va_arg(ap, const char *);
			rc = sqlite3_bind_text(q, i + 1, t, -1, SQLITE_STATIC);
			break;
		case 'i':
			rc =
			    sqlite3_bind_int64(q, i + 1, va_arg(ap, long long));
			break;
		case 'h':
			h = va_arg(ap, const unsigned char *);
			rc = sqlite3_bind_blob(
			    q, i + 1, h, HASH_BYTES, SQLITE_STATIC);
			break;
		default:
			rc = SQLITE_MISUSE;
			break;
		}
	}
	va_end(ap);
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * Steps q, bound with bind_args(), expecting no row, then resets it.
 * Returns the rows it changed on db, or -1 on error.
 */
static long long
run(sqlite3 *db, sqlite3_stmt *q)
{
	long long ret = -1;

	if (sqlite3_step(q) == SQLITE_DONE)
		ret = sqlite3_changes64(db);
	done(q);
	return ret;
}

/* Copies text column i into dst (cap bytes with the NUL). 0 or -1. */
static int
col_text(sqlite3_stmt *q, int i, char *dst, size_t cap)
{
	const unsigned char *p;
	int n, ret = -1;

	if (sqlite3_column_type(q, i) != SQLITE_TEXT ||
	    (p = sqlite3_column_text(q, i)) == NULL ||
	    (n = sqlite3_column_bytes(q, i)) < 0 || (size_t)n >= cap)
		goto out;
	memcpy(dst, p, (size_t)n);
	dst[n] = '\0';
	ret = 0;
out:
	return ret;
}

/* Reads the SESSION_COLS of the current row of q into r. 0 or -1. */
static int
col_row(sqlite3_stmt *q, struct row *r)
{
	struct sess_info *in = &r->info;
	int ret = -1, i;

	memset(r, 0, sizeof(*r));
	if (col_text(q, 0, in->sid, sizeof(in->sid)) == -1 ||
	    col_text(q, 1, in->sub, sizeof(in->sub)) == -1 ||
	    col_text(q, 2, in->backend, sizeof(in->backend)) == -1 ||
	    col_text(q, 3, in->client, sizeof(in->client)) == -1)
		goto out;
	for (i = 4; i < 7; i++)
		if (sqlite3_column_type(q, i) != SQLITE_INTEGER)
			goto out;
	in->created = sqlite3_column_int64(q, 4);
	in->last_used = sqlite3_column_int64(q, 5);
	in->expires = sqlite3_column_int64(q, 6);
	r->revoked = sqlite3_column_type(q, 7) != SQLITE_NULL;
	ret = 0;
out:
	return ret;
}

/*
 * Whether the session in r is active at now: SESS_OK, SESS_REVOKED, or
 * SESS_EXPIRED when past its absolute end or idle for more than idle.
 */
static enum sess_result
row_state(const struct row *r, long long now, long long idle)
{
	enum sess_result res = SESS_OK;

	if (r->revoked)
		res = SESS_REVOKED;
	else if (now > r->info.expires ||
	    r->info.last_used < sat_sub(now, idle))
		res = SESS_EXPIRED;
	return res;
}

/* SHA-256 of a token string into h. Returns 0 or -1. */
static int
token_hash(const char *token, unsigned char h[HASH_BYTES])
{
	return SHA256((const unsigned char *)token, strlen(token), h) == NULL
	    ? -1
	    : 0;
}

/* n random bytes, base64url-encoded into dst (B64URL_LEN(n) + 1). */
static int
random_b64(char *dst, size_t n)
{
	unsigned char raw[TOKEN_BYTES];
	int ret = -1;

	if (n > sizeof(raw) || sec_random(raw, n) == -1)
		goto out;
	b64url_encode(dst, raw, n);
	ret = 0;
out:
	sec_wipe(raw, sizeof(raw));
	return ret;
}

/*
 * Group commit: the write path.
 *
 * Every change (create, rotate, peek, the revocations, purge) is a struct
 * wop that its caller fills with inputs (on its own stack) and hands to
 * submit(). submit() appends it to the store's queue and then either waits
 * or leads:
 *
 *  - A thread whose op is queued and not done, finding no batch running
 *    (busy == 0), becomes the leader: it sets busy, detaches up to
 *    BATCH_MAX ops from the head of the queue (its own among them unless
 *    the queue was longer than that), releases glock and runs the batch
 *    on the writer connection (run_batch): BEGIN IMMEDIATE, each op inside
 *    a SAVEPOINT of its own, one COMMIT. Then, under glock again, it marks
 *    the batch's ops done, wakes their threads, clears busy and wakes the
 *    thread of the oldest op still queued (those arrived during the
 *    batch), which leads the next batch; if its own op is still queued,
 *    it leads the next batch itself.
 *  - The other threads wait on their op's condition variable until the
 *    op is done or they are woken to lead. Every queued op has a thread
 *    waiting for it, and whenever busy is cleared with ops queued, one of
 *    those threads is woken (or a newcomer leads first), so the queue
 *    never stalls. Waking only the threads that have something to do
 *    keeps a batch's end from waking every waiter on a two-core machine.
 *
 * Why this is as durable as one transaction per change: an op's result
 * (op->res and its outputs) is only read by its caller after done is set,
 * and done is set only after run_batch returned, i.e. after the COMMIT
 * that contains the op succeeded, which with synchronous=FULL in WAL mode
 * means its WAL frames were fsync'd. When BEGIN, a SAVEPOINT, RELEASE,
 * ROLLBACK TO or the COMMIT fails, or SQLite rolled the transaction back
 * on its own, the whole batch is rolled back and every op in it answers
 * SESS_ERROR, so nothing is ever answered that is not on disk. Callers
 * copy their outputs out only on SESS_OK, as before.
 *
 * Why ops do not disturb each other: they run one after another in
 * arrival order, each seeing the changes of those before it, exactly as
 * if each had its own transaction in that order (a token rotated by one op
 * is a reuse for the next). An op that fails (SESS_ERROR) is rolled back
 * to its savepoint: its partial writes vanish, the others' stay. An op
 * that answers SESS_NOT_FOUND, SESS_REUSED, SESS_EXPIRED or SESS_REVOKED
 * keeps its changes (a reuse revokes the session).
 *
 * Locking: glock protects the queue (qhead, qtail, each queued op's next
 * and done) and busy. The writer connection w and its statements ws[] are
 * used only by the leader, between its setting busy and clearing it, both
 * under glock: glock orders one leader's use before the next one's. A
 * follower's op fields are written by the leader before it takes glock to
 * set done, and read by the follower after it saw done under glock. Nobody
 * holds glock across SQLite calls, so queueing never waits for a fsync.
 */

/* One change waiting for, or inside, a group commit. */
struct wop {
	const char *name; /* for the log */
	/* Runs the change on st->w inside the batch's transaction. */
	enum sess_result (*run)(struct sqlite_store *st, struct wop *op);
	enum sess_result res; /* valid once done */
	int done;             /* under glock: committed or failed */
	struct wop *next;     /* under glock: the queue */
	pthread_cond_t wake;  /* done, or time to lead */
};

/*
 * Runs the n ops of v in one transaction on the writer and sets each
 * one's res. Only the leader calls it (busy set, glock not held).
 */
static void
run_batch(struct sqlite_store *st, struct wop **v, size_t n)
{
	sqlite3 *w = st->w;
	const char *failed = NULL;
	size_t i;

	if (run(w, st->ws[W_BEGIN]) == -1)
		failed = "begin";
	for (i = 0; failed == NULL && i < n; i++) {
		if (run(w, st->ws[W_SAVEPOINT]) == -1) {
			failed = "savepoint";
			break;
		}
		v[i]->res = v[i]->run(st, v[i]);
		if (v[i]->res == SESS_ERROR) {
			db_fail(w, v[i]->name);
			/*
			 * Some errors (I/O, full disk, out of memory) make
			 * SQLite roll the whole transaction back: the ops
			 * before this one are lost too, so the batch fails.
			 */
			if (sqlite3_get_autocommit(w) ||
			    run(w, st->ws[W_ROLLBACK_TO]) == -1) {
				failed = "rollback to savepoint";
				break;
			}
		}
		if (run(w, st->ws[W_RELEASE]) == -1)
			failed = "release savepoint";
	}
	if (failed == NULL && run(w, st->ws[W_COMMIT]) == -1)
		failed = "commit";
	if (failed != NULL) {
		db_fail(w, failed);
		if (!sqlite3_get_autocommit(w))
			run(w, st->ws[W_ROLLBACK]);
		for (i = 0; i < n; i++)
			v[i]->res = SESS_ERROR;
	}
}

/*
 * Queues op, waits until a batch holding it committed (or failed), leading
 * batches when no other thread does, and returns op's result. op and what
 * it points to must stay valid until then.
 */
static enum sess_result
submit(struct sqlite_store *st, struct wop *op)
{
	struct wop *batch[BATCH_MAX];
	enum sess_result res = SESS_ERROR;
	size_t n, i;

	op->res = SESS_ERROR;
	op->done = 0;
	op->next = NULL;
	if (pthread_cond_init(&op->wake, NULL) != 0)
		goto out;
	pthread_mutex_lock(&st->glock);
	*st->qtail = op;
	st->qtail = &op->next;
	while (!op->done) {
		if (st->busy) {
			pthread_cond_wait(&op->wake, &st->glock);
			continue;
		}
		/* Lead: the oldest ops, ours among them unless too many. */
		st->busy = 1;
		for (n = 0; n < BATCH_MAX && st->qhead != NULL; n++) {
			batch[n] = st->qhead;
			st->qhead = st->qhead->next;
		}
		if (st->qhead == NULL)
			st->qtail = &st->qhead;
		pthread_mutex_unlock(&st->glock);
		run_batch(st, batch, n);
		pthread_mutex_lock(&st->glock);
		/*
		 * Answer the batch. Signalled under glock: a follower
		 * cannot see done, return and destroy wake before we
		 * unlock.
		 */
		for (i = 0; i < n; i++) {
			batch[i]->done = 1;
			if (batch[i] != op)
				pthread_cond_signal(&batch[i]->wake);
		}
		st->busy = 0;
		/*
		 * Ops that came during the batch: the oldest one's thread
		 * leads next (or we do, our op still being queued).
		 */
		if (op->done && st->qhead != NULL)
			pthread_cond_signal(&st->qhead->wake);
	}
	res = op->res;
	pthread_mutex_unlock(&st->glock);
	pthread_cond_destroy(&op->wake);
out:
	return res;
}

/* sess_create: a session row and its first token. */
struct create_op {
	struct wop op; /* first */
	const char *sub, *backend, *client, *sid;
	const unsigned char *h;
	long long now, expires;
};

static enum sess_result
create_run(struct sqlite_store *st, struct wop *op)
{
	const struct create_op *c = (const struct create_op *)(void *)op;
	sqlite3_stmt *qs = st->ws[W_INS_SESSION], *qt = st->ws[W_INS_TOKEN];
	enum sess_result res = SESS_ERROR;

	if (bind_args(qs, "ttttii", c->sid, c->sub, c->backend, c->client,
		c->now, c->expires) == 0 &&
	    run(st->w, qs) == 1 &&
	    bind_args(qt, "hti", c->h, c->sid, c->now) == 0 &&
	    run(st->w, qt) == 1)
		res = SESS_OK;
	done(qs);
	done(qt);
	return res;
}

static enum sess_result
sqlite_create(struct sess_store *s, const char *sub, const char *backend,
    const char *client, long long now, long long ttl, char sid_r[SESS_ID_SIZE],
    char token_r[SESS_TOKEN_SIZE])
{
	struct create_op c = {.op = {.name = "create", .run = create_run}};
	enum sess_result res = SESS_ERROR;
	char sid[SESS_ID_SIZE], token[SESS_TOKEN_SIZE];
	unsigned char h[HASH_BYTES];

	if (ttl <= 0 || __builtin_add_overflow(now, ttl, &c.expires) ||
	    random_b64(sid, SID_BYTES) == -1 ||
	    random_b64(token, TOKEN_BYTES) == -1 || token_hash(token, h) == -1)
		goto out;
	c.sub = sub;
	c.backend = backend;
	c.client = client;
	c.sid = sid;
	c.h = h;
	c.now = now;
	res = submit(store_of(s), &c.op);
out:
	if (res == SESS_OK) {
		memcpy(sid_r, sid, sizeof(sid));
		memcpy(token_r, token, sizeof(token));
	}
	sec_wipe(token, sizeof(token));
	sec_wipe(h, sizeof(h));
	return res;
}

/*
 * Inside the writer's transaction: looks the token hash h up. Returns 1
 * with the session in r and the token's state in *state_r, 0 when unknown,
 * -1 on error.
 */
static int
find_token(struct sqlite_store *st, const unsigned char *h, struct row *r,
    int *state_r)
{
	sqlite3_stmt *q = st->ws[W_FIND_TOKEN];
	int ret = -1, rc;

	if (bind_args(q, "h", h) == -1)
		goto out;
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		ret = 0;
	else if (rc == SQLITE_ROW && col_row(q, r) == 0 &&
	    sqlite3_column_type(q, NSESSION_COLS) == SQLITE_INTEGER) {
		*state_r = sqlite3_column_int(q, NSESSION_COLS);
		ret = 1;
	}
out:
	done(q);
	return ret;
}

/*
 * Inside the writer's transaction: retires token old of session sid,
 * makes new its current token and marks the session used. 0 or -1.
 */
static int
swap_token(struct sqlite_store *st, const char *sid, const unsigned char *old,
    const unsigned char *new, long long now)
{
	sqlite3_stmt *qr = st->ws[W_RETIRE_TOKEN], *qi = st->ws[W_INS_TOKEN],
		     *qu = st->ws[W_TOUCH];
	int ret = -1;

	if (bind_args(qr, "h", old) == 0 && run(st->w, qr) == 1 &&
	    bind_args(qi, "hti", new, sid, now) == 0 && run(st->w, qi) == 1 &&
	    bind_args(qu, "ti", sid, now) == 0 && run(st->w, qu) == 1)
		ret = 0;
	done(qr);
	done(qi);
	done(qu);
	return ret;
}

/* sess_rotate (h2 the new token's hash) and sess_peek (h2 NULL). */
struct token_op {
	struct wop op; /* first */
	const unsigned char *h, *h2;
	long long now, idle;
	struct row r; /* out: the session */
};

static enum sess_result
token_run(struct sqlite_store *st, struct wop *op)
{
	struct token_op *t = (struct token_op *)(void *)op;
	sqlite3_stmt *qv = st->ws[W_REVOKE_SID];
	enum sess_result res = SESS_ERROR;
	int found, state = 0;

	memset(&t->r, 0, sizeof(t->r));
	if ((found = find_token(st, t->h, &t->r, &state)) == 0)
		res = SESS_NOT_FOUND;
	else if (found == 1 && state == TOKEN_ROTATED) {
		/* Reuse: a copy of the token was stolen; end the session. */
		if (bind_args(qv, "ti", t->r.info.sid, t->now) == 0 &&
		    run(st->w, qv) >= 0)
			res = SESS_REUSED;
		done(qv);
	} else if (found == 1 &&
	    (res = row_state(&t->r, t->now, t->idle)) == SESS_OK &&
	    t->h2 != NULL) {
		if (swap_token(st, t->r.info.sid, t->h, t->h2, t->now) == -1)
			res = SESS_ERROR;
		t->r.info.last_used = t->now;
	}
	return res;
}

/*
 * Rotation and its dry run (peek): checks token as sess_rotate does,
 * revoking the session on reuse; with token_r set and the session active,
 * replaces the token by a new one written to token_r.
 */
static enum sess_result
use_token(struct sess_store *s, const char *token, long long now,
    long long idle, char token_r[SESS_TOKEN_SIZE], struct sess_info *info_r)
{
	struct token_op t = {.op = {.name = token_r != NULL ? "rotate" : "peek",
				 .run = token_run},
	    .now = now,
	    .idle = idle};
	enum sess_result res = SESS_ERROR;
	char token2[SESS_TOKEN_SIZE];
	unsigned char h[HASH_BYTES], h2[HASH_BYTES];

	if (token_hash(token, h) == -1 ||
	    (token_r != NULL &&
		(random_b64(token2, TOKEN_BYTES) == -1 ||
		    token_hash(token2, h2) == -1)))
		goto out;
	t.h = h;
	t.h2 = token_r != NULL ? h2 : NULL;
	res = submit(store_of(s), &t.op);
out:
	if (res == SESS_REUSED)
		log_event(LOG_WARN, "refresh_token_reused",
		    LS("sid", t.r.info.sid), LS("sub", t.r.info.sub), LOG_END);
	if (res == SESS_OK && token_r != NULL)
		memcpy(token_r, token2, sizeof(token2));
	if (res == SESS_OK)
		*info_r = t.r.info;
	sec_wipe(token2, sizeof(token2));
	sec_wipe(h, sizeof(h));
	sec_wipe(h2, sizeof(h2));
	return res;
}

static enum sess_result
sqlite_rotate(struct sess_store *s, const char *token, long long now,
    long long idle, char token_r[SESS_TOKEN_SIZE], struct sess_info *info_r)
{
	return use_token(s, token, now, idle, token_r, info_r);
}

static enum sess_result
sqlite_peek(struct sess_store *s, const char *token, long long now,
    long long idle, struct sess_info *info_r)
{
	return use_token(s, token, now, idle, NULL, info_r);
}

/*
 * One writer statement w with ?1 = arg (fmt "ti": text, "hi": a hash) or
 * ?1 = i1 (fmt "ii"), and ?2 = i2.
 */
struct stmt_op {
	struct wop op; /* first */
	enum wstmt w;
	const char *fmt;
	const void *arg;
	long long i1, i2;
	long long n; /* out: the rows changed */
};

static enum sess_result
stmt_run(struct sqlite_store *st, struct wop *op)
{
	struct stmt_op *o = (struct stmt_op *)(void *)op;
	sqlite3_stmt *q = st->ws[o->w];
	enum sess_result res = SESS_ERROR;
	int rc;

	if (strcmp(o->fmt, "ii") == 0)
		rc = bind_args(q, "ii", o->i1, o->i2);
	else
		rc = bind_args(q, o->fmt, o->arg, o->i2);
	if (rc == 0 && (o->n = run(st->w, q)) >= 0)
		res = SESS_OK;
	done(q);
	return res;
}

/* Runs o in a group commit. Returns the rows changed, or -1 on error. */
static long long
write_stmt(struct sqlite_store *st, struct stmt_op *o)
{
	o->op.run = stmt_run;
	o->n = -1;
	return submit(st, &o->op) == SESS_OK ? o->n : -1;
}

static enum sess_result
sqlite_revoke_token(struct sess_store *s, const char *token, long long now)
{
	struct stmt_op o = {.op = {.name = "revoke_token"},
	    .w = W_REVOKE_TOKEN,
	    .fmt = "hi",
	    .i2 = now};
	enum sess_result res = SESS_ERROR;
	unsigned char h[HASH_BYTES];

	o.arg = h;
	if (token_hash(token, h) == 0 && write_stmt(store_of(s), &o) >= 0)
		res = SESS_OK;
	sec_wipe(h, sizeof(h));
	return res;
}

static enum sess_result
sqlite_revoke(struct sess_store *s, const char *sid, long long now)
{
	struct stmt_op o = {.op = {.name = "revoke"},
	    .w = W_REVOKE_SID,
	    .fmt = "ti",
	    .arg = sid,
	    .i2 = now};
	enum sess_result res = SESS_ERROR;
	long long n;

	n = write_stmt(store_of(s), &o);
	if (n == 0)
		res = SESS_NOT_FOUND;
	else if (n > 0)
		res = SESS_OK;
	return res;
}

static enum sess_result
sqlite_revoke_user(
    struct sess_store *s, const char *sub, long long now, unsigned int *count_r)
{
	struct stmt_op o = {.op = {.name = "revoke_user"},
	    .w = W_REVOKE_USER,
	    .fmt = "ti",
	    .arg = sub,
	    .i2 = now};
	enum sess_result res = SESS_ERROR;
	long long n;

	n = write_stmt(store_of(s), &o);
	if (n >= 0) {
		*count_r = n > UINT_MAX ? UINT_MAX : (unsigned int)n;
		res = SESS_OK;
	}
	return res;
}

static enum sess_result
sqlite_get(struct sess_store *s, const char *sid, long long now, long long idle,
    struct sess_info *info_r)
{
	struct sqlite_store *st = store_of(s);
	sqlite3_stmt *q = st->rs[R_GET];
	enum sess_result res = SESS_ERROR;
	struct row r;
	int rc;

	memset(&r, 0, sizeof(r));
	pthread_mutex_lock(&st->rlock);
	if (bind_args(q, "t", sid) == 0) {
		rc = sqlite3_step(q);
		if (rc == SQLITE_DONE)
			res = SESS_NOT_FOUND;
		else if (rc == SQLITE_ROW && col_row(q, &r) == 0)
			res = row_state(&r, now, idle);
	}
	if (res == SESS_ERROR)
		db_fail(st->r, "get");
	done(q);
	pthread_mutex_unlock(&st->rlock);
	if (res == SESS_OK)
		*info_r = r.info;
	return res;
}

/* Appends r's session to *v (n used, *cap allocated). 0 or -1. */
static int
push(struct sess_info **v, size_t n, size_t *cap, const struct row *r)
{
	struct sess_info *nv;
	size_t ncap;
	int ret = -1;

	if (n == *cap) {
		ncap = *cap == 0 ? 8 : *cap * 2;
		if (ncap > SIZE_MAX / sizeof(**v) ||
		    (nv = realloc(*v, ncap * sizeof(**v))) == NULL)
			goto out;
		*v = nv;
		*cap = ncap;
	}
	(*v)[n] = r->info;
	ret = 0;
out:
	return ret;
}

static enum sess_result
sqlite_list_user(struct sess_store *s, const char *sub, long long now,
    long long idle, struct sess_info **v_r, size_t *n_r)
{
	struct sqlite_store *st = store_of(s);
	sqlite3_stmt *q = st->rs[R_LIST];
	enum sess_result res = SESS_ERROR;
	struct sess_info *v = NULL;
	size_t n = 0, cap = 0;
	struct row r;
	int rc = SQLITE_ERROR;

	pthread_mutex_lock(&st->rlock);
	if (bind_args(q, "tii", sub, now, sat_sub(now, idle)) == 0)
		while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
			if (col_row(q, &r) == -1 || push(&v, n, &cap, &r) == -1)
				break;
			n++;
		}
	if (rc == SQLITE_DONE)
		res = SESS_OK;
	else
		db_fail(st->r, "list_user");
	done(q);
	pthread_mutex_unlock(&st->rlock);
	if (res == SESS_OK) {
		*v_r = v;
		*n_r = n;
		v = NULL;
	}
	free(v);
	return res;
}

/* Appends r to *v (n used, *cap allocated). 0 or -1. */
static int
push_rev(struct sess_revocation **v, size_t n, size_t *cap,
    const struct sess_revocation *r)
{
	struct sess_revocation *nv;
	size_t ncap;
	int ret = -1;

	if (n == *cap) {
		ncap = *cap == 0 ? 64 : *cap * 2;
		if (ncap > SIZE_MAX / sizeof(**v) ||
		    (nv = realloc(*v, ncap * sizeof(**v))) == NULL)
			goto out;
		*v = nv;
		*cap = ncap;
	}
	(*v)[n] = *r;
	ret = 0;
out:
	return ret;
}

static enum sess_result
sqlite_revoked_since(struct sess_store *s, long long since, size_t max,
    struct sess_revocation **v_r, size_t *n_r)
{
	struct sqlite_store *st = store_of(s);
	sqlite3_stmt *q = st->rs[R_REVOKED];
	enum sess_result res = SESS_ERROR;
	struct sess_revocation *v = NULL, e;
	size_t n = 0, cap = 0;
	int rc = SQLITE_ERROR;

	if (max > (size_t)INT32_MAX)
		max = (size_t)INT32_MAX;
	pthread_mutex_lock(&st->rlock);
	if (max == 0)
		rc = SQLITE_DONE;
	else if (bind_args(q, "ii", since, (long long)max) == 0)
		while (n < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			memset(&e, 0, sizeof(e));
			if (col_text(q, 0, e.sid, sizeof(e.sid)) == -1 ||
			    sqlite3_column_type(q, 1) != SQLITE_INTEGER ||
			    sqlite3_column_type(q, 2) != SQLITE_INTEGER) {
				rc = SQLITE_CORRUPT;
				break;
			}
			e.revoked_at = sqlite3_column_int64(q, 1);
			e.expires = sqlite3_column_int64(q, 2);
			if (push_rev(&v, n, &cap, &e) == -1) {
				rc = SQLITE_NOMEM;
				break;
			}
			n++;
		}
	/* The loop ends on SQLITE_DONE, or on a row once max are read. */
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && n == max))
		res = SESS_OK;
	else
		db_fail(st->r, "revoked_since");
	done(q);
	pthread_mutex_unlock(&st->rlock);
	if (res == SESS_OK) {
		*v_r = n > 0 ? v : NULL;
		*n_r = n;
		if (n > 0)
			v = NULL;
	}
	free(v);
	return res;
}

static int
sqlite_purge(struct sess_store *s, long long now, long long idle)
{
	long long before = sat_sub(now, PURGE_GRACE), n;
	struct stmt_op o = {.op = {.name = "purge"},
	    .w = W_PURGE,
	    .fmt = "ii",
	    .i1 = before,
	    .i2 = sat_sub(before, idle)};

	n = write_stmt(store_of(s), &o);
	return n < 0 ? -1 : n > INT_MAX ? INT_MAX : (int)n;
}

/*
 * The reader can read the table. Only the reader: /readyz calls this on an
 * HTTP thread, which must never wait for the writer (a batch lasts
 * through its fsync).
 */
static int
sqlite_ping(struct sess_store *s)
{
	struct sqlite_store *st = store_of(s);
	int rc;

	pthread_mutex_lock(&st->rlock);
	rc = sqlite3_step(st->rs[R_PING]);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(st->r, "ping");
	done(st->rs[R_PING]);
	pthread_mutex_unlock(&st->rlock);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static void
sqlite_close(struct sess_store *s)
{
	struct sqlite_store *st = store_of(s);
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < R_COUNT; i++)
		sqlite3_finalize(st->rs[i]);
	for (i = 0; i < W_COUNT; i++)
		sqlite3_finalize(st->ws[i]);
	/* The reader first: the last close checkpoints the WAL. */
	sqlite3_close(st->r);
	sqlite3_close(st->w);
	if (st->rlock_ok)
		pthread_mutex_destroy(&st->rlock);
	if (st->glock_ok)
		pthread_mutex_destroy(&st->glock);
	free(st);
}

/* Prepares the n statements in sql on db into v. Returns 0 or -1. */
static int
prepare_all(sqlite3 *db, const char *const *sql, sqlite3_stmt **v, size_t n,
    char *err, size_t errlen)
{
	size_t i;
	int ret = -1;

	for (i = 0; i < n; i++) {
		if (sqlite3_prepare_v3(db, sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &v[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen,
			    "cannot prepare statement %zu: %s", i,
			    sqlite3_errmsg(db));
			goto out;
		}
	}
	ret = 0;
out:
	return ret;
}

int
sess_sqlite_open(
    const char *state_dir, struct sess_store **r, char *err, size_t errlen)
{
	struct sqlite_store *st = NULL;
	char path[PATH_MAX];
	int n, ret = -1;

	if (state_dir == NULL || r == NULL) {
		snprintf(err, errlen, "no state directory");
		goto out;
	}
	n = snprintf(path, sizeof(path), "%s/sessions.db", state_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		goto out;
	}
	if (!sqlite3_threadsafe()) {
		snprintf(err, errlen, "SQLite was built without threads");
		goto out;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	st->base.ops = &sqlite_ops;
	st->qtail = &st->qhead;
	st->glock_ok = pthread_mutex_init(&st->glock, NULL) == 0;
	st->rlock_ok = pthread_mutex_init(&st->rlock, NULL) == 0;
	if (!st->glock_ok || !st->rlock_ok) {
		snprintf(err, errlen, "cannot create a mutex");
		goto out;
	}
	/* The writer first: it creates the file and the schema. */
	if (sess_sqlite_db_open(path, 0, &st->w, err, errlen) == -1 ||
	    sess_sqlite_db_open(path, 1, &st->r, err, errlen) == -1 ||
	    prepare_all(st->w, wsql, st->ws, W_COUNT, err, errlen) == -1 ||
	    prepare_all(st->r, rsql, st->rs, R_COUNT, err, errlen) == -1)
		goto out;
	*r = &st->base;
	st = NULL;
	ret = 0;
out:
	if (st != NULL)
		sqlite_close(&st->base);
	return ret;
}

static const struct sess_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .create = sqlite_create,
    .rotate = sqlite_rotate,
    .peek = sqlite_peek,
    .revoke_token = sqlite_revoke_token,
    .revoke = sqlite_revoke,
    .revoke_user = sqlite_revoke_user,
    .get = sqlite_get,
    .list_user = sqlite_list_user,
    .purge = sqlite_purge,
    .ping = sqlite_ping,
    .revoked_since = sqlite_revoked_since,
};
