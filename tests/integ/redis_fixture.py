"""A private redis-server for the cluster tests.

`Redis(tmpdir, password=None)` starts Debian's redis-server on a free
loopback port with its own directory, no persistence (`--save ''`,
no AOF) and, when given, a `requirepass`. `stop()` and `start()` take it
away and bring it back on the same port (an outage); `stop()` at
teardown. `cli(*args)` runs one command through redis-cli.

Fixtures: `redis_factory(password=None)` and `redis` (with a password,
registered with the secrets scan).
"""
import os
import shutil
import socket
import subprocess
import time

import pytest

import secrets_scan

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

# Test-only Redis password (registered with the secrets scan).
REDIS_PASSWORD = secrets_scan.register("Redis-Test-Pass-5531")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, tmpdir, password=None):
        self.dir = os.path.join(tmpdir, "redis-%d" % id(self))
        os.makedirs(self.dir, exist_ok=True)
        self.password = password
        self.port = _free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")
        self.conf = os.path.join(self.dir, "redis.conf")
        # The password goes in a file of mode 0600, never on a command
        # line (ps would show it).
        lines = ["port %d" % self.port, "bind 127.0.0.1",
                 "dir %s" % self.dir, "save \"\"", "appendonly no",
                 "daemonize no", "logfile %s" % self.log,
                 "protected-mode yes"]
        if password:
            lines.append("requirepass %s" % password)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def uri(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def password_file(self, path):
        """Writes the password into path (mode 0600) and returns path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        return path

    def start(self, timeout=10):
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited %d" %
                                   self.proc.returncode)
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *args):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p",
                            str(self.port), "--no-raw"] +
                           [str(a) for a in args],
                           capture_output=True, text=True, env=env,
                           timeout=10, check=True)
        return p.stdout

    def raw(self, *args):
        """One command; the answer as redis-cli --raw prints it."""
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p",
                            str(self.port), "--raw"] +
                           [str(a) for a in args],
                           capture_output=True, text=True, env=env,
                           timeout=10, check=True)
        return p.stdout


@pytest.fixture
def redis_factory(tmp_path):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("redis-server is not installed")
    started = []

    def make(password=None):
        r = Redis(str(tmp_path), password=password)
        started.append(r)
        return r.start()

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def redis(redis_factory):
    return redis_factory(password=REDIS_PASSWORD)
