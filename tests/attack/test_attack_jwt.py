"""Attack class jwt: forged, altered and stale tokens against the running
daemon (GET /v1/userinfo, GET /v1/verify) and the email API's guard
(GET /api/emails, DELETE /api/emails/3), and refresh tokens of revoked
and rotated sessions against POST /v1/refresh.

Every bad access token goes to all four places and must get the same
401 problem+json with `WWW-Authenticate: Bearer error="invalid_token"`,
the refusal reason in the log (daemon: a token_refused event; guard: its
"token refused: <reason>" line, both by request id), no echo of the token
or its parts, and nothing changed: the signing keys, the JWKS, the role
map and the sessions are as before, email 3 is still there, and the
attacker's key server was never contacted.

The forged claims are alice's (admin, scope emails:*), taken from a real
login with a real session id, so a token wrongly accepted would show as
a 200, or a 204 on the DELETE, and never as a 403.
"""
import base64
import datetime
import http.server
import json
import os
import threading
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from cryptography.x509.oid import NameOID

import secrets_scan
from attackflow import (INVALID_TOKEN, assert_refused, bearer, jwt_claims,
                        post_json, record, send, session_of, snapshot)
from authflow import write_users
from emailapiflow import (USERS, Stack, daemon_config, fresh_ec_pem,
                          hs256_with, public_jwk_of, public_pem_of, unsigned)

LEEWAY = 30  # emailapiflow: the daemon's tokens.leeway and the guard's


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(seg):
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


class AttackerServer:
    """The attacker's key server (jku / x5u point here): serves a JWKS
    with the attacker's key on every path and counts who asked."""

    def __init__(self, jwks):
        body = json.dumps(jwks).encode()
        outer = self
        self.hits = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Env:
    pass


@pytest.fixture(scope="module")
def env(module_daemons):
    def build(tmp):
        write_users(os.path.join(tmp, "users"), USERS)
        return daemon_config(tmp)

    d = module_daemons(build)
    e = Env()
    e.daemon = d
    e.stack = Stack(d.tmp, d)
    e.api = e.stack.emailapi()
    # alice's real token: the base of every forgery, and the check that
    # email 3 survives.
    r = post_json(d.port, "/v1/login", {"username": "alice",
                                        "password": USERS["alice"][0]})
    assert r.status == 200, r
    doc = r.json()
    e.alice_access = doc["access_token"]
    e.base = jwt_claims(e.alice_access)
    e.kid = jwt.get_unverified_header(e.alice_access)["kid"]
    e.key = e.stack.private_key_pem()
    r = post_json(d.port, "/v1/login", {"username": "bob",
                                        "password": USERS["bob"][0]})
    assert r.status == 200, r
    e.bob_access = r.json()["access_token"]
    e.jwks = send(d.port, "GET", "/.well-known/jwks.json").body
    e.roles_etag = roles_etag(e)
    e.our_jwk = json.loads(e.jwks)["keys"]
    e.our_jwk = [k for k in e.our_jwk if k["kid"] == e.kid][0]
    # The attacker's own key, published on his own server.
    e.evil_pem = fresh_ec_pem()
    for line in e.evil_pem.splitlines()[1:-1]:
        secrets_scan.register(line)
    e.evil_jwk = public_jwk_of(e.evil_pem, "attacker")
    e.evil = AttackerServer({"keys": [e.evil_jwk,
                                      dict(e.evil_jwk, kid=e.kid)]})
    try:
        yield e
    finally:
        e.evil.stop()
        e.stack.stop()


def forge(e, key=None, kid=None, alg="ES256", headers=None, **over):
    """alice's claims with `over` applied (None deletes), signed by key
    (default: the daemon's own private key) with the given header."""
    c = dict(e.base)
    now = int(time.time())
    c.update(iat=now, nbf=now, exp=now + 120)
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    h = {"kid": e.kid if kid is None else kid, "typ": "JWT"}
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    t = jwt.encode(c, key or e.key, algorithm=alg, headers=h)
    return secrets_scan.register(t)


def sign_raw(e, header_json, payload_json, key=None):
    """A token over exactly these header and payload bytes, signed ES256
    (raw r||s) with key (default: the daemon's)."""
    k = serialization.load_pem_private_key(key or e.key, None)
    si = b64(header_json) + "." + b64(payload_json)
    der = k.sign(si.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return secrets_scan.register(si + "." + b64(sig))


def good_payload(e, **over):
    c = dict(e.base)
    now = int(time.time())
    c.update(iat=now, nbf=now, exp=now + 120)
    c.update(over)
    return json.dumps(c)


# ----------------------------------------------------------------------
# Where a token is presented

# (name, where, method, path). The first three are reads (the controls
# use them); the others would change something if the token passed.
TARGETS = [
    ("daemon /v1/userinfo", "daemon", "GET", "/v1/userinfo"),
    ("daemon /v1/verify", "daemon", "GET", "/v1/verify"),
    ("guard GET /api/emails", "guard", "GET", "/api/emails"),
    ("guard DELETE /api/emails/3", "guard", "DELETE", "/api/emails/3"),
    ("daemon PUT /v1/admin/roles/evil", "daemon", "PUT",
     "/v1/admin/roles/evil"),
    ("daemon DELETE /v1/admin/sessions?user=bob", "daemon", "DELETE",
     "/v1/admin/sessions?user=bob"),
]
# The admin routes answer 401 without a token_refused line.
UNLOGGED = ("/v1/admin/",)
EVIL_ROLE = {"groups": ["everyone"], "permissions": ["admin:*", "emails:*"]}


def guard_reason(api, request_id, timeout=5):
    deadline = time.time() + timeout
    needle = "request %s: token refused: " % request_id
    while True:
        for m in api.guard_messages():
            if m.startswith(needle):
                return m[len(needle):]
        if time.time() > deadline:
            raise AssertionError("no guard line for %s:\n%s" %
                                 (request_id, api.log_text()[-2000:]))
        time.sleep(0.02)


def daemon_reason(d, request_id, timeout=5):
    deadline = time.time() + timeout
    while True:
        for ev in d.events():
            if ev.get("event") == "token_refused" and \
                    ev.get("request_id") == request_id:
                return ev["reason"]
        if time.time() > deadline:
            raise AssertionError("no token_refused for %s" % request_id)
        time.sleep(0.02)


def present(e, target, token, headers=None):
    _, where, method, path = target
    port = e.daemon.port if where == "daemon" else e.api.port
    h = {"Authorization": "Bearer " + token}
    body = b""
    if method == "PUT":
        # What a token that passed would need to rewrite the role map.
        h.update({"Content-Type": "application/json",
                  "If-Match": e.roles_etag})
        body = json.dumps(EVIL_ROLE)
    h.update(headers or {})
    return send(port, method, path, h, body)


def roles_etag(e):
    r = bearer(e.daemon.port, "/v1/admin/roles", e.alice_access)
    assert r.status == 200, r
    return r.headers["etag"]


def email3_survives(e):
    r = bearer(e.api.port, "/api/emails/3", e.alice_access)
    assert r.status == 200, "email 3 is gone: %r" % r


def refused_everywhere(e, token, reasons, inputs=()):
    """The token gets the invalid_token 401 at every target, for one of
    the reasons given, and changes nothing."""
    before = snapshot(e.daemon)
    hits = len(e.evil.hits)
    errors = []
    parts = [p for p in token.split(".") if len(p) >= 8]
    for target in TARGETS:
        r = present(e, target, token)
        try:
            assert_refused(r, 401, inputs=[token] + parts + list(inputs),
                           www=INVALID_TOKEN,
                           detail="the access token is not valid")
            rid = r.headers["x-request-id"]
            if target[3].startswith(UNLOGGED):
                continue
            why = daemon_reason(e.daemon, rid) if target[1] == "daemon" \
                else guard_reason(e.api, rid)
            assert why in reasons, "refused as %r, expected one of %r" % (
                why, sorted(reasons))
        except AssertionError as ex:
            errors.append("%s: %s" % (target[0], ex))
    assert not errors, "\n".join(errors)
    email3_survives(e)
    assert snapshot(e.daemon) == before, "daemon state changed"
    assert roles_etag(e) == e.roles_etag, "the role map changed"
    assert send(e.daemon.port, "GET", "/.well-known/jwks.json").body == \
        e.jwks, "the JWKS changed"
    assert e.evil.hits[hits:] == [], "a key URL in the token was fetched"


def test_controls_our_forgeries_pass(env):
    """The forgery machinery works: the same claims with the daemon's key
    and kid are accepted everywhere (GETs only: nothing is deleted)."""
    t = forge(env)
    for target in TARGETS[:3]:
        r = present(env, target, t)
        assert r.status == 200, (target[0], r)


# ----------------------------------------------------------------------
# alg none, alg confusion


@pytest.mark.parametrize("alg,with_kid,sig", [
    ("none", True, b""), ("NoNe", True, b""), ("NONE", False, b""),
    ("none", True, b"\0" * 64), ("nOnE", False, b"junk-signature"),
], ids=["none", "NoNe", "NONE-no-kid", "none-zero-signature",
        "nOnE-junk-signature"])
def test_alg_none(env, alg, with_kid, sig):
    h = {"alg": alg, "typ": "JWT"}
    if with_kid:
        h["kid"] = env.kid
    now = int(time.time())
    t = unsigned(h, dict(env.base, iat=now, nbf=now, exp=now + 120), sig)
    # An empty signature segment is malformed before the header is read.
    refused_everywhere(env, t, {"malformed", "bad_header"})


def _hmac_keys(env):
    pub = public_pem_of(env.our_jwk)
    k = serialization.load_pem_public_key(pub)
    der = k.public_bytes(serialization.Encoding.DER,
                         serialization.PublicFormat.SubjectPublicKeyInfo)
    point = k.public_bytes(serialization.Encoding.X962,
                           serialization.PublicFormat.UncompressedPoint)
    return {"pem": pub, "pem-stripped": pub.strip(), "der": der,
            "jwk-json": json.dumps(env.our_jwk).encode(),
            "jwks-document": env.jwks, "raw-point": point}


@pytest.mark.parametrize("which", ["pem", "pem-stripped", "der", "jwk-json",
                                   "jwks-document", "raw-point"])
def test_hs256_signed_with_our_public_key(env, which):
    """Alg confusion: the public key, in every encoding an attacker could
    take from the JWKS, used as the HMAC secret."""
    secret = _hmac_keys(env)[which]
    now = int(time.time())
    c = dict(env.base, iat=now, nbf=now, exp=now + 120)
    t = hs256_with(secret, {"alg": "HS256", "kid": env.kid, "typ": "JWT"},
                   c)
    refused_everywhere(env, t, {"bad_header"})


def test_rs256_and_es384_headers_on_our_kid(env):
    """The algorithm is pinned per key: any other alg with our kid is
    refused before a signature is computed."""
    h, p, s = forge(env).split(".")
    for alg in ("RS256", "ES384", "PS256", "ES256K", "es256"):
        hdr = b64(json.dumps({"alg": alg, "kid": env.kid, "typ": "JWT"}))
        t = secrets_scan.register(".".join([hdr, p, s]))
        refused_everywhere(env, t, {"bad_header"})


# ----------------------------------------------------------------------
# kid


@pytest.mark.parametrize("kid", [
    "made-up-kid-0001",
    "../../state/keys/current.pem",
    "state/keys/current.pem",
    "current.pem",
    "current",
    "/etc/passwd",
    "file:///etc/passwd",
    "..%2f..%2fstate%2fkeys%2fcurrent.pem",
    "http://127.0.0.1:1/jwks.json",
    "' OR '1'='1",
], ids=["unknown", "relative-path", "state-path", "file-name", "slot-name",
        "absolute-path", "file-url", "encoded-path", "url", "sql"])
def test_unknown_and_path_like_kid(env, kid):
    t = forge(env, key=fresh_ec_pem(), kid=kid)
    refused_everywhere(env, t, {"unknown_kid"}, inputs=[kid])


def test_kid_naming_our_key_file_by_absolute_path(env):
    path = os.path.join(env.daemon.tmp, "state", "keys", "current.pem")
    t = forge(env, key=fresh_ec_pem(), kid=path)
    refused_everywhere(env, t, {"unknown_kid"}, inputs=[path])


def test_kid_dev_null_with_an_empty_hmac_key(env):
    """The classic: kid points at /dev/null and the HMAC key is empty."""
    now = int(time.time())
    c = dict(env.base, iat=now, nbf=now, exp=now + 120)
    for kid in ("../../../../../../../dev/null", "/dev/null"):
        t = hs256_with(b"", {"alg": "HS256", "kid": kid, "typ": "JWT"}, c)
        refused_everywhere(env, t, {"unknown_kid", "bad_header"},
                           inputs=[kid])


@pytest.mark.parametrize("kid", ["", "k" * 5000, 7, None, ["x"]],
                         ids=["empty", "overlong", "number", "missing",
                              "array"])
def test_kid_of_the_wrong_shape(env, kid):
    h = {"alg": "ES256", "typ": "JWT"}
    if kid is not None:
        h["kid"] = kid
    t = sign_raw(env, json.dumps(h), good_payload(env))
    refused_everywhere(env, t, {"bad_header"})


# ----------------------------------------------------------------------
# jku / jwk / x5u / x5c: never followed, never trusted


def _evil_cert(env):
    key = serialization.load_pem_private_key(env.evil_pem, None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(
        serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("kid,extra", [
    ("attacker", ("jwk", "jku", "x5u", "x5c")),
    ("attacker", ("jwk",)),
    ("attacker", ("jku",)),
    ("attacker", ("x5u",)),
    ("attacker", ("x5c",)),
    ("ours", ("jwk", "jku", "x5u", "x5c")),
    ("ours", ("jwk",)),
    ("ours", ("jku",)),
], ids=["all-headers", "jwk", "jku", "x5u", "x5c", "our-kid-all-headers",
        "our-kid-jwk", "our-kid-jku"])
def test_key_headers_are_ignored(env, kid, extra):
    """A token signed by the attacker's key that carries that key (jwk,
    x5c) or points at it (jku, x5u, on a server that would serve it): the
    key is never used and the URLs are never fetched."""
    kid = env.kid if kid == "ours" else "attacker"
    h = {}
    if "jwk" in extra:
        h["jwk"] = dict(env.evil_jwk, kid=kid)
    if "jku" in extra:
        h["jku"] = env.evil.url("/jwks.json")
    if "x5u" in extra:
        h["x5u"] = env.evil.url("/cert.pem")
    if "x5c" in extra:
        h["x5c"] = [_evil_cert(env)]
    t = forge(env, key=env.evil_pem, kid=kid, headers=h)
    refused_everywhere(env, t, {"unknown_kid"} if kid == "attacker"
                       else {"bad_signature"})
    # Nothing was learnt from the header either: the attacker's key with
    # its kid alone is still unknown.
    t = forge(env, key=env.evil_pem, kid="attacker")
    refused_everywhere(env, t, {"unknown_kid"})


# ----------------------------------------------------------------------
# Tampered payload, stripped or altered signature


TAMPER = {
    "scope": lambda c: c.update(scope="emails:* admin:*"),
    "roles": lambda c: c.update(roles=["admin"], scope="emails:*"),
    "sub": lambda c: c.update(sub="alice"),
    "exp": lambda c: c.update(exp=c["exp"] + 86400),
    "aud": lambda c: c.update(aud=["email-api", "other"]),
}


@pytest.mark.parametrize("field", list(TAMPER))
def test_tampered_payload(env, field):
    """bob's real token (analyst: no emails:delete) with its payload
    edited and the signature kept."""
    h, p, s = env.bob_access.split(".")
    c = json.loads(unb64(p))
    TAMPER[field](c)
    t = secrets_scan.register(".".join([h, b64(json.dumps(c)), s]))
    refused_everywhere(env, t, {"bad_signature"})


def _der_signature(sig):
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    return encode_dss_signature(r, s)


@pytest.mark.parametrize("how", ["empty", "missing", "zeros", "truncated",
                                 "extended", "other-token", "der",
                                 "high-s"])
def test_signature_stripped_or_altered(env, how):
    good = forge(env)
    h, p, s = good.split(".")
    sig = unb64(s)
    if how == "empty":
        t = h + "." + p + "."
        reasons = {"malformed"}
    elif how == "missing":
        t = h + "." + p
        reasons = {"malformed"}
    elif how == "zeros":
        t = h + "." + p + "." + b64(b"\0" * 64)
        reasons = {"bad_signature"}
    elif how == "truncated":
        t = h + "." + p + "." + b64(sig[:63])
        reasons = {"bad_signature"}
    elif how == "extended":
        t = h + "." + p + "." + b64(sig + b"\0")
        reasons = {"bad_signature"}
    elif how == "other-token":
        t = h + "." + p + "." + env.bob_access.split(".")[2]
        reasons = {"bad_signature"}
    elif how == "der":
        # The same signature, DER-encoded (what OpenSSL itself emits).
        t = h + "." + p + "." + b64(_der_signature(sig))
        reasons = {"bad_signature"}
    else:
        # ECDSA malleability: (r, n - s) also verifies mathematically.
        # Accepting it is harmless in itself (the claims are ours); the
        # token must not be refused for a wrong reason or crash anything.
        n = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2"
                "FC632551", 16)
        r_ = int.from_bytes(sig[:32], "big")
        s_ = n - int.from_bytes(sig[32:], "big")
        t = h + "." + p + "." + b64(r_.to_bytes(32, "big") +
                                    s_.to_bytes(32, "big"))
        secrets_scan.register(t)
        for target in TARGETS[:3]:
            r = present(env, target, t)
            assert r.status in (200, 401), (target[0], r)
            if r.status == 401:
                assert_refused(r, 401, inputs=[t], www=INVALID_TOKEN)
        email3_survives(env)
        return
    secrets_scan.register(t)
    refused_everywhere(env, t, reasons)


# ----------------------------------------------------------------------
# Time


@pytest.mark.parametrize("when", ["expired", "expired-beyond-leeway",
                                  "not-yet-valid", "nbf-beyond-leeway",
                                  "expired-long-ago", "exp-zero"])
def test_expired_and_not_yet_valid(env, when):
    now = int(time.time())
    over = {
        "expired": dict(iat=now - 900, nbf=now - 900, exp=now - 600),
        "expired-beyond-leeway": dict(iat=now - 400, nbf=now - 400,
                                      exp=now - LEEWAY - 5),
        "not-yet-valid": dict(iat=now, nbf=now + 3600, exp=now + 7200),
        "nbf-beyond-leeway": dict(iat=now, nbf=now + LEEWAY + 5,
                                  exp=now + 600),
        "expired-long-ago": dict(iat=1, nbf=1, exp=2),
        "exp-zero": dict(exp=0),
    }[when]
    reason = "not_yet_valid" if "nbf" in when or "not-yet" in when \
        else "expired"
    refused_everywhere(env, forge(env, **over), {reason})


def test_within_the_leeway_is_accepted_control(env):
    """The control of the two tests above: the leeway exists and is the
    configured 30 s, not more."""
    now = int(time.time())
    for over in (dict(iat=now - 400, nbf=now - 400, exp=now - LEEWAY + 10),
                 dict(nbf=now + LEEWAY - 10, exp=now + 600)):
        t = forge(env, **over)
        for target in TARGETS[:3]:
            r = present(env, target, t)
            assert r.status == 200, (target[0], over, r)


# ----------------------------------------------------------------------
# iss, aud


@pytest.mark.parametrize("over,reasons", [
    ({"iss": "https://evil.test"}, {"bad_issuer"}),
    ({"iss": "https://auth.test/"}, {"bad_issuer"}),
    ({"iss": "https://AUTH.TEST"}, {"bad_issuer"}),
    # JSON's \u0000 in a claim: the verifier's parser refuses it.
    ({"iss": "https://auth.test\u0000.evil"}, {"bad_issuer", "malformed"}),
    ({"iss": None}, {"bad_claims"}),
    ({"aud": "another-api"}, {"bad_audience"}),
    ({"aud": ["another-api", "third-api"]}, {"bad_audience"}),
    ({"aud": "Email-API"}, {"bad_audience"}),
    ({"aud": "email-api-evil"}, {"bad_audience"}),
    ({"aud": "email"}, {"bad_audience"}),
    ({"aud": []}, {"bad_audience"}),
    ({"aud": None}, {"bad_claims"}),
], ids=["iss-evil", "iss-trailing-slash", "iss-case", "iss-nul-suffix",
        "iss-missing", "aud-other", "aud-list-without-ours", "aud-case",
        "aud-suffix", "aud-prefix", "aud-empty-list", "aud-missing"])
def test_wrong_issuer_or_audience(env, over, reasons):
    refused_everywhere(env, forge(env, **over), reasons)


# ----------------------------------------------------------------------
# Claims of the wrong JSON type


@pytest.mark.parametrize("over", [
    {"exp": "EXP"}, {"exp": "NOW"}, {"exp": 1.5}, {"exp": True},
    {"exp": [1]}, {"exp": {"t": 1}}, {"exp": None}, {"exp": 1e300},
    {"nbf": "0"}, {"iat": "0"}, {"nbf": 0.5},
    {"sub": 42}, {"sub": ""}, {"sub": ["alice"]},
    {"iss": ["https://auth.test"]}, {"aud": 1}, {"aud": ["email-api", 1]},
], ids=["exp-string", "exp-numeric-string", "exp-float", "exp-bool",
        "exp-array", "exp-object", "exp-missing", "exp-huge-float",
        "nbf-string", "iat-string", "nbf-float", "sub-number", "sub-empty",
        "sub-array", "iss-array", "aud-number", "aud-list-with-number"])
def test_claims_of_the_wrong_json_type(env, over):
    now = int(time.time())
    if over.get("exp") == "EXP":
        over = {"exp": str(now + 600)}
    elif over.get("exp") == "NOW":
        over = {"exp": "%d" % (now + 600)}
    refused_everywhere(env, forge(env, **over), {"bad_claims"})


def test_exp_beyond_int64(env):
    """An exp no 64-bit integer holds: refused as malformed or as a bad
    claim, never wrapped around into the past or the future."""
    for exp in (2 ** 63, 2 ** 64 + 5, -(2 ** 63) - 1, 10 ** 40):
        t = sign_raw(env, json.dumps({"alg": "ES256", "kid": env.kid,
                                      "typ": "JWT"}),
                     good_payload(env, exp=exp))
        refused_everywhere(env, t, {"malformed", "bad_claims", "expired"})


@pytest.mark.parametrize("claim,first,second", [
    ("sub", "bob", "alice"), ("exp", 1, 99999999999),
    ("scope", "emails:read", "emails:* admin:*"),
], ids=["sub", "exp", "scope"])
def test_duplicate_claims_signed_by_our_key(env, claim, first, second):
    """A parser differential: a payload that names a claim twice, with a
    valid signature (only a key thief could make it), is still refused:
    no parser gets to pick the first or the last."""
    c = json.loads(good_payload(env))
    c.pop(claim)
    text = json.dumps(c)[:-1] + ", %s: %s, %s: %s}" % (
        json.dumps(claim), json.dumps(first), json.dumps(claim),
        json.dumps(second))
    t = sign_raw(env, json.dumps({"alg": "ES256", "kid": env.kid,
                                  "typ": "JWT"}), text)
    refused_everywhere(env, t, {"malformed"})


def test_crit_header_signed_by_our_key(env):
    t = sign_raw(env, json.dumps({"alg": "ES256", "kid": env.kid,
                                  "typ": "JWT", "crit": ["exp"]}),
                 good_payload(env))
    refused_everywhere(env, t, {"bad_header"})


# ----------------------------------------------------------------------
# Oversized and malformed


def test_oversized_token_with_a_valid_signature(env):
    """Signed by our key, but longer than the 8 KiB cap: refused unread."""
    t = forge(env, pad="p" * 7000)
    assert 8192 < len(t) < 12000
    refused_everywhere(env, t, {"malformed"})


def test_oversized_garbage_token(env):
    t = "eyJ" + "A" * 12000
    refused_everywhere(env, t, {"malformed"})


def _malformed(env):
    h, p, s = forge(env).split(".")
    hj = json.dumps({"alg": "ES256", "kid": env.kid, "typ": "JWT"})
    return {
        "word": "garbage",
        "abc": "a.b.c",
        "two-segments": h + "." + p,
        "four-segments": h + "." + p + "." + s + "." + s,
        "dots": "..",
        "empty-header": "." + p + "." + s,
        "empty-payload": h + ".." + s,
        "header-not-base64": "!!!." + p + "." + s,
        "header-not-json": b64("not json") + "." + p + "." + s,
        "header-json-array": b64("[1,2]") + "." + p + "." + s,
        "header-duplicate-alg": b64(hj[:-1] + ', "alg": "none"}') + "." +
        p + "." + s,
        "padding": h + "=." + p + "=." + s + "=",
        "std-alphabet": h + "." + p.replace("-", "+").replace("_", "/") +
        "." + s.replace("-", "+").replace("_", "/") + "+/",
        "inner-space": h + ". " + p + "." + s,
        "non-ascii": h + "." + p + "\u00e9." + s,
        "payload-not-json": sign_raw(env, hj, "not json"),
        "payload-array": sign_raw(env, hj, "[1,2,3]"),
        "payload-trailing": sign_raw(env, hj, good_payload(env) + " {}"),
    }


MALFORMED_IDS = ["word", "abc", "two-segments", "four-segments", "dots",
                 "empty-header", "empty-payload", "header-not-base64",
                 "header-not-json", "header-json-array",
                 "header-duplicate-alg", "padding", "std-alphabet",
                 "inner-space", "non-ascii", "payload-not-json",
                 "payload-array", "payload-trailing"]


@pytest.mark.parametrize("which", MALFORMED_IDS)
def test_malformed_token(env, which):
    t = _malformed(env)[which]
    if which in ("inner-space", "non-ascii"):
        # Not even a token68 (RFC 6750): refused as no valid credentials,
        # either as malformed or before the verifier.
        for target in TARGETS:
            r = present(env, target, t)
            assert_refused(r, 401, inputs=[t])
        email3_survives(env)
        return
    secrets_scan.register(t)
    refused_everywhere(env, t, {"malformed"})


# ----------------------------------------------------------------------
# Refresh tokens of revoked and rotated sessions (the daemon)


def _login(env, user):
    r = post_json(env.daemon.port, "/v1/login",
                  {"username": user, "password": USERS[user][0]})
    assert r.status == 200, r
    return r.json()


def _refresh(env, token):
    return post_json(env.daemon.port, "/v1/refresh",
                     {"refresh_token": token})


def _refused_refresh(env, token):
    r = _refresh(env, token)
    assert_refused(r, 401, inputs=[token], www=INVALID_TOKEN,
                   detail="the refresh token is not valid")
    return r


def _refresh_reason(env, r):
    ev = [e for e in env.daemon.events() if e.get("event") == "refresh"
          and e.get("request_id") == r.headers["x-request-id"]]
    assert ev, r
    return ev[-1].get("reason")


@pytest.mark.parametrize("how", ["logout", "admin-revoke"])
def test_revoked_sessions_refresh_token(env, how):
    """A session ended by logout, or revoked by an administrator: its
    refresh token is refused (for that reason), nothing is issued and
    the session stays revoked."""
    doc = _login(env, "bob")
    sid = jwt_claims(doc["access_token"])["sid"]
    state = os.path.join(env.daemon.tmp, "state")
    if how == "logout":
        r = post_json(env.daemon.port, "/v1/logout",
                      {"refresh_token": doc["refresh_token"]})
    else:
        r = bearer(env.daemon.port, "/v1/admin/sessions/" + sid,
                   env.alice_access, method="DELETE")
    assert r.status in (200, 204), r
    row = session_of(state, sid)
    assert row is not None and row[3] is not None, row
    before = snapshot(env.daemon)
    for _ in range(2):
        r = _refused_refresh(env, doc["refresh_token"])
        assert _refresh_reason(env, r) == "session_revoked"
    # Nothing issued, nothing revived: the same sessions, still revoked.
    assert snapshot(env.daemon) == before
    assert session_of(state, sid)[3] == row[3]
    r = bearer(env.daemon.port, "/v1/userinfo", doc["access_token"])
    assert_refused(r, 401, www=INVALID_TOKEN)


def test_reused_rotated_refresh_token(env):
    first = _login(env, "bob")
    sid = jwt_claims(first["access_token"])["sid"]
    state = os.path.join(env.daemon.tmp, "state")
    r = _refresh(env, first["refresh_token"])
    assert r.status == 200, r
    second = r.json()
    assert jwt_claims(second["access_token"])["sid"] == sid
    assert session_of(state, sid)[3] is None
    # The thief replays the rotated token: refused, and the session dies.
    r = _refused_refresh(env, first["refresh_token"])
    assert _refresh_reason(env, r) == "token_reused"
    revoked_at = session_of(state, sid)[3]
    assert revoked_at is not None
    before = snapshot(env.daemon)
    # The newest token is dead too, and so are both access tokens, and a
    # second replay revives nothing.
    _refused_refresh(env, second["refresh_token"])
    _refused_refresh(env, first["refresh_token"])
    for a in (first["access_token"], second["access_token"]):
        r = bearer(env.daemon.port, "/v1/userinfo", a)
        assert_refused(r, 401, www=INVALID_TOKEN)
    assert snapshot(env.daemon) == before
    assert session_of(state, sid)[3] == revoked_at


@pytest.mark.parametrize("what", ["random", "access-token", "truncated",
                                  "empty"])
def test_refresh_tokens_that_never_were(env, what):
    doc = _login(env, "bob")
    token = {"random": b64(os.urandom(32)),
             "access-token": doc["access_token"],
             "truncated": doc["refresh_token"][:-1],
             "empty": ""}[what]
    secrets_scan.register(token)
    before = snapshot(env.daemon)
    r = _refresh(env, token)
    if what == "empty":
        # Refused as input before any look-up.
        assert r.status in (400, 401), r
        assert_refused(r, r.status)
    else:
        assert_refused(r, 401, inputs=[token], www=INVALID_TOKEN,
                       detail="the refresh token is not valid")
    assert snapshot(env.daemon) == before
    # The real session is untouched by the attempt.
    r = _refresh(env, doc["refresh_token"])
    assert r.status == 200, r
    record("refresh", r)
