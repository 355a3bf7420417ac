"""Attack class leaks: secrets put everywhere a request can carry them,
and then looked for in every answer and every log line.

Each secret used here is registered with the secrets scan (and, where
the logs are JSON, in its JSON-escaped spellings too); each test looks
in the bodies it got and in the daemon's and the email API's logs right
away, so a hit names its request. The last test runs the secrets scan
over everything this run has logged and recorded so far (this file runs
last: the classes before it are covered), with a control that the scan
does find a planted secret; pytest_sessionfinish runs it once more at
the very end.
"""
import base64
import json
import os
import subprocess
import tempfile

import pytest

import secrets_scan
from attackflow import assert_no_leak, bearer, login, post_json, send
from authflow import write_users
from conftest import LOGDIR, Daemon, binary
from emailapiflow import USERS, Stack, daemon_config
from ldapflow import USERS as LDAP_USERS
from ldapflow import ldap_config
from slapd_fixture import SERVICE_PASSWORD


def register(s):
    """The secret and the spellings a JSON log line would give it."""
    for v in (s, json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]):
        secrets_scan.register(v)
    return s


ALICE_PW = USERS["alice"][0]
WRONG = register("Leak-Wrong-Pass-77")
ODD = register('P\u00e4ss"w\u00f6rd\\with-Escapes\u2028-9')
CANARY = register("Leak-Canary-Field-31")


@pytest.fixture(scope="module")
def env(module_daemons):
    def build(tmp):
        write_users(os.path.join(tmp, "users"), USERS)
        return daemon_config(tmp)

    d = module_daemons(build, name="leakd")
    st = Stack(d.tmp, d)
    st.api = st.emailapi()
    st.private_key_pem()  # registers the key's lines as secrets
    try:
        yield st
    finally:
        st.stop()


def assert_logs_clean(*procs):
    """No registered secret in these processes' logs (now)."""
    secrets = list(secrets_scan._secrets)
    for p in procs:
        text = p.log_text()
        for s in secrets:
            assert s not in text, "%s log carries a secret (%d chars)" % (
                os.path.basename(p.log), len(s))


def checked(r, *inputs):
    """No input and no secret in the answer; a 200 sign-in or refresh
    carries its own two tokens, and nothing else."""
    assert r is not None, "no answer"
    body = r.body
    if r.status == 200 and b"refresh_token" in body:
        doc = r.json()
        own = {doc.pop("access_token"), doc.pop("refresh_token")}
        inputs = [i for i in inputs if i not in own]
        body = json.dumps(doc).encode()
    assert_no_leak(body, inputs)
    return r


# ----------------------------------------------------------------------


def test_passwords_anywhere_in_a_sign_in(env):
    """Right, wrong and oddly escaped passwords, in the right field, in an
    unknown one, in broken JSON, in the query string, in a Basic header,
    in a cookie: no answer and no log line carries them."""
    d = env.daemon
    p = d.port
    r = checked(login(p, "alice", ALICE_PW))
    assert r.status == 200
    for pw in (WRONG, ODD):
        checked(login(p, "alice", pw), pw)
        checked(login(p, "nosuchuser", pw), pw)
    checked(post_json(p, "/v1/login", {"username": "alice",
                                       "password": ALICE_PW,
                                       CANARY: ALICE_PW}), ALICE_PW, CANARY)
    checked(post_json(p, "/v1/login",
                      ('{"username":"alice","password":"%s' % WRONG)
                      .encode()), WRONG)
    checked(post_json(p, "/v1/login",
                      ('{"username":"alice","password":"%s","password":"%s"}'
                       % (WRONG, ALICE_PW)).encode()), WRONG, ALICE_PW)
    checked(post_json(p, "/v1/login", {"username": ALICE_PW,
                                       "password": 1}), ALICE_PW)
    checked(send(p, "POST", "/v1/login?password=" + WRONG + "&u=alice",
                 {"Content-Type": "application/json"},
                 json.dumps({"username": "alice", "password": WRONG})),
            WRONG)
    checked(send(p, "GET", "/v1/userinfo?access_token=" + CANARY), CANARY)
    basic = register(base64.b64encode(
        ("alice:" + ALICE_PW).encode()).decode())
    for path in ("/v1/userinfo", "/v1/verify"):
        checked(send(p, "GET", path, {"Authorization": "Basic " + basic}),
                basic)
    checked(send(p, "GET", "/healthz", {"Cookie": "session=" + CANARY}),
            CANARY)
    checked(send(p, "POST", "/v1/login", {"Content-Type": "text/plain"},
                 "username=alice&password=" + WRONG), WRONG)
    assert_logs_clean(d)


def test_tokens_anywhere(env):
    """Access and refresh tokens, good, bad and revoked, at every route
    that takes one: not in the answers (but their own 200s), not in the
    logs."""
    d = env.daemon
    p = d.port
    r = login(p, "bob", USERS["bob"][0])
    doc = r.json()
    access, refresh = doc["access_token"], doc["refresh_token"]
    for path in ("/v1/userinfo", "/v1/verify"):
        assert checked(bearer(p, path, access), access, refresh).status == \
            200
        bad = register(access[:-6] + "AAAAAA")
        checked(bearer(p, path, bad), bad)
    r = checked(post_json(p, "/v1/refresh", {"refresh_token": refresh}),
                refresh, access)
    assert r.status == 200
    new = r.json()
    # The old refresh token again (reuse: the session dies), a made-up
    # one, and logout with each.
    for t in (refresh, register("x" * 43), new["refresh_token"]):
        checked(post_json(p, "/v1/refresh", {"refresh_token": t}), t)
        checked(post_json(p, "/v1/logout", {"refresh_token": t}), t)
    # The email API: good, forged and expired tokens; and a refresh token
    # offered as a Bearer.
    for t in (new["access_token"], access + "x", refresh,
              register(access.replace(".", "..", 1))):
        for method, path in (("GET", "/api/emails"),
                             ("DELETE", "/api/emails/999"),
                             ("POST", "/api/emails/1/labels")):
            r = env.api.request(method, path, t,
                                json_body={"label": CANARY}
                                if method == "POST" else None)
            checked(r, t, CANARY)
    assert_logs_clean(d)
    assert_logs_clean(env.api)


def test_private_key_never_published(env):
    """The JWKS publishes public parts only; no route serves a line of
    the private key, and neither log has one."""
    p = env.daemon.port
    r = checked(send(p, "GET", "/.well-known/jwks.json"))
    keys = r.json()["keys"]
    assert keys
    for k in keys:
        assert set(k) <= {"kty", "crv", "x", "y", "n", "e", "kid", "alg",
                          "use"}, k
    for path in ("/.well-known/openid-configuration", "/healthz", "/readyz",
                 "/metrics"):
        checked(send(p, "GET", path))
    assert_logs_clean(env.daemon, env.api)


def test_metrics_name_no_user_and_no_secret(env):
    r = checked(send(env.daemon.port, "GET", "/metrics"))
    text = r.body.decode()
    for s in ("alice", "bob", "nosuchuser", ALICE_PW):
        assert s not in text


def test_ldap_secrets_in_failures(slapd_factory, tmp_path):
    """The LDAP backend when it fails: a wrong service password, a server
    that went away, a user's wrong password. Neither the service password
    nor a user's is in an answer, a log line, the command line or the
    environment of the process."""
    own = slapd_factory()
    wrong_service = register("Wrong-Service-Leak-5")
    alice = LDAP_USERS["alice"]
    d = Daemon(str(tmp_path), ldap_config(tmp_path, own,
                                          bind_password=wrong_service))
    try:
        d.start()
        r = checked(login(d.port, "alice", alice.password), alice.password,
                    wrong_service)
        assert r.status == 503, r
    finally:
        d.stop()
    d2 = Daemon(str(tmp_path), ldap_config(tmp_path, own), name="ldapd2")
    try:
        d2.start()
        r = checked(login(d2.port, "alice", alice.password))
        assert r.status == 200, r
        checked(login(d2.port, "alice", WRONG), WRONG)
        for name in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (d2.proc.pid, name), "rb") as f:
                assert SERVICE_PASSWORD.encode() not in f.read()
        own.stop()
        r = checked(login(d2.port, "bob", LDAP_USERS["bob"].password),
                    LDAP_USERS["bob"].password)
        assert r.status == 503, r
    finally:
        d2.stop()
    assert_logs_clean(d, d2)


def test_config_check_quotes_no_secret(tmp_path, slapd_factory):
    """`emailauthd -t` on a config whose secret file is readable by others
    names the file, never its content."""
    own = slapd_factory()
    conf = tmp_path / "emailauthd.conf"
    conf.write_text(ldap_config(tmp_path, own))
    os.chmod(tmp_path / "ldap.secret", 0o644)
    p = subprocess.run([binary("emailauthd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    secrets_scan.record("emailauthd -t", out)
    assert p.returncode == 1 and "ldap.secret" in out
    assert SERVICE_PASSWORD not in out


# ----------------------------------------------------------------------
# The scan itself


def test_the_scan_finds_a_planted_secret():
    """The control: a registered secret in a file and in a recorded body
    is reported (outside LOGDIR, and the body taken back afterwards, so
    this run stays clean)."""
    planted = register("Planted-Control-Secret-0")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "x.log"), "w") as f:
            f.write('{"event":"oops","password":"%s"}\n' % planted)
        assert any("x.log" in h for h in secrets_scan.scan([tmp]))
    saved = list(secrets_scan._bodies)
    try:
        secrets_scan.record("control", "... %s ..." % planted)
        assert any("control" in h for h in secrets_scan.scan([]))
    finally:
        secrets_scan._bodies[:] = saved


def test_every_log_and_body_of_this_run_so_far_is_clean():
    """The secrets scan over every daemon, email API and slapd-facing log
    of this run and every response body recorded, the attack classes
    before this file included."""
    assert os.path.isdir(LOGDIR)
    logs = [n for n in os.listdir(LOGDIR) if n.endswith(".log")]
    assert logs, "no log to scan"
    assert secrets_scan.count() >= 20
    assert secrets_scan._bodies, "no body recorded"
    hits = secrets_scan.scan([LOGDIR])
    assert hits == [], "\n".join(hits)
