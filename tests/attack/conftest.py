"""The attack suite (issue 9): the catalogue of ../shared/SPEC.md sent to
the running daemon and email API.

The fixtures and the secrets scan are those of tests/integ/conftest.py,
reused, not copied: that file is loaded by path under the module name
`integ_conftest`, tests/integ goes on sys.path (so `authflow`, `ldapflow`,
`emailapiflow`, `rawhttp`, `slapd_fixture`, `secrets_scan` import), and
its fixtures and its pytest_sessionstart / pytest_sessionfinish hooks are
re-exported from here.

The helper modules of tests/integ do `from conftest import ...`; in this
run the module named `conftest` is this file, so everything they take
from there (LENIENT_LIMITS, LOGDIR, binary, Daemon, ...) is re-exported
too, before any of them is imported.

Daemon and email API logs of this run go to $EMAILAUTH_BUILD/
test-logs-attack (not test-logs: the integration run before this one
keeps its logs, and pytest_sessionstart here clears only ours). The
secrets scan at the end covers that directory and every response body
the attack tests recorded.

At the end one line per attack class (the test file test_attack_<class>.py)
is printed, e.g. "attack class jwt: 24 passed, 0 failed".
"""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.normpath(os.path.join(HERE, "..", "integ"))
if INTEG not in sys.path:
    sys.path.insert(0, INTEG)


def _load_integ_conftest():
    name = "integ_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(INTEG, "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_integ = _load_integ_conftest()

# Our own log directory: Daemon, the hooks and emailapiflow all read the
# module global LOGDIR, so it is set before anything uses it.
_integ.LOGDIR = os.path.join(_integ.BUILD, "test-logs-attack")

# What the integration helpers import from `conftest` (this module).
REPO = _integ.REPO
BUILD = _integ.BUILD
LOGDIR = _integ.LOGDIR
LENIENT_LIMITS = _integ.LENIENT_LIMITS
Daemon = _integ.Daemon
JsonLog = _integ.JsonLog
EchoServer = _integ.EchoServer
binary = _integ.binary
free_port = _integ.free_port
base_config = _integ.base_config
SLOW = _integ.SLOW

# Fixtures.
daemon_factory = _integ.daemon_factory
daemon = _integ.daemon
echo_factory = _integ.echo_factory
echo = _integ.echo
slapd = _integ.slapd
slapd_factory = _integ.slapd_factory
pam_env = _integ.pam_env

# The secrets scan: the session hooks of the integration suite.
pytest_sessionstart = _integ.pytest_sessionstart
pytest_sessionfinish = _integ.pytest_sessionfinish
pytest_collection_modifyitems = _integ.pytest_collection_modifyitems

import secrets_scan  # noqa: E402  (tests/integ, the same module object)


@pytest.fixture(scope="module")
def module_daemons(tmp_path_factory):
    """make(build, name="emailauthd") -> a started Daemon shared by the
    module, in its own directory; build(tmpdir) writes what the config
    needs there and returns the config text. Stopped at module end."""
    started = []

    def make(build, name="emailauthd"):
        tmp = str(tmp_path_factory.mktemp(name))
        d = Daemon(tmp, build(tmp), name=name)
        started.append(d)
        d.start()
        d.tmp = tmp
        return d

    yield make
    for d in started:
        d.stop()


# ----------------------------------------------------------------------
# One summary line per attack class

CLASSES = ("jwt", "ldap", "http", "abuse", "leaks")


def _class_of(nodeid):
    base = os.path.basename(nodeid.split("::", 1)[0])
    if base.startswith("test_attack_") and base.endswith(".py"):
        return base[len("test_attack_"):-len(".py")]
    return None


# Worst first: a test that passed and then failed its teardown counts once,
# as an error.
_SEVERITY = ("error", "failed", "xpassed", "xfailed", "skipped", "passed")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    worst = {}
    for outcome in reversed(_SEVERITY):
        for rep in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(rep, "nodeid", "")
            if _class_of(nodeid) is not None:
                worst[nodeid] = outcome
    counts = {c: {} for c in CLASSES}
    for nodeid, outcome in worst.items():
        c = counts.setdefault(_class_of(nodeid), {})
        c[outcome] = c.get(outcome, 0) + 1
    terminalreporter.write_sep("-", "attack suite")
    for cls, c in counts.items():
        line = "attack class %s: %d passed, %d failed" % (
            cls, c.get("passed", 0), c.get("failed", 0))
        for extra in ("error", "xfailed", "xpassed", "skipped"):
            if c.get(extra):
                line += ", %d %s" % (c[extra], extra)
        terminalreporter.write_line(line)
    hits = secrets_scan.scan([LOGDIR])
    terminalreporter.write_line(
        "secrets scan: %d secrets, %d response bodies, logs in %s: %s" % (
            secrets_scan.count(), len(secrets_scan._bodies), LOGDIR,
            "%d hits" % len(hits) if hits else "clean"))
