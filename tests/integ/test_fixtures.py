"""Prove that the slapd and pam_wrapper fixtures work -- and can fail."""

import socket
import subprocess
import sys

import pytest

from pam_fixture import PamUser, PamWrapper, pam_env  # noqa: F401 (fixture)
from slapd_fixture import PEOPLE_DN, Slapd, SlapdError, slapd, slapd_factory  # noqa: F401

ALICE = f"uid=alice,{PEOPLE_DN}"
BOB = f"uid=bob,{PEOPLE_DN}"
ERIN = f"uid=erin,{PEOPLE_DN}"
GROUP = "cn={},ou=groups,dc=example,dc=com"


# --- TLS and simple bind -----------------------------------------------


def test_bind_over_starttls_and_ldaps(slapd):
    for uri in (slapd.uri_ldap, slapd.uri_ldaps):
        r = slapd.whoami(ALICE, "Wonderland-42", uri=uri)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"dn:{ALICE}"


def test_wrong_ca_is_refused(slapd):
    r = slapd.whoami(ALICE, "Wonderland-42", ca_file=slapd.wrong_ca_file)
    assert r.returncode != 0 and "start_tls" in r.stderr
    r = slapd.whoami(ALICE, "Wonderland-42", uri=slapd.uri_ldaps, ca_file=slapd.wrong_ca_file)
    assert r.returncode == 255, r.stderr  # "Can't contact LDAP server (-1)"


def test_wrong_password_is_49(slapd):
    r = slapd.whoami(BOB, "not-bobs-password")
    assert r.returncode == 49 and "Invalid credentials" in r.stderr
    # A good bind afterwards works and resets bob's failure counter.
    assert slapd.whoami(BOB, "CanWeFixIt-17").returncode == 0


def test_default_server_refuses_unauthenticated_bind(slapd):
    r = slapd.whoami(ALICE, "")
    assert r.returncode == 53, r.stderr  # unwillingToPerform
    assert "unauthenticated bind" in r.stderr


def test_allow_unauth_bind_accepts_dn_with_empty_password(slapd_factory):
    loose = slapd_factory(allow_unauth_bind=True, ldif=None)
    r = loose.whoami(ALICE, "")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "anonymous"  # "success", but nobody is bound


# --- directory content and access control ------------------------------


def test_service_account_sees_memberof(slapd):
    [(dn, attrs)] = slapd.search("(uid=alice)", "memberOf", "mail", "displayName")
    assert dn == ALICE
    assert GROUP.format("mail-admins") in attrs["memberof"]
    assert attrs["mail"] == ["alice@example.com"]
    assert attrs["displayname"] == ["Alice Liddell"]


def test_nested_and_looping_groups(slapd):
    memberof = {dn: attrs.get("memberof", [])
                for dn, attrs in slapd.search("(objectClass=groupOfNames)", "memberOf")}
    # memberof maintains direct membership only; nesting is visible on the group.
    assert memberof[GROUP.format("auditors")] == [GROUP.format("analysts")]
    assert memberof[GROUP.format("loopa")] == [GROUP.format("loopb")]
    assert memberof[GROUP.format("loopb")] == [GROUP.format("loopa")]
    [(_, carol)] = slapd.search("(uid=carol)", "memberOf")
    assert carol["memberof"] == [GROUP.format("auditors")]
    [(_, dave)] = slapd.search("(uid=dave)", "memberOf")
    assert "memberof" not in dave


def test_duplicate_uid_returns_two_entries(slapd):
    dns = [dn for dn, _ in slapd.search("(uid=dup)", "1.1")]
    assert len(dns) == 2
    assert f"uid=dup,{PEOPLE_DN}" in dns


def test_service_account_cannot_read_passwords(slapd):
    [(_, attrs)] = slapd.search("(uid=alice)", "userPassword", "cn")
    assert "userpassword" not in attrs and attrs["cn"] == ["Alice Liddell"]
    # The admin can (proves the attribute is there).
    [(_, attrs)] = slapd.search("(uid=alice)", "userPassword",
                                dn=slapd.admin_dn, password=slapd.admin_password)
    assert attrs["userpassword"] == ["Wonderland-42"]


def test_anonymous_cannot_search(slapd):
    r = slapd.ldapsearch("(uid=alice)", dn=None)
    assert r.returncode == 32 and r.stdout == ""  # suffix hidden: "No such object"


# --- password policy -----------------------------------------------------


def test_locked_user_cannot_bind(slapd):
    assert slapd.whoami(ERIN, "LockMeOut-99").returncode == 0
    slapd.lock("erin")
    try:
        r = slapd.whoami(ERIN, "LockMeOut-99")
        assert r.returncode == 49
        # With the ppolicy request control, ppolicy_use_lockout says why.
        r = slapd.run_tool("ldapwhoami", "-e", "ppolicy", dn=ERIN, password="LockMeOut-99")
        assert r.returncode == 49 and "Account locked" in r.stderr
    finally:
        slapd.unlock("erin")
    assert slapd.whoami(ERIN, "LockMeOut-99").returncode == 0


def test_three_failures_lock_the_account(slapd):
    try:
        for _ in range(3):
            assert slapd.whoami(ERIN, "wrong").returncode == 49
        assert slapd.whoami(ERIN, "LockMeOut-99").returncode == 49
    finally:
        slapd.unlock("erin")
    assert slapd.whoami(ERIN, "LockMeOut-99").returncode == 0


# --- lifecycle -----------------------------------------------------------


def test_stop_kills_the_server(slapd_factory):
    server = slapd_factory(ldif=None)
    pid, port = server.proc.pid, server.port_ldap
    server.stop()
    server.stop()  # idempotent
    assert not server.running
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_port_collision_is_retried(tmp_path, monkeypatch):
    import slapd_fixture

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    real_free_ports = slapd_fixture.free_ports
    handed_out = []

    def first_busy_then_free(count):
        ports = real_free_ports(count)
        if not handed_out:
            ports[0] = busy.getsockname()[1]  # collide on the first try
        handed_out.append(ports)
        return ports

    monkeypatch.setattr(slapd_fixture, "free_ports", first_busy_then_free)
    with busy, Slapd(tmp_path, ldif=None) as server:
        assert len(handed_out) == 2
        assert server.port_ldap != busy.getsockname()[1]
        assert "Address already in use" in server.log()
        assert server.whoami(server.admin_dn, server.admin_password).returncode == 0


def test_bad_config_raises_with_slapd_log(tmp_path):
    server = Slapd(tmp_path, extra_global="no-such-directive here", ldif=None)
    with pytest.raises(SlapdError, match="no-such-directive"):
        server.start()
    assert not server.running


# --- pam_wrapper / nss_wrapper --------------------------------------------


def pamtester(pam, user, password, *ops):
    return subprocess.run(["pamtester", pam.service, user, *(ops or ["authenticate"])],
                          input=password + "\n", capture_output=True, text=True,
                          env=pam.env(), timeout=10)


def test_pamtester_right_and_wrong_password(pam_env):
    r = pamtester(pam_env, "alice", "pam-Wonderland-42", "authenticate", "acct_mgmt")
    assert r.returncode == 0, r.stderr
    assert "successfully authenticated" in r.stdout
    r = pamtester(pam_env, "alice", "Wonderland-42")  # the LDAP password
    assert r.returncode != 0 and "Authentication failure" in r.stderr
    r = pamtester(pam_env, "nobody", "pam-Wonderland-42")
    assert r.returncode != 0


def test_pam_account_check_can_deny(pam_env):
    # erin's passdb line names another service: auth OK, account refused.
    assert pamtester(pam_env, "erin", "pam-LockMeOut-99").returncode == 0
    r = pamtester(pam_env, "erin", "pam-LockMeOut-99", "authenticate", "acct_mgmt")
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_without_wrapper_the_system_pam_is_used(pam_env):
    # Sanity check that the env is what makes it work (system has no "emailauth").
    r = subprocess.run(["pamtester", "emailauth", "alice", "authenticate"],
                       input="pam-Wonderland-42\n", capture_output=True, text=True, timeout=10)
    assert r.returncode != 0


def test_nss_wrapper_groups(pam_env):
    r = subprocess.run(["id", "alice"], capture_output=True, text=True, env=pam_env.env())
    assert r.returncode == 0 and "(mail-admins)" in r.stdout
    code = ("import grp, os, pwd; p = pwd.getpwnam('carol'); "
            "print(sorted(grp.getgrgid(g).gr_name for g in os.getgrouplist('carol', p.pw_gid)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=pam_env.env(), check=True)
    assert r.stdout.strip() == "['analysts', 'auditors', 'carol']"


def test_custom_users_and_cleanup(tmp_path):
    extra = PamUser("zed", "zz-Top-1", ("mail-admins",))
    with PamWrapper(users=[extra], nss=False) as pam:
        assert "NSS_WRAPPER_PASSWD" not in pam.env()
        assert pamtester(pam, "zed", "zz-Top-1").returncode == 0
        assert pamtester(pam, "alice", "pam-Wonderland-42").returncode != 0
        tmpdir = pam.tmpdir
    assert not tmpdir.exists()
