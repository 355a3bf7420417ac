"""Sign-in through Linux-PAM (pam_wrapper + pam_matrix, nss_wrapper for
the groups): no root, no /etc/pam.d change. The daemon runs with the
pam/test/emailauth stack; pamtester with the same stack must agree."""
import os
import subprocess
import threading
import time
import urllib.request

import jwt
import pytest

import rawhttp as rh
import secrets_scan
from authflow import Api, remember_tokens, write_users
from conftest import REPO
from pam_fixture import DEFAULT_USERS, PamUser, PamWrapper

PW = {u.name: u.password for u in DEFAULT_USERS}
for _pw in PW.values():
    secrets_scan.register(_pw)

ROLES = """roles = {
  admin   = { groups = [ "mail-admins" ];
              permissions = [ "emails:*", "admin:*" ]; };
  analyst = { groups = [ "analysts" ];
              permissions = [ "emails:read", "emails:label" ]; };
};
"""

SECURITY = "/usr/lib/x86_64-linux-gnu/security"

NO_LIMITS = ('limits = { auth = { rate = 0; }; api = { rate = 0; }; '
             'ops = { rate = 0; }; login = { pair = 0; user = 0; '
             'address = 0; }; };\n')


def stack_text(pw):
    with open(os.path.join(REPO, "pam", "test", "emailauth")) as f:
        return f.read().replace("@PASSDB@", str(pw.passdb))


def pam_config(tmpdir, backends='[ "pam" ]', workers="threads = 4; queue = 64;",
               extra=""):
    with open(os.path.join(tmpdir, "roles.conf"), "w") as f:
        f.write(ROLES)
    users = os.path.join(tmpdir, "users")
    if not os.path.exists(users):
        open(users, "w").close()
        os.chmod(users, 0o600)
    return """listen = { address = "127.0.0.1"; port = 0; timeout = 5; };
issuer = "https://auth.test";
state_dir = "%s/state";
backends = %s;
pam = { service = "emailauth"; };
file = { path = "users"; };
roles_file = "roles.conf";
tokens = { audience = "email-api"; access_ttl = 60; };
workers = { %s };
%s%s""" % (tmpdir, backends, workers, NO_LIMITS, extra)


@pytest.fixture
def pamd(tmp_path, daemon_factory):
    pw = PamWrapper(tmp_path / "pam")
    pw.write_service(stack_text(pw))

    def make(stack_prefix="", **kw):
        # pam_wrapper copies the service directory when the process
        # starts: the stack is written before.
        pw.write_service(stack_prefix + stack_text(pw))
        d = daemon_factory(config_text=pam_config(str(tmp_path), **kw),
                           env=pw.env())
        d.api = Api(d.port)
        d.pw = pw
        return d
    yield make
    pw.cleanup()


def roles_of(doc):
    remember_tokens(doc)
    return jwt.decode(doc["access_token"],
                      options={"verify_signature": False})["roles"]


def test_pam_user_gets_the_roles_of_his_nss_groups(pamd):
    d = pamd()
    st, _, doc = d.api.login("alice", PW["alice"])
    assert st == 200, doc
    assert roles_of(doc) == ["admin"]
    st, _, doc = d.api.login("carol", PW["carol"])
    assert st == 200 and roles_of(doc) == ["analyst"]
    assert d.api.login("dave", PW["dave"])[0] == 403


def same(a, b):
    (s1, h1, d1), (s2, h2, d2) = a, b
    d1, d2 = dict(d1), dict(d2)
    d1.pop("request_id")
    d2.pop("request_id")
    return s1 == s2 and d1 == d2 and \
        h1["WWW-Authenticate"] == h2["WWW-Authenticate"]


@pytest.mark.parametrize("user,password", [
    ("alice", "wrong"), ("nobody", "x"), ("alice", ""),
    ("erin", PW["erin"]), ("alice", PW["alice"] + "\x00"),
], ids=["wrong", "unknown", "empty", "account-check", "nul"])
def test_every_pam_refusal_is_the_same_401(pamd, user, password):
    d = pamd()
    ref = d.api.login("alice", "wrong")
    got = d.api.login(user, password)
    assert ref[0] == 401 and same(ref, got), (ref, got)


def pamtester(pw, user, password):
    p = subprocess.run(["pamtester", "emailauth", user, "authenticate",
                        "acct_mgmt"], input=password + "\n",
                       capture_output=True, text=True, env=pw.env())
    return p.returncode == 0


def test_pamtester_agrees_with_the_daemon(pamd):
    d = pamd()
    cases = [("alice", PW["alice"]), ("alice", "wrong"), ("bob", PW["bob"]),
             ("nobody", "x"), ("erin", PW["erin"]), ("dave", PW["dave"]),
             ("carol", PW["carol"]), ("carol", PW["alice"])]
    for user, password in cases:
        st = d.api.login(user, password)[0]
        # 200 and 403 mean PAM said yes (403: yes, but no role).
        assert (st in (200, 403)) == pamtester(d.pw, user, password), \
            (user, st)


def touch_later(path):
    """nss_wrapper reloads a file when its mtime (in seconds) changes."""
    t = time.time() + 2
    os.utime(path, (t, t))


def test_refresh_reads_the_groups_again(pamd):
    d = pamd()
    st, _, doc = d.api.login("bob", PW["bob"])
    remember_tokens(doc)
    assert st == 200
    d.pw.add_user(PamUser("bob", PW["bob"], ()))  # out of analysts
    touch_later(d.pw.group_file)
    st, _, _ = d.api.refresh(doc["refresh_token"])
    assert st == 401
    reasons = [e.get("reason") for e in d.events()
               if e.get("event") == "refresh"]
    assert reasons == ["no_role"]


def test_account_check_on_refresh(pamd):
    d = pamd()
    st, _, doc = d.api.login("alice", PW["alice"])
    remember_tokens(doc)
    d.pw.add_user(PamUser("alice", PW["alice"], ("mail-admins",),
                          service="disabled"))
    touch_later(d.pw.passdb)
    assert d.api.refresh(doc["refresh_token"])[0] == 401


def test_chain_asks_the_next_backend_only_for_unknown_users(pamd, tmp_path):
    # The file backend knows alice (with another password); PAM knows
    # alice and bob.
    write_users(str(tmp_path / "users"),
                {"alice": ("File-Only-Alice-9", "mail-admins")})
    secrets_scan.register("File-Only-Alice-9")
    d = pamd(backends='[ "file", "pam" ]')
    # bob: unknown to the file backend, so PAM is asked.
    st, _, doc = d.api.login("bob", PW["bob"])
    assert st == 200 and roles_of(doc) == ["analyst"]
    # alice with her PAM password: the file backend knows her and says
    # no; PAM is never asked.
    assert d.api.login("alice", PW["alice"])[0] == 401
    assert d.api.login("alice", "File-Only-Alice-9")[0] == 200
    ev = [e for e in d.events() if e.get("event") == "login"]
    assert [e.get("backend") for e in ev] == ["pam", "file", "file"]


def test_pam_failure_delay_does_not_sleep_workers(pamd):
    d = pamd(workers="threads = 2; queue = 256;",
             stack_prefix="auth     optional   %s/pam_faildelay.so "
             "delay=3000000\n" % SECURITY)
    results = []

    def fail():
        results.append(d.api.login("alice", "wrong")[0])

    t0 = time.time()
    threads = [threading.Thread(target=fail) for _ in range(50)]
    for t in threads:
        t.start()
    cheap = []
    while any(t.is_alive() for t in threads):
        c0 = time.time()
        with urllib.request.urlopen(d.url("/healthz"), timeout=10) as r:
            assert r.status == 200
        cheap.append(time.time() - c0)
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    assert results == [401] * 50
    # 50 failures on 2 workers, each asking for a 3 s delay: had libpam
    # slept, this would take 75 s. It takes less than one delay.
    assert elapsed < 3, elapsed
    assert not cheap or max(cheap) < 1


def test_full_queue_answers_503(pamd):
    # A stack that blocks for a while in a module (as a network module
    # might): pam_exec running sleep.
    d = pamd(workers="threads = 1; queue = 2;",
             stack_prefix="auth     required   %s/pam_exec.so quiet "
             "/bin/sleep 1\n" % SECURITY)
    results = []

    def one():
        r = rh.json_post(d.port, "/v1/login",
                         {"username": "alice", "password": PW["alice"]})
        results.append((r.status, r.headers.get("retry-after")))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses.count(503) >= 4, results
    assert all(ra is not None for s, ra in results if s == 503)
    assert set(statuses) <= {200, 503}
