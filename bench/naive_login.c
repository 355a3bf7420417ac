/*
 * naive_login: the baseline of the /v1/login benchmark (docs/performance.md).
 * What a naive directory client does per sign-in, on one connection per
 * thread that it keeps for the whole run:
 *
 *   1. bind as the service account,
 *   2. search the user (uid=NAME under the user base),
 *   3. bind as the user with his password,
 *   4. search his groups (groupOfNames with member=DN under the group base).
 *
 *   naive_login URI CA_FILE SERVICE_DN SERVICE_PW_FILE USERS_FILE
 *               THREADS SECONDS
 *
 * USERS_FILE has one "name password" a line; thread t starts at line t
 * and steps by THREADS. Prints one line:
 *   naive_login logins_per_s=N p50_ms=N p99_ms=N ok=N errors=N
 * The TLS options are those emailauthd sets (certificate DEMAND against
 * CA_FILE, TLS 1.2 minimum), so both sides pay for the same TLS.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ldap.h>

#define USERS_MAX 100000
#define LAT_MAX   (1u << 16) /* samples per thread */

#define USER_BASE  "ou=people,dc=example,dc=com"
#define GROUP_BASE "ou=groups,dc=example,dc=com"

struct user {
	char *name;
	char *password;
};

static const char *uri, *ca_file, *service_dn;
static char service_pw[256];
static struct user users[USERS_MAX];
static size_t n_users, n_threads;
static double deadline;

struct worker {
	pthread_t t;
	size_t id;
	unsigned long ok, errors;
	double *lat;
	size_t n_lat;
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "naive_login: %s\n", what);
	exit(1);
}

static LDAP *
connect_one(void)
{
	struct timeval nt = {5, 0};
	int v3 = LDAP_VERSION3, zero = 0, req = LDAP_OPT_X_TLS_DEMAND;
	int tlsmin = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	LDAP *ld = NULL;

	if (ldap_initialize(&ld, uri) != LDAP_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &nt) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tlsmin) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, ca_file) !=
		LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) !=
		LDAP_OPT_SUCCESS)
		die("cannot set up a connection");
	return ld;
}

static int
simple_bind(LDAP *ld, const char *dn, const char *pw)
{
	struct berval cred;

	cred.bv_val = (char *)(uintptr_t)pw;
	cred.bv_len = strlen(pw);
	return ldap_sasl_bind_s(
	    ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* One sign-in, the naive way. 0 when the user's password checked out. */
static int
login(LDAP *ld, const struct user *u)
{
	static char a_uid[] = "uid", a_cn[] = "cn", a_mail[] = "mail";
	char filter[512], *attrs[] = {a_uid, a_cn, a_mail, NULL};
	char *gattrs[] = {a_cn, NULL}, *dn = NULL;
	struct berval in, esc = {0, NULL};
	LDAPMessage *res = NULL, *e;
	int rc = -1;

	if (simple_bind(ld, service_dn, service_pw) != LDAP_SUCCESS)
		return -1;
	in.bv_val = u->name;
	in.bv_len = strlen(u->name);
	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return -1;
	snprintf(filter, sizeof(filter),
	    "(&(objectClass=inetOrgPerson)(uid=%s))", esc.bv_val);
	ber_memfree(esc.bv_val);
	if (ldap_search_ext_s(ld, USER_BASE, LDAP_SCOPE_SUBTREE, filter, attrs,
		0, NULL, NULL, NULL, 2, &res) != LDAP_SUCCESS ||
	    ldap_count_entries(ld, res) != 1 ||
	    (e = ldap_first_entry(ld, res)) == NULL ||
	    (dn = ldap_get_dn(ld, e)) == NULL)
		goto out;
	ldap_msgfree(res);
	res = NULL;
	if (simple_bind(ld, dn, u->password) != LDAP_SUCCESS)
		goto out;
	in.bv_val = dn;
	in.bv_len = strlen(dn);
	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		goto out;
	snprintf(filter, sizeof(filter),
	    "(&(objectClass=groupOfNames)(member=%s))", esc.bv_val);
	ber_memfree(esc.bv_val);
	if (ldap_search_ext_s(ld, GROUP_BASE, LDAP_SCOPE_SUBTREE, filter,
		gattrs, 0, NULL, NULL, NULL, 0, &res) != LDAP_SUCCESS ||
	    ldap_count_entries(ld, res) < 1)
		goto out;
	rc = 0;
out:
	ldap_msgfree(res);
	ldap_memfree(dn);
	return rc;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	size_t i = w->id % n_users;
	LDAP *ld = connect_one();
	double t0, t1;

	while ((t0 = mono()) < deadline) {
		int rc = login(ld, &users[i]);

		t1 = mono();
		if (rc == 0) {
			w->ok++;
			if (w->n_lat < LAT_MAX)
				w->lat[w->n_lat++] = t1 - t0;
		} else {
			w->errors++;
			ldap_unbind_ext_s(ld, NULL, NULL);
			ld = connect_one();
		}
		i = (i + n_threads) % n_users;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
read_files(const char *pw_file, const char *users_file)
{
	char line[1024], name[512], pw[512];
	FILE *f;

	if ((f = fopen(pw_file, "r")) == NULL ||
	    fgets(service_pw, sizeof(service_pw), f) == NULL)
		die("cannot read the service password");
	fclose(f);
	service_pw[strcspn(service_pw, "\r\n")] = '\0';
	if ((f = fopen(users_file, "r")) == NULL)
		die("cannot read the users");
	while (n_users < USERS_MAX && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%511s %511s", name, pw) != 2)
			continue;
		if ((users[n_users].name = strdup(name)) == NULL ||
		    (users[n_users].password = strdup(pw)) == NULL)
			die("out of memory");
		n_users++;
	}
	fclose(f);
	if (n_users == 0)
		die("no users");
}

int
main(int argc, char **argv)
{
	struct worker *w;
	double *all, start, secs, elapsed;
	unsigned long ok = 0, errors = 0;
	size_t i, n = 0;

	if (argc != 8)
		die("usage: naive_login URI CA_FILE SERVICE_DN SERVICE_PW_FILE "
		    "USERS_FILE THREADS SECONDS");
	uri = argv[1];
	ca_file = argv[2];
	service_dn = argv[3];
	read_files(argv[4], argv[5]);
	n_threads = strtoul(argv[6], NULL, 10);
	secs = atof(argv[7]);
	if (n_threads < 1 || n_threads > 1024 || secs <= 0)
		die("bad THREADS or SECONDS");
	if ((w = calloc(n_threads, sizeof(*w))) == NULL)
		die("out of memory");
	start = mono();
	deadline = start + secs;
	for (i = 0; i < n_threads; i++) {
		w[i].id = i;
		if ((w[i].lat = malloc(LAT_MAX * sizeof(double))) == NULL)
			die("out of memory");
		if (pthread_create(&w[i].t, NULL, run, &w[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < n_threads; i++) {
		pthread_join(w[i].t, NULL);
		ok += w[i].ok;
		errors += w[i].errors;
	}
	elapsed = mono() - start;
	if ((all = calloc(ok + 1, sizeof(double))) == NULL)
		die("out of memory");
	for (i = 0; i < n_threads; i++) {
		memcpy(all + n, w[i].lat, w[i].n_lat * sizeof(double));
		n += w[i].n_lat;
		free(w[i].lat);
	}
	qsort(all, n, sizeof(double), cmp_double);
	printf("naive_login logins_per_s=%.1f p50_ms=%.3f p99_ms=%.3f ok=%lu "
	       "errors=%lu\n",
	    (double)ok / elapsed, n ? all[n / 2] * 1e3 : 0.0,
	    n ? all[n * 99 / 100] * 1e3 : 0.0, ok, errors);
	free(all);
	free(w);
	return 0;
}
