/*
 * JWKS fetching with libcurl.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "guard/fetch.h"

struct body {
	char *p;
	size_t len;
	size_t max;
	int too_big;
	const atomic_int *stop;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void
do_init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int
fetch_init(void)
{
	pthread_once(&once, do_init);
	return init_rc;
}

static size_t
on_data(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (len > b->max - b->len) {
		b->too_big = 1;
		return 0; /* aborts the transfer */
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return len;
}

/* Gives the transfer up once the owner asked to stop. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	const struct body *b = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return b->stop != NULL && atomic_load(b->stop) ? 1 : 0;
}

char *
fetch_doc(const char *url, const char *ca_file, unsigned int timeout,
    size_t max, const char *what, const atomic_int *stop, size_t *len_r,
    char *err, size_t errlen)
{
	struct body b = {NULL, 0, max, 0, stop};
	CURL *h = NULL;
	CURLcode rc;
	long status = 0;
	char *ret = NULL;

	if (fetch_init() == -1) {
		snprintf(err, errlen, "libcurl cannot start");
		return NULL;
	}
	if (max == 0 || max == SIZE_MAX || (b.p = malloc(max + 1)) == NULL ||
	    (h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (stop != NULL) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &b);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(h, CURLOPT_USERAGENT, "libemailauth");
	rc = curl_easy_perform(h);
	if (b.too_big) {
		snprintf(err, errlen, "%s is larger than %zu bytes", what, max);
		goto out;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "cannot fetch %s: %s", what,
		    curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(err, errlen, "fetching %s answered %ld", what, status);
		goto out;
	}
	b.p[b.len] = '\0';
	*len_r = b.len;
	ret = b.p;
	b.p = NULL;
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	free(b.p);
	return ret;
}

char *
fetch_url(const char *url, const char *ca_file, unsigned int timeout,
    size_t *len_r, char *err, size_t errlen)
{
	return fetch_doc(url, ca_file, timeout, FETCH_MAX, "the JWKS", NULL,
	    len_r, err, errlen);
}

int
fetch_url_allowed(const char *url, const char *what, char *err, size_t errlen)
{
	const char *h, *e;
	size_t n, alen;

	if (strncmp(url, "https://", 8) == 0)
		h = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else {
		snprintf(err, errlen, "%s must be an https:// URL", what);
		return -1;
	}
	/* No user info: "http://127.0.0.1:80@evil/" goes to evil. */
	alen = strcspn(h, "/?#");
	if (alen == 0 || memchr(h, '@', alen) != NULL ||
	    memchr(h, '\\', alen) != NULL) {
		snprintf(
		    err, errlen, "%s: no host, or user info in the URL", what);
		return -1;
	}
	if (h == url + 8)
		return 0;
	if (h[0] == '[')
		e = memchr(h, ']', alen) != NULL
		    ? (const char *)memchr(h, ']', alen) + 1
		    : h;
	else
		e = h + strcspn(h, ":/?#");
	n = (size_t)(e - h);
	if (((n == 5 && memcmp(h, "[::1]", 5) == 0) ||
		(n == 9 && memcmp(h, "localhost", 9) == 0) ||
		(n >= 9 && n <= 15 && memcmp(h, "127.", 4) == 0 &&
		    strspn(h, "0123456789.") == n)) &&
	    (e == h + alen ||
		(*e == ':' &&
		    strspn(e + 1, "0123456789") == (size_t)(h + alen - e - 1))))
		return 0;
	snprintf(err, errlen,
	    "%s: http:// only to a loopback address (127.0.0.1, [::1], "
	    "localhost); use https:// across a network",
	    what);
	return -1;
}
