/*
 * The message store: one SQLite database, created and seeded on first
 * use. Every statement is prepared once at open with bound parameters;
 * one mutex serializes their use, so any thread may call in.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "emailapi.h"

#define SCHEMA_VERSION 1

enum stmt {
	S_LIST,
	S_COUNT,
	S_GET,
	S_LABELS,
	S_SET_LABELS,
	S_DELETE,
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_COUNT_OF_STMTS,
};

static const char *const sql[S_COUNT_OF_STMTS] = {
    [S_LIST] = "SELECT id, sender, subject, received, labels FROM emails "
	       "ORDER BY received DESC, id DESC LIMIT ?1 OFFSET ?2",
    [S_COUNT] = "SELECT count(*) FROM emails",
    [S_GET] = "SELECT id, sender, subject, received, labels, body "
	      "FROM emails WHERE id = ?1",
    [S_LABELS] = "SELECT labels FROM emails WHERE id = ?1",
    [S_SET_LABELS] = "UPDATE emails SET labels = ?2 WHERE id = ?1",
    [S_DELETE] = "DELETE FROM emails WHERE id = ?1",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

/* Run once, in order, on an empty database (constant text, no input). */
static const char *const schema[] = {
    "CREATE TABLE emails ("
    " id INTEGER PRIMARY KEY,"
    " sender TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " received TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " labels TEXT NOT NULL DEFAULT '[]')",
    "CREATE INDEX emails_received ON emails (received)",
    "PRAGMA user_version = 1",
};

static const struct {
	const char *sender, *subject, *received, *body, *labels;
} seed[] = {
    {"ops@northwind.example", "Quarterly infrastructure review",
	"2026-11-02T08:15:00Z",
	"The Q4 review is on Thursday. Please bring the capacity numbers.",
	"[\"work\"]"},
    {"billing@contoso.example", "Invoice INV-20931 is due",
	"2026-11-03T10:42:00Z",
	"Invoice INV-20931 for 1,240.00 EUR is due on 15 November.",
	"[\"finance\"]"},
    {"security@fabrikam.example", "Unusual sign-in attempt blocked",
	"2026-11-04T23:05:00Z",
	"We blocked a sign-in from an unknown device. No action needed.",
	"[\"security\",\"alert\"]"},
    {"hr@northwind.example", "Open enrolment closes Friday",
	"2026-11-06T09:00:00Z",
	"Benefits open enrolment closes this Friday at 17:00.", "[]"},
    {"newsletter@tailspin.example", "This week in email analytics",
	"2026-11-07T07:30:00Z",
	"Five ways to measure response times across shared mailboxes.",
	"[\"newsletter\"]"},
    {"carol@northwind.example", "Re: migration plan", "2026-11-09T14:12:00Z",
	"Looks good to me. Let us move the archive mailboxes first.",
	"[\"work\"]"},
    {"noreply@shipping.example", "Your parcel is on its way",
	"2026-11-10T11:48:00Z",
	"Parcel 00340434 left the depot and arrives tomorrow.", "[]"},
    {"it-helpdesk@northwind.example", "Scheduled maintenance window",
	"2026-11-12T16:20:00Z",
	"Mail will be read-only on Saturday from 22:00 to 23:00 UTC.",
	"[\"work\",\"it\"]"},
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT_OF_STMTS];
	pthread_mutex_t lock;
};

static void
db_error(struct store *s, const char *what)
{
	log_event("error", "store_error", "op", what, "error",
	    sqlite3_errmsg(s->db), NULL);
}

/* Runs a statement that returns no rows, then resets it. 0 / -1. */
static int
run(struct store *s, enum stmt k)
{
	int rc = sqlite3_step(s->st[k]);

	sqlite3_reset(s->st[k]);
	sqlite3_clear_bindings(s->st[k]);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
done(struct store *s, enum stmt k)
{
	sqlite3_reset(s->st[k]);
	sqlite3_clear_bindings(s->st[k]);
}

/* Creates the schema and the sample messages, in one transaction. */
static int
create(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *ins = NULL, *one = NULL;
	size_t i;
	int ret = -1;

	if (run(s, S_BEGIN) == -1)
		goto out;
	for (i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
		if (sqlite3_prepare_v2(s->db, schema[i], -1, &one, NULL) !=
			SQLITE_OK ||
		    sqlite3_step(one) != SQLITE_DONE)
			goto out;
		sqlite3_finalize(one);
		one = NULL;
	}
	if (sqlite3_prepare_v2(s->db,
		"INSERT INTO emails (sender, subject, received, body, labels) "
		"VALUES (?1, ?2, ?3, ?4, ?5)",
		-1, &ins, NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
		if (sqlite3_bind_text(ins, 1, seed[i].sender, -1,
			SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(ins, 2, seed[i].subject, -1,
			SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(ins, 3, seed[i].received, -1,
			SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(
			ins, 4, seed[i].body, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(ins, 5, seed[i].labels, -1,
			SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(ins) != SQLITE_DONE ||
		    sqlite3_reset(ins) != SQLITE_OK)
			goto out;
	}
	if (run(s, S_COMMIT) == -1)
		goto out;
	log_event("info", "database_seeded", NULL);
	ret = 0;
out:
	if (ret == -1) {
		snprintf(err, errlen, "cannot create the database: %s",
		    sqlite3_errmsg(s->db));
		(void)run(s, S_ROLLBACK);
	}
	sqlite3_finalize(one);
	sqlite3_finalize(ins);
	return ret;
}

/* The schema version (PRAGMA user_version), or -1. */
static int
version(struct store *s)
{
	sqlite3_stmt *v = NULL;
	int ret = -1;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) ==
		SQLITE_OK &&
	    sqlite3_step(v) == SQLITE_ROW)
		ret = sqlite3_column_int(v, 0);
	sqlite3_finalize(v);
	return ret;
}

int
store_open(const char *path, struct store **store_r, char *err, size_t errlen)
{
	struct store *s;
	sqlite3_stmt *p = NULL;
	int ret = -1, v;
	size_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		free(s);
		return -1;
	}
	if (sqlite3_open_v2(path, &s->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_FULLMUTEX,
		NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open the database %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	if (sqlite3_busy_timeout(s->db, 2000) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &p,
		NULL) != SQLITE_OK ||
	    sqlite3_step(p) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		goto out;
	}
	sqlite3_finalize(p);
	p = NULL;
	for (i = S_BEGIN; i < S_COUNT_OF_STMTS; i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &s->st[i], NULL) !=
		    SQLITE_OK) {
			snprintf(
			    err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
			goto out;
		}
	}
	if ((v = version(s)) == 0 && create(s, err, errlen) == -1)
		goto out;
	if (v != 0 && v != SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: unknown schema version %d", path, v);
		goto out;
	}
	for (i = 0; i < S_BEGIN; i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &s->st[i], NULL) !=
		    SQLITE_OK) {
			snprintf(
			    err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
			goto out;
		}
	}
	*store_r = s;
	s = NULL;
	ret = 0;
out:
	sqlite3_finalize(p);
	store_free(s);
	return ret;
}

void
store_free(struct store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < S_COUNT_OF_STMTS; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* A column as text; "" for NULL (the schema forbids it anyway). */
static const char *
text(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return t != NULL ? (const char *)t : "";
}

/* The labels column parsed: a new array, or NULL when it is not one. */
static json_t *
labels_of(sqlite3_stmt *q, int col)
{
	json_t *a;

	a = json_loads(text(q, col), JSON_REJECT_DUPLICATES, NULL);
	if (a != NULL && !json_is_array(a)) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

/* The current row of S_LIST or S_GET as an object (with the body). */
static json_t *
row(sqlite3_stmt *q, int with_body)
{
	json_t *o, *labels;

	if ((labels = labels_of(q, 4)) == NULL)
		return NULL;
	o = json_pack("{s:I, s:s, s:s, s:s, s:o}", "id",
	    (json_int_t)sqlite3_column_int64(q, 0), "sender", text(q, 1),
	    "subject", text(q, 2), "received", text(q, 3), "labels", labels);
	if (o != NULL && with_body &&
	    json_object_set_new(o, "body", json_string(text(q, 5))) == -1) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

enum store_result
store_list(struct store *s, long long limit, long long offset, json_t **doc_r)
{
	enum store_result ret = STORE_ERROR;
	sqlite3_stmt *q = s->st[S_LIST], *n = s->st[S_COUNT];
	json_t *list = NULL, *doc = NULL, *o;
	long long total;
	int rc;

	pthread_mutex_lock(&s->lock);
	if ((list = json_array()) == NULL)
		goto out;
	if (sqlite3_step(n) != SQLITE_ROW)
		goto fail;
	total = sqlite3_column_int64(n, 0);
	if (sqlite3_bind_int64(q, 1, limit) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, offset) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((o = row(q, 0)) == NULL || json_array_append_new(list, o))
			goto out;
	}
	if (rc != SQLITE_DONE)
		goto fail;
	doc = json_pack("{s:O, s:I, s:I, s:I}", "emails", list, "total",
	    (json_int_t)total, "limit", (json_int_t)limit, "offset",
	    (json_int_t)offset);
	if (doc == NULL)
		goto out;
	*doc_r = doc;
	ret = STORE_OK;
	goto out;
fail:
	db_error(s, "list");
out:
	done(s, S_COUNT);
	done(s, S_LIST);
	pthread_mutex_unlock(&s->lock);
	json_decref(list);
	return ret;
}

enum store_result
store_get(struct store *s, long long id, json_t **msg_r)
{
	enum store_result ret = STORE_ERROR;
	sqlite3_stmt *q = s->st[S_GET];
	json_t *o;
	int rc;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_step(q)) == SQLITE_DONE) {
		ret = STORE_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto fail;
	if ((o = row(q, 1)) == NULL)
		goto out;
	*msg_r = o;
	ret = STORE_OK;
	goto out;
fail:
	db_error(s, "get");
out:
	done(s, S_GET);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* 1 when the array holds the string label. */
static int
has_label(const json_t *a, const char *label)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), label) == 0)
			return 1;
	}
	return 0;
}

enum store_result
store_add_label(
    struct store *s, long long id, const char *label, json_t **labels_r)
{
	enum store_result ret = STORE_ERROR;
	sqlite3_stmt *q = s->st[S_LABELS], *u = s->st[S_SET_LABELS];
	json_t *a = NULL;
	char *text_new = NULL;
	int rc, in_tx = 0;

	pthread_mutex_lock(&s->lock);
	if (run(s, S_BEGIN) == -1)
		goto fail;
	in_tx = 1;
	if (sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_step(q)) == SQLITE_DONE) {
		ret = STORE_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto fail;
	if ((a = labels_of(q, 0)) == NULL) {
		log_event("error", "store_error", "op", "labels", "error",
		    "stored labels are not a JSON array", NULL);
		goto out;
	}
	done(s, S_LABELS);
	if (!has_label(a, label)) {
		if (json_array_size(a) >= API_LABELS_MAX) {
			ret = STORE_FULL;
			goto out;
		}
		if (json_array_append_new(a, json_string(label)) == -1 ||
		    (text_new = json_dumps(a, JSON_COMPACT)) == NULL)
			goto out;
		if (sqlite3_bind_int64(u, 1, id) != SQLITE_OK ||
		    sqlite3_bind_text(u, 2, text_new, -1, SQLITE_STATIC) !=
			SQLITE_OK ||
		    run(s, S_SET_LABELS) == -1)
			goto fail;
	}
	if (run(s, S_COMMIT) == -1)
		goto fail;
	in_tx = 0;
	*labels_r = a;
	a = NULL;
	ret = STORE_OK;
	goto out;
fail:
	db_error(s, "label");
out:
	done(s, S_LABELS);
	done(s, S_SET_LABELS);
	if (in_tx && run(s, S_ROLLBACK) == -1)
		db_error(s, "rollback");
	pthread_mutex_unlock(&s->lock);
	free(text_new);
	json_decref(a);
	return ret;
}

enum store_result
store_delete(struct store *s, long long id)
{
	enum store_result ret = STORE_ERROR;
	sqlite3_stmt *q = s->st[S_DELETE];

	pthread_mutex_lock(&s->lock);
	if (sqlite3_bind_int64(q, 1, id) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_DONE) {
		db_error(s, "delete");
		goto out;
	}
	ret = sqlite3_changes(s->db) > 0 ? STORE_OK : STORE_NOT_FOUND;
out:
	done(s, S_DELETE);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
