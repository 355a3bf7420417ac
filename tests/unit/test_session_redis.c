/*
 * Unit tests for src/session/redis.c and redis_limit.c against a private
 * redis-server (started here on a free loopback port, no persistence,
 * with a password; every test skipped when redis-server is missing):
 * the same semantics as the SQLite store (rotation, reuse, peek, expiry,
 * logout, revocations, lists, the revocation feed), TTLs on every key,
 * fail-fast SESS_ERROR when Redis is away, and shared sign-in counts.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "log/log.h"
#include "ratelimit/regulate.h"
#include "session/redis.h"
#include "session/session.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define PASSWORD     "unit-redis-pass-77"
#define TTL          28800LL
#define IDLE         3600LL

static char dir[64], pwfile[128];
static int port;
static pid_t server = -1;
static long long t0;

static void xsnprintf(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
xsnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	assert_true(w >= 0 && (size_t)w < n);
}

static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int s, p = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		p = ntohs(a.sin_port);
	close(s);
	return p;
}

/* A raw connection to the test server, authenticated. */
static redisContext *
raw(void)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	r = redisCommand(c, "AUTH %s", PASSWORD);
	assert_non_null(r);
	freeReplyObject(r);
	return c;
}

static int
start_server(void)
{
	char conf[128], text[512], ports[16];
	redisContext *c;
	int fd, i;

	xsnprintf(conf, sizeof(conf), "%s/redis.conf", dir);
	xsnprintf(text, sizeof(text),
	    "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n"
	    "requirepass %s\nlogfile %s/redis.log\n",
	    port, dir, PASSWORD, dir);
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	close(fd);
	xsnprintf(ports, sizeof(ports), "%d", port);
	if ((server = fork()) == 0) {
		execl(REDIS_SERVER, REDIS_SERVER, conf, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		struct timeval tv = {1, 0};

		c = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (c != NULL && c->err == 0) {
			redisFree(c);
			return 0;
		}
		redisFree(c);
		usleep(25000);
	}
	return -1;
}

static void
stop_server(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
		server = -1;
	}
}

static int
group_setup(void **state)
{
	int fd;

	(void)state;
	log_set_level(LOG_ERROR);
	t0 = (long long)time(NULL);
	if (access(REDIS_SERVER, X_OK) != 0)
		return 0;
	xsnprintf(dir, sizeof(dir), "/tmp/ea-test-redis-XXXXXX");
	if (mkdtemp(dir) == NULL || (port = free_port()) <= 0)
		return -1;
	xsnprintf(pwfile, sizeof(pwfile), "%s/pass", dir);
	fd = open(pwfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 ||
	    write(fd, PASSWORD "\n", sizeof(PASSWORD)) !=
		(ssize_t)sizeof(PASSWORD))
		return -1;
	close(fd);
	return start_server();
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	stop_server();
	if (dir[0] != '\0') {
		xsnprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static struct sess_store *
open_store(int p, const char *pw)
{
	struct sess_redis_options o = {.host = "127.0.0.1",
	    .port = p,
	    .password_file = pw,
	    .timeout_ms = 500,
	    .pool = 4};
	struct sess_store *s = NULL;
	char err[256];

	if (sess_redis_open(&o, &s, err, sizeof(err)) == -1)
		fail_msg("sess_redis_open: %s", err);
	return s;
}

static int
setup(void **state)
{
	redisContext *c;
	redisReply *r;

	if (server <= 0) {
		*state = NULL;
		return 0;
	}
	c = raw();
	r = redisCommand(c, "FLUSHALL");
	freeReplyObject(r);
	redisFree(c);
	*state = open_store(port, pwfile);
	return 0;
}

static int
teardown(void **state)
{
	sess_close(*state);
	return 0;
}

#define NEED_REDIS(st)                                          \
	do {                                                    \
		if ((st) == NULL)                               \
			skip(); /* no redis-server installed */ \
	} while (0)

static void
new_session(struct sess_store *s, const char *sub, long long now, long long ttl,
    char sid[SESS_ID_SIZE], char tok[SESS_TOKEN_SIZE])
{
	assert_int_equal(
	    sess_create(s, sub, "file", "10.0.0.1", now, ttl, sid, tok),
	    SESS_OK);
}

static void
test_rotation_and_reuse(void **state)
{
	struct sess_store *s = *state;
	char sid[SESS_ID_SIZE], t1[SESS_TOKEN_SIZE], t2[SESS_TOKEN_SIZE],
	    t3[SESS_TOKEN_SIZE];
	struct sess_info in;

	NEED_REDIS(s);
	assert_int_equal(sess_ping(s), 0);
	new_session(s, "alice", t0, TTL, sid, t1);
	assert_int_equal(sess_get(s, sid, t0, IDLE, &in), SESS_OK);
	assert_string_equal(in.sub, "alice");
	assert_string_equal(in.backend, "file");
	assert_string_equal(in.client, "10.0.0.1");
	assert_int_equal(in.created, t0);
	assert_int_equal(in.expires, t0 + TTL);
	/* peek changes nothing. */
	assert_int_equal(sess_peek(s, t1, t0 + 5, IDLE, &in), SESS_OK);
	assert_int_equal(in.last_used, t0);
	assert_int_equal(sess_rotate(s, t1, t0 + 10, IDLE, t2, &in), SESS_OK);
	assert_string_equal(in.sid, sid);
	assert_int_equal(in.last_used, t0 + 10);
	assert_string_not_equal(t1, t2);
	assert_int_equal(sess_rotate(s, t2, t0 + 20, IDLE, t3, &in), SESS_OK);
	/* The rotated-away token: reuse, the session is revoked. */
	assert_int_equal(sess_peek(s, t1, t0 + 30, IDLE, &in), SESS_REUSED);
	assert_int_equal(
	    sess_rotate(s, t3, t0 + 31, IDLE, t2, &in), SESS_REVOKED);
	assert_int_equal(sess_get(s, sid, t0 + 31, IDLE, &in), SESS_REVOKED);
	assert_int_equal(
	    sess_rotate(s, t2, t0 + 32, IDLE, t1, &in), SESS_REUSED);
	assert_int_equal(
	    sess_rotate(s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", t0,
		IDLE, t1, &in),
	    SESS_NOT_FOUND);
	assert_int_equal(sess_get(s, "AAAAAAAAAAAAAAAAAAAAAA", t0, IDLE, &in),
	    SESS_NOT_FOUND);
}

static void
test_expiry(void **state)
{
	struct sess_store *s = *state;
	char sid[SESS_ID_SIZE], t1[SESS_TOKEN_SIZE], t2[SESS_TOKEN_SIZE];
	struct sess_info in;

	NEED_REDIS(s);
	new_session(s, "bob", t0, 100, sid, t1);
	assert_int_equal(
	    sess_rotate(s, t1, t0 + 101, IDLE, t2, &in), SESS_EXPIRED);
	assert_int_equal(sess_get(s, sid, t0 + 100, IDLE, &in), SESS_OK);
	new_session(s, "bob", t0, TTL, sid, t1);
	assert_int_equal(
	    sess_rotate(s, t1, t0 + IDLE + 1, IDLE, t2, &in), SESS_EXPIRED);
	assert_int_equal(sess_get(s, sid, t0 + IDLE, IDLE, &in), SESS_OK);
}

static void
test_logout_and_revocations(void **state)
{
	struct sess_store *s = *state;
	char sid[4][SESS_ID_SIZE], tok[4][SESS_TOKEN_SIZE], t2[SESS_TOKEN_SIZE];
	struct sess_revocation *v = NULL;
	struct sess_info in, *l = NULL;
	unsigned int count = 0;
	size_t n = 0;

	NEED_REDIS(s);
	assert_int_equal(sess_revoked_since(s, 0, 10, &v, &n), SESS_OK);
	assert_null(v);
	assert_int_equal(n, 0);
	new_session(s, "erin", t0, TTL, sid[0], tok[0]);
	new_session(s, "erin", t0 + 1, TTL, sid[1], tok[1]);
	new_session(s, "fred", t0, 100, sid[2], tok[2]);
	new_session(s, "gina", t0, TTL, sid[3], tok[3]);
	assert_int_equal(
	    sess_list_user(s, "erin", t0 + 2, IDLE, &l, &n), SESS_OK);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].sid, sid[1]); /* newest first */
	free(l);
	assert_int_equal(sess_revoke(s, sid[2], t0 + 10), SESS_OK);
	assert_int_equal(
	    sess_revoke(s, "AAAAAAAAAAAAAAAAAAAAAA", t0), SESS_NOT_FOUND);
	assert_int_equal(sess_revoke_user(s, "erin", t0 + 20, &count), SESS_OK);
	assert_int_equal(count, 2);
	assert_int_equal(sess_revoke_user(s, "erin", t0 + 21, &count), SESS_OK);
	assert_int_equal(count, 0);
	assert_int_equal(sess_revoke(s, sid[2], t0 + 30), SESS_OK);
	assert_int_equal(
	    sess_list_user(s, "erin", t0 + 22, IDLE, &l, &n), SESS_OK);
	assert_int_equal(n, 0);
	assert_null(l);

	assert_int_equal(sess_revoked_since(s, 0, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].sid, sid[2]);
	assert_int_equal(v[0].revoked_at, t0 + 10);
	assert_int_equal(v[0].expires, t0 + 100);
	assert_int_equal(v[1].revoked_at, t0 + 20);
	/* erin's two sessions, in sid order, created at t0 and t0 + 1. */
	assert_int_equal(v[1].expires + v[2].expires, 2 * (t0 + TTL) + 1);
	assert_true(strcmp(v[1].sid, v[2].sid) < 0);
	free(v);
	assert_int_equal(sess_revoked_since(s, t0 + 11, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 2);
	free(v);
	assert_int_equal(sess_revoked_since(s, 0, 1, &v, &n), SESS_OK);
	assert_int_equal(n, 1);
	free(v);
	assert_int_equal(sess_revoked_since(s, 0, 0, &v, &n), SESS_OK);
	assert_int_equal(n, 0);
	assert_null(v);

	/* Logout: the session ends, and shows in the feed. */
	assert_int_equal(sess_revoke_token(s, tok[3], t0 + 40), SESS_OK);
	assert_int_equal(sess_revoke_token(s, tok[3], t0 + 41), SESS_OK);
	assert_int_equal(
	    sess_rotate(s, tok[3], t0 + 42, IDLE, t2, &in), SESS_REVOKED);
	assert_int_equal(sess_revoked_since(s, t0 + 40, 10, &v, &n), SESS_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sid, sid[3]);
	free(v);
	assert_int_equal(sess_purge(s, t0, IDLE), 0);
}

/* Every key has a TTL; no refresh token is stored, only its hash. */
static void
test_ttls(void **state)
{
	struct sess_store *s = *state;
	char sid[SESS_ID_SIZE], t1[SESS_TOKEN_SIZE], t2[SESS_TOKEN_SIZE];
	struct sess_info in;
	redisContext *c;
	redisReply *r, *t;
	size_t i;

	NEED_REDIS(s);
	new_session(s, "hugo", t0, TTL, sid, t1);
	assert_int_equal(sess_rotate(s, t1, t0 + 1, IDLE, t2, &in), SESS_OK);
	assert_int_equal(sess_revoke(s, sid, t0 + 2), SESS_OK);
	c = raw();
	r = redisCommand(c, "KEYS *");
	assert_non_null(r);
	assert_int_equal(r->elements, 5); /* s, u, 2 t, rev */
	for (i = 0; i < r->elements; i++) {
		assert_null(strstr(r->element[i]->str, t1));
		assert_null(strstr(r->element[i]->str, t2));
		t = redisCommand(c, "TTL %s", r->element[i]->str);
		assert_true(t->integer > 0);
		assert_true(t->integer <= TTL + 86400 + 90000);
		freeReplyObject(t);
	}
	freeReplyObject(r);
	redisFree(c);
}

/* Redis away: SESS_ERROR at once, ping -1; back: it serves again. */
static void
test_unreachable(void **state)
{
	struct sess_store *s = *state, *dead;
	char sid[SESS_ID_SIZE], t1[SESS_TOKEN_SIZE];
	struct sess_info in;
	struct rg_config rc = {3, 10, 10, 60, 1, 10, 1000};
	enum rg_key why;
	struct timespec a, b;
	int i;

	NEED_REDIS(s);
	dead = open_store(free_port(), NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 20; i++) {
		assert_int_equal(
		    sess_create(dead, "x", "file", "", t0, TTL, sid, t1),
		    SESS_ERROR);
		assert_int_equal(
		    sess_get(dead, "AAAAAAAAAAAAAAAAAAAAAA", t0, IDLE, &in),
		    SESS_ERROR);
		assert_int_equal(sess_ping(dead), -1);
		assert_true(sess_redis_rg_check(dead, &rc, "u", "a", &why) < 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 2);
	sess_close(dead);

	/* The wrong password: refused, not ready. */
	dead = open_store(port, NULL);
	assert_int_equal(sess_ping(dead), -1);
	sess_close(dead);

	/* An outage of the real one, and back. */
	new_session(s, "ivan", t0, TTL, sid, t1);
	stop_server();
	assert_int_equal(sess_ping(s), -1);
	assert_int_equal(sess_get(s, sid, t0, IDLE, &in), SESS_ERROR);
	assert_int_equal(start_server(), 0);
	for (i = 0; i < 40 && sess_ping(s) != 0; i++)
		usleep(100000);
	assert_int_equal(sess_ping(s), 0);
	/* No persistence in the test server: the session is gone. */
	assert_int_equal(sess_get(s, sid, t0, IDLE, &in), SESS_NOT_FOUND);
	new_session(s, "ivan", t0, TTL, sid, t1);
}

/* Two stores (two nodes) count into the same numbers. */
static void
test_shared_regulation(void **state)
{
	struct sess_store *s = *state, *s2;
	struct rg_config rc = {3, 100, 100, 60, 1, 10, 1000};
	enum rg_key why = RG_NKEYS;
	double w;
	int i;

	NEED_REDIS(s);
	s2 = open_store(port, pwfile);
	for (i = 0; i < 3; i++)
		assert_true(sess_redis_rg_check(i % 2 ? s2 : s, &rc, "alice",
				"10.0.0.9", &why) == 0);
	w = sess_redis_rg_check(s2, &rc, "alice", "10.0.0.9", &why);
	assert_true(w >= 1.9 && w <= 2.1);
	assert_int_equal(why, RG_PAIR);
	w = sess_redis_rg_check(s, &rc, "alice", "10.0.0.9", &why);
	assert_true(w >= 3.9 && w <= 4.1);
	/* Another address for the same user is not held back. */
	assert_true(
	    sess_redis_rg_check(s, &rc, "alice", "10.0.0.10", &why) == 0);
	/* A success forgets the pair; a neutral outcome uncounts. */
	assert_int_equal(
	    sess_redis_rg_settle(s2, &rc, "alice", "10.0.0.9", RG_SUCCEEDED),
	    0);
	assert_true(
	    sess_redis_rg_check(s, &rc, "alice", "10.0.0.9", &why) == 0);
	for (i = 0; i < 5; i++) {
		assert_true(
		    sess_redis_rg_check(s, &rc, "bob", "10.0.0.9", &why) == 0);
		assert_int_equal(sess_redis_rg_settle(
				     s2, &rc, "bob", "10.0.0.9", RG_NEUTRAL),
		    0);
	}
	assert_int_equal(
	    sess_redis_rg_settle(s2, &rc, "bob", "10.0.0.9", RG_FAILED), 0);
	sess_close(s2);
}

static void
test_open_refused(void **state)
{
	struct sess_redis_options o = {.host = "127.0.0.1", .port = 6379};
	struct sess_store *s = NULL;
	char err[256], path[160];
	int fd;

	(void)state;
	o.port = 0;
	assert_int_equal(sess_redis_open(&o, &s, err, sizeof(err)), -1);
	o.port = 6379;
	o.password_file = "/nonexistent/redis.pass";
	assert_int_equal(sess_redis_open(&o, &s, err, sizeof(err)), -1);
	xsnprintf(path, sizeof(path), "/tmp/ea-redis-pw-%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "pw\n", 3), 3);
	close(fd);
	chmod(path, 0644);
	o.password_file = path;
	assert_int_equal(sess_redis_open(&o, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	chmod(path, 0600);
	assert_int_equal(sess_redis_open(&o, &s, err, sizeof(err)), 0);
	assert_int_equal(sess_is_redis(s), 1);
	sess_close(s);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_rotation_and_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_logout_and_revocations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttls, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_shared_regulation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
	    cmocka_unit_test(test_open_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
