/*
 * emailapi: a small email API on libmicrohttpd and SQLite that embeds the
 * emailauth guard. This header joins the files of the example:
 *
 *   main.c    arguments, configuration, signals, start and stop
 *   store.c   the SQLite message store (prepared statements only)
 *   reply.c   responses: JSON, problems with extra headers, the log
 *   routes.c  the access handler: routing, the guard, the handlers
 *
 * The program uses only the public API of libemailauth
 * (<emailauth/guard.h>).
 */
#ifndef EMAILAPI_H
#define EMAILAPI_H

#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include <emailauth/guard.h>

#define API_BODY_MAX    4096        /* bytes of a request body */
#define API_DISCARD_MAX (64 * 1024) /* bytes read at most, then close */
#define API_LABEL_MAX   64          /* characters of a label */
#define API_LABELS_MAX  32          /* labels on one message */
#define API_LIMIT_MAX   100         /* messages per page */
#define API_LIMIT_DEF   20
#define API_OFFSET_MAX  1000000000LL

/* The message store. All functions are thread-safe. */
struct store;

enum store_result {
	STORE_OK,
	STORE_NOT_FOUND,
	STORE_FULL,  /* the message has API_LABELS_MAX labels already */
	STORE_ERROR, /* logged */
};

/*
 * Opens (creating and seeding on first use) the database at path.
 * Returns 0 and the store in *store_r (freed with store_free()), or -1
 * with a message in err.
 */
int store_open(
    const char *path, struct store **store_r, char *err, size_t errlen);

/* NULL-safe. No call may be running. */
void store_free(struct store *st);

/*
 * A page of messages, newest first, without bodies:
 * {"emails":[{id,sender,subject,received,labels}],"total","limit","offset"}.
 * Returns STORE_OK and the object in *doc_r (the caller decrefs it).
 */
enum store_result store_list(
    struct store *st, long long limit, long long offset, json_t **doc_r);

/*
 * One message with its body. Returns STORE_OK and the object in *msg_r
 * (the caller decrefs it), STORE_NOT_FOUND or STORE_ERROR.
 */
enum store_result store_get(struct store *st, long long id, json_t **msg_r);

/*
 * Adds label (already validated) to a message unless it has it. Returns
 * STORE_OK and the updated label array in *labels_r (the caller decrefs
 * it), STORE_NOT_FOUND, STORE_FULL or STORE_ERROR.
 */
enum store_result store_add_label(
    struct store *st, long long id, const char *label, json_t **labels_r);

/* Deletes a message: STORE_OK, STORE_NOT_FOUND or STORE_ERROR. */
enum store_result store_delete(struct store *st, long long id);

/* What the access handler needs; set up by main.c, read-only after. */
struct api {
	struct ea_guard *guard;
	struct store *store;
	int no_guard; /* --no-guard (benchmarks only): no route checked */
};

/* Per-request state: *con_cls, freed by api_completed(). */
struct api_req {
	int route;                /* index into the route table, or -1 */
	int op;                   /* index into the operation table */
	long long id;             /* the {id} of the path */
	int decided;              /* decide() has run */
	int answered;             /* a response has been queued */
	int too_large;            /* the body went over API_BODY_MAX */
	struct ea_principal *who; /* the verified caller, or NULL */
	char *body;               /* API_BODY_MAX bytes, for a POST only */
	size_t len;               /* bytes in body */
	size_t seen;              /* bytes of body received */
};

/* The MHD access handler and completion callback (cls: struct api). */
enum MHD_Result api_handler(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
void api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe);

/*
 * Queues 200 (or status) with a JSON body, decorated by the guard.
 * Returns MHD_queue_response()'s result.
 */
enum MHD_Result reply_json(struct api *a, struct MHD_Connection *c,
    unsigned int status, const json_t *doc);

/* Queues a 204 without a body, decorated by the guard. */
enum MHD_Result reply_empty(struct api *a, struct MHD_Connection *c,
    unsigned int status, const char *const *extra);

/*
 * Queues an RFC 9457 problem like ea_guard_problem() does, plus the extra
 * headers (name, value, ..., NULL): for 405 and its Allow.
 */
enum MHD_Result reply_problem(struct api *a, struct MHD_Connection *c,
    unsigned int status, const char *detail, const char *const *extra);

/*
 * Writes one JSON line to stderr: {"ts","level","event",...}; fields are
 * (name, value) string pairs ending with NULL. Thread-safe.
 */
void log_event(const char *level, const char *event, ...);

/* The guard's log callback (see ea_log_fn). */
void log_guard(void *cls, enum ea_log_level level, const char *message);

#endif
