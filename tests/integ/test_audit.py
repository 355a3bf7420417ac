"""The audit trail: one hash-chained JSON line per security event, in a
0600 file; `emailauthctl audit verify` finds an edited, deleted or cut
line and names it."""
import json
import os
import signal
import subprocess

import pytest

import secrets_scan
from authflow import Api, config, remember_tokens, write_users
from conftest import binary

USERS = {
    "alice": ("Audit-Alice-Pass-3", "mail-admins"),
    "bob": ("Audit-Bob-Pass-4", "analysts"),
}
for _pw, _ in USERS.values():
    secrets_scan.register(_pw)

# One failure per user and address before the delays start.
LIMITS = """limits = { auth = { rate = 0; }; api = { rate = 0; };
           ops = { rate = 0; };
           login = { pair = 1; user = 0; address = 0; delay = 30; }; };
"""


def audit_config(tmp_path, extra=""):
    return config(str(tmp_path), extra=LIMITS + 'audit = { file = "%s"; };\n'
                  % (tmp_path / "audit.log") + extra)


@pytest.fixture
def aud(tmp_path, daemon_factory):
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=audit_config(tmp_path))
    d.api = Api(d.port)
    d.audit = tmp_path / "audit.log"
    return d


def verify(*files):
    return subprocess.run([binary("emailauthctl"), "audit", "verify"] +
                          [str(f) for f in files], capture_output=True,
                          text=True)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_every_security_event_is_chained(aud, tmp_path):
    api = aud.api
    st, _, doc = api.login("alice", USERS["alice"][0])
    assert st == 200
    remember_tokens(doc)
    alice = doc["access_token"]
    assert api.login("bob", "Wrong-Pass-1")[0] == 401
    assert api.login("bob", "Wrong-Pass-2")[0] == 429
    st, _, old = api.login("bob", USERS["bob"][0])
    assert st in (200, 429)
    st, _, b = api.login("alice", USERS["alice"][0])
    remember_tokens(b)
    st, _, new = api.refresh(b["refresh_token"])
    assert st == 200
    remember_tokens(new)
    assert api.refresh(b["refresh_token"])[0] == 401      # reuse
    st, _, c = api.login("alice", USERS["alice"][0])
    remember_tokens(c)
    assert api.logout(c["refresh_token"])[0] == 204
    st, h, _ = api.call("GET", "/v1/admin/roles",
                        headers={"Authorization": "Bearer " + alice})
    st, _, _ = api.call("PUT", "/v1/admin/roles/reviewer",
                        {"groups": ["reviewers"],
                         "permissions": ["emails:read"]},
                        {"Authorization": "Bearer " + alice,
                         "If-Match": h["ETag"]})
    assert st == 200
    # A key rotation by the command line, then the daemon picks it up.
    p = subprocess.run([binary("emailauthctl"), "-c", aud.conf, "keys",
                        "rotate", "--force"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    n = len(aud.events())
    aud.signal(signal.SIGHUP)
    aud.wait_event("reloaded", after=n)

    assert os.stat(aud.audit).st_mode & 0o777 == 0o600
    ev = lines(aud.audit)
    assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1))
    kinds = {(e["event"], e.get("outcome"), e.get("reason")) for e in ev}
    for want in [("started", None, None),
                 ("login", "success", None),
                 ("login", "failure", "bad_credentials"),
                 ("login", "failure", "throttled"),
                 ("refresh", "success", None),
                 ("refresh", "failure", "token_reused"),
                 ("logout", "success", None),
                 ("key_rotated", None, None),
                 ("signing_key_changed", None, None),
                 ("reloaded", None, None)]:
        assert want in kinds, (want, kinds)
    change = [e for e in ev if e["event"] == "admin_change"][-1]
    assert change["actor"] == "alice" and change["before"] == "null"
    assert json.loads(change["after"])["groups"] == ["reviewers"]
    rot = [e for e in ev if e["event"] == "key_rotated"][-1]
    assert rot["old_kid"] != rot["kid"]
    text = aud.audit.read_text()
    for secret in [USERS["alice"][0], USERS["bob"][0], alice,
                   b["refresh_token"], new["refresh_token"]]:
        assert secret not in text
    p = verify(aud.audit)
    assert p.returncode == 0, p.stderr
    assert "OK: %d lines" % len(ev) in p.stdout

    # A restart continues the chain.
    aud.stop()
    aud.start()
    st, _, doc = aud.api.__class__(aud.port).login("alice",
                                                   USERS["alice"][0])
    remember_tokens(doc)
    aud.stop()
    ev2 = lines(aud.audit)
    assert ev2[len(ev)]["seq"] == len(ev) + 1
    assert verify(aud.audit).returncode == 0


def tamper(src, dst, fn):
    out = fn(src.read_text().splitlines(keepends=True))
    dst.write_text("".join(out))
    return dst


def test_verify_names_the_altered_or_missing_line(aud, tmp_path):
    for _ in range(3):
        assert aud.api.login("bob", "Wrong-Pass-3")[0] in (401, 429)
        st, _, doc = aud.api.login("alice", USERS["alice"][0])
        remember_tokens(doc)
    aud.stop()
    n = len(aud.audit.read_text().splitlines())
    assert n >= 6 and verify(aud.audit).returncode == 0

    def edit(ls):
        ls[3] = ls[3].replace('"user":"bob"', '"user":"eve"').replace(
            '"user":"alice"', '"user":"eve"')
        return ls

    p = verify(tamper(aud.audit, tmp_path / "edited", edit))
    assert p.returncode == 1 and "edited:4:" in p.stderr, p.stderr

    p = verify(tamper(aud.audit, tmp_path / "deleted",
                      lambda ls: ls[:3] + ls[4:]))
    assert p.returncode == 1 and "deleted:4:" in p.stderr, p.stderr

    p = verify(tamper(aud.audit, tmp_path / "cut",
                      lambda ls: ls[:-1] + [ls[-1][:40]]))
    assert p.returncode == 1 and "cut:%d:" % n in p.stderr, p.stderr

    # An edit that recomputes the line's own hash still breaks the next.
    def rehash(ls):
        import hashlib
        line = ls[2].rstrip("\n")
        body = line[:line.rindex(',"hash":"')]
        body = body.replace('"event":"', '"event":"x', 1)
        h = hashlib.sha256(body.encode()).hexdigest()
        ls[2] = body + ',"hash":"%s"}\n' % h
        return ls

    p = verify(tamper(aud.audit, tmp_path / "rehashed", rehash))
    assert p.returncode == 1 and "rehashed:4:" in p.stderr, p.stderr


def test_rotated_files_verify_together(aud, tmp_path):
    st, _, doc = aud.api.login("alice", USERS["alice"][0])
    remember_tokens(doc)
    os.rename(aud.audit, tmp_path / "audit.log.1")
    n = len(aud.events())
    aud.signal(signal.SIGHUP)
    aud.wait_event("reloaded", after=n)
    st, _, doc = aud.api.login("alice", USERS["alice"][0])
    remember_tokens(doc)
    aud.stop()
    assert aud.audit.exists()
    p = verify(tmp_path / "audit.log.1", aud.audit)
    assert p.returncode == 0, p.stderr
    # Alone, the new file says where its chain starts.
    p = verify(aud.audit)
    assert p.returncode == 0 and "starts at seq" in p.stderr
    # In the wrong order, the chain does not hold.
    assert verify(aud.audit, tmp_path / "audit.log.1").returncode == 1


@pytest.mark.parametrize("case", ["mode", "symlink", "broken_tail"])
def test_unsafe_or_broken_audit_file_refused(tmp_path, daemon_factory, case):
    path = tmp_path / "audit.log"
    if case == "mode":
        path.write_text("")
        os.chmod(path, 0o644)
    elif case == "symlink":
        (tmp_path / "elsewhere").write_text("")
        os.chmod(tmp_path / "elsewhere", 0o600)
        os.symlink(tmp_path / "elsewhere", path)
    else:
        path.write_text('{"not":"a chain line"}\n')
        os.chmod(path, 0o600)
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=audit_config(tmp_path), start=False)
    with pytest.raises(RuntimeError):
        d.start()
    assert d.proc.wait(10) != 0
    assert "audit file" in d.log_text()
