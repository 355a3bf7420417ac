/*
 * The daemon's HTTP server: libmicrohttpd with an epoll thread pool,
 * explicit limits, routing, request ids, metrics and the access log.
 */
#ifndef EA_HTTP_SERVER_H
#define EA_HTTP_SERVER_H

#include <stddef.h>

#include "http/http.h"

struct http_server;

struct http_server_opts {
	const char *address;      /* IPv4 or IPv6 literal */
	unsigned int port;        /* 0: any free port */
	const char *tls_cert_pem; /* both NULL: plain HTTP */
	const char *tls_key_pem;
	unsigned int threads;
	unsigned int max_connections;
	unsigned int per_ip_connections;
	unsigned int timeout; /* seconds of inactivity */
	size_t memory_limit;  /* per connection: request head + write buffer */
	int access_log;
	const struct http_route *routes; /* must outlive the server */
	size_t n_routes;
	/*
	 * Called when a request starts, before anything else: must set
	 * r->pol (and may set r->app). end is called when it is freed.
	 */
	void (*begin)(struct http_req *r, void *cls);
	void (*end)(struct http_req *r, void *cls);
	/*
	 * Called once the route is known, before the body is parsed: returns
	 * 1 after answering (e.g. 429), 0 to go on. May be NULL.
	 */
	int (*admit)(struct http_req *r, void *cls, enum MHD_Result *ret);
	void *cls;
};

/*
 * Starts listening. Returns the server, or NULL with a message in err.
 * Free with http_server_stop().
 */
struct http_server *http_server_start(
    const struct http_server_opts *o, char *err, size_t errlen);

/* The port bound (useful with port 0). */
unsigned int http_server_port(const struct http_server *s);

/* Stops accepting new connections; in-flight requests go on. */
void http_server_quiesce(struct http_server *s);

/* Number of requests started and not yet completed. */
unsigned int http_server_inflight(const struct http_server *s);

/* Stops and frees the server. NULL-safe. */
void http_server_stop(struct http_server *s);

/* Turns the access log on or off (e.g. after a reload). */
void http_server_set_access_log(struct http_server *s, int on);

/*
 * Renders the metrics in the Prometheus text format into a new string
 * the caller frees. NULL when out of memory.
 */
char *http_server_metrics(struct http_server *s);

#endif
