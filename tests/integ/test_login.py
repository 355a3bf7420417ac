"""Sign-in to token with file accounts: login, tokens checked by two
independent implementations (PyJWT via the JWKS, libjwt), refresh rotation
and reuse detection, logout, lost roles, kill -9, key rotation, and slow
logins not delaying the cheap routes."""
import base64
import json
import os
import signal
import statistics
import subprocess
import threading
import time
import urllib.request

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import rawhttp as rh
import secrets_scan
from authflow import USERS, Api, config, remember_tokens, write_users
from conftest import binary

ALICE_PW = USERS["alice"][0]


@pytest.fixture
def auth(tmp_path, daemon_factory):
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=config(str(tmp_path)))
    d.api = Api(d.port)
    d.tmp = tmp_path
    return d


def jwks_keys(api):
    st, _, doc = api.call("GET", "/.well-known/jwks.json")
    assert st == 200
    return {k["kid"]: k for k in doc["keys"]}


def pyjwt_verify(api, token):
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(jwks_keys(api)[header["kid"]])
    return jwt.decode(token, key.key, algorithms=["ES256"],
                      audience="email-api", issuer="https://auth.test")


def test_login_issues_tokens_that_pyjwt_accepts(auth):
    st, hdrs, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    assert st == 200, doc
    assert hdrs["Cache-Control"] == "no-store"
    assert set(doc) == {"access_token", "token_type", "expires_in",
                        "refresh_token", "refresh_expires_in", "roles",
                        "scope"}
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 60
    assert doc["refresh_expires_in"] == 300
    assert doc["roles"] == ["admin"]
    assert doc["scope"] == "admin:* emails:*"
    assert len(doc["refresh_token"]) == 43
    header = jwt.get_unverified_header(doc["access_token"])
    assert header == {"alg": "ES256", "kid": header["kid"], "typ": "JWT"}
    claims = pyjwt_verify(auth.api, doc["access_token"])
    assert claims["sub"] == "alice" and claims["aud"] == "email-api"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["roles"] == ["admin"] and claims["scope"] == doc["scope"]
    assert len(claims["jti"]) >= 22 and len(claims["sid"]) == 22
    # Tampering is caught by PyJWT too.
    h, p, s = doc["access_token"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(p + "=="))
    forged["roles"] = ["root"]
    p2 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=")
    with pytest.raises(jwt.InvalidSignatureError):
        pyjwt_verify(auth.api, ".".join([h, p2.decode(), s]))


def pem_of(jwk):
    key = jwt.PyJWK(jwk).key
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def test_libjwt_accepts_ours_and_we_accept_libjwts(auth, tmp_path):
    st, _, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    kid = jwt.get_unverified_header(doc["access_token"])["kid"]
    pub = tmp_path / "pub.pem"
    pub.write_bytes(pem_of(jwks_keys(auth.api)[kid]))
    p = subprocess.run([binary("tests/jwt_interop"), "verify", "ES256",
                        str(pub)], input=doc["access_token"].encode(),
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sub"] == "alice"
    # libjwt checks the alg we pinned: the same token under RS256 fails.
    p = subprocess.run([binary("tests/jwt_interop"), "verify", "RS256",
                        str(pub)], input=doc["access_token"].encode(),
                       capture_output=True)
    assert p.returncode != 0
    # A token libjwt makes with our private key passes our verifier.
    claims = pyjwt_verify(auth.api, doc["access_token"])
    claims["jti"] = "libjwt-made"
    p = subprocess.run([binary("tests/jwt_interop"), "sign", "ES256",
                        str(auth.tmp / "state" / "keys" / "current.pem"),
                        kid], input=json.dumps(claims).encode(),
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    theirs = p.stdout.decode().strip()
    secrets_scan.register(theirs)
    assert theirs != doc["access_token"]
    st, _, info = auth.api.userinfo(theirs)
    assert st == 200 and info["sub"] == "alice"


def same_refusal(a, b):
    (s1, h1, d1), (s2, h2, d2) = a, b
    d1, d2 = dict(d1), dict(d2)
    d1.pop("request_id")
    d2.pop("request_id")
    keys1 = sorted(k for k in h1.keys() if k not in ("Date", "X-Request-Id"))
    keys2 = sorted(k for k in h2.keys() if k not in ("Date", "X-Request-Id"))
    return s1 == s2 and d1 == d2 and keys1 == keys2 and \
        h1["WWW-Authenticate"] == h2["WWW-Authenticate"]


@pytest.mark.parametrize("user,password", [
    ("alice", "wrong-password"),
    ("nosuchuser", ALICE_PW),
    ("alice", ""),
    ("alice", "File-Alice\x00-Pass-41"),
    ("alice", ALICE_PW + "x"),
    ("ALICE", ALICE_PW),
    ("alice\n", ALICE_PW),
    ("a" * 257, ALICE_PW),
    ("", ALICE_PW),
    ("alice", "p" * 1025),
], ids=["wrong", "unknown", "empty", "nul", "longer", "case", "control",
        "long-user", "empty-user", "long-pass"])
def test_every_bad_credential_gets_the_same_401(auth, user, password):
    ref = auth.api.login("alice", "wrong-password")
    got = auth.api.login(user, password)
    assert ref[0] == 401
    assert same_refusal(ref, got), (ref, got)
    assert got[2]["detail"] == "the user name or password is not correct"


def test_user_without_role_gets_403(auth):
    st, _, doc = auth.api.login("dave", USERS["dave"][0])
    assert st == 403 and "refresh_token" not in doc
    st, _, doc = auth.api.login("bob", USERS["bob"][0])
    remember_tokens(doc)
    assert st == 200 and doc["roles"] == ["analyst"]
    assert doc["scope"] == "emails:label emails:read"


def test_refresh_rotates_and_reuse_kills_the_session(auth):
    _, _, first = auth.api.login("alice", ALICE_PW)
    remember_tokens(first)
    st, _, second = auth.api.refresh(first["refresh_token"])
    remember_tokens(second)
    assert st == 200 and second["refresh_token"] != first["refresh_token"]
    a1 = pyjwt_verify(auth.api, first["access_token"])
    a2 = pyjwt_verify(auth.api, second["access_token"])
    assert a1["sid"] == a2["sid"] and a1["jti"] != a2["jti"]
    # The old one is refused, and presenting it revokes the session ...
    st, hdrs, doc = auth.api.refresh(first["refresh_token"])
    assert st == 401 and hdrs["WWW-Authenticate"] == \
        'Bearer error="invalid_token"'
    # ... so the newest one is dead too, and so is its access token.
    assert auth.api.refresh(second["refresh_token"])[0] == 401
    assert auth.api.userinfo(second["access_token"])[0] == 401
    ev = [e for e in auth.events() if e.get("event") == "refresh"]
    assert any(e.get("reason") == "token_reused" for e in ev)


def test_logout_revokes_and_is_idempotent(auth):
    _, _, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    assert auth.api.userinfo(doc["access_token"])[0] == 200
    assert auth.api.logout(doc["refresh_token"])[0] == 204
    assert auth.api.logout(doc["refresh_token"])[0] == 204
    assert auth.api.logout("x" * 43)[0] == 204
    assert auth.api.refresh(doc["refresh_token"])[0] == 401
    assert auth.api.userinfo(doc["access_token"])[0] == 401


def test_userinfo(auth):
    _, _, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    st, _, info = auth.api.userinfo(doc["access_token"])
    assert st == 200
    assert info == {"sub": "alice", "roles": ["admin"],
                    "scope": "admin:* emails:*"}
    st, hdrs, _ = auth.api.call("GET", "/v1/userinfo")
    assert st == 401 and hdrs["WWW-Authenticate"].startswith("Bearer")
    st, hdrs, _ = auth.api.userinfo(doc["access_token"][:-4] + "AAAA")
    assert st == 401 and 'error="invalid_token"' in hdrs["WWW-Authenticate"]


def test_lost_roles_or_account_stop_refresh(auth):
    tokens = {}
    for u in ("alice", "bob"):
        _, _, tokens[u] = auth.api.login(u, USERS[u][0])
        remember_tokens(tokens[u])
    users = dict(USERS)
    del users["alice"]                       # removed from the file
    users["bob"] = (USERS["bob"][0], "staff")  # no mapped group left
    write_users(str(auth.tmp / "users"), users)
    n = len(auth.events())
    auth.signal(signal.SIGHUP)
    auth.wait_event("reloaded", after=n)
    for u in ("alice", "bob"):
        st, _, _ = auth.api.refresh(tokens[u]["refresh_token"])
        assert st == 401, u
    reasons = {e.get("user"): e.get("reason") for e in auth.events()
               if e.get("event") == "refresh"}
    assert reasons == {"alice": "unknown_user", "bob": "no_role"}


def test_sessions_survive_kill_9(auth):
    _, _, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    auth.proc.send_signal(signal.SIGKILL)
    auth.proc.wait()
    auth.start()
    auth.api = Api(auth.port)
    st, _, doc2 = auth.api.refresh(doc["refresh_token"])
    remember_tokens(doc2)
    assert st == 200


def test_key_rotation_keeps_old_tokens_valid(auth):
    _, _, old = auth.api.login("alice", ALICE_PW)
    remember_tokens(old)
    kid_old = jwt.get_unverified_header(old["access_token"])["kid"]
    ctl = [binary("emailauthctl"), "-c", auth.conf]
    p = subprocess.run(ctl + ["keys", "list", "--json"], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    keys = json.loads(p.stdout)
    assert [k["slot"] for k in keys] == ["current", "next"]
    next_kid = keys[1]["kid"]
    assert next_kid in jwks_keys(auth.api)  # published before use
    subprocess.run(ctl + ["keys", "rotate"], check=True, capture_output=True)
    n = len(auth.events())
    auth.signal(signal.SIGHUP)
    auth.wait_event("reloaded", after=n)
    _, _, new = auth.api.login("alice", ALICE_PW)
    remember_tokens(new)
    assert jwt.get_unverified_header(new["access_token"])["kid"] == next_kid
    assert set(jwks_keys(auth.api)) >= {kid_old, next_kid}
    assert len(jwks_keys(auth.api)) == 3
    assert auth.api.userinfo(old["access_token"])[0] == 200
    assert auth.api.userinfo(new["access_token"])[0] == 200
    # A second rotation now would retire kid_old while its tokens live.
    p = subprocess.run(ctl + ["keys", "rotate"], capture_output=True,
                       text=True)
    assert p.returncode == 1 and "force" in p.stderr


def test_discovery_document(auth):
    st, _, doc = auth.api.call("GET", "/.well-known/openid-configuration")
    assert st == 200
    assert doc["issuer"] == "https://auth.test"
    assert doc["jwks_uri"] == "https://auth.test/.well-known/jwks.json"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


def test_slow_logins_do_not_delay_cheap_routes(auth):
    login_times, cheap_times = [], []

    def login():
        t0 = time.time()
        st, _, doc = auth.api.login("alice", ALICE_PW)
        remember_tokens(doc)
        login_times.append((st, time.time() - t0))

    threads = [threading.Thread(target=login) for _ in range(20)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for path in ("/healthz", "/.well-known/jwks.json"):
            t0 = time.time()
            with urllib.request.urlopen(auth.url(path), timeout=10) as r:
                assert r.status == 200
            cheap_times.append(time.time() - t0)
    for t in threads:
        t.join()
    assert all(st == 200 for st, _ in login_times)
    # Ratios, not absolute times: the cheap routes answer far faster than
    # the sign-ins queued on the worker pool.
    assert len(cheap_times) >= 5
    assert max(cheap_times) < statistics.median(t for _, t in login_times) / 2


def test_logs_carry_no_secrets(auth):
    _, _, doc = auth.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    auth.api.refresh(doc["refresh_token"])
    auth.api.login("alice", "wrong-password")
    text = auth.log_text()
    for s in (ALICE_PW, doc["access_token"], doc["refresh_token"],
              "wrong-password"):
        assert s not in text
    assert '"event":"login"' in text
