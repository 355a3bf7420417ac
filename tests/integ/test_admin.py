"""The admin API: the role map with ETag/If-Match, the lock-out guard,
explain, sessions; every admin route refused to a non-admin."""
import json
import os
import subprocess

import pytest

import secrets_scan
from authflow import Api, config, remember_tokens, write_users
from conftest import binary

USERS = {
    "alice": ("Admin-Alice-Pass-5", "mail-admins"),
    "bob": ("Analyst-Bob-Pass-6", "analysts"),
    "nina": ("Reviewer-Nina-Pass-7", "reviewers"),
}
for _pw, _ in USERS.values():
    secrets_scan.register(_pw)


@pytest.fixture
def adm(tmp_path, daemon_factory):
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=config(str(tmp_path)))
    d.api = Api(d.port)
    d.tmp = tmp_path
    return d


def token(d, user):
    st, _, doc = d.api.login(user, USERS[user][0])
    assert st == 200, doc
    remember_tokens(doc)
    return doc


def call(d, method, path, tok=None, body=None, headers=None):
    h = dict(headers or {})
    if tok:
        h["Authorization"] = "Bearer " + tok
    return d.api.call(method, path, body=body, headers=h)


ADMIN_ROUTES = [
    ("GET", "/v1/admin/roles", None),
    ("PUT", "/v1/admin/roles/x", {"groups": [], "permissions": ["a:b"]}),
    ("DELETE", "/v1/admin/roles/analyst", None),
    ("GET", "/v1/admin/explain?user=bob", None),
    ("GET", "/v1/admin/sessions?user=bob", None),
    ("DELETE", "/v1/admin/sessions?user=bob", None),
    ("DELETE", "/v1/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA", None),
]


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES)
def test_admin_routes_refuse_an_analyst_and_no_token(adm, method, path,
                                                     body):
    bob = token(adm, "bob")["access_token"]
    st, h, doc = call(adm, method, path, bob, body, {"If-Match": "*"})
    assert st == 403, (path, doc)
    assert 'insufficient_scope' in h["WWW-Authenticate"]
    st, h, _ = call(adm, method, path, None, body, {"If-Match": "*"})
    assert st == 401


def test_map_a_group_then_its_member_signs_in(adm):
    alice = token(adm, "alice")["access_token"]
    assert adm.api.login("nina", USERS["nina"][0])[0] == 403
    st, h, doc = call(adm, "GET", "/v1/admin/roles", alice)
    assert st == 200 and set(doc["roles"]) == {"admin", "analyst"}
    etag = h["ETag"]
    body = {"groups": ["reviewers"], "permissions": ["emails:read"]}
    st, h2, doc = call(adm, "PUT", "/v1/admin/roles/reviewer", alice, body,
                       {"If-Match": etag})
    assert st == 200, doc
    assert doc == {"role": "reviewer", **body}
    assert h2["ETag"] != etag
    # nina now gets the role; explain says why.
    st, _, doc = adm.api.login("nina", USERS["nina"][0])
    remember_tokens(doc)
    assert st == 200 and doc["roles"] == ["reviewer"]
    st, _, ex = call(adm, "GET", "/v1/admin/explain?user=nina", alice)
    assert st == 200
    assert ex["groups"] == ["reviewers"] and ex["roles"] == ["reviewer"]
    assert ex["matches"] == [{"role": "reviewer", "group": "reviewers",
                              "entry": "reviewers"}]
    # The file on disk is valid and what the daemon now runs.
    p = subprocess.run([binary("emailauthd"), "-t", "-c", adm.conf],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "reviewer" in (adm.tmp / "roles.conf").read_text()
    ev = [e for e in adm.events() if e.get("event") == "admin_change"]
    assert ev[-1]["actor"] == "alice" and ev[-1]["role"] == "reviewer"
    assert ev[-1]["before"] == "null"
    assert json.loads(ev[-1]["after"]) == body


def test_stale_etag_is_refused(adm):
    alice = token(adm, "alice")["access_token"]
    _, h, _ = call(adm, "GET", "/v1/admin/roles", alice)
    etag = h["ETag"]
    b1 = {"groups": ["g1"], "permissions": ["emails:read"]}
    assert call(adm, "PUT", "/v1/admin/roles/one", alice, b1,
                {"If-Match": etag})[0] == 200
    # A second admin still holding the old ETag cannot overwrite it.
    st, h, doc = call(adm, "PUT", "/v1/admin/roles/two", alice, b1,
                      {"If-Match": etag})
    assert st == 412 and h["ETag"] != etag
    st, _, _ = call(adm, "PUT", "/v1/admin/roles/two", alice, b1)
    assert st == 428


def test_cannot_remove_the_last_admin_mapping(adm):
    alice = token(adm, "alice")["access_token"]
    _, h, _ = call(adm, "GET", "/v1/admin/roles", alice)
    st, _, doc = call(adm, "DELETE", "/v1/admin/roles/admin", alice,
                      headers={"If-Match": h["ETag"]})
    assert st == 409, doc
    st, _, doc = call(adm, "PUT", "/v1/admin/roles/admin", alice,
                      {"groups": [], "permissions": ["admin:*"]},
                      {"If-Match": h["ETag"]})
    assert st == 409
    # A role that is not the last admin mapping can go.
    st, _, _ = call(adm, "DELETE", "/v1/admin/roles/analyst", alice,
                    headers={"If-Match": h["ETag"]})
    assert st == 204
    assert adm.api.login("bob", USERS["bob"][0])[0] == 403


@pytest.mark.parametrize("body", [
    {"groups": ["x"], "permissions": ["Emails:Read"]},
    {"groups": ["x"], "permissions": []},
    {"groups": ["x"], "permissions": ["*"]},
    {"groups": ["cn=,dc=x"], "permissions": ["a:b"]},
    {"groups": ["x\u0001"], "permissions": ["a:b"]},
    {"groups": [1], "permissions": ["a:b"]},
    {"groups": ["x"], "permissions": ["a:b"], "extra": 1},
    {"groups": ["x"]},
])
def test_bad_role_bodies_are_400_and_change_nothing(adm, body):
    alice = token(adm, "alice")["access_token"]
    before = (adm.tmp / "roles.conf").read_text()
    st, _, _ = call(adm, "PUT", "/v1/admin/roles/bad", alice, body,
                    {"If-Match": "*"})
    assert st == 400
    assert (adm.tmp / "roles.conf").read_text() == before


def test_sessions_list_and_revoke(adm):
    alice = token(adm, "alice")["access_token"]
    b1, b2 = token(adm, "bob"), token(adm, "bob")
    st, _, doc = call(adm, "GET", "/v1/admin/sessions?user=bob", alice)
    assert st == 200 and len(doc["sessions"]) == 2
    sid = doc["sessions"][0]["sid"]
    assert call(adm, "DELETE", "/v1/admin/sessions/" + sid, alice)[0] == 204
    refreshed = [adm.api.refresh(b["refresh_token"])[0] for b in (b1, b2)]
    assert sorted(refreshed) == [200, 401]
    st, _, doc = call(adm, "DELETE", "/v1/admin/sessions?user=bob", alice)
    assert st == 200 and doc["revoked"] == 1
    assert call(adm, "GET", "/v1/admin/sessions?user=bob",
                alice)[2]["sessions"] == []
    assert call(adm, "DELETE", "/v1/admin/sessions/" + sid,
                alice)[0] in (204, 404)


# emailauthctl against the running daemon, with the admin's token in
# EMAILAUTH_TOKEN (never on the command line).

def ctl(d, tok, *args, token_file=None):
    env = dict(os.environ)
    env.pop("EMAILAUTH_TOKEN", None)
    if tok is not None:
        env["EMAILAUTH_TOKEN"] = tok
    env["EMAILAUTH_URL"] = "http://127.0.0.1:%d" % d.port
    extra = ["--token-file", token_file] if token_file else []
    return subprocess.run([binary("emailauthctl"), "-c", d.conf] + extra +
                          list(args), capture_output=True, text=True,
                          env=env, timeout=60)


def test_ctl_maps_a_group_and_explains(adm):
    alice = token(adm, "alice")["access_token"]
    assert adm.api.login("nina", USERS["nina"][0])[0] == 403
    p = ctl(adm, alice, "roles", "map", "reviewers", "analyst")
    assert p.returncode == 0, p.stderr
    assert "mapped 'reviewers' to 'analyst'" in p.stdout
    # Mapping again changes nothing and says so.
    p = ctl(adm, alice, "roles", "map", "Reviewers", "analyst")
    assert p.returncode == 0 and "already" in p.stdout
    st, _, doc = adm.api.login("nina", USERS["nina"][0])
    remember_tokens(doc)
    assert st == 200 and doc["roles"] == ["analyst"]
    p = ctl(adm, alice, "roles", "explain", "nina", "--json")
    assert p.returncode == 0, p.stderr
    ex = json.loads(p.stdout)
    assert ex["roles"] == ["analyst"]
    assert {"role": "analyst", "group": "reviewers",
            "entry": "reviewers"} in ex["matches"]
    p = ctl(adm, alice, "roles", "explain", "nina")
    assert "because" in p.stdout and "analyst" in p.stdout
    p = ctl(adm, alice, "--json", "roles", "list")
    assert "reviewers" in json.loads(p.stdout)["analyst"]["groups"]
    p = ctl(adm, alice, "roles", "unmap", "reviewers", "analyst")
    assert p.returncode == 0, p.stderr
    assert adm.api.login("nina", USERS["nina"][0])[0] == 403
    assert ctl(adm, alice, "roles", "unmap", "reviewers",
               "analyst").returncode == 1
    assert ctl(adm, alice, "roles", "map", "x", "nosuchrole").returncode == 1
    # The audit trail has each change, with who did it.
    changes = [e for e in adm.events() if e.get("event") == "admin_change"]
    assert [e["actor"] for e in changes[-2:]] == ["alice", "alice"]


def test_ctl_exit_codes(adm, tmp_path):
    alice = token(adm, "alice")["access_token"]
    bob = token(adm, "bob")["access_token"]
    # The last mapping granting admin:roles: 5 (conflict).
    p = ctl(adm, alice, "roles", "unmap", "mail-admins", "admin")
    assert p.returncode == 5, p.stderr
    assert "409" in p.stderr
    # An analyst's token: 4 (not allowed).
    assert ctl(adm, bob, "roles", "explain", "nina").returncode == 4
    assert ctl(adm, bob, "sessions", "list", "bob").returncode == 4
    assert ctl(adm, "not-a-token", "roles", "explain", "x").returncode == 4
    # No token: 1 with a clear message.
    p = ctl(adm, None, "roles", "explain", "nina")
    assert p.returncode == 1 and "EMAILAUTH_TOKEN" in p.stderr
    # A token file works like the variable.
    tf = tmp_path / "token"
    tf.write_text(alice + "\n")
    os.chmod(tf, 0o600)
    p = ctl(adm, None, "roles", "explain", "nina", token_file=str(tf))
    assert p.returncode == 0, p.stderr
    # The token never goes over plain http across a network.
    p = ctl(adm, alice, "--url", "http://192.0.2.1:8080", "roles", "explain",
            "nina")
    assert p.returncode == 1 and "loopback" in p.stderr
    # Bad usage: 2, and --help on every command: 0.
    assert ctl(adm, alice, "roles", "map", "onlyone").returncode == 2
    assert ctl(adm, alice, "sessions", "kill", "x").returncode == 2
    for cmd in ("passwd", "keys", "roles", "sessions", "token", "audit",
                "check-config"):
        p = ctl(adm, None, cmd, "--help")
        assert p.returncode == 0 and cmd in p.stdout, cmd
    # The daemon down: 3.
    adm.stop()
    assert ctl(adm, alice, "roles", "explain", "nina").returncode == 3


def test_ctl_sessions_list_and_revoke(adm):
    alice = token(adm, "alice")["access_token"]
    b1, b2 = token(adm, "bob"), token(adm, "bob")
    p = ctl(adm, alice, "sessions", "list", "bob", "--json")
    assert p.returncode == 0, p.stderr
    sessions = json.loads(p.stdout)["sessions"]
    assert len(sessions) == 2
    p = ctl(adm, alice, "sessions", "list", "bob")
    assert all(s["sid"] in p.stdout for s in sessions)
    # Revoking one stops its refresh token at once.
    p = ctl(adm, alice, "sessions", "revoke", sessions[0]["sid"])
    assert p.returncode == 0, p.stderr
    refreshed = [adm.api.refresh(b["refresh_token"]) for b in (b1, b2)]
    assert sorted(r[0] for r in refreshed) == [200, 401]
    for r in refreshed:
        if r[0] == 200:
            remember_tokens(r[2])
    p = ctl(adm, alice, "sessions", "revoke", "--user", "bob", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["revoked"] == 1
    # An unknown session: 1 (not found).
    assert ctl(adm, alice, "sessions", "revoke",
               "A" * 22).returncode == 1
