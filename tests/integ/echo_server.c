/*
 * A small server on the shared HTTP core (src/http/), for the tests of the
 * core itself: the same server code, limits and helpers as emailauthd,
 * with routes that exercise JSON bodies and the client address.
 *
 * usage: echo_server [per_ip_connections [timeout]]
 * Prints "PORT <n>" on stdout once listening on 127.0.0.1; stops on
 * SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/server.h"
#include "log/log.h"

static struct net_cidr proxies[1];
static char *origins[] = {(char *)(uintptr_t) "https://app.example"};
static struct http_policy pol;

static enum MHD_Result
route_echo(struct http_req *r)
{
	static const struct http_field fields[] = {
	    {"username", JSON_STRING, 1, 0},
	    {"password", JSON_STRING, 1, 0},
	    {"remember", JSON_TRUE, 0, 0},
	};
	enum MHD_Result ret;
	json_t *o;

	if (http_check_fields(r, fields, 3, &ret) == -1)
		return ret;
	o = json_pack(
	    "{s:O}", "username", json_object_get(r->json, "username"));
	ret = http_reply_json(r, 200, o, NULL);
	json_decref(o);
	return ret;
}

static enum MHD_Result
route_hello(struct http_req *r)
{
	static const char body[] = "{\"hello\":true}";

	return http_reply(
	    r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

static enum MHD_Result
route_ip(struct http_req *r)
{
	json_t *o = json_pack("{s:s}", "client", r->client_ip);
	enum MHD_Result ret = http_reply_json(r, 200, o, NULL);

	json_decref(o);
	return ret;
}

static enum MHD_Result
route_slow(struct http_req *r)
{
	usleep(300 * 1000);
	return route_hello(r);
}

static const struct http_route routes[] = {
    {"POST", "/echo", HTTP_JSON, 0, route_echo},
    {"GET", "/hello", 0, 0, route_hello},
    {"GET", "/ip", 0, 0, route_ip},
    {"GET", "/slow", 0, 0, route_slow},
    {"DELETE", "/items/", HTTP_PREFIX, 0, route_hello},
};

static void
begin(struct http_req *r, void *cls)
{
	(void)cls;
	r->pol = &pol;
}

int
main(int argc, char **argv)
{
	struct http_server_opts o;
	struct http_server *s;
	char err[256];
	sigset_t set;
	int sig;

	net_cidr_parse("127.0.0.1/32", &proxies[0]);
	pol.trusted_proxies = proxies;
	pol.n_trusted_proxies = 1;
	pol.cors_origins = origins;
	pol.n_cors_origins = 1;
	pol.cors_max_age = 600;
	pol.max_body = 8192;
	memset(&o, 0, sizeof(o));
	o.address = "127.0.0.1";
	o.threads = 2;
	o.max_connections = 256;
	o.per_ip_connections = argc > 1 ? (unsigned int)atoi(argv[1]) : 16;
	o.timeout = argc > 2 ? (unsigned int)atoi(argv[2]) : 10;
	o.memory_limit = 16384;
	o.routes = routes;
	o.n_routes = sizeof(routes) / sizeof(routes[0]);
	o.begin = begin;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((s = http_server_start(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "echo_server: %s\n", err);
		return 1;
	}
	printf("PORT %u\n", http_server_port(s));
	fflush(stdout);
	sigwait(&set, &sig);
	http_server_stop(s);
	return 0;
}
