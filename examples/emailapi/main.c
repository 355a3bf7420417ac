/*
 * emailapi: arguments, configuration, signals, start and stop. The
 * routes live in routes.c, the database in store.c.
 *
 *   emailapi [-c FILE] [--version] [--no-guard]
 *
 * --no-guard answers every route without any check: only for the
 * benchmark that measures what the guard costs (bench/run.py).
 *
 * The configuration (libconfig syntax) has three settings:
 *
 *   listen = { address = "127.0.0.1"; port = 8081; };  # port 0: any free
 *   database = "emails.db";                             # created, seeded
 *   guard = { issuer = ...; audience = ...; jwks_url = ...; ... };
 *
 * The guard group is read by ea_guard_new_from_file() (docs/guard.md).
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libconfig.h>

#include "emailapi.h"

#define DEFAULT_CONFIG "emailapi.conf"
#define VERSION        "0.1.0"

struct settings {
	char address[INET6_ADDRSTRLEN];
	unsigned int port;
	unsigned int threads;
	unsigned int timeout;
	unsigned int max_connections;
	char database[4096];
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: emailapi [-c FILE] [--version] [--no-guard]\n"
	    "  -c FILE     configuration file (default %s)\n"
	    "  --version   print the version and exit\n"
	    "  --no-guard  no token checked on any route (benchmarks only)\n",
	    DEFAULT_CONFIG);
}

/* One of names, or 0. */
static int
known(const char *name, const char *const *names)
{
	for (; *names != NULL; names++)
		if (strcmp(name, *names) == 0)
			return 1;
	return 0;
}

/* Unknown settings in group are errors (a typo must not pass). 0 / -1. */
static int
only(const config_setting_t *group, const char *const *names, const char *path,
    char *err, size_t errlen)
{
	const config_setting_t *s;
	int i, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(group, (unsigned int)i);
		if (s != NULL && !known(config_setting_name(s), names)) {
			snprintf(err, errlen, "%s:%d: unknown setting '%.64s'",
			    path, config_setting_source_line(s),
			    config_setting_name(s));
			return -1;
		}
	}
	return 0;
}

/* An optional integer of group in [min, max]; def when absent. 0 / -1. */
static int
uint_of(const config_setting_t *group, const char *name, unsigned int min,
    unsigned int max, unsigned int def, unsigned int *v_r, const char *path,
    char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(group, name);
	long long v;

	if (s == NULL) {
		*v_r = def;
		return 0;
	}
	v = config_setting_get_int64(s);
	if ((config_setting_type(s) != CONFIG_TYPE_INT &&
		config_setting_type(s) != CONFIG_TYPE_INT64) ||
	    v < min || v > max) {
		snprintf(err, errlen,
		    "%s:%d: '%s' must be an integer from %u "
		    "to %u",
		    path, config_setting_source_line(s), name, min, max);
		return -1;
	}
	*v_r = (unsigned int)v;
	return 0;
}

/* A required string into buf. 0 / -1. */
static int
str_of(const config_setting_t *group, const char *name, char *buf, size_t len,
    const char *path, char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(group, name);
	const char *v;

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING ||
	    (v = config_setting_get_string(s)) == NULL || *v == '\0' ||
	    strlen(v) >= len) {
		snprintf(err, errlen, "%s: '%s' must be a non-empty string",
		    path, name);
		return -1;
	}
	memcpy(buf, v, strlen(v) + 1);
	return 0;
}

/* Reads listen and database (the guard reads its own group). 0 / -1. */
static int
settings_read(const char *path, struct settings *st, char *err, size_t errlen)
{
	static const char *const top[] = {"listen", "database", "guard", NULL};
	static const char *const lst[] = {
	    "address", "port", "threads", "timeout", "max_connections", NULL};
	const config_setting_t *root, *l;
	config_t cf;
	long ncpu;
	int ret = -1;

	config_init(&cf);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read", path);
		else
			snprintf(err, errlen, "%s:%d: %s", path,
			    config_error_line(&cf), config_error_text(&cf));
		goto out;
	}
	root = config_root_setting(&cf);
	if (only(root, top, path, err, errlen) == -1)
		goto out;
	l = config_setting_get_member(root, "listen");
	if (l == NULL || config_setting_type(l) != CONFIG_TYPE_GROUP) {
		snprintf(err, errlen, "%s: 'listen' must be a group", path);
		goto out;
	}
	if ((ncpu = sysconf(_SC_NPROCESSORS_ONLN)) < 1)
		ncpu = 1;
	if (only(l, lst, path, err, errlen) == -1 ||
	    str_of(l, "address", st->address, sizeof(st->address), path, err,
		errlen) == -1 ||
	    uint_of(l, "port", 0, 65535, 8081, &st->port, path, err, errlen) ==
		-1 ||
	    uint_of(l, "threads", 1, 256, ncpu > 16 ? 16 : (unsigned int)ncpu,
		&st->threads, path, err, errlen) == -1 ||
	    uint_of(l, "timeout", 1, 3600, 30, &st->timeout, path, err,
		errlen) == -1 ||
	    uint_of(l, "max_connections", 1, 100000, 1024, &st->max_connections,
		path, err, errlen) == -1 ||
	    str_of(root, "database", st->database, sizeof(st->database), path,
		err, errlen) == -1)
		goto out;
	if (config_setting_get_member(root, "guard") == NULL) {
		snprintf(err, errlen, "%s: no group 'guard'", path);
		goto out;
	}
	ret = 0;
out:
	config_destroy(&cf);
	return ret;
}

/* MHD's log messages, as JSON lines. */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_event("warn", "mhd", "message", msg, NULL);
}

/*
 * MHD's unescape callback: none. Paths are routed exactly as sent, so
 * "/api/emails/1%2flabels" is not "/api/emails/1/labels" and a proxy's
 * path rules see what we route on; query values are plain digits.
 */
static size_t
no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* Starts MHD on the configured address. NULL on failure (logged). */
static struct MHD_Daemon *
start(const struct settings *st, struct api *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	unsigned int flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, st->address, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)st->port);
	} else if (inet_pton(AF_INET6, st->address, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)st->port);
		flags |= MHD_USE_IPv6;
	} else {
		log_event("error", "start_failed", "error",
		    "listen.address must be a numeric IPv4 or IPv6 address",
		    NULL);
		return NULL;
	}
	return MHD_start_daemon(flags, (uint16_t)st->port, NULL, NULL,
	    api_handler, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, st->threads,
	    MHD_OPTION_CONNECTION_LIMIT, st->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, st->timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
	    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, api_completed, NULL, MHD_OPTION_END);
}

/* {"event":"started","port":N}: the line tests and scripts wait for. */
static void
log_started(unsigned int port)
{
	char line[128];
	int n;

	n = snprintf(line, sizeof(line),
	    "{\"level\":\"info\",\"event\":\"started\",\"port\":%u}\n", port);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* Waits for SIGTERM or SIGINT (blocked in every thread). */
static void
wait_for_stop(const sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			return;
		log_event("info", "reload_unsupported", "message",
		    "SIGHUP ignored; restart to apply a new configuration",
		    NULL);
	}
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d = NULL;
	struct settings st;
	struct api a;
	char err[512];
	sigset_t set;
	int i, ret = 1;

	memset(&a, 0, sizeof(a));
	memset(&st, 0, sizeof(st));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--no-guard") == 0) {
			a.no_guard = 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("emailapi %s (libemailauth %s)\n", VERSION,
			    EA_GUARD_VERSION);
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
	/* Block the stop signals before any thread exists; sigwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_event("error", "start_failed", "error", "signals", NULL);
		return 1;
	}
	umask(077);
	if (settings_read(path, &st, err, sizeof(err)) == -1) {
		log_event("error", "config_invalid", "error", err, NULL);
		goto out;
	}
	if (store_open(st.database, &a.store, err, sizeof(err)) == -1) {
		log_event("error", "start_failed", "error", err, NULL);
		goto out;
	}
	if (ea_guard_new_from_file(path, "guard", log_guard, NULL, &a.guard,
		err, sizeof(err)) == -1) {
		log_event("error", "config_invalid", "error", err, NULL);
		goto out;
	}
	if ((d = start(&st, &a)) == NULL) {
		log_event("error", "start_failed", "error",
		    "cannot listen on the configured address", NULL);
		goto out;
	}
	if ((info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) ==
	    NULL) {
		log_event("error", "start_failed", "error",
		    "cannot read the bound port", NULL);
		goto out;
	}
	if (a.no_guard)
		log_event("warn", "guard_off", "message",
		    "--no-guard: every route answers without a token", NULL);
	log_started(info->port);
	wait_for_stop(&set);
	log_event("info", "stopping", NULL);
	ret = 0;
out:
	/* MHD first: no request may be in the guard or the store after. */
	if (d != NULL)
		MHD_stop_daemon(d);
	ea_guard_free(a.guard);
	store_free(a.store);
	if (ret == 0)
		log_event("info", "stopped", NULL);
	return ret;
}
