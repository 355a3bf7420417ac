/*
 * The session store wrappers: the checks every store shares, then the
 * store's op.
 *
 * Inputs are bounded here once for all stores: a refresh token that is not
 * exactly the 43 characters of canonical base64url for 256 bits is not
 * found without asking the store (logout still answers SESS_OK), nor is a
 * session id that is not 22 such characters; create refuses (SESS_ERROR)
 * a sub, backend or client that is empty where it may not be, too long,
 * not UTF-8 or holding control characters. Outputs go through locals and
 * are copied out only on SESS_OK, whatever the store does.
 */
#include <stddef.h>
#include <string.h>

#include "session/session.h"
#include "util/b64.h"
#include "util/sec.h"
#include "util/str.h"

#define TOKEN_LEN (SESS_TOKEN_SIZE - 1)
#define SID_LEN   (SESS_ID_SIZE - 1)

/* The size of a field of struct sess_info. */
#define FIELD_SIZE(m) sizeof(((struct sess_info *)NULL)->m)

/*
 * 1 if s is exactly len characters of canonical base64url encoding n
 * bytes, else 0. The decoded bytes are wiped.
 */
static int
b64_ok(const char *s, size_t len, size_t n)
{
	unsigned char raw[32];
	int ok = 0;

	if (s != NULL && n <= sizeof(raw) && strnlen(s, len + 1) == len &&
	    b64url_decode(raw, sizeof(raw), s, len) == (long)n)
		ok = 1;
	sec_wipe(raw, sizeof(raw));
	return ok;
}

static int
token_ok(const char *token)
{
	return b64_ok(token, TOKEN_LEN, 32);
}

static int
sid_ok(const char *sid)
{
	return b64_ok(sid, SID_LEN, 16);
}

/*
 * 1 if s is UTF-8 text without control characters, of min to cap - 1
 * bytes (cap being the size of the struct sess_info field), else 0.
 */
static int
text_ok(const char *s, size_t min, size_t cap)
{
	size_t n;

	return s != NULL && (n = strnlen(s, cap)) >= min && n < cap &&
	    str_utf8_valid(s, n) && !str_has_control(s, n);
}

void
sess_close(struct sess_store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

enum sess_result
sess_create(struct sess_store *s, const char *sub, const char *backend,
    const char *client, long long now, long long ttl, char sid_r[SESS_ID_SIZE],
    char token_r[SESS_TOKEN_SIZE])
{
	enum sess_result res = SESS_ERROR;
	char sid[SESS_ID_SIZE], token[SESS_TOKEN_SIZE];

	if (s == NULL || sid_r == NULL || token_r == NULL || ttl <= 0 ||
	    !text_ok(sub, 1, FIELD_SIZE(sub)) ||
	    !text_ok(backend, 1, FIELD_SIZE(backend)) ||
	    !text_ok(client, 0, FIELD_SIZE(client)))
		goto out;
	res = s->ops->create(s, sub, backend, client, now, ttl, sid, token);
	if (res == SESS_OK) {
		memcpy(sid_r, sid, sizeof(sid));
		memcpy(token_r, token, sizeof(token));
	}
out:
	sec_wipe(token, sizeof(token));
	return res;
}

enum sess_result
sess_rotate(struct sess_store *s, const char *token, long long now,
    long long idle, char token_r[SESS_TOKEN_SIZE], struct sess_info *info_r)
{
	enum sess_result res = SESS_ERROR;
	char token2[SESS_TOKEN_SIZE];
	struct sess_info info;

	if (s == NULL || token_r == NULL || info_r == NULL)
		goto out;
	res = SESS_NOT_FOUND;
	if (!token_ok(token))
		goto out;
	res = s->ops->rotate(s, token, now, idle, token2, &info);
	if (res == SESS_OK) {
		memcpy(token_r, token2, sizeof(token2));
		*info_r = info;
	}
out:
	sec_wipe(token2, sizeof(token2));
	return res;
}

enum sess_result
sess_peek(struct sess_store *s, const char *token, long long now,
    long long idle, struct sess_info *info_r)
{
	enum sess_result res = SESS_ERROR;
	struct sess_info info;

	if (s == NULL || info_r == NULL)
		goto out;
	res = SESS_NOT_FOUND;
	if (!token_ok(token))
		goto out;
	res = s->ops->peek(s, token, now, idle, &info);
	if (res == SESS_OK)
		*info_r = info;
out:
	return res;
}

enum sess_result
sess_revoke_token(struct sess_store *s, const char *token, long long now)
{
	enum sess_result res = SESS_ERROR;

	if (s == NULL)
		goto out;
	/* An unknown token is already logged out; so is a malformed one. */
	res = SESS_OK;
	if (token_ok(token))
		res = s->ops->revoke_token(s, token, now);
out:
	return res;
}

enum sess_result
sess_revoke(struct sess_store *s, const char *sid, long long now)
{
	enum sess_result res = SESS_ERROR;

	if (s == NULL)
		goto out;
	res = SESS_NOT_FOUND;
	if (sid_ok(sid))
		res = s->ops->revoke(s, sid, now);
out:
	return res;
}

enum sess_result
sess_revoke_user(
    struct sess_store *s, const char *sub, long long now, unsigned int *count_r)
{
	enum sess_result res = SESS_ERROR;
	unsigned int count = 0;

	if (s == NULL || sub == NULL || count_r == NULL)
		goto out;
	/* A sub no session can have has none to revoke. */
	res = SESS_OK;
	if (text_ok(sub, 1, FIELD_SIZE(sub)))
		res = s->ops->revoke_user(s, sub, now, &count);
	if (res == SESS_OK)
		*count_r = count;
out:
	return res;
}

enum sess_result
sess_get(struct sess_store *s, const char *sid, long long now, long long idle,
    struct sess_info *info_r)
{
	enum sess_result res = SESS_ERROR;
	struct sess_info info;

	if (s == NULL || info_r == NULL)
		goto out;
	res = SESS_NOT_FOUND;
	if (sid_ok(sid))
		res = s->ops->get(s, sid, now, idle, &info);
	if (res == SESS_OK)
		*info_r = info;
out:
	return res;
}

enum sess_result
sess_list_user(struct sess_store *s, const char *sub, long long now,
    long long idle, struct sess_info **v_r, size_t *n_r)
{
	enum sess_result res = SESS_ERROR;
	struct sess_info *v = NULL;
	size_t n = 0;

	if (s == NULL || sub == NULL || v_r == NULL || n_r == NULL)
		goto out;
	res = SESS_OK;
	if (text_ok(sub, 1, FIELD_SIZE(sub)))
		res = s->ops->list_user(s, sub, now, idle, &v, &n);
	if (res == SESS_OK) {
		*v_r = v;
		*n_r = n;
	}
out:
	return res;
}

int
sess_purge(struct sess_store *s, long long now, long long idle)
{
	return s == NULL ? -1 : s->ops->purge(s, now, idle);
}

int
sess_ping(struct sess_store *s)
{
	return s == NULL ? -1 : s->ops->ping(s);
}

enum sess_result
sess_revoked_since(struct sess_store *s, long long since, size_t max,
    struct sess_revocation **v_r, size_t *n_r)
{
	if (s == NULL || s->ops->revoked_since == NULL || v_r == NULL ||
	    n_r == NULL)
		return SESS_ERROR;
	return s->ops->revoked_since(s, since, max, v_r, n_r);
}
