"""Attack class ldap: sign-in attacks on the LDAP backend of the running
daemon, against a real slapd (TLS, memberof, ppolicy) that logs every
operation (debug=stats), so that what reached the directory is seen.

Every refused sign-in must be the one generic 401 (byte for byte the
answer to a wrong password, request id and date aside), echo nothing,
open no session, and, where the attack is an injection, bind nobody:
slapd's log shows no BIND as the user the attack aimed at. Wrong
passwords count against ppolicy (3 lock an account), so every test here
ends by unlocking the users it touched.
"""
import os
import socket
import subprocess
import threading
import time

import pytest

import secrets_scan
from attackflow import (BAD_CREDENTIALS, REALM, assert_refused, event_of,
                        login, no_success_since, post_json, same_refusal,
                        sessions)
from conftest import Daemon, binary
from ldapflow import (DUP_PASSWORDS, NOPASS_DN, USERS, WRONG_PASSWORD,
                      ldap_config, ops)
from slapd_fixture import (ADMIN_DN, ADMIN_PASSWORD, SERVICE_DN,
                           SERVICE_PASSWORD, Slapd)

ALICE = USERS["alice"]
BOB = USERS["bob"]
TOUCHED = ("alice", "bob", "erin", "dup", "nopass")


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("slapd"), debug="stats")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ldapd(module_daemons, slapd):
    """One daemon over ldaps:// for the module."""
    d = module_daemons(lambda tmp: ldap_config(tmp, slapd), name="ldapd")
    d.wait_event("ldap_server_up", timeout=10)
    return d


@pytest.fixture(autouse=True)
def unlock_after(slapd):
    yield
    for uid in TOUCHED:
        slapd.unlock(uid)


def binds(log_text):
    """The DNs of the BIND operations in a slapd stats log."""
    out = []
    for line in ops(log_text):
        if " BIND dn=" in line and " method=" in line:
            out.append(line.split(' BIND dn="', 1)[1].split('"', 1)[0])
    return out


def user_binds(log_text):
    """BINDs other than the service account's and the daemon's dummy
    bind (the constant-time answer for unknown users)."""
    return [dn for dn in binds(log_text)
            if dn != SERVICE_DN and "emailauth-no-such-user" not in dn]


def state_dir(d):
    return os.path.join(d.dir, "state")


def reference(d):
    """The 401 of an ordinary wrong password (the thing every refusal
    must look like)."""
    r = login(d.port, "bob", WRONG_PASSWORD)
    assert r.status == 401, r
    return r


def refused_like_a_wrong_password(d, slapd, user, password, reasons,
                                  forbidden_binds=()):
    """The sign-in is the generic 401, logged with one of reasons, opens
    no session and binds none of forbidden_binds (nor, when given as
    True, anyone at all)."""
    ref = reference(d)
    before = sessions(state_dir(d))
    mark, log_mark = slapd.log_size(), len(d.events())
    r = login(d.port, user, password)
    assert_refused(r, 401, inputs=[password, user] if len(user) > 2
                   else [password], www=REALM, detail=BAD_CREDENTIALS)
    assert same_refusal(ref, r), (ref, r)
    ev = event_of(d, "login", r.headers["x-request-id"])
    assert ev["outcome"] == "failure" and ev.get("reason") in reasons, ev
    time.sleep(0.05)
    seen = slapd.log(since=mark)
    if forbidden_binds is True:
        assert user_binds(seen) == [], seen
    else:
        bad = [dn for dn in binds(seen) if dn.lower() in
               [f.lower() for f in forbidden_binds]]
        assert bad == [], seen
    assert sessions(state_dir(d)) == before
    no_success_since(d, log_mark)
    return seen


# ----------------------------------------------------------------------
# Empty password against a server that takes unauthenticated binds


def test_empty_password_against_a_server_allowing_unauthenticated_binds(
        slapd_factory, tmp_path):
    loose = slapd_factory(allow_unauth_bind=True, debug="stats")
    # The premise: this server answers a DN with an empty password as
    # "anonymous", success. A daemon that sent the bind would let anyone
    # in as alice (admin) or nopass (mail-admins, no password at all).
    for dn in (ALICE.dn, NOPASS_DN):
        p = loose.whoami(dn, "")
        assert p.returncode == 0 and p.stdout.strip() == "anonymous", p
    d = Daemon(str(tmp_path), ldap_config(tmp_path, loose))
    try:
        d.start()
        for user in ("alice", "nopass", "ALICE", " alice "):
            refused_like_a_wrong_password(
                d, loose, user, "", {"invalid_input"},
                forbidden_binds=True)
        # Not even a search: the empty password is refused on input.
        mark = loose.log_size()
        login(d.port, "alice", "")
        time.sleep(0.05)
        assert [line for line in ops(loose.log(since=mark))
                if "uid=alice" in line] == []
    finally:
        d.stop()


# ----------------------------------------------------------------------
# NUL bytes


@pytest.mark.parametrize("password", [
    "pw\u0000x",
    ALICE.password + "\u0000",
    ALICE.password + "\u0000anything",
    "\u0000" + ALICE.password,
    "\u0000",
], ids=["inside", "after-right-password", "right-password-then-more",
        "before-right-password", "only-nul"])
def test_nul_byte_in_password(ldapd, slapd, password):
    """A C string stops at the NUL: "Wonderland-42\\0anything" must not
    become "Wonderland-42". Refused on input, before any LDAP call."""
    seen = refused_like_a_wrong_password(ldapd, slapd, "alice", password,
                                         {"invalid_input"},
                                         forbidden_binds=True)
    assert [line for line in ops(seen) if "uid=alice" in line] == []


def test_raw_nul_byte_in_the_body(ldapd, slapd):
    """An unescaped NUL in the JSON text: the body is refused as a 400."""
    mark, before = slapd.log_size(), sessions(state_dir(ldapd))
    body = ('{"username":"alice","password":"%s\u0000"}' %
            ALICE.password).encode()
    r = post_json(ldapd.port, "/v1/login", body)
    assert_refused(r, 400, inputs=[ALICE.password])
    time.sleep(0.05)
    assert user_binds(slapd.log(since=mark)) == []
    assert sessions(state_dir(ldapd)) == before


# ----------------------------------------------------------------------
# Filter injection


INJECTIONS = [
    # (id, username, the password that a successful injection would
    #  make right, the entries it aims at)
    ("star", "*", ALICE.password, [ALICE.dn]),
    ("star-close-uid-star", "*)(uid=*", ALICE.password, [ALICE.dn]),
    ("escaped-star", "\\2a", ALICE.password, [ALICE.dn]),
    ("close-or-cn-star", ")(|(cn=*", ALICE.password, [ALICE.dn]),
    ("alice-close-uid-star", "alice)(uid=*", ALICE.password, [ALICE.dn]),
    ("prefix-wildcard", "al*", ALICE.password, [ALICE.dn]),
    ("suffix-wildcard", "*ice", ALICE.password, [ALICE.dn]),
    ("bob-wildcard", "b*", BOB.password, [BOB.dn]),
    ("or-true", "alice)(|(objectClass=*", ALICE.password, [ALICE.dn]),
    ("and-close", "x)(&", ALICE.password, [ALICE.dn]),
    ("parenthesised", "(uid=alice)", ALICE.password, [ALICE.dn]),
    ("escaped-alice", "\\61lice", ALICE.password, [ALICE.dn]),
    ("backslash-paren", "alice\\29", ALICE.password, [ALICE.dn]),
]


@pytest.mark.parametrize("user,password,aims",
                         [c[1:] for c in INJECTIONS],
                         ids=[c[0] for c in INJECTIONS])
def test_filter_injection(ldapd, slapd, user, password, aims):
    """Each username, with the password of the entry it would match if
    its metacharacters were filter syntax: the generic 401, the aimed-at
    entry not bound, and slapd saw the characters escaped."""
    seen = refused_like_a_wrong_password(
        ldapd, slapd, user, password, {"unknown_user", "invalid_input"},
        forbidden_binds=aims)
    for line in ops(seen):
        if " SRCH base=" in line and "ou=people" in line:
            f = line.split('filter="', 1)[1].rsplit('"', 1)[0]
            assert "(uid=*)" not in f and "(cn=*)" not in f, line
            assert "objectClass=*" not in f, line
            # The user's part of the filter has no bare metacharacter.
            inner = f.split("(uid=", 1)[1][:-2] if "(uid=" in f else ""
            assert not any(c in inner for c in "*()"), line


# ----------------------------------------------------------------------
# Ambiguous names, DNs as names


@pytest.mark.parametrize("user,password", [
    ("dup", DUP_PASSWORDS[0]), ("dup", DUP_PASSWORDS[1]),
    ("DUP", DUP_PASSWORDS[0]),
], ids=["twin1", "twin2", "twin1-other-case"])
def test_username_matching_several_entries(ldapd, slapd, user, password):
    """uid=dup names two entries: refused, and neither is bound (the
    password is not tried against whichever came first)."""
    dups = slapd.dns_for_uid("dup")
    assert len(dups) == 2
    refused_like_a_wrong_password(
        ldapd, slapd, user, password,
        {"bad_credentials", "unknown_user", "ambiguous_user"},
        forbidden_binds=dups)
    assert [e for e in ldapd.events() if e.get("event") ==
            "ldap_ambiguous_user" and e.get("user") == user]


@pytest.mark.parametrize("user,password", [
    (ALICE.dn, ALICE.password),
    (ALICE.dn.upper(), ALICE.password),
    ("uid=alice", ALICE.password),
    (ADMIN_DN, ADMIN_PASSWORD),
    (NOPASS_DN, ""),
    (NOPASS_DN, "Anything-At-All-1"),
], ids=["user-dn", "user-dn-upper", "rdn-only", "rootdn", "nopass-dn-empty",
        "nopass-dn"])
def test_dn_as_username(ldapd, slapd, user, password):
    """A DN typed as the user name is a user name (escaped into the
    filter, matching nobody), never a bind DN."""
    refused_like_a_wrong_password(
        ldapd, slapd, user, password, {"unknown_user", "invalid_input"},
        forbidden_binds=[ALICE.dn, ADMIN_DN, NOPASS_DN])


def test_service_dn_as_username(ldapd, slapd):
    """The service account's own DN and password as a sign-in: refused,
    and the account gets no token (it is not a person)."""
    refused_like_a_wrong_password(
        ldapd, slapd, SERVICE_DN, SERVICE_PASSWORD,
        {"unknown_user", "invalid_input"}, forbidden_binds=())


# ----------------------------------------------------------------------
# Locked accounts (ppolicy)


def test_locked_account_is_refused(ldapd, slapd):
    """alice (admin: a wrong acceptance would be a 200) locked by an
    administrator: her right password gets the generic 401."""
    slapd.lock("alice")
    refused_like_a_wrong_password(ldapd, slapd, "alice", ALICE.password,
                                  {"account_disabled", "bad_credentials"})
    slapd.unlock("alice")
    r = login(ldapd.port, "alice", ALICE.password)  # the control
    assert r.status == 200, r


def test_account_locked_by_failed_binds_is_refused(ldapd, slapd):
    """Three wrong passwords lock alice in the directory (ppolicy); the
    right one is then refused like any wrong one."""
    for i in range(3):
        assert login(ldapd.port, "alice", "Wrong-%d-Guess" % i).status == 401
    [(_, attrs)] = slapd.search("(uid=alice)", "pwdAccountLockedTime",
                                dn=slapd.admin_dn,
                                password=slapd.admin_password)
    assert attrs.get("pwdaccountlockedtime"), attrs
    refused_like_a_wrong_password(ldapd, slapd, "alice", ALICE.password,
                                  {"account_disabled", "bad_credentials"})


# ----------------------------------------------------------------------
# Plaintext and wrong-CA servers


class PlainLdapServer:
    """A plaintext LDAP server that refuses StartTLS (protocolError) and
    records every byte it gets: a client that went on without TLS would
    show its bind (and the service password) here."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.ops = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def uri(self, scheme):
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    @staticmethod
    def _parse(buf):
        """(message id bytes, op tag, total length) of the first LDAP
        message in buf, or None if incomplete or not LDAP."""
        if len(buf) < 2 or buf[0] != 0x30:
            return None
        n, i = buf[1], 2
        if n & 0x80:
            k = n & 0x7F
            if len(buf) < 2 + k:
                return None
            n = int.from_bytes(buf[2:2 + k], "big")
            i = 2 + k
        if len(buf) < i + n or buf[i] != 0x02:
            return None
        idl = buf[i + 1]
        mid = buf[i + 2:i + 2 + idl]
        return mid, buf[i + 2 + idl], i + n

    def _client(self, c):
        buf = b""
        c.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            self.received += chunk
            buf += chunk
            while True:
                m = self._parse(buf)
                if m is None:
                    break
                mid, op, total = m
                buf = buf[total:]
                self.ops.append(op)
                if op == 0x77:  # ExtendedRequest (StartTLS): refused
                    resp = bytes([0x0A, 1, 2, 0x04, 0, 0x04, 0])
                    resp = bytes([0x78, len(resp)]) + resp
                else:  # anything else: closed without an answer
                    c.close()
                    return
                msg = bytes([0x02, len(mid)]) + mid + resp
                c.sendall(bytes([0x30, len(msg)]) + msg)
        c.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(c,),
                             daemon=True).start()

    def stop(self):
        self._stop.set()
        self.sock.close()
        self._t.join(2)


def _unavailable(d, slapd=None):
    """A sign-in with the right password is a 503 (Retry-After), fast,
    with nothing about TLS or the directory in the body, and no session."""
    before = sessions(state_dir(d))
    mark = slapd.log_size() if slapd else 0
    t0 = time.monotonic()
    r = login(d.port, "alice", ALICE.password)
    assert time.monotonic() - t0 < 10
    assert_refused(r, 503, inputs=[ALICE.password, "certificate", "tls",
                                   "ssl", "x509", "verify", "handshake"])
    assert r.headers.get("retry-after", "").isdigit(), r
    ev = event_of(d, "login", r.headers["x-request-id"])
    assert ev["reason"] == "backend_unavailable", ev
    assert sessions(state_dir(d)) == before
    no_success_since(d, 0)
    if slapd is not None:
        time.sleep(0.05)
        assert user_binds(slapd.log(since=mark)) == []


def test_plaintext_ldap_is_refused_by_the_config(tmp_path, slapd):
    """ldap:// without StartTLS (and without the test-only insecure)
    does not pass `emailauthd -t` and does not start."""
    conf = tmp_path / "emailauthd.conf"
    conf.write_text(ldap_config(tmp_path, slapd, uris=[slapd.uri_ldap],
                                extra_ldap="starttls = false;"))
    for args in (["-t", "-c", str(conf)], ["-c", str(conf)]):
        p = subprocess.run([binary("emailauthd")] + args,
                           capture_output=True, text=True, timeout=30)
        out = p.stdout + p.stderr
        secrets_scan.record("emailauthd " + " ".join(args), out)
        assert p.returncode == 1, out
        assert "starttls" in out and ": OK" not in out
        assert SERVICE_PASSWORD not in out


@pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
def test_plaintext_server_is_refused(tmp_path, scheme):
    """A server that speaks LDAP without TLS: StartTLS refused (ldap://)
    or no TLS handshake (ldaps://). The daemon answers 503 and never
    sends a bind, let alone the service password, in the clear."""
    srv = PlainLdapServer()
    d = Daemon(str(tmp_path), ldap_config(
        tmp_path, None, ca_file=_ca(tmp_path), uris=[srv.uri(scheme)],
        extra_ldap="starttls = true;" if scheme == "ldap" else "",
        network_timeout=2, timeout=2))
    try:
        d.start()
        for _ in range(2):
            _unavailable(d)
        assert srv.received, "the daemon never tried the server"
        assert SERVICE_PASSWORD.encode() not in srv.received
        assert ALICE.password.encode() not in srv.received
        assert b"cn=emailauth" not in srv.received
        assert 0x60 not in srv.ops, "a bind request was sent in plaintext"
        if scheme == "ldap":
            # StartTLS, then at most an unbind (0x42): nothing else.
            assert srv.ops[:1] == [0x77] and set(srv.ops) <= {0x77, 0x42}, \
                srv.ops
    finally:
        d.stop()
        srv.stop()


def _ca(tmp_path):
    """Some CA file for a config whose server has none."""
    from slapd_fixture import make_ca, write_cert
    path = str(tmp_path / "some-ca.pem")
    if not os.path.exists(path):
        write_cert(path, make_ca("unrelated CA")[0])
    return path


def test_ldaps_uri_on_the_plaintext_port_is_refused(tmp_path, slapd):
    """ldaps:// pointed at slapd's plaintext port: no TLS, no sign-in."""
    d = Daemon(str(tmp_path), ldap_config(
        tmp_path, slapd, uris=["ldaps://127.0.0.1:%d" % slapd.port_ldap],
        network_timeout=2, timeout=2))
    try:
        d.start()
        _unavailable(d, slapd)
    finally:
        d.stop()


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
def test_server_certificate_from_another_ca(tmp_path, slapd, transport):
    kw = {"ca_file": slapd.wrong_ca_file}
    if transport == "starttls":
        kw.update(uris=[slapd.uri_ldap], extra_ldap="starttls = true;")
    d = Daemon(str(tmp_path), ldap_config(tmp_path, slapd, **kw))
    try:
        d.start()
        mark = slapd.log_size()
        for _ in range(2):
            _unavailable(d, slapd)
        time.sleep(0.05)
        # Not even the service account got through the failed TLS.
        assert binds(slapd.log(since=mark)) == []
        assert SERVICE_PASSWORD not in d.log_text()
    finally:
        d.stop()


def test_ldap_environment_cannot_weaken_tls(tmp_path, slapd):
    """libldap reads ldap.conf, .ldaprc and LDAP* variables unless told
    not to: a daemon started with TLS_REQCERT never (and the right CA) in
    its environment must still check the server against the configured
    CA (here the wrong one), and refuse."""
    rc = tmp_path / "ldaprc"
    rc.write_text("TLS_REQCERT never\nTLS_CACERT %s\n" % slapd.ca_file)
    env = dict(os.environ, LDAPTLS_REQCERT="never",
               LDAPTLS_CACERT=slapd.ca_file, LDAPRC=str(rc),
               LDAPCONF=str(rc), HOME=str(tmp_path))
    (tmp_path / ".ldaprc").write_text(rc.read_text())
    d = Daemon(str(tmp_path), ldap_config(tmp_path, slapd,
                                          ca_file=slapd.wrong_ca_file),
               env=env)
    try:
        d.start()
        mark = slapd.log_size()
        _unavailable(d, slapd)
        time.sleep(0.05)
        assert binds(slapd.log(since=mark)) == []
    finally:
        d.stop()
