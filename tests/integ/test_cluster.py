"""Several nodes (issue #11): two emailauthd on different ports sharing
one private redis-server (tests/integ/redis_fixture.py) and the same
signing keys. Sessions, refresh rotation, reuse detection, logout and
sign-in throttling are shared; a Redis outage gives 503 and not-ready
without a crash, and the service comes back by itself; the SQLite
default needs no Redis."""
import os
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

import rawhttp as rh
import secrets_scan
from authflow import USERS, Api, config, remember_tokens, write_users
from conftest import Daemon, binary
from redis_fixture import REDIS_PASSWORD, redis, redis_factory  # noqa: F401

ALICE_PW = USERS["alice"][0]
BOB_PW = USERS["bob"][0]

# Sign-in regulation on (pair 3), request rates off.
LOGIN_LIMITS = ('limits = { auth = { rate = 0; }; api = { rate = 0; }; '
                'ops = { rate = 0; }; login = { pair = 3; user = 50; '
                'address = 100; delay = 1; delay_max = 900; }; };\n')
NO_LIMITS = ('limits = { auth = { rate = 0; }; api = { rate = 0; }; '
             'ops = { rate = 0; }; login = { pair = 0; user = 0; '
             'address = 0; }; };\n')


def session_conf(r, node_dir, password=True):
    pw = ""
    if password:
        pw = 'password_file = "%s"; ' % r.password_file(
            os.path.join(node_dir, "redis.pass"))
    return 'session = { backend = "redis"; uri = "%s"; %s};\n' % (
        r.uri(), pw)


class Cluster:
    """Nodes a and b in their own directories, one Redis, one key set."""

    def __init__(self, tmp_path, r, limits=NO_LIMITS):
        self.redis = r
        self.nodes = []
        for name in ("a", "b"):
            d = str(tmp_path / name)
            os.makedirs(d)
            write_users(os.path.join(d, "users"), USERS)
            text = config(d, extra=session_conf(r, d) + limits)
            node = Daemon(d, text, name="emailauthd-" + name)
            if name == "b":
                # The operator deploys node a's keys to every node.
                shutil.copytree(os.path.join(tmp_path, "a", "state", "keys"),
                                os.path.join(d, "state", "keys"))
                os.chmod(os.path.join(d, "state"), 0o700)
            node.start()
            node.api = Api(node.port)
            self.nodes.append(node)

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture
def cluster_factory(tmp_path, redis):  # noqa: F811
    made = []

    def make(limits=NO_LIMITS):
        c = Cluster(tmp_path, redis, limits)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()


def get(node, path):
    try:
        with urllib.request.urlopen(node.url(path), timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def metrics(node):
    st, _, text = get(node, "/metrics")
    assert st == 200
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def test_jwks_identical_on_every_node(cluster):
    a, b = cluster.nodes
    assert get(a, "/.well-known/jwks.json")[2] == \
        get(b, "/.well-known/jwks.json")[2]
    assert metrics(a)["emailauth_limiter_shared"] == 1


def test_refresh_on_b_reuse_on_a_revokes_on_both(cluster):
    a, b = cluster.nodes
    st, _, first = a.api.login("alice", ALICE_PW)
    remember_tokens(first)
    assert st == 200, first
    # A token issued by a verifies on b (same keys, shared session).
    assert b.api.userinfo(first["access_token"])[0] == 200
    st, _, second = b.api.refresh(first["refresh_token"])
    remember_tokens(second)
    assert st == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    # The rotated-away token, presented at a: refused, session revoked.
    assert a.api.refresh(first["refresh_token"])[0] == 401
    for n in (a, b):
        assert n.api.refresh(second["refresh_token"])[0] == 401
        assert n.api.userinfo(second["access_token"])[0] == 401
    assert any(e.get("event") == "refresh_token_reused"
               for e in a.events())


def test_logout_on_b_refused_refresh_on_a(cluster):
    a, b = cluster.nodes
    st, _, doc = a.api.login("bob", BOB_PW)
    remember_tokens(doc)
    assert st == 200
    assert b.api.logout(doc["refresh_token"])[0] == 204
    st, hdrs, _ = a.api.refresh(doc["refresh_token"])
    assert st == 401
    assert a.api.userinfo(doc["access_token"])[0] == 401


def test_one_refresh_wins_when_both_nodes_race(cluster):
    a, b = cluster.nodes
    for _ in range(5):
        st, _, doc = a.api.login("alice", ALICE_PW)
        remember_tokens(doc)
        results = []
        barrier = threading.Barrier(4)

        def go(node):
            barrier.wait()
            st, _, d = node.api.refresh(doc["refresh_token"])
            remember_tokens(d)
            results.append(st)

        ts = [threading.Thread(target=go, args=(n,))
              for n in (a, b, a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        # Rotated at most once; every other presentation is a reuse.
        assert results.count(200) == 1 and set(results) == {200, 401}, \
            results


def test_every_key_has_a_ttl(cluster):
    a, b = cluster.nodes
    st, _, doc = a.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    st, _, doc2 = b.api.refresh(doc["refresh_token"])
    remember_tokens(doc2)
    assert b.api.logout(doc2["refresh_token"])[0] == 204
    keys = cluster.redis.raw("KEYS", "ea:*").split()
    kinds = {k.split(":")[1] for k in keys}
    assert {"s", "t", "u", "rev"} <= kinds, keys
    for k in keys:
        ttl = int(cluster.redis.raw("TTL", k))
        assert ttl > 0, (k, ttl)
    # Only hashes of refresh tokens are stored, never the tokens.
    dump = cluster.redis.raw("KEYS", "*")
    for t in (doc["refresh_token"], doc2["refresh_token"]):
        assert t not in dump


def test_guesses_over_both_nodes_are_throttled_as_one(cluster_factory):
    c = cluster_factory(limits=LOGIN_LIMITS)
    a, b = c.nodes
    statuses = []
    for i in range(6):
        node = (a, b)[i % 2]
        r = rh.json_post(node.port, "/v1/login",
                         {"username": "alice", "password": "guess-%d" % i})
        secrets_scan.record("login", r.body)
        statuses.append(r.status)
    # Three failures in all, then held back, whichever node is asked
    # (counted per node, each would allow three).
    assert statuses[:3] == [401] * 3, statuses
    assert set(statuses[3:]) == {429}, statuses
    throttled = [e for n in (a, b) for e in n.events()
                 if e.get("reason") == "throttled"]
    assert throttled and all(e["limit"] == "pair" for e in throttled)
    # Alice herself, from another address, is not locked out.
    r = rh.json_post(b.port, "/v1/login",
                     {"username": "alice", "password": ALICE_PW},
                     source="127.0.0.2")
    assert r.status == 200
    remember_tokens(r.json())
    assert metrics(a)["emailauth_limiter_fallback"] == 0


def wait_until(fn, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def test_redis_outage_503_not_ready_then_recovers(cluster_factory):
    c = cluster_factory(limits=LOGIN_LIMITS)
    a, b = c.nodes
    st, _, doc = a.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    assert st == 200
    assert get(a, "/readyz")[0] == 200

    c.redis.stop()
    for n in (a, b):
        st, hdrs, body = n.api.login("alice", ALICE_PW)
        assert st == 503, body
        assert int(hdrs["Retry-After"]) > 0
        # A wrong password gets the same 503: no password is checked
        # while no session could be kept, so an outage is no oracle.
        st, _, body = n.api.login(
            "alice", secrets_scan.register("Wrong-Outage-Pass-1"))
        assert st == 503, body
        assert n.api.refresh(doc["refresh_token"])[0] == 503
        assert n.api.userinfo(doc["access_token"])[0] == 503
        st, hdrs, _ = get(n, "/readyz")
        assert st == 503 and "Retry-After" in hdrs
        assert get(n, "/healthz")[0] == 200
        # The limiter counts locally meanwhile, and says so.
        m = metrics(n)
        assert m["emailauth_limiter_fallback"] == 1
        assert m["emailauth_limiter_fallback_total"] >= 1
        assert n.proc.poll() is None
    for n in (a, b):
        ev = [e for e in n.events() if e.get("event") == "limiter_fallback"]
        assert len(ev) == 1 and ev[0]["level"] == "warn", ev

    c.redis.start()
    for n in (a, b):
        assert wait_until(lambda: get(n, "/readyz")[0] == 200), \
            n.log_text()[-3000:]
        st, _, doc = n.api.login("alice", ALICE_PW)
        remember_tokens(doc)
        assert st == 200, doc
        st, _, doc2 = n.api.refresh(doc["refresh_token"])
        remember_tokens(doc2)
        assert st == 200
        assert metrics(n)["emailauth_limiter_fallback"] == 0
        assert any(e.get("event") == "limiter_restored" for e in n.events())
        assert any(e.get("event") == "session_store_restored"
                   for e in n.events())
        assert n.proc.poll() is None


def test_daemon_starts_while_redis_is_down(tmp_path, redis_factory):  # noqa
    r = redis_factory(password=REDIS_PASSWORD)
    r.stop()
    d = str(tmp_path / "n")
    os.makedirs(d)
    write_users(os.path.join(d, "users"), USERS)
    node = Daemon(d, config(d, extra=session_conf(r, d) + NO_LIMITS))
    try:
        node.start()
        node.api = Api(node.port)
        assert get(node, "/readyz")[0] == 503
        assert node.api.login("alice", ALICE_PW)[0] == 503
        r.start()
        assert wait_until(lambda: get(node, "/readyz")[0] == 200)
        st, _, doc = node.api.login("alice", ALICE_PW)
        remember_tokens(doc)
        assert st == 200
    finally:
        node.stop()


def test_wrong_redis_password_is_not_ready_and_not_logged(
        tmp_path, redis_factory):  # noqa: F811
    r = redis_factory(password=REDIS_PASSWORD)
    d = str(tmp_path / "n")
    os.makedirs(d)
    write_users(os.path.join(d, "users"), USERS)
    wrong = secrets_scan.register("Wrong-Redis-Pass-8812")
    path = os.path.join(d, "wrong.pass")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(wrong + "\n")
    text = config(d, extra='session = { backend = "redis"; uri = "%s"; '
                  'password_file = "%s"; };\n' % (r.uri(), path) + NO_LIMITS)
    node = Daemon(d, text)
    try:
        node.start()
        node.api = Api(node.port)
        assert get(node, "/readyz")[0] == 503
        assert node.api.login("alice", ALICE_PW)[0] == 503
        ev = [e for e in node.events()
              if e.get("event") == "session_store_error"]
        assert ev and ev[0]["op"] == "auth"
        # Without a password at all: refused by Redis just the same.
        text2 = text.replace('password_file = "%s"; ' % path, "")
        node.stop()
        node.write_config(text2)
        node.start()
        assert get(node, "/readyz")[0] == 503
    finally:
        node.stop()
    # The secrets scan at the end checks neither password reached a log.


@pytest.mark.parametrize("session,message", [
    ('backend = "redis"; tls = true;', "no TLS"),
    ('backend = "redis"; uri = "redis://:pw@127.0.0.1:6379/0";',
     "without a password"),
    ('backend = "redis"; uri = "rediss://127.0.0.1:6379/0";',
     "rediss:// is not supported"),
    ('backend = "redis"; uri = "redis://127.0.0.1:99999";', "redis://HOST"),
    ('uri = "redis://127.0.0.1:6379/0";', "needs 'session.backend"),
    ('backend = "memcached";', "must be \"sqlite\" or \"redis\""),
])
def test_config_refusals(tmp_path, session, message):
    d = str(tmp_path)
    write_users(os.path.join(d, "users"), USERS)
    conf = os.path.join(d, "emailauthd.conf")
    with open(conf, "w") as f:
        f.write(config(d, extra="session = { %s };\n" % session))
    p = subprocess.run([binary("emailauthd"), "-t", "-c", conf],
                       capture_output=True, text=True)
    assert p.returncode == 1 and message in p.stderr, p.stderr


def test_sqlite_default_needs_no_redis(tmp_path, daemon_factory):
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=config(str(tmp_path)))
    d.api = Api(d.port)
    st, _, doc = d.api.login("alice", ALICE_PW)
    remember_tokens(doc)
    assert st == 200
    st, _, doc2 = d.api.refresh(doc["refresh_token"])
    remember_tokens(doc2)
    assert st == 200
    assert get(d, "/readyz")[0] == 200
    m = metrics(d)
    assert m["emailauth_limiter_shared"] == 0
    assert m["emailauth_limiter_fallback"] == 0
    assert os.path.exists(str(tmp_path / "state" / "sessions.db"))
