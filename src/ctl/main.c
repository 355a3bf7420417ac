/*
 * emailauthctl: the administrator's command line.
 *
 *   emailauthctl [-c FILE] passwd [--update] [--groups G1,G2] USER
 *   emailauthctl [-c FILE] keys list [--json]
 *   emailauthctl [-c FILE] keys rotate [--force]
 *   emailauthctl [-c FILE] check-config
 *
 * Exit codes: 0 done, 1 failed (the reason on stderr), 2 usage error.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "authn/authn.h"
#include "config/config.h"
#include "policy/policy.h"
#include "util/b64.h"
#include "token/token.h"
#include "util/file.h"
#include "util/sec.h"

#ifndef EA_VERSION
#define EA_VERSION "0.1.0"
#endif

#define DEFAULT_CONFIG "/etc/emailauth/emailauthd.conf"
#define USERS_MAX_SIZE (16 * 1024 * 1024)

static const char *config_path = DEFAULT_CONFIG;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: emailauthctl [-c FILE] COMMAND [ARGS]\n"
	    "\n"
	    "  passwd [--update] [--groups G1,G2] USER\n"
	    "      read a password (twice, without echo, on a terminal; one\n"
	    "      line from stdin otherwise) and print the file-backend line\n"
	    "      USER:HASH:GROUPS; with --update, write it into the file\n"
	    "      of 'file.path' (keeping the user's groups unless --groups)\n"
	    "  keys list [--json]\n"
	    "      the signing keys in state_dir: slot, kid, algorithm\n"
	    "  keys rotate [--force]\n"
	    "      previous <- current <- next <- a new key; refused while the\n"
	    "      previous key's tokens may still be valid, unless --force;\n"
	    "      then reload the daemon (systemctl reload emailauthd)\n"
	    "  check-config\n"
	    "      validate the configuration file, like emailauthd -t\n"
	    "  roles list [--json]\n"
	    "      the role map of 'roles_file': roles, groups, permissions\n"
	    "  token decode TOKEN\n"
	    "      show a token's header and claims (NOT verified)\n"
	    "\n"
	    "  -c FILE   configuration (default %s)\n"
	    "  --version, --help\n"
	    "\n"
	    "Exit codes: 0 done, 1 failed, 2 usage error.\n",
	    DEFAULT_CONFIG);
}

static struct cfg *
load_config(void)
{
	struct cfg *c;
	char err[1024];

	if (cfg_load(config_path, &c, err, sizeof(err)) == -1) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		return NULL;
	}
	return c;
}

/* Reads one line (without its newline) into buf; no echo on a tty. */
static int
read_secret(const char *prompt, char *buf, size_t cap, size_t *len_r)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO), ret = -1, c;
	size_t n = 0;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == -1)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1)
			return -1;
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 >= cap)
			goto out;
		buf[n++] = (char)c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len_r = n;
	ret = c == EOF && n == 0 ? -1 : 0;
out:
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	return ret;
}

/* Replaces or appends user's line in the users file. */
static int
update_users(
    const struct cfg *c, const char *user, const char *hash, const char *groups)
{
	char err[1024], *old = NULL, *line, *save = NULL, *out = NULL;
	size_t len = 0, ulen = strlen(user), o = 0, cap;
	int found = 0, ret = -1;

	if ((old = file_read(c->file.path, USERS_MAX_SIZE, &len, err,
		 sizeof(err))) == NULL &&
	    errno != ENOENT) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		return -1;
	}
	cap = len + strlen(user) + strlen(hash) + 4096 +
	    (groups != NULL ? strlen(groups) : 0);
	if ((out = malloc(cap)) == NULL)
		goto out;
	for (line = old != NULL ? strtok_r(old, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, user, ulen) == 0 && line[ulen] == ':') {
			const char *g = strchr(line + ulen + 1, ':');

			o += (size_t)snprintf(out + o, cap - o, "%s:%s:%s\n",
			    user, hash,
			    groups != NULL ? groups : (g != NULL ? g + 1 : ""));
			found = 1;
			continue;
		}
		o += (size_t)snprintf(out + o, cap - o, "%s\n", line);
	}
	if (!found)
		o += (size_t)snprintf(out + o, cap - o, "%s:%s:%s\n", user,
		    hash, groups != NULL ? groups : "");
	if (o >= cap) {
		fprintf(stderr, "emailauthctl: internal size error\n");
		goto out;
	}
	if (file_write_atomic(c->file.path, out, o, 0600, err, sizeof(err)) ==
	    -1) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		goto out;
	}
	fprintf(stderr,
	    "%s %s in %s; reload the daemon (systemctl reload emailauthd)\n",
	    found ? "updated" : "added", user, c->file.path);
	ret = 0;
out:
	if (old != NULL)
		sec_wipe(old, len);
	free(old);
	if (out != NULL)
		sec_wipe(out, cap);
	free(out);
	return ret;
}

static int
cmd_passwd(int argc, char **argv)
{
	char pw[AUTHN_PASSWORD_MAX + 2], again[AUTHN_PASSWORD_MAX + 2];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *user = NULL, *groups = NULL;
	struct crypt_data *cd = NULL;
	struct cfg *c = NULL;
	size_t n = 0, n2 = 0;
	int i, update = 0, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--update") == 0)
			update = 1;
		else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
			groups = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && user == NULL)
			user = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (user == NULL) {
		usage(stderr);
		return 2;
	}
	if (!authn_username_ok(user, strlen(user)) || strchr(user, ':') ||
	    (groups != NULL && (strchr(groups, ':') || strchr(groups, '\n')))) {
		fprintf(stderr, "emailauthctl: invalid user or group name\n");
		return 2;
	}
	if (update && (c = load_config()) == NULL)
		return 1;
	if (update && c->file.path == NULL) {
		fprintf(
		    stderr, "emailauthctl: no file.path in %s\n", config_path);
		goto out;
	}
	if (read_secret("Password: ", pw, sizeof(pw), &n) == -1 ||
	    !authn_password_ok(pw, n)) {
		fprintf(stderr,
		    "emailauthctl: no valid password read "
		    "(1-1024 bytes)\n");
		goto out;
	}
	if (isatty(STDIN_FILENO) &&
	    (read_secret("Again: ", again, sizeof(again), &n2) == -1 ||
		n2 != n || !sec_equal(pw, again, n))) {
		fprintf(stderr, "emailauthctl: the passwords differ\n");
		goto out;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) ==
		NULL ||
	    crypt_r(pw, setting, cd) == NULL || cd->output[0] == '*') {
		fprintf(stderr, "emailauthctl: cannot hash the password\n");
		goto out;
	}
	if (update)
		ret = update_users(c, user, cd->output, groups) == 0 ? 0 : 1;
	else {
		printf("%s:%s:%s\n", user, cd->output,
		    groups != NULL ? groups : "");
		ret = 0;
	}
out:
	sec_wipe(pw, sizeof(pw));
	sec_wipe(again, sizeof(again));
	if (cd != NULL) {
		sec_wipe(cd, sizeof(*cd));
		free(cd);
	}
	cfg_free(c);
	return ret;
}

static int
cmd_keys(int argc, char **argv)
{
	static const char *const slots[] = {"previous", "current", "next"};
	struct tok_keyset *ks = NULL;
	struct cfg *c;
	char err[1024];
	int i, json = 0, force = 0, ret = 1;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else {
			usage(stderr);
			return 2;
		}
	}
	if ((c = load_config()) == NULL)
		return 1;
	if (strcmp(argv[1], "rotate") == 0) {
		if (tok_keys_rotate(c->state_dir, c->tokens.algorithm,
			c->tokens.access_ttl + c->tokens.leeway, force, err,
			sizeof(err)) == -1) {
			fprintf(stderr, "emailauthctl: %s\n", err);
			goto out;
		}
		fprintf(stderr,
		    "rotated; reload the daemon (systemctl reload "
		    "emailauthd) to sign with the new key\n");
	} else if (strcmp(argv[1], "list") != 0) {
		usage(stderr);
		ret = 2;
		goto out;
	}
	if (tok_keyset_load(c->state_dir, c->tokens.algorithm, 0, &ks, err,
		sizeof(err)) == -1) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		goto out;
	}
	if (json) {
		json_t *a = json_array();
		char *s;

		for (i = 0; i < 3; i++) {
			const struct tok_key *k = tok_keyset_get(ks, i);

			if (k != NULL)
				json_array_append_new(a,
				    json_pack("{s:s,s:s,s:s}", "slot", slots[i],
					"kid", tok_key_kid(k), "alg",
					tok_key_alg(k)));
		}
		s = json_dumps(a, JSON_COMPACT);
		printf("%s\n", s != NULL ? s : "[]");
		free(s);
		json_decref(a);
	} else {
		for (i = 0; i < 3; i++) {
			const struct tok_key *k = tok_keyset_get(ks, i);

			if (k != NULL)
				printf("%-9s %s %s\n", slots[i], tok_key_alg(k),
				    tok_key_kid(k));
		}
	}
	ret = 0;
out:
	tok_keyset_free(ks);
	cfg_free(c);
	return ret;
}

/* Decodes one base64url JSON segment; NULL when it is not one. */
static json_t *
segment(const char *s, size_t n)
{
	unsigned char buf[TOK_MAX_LEN];
	long len = b64url_decode(buf, sizeof(buf), s, n);

	return len < 0 ? NULL
		       : json_loadb((const char *)buf, (size_t)len, 0, NULL);
}

static int
cmd_token(int argc, char **argv)
{
	const char *t, *d1, *d2;
	json_t *h, *c;
	char *hs, *cs;

	if (argc != 3 || strcmp(argv[1], "decode") != 0) {
		usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout
								  : stderr);
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	t = argv[2];
	if (strlen(t) > TOK_MAX_LEN || (d1 = strchr(t, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    (h = segment(t, (size_t)(d1 - t))) == NULL) {
		fprintf(stderr, "emailauthctl: not a JWS compact token\n");
		return 1;
	}
	if ((c = segment(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL) {
		json_decref(h);
		fprintf(stderr, "emailauthctl: not a JWS compact token\n");
		return 1;
	}
	hs = json_dumps(h, JSON_INDENT(2) | JSON_SORT_KEYS);
	cs = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("NOT VERIFIED: this shows what the token says, not whether "
	       "it is genuine.\nheader: %s\nclaims: %s\n",
	    hs != NULL ? hs : "?", cs != NULL ? cs : "?");
	free(hs);
	free(cs);
	json_decref(h);
	json_decref(c);
	return 0;
}

static int
cmd_roles(int argc, char **argv)
{
	struct pol_map *m = NULL;
	struct cfg *c;
	char err[1024], *s;
	json_t *j;
	int json = argc > 2 && strcmp(argv[2], "--json") == 0;

	if (argc < 2 || strcmp(argv[1], "list") != 0) {
		usage(stderr);
		return 2;
	}
	if ((c = load_config()) == NULL)
		return 1;
	if (pol_load(c->roles_file, &m, err, sizeof(err)) == -1 ||
	    (j = pol_to_json(m)) == NULL) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		pol_free(m);
		cfg_free(c);
		return 1;
	}
	if (json) {
		s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", s != NULL ? s : "{}");
		free(s);
	} else {
		const char *name;
		json_t *r;

		json_object_foreach(j, name, r)
		{
			char *g = json_dumps(
			    json_object_get(r, "groups"), JSON_COMPACT);
			char *p = json_dumps(
			    json_object_get(r, "permissions"), JSON_COMPACT);

			printf("%s\n  groups: %s\n  permissions: %s\n", name,
			    g != NULL ? g : "[]", p != NULL ? p : "[]");
			free(g);
			free(p);
		}
	}
	json_decref(j);
	pol_free(m);
	cfg_free(c);
	return 0;
}

static int
cmd_check_config(void)
{
	struct cfg *c = load_config();

	if (c == NULL)
		return 1;
	printf("%s: OK\n", config_path);
	cfg_free(c);
	return 0;
}

int
main(int argc, char **argv)
{
	int i = 1;

	setenv("LDAPNOINIT", "1", 1);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			config_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("emailauthctl %s\n", EA_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "passwd") == 0)
		return cmd_passwd(argc - i, argv + i);
	if (strcmp(argv[i], "keys") == 0)
		return cmd_keys(argc - i, argv + i);
	if (strcmp(argv[i], "check-config") == 0)
		return cmd_check_config();
	if (strcmp(argv[i], "token") == 0)
		return cmd_token(argc - i, argv + i);
	if (strcmp(argv[i], "roles") == 0)
		return cmd_roles(argc - i, argv + i);
	usage(stderr);
	return 2;
}
