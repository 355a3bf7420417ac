"""The email API (examples/emailapi) in front of a real emailauthd.

`stack` starts emailauthd with file-backend accounts (admin <- mail-admins,
analyst <- analysts, and helpdesk <- helpdesk, a role that grants nothing
of the email API) and an email API whose guard fetches the daemon's JWKS.
`stack.emailapi(**guard)` starts another email API with other guard
settings. Everything is stopped at teardown; logs go under
$EMAILAUTH_BUILD/test-logs/.

Also here: tokens the tests sign themselves (PyJWT + cryptography) with the
daemon's private key or with keys of their own, and HTTP on a bare socket
(rawhttp) so that statuses and headers are seen exactly as sent.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import rawhttp as rh
import secrets_scan
from authflow import Api, write_users
from conftest import LENIENT_LIMITS, LOGDIR, SLOW, JsonLog, binary

ISSUER = "https://auth.test"
AUDIENCE = "email-api"

ROLES = """roles = {
  admin    = { groups = [ "mail-admins" ];
               permissions = [ "emails:*", "admin:*" ]; };
  analyst  = { groups = [ "analysts" ];
               permissions = [ "emails:read", "emails:label" ]; };
  helpdesk = { groups = [ "helpdesk" ];
               permissions = [ "admin:sessions" ]; };
};
"""

# Test-only passwords (registered with the secrets scan).
USERS = {
    "alice": ("Mail-Alice-Pass-31", "mail-admins"),
    "bob": ("Mail-Bob-Pass-62", "analysts,staff"),
    "hank": ("Mail-Hank-Pass-27", "helpdesk"),
}
for _pw, _ in USERS.values():
    secrets_scan.register(_pw)

# Generous limits: only the rate-limit tests want to meet them.
GUARD_DEFAULTS = {
    "issuer": ISSUER,
    "audience": AUDIENCE,
    "leeway": 30,
    "jwks_min_interval": 1,
    "jwks_timeout": 2,
    "rate_per_ip": 10000,
    "burst_per_ip": 10000,
    "rate_per_subject": 10000,
    "burst_per_subject": 10000,
    "cors_origins": ["https://mail.example.com"],
    "trusted_proxies": [],
}


def daemon_config(tmpdir):
    with open(os.path.join(tmpdir, "roles.conf"), "w") as f:
        f.write(ROLES)
    return """listen = { address = "127.0.0.1"; port = 0; timeout = 5; };
issuer = "%s";
state_dir = "%s";
backends = [ "file" ];
file = { path = "users"; };
roles_file = "roles.conf";
tokens = { audience = "%s"; access_ttl = 300; refresh_ttl = 600;
           refresh_idle = 300; leeway = 30; };
workers = { threads = 4; queue = 64; };
""" % (ISSUER, os.path.join(tmpdir, "state"), AUDIENCE) + LENIENT_LIMITS


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ %s ]" % ", ".join(_value(x) for x in v)
    return json.dumps(v)  # a libconfig string is a JSON string here


def emailapi_config(jwks_url, **guard):
    g = dict(GUARD_DEFAULTS)
    g["jwks_url"] = jwks_url
    g.update(guard)
    g = {k: v for k, v in g.items() if v is not None}
    body = "".join("  %s = %s;\n" % (k, _value(v)) for k, v in g.items())
    return """listen = { address = "127.0.0.1"; port = 0; threads = 2; };
database = "emails.db";
guard = {
%s};
""" % body


class EmailApi(JsonLog):
    """One examples/emailapi process with its config, database and log."""

    def __init__(self, workdir, config_text, name="emailapi", args=()):
        self.dir = workdir
        self.args = list(args)  # extra command-line arguments
        os.makedirs(workdir, exist_ok=True)
        self.conf = os.path.join(workdir, "emailapi.conf")
        with open(self.conf, "w") as f:
            f.write(config_text)
        os.makedirs(LOGDIR, exist_ok=True)
        fd, self.log = tempfile.mkstemp(prefix=name + "-", suffix=".log",
                                        dir=LOGDIR)
        os.close(fd)
        self.proc = None
        self.port = None

    def start(self, timeout=10):
        timeout *= SLOW
        self.logf = open(self.log, "ab")
        seen = len(self.events())
        self.proc = subprocess.Popen([binary("emailapi"), "-c", self.conf]
                                     + self.args,
                                     stdout=self.logf, stderr=self.logf,
                                     cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for ev in self.events()[seen:]:
                if ev.get("event") == "started":
                    self.port = ev["port"]
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError("emailapi exited %d:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            time.sleep(0.02)
        raise RuntimeError("emailapi did not start:\n" + self.log_text())


    def guard_messages(self):
        return [e.get("message", "") for e in self.events()
                if e.get("event") == "guard"]

    def request(self, method, path, token=None, headers=None, body=b"",
                json_body=None):
        """One request on its own connection; a rawhttp.Response."""
        h = {"Connection": "close"}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if json_body is not None:
            body = json.dumps(json_body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        r = rh.send(self.port, method, path, h, body)
        assert r is not None, "no response to %s %s" % (method, path)
        if r.status >= 400:  # error bodies must never carry a secret
            secrets_scan.record(method + " " + path, r.body)
        return r

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
        return self.proc.returncode


class Stack:
    """emailauthd + email APIs pointing at its JWKS."""

    def __init__(self, tmp, daemon):
        self.tmp = tmp
        self.daemon = daemon
        self.auth = Api(daemon.port)
        self.apis = []
        self.api = None

    @property
    def jwks_url(self):
        return self.daemon.url("/.well-known/jwks.json")

    def emailapi(self, jwks_url=None, **guard):
        n = len(self.apis)
        a = EmailApi(os.path.join(self.tmp, "emailapi-%d" % n),
                     emailapi_config(jwks_url or self.jwks_url, **guard))
        self.apis.append(a)
        return a.start()

    def login(self, user):
        st, _, doc = self.auth.login(user, USERS[user][0])
        assert st == 200, (st, doc)
        secrets_scan.register(doc["access_token"])
        secrets_scan.register(doc["refresh_token"])
        return doc["access_token"]

    def jwks(self):
        st, _, doc = self.auth.call("GET", "/.well-known/jwks.json")
        assert st == 200
        return doc

    def current_kid(self):
        return jwt.get_unverified_header(self.login("alice"))["kid"]

    def private_key_pem(self):
        path = os.path.join(self.tmp, "state", "keys", "current.pem")
        with open(path, "rb") as f:
            pem = f.read()
        # The key itself must never show up in a log or a body.
        for line in pem.splitlines()[1:-1]:
            secrets_scan.register(line)
        return pem

    def ctl(self, *args):
        return subprocess.run([binary("emailauthctl"), "-c",
                               self.daemon.conf] + list(args),
                              capture_output=True, text=True)

    def rotate(self, force=False):
        """keys rotate, then SIGHUP; returns the new current kid."""
        p = self.ctl("keys", "rotate", *(["--force"] if force else []))
        assert p.returncode == 0, p.stderr
        n = len(self.daemon.events())
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_event("reloaded", after=n)
        return self.current_kid()

    def stop(self):
        for a in self.apis:
            a.stop()


@pytest.fixture
def stack(tmp_path, daemon_factory):
    tmp = str(tmp_path)
    write_users(os.path.join(tmp, "users"), USERS)
    d = daemon_factory(config_text=daemon_config(tmp))
    s = Stack(tmp, d)
    try:
        s.api = s.emailapi()
        yield s
    finally:
        s.stop()


# Tokens made by the tests ------------------------------------------------

def claims(sub="alice", scope="emails:*", roles=("admin",), ttl=300,
           now=None, **over):
    now = int(time.time()) if now is None else now
    c = {"iss": ISSUER, "sub": sub, "aud": AUDIENCE, "iat": now,
         "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex,
         "sid": uuid.uuid4().hex[:22], "roles": list(roles), "scope": scope}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(claims_, key_pem, kid, alg="ES256"):
    """A JWS signed with a PEM private key (registered as a secret)."""
    t = jwt.encode(claims_, key_pem, algorithm=alg,
                   headers={"kid": kid, "typ": "JWT"})
    return secrets_scan.register(t)


def fresh_ec_pem():
    k = ec.generate_private_key(ec.SECP256R1())
    return k.private_bytes(serialization.Encoding.PEM,
                           serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header, claims_, signature=b""):
    """A token assembled by hand: for alg none and alg confusion."""
    return secrets_scan.register(".".join([
        _b64(json.dumps(header)), _b64(json.dumps(claims_)),
        _b64(signature)]))


def hs256_with(secret, header, claims_):
    """HS256 over header.payload with secret as the HMAC key."""
    signing_input = ".".join([_b64(json.dumps(header)),
                              _b64(json.dumps(claims_))])
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return secrets_scan.register(signing_input + "." + _b64(mac))


def public_jwk_of(private_pem, kid):
    """The public JWK of an EC P-256 private key in PEM."""
    key = serialization.load_pem_private_key(private_pem, None)
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "use": "sig", "x": _b64(n.x.to_bytes(32, "big")),
            "y": _b64(n.y.to_bytes(32, "big"))}


def public_pem_of(jwk):
    return jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
