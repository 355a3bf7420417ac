"""A private OpenLDAP server (slapd 2.5, Debian 12) for integration tests.

Usage in a test module or conftest.py:

    from slapd_fixture import slapd, slapd_factory   # noqa: F401 (fixtures)

    def test_x(slapd):
        r = slapd.whoami("uid=alice,ou=people,dc=example,dc=com", "Wonderland-42")
        assert r.returncode == 0

    def test_y(slapd_factory):
        loose = slapd_factory(allow_unauth_bind=True)

The server never touches the system slapd: it runs /usr/sbin/slapd in the
foreground with its own slapd.conf (-f), an mdb database and TLS files in a
temporary directory, and listens on 127.0.0.1 only, on two free ports:
ldap:// (StartTLS available) and ldaps://.  The directory is loaded from
tests/data/directory.ldif over LDAP (so the memberof overlay sees it).

Run this file directly to get a server for manual poking / the demo:
    /usr/bin/python3 tests/integ/slapd_fixture.py
"""

import base64
import ctypes
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SLAPD = "/usr/sbin/slapd"
MODULE_DIR = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
DEFAULT_LDIF = Path(__file__).resolve().parents[1] / "data" / "directory.ldif"

BASE_DN = "dc=example,dc=com"
PEOPLE_DN = "ou=people," + BASE_DN
GROUPS_DN = "ou=groups," + BASE_DN
POLICY_DN = "cn=default,ou=policies," + BASE_DN
ADMIN_DN = "cn=admin," + BASE_DN
ADMIN_PASSWORD = "admin-Secret-1"
SERVICE_DN = "cn=emailauth,ou=services," + BASE_DN
SERVICE_PASSWORD = "svc-Emailauth-2024"

# ppolicy treats this pwdAccountLockedTime value as "locked for good".
PERMANENT_LOCK = "000001010000Z"

# Access control.  The first matching rule wins.  Binding needs "auth"
# on userPassword for anonymous (a bind is evaluated as anonymous).  The
# service account must be able to read the suffix entry itself, or a
# search based there fails with "No such object (32)".
DEFAULT_ACLS = f"""\
access to attrs=userPassword
    by anonymous auth
    by * none
access to dn.base=""
    by * read
access to dn.base="cn=Subschema"
    by * read
access to dn.base="{BASE_DN}"
    by dn.exact="{SERVICE_DN}" read
    by * none
access to dn.subtree="{PEOPLE_DN}"
    by dn.exact="{SERVICE_DN}" read
    by self read
    by * none
access to dn.subtree="{GROUPS_DN}"
    by dn.exact="{SERVICE_DN}" read
    by * none
access to *
    by self read
    by * none
"""


# ----------------------------------------------------------------------
# TLS material (EC P-256 keys: generating them takes microseconds)


def make_ca(common_name):
    """Return (certificate, key) of a fresh self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(ca_cert, ca_key, dns_names=("localhost",), ips=("127.0.0.1",)):
    """Return (certificate, key) for a TLS server, signed by the given CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def write_cert(path, cert):
    Path(path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_key(path, key):
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    Path(path).write_bytes(pem)
    os.chmod(path, 0o600)


# ----------------------------------------------------------------------
# Small helpers


def free_ports(count):
    """Return `count` distinct TCP ports that are free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    """preexec_fn: SIGTERM the child if the Python process dies (no orphans)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def parse_ldif(text):
    """Parse `ldapsearch -LLL` output into [(dn, {attr_lower: [values]})].

    Handles folded lines and base64 values ("attr:: ...").  Comments and
    search result trailers are skipped.
    """
    entries = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        # Unfold: a line starting with one space continues the previous one.
        lines = []
        for line in block.split("\n"):
            if line.startswith(" ") and lines:
                lines[-1] += line[1:]
            elif line and not line.startswith("#"):
                lines.append(line)
        if not lines:
            continue
        dn, attrs = None, {}
        for line in lines:
            name, _, value = line.partition(":")
            if value.startswith(":"):
                value = base64.b64decode(value[1:].strip()).decode("utf-8", "replace")
            else:
                value = value.strip()
            if name.lower() == "dn":
                dn = value
            else:
                attrs.setdefault(name.lower(), []).append(value)
        if dn is not None:
            entries.append((dn, attrs))
    return entries


class SlapdError(RuntimeError):
    pass


# ----------------------------------------------------------------------


class Slapd:
    """One private slapd.  start() / stop(), or use as a context manager.

    Options:
      allow_unauth_bind  "allow bind_anon_dn": a bind with a DN and an EMPTY
                         password succeeds as anonymous (RFC 4513
                         unauthenticated bind).  Off by default, as in slapd.
      ldif               file loaded after start (None: empty database,
                         not even the suffix entry).
      acls               replaces DEFAULT_ACLS (slapd.conf "access" lines).
      extra_global       lines appended to the global section of slapd.conf.
      extra_database     lines appended to the database section.
      debug              slapd -d level, output to <tmpdir>/slapd.log.  "none"
                         (default) logs only errors; "stats" logs every
                         operation; "-1" everything.  Avoid "0": slapd
                         then prints nothing, not even config errors.
    """

    host = "127.0.0.1"
    base_dn = BASE_DN
    people_dn = PEOPLE_DN
    groups_dn = GROUPS_DN
    policy_dn = POLICY_DN
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD

    def __init__(self, tmpdir=None, *, allow_unauth_bind=False, ldif=DEFAULT_LDIF,
                 acls=DEFAULT_ACLS, extra_global="", extra_database="",
                 debug="none", start_timeout=10.0):
        self._own_tmpdir = tmpdir is None
        self.tmpdir = Path(tmpdir or tempfile.mkdtemp(prefix="emailauth-slapd-"))
        self.allow_unauth_bind = allow_unauth_bind
        self.ldif = ldif
        self.acls = acls
        self.extra_global = extra_global
        self.extra_database = extra_database
        self.debug = debug
        self.start_timeout = start_timeout

        self.conf_file = self.tmpdir / "slapd.conf"
        self.data_dir = self.tmpdir / "data"
        self.log_file = self.tmpdir / "slapd.log"
        self.ca_file = str(self.tmpdir / "ca.pem")
        self.ca_key_file = str(self.tmpdir / "ca.key")
        self.cert_file = str(self.tmpdir / "server.pem")
        self.key_file = str(self.tmpdir / "server.key")
        self.wrong_ca_file = str(self.tmpdir / "wrong-ca.pem")

        self.port_ldap = self.port_ldaps = None
        self.uri_ldap = self.uri_ldaps = None
        self.proc = None
        self._spawn_log_offset = 0

    # -- lifecycle -------------------------------------------------------

    def start(self):
        """Start slapd, wait until it answers, load the LDIF.  Idempotent.

        After a stop(), start() again is a restart: the same ports, the
        same TLS files and the same database (the LDIF is not loaded
        again), so clients configured with uri_ldap / uri_ldaps / ca_file
        reach it again, as when a real directory server comes back.
        """
        if self.running:
            return self
        if self.port_ldap is not None:
            return self._restart()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_tls_files()
        self._write_config()
        try:
            # A free port can be taken between free_ports() and slapd's
            # bind(); then slapd exits with EADDRINUSE and we try again.
            for _attempt in range(5):
                self.port_ldap, self.port_ldaps = free_ports(2)
                self.uri_ldap = f"ldap://{self.host}:{self.port_ldap}"
                self.uri_ldaps = f"ldaps://{self.host}:{self.port_ldaps}"
                self._spawn()
                if self._wait_ready():
                    break
                self.stop()
            else:
                self.port_ldap = self.port_ldaps = None
                self.uri_ldap = self.uri_ldaps = None
                raise SlapdError("slapd: no free port pair after 5 attempts\n" + self.log())
            if self.ldif:
                self.add(Path(self.ldif).read_text())
        except BaseException:
            self.stop()
            raise
        return self

    def _restart(self):
        """start() after stop(): same ports, TLS files and data.

        The ports must be ours again: slapd sets SO_REUSEADDR, so only
        another listener on them makes this fail (after a few tries, in
        case a client's connection is still being torn down).
        """
        self._write_config()
        try:
            for _attempt in range(20):
                self._spawn()
                if self._wait_ready():
                    return self
                self.stop()
                time.sleep(0.25)
            raise SlapdError(f"slapd: ports {self.port_ldap}/{self.port_ldaps} "
                             "are taken, cannot restart\n" + self.log())
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """SIGTERM, wait up to 5 s, then SIGKILL.  Safe to call repeatedly."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def cleanup(self):
        """stop() and remove the temporary directory if we created it."""
        self.stop()
        if self._own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log(self, since=0):
        """slapd's stdout/stderr so far (for error messages).

        since: a byte offset from log_size(), to get only what came after.
        """
        try:
            with open(self.log_file, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        """The log's length in bytes now: a mark for log(since=...).

        With debug="stats" slapd logs one line per operation ("conn=1001
        op=1 BIND dn=...", "SRCH base=... filter=..."), so the lines after
        a mark tell whether a client asked the directory anything.
        """
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    # -- setup -----------------------------------------------------------

    def _write_tls_files(self):
        ca_cert, ca_key = make_ca("emailauth test CA")
        # libldap checks the certificate against the machine's own hostname
        # (not "localhost") when the URI says localhost, so list those too.
        names = list(dict.fromkeys(["localhost", socket.gethostname(), socket.getfqdn()]))
        cert, key = make_server_cert(ca_cert, ca_key, dns_names=names)
        write_cert(self.ca_file, ca_cert)
        write_key(self.ca_key_file, ca_key)
        write_cert(self.cert_file, cert)
        write_key(self.key_file, key)
        # An unrelated CA: verifying the server against it must fail.
        wrong_cert, _ = make_ca("emailauth WRONG test CA")
        write_cert(self.wrong_ca_file, wrong_cert)

    def _write_config(self):
        allow = "allow bind_anon_dn\n" if self.allow_unauth_bind else ""
        conf = f"""\
# Generated by slapd_fixture.py
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
# In 2.5 the ppolicy schema (pwdPolicy, pwdAccountLockedTime, ...) is
# built into ppolicy.so and the memberOf attribute into memberof.so.
modulepath {MODULE_DIR}
moduleload back_mdb.so
moduleload memberof.so
moduleload ppolicy.so
# {{ARGON2}} userPassword values (argie in directory.ldif); without the
# module slapd cannot check them and every bind with one fails.
moduleload argon2.so

pidfile {self.tmpdir}/slapd.pid
argsfile {self.tmpdir}/slapd.args

TLSCACertificateFile {self.ca_file}
TLSCertificateFile {self.cert_file}
TLSCertificateKeyFile {self.key_file}

{allow}{self.extra_global}

database mdb
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {self.data_dir}
index objectClass eq
index uid,member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay ppolicy
ppolicy_default "{POLICY_DN}"
ppolicy_use_lockout

{self.acls}
{self.extra_database}
"""
        self.conf_file.write_text(conf)

    def _spawn(self):
        urls = f"{self.uri_ldap}/ {self.uri_ldaps}/"
        with open(self.log_file, "ab") as log:
            log.write(f"--- slapd -h '{urls}'\n".encode())
            log.flush()
            self._spawn_log_offset = log.tell()
            # Any -d keeps slapd in the foreground, so it stays our child.
            self.proc = subprocess.Popen(
                [SLAPD, "-d", self.debug, "-f", str(self.conf_file), "-h", urls],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def _wait_ready(self):
        """True once both ports accept connections; False on a port clash."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # Only this run's output: a restart appends to the log.
                if "Address already in use" in self.log(since=self._spawn_log_offset):
                    return False
                raise SlapdError(f"slapd exited with {self.proc.returncode}:\n{self.log()}")
            if all(self._port_open(p) for p in (self.port_ldap, self.port_ldaps)):
                return True
            time.sleep(0.05)
        raise SlapdError(f"slapd not ready after {self.start_timeout}s:\n{self.log()}")

    def _port_open(self, port):
        try:
            with socket.create_connection((self.host, port), timeout=0.5):
                return True
        except OSError:
            return False

    # -- client tools ----------------------------------------------------

    def ldap_env(self, ca_file=None):
        """Environment for OpenLDAP client tools trusting our CA (or ca_file)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDAP")}
        env["LDAPTLS_CACERT"] = str(ca_file or self.ca_file)
        env["LDAPTLS_REQCERT"] = "demand"
        return env

    def run_tool(self, tool, *args, dn=None, password=None, uri=None,
                 starttls=None, ca_file=None, input=None, check=False, timeout=15):
        """Run an OpenLDAP client (ldapsearch, ldapwhoami, ...) with simple bind.

        uri defaults to uri_ldap; StartTLS (-ZZ, required) is used for
        ldap:// unless starttls=False.  dn=None binds anonymously; a dn with
        password "" is an unauthenticated bind.  Returns CompletedProcess
        (text); check=True raises SlapdError on a non-zero exit.
        """
        uri = uri or self.uri_ldap
        if starttls is None:
            starttls = uri.startswith("ldap://")
        cmd = [tool, "-x", "-H", uri]
        if starttls:
            cmd.append("-ZZ")
        if dn is not None:
            cmd += ["-D", dn, "-w", password or ""]
        cmd += [str(a) for a in args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True,
                           env=self.ldap_env(ca_file), timeout=timeout)
        if check and r.returncode != 0:
            raise SlapdError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def whoami(self, dn, password, **kw):
        """ldapwhoami bound as dn; stdout is "dn:<dn>" or "anonymous"."""
        return self.run_tool("ldapwhoami", dn=dn, password=password, **kw)

    def ldapsearch(self, *args, dn=SERVICE_DN, password=SERVICE_PASSWORD, **kw):
        """ldapsearch -LLL, bound as the service account by default.

        args are passed through (filter, attributes, options); -b base_dn is
        added unless args contain -b.  Returns CompletedProcess.
        """
        opts = ["-LLL", "-o", "ldif-wrap=no"]
        if "-b" not in args:
            opts += ["-b", self.base_dn]
        return self.run_tool("ldapsearch", *opts, *args, dn=dn, password=password, **kw)

    def search(self, *args, **kw):
        """Like ldapsearch() but checked and parsed: [(dn, {attr: [values]})]."""
        return parse_ldif(self.ldapsearch(*args, check=True, **kw).stdout)

    def modify(self, ldif_text, relax=False):
        """ldapmodify as the admin (rootdn bypasses ACLs and ppolicy).

        relax=True sends the Relax Rules control (-e relax), needed to
        change NO-USER-MODIFICATION attributes such as pwdFailureTime.
        """
        args = ["-e", "relax"] if relax else []
        return self.run_tool("ldapmodify", *args, dn=ADMIN_DN, password=ADMIN_PASSWORD,
                             input=ldif_text, check=True)

    def add(self, ldif_text):
        """ldapmodify -a as the admin: records without changetype are adds."""
        return self.run_tool("ldapmodify", "-a", dn=ADMIN_DN, password=ADMIN_PASSWORD,
                             input=ldif_text, check=True)

    def dns_for_uid(self, uid):
        """DNs of all entries with this uid (searched as admin)."""
        found = self.search(f"(uid={uid})", "1.1", dn=ADMIN_DN, password=ADMIN_PASSWORD)
        return [dn for dn, _ in found]

    def lock(self, uid):
        """Lock the account(s) for good: pwdAccountLockedTime=000001010000Z.

        uid may also be a full DN.  A locked account gets "Invalid
        credentials (49)" on bind even with the right password.
        """
        self._set_lock(uid, f"replace: pwdAccountLockedTime\npwdAccountLockedTime: {PERMANENT_LOCK}\n")

    def unlock(self, uid):
        """Remove the lock and the failed-bind counter (pwdFailureTime).

        Deleting pwdAccountLockedTime alone leaves pwdFailureTime behind
        (one more wrong password would lock again); pwdFailureTime can only
        be changed with the Relax Rules control, even by the rootdn.
        """
        self._set_lock(uid, "replace: pwdAccountLockedTime\n-\nreplace: pwdFailureTime\n",
                       relax=True)

    def _set_lock(self, uid, change, relax=False):
        dns = [uid] if "=" in uid else self.dns_for_uid(uid)
        if not dns:
            raise SlapdError(f"no entry with uid={uid}")
        ldif = "".join(f"dn: {dn}\nchangetype: modify\n{change}\n" for dn in dns)
        self.modify(ldif, relax=relax)


# ----------------------------------------------------------------------
# pytest fixtures


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """A started Slapd with tests/data/directory.ldif, shared by one module.

    Tests that change state (lock users, fail binds) should undo it or use
    slapd_factory instead.
    """
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def slapd_factory(tmp_path_factory):
    """Call it with Slapd options to get a started, private Slapd.

    Every server it made is stopped at the end of the test.
    """
    servers = []

    def make(**options):
        server = Slapd(tmp_path_factory.mktemp("slapd"), **options)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    # Manual use / demo: start one server and print how to reach it.
    with Slapd() as s:
        print(f"LDAP   {s.uri_ldap}  (StartTLS)\nLDAPS  {s.uri_ldaps}")
        print(f"CA     {s.ca_file}\nadmin  {s.admin_dn} / {s.admin_password}")
        print(f"svc    {s.service_dn} / {s.service_password}\ntmp    {s.tmpdir}")
        print("Ctrl-C to stop.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
