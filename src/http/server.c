/*
 * The daemon's HTTP server on libmicrohttpd 0.9.75.
 *
 * See ../shared/reference/libraries.md §2: options are typed exactly,
 * every limit is set (the defaults are "never time out" and "no per-IP
 * limit"), request smuggling shapes the 0.9.75 parser lets through are
 * refused before a body is read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/server.h"
#include "log/log.h"
#include "util/net.h"
#include "util/sec.h"

static const unsigned int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
    409, 412, 413, 415, 429, 500, 503, 0};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0]))

static const double buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define N_BUCKET (sizeof(buckets) / sizeof(buckets[0]))

struct route_metrics {
	atomic_ulong by_status[N_STATUS]; /* last slot: any other status */
	atomic_ulong bucket[N_BUCKET + 1];
	atomic_ullong sum_us;
};

struct http_server {
	struct MHD_Daemon *mhd;
	struct http_server_opts o;
	unsigned int port;
	atomic_uint inflight;
	atomic_int access_log;
	atomic_ullong next_id;
	unsigned int id_prefix;
	struct route_metrics *m; /* n_routes + 1 (unrouted) */
};

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_event(LOG_WARN, "http_library", LS("message", msg), LOG_END);
}

static int
path_matches(const struct http_route *rt, const char *url)
{
	size_t n;

	if (!(rt->flags & HTTP_PREFIX))
		return strcmp(rt->path, url) == 0;
	n = strlen(rt->path);
	return strncmp(rt->path, url, n) == 0 && url[n] != '\0' &&
	    strchr(url + n, '/') == NULL;
}

static int
method_matches(const struct http_route *rt, const char *method)
{
	return strcmp(rt->method, method) == 0 ||
	    (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

/* Route lookup: 1 found (*idx), 0 path known but not the method, -1 none. */
static int
route_find(
    const struct http_server *s, const char *method, const char *url, int *idx)
{
	size_t i;
	int path_known = 0;

	for (i = 0; i < s->o.n_routes; i++) {
		if (!path_matches(&s->o.routes[i], url))
			continue;
		path_known = 1;
		if (method_matches(&s->o.routes[i], method)) {
			*idx = (int)i;
			return 1;
		}
	}
	return path_known ? 0 : -1;
}

/* "GET, HEAD, OPTIONS" etc. for the path. */
static void
allow_list(const struct http_server *s, const char *url, char *buf, size_t len)
{
	size_t i, o = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < s->o.n_routes; i++) {
		const struct http_route *rt = &s->o.routes[i];

		if (!path_matches(rt, url))
			continue;
		w = snprintf(buf + o, len - o, "%s, %s", rt->method,
		    strcmp(rt->method, "GET") == 0 ? "HEAD, " : "");
		if (w < 0 || (size_t)w >= len - o)
			return;
		o += (size_t)w;
	}
	snprintf(buf + o, len - o, "OPTIONS");
}

static enum MHD_Result
preflight(struct http_server *s, struct http_req *r)
{
	const char *origin = http_header(r, "Origin");
	const char *want = http_header(r, "Access-Control-Request-Method");
	char allow[128], age[32];
	size_t i;
	int ok = 0;

	for (i = 0; origin != NULL && i < r->pol->n_cors_origins; i++)
		ok |= strcmp(origin, r->pol->cors_origins[i]) == 0;
	if (!ok)
		return http_problem(r, 403, "origin not allowed", NULL);
	allow_list(s, r->url, allow, sizeof(allow));
	if (route_find(s, want, r->url, &r->route_idx) != 1)
		return http_problem(r, 405, "method not allowed",
		    (struct http_header[]){{"Allow", allow}, {NULL, NULL}});
	snprintf(age, sizeof(age), "%lld", r->pol->cors_max_age);
	return http_reply(r, 204, NULL, "", 0,
	    (struct http_header[]){{"Access-Control-Allow-Methods", allow},
		{"Access-Control-Allow-Headers",
		    "Authorization, Content-Type, If-Match, "
		    "X-Required-Permission"},
		{"Access-Control-Max-Age", age}, {NULL, NULL}});
}

static enum MHD_Result
dispatch(struct http_server *s, struct http_req *r)
{
	enum MHD_Result ret;
	char allow[128];
	int found;

	if (r->body_too_large)
		return http_problem(
		    r, 413, "the request body is too large", NULL);
	if (strcmp(r->method, "OPTIONS") == 0) {
		if (route_find(s, "GET", r->url, &r->route_idx) == -1 &&
		    route_find(s, "POST", r->url, &r->route_idx) == -1 &&
		    route_find(s, "PUT", r->url, &r->route_idx) == -1 &&
		    route_find(s, "DELETE", r->url, &r->route_idx) == -1) {
			r->route_idx = -1;
			return http_problem(r, 404, "no such resource", NULL);
		}
		if (http_header(r, "Access-Control-Request-Method") != NULL &&
		    http_header(r, "Origin") != NULL)
			return preflight(s, r);
		allow_list(s, r->url, allow, sizeof(allow));
		return http_reply(r, 204, NULL, "", 0,
		    (struct http_header[]){{"Allow", allow}, {NULL, NULL}});
	}
	found = route_find(s, r->method, r->url, &r->route_idx);
	if (found == -1) {
		r->route_idx = -1;
		return http_problem(r, 404, "no such resource", NULL);
	}
	if (found == 0) {
		r->route_idx = -1;
		allow_list(s, r->url, allow, sizeof(allow));
		return http_problem(r, 405, "method not allowed",
		    (struct http_header[]){{"Allow", allow}, {NULL, NULL}});
	}
	r->route = &s->o.routes[r->route_idx];
	if (s->o.admit != NULL && s->o.admit(r, s->o.cls, &ret))
		return ret;
	if (r->route->flags & HTTP_JSON) {
		if (http_parse_json(r, &ret) == -1)
			return ret;
	} else if (r->body_len > 0 || r->body_discarded > 0) {
		return http_problem(
		    r, 400, "this resource takes no body", NULL);
	}
	return r->route->handler(r);
}

static void
new_id(struct http_server *s, char *id)
{
	unsigned long long n =
	    atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed);

	snprintf(id, HTTP_ID_LEN, "%08x%08x", s->id_prefix,
	    (unsigned int)(n & 0xffffffffu));
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	enum MHD_Result ret;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		r->conn = conn;
		r->url = url;
		r->method = method;
		r->route_idx = -1;
		new_id(s, r->id);
		*con_cls = r;
		atomic_fetch_add_explicit(
		    &s->inflight, 1, memory_order_relaxed);
		s->o.begin(r, s->o.cls);
		if (r->pol == NULL || http_client_addr(r) == -1)
			return MHD_NO;
		if (http_check_head(r, &ret))
			return ret;
		/* Refuse a wrong content type before reading the body. */
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
		    strcmp(method, "OPTIONS") != 0 &&
		    route_find(s, method, url, &r->route_idx) == 1 &&
		    (s->o.routes[r->route_idx].flags & HTTP_JSON) &&
		    !http_is_json_type(r)) {
			return http_problem(r, 415,
			    "the request body must be application/json", NULL);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (http_body_chunk(r, upload_data, *upload_data_size) == -1)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->responded)
		return MHD_YES;
	if (r->on_resume != NULL) {
		enum MHD_Result (*fn)(struct http_req *) = r->on_resume;

		r->on_resume = NULL;
		return fn(r);
	}
	return dispatch(s, r);
}

static void
record(struct http_server *s, struct http_req *r, double secs)
{
	struct route_metrics *m;
	size_t i;
	int idx = r->route_idx;

	if (idx < 0 || (size_t)idx >= s->o.n_routes)
		idx = (int)s->o.n_routes;
	m = &s->m[idx];
	for (i = 0; i < N_STATUS - 1; i++)
		if (statuses[i] == r->status)
			break;
	atomic_fetch_add_explicit(&m->by_status[i], 1, memory_order_relaxed);
	for (i = 0; i < N_BUCKET; i++)
		if (secs <= buckets[i])
			break;
	atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &m->sum_us, (unsigned long long)(secs * 1e6), memory_order_relaxed);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	struct timespec now;
	double secs;

	(void)conn;
	if (r == NULL)
		return;
	*con_cls = NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - r->start.tv_sec) +
	    (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
	record(s, r, secs);
	if (atomic_load_explicit(&s->access_log, memory_order_relaxed) ||
	    toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_event(LOG_INFO, "request", LS("request_id", r->id),
		    LS("method", r->method), LS("path", r->url),
		    LI("status", r->status), LD("seconds", secs),
		    LS("client", r->client_ip),
		    LS("outcome",
			toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "completed"
								   : "aborted"),
		    LOG_END);
	if (r->ctx_free != NULL)
		r->ctx_free(r->ctx);
	if (s->o.end != NULL)
		s->o.end(r, s->o.cls);
	json_decref(r->json);
	/* Bodies carry passwords and refresh tokens. */
	if (r->body != NULL)
		sec_wipe(r->body, r->body_len);
	free(r->body);
	free(r);
	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
}

struct http_server *
http_server_start(const struct http_server_opts *o, char *err, size_t errlen)
{
	struct http_server *s;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned char a[16];
	unsigned int flags;
	const union MHD_DaemonInfo *di;
	long ncpu;
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)o->tls_cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)o->tls_key_pem},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0,
		(void *)(uintptr_t) "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
				    "+VERS-TLS1.2"},
	    {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};

	memset(&ss, 0, sizeof(ss));
	if (net_addr_parse(o->address, a) == -1) {
		snprintf(err, errlen, "listen address %s is not an IP address",
		    o->address);
		return NULL;
	}
	if (strchr(o->address, ':') == NULL) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)o->port);
		memcpy(&s4->sin_addr, a + 12, 4);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)o->port);
		memcpy(&s6->sin6_addr, a, 16);
		sl = sizeof(*s6);
	}
	(void)sl;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->m = calloc(o->n_routes + 1, sizeof(*s->m))) == NULL) {
		if (s != NULL)
			free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	atomic_init(&s->access_log, o->access_log);
	if (sec_random(&s->id_prefix, sizeof(s->id_prefix)) == -1)
		s->id_prefix = (unsigned int)getpid();
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (s->o.threads == 0)
		s->o.threads = ncpu > 0 ? (unsigned int)ncpu : 2;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (strchr(o->address, ':') != NULL)
		flags |= MHD_USE_IPv6;
	if (o->tls_cert_pem != NULL)
		flags |= MHD_USE_TLS;
	s->mhd = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL,
	    on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->o.threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)o->per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)o->timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)o->memory_limit, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    (unsigned int)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_ARRAY, o->tls_cert_pem != NULL ? tls_opts : no_opts,
	    MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s port %u: %s",
		    o->address, o->port,
		    errno != 0 ? strerror(errno) : "startup failed");
		free(s->m);
		free(s);
		return NULL;
	}
	di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di != NULL ? di->port : o->port;
	return s;
}

void
http_suspend(
    struct http_req *r, enum MHD_Result (*on_resume)(struct http_req *))
{
	r->on_resume = on_resume;
	MHD_suspend_connection(r->conn);
}

void
http_resume(struct http_req *r)
{
	MHD_resume_connection(r->conn);
}

unsigned int
http_server_port(const struct http_server *s)
{
	return s->port;
}

void
http_server_quiesce(struct http_server *s)
{
	MHD_socket fd;

	fd = MHD_quiesce_daemon(s->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

unsigned int
http_server_inflight(const struct http_server *s)
{
	return atomic_load(&s->inflight);
}

void
http_server_set_access_log(struct http_server *s, int on)
{
	atomic_store(&s->access_log, on);
}

void
http_server_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->mhd);
	free(s->m);
	free(s);
}

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = (b->cap + (size_t)n + 1) * 2;
			char *np = realloc(b->p, ncap);

			if (np == NULL) {
				b->oom = 1;
				return;
			}
			b->p = np;
			b->cap = ncap;
		}
	}
}

char *
http_server_metrics(struct http_server *s)
{
	struct buf b = {NULL, 0, 0, 0};
	size_t i, k;

	if ((b.p = malloc(4096)) == NULL)
		return NULL;
	b.cap = 4096;
	b.p[0] = '\0';
	bprintf(&b,
	    "# HELP emailauth_http_requests_total HTTP requests by route and "
	    "status.\n# TYPE emailauth_http_requests_total counter\n");
	for (i = 0; i <= s->o.n_routes; i++) {
		const char *route =
		    i < s->o.n_routes ? s->o.routes[i].path : "unmatched";
		const char *method =
		    i < s->o.n_routes ? s->o.routes[i].method : "";

		for (k = 0; k < N_STATUS; k++) {
			unsigned long v = atomic_load_explicit(
			    &s->m[i].by_status[k], memory_order_relaxed);
			char st[16];

			if (v == 0)
				continue;
			if (statuses[k] != 0)
				snprintf(st, sizeof(st), "%u", statuses[k]);
			else
				snprintf(st, sizeof(st), "other");
			bprintf(&b,
			    "emailauth_http_requests_total{route=\"%s\","
			    "method=\"%s\",status=\"%s\"} %lu\n",
			    route, method, st, v);
		}
	}
	bprintf(&b,
	    "# HELP emailauth_http_request_duration_seconds Time from request "
	    "head to response.\n"
	    "# TYPE emailauth_http_request_duration_seconds histogram\n");
	for (i = 0; i <= s->o.n_routes; i++) {
		const char *route =
		    i < s->o.n_routes ? s->o.routes[i].path : "unmatched";
		const char *method =
		    i < s->o.n_routes ? s->o.routes[i].method : "";
		unsigned long cum = 0;

		for (k = 0; k <= N_BUCKET; k++) {
			cum += atomic_load_explicit(
			    &s->m[i].bucket[k], memory_order_relaxed);
			if (k < N_BUCKET)
				bprintf(&b,
				    "emailauth_http_request_duration_seconds_"
				    "bucket{route=\"%s\",method=\"%s\","
				    "le=\"%g\"} %lu\n",
				    route, method, buckets[k], cum);
			else
				bprintf(&b,
				    "emailauth_http_request_duration_seconds_"
				    "bucket{route=\"%s\",method=\"%s\","
				    "le=\"+Inf\"} %lu\n",
				    route, method, cum);
		}
		bprintf(&b,
		    "emailauth_http_request_duration_seconds_sum{route=\"%s\","
		    "method=\"%s\"} %.6f\n"
		    "emailauth_http_request_duration_seconds_count{route=\"%s\","
		    "method=\"%s\"} %lu\n",
		    route, method, (double)atomic_load(&s->m[i].sum_us) / 1e6,
		    route, method, cum);
	}
	bprintf(&b,
	    "# HELP emailauth_http_inflight_requests Requests in progress.\n"
	    "# TYPE emailauth_http_inflight_requests gauge\n"
	    "emailauth_http_inflight_requests %u\n",
	    atomic_load(&s->inflight));
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
