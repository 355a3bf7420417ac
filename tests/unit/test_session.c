/*
 * Unit tests for src/session/: the wrappers and the SQLite store. Every
 * time is an explicit `now`; only the group-commit tests sleep, briefly,
 * to line changes up behind a write lock held by another connection. Each test
 * runs on a store in a fresh directory under /tmp, removed afterwards; a second
 * raw SQLite connection looks into the database and breaks it where a test
 * needs a failing store.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log/log.h"
#include "session/session.h"

#define T0   1700000000LL /* an arbitrary "now" */
#define TTL  28800LL
#define IDLE 3600LL
#define DAY  86400LL

/* A well-formed token and sid that no store ever issued. */
#define UNKNOWN_TOKEN "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define UNKNOWN_SID   "AAAAAAAAAAAAAAAAAAAAAA"

/* The fixture: a directory and a store opened on it. */
struct fx {
	char dir[64];
	struct sess_store *st;
};

static const char *
res_name(enum sess_result r)
{
	static const char *const names[] = {"SESS_OK", "SESS_NOT_FOUND",
	    "SESS_REUSED", "SESS_EXPIRED", "SESS_REVOKED", "SESS_ERROR"};

	return (unsigned)r < 6 ? names[r] : "?";
}

/* Fails the test with what when got is not want. */
#define CHECK(what, got, want) \
	check_res((what), (got), (want), __FILE__, __LINE__)

static void
check_res(const char *what, enum sess_result got, enum sess_result want,
    const char *file, int line)
{
	if (got != want)
		fail_msg("%s:%d: %s: got %s, want %s", file, line, what,
		    res_name(got), res_name(want));
}

/* Removes dir and the files in it. */
static void
rm_dir(const char *dir)
{
	struct dirent *e;
	char p[PATH_MAX];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) == -1)
			rmdir(p);
	}
	closedir(d);
	rmdir(dir);
}

static void
make_dir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/ea-test-session-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static struct sess_store *
open_store(const char *dir)
{
	struct sess_store *st = NULL;
	char err[256] = "";

	if (sess_sqlite_open(dir, &st, err, sizeof(err)) == -1)
		fail_msg("sess_sqlite_open(%s): %s", dir, err);
	assert_non_null(st);
	return st;
}

static int
setup(void **state)
{
	struct fx *fx;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	make_dir(fx->dir, sizeof(fx->dir));
	fx->st = open_store(fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	sess_close(fx->st);
	rm_dir(fx->dir);
	free(fx);
	return 0;
}

/* Runs sql on a raw connection to dir's database. */
static void
raw_exec(const char *dir, const char *sql)
{
	char p[PATH_MAX], *msg = NULL;
	sqlite3 *db = NULL;

	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_int_equal(
	    sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* The integer a query on a raw connection to dir's database answers. */
static long long
raw_int(const char *dir, const char *sql)
{
	sqlite3_stmt *q = NULL;
	char p[PATH_MAX];
	sqlite3 *db = NULL;
	long long v;

	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_int_equal(
	    sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* A session for sub created at now with lifetime ttl; its sid and token. */
static void
new_session(struct sess_store *st, const char *sub, long long now,
    long long ttl, char sid[SESS_ID_SIZE], char tok[SESS_TOKEN_SIZE])
{
	CHECK("create",
	    sess_create(st, sub, "ldap", "192.0.2.1", now, ttl, sid, tok),
	    SESS_OK);
	assert_int_equal(strlen(sid), SESS_ID_SIZE - 1);
	assert_int_equal(strlen(tok), SESS_TOKEN_SIZE - 1);
}

/* Rotates tok at now, which must succeed; tok becomes the new token. */
static void
rotate_ok(struct sess_store *st, char tok[SESS_TOKEN_SIZE], long long now)
{
	struct sess_info info;
	char next[SESS_TOKEN_SIZE];

	CHECK("rotate", sess_rotate(st, tok, now, IDLE, next, &info), SESS_OK);
	assert_string_not_equal(next, tok);
	assert_int_equal(info.last_used, now);
	memcpy(tok, next, SESS_TOKEN_SIZE);
}

/* Rotates tok expecting want, and that the outputs stay untouched. */
static void
rotate_fails(struct sess_store *st, const char *tok, long long now,
    long long idle, enum sess_result want, const char *what)
{
	struct sess_info info, fill;
	char next[SESS_TOKEN_SIZE];

	memset(&info, 0x5a, sizeof(info));
	memset(&fill, 0x5a, sizeof(fill));
	memset(next, 0x5a, sizeof(next));
	CHECK(what, sess_rotate(st, tok, now, idle, next, &info), want);
	assert_memory_equal(&info, &fill, sizeof(info));
	assert_memory_equal(next, &fill, sizeof(next));
}

/* Peeks at tok expecting want, and that the output stays untouched. */
static void
peek_fails(struct sess_store *st, const char *tok, long long now,
    long long idle, enum sess_result want, const char *what)
{
	struct sess_info info, fill;

	memset(&info, 0x5a, sizeof(info));
	memset(&fill, 0x5a, sizeof(fill));
	CHECK(what, sess_peek(st, tok, now, idle, &info), want);
	assert_memory_equal(&info, &fill, sizeof(info));
}

static void
test_file_modes(void **state)
{
	static const mode_t umasks[] = {0, 022, 0277};
	static const char *const files[] = {
	    "sessions.db", "sessions.db-wal", "sessions.db-shm"};
	char dir[64], p[PATH_MAX], sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	struct sess_store *st;
	struct stat sb;
	mode_t old;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(umasks) / sizeof(umasks[0]); i++) {
		make_dir(dir, sizeof(dir));
		old = umask(umasks[i]);
		st = open_store(dir);
		new_session(st, "alice", T0, TTL, sid, tok);
		umask(old);
		for (j = 0; j < sizeof(files) / sizeof(files[0]); j++) {
			snprintf(p, sizeof(p), "%s/%s", dir, files[j]);
			assert_int_equal(stat(p, &sb), 0);
			if ((sb.st_mode & 07777) != 0600)
				fail_msg("umask %03o: %s has mode %04o",
				    (unsigned)umasks[i], files[j],
				    (unsigned)(sb.st_mode & 07777));
		}
		sess_close(st);
		rm_dir(dir);
	}
}

/* Preparations of a state directory that opening must refuse. */
static void
prep_mode(const char *dir, char *sd, size_t n)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_non_null(f = fopen(p, "w"));
	fclose(f);
	assert_int_equal(chmod(p, 0640), 0);
	snprintf(sd, n, "%s", dir);
}

static void
prep_symlink(const char *dir, char *sd, size_t n)
{
	char p[PATH_MAX], t[PATH_MAX];
	FILE *f;

	snprintf(t, sizeof(t), "%s/target", dir);
	assert_non_null(f = fopen(t, "w"));
	fclose(f);
	assert_int_equal(chmod(t, 0600), 0);
	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_int_equal(symlink(t, p), 0);
	snprintf(sd, n, "%s", dir);
}

static void
prep_dir(const char *dir, char *sd, size_t n)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(sd, n, "%s", dir);
}

static void
prep_missing(const char *dir, char *sd, size_t n)
{
	snprintf(sd, n, "%s/missing", dir);
}

static void
prep_too_long(const char *dir, char *sd, size_t n)
{
	(void)dir;
	assert_true(n > PATH_MAX);
	memset(sd, 'a', PATH_MAX);
	sd[PATH_MAX] = '\0';
}

/* A database left by a newer build, or a foreign one. */
static void
prep_sql(const char *dir, const char *sql, char *sd, size_t n)
{
	char p[PATH_MAX];
	sqlite3 *db = NULL;

	snprintf(p, sizeof(p), "%s/sessions.db", dir);
	assert_int_equal(sqlite3_open_v2(p, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(chmod(p, 0600), 0);
	snprintf(sd, n, "%s", dir);
}

static void
prep_newer(const char *dir, char *sd, size_t n)
{
	prep_sql(dir, "PRAGMA user_version = 3", sd, n);
}

static void
prep_foreign(const char *dir, char *sd, size_t n)
{
	prep_sql(dir, "CREATE TABLE sessions (x)", sd, n);
}

static void
test_open_refused(void **state)
{
	static const struct {
		const char *name;
		void (*prep)(const char *, char *, size_t);
		const char *msg; /* in the error message */
	} cases[] = {
	    {"group-readable file", prep_mode, "run chmod 600"},
	    {"symbolic link", prep_symlink, "cannot open"},
	    {"directory", prep_dir, "not a regular file"},
	    {"missing state_dir", prep_missing, "cannot open"},
	    {"path too long", prep_too_long, "too long"},
	    {"newer schema", prep_newer, "schema version 3"},
	    {"foreign database", prep_foreign, "schema"},
	};
	static struct sess_store dummy;
	struct sess_store *st, *sentinel = &dummy;
	char dir[64], sd[PATH_MAX + 16], err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_dir(dir, sizeof(dir));
		cases[i].prep(dir, sd, sizeof(sd));
		st = sentinel;
		err[0] = '\0';
		if (sess_sqlite_open(sd, &st, err, sizeof(err)) != -1)
			fail_msg("%s: opened", cases[i].name);
		if (st != sentinel)
			fail_msg("%s: output written", cases[i].name);
		if (strstr(err, cases[i].msg) == NULL)
			fail_msg("%s: message \"%s\"", cases[i].name, err);
		rm_dir(dir);
	}
	assert_int_equal(sess_sqlite_open(NULL, &st, err, sizeof(err)), -1);
}

static void
test_chain(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE], next[SESS_TOKEN_SIZE];
	struct sess_info info;
	long long now = T0;
	int i;

	new_session(fx->st, "alice@example.com", T0, TTL, sid, tok);
	CHECK("get", sess_get(fx->st, sid, T0, IDLE, &info), SESS_OK);
	assert_string_equal(info.sid, sid);
	assert_string_equal(info.sub, "alice@example.com");
	assert_string_equal(info.backend, "ldap");
	assert_string_equal(info.client, "192.0.2.1");
	assert_int_equal(info.created, T0);
	assert_int_equal(info.last_used, T0);
	assert_int_equal(info.expires, T0 + TTL);
	/* Used every 50 minutes, the chain lives until the absolute end. */
	for (i = 0; now + 3000 <= T0 + TTL; i++) {
		now += 3000;
		CHECK("rotate",
		    sess_rotate(fx->st, tok, now, IDLE, next, &info), SESS_OK);
		assert_string_not_equal(next, tok);
		assert_int_equal(strlen(next), SESS_TOKEN_SIZE - 1);
		assert_string_equal(info.sid, sid);
		assert_string_equal(info.sub, "alice@example.com");
		assert_int_equal(info.created, T0);
		assert_int_equal(info.last_used, now);
		assert_int_equal(info.expires, T0 + TTL);
		memcpy(tok, next, sizeof(tok));
		CHECK("get", sess_get(fx->st, sid, now, IDLE, &info), SESS_OK);
		assert_int_equal(info.last_used, now);
	}
	assert_int_equal(i, 9);
	rotate_fails(fx->st, tok, now + 3000, IDLE, SESS_EXPIRED, "past end");
	/* Only hashes are stored: no token appears in the database. */
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 10);
	assert_int_equal(raw_int(fx->dir,
			     "SELECT count(*) FROM tokens WHERE"
			     " length(hash) != 32"
			     " OR typeof(hash) != 'blob'"),
	    0);
}

static void
test_reuse(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], t0[SESS_TOKEN_SIZE], t1[SESS_TOKEN_SIZE];
	struct sess_info info;
	struct sess_info *v = NULL;
	size_t n = 99;

	new_session(fx->st, "alice", T0, TTL, sid, t0);
	memcpy(t1, t0, sizeof(t1));
	rotate_ok(fx->st, t1, T0 + 10);
	rotate_fails(fx->st, t0, T0 + 20, IDLE, SESS_REUSED, "old token");
	rotate_fails(fx->st, t1, T0 + 30, IDLE, SESS_REVOKED, "new token");
	rotate_fails(fx->st, t0, T0 + 40, IDLE, SESS_REUSED, "old again");
	CHECK("get", sess_get(fx->st, sid, T0 + 30, IDLE, &info), SESS_REVOKED);
	CHECK("list", sess_list_user(fx->st, "alice", T0 + 30, IDLE, &v, &n),
	    SESS_OK);
	assert_int_equal(n, 0);
	free(v);
	/* The session was revoked when the reuse was seen. */
	assert_int_equal(
	    raw_int(fx->dir, "SELECT revoked_at FROM sessions"), T0 + 20);
}

/*
 * Peeking checks a token as rotating does, reuse included, but leaves the
 * token and the session as they were.
 */
static void
test_peek(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], t0[SESS_TOKEN_SIZE], t1[SESS_TOKEN_SIZE];
	struct sess_info info;

	new_session(fx->st, "olga", T0, TTL, sid, t0);
	memset(&info, 0, sizeof(info));
	CHECK("peek", sess_peek(fx->st, t0, T0 + 10, IDLE, &info), SESS_OK);
	assert_string_equal(info.sid, sid);
	assert_string_equal(info.sub, "olga");
	assert_string_equal(info.backend, "ldap");
	assert_int_equal(info.created, T0);
	assert_int_equal(info.last_used, T0);
	assert_int_equal(info.expires, T0 + TTL);
	CHECK("get", sess_get(fx->st, sid, T0 + 10, IDLE, &info), SESS_OK);
	assert_int_equal(info.last_used, T0);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 1);
	/* Idle is measured from the last rotation, not from the peek. */
	peek_fails(fx->st, t0, T0 + IDLE + 1, IDLE, SESS_EXPIRED, "idle");
	peek_fails(fx->st, t0, T0 + TTL + 1, 10 * TTL, SESS_EXPIRED, "ended");
	memcpy(t1, t0, sizeof(t1));
	rotate_ok(fx->st, t1, T0 + 20);
	CHECK("peek new", sess_peek(fx->st, t1, T0 + 30, IDLE, &info), SESS_OK);
	assert_int_equal(info.last_used, T0 + 20);
	peek_fails(fx->st, UNKNOWN_TOKEN, T0, IDLE, SESS_NOT_FOUND, "unknown");
	/* A rotated token seen by a peek is a reuse too. */
	peek_fails(fx->st, t0, T0 + 40, IDLE, SESS_REUSED, "old token");
	peek_fails(fx->st, t1, T0 + 41, IDLE, SESS_REVOKED, "new token");
	rotate_fails(fx->st, t1, T0 + 42, IDLE, SESS_REVOKED, "rotate");
	assert_int_equal(
	    raw_int(fx->dir, "SELECT revoked_at FROM sessions"), T0 + 40);
	CHECK("no info", sess_peek(fx->st, t1, T0, IDLE, NULL), SESS_ERROR);
}

static void
test_expiry(void **state)
{
	static const struct {
		const char *name;
		long long ttl, at, idle; /* at: seconds after creation */
		enum sess_result want;
	} cases[] = {
	    {"fresh", TTL, 1, IDLE, SESS_OK},
	    {"idle exactly", TTL, IDLE, IDLE, SESS_OK},
	    {"idle one second over", TTL, IDLE + 1, IDLE, SESS_EXPIRED},
	    {"idle long over", TTL, 10 * IDLE, IDLE, SESS_EXPIRED},
	    {"absolute end exactly", 1800, 1800, IDLE, SESS_OK},
	    {"absolute end one second over", 1800, 1801, IDLE, SESS_EXPIRED},
	    {"shorter idle", TTL, 61, 60, SESS_EXPIRED},
	    {"huge idle", TTL, TTL, LLONG_MAX, SESS_OK},
	    {"negative idle", TTL, 0, -1, SESS_EXPIRED},
	};
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE], next[SESS_TOKEN_SIZE];
	struct sess_info info;
	enum sess_result got;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		new_session(fx->st, "bob", T0, cases[i].ttl, sid, tok);
		got = sess_get(
		    fx->st, sid, T0 + cases[i].at, cases[i].idle, &info);
		CHECK(cases[i].name, got, cases[i].want);
		got = sess_rotate(
		    fx->st, tok, T0 + cases[i].at, cases[i].idle, next, &info);
		CHECK(cases[i].name, got, cases[i].want);
		if (got == SESS_OK)
			continue;
		/* A refused rotation changed nothing: the token still works. */
		CHECK(cases[i].name,
		    sess_rotate(fx->st, tok, T0 + 1, IDLE, next, &info),
		    SESS_OK);
	}
}

static void
test_logout(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], t0[SESS_TOKEN_SIZE], t1[SESS_TOKEN_SIZE];
	struct sess_info info;

	new_session(fx->st, "carol", T0, TTL, sid, t0);
	memcpy(t1, t0, sizeof(t1));
	rotate_ok(fx->st, t1, T0 + 1);
	CHECK("logout", sess_revoke_token(fx->st, t1, T0 + 2), SESS_OK);
	CHECK("logout again", sess_revoke_token(fx->st, t1, T0 + 3), SESS_OK);
	rotate_fails(fx->st, t1, T0 + 4, IDLE, SESS_REVOKED, "after logout");
	CHECK("get", sess_get(fx->st, sid, T0 + 4, IDLE, &info), SESS_REVOKED);
	assert_int_equal(
	    raw_int(fx->dir, "SELECT revoked_at FROM sessions"), T0 + 2);
	CHECK("unknown", sess_revoke_token(fx->st, UNKNOWN_TOKEN, T0), SESS_OK);
	CHECK("malformed", sess_revoke_token(fx->st, "x", T0), SESS_OK);
	CHECK("NULL", sess_revoke_token(fx->st, NULL, T0), SESS_OK);

	/* Logging out with a token already rotated away ends it too. */
	new_session(fx->st, "carol", T0, TTL, sid, t0);
	memcpy(t1, t0, sizeof(t1));
	rotate_ok(fx->st, t1, T0 + 1);
	CHECK("logout old", sess_revoke_token(fx->st, t0, T0 + 2), SESS_OK);
	rotate_fails(fx->st, t1, T0 + 3, IDLE, SESS_REVOKED, "after old");
}

static void
test_revoke_sid(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE], s2[SESS_ID_SIZE];
	char t2[SESS_TOKEN_SIZE];
	struct sess_info info;

	new_session(fx->st, "dave", T0, TTL, sid, tok);
	new_session(fx->st, "dave", T0, TTL, s2, t2);
	CHECK("revoke", sess_revoke(fx->st, sid, T0 + 5), SESS_OK);
	CHECK("get", sess_get(fx->st, sid, T0 + 6, IDLE, &info), SESS_REVOKED);
	rotate_fails(fx->st, tok, T0 + 6, IDLE, SESS_REVOKED, "rotate");
	CHECK("again", sess_revoke(fx->st, sid, T0 + 7), SESS_OK);
	/* The first revocation time stays. */
	assert_int_equal(raw_int(fx->dir,
			     "SELECT max(revoked_at) FROM"
			     " sessions"),
	    T0 + 5);
	/* The other session of the same user is untouched. */
	CHECK("other", sess_get(fx->st, s2, T0 + 6, IDLE, &info), SESS_OK);
	rotate_ok(fx->st, t2, T0 + 6);
	CHECK("unknown", sess_revoke(fx->st, UNKNOWN_SID, T0), SESS_NOT_FOUND);
	CHECK("malformed", sess_revoke(fx->st, "abc", T0), SESS_NOT_FOUND);
	CHECK("NULL", sess_revoke(fx->st, NULL, T0), SESS_NOT_FOUND);
	CHECK("get unknown", sess_get(fx->st, UNKNOWN_SID, T0, IDLE, &info),
	    SESS_NOT_FOUND);
}

static void
test_revoke_user(void **state)
{
	struct fx *fx = *state;
	char sid[4][SESS_ID_SIZE], tok[4][SESS_TOKEN_SIZE], longsub[300];
	struct sess_info info;
	unsigned int count;
	int i;

	for (i = 0; i < 3; i++)
		new_session(fx->st, "erin", T0 + i, TTL, sid[i], tok[i]);
	new_session(fx->st, "frank", T0, TTL, sid[3], tok[3]);
	CHECK("revoke one", sess_revoke(fx->st, sid[0], T0 + 5), SESS_OK);
	count = 99;
	CHECK(
	    "erin", sess_revoke_user(fx->st, "erin", T0 + 10, &count), SESS_OK);
	assert_int_equal(count, 2);
	count = 99;
	CHECK("erin again", sess_revoke_user(fx->st, "erin", T0 + 11, &count),
	    SESS_OK);
	assert_int_equal(count, 0);
	for (i = 0; i < 3; i++)
		rotate_fails(
		    fx->st, tok[i], T0 + 12, IDLE, SESS_REVOKED, "erin's");
	CHECK("frank", sess_get(fx->st, sid[3], T0 + 12, IDLE, &info), SESS_OK);
	count = 99;
	CHECK(
	    "nobody", sess_revoke_user(fx->st, "nobody", T0, &count), SESS_OK);
	assert_int_equal(count, 0);
	memset(longsub, 'e', sizeof(longsub) - 1);
	longsub[sizeof(longsub) - 1] = '\0';
	count = 99;
	CHECK("long", sess_revoke_user(fx->st, longsub, T0, &count), SESS_OK);
	assert_int_equal(count, 0);
	CHECK(
	    "no count", sess_revoke_user(fx->st, "erin", T0, NULL), SESS_ERROR);
}

static void
test_list_user(void **state)
{
	struct fx *fx = *state;
	char sid[8][SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	static struct sess_info dummy;
	struct sess_info *v = NULL, *sentinel = &dummy;
	long long now = T0 + 400;
	size_t n = 0;

	/* Active: created at +100, +200, +300 and +300 again (later). */
	new_session(fx->st, "gina", T0 + 100, TTL, sid[0], tok);
	new_session(fx->st, "gina", T0 + 300, TTL, sid[1], tok);
	new_session(fx->st, "gina", T0 + 200, TTL, sid[2], tok);
	new_session(fx->st, "gina", T0 + 300, TTL, sid[3], tok);
	/* Not active: revoked, past the absolute end, idle; not gina's. */
	new_session(fx->st, "gina", T0 + 390, TTL, sid[4], tok);
	CHECK("revoke", sess_revoke(fx->st, sid[4], T0 + 395), SESS_OK);
	new_session(fx->st, "gina", T0 + 50, 100, sid[5], tok);
	new_session(fx->st, "gina", now - IDLE - 1, TTL, sid[6], tok);
	new_session(fx->st, "hank", T0 + 350, TTL, sid[7], tok);

	CHECK(
	    "list", sess_list_user(fx->st, "gina", now, IDLE, &v, &n), SESS_OK);
	assert_int_equal(n, 4);
	assert_string_equal(v[0].sid, sid[3]);
	assert_string_equal(v[1].sid, sid[1]);
	assert_string_equal(v[2].sid, sid[2]);
	assert_string_equal(v[3].sid, sid[0]);
	assert_string_equal(v[2].sub, "gina");
	assert_string_equal(v[2].backend, "ldap");
	assert_string_equal(v[2].client, "192.0.2.1");
	assert_int_equal(v[2].created, T0 + 200);
	assert_int_equal(v[2].expires, T0 + 200 + TTL);
	free(v);

	v = sentinel;
	n = 99;
	CHECK(
	    "none", sess_list_user(fx->st, "ivy", now, IDLE, &v, &n), SESS_OK);
	assert_int_equal(n, 0);
	free(v);
	v = sentinel;
	CHECK("NULL", sess_list_user(fx->st, NULL, now, IDLE, &v, &n),
	    SESS_ERROR);
	assert_ptr_equal(v, sentinel);
}

static void
test_purge(void **state)
{
	/* Times are seconds before the purge; a session is last used when made.
	 */
	static const struct {
		const char *name;
		long long created, ttl, revoked; /* revoked 0: not revoked */
		int gone;
	} cases[] = {
	    {"revoked over a day ago", -DAY - 1, TTL, -DAY - 1, 1},
	    {"revoked a day ago", -DAY, TTL, -DAY, 0},
	    {"ended over a day ago", -DAY - 101, 100, 0, 1},
	    {"ended a day ago", -DAY - 100, 100, 0, 0},
	    {"idle over a day", -DAY - IDLE - 1, 9 * TTL, 0, 1},
	    {"idle a day", -DAY - IDLE, 9 * TTL, 0, 0},
	    {"active", 0, TTL, 0, 0},
	};

	enum {
		NCASES = sizeof(cases) / sizeof(cases[0])
	};
	struct fx *fx = *state;
	char sid[NCASES][SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	const long long now = T0 + 30 * DAY;
	struct sess_info info;
	enum sess_result got;
	size_t i;

	for (i = 0; i < NCASES; i++) {
		new_session(fx->st, "judy", now + cases[i].created,
		    cases[i].ttl, sid[i], tok);
		if (cases[i].revoked != 0)
			CHECK(cases[i].name,
			    sess_revoke(fx->st, sid[i], now + cases[i].revoked),
			    SESS_OK);
	}
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 7);
	assert_int_equal(sess_purge(fx->st, now, IDLE), 3);
	for (i = 0; i < NCASES; i++) {
		got = sess_get(fx->st, sid[i], now, IDLE, &info);
		if ((got == SESS_NOT_FOUND) != cases[i].gone)
			fail_msg(
			    "%s: %s after purge", cases[i].name, res_name(got));
	}
	/* The tokens of the purged sessions went with them. */
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 4);
	assert_int_equal(sess_purge(fx->st, now, IDLE), 0);
	assert_int_equal(sess_purge(fx->st, now + 30 * DAY, IDLE), 4);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 0);
}

static void
test_malformed_tokens(void **state)
{
	static const struct {
		const char *name, *token;
	} cases[] = {
	    {"empty", ""},
	    {"42 characters", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	    {"44 characters", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	    {"plus", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+"},
	    {"slash", "AAAAAAAAAAAAAAAAAAAAAA/AAAAAAAAAAAAAAAAAAAA"},
	    {"padding", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
	    {"space", "AAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA"},
	    {"dot", ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	    {"non-ASCII",
		"\xc3\xa9\xc3\xa9\xc3\xa9"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	    {"newline", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"},
	    {"non-canonical last",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"},
	    {"NULL", NULL},
	};
	struct fx *fx = *state;
	struct sess_info info;
	size_t i;

	/*
	 * Break the store: a well-formed token now gives SESS_ERROR, so a
	 * malformed one answering SESS_NOT_FOUND never reached the store.
	 */
	raw_exec(fx->dir, "DROP TABLE tokens");
	rotate_fails(fx->st, UNKNOWN_TOKEN, T0, IDLE, SESS_ERROR, "broken");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rotate_fails(fx->st, cases[i].token, T0, IDLE, SESS_NOT_FOUND,
		    cases[i].name);
		peek_fails(fx->st, cases[i].token, T0, IDLE, SESS_NOT_FOUND,
		    cases[i].name);
		CHECK(cases[i].name,
		    sess_revoke_token(fx->st, cases[i].token, T0), SESS_OK);
		CHECK(cases[i].name, sess_revoke(fx->st, cases[i].token, T0),
		    SESS_NOT_FOUND);
		CHECK(cases[i].name,
		    sess_get(fx->st, cases[i].token, T0, IDLE, &info),
		    SESS_NOT_FOUND);
	}
}

static void
test_create_bounds(void **state)
{
	static char s256[257], s257[258];

	static const struct {
		const char *name, *sub, *backend, *client;
		long long now, ttl;
		enum sess_result want;
	} cases[] = {
	    {"plain", "kim", "pam", "2001:db8::1", T0, TTL, SESS_OK},
	    {"sub 256 bytes", s256, "file", "", T0, TTL, SESS_OK},
	    {"sub 257 bytes", s257, "file", "", T0, TTL, SESS_ERROR},
	    {"empty sub", "", "ldap", "", T0, TTL, SESS_ERROR},
	    {"NULL sub", NULL, "ldap", "", T0, TTL, SESS_ERROR},
	    {"UTF-8 sub", "j\xc3\xb6rg", "ldap", "", T0, TTL, SESS_OK},
	    {"invalid UTF-8 sub", "j\xf6rg", "ldap", "", T0, TTL, SESS_ERROR},
	    {"control in sub", "kim\n", "ldap", "", T0, TTL, SESS_ERROR},
	    {"backend 15", "kim", "ldapldapldapxyz", "", T0, TTL, SESS_OK},
	    {"backend 16", "kim", "ldapldapldapxyzw", "", T0, TTL, SESS_ERROR},
	    {"empty backend", "kim", "", "", T0, TTL, SESS_ERROR},
	    {"client 45", "kim", "ldap",
		"0000:0000:0000:0000:0000:ffff:192.168.100.228", T0, TTL,
		SESS_OK},
	    {"client 46", "kim", "ldap",
		"0000:0000:0000:0000:0000:ffff:192.168.100.2281", T0, TTL,
		SESS_ERROR},
	    {"NULL client", "kim", "ldap", NULL, T0, TTL, SESS_ERROR},
	    {"ttl 0", "kim", "ldap", "", T0, 0, SESS_ERROR},
	    {"ttl negative", "kim", "ldap", "", T0, -1, SESS_ERROR},
	    {"expiry overflows", "kim", "ldap", "", LLONG_MAX - 10, 11,
		SESS_ERROR},
	};
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	char fill[SESS_TOKEN_SIZE];
	struct sess_info info;
	enum sess_result got;
	size_t i;

	memset(s256, 'k', 256);
	memset(s257, 'k', 257);
	memset(fill, 0x5a, sizeof(fill));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(sid, 0x5a, sizeof(sid));
		memset(tok, 0x5a, sizeof(tok));
		got = sess_create(fx->st, cases[i].sub, cases[i].backend,
		    cases[i].client, cases[i].now, cases[i].ttl, sid, tok);
		CHECK(cases[i].name, got, cases[i].want);
		if (got != SESS_OK) {
			assert_memory_equal(sid, fill, sizeof(sid));
			assert_memory_equal(tok, fill, sizeof(tok));
			continue;
		}
		CHECK(cases[i].name, sess_get(fx->st, sid, T0, IDLE, &info),
		    SESS_OK);
		assert_string_equal(info.sub, cases[i].sub);
		assert_string_equal(info.backend, cases[i].backend);
		assert_string_equal(info.client, cases[i].client);
	}
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM sessions"), 5);
}

static void
test_fail_closed(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE], s2[SESS_ID_SIZE];
	char t2[SESS_TOKEN_SIZE], fill[SESS_TOKEN_SIZE];
	struct sess_info info;

	new_session(fx->st, "leo", T0, TTL, sid, tok);
	raw_exec(fx->dir,
	    "CREATE TRIGGER boom BEFORE INSERT ON tokens"
	    " BEGIN SELECT RAISE(ABORT, 'boom'); END");
	/* The session row was inserted before the token failed: undone. */
	memset(s2, 0x5a, sizeof(s2));
	memset(t2, 0x5a, sizeof(t2));
	memset(fill, 0x5a, sizeof(fill));
	CHECK("create", sess_create(fx->st, "leo", "ldap", "", T0, TTL, s2, t2),
	    SESS_ERROR);
	assert_memory_equal(s2, fill, sizeof(s2));
	assert_memory_equal(t2, fill, sizeof(t2));
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM sessions"), 1);
	/* The old token was retired before the new one failed: undone. */
	rotate_fails(fx->st, tok, T0 + 1, IDLE, SESS_ERROR, "rotate");
	assert_int_equal(raw_int(fx->dir,
			     "SELECT count(*) FROM tokens"
			     " WHERE state = 0"),
	    1);
	raw_exec(fx->dir, "DROP TRIGGER boom");
	rotate_ok(fx->st, tok, T0 + 2);
	CHECK("get", sess_get(fx->st, sid, T0 + 2, IDLE, &info), SESS_OK);
	assert_int_equal(info.last_used, T0 + 2);
	/* Every operation answers SESS_ERROR once the tables are gone. */
	raw_exec(fx->dir, "DROP TABLE tokens; DROP TABLE sessions");
	rotate_fails(fx->st, tok, T0 + 3, IDLE, SESS_ERROR, "rotate gone");
	peek_fails(fx->st, tok, T0 + 3, IDLE, SESS_ERROR, "peek gone");
	CHECK("get gone", sess_get(fx->st, sid, T0, IDLE, &info), SESS_ERROR);
	CHECK("revoke gone", sess_revoke(fx->st, sid, T0), SESS_ERROR);
	CHECK("logout gone", sess_revoke_token(fx->st, tok, T0), SESS_ERROR);
	assert_int_equal(sess_purge(fx->st, T0, IDLE), -1);
	assert_int_equal(sess_ping(fx->st), -1);
}

static void
test_null_args(void **state)
{
	struct fx *fx = *state;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	struct sess_info info, *v;
	unsigned int count;
	size_t n;

	sess_close(NULL);
	CHECK("create", sess_create(NULL, "a", "ldap", "", T0, TTL, sid, tok),
	    SESS_ERROR);
	CHECK("create sid",
	    sess_create(fx->st, "a", "ldap", "", T0, TTL, NULL, tok),
	    SESS_ERROR);
	CHECK("rotate", sess_rotate(NULL, UNKNOWN_TOKEN, T0, IDLE, tok, &info),
	    SESS_ERROR);
	CHECK("rotate info",
	    sess_rotate(fx->st, UNKNOWN_TOKEN, T0, IDLE, tok, NULL),
	    SESS_ERROR);
	CHECK("peek", sess_peek(NULL, UNKNOWN_TOKEN, T0, IDLE, &info),
	    SESS_ERROR);
	CHECK("logout", sess_revoke_token(NULL, UNKNOWN_TOKEN, T0), SESS_ERROR);
	CHECK("revoke", sess_revoke(NULL, UNKNOWN_SID, T0), SESS_ERROR);
	CHECK(
	    "revoke_user", sess_revoke_user(NULL, "a", T0, &count), SESS_ERROR);
	CHECK("get", sess_get(NULL, UNKNOWN_SID, T0, IDLE, &info), SESS_ERROR);
	CHECK("list", sess_list_user(NULL, "a", T0, IDLE, &v, &n), SESS_ERROR);
	assert_int_equal(sess_purge(NULL, T0, IDLE), -1);
	assert_int_equal(sess_ping(NULL), -1);
}

static void
test_ping(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(sess_ping(fx->st), 0);
	assert_int_equal(sess_ping(fx->st), 0);
	raw_exec(fx->dir, "DROP TABLE tokens; DROP TABLE sessions");
	assert_int_equal(sess_ping(fx->st), -1);
}

#define RACERS 8
#define ROUNDS 25

struct racer {
	struct sess_store *st;
	const char *token;
	pthread_barrier_t *go;
	enum sess_result res;
	char next[SESS_TOKEN_SIZE];
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct sess_info info;

	pthread_barrier_wait(r->go);
	r->res = sess_rotate(r->st, r->token, T0 + 1, IDLE, r->next, &info);
	return NULL;
}

/*
 * Eight threads present the same token at once, through two stores (two
 * writer connections) on one database: exactly one rotates it, the others
 * see a reuse, and the winner's new token is then refused too.
 */
static void
test_race(void **state)
{
	struct fx *fx = *state;
	struct sess_store *st2 = open_store(fx->dir);
	struct racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	int round, i, ok, reused, winner;

	for (round = 0; round < ROUNDS; round++) {
		new_session(fx->st, "mia", T0, TTL, sid, tok);
		assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
		for (i = 0; i < RACERS; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].st = i % 2 ? st2 : fx->st;
			r[i].token = tok;
			r[i].go = &go;
			assert_int_equal(
			    pthread_create(&th[i], NULL, race, &r[i]), 0);
		}
		ok = reused = 0;
		winner = -1;
		for (i = 0; i < RACERS; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
			if (r[i].res == SESS_OK) {
				ok++;
				winner = i;
			}
			reused += r[i].res == SESS_REUSED;
		}
		pthread_barrier_destroy(&go);
		if (ok != 1 || reused != RACERS - 1)
			fail_msg(
			    "round %d: %d OK, %d REUSED", round, ok, reused);
		rotate_fails(fx->st, r[winner].next, T0 + 2, IDLE, SESS_REVOKED,
		    "winner's token");
	}
	sess_close(st2);
}

/* What the crashing child passes to its parent. */
struct crash_msg {
	char sid[SESS_ID_SIZE];
	char t0[SESS_TOKEN_SIZE];
	char t1[SESS_TOKEN_SIZE];
};

/*
 * In the child: creates and rotates a session, hands the tokens over and
 * dies by SIGKILL, the database never closed.
 */
static void
crash_child(const char *dir, int fd)
{
	struct sess_store *st = NULL;
	struct crash_msg m;
	struct sess_info info;
	char err[256];

	memset(&m, 0, sizeof(m));
	if (sess_sqlite_open(dir, &st, err, sizeof(err)) == -1 ||
	    sess_create(st, "nina", "pam", "", T0, TTL, m.sid, m.t0) !=
		SESS_OK ||
	    sess_rotate(st, m.t0, T0 + 1, IDLE, m.t1, &info) != SESS_OK ||
	    write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(1);
	kill(getpid(), SIGKILL);
	_exit(2);
}

static void
test_crash_durability(void **state)
{
	char dir[64], t2[SESS_TOKEN_SIZE];
	struct sess_store *st;
	struct crash_msg m;
	struct sess_info info;
	int fds[2], status;
	ssize_t got;
	pid_t pid;

	(void)state;
	make_dir(dir, sizeof(dir));
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1]);
	}
	close(fds[1]);
	got = read(fds[0], &m, sizeof(m));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(got, sizeof(m));

	/* Both commits the child saw answered SESS_OK are on disk. */
	st = open_store(dir);
	CHECK("rotated token", sess_rotate(st, m.t1, T0 + 2, IDLE, t2, &info),
	    SESS_OK);
	assert_string_equal(info.sid, m.sid);
	assert_string_equal(info.sub, "nina");
	rotate_fails(st, m.t0, T0 + 3, IDLE, SESS_REUSED, "first token");
	sess_close(st);
	rm_dir(dir);
}

/* The revocation feed: revoked sessions since a time, oldest first. */
static void
test_revoked_since(void **state)
{
	struct fx *fx = *state;
	char sid[4][SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	struct sess_revocation *v = NULL, *sentinel = (void *)&v;
	unsigned int count;
	size_t n = 99, i;

	/* Nothing revoked yet: an empty answer, no array. */
	CHECK("empty", sess_revoked_since(fx->st, 0, 10, &v, &n), SESS_OK);
	assert_null(v);
	assert_int_equal(n, 0);

	new_session(fx->st, "erin", T0, TTL, sid[0], tok);
	new_session(fx->st, "erin", T0, TTL, sid[1], tok);
	new_session(fx->st, "fred", T0, 100, sid[2], tok);
	new_session(fx->st, "gina", T0, TTL, sid[3], tok); /* stays active */
	CHECK("revoke fred", sess_revoke(fx->st, sid[2], T0 + 10), SESS_OK);
	CHECK("revoke erin", sess_revoke_user(fx->st, "erin", T0 + 20, &count),
	    SESS_OK);
	assert_int_equal(count, 2);
	/* Revoking again keeps the first time: no second entry. */
	CHECK("again", sess_revoke(fx->st, sid[2], T0 + 30), SESS_OK);

	CHECK("all", sess_revoked_since(fx->st, 0, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].sid, sid[2]);
	assert_int_equal(v[0].revoked_at, T0 + 10);
	assert_int_equal(v[0].expires, T0 + 100);
	/* Same second: ordered by sid, so that pages are stable. */
	for (i = 1; i < 3; i++) {
		assert_int_equal(v[i].revoked_at, T0 + 20);
		assert_int_equal(v[i].expires, T0 + TTL);
		assert_true(strcmp(v[i].sid, sid[3]) != 0);
	}
	assert_true(strcmp(v[1].sid, v[2].sid) < 0);
	free(v);

	/* since is inclusive; max bounds the answer. */
	CHECK(
	    "since", sess_revoked_since(fx->st, T0 + 20, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 2);
	free(v);
	CHECK("since+1", sess_revoked_since(fx->st, T0 + 11, 10, &v, &n),
	    SESS_OK);
	assert_int_equal(n, 2);
	free(v);
	CHECK(
	    "future", sess_revoked_since(fx->st, T0 + 21, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 0);
	assert_null(v);
	CHECK("max 1", sess_revoked_since(fx->st, 0, 1, &v, &n), SESS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sid, sid[2]);
	free(v);
	CHECK("max 0", sess_revoked_since(fx->st, 0, 0, &v, &n), SESS_OK);
	assert_int_equal(n, 0);
	assert_null(v);

	/* Logout shows up too. */
	new_session(fx->st, "hugo", T0, TTL, sid[0], tok);
	CHECK("logout", sess_revoke_token(fx->st, tok, T0 + 40), SESS_OK);
	CHECK("logout seen", sess_revoked_since(fx->st, T0 + 40, 10, &v, &n),
	    SESS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sid, sid[0]);
	free(v);

	/* Bad arguments and a broken store: SESS_ERROR, outputs untouched. */
	v = sentinel;
	n = 77;
	CHECK(
	    "NULL store", sess_revoked_since(NULL, 0, 10, &v, &n), SESS_ERROR);
	CHECK(
	    "NULL v", sess_revoked_since(fx->st, 0, 10, NULL, &n), SESS_ERROR);
	CHECK(
	    "NULL n", sess_revoked_since(fx->st, 0, 10, &v, NULL), SESS_ERROR);
	raw_exec(fx->dir, "DROP TABLE tokens; DROP TABLE sessions");
	CHECK("broken", sess_revoked_since(fx->st, 0, 10, &v, &n), SESS_ERROR);
	assert_ptr_equal(v, sentinel);
	assert_int_equal(n, 77);
}

/* A version 1 database is upgraded: the feed's index is added. */
static void
test_schema_upgrade(void **state)
{
	static const char v1[] =
	    "CREATE TABLE sessions (sid TEXT PRIMARY KEY NOT NULL,"
	    " sub TEXT NOT NULL, backend TEXT NOT NULL, client TEXT NOT NULL,"
	    " created INTEGER NOT NULL, last_used INTEGER NOT NULL,"
	    " expires INTEGER NOT NULL, revoked_at INTEGER) STRICT;"
	    "CREATE INDEX sessions_sub ON sessions(sub);"
	    "CREATE TABLE tokens (hash BLOB PRIMARY KEY NOT NULL"
	    " CHECK (length(hash) = 32), sid TEXT NOT NULL"
	    " REFERENCES sessions(sid) ON DELETE CASCADE,"
	    " state INTEGER NOT NULL CHECK (state IN (0, 1)),"
	    " created INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
	    "CREATE INDEX tokens_sid ON tokens(sid);"
	    "INSERT INTO sessions VALUES ('AAAAAAAAAAAAAAAAAAAAAA', 'ivan',"
	    " 'file', '', 1, 1, 1700009999, 1700000005);"
	    "PRAGMA user_version = 1;";
	struct sess_revocation *v = NULL;
	struct sess_store *st;
	char dir[64], sd[PATH_MAX + 16];
	size_t n = 0;

	(void)state;
	make_dir(dir, sizeof(dir));
	prep_sql(dir, v1, sd, sizeof(sd));
	st = open_store(sd);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), 2);
	assert_int_equal(raw_int(dir,
			     "SELECT count(*) FROM sqlite_schema"
			     " WHERE name = 'sessions_revoked'"),
	    1);
	CHECK("feed", sess_revoked_since(st, 0, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sid, "AAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(v[0].revoked_at, 1700000005);
	assert_int_equal(v[0].expires, 1700009999);
	free(v);
	sess_close(st);
	/* Opening it again changes nothing. */
	st = open_store(sd);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), 2);
	sess_close(st);
	rm_dir(dir);
}

/*
 * Group commit. The store queues concurrent changes and commits them in
 * batches; each change must still get its own, correct result, be
 * durable before it is answered, and be undone alone when it fails.
 */

/* Reads a big-endian 32-bit integer. */
static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * The number of commits in dir's WAL file since it was last reset: the
 * frames of the current generation (salts as in the header) that end a
 * transaction (non-zero "database size" field).
 */
static long long
wal_commits(const char *dir)
{
	unsigned char hdr[32], fh[24];
	char p[PATH_MAX];
	long long n = 0;
	uint32_t psz;
	FILE *f;

	snprintf(p, sizeof(p), "%s/sessions.db-wal", dir);
	assert_non_null(f = fopen(p, "rb"));
	if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr)) {
		psz = be32(hdr + 8) == 1 ? 65536 : be32(hdr + 8);
		while (fread(fh, 1, sizeof(fh), f) == sizeof(fh) &&
		    memcmp(fh + 8, hdr + 16, 8) == 0) {
			n += be32(fh + 4) != 0;
			if (fseek(f, psz, SEEK_CUR) != 0)
				break;
		}
	}
	fclose(f);
	return n;
}

enum gkind {
	G_CREATE,
	G_ROTATE,
	G_PEEK,
	G_REVOKE,
	G_REVOKE_USER,
	G_LOGOUT
};

/* One change run on a thread of its own. */
struct gop {
	enum gkind kind;
	const char *arg;       /* the sub, token or sid */
	enum sess_result want; /* checked by check_gops() */
	struct sess_store *st;
	atomic_int *arrived;
	enum sess_result res;
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	struct sess_info info;
	unsigned int count;
};

static void *
gop_run(void *arg)
{
	struct gop *g = arg;

	atomic_fetch_add(g->arrived, 1);
	switch (g->kind) {
	case G_CREATE:
		g->res = sess_create(
		    g->st, g->arg, "ldap", "", T0, TTL, g->sid, g->tok);
		break;
	case G_ROTATE:
		g->res =
		    sess_rotate(g->st, g->arg, T0 + 5, IDLE, g->tok, &g->info);
		break;
	case G_PEEK:
		g->res = sess_peek(g->st, g->arg, T0 + 5, IDLE, &g->info);
		break;
	case G_REVOKE:
		g->res = sess_revoke(g->st, g->arg, T0 + 5);
		break;
	case G_REVOKE_USER:
		g->res = sess_revoke_user(g->st, g->arg, T0 + 5, &g->count);
		break;
	case G_LOGOUT:
		g->res = sess_revoke_token(g->st, g->arg, T0 + 5);
		break;
	}
	return NULL;
}

/* Waits until *n reached want, then lets the threads queue up. */
static void
await_arrivals(atomic_int *n, int want)
{
	int i;

	for (i = 0; atomic_load(n) < want && i < 10000; i++)
		usleep(1000);
	assert_int_equal(atomic_load(n), want);
	usleep(200 * 1000);
}

/*
 * Runs the n changes of v so that v[1..] share one batch: another
 * connection holds the write lock while v[0] (alone) takes the lead and
 * waits for it, and the others queue up behind; then the lock goes.
 * Returns the number of commits the changes took.
 */
static long long
run_gops(struct fx *fx, struct gop *v, size_t n)
{
	pthread_t th[32];
	atomic_int arrived;
	char p[PATH_MAX];
	sqlite3 *db = NULL;
	long long c0;
	size_t i;

	assert_true(n <= 32);
	atomic_init(&arrived, 0);
	snprintf(p, sizeof(p), "%s/sessions.db", fx->dir);
	assert_int_equal(
	    sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	c0 = wal_commits(fx->dir);
	for (i = 0; i < n; i++) {
		memset(v[i].sid, 0x5a, sizeof(v[i].sid));
		memset(v[i].tok, 0x5a, sizeof(v[i].tok));
		memset(&v[i].info, 0x5a, sizeof(v[i].info));
		v[i].count = 0x5a5a5a5a;
		v[i].st = fx->st;
		v[i].arrived = &arrived;
		v[i].res = SESS_ERROR;
		assert_int_equal(
		    pthread_create(&th[i], NULL, gop_run, &v[i]), 0);
		if (i == 0)
			await_arrivals(&arrived, 1);
	}
	await_arrivals(&arrived, (int)n);
	assert_int_equal(
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	for (i = 0; i < n; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	return wal_commits(fx->dir) - c0;
}

/* Each change got what it wanted; failed ones left their outputs alone. */
static void
check_gops(const struct gop *v, size_t n)
{
	unsigned char fill[sizeof(struct sess_info)];
	size_t i;

	memset(fill, 0x5a, sizeof(fill));
	for (i = 0; i < n; i++) {
		if (v[i].res != v[i].want)
			fail_msg("change %zu (%d, %s): got %s, want %s", i,
			    (int)v[i].kind, v[i].arg, res_name(v[i].res),
			    res_name(v[i].want));
		if (v[i].res == SESS_OK)
			continue;
		assert_memory_equal(v[i].sid, fill, sizeof(v[i].sid));
		assert_memory_equal(v[i].tok, fill, sizeof(v[i].tok));
		assert_memory_equal(&v[i].info, fill, sizeof(v[i].info));
	}
}

/*
 * One batch of mixed changes, two of which fail half-way (a trigger
 * refuses their token): each gets its own result, the failed ones are
 * undone entirely (no session row without its token, no token retired),
 * a reuse still revokes its session, and the others are committed.
 */
static void
test_group_mixed(void **state)
{
	struct fx *fx = *state;
	char sa[SESS_ID_SIZE], a0[SESS_TOKEN_SIZE], a1[SESS_TOKEN_SIZE];
	char sb[SESS_ID_SIZE], tb[SESS_TOKEN_SIZE], sc[SESS_ID_SIZE];
	char tc[SESS_TOKEN_SIZE], sd[SESS_ID_SIZE], td[SESS_TOKEN_SIZE];
	char se[SESS_ID_SIZE], te[SESS_TOKEN_SIZE], sg[SESS_ID_SIZE];
	char tg[SESS_TOKEN_SIZE], sh[SESS_ID_SIZE], th[SESS_TOKEN_SIZE];
	struct sess_info info;
	struct gop v[] = {
	    {.kind = G_CREATE, .arg = "pilot", .want = SESS_OK},
	    {.kind = G_CREATE, .arg = "eve", .want = SESS_OK},
	    {.kind = G_CREATE, .arg = "boom-x", .want = SESS_ERROR},
	    {.kind = G_ROTATE, .arg = a0, .want = SESS_REUSED},
	    {.kind = G_ROTATE, .arg = tb, .want = SESS_OK},
	    {.kind = G_ROTATE, .arg = tc, .want = SESS_ERROR},
	    {.kind = G_REVOKE, .arg = sd, .want = SESS_OK},
	    {.kind = G_PEEK, .arg = te, .want = SESS_OK},
	    {.kind = G_REVOKE_USER, .arg = "gus", .want = SESS_OK},
	    {.kind = G_LOGOUT, .arg = th, .want = SESS_OK},
	    {.kind = G_CREATE, .arg = "fay", .want = SESS_OK},
	    {.kind = G_ROTATE, .arg = UNKNOWN_TOKEN, .want = SESS_NOT_FOUND},
	};
	size_t n = sizeof(v) / sizeof(v[0]);
	long long commits;

	new_session(fx->st, "ann", T0, TTL, sa, a0);
	memcpy(a1, a0, sizeof(a1));
	rotate_ok(fx->st, a1, T0 + 1);
	new_session(fx->st, "bob", T0, TTL, sb, tb);
	new_session(fx->st, "boom-c", T0, TTL, sc, tc);
	new_session(fx->st, "dan", T0, TTL, sd, td);
	new_session(fx->st, "eli", T0, TTL, se, te);
	new_session(fx->st, "gus", T0, TTL, sg, tg);
	new_session(fx->st, "gus", T0, TTL, sg, tg);
	new_session(fx->st, "hal", T0, TTL, sh, th);
	raw_exec(fx->dir,
	    "CREATE TRIGGER boom BEFORE INSERT ON tokens"
	    " WHEN (SELECT sub FROM sessions WHERE sid = NEW.sid)"
	    " LIKE 'boom%'"
	    " BEGIN SELECT RAISE(ABORT, 'boom'); END");

	commits = run_gops(fx, v, n);
	check_gops(v, n);
	/* The pilot's commit, then one for all the others. */
	if (commits < 1 || commits > 2)
		fail_msg("%zu changes took %lld commits", n, commits);

	/* The created sessions are there, with their own tokens. */
	assert_string_not_equal(v[0].sid, v[1].sid);
	assert_string_not_equal(v[1].sid, v[10].sid);
	assert_string_not_equal(v[1].tok, v[10].tok);
	CHECK("eve", sess_peek(fx->st, v[1].tok, T0 + 6, IDLE, &info), SESS_OK);
	assert_string_equal(info.sid, v[1].sid);
	assert_string_equal(info.sub, "eve");
	CHECK(
	    "fay", sess_peek(fx->st, v[10].tok, T0 + 6, IDLE, &info), SESS_OK);
	assert_string_equal(info.sub, "fay");
	/* The failed create left no session row behind. */
	assert_int_equal(raw_int(fx->dir,
			     "SELECT count(*) FROM sessions"
			     " WHERE sub = 'boom-x'"),
	    0);
	/* The reuse revoked ann's session; bob's rotation took. */
	CHECK("ann", sess_get(fx->st, sa, T0 + 6, IDLE, &info), SESS_REVOKED);
	assert_string_equal(v[4].info.sid, sb);
	assert_int_equal(v[4].info.last_used, T0 + 5);
	CHECK(
	    "bob old", sess_peek(fx->st, tb, T0 + 6, IDLE, &info), SESS_REUSED);
	/* The failed rotation retired nothing: c's token still works. */
	raw_exec(fx->dir, "DROP TRIGGER boom");
	rotate_ok(fx->st, tc, T0 + 7);
	CHECK("dan", sess_get(fx->st, sd, T0 + 6, IDLE, &info), SESS_REVOKED);
	assert_string_equal(v[7].info.sid, se);
	CHECK("eli", sess_get(fx->st, se, T0 + 6, IDLE, &info), SESS_OK);
	assert_int_equal(info.last_used, T0);
	assert_int_equal(v[8].count, 2);
	CHECK("hal", sess_get(fx->st, sh, T0 + 6, IDLE, &info), SESS_REVOKED);
}

/*
 * A batch whose COMMIT fails (a deferred foreign key, checked only then)
 * answers SESS_ERROR to every change in it, with outputs untouched, and
 * none of them is in the database; the batch before and the change after
 * are unaffected.
 */
static void
test_group_commit_fails(void **state)
{
	struct fx *fx = *state;
	struct gop v[] = {
	    {.kind = G_CREATE, .arg = "pilot", .want = SESS_OK},
	    {.kind = G_CREATE, .arg = "p1", .want = SESS_ERROR},
	    {.kind = G_CREATE, .arg = "poison", .want = SESS_ERROR},
	    {.kind = G_CREATE, .arg = "p2", .want = SESS_ERROR},
	    {.kind = G_CREATE, .arg = "p3", .want = SESS_ERROR},
	};
	size_t n = sizeof(v) / sizeof(v[0]);
	char sid[SESS_ID_SIZE], tok[SESS_TOKEN_SIZE];
	struct sess_info info;
	long long commits;

	raw_exec(fx->dir,
	    "CREATE TABLE poison (sid TEXT REFERENCES sessions(sid)"
	    " DEFERRABLE INITIALLY DEFERRED);"
	    "CREATE TRIGGER poison AFTER INSERT ON sessions"
	    " WHEN NEW.sub = 'poison'"
	    " BEGIN INSERT INTO poison VALUES ('none'); END");
	commits = run_gops(fx, v, n);
	check_gops(v, n);
	assert_int_equal(commits, 1);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM sessions"), 1);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM tokens"), 1);
	CHECK("pilot", sess_peek(fx->st, v[0].tok, T0, IDLE, &info), SESS_OK);
	assert_string_equal(info.sub, "pilot");
	new_session(fx->st, "after", T0, TTL, sid, tok);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM sessions"), 2);
}

#define GROUPERS 16
#define CREATES  4
#define ROTATES  3

/* A thread of test_group_concurrent: its sessions, their last tokens. */
struct grouper {
	struct sess_store *st;
	pthread_barrier_t *go;
	char sub[24];
	char sid[CREATES][SESS_ID_SIZE];
	char tok[CREATES][1 + ROTATES][SESS_TOKEN_SIZE];
	char err[128]; /* the first thing that went wrong */
};

static void *
grouper(void *arg)
{
	struct grouper *g = arg;
	struct sess_info info;
	enum sess_result res;
	int i, j;

	pthread_barrier_wait(g->go);
	for (i = 0; i < CREATES && g->err[0] == '\0'; i++) {
		res = sess_create(
		    g->st, g->sub, "pam", "", T0, TTL, g->sid[i], g->tok[i][0]);
		if (res != SESS_OK)
			snprintf(g->err, sizeof(g->err), "create %d: %s", i,
			    res_name(res));
		for (j = 1; j <= ROTATES && g->err[0] == '\0'; j++) {
			res = sess_rotate(g->st, g->tok[i][j - 1], T0 + j, IDLE,
			    g->tok[i][j], &info);
			if (res != SESS_OK)
				snprintf(g->err, sizeof(g->err),
				    "rotate %d.%d: %s", i, j, res_name(res));
			else if (strcmp(info.sid, g->sid[i]) != 0 ||
			    strcmp(info.sub, g->sub) != 0 ||
			    info.last_used != T0 + j)
				snprintf(g->err, sizeof(g->err),
				    "rotate %d.%d: session %.22s of %.32s", i,
				    j, info.sid, info.sub);
		}
	}
	return NULL;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Sixteen threads create and rotate sessions at once: every answer is the
 * caller's own (its session, its user), every sid and token is distinct,
 * and the database holds exactly what was answered.
 */
static void
test_group_concurrent(void **state)
{
	struct fx *fx = *state;
	static struct grouper g[GROUPERS];
	static char toks[GROUPERS * CREATES * (1 + ROTATES)][SESS_TOKEN_SIZE];
	static char sids[GROUPERS * CREATES][SESS_ID_SIZE];
	pthread_t th[GROUPERS];
	pthread_barrier_t go;
	struct sess_info info;
	char next[SESS_TOKEN_SIZE];
	size_t nt = 0, ns = 0, k;
	int i, j, r;

	assert_int_equal(pthread_barrier_init(&go, NULL, GROUPERS), 0);
	for (i = 0; i < GROUPERS; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		g[i].st = fx->st;
		g[i].go = &go;
		snprintf(g[i].sub, sizeof(g[i].sub), "user-%d", i);
		assert_int_equal(
		    pthread_create(&th[i], NULL, grouper, &g[i]), 0);
	}
	for (i = 0; i < GROUPERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (i = 0; i < GROUPERS; i++) {
		if (g[i].err[0] != '\0')
			fail_msg("%s: %s", g[i].sub, g[i].err);
		for (j = 0; j < CREATES; j++) {
			memcpy(sids[ns++], g[i].sid[j], SESS_ID_SIZE);
			for (r = 0; r <= ROTATES; r++)
				memcpy(toks[nt++], g[i].tok[j][r],
				    SESS_TOKEN_SIZE);
			/* The last token is the session's current one. */
			CHECK("peek",
			    sess_peek(fx->st, g[i].tok[j][ROTATES], T0 + 9,
				IDLE, &info),
			    SESS_OK);
			assert_string_equal(info.sid, g[i].sid[j]);
			assert_string_equal(info.sub, g[i].sub);
			assert_int_equal(info.last_used, T0 + ROTATES);
		}
	}
	qsort(sids, ns, SESS_ID_SIZE, cmp_str);
	for (k = 1; k < ns; k++)
		assert_string_not_equal(sids[k - 1], sids[k]);
	qsort(toks, nt, SESS_TOKEN_SIZE, cmp_str);
	for (k = 1; k < nt; k++)
		assert_string_not_equal(toks[k - 1], toks[k]);
	assert_int_equal(raw_int(fx->dir, "SELECT count(*) FROM sessions"),
	    GROUPERS * CREATES);
	assert_int_equal(
	    raw_int(fx->dir, "SELECT count(*) FROM tokens"), (long long)nt);
	assert_int_equal(
	    raw_int(fx->dir, "SELECT count(*) FROM tokens WHERE state = 0"),
	    GROUPERS * CREATES);
	/* An earlier token of a chain is a reuse, as without batching. */
	rotate_fails(fx->st, g[3].tok[1][1], T0 + 10, IDLE, SESS_REUSED,
	    "rotated token");
	CHECK("revoked",
	    sess_rotate(
		fx->st, g[3].tok[1][ROTATES], T0 + 10, IDLE, next, &info),
	    SESS_REVOKED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_modes),
	    cmocka_unit_test(test_open_refused),
	    cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoke_sid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoke_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_malformed_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_create_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_race, setup, teardown),
	    cmocka_unit_test(test_crash_durability),
	    cmocka_unit_test_setup_teardown(
		test_revoked_since, setup, teardown),
	    cmocka_unit_test(test_schema_upgrade),
	    cmocka_unit_test_setup_teardown(test_group_mixed, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_commit_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_concurrent, setup, teardown),
	};

	/* Reuse warnings are expected by the dozen; keep the output short. */
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
