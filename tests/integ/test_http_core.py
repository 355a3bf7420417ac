"""The shared HTTP core (src/http/) on the wire, through echo_server.c:
header set, body caps, smuggling shapes, JSON rules, CORS, client address,
connection limits."""
import json
import socket
import time

import pytest

import rawhttp as rh


def test_security_headers_on_every_status(echo):
    p = echo.port
    cases = [
        (200, rh.send(p, "GET", "/hello")),
        (400, rh.json_post(p, "/echo", b"{not json")),
        (404, rh.send(p, "GET", "/nowhere")),
        (405, rh.send(p, "PUT", "/hello")),
        (413, rh.json_post(p, "/echo", b"x" * 9000)),
        (415, rh.send(p, "POST", "/echo", {"Content-Type": "text/plain"},
                      b"{}")),
    ]
    for status, r in cases:
        assert r is not None and r.status == status, (status, r)
        rh.assert_security_headers(r)
        assert r.headers.get("vary") == "Origin"
        if status != 200:
            rh.assert_problem(r, status)


def test_405_carries_allow(echo):
    r = rh.send(echo.port, "POST", "/hello")
    rh.assert_problem(r, 405)
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_options_and_head(echo):
    r = rh.send(echo.port, "OPTIONS", "/echo")
    assert r.status == 204 and r.headers["allow"] == "POST, OPTIONS"
    s = rh.connect(echo.port)
    s.sendall(rh.build("HEAD", "/hello"))
    r = rh.read_response(s, timeout=1)
    s.close()
    assert r.status == 200 and r.body == b""


def test_prefix_route_takes_exactly_one_segment(echo):
    assert rh.send(echo.port, "DELETE", "/items/abc").status == 200
    rh.assert_problem(rh.send(echo.port, "DELETE", "/items/a/b"), 404)
    rh.assert_problem(rh.send(echo.port, "DELETE", "/items/"), 404)


def test_413_decided_from_content_length_without_reading_body(echo):
    s = rh.connect(echo.port)
    # Announce 10 MB but send none of it: the answer must come anyway.
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: 10000000\r\n\r\n")
    r = rh.read_response(s, timeout=3)
    rh.assert_problem(r, 413)
    assert r.headers.get("connection") == "close"
    assert rh.closed_after(s)
    s.close()


def test_chunked_body_over_cap_is_413(echo):
    chunk = b"a" * 4000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    body += b"0\r\n\r\n"
    r = rh.request(echo.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + body)
    rh.assert_problem(r, 413)


def test_chunked_body_within_cap_is_read(echo):
    doc = json.dumps({"username": "u", "password": "p"}).encode()
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc)
    r = rh.request(echo.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert r.status == 200 and r.json() == {"username": "u"}


def test_endless_chunked_body_is_cut_off(echo):
    s = rh.connect(echo.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"b" * 65536)
    cut = False
    try:
        for _ in range(64):  # 4 MiB, well past the cap + discard limit
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        cut = True
    if not cut:
        cut = rh.closed_after(s, timeout=3)
    s.close()
    assert cut


def test_content_length_with_transfer_encoding_refused(echo):
    smuggled = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    s = rh.connect(echo.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: %d\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" % len(body) + body)
    r = rh.read_response(s)
    rh.assert_problem(r, 400)
    # The connection is closed: the smuggled request is never answered.
    rest = b""
    try:
        s.settimeout(2)
        while True:
            c = s.recv(65536)
            if not c:
                break
            rest += c
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    assert b"hello" not in r.body + rest


def test_two_content_lengths_refused(echo):
    r = rh.request(echo.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                   b"Content-Length: 40\r\n\r\n{}")
    rh.assert_problem(r, 400)


@pytest.mark.parametrize("te", [b"gzip", b"chunked, identity", b"identity"])
def test_other_transfer_encodings_refused(echo, te):
    r = rh.request(echo.port, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n")
    # MHD itself closes on some of these; either way nothing is served.
    assert r is None or r.status == 400


# "Qz" marks the client's values: none may come back in the error.
BAD_JSON = [
    ("malformed", b'{"username": "Qz1", "password": '),
    ("duplicate key", b'{"username":"Qz1","password":"Qz2","username":"Qz3"}'),
    ("unknown field", b'{"username":"Qz1","password":"Qz2","Qzadmin":true}'),
    ("wrong type", b'{"username":1,"password":"Qz2"}'),
    ("null value", b'{"username":null,"password":"Qz2"}'),
    ("missing field", b'{"username":"Qz1"}'),
    ("invalid utf-8", b'{"username":"Qz\xff\xfe","password":"Qz2"}'),
    ("overlong utf-8", b'{"username":"Qz\xc0\xaf","password":"Qz2"}'),
    ("raw NUL", b'{"username":"Qz\x00b","password":"Qz2"}'),
    ("escaped NUL", b'{"username":"Qz\\u0000b","password":"Qz2"}'),
    ("top-level array", b'["Qz1","Qz2"]'),
    ("trailing data", b'{"username":"Qz1","password":"Qz2"} {}'),
    ("empty body", b""),
]


@pytest.mark.parametrize("name,body", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_json_refused(echo, name, body):
    r = rh.json_post(echo.port, "/echo", body)
    p = rh.assert_problem(r, 400)
    assert b"Qz" not in r.body
    assert p["detail"]


@pytest.mark.parametrize("ctype,status", [
    ("application/json", 200),
    ("application/json; charset=utf-8", 200),
    ("Application/JSON;charset=\"UTF-8\"", 200),
    ("application/json; charset=latin1", 415),
    ("text/plain", 415),
    ("application/jsonx", 415),
    ("application/x-www-form-urlencoded", 415),
    (None, 415),
])
def test_content_type(echo, ctype, status):
    h = {"Content-Type": ctype} if ctype else {}
    r = rh.send(echo.port, "POST", "/echo", h,
                b'{"username":"a","password":"b"}')
    assert r.status == status, r
    if status == 415:
        rh.assert_problem(r, 415)


def test_cors_allowed_and_foreign_origin(echo):
    r = rh.send(echo.port, "GET", "/hello", {"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["vary"] == "Origin"
    r = rh.send(echo.port, "GET", "/hello", {"Origin": "https://evil.example"})
    assert r.status == 200
    assert "access-control-allow-origin" not in r.headers
    r = rh.send(echo.port, "GET", "/hello",
                {"Origin": "https://app.example.evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_preflight(echo):
    r = rh.send(echo.port, "OPTIONS", "/echo", {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204, r
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers.get("access-control-allow-credentials") is None
    r = rh.send(echo.port, "OPTIONS", "/echo", {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST"})
    rh.assert_problem(r, 403)
    assert "access-control-allow-origin" not in r.headers
    r = rh.send(echo.port, "OPTIONS", "/echo", {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "DELETE"})
    rh.assert_problem(r, 405)


def test_client_address_from_trusted_proxy(echo):
    # echo_server trusts 127.0.0.1 only.
    r = rh.send(echo.port, "GET", "/ip",
                {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert r.json() == {"client": "198.51.100.7"}
    raw = (b"GET /ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\n"
           b"X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n")
    assert rh.request(echo.port, raw).json() == {"client": "3.3.3.3"}
    r = rh.send(echo.port, "GET", "/ip", {"X-Forwarded-For": "not-an-ip"})
    assert r.json() == {"client": "127.0.0.1"}


def test_spoofed_forwarded_for_from_untrusted_peer_ignored(echo):
    r = rh.send(echo.port, "GET", "/ip", {"X-Forwarded-For": "198.51.100.7"},
                source="127.0.0.2")
    assert r.json() == {"client": "127.0.0.2"}


def test_oversized_head_gets_431(echo):
    r = rh.send(echo.port, "GET", "/hello", {"X-Big": "a" * 20000})
    assert r is not None and r.status == 431


def test_idle_flood_from_one_address_does_not_block_others(echo_factory):
    e = echo_factory(8, 30)
    hogs = []
    try:
        # Fill the per-address limit from 127.0.0.2, with idle connections
        # and byte-at-a-time (slowloris) ones.
        for i in range(12):
            s = rh.connect(e.port, source="127.0.0.2")
            if i % 2:
                s.sendall(b"GET /hello HTTP/1.1\r\n")
            hogs.append(s)
        time.sleep(0.3)
        for s in hogs[:4]:
            try:
                s.sendall(b"X")
            except OSError:
                pass
        # Another address is still served, promptly.
        t0 = time.time()
        for _ in range(5):
            r = rh.send(e.port, "GET", "/hello", source="127.0.0.1")
            assert r is not None and r.status == 200
        assert time.time() - t0 < 3
        # The 9th and later connections of the flooding address were shut.
        refused = sum(1 for s in hogs[8:] if rh.closed_after(s, 1))
        assert refused == 4
    finally:
        for s in hogs:
            s.close()


def test_idle_connection_times_out(echo_factory):
    e = echo_factory(8, 1)
    s = rh.connect(e.port)
    t0 = time.time()
    assert rh.closed_after(s, timeout=4)
    assert time.time() - t0 < 3.5
    s.close()


def test_request_ids_are_unique(echo):
    ids = {rh.send(echo.port, "GET", "/hello").headers["x-request-id"]
           for _ in range(20)}
    assert len(ids) == 20
