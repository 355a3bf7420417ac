"""Sign-in over LDAP against a real slapd with TLS (issue 4).

Roles from direct, memberOf and nested groups; Argon2 hashes, an escaped
comma in a DN and a non-ASCII uid; one generic 401 for every bad
credential, with the directory never asked where the rules say so (proved
on slapd's own stats log); plaintext and wrong-CA servers refused;
failover past a refusing and a hung server while the cheap routes stay
fast; 503 when every server is down and recovery when one returns;
/readyz; refresh re-reading groups; the service password kept out of
logs, bodies and the process table.

The module's slapd is shared (and logs every operation, debug="stats"):
tests that send wrong passwords unlock the users afterwards (ppolicy locks
after 3), tests that change groups put them back.
"""
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import jwt
import pytest

import secrets_scan
from authflow import Api, remember_tokens
from conftest import Daemon, binary
from ldapflow import (DUP_PASSWORDS, NOPASS_DN, USERS, WRONG_PASSWORD,
                      RefusingPort, SilentServer, group_dn, ldap_config,
                      login_event, ops, ops_about, same_refusal)
from slapd_fixture import PEOPLE_DN, SERVICE_PASSWORD, Slapd

ALICE = USERS["alice"]
BOB = USERS["bob"]
ERIN = USERS["erin"]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """The module's shared slapd, logging every operation (debug=stats)."""
    server = Slapd(tmp_path_factory.mktemp("slapd"), debug="stats")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _start(tmpdir, server, **kw):
    d = Daemon(str(tmpdir), ldap_config(tmpdir, server, **kw))
    d.start()
    d.api = Api(d.port)
    return d


@pytest.fixture
def ldapd(tmp_path, daemon_factory, slapd):
    """ldapd(server=slapd, uris=None, start=True, **ldap_config options):
    an emailauthd with the LDAP backend, stopped at the end of the test.
    One per test (they share tmp_path)."""
    def make(server=None, start=True, **kw):
        d = daemon_factory(config_text=ldap_config(tmp_path, server or slapd,
                                                   **kw), start=start)
        if start:
            d.api = Api(d.port)
        return d
    return make


@pytest.fixture(scope="module")
def shared(tmp_path_factory, slapd):
    """shared("ldaps" | "starttls"): one daemon per transport for the
    whole module, against the shared slapd."""
    made = {}

    def get(transport="ldaps"):
        if transport not in made:
            tmp = tmp_path_factory.mktemp("ldapd-" + transport)
            if transport == "ldaps":
                made[transport] = _start(tmp, slapd)
            else:
                made[transport] = _start(tmp, slapd, uris=[slapd.uri_ldap],
                                         extra_ldap="starttls = true;")
        return made[transport]

    yield get
    for d in made.values():
        d.stop()


@pytest.fixture
def unlock_after(slapd):
    """Clears ppolicy failures and locks of the users the 401 tests hit."""
    yield
    for uid in ("alice", "erin", "dup", "nopass"):
        slapd.unlock(uid)


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def get(d, path, timeout=10):
    try:
        with urllib.request.urlopen(d.url(path), timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def retry_after_ok(hdrs):
    v = hdrs.get("Retry-After")
    return v is not None and v.isdigit() and int(v) > 0


# ----------------------------------------------------------------------
# The directory data (fixture side: runs without the daemon)


def test_new_directory_users_bind_directly(slapd):
    argie = USERS["argie"]
    [(_, attrs)] = slapd.search("(uid=argie)", "userPassword",
                                dn=slapd.admin_dn,
                                password=slapd.admin_password)
    assert attrs["userpassword"][0].startswith("{ARGON2}$argon2")
    for u in (argie, USERS["o,neil"], USERS["zo\u00eb"]):
        r = slapd.whoami(u.dn, u.password, uri=slapd.uri_ldaps)
        assert r.returncode == 0, (u.uid, r.stderr)
    # slapd hands back the escaped comma as \2C: a client must bind with
    # the DN the search returned, which names the same entry.
    [(dn, attrs)] = slapd.search("(uid=o\\2cneil)", "uid", "memberOf")
    assert dn == "uid=o\\2Cneil," + PEOPLE_DN and attrs["uid"] == ["o,neil"]
    assert attrs["memberof"] == [group_dn("analysts")]
    assert slapd.whoami(dn, USERS["o,neil"].password).returncode == 0
    [(dn, attrs)] = slapd.search("(uid=zo\u00eb)", "displayName", "memberOf")
    assert dn == USERS["zo\u00eb"].dn
    assert attrs["displayname"] == ["Zo\u00eb Zimmer"]
    assert attrs["memberof"] == [group_dn("mail-admins")]
    # nopass: no userPassword, so no password works.
    [(_, attrs)] = slapd.search("(uid=nopass)", "userPassword", "memberOf",
                                dn=slapd.admin_dn,
                                password=slapd.admin_password)
    assert "userpassword" not in attrs
    assert attrs["memberof"] == [group_dn("mail-admins")]
    assert slapd.whoami(NOPASS_DN, "anything-at-all").returncode == 49
    slapd.unlock("nopass")


def test_slappasswd_argon2_hashes_work(slapd_factory):
    """How directory.ldif's argie hash was made, redone here: a fresh
    slappasswd {ARGON2} hash is accepted by the fixture's slapd."""
    server = slapd_factory()
    p = subprocess.run(["slappasswd", "-o", "module-load=argon2",
                        "-h", "{ARGON2}", "-s", "Fresh-Argon-31"],
                       capture_output=True, text=True, check=True)
    hashed = p.stdout.strip()
    assert hashed.startswith("{ARGON2}$argon2"), hashed
    server.modify("dn: %s\nchangetype: modify\nreplace: userPassword\n"
                  "userPassword: %s\n" % (BOB.dn, hashed))
    assert server.whoami(BOB.dn, "Fresh-Argon-31").returncode == 0
    assert server.whoami(BOB.dn, BOB.password).returncode == 49


def test_slapd_restart_keeps_ports_ca_and_data(slapd_factory):
    server = slapd_factory()
    ports, ca = (server.port_ldap, server.port_ldaps), open(server.ca_file).read()
    server.lock("erin")
    server.stop()
    assert not server.running
    server.start()
    assert (server.port_ldap, server.port_ldaps) == ports
    assert open(server.ca_file).read() == ca
    assert server.whoami(ERIN.dn, ERIN.password).returncode == 49  # still locked
    server.unlock("erin")
    r = server.whoami(ERIN.dn, ERIN.password, uri=server.uri_ldaps)
    assert r.returncode == 0, r.stderr


def test_fake_servers():
    import socket
    with RefusingPort() as refusing, SilentServer() as silent:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", refusing.port), timeout=2)
        with socket.create_connection(("127.0.0.1", silent.port),
                                      timeout=2) as c:
            c.sendall(b"\x16\x03\x01hello")
            c.settimeout(0.5)
            with pytest.raises(socket.timeout):
                c.recv(1)
        deadline = time.time() + 2
        while silent.connections < 1 and time.time() < deadline:
            time.sleep(0.02)
        assert silent.connections == 1
        port = silent.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# ----------------------------------------------------------------------
# Sign-in, roles and claims


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
@pytest.mark.parametrize("uid", list(USERS))
def test_sign_in_roles_and_claims(shared, transport, uid):
    u = USERS[uid]
    d = shared(transport)
    st, hdrs, doc = d.api.login(u.uid, u.password)
    remember_tokens(doc)
    ev = login_event(d, hdrs)
    if u.roles is None:  # dave, erin: in no mapped group
        assert st == 403, doc
        assert "refresh_token" not in doc
        assert (ev["outcome"], ev["reason"]) == ("failure", "no_role")
        return
    assert st == 200, doc
    assert doc["roles"] == u.roles
    claims = claims_of(doc["access_token"])
    assert claims["roles"] == u.roles
    assert claims["sub"] == u.uid
    assert claims["name"] == u.name and claims["email"] == u.email
    assert ev["outcome"] == "success" and ev["user"] == u.uid
    st, _, info = d.api.userinfo(doc["access_token"])
    assert st == 200 and info["roles"] == u.roles
    assert info["name"] == u.name and info["email"] == u.email


# ----------------------------------------------------------------------
# One generic 401


INJECTIONS = ["*", "*)(uid=*", ")(|(cn=*", "\\2a", "alice)(uid=*"]
DN_AS_USERNAME = "uid=alice,ou=people,dc=example,dc=com"

CASES = [
    # id, username, password, audit reasons accepted
    ("wrong-password", "alice", WRONG_PASSWORD, {"bad_credentials"}),
    ("unknown-user", "nosuchuser", ALICE.password, {"unknown_user"}),
    ("nul", "alice", "pw\u0000x", {"invalid_input"}),
    ("nul-in-right-password", "alice", ALICE.password + "\u0000x",
     {"invalid_input"}),
    ("long-user", "a" * 257, ALICE.password, {"invalid_input"}),
    ("long-password", "alice", "p" * 1025, {"invalid_input"}),
    ("control-char", "alice\n", ALICE.password, {"invalid_input"}),
    # A filter that matched would reach the bind: bad_credentials or a 200.
    # Escaped, these match nobody (or the daemon refuses them up front).
] + [("inject-%d" % i, s, ALICE.password, {"unknown_user", "invalid_input"})
     for i, s in enumerate(INJECTIONS)] + [
    ("dn-as-username", DN_AS_USERNAME, ALICE.password,
     {"unknown_user", "invalid_input"}),
    ("nopass", "nopass", "Anything-At-All-1", {"bad_credentials"}),
]


@pytest.mark.parametrize("user,password,reasons",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_bad_credential_gets_the_same_401(shared, slapd, unlock_after,
                                                user, password, reasons):
    d = shared()
    ref = d.api.login("alice", WRONG_PASSWORD)
    assert ref[0] == 401
    mark = slapd.log_size()
    got = d.api.login(user, password)
    assert same_refusal(ref, got), (ref, got)
    assert got[2]["detail"] == "the user name or password is not correct"
    ev = login_event(d, got[1])
    assert ev["outcome"] == "failure"
    assert ev["reason"] in reasons, ev
    # Nothing the user typed became filter syntax: slapd logs the filter
    # it got, where an escaped "*" is \2A and an escaped "\2a" is \5C2a.
    forbidden = ["(uid=*)", "(cn=*)"]
    if user == "\\2a":
        forbidden.append("(uid=\\2A)")
    seen = slapd.log(since=mark)
    assert not [line for line in ops(seen)
                if any(f in line for f in forbidden)], seen


@pytest.mark.parametrize("password", DUP_PASSWORDS, ids=["twin1", "twin2"])
def test_ambiguous_user_is_refused(shared, unlock_after, password):
    d = shared()
    ref = d.api.login("alice", WRONG_PASSWORD)
    got = d.api.login("dup", password)
    assert same_refusal(ref, got), (ref, got)
    assert login_event(d, got[1])["outcome"] == "failure"


def test_locked_account_is_refused_with_the_same_401(shared, slapd,
                                                     unlock_after):
    d = shared()
    ref = d.api.login("alice", WRONG_PASSWORD)
    slapd.lock("erin")
    try:
        got = d.api.login("erin", ERIN.password)
        assert same_refusal(ref, got), (ref, got)
        ev = login_event(d, got[1])
        assert (ev["outcome"], ev["reason"]) == ("failure", "account_disabled")
    finally:
        slapd.unlock("erin")
    # Unlocked, the same password gets through (to erin's 403: no role).
    st, _, _ = d.api.login("erin", ERIN.password)
    assert st == 403


def test_directory_never_asked_for_refused_input(shared, slapd, unlock_after):
    """Empty password, NUL, control characters, over-long input: refused
    before any LDAP call. slapd's stats log (one line per BIND / SRCH)
    shows nothing about these users; a normal failed login right after
    shows up there, so the watch would have seen them."""
    d = shared()
    mark = slapd.log_size()
    for user, password in [("alice", ""), ("alice", "pw\u0000x"),
                           ("alice", ALICE.password + "\u0000"),
                           ("alice\u0001", ALICE.password),
                           ("b" * 257, ALICE.password),
                           ("alice", "p" * 1025)]:
        st, hdrs, _ = d.api.login(user, password)
        assert st == 401
        assert login_event(d, hdrs)["reason"] == "invalid_input"
    seen = slapd.log(since=mark)
    assert ops_about(seen, "uid=alice", "b" * 32) == [], seen
    # The control: an ordinary wrong password is a search and a bind.
    mark = slapd.log_size()
    assert d.api.login("alice", WRONG_PASSWORD)[0] == 401
    seen = slapd.log(since=mark)
    assert any(" SRCH " in line for line in ops_about(seen, "uid=alice")), seen
    assert any(" BIND " in line for line in ops_about(seen, "uid=alice")), seen


def test_empty_password_against_a_server_that_accepts_it(slapd_factory,
                                                         ldapd):
    loose = slapd_factory(allow_unauth_bind=True, debug="stats")
    # This server DOES take a DN with an empty password ("anonymous"), so
    # a daemon that sent the bind would let the user in.
    for dn in (ALICE.dn, NOPASS_DN):
        r = loose.whoami(dn, "")
        assert r.returncode == 0 and r.stdout.strip() == "anonymous", r
    d = ldapd(server=loose)
    ref = d.api.login("alice", WRONG_PASSWORD)
    assert ref[0] == 401
    mark = loose.log_size()
    for user in ("alice", "nopass"):
        got = d.api.login(user, "")
        assert same_refusal(ref, got), (ref, got)
        assert login_event(d, got[1])["reason"] == "invalid_input"
    seen = loose.log(since=mark)
    assert ops_about(seen, "uid=alice", "uid=nopass") == [], seen
    # Control: a non-empty password for nopass does reach slapd.
    mark = loose.log_size()
    assert d.api.login("nopass", "Anything-At-All-1")[0] == 401
    assert ops_about(loose.log(since=mark), "uid=nopass")


# ----------------------------------------------------------------------
# Refused to start or to connect


@pytest.mark.parametrize("which", ["only-ldap", "ldap-second"])
def test_plaintext_ldap_without_starttls_is_refused(tmp_path, slapd, which):
    uris = [slapd.uri_ldap] if which == "only-ldap" else \
        [slapd.uri_ldaps, slapd.uri_ldap]
    conf = tmp_path / "emailauthd.conf"
    conf.write_text(ldap_config(tmp_path, slapd, uris=uris,
                                extra_ldap="starttls = false;"))
    p = subprocess.run([binary("emailauthd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "starttls" in out and "OK" not in out
    p = subprocess.run([binary("emailauthd"), "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "config_invalid" in p.stderr + p.stdout


def test_insecure_is_allowed_and_warns(ldapd, slapd):
    d = ldapd(uris=[slapd.uri_ldap],
              extra_ldap="starttls = false; insecure = true;", start=False)
    p = subprocess.run([binary("emailauthd"), "-t", "-c", d.conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    d.start()
    d.api = Api(d.port)
    ev = d.wait_event("insecure_ldap")
    assert ev["level"] == "warn"
    st, _, doc = d.api.login("alice", ALICE.password)
    remember_tokens(doc)
    assert st == 200, doc


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
def test_server_certificate_from_another_ca(ldapd, slapd, transport):
    if transport == "ldaps":
        d = ldapd(ca_file=slapd.wrong_ca_file)
    else:
        d = ldapd(ca_file=slapd.wrong_ca_file, uris=[slapd.uri_ldap],
                  extra_ldap="starttls = true;")
    mark = slapd.log_size()
    for _ in range(2):
        t0 = time.monotonic()
        st, hdrs, doc = d.api.login("alice", ALICE.password)
        assert st == 503, doc
        assert retry_after_ok(hdrs), dict(hdrs)
        assert time.monotonic() - t0 < 10
        ev = login_event(d, hdrs)
        assert (ev["outcome"], ev["reason"]) == ("failure",
                                                  "backend_unavailable")
    assert not [e for e in d.events() if e.get("outcome") == "success"]
    # No operation got through the failed TLS: no search, no bind.
    assert ops_about(slapd.log(since=mark), "uid=alice") == []


# ----------------------------------------------------------------------
# Failover


@pytest.mark.parametrize("scheme", ["ldaps", "ldap"])
def test_failover_past_a_refusing_server(ldapd, slapd, scheme):
    with RefusingPort() as refusing:
        if scheme == "ldaps":
            d = ldapd(uris=[refusing.uri("ldaps"), slapd.uri_ldaps])
        else:
            d = ldapd(uris=[refusing.uri("ldap"), slapd.uri_ldap],
                      extra_ldap="starttls = true;")
        t0 = time.monotonic()
        st, _, doc = d.api.login("alice", ALICE.password)
        remember_tokens(doc)
        assert st == 200, doc
        assert time.monotonic() - t0 < 10
        assert doc["roles"] == ["admin"]


def test_failover_past_a_hung_server_keeps_cheap_routes_fast(ldapd, slapd):
    with SilentServer() as silent:
        d = ldapd(uris=[silent.uri("ldaps"), slapd.uri_ldaps],
                  network_timeout=2, timeout=2)
        result = {}

        def login():
            t0 = time.monotonic()
            result["answer"] = d.api.login("alice", ALICE.password)
            result["elapsed"] = time.monotonic() - t0

        th = threading.Thread(target=login)
        th.start()
        cheap = []
        while th.is_alive():
            for path in ("/healthz", "/.well-known/jwks.json"):
                t0 = time.monotonic()
                st, _, _ = get(d, path)
                assert st == 200
                cheap.append(time.monotonic() - t0)
            time.sleep(0.01)
        th.join()
        st, _, doc = result["answer"]
        remember_tokens(doc)
        first = result["elapsed"]
        assert st == 200, doc
        # At most one timeout per server (2 + 2 s here) plus margin.
        assert first < 10, first
        assert silent.connections >= 1  # the hung server was tried first
        # The login waited on the hung server; the cheap routes did not.
        assert len(cheap) >= 5, (first, cheap)
        assert max(cheap) < first / 2, (first, max(cheap))
        # The hung server is now marked down: the next login skips it.
        t0 = time.monotonic()
        st, _, doc = d.api.login("bob", BOB.password)
        second = time.monotonic() - t0
        remember_tokens(doc)
        assert st == 200, doc
        assert second / first < 0.5, (first, second)


def test_failover_past_a_hung_starttls_server(ldapd, slapd):
    with SilentServer() as silent:
        d = ldapd(uris=[silent.uri("ldap"), slapd.uri_ldap],
                  extra_ldap="starttls = true;", network_timeout=2, timeout=2)
        t0 = time.monotonic()
        st, _, doc = d.api.login("alice", ALICE.password)
        remember_tokens(doc)
        assert st == 200, doc
        assert time.monotonic() - t0 < 10
        assert silent.connections >= 1


# ----------------------------------------------------------------------
# Every server down, and back


def test_all_servers_refusing_is_a_fast_503(ldapd):
    with RefusingPort() as refusing:
        d = ldapd(uris=[refusing.uri("ldaps")])
        t0 = time.monotonic()
        st, hdrs, doc = d.api.login("alice", ALICE.password)
        assert st == 503, doc
        assert retry_after_ok(hdrs), dict(hdrs)
        assert time.monotonic() - t0 < 10
        ev = login_event(d, hdrs)
        assert (ev["outcome"], ev["reason"]) == ("failure",
                                                  "backend_unavailable")


def test_all_servers_hung_fails_fast_after_the_first_timeout(ldapd):
    with SilentServer() as silent:
        d = ldapd(uris=[silent.uri("ldaps")], network_timeout=2, timeout=2)
        t0 = time.monotonic()
        st, hdrs, _ = d.api.login("alice", ALICE.password)
        first = time.monotonic() - t0
        assert st == 503 and retry_after_ok(hdrs)
        assert first < 10
        t0 = time.monotonic()
        st, hdrs, _ = d.api.login("alice", ALICE.password)
        second = time.monotonic() - t0
        assert st == 503 and retry_after_ok(hdrs)
        assert second / first < 0.5, (first, second)


def test_recovers_by_itself_when_the_server_returns(slapd_factory, ldapd):
    own = slapd_factory()
    with SilentServer() as silent:
        d = ldapd(server=own, uris=[silent.uri("ldaps"), own.uri_ldaps])
        st, _, doc = d.api.login("alice", ALICE.password)
        remember_tokens(doc)
        assert st == 200, doc
        own.stop()
        st, hdrs, doc = d.api.login("alice", ALICE.password)
        assert st == 503, doc
        assert retry_after_ok(hdrs)
        own.start()  # same ports, same CA, same data
        t0 = time.monotonic()
        deadline = t0 + 30
        while True:
            st, _, doc = d.api.login("alice", ALICE.password)
            remember_tokens(doc)
            if st == 200 or time.monotonic() > deadline:
                break
            assert st == 503, doc
            time.sleep(0.5)
        assert st == 200, "no recovery after %.1f s" % (time.monotonic() - t0)


def wait_status(d, path, want, timeout):
    deadline = time.monotonic() + timeout
    while True:
        st, hdrs, _ = get(d, path)
        if st == want or time.monotonic() > deadline:
            return st, hdrs
        time.sleep(0.2)


def test_readyz_follows_the_directory(slapd_factory, ldapd):
    own = slapd_factory()
    d = ldapd(server=own, uris=[own.uri_ldaps])
    assert wait_status(d, "/readyz", 200, 10)[0] == 200
    own.stop()
    # No login in between: readiness must come from the daemon's own
    # probes, not from a user's failed sign-in.
    st, hdrs = wait_status(d, "/readyz", 503, 15)
    assert st == 503, "/readyz still %d 15 s after the only directory " \
        "server stopped" % st
    assert retry_after_ok(hdrs)
    own.start()
    assert wait_status(d, "/readyz", 200, 30)[0] == 200


def test_readyz_503_when_the_only_server_is_down(ldapd):
    with RefusingPort() as refusing:
        d = ldapd(uris=[refusing.uri("ldaps")])
        assert wait_status(d, "/readyz", 503, 15)[0] == 503
        assert get(d, "/healthz")[0] == 200  # alive, just not ready


# ----------------------------------------------------------------------
# Refresh re-reads the groups


def test_refresh_rereads_groups(shared, slapd):
    d = shared()
    st, _, first = d.api.login("bob", BOB.password)
    remember_tokens(first)
    assert st == 200 and first["roles"] == ["analyst"]
    st, _, second = d.api.refresh(first["refresh_token"])
    remember_tokens(second)
    assert st == 200 and second["roles"] == ["analyst"]
    change = "dn: %s\nchangetype: modify\n%s: member\nmember: %s\n"
    slapd.modify(change % (group_dn("analysts"), "delete", BOB.dn))
    try:
        st, hdrs, _ = d.api.refresh(second["refresh_token"])
        assert st == 401
        reasons = [e.get("reason") for e in d.events()
                   if e.get("event") == "refresh" and e.get("user") == "bob"]
        assert reasons[-1] == "no_role", reasons
    finally:
        slapd.modify(change % (group_dn("analysts"), "add", BOB.dn))
    [(_, attrs)] = slapd.search("(uid=bob)", "memberOf")
    assert attrs["memberof"] == [group_dn("analysts")]
    st, _, doc = d.api.login("bob", BOB.password)
    remember_tokens(doc)
    assert st == 200


# ----------------------------------------------------------------------
# The service password


def test_service_password_stays_secret(shared, tmp_path, slapd):
    d = shared()
    st, _, doc = d.api.login("alice", ALICE.password)
    remember_tokens(doc)
    assert st == 200
    pid = d.proc.pid
    for name in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            assert SERVICE_PASSWORD.encode() not in f.read(), name
    p = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True,
                       text=True)
    assert SERVICE_PASSWORD not in p.stdout
    assert SERVICE_PASSWORD not in d.log_text()
    # A secret file others may read is refused, without quoting it.
    conf = tmp_path / "emailauthd.conf"
    conf.write_text(ldap_config(tmp_path, slapd))
    os.chmod(tmp_path / "ldap.secret", 0o644)
    p = subprocess.run([binary("emailauthd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "ldap.secret" in p.stdout + p.stderr
    assert SERVICE_PASSWORD not in p.stdout + p.stderr
    secrets_scan.record("emailauthd -t", p.stdout + p.stderr)


def test_wrong_service_password_is_a_503_without_leaks(ldapd,
                                                       slapd_factory):
    # A private slapd: failed service binds count against the service
    # account's ppolicy, and the shared one must stay usable.
    own = slapd_factory()
    wrong = "Wrong-Service-Pass-5"
    secrets_scan.register(wrong)
    d = ldapd(server=own, bind_password=wrong)
    st, hdrs, doc = d.api.login("alice", ALICE.password)
    assert st == 503 and retry_after_ok(hdrs), doc
    text = d.log_text()
    assert wrong not in text and SERVICE_PASSWORD not in text


def test_many_groups_are_read_in_pages(slapd_factory, daemon_factory,
                                       tmp_path):
    """A user in more groups than the server returns in one search: the
    group search is paged (RFC 2696), so every group still counts. The
    server's size limit is 5; bob is in 12 extra groups, the last of which
    maps to a role."""
    own = slapd_factory(extra_database="limits * size.soft=5 size.hard=5 "
                        "size.pr=5 size.prtotal=unlimited")
    bob_dn = "uid=bob,ou=people,dc=example,dc=com"
    ldif = "".join(
        "dn: cn=extra%02d,ou=groups,dc=example,dc=com\n"
        "objectClass: groupOfNames\ncn: extra%02d\nmember: %s\n\n"
        % (i, i, bob_dn) for i in range(12))
    own.add(ldif)
    roles = ('roles = { paged = { groups = [ "extra11" ]; '
             'permissions = [ "emails:read" ]; }; };\n')

    def login(page_size):
        text = ldap_config(tmp_path, own,
                           extra_ldap="page_size = %d;" % page_size)
        # Groups from the paged group search only, not from memberOf.
        text = text.replace("memberof = true;", "memberof = false;")
        (tmp_path / "roles.conf").write_text(roles)
        d = daemon_factory(config_text=text)
        st, _, doc = Api(d.port).login("bob", "CanWeFixIt-17")
        d.stop()
        return st, doc

    # Without paging the server stops at 5 groups: extra11 is not seen
    # (and the daemon logs the truncation).
    st, doc = login(0)
    assert st == 403, doc
    st, doc = login(3)
    assert st == 200, doc
    remember_tokens(doc)
    assert "paged" in doc["roles"]


def test_memberof_outside_group_base_counts_by_dn_only(slapd_factory,
                                                       daemon_factory,
                                                       tmp_path):
    """Whoever may create a group elsewhere in the directory must not get a
    role by giving it a mapped name."""
    own = slapd_factory()
    own.add("dn: ou=selfservice,dc=example,dc=com\nobjectClass: "
            "organizationalUnit\nou: selfservice\n\n"
            "dn: cn=mail-admins,ou=selfservice,dc=example,dc=com\n"
            "objectClass: groupOfNames\ncn: mail-admins\n"
            "member: uid=bob,ou=people,dc=example,dc=com\n\n")
    d = daemon_factory(config_text=ldap_config(tmp_path, own))
    st, _, doc = Api(d.port).login("bob", "CanWeFixIt-17")
    assert st == 200, doc
    remember_tokens(doc)
    assert "admin" not in doc["roles"] and "analyst" in doc["roles"]
