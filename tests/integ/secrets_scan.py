"""The secrets of the test suite, and the scan for them in every log.

Tests call register() with every password, token and key they use, and
record() with every response body they receive; pytest_sessionfinish in
conftest.py scans the daemon logs and the recorded bodies, and a hit fails
the run.
"""
import os
import re

_secrets = set()
_bodies = []


def register(secret):
    """Marks a string as secret: it must appear in no log and no body."""
    if isinstance(secret, bytes):
        secret = secret.decode("utf-8", "replace")
    if secret and len(secret) >= 6:
        _secrets.add(secret)
    return secret


def record(where, body):
    """Keeps a response body for the scan at the end."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    _bodies.append((where, body))


def _log_texts(dirs):
    """(path, text) of every file under dirs."""
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for root, _, files in os.walk(d):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        yield path, f.read().decode("utf-8", "replace")
                except OSError:
                    continue


def scan(dirs):
    hits = []
    for path, text in _log_texts(dirs):
        for s in _secrets:
            if s in text:
                hits.append("%s contains a secret (%d chars)" %
                            (path, len(s)))
    for where, body in _bodies:
        for s in _secrets:
            if s in body:
                hits.append("response body of %s contains a secret" % where)
    return hits


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")


# valgrind memcheck (make valgrind): its own log per process. A process
# killed before its summary still shows its errors by these marks.
VALGRIND_MARKS = ("Invalid read", "Invalid write", "Invalid free",
                  "uninitialised", "Mismatched free", "Source and destination",
                  "are definitely lost", "Syscall param")
_VALGRIND_SUMMARY = re.compile(r"ERROR SUMMARY: ([1-9][0-9]*) errors")


def sanitizer_reports(dirs):
    """Files in dirs where a sanitizer (make asan) or valgrind (make
    valgrind, files valgrind-<pid>.log) reported something."""
    out = []
    for path, text in _log_texts(dirs):
        out += ["%s: %s" % (path, m) for m in SANITIZER_MARKS if m in text]
        if os.path.basename(path).startswith("valgrind-"):
            out += ["%s: %s" % (path, m) for m in VALGRIND_MARKS
                    if m in text]
            out += ["%s: valgrind: %s errors" % (path, n)
                    for n in _VALGRIND_SUMMARY.findall(text)]
    return out


def count():
    return len(_secrets)
