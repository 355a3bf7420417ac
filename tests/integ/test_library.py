"""libemailauth as an outside project sees it: installed with make
install, found with pkg-config, exporting only the ea_* API."""
import json
import os
import subprocess

from cryptography.hazmat.primitives.asymmetric import ec

from conftest import BUILD, REPO, binary

CONSUMER = r"""
#include <stdio.h>
#include <emailauth/guard.h>

static void
logger(void *cls, enum ea_log_level lvl, const char *msg)
{
	(void)cls;
	fprintf(stderr, "log %d: %s\n", (int)lvl, msg);
}

int
main(int argc, char **argv)
{
	const char *origins[] = { "https://mail.example.com", NULL };
	struct ea_guard_config c = { 0 };
	struct ea_guard *g;
	char err[256];

	(void)argc;
	c.issuer = "https://auth.example.com";
	c.audience = "email-api";
	c.jwks_file = argv[1];
	c.cors_origins = origins;
	c.log = logger;
	if (ea_guard_new(&c, &g, err, sizeof(err)) != 0) {
		fprintf(stderr, "ea_guard_new: %s\n", err);
		return 1;
	}
	ea_guard_free(g);
	c.jwks_file = "/nonexistent/jwks.json";
	if (ea_guard_new(&c, &g, err, sizeof(err)) == 0)
		return 2;
	printf("ok: %s\n", err);
	return 0;
}
"""


def jwks(path):
    k = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n):
        import base64
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(
            b"=").decode()
    doc = {"keys": [{"kty": "EC", "crv": "P-256", "x": b64(k.x),
                     "y": b64(k.y), "kid": "test-kid", "alg": "ES256",
                     "use": "sig"}]}
    with open(path, "w") as f:
        json.dump(doc, f)


def test_shared_library_exports_only_the_api():
    out = subprocess.run(["nm", "-D", "--defined-only",
                          binary("libemailauth.so")], capture_output=True,
                         text=True, check=True).stdout
    names = [line.split()[-1] for line in out.splitlines()]
    api = [n for n in names if n.startswith("ea_")]
    other = [n for n in names if not n.startswith("ea_") and
             n not in ("_edata", "_end", "__bss_start", "_init", "_fini")]
    assert other == [], other
    assert "ea_guard_check" in api and "ea_principal_free" in api
    out = subprocess.run(["nm", "-g", "--defined-only",
                          binary("libemailauth.a")], capture_output=True,
                         text=True, check=True).stdout
    glob = [line.split()[-1] for line in out.splitlines()
            if len(line.split()) == 3]
    assert glob and all(n.startswith("ea_") for n in glob), glob


def test_installed_library_links_with_pkg_config(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-C", REPO, "--no-print-directory", "B=" + BUILD,
                    "NODEPS=1", "SAN=" + os.environ.get("EMAILAUTH_SAN", "0"),
                    "PREFIX=" + str(prefix),
                    "SYSCONFDIR=" + str(tmp_path / "etc"), "install"],
                   check=True, capture_output=True)
    for f in ("include/emailauth/guard.h", "lib/libemailauth.so",
              "lib/libemailauth.a", "lib/pkgconfig/emailauth.pc",
              "sbin/emailauthd", "sbin/emailauthctl"):
        assert (prefix / f).exists(), f
    src = tmp_path / "consumer.c"
    src.write_text(CONSUMER)
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "emailauth"],
                           env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    exe = tmp_path / "consumer"
    san = (["-fsanitize=address,undefined"]
           if os.environ.get("EMAILAUTH_SAN") == "1" else [])
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", str(exe),
                    str(src)] + flags + san, check=True, capture_output=True)
    keys = tmp_path / "jwks.json"
    jwks(str(keys))
    p = subprocess.run([str(exe), str(keys)], capture_output=True, text=True,
                       env=dict(os.environ,
                                LD_LIBRARY_PATH=str(prefix / "lib")))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok: ")
    # And the static library, with its dependencies (Requires and
    # Requires.private of the .pc) linked as the shared system libraries.
    deps = subprocess.run(["pkg-config", "--print-requires",
                           "--print-requires-private", "emailauth"],
                          env=env, capture_output=True, text=True,
                          check=True).stdout.split()
    flags = subprocess.run(["pkg-config", "--cflags", "emailauth"], env=env,
                           capture_output=True, text=True,
                           check=True).stdout.split()
    flags += subprocess.run(["pkg-config", "--libs"] + deps,
                            capture_output=True, text=True,
                            check=True).stdout.split()
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o",
                    str(exe) + "-static", str(src),
                    str(prefix / "lib" / "libemailauth.a")] + flags + san,
                   check=True, capture_output=True)
    p = subprocess.run([str(exe) + "-static", str(keys)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
