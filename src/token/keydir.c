/*
 * The signing keys on disk: STATE_DIR/keys/{previous,current,next}.pem,
 * PKCS#8 PEM, files 0600 in a 0700 directory, and keys/.lock, which
 * loading holds shared and rotation exclusive (flock).
 *
 * A key file is written under a random temporary name opened with
 * O_CREAT|O_EXCL|O_NOFOLLOW, synced, and then linked (a new key never
 * replaces a file that appeared meanwhile) or renamed into place; the
 * directory is synced after. Rotation keeps a current.pem at every
 * instant: previous.pem becomes a second link to current.pem, then
 * next.pem replaces current.pem, then the new key becomes next.pem. A
 * crash in between leaves at worst a missing next.pem, which the next
 * tok_keyset_load() with create makes afresh.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "token/internal.h"
#include "token/token.h"
#include "util/sec.h"
#include "util/str.h"

/* Largest key file read: an 8192-bit RSA key is about 6.5 KiB. */
#define KEY_FILE_MAX (32 * 1024)

/* The size of new RSA keys. */
#define RSA_NEW_BITS 3072

#define PATH_LEN 4096

static const char *const slot_file[] = {
    [TOK_PREVIOUS] = "previous.pem",
    [TOK_CURRENT] = "current.pem",
    [TOK_NEXT] = "next.pem",
};

/* Writes dir/name into dst (PATH_LEN bytes). Returns 0, or -1 if long. */
static int
join(char *dst, const char *dir, const char *name, char *err, size_t errlen)
{
	int n = snprintf(dst, PATH_LEN, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_LEN) {
		snprintf(err, errlen, "path too long: %s/%s", dir, name);
		return -1;
	}
	return 0;
}

/* 1 for "RS256", 0 for "ES256", -1 with a message for anything else. */
static int
alg_is_rsa(const char *alg, char *err, size_t errlen)
{
	if (alg != NULL && strcmp(alg, "ES256") == 0)
		return 0;
	if (alg != NULL && strcmp(alg, "RS256") == 0)
		return 1;
	snprintf(err, errlen,
	    "unsupported signing algorithm %s (ES256 or RS256)",
	    alg != NULL ? alg : "(none)");
	return -1;
}

/*
 * Checks the keys directory: a real directory (not a symbolic link) that
 * neither group nor others may use. When it is missing, creates it 0700
 * if create is set, else reports it in *exists_r. Returns 0 or -1.
 */
static int
dir_check(const char *dir, int create, int *exists_r, char *err, size_t errlen)
{
	struct stat st;
	int ret = -1;

	if (lstat(dir, &st) == -1) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: %s", dir,
			    strerror(errno));
			goto out;
		}
		if (!create) {
			*exists_r = 0;
			ret = 0;
			goto out;
		}
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir,
			    strerror(errno));
			goto out;
		}
		if (lstat(dir, &st) == -1) {
			snprintf(err, errlen, "cannot read %s: %s", dir,
			    strerror(errno));
			goto out;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen,
		    "%s is accessible by group or others (mode %04o);"
		    " run chmod 700 on it",
		    dir, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	*exists_r = 1;
	ret = 0;
out:
	return ret;
}

/* Opens dir/.lock and takes flock op on it. Returns the fd, or -1. */
static int
dir_lock(const char *dir, int op, char *err, size_t errlen)
{
	char path[PATH_LEN];
	int fd = -1, ret = -1;

	if (join(path, dir, ".lock", err, errlen) == -1)
		goto out;
	fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(
		    err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	while (flock(fd, op) == -1) {
		if (errno != EINTR) {
			snprintf(err, errlen, "cannot lock %s: %s", path,
			    strerror(errno));
			goto out;
		}
	}
	ret = fd;
	fd = -1;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

/* Makes the directory's entries durable. Returns 0 or -1. */
static int
dir_sync(const char *dir, char *err, size_t errlen)
{
	int fd, ret = -1;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1) {
		snprintf(
		    err, errlen, "cannot sync %s: %s", dir, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	return ret;
}

/* Never asks for a passphrase: encrypted key files are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Reads and parses the private key at path (mode-checked, no symbolic
 * link). Returns 1 and a new key in *r, 0 when there is no such file, or
 * -1 with a message in err.
 */
static int
key_read(const char *path, struct tok_key **r, char *err, size_t errlen)
{
	struct sec_buf *b = NULL;
	struct stat st;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char msg[256];
	int ret = -1;

	if (lstat(path, &st) == -1 && errno == ENOENT) {
		ret = 0;
		goto out;
	}
	if ((b = sec_read_file(path, KEY_FILE_MAX, err, errlen)) == NULL)
		goto out;
	if ((bio = BIO_new_mem_buf(b->p, (int)b->len)) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) ==
		NULL) {
		snprintf(err, errlen, "%s: not a private key in PEM", path);
		goto out;
	}
	if (tok_key_new(pkey, 1, NULL, r, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: %s", path, msg);
		goto out;
	}
	pkey = NULL;
	ret = 1;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	sec_buf_free(&b);
	return ret;
}

/* A new private key: EC P-256 or RSA of RSA_NEW_BITS. */
static EVP_PKEY *
key_generate(int rsa)
{
	return rsa ? EVP_RSA_gen(RSA_NEW_BITS) : EVP_EC_gen("P-256");
}

/*
 * Writes pkey as PKCS#8 PEM to a new temporary file in dir (0600,
 * synced), whose path goes to tmp (PATH_LEN bytes). Returns 0, or -1
 * with a message in err and nothing left behind.
 */
static int
key_write_tmp(
    const char *dir, EVP_PKEY *pkey, char *tmp, char *err, size_t errlen)
{
	unsigned char rnd[8];
	char name[32], *pem = NULL;
	BIO *bio = NULL;
	long len;
	ssize_t n;
	size_t off = 0;
	int fd = -1, ret = -1;

	if (sec_random(rnd, sizeof(rnd)) == -1) {
		snprintf(err, errlen, "no random bytes");
		goto out;
	}
	memcpy(name, ".tmp-", 5);
	str_hex(name + 5, rnd, sizeof(rnd));
	if (join(tmp, dir, name, err, errlen) == -1)
		goto out;
	/* A secure-heap BIO wipes the PEM when it is freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) !=
		1 ||
	    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
		snprintf(err, errlen, "cannot encode the new key");
		goto out;
	}
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(
		    err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) == -1)
		goto fail;
	while (off < (size_t)len) {
		n = write(fd, pem + off, (size_t)len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	n = close(fd);
	fd = -1;
	if (n == -1)
		goto fail;
	ret = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
	unlink(tmp);
out:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	BIO_free(bio);
	return ret;
}

/*
 * Generates a key and stores it as dir/name, which must not exist yet.
 * Returns 0 and the new key in *r, or -1 with a message in err.
 */
static int
key_create(const char *dir, const char *name, int rsa, struct tok_key **r,
    char *err, size_t errlen)
{
	char tmp[PATH_LEN], path[PATH_LEN], msg[256];
	struct tok_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	int written = 0, ret = -1;

	if (join(path, dir, name, err, errlen) == -1)
		goto out;
	if ((pkey = key_generate(rsa)) == NULL) {
		snprintf(err, errlen, "cannot generate a key");
		goto out;
	}
	if (tok_key_new(pkey, 1, NULL, &k, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "new key: %s", msg);
		goto out;
	}
	pkey = NULL;
	if (key_write_tmp(dir, k->pkey, tmp, err, errlen) == -1)
		goto out;
	written = 1;
	if (link(tmp, path) == -1) {
		snprintf(
		    err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	*r = k;
	k = NULL;
	ret = 0;
out:
	if (written)
		unlink(tmp);
	EVP_PKEY_free(pkey);
	tok_key_free(k);
	return ret;
}

int
tok_keyset_load(const char *state_dir, const char *alg, int create,
    struct tok_keyset **r, char *err, size_t errlen)
{
	struct tok_key *k[3] = {NULL, NULL, NULL};
	struct tok_keyset *ks = NULL;
	char dir[PATH_LEN], path[PATH_LEN];
	int rsa = 0, exists, lock = -1, made = 0, ret = -1, i, rc;

	/* No OpenSSL error outlives this call; err says what went wrong. */
	ERR_set_mark();
	if (state_dir == NULL || r == NULL) {
		snprintf(err, errlen, "no state directory");
		goto out;
	}
	if ((create || alg != NULL) &&
	    (rsa = alg_is_rsa(alg, err, errlen)) == -1)
		goto out;
	if (join(dir, state_dir, "keys", err, errlen) == -1 ||
	    dir_check(dir, create, &exists, err, errlen) == -1)
		goto out;
	if ((ks = tok_keyset_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!exists) {
		/* Nothing generated yet and nothing to generate. */
		*r = ks;
		ks = NULL;
		ret = 0;
		goto out;
	}
	/* Creating takes the lock exclusive: two first starts race. */
	if ((lock = dir_lock(dir, create ? LOCK_EX : LOCK_SH, err, errlen)) ==
	    -1)
		goto out;
	for (i = TOK_PREVIOUS; i <= TOK_NEXT; i++) {
		if (join(path, dir, slot_file[i], err, errlen) == -1 ||
		    (rc = key_read(path, &k[i], err, errlen)) == -1)
			goto out;
		if (rc == 1 || !create || i == TOK_PREVIOUS)
			continue;
		if (key_create(dir, slot_file[i], rsa, &k[i], err, errlen) ==
		    -1)
			goto out;
		made = 1;
	}
	if (made && dir_sync(dir, err, errlen) == -1)
		goto out;
	for (i = TOK_PREVIOUS; i <= TOK_NEXT; i++) {
		if (k[i] == NULL)
			continue;
		if (tok_keyset_add(ks, k[i]) == -1) {
			snprintf(err, errlen, "too many keys");
			goto out;
		}
		ks->slot[i] = k[i];
		k[i] = NULL;
	}
	*r = ks;
	ks = NULL;
	ret = 0;
out:
	for (i = TOK_PREVIOUS; i <= TOK_NEXT; i++)
		tok_key_free(k[i]);
	tok_keyset_free(ks);
	if (lock != -1)
		close(lock);
	ERR_pop_to_mark();
	return ret;
}

/*
 * Refuses when dir/previous.pem was retired (its mtime) less than min_age
 * seconds ago. Returns 0 or -1 with a message in err.
 */
static int
check_age(const char *dir, long long min_age, char *err, size_t errlen)
{
	char path[PATH_LEN];
	struct stat st;
	long long age;
	int ret = -1;

	if (join(path, dir, slot_file[TOK_PREVIOUS], err, errlen) == -1)
		goto out;
	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			ret = 0;
		else
			snprintf(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
		goto out;
	}
	age = (long long)time(NULL) - (long long)st.st_mtime;
	if (age < min_age) {
		snprintf(err, errlen,
		    "the previous key was retired %llds ago, less than %llds:"
		    " tokens it signed may still be valid; wait or force",
		    age < 0 ? 0 : age, min_age);
		goto out;
	}
	ret = 0;
out:
	return ret;
}

/* rename(2) with a message. */
static int
move(const char *from, const char *to, char *err, size_t errlen)
{
	if (rename(from, to) == -1) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", from, to,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
tok_keys_rotate(const char *state_dir, const char *alg, long long min_age,
    int force, char *err, size_t errlen)
{
	char dir[PATH_LEN], prev[PATH_LEN], cur[PATH_LEN], next[PATH_LEN];
	char tmp[PATH_LEN], ptmp[PATH_LEN];
	struct tok_key *k = NULL;
	EVP_PKEY *pkey = NULL;
	int rsa, exists, lock = -1, written = 0, linked = 0, ret = -1, i, rc;

	ERR_set_mark();
	if (state_dir == NULL) {
		snprintf(err, errlen, "no state directory");
		goto out;
	}
	if ((rsa = alg_is_rsa(alg, err, errlen)) == -1)
		goto out;
	if (join(dir, state_dir, "keys", err, errlen) == -1 ||
	    dir_check(dir, 0, &exists, err, errlen) == -1)
		goto out;
	if (!exists) {
		snprintf(err, errlen, "%s does not exist", dir);
		goto out;
	}
	if (join(prev, dir, slot_file[TOK_PREVIOUS], err, errlen) == -1 ||
	    join(cur, dir, slot_file[TOK_CURRENT], err, errlen) == -1 ||
	    join(next, dir, slot_file[TOK_NEXT], err, errlen) == -1 ||
	    join(ptmp, dir, ".previous.tmp", err, errlen) == -1)
		goto out;
	if ((lock = dir_lock(dir, LOCK_EX, err, errlen)) == -1)
		goto out;
	if (!force && check_age(dir, min_age, err, errlen) == -1)
		goto out;
	/* Only sound keys move: next.pem is about to sign. */
	for (i = TOK_CURRENT; i <= TOK_NEXT; i++) {
		rc = key_read(i == TOK_CURRENT ? cur : next, &k, err, errlen);
		if (rc == -1)
			goto out;
		if (rc == 0) {
			snprintf(err, errlen,
			    "%s is missing; start the daemon"
			    " once to create it",
			    i == TOK_CURRENT ? cur : next);
			goto out;
		}
		tok_key_free(k);
		k = NULL;
	}
	if ((pkey = key_generate(rsa)) == NULL) {
		snprintf(err, errlen, "cannot generate a key");
		goto out;
	}
	if (key_write_tmp(dir, pkey, tmp, err, errlen) == -1)
		goto out;
	written = 1;
	if (unlink(ptmp) == -1 && errno != ENOENT) {
		snprintf(
		    err, errlen, "cannot remove %s: %s", ptmp, strerror(errno));
		goto out;
	}
	if (link(cur, ptmp) == -1) {
		snprintf(
		    err, errlen, "cannot link %s: %s", cur, strerror(errno));
		goto out;
	}
	linked = 1;
	if (move(ptmp, prev, err, errlen) == -1)
		goto out;
	linked = 0;
	/* Its mtime now says when it was retired (see check_age()). */
	if (utimensat(AT_FDCWD, prev, NULL, AT_SYMLINK_NOFOLLOW) == -1) {
		snprintf(
		    err, errlen, "cannot touch %s: %s", prev, strerror(errno));
		goto out;
	}
	if (move(next, cur, err, errlen) == -1 ||
	    move(tmp, next, err, errlen) == -1)
		goto out;
	written = 0;
	if (dir_sync(dir, err, errlen) == -1)
		goto out;
	ret = 0;
out:
	if (written)
		unlink(tmp);
	if (linked)
		unlink(ptmp);
	EVP_PKEY_free(pkey);
	tok_key_free(k);
	if (lock != -1)
		close(lock);
	ERR_pop_to_mark();
	return ret;
}
