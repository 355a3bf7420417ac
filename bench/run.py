#!/usr/bin/python3
"""make bench: every benchmark of SPEC.md (Performance) against its
baseline, in one invocation, on loopback. docs/performance.md explains
each row.

    /usr/bin/python3 bench/run.py --build build [--quick] [--duration S]
                                  [--pairs N] [--only NAME,...]

Baseline and subject runs alternate (B S B S ...) and the medians count,
so a noisy neighbour on the machine hurts both sides alike. Reuses the
test fixtures: tests/integ/slapd_fixture.py (a private slapd with TLS and
the memberof overlay), conftest.Daemon (an emailauthd with a generated
config), emailapiflow.EmailApi (the example email API).
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
INTEG = os.path.join(REPO, "tests", "integ")

N_USERS = 200
USER_PASSWORD = "Bench-Pass-%03d"
GROUP_DN = "cn=bench-readers,ou=groups,dc=example,dc=com"


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------
# Load generators and their output


def _seconds(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[
        m.group(2)]


def wrk(url, duration, threads, conns, script=None, script_args=(),
        headers=()):
    """One wrk run: {rate, p50, p99 (seconds), errors}."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
           "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + list(script_args)
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    r = {"rate": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rate"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s\.000%%\s+(\S+)" % pct, out, re.M) or \
            re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        if m:
            r[key] = _seconds(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    if r["rate"] == 0.0:
        print(out, file=sys.stderr)
    return r


def alternate(base_fn, subj_fn, pairs, more=()):
    """B S B S ... (B S S2 B S S2 ... with more subjects): the median of
    each side's runs."""
    fns = [base_fn, subj_fn] + list(more)
    runs = [[] for _ in fns]
    for _ in range(pairs):
        for fn, out in zip(fns, runs):
            out.append(fn())
    return tuple(median_run(r) for r in runs)


def median_run(runs):
    out = {}
    for k in ("rate", "p50", "p99"):
        out[k] = statistics.median(r[k] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    out["runs"] = [round(r["rate"]) for r in runs]
    return out


# ----------------------------------------------------------------------
# Servers


class Nginx:
    """nginx from Debian answering `return 200`, private prefix and port."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes auto;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fastcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%(port)d;
    location / { return 200; }
  }
}
""" % {"d": self.dir, "port": self.port})
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir, "-c", self.conf, "-e",
             os.path.join(self.dir, "logs", "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    die("nothing listens on port %d" % port)


def bench_ldif():
    """N_USERS people in ou=people and a group with all of them."""
    out = []
    for i in range(N_USERS):
        uid = "bench%03d" % i
        out.append("""dn: uid=%(u)s,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: %(u)s
cn: Bench User %(i)d
sn: User
displayName: Bench User %(i)d
mail: %(u)s@example.com
userPassword: %(p)s
""" % {"u": uid, "i": i, "p": USER_PASSWORD % i})
    out.append("dn: %s\nobjectClass: groupOfNames\ncn: bench-readers\n" %
               GROUP_DN + "".join(
                   "member: uid=bench%03d,ou=people,dc=example,dc=com\n" % i
                   for i in range(N_USERS)))
    return "\n".join(out)


def daemon_config(tmp, slapd, limits, state=None):
    """emailauthd on the LDAP backend with the given limits, room for 1,000
    connections from one address, the state (keys, sessions) in tmp or in
    state. One search reads the user and his memberOf; as many workers as
    the naive client has threads."""
    with open(os.path.join(tmp, "ldap.secret"), "w") as f:
        f.write(slapd.service_password + "\n")
    os.chmod(os.path.join(tmp, "ldap.secret"), 0o600)
    with open(os.path.join(tmp, "roles.conf"), "w") as f:
        f.write('roles = { reader = { groups = [ "%s" ];\n'
                '  permissions = [ "emails:read", "emails:label" ]; }; };\n'
                % GROUP_DN)
    return """listen = { address = "127.0.0.1"; port = 0; timeout = 60;
           max_connections = 1200; per_ip_connections = 1200; };
log = { access = false; };
issuer = "https://auth.bench";
state_dir = "%(state)s";
backends = [ "ldap" ];
tokens = { audience = "email-api"; access_ttl = 3600; };
workers = { threads = 16; queue = 1024; };
roles_file = "roles.conf";
%(limits)s
ldap = { uri = [ "%(uri)s" ];
         ca_file = "%(ca)s";
         bind_dn = "%(dn)s";
         bind_password_file = "ldap.secret";
         user_base = "ou=people,dc=example,dc=com";
         memberof = true;
         nested_depth = 0; };
""" % {"state": state or os.path.join(tmp, "state"), "limits": limits,
       "uri": slapd.uri_ldaps, "ca": slapd.ca_file,
       "dn": slapd.service_dn}


def login(port, user, password):
    req = urllib.request.Request(
        "http://127.0.0.1:%d/v1/login" % port,
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def http_get(port, path, token):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_note(pid):
    return "of which anonymous %.1f MiB, file-backed (shared libraries) " \
        "%.1f MiB; %d threads" % (rss_kib(pid, "RssAnon") / 1024.0,
                                  rss_kib(pid, "RssFile") / 1024.0,
                                  rss_kib(pid, "Threads"))


def hold_connections(port, n, path="/healthz"):
    """n keep-alive connections, each having had one answer; the sockets."""
    socks = []
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(req)
        socks.append(s)
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("a held connection was closed")
            data += chunk
    return socks


# ----------------------------------------------------------------------
# The benchmarks


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = args.build
        self.rows = []
        self.tmp = tempfile.mkdtemp(prefix="emailauth-bench-")
        self.stack = []

    def row(self, name, figure, unit, baseline=None, target=None,
            cmp=">=", p50=None, p99=None, note=""):
        ratio = figure / baseline if baseline else None
        value = ratio if baseline else figure
        ok = None
        if target is not None and value is not None:
            ok = value >= target if cmp == ">=" else value < target
        self.rows.append(dict(name=name, figure=figure, unit=unit,
                              baseline=baseline, ratio=ratio, target=target,
                              cmp=cmp, ok=ok, p50=p50, p99=p99, note=note))
        print("  %s: %s" % (name, fmt_row(self.rows[-1])), flush=True)

    def want(self, name):
        return not self.a.only or name in self.a.only

    # -- token verification, in process -----------------------------------

    def tokens(self):
        n, rounds = ("2000", "2") if self.a.quick else ("6000", "3")
        out = subprocess.run(
            [os.path.join(self.build, "bench", "token_bench"), n, rounds],
            capture_output=True, text=True, check=True).stdout
        if self.a.verbose:
            print(out)
        vals = {}
        for m in re.finditer(r"^BENCH (\S+) (.*)$", out, re.M):
            vals[m.group(1)] = {k: float(v) for k, v in
                                re.findall(r"(\w+)=([\d.]+)", m.group(2))}
        c = vals["verify_cold"]
        self.row("guard verify, distinct fresh ES256 tokens (1 core)",
                 c["figure"], "/s", c["baseline"], 0.9,
                 p50=c["p50_us"] * 1e-6, p99=c["p99_us"] * 1e-6,
                 note="baseline: raw EVP_DigestVerify, parsed key")
        h = vals["verify_cached"]
        self.row("guard verify, repeated token (cache, 1 core)",
                 h["figure"], "/s", None, 500000,
                 p50=h["p50_us"] * 1e-6, p99=h["p99_us"] * 1e-6)

    # -- the servers ------------------------------------------------------

    def start_directory(self):
        from slapd_fixture import DEFAULT_ACLS, GROUPS_DN, SERVICE_DN, Slapd
        # The tests' access rules, but a user may read the groups (as the
        # naive client searches them bound as the user).
        old = ('access to dn.subtree="%s"\n    by dn.exact="%s" read\n'
               % (GROUPS_DN, SERVICE_DN))
        if old not in DEFAULT_ACLS:
            die("slapd_fixture.DEFAULT_ACLS changed: adapt bench/run.py")
        acls = DEFAULT_ACLS.replace(old, old + "    by users read\n")
        self.slapd = Slapd(os.path.join(self.tmp, "slapd"), acls=acls)
        os.makedirs(self.slapd.tmpdir, exist_ok=True)
        self.slapd.start()
        self.stack.append(self.slapd.stop)
        self.slapd.add(bench_ldif())
        self.users_file = os.path.join(self.tmp, "users.txt")
        with open(self.users_file, "w") as f:
            for i in range(N_USERS):
                f.write("bench%03d %s\n" % (i, USER_PASSWORD % i))
        os.chmod(self.users_file, 0o600)

    def start_daemon(self):
        from conftest import Daemon, LENIENT_LIMITS
        d = os.path.join(self.tmp, "daemon")
        os.makedirs(d, exist_ok=True)
        self.daemon = Daemon(d, daemon_config(d, self.slapd, LENIENT_LIMITS))
        self.daemon.start()
        self.stack.append(self.daemon.stop)
        doc = login(self.daemon.port, "bench000", USER_PASSWORD % 0)
        self.token = doc["access_token"]
        if http_get(self.daemon.port, "/v1/verify", self.token) != 200:
            die("/v1/verify does not accept the token")

    def start_emailapis(self):
        from emailapiflow import EmailApi, emailapi_config
        jwks = "http://127.0.0.1:%d/.well-known/jwks.json" % self.daemon.port
        # Limits on, but far away: their bookkeeping is part of the cost.
        conf = emailapi_config(
            jwks, issuer="https://auth.bench", audience="email-api",
            rate_per_ip=1e6, burst_per_ip=1e6, rate_per_subject=1e6,
            burst_per_subject=1e6)
        self.api = {}
        for name, extra in (("on", []), ("off", ["--no-guard"])):
            api = EmailApi(os.path.join(self.tmp, "emailapi-" + name), conf,
                           name="emailapi-" + name, args=extra)
            api.start()
            self.stack.append(api.stop)
            self.api[name] = api
        if http_get(self.api["on"].port, "/api/emails", self.token) != 200:
            die("the email API refuses the token")

    # -- over HTTP --------------------------------------------------------

    def verify(self):
        ng = Nginx(self.tmp)
        self.stack.append(ng.stop)
        d, c = self.a.duration, self.a.conns
        auth = "Authorization: Bearer " + self.token
        b, s = alternate(
            lambda: wrk("http://127.0.0.1:%d/" % ng.port, d, 2, c,
                        headers=[auth]),
            lambda: wrk("http://127.0.0.1:%d/v1/verify" % self.daemon.port,
                        d, 2, c, headers=[auth]),
            self.a.pairs)
        ng.stop()
        self.row("GET /v1/verify, keep-alive (wrk -t2 -c%d)" % c, s["rate"],
                 "req/s", b["rate"], 0.5, p50=s["p50"], p99=s["p99"],
                 note="baseline: nginx return 200 (p50 %s, p99 %s); "
                 "runs %s vs %s; errors %d/%d" % (
                     ms(b["p50"]), ms(b["p99"]), b["runs"], s["runs"],
                     b["errors"], s["errors"]))

    def emailapi(self):
        d, c = self.a.duration, self.a.conns
        auth = "Authorization: Bearer " + self.token
        path = "/api/emails?limit=5"
        b, s = alternate(
            lambda: wrk("http://127.0.0.1:%d%s" % (self.api["off"].port, path),
                        d, 2, c, headers=[auth]),
            lambda: wrk("http://127.0.0.1:%d%s" % (self.api["on"].port, path),
                        d, 2, c, headers=[auth]),
            self.a.pairs)
        self.row("GET /api/emails, guard on (wrk -t2 -c%d)" % c, s["rate"],
                 "req/s", b["rate"], 0.8, p50=s["p50"], p99=s["p99"],
                 note="baseline: --no-guard (p50 %s, p99 %s); runs %s vs %s;"
                 " errors %d/%d" % (ms(b["p50"]), ms(b["p99"]), b["runs"],
                                    s["runs"], b["errors"], s["errors"]))

    def login(self):
        d, c = self.a.duration, self.a.login_conns
        pw = os.path.join(self.daemon.dir, "ldap.secret")
        naive = os.path.join(self.build, "bench", "naive_login")

        def base():
            out = subprocess.run(
                [naive, self.slapd.uri_ldaps, self.slapd.ca_file,
                 self.slapd.service_dn, pw, self.users_file, str(c), str(d)],
                capture_output=True, text=True, check=True).stdout
            v = dict(re.findall(r"(\w+)=([\d.]+)", out))
            return {"rate": float(v["logins_per_s"]),
                    "p50": float(v["p50_ms"]) / 1e3,
                    "p99": float(v["p99_ms"]) / 1e3,
                    "errors": int(v["errors"])}

        def subj(port):
            return lambda: wrk(
                "http://127.0.0.1:%d/v1/login" % port, d, min(2, c), c,
                script=os.path.join(REPO, "bench", "login.lua"),
                script_args=[self.users_file])

        # The same daemon with its state on tmpfs: what the sign-in path
        # costs without the session store's fsync per commit.
        from conftest import Daemon, LENIENT_LIMITS
        shm = None
        if os.path.isdir("/dev/shm"):
            shm = tempfile.mkdtemp(prefix="emailauth-bench-", dir="/dev/shm")
            self.stack.append(lambda: shutil.rmtree(shm, True))
            dd = os.path.join(self.tmp, "daemon-shm")
            os.makedirs(dd, exist_ok=True)
            dshm = Daemon(dd, daemon_config(dd, self.slapd, LENIENT_LIMITS,
                                            state=shm),
                          name="emailauthd-shm")
            dshm.start()
            self.stack.append(dshm.stop)
        b, s, *t = alternate(base, subj(self.daemon.port), self.a.pairs,
                             [subj(dshm.port)] if shm else [])
        self.row("POST /v1/login against slapd (wrk -c%d)" % c, s["rate"],
                 "logins/s", b["rate"], 1.0, p50=s["p50"], p99=s["p99"],
                 note="baseline: bench/naive_login, %d threads (p50 %s, p99 "
                 "%s); runs %s vs %s; errors %d/%d" % (
                     c, ms(b["p50"]), ms(b["p99"]), b["runs"], s["runs"],
                     b["errors"], s["errors"]))
        if t:
            self.row("  the same, state_dir on tmpfs (no fsync; "
                     "information)", t[0]["rate"], "logins/s", b["rate"],
                     None, p50=t[0]["p50"], p99=t[0]["p99"],
                     note="runs %s; errors %d" % (t[0]["runs"],
                                                  t[0]["errors"]))

    def memory(self):
        # A daemon of its own, with the default limits (their tables are
        # part of the footprint): idle means just started and warmed by one
        # sign-in and one verification, nothing else.
        from conftest import Daemon
        d = os.path.join(self.tmp, "daemon-rss")
        os.makedirs(d, exist_ok=True)
        dm = Daemon(d, daemon_config(d, self.slapd, ""),
                    name="emailauthd-rss")
        dm.start()
        self.stack.append(dm.stop)
        tok = login(dm.port, "bench001", USER_PASSWORD % 1)["access_token"]
        http_get(dm.port, "/v1/verify", tok)
        time.sleep(0.5)
        idle = rss_kib(dm.proc.pid)
        self.row("resident memory, idle", idle / 1024.0, "MiB", None, 16,
                 cmp="<", note=rss_note(dm.proc.pid))
        socks = hold_connections(dm.port, 1000)
        time.sleep(0.5)
        held = rss_kib(dm.proc.pid)
        note = rss_note(dm.proc.pid)
        for s in socks:
            s.close()
        self.row("resident memory, 1,000 open connections", held / 1024.0,
                 "MiB", None, 64, cmp="<", note=note)
        dm.stop()

    # -- all --------------------------------------------------------------

    def run(self):
        try:
            if self.want("tokens"):
                print("== token verification (bench/token_bench)", flush=True)
                self.tokens()
            if any(self.want(n) for n in ("verify", "emailapi", "login",
                                          "memory")):
                print("== starting slapd, emailauthd, the email API",
                      flush=True)
                self.start_directory()
                self.start_daemon()
                if self.want("emailapi"):
                    self.start_emailapis()
            for name in ("verify", "emailapi", "login", "memory"):
                if self.want(name):
                    print("== " + name, flush=True)
                    getattr(self, name)()
        finally:
            for stop in reversed(self.stack):
                try:
                    stop()
                except Exception as e:  # noqa: BLE001
                    print("bench: stopping: %r" % e, file=sys.stderr)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.rows


# ----------------------------------------------------------------------
# The table


def ms(s):
    if s is None or s != s:
        return "-"
    return "%.2f ms" % (s * 1e3) if s >= 1e-3 else "%.1f us" % (s * 1e6)


def num(v, unit):
    if unit == "MiB":
        return "%.1f MiB" % v
    return "{:,.0f}".format(v) + (" " + unit if unit else "")


def fmt_row(r):
    return "%s | %s | %s" % (num(r["figure"], r["unit"]),
                             num(r["baseline"], r["unit"]) if r["baseline"]
                             else "-", "%.2f" % r["ratio"] if r["ratio"]
                             else "-")


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return "%d CPUs (nproc), %s, %.1f GiB RAM, %s %s" % (
        os.cpu_count(), cpu, mem, platform.system(), platform.release())


def table(rows):
    head = ["benchmark", "figure", "baseline", "ratio", "target", "result",
            "p50", "p99"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        tgt = ("-" if r["target"] is None else
               "%s %s" % (r["cmp"], r["target"]) if r["baseline"] is not None
               else "%s %s" % (r["cmp"], num(r["target"], r["unit"])))
        lines.append("| " + " | ".join([
            r["name"], num(r["figure"], r["unit"]),
            num(r["baseline"], r["unit"]) if r["baseline"] else "-",
            "%.2f" % r["ratio"] if r["ratio"] else "-", tgt,
            "pass" if r["ok"] else "FAIL" if r["ok"] is not None else "-",
            ms(r["p50"]), ms(r["p99"])]) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--quick", action="store_true",
                    help="short runs (2 s, one pair): a smoke test")
    ap.add_argument("--duration", type=int, default=None,
                    help="seconds per wrk run (default 5)")
    ap.add_argument("--pairs", type=int, default=None,
                    help="baseline/subject pairs per benchmark (default 3)")
    ap.add_argument("--conns", type=int, default=64,
                    help="keep-alive connections for the HTTP benchmarks")
    ap.add_argument("--login-conns", type=int, default=16,
                    help="concurrency of the login benchmark")
    ap.add_argument("--only", default="",
                    help="comma-separated: tokens,verify,emailapi,login,memory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.only = [x for x in a.only.split(",") if x]
    a.duration = a.duration or (2 if a.quick else 5)
    a.pairs = a.pairs or (1 if a.quick else 3)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not os.path.exists(
                "/usr/sbin/" + tool):
            die("%s is missing: run scripts/install-deps --bench as root"
                % tool)
    os.environ["EMAILAUTH_BUILD"] = a.build
    os.environ["PATH"] += ":/usr/sbin"
    sys.path.insert(0, INTEG)
    # 1,000 held connections need descriptors, in us and in the daemon.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)),
                                                hard))
    t0 = time.time()
    print("bench: %s" % machine(), flush=True)
    rows = Bench(a).run()
    print("\n" + machine() + "; %d s per run, %d pairs, %.0f s in all\n" % (
        a.duration, a.pairs, time.time() - t0))
    print(table(rows))
    for r in rows:
        if r["note"]:
            print("  - %s: %s" % (r["name"], r["note"]))
    failed = [r["name"] for r in rows if r["ok"] is False]
    scored = [r for r in rows if r["ok"] is not None]
    print("\n%d of %d targets met%s" % (
        len(scored) - len(failed), len(scored),
        "; not met: " + ", ".join(failed) if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
