"""HTTP on a bare socket, for what http.client will not send: smuggling
shapes, byte-at-a-time clients, oversized heads, chosen source addresses."""
import json
import socket
import time

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-xss-protection": "0",
}


class Response:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 else 0
        self.headers = {}
        self.header_list = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers.setdefault(k.strip().lower(), v.strip())
            self.header_list.append((k.strip().lower(), v.strip()))

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.raw[:300])


def connect(port, source=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s, timeout=5):
    """Reads one response (by Content-Length) or until the peer closes."""
    s.settimeout(timeout)
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if b"\r\n\r\n" in buf:
            head, _, body = buf.partition(b"\r\n\r\n")
            r = Response(buf)
            cl = r.headers.get("content-length")
            if cl is not None and len(body) >= int(cl):
                return Response(head + b"\r\n\r\n" + body[:int(cl)])
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return Response(buf) if buf else None


def request(port, data, source=None, timeout=5):
    """Sends raw bytes, returns the first response (or None)."""
    s = connect(port, source, timeout)
    try:
        s.sendall(data)
        return read_response(s, timeout)
    finally:
        s.close()


def closed_after(s, timeout=3):
    """True when the server closes the connection within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def build(method, path, headers=None, body=b"", host="localhost"):
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    hdrs = dict(headers or {})
    if body and "Content-Length" not in hdrs and \
            "Transfer-Encoding" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for k, v in hdrs.items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send(port, method, path, headers=None, body=b"", source=None):
    return request(port, build(method, path, headers, body), source)


def json_post(port, path, obj_or_bytes, headers=None, source=None):
    body = obj_or_bytes if isinstance(obj_or_bytes, (bytes, str)) \
        else json.dumps(obj_or_bytes)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return send(port, "POST", path, h, body, source)


def assert_security_headers(r, hsts=False):
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, (k, r)
    assert "permissions-policy" in r.headers, r
    assert "x-request-id" in r.headers, r
    assert ("strict-transport-security" in r.headers) == hsts, r


def assert_problem(r, status):
    assert r is not None, "no response"
    assert r.status == status, r
    assert r.headers.get("content-type") == "application/problem+json", r
    p = r.json()
    assert set(p) == {"type", "title", "status", "detail", "request_id"}, p
    assert p["status"] == status
    assert p["request_id"] == r.headers["x-request-id"]
    assert_security_headers(r, hsts=False)
    return p
