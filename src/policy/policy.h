/*
 * Directory groups -> roles -> permissions (roles_file).
 *
 *   roles = {
 *     admin   = { groups = [ "mail-admins" ];
 *                 permissions = [ "emails:*", "admin:*" ]; };
 *     analyst = { groups = [ "analysts",
 * "cn=auditors,ou=groups,dc=example,dc=com" ]; permissions = [ "emails:read",
 * "emails:label" ]; };
 *   };
 *
 * A group entry without "=" matches a user's group name case-insensitively
 * (ASCII). One with "=" is a DN and matches a user's group DN after both
 * are normalised (RFC 4514 parsing; attribute types and values compared
 * case-insensitively; spaces around "," "=" "+" dropped; escapes decoded).
 * A permission is "segment:segment..." of [a-z0-9_.-]; a trailing "*" as
 * the whole last segment ("emails:*") grants every permission under that
 * prefix ("emails:read", "emails:x:y"), never the prefix itself alone.
 */
#ifndef EA_POLICY_POLICY_H
#define EA_POLICY_POLICY_H

#include <stddef.h>

#include <jansson.h>

struct pol_map; /* immutable once loaded; safe to share between threads */

/*
 * Loads and validates a roles file: unknown keys, wrong types, empty
 * names, invalid permissions or DNs, more than 1000 roles or entries are
 * refused with "FILE:LINE: message" in err. Returns 0 and a new map (free
 * with pol_free()), or -1.
 */
int pol_load(const char *path, struct pol_map **r, char *err, size_t errlen);

/* The same from a string; name is used in messages. */
int pol_load_string(const char *text, const char *name, struct pol_map **r,
    char *err, size_t errlen);

/* NULL-safe. */
void pol_free(struct pol_map *m);

/*
 * Maps a user's groups (names and/or DNs, n of them) to roles. On return
 * *roles_r is a new JSON array of role names (sorted, unique) and
 * *perms_r a new JSON array of their permissions (sorted, unique).
 * Returns the number of roles (0: the user gets no token), or -1.
 */
int pol_resolve(const struct pol_map *m, const char *const *groups, size_t n,
    json_t **roles_r, json_t **perms_r);

/*
 * Explains a resolution: a new JSON array of {"role","group","entry"}
 * objects, one per (user group, mapping entry) match. NULL on error.
 */
json_t *pol_explain(
    const struct pol_map *m, const char *const *groups, size_t n);

/*
 * The map as JSON: {"role": {"groups": [...], "permissions": [...]}, ...}
 * with groups as written (DNs normalised), roles and permissions sorted.
 * A new reference the caller releases, or NULL when out of memory.
 */
json_t *pol_to_json(const struct pol_map *m);

/*
 * Writes a roles file for a map in the JSON form of pol_to_json() into a
 * new string (the caller frees), or NULL when a value cannot be written
 * (control characters) or out of memory. The text is checked by loading
 * it back with pol_load_string() before it is written anywhere.
 */
char *pol_json_to_text(const json_t *roles);

/* 1 if one of the granted permissions (n of them) covers required. */
int pol_permits(const char *const *granted, size_t n, const char *required);

/* 1 if scope (space-separated permissions) covers required. */
int pol_scope_permits(const char *scope, const char *required);

/* 1 if s is a valid permission (wildcard allowed when wild is 1). */
int pol_permission_valid(const char *s, int wild);

/*
 * Normalises a DN into dst (cap bytes): lowercase, no spaces around
 * separators, escapes decoded and re-escaped canonically. Returns 0 or -1
 * (not a DN, or too long).
 */
int pol_dn_normalize(const char *dn, char *dst, size_t cap);

#endif
