"""emailauthctl: exit codes, roles list, token decode, passwd --update."""
import json
import os
import subprocess

from conftest import base_config, binary


def ctl(*args, stdin=None):
    return subprocess.run([binary("emailauthctl")] + list(args),
                          input=stdin, capture_output=True, text=True)


def test_usage_and_exit_codes():
    assert ctl("--help").returncode == 0
    assert ctl().returncode == 2
    assert ctl("nonsense").returncode == 2
    assert ctl("-c", "/nonexistent.conf", "roles", "list").returncode == 1


def test_roles_list(tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text(base_config(str(tmp_path)))
    p = ctl("-c", str(conf), "roles", "list", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {
        "admin": {"groups": ["mail-admins"], "permissions": ["admin:*"]}}


def test_token_decode_says_it_did_not_verify():
    p = ctl("token", "decode",
            "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJib2IifQ.sig")
    assert p.returncode == 0
    assert p.stdout.startswith("NOT VERIFIED")
    assert '"sub": "bob"' in p.stdout
    assert ctl("token", "decode", "not-a-token").returncode == 1


def test_passwd_update_keeps_groups_and_mode(tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text(base_config(str(tmp_path)))
    users = tmp_path / "users"
    users.write_text("carl:$y$j9T$abc$def:staff,ops\n")
    os.chmod(users, 0o600)
    p = ctl("-c", str(conf), "passwd", "--update", "carl",
            stdin="Ctl-Test-Pass-8\n")
    assert p.returncode == 0, p.stderr
    line = users.read_text().strip()
    assert line.startswith("carl:$y$") and line.endswith(":staff,ops")
    assert os.stat(users).st_mode & 0o777 == 0o600
    assert "Ctl-Test-Pass-8" not in users.read_text()


def test_passwd_refuses_short_passwords():
    # 11 characters (one of them two bytes): too short; 12: enough.
    p = ctl("passwd", "erin", stdin="Sh0rt-Pässw\n")
    assert p.returncode == 1 and "at least 12" in p.stderr
    p = ctl("passwd", "erin", stdin="Sh0rt-Pässwd\n")
    assert p.returncode == 0 and p.stdout.startswith("erin:$y$")
