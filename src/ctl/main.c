/*
 * emailauthctl: the administrator's command line. Offline commands work
 * on the files of the configuration; the others call the running daemon's
 * admin API with an admin's access token (src/ctl/api.c). The commands,
 * options and exit codes are in usage() and docs/operations.md.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <pwd.h>
#include <unistd.h>

#include <jansson.h>

#include "authn/authn.h"
#include "config/config.h"
#include "ctl/ctl.h"
#include "log/audit.h"
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
/* OWASP ASVS 2.1.1: passwords people choose have at least 12 characters. */
#define PASSWORD_MIN_CHARS 12

struct ctl_opts ctl = {DEFAULT_CONFIG, NULL, NULL, NULL, 0};

/* One entry per command: its name and its lines of help. */
static const struct {
	const char *name, *help;
} commands[] = {
    {"passwd",
	"  passwd [--update] [--groups G1,G2] USER\n"
	"      read a password (twice, without echo, on a terminal; one line\n"
	"      from stdin otherwise) and print the file-backend line\n"
	"      USER:HASH:GROUPS; with --update, write it into 'file.path'\n"
	"      (keeping the user's groups unless --groups); at least 12\n"
	"      characters                                              [offline]\n"},
    {"keys",
	"  keys list [--json]\n"
	"      the signing keys in state_dir: slot, kid, algorithm     [offline]\n"
	"  keys rotate [--force]\n"
	"      previous <- current <- next <- a new key; refused while the\n"
	"      previous key's tokens may still be valid, unless --force;\n"
	"      audited; then reload the daemon (systemctl reload emailauthd)\n"},
    {"roles",
	"  roles list [--json]\n"
	"      the role map: from the daemon when a token is given, else\n"
	"      from 'roles_file'\n"
	"  roles map GROUP ROLE [--json]\n"
	"  roles unmap GROUP ROLE [--json]\n"
	"      add GROUP to (remove it from) ROLE's groups through the admin\n"
	"      API (If-Match; retried when another admin was quicker)  [api]\n"
	"  roles explain USER [--json]\n"
	"      the user's groups as the backend sees them, the roles and\n"
	"      permissions they give, and which mapping gave each      [api]\n"},
    {"sessions",
	"  sessions list USER [--json]\n"
	"      the user's active sessions                              [api]\n"
	"  sessions revoke SID | sessions revoke --user USER [--json]\n"
	"      end one session, or all of a user's; refresh tokens stop\n"
	"      working at once                                         [api]\n"},
    {"token",
	"  token decode TOKEN [--json]\n"
	"      show a token's header and claims (NOT verified)         [offline]\n"},
    {"audit",
	"  audit verify [FILE...]\n"
	"      check the hash chain of audit files (oldest first; default\n"
	"      'audit.file'); names the first bad line                 [offline]\n"},
    {"check-config",
	"  check-config\n"
	"      validate the configuration file, like emailauthd -t     [offline]\n"},
};

static void
usage_of(FILE *f, const char *name)
{
	size_t i;

	fprintf(f, "usage: emailauthctl [OPTIONS] COMMAND [ARGS]\n\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (name == NULL || strcmp(name, commands[i].name) == 0)
			fputs(commands[i].help, f);
	fprintf(f,
	    "\n"
	    "  -c FILE             configuration (default %s)\n"
	    "  --url URL           the daemon [api] (default: EMAILAUTH_URL,\n"
	    "                      else from 'listen' in the configuration)\n"
	    "  --token-file FILE   an admin's access token [api] (default:\n"
	    "                      EMAILAUTH_TOKEN, else EMAILAUTH_TOKEN_FILE)\n"
	    "  --cacert FILE       CA for an https:// daemon\n"
	    "  --json              machine-readable output\n"
	    "  --version, --help\n"
	    "\n"
	    "Exit codes: 0 done, 1 failed (refused, not found, not valid),\n"
	    "2 usage error, 3 daemon unreachable or failing (5xx), 4 not\n"
	    "allowed (401/403), 5 conflict (409/412: the last admin mapping,\n"
	    "or a concurrent edit).\n",
	    DEFAULT_CONFIG);
}

static void
usage(FILE *f)
{
	usage_of(f, NULL);
}

/* "CMD --help" prints the command's help; returns 1 when it did. */
static int
wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage_of(stdout, argv[0]);
			return 1;
		}
	return 0;
}

struct cfg *
ctl_load_config(void)
{
	struct cfg *c;
	char err[1024];

	if (cfg_load(ctl.config_path, &c, err, sizeof(err)) == -1) {
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

/* Characters (UTF-8 code points) in p[0..n). */
static size_t
chars(const char *p, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)p[i] & 0xc0) != 0x80;
	return c;
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
	if (update && (c = ctl_load_config()) == NULL)
		return 1;
	if (update && c->file.path == NULL) {
		fprintf(stderr, "emailauthctl: no file.path in %s\n",
		    ctl.config_path);
		goto out;
	}
	if (read_secret("Password: ", pw, sizeof(pw), &n) == -1 ||
	    !authn_password_ok(pw, n)) {
		fprintf(stderr,
		    "emailauthctl: no valid password read "
		    "(1-1024 bytes)\n");
		goto out;
	}
	if (chars(pw, n) < PASSWORD_MIN_CHARS) {
		fprintf(stderr,
		    "emailauthctl: a password needs at least %d characters\n",
		    PASSWORD_MIN_CHARS);
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

/* The name of the user running this, for the audit trail. */
static const char *
actor(char *buf, size_t cap)
{
	struct passwd pw, *r = NULL;
	char tmp[4096];

	if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &r) == 0 && r != NULL)
		snprintf(buf, cap, "%s", r->pw_name);
	else
		snprintf(buf, cap, "uid %u", (unsigned int)getuid());
	return buf;
}

static int
cmd_keys(int argc, char **argv)
{
	static const char *const slots[] = {"previous", "current", "next"};
	struct tok_keyset *ks = NULL;
	struct cfg *c;
	char err[1024], old_kid[128] = "", who[128];
	int i, force = 0, rotate, ret = CTL_FAILED;

	if (argc < 2) {
		usage_of(stderr, "keys");
		return CTL_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else {
			usage_of(stderr, "keys");
			return CTL_USAGE;
		}
	}
	rotate = strcmp(argv[1], "rotate") == 0;
	if (!rotate && strcmp(argv[1], "list") != 0) {
		usage_of(stderr, "keys");
		return CTL_USAGE;
	}
	if ((c = ctl_load_config()) == NULL)
		return CTL_FAILED;
	if (rotate) {
		if (tok_keyset_load(c->state_dir, c->tokens.algorithm, 0, &ks,
			err, sizeof(err)) == 0 &&
		    tok_keyset_get(ks, TOK_CURRENT) != NULL)
			snprintf(old_kid, sizeof(old_kid), "%s",
			    tok_key_kid(tok_keyset_get(ks, TOK_CURRENT)));
		tok_keyset_free(ks);
		ks = NULL;
		/* Audit before the change, so a rotation is never silent. */
		if (trail_open(c->audit.file, c->audit.syslog, "emailauthctl",
			err, sizeof(err)) == -1) {
			fprintf(stderr, "emailauthctl: %s\n", err);
			goto out;
		}
		if (tok_keys_rotate(c->state_dir, c->tokens.algorithm,
			c->tokens.access_ttl + c->tokens.leeway, force, err,
			sizeof(err)) == -1) {
			fprintf(stderr, "emailauthctl: %s\n", err);
			trail_close();
			goto out;
		}
	}
	if (tok_keyset_load(c->state_dir, c->tokens.algorithm, 0, &ks, err,
		sizeof(err)) == -1) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		goto out;
	}
	if (rotate) {
		trail_event(LOG_INFO, "key_rotated",
		    LS("actor", actor(who, sizeof(who))),
		    LS("old_kid", old_kid[0] != '\0' ? old_kid : NULL),
		    LS("kid", tok_key_kid(tok_keyset_get(ks, TOK_CURRENT))),
		    LI("forced", force), LOG_END);
		trail_close();
		fprintf(stderr,
		    "rotated; reload the daemon (systemctl reload "
		    "emailauthd) to sign with the new key\n");
	}
	if (ctl.json) {
		json_t *a = json_array();

		for (i = 0; i < 3; i++) {
			const struct tok_key *k = tok_keyset_get(ks, i);

			if (k != NULL)
				json_array_append_new(a,
				    json_pack("{s:s,s:s,s:s}", "slot", slots[i],
					"kid", tok_key_kid(k), "alg",
					tok_key_alg(k)));
		}
		ctl_print_json(a);
		json_decref(a);
	} else {
		for (i = 0; i < 3; i++) {
			const struct tok_key *k = tok_keyset_get(ks, i);

			if (k != NULL)
				printf("%-9s %s %s\n", slots[i], tok_key_alg(k),
				    tok_key_kid(k));
		}
	}
	ret = CTL_OK;
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
	json_t *h = NULL, *c = NULL, *all;
	char *hs, *cs;

	if (argc != 3 || strcmp(argv[1], "decode") != 0) {
		usage_of(stderr, "token");
		return CTL_USAGE;
	}
	t = argv[2];
	if (strlen(t) > TOK_MAX_LEN || (d1 = strchr(t, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    (h = segment(t, (size_t)(d1 - t))) == NULL ||
	    (c = segment(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL) {
		json_decref(h);
		fprintf(stderr, "emailauthctl: not a JWS compact token\n");
		return CTL_FAILED;
	}
	if (ctl.json) {
		all = json_pack(
		    "{s:b, s:o, s:o}", "verified", 0, "header", h, "claims", c);
		ctl_print_json(all);
		json_decref(all);
		return CTL_OK;
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
	return CTL_OK;
}

/* roles list from roles_file. */
static int
roles_list_offline(void)
{
	struct pol_map *m = NULL;
	struct cfg *c;
	char err[1024];
	json_t *j;

	if ((c = ctl_load_config()) == NULL)
		return CTL_FAILED;
	if (pol_load(c->roles_file, &m, err, sizeof(err)) == -1 ||
	    (j = pol_to_json(m)) == NULL) {
		fprintf(stderr, "emailauthctl: %s\n", err);
		pol_free(m);
		cfg_free(c);
		return CTL_FAILED;
	}
	ctl_print_json(j);
	json_decref(j);
	pol_free(m);
	cfg_free(c);
	return CTL_OK;
}

static int
cmd_roles(int argc, char **argv)
{
	int rc;

	if (argc == 2 && strcmp(argv[1], "list") == 0 && !ctl_have_token())
		return roles_list_offline();
	if (argc < 2 || (rc = cmd_roles_api(argc, argv)) == CTL_USAGE) {
		usage_of(stderr, "roles");
		return CTL_USAGE;
	}
	return rc;
}

static int
cmd_audit(int argc, char **argv)
{
	unsigned long long lines = 0;
	const char *one[1];
	struct cfg *c = NULL;
	int rc;

	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		usage_of(stderr, "audit");
		return CTL_USAGE;
	}
	if (argc == 2) {
		if ((c = ctl_load_config()) == NULL)
			return CTL_FAILED;
		if (c->audit.file == NULL) {
			fprintf(stderr,
			    "emailauthctl: no audit.file in %s; name the "
			    "files\n",
			    ctl.config_path);
			cfg_free(c);
			return CTL_USAGE;
		}
		one[0] = c->audit.file;
		rc = trail_verify(one, 1, stderr, &lines);
	} else
		rc = trail_verify((const char *const *)argv + 2,
		    (size_t)argc - 2, stderr, &lines);
	cfg_free(c);
	if (ctl.json)
		printf("{\"ok\":%s,\"lines\":%llu}\n",
		    rc == 0 ? "true" : "false", lines);
	else if (rc == 0)
		printf("OK: %llu lines, the chain holds\n", lines);
	return rc == 0 ? CTL_OK : CTL_FAILED;
}

static int
cmd_check_config(void)
{
	struct cfg *c = ctl_load_config();

	if (c == NULL)
		return CTL_FAILED;
	printf("%s: OK\n", ctl.config_path);
	cfg_free(c);
	return CTL_OK;
}

int
main(int argc, char **argv)
{
	int i = 1, j, n;

	setenv("LDAPNOINIT", "1", 1);
	/* --json may come anywhere: take it out of argv. */
	for (j = n = 1; j < argc; j++) {
		if (strcmp(argv[j], "--json") == 0)
			ctl.json = 1;
		else
			argv[n++] = argv[j];
	}
	argc = n;
	argv[argc] = NULL;
	while (i < argc && argv[i][0] == '-') {
		if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
			ctl.config_path = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--url") == 0)
			ctl.url = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--token-file") == 0)
			ctl.token_file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--cacert") == 0)
			ctl.cacert = argv[++i];
		else if (strcmp(argv[i], "--version") == 0) {
			printf("emailauthctl %s\n", EA_VERSION);
			return CTL_OK;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return CTL_OK;
		} else {
			usage(stderr);
			return CTL_USAGE;
		}
		i++;
	}
	if (i >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	argc -= i;
	argv += i;
	if (wants_help(argc, argv))
		return CTL_OK;
	if (strcmp(argv[0], "passwd") == 0)
		return cmd_passwd(argc, argv);
	if (strcmp(argv[0], "keys") == 0)
		return cmd_keys(argc, argv);
	if (strcmp(argv[0], "check-config") == 0 && argc == 1)
		return cmd_check_config();
	if (strcmp(argv[0], "token") == 0)
		return cmd_token(argc, argv);
	if (strcmp(argv[0], "roles") == 0)
		return cmd_roles(argc, argv);
	if (strcmp(argv[0], "sessions") == 0) {
		int rc = cmd_sessions(argc, argv);

		if (rc == CTL_USAGE)
			usage_of(stderr, "sessions");
		return rc;
	}
	if (strcmp(argv[0], "audit") == 0)
		return cmd_audit(argc, argv);
	usage(stderr);
	return CTL_USAGE;
}
