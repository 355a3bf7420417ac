/*
 * The audit trail: a hash-chained JSON-lines file and/or syslog.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log/audit.h"
#include "log/syslog_sink.h"
#include "util/str.h"

/* ,"hash":"<64 hex>"} */
#define HASH_FIELD     ",\"hash\":\""
#define HASH_FIELD_LEN (sizeof(HASH_FIELD) - 1)
#define SUFFIX_LEN     (HASH_FIELD_LEN + AUDIT_HASH_HEX + 2)
/* ,"prev":"<64 hex>" */
#define PREV_FIELD     ",\"prev\":\""
#define PREV_FIELD_LEN (sizeof(PREV_FIELD) - 1)
#define PREV_LEN       (PREV_FIELD_LEN + AUDIT_HASH_HEX + 1)
#define SEQ_FIELD      ",\"seq\":"
#define SEQ_FIELD_LEN  (sizeof(SEQ_FIELD) - 1)
/* Room kept after the event's fields for seq, prev, hash and "}\n". */
#define CHAIN_ROOM (SEQ_FIELD_LEN + 20 + PREV_LEN + SUFFIX_LEN + 2)
#define VALUE_MAX  8192

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int sink_fd = -1;
static int sink_syslog;
static off_t known_size; /* the file's size after our last append */
static unsigned long long chain_seq;
static char chain_prev[AUDIT_HASH_HEX + 1];
static atomic_ullong write_errors;

static const char zero_hash[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static void
sha256_hex(const char *p, size_t n, char hex[AUDIT_HASH_HEX + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		memset(md, 0, sizeof(md));
	str_hex(hex, md, sizeof(md));
}

static int
is_hex(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
			(p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/*
 * Splits a chain line (without its newline) into seq, prev and hash and
 * checks the hash. Returns NULL when good, else the reason.
 */
static const char *
chain_parse(const char *line, size_t len, unsigned long long *seq_r,
    char prev_r[AUDIT_HASH_HEX + 1], char hash_r[AUDIT_HASH_HEX + 1])
{
	char calc[AUDIT_HASH_HEX + 1];
	const char *h, *p, *d;
	unsigned long long seq = 0;
	size_t body;

	if (len < 2 + SEQ_FIELD_LEN + 1 + PREV_LEN + SUFFIX_LEN ||
	    line[0] != '{' || memchr(line, '\0', len) != NULL)
		return "not an audit chain line";
	body = len - SUFFIX_LEN;
	h = line + body;
	if (memcmp(h, HASH_FIELD, HASH_FIELD_LEN) != 0 ||
	    !is_hex(h + HASH_FIELD_LEN, AUDIT_HASH_HEX) ||
	    memcmp(line + len - 2, "\"}", 2) != 0)
		return "not an audit chain line (no hash at the end)";
	p = line + body - PREV_LEN;
	if (memcmp(p, PREV_FIELD, PREV_FIELD_LEN) != 0 ||
	    !is_hex(p + PREV_FIELD_LEN, AUDIT_HASH_HEX) ||
	    p[PREV_LEN - 1] != '"')
		return "not an audit chain line (no prev before the hash)";
	for (d = p; d > line && d[-1] >= '0' && d[-1] <= '9'; d--)
		;
	if (d == p || p - d > 19 || d - line < (long)SEQ_FIELD_LEN ||
	    memcmp(d - SEQ_FIELD_LEN, SEQ_FIELD, SEQ_FIELD_LEN) != 0)
		return "not an audit chain line (no seq before prev)";
	for (; d < p; d++)
		seq = seq * 10 + (unsigned long long)(*d - '0');
	sha256_hex(line, body, calc);
	if (memcmp(calc, h + HASH_FIELD_LEN, AUDIT_HASH_HEX) != 0)
		return "the line does not match its hash (edited)";
	*seq_r = seq;
	memcpy(prev_r, p + PREV_FIELD_LEN, AUDIT_HASH_HEX);
	prev_r[AUDIT_HASH_HEX] = '\0';
	memcpy(hash_r, calc, sizeof(calc));
	return NULL;
}

/*
 * Reads the chain state from the last line of fd: seq and hash, or 0 and
 * zeros for an empty file. Sets known_size. 0 or -1 with a reason.
 */
static int
tail_read(int fd, char *err, size_t errlen)
{
	static char buf[LOG_LINE_MAX + 2];
	char prev[AUDIT_HASH_HEX + 1], hash[AUDIT_HASH_HEX + 1];
	unsigned long long seq;
	const char *why, *start;
	struct stat st;
	size_t want;
	ssize_t n;
	off_t off;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (st.st_size == 0) {
		/* A new file after a rotation (or copytruncate) continues
		 * the chain this process holds; a first file starts one. */
		if (chain_seq == 0)
			memcpy(chain_prev, zero_hash, sizeof(chain_prev));
		known_size = 0;
		return 0;
	}
	want =
	    st.st_size < (off_t)sizeof(buf) ? (size_t)st.st_size : sizeof(buf);
	off = st.st_size - (off_t)want;
	if ((n = pread(fd, buf, want, off)) != (ssize_t)want) {
		snprintf(err, errlen, "cannot read its last line");
		return -1;
	}
	if (buf[want - 1] != '\n') {
		snprintf(err, errlen,
		    "its last line is incomplete (cut by a crash or a full "
		    "disk?)");
		return -1;
	}
	start = buf + want - 1;
	while (start > buf && start[-1] != '\n')
		start--;
	if (start == buf && off > 0) {
		snprintf(err, errlen, "its last line is too long");
		return -1;
	}
	if ((why = chain_parse(start, (size_t)(buf + want - 1 - start), &seq,
		 prev, hash)) != NULL) {
		snprintf(err, errlen, "its last line: %s", why);
		return -1;
	}
	chain_seq = seq;
	memcpy(chain_prev, hash, sizeof(chain_prev));
	known_size = st.st_size;
	return 0;
}

int
trail_open(const char *path, int use_syslog, const char *ident, char *err,
    size_t errlen)
{
	char msg[256];
	struct stat st;
	int fd = -1;

	if (path != NULL) {
		fd = open(path,
		    O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
			O_NOCTTY,
		    0600);
		if (fd == -1) {
			snprintf(err, errlen, "audit file %s: %s", path,
			    errno == ELOOP ? "is a symbolic link"
					   : strerror(errno));
			goto fail;
		}
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen,
			    "audit file %s: not a regular file", path);
			goto fail;
		}
		if (st.st_uid != geteuid() && geteuid() != 0) {
			snprintf(err, errlen,
			    "audit file %s: owned by another user", path);
			goto fail;
		}
		if ((st.st_mode & 027) != 0) {
			snprintf(err, errlen,
			    "audit file %s: mode %04o lets others read or "
			    "write it; chmod 600 (or 640)",
			    path, (unsigned int)(st.st_mode & 07777));
			goto fail;
		}
	}
	pthread_mutex_lock(&mu);
	if (fd != -1) {
		/* Read the chain state under the lock another writer takes. */
		snprintf(msg, sizeof(msg), "cannot lock it");
		if (flock(fd, LOCK_EX) == -1 ||
		    tail_read(fd, msg, sizeof(msg)) == -1) {
			flock(fd, LOCK_UN);
			pthread_mutex_unlock(&mu);
			snprintf(err, errlen,
			    "audit file %s: %s; move it away to start a new "
			    "chain",
			    path, msg);
			goto fail;
		}
		flock(fd, LOCK_UN);
	}
	if (sink_fd != -1)
		close(sink_fd);
	sink_fd = fd;
	if (use_syslog && !sink_syslog)
		syslog_sink_open(ident != NULL ? ident : "emailauth");
	else if (!use_syslog && sink_syslog)
		syslog_sink_close();
	sink_syslog = use_syslog;
	pthread_mutex_unlock(&mu);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

void
trail_close(void)
{
	pthread_mutex_lock(&mu);
	if (sink_fd != -1)
		close(sink_fd);
	sink_fd = -1;
	if (sink_syslog)
		syslog_sink_close();
	sink_syslog = 0;
	pthread_mutex_unlock(&mu);
}

unsigned long long
trail_errors(void)
{
	return atomic_load(&write_errors);
}

/*
 * Appends seq, prev and hash to line[0..o) (line holds cap bytes, at
 * least CHAIN_ROOM more than o) and writes it. Under mu.
 */
static int
append(char *line, size_t o, size_t cap)
{
	char hash[AUDIT_HASH_HEX + 1], msg[256];
	struct stat st;
	size_t body;
	int ret = -1;

	if (sink_fd != -1) {
		if (flock(sink_fd, LOCK_EX) == -1 || fstat(sink_fd, &st) == -1)
			goto out;
		/* Another process appended: continue from its last line. */
		if (st.st_size != known_size &&
		    tail_read(sink_fd, msg, sizeof(msg)) == -1)
			goto out;
	}
	if (chain_prev[0] == '\0') /* syslog only: no file began it */
		memcpy(chain_prev, zero_hash, sizeof(chain_prev));
	if (o + CHAIN_ROOM > cap)
		goto out;
	o += (size_t)snprintf(line + o, cap - o,
	    SEQ_FIELD "%llu" PREV_FIELD "%s\"", chain_seq + 1, chain_prev);
	body = o;
	sha256_hex(line, body, hash);
	o += (size_t)snprintf(line + o, cap - o, HASH_FIELD "%s\"}\n", hash);
	if (sink_fd != -1) {
		if (log_write_all(sink_fd, line, o) == -1) {
			/* A cut line would stop every later append (and the
			 * next start): take it back. */
			if (ftruncate(sink_fd, st.st_size) == -1)
				known_size = -1; /* re-read the tail */
			goto out;
		}
		known_size = st.st_size + (off_t)o;
	}
	if (sink_syslog)
		syslog_sink_write(line, o - 1);
	chain_seq++;
	memcpy(chain_prev, hash, sizeof(chain_prev));
	ret = 0;
out:
	if (sink_fd != -1)
		flock(sink_fd, LOCK_UN);
	return ret;
}

void
trail_event(enum log_level lvl, const char *event, ...)
{
	static char line[LOG_LINE_MAX];
	va_list ap, ap2;
	int saved_errno = errno, failed = 0;
	size_t o;

	va_start(ap, event);
	va_copy(ap2, ap);
	log_vevent(lvl, event, ap);
	va_end(ap);
	pthread_mutex_lock(&mu);
	if (sink_fd != -1 || sink_syslog) {
		o = log_vformat(line, sizeof(line) - CHAIN_ROOM, VALUE_MAX, lvl,
		    event, ap2);
		if (append(line, o, sizeof(line)) == -1)
			failed = errno != 0 ? errno : EIO;
	}
	pthread_mutex_unlock(&mu);
	va_end(ap2);
	if (failed) {
		atomic_fetch_add(&write_errors, 1);
		log_event(LOG_ERROR, "audit_write_failed", LS("event", event),
		    LS("error", strerror(failed)), LOG_END);
	}
	errno = saved_errno;
}

/* Verifies one file, continuing the chain state in *seq, prev, *first. */
static int
verify_file(const char *path, FILE *report, unsigned long long *seq,
    char prev[AUDIT_HASH_HEX + 1], int *first, unsigned long long *lines)
{
	char lprev[AUDIT_HASH_HEX + 1], hash[AUDIT_HASH_HEX + 1];
	unsigned long long lseq, lineno = 0;
	const char *why = NULL;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int ret = -1;

	if ((f = fopen(path, "re")) == NULL) {
		fprintf(report, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&buf, &cap, f)) != -1) {
		json_t *j;

		lineno++;
		if (buf[n - 1] != '\n') {
			why = "the last line is incomplete";
			goto bad;
		}
		if (n > LOG_LINE_MAX + 1) {
			why = "line too long";
			goto bad;
		}
		buf[--n] = '\0';
		if ((why = chain_parse(buf, (size_t)n, &lseq, lprev, hash)) !=
		    NULL)
			goto bad;
		if ((j = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES,
			 NULL)) == NULL) {
			why = "not a JSON object";
			goto bad;
		}
		json_decref(j);
		if (*first) {
			if (lseq != 1 || strcmp(lprev, zero_hash) != 0)
				fprintf(report,
				    "%s:%llu: note: the chain starts at seq "
				    "%llu (earlier lines in a rotated file?)\n",
				    path, lineno, lseq);
			*first = 0;
		} else if (strcmp(lprev, prev) != 0) {
			why = "prev is not the hash of the line before (a line "
			      "deleted, inserted or edited)";
			goto bad;
		} else if (lseq != *seq + 1) {
			why = "seq does not follow the line before";
			goto bad;
		}
		*seq = lseq;
		memcpy(prev, hash, AUDIT_HASH_HEX + 1);
		(*lines)++;
	}
	if (ferror(f)) {
		fprintf(report, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	ret = 0;
	goto out;
bad:
	fprintf(report, "%s:%llu: %s\n", path, lineno, why);
out:
	free(buf);
	fclose(f);
	return ret;
}

int
trail_verify(const char *const *paths, size_t n, FILE *report,
    unsigned long long *lines_r)
{
	char prev[AUDIT_HASH_HEX + 1];
	unsigned long long seq = 0, lines = 0;
	int first = 1;
	size_t i;

	memcpy(prev, zero_hash, sizeof(prev));
	for (i = 0; i < n; i++) {
		if (verify_file(paths[i], report, &seq, prev, &first, &lines) ==
		    -1) {
			*lines_r = lines;
			return -1;
		}
	}
	*lines_r = lines;
	return 0;
}
