"""Attack class revocation: getting around the revocation feed (issue 11).

- Reading the feed from outside listen.revocations_allow by claiming an
  allowed address in X-Forwarded-For (no trusted proxy is configured), or
  from another loopback address than the one allowed.
- Odd `since` values (injection shapes, NUL, huge, repeated): 400, the
  daemon unharmed.
- Replaying a logged-out access token at the email API, on every route
  (it was verified and cached before the logout): 401 everywhere once the
  revocation arrived, and email 3 still there.
"""
import time

import pytest

import rawhttp as rh
from test_revocation import (DEADLINE, FEED, INVALID, make_stack,
                             refused_401, wait_status)


@pytest.fixture
def only_one(tmp_path, daemon_factory):
    """A daemon whose feed is open to 127.0.0.1 alone."""
    s = make_stack(tmp_path, daemon_factory,
                   'revocations_allow = [ "127.0.0.1/32" ];')
    try:
        yield s
    finally:
        s.stop()


def test_forwarded_for_does_not_open_the_feed(only_one):
    port = only_one.daemon.port
    assert rh.send(port, "GET", FEED, {"Connection": "close"}).status == 200
    for xff in ("127.0.0.1", "127.0.0.1, 127.0.0.1", "::1"):
        r = rh.send(port, "GET", FEED, {"Connection": "close",
                                        "X-Forwarded-For": xff},
                    source="127.0.0.2")
        p = rh.assert_problem(r, 401)
        assert r.headers["www-authenticate"] == 'Bearer realm="emailauth"'
        assert "revoked" not in p["detail"]
    # Another loopback address is not the one allowed.
    rh.assert_problem(rh.send(port, "GET", FEED, {"Connection": "close"},
                              source="127.0.0.2"), 401)


@pytest.mark.parametrize("query", [
    "?since=1;DROP%20TABLE%20sessions", "?since=1%00", "?since=1%0a",
    "?since=" + "9" * 4000, "?since=%31", "?since[]=1",
    "?since=1&since=1", "?since=%E2%80%8B1",
])
def test_odd_since_values(only_one, query):
    r = rh.send(only_one.daemon.port, "GET", FEED + query,
                {"Connection": "close"})
    if query in ("?since=%31", "?since[]=1"):
        # %31 is "1"; since[] is another parameter: both are fine.
        assert r.status == 200, r
    else:
        rh.assert_problem(r, 400)
    # Still serving, the sessions table still there.
    doc = rh.send(only_one.daemon.port, "GET", FEED + "?since=0",
                  {"Connection": "close"}).json()
    assert doc["more"] is False


def test_replaying_a_logged_out_token(only_one):
    s = only_one
    api = s.guarded()
    access, refresh, _ = s.session("alice")
    routes = [("GET", "/api/emails"), ("GET", "/api/emails/3"),
              ("POST", "/api/emails/3/labels"), ("DELETE", "/api/emails/3")]
    assert api.request("GET", "/api/emails/3", access).status == 200
    assert s.auth.logout(refresh)[0] == 204
    r, took = wait_status(api, access, 401)
    refused_401(r)
    assert took < DEADLINE
    for method, path in routes * 3:
        kw = {"json_body": {"label": "x"}} if method == "POST" else {}
        r = api.request(method, path, access, **kw)
        refused_401(r)
        assert r.headers["www-authenticate"] == INVALID
    # Nothing happened to email 3.
    other, _, _ = s.session("alice")
    assert api.request("GET", "/api/emails/3", other).status == 200
    time.sleep(0)
