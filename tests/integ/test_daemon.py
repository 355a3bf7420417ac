"""emailauthd as a process: -t, start, health, metrics, reload, stop, TLS."""
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

import rawhttp as rh
from conftest import REPO, base_config, binary


def check(path):
    p = subprocess.run([binary("emailauthd"), "-t", "-c", path],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def test_sample_config_passes():
    path = os.path.join(REPO, "etc", "emailauthd.conf")
    rc, out = check(path)
    assert (rc, out) == (0, "%s: OK\n" % path)


@pytest.mark.parametrize("extra,line,msg", [
    ('tokens_ttl = 5;\n', 8, "unknown setting 'tokens_ttl'"),
    ('cors = { orgins = [ ]; };\n', 8, "unknown setting 'orgins'"),
    ('log = {\n  level = "info";\n  acess = true; };\n', 10,
     "unknown setting 'acess'"),
    ('cors = { max_age = 4294967296; };\n', 8, "out of range"),
    ('cors = { max_age = 100000; };\n', 8, "between 0 and 86400"),
    ('cors = { max_age = "600"; };\n', 8, "must be an integer"),
])
def test_bad_config_refused_with_line(tmp_path, extra, line, msg):
    conf = tmp_path / "e.conf"
    conf.write_text(base_config(str(tmp_path), extra))
    rc, out = check(str(conf))
    assert rc == 1
    assert out.startswith("%s:%d: " % (conf, line)), out
    assert msg in out


def test_world_readable_secret_refused_with_line(tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text(base_config(str(tmp_path)))
    os.chmod(tmp_path / "users", 0o644)
    rc, out = check(str(conf))
    assert rc == 1
    assert out.startswith("%s:5: 'file.path': " % conf), out
    assert "readable or writable by group or others" in out
    os.chmod(tmp_path / "users", 0o640)
    assert check(str(conf))[0] == 1
    os.chmod(tmp_path / "users", 0o600)
    assert check(str(conf)) == (0, "%s: OK\n" % conf)


def test_version_and_usage():
    p = subprocess.run([binary("emailauthd"), "--version"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("emailauthd ")
    p = subprocess.run([binary("emailauthd"), "--bogus"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "usage:" in p.stderr


def test_bad_config_stops_start(daemon_factory):
    d = daemon_factory(extra="bogus = 1;\n", start=False)
    with pytest.raises(RuntimeError):
        d.start()
    assert d.proc.wait(5) == 1
    ev = [e for e in d.events() if e["event"] == "config_invalid"]
    assert ev and "unknown setting 'bogus'" in ev[0]["error"]


def test_health_ready_and_headers(daemon):
    r = rh.send(daemon.port, "GET", "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    rh.assert_security_headers(r)
    r = rh.send(daemon.port, "GET", "/readyz")
    assert r.status == 200 and r.json() == {"status": "ready"}
    rh.assert_problem(rh.send(daemon.port, "GET", "/nope"), 404)
    rh.assert_problem(rh.send(daemon.port, "DELETE", "/healthz"), 405)


def test_metrics(daemon):
    d = daemon
    for _ in range(3):
        rh.send(d.port, "GET", "/healthz")
    rh.send(d.port, "GET", "/nope")
    # A request is counted when it completes, just after its answer went
    # out: give the last one a moment.
    for _ in range(50):
        r = rh.send(d.port, "GET", "/metrics")
        if b'status="404"} 1' in r.body:
            break
        time.sleep(0.02)
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    assert ('emailauth_http_requests_total{route="/healthz",method="GET",'
            'status="200"} 3') in text
    assert ('emailauth_http_requests_total{route="unmatched",method="",'
            'status="404"} 1') in text
    assert 'emailauth_http_request_duration_seconds_bucket{route="/healthz"' \
        in text


def test_metrics_refused_outside_allowlist(tmp_path, daemon_factory):
    text = base_config(str(tmp_path)).replace(
        "timeout = 5; };", 'timeout = 5; metrics_allow = [ "127.0.0.1/32" ]; };')
    d = daemon_factory(config_text=text)
    assert rh.send(d.port, "GET", "/metrics").status == 200
    rh.assert_problem(rh.send(d.port, "GET", "/metrics", source="127.0.0.2"),
                      403)


def test_sighup_with_broken_file_keeps_old_config(tmp_path, daemon_factory):
    good = base_config(str(tmp_path), 'cors = { origins = '
                       '[ "https://a.example" ]; };\n')
    d = daemon_factory(config_text=good)
    n = len(d.events())
    d.write_config(good + "this is not a config\n")
    d.signal(signal.SIGHUP)
    ev = d.wait_event("reload_failed", after=n)
    assert "kept the running configuration" in ev["message"]
    r = rh.send(d.port, "GET", "/healthz", {"Origin": "https://a.example"})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == "https://a.example"
    # A good file is taken: the new origin list applies at once.
    n = len(d.events())
    d.write_config(good.replace("a.example", "b.example"))
    d.signal(signal.SIGHUP)
    d.wait_event("reloaded", after=n)
    r = rh.send(d.port, "GET", "/healthz", {"Origin": "https://a.example"})
    assert "access-control-allow-origin" not in r.headers
    r = rh.send(d.port, "GET", "/healthz", {"Origin": "https://b.example"})
    assert r.headers["access-control-allow-origin"] == "https://b.example"


def test_no_request_fails_during_reloads(tmp_path, daemon_factory):
    good = base_config(str(tmp_path))
    d = daemon_factory(config_text=good)
    failures, done = [], threading.Event()
    count = [0]

    def load():
        while not done.is_set():
            try:
                with urllib.request.urlopen(d.url("/healthz"), timeout=5) as r:
                    if r.status != 200:
                        failures.append(r.status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))
            count[0] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            d.write_config(good if i % 3 else good + "broken {\n")
            d.signal(signal.SIGHUP)
            time.sleep(0.03)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert failures == []
    assert count[0] > 50
    assert d.proc.poll() is None


def test_sigterm_stops_cleanly(daemon):
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(6) == 0
    assert [e["event"] for e in daemon.events()][-2:] == ["stopping",
                                                          "stopped"]


def make_cert(tmp_path):
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return str(cert), str(key)


def test_tls_listener(tmp_path, daemon_factory):
    cert, key = make_cert(tmp_path)
    text = base_config(str(tmp_path)).replace(
        "timeout = 5; };",
        'timeout = 5; tls = { cert = "%s"; key = "%s"; }; };' % (cert, key))
    d = daemon_factory(config_text=text)
    ctx = ssl.create_default_context(cafile=cert)
    with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % d.port,
                                context=ctx, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    # TLS 1.1 and older are refused by the server (the client offers them:
    # SECLEVEL=0 lifts OpenSSL's own floor).
    for flag, ok in (("-tls1_1", False), ("-tls1", False), ("-tls1_2", True)):
        p = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % d.port, flag, "-cipher",
                            "DEFAULT@SECLEVEL=0"], input=b"",
                           capture_output=True, timeout=10)
        out = p.stdout.decode(errors="replace")
        assert ("Cipher is" in out and "Cipher is (NONE)" not in out) == ok, \
            (flag, out[-500:])
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = ssl.create_default_context(cafile=cert)
        c.minimum_version = c.maximum_version = v
        with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % d.port,
                                    context=c, timeout=5) as r:
            assert r.status == 200


def test_tls_key_readable_by_others_refused(tmp_path, daemon_factory):
    cert, key = make_cert(tmp_path)
    os.chmod(key, 0o644)
    text = base_config(str(tmp_path)).replace(
        "timeout = 5; };",
        'timeout = 5; tls = { cert = "%s"; key = "%s"; }; };' % (cert, key))
    conf = tmp_path / "t.conf"
    conf.write_text(text)
    rc, out = check(str(conf))
    assert rc == 1 and "'listen.tls.key'" in out


def test_role_map_writable_by_others_refused(tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text(base_config(str(tmp_path)))
    os.chmod(tmp_path / "roles.conf", 0o666)
    rc, out = check(str(conf))
    assert rc == 1 and "'roles_file'" in out and "writable" in out
    os.chmod(tmp_path / "roles.conf", 0o644)
    assert check(str(conf))[0] == 0
