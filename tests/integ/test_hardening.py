"""Hardening verified, not assumed (issue 9, docs/hardening.md).

The built binaries are read with readelf, not judged by the flags in the
Makefile: a flag dropped by a rule, overridden by CFLAGS/LDFLAGS from the
environment or ignored by the toolchain shows up here. Each checker returns
the list of problems it found; every checker is also run on a tiny program
built with the protection switched off, so none of them can pass by
accident.

The systemd unit etc/emailauthd.service is scored with
`systemd-analyze security --offline=yes` (it must be "OK" or better) and
checked with `systemd-analyze verify`.

That libemailauth.so exports only ea_* symbols is checked in
test_library.py (test_shared_library_exports_only_the_api), not here.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, binary

SAN = os.environ.get("EMAILAUTH_SAN") == "1"
UNIT = os.path.join(REPO, "etc", "emailauthd.service")

EXECUTABLES = ["emailauthd", "emailauthctl", "emailapi"]
LIBRARIES = ["libemailauth.so"]

# Sanitizer builds (make asan, EMAILAUTH_SAN=1) compile without
# _FORTIFY_SOURCE (ASan intercepts the string functions itself) and with
# other code generation flags, so the FORTIFY and stack-protector checks do
# not apply to their binaries. The self-tests of those checkers on the tiny
# program below still run.
san_skip = pytest.mark.skipif(
    SAN, reason="sanitizer build: FORTIFY and stack protector flags differ")


def tool(name, package):
    path = shutil.which(name)
    assert path, "%s not found: install Debian package %s " \
        "(scripts/install-deps)" % (name, package)
    return path


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          env=dict(os.environ, LC_ALL="C"), **kw)


class Elf:
    """What readelf says about one file: header type, program headers,
    dynamic section and dynamic symbols."""

    def __init__(self, path):
        assert os.path.exists(path), "%s not built" % path
        self.path = path
        readelf = tool("readelf", "binutils")

        def out(*opts):
            p = run([readelf, "-W"] + list(opts) + [path])
            assert p.returncode == 0, "readelf %s %s: %s" % (
                " ".join(opts), path, p.stderr)
            return p.stdout

        m = re.search(r"^\s*Type:\s+(\S+)", out("-h"), re.M)
        assert m, "no ELF type in readelf -h %s" % path
        self.type = m.group(1)  # EXEC, DYN, REL, ...

        # "  GNU_STACK  0x0 0x0 0x0 0x0 0x0 RW  0x10": the flags may
        # contain spaces ("R E"), so they are what lies between the five
        # numbers and the alignment.
        self.segments = {}
        for line in out("-l").splitlines():
            f = line.split()
            if (len(f) >= 8 and f[1].startswith("0x") and
                    f[-1].startswith("0x") and
                    all(x.startswith("0x") for x in f[1:6])):
                self.segments[f[0]] = "".join(f[6:-1])

        # " 0x000000000000001e (FLAGS)   BIND_NOW"
        self.dynamic = {}
        for line in out("-d").splitlines():
            m = re.match(r"\s*0x[0-9a-f]+\s+\((\w+)\)\s+(.*)$", line)
            if m:
                self.dynamic.setdefault(m.group(1), []).append(m.group(2))

        # "  5: 0000000000000000  0 FUNC  GLOBAL DEFAULT  UND name@VER (3)"
        self.dynsyms = set()
        for line in out("--dyn-syms").splitlines():
            f = line.split()
            if len(f) >= 8 and f[0].endswith(":") and f[0][:-1].isdigit():
                self.dynsyms.add(f[7].split("@")[0])

    def dyn_flags(self):
        words = []
        for tag in ("FLAGS", "FLAGS_1"):
            for v in self.dynamic.get(tag, []):
                words += v.replace("Flags:", "").split()
        return set(words)


# The checkers: each returns a list of problems, empty when all is well.

def check_pie(elf, shared=False):
    """PIE: ELF type DYN; an executable also has a PT_INTERP (a shared
    object is DYN too, but has none)."""
    problems = []
    if elf.type != "DYN":
        problems.append("ELF type %s, not DYN: not position-independent"
                        % elf.type)
    if not shared and "INTERP" not in elf.segments:
        problems.append("no PT_INTERP: not a PIE executable")
    return problems


def check_full_relro(elf):
    """Full RELRO: a GNU_RELRO segment, and BIND_NOW (FLAGS) or NOW
    (FLAGS_1) so the GOT is resolved at load and then made read-only."""
    problems = []
    if "GNU_RELRO" not in elf.segments:
        problems.append("no GNU_RELRO segment: no RELRO")
    if not elf.dyn_flags() & {"BIND_NOW", "NOW"}:
        problems.append("no BIND_NOW/NOW dynamic flag: partial RELRO only")
    return problems


def check_nx_stack(elf):
    """Non-executable stack: a GNU_STACK segment without E (without the
    segment the kernel may make the stack executable)."""
    if "GNU_STACK" not in elf.segments:
        return ["no GNU_STACK segment: stack may be executable"]
    if "E" in elf.segments["GNU_STACK"]:
        return ["GNU_STACK is %s: executable stack"
                % elf.segments["GNU_STACK"]]
    return []


def check_stack_protector(elf):
    """-fstack-protector-strong: the canary check calls __stack_chk_fail."""
    if "__stack_chk_fail" not in elf.dynsyms:
        return ["__stack_chk_fail not referenced: no stack protector"]
    return []


def check_fortify(elf):
    """_FORTIFY_SOURCE: calls with known buffer sizes go to the checking
    variants (__memcpy_chk, __snprintf_chk, __fprintf_chk, ...)."""
    chk = sorted(s for s in elf.dynsyms
                 if s.startswith("__") and s.endswith("_chk") and
                 s != "__stack_chk_fail")
    if not chk:
        return ["no __*_chk function referenced: not built with "
                "_FORTIFY_SOURCE"]
    return []


def check_no_rpath(elf):
    """No RPATH/RUNPATH: the loader must not look in build or writable
    directories for our libraries."""
    return ["%s %s" % (tag, " ".join(elf.dynamic[tag]))
            for tag in ("RPATH", "RUNPATH") if tag in elf.dynamic]


# (name, checker, applies to sanitizer builds)
CHECKS = [
    ("pie", check_pie, True),
    ("full_relro", check_full_relro, True),
    ("nx_stack", check_nx_stack, True),
    ("stack_protector", check_stack_protector, False),
    ("fortify", check_fortify, False),
    ("no_rpath", check_no_rpath, True),
]


def _cases():
    for name in EXECUTABLES + LIBRARIES:
        for cname, check, in_san in CHECKS:
            yield pytest.param(name, check, marks=() if in_san else san_skip,
                               id="%s-%s" % (name, cname))


@pytest.mark.parametrize("name,check", list(_cases()))
def test_binary_is_hardened(name, check):
    elf = Elf(binary(name))
    if check is check_pie:
        problems = check_pie(elf, shared=name in LIBRARIES)
    else:
        problems = check(elf)
    assert problems == [], "%s: %s" % (name, "; ".join(problems))


@pytest.mark.parametrize("name", EXECUTABLES)
def test_executables_export_no_functions(name):
    """A function a program exports takes the calls of any library
    function of the same name: our audit_open once caught libpam's calls
    to libaudit's audit_open, and every PAM sign-in failed."""
    out = subprocess.run(["nm", "-D", "--defined-only", binary(name)],
                         capture_output=True, text=True, check=True).stdout
    funcs = [ln.split()[-1] for ln in out.splitlines()
             if ln.split()[1:2] in (["T"], ["W"])]
    assert funcs == [], funcs


# The checkers themselves, on a tiny program built with and without the
# protections: each one must pass the good build and report the bad one.

TINY = r"""
#include <stdio.h>
#include <string.h>

int tiny(const char *s);

int
tiny(const char *s)
{
	char buf[64];

	memcpy(buf, s, strlen(s) % sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", s);
	return fprintf(stderr, "%s\n", buf) < 0;
}

int
main(int argc, char **argv)
{
	(void)argc;
	return tiny(argv[0]);
}
"""

GOOD = ["-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=3",
        "-fstack-protector-strong", "-Wl,-z,relro,-z,now,-z,noexecstack"]
BAD = ["-O0", "-U_FORTIFY_SOURCE", "-fno-stack-protector",
       "-Wl,-z,norelro,-z,lazy,-z,execstack"]


@pytest.fixture
def cc(tmp_path):
    gcc = tool("gcc", "gcc")
    src = tmp_path / "tiny.c"
    src.write_text(TINY)

    def build(out, flags):
        path = str(tmp_path / out)
        p = run([gcc, "-o", path, str(src)] + flags)
        assert p.returncode == 0, p.stderr
        return Elf(path)

    return build


def test_checkers_pass_a_hardened_build(cc):
    exe = cc("good", GOOD + ["-fPIE", "-pie"])
    so = cc("good.so", GOOD + ["-fPIC", "-shared"])
    for elf, shared in ((exe, False), (so, True)):
        assert check_pie(elf, shared=shared) == []
        assert check_full_relro(elf) == []
        assert check_nx_stack(elf) == []
        assert check_stack_protector(elf) == []
        assert check_fortify(elf) == []
        assert check_no_rpath(elf) == []


def test_checkers_report_an_unhardened_executable(cc):
    elf = cc("bad", BAD + ["-fno-pie", "-no-pie",
                           "-Wl,--disable-new-dtags,-rpath,/tmp/x"])
    assert elf.type == "EXEC"
    assert check_pie(elf) == [
        "ELF type EXEC, not DYN: not position-independent"]
    assert check_full_relro(elf) == [
        "no GNU_RELRO segment: no RELRO",
        "no BIND_NOW/NOW dynamic flag: partial RELRO only"]
    assert check_nx_stack(elf) == ["GNU_STACK is RWE: executable stack"]
    assert check_stack_protector(elf) == [
        "__stack_chk_fail not referenced: no stack protector"]
    assert check_fortify(elf) == [
        "no __*_chk function referenced: not built with _FORTIFY_SOURCE"]
    assert check_no_rpath(elf) == ["RPATH Library rpath: [/tmp/x]"]


def test_checkers_report_partial_relro_and_runpath(cc):
    elf = cc("partial", GOOD + ["-fPIE", "-pie", "-Wl,-z,lazy",
                                "-Wl,--enable-new-dtags,-rpath,/tmp/x"])
    assert check_full_relro(elf) == [
        "no BIND_NOW/NOW dynamic flag: partial RELRO only"]
    assert check_no_rpath(elf) == ["RUNPATH Library runpath: [/tmp/x]"]


def test_checkers_report_an_unhardened_shared_object(cc):
    so = cc("bad.so", BAD + ["-fPIC", "-shared"])
    assert check_pie(so, shared=True) == []
    # A shared object is not an executable: no PT_INTERP.
    assert check_pie(so) == ["no PT_INTERP: not a PIE executable"]
    assert check_full_relro(so) != []
    assert check_nx_stack(so) != []
    assert check_stack_protector(so) != []
    # An EXEC file handed over as the library fails the shared check too.
    exe = cc("bad-exe", BAD + ["-fno-pie", "-no-pie"])
    assert check_pie(exe, shared=True) != []


# The systemd unit.

LEVELS = ["SAFE", "OK", "MEDIUM", "EXPOSED", "UNSAFE"]


def exposure(unit):
    """Runs systemd-analyze security --offline=yes on a unit file; returns
    (score, level, problems). Warnings about the file (unknown or
    unparsable settings, which the analyzer ignores) are problems."""
    sa = tool("systemd-analyze", "systemd")
    p = run([sa, "security", "--offline=yes", "--no-pager", unit])
    problems = []
    if p.returncode != 0:
        problems.append("systemd-analyze security exited %d: %s"
                        % (p.returncode, p.stderr.strip()))
    if p.stderr.strip():
        problems.append("systemd-analyze warned: %s" % p.stderr.strip())
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    # "→ Overall exposure level for emailauthd.service: 1.2 OK 🙂"
    # (LC_ALL=C prints "->" and no emoji)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", last)
    if m is None:
        return None, None, problems + ["no overall exposure line: %r" % last]
    score, level = float(m.group(1)), m.group(2)
    if level not in LEVELS:
        problems.append("unknown exposure level %s" % level)
    elif LEVELS.index(level) > LEVELS.index("OK"):
        problems.append("exposure %.1f %s, worse than OK" % (score, level))
    return score, level, problems


def verify(unit_dir, name="emailauthd.service"):
    """systemd-analyze verify on a copy of the unit whose ExecStart points
    at the built daemon (the installed path need not exist here). Returns
    problems: a failure, or any message about our unit (verify exits 0 on
    unknown settings, so the messages count)."""
    sa = tool("systemd-analyze", "systemd")
    path = os.path.join(unit_dir, name)
    p = run([sa, "verify", "--man=no", "--recursive-errors=no", path])
    problems = []
    if p.returncode != 0:
        problems.append("systemd-analyze verify exited %d" % p.returncode)
    problems += [line for line in (p.stdout + p.stderr).splitlines()
                 if path in line or name in line]
    return problems


def copy_unit(tmp_path, text=None):
    if text is None:
        with open(UNIT) as f:
            text = f.read()
    daemon = binary("emailauthd")
    assert os.access(daemon, os.X_OK), "%s not built" % daemon
    text = re.sub(r"^ExecStart=/usr/local/sbin/emailauthd ",
                  "ExecStart=%s " % daemon, text, flags=re.M)
    d = tmp_path / "units"
    d.mkdir(exist_ok=True)
    (d / "emailauthd.service").write_text(text)
    return str(d)


def unit_settings():
    """(key, value) pairs of the [Service] section, in order."""
    out, section = [], None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                k, _, v = line.partition("=")
                out.append((k.strip(), v.strip()))
    return out


def test_unit_scores_ok_or_better():
    score, level, problems = exposure(UNIT)
    assert problems == [], problems
    print("systemd-analyze security: %.1f %s" % (score, level))


def test_exposure_check_reports_an_unsandboxed_unit(tmp_path):
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/bin/true\n")
    score, level, problems = exposure(str(bare))
    assert level in ("EXPOSED", "UNSAFE"), (score, level)
    assert problems == ["exposure %.1f %s, worse than OK" % (score, level)]
    typo = tmp_path / "typo.service"
    with open(UNIT) as f:
        typo.write_text(f.read().replace("ProtectHome=yes",
                                         "ProtectHomme=yes"))
    problems = exposure(str(typo))[2]
    assert any("Unknown key" in p for p in problems), problems


def test_unit_verifies(tmp_path):
    assert verify(copy_unit(tmp_path)) == []


def test_verify_check_reports_a_broken_unit(tmp_path):
    with open(UNIT) as f:
        text = f.read()
    problems = verify(copy_unit(tmp_path, text.replace(
        "ProtectSystem=strict", "ProtectSystem=very")))
    assert any("protect system value" in p for p in problems), problems
    problems = verify(copy_unit(tmp_path, text.replace(
        "ExecStart=/usr/local/sbin/emailauthd ",
        "ExecStart=/nonexistent/emailauthd ")))
    assert problems and any("not executable" in p for p in problems), \
        problems


def test_unit_has_the_required_settings():
    s = unit_settings()
    d = {}
    for k, v in s:
        d.setdefault(k, []).append(v)
    assert d["Type"] == ["exec"]
    assert d["ExecStart"] == [
        "/usr/local/sbin/emailauthd -c /etc/emailauth/emailauthd.conf"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # A dedicated user owns the 0600 secrets; never root, never dynamic.
    assert d["User"] == ["emailauth"] and d["Group"] == ["emailauth"]
    assert "DynamicUser" not in d
    assert d["StateDirectory"] == ["emailauth"]
    assert d["StateDirectoryMode"] == ["0700"]
    assert d["ConfigurationDirectory"] == ["emailauth"]
    assert d["UMask"] == ["0077"]
    # Empty: no capability at all.
    assert d["CapabilityBoundingSet"] == [""]
    assert d["AmbientCapabilities"] == [""]
    for k in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices",
              "ProtectKernelTunables", "ProtectKernelModules",
              "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
              "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
              "RestrictSUIDSGID", "LockPersonality",
              "MemoryDenyWriteExecute", "RemoveIPC", "ProtectHome"):
        assert d.get(k) == ["yes"], k
    assert d["ProtectSystem"] == ["strict"]
    assert d["ProtectProc"] == ["invisible"] and d["ProcSubset"] == ["pid"]
    assert d["SystemCallFilter"] == ["@system-service",
                                     "~@privileged @resources"]
    assert d["SystemCallArchitectures"] == ["native"]
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
