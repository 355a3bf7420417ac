"""GET /v1/verify (forward auth) at the daemon itself: tokens whose
claims could forge the X-Auth-* headers, and ambiguous requests."""
import time

import jwt
import pytest

import secrets_scan
from authflow import USERS, remember_tokens
from test_login import auth  # noqa: F401 (fixture)


DROP = object()


def forge(auth, **claims):
    """A token signed with the daemon's own key (what only a key thief or
    a bug could make), with the given claims over a valid base."""
    _, _, doc = auth.api.login("bob", USERS["bob"][0])
    secrets_scan.register(doc["access_token"])
    base = jwt.decode(doc["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(doc["access_token"])["kid"]
    base.update(claims)
    for k in [k for k, v in claims.items() if v is DROP]:
        del base[k]
    with open(auth.tmp / "state" / "keys" / "current.pem", "rb") as f:
        key = f.read()
    tok = jwt.encode(base, key, algorithm="ES256", headers={"kid": kid})
    return secrets_scan.register(tok)


def verify(auth, token, headers=None):
    h = {"Authorization": "Bearer " + token}
    h.update(headers or {})
    return auth.api.call("GET", "/v1/verify", headers=h)


def test_verify_passes_identity(auth):
    tok = forge(auth)
    st, h, _ = verify(auth, tok, {"X-Required-Permission": "emails:read"})
    assert st == 200 and h["X-Auth-User"] == "bob"
    assert h["X-Auth-Roles"] == "analyst"


@pytest.mark.parametrize("claims", [
    {"sub": "bob\r\nX-Auth-Roles: admin"},
    {"sub": "bob\x01"},
    {"name": "Bob\nX-Auth-User: admin"},
    {"name": 5},
    {"email": ["a@example.com"]},
    {"roles": ["admin,analyst"]},
    {"roles": ["analyst\r\n"]},
    {"roles": "admin"},
    {"scope": 7},
], ids=["crlf-sub", "ctl-sub", "crlf-name", "int-name", "list-email",
        "comma-role", "crlf-role", "string-roles", "int-scope"])
def test_claims_that_would_forge_headers_are_refused(auth, claims):
    st, h, _ = verify(auth, forge(auth, **claims))
    assert st == 401, (claims, dict(h))
    assert "X-Auth-User" not in h


def test_repeated_required_permission_is_refused(auth):
    tok = forge(auth)
    import urllib.request
    req = urllib.request.Request(auth.url("/v1/verify"))
    req.add_header("Authorization", "Bearer " + tok)
    # urllib keeps one value per name; send the repeat on a raw socket.
    import rawhttp as rh
    raw = ("GET /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "X-Required-Permission: emails:read\r\n"
           "X-Required-Permission: emails:delete\r\n\r\n" % tok).encode()
    r = rh.request(auth.port, raw)
    rh.assert_problem(r, 400)
    raw = ("GET /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Authorization: Bearer x\r\n\r\n" % tok).encode()
    r = rh.request(auth.port, raw)
    rh.assert_problem(r, 401)


def test_expired_token_leaves_the_cache(auth):
    tok = forge(auth, exp=int(time.time()) + 2)
    assert verify(auth, tok)[0] == 200  # cached now
    # leeway is 30 s in this config: a token 40 s past exp is refused,
    # cached or not.
    old = forge(auth, exp=int(time.time()) - 40)
    assert verify(auth, old)[0] == 401


def wait_status(auth, tok, want, seconds=5):
    deadline = time.time() + seconds
    while time.time() < deadline:
        st = verify(auth, tok)[0]
        if st == want:
            return st
        time.sleep(0.1)
    return st


def test_a_logged_out_sessions_token_is_refused_within_seconds(auth):
    st, _, doc = auth.api.login("bob", USERS["bob"][0])
    remember_tokens(doc)
    tok = doc["access_token"]
    assert verify(auth, tok)[0] == 200  # cached now
    t0 = time.time()
    assert auth.api.logout(doc["refresh_token"])[0] == 204
    assert wait_status(auth, tok, 401) == 401
    assert time.time() - t0 < 5
    # Another session of the same user is untouched.
    st, _, doc2 = auth.api.login("bob", USERS["bob"][0])
    remember_tokens(doc2)
    assert verify(auth, doc2["access_token"])[0] == 200
    # An admin's revoke-all ends that one too.
    _, _, adm = auth.api.login("alice", USERS["alice"][0])
    remember_tokens(adm)
    st, _, _ = auth.api.call(
        "DELETE", "/v1/admin/sessions?user=bob",
        headers={"Authorization": "Bearer " + adm["access_token"]})
    assert st == 200
    assert wait_status(auth, doc2["access_token"], 401) == 401


def test_a_token_without_a_session_is_refused(auth):
    tok = forge(auth, sid=DROP)
    assert "sid" not in jwt.decode(tok, options={"verify_signature": False})
    assert verify(auth, tok)[0] == 401
