"""The email API (examples/emailapi) with the guard library, against tokens
from a real emailauthd: each route with and without its permission, every
kind of bad token, key rotation, the daemon down, rate limits, body
validation, CORS, 404/405, and a clean stop."""
import json
import os
import signal
import socket
import threading
import time

import jwt
import pytest

import rawhttp as rh
import secrets_scan
from emailapiflow import (EmailApi, claims, fresh_ec_pem, hs256_with,
                          public_jwk_of, public_pem_of, sign, stack,
                          unsigned)
from conftest import free_port

assert stack  # the fixture, imported for pytest

LIST_FIELDS = {"id", "sender", "subject", "received", "labels"}
REALM = 'Bearer realm="emailauth"'
INVALID = 'Bearer error="invalid_token"'

ROUTES = [
    ("GET", "/api/emails", "emails:read"),
    ("GET", "/api/emails/1", "emails:read"),
    ("POST", "/api/emails/1/labels", "emails:label"),
    ("DELETE", "/api/emails/1", "emails:delete"),
]
ROUTE_IDS = ["list", "get", "label", "delete"]


def call(api, method, path, token=None, **kw):
    if method == "POST" and "body" not in kw and "json_body" not in kw:
        kw["json_body"] = {"label": "triage"}
    return api.request(method, path, token, **kw)


def ok_json(r, status=200):
    assert r.status == status, r
    assert r.headers["content-type"] == "application/json", r
    rh.assert_security_headers(r)
    return r.json()


def refused(r, status, www=None):
    p = rh.assert_problem(r, status)
    if www is not None:
        assert r.headers.get("www-authenticate") == www, r
    return p


def own_token(stack, **over):
    """A token signed with the daemon's current key by the test itself."""
    kid = stack.current_kid()
    return sign(claims(**over), stack.private_key_pem(), kid)


# Routes and permissions ------------------------------------------------------

def test_health_is_public(stack):
    r = stack.api.request("GET", "/api/health")
    assert ok_json(r) == {"status": "ok"}
    r = stack.api.request("HEAD", "/api/health")
    assert r.status == 200 and r.body == b""
    rh.assert_security_headers(r)


def test_analyst_reads_and_labels_but_may_not_delete(stack):
    bob = stack.login("bob")
    doc = ok_json(stack.api.request("GET", "/api/emails", bob))
    assert doc["total"] == 8 and doc["limit"] == 20 and doc["offset"] == 0
    assert len(doc["emails"]) == 8
    for m in doc["emails"]:
        assert set(m) == LIST_FIELDS
        assert isinstance(m["id"], int) and isinstance(m["labels"], list)
    received = [m["received"] for m in doc["emails"]]
    assert received == sorted(received, reverse=True)

    one = ok_json(stack.api.request("GET", "/api/emails/3", bob))
    assert set(one) == LIST_FIELDS | {"body"} and one["id"] == 3
    assert one["body"]

    r = stack.api.request("POST", "/api/emails/3/labels", bob,
                          json_body={"label": "follow-up"})
    assert ok_json(r) == {"id": 3, "labels": one["labels"] + ["follow-up"]}
    # The same label again: no duplicate.
    r = stack.api.request("POST", "/api/emails/3/labels", bob,
                          json_body={"label": "follow-up"})
    assert ok_json(r)["labels"] == one["labels"] + ["follow-up"]

    r = stack.api.request("DELETE", "/api/emails/3", bob)
    refused(r, 403, 'Bearer error="insufficient_scope", '
            'scope="emails:delete"')
    assert stack.api.request("GET", "/api/emails/3", bob).status == 200


def test_admin_deletes(stack):
    alice = stack.login("alice")
    r = stack.api.request("DELETE", "/api/emails/2", alice)
    assert r.status == 204 and r.body == b"", r
    rh.assert_security_headers(r)
    refused(stack.api.request("GET", "/api/emails/2", alice), 404)
    refused(stack.api.request("DELETE", "/api/emails/2", alice), 404)
    refused(stack.api.request("POST", "/api/emails/2/labels", alice,
                              json_body={"label": "x"}), 404)
    doc = ok_json(stack.api.request("GET", "/api/emails", alice))
    assert doc["total"] == 7 and 2 not in [m["id"] for m in doc["emails"]]


@pytest.mark.parametrize("method,path,perm", ROUTES, ids=ROUTE_IDS)
def test_a_role_without_email_permissions_is_refused(stack, method, path,
                                                     perm):
    hank = stack.login("hank")  # helpdesk: admin:sessions only
    r = call(stack.api, method, path, hank)
    refused(r, 403, 'Bearer error="insufficient_scope", scope="%s"' % perm)
    # A token with no scope at all, and one naming a neighbour.
    for scope in ("", "emails:reader emails:readx email:* emails"):
        r = call(stack.api, method, path, own_token(stack, sub="nobody",
                                                    scope=scope))
        refused(r, 403)


@pytest.mark.parametrize("method,path,perm", ROUTES, ids=ROUTE_IDS)
def test_each_route_needs_exactly_its_permission(stack, method, path, perm):
    r = call(stack.api, method, path, own_token(stack, scope=perm))
    assert r.status in (200, 204), r
    others = " ".join(p for _, _, p in ROUTES if p != perm)
    refused(call(stack.api, method, path, own_token(stack, scope=others)),
            403)


@pytest.mark.parametrize("method,path,perm", ROUTES, ids=ROUTE_IDS)
def test_no_token_is_401_with_a_challenge(stack, method, path, perm):
    p = refused(call(stack.api, method, path), 401, REALM)
    assert p["title"] == "Unauthorized"
    for auth in ("Bearer", "Bearer ", "Bearer a b"):
        r = call(stack.api, method, path, headers={"Authorization": auth})
        refused(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer"), r


def test_another_scheme_is_no_token(stack):
    """SPEC: 401 carries WWW-Authenticate: Bearer, with error="invalid_token"
    when a token was sent. Basic credentials are not a token (RFC 6750
    3.1: no error code for an unsupported authentication method)."""
    r = stack.api.request("GET", "/api/emails",
                          headers={"Authorization": "Basic YWxpY2U6eA=="})
    refused(r, 401, REALM)


# Bad tokens ------------------------------------------------------------------

@pytest.mark.parametrize("token", [
    "garbage", "a.b.c", "a.b", "..", "a.b.c.d", "eyJhbGciOiJFUzI1NiJ9..",
    "x" * 9000,
], ids=["word", "abc", "two-parts", "dots", "four-parts", "no-payload",
        "huge"])
def test_malformed_tokens(stack, token):
    refused(stack.api.request("GET", "/api/emails", token), 401, INVALID)


def test_own_signature_control(stack):
    """The tests' own signing works: the refusals below are meaningful."""
    r = stack.api.request("GET", "/api/emails", own_token(stack))
    assert r.status == 200, r


def test_expired_and_not_yet_valid(stack):
    now = int(time.time())
    expired = own_token(stack, now=now - 400, ttl=300)  # 100 s past exp
    refused(stack.api.request("GET", "/api/emails", expired), 401, INVALID)
    # Within the 30 s leeway: still good.
    recent = own_token(stack, now=now - 310, ttl=300)
    assert stack.api.request("GET", "/api/emails", recent).status == 200
    future = own_token(stack, now=now + 120)
    refused(stack.api.request("GET", "/api/emails", future), 401, INVALID)
    # exp of the wrong JSON type.
    as_string = own_token(stack, exp=str(now + 300))
    refused(stack.api.request("GET", "/api/emails", as_string), 401,
            INVALID)
    no_exp = own_token(stack, exp=None)
    refused(stack.api.request("GET", "/api/emails", no_exp), 401, INVALID)


@pytest.mark.parametrize("over", [
    {"aud": "another-api"},
    {"aud": ["another-api", "third-api"]},
    {"iss": "https://evil.test"},
    {"iss": "https://auth.test/"},
    {"aud": None},
    {"sub": ""},
], ids=["audience", "audience-list", "issuer", "issuer-slash", "no-aud",
        "empty-sub"])
def test_wrong_claims(stack, over):
    refused(stack.api.request("GET", "/api/emails", own_token(stack, **over)),
            401, INVALID)


def test_keys_not_in_the_jwks(stack):
    kid = stack.current_kid()
    # A fresh key with a made-up kid: unknown kid (a JWKS fetch, in vain).
    t = sign(claims(), fresh_ec_pem(), "made-up-kid-0001")
    refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    # A path-like kid is only ever a lookup key.
    t = sign(claims(), fresh_ec_pem(), "../../state/keys/current.pem")
    refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    # The daemon's kid, another key: a bad signature.
    t = sign(claims(), fresh_ec_pem(), kid)
    refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    # Tampered payload, signature stripped.
    good = own_token(stack, scope="emails:read")
    h, p, s = good.split(".")
    body = json.loads(jwt.utils.base64url_decode(p))
    body["scope"] = "emails:*"
    p2 = jwt.utils.base64url_encode(json.dumps(body).encode()).decode()
    tampered = secrets_scan.register(".".join([h, p2, s]))
    refused(stack.api.request("DELETE", "/api/emails/1", tampered), 401,
            INVALID)
    refused(stack.api.request("GET", "/api/emails", h + "." + p + "."),
            401, INVALID)


def test_alg_none_and_confusion(stack):
    kid = stack.current_kid()
    c = claims()
    for alg in ("none", "NoNe", "NONE"):
        t = unsigned({"alg": alg, "kid": kid, "typ": "JWT"}, c)
        refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
        t = unsigned({"alg": alg, "typ": "JWT"}, c)
        refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    jwk = {k["kid"]: k for k in stack.jwks()["keys"]}[kid]
    pub = public_pem_of(jwk)
    for secret in (pub, pub.strip(), json.dumps(jwk).encode()):
        t = hs256_with(secret, {"alg": "HS256", "kid": kid, "typ": "JWT"}, c)
        refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    # jku/jwk/x5u are never followed: a self-made key offered in jwk.
    pem = fresh_ec_pem()
    t = jwt.encode(c, pem, algorithm="ES256", headers={
        "kid": "attacker", "jwk": public_jwk_of(pem, "attacker"),
        "jku": "http://127.0.0.1:1/jwks.json",
        "x5u": "http://127.0.0.1:1/cert.pem"})
    secrets_scan.register(t)
    refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)


# Keys over time --------------------------------------------------------------

def loads(api):
    return sum(1 for m in api.guard_messages() if m.startswith("jwks: loaded"))


def test_key_rotation(stack):
    old = stack.login("alice")
    old_kid = jwt.get_unverified_header(old)["kid"]
    assert stack.api.request("GET", "/api/emails", old).status == 200
    # First rotation: the new key was published as "next" beforehand.
    kid2 = stack.rotate()
    assert kid2 != old_kid
    t2 = stack.login("alice")
    assert jwt.get_unverified_header(t2)["kid"] == kid2
    assert stack.api.request("GET", "/api/emails", t2).status == 200
    # Second rotation: a kid the guard has never seen; it must fetch.
    fetched = loads(stack.api)
    kid3 = stack.rotate(force=True)
    assert kid3 not in (old_kid, kid2)
    t3 = stack.login("alice")
    assert jwt.get_unverified_header(t3)["kid"] == kid3
    time.sleep(1.1)  # past jwks_min_interval
    r = stack.api.request("GET", "/api/emails", t3)
    assert r.status == 200, (r, stack.api.log_text())
    assert loads(stack.api) == fetched + 1
    # The previous key is still published, its tokens still good.
    assert stack.api.request("GET", "/api/emails", t2).status == 200


def test_daemon_down(stack):
    good = stack.login("bob")
    stack.daemon.stop()
    # Cached keys still verify a valid token (never seen by the API).
    r = stack.api.request("GET", "/api/emails", good)
    assert r.status == 200, r
    time.sleep(1.1)  # let the guard try a fetch
    t = sign(claims(), fresh_ec_pem(), "unknown-kid-while-down")
    refused(stack.api.request("GET", "/api/emails", t), 401, INVALID)
    assert any("keeping the keys loaded" in m
               for m in stack.api.guard_messages()), stack.api.log_text()
    # ... and the keys kept still work afterwards.
    assert stack.api.request("GET", "/api/emails/1", good).status == 200


def test_no_keys_at_all_is_503(stack):
    api = stack.emailapi(
        jwks_url="http://127.0.0.1:%d/.well-known/jwks.json" % free_port(),
        jwks_timeout=1)
    good = stack.login("alice")
    r = api.request("GET", "/api/emails", good)
    refused(r, 503)
    assert r.headers.get("retry-after"), r
    assert api.request("GET", "/api/health").status == 200
    refused(api.request("GET", "/api/emails"), 401, REALM)


# Rate limits -----------------------------------------------------------------

def assert_429(r):
    refused(r, 429)
    assert int(r.headers["retry-after"]) >= 1, r
    for h in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert r.headers[h].isdigit(), (h, r)
    assert r.headers["ratelimit-remaining"] == "0", r


def test_rate_limit_per_ip(stack):
    api = stack.emailapi(rate_per_ip=0.01, burst_per_ip=3)
    bob = stack.login("bob")
    for path, tok in (("/api/health", None), ("/api/emails", bob),
                      ("/api/nothing", None)):
        assert api.request("GET", path, tok).status in (200, 404)
    r = api.request("GET", "/api/health")
    assert_429(r)
    assert r.headers["ratelimit-limit"] == "3"
    assert_429(api.request("GET", "/api/emails", bob))
    # Another address is its own bucket.
    r = rh.send(api.port, "GET", "/api/health", {"Connection": "close"},
                source="127.0.0.2")
    assert r.status == 200, r
    # X-Forwarded-For from an untrusted peer changes nothing.
    r = api.request("GET", "/api/health",
                    headers={"X-Forwarded-For": "203.0.113.9"})
    assert_429(r)


def test_rate_limit_per_subject(stack):
    api = stack.emailapi(rate_per_subject=0.01, burst_per_subject=2)
    bob, alice = stack.login("bob"), stack.login("alice")
    assert api.request("GET", "/api/emails", bob).status == 200
    assert api.request("GET", "/api/emails/1", bob).status == 200
    assert_429(api.request("GET", "/api/emails", bob))
    assert api.request("GET", "/api/emails", alice).status == 200
    # Public routes are not charged to a subject.
    assert api.request("GET", "/api/health").status == 200


# Label bodies ----------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b'{"label":""}', b'{"label":"Urgent"}', b'{"label":"a b"}',
    b'{"label":"a_b"}', b'{"label":"' + b"x" * 65 + b'"}',
    '{"label":"caf\u00e9"}'.encode(), b'{"label":5}', b'{"label":null}',
    b'{"label":["a"]}', b'{"label":"a","extra":1}', b'{"labels":"a"}',
    b'{}', b'["a"]', b'"a"', b'{"label":"a","label":"b"}', b'{"label":"a"',
    b'{"label":"\xff"}', b'{"label":"a\\u0000"}', b'{"label":"a"} x',
    b'', b'null',
], ids=["empty", "upper", "space", "underscore", "65", "non-ascii",
        "number", "null", "array", "extra-key", "wrong-key", "empty-object",
        "array-body", "string-body", "duplicate-key", "truncated",
        "bad-utf8", "nul", "trailing", "no-body", "json-null"])
def test_bad_label_bodies_are_400(stack, body):
    bob = stack.login("bob")
    before = ok_json(stack.api.request("GET", "/api/emails/4", bob))
    r = stack.api.request("POST", "/api/emails/4/labels", bob, body=body,
                          headers={"Content-Type": "application/json"})
    refused(r, 400)
    after = ok_json(stack.api.request("GET", "/api/emails/4", bob))
    assert after["labels"] == before["labels"]


def test_good_label_edges(stack):
    bob = stack.login("bob")
    for label in ("a", "x" * 64, "0-9", "-"):
        r = stack.api.request("POST", "/api/emails/4/labels", bob,
                              body=json.dumps({"label": label}),
                              headers={"Content-Type":
                                       "application/json; charset=utf-8"})
        assert label in ok_json(r)["labels"]


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/jsonx",
                                   "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_415(stack, ctype):
    bob = stack.login("bob")
    h = {"Content-Type": ctype} if ctype else {}
    r = stack.api.request("POST", "/api/emails/4/labels", bob,
                          body=b'{"label":"x"}', headers=h)
    refused(r, 415)


def test_oversized_body_is_413_before_reading(stack):
    bob = stack.login("bob")
    head = rh.build("POST", "/api/emails/4/labels", {
        "Authorization": "Bearer " + bob,
        "Content-Type": "application/json", "Content-Length": "100000"})
    s = rh.connect(stack.api.port)
    try:
        s.sendall(head)  # and not one byte of the body
        r = rh.read_response(s, timeout=5)
    finally:
        s.close()
    refused(r, 413)
    # Just over the cap, sent in full.
    body = json.dumps({"label": "x" * 4090})
    assert len(body) > 4096
    refused(stack.api.request("POST", "/api/emails/4/labels", bob,
                              body=body, headers={
                                  "Content-Type": "application/json"}), 413)


def test_chunked_body_over_the_cap_is_413(stack):
    bob = stack.login("bob")
    chunk = b"x" * 1000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    for _ in range(6)) + b"0\r\n\r\n"
    r = stack.api.request("POST", "/api/emails/4/labels", bob, body=body,
                          headers={"Content-Type": "application/json",
                                   "Transfer-Encoding": "chunked"})
    refused(r, 413)
    # A small chunked body is read normally.
    small = json.dumps({"label": "chunked"}).encode()
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)
    r = stack.api.request("POST", "/api/emails/4/labels", bob, body=body,
                          headers={"Content-Type": "application/json",
                                   "Transfer-Encoding": "chunked"})
    assert "chunked" in ok_json(r)["labels"]


def test_body_checks_come_after_the_token(stack):
    refused(stack.api.request("POST", "/api/emails/4/labels", None,
                              body=b"x" * 5000,
                              headers={"Content-Type": "text/plain"}),
            401, REALM)
    hank = stack.login("hank")
    refused(stack.api.request("POST", "/api/emails/4/labels", hank,
                              body=b"x" * 5000), 403)


# Paths, methods, queries ----------------------------------------------------

@pytest.mark.parametrize("path", [
    "/", "/api", "/api/", "/api/emails/", "/api/emails/0", "/api/emails/-1",
    "/api/emails/01", "/api/emails/abc", "/api/emails/1/", "/api/emails/1x",
    "/api/emails/+1", "/api/emails/1/labels/", "/api/emails/1/label",
    "/api/emails/99999999999999999999", "/api/emails//1", "/API/emails",
    "/api/emails/1%2flabels", "/api/emails/%31", "/api/healthz",
])
def test_unknown_paths_are_404(stack, path):
    alice = stack.login("alice")
    refused(stack.api.request("GET", path, alice), 404)


def test_missing_message_is_404(stack):
    alice = stack.login("alice")
    for method in ("GET", "DELETE"):
        p = refused(stack.api.request(method, "/api/emails/999", alice), 404)
        assert "999" not in p["detail"]


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/api/emails/1", "GET, HEAD, DELETE, OPTIONS"),
    ("PATCH", "/api/emails/1", "GET, HEAD, DELETE, OPTIONS"),
    ("POST", "/api/emails", "GET, HEAD, OPTIONS"),
    ("DELETE", "/api/emails", "GET, HEAD, OPTIONS"),
    ("GET", "/api/emails/1/labels", "POST, OPTIONS"),
    ("DELETE", "/api/health", "GET, HEAD, OPTIONS"),
])
def test_wrong_method_is_405_with_allow(stack, method, path, allow):
    r = stack.api.request(method, path, stack.login("alice"))
    refused(r, 405)
    assert r.headers["allow"] == allow


def test_paging(stack):
    bob = stack.login("bob")
    all_ids = [m["id"] for m in ok_json(stack.api.request(
        "GET", "/api/emails", bob))["emails"]]
    doc = ok_json(stack.api.request("GET", "/api/emails?limit=3", bob))
    assert [m["id"] for m in doc["emails"]] == all_ids[:3]
    doc = ok_json(stack.api.request("GET", "/api/emails?limit=3&offset=6",
                                    bob))
    assert [m["id"] for m in doc["emails"]] == all_ids[6:]
    assert doc["limit"] == 3 and doc["offset"] == 6 and doc["total"] == 8
    doc = ok_json(stack.api.request("GET", "/api/emails?offset=100", bob))
    assert doc["emails"] == []
    assert len(ok_json(stack.api.request(
        "GET", "/api/emails?limit=100", bob))["emails"]) == 8
    for q in ("limit=0", "limit=101", "limit=abc", "limit=-1", "limit=",
              "limit=1e2", "limit=%201", "offset=-1", "offset=x",
              "limit=99999999999999999999"):
        refused(stack.api.request("GET", "/api/emails?" + q, bob), 400)


# CORS ------------------------------------------------------------------------

def test_cors(stack):
    bob = stack.login("bob")
    good = "https://mail.example.com"
    r = stack.api.request("GET", "/api/emails", bob, headers={"Origin": good})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == good
    assert "Origin" in r.headers["vary"]
    # Errors too, so the page can read them.
    r = stack.api.request("GET", "/api/emails", headers={"Origin": good})
    assert r.status == 401
    assert r.headers["access-control-allow-origin"] == good
    for foreign in ("https://evil.example", "null", good + ".evil.example",
                    "http://mail.example.com"):
        r = stack.api.request("GET", "/api/emails", bob,
                              headers={"Origin": foreign})
        assert r.status == 200
        assert "access-control-allow-origin" not in r.headers, r
        assert r.headers.get("access-control-allow-origin") != "*"
    # Preflight.
    r = stack.api.request("OPTIONS", "/api/emails/1", headers={
        "Origin": good, "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization"})
    assert r.status == 204, r
    assert r.headers["access-control-allow-origin"] == good
    assert "DELETE" in r.headers["access-control-allow-methods"]
    assert "authorization" in \
        r.headers["access-control-allow-headers"].lower()
    rh.assert_security_headers(r)
    r = stack.api.request("OPTIONS", "/api/emails/1", headers={
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "DELETE"})
    refused(r, 403)
    assert "access-control-allow-origin" not in r.headers
    r = stack.api.request("OPTIONS", "/api/emails/1", headers={
        "Origin": good, "Access-Control-Request-Method": "PUT"})
    refused(r, 405)
    assert r.headers["allow"] == "GET, HEAD, DELETE, OPTIONS"
    r = stack.api.request("OPTIONS", "/api/emails")
    assert r.status == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS"


# The process -----------------------------------------------------------------

def test_keep_alive(stack):
    bob = stack.login("bob")
    s = rh.connect(stack.api.port)
    try:
        for path in ("/api/emails/1", "/api/emails/2", "/api/health"):
            s.sendall(rh.build("GET", path,
                               {"Authorization": "Bearer " + bob}))
            r = rh.read_response(s)
            assert r.status == 200, r
            assert r.headers.get("connection", "").lower() != "close"
    finally:
        s.close()


def test_guard_denials_are_logged_with_their_request_id(stack):
    """SPEC: request_id matches the log line. A 401 for an expired token
    must be traceable to the guard's log line saying why."""
    expired = own_token(stack, now=int(time.time()) - 400, ttl=300)
    p = refused(stack.api.request("GET", "/api/emails", expired), 401,
                INVALID)
    lines = [m for m in stack.api.guard_messages() if "refused" in m]
    assert lines, stack.api.log_text()
    assert any(p["request_id"] in m for m in lines), lines


def test_concurrent_requests(stack):
    bob = stack.login("bob")
    errors, labels = [], ["c%d" % i for i in range(40)]

    def work(chunk):
        for label in chunk:
            for method, path, body in (
                    ("POST", "/api/emails/7/labels", {"label": label}),
                    ("GET", "/api/emails", None),
                    ("GET", "/api/emails/7", None)):
                r = stack.api.request(method, path, bob, json_body=body)
                if r.status != 200:
                    errors.append(r)

    # Labels are capped per message: 40 more than the 0 on message 7 is
    # over 32, so each thread posts its own and a few are refused 409.
    threads = [threading.Thread(target=work, args=(labels[i::8],))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 409 for r in errors), errors[:3]
    final = ok_json(stack.api.request("GET", "/api/emails/7", bob))["labels"]
    assert len(final) == 32 == len(set(final))
    assert len(errors) == 40 - 32


def test_data_survives_a_restart_and_stop_is_clean(stack):
    alice = stack.login("alice")
    assert stack.api.request("DELETE", "/api/emails/5", alice).status == 204
    assert stack.api.request("POST", "/api/emails/6/labels", alice,
                             json_body={"label": "kept"}).status == 200
    assert stack.api.stop() == 0
    assert stack.api.events()[-1]["event"] == "stopped"
    assert os.stat(os.path.join(stack.api.dir, "emails.db")).st_mode \
        & 0o077 == 0
    stack.api.start()
    doc = ok_json(stack.api.request("GET", "/api/emails", alice))
    assert doc["total"] == 7  # not seeded again
    assert "kept" in ok_json(stack.api.request(
        "GET", "/api/emails/6", alice))["labels"]
    stack.api.proc.send_signal(signal.SIGINT)
    assert stack.api.proc.wait(10) == 0


@pytest.mark.parametrize("text,expect", [
    ("listen = { address = \"127.0.0.1\"; port = 0; };\n"
     "database = \"e.db\";\nguard = { issuer = \"x\"; audience = \"y\"; "
     "jwks_file = \"none.json\"; };\n", "none.json"),
    ("listen = { address = \"127.0.0.1\"; port = 0; bogus = 1; };\n"
     "database = \"e.db\";\nguard = { };\n", "bogus"),
    ("listen = { address = \"127.0.0.1\"; port = 70000; };\n"
     "database = \"e.db\";\nguard = { };\n", "port"),
    ("listen = { address = \"127.0.0.1\"; port = 0; };\n"
     "database = \"e.db\";\nguard = { issuer = \"x\"; audience = \"y\"; "
     "jwks_url = \"http://127.0.0.1:1/\"; leeway = 5000; };\n", "leeway"),
    ("listen = { address = \"127.0.0.1\"; port = 0; };\n"
     "database = \"e.db\";\n", "guard"),
    # Keys over plain http across a network: anyone on it could serve his.
    ("listen = { address = \"127.0.0.1\"; port = 0; };\n"
     "database = \"e.db\";\nguard = { issuer = \"x\"; audience = \"y\"; "
     "jwks_url = \"http://auth.example.com/jwks.json\"; };\n", "loopback"),
], ids=["no-jwks-file", "unknown", "port-range", "leeway-range", "no-guard",
        "http-jwks-off-loopback"])
def test_bad_configs_refuse_to_start(tmp_path, text, expect):
    api = EmailApi(str(tmp_path), text)
    with pytest.raises(RuntimeError):
        api.start(timeout=5)
    assert api.proc.returncode == 1
    ev = [e for e in api.events() if e.get("event") == "config_invalid"]
    assert ev and expect in ev[0]["error"], api.log_text()


def test_sample_config_parses(tmp_path):
    """examples/emailapi/emailapi.conf, with a jwks_file instead of the URL
    (no daemon here): the guard and listen groups are all valid."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                       "emailapi", "emailapi.conf")
    with open(src) as f:
        text = f.read()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk_of(fresh_ec_pem(),
                                                       "k1")]}))
    changed = text.replace(
        'jwks_url = "http://127.0.0.1:8080/.well-known/jwks.json";',
        'jwks_file = "%s";' % jwks).replace("port = 8081;", "port = 0;")
    assert 'jwks_file = "%s";' % jwks in changed
    assert "8081" not in changed and "\n  jwks_url" not in changed
    text = changed
    api = EmailApi(str(tmp_path), text)
    api.start()
    try:
        assert api.request("GET", "/api/health").status == 200
    finally:
        assert api.stop() == 0


def test_slow_client_does_not_block_others(stack):
    bob = stack.login("bob")
    slow = socket.create_connection(("127.0.0.1", stack.api.port))
    try:
        slow.sendall(b"GET /api/emails HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        r = stack.api.request("GET", "/api/emails", bob)
        assert r.status == 200 and time.time() - t0 < 2
    finally:
        slow.close()
