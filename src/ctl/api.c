/*
 * emailauthctl against the running daemon: the admin API over HTTP with
 * an admin's access token.
 *
 * The token comes from EMAILAUTH_TOKEN or a file (--token-file,
 * EMAILAUTH_TOKEN_FILE), never from the command line, where ps(1) would
 * show it. It is wiped once the request is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config/config.h"
#include "ctl/ctl.h"
#include "guard/fetch.h"
#include "util/file.h"
#include "util/sec.h"

#define TOKEN_MAX     16384
#define RESPONSE_MAX  (4 * 1024 * 1024)
#define MAP_RETRIES   3
#define HEADER_PREFIX "Authorization: Bearer "

struct sink {
	char *buf;
	size_t len;
	int over;
	char *etag; /* 128 bytes */
};

int
ctl_have_token(void)
{
	const char *e = getenv("EMAILAUTH_TOKEN");

	return (e != NULL && e[0] != '\0') || ctl.token_file != NULL ||
	    getenv("EMAILAUTH_TOKEN_FILE") != NULL;
}

/* The token into buf (trimmed). 0, or -1 after printing why. */
static int
read_token(char *buf, size_t cap)
{
	const char *e = getenv("EMAILAUTH_TOKEN"), *path = ctl.token_file;
	char err[512], *t = NULL;
	size_t len = 0;

	if (path == NULL)
		path = getenv("EMAILAUTH_TOKEN_FILE");
	if (path == NULL && e != NULL && e[0] != '\0') {
		len = strlen(e);
		if (len >= cap)
			goto bad;
		memcpy(buf, e, len + 1);
	} else if (path != NULL) {
		if ((t = file_read(path, cap, &len, err, sizeof(err))) ==
		    NULL) {
			fprintf(stderr, "emailauthctl: token file: %s\n", err);
			return -1;
		}
		if (len >= cap) {
			sec_wipe(t, len);
			free(t);
			goto bad;
		}
		memcpy(buf, t, len);
		buf[len] = '\0';
		sec_wipe(t, len);
		free(t);
	} else {
		fprintf(stderr,
		    "emailauthctl: this command needs an admin's access "
		    "token: set EMAILAUTH_TOKEN or EMAILAUTH_TOKEN_FILE, or "
		    "give --token-file FILE\n");
		return -1;
	}
	while (len > 0 &&
	    (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0)
		goto bad;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] <= 0x20 ||
		    (unsigned char)buf[i] >= 0x7f)
			goto bad;
	return 0;
bad:
	sec_wipe(buf, cap);
	fprintf(stderr,
	    "emailauthctl: the token is empty, too long or not "
	    "a token\n");
	return -1;
}

/* The daemon's base URL from --url, EMAILAUTH_URL or the config. */
static int
base_url(char *buf, size_t cap)
{
	const char *u = ctl.url != NULL ? ctl.url : getenv("EMAILAUTH_URL");
	const char *host;
	struct cfg *c;
	char err[256];
	int n;

	if (u != NULL) {
		n = snprintf(buf, cap, "%s", u);
	} else {
		if ((c = ctl_load_config()) == NULL)
			return -1;
		if (c->listen.port == 0) {
			fprintf(stderr,
			    "emailauthctl: listen.port is 0 (any free port): "
			    "give the daemon's --url\n");
			cfg_free(c);
			return -1;
		}
		host = c->listen.address;
		if (strcmp(host, "0.0.0.0") == 0)
			host = "127.0.0.1";
		else if (strcmp(host, "::") == 0)
			host = "::1";
		n = snprintf(buf, cap, "%s://%s%s%s:%lld",
		    c->listen.tls_cert != NULL ? "https" : "http",
		    strchr(host, ':') != NULL ? "[" : "", host,
		    strchr(host, ':') != NULL ? "]" : "", c->listen.port);
		cfg_free(c);
	}
	if (n < 0 || (size_t)n >= cap ||
	    (strncmp(buf, "http://", 7) != 0 &&
		strncmp(buf, "https://", 8) != 0)) {
		fprintf(stderr,
		    "emailauthctl: the daemon's URL must be "
		    "http:// or https://\n");
		return -1;
	}
	while (n > 0 && buf[n - 1] == '/')
		buf[--n] = '\0';
	/* The admin's token must not cross a network in clear. */
	if (fetch_url_allowed(buf, "the daemon's URL", err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		return -1;
	}
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;
	char *nb;

	if (s->len + len > RESPONSE_MAX) {
		s->over = 1;
		return 0;
	}
	if ((nb = realloc(s->buf, s->len + len + 1)) == NULL)
		return 0;
	s->buf = nb;
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n, v;

	if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
		for (v = 5; v < len && (p[v] == ' ' || p[v] == '\t'); v++)
			;
		while (len > v &&
		    (p[len - 1] == '\r' || p[len - 1] == '\n' ||
			p[len - 1] == ' '))
			len--;
		if (len - v < 128) {
			memcpy(s->etag, p + v, len - v);
			s->etag[len - v] = '\0';
		}
	}
	return size * n;
}

int
ctl_api(const char *method, const char *path, json_t *body,
    const char *if_match, long *status_r, json_t **resp_r, char etag_r[128])
{
	char url[2048], base[1024], auth[sizeof(HEADER_PREFIX) + TOKEN_MAX],
	    im[160];
	struct curl_slist *h = NULL, *e;
	struct sink s = {NULL, 0, 0, etag_r};
	char *text = NULL;
	CURLcode rc;
	CURL *cu = NULL;
	int ret = CTL_FAILED;

	/* if_match may be etag_r itself. */
	if (if_match != NULL &&
	    (size_t)snprintf(im, sizeof(im), "If-Match: %s", if_match) >=
		sizeof(im))
		return CTL_FAILED;
	etag_r[0] = '\0';
	*resp_r = NULL;
	if (base_url(base, sizeof(base)) == -1)
		return CTL_FAILED;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >=
	    sizeof(url))
		return CTL_FAILED;
	memcpy(auth, HEADER_PREFIX, sizeof(HEADER_PREFIX) - 1);
	if (read_token(auth + sizeof(HEADER_PREFIX) - 1,
		sizeof(auth) - sizeof(HEADER_PREFIX) + 1) == -1)
		return CTL_FAILED;
	if ((cu = curl_easy_init()) == NULL)
		goto out;
	h = curl_slist_append(h, auth);
	sec_wipe(auth, sizeof(auth));
	h = curl_slist_append(h, "Accept: application/json");
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/json");
		if ((text = json_dumps(body, JSON_COMPACT)) == NULL)
			goto out;
	}
	if (if_match != NULL)
		h = curl_slist_append(h, im);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(
	    cu, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (ctl.cacert != NULL)
		curl_easy_setopt(cu, CURLOPT_CAINFO, ctl.cacert);
	if (text != NULL)
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, &s);
	rc = curl_easy_perform(cu);
	if (rc != CURLE_OK) {
		fprintf(stderr, "emailauthctl: %s: %s\n", base,
		    s.over ? "the answer is too large"
			   : curl_easy_strerror(rc));
		ret = CTL_UNREACHABLE;
		goto out;
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, status_r);
	if (s.len > 0)
		*resp_r = json_loadb(s.buf, s.len, 0, NULL);
	ret = CTL_OK;
out:
	for (e = h; e != NULL; e = e->next)
		sec_wipe(e->data, strlen(e->data));
	curl_slist_free_all(h);
	if (cu != NULL)
		curl_easy_cleanup(cu);
	free(text);
	free(s.buf);
	return ret;
}

int
ctl_api_failed(long status, json_t *resp)
{
	const char *detail = json_string_value(json_object_get(resp, "detail"));
	const char *title = json_string_value(json_object_get(resp, "title"));

	fprintf(stderr, "emailauthctl: the daemon answered %ld%s%s%s%s\n",
	    status, title != NULL ? " " : "", title != NULL ? title : "",
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	if (status == 401 || status == 403)
		return CTL_DENIED;
	if (status == 409 || status == 412 || status == 428)
		return CTL_CONFLICT;
	if (status >= 500)
		return CTL_UNREACHABLE;
	return CTL_FAILED;
}

char *
ctl_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *r;

	if (e == NULL)
		return NULL;
	r = strdup(e);
	curl_free(e);
	return r;
}

void
ctl_print_json(json_t *j)
{
	char *s = json_dumps(j,
	    ctl.json ? JSON_COMPACT | JSON_SORT_KEYS
		     : JSON_INDENT(2) | JSON_SORT_KEYS);

	printf("%s\n", s != NULL ? s : "null");
	free(s);
}

/* GET then answer non-200 as a failure. */
static int
get_ok(const char *path, json_t **resp_r, char etag[128])
{
	long st = 0;
	int rc;

	if ((rc = ctl_api("GET", path, NULL, NULL, &st, resp_r, etag)) !=
	    CTL_OK)
		return rc;
	if (st != 200 || *resp_r == NULL) {
		rc = ctl_api_failed(st, *resp_r);
		json_decref(*resp_r);
		*resp_r = NULL;
		return rc;
	}
	return CTL_OK;
}

/* The index of group in the role's groups (case-insensitive), or -1. */
static long
group_index(json_t *groups, const char *group)
{
	size_t i;
	json_t *g;

	json_array_foreach(groups, i, g)
	{
		if (json_is_string(g) &&
		    strcasecmp(json_string_value(g), group) == 0)
			return (long)i;
	}
	return -1;
}

/*
 * roles map|unmap GROUP ROLE: read the map and its ETag, change one
 * role's groups, PUT it with If-Match; on 412 (another admin was quicker)
 * read again and retry a few times.
 */
static int
map_group(int map, const char *group, const char *role)
{
	char etag[128], *erole = ctl_escape(role), path[512];
	json_t *doc = NULL, *r, *groups, *body = NULL, *resp = NULL;
	long st = 0, at;
	int rc = CTL_FAILED, tries;

	if (erole == NULL)
		return CTL_FAILED;
	snprintf(path, sizeof(path), "/v1/admin/roles/%s", erole);
	for (tries = 0; tries < MAP_RETRIES; tries++) {
		json_decref(doc);
		json_decref(body);
		json_decref(resp);
		doc = body = resp = NULL;
		if ((rc = get_ok("/v1/admin/roles", &doc, etag)) != CTL_OK)
			goto out;
		r = json_object_get(json_object_get(doc, "roles"), role);
		if (r == NULL) {
			fprintf(stderr,
			    "emailauthctl: no role '%s' in the role map\n",
			    role);
			rc = CTL_FAILED;
			goto out;
		}
		if ((groups = json_deep_copy(json_object_get(r, "groups"))) ==
		    NULL)
			groups = json_array();
		at = group_index(groups, group);
		if (map && at >= 0) {
			json_decref(groups);
			printf("'%s' already maps to '%s'\n", group, role);
			rc = CTL_OK;
			goto out;
		}
		if (!map && at < 0) {
			json_decref(groups);
			fprintf(stderr,
			    "emailauthctl: '%s' does not map to '%s'\n", group,
			    role);
			rc = CTL_FAILED;
			goto out;
		}
		if (map)
			json_array_append_new(groups, json_string(group));
		else
			json_array_remove(groups, (size_t)at);
		body = json_pack("{s:o, s:O}", "groups", groups, "permissions",
		    json_object_get(r, "permissions"));
		if ((rc = ctl_api("PUT", path, body, etag, &st, &resp, etag)) !=
		    CTL_OK)
			goto out;
		if (st != 412)
			break;
	}
	if (st != 200) {
		rc = ctl_api_failed(st, resp);
		goto out;
	}
	if (ctl.json)
		ctl_print_json(resp);
	else
		printf("%s '%s' %s '%s'\n", map ? "mapped" : "unmapped", group,
		    map ? "to" : "from", role);
	rc = CTL_OK;
out:
	json_decref(doc);
	json_decref(body);
	json_decref(resp);
	free(erole);
	return rc;
}

static void
print_list(const char *label, json_t *a)
{
	size_t i;
	json_t *v;

	printf("%-12s", label);
	if (json_array_size(a) == 0)
		printf(" -");
	json_array_foreach(a, i, v)
	{
		printf("%s%s", i == 0 ? " " : ", ",
		    json_is_string(v) ? json_string_value(v) : "?");
	}
	printf("\n");
}

static int
explain(const char *user)
{
	char etag[128], path[1024], *eu = ctl_escape(user);
	json_t *doc = NULL, *m;
	size_t i;
	int rc;

	if (eu == NULL)
		return CTL_FAILED;
	snprintf(path, sizeof(path), "/v1/admin/explain?user=%s", eu);
	free(eu);
	if ((rc = get_ok(path, &doc, etag)) != CTL_OK)
		return rc;
	if (ctl.json) {
		ctl_print_json(doc);
	} else {
		printf("%-12s %s\n%-12s %s%s\n", "user",
		    json_string_value(json_object_get(doc, "user")), "backend",
		    json_string_value(json_object_get(doc, "backend")),
		    json_is_true(json_object_get(doc, "disabled"))
			? " (account disabled)"
			: "");
		print_list("groups", json_object_get(doc, "groups"));
		print_list("roles", json_object_get(doc, "roles"));
		print_list("permissions", json_object_get(doc, "permissions"));
		json_array_foreach(json_object_get(doc, "matches"), i, m)
		{
			char *s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);

			printf("%-12s %s\n", i == 0 ? "because" : "",
			    s != NULL ? s : "?");
			free(s);
		}
	}
	json_decref(doc);
	return CTL_OK;
}

int
cmd_roles_api(int argc, char **argv)
{
	char etag[128];
	json_t *doc = NULL;
	int rc;

	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		if ((rc = get_ok("/v1/admin/roles", &doc, etag)) != CTL_OK)
			return rc;
		ctl_print_json(json_object_get(doc, "roles"));
		json_decref(doc);
		return CTL_OK;
	}
	if (strcmp(argv[1], "map") == 0 && argc == 4)
		return map_group(1, argv[2], argv[3]);
	if (strcmp(argv[1], "unmap") == 0 && argc == 4)
		return map_group(0, argv[2], argv[3]);
	if (strcmp(argv[1], "explain") == 0 && argc == 3)
		return explain(argv[2]);
	return CTL_USAGE;
}

static void
print_time(long long t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
		printf(" %s", buf);
	else
		printf(" %lld", t);
}

int
cmd_sessions(int argc, char **argv)
{
	char etag[128], path[1024], *e = NULL;
	json_t *doc = NULL, *s;
	long st = 0;
	size_t i;
	int rc;

	if (argc == 3 && strcmp(argv[1], "list") == 0) {
		if ((e = ctl_escape(argv[2])) == NULL)
			return CTL_FAILED;
		snprintf(path, sizeof(path), "/v1/admin/sessions?user=%s", e);
		free(e);
		if ((rc = get_ok(path, &doc, etag)) != CTL_OK)
			return rc;
		if (ctl.json) {
			ctl_print_json(doc);
		} else {
			printf("%-22s %-8s %-20s %-20s %-20s %s\n", "SID",
			    "BACKEND", "CREATED", "LAST USED", "EXPIRES",
			    "CLIENT");
			json_array_foreach(
			    json_object_get(doc, "sessions"), i, s)
			{
				printf("%-22s %-8s",
				    json_string_value(
					json_object_get(s, "sid")),
				    json_string_value(
					json_object_get(s, "backend")));
				print_time(json_integer_value(
				    json_object_get(s, "created")));
				print_time(json_integer_value(
				    json_object_get(s, "last_used")));
				print_time(json_integer_value(
				    json_object_get(s, "expires")));
				printf(" %s\n",
				    json_string_value(
					json_object_get(s, "client")));
			}
		}
		json_decref(doc);
		return CTL_OK;
	}
	if (argc == 3 && strcmp(argv[1], "revoke") == 0)
		e = ctl_escape(argv[2]);
	else if (argc == 4 && strcmp(argv[1], "revoke") == 0 &&
	    strcmp(argv[2], "--user") == 0)
		e = ctl_escape(argv[3]);
	else
		return CTL_USAGE;
	if (e == NULL)
		return CTL_FAILED;
	snprintf(path, sizeof(path),
	    argc == 3 ? "/v1/admin/sessions/%s" : "/v1/admin/sessions?user=%s",
	    e);
	free(e);
	if ((rc = ctl_api("DELETE", path, NULL, NULL, &st, &doc, etag)) !=
	    CTL_OK)
		return rc;
	if (st != 200 && st != 204) {
		rc = ctl_api_failed(st, doc);
		json_decref(doc);
		return rc;
	}
	if (doc == NULL)
		doc = json_pack("{s:i}", "revoked", 1);
	if (ctl.json)
		ctl_print_json(doc);
	else
		printf("revoked %lld session(s)\n",
		    (long long)json_integer_value(
			json_object_get(doc, "revoked")));
	json_decref(doc);
	return CTL_OK;
}
