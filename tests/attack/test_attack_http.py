"""Attack class http: the request itself as the weapon, against the
running daemon (file accounts, the abuse limits off).

Every body below that the daemon could mistake for a sign-in carries
alice's right password (or a valid refresh token), so that a request
wrongly accepted would open a session; each test checks that none was
opened and that no sign-in succeeded, that the refusal is the exact
status in the problem+json shape with the security headers, and that
nothing the client sent comes back.
"""
import json
import os
import socket
import threading
import time

import pytest

import rawhttp as rh
import secrets_scan
from attackflow import (assert_no_leak, assert_refused, event_of,
                        jwt_claims, login, no_success_since, post_json, raw,
                        record, send, session_of, sessions)
from authflow import USERS, config, write_users

PW = USERS["alice"][0]
GOOD = json.dumps({"username": "alice", "password": PW}).encode()
ORIGIN = "https://mail.example.com"
PROXY = "127.0.0.3"        # the one trusted proxy
ATTACKER = "127.0.0.2"     # an untrusted peer


def http_config(tmp, listen_extra="", extra=""):
    write_users(os.path.join(tmp, "users"), USERS)
    text = config(tmp, extra=extra)
    return text.replace(
        "timeout = 5; };",
        'timeout = 5; trusted_proxies = [ "%s/32" ]; '
        'metrics_allow = [ "127.0.0.1/32" ]; %s };' % (PROXY, listen_extra))


@pytest.fixture(scope="module")
def d(module_daemons):
    return module_daemons(lambda tmp: http_config(
        tmp, extra='cors = { origins = [ "%s" ]; };\n' % ORIGIN))


def state(d):
    return sessions(os.path.join(d.dir, "state"))


class Unchanged:
    """with Unchanged(d): ... -- no session opened, none revoked, no
    sign-in or refresh succeeded in between."""

    def __init__(self, d):
        self.d = d

    def __enter__(self):
        self.before = state(self.d)
        self.mark = len(self.d.events())
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            time.sleep(0.05)
            assert state(self.d) == self.before, "sessions changed"
            no_success_since(self.d, self.mark)


def head(path="/v1/login", extra=b"", method=b"POST"):
    return (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + extra)


def rest_of(s, timeout=2):
    """What else the server sends on this connection until it closes."""
    out = b""
    s.settimeout(timeout)
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def still_serving(d):
    r = send(d.port, "GET", "/healthz")
    assert r is not None and r.status == 200, r


# ----------------------------------------------------------------------
# Oversized bodies


@pytest.mark.parametrize("path", ["/v1/login", "/v1/refresh",
                                  "/v1/logout"])
def test_oversized_body_announced_is_413_unread(d, path):
    """10 MB announced, not one byte sent: the answer comes anyway, and
    the connection is closed."""
    with Unchanged(d):
        s = rh.connect(d.port)
        s.sendall(head(path, b"Content-Length: 10000000\r\n\r\n"))
        r = record("announced", rh.read_response(s, timeout=3))
        assert_refused(r, 413, detail="the request body is too large")
        assert r.headers.get("connection") == "close"
        assert rh.closed_after(s)
        s.close()


@pytest.mark.parametrize("size", [8193, 9000, 65536])
def test_oversized_body_sent_is_413(d, size):
    pad = size - len(GOOD) - len(', "x": ""')
    body = GOOD[:-1] + (', "x": "%s"}' % ("a" * pad)).encode()
    assert len(body) == size
    with Unchanged(d):
        r = post_json(d.port, "/v1/login", body)
        assert_refused(r, 413, inputs=[PW])


def test_body_at_the_cap_is_read_control(d):
    """The control: 8192 bytes exactly are read (and refused on their
    merits, as an over-long password: the generic 401)."""
    doc = {"username": "alice", "password": ""}
    doc["password"] = "p" * (8192 - len(json.dumps(doc)))
    body = json.dumps(doc).encode()
    assert len(body) == 8192
    r = post_json(d.port, "/v1/login", body)
    assert_refused(r, 401)


def test_chunked_body_over_the_cap_is_413(d):
    chunk = b"a" * 4000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    for _ in range(3)) + b"0\r\n\r\n"
    with Unchanged(d):
        r = raw(d.port, head(extra=b"Transfer-Encoding: chunked\r\n\r\n") +
                body)
        assert_refused(r, 413)


def test_chunked_login_within_the_cap_is_read_control(d):
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(GOOD), GOOD)
    r = raw(d.port, head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + body)
    assert r.status == 200, r


def test_endless_chunked_body_is_cut_off(d):
    """A chunked body that never ends: cut off after a bounded amount,
    never buffered without limit."""
    with Unchanged(d):
        s = rh.connect(d.port)
        s.sendall(head(extra=b"Transfer-Encoding: chunked\r\n\r\n"))
        chunk = b"%x\r\n%s\r\n" % (65536, b"b" * 65536)
        cut = False
        try:
            for _ in range(128):  # 8 MiB
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        if not cut:
            cut = rh.closed_after(s, timeout=3)
        s.close()
        assert cut
    still_serving(d)


# ----------------------------------------------------------------------
# Oversized heads


BIG_HEADS = {
    "one-big-header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                       b"a" * 20000 + b"\r\n\r\n", 431),
    "many-headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                     b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100)
                              for i in range(200)) + b"\r\n", 431),
    "big-authorization": (b"GET /v1/userinfo HTTP/1.1\r\nHost: x\r\n"
                          b"Authorization: Bearer " + b"e" * 20000 +
                          b"\r\n\r\n", 431),
    "long-url": (b"GET /healthz?" + b"a" * 20000 +
                 b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
}


@pytest.mark.parametrize("which", list(BIG_HEADS))
def test_oversized_head_is_refused(d, which):
    """Refused with 431 (414 for the request line), the connection
    closed, nothing of the head sent back, the daemon still serving."""
    data, status = BIG_HEADS[which]
    s = rh.connect(d.port)
    s.sendall(data)
    r = record(which, rh.read_response(s, timeout=3))
    assert r is not None and r.status == status, r
    assert rh.closed_after(s)
    s.close()
    assert b"aaaa" not in r.body and b"eeee" not in r.body
    assert b"vvvv" not in r.body
    still_serving(d)


def _bad_cl(value):
    return (b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nContent-Length: " + value +
            b"\r\n\r\n{}", 413 if len(value) > 20 else 400)


# Refusals libmicrohttpd makes itself, before the daemon sees the request.
LIBRARY_REFUSALS = dict(BIG_HEADS, **{
    "cl-list": _bad_cl(b"2, 2"), "cl-negative": _bad_cl(b"-1"),
    "cl-plus": _bad_cl(b"+2"), "cl-hex": _bad_cl(b"0x2"),
    "cl-inner-space": _bad_cl(b"2 2"),
    "cl-past-64-bits": _bad_cl(b"99999999999999999999999")})


@pytest.mark.xfail(strict=True, reason=(
    "BUG: libmicrohttpd answers these itself (oversized head 431, long "
    "request line 414, unparsable Content-Length 400, Content-Length past "
    "64 bits 413): a text/html page, no problem+json, none of the "
    "security headers, no X-Request-Id (SPEC: every error is "
    "application/problem+json; the security headers on every response). "
    "For the Content-Length ones the status line and headers are even "
    "sent twice on the wire before the HTML body"))
@pytest.mark.parametrize("which", list(LIBRARY_REFUSALS))
def test_library_generated_refusals_are_problem_json(d, which):
    data, status = LIBRARY_REFUSALS[which]
    r = raw(d.port, data)
    assert_refused(r, status)


# ----------------------------------------------------------------------
# Smuggling shapes

SMUGGLED = (b"POST /v1/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            b"%s" % (len(GOOD), GOOD))


def split_first(data):
    """(the first response in data, the bytes after it)."""
    if not data:
        return None, b""
    head_, sep, body = data.partition(b"\r\n\r\n")
    r = rh.Response(data)
    n = int(r.headers.get("content-length", len(body)))
    return rh.Response(head_ + sep + body[:n]), body[n:]


def smuggle(d, framing, body):
    """Sends head + framing + body (which hides a second request, a
    sign-in with the right password); returns (first answer, every byte
    after it that the connection carried until closed or quiet for 1.5 s:
    a second answer there means the hidden request was run)."""
    s = rh.connect(d.port)
    try:
        s.sendall(head(extra=framing + b"\r\n") + body)
        data = rest_of(s, timeout=1.5)
    finally:
        s.close()
    r, rest = split_first(data)
    record("smuggle", r)
    secrets_scan.record("smuggle rest", rest)
    return r, rest


# Whitespace between a field name and its colon is refused with 400 and
# the connection closed (RFC 9112 5.1): it was a smuggling shape before.
CL_TE = [
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n",
                 id="cl-then-te"),
    pytest.param(b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n",
                 id="te-then-cl"),
    pytest.param(b"content-length: %d\r\ntransfer-encoding: chunked\r\n",
                 id="lowercase"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n",
                 id="te-tab"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n",
                 id="te-xchunked"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding: CHUNKED\r\n",
                 id="te-uppercase"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: identity\r\n", id="te-twice"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding : chunked\r\n",
                 id="te-space-before-colon"),
]


@pytest.mark.parametrize("shape", ["cl.te", "te.cl"])
@pytest.mark.parametrize("framing", CL_TE)
def test_content_length_with_transfer_encoding(d, framing, shape):
    """Both framings in one request, with a sign-in (right password)
    hidden after the last chunk. cl.te: Content-Length covers it all;
    te.cl: Content-Length 5 covers only the last chunk, so what follows
    reads as a second request. Refused with 400 and the connection
    closed: the hidden request is never answered, nor run."""
    body = b"0\r\n\r\n" + SMUGGLED
    cl = len(body) if shape == "cl.te" else 5
    with Unchanged(d):
        r, rest = smuggle(d, framing % cl, body)
        assert_refused(r, 400, inputs=[PW])
        assert r.headers.get("connection") == "close", r
        assert b"HTTP/1.1" not in rest, rest[:300]
        assert b"access_token" not in r.body + rest


def test_two_content_lengths(d):
    """Two Content-Length headers (same value or not): 400, closed."""
    for a, b in ((2, 40), (40, 2), (2, 2)):
        body = b"{}" + SMUGGLED
        with Unchanged(d):
            r, rest = smuggle(
                d, b"Content-Length: %d\r\nContent-Length: %d\r\n" % (a, b),
                body)
            assert_refused(r, 400, inputs=[PW])
            assert r.headers.get("connection") == "close"
            assert b"HTTP/1.1 200" not in rest


@pytest.mark.parametrize("value", [b"2, 2", b"2,40", b"-1", b"+2", b"0x2",
                                   b"2 2", b"99999999999999999999999"])
def test_content_length_not_a_plain_number(d, value):
    """A list, a sign, hex, a space or a number past 64 bits: refused
    (400, or 413 for the huge one), the connection closed, the hidden
    request never run."""
    with Unchanged(d):
        body = b"{}" + SMUGGLED
        r, rest = smuggle(d, b"Content-Length: " + value + b"\r\n", body)
        assert r is not None and r.status in (400, 413), r
        assert b"HTTP/1.1 200" not in rest and b"access_token" not in rest
        assert_no_leak(r.body + rest, [PW])


# ----------------------------------------------------------------------
# JSON

BAD_JSON = [
    ("truncated", b'{"username":"alice","password":"' + PW.encode()),
    ("duplicate-password",
     b'{"username":"alice","password":"wrong","password":"%s"}' %
     PW.encode()),
    ("duplicate-username",
     b'{"username":"nobody","username":"alice","password":"%s"}' %
     PW.encode()),
    ("unknown-key", GOOD[:-1] + b',"QzAdmin":true}'),
    ("unknown-key-case", GOOD[:-1] + b',"Username":"bob"}'),
    ("unknown-key-nested", GOOD[:-1] + b',"roles":["admin"]}'),
    ("username-number", b'{"username":1,"password":"%s"}' % PW.encode()),
    ("username-array", b'{"username":["alice"],"password":"%s"}' %
     PW.encode()),
    ("username-object", b'{"username":{"$ne":""},"password":"%s"}' %
     PW.encode()),
    ("username-true", b'{"username":true,"password":"%s"}' % PW.encode()),
    ("username-null", b'{"username":null,"password":"%s"}' % PW.encode()),
    ("password-array", b'{"username":"alice","password":["%s"]}' %
     PW.encode()),
    ("password-object", b'{"username":"alice","password":{"$gt":""}}'),
    ("password-number", b'{"username":"alice","password":12345678}'),
    ("password-true", b'{"username":"alice","password":true}'),
    ("missing-password", b'{"username":"alice"}'),
    ("invalid-utf8-user", b'{"username":"alic\xff","password":"%s"}' %
     PW.encode()),
    ("invalid-utf8-password", b'{"username":"alice","password":"%s\xc3("}' %
     PW.encode()),
    ("overlong-utf8", b'{"username":"alic\xc0\xe5","password":"%s"}' %
     PW.encode()),
    ("surrogate-escape", b'{"username":"alice\\ud800","password":"%s"}' %
     PW.encode()),
    ("bom", b"\xef\xbb\xbf" + GOOD),
    ("raw-nul", GOOD[:-2] + b'\x00"}'),
    ("nan", b'{"username":"alice","password":NaN}'),
    ("top-level-array", b'["alice","%s"]' % PW.encode()),
    ("top-level-string", b'"%s"' % PW.encode()),
    ("trailing-data", GOOD + b' {"username":"bob"}'),
    ("two-documents", GOOD + GOOD),
    ("deep-nesting", b"[" * 4000 + b"]" * 4000),
    ("single-quotes", b"{'username':'alice','password':'%s'}" % PW.encode()),
    ("comment", b'{"username":"alice",/*x*/"password":"%s"}' % PW.encode()),
    ("empty", b""),
    ("whitespace", b"   \r\n "),
]


@pytest.mark.parametrize("body", [c[1] for c in BAD_JSON],
                         ids=[c[0] for c in BAD_JSON])
def test_bad_json_is_400(d, body):
    with Unchanged(d):
        r = post_json(d.port, "/v1/login", body)
        p = assert_refused(r, 400, inputs=[PW, "QzAdmin", "$ne", "$gt"])
        assert p["detail"] != "the user name or password is not correct"


def test_duplicate_refresh_token_key_rotates_nothing(d):
    """{"refresh_token": <valid>, "refresh_token": "junk"}: 400, and the
    valid token was neither used nor rotated nor revoked."""
    r = login(d.port, "alice", PW)
    assert r.status == 200, r
    doc = r.json()
    for body in ('{"refresh_token":"%s","refresh_token":"junk"}',
                 '{"refresh_token":"junk","refresh_token":"%s"}',
                 '{"refresh_token":"%s","extra":1}',
                 '{"refresh_token":["%s"]}'):
        with Unchanged(d):
            r = post_json(d.port, "/v1/refresh",
                          (body % doc["refresh_token"]).encode())
            assert_refused(r, 400, inputs=[doc["refresh_token"]])
    # logout with the same shapes revokes nothing either.
    with Unchanged(d):
        r = post_json(d.port, "/v1/logout",
                      ('{"refresh_token":"%s","refresh_token":"x"}' %
                       doc["refresh_token"]).encode())
        assert_refused(r, 400, inputs=[doc["refresh_token"]])
    r = post_json(d.port, "/v1/refresh",
                  {"refresh_token": doc["refresh_token"]})
    assert r.status == 200, r


# ----------------------------------------------------------------------
# Content type


@pytest.mark.parametrize("ctype,body", [
    (None, GOOD),
    ("text/plain", GOOD),
    ("text/plain;charset=utf-8", GOOD),
    ("application/x-www-form-urlencoded",
     b"username=alice&password=" + PW.encode()),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n'
     b"alice\r\n--x--\r\n"),
    ("application/jsonx", GOOD),
    ("application/json-seq", GOOD),
    ("application/json; charset=latin1", GOOD),
    ("application/json; charset=utf-16", GOOD),
    ("json", GOOD),
    ("application/xml", b"<login><username>alice</username></login>"),
], ids=["none", "text-plain", "text-plain-utf8", "form", "multipart",
        "jsonx", "json-seq", "latin1", "utf16", "bare-json", "xml"])
def test_wrong_content_type_is_415(d, ctype, body):
    h = {"Content-Type": ctype} if ctype else {}
    with Unchanged(d):
        r = send(d.port, "POST", "/v1/login", h, body)
        assert_refused(r, 415, inputs=[PW])


# ----------------------------------------------------------------------
# CORS

FOREIGN = ["https://evil.example", "null", ORIGIN + ".evil.example",
           "https://evilmail.example.com", "http://mail.example.com",
           ORIGIN + ":8443", ORIGIN + "/", "https://MAIL.EXAMPLE.COM",
           ORIGIN + "\tx", "*"]


@pytest.mark.parametrize("origin", FOREIGN)
def test_cors_preflight_from_a_foreign_origin(d, origin):
    with Unchanged(d):
        r = send(d.port, "OPTIONS", "/v1/login", {
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert_refused(r, 403, inputs=[origin] if len(origin) > 4 else [],
                       detail="origin not allowed")
        for h in r.headers:
            assert not h.startswith("access-control-allow"), r
        assert "Origin" in r.headers.get("vary", ""), r


@pytest.mark.parametrize("origin", FOREIGN)
def test_cors_request_from_a_foreign_origin(d, origin):
    """The answer carries no Access-Control-Allow-* (the browser keeps it
    from the page), and a "simple" cross-site form post is refused."""
    r = send(d.port, "POST", "/v1/login",
             {"Origin": origin, "Content-Type": "application/json"},
             json.dumps({"username": "alice", "password": "wrong"}))
    assert_refused(r, 401)
    for h in r.headers:
        assert not h.startswith("access-control-allow"), r
    assert "Origin" in r.headers.get("vary", "")
    with Unchanged(d):
        r = send(d.port, "POST", "/v1/login",
                 {"Origin": origin, "Content-Type": "text/plain"}, GOOD)
        assert_refused(r, 415, inputs=[PW])
        for h in r.headers:
            assert not h.startswith("access-control-allow"), r


def test_cors_allowed_origin_control(d):
    r = send(d.port, "OPTIONS", "/v1/login", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204, r
    assert r.headers["access-control-allow-origin"] == ORIGIN  # never *
    assert "Origin" in r.headers.get("vary", "")
    r = send(d.port, "GET", "/healthz", {"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN


# ----------------------------------------------------------------------
# X-Forwarded-For from an untrusted peer


@pytest.mark.parametrize("header,value", [
    ("X-Forwarded-For", "198.51.100.7"),
    ("X-Forwarded-For", "127.0.0.1"),
    ("X-Forwarded-For", PROXY),
    ("X-Forwarded-For", "198.51.100.7, 127.0.0.1"),
    ("X-Forwarded-For", "::1"),
    ("X-Real-IP", "127.0.0.1"),
    ("Forwarded", "for=127.0.0.1"),
], ids=["other", "loopback", "the-proxy", "chain", "ipv6-loopback",
        "x-real-ip", "forwarded"])
def test_spoofed_forwarded_for_from_an_untrusted_peer(d, header, value):
    """From 127.0.0.2 (not a trusted proxy) the header is ignored: the
    daemon logs, counts and judges the peer's own address; /metrics,
    served to 127.0.0.1 only, stays refused."""
    r = login(d.port, "alice", "wrong", source=ATTACKER,
              headers={header: value})
    assert_refused(r, 401, inputs=[value] if len(value) > 4 else [])
    ev = event_of(d, "login", r.headers["x-request-id"])
    assert ev["client"] == ATTACKER, ev
    r = send(d.port, "GET", "/metrics", {header: value}, source=ATTACKER)
    assert_refused(r, 403, inputs=[value] if len(value) > 4 else [])
    assert "emailauth_" not in r.body.decode()
    req = event_of(d, "request", r.headers["x-request-id"])
    assert req["client"] == ATTACKER, req


def test_session_records_the_peer_not_the_spoofed_address(d):
    r = login(d.port, "alice", PW, source=ATTACKER,
              headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.status == 200, r
    sid = jwt_claims(r.json()["access_token"])["sid"]
    row = session_of(os.path.join(d.dir, "state"), sid)
    assert row[2] == ATTACKER, row


def test_forwarded_for_from_the_trusted_proxy_control(d):
    """The control: from the configured proxy the header is honoured
    (right-most hop), so the tests above are meaningful."""
    r = login(d.port, "alice", "wrong", source=PROXY,
              headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.7"})
    ev = event_of(d, "login", r.headers["x-request-id"])
    assert ev["client"] == "198.51.100.7", ev
    r = send(d.port, "GET", "/metrics", {"X-Forwarded-For": "127.0.0.1"},
             source=PROXY)
    assert r.status == 200, r


# ----------------------------------------------------------------------
# Slow clients


@pytest.fixture(scope="module")
def slowd(module_daemons):
    return module_daemons(lambda tmp: http_config(
        tmp, listen_extra="per_ip_connections = 8; max_connections = 64;"
        ).replace("timeout = 5;", "timeout = 3;", 1), name="slowd")


class Hogs:
    """Connections held open by slow clients: idle ones (kind 0), heads
    sent a line at a time (1), bodies sent a byte at a time (2); a thread
    keeps the last two trickling."""

    def __init__(self, port, sources, per_source, kinds=(0, 1, 2)):
        self.socks = []
        for src in sources:
            for i in range(per_source):
                kind = kinds[i % len(kinds)]
                try:
                    s = rh.connect(port, source=src, timeout=2)
                except OSError:
                    continue
                if kind == 1:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                elif kind == 2:
                    s.sendall(head(extra=b"Content-Length: 200\r\n\r\n") +
                              b'{"username":')
                self.socks.append((kind, s))
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._trickle, daemon=True)
        self._t.start()

    def _trickle(self):
        while not self._stop.wait(0.7):
            for kind, s in self.socks:
                try:
                    if kind == 1:
                        s.sendall(b"X-Slow: 1\r\n")
                    elif kind == 2:
                        s.sendall(b" ")
                except OSError:
                    pass

    def closed(self, wait=0.5):
        """How many of the connections the server has shut (after
        waiting `wait` seconds once, for all of them)."""
        time.sleep(wait)
        n = 0
        for _, s in self.socks:
            s.setblocking(False)
            try:
                while s.recv(65536):
                    pass
                n += 1              # orderly close (maybe after an answer)
            except BlockingIOError:
                pass                # still open
            except OSError:
                n += 1              # reset
            finally:
                s.setblocking(True)
        return n

    def stop(self):
        self._stop.set()
        self._t.join(3)
        for _, s in self.socks:
            s.close()


def served_promptly(d, limit=2.0):
    t0 = time.monotonic()
    r = login(d.port, "alice", PW)
    assert r is not None and r.status == 200, r
    for path in ("/healthz", "/.well-known/jwks.json"):
        r = send(d.port, "GET", path)
        assert r is not None and r.status == 200, r
    took = time.monotonic() - t0
    assert took < limit, took


def test_slow_clients_from_one_address_do_not_block_others(slowd):
    """30 slow connections from one address (over its 8): the others are
    shut at once, and sign-ins from elsewhere are served promptly while
    the slow ones trickle."""
    hogs = Hogs(slowd.port, [ATTACKER], 30)
    try:
        time.sleep(0.3)
        for _ in range(3):
            served_promptly(slowd)
        assert hogs.closed(wait=0.5) >= 30 - 8
    finally:
        hogs.stop()


def test_idle_connections_are_closed_by_the_timeout(slowd):
    socks = [rh.connect(slowd.port, source=ATTACKER) for _ in range(4)]
    t0 = time.monotonic()
    try:
        assert all(rh.closed_after(s, timeout=6) for s in socks)
        assert time.monotonic() - t0 < 5.5
    finally:
        for s in socks:
            s.close()
    served_promptly(slowd)


@pytest.mark.xfail(strict=True, reason=(
    "BUG: slow clients spread over several addresses, each within "
    "per_ip_connections, fill max_connections; while they keep trickling "
    "(one header line or body byte every 0.7 s resets the idle timeout) "
    "a legitimate request from another address gets no answer at all: "
    "the connection limit has no eviction and a request head or body "
    "has no overall deadline"))
def test_slow_clients_from_many_addresses_do_not_block_others(slowd):
    sources = ["127.0.1.%d" % i for i in range(2, 12)]   # 10 x 8 = 80
    hogs = Hogs(slowd.port, sources, 8, kinds=(1, 2))
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        r = rh.send(slowd.port, "GET", "/healthz", {"Connection": "close"})
        assert r is not None and r.status == 200, \
            "no answer in %.1f s" % (time.monotonic() - t0)
        served_promptly(slowd, limit=3.0)
    finally:
        hogs.stop()


# ----------------------------------------------------------------------
# The same smuggling shapes against the email API (examples/emailapi with
# the guard): the request hidden in the body is a DELETE with alice's
# (admin) token, so running it would delete an email.

# The guard refuses these heads (ea_guard_check, ea_guard_allow_public):
# 400 and the connection closed, so the hidden DELETE never runs.


@pytest.fixture(scope="module")
def eapi(module_daemons):
    from emailapiflow import USERS as EUSERS
    from emailapiflow import Stack, daemon_config

    def build(tmp):
        write_users(os.path.join(tmp, "users"), EUSERS)
        return daemon_config(tmp)

    dd = module_daemons(build, name="eapi-auth")
    st = Stack(dd.tmp, dd)
    st.api = st.emailapi()
    r = login(dd.port, "alice", EUSERS["alice"][0])
    assert r.status == 200, r
    st.token = r.json()["access_token"]
    try:
        yield st
    finally:
        st.stop()


EAPI_FRAMINGS = [
    ("cl-te", b"Content-Length: %(cl)d\r\nTransfer-Encoding: chunked\r\n"),
    ("te-cl", b"Transfer-Encoding: chunked\r\nContent-Length: %(cl)d\r\n"),
    ("te-space-before-colon",
     b"Content-Length: %(cl)d\r\nTransfer-Encoding : chunked\r\n"),
    ("two-content-lengths",
     b"Content-Length: %(cl)d\r\nContent-Length: %(cl2)d\r\n"),
]
EAPI_CASES = [(n, f, shape) for n, f in EAPI_FRAMINGS
              for shape in ("cl.te", "te.cl")]


@pytest.mark.parametrize("name,framing,shape", EAPI_CASES,
                         ids=["%s-%s" % (c[0], c[2]) for c in EAPI_CASES])
def test_email_api_smuggling(eapi, name, framing, shape):
    victim = 1 + EAPI_CASES.index((name, framing, shape))   # 1 .. 8
    auth = b"Authorization: Bearer " + eapi.token.encode() + b"\r\n"
    hidden = (b"DELETE /api/emails/%d HTTP/1.1\r\nHost: x\r\n" % victim +
              auth + b"\r\n")
    body = b"0\r\n\r\n" + hidden
    cl = len(body) if shape == "cl.te" else 5
    s = rh.connect(eapi.api.port)
    try:
        s.sendall(b"POST /api/emails/1/labels HTTP/1.1\r\nHost: x\r\n" +
                  auth + b"Content-Type: application/json\r\n" +
                  framing % {b"cl": cl, b"cl2": cl + 1} + b"\r\n" + body)
        data = rest_of(s, timeout=1.5)
    finally:
        s.close()
    r, rest = split_first(data)
    record("email api smuggle", r)
    survived = send(eapi.api.port, "GET", "/api/emails/%d" % victim,
                    {"Authorization": "Bearer " + eapi.token})
    assert survived.status == 200, "the hidden DELETE ran: %r" % survived
    assert b"HTTP/1.1" not in rest, rest[:200]
    assert_refused(r, 400)
    assert r.headers.get("connection") == "close", r


def test_email_api_oversized_head_is_refused(eapi):
    """The email API's head is bounded too (by libmicrohttpd's memory
    pool, 32 KiB): 64 KiB is refused and the connection closed."""
    s = rh.connect(eapi.api.port)
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " +
              b"a" * 65536 + b"\r\n\r\n")
    r = record("email api big head", rh.read_response(s, timeout=3))
    assert r is not None and r.status == 431, r
    assert rh.closed_after(s)
    s.close()
    assert b"aaaa" not in r.body
