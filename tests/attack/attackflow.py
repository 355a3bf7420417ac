"""Helpers of the attack suite: requests on a bare socket whose every
response body is kept for the secrets scan, the refusal check (status,
problem+json shape, security headers, nothing leaked), and snapshots of
what an attack could change (signing keys, role map, accounts, sessions).
"""
import hashlib
import json
import os
import re
import sqlite3
import time

import rawhttp as rh
import secrets_scan

# What no error body may carry: internals of the daemon, the directory,
# the libraries, the file system. Compared case-insensitively.
INTERNAL = [
    "traceback", "errno", "stack", "/tmp", "/var", "/etc", "/work",
    "/usr", ".pem", ".db", ".c:", "sqlite", "openssl", "libjwt", "jansson",
    "ldap", "slapd", "dc=", "uid=", "cn=", "ou=", "invalid credentials",
    "can't contact", "bind", "filter", "segfault", "assert", "pam_",
    "microhttpd", "state_dir", "secret",
]
# A problem's title and detail are fixed prose: no quotes of JSON, no
# paths, no DNs, no control characters.
DETAIL_RE = re.compile(r"^[A-Za-z0-9 ,;:'()+_./-]{1,160}$")


def _text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def record(where, r):
    """Keeps a response body for the secrets scan. The tokens of a 200
    login or refresh answer are its purpose: they are registered as
    secrets and blanked in the recorded copy, the rest is scanned."""
    if r is None:
        return r
    body = r.body
    if r.status == 200 and b"refresh_token" in body:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for k in ("access_token", "refresh_token"):
                if isinstance(doc.get(k), str):
                    secrets_scan.register(doc[k])
                    doc[k] = "(token)"
            body = json.dumps(doc).encode()
    secrets_scan.record(where, body)
    return r


def send(port, method, path, headers=None, body=b"", source=None):
    """One request on its own connection (closed after the answer)."""
    h = {"Connection": "close"}
    h.update(headers or {})
    r = rh.send(port, method, path, h, body, source)
    return record("%s %s" % (method, path), r)


def raw(port, data, source=None, timeout=5):
    r = rh.request(port, data, source, timeout)
    return record("raw request", r)


def post_json(port, path, obj_or_bytes, headers=None, source=None):
    body = obj_or_bytes if isinstance(obj_or_bytes, (bytes, str)) \
        else json.dumps(obj_or_bytes)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return send(port, "POST", path, h, body, source)


def login(port, user, password, source=None, headers=None):
    return post_json(port, "/v1/login",
                     {"username": user, "password": password}, headers,
                     source)


def bearer(port, path, token, method="GET", headers=None, source=None):
    h = {"Authorization": "Bearer " + token}
    h.update(headers or {})
    return send(port, method, path, h, source=source)


# ----------------------------------------------------------------------
# Refusals


def assert_no_leak(body, inputs=()):
    """Nothing the attacker sent, no registered secret and nothing
    internal in a response body."""
    text = _text(body)
    low = text.lower()
    for s in inputs:
        s = _text(s)
        if s is None or len(s) < 3:
            continue
        assert s not in text, "body echoes the input %r: %r" % (s[:60],
                                                                 text)
        esc = json.dumps(s)[1:-1]
        assert esc not in text, "body echoes the input %r: %r" % (s[:60],
                                                                  text)
    for s in list(secrets_scan._secrets):
        assert s not in text, "body carries a secret (%d chars)" % len(s)
    for m in INTERNAL:
        assert m not in low, "body mentions %r: %r" % (m, text)


def assert_refused(r, status, inputs=(), www=None, detail=None):
    """status, the problem+json shape with the security headers and a
    request_id matching X-Request-Id, nothing leaked; returns the
    problem document."""
    p = rh.assert_problem(r, status)
    assert p["type"] == "about:blank", p
    for k in ("title", "detail"):
        assert isinstance(p[k], str) and DETAIL_RE.match(p[k]), (k, p)
    assert re.match(r"^[0-9a-f]{8,32}$", p["request_id"]), p
    if www is not None:
        assert r.headers.get("www-authenticate") == www, r
    if detail is not None:
        assert p["detail"] == detail, p
    assert_no_leak(r.body, inputs)
    return p


INVALID_TOKEN = 'Bearer error="invalid_token"'
REALM = 'Bearer realm="emailauth"'
BAD_CREDENTIALS = "the user name or password is not correct"


def same_refusal(a, b):
    """Two raw responses are the same refusal: status, headers (names and
    values, Date and X-Request-Id aside) and body (request_id aside)."""
    def norm(r):
        h = sorted((k, v) for k, v in r.header_list
                   if k not in ("date", "x-request-id"))
        d = r.json()
        d.pop("request_id", None)
        return r.status, h, d
    return norm(a) == norm(b)


# ----------------------------------------------------------------------
# Logs


def event_of(d, name, request_id, timeout=5):
    """The log event `name` with this request id (waits for it)."""
    deadline = time.time() + timeout
    while True:
        for ev in d.events():
            if ev.get("event") == name and ev.get("request_id") == request_id:
                return ev
        if time.time() > deadline:
            raise AssertionError("no %s event with request_id %s" %
                                 (name, request_id))
        time.sleep(0.02)


def no_success_since(d, mark):
    """No login or refresh succeeded in the daemon's log after mark."""
    ok = [e for e in d.events()[mark:]
          if e.get("event") in ("login", "refresh")
          and e.get("outcome") == "success"]
    assert not ok, ok


# ----------------------------------------------------------------------
# State an attack could change


def _tree_digest(path):
    out = {}
    if not os.path.isdir(path):
        return out
    for root, _, files in os.walk(path):
        for name in sorted(files):
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


def sessions(state_dir):
    """[(sid, sub, client, revoked_at)] of the session database, read
    only, and the number of refresh-token rows."""
    path = os.path.join(state_dir, "sessions.db")
    if not os.path.exists(path):
        return [], 0
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        rows = db.execute("SELECT sid, sub, client, revoked_at FROM "
                          "sessions ORDER BY sid").fetchall()
        n = db.execute("SELECT count(*) FROM tokens").fetchone()[0]
    finally:
        db.close()
    return rows, n


def session_of(state_dir, sid):
    for row in sessions(state_dir)[0]:
        if row[0] == sid:
            return row
    return None


def snapshot(d):
    """Signing keys, role map, accounts file and sessions of a daemon."""
    tmp = d.dir
    files = {}
    for name in ("roles.conf", "users", "ldap.secret", "emailauthd.conf"):
        p = os.path.join(tmp, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                files[name] = hashlib.sha256(f.read()).hexdigest()
    return {"keys": _tree_digest(os.path.join(tmp, "state", "keys")),
            "files": files,
            "sessions": sessions(os.path.join(tmp, "state"))}


def jwt_claims(token):
    import jwt
    return jwt.decode(token, options={"verify_signature": False})
