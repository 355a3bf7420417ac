"""Attack class abuse: password guessing and user enumeration against the
running daemon with its real abuse limits (file accounts).

Sign-in regulation (limits.login) counts failures per (user, address)
pair, per user and per address; past a threshold each further attempt
waits a doubling delay (429 + Retry-After) instead of locking anything:
the real user, from his own address, still signs in. Each test has its
own daemon (the counters live in the process), and checks that no
refused attempt opened a session.
"""
import json
import os
import statistics
import time

import pytest

from attackflow import (assert_refused, event_of, login, no_success_since,
                        same_refusal, send, sessions)
from authflow import USERS, config, write_users
from conftest import LENIENT_LIMITS

ALICE_PW = USERS["alice"][0]
BOB_PW = USERS["bob"][0]
THROTTLED = "too many failed sign-ins; retry later"

# The shipped login thresholds and delays; request rates off so that only
# the sign-in regulation answers.
LOGIN_LIMITS = ('limits = { auth = { rate = 0; }; api = { rate = 0; }; '
                'ops = { rate = 0; }; login = { pair = 5; user = 20; '
                'address = 30; window = 3600; delay = 1; '
                'delay_max = 900; }; };\n')
PROXY = "127.0.0.3"


@pytest.fixture
def regulated(tmp_path, daemon_factory):
    """A daemon with the given limits (default: the shipped sign-in
    regulation) and 127.0.0.3 as its one trusted proxy."""
    def make(limits=LOGIN_LIMITS):
        tmp = str(tmp_path)
        write_users(os.path.join(tmp, "users"), USERS)
        text = config(tmp, extra=limits).replace(
            "timeout = 5; };",
            'timeout = 5; trusted_proxies = [ "%s/32" ]; };' % PROXY)
        return daemon_factory(config_text=text)
    return make


def state(d):
    return sessions(os.path.join(d.dir, "state"))


def throttled(r, limit, d, inputs=()):
    """A 429 of the sign-in regulation for `limit`; returns Retry-After."""
    assert_refused(r, 429, inputs=inputs, detail=THROTTLED)
    ev = event_of(d, "login", r.headers["x-request-id"])
    assert ev["reason"] == "throttled" and ev["limit"] == limit, ev
    return int(r.headers["retry-after"])


def test_guessing_one_account_from_one_address(regulated):
    """Per (account, address): five wrong guesses, then every attempt
    waits twice as long as the last; the right password guessed while
    held back is refused like the rest (the attacker learns nothing);
    the real alice from her own address signs in."""
    d = regulated()
    attacker = "127.0.0.2"
    before = state(d)
    for i in range(5):
        r = login(d.port, "alice", "guess-%02d-x" % i, source=attacker)
        assert_refused(r, 401)
    waits = []
    for i in range(6):
        pw = ALICE_PW if i == 3 else "guess-%02d-y" % i
        r = login(d.port, "alice", pw, source=attacker)
        waits.append(throttled(r, "pair", d, inputs=[pw]))
    assert waits == [2, 4, 8, 16, 32, 64], waits
    assert state(d) == before
    no_success_since(d, 0)
    # Not a lockout: alice herself is let in at once.
    r = login(d.port, "alice", ALICE_PW, source="127.0.0.1")
    assert r.status == 200, r
    assert "guess-" not in d.log_text()


def test_delay_expires_it_is_not_a_lockout(regulated):
    """Past the threshold the wait is a delay: once it has passed, the
    next attempt is judged again (and a success clears the pair)."""
    d = regulated()
    for i in range(5):
        assert login(d.port, "bob", "wrong-%d-pw" % i).status == 401
    r = login(d.port, "bob", "wrong-5-pw")
    wait = throttled(r, "pair", d)
    assert wait == 2
    time.sleep(wait + 0.2)
    r = login(d.port, "bob", BOB_PW)
    assert r.status == 200, r
    # The pair was cleared by the success: five fresh failures allowed.
    for i in range(5):
        assert login(d.port, "bob", "again-%d-pw" % i).status == 401


def test_guessing_one_account_from_many_addresses(regulated):
    """Per account: 20 addresses with one guess each (no pair nor
    address count is reached) slow the account down; the real user,
    after the Retry-After, gets in."""
    d = regulated()
    before = state(d)
    for i in range(20):
        r = login(d.port, "alice", "spread-%02d-pw" % i,
                  source="127.0.2.%d" % (i + 1))
        assert_refused(r, 401)
    r = login(d.port, "alice", "spread-99-pw", source="127.0.2.100")
    wait = throttled(r, "user", d)
    # The right password from a fresh address is held back too.
    r = login(d.port, "alice", ALICE_PW, source="127.0.2.101")
    assert throttled(r, "user", d, inputs=[ALICE_PW]) >= wait
    assert state(d) == before
    no_success_since(d, 0)
    # Other accounts are not affected.
    assert login(d.port, "bob", BOB_PW, source="127.0.2.102").status == 200
    # A delay, not a lockout: alice waits it out and signs in.
    time.sleep(int(r.headers["retry-after"]) + 0.2)
    r = login(d.port, "alice", ALICE_PW, source="127.0.0.1")
    assert r.status == 200, r


def test_guessing_many_accounts_from_one_address(regulated):
    """Per address: one password sprayed over 30 names (real and not),
    then the address waits, even for a name it has not tried and with
    the right password; another address is not affected."""
    d = regulated()
    sprayer = "127.0.0.4"
    before = state(d)
    names = ["alice", "bob", "dave"] + ["user%02d" % i for i in range(27)]
    for n in names:
        r = login(d.port, n, "Spring2026!", source=sprayer)
        assert_refused(r, 401)
    r = login(d.port, "user99", "Spring2026!", source=sprayer)
    throttled(r, "address", d)
    r = login(d.port, "bob", BOB_PW, source=sprayer)
    throttled(r, "address", d, inputs=[BOB_PW])
    assert state(d) == before
    no_success_since(d, 0)
    assert login(d.port, "bob", BOB_PW, source="127.0.0.5").status == 200


def test_name_spellings_do_not_escape_the_count(regulated):
    """ALICE, ' alice ' and aLiCe are the same account to the backend,
    so they are one count."""
    d = regulated()
    for n in ("alice", "ALICE", " alice ", "aLiCe", "Alice"):
        assert login(d.port, n, "wrong-pw-1").status == 401
    r = login(d.port, "alice\t", ALICE_PW)
    assert r.status in (401, 429), r
    r = login(d.port, "ALICE", ALICE_PW)
    throttled(r, "pair", d, inputs=[ALICE_PW])


def test_spoofed_forwarded_for_does_not_escape_the_count(regulated):
    """From an untrusted peer a fresh X-Forwarded-For on every guess does
    not make a fresh (account, address) pair; from the trusted proxy it
    does (the control)."""
    d = regulated()
    for i in range(5):
        r = login(d.port, "alice", "xff-%d-pw" % i, source="127.0.0.2",
                  headers={"X-Forwarded-For": "198.51.100.%d" % (i + 1)})
        assert r.status == 401, r
    r = login(d.port, "alice", "xff-9-pw", source="127.0.0.2",
              headers={"X-Forwarded-For": "198.51.100.99"})
    throttled(r, "pair", d)
    assert event_of(d, "login", r.headers["x-request-id"])["client"] == \
        "127.0.0.2"
    # Control: through the proxy each forwarded address is its own pair.
    for i in range(6):
        r = login(d.port, "bob", "proxied-%d-pw" % i, source=PROXY,
                  headers={"X-Forwarded-For": "203.0.113.%d" % (i + 1)})
        assert r.status == 401, r


def test_request_flood_from_one_address(regulated):
    """The shipped request rates: /v1/login at 5/s, burst 20, per
    address; then 429 with Retry-After and RateLimit headers, while
    another address and the cheap routes are served."""
    d = regulated(limits="limits = { max_keys = 100000; };\n")
    # Answered without hashing (an empty password is refused on input),
    # so the flood outpaces the 5/s refill.
    got = [login(d.port, "flood%02d" % i, "", source="127.0.0.6")
           for i in range(26)]
    assert [r.status for r in got[:20]] == [401] * 20
    assert {r.status for r in got[20:]} == {429}
    r = got[-1]
    assert_refused(r, 429, detail="too many requests; retry later")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-limit"] == "20"
    assert r.headers["ratelimit-remaining"] == "0"
    assert login(d.port, "bob", BOB_PW, source="127.0.0.7").status == 200
    assert send(d.port, "GET", "/healthz", source="127.0.0.6").status == 200


# ----------------------------------------------------------------------
# User enumeration


@pytest.fixture
def open_daemon(tmp_path, daemon_factory):
    write_users(str(tmp_path / "users"), USERS)
    return daemon_factory(config_text=config(str(tmp_path)))


@pytest.mark.parametrize("user,password", [
    ("nosuchuser", "Wrong-Password-1"),
    ("nosuchuser", ALICE_PW),
    ("dave", "Wrong-Password-1"),       # exists, no role
    ("ALICE", "Wrong-Password-1"),
    ("alice", ""),
    ("alice", "x" * 2000),
    ("a" * 300, "Wrong-Password-1"),
    ("admin", "Wrong-Password-1"),
    ("root", "Wrong-Password-1"),
], ids=["unknown", "unknown-with-a-real-password", "no-role", "case",
        "empty-password", "long-password", "long-name", "admin", "root"])
def test_no_enumeration_by_status_message_or_headers(open_daemon, user,
                                                     password):
    """Every failed sign-in is the same answer as alice's wrong password:
    status, every header but Date and X-Request-Id, and the body but its
    request id."""
    d = open_daemon
    ref = login(d.port, "alice", "Wrong-Password-1")
    got = login(d.port, user, password)
    assert_refused(got, 401, inputs=[password] if password else [])
    assert same_refusal(ref, got), (ref, got)


def test_no_enumeration_while_throttled(regulated):
    """Held back, a real and a made-up account look alike too."""
    d = regulated()
    known = [login(d.port, "alice", "w-%d-pw" % i) for i in range(8)]
    unknown = [login(d.port, "nobody", "w-%d-pw" % i) for i in range(8)]
    assert [r.status for r in known] == [r.status for r in unknown]
    assert [r.status for r in known][-1] == 429
    for a, b in zip(known, unknown):
        assert same_refusal(a, b), (a, b)


def _latencies(d, user, n):
    import rawhttp as rh
    out = []
    s = rh.connect(d.port)
    try:
        for i in range(n):
            body = json.dumps({"username": user,
                               "password": "timing-%d-pw" % i}).encode()
            t0 = time.perf_counter()
            s.sendall(rh.build("POST", "/v1/login",
                               {"Content-Type": "application/json"}, body))
            r = rh.read_response(s)
            out.append(time.perf_counter() - t0)
            assert r is not None and r.status == 401, r
    finally:
        s.close()
    return out


def test_no_enumeration_by_timing_cheap(tmp_path, daemon_factory):
    """A cheap version of test_abuse.py's timing test: a real account
    with a wrong password and a made-up one take the same time (the file
    backend hashes for unknown users too), medians within 30 %."""
    write_users(str(tmp_path / "users"), USERS)
    d = daemon_factory(config_text=config(str(tmp_path)))
    assert "limits" in LENIENT_LIMITS
    _latencies(d, "bob", 5)  # warm up
    known, unknown = [], []
    for _ in range(3):
        known += _latencies(d, "alice", 8)
        unknown += _latencies(d, "nosuchuser", 8)
    mk, mu = statistics.median(known), statistics.median(unknown)
    assert abs(mk - mu) / max(mk, mu) < 0.30, (mk, mu)
