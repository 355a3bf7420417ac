/*
 * The daemon's copy of the revoked sessions (src/daemon/revoked.c) over a
 * real SQLite store: revocations split over pages are all seen, also when
 * a page ends inside a second and when one second holds more than a page.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/revoked.h"
#include "session/session.h"

#define N 10002 /* more than one page (10000) of the reader */

static char sids[N][SESS_ID_SIZE];

/* A store in a fresh directory (tmpfs when there is one: N fsyncs). */
static struct sess_store *
store_new(char *dir)
{
	struct sess_store *s = NULL;
	char err[256];

	strcpy(dir,
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm/test_revoked_XXXXXX"
					  : "/tmp/test_revoked_XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(sess_sqlite_open(dir, &s, err, sizeof(err)), 0);
	return s;
}

static void
store_free(struct sess_store *s, const char *dir)
{
	char cmd[128];

	sess_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Creates N sessions and revokes them: the first `first` at t1, the
 * rest at t2. */
static void
revoke_all(
    struct sess_store *s, long long t0, int first, long long t1, long long t2)
{
	char tok[SESS_TOKEN_SIZE];
	int i;

	for (i = 0; i < N; i++)
		assert_int_equal(sess_create(s, "u", "file", "127.0.0.1", t0,
				     3600, sids[i], tok),
		    SESS_OK);
	for (i = 0; i < N; i++)
		assert_int_equal(
		    sess_revoke(s, sids[i], i < first ? t1 : t2), SESS_OK);
}

static int
missed(void)
{
	int i, m = 0;

	for (i = 0; i < N; i++)
		m += revoked_check(sids[i], (long long)time(NULL)) !=
		    REVOKED_YES;
	return m;
}

static void
run(int first, int t1_ago, int t2_ago)
{
	char dir[64];
	struct sess_store *s = store_new(dir);
	long long t = (long long)time(NULL);

	revoke_all(s, t - 100, first, t - t1_ago, t - t2_ago);
	assert_int_equal(revoked_start(s, 1000), 0);
	assert_int_equal(missed(), 0);
	sleep(2); /* the reader's later rounds keep them all */
	assert_int_equal(missed(), 0);
	revoked_stop();
	store_free(s, dir);
}

/* 9999 at T-5 and 3 at T-4: the first page ends inside T-4. */
static void
test_page_ends_inside_a_second(void **state)
{
	(void)state;
	run(9999, 5, 4);
}

/* All N in one second: more than a page. */
static void
test_one_second_fills_more_than_a_page(void **state)
{
	(void)state;
	run(N, 5, 5);
}

static void
test_unknown_and_missing_sids(void **state)
{
	char dir[64];
	struct sess_store *s = store_new(dir);

	(void)state;
	assert_int_equal(revoked_start(s, 1000), 0);
	assert_int_equal(
	    revoked_check("AAAAAAAAAAAAAAAAAAAAAA", time(NULL)), REVOKED_NO);
	assert_int_equal(revoked_check(NULL, time(NULL)), REVOKED_YES);
	assert_int_equal(revoked_check("short", time(NULL)), REVOKED_YES);
	revoked_stop();
	store_free(s, dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_and_missing_sids),
	    cmocka_unit_test(test_page_ends_inside_a_second),
	    cmocka_unit_test(test_one_second_fills_more_than_a_page),
	};

	return cmocka_run_group_tests_name("revoked", tests, NULL, NULL);
}
