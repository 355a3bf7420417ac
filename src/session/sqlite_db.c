/*
 * Opening the SQLite session database: the file created with mode 0600
 * and never through a symbolic link, each connection set up (WAL,
 * synchronous=FULL, foreign keys, busy timeout, defensive mode), and the
 * schema created or checked against PRAGMA user_version.
 *
 * Only sqlite.c calls this; the prototype is repeated there because the
 * session module has no private header.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/sec.h"

#define SCHEMA_VERSION 2
#define BUSY_MS        5000

/*
 * Opens a connection to the database at path, set up for the writer
 * (reader 0: creates the file and the schema when missing) or for the
 * reader (reader 1: query_only). Returns 0 and a connection the caller
 * closes with sqlite3_close(), or -1 with a message in err.
 */
int sess_sqlite_db_open(
    const char *path, int reader, sqlite3 **db_r, char *err, size_t errlen);

static const char schema_v1[] =
    "CREATE TABLE sessions ("
    " sid TEXT PRIMARY KEY NOT NULL,"
    " sub TEXT NOT NULL,"
    " backend TEXT NOT NULL,"
    " client TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " revoked_at INTEGER"
    ") STRICT;"
    "CREATE INDEX sessions_sub ON sessions(sub);"
    "CREATE TABLE tokens ("
    " hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
    " sid TEXT NOT NULL REFERENCES sessions(sid) ON DELETE CASCADE,"
    " state INTEGER NOT NULL CHECK (state IN (0, 1)),"
    " created INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX tokens_sid ON tokens(sid);"
    "PRAGMA user_version = 1;";

/* Version 2: the revocation feed reads revoked sessions in order. */
static const char schema_v2[] =
    "CREATE INDEX sessions_revoked ON sessions(revoked_at, sid)"
    " WHERE revoked_at IS NOT NULL;"
    "PRAGMA user_version = 2;";

/*
 * Makes sure path is a regular file only its owner may use, creating it
 * with mode 0600 when missing (never through a symbolic link). 0 or -1.
 */
static int
make_db_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd, ret = -1;

	fd = open(
	    path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	/* The umask may only have removed bits; the owner needs both. */
	if (fd != -1 && fchmod(fd, 0600) == -1) {
		snprintf(
		    err, errlen, "cannot chmod %s: %s", path, strerror(errno));
		goto out;
	}
	if (fd == -1 && errno == EEXIST)
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		snprintf(
		    err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(
		    err, errlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (sec_stat_mode_ok(&sb, path, err, errlen) == -1)
		goto out;
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

/*
 * Runs the one statement sql. When want is set, its first row's first
 * column must read as want. Returns 0 or -1.
 */
static int
pragma(sqlite3 *db, const char *sql, const char *want)
{
	sqlite3_stmt *q = NULL;
	const unsigned char *v;
	int ret = -1, rc;

	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto out;
	if (want != NULL &&
	    (rc != SQLITE_ROW || (v = sqlite3_column_text(q, 0)) == NULL ||
		strcmp((const char *)v, want) != 0))
		goto out;
	ret = 0;
out:
	sqlite3_finalize(q);
	return ret;
}

/*
 * Creates the schema of a new database or checks an existing one, in one
 * write transaction so that two processes opening it together agree.
 * Returns 0 or -1 with a message in err.
 */
static int
migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int ret = -1, version;

	if (pragma(db, "BEGIN IMMEDIATE", NULL) == -1 ||
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) !=
		SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW)
		goto fail;
	version = sqlite3_column_int(q, 0);
	if (version < 0 || version > SCHEMA_VERSION) {
		snprintf(err, errlen,
		    "%s has schema version %d; this build knows 1 to %d", path,
		    version, SCHEMA_VERSION);
		goto out;
	}
	if (version == 0 &&
	    sqlite3_exec(db, schema_v1, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (version <= 1 &&
	    sqlite3_exec(db, schema_v2, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (pragma(db, "COMMIT", NULL) == -1)
		goto fail;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot set up the schema of %s: %s", path,
	    sqlite3_errmsg(db));
out:
	sqlite3_finalize(q);
	if (ret == -1 && !sqlite3_get_autocommit(db))
		pragma(db, "ROLLBACK", NULL);
	return ret;
}

int
sess_sqlite_db_open(
    const char *path, int reader, sqlite3 **db_r, char *err, size_t errlen)
{
	static const struct {
		const char *sql, *want;
	} setup[] = {
	    {"PRAGMA journal_mode = WAL", "wal"},
	    {"PRAGMA synchronous = FULL", NULL},
	    {"PRAGMA synchronous", "2"},
	    {"PRAGMA foreign_keys = ON", NULL},
	    {"PRAGMA foreign_keys", "1"},
	    {"PRAGMA trusted_schema = OFF", NULL},
	};

	sqlite3 *db = NULL;
	size_t i;
	int ret = -1;

	if (!reader && make_db_file(path, err, errlen) == -1)
		goto out;
	if (sqlite3_open_v2(path, &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
		NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, BUSY_MS) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
		SQLITE_OK)
		goto fail;
	for (i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
		if (pragma(db, setup[i].sql, setup[i].want) == -1)
			goto fail;
	if (reader && pragma(db, "PRAGMA query_only = ON", NULL) == -1)
		goto fail;
	if (!reader && migrate(db, path, err, errlen) == -1)
		goto out;
	*db_r = db;
	db = NULL;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot open %s: %s", path,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
out:
	sqlite3_close(db);
	return ret;
}
