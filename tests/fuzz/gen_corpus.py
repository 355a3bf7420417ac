#!/usr/bin/python3
"""Writes the fuzzers' test keys and token seed corpora.

    tests/fuzz/gen_corpus.py            (from the top of the tree)

Generates, once, an EC P-256 key (kid: its RFC 7638 thumbprint, so that
tok_verify() takes its known-header path) and an RSA 2048 key (kid
"rsa.fuzz", not base64url, so every token for it takes the header parsing
path). Writes:

  tests/fuzz/fuzz_keys.h           the public JWKS and the private PEMs
                                   (test keys: they sign nothing real)
  tests/data/fuzz/jws/*            compact JWS seeds, valid and invalid
  tests/data/fuzz/bearer/*         Authorization header values
  tests/data/fuzz/jwks/*           JWKS documents

Run it again only to replace the keys: every signed seed changes with them.
Needs Debian's python3-cryptography.
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature)

ISS = "https://auth.example.com"
AUD = "email-api"
NOW = 1700000000          # the fuzzers' fixed clock (struct tok_expect)
FAR = 4102444800          # 2100-01-01: a far-future exp
RSA_KID = "rsa.fuzz"

TOP = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(TOP, "tests", "data", "fuzz")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def ec_jwk(pub):
    nums = pub.public_numbers()
    x, y = b64u(uint(nums.x, 32)), b64u(uint(nums.y, 32))
    # RFC 7638: the required members, sorted, no whitespace.
    thumb = b64u(hashlib.sha256(compact(
        {"crv": "P-256", "kty": "EC", "x": x, "y": y}).encode()).digest())
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": thumb,
            "alg": "ES256", "use": "sig"}


def rsa_jwk(pub):
    nums = pub.public_numbers()
    return {"kty": "RSA", "n": b64u(uint(nums.n)), "e": b64u(uint(nums.e)),
            "kid": RSA_KID, "alg": "RS256", "use": "sig"}


def sign(key, msg):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
        return uint(r, 32) + uint(s, 32)
    return key.sign(msg, padding.PKCS1v15(), hashes.SHA256())


def token(key, header, claims, sig=None):
    """header and claims: dicts (dumped compact, in the given order) or
    raw strings."""
    h = header if isinstance(header, str) else compact(header)
    c = claims if isinstance(claims, str) else compact(claims)
    msg = (b64u(h.encode()) + "." + b64u(c.encode())).encode()
    if sig is None:
        sig = sign(key, msg)
    return msg.decode() + "." + b64u(sig)


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def c_string(name, text):
    # Lines of the text, long ones cut into 64-character pieces.
    lines = []
    for l in text.splitlines(keepends=True):
        body, nl = l.rstrip("\n"), l[len(l.rstrip("\n")):]
        cut = [body[i:i + 64] for i in range(0, len(body), 64)] or [""]
        cut[-1] += nl
        lines += cut
    out = "static const char %s[] =\n" % name
    out += "\n".join('    "%s"' % l.replace("\\", "\\\\").replace(
        '"', '\\"').replace("\n", "\\n") for l in lines)
    return out + ";\n"


def write(sub, name, data):
    d = os.path.join(DATA, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def main():
    eck = ec.generate_private_key(ec.SECP256R1())
    rsak = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ecj, rsaj = ec_jwk(eck.public_key()), rsa_jwk(rsak.public_key())
    kid = ecj["kid"]
    jwks = compact({"keys": [ecj, rsaj]})

    with open(os.path.join(TOP, "tests", "fuzz", "fuzz_keys.h"), "w") as f:
        f.write("/*\n * Test keys of the token fuzzers, written by "
                "tests/fuzz/gen_corpus.py\n * with the seeds of "
                "tests/data/fuzz/jws/ they signed. They guard\n * nothing: "
                "never use them outside the fuzzers.\n */\n")
        f.write("#ifndef EA_TESTS_FUZZ_KEYS_H\n#define EA_TESTS_FUZZ_KEYS_H\n\n")
        f.write('#define FUZZ_ISS    "%s"\n#define FUZZ_AUD    "%s"\n'
                % (ISS, AUD))
        f.write("#define FUZZ_NOW    %dLL\n#define FUZZ_EC_KID \"%s\"\n\n"
                % (NOW, kid))
        f.write("/* clang-format off */\n")
        f.write(c_string("fuzz_jwks", jwks) + "\n")
        f.write(c_string("fuzz_ec_pem", pem(eck)) + "\n")
        f.write("/* clang-format on */\n\n#endif\n")

    ok = {"iss": ISS, "aud": AUD, "sub": "alice", "exp": FAR,
          "iat": NOW - 10, "nbf": NOW - 10, "sid": "s1",
          "roles": ["analyst"], "perm": ["emails:read"]}
    # The header tok_sign() writes, byte for byte: the fast path.
    fast = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    rh = {"alg": "RS256", "kid": RSA_KID, "typ": "JWT"}
    seeds = {
        "es256-valid": token(eck, fast, ok),
        "es256-minimal": token(eck, fast, {"iss": ISS, "aud": AUD,
                                           "sub": "a", "exp": FAR}),
        "es256-aud-array": token(eck, fast, dict(ok, aud=["x", AUD])),
        "es256-header-reordered": token(eck, {"kid": kid, "alg": "ES256"}, ok),
        "es256-header-jku-ignored": token(eck, {
            "alg": "ES256", "kid": kid, "jku": "https://evil.example/jwks",
            "x5u": "https://evil.example/x"}, ok),
        "rs256-valid": token(rsak, rh, ok),
        "rs256-aud-array": token(rsak, rh, dict(ok, aud=[AUD])),
        "expired": token(eck, fast, dict(ok, exp=NOW - 3600)),
        "not-yet-valid": token(eck, fast, dict(ok, nbf=FAR - 1)),
        "bad-issuer": token(eck, fast, dict(ok, iss="https://evil.example")),
        "bad-audience": token(eck, fast, dict(ok, aud="other")),
        "aud-not-strings": token(eck, fast, dict(ok, aud=[1, AUD])),
        "exp-string": token(eck, fast, dict(ok, exp=str(FAR))),
        "exp-real": token(eck, fast, dict(ok, exp=4102444800.5)),
        "sub-empty": token(eck, fast, dict(ok, sub="")),
        "no-sub": token(eck, fast, {"iss": ISS, "aud": AUD, "exp": FAR}),
        "claims-array": token(eck, fast, "[1,2,3]"),
        "claims-duplicate": token(eck, fast, '{"iss":"%s","aud":"%s",'
                                  '"sub":"a","sub":"b","exp":%d}'
                                  % (ISS, AUD, FAR)),
        "header-crit": token(eck, dict(fast, crit=["exp"]), ok),
        "header-typ-other": token(eck, dict(fast, typ="at+jwt"), ok),
        "header-no-kid": token(eck, {"alg": "ES256", "typ": "JWT"}, ok),
        "header-unknown-kid": token(eck, dict(fast, kid="nope"), ok),
        "alg-none": token(eck, {"alg": "none", "kid": kid}, ok, sig=b"x"),
        "alg-hs256": token(eck, {"alg": "HS256", "kid": kid}, ok,
                           sig=b"\0" * 32),
        "alg-confusion-rs-on-ec": token(rsak, {"alg": "RS256", "kid": kid},
                                        ok),
        "bad-signature": token(eck, fast, ok, sig=b"\1" * 64),
        "short-signature": token(eck, fast, ok, sig=b"\1" * 63),
    }
    for name, tok in seeds.items():
        write("jws", name, tok)
    write("jws", "two-segments", b64u(compact(fast).encode()) + ".e30")
    write("jws", "four-segments", seeds["es256-valid"] + ".AA")
    write("jws", "padded", seeds["es256-valid"] + "==")

    write("bearer", "valid", "Bearer " + seeds["es256-valid"])
    write("bearer", "valid-rs256", "Bearer " + seeds["rs256-valid"])
    write("bearer", "lowercase-scheme", "bearer " + seeds["es256-valid"])
    write("bearer", "two-spaces", "Bearer  " + seeds["es256-valid"])
    write("bearer", "trailing-space", "Bearer " + seeds["es256-valid"] + " ")
    write("bearer", "expired", "Bearer " + seeds["expired"])
    write("bearer", "basic", "Basic YWxpY2U6c2VjcmV0")
    write("bearer", "empty", "Bearer ")
    write("bearer", "garbage", "Bearer a.b.c")
    write("bearer", "alg-none", "Bearer " + seeds["alg-none"])

    write("jwks", "ec-and-rsa", jwks)
    write("jwks", "ec-only", compact({"keys": [ecj]}))
    write("jwks", "rsa-only", compact({"keys": [rsaj]}))
    write("jwks", "no-alg-no-use", compact({"keys": [
        {k: v for k, v in ecj.items() if k not in ("alg", "use")}]}))
    write("jwks", "use-enc", compact({"keys": [dict(ecj, use="enc")]}))
    write("jwks", "alg-mismatch", compact({"keys": [dict(ecj, alg="RS256")]}))
    write("jwks", "duplicate-kid", compact({"keys": [ecj, dict(
        rsaj, kid=kid)]}))
    write("jwks", "bad-point", compact({"keys": [dict(
        ecj, y=b64u(b"\1" * 32))]}))
    write("jwks", "p384", compact({"keys": [dict(ecj, crv="P-384")]}))
    write("jwks", "rsa-small", compact({"keys": [dict(
        rsaj, n=b64u(b"\xc1" * 64))]}))
    write("jwks", "rsa-even-e", compact({"keys": [dict(rsaj, e="AQAA")]}))
    write("jwks", "oct-key", compact({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
    write("jwks", "too-many", compact({"keys": [ecj] * 17}))
    write("jwks", "empty", '{"keys":[]}')
    write("jwks", "not-array", '{"keys":{}}')
    write("jwks", "kid-empty", compact({"keys": [dict(ecj, kid="")]}))
    write("jwks", "private-member-ignored", compact({"keys": [dict(
        ecj, d=b64u(b"\2" * 32))]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
