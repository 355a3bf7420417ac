"""Helpers for the LDAP sign-in tests: an emailauthd config for the LDAP
backend against a fixture slapd, the directory's accounts, fake servers
(one that accepts TCP and never answers, one port nobody listens on), a
watch on slapd's stats log, and the audit-log look-ups.

The accounts are those of tests/data/directory.ldif (see directory.md).
Every password here is registered with the secrets scan, the service
account's included: none may show up in a daemon log or a response body.
"""
import os
import socket
import threading
import time

import secrets_scan
from conftest import LENIENT_LIMITS
from slapd_fixture import ADMIN_PASSWORD, GROUPS_DN, PEOPLE_DN, SERVICE_DN, \
    SERVICE_PASSWORD

ROLES = """roles = {
  admin   = { groups = [ "mail-admins" ];
              permissions = [ "emails:*", "admin:*" ]; };
  analyst = { groups = [ "analysts" ];
              permissions = [ "emails:read", "emails:label" ]; };
  looper  = { groups = [ "loopb" ];
              permissions = [ "emails:read" ]; };
  auditor = { groups = [ "cn=auditors,ou=groups,dc=example,dc=com" ];
              permissions = [ "emails:read" ]; };
};
"""


class User:
    def __init__(self, uid, password, dn, roles, name, email):
        self.uid, self.password, self.dn = uid, password, dn
        self.roles, self.name, self.email = roles, name, email


def _u(uid, password, roles, name, email=None, rdn=None):
    dn = "uid=%s,%s" % (rdn or uid, PEOPLE_DN)
    return User(uid, password, dn, roles, name,
                email or "%s@example.com" % uid)


# roles: what a login must grant (None: 403, the user maps to no role).
USERS = {u.uid: u for u in [
    _u("alice", "Wonderland-42", ["admin"], "Alice Liddell"),
    _u("bob", "CanWeFixIt-17", ["analyst"], "Bob Builder"),
    # auditors -> analysts (nested), and auditors by DN (direct).
    _u("carol", "Christmas-88", ["analyst", "auditor"], "Carol Singer"),
    _u("dave", "DeepBlue-05", None, "Dave Diver"),
    _u("erin", "LockMeOut-99", None, "Erin Locke"),
    # loopy is in loopa; loopa <-> loopb: loopb is reached, the loop ends.
    _u("loopy", "RoundAndRound-33", ["looper"], "Loopy Looper"),
    _u("argie", "Argon2-Hashed-77", ["admin"], "Argie Argon"),
    _u("o,neil", "Comma-In-Dn-58", ["analyst"], "Oisin O'Neil",
       email="oneil@example.com", rdn="o\\,neil"),
    _u("zo\u00eb", "Umlaut-Zoe-64", ["admin"], "Zo\u00eb Zimmer",
       email="zoe@example.com"),
]}
DUP_PASSWORDS = ("Twin-One-11", "Twin-Two-22")
NOPASS_DN = "uid=nopass," + PEOPLE_DN
# Wrong passwords the tests send (registered too: a log must not echo
# what a user typed, right or wrong).
WRONG_PASSWORD = "Not-The-Password-9"

for _s in [SERVICE_PASSWORD, ADMIN_PASSWORD, WRONG_PASSWORD, *DUP_PASSWORDS,
           *(u.password for u in USERS.values())]:
    secrets_scan.register(_s)


def group_dn(cn):
    return "cn=%s,%s" % (cn, GROUPS_DN)


def write_file(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def ldap_config(tmpdir, slapd, uris=None, extra_ldap="", extra="",
                ca_file=None, network_timeout=2, timeout=3,
                bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD):
    """An emailauthd.conf text using only the LDAP backend.

    Writes ldap.secret (0600, the service password) and roles.conf into
    tmpdir, the daemon's directory. uris defaults to [slapd.uri_ldaps];
    extra_ldap goes inside the ldap group (later settings of the same name
    are refused by libconfig, so only add what is not set here: starttls,
    insecure, user_filter, ...; ca_file and the timeouts have their own
    arguments), extra after everything.
    """
    tmpdir = str(tmpdir)
    write_file(os.path.join(tmpdir, "ldap.secret"), bind_password + "\n")
    write_file(os.path.join(tmpdir, "roles.conf"), ROLES, 0o644)
    uris = uris or [slapd.uri_ldaps]
    return """listen = { address = "127.0.0.1"; port = 0; timeout = 5; };
issuer = "https://auth.test";
state_dir = "%(state)s";
backends = [ "ldap" ];
tokens = { audience = "email-api"; access_ttl = 60; refresh_ttl = 600;
           refresh_idle = 300; };
workers = { threads = 4; queue = 64; };
roles_file = "roles.conf";
%(limits)s
ldap = { uri = [ %(uris)s ];
         ca_file = "%(ca)s";
         bind_dn = "%(bind_dn)s";
         bind_password_file = "ldap.secret";
         user_base = "ou=people,dc=example,dc=com";
         group_base = "ou=groups,dc=example,dc=com";
         memberof = true;
         nested_depth = 3;
         network_timeout = %(network_timeout)d;
         timeout = %(timeout)d;
         %(extra_ldap)s };
%(extra)s""" % {
        "state": os.path.join(tmpdir, "state"),
        "uris": ", ".join('"%s"' % u for u in uris),
        "ca": ca_file or slapd.ca_file,
        "bind_dn": bind_dn,
        "network_timeout": network_timeout,
        "timeout": timeout,
        "extra_ldap": extra_ldap,
        "extra": extra,
        "limits": LENIENT_LIMITS if "limits" not in extra else "",
    }


# ----------------------------------------------------------------------
# Fake servers


def _reserve_port():
    """A socket bound to a free loopback port, not listening."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


class RefusingPort:
    """A loopback port where every connection is refused (RST).

    The port is held by a bound socket that never listens, so no other
    process can take it while the test runs, and connect() gets
    ECONNREFUSED at once.
    """

    def __init__(self):
        self.sock = None
        self.port = None

    def start(self):
        self.sock = _reserve_port()
        self.port = self.sock.getsockname()[1]
        return self

    def uri(self, scheme="ldaps"):
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SilentServer:
    """Accepts TCP connections on a loopback port and never sends a byte.

    What a hung directory server looks like: connect() succeeds, then the
    TLS handshake (ldaps://) or the StartTLS request (ldap://) or the bind
    waits forever. What the client sends is read and dropped. connections
    counts the accepted connections.
    """

    def __init__(self):
        self.sock = None
        self.port = None
        self.connections = 0
        self._clients = []
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def start(self):
        self.sock = _reserve_port()
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def uri(self, scheme="ldaps"):
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                self._drain()
                continue
            except OSError:
                return
            conn.setblocking(False)
            with self._lock:
                self._clients.append(conn)
                self.connections += 1
            self._drain()

    def _drain(self):
        with self._lock:
            for c in list(self._clients):
                try:
                    if c.recv(65536) == b"":
                        c.close()
                        self._clients.remove(c)
                except BlockingIOError:
                    pass
                except OSError:
                    self._clients.remove(c)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for c in self._clients:
                c.close()
            self._clients = []
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------
# What the daemon said, and what slapd saw


def same_refusal(a, b):
    """Two login answers are the same 401 (request_id and Date aside)."""
    (s1, h1, d1), (s2, h2, d2) = a, b
    d1, d2 = dict(d1 or {}), dict(d2 or {})
    d1.pop("request_id", None)
    d2.pop("request_id", None)
    keys1 = sorted(k for k in h1.keys() if k not in ("Date", "X-Request-Id"))
    keys2 = sorted(k for k in h2.keys() if k not in ("Date", "X-Request-Id"))
    return s1 == s2 and d1 == d2 and keys1 == keys2 and \
        h1.get("WWW-Authenticate") == h2.get("WWW-Authenticate")


def login_event(daemon, headers, timeout=5):
    """The audit line ("event":"login") of the answer with these headers,
    found by its request id."""
    rid = headers["X-Request-Id"]
    deadline = time.time() + timeout
    while True:
        for ev in daemon.events():
            if ev.get("event") == "login" and ev.get("request_id") == rid:
                return ev
        if time.time() > deadline:
            raise AssertionError("no login event with request_id %s:\n%s"
                                 % (rid, daemon.log_text()))
        time.sleep(0.02)


def ops(log_text):
    """The BIND and SRCH lines of a slapd stats log."""
    return [line for line in log_text.splitlines()
            if " BIND dn=" in line or " SRCH " in line]


def ops_about(log_text, *needles):
    """The BIND / SRCH lines that mention any of the needles."""
    return [line for line in ops(log_text)
            if any(n in line for n in needles)]
