"""Shared fixtures of the integration suite.

Every server a test starts is stopped by the fixture that started it, also
when the test fails. Logs of every daemon go under $EMAILAUTH_BUILD/test-logs
and are scanned at the end of the session for every secret the tests
registered with `secrets.register()`.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import secrets_scan  # noqa: E402
from slapd_fixture import *  # noqa: F401,F403,E402
from pam_fixture import *  # noqa: F401,F403,E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EMAILAUTH_BUILD", os.path.join(REPO, "build"))
LOGDIR = os.path.join(BUILD, "test-logs")


# make valgrind (EMAILAUTH_VALGRIND=1): binary() hands out, for each of our
# programs a test runs, a small script that execs it under valgrind
# memcheck (same pid, so signals and exit codes pass through). Each process
# writes $LOGDIR/valgrind-<pid>.log; pytest_sessionfinish fails the run if
# one reports an error. Timeouts of the fixtures are multiplied by SLOW.
VALGRIND = os.environ.get("EMAILAUTH_VALGRIND") == "1"
SLOW = 10 if VALGRIND else 1
VALGRIND_PROGRAMS = ("emailauthd", "emailauthctl", "emailapi",
                     "tests/echo_server")
VALGRIND_SUPP = os.path.join(REPO, "tests", "valgrind.supp")

# Tests that measure what valgrind distorts, skipped under it (by name, in
# tests/integ and tests/attack): the reason is the skip message.
VALGRIND_SKIP = {
    "test_no_timing_oracle_file_backend": "timing medians",
    "test_no_timing_oracle_ldap_backend": "timing medians",
    "test_slow_logins_do_not_delay_cheap_routes": "timing medians",
    "test_pam_failure_delay_does_not_sleep_workers":
        "timing: 50 sign-ins within one 3 s delay",
    "test_guard_pages_through_a_big_feed":
        "3,800 feed rows under valgrind outlast revocations_max_stale",
    "test_a_flood_of_names_stays_within_the_memory_bound":
        "throughput: 10000 logins",
    "test_hardening.py": "checks the ELF files, which binary() replaces "
                         "by wrapper scripts; same build flags as make",
    "test_attack_abuse.py": "expects the next guess within the regulation "
                            "delay; a sign-in under valgrind takes longer "
                            "(test_abuse.py runs the same code)",
}


_wrappers = set()


def _valgrind_wrapper(name):
    real = os.path.join(BUILD, name)
    d = os.path.join(BUILD, "valgrind-bin", os.path.basename(LOGDIR))
    path = os.path.join(d, name.replace("/", "_"))
    if path not in _wrappers:  # written once per run: LOGDIR, supp may move
        os.makedirs(d, exist_ok=True)
        argv = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no",
                "--num-callers=30", "--suppressions=" + VALGRIND_SUPP,
                "--log-file=" + os.path.join(LOGDIR, "valgrind-%p.log")]
        tmp = path + ".%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("#!/bin/sh\nmkdir -p '%s'\nexec %s '%s' \"$@\"\n" %
                    (LOGDIR, " ".join("'%s'" % a for a in argv), real))
        os.chmod(tmp, 0o755)
        os.rename(tmp, path)
        _wrappers.add(path)
    return path


def binary(name):
    if VALGRIND and name in VALGRIND_PROGRAMS:
        return _valgrind_wrapper(name)
    return os.path.join(BUILD, name)


def pytest_collection_modifyitems(config, items):
    if not VALGRIND:
        return
    for item in items:
        for key in (item.name.split("[")[0], item.fspath.basename):
            if key in VALGRIND_SKIP:
                item.add_marker(pytest.mark.skip(
                    reason="under valgrind: " + VALGRIND_SKIP[key]))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JsonLog:
    """A server whose log (self.log) is JSON lines."""

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def events(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


class Daemon(JsonLog):
    """One emailauthd with a generated config in its own directory."""

    def __init__(self, tmpdir, config_text, name="emailauthd", env=None):
        self.dir = tmpdir
        self.env = env
        self.conf = os.path.join(tmpdir, "emailauthd.conf")
        self.name = name
        self.proc = None
        self.port = None
        os.makedirs(LOGDIR, exist_ok=True)
        fd, self.log = tempfile.mkstemp(prefix=name + "-", suffix=".log",
                                        dir=LOGDIR)
        os.close(fd)
        self.write_config(config_text)

    def write_config(self, text):
        # Every daemon keeps an audit trail next to its log, unless the
        # test sets its own; pytest_sessionfinish verifies every chain.
        if not re.search(r"^\s*audit\s*=", text, re.M):
            text += 'audit = { file = "%s"; };\n' % (self.log[:-4] +
                                                     ".audit")
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)

    def start(self, timeout=10):
        timeout *= SLOW
        self.logf = open(self.log, "ab")
        seen = len(self.events())
        self.proc = subprocess.Popen([binary("emailauthd"), "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf,
                                     cwd=self.dir, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for ev in self.events()[seen:]:
                if ev.get("event") == "started":
                    self.port = ev["port"]
                    return self
                if ev.get("event") in ("start_failed", "config_invalid"):
                    raise RuntimeError("emailauthd did not start: %r" % ev)
            if self.proc.poll() is not None:
                raise RuntimeError("emailauthd exited %d:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            time.sleep(0.02)
        raise RuntimeError("emailauthd did not start:\n" + self.log_text())

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


    def wait_event(self, name, timeout=5, after=0):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            evs = [e for e in self.events()[after:] if e.get("event") == name]
            if evs:
                return evs[-1]
            time.sleep(0.02)
        raise AssertionError("no %r event in log:\n%s" % (name,
                                                           self.log_text()))

    def signal(self, sig):
        self.proc.send_signal(sig)

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


# The abuse limits off or far away: suites that are not about them send
# many requests and wrong passwords from one address. test_abuse.py runs
# with the real defaults and with small values.
LENIENT_LIMITS = """limits = { auth = { rate = 0; }; api = { rate = 0; };
           ops = { rate = 0; };
           login = { pair = 0; user = 0; address = 0; }; };
"""


def base_config(tmpdir, extra=""):
    """A small valid config using the file backend; extra is appended."""
    users = os.path.join(tmpdir, "users")
    if not os.path.exists(users):
        with open(users, "w"):
            pass
        os.chmod(users, 0o600)
    roles = os.path.join(tmpdir, "roles.conf")
    if not os.path.exists(roles):
        with open(roles, "w") as f:
            f.write('roles = { admin = { groups = [ "mail-admins" ]; '
                    'permissions = [ "admin:*" ]; }; };\n')
    return ("""listen = { address = "127.0.0.1"; port = 0; timeout = 5; };
issuer = "https://auth.test";
state_dir = "%s";
backends = [ "file" ];
file = { path = "users"; };
roles_file = "roles.conf";
tokens = { audience = "email-api"; };
""" % os.path.join(tmpdir, "state")) + extra + (
        LENIENT_LIMITS if "limits" not in extra else "")


@pytest.fixture
def daemon_factory(tmp_path):
    started = []

    def make(config_text=None, extra="", start=True, env=None):
        d = Daemon(str(tmp_path), config_text or base_config(str(tmp_path),
                                                             extra), env=env)
        started.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in started:
        d.stop()


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


class EchoServer:
    """tests/integ/echo_server.c: the shared HTTP core with test routes."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [binary("tests/echo_server")] + [str(a) for a in args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("echo_server did not start")
        self.port = int(line.split()[1])

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def echo_factory():
    started = []

    def make(*args):
        e = EchoServer(*args)
        started.append(e)
        return e

    yield make
    for e in started:
        e.stop()


@pytest.fixture
def echo(echo_factory):
    return echo_factory()


def pytest_sessionstart(session):
    if os.path.isdir(LOGDIR):
        for name in os.listdir(LOGDIR):
            os.unlink(os.path.join(LOGDIR, name))


def verify_audit_trails():
    """Runs emailauthctl audit verify on every daemon's audit file."""
    if not os.path.isdir(LOGDIR):
        return ""
    files = sorted(os.path.join(LOGDIR, n) for n in os.listdir(LOGDIR)
                   if n.endswith(".audit"))
    out = []
    for f in files:
        p = subprocess.run([binary("emailauthctl"), "audit", "verify", f],
                           capture_output=True, text=True)
        if p.returncode != 0:
            out.append(p.stderr.strip())
    return "\n".join(out)


def pytest_sessionfinish(session, exitstatus):
    bad = secrets_scan.sanitizer_reports([LOGDIR])
    if bad:
        sys.stderr.write("\nSANITIZER/VALGRIND REPORTS in the servers' "
                         "logs:\n")
        for h in bad:
            sys.stderr.write("  %s\n" % h)
        session.exitstatus = 1
    broken = verify_audit_trails()
    if broken:
        sys.stderr.write("\nAUDIT TRAIL broken:\n%s\n" % broken)
        session.exitstatus = 1
    hits = secrets_scan.scan([LOGDIR])
    if hits:
        sys.stderr.write("\nSECRET LEAK: test secrets found in logs:\n")
        for h in hits:
            sys.stderr.write("  %s\n" % h)
        session.exitstatus = 1
