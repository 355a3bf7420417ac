/*
 * emailauthd: arguments, configuration, signals, start and stop. The
 * routes live in the other files of this directory.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "http/server.h"
#include "log/log.h"
#include "util/sec.h"

#ifndef EA_VERSION
#define EA_VERSION "0.1.0"
#endif

#define DEFAULT_CONFIG    "/etc/emailauth/emailauthd.conf"
#define SHUTDOWN_GRACE_MS 5000
#define PEM_MAX           (64 * 1024)

struct http_server *daemon_http;

static const struct http_route routes[] = {
    {"GET", "/healthz", 0, route_healthz},
    {"GET", "/readyz", 0, route_readyz},
    {"GET", "/metrics", 0, route_metrics},
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
	struct cfg *c = cfg_acquire();

	(void)cls;
	r->app = c;
	r->pol = c != NULL ? &c->http : NULL;
}

static void
req_end(struct http_req *r, void *cls)
{
	(void)cls;
	cfg_release(r->app);
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

static void
reload(const char *path)
{
	struct cfg *n, *old;
	char err[1024];

	if (cfg_load(path, &n, err, sizeof(err)) == -1) {
		log_event(LOG_ERROR, "reload_failed", LS("error", err),
		    LS("message", "kept the running configuration"), LOG_END);
		return;
	}
	old = cfg_acquire();
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
		old->listen.max_header_bytes != n->listen.max_header_bytes))
		log_event(LOG_WARN, "reload_partial",
		    LS("message",
			"listener settings (address, port, tls, threads, "
			"connection limits, timeout) change only on restart"),
		    LOG_END);
	cfg_release(old);
	apply_log_settings(n);
	warn_insecure(n);
	cfg_swap(n);
	log_event(LOG_INFO, "reloaded", LS("config", path), LOG_END);
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
	http_server_stop(daemon_http);
	daemon_http = NULL;
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	struct http_server_opts o;
	char err[1024], *cert = NULL, *key = NULL;
	struct cfg *c;
	sigset_t set;
	int i, test = 0, sig;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
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

	if (cfg_load(path, &c, err, sizeof(err)) == -1) {
		if (test)
			fprintf(stderr, "%s\n", err);
		else
			log_event(LOG_ERROR, "config_invalid", LS("error", err),
			    LOG_END);
		return 1;
	}
	if (test) {
		printf("%s: OK\n", path);
		cfg_release(c);
		return 0;
	}
	apply_log_settings(c);
	warn_insecure(c);
	if (prepare_state_dir(c, err, sizeof(err)) == -1)
		goto fail;
	if (c->listen.tls_cert != NULL &&
	    ((cert = read_pem(c->listen.tls_cert, 0, err, sizeof(err))) ==
		    NULL ||
		(key = read_pem(c->listen.tls_key, 1, err, sizeof(err))) ==
		    NULL))
		goto fail;

	/* Signals go to this thread only, through sigwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

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
	cfg_swap(c);
	c = NULL;
	daemon_http = http_server_start(&o, err, sizeof(err));
	if (key != NULL) {
		sec_wipe(key, strlen(key));
		free(key);
		key = NULL;
	}
	if (daemon_http == NULL) {
		c = cfg_acquire();
		goto fail;
	}
	{
		struct cfg *cur = cfg_acquire();

		log_event(LOG_INFO, "started", LS("version", EA_VERSION),
		    LS("config", path), LS("address", cur->listen.address),
		    LI("port", http_server_port(daemon_http)),
		    LS("tls", cert != NULL ? "on" : "off"), LOG_END);
		cfg_release(cur);
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(path);
			continue;
		}
		break;
	}
	log_event(LOG_INFO, "stopping", LS("signal", strsignal(sig)), LOG_END);
	shutdown_gracefully();
	free(cert);
	cfg_swap(NULL);
	log_event(LOG_INFO, "stopped", LOG_END);
	return 0;
fail:
	log_event(LOG_ERROR, "start_failed", LS("error", err), LOG_END);
	if (key != NULL) {
		sec_wipe(key, strlen(key));
		free(key);
	}
	free(cert);
	cfg_release(c);
	cfg_swap(NULL);
	return 1;
}
