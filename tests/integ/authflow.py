"""Helpers for the sign-in tests: file-backend accounts made with
emailauthctl, a daemon configured for them, and JSON calls."""
import json
import os
import subprocess
import urllib.error
import urllib.request

import secrets_scan
from conftest import LENIENT_LIMITS, binary

ROLES = """roles = {
  admin   = { groups = [ "mail-admins" ];
              permissions = [ "emails:*", "admin:*" ]; };
  analyst = { groups = [ "analysts" ];
              permissions = [ "emails:read", "emails:label" ]; };
};
"""

# Test-only passwords (registered with the secrets scan).
USERS = {
    "alice": ("File-Alice-Pass-41", "mail-admins"),
    "bob": ("File-Bob-Pass-72", "analysts,staff"),
    "dave": ("File-Dave-Pass-13", "staff"),
}
for _pw, _ in USERS.values():
    secrets_scan.register(_pw)


def hash_line(user, password, groups=""):
    p = subprocess.run([binary("emailauthctl"), "passwd", "--groups",
                        groups, user], input=password + "\n",
                       capture_output=True, text=True, check=True)
    return p.stdout


def write_users(path, users):
    lines = "".join(hash_line(u, pw, g) for u, (pw, g) in users.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(lines)


def config(tmpdir, tokens="access_ttl = 60; refresh_ttl = 600; "
           "refresh_idle = 300;", extra=""):
    with open(os.path.join(tmpdir, "roles.conf"), "w") as f:
        f.write(ROLES)
    return """listen = { address = "127.0.0.1"; port = 0; timeout = 5; };
issuer = "https://auth.test";
state_dir = "%s";
backends = [ "file" ];
file = { path = "users"; };
roles_file = "roles.conf";
tokens = { audience = "email-api"; %s };
workers = { threads = 4; queue = 64; };
%s%s""" % (os.path.join(tmpdir, "state"), tokens,
           LENIENT_LIMITS if "limits" not in extra else "", extra)


class Api:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def call(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, hdrs, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, text = e.code, e.headers, e.read()
        if status >= 400:  # error bodies must never carry a secret
            secrets_scan.record(method + " " + path, text)
        doc = json.loads(text) if text else None
        return status, hdrs, doc

    def login(self, user, password):
        return self.call("POST", "/v1/login",
                         {"username": user, "password": password})

    def refresh(self, token):
        return self.call("POST", "/v1/refresh", {"refresh_token": token})

    def logout(self, token):
        return self.call("POST", "/v1/logout", {"refresh_token": token})

    def userinfo(self, access):
        return self.call("GET", "/v1/userinfo",
                         headers={"Authorization": "Bearer " + access})


def remember_tokens(doc):
    """Registers the tokens of a login/refresh answer as secrets."""
    if doc and "access_token" in doc:
        secrets_scan.register(doc["access_token"])
        secrets_scan.register(doc["refresh_token"])
    return doc
