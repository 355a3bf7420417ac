/*
 * emailauthd: arguments, configuration, signals, start and stop. The
 * routes live in the other files of this directory.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/revoked.h"
#include "http/server.h"
#include "session/redis.h"
#include "session/session.h"
#include "log/audit.h"
#include "log/log.h"
#include "util/sec.h"

#ifndef EA_VERSION
#define EA_VERSION "0.1.0"
#endif

#define DEFAULT_CONFIG    "/etc/emailauth/emailauthd.conf"
#define SHUTDOWN_GRACE_MS 5000
#define PEM_MAX           (64 * 1024)

#define PURGE_INTERVAL 300

struct http_server *daemon_http;
struct authn_pool *daemon_pool;
struct sess_store *daemon_store;

static const struct http_route routes[] = {
    {"POST", "/v1/login", HTTP_JSON, LIM_AUTH, route_login},
    {"POST", "/v1/refresh", HTTP_JSON, LIM_AUTH, route_refresh},
    {"POST", "/v1/logout", HTTP_JSON, LIM_AUTH, route_logout},
    {"GET", "/v1/userinfo", 0, LIM_API, route_userinfo},
    {"GET", "/v1/verify", 0, LIM_API, route_verify},
    {"GET", "/v1/revocations", 0, LIM_OPS, route_revocations},
    {"GET", "/.well-known/jwks.json", 0, LIM_API, route_jwks},
    {"GET", "/.well-known/openid-configuration", 0, LIM_API, route_discovery},
    {"GET", "/v1/admin/roles", 0, LIM_AUTH, route_admin_roles_get},
    {"PUT", "/v1/admin/roles/", HTTP_JSON | HTTP_PREFIX, LIM_AUTH,
	route_admin_role_put},
    {"DELETE", "/v1/admin/roles/", HTTP_PREFIX, LIM_AUTH,
	route_admin_role_delete},
    {"GET", "/v1/admin/explain", 0, LIM_AUTH, route_admin_explain},
    {"GET", "/v1/admin/sessions", 0, LIM_AUTH, route_admin_sessions_get},
    {"DELETE", "/v1/admin/sessions", 0, LIM_AUTH, route_admin_sessions_delete},
    {"DELETE", "/v1/admin/sessions/", HTTP_PREFIX, LIM_AUTH,
	route_admin_session_delete},
    {"GET", "/healthz", 0, LIM_OPS, route_healthz},
    {"GET", "/readyz", 0, LIM_OPS, route_readyz},
    {"GET", "/metrics", 0, LIM_OPS, route_metrics},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: emailauthd [-c FILE] [-t] [--version]\n"
	    "  -c FILE    configuration file (default %s)\n"
	    "  -t         check the configuration, print FILE: OK or the "
	    "error, exit\n"
	    "  --version  print the version and exit\n",
	    DEFAULT_CONFIG);
}

static void
req_begin(struct http_req *r, void *cls)
{
	struct rt *rt = rt_acquire();

	(void)cls;
	r->app = rt;
	r->pol = rt != NULL ? &rt->cfg->http : NULL;
}

static void
req_end(struct http_req *r, void *cls)
{
	(void)cls;
	rt_release(r->app);
	r->app = NULL;
}

static void
apply_log_settings(const struct cfg *c)
{
	enum log_level lvl = LOG_INFO;

	log_level_parse(c->log.level, &lvl);
	log_set_level(lvl);
	if (daemon_http != NULL)
		http_server_set_access_log(daemon_http, c->log.access);
}

static void
warn_insecure(const struct cfg *c)
{
	if (cfg_has_backend(c, "ldap") && c->ldap.insecure)
		log_event(LOG_WARN, "insecure_ldap",
		    LS("message",
			"ldap.insecure = true: directory traffic may be "
			"plaintext or unverified; never use this in "
			"production"),
		    LOG_END);
	if (c->listen.tls_cert == NULL && !c->listen.behind_tls &&
	    strcmp(c->listen.address, "127.0.0.1") != 0 &&
	    strcmp(c->listen.address, "::1") != 0)
		log_event(LOG_WARN, "plaintext_listener",
		    LS("message",
			"listening without TLS on a non-loopback address; "
			"put a TLS proxy in front or set listen.tls"),
		    LOG_END);
}

/* Creates state_dir (0700) if missing; refuses one others may write. */
static int
prepare_state_dir(const struct cfg *c, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create state_dir %s: %s",
		    c->state_dir, strerror(errno));
		return -1;
	}
	if (stat(c->state_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state_dir %s is not a directory",
		    c->state_dir);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
		    "state_dir %s is writable by group or others (mode %04o)",
		    c->state_dir, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

static char *
read_pem(const char *path, int secret, char *err, size_t errlen)
{
	struct sec_buf *b;
	char *s;

	if (secret) {
		if ((b = sec_read_file(path, PEM_MAX, err, errlen)) == NULL)
			return NULL;
	} else {
		FILE *f = fopen(path, "re");
		size_t n;

		if (f == NULL || (b = calloc(1, sizeof(*b))) == NULL ||
		    (b->p = malloc(PEM_MAX)) == NULL) {
			snprintf(err, errlen, "cannot read %s", path);
			if (f != NULL)
				fclose(f);
			if (b != NULL)
				free(b);
			return NULL;
		}
		n = fread(b->p, 1, PEM_MAX, f);
		fclose(f);
		b->len = n;
	}
	if ((s = malloc(b->len + 1)) != NULL) {
		memcpy(s, b->p, b->len);
		s[b->len] = '\0';
	} else
		snprintf(err, errlen, "out of memory");
	sec_buf_free(&b);
	return s;
}

static const char *config_path = DEFAULT_CONFIG;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

int
daemon_reload(void)
{
	struct rt *nrt, *ort;
	struct cfg *n, *old;
	const char *path = config_path;
	char err[1024];

	pthread_mutex_lock(&reload_lock);
	if (rt_load(path, 1, &nrt, err, sizeof(err)) == -1) {
		pthread_mutex_unlock(&reload_lock);
		log_event(LOG_ERROR, "reload_failed", LS("error", err),
		    LS("message", "kept the running configuration"), LOG_END);
		return -1;
	}
	n = nrt->cfg;
	/* Reopened on every reload, so logrotate can move the file away. */
	if (trail_open(n->audit.file, n->audit.syslog, "emailauthd", err,
		sizeof(err)) == -1) {
		pthread_mutex_unlock(&reload_lock);
		rt_release(nrt);
		log_event(LOG_ERROR, "reload_failed", LS("error", err),
		    LS("message", "kept the running configuration"), LOG_END);
		return -1;
	}
	ort = rt_acquire();
	old = ort != NULL ? ort->cfg : NULL;
	if (ort != NULL) {
		const char *ok = tok_key_kid(
			       tok_keyset_get(ort->keys, TOK_CURRENT)),
			   *nk = tok_key_kid(
			       tok_keyset_get(nrt->keys, TOK_CURRENT));

		if (ok != NULL && nk != NULL && strcmp(ok, nk) != 0)
			trail_event(LOG_INFO, "signing_key_changed",
			    LS("old_kid", ok), LS("kid", nk), LOG_END);
	}
	if (old != NULL &&
	    (strcmp(old->listen.address, n->listen.address) != 0 ||
		old->listen.port != n->listen.port ||
		(old->listen.tls_cert == NULL) !=
		    (n->listen.tls_cert == NULL) ||
		old->listen.threads != n->listen.threads ||
		old->listen.max_connections != n->listen.max_connections ||
		old->listen.per_ip_connections !=
		    n->listen.per_ip_connections ||
		old->listen.timeout != n->listen.timeout ||
		old->listen.max_header_bytes != n->listen.max_header_bytes ||
		strcmp(old->state_dir, n->state_dir) != 0 ||
		strcmp(old->session.backend, n->session.backend) != 0 ||
		strcmp(old->session.uri, n->session.uri) != 0 ||
		old->workers.threads != n->workers.threads ||
		old->workers.queue != n->workers.queue ||
		memcmp(&old->limits, &n->limits, sizeof(n->limits)) != 0))
		log_event(LOG_WARN, "reload_partial",
		    LS("message",
			"listener, state_dir, session, workers and limits "
			"settings change only on restart"),
		    LOG_END);
	rt_release(ort);
	apply_log_settings(n);
	warn_insecure(n);
	revoked_set_keep(n->tokens.access_ttl + n->tokens.leeway);
	rt_swap(nrt);
	trail_event(LOG_INFO, "reloaded", LS("config", path), LOG_END);
	pthread_mutex_unlock(&reload_lock);
	return 0;
}

static void
shutdown_gracefully(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	int waited = 0;

	http_server_quiesce(daemon_http);
	while (http_server_inflight(daemon_http) > 0 &&
	    waited < SHUTDOWN_GRACE_MS) {
		nanosleep(&ts, NULL);
		waited += 20;
	}
	/* Runs what is queued to its end: every suspended connection is
	 * resumed before the HTTP server stops. */
	authn_pool_free(daemon_pool);
	daemon_pool = NULL;
	while (http_server_inflight(daemon_http) > 0 &&
	    waited < 2 * SHUTDOWN_GRACE_MS) {
		nanosleep(&ts, NULL);
		waited += 20;
	}
	http_server_stop(daemon_http);
	daemon_http = NULL;
}

/*
 * The session store of c: SQLite in state_dir, or the Redis shared by
 * several nodes (docs/cluster.md). 0 or -1 with a message in err.
 */
static int
open_store(const struct cfg *c, char *err, size_t errlen)
{
	struct sess_redis_options o;
	long long http_threads;

	if (strcmp(c->session.backend, "redis") != 0)
		return sess_sqlite_open(
		    c->state_dir, &daemon_store, err, errlen);
	memset(&o, 0, sizeof(o));
	o.host = c->session.host;
	o.port = (int)c->session.port;
	o.db = (int)c->session.db;
	o.password_file = c->session.password_file;
	/* Workers write sessions; HTTP threads count sign-ins (limits.c):
	 * enough connections for all of them at once, or the counting would
	 * fall back to this node alone under load. */
	http_threads = c->listen.threads > 0 ? c->listen.threads
					     : sysconf(_SC_NPROCESSORS_ONLN);
	o.pool = (unsigned int)(c->workers.threads +
	    (http_threads > 0 ? http_threads : 2) + 8);
	if (sess_redis_open(&o, &daemon_store, err, errlen) == -1)
		return -1;
	if (strcmp(o.host, "127.0.0.1") != 0 && strcmp(o.host, "::1") != 0 &&
	    strcmp(o.host, "localhost") != 0)
		log_event(LOG_WARN, "insecure_setting",
		    LS("setting", "session.uri"),
		    LS("message",
			"Redis is reached without TLS: keep it on a private "
			"network or behind a tunnel (docs/cluster.md)"),
		    LOG_END);
	if (sess_ping(daemon_store) == -1)
		log_event(LOG_WARN, "session_store_unavailable",
		    LS("store", "redis"),
		    LS("message",
			"Redis does not answer; sign-in answers 503 until it "
			"does"),
		    LOG_END);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	struct http_server_opts o;
	char err[1024], *cert = NULL, *key = NULL;
	struct rt *rt = NULL;
	const struct cfg *c;
	struct cfg *pre;
	struct timespec tick = {PURGE_INTERVAL, 0};
	sigset_t set;
	int i, test = 0, sig;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = config_path = argv[++i];
		else if (strcmp(argv[i], "-t") == 0)
			test = 1;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("emailauthd %s\n", EA_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	/* No core dumps: one would hold the signing key, the directory's
	 * service password and the TLS key. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	/* libldap must read no ldap.conf, ldaprc or LDAP* environment:
	 * every option is set by us (libraries.md §3.3). */
	setenv("LDAPNOINIT", "1", 1);

	/* The state directory must exist before keys are made in it. */
	if (cfg_load(path, &pre, err, sizeof(err)) == 0) {
		if (!test && prepare_state_dir(pre, err, sizeof(err)) == -1) {
			cfg_free(pre);
			log_event(LOG_ERROR, "start_failed", LS("error", err),
			    LOG_END);
			return 1;
		}
		cfg_free(pre);
	}
	if (rt_load(path, !test, &rt, err, sizeof(err)) == -1) {
		if (test)
			fprintf(stderr, "%s\n", err);
		else
			log_event(LOG_ERROR, "config_invalid", LS("error", err),
			    LOG_END);
		return 1;
	}
	if (test) {
		printf("%s: OK\n", path);
		rt_release(rt);
		return 0;
	}
	c = rt->cfg;
	apply_log_settings(c);
	warn_insecure(c);
	if (trail_open(c->audit.file, c->audit.syslog, "emailauthd", err,
		sizeof(err)) == -1)
		goto fail;
	if (c->listen.tls_cert != NULL &&
	    ((cert = read_pem(c->listen.tls_cert, 0, err, sizeof(err))) ==
		    NULL ||
		(key = read_pem(c->listen.tls_key, 1, err, sizeof(err))) ==
		    NULL))
		goto fail;
	if (open_store(c, err, sizeof(err)) == -1)
		goto fail;

	/* Signals go to this thread only, through sigwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (limits_init(c) == -1) {
		snprintf(err, sizeof(err), "out of memory for the limiters");
		goto fail;
	}
	/* After the signal mask: the thread takes no signals. */
	if (revoked_start(
		daemon_store, c->tokens.access_ttl + c->tokens.leeway) == -1) {
		snprintf(err, sizeof(err), "cannot start a thread");
		goto fail;
	}
	daemon_pool = authn_pool_new(
	    (unsigned int)c->workers.threads, (unsigned int)c->workers.queue);
	if (daemon_pool == NULL) {
		snprintf(err, sizeof(err), "cannot start the worker threads");
		goto fail;
	}
	memset(&o, 0, sizeof(o));
	o.address = c->listen.address;
	o.port = (unsigned int)c->listen.port;
	o.tls_cert_pem = cert;
	o.tls_key_pem = key;
	o.threads = (unsigned int)c->listen.threads;
	o.max_connections = (unsigned int)c->listen.max_connections;
	o.per_ip_connections = (unsigned int)c->listen.per_ip_connections;
	o.timeout = (unsigned int)c->listen.timeout;
	o.memory_limit = (size_t)c->listen.max_header_bytes;
	o.access_log = c->log.access;
	o.routes = routes;
	o.n_routes = sizeof(routes) / sizeof(routes[0]);
	o.begin = req_begin;
	o.end = req_end;
	o.admit = limits_admit;
	rt_swap(rt);
	daemon_http = http_server_start(&o, err, sizeof(err));
	if (key != NULL) {
		sec_wipe(key, strlen(key));
		free(key);
		key = NULL;
	}
	if (daemon_http == NULL) {
		rt = NULL;
		goto fail;
	}
	trail_event(LOG_INFO, "started", LS("version", EA_VERSION),
	    LS("config", path), LS("address", c->listen.address),
	    LI("port", http_server_port(daemon_http)),
	    LS("tls", cert != NULL ? "on" : "off"),
	    LS("kid", tok_key_kid(tok_keyset_get(rt->keys, TOK_CURRENT))),
	    LOG_END);
	rt = NULL;
	rt_reap_in_background();
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == -1 && errno != EAGAIN)
			continue;
		if (sig == -1) {
			struct rt *cur = rt_acquire();
			int n = sess_purge(daemon_store, (long long)time(NULL),
			    cur->cfg->tokens.refresh_idle);

			if (n > 0)
				log_event(LOG_INFO, "sessions_purged",
				    LI("count", n), LOG_END);
			rt_release(cur);
			continue;
		}
		if (sig == SIGHUP) {
			daemon_reload();
			continue;
		}
		break;
	}
	log_event(LOG_INFO, "stopping", LS("signal", strsignal(sig)), LOG_END);
	shutdown_gracefully();
	revoked_stop();
	sess_close(daemon_store);
	limits_free();
	free(cert);
	rt_shutdown();
	rt_swap(NULL);
	trail_event(LOG_INFO, "stopped", LOG_END);
	trail_close();
	return 0;
fail:
	log_event(LOG_ERROR, "start_failed", LS("error", err), LOG_END);
	if (key != NULL) {
		sec_wipe(key, strlen(key));
		free(key);
	}
	free(cert);
	authn_pool_free(daemon_pool);
	revoked_stop();
	sess_close(daemon_store);
	limits_free();
	rt_release(rt);
	rt_shutdown();
	rt_swap(NULL);
	return 1;
}
