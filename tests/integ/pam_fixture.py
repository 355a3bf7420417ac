"""A pam_wrapper (+ nss_wrapper) environment for integration tests.

No root and no /etc/pam.d changes: programs started with PamWrapper.env()
get libpam_wrapper.so preloaded, which reads PAM service files from our
temporary directory.  The "emailauth" service authenticates with
pam_matrix.so against a plain passdb file ("user:password:service").
With nss=True, libnss_wrapper.so is preloaded too and getpwnam(),
getgrouplist(), ... see our own passwd and group files.

Usage:
    from pam_fixture import pam_env   # noqa: F401 (fixture)

    def test_x(pam_env):
        subprocess.run(["pamtester", "emailauth", "alice", "authenticate"],
                       input="pam-Wonderland-42\n", env=pam_env.env())
"""

import glob
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def _find(pattern):
    """First existing file matching a glob (handles the multiarch dir)."""
    hits = sorted(glob.glob(pattern))
    if not hits:
        raise FileNotFoundError(f"{pattern} not found (install libpam-wrapper / libnss-wrapper)")
    return hits[0]


# Debian 12 puts the wrappers in /usr/lib/<triplet>/ and pam_wrapper's test
# modules (pam_matrix.so, ...) in /usr/lib/<triplet>/pam_wrapper/.
PAM_WRAPPER_LIB = _find("/usr/lib/*/libpam_wrapper.so")
NSS_WRAPPER_LIB = _find("/usr/lib/*/libnss_wrapper.so")
PAM_MATRIX = _find("/usr/lib/*/pam_wrapper/pam_matrix.so")
PAM_DENY = _find("/usr/lib/*/security/pam_deny.so")


@dataclass
class PamUser:
    name: str
    password: str
    groups: tuple = ()  # supplementary Unix groups (nss_wrapper)
    # Service written into the passdb line; None means "the service under
    # test".  Any other value: authenticate succeeds, acct_mgmt is denied.
    service: str = None


# PAM passwords differ from the LDAP ones on purpose (see tests/data/directory.md):
# a test can tell which backend accepted a login.
DEFAULT_USERS = (
    PamUser("alice", "pam-Wonderland-42", ("mail-admins",)),
    PamUser("bob", "pam-CanWeFixIt-17", ("analysts",)),
    PamUser("carol", "pam-Christmas-88", ("auditors", "analysts")),
    PamUser("dave", "pam-DeepBlue-05"),
    PamUser("erin", "pam-LockMeOut-99", service="disabled"),
)

FIRST_UID = 20001    # user N gets uid FIRST_UID+N and a primary group of the same id/name
FIRST_GID = 30001    # supplementary groups, numbered in order of appearance


class PamWrapper:
    """Service dir, passdb and (optionally) passwd/group files in a temp dir.

    Attributes: tmpdir, service, service_dir, service_file, passdb,
    passwd_file, group_file, users ({name: PamUser}), nss.
    """

    def __init__(self, tmpdir=None, *, users=DEFAULT_USERS, service="emailauth",
                 nss=True, stack=None):
        self._own_tmpdir = tmpdir is None
        self.tmpdir = Path(tmpdir or tempfile.mkdtemp(prefix="emailauth-pam-"))
        self.service = service
        self.nss = nss
        self.users = {u.name: u for u in users}
        self.service_dir = self.tmpdir / "pam.d"
        self.service_file = self.service_dir / service
        self.passdb = self.tmpdir / "passdb"
        self.passwd_file = self.tmpdir / "passwd"
        self.group_file = self.tmpdir / "group"
        self.service_dir.mkdir(parents=True, exist_ok=True)
        self.write_service(stack)
        self.write_users()

    def write_service(self, stack=None):
        """Write the PAM service file; stack=None uses pam_matrix for all types.

        Module paths must be absolute.  A deny-all "other" service is written
        too: without it pam_wrapper prints "no default config other" errors.
        """
        if stack is None:
            stack = "".join(f"{kind:8} required {PAM_MATRIX} passdb={self.passdb}\n"
                            for kind in ("auth", "account", "password", "session"))
        self.service_file.write_text(stack)
        deny = "".join(f"{kind:8} required {PAM_DENY}\n"
                       for kind in ("auth", "account", "password", "session"))
        (self.service_dir / "other").write_text(deny)

    def add_user(self, user):
        """Add or replace a PamUser and rewrite the files."""
        self.users[user.name] = user
        self.write_users()

    def write_users(self):
        """(Re)write passdb, and the nss_wrapper passwd and group files."""
        self.passdb.write_text("".join(
            f"{u.name}:{u.password}:{u.service or self.service}\n" for u in self.users.values()))

        passwd = ["root:x:0:0:root:/root:/bin/sh\n"]
        groups = {"root": [0, []]}  # name -> [gid, members]
        for n, u in enumerate(self.users.values()):
            uid = FIRST_UID + n
            passwd.append(f"{u.name}:x:{uid}:{uid}:{u.name}:/nonexistent:/bin/false\n")
            groups[u.name] = [uid, []]
            for g in u.groups:
                groups.setdefault(g, [None, []])[1].append(u.name)
        next_gid = FIRST_GID
        for entry in groups.values():
            if entry[0] is None:
                entry[0], next_gid = next_gid, next_gid + 1
        self.passwd_file.write_text("".join(passwd))
        self.group_file.write_text("".join(
            f"{name}:x:{gid}:{','.join(members)}\n" for name, (gid, members) in groups.items()))

    def env(self, base=None):
        """Environment (a new dict) to run a program under the wrappers.

        base defaults to os.environ.  An LD_PRELOAD already in base (e.g. a
        sanitizer runtime, which must come first) is kept in front.
        """
        env = dict(os.environ if base is None else base)
        preload = [PAM_WRAPPER_LIB] + ([NSS_WRAPPER_LIB] if self.nss else [])
        if env.get("LD_PRELOAD"):
            preload.insert(0, env["LD_PRELOAD"])
        env["LD_PRELOAD"] = ":".join(preload)
        env["PAM_WRAPPER"] = "1"
        env["PAM_WRAPPER_SERVICE_DIR"] = str(self.service_dir)
        # Needed under valgrind and the sanitizers (libraries.md 4.3);
        # harmless otherwise. pam_wrapper 1.1.4 (Debian 12) actually reads
        # UID_WRAPPER_DISABLE_DEEPBIND (a copy-paste slip in its source);
        # set every spelling.
        env["PAM_WRAPPER_DISABLE_DEEPBIND"] = "1"
        env["UID_WRAPPER_DISABLE_DEEPBIND"] = "1"
        env["NSS_WRAPPER_DISABLE_DEEPBIND"] = "1"
        if os.environ.get("EMAILAUTH_SAN") == "1":
            # The preloaded wrappers come before the ASan runtime.
            env["ASAN_OPTIONS"] = "verify_asan_link_order=0"
        if self.nss:
            env["NSS_WRAPPER_PASSWD"] = str(self.passwd_file)
            env["NSS_WRAPPER_GROUP"] = str(self.group_file)
        return env

    def cleanup(self):
        """Remove the temporary directory if we created it."""
        if self._own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


@pytest.fixture
def pam_env():
    """A PamWrapper with DEFAULT_USERS and nss_wrapper; temp dir removed after."""
    wrapper = PamWrapper()
    try:
        yield wrapper
    finally:
        wrapper.cleanup()
