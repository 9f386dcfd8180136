"""Proxy authentication against an LDAP directory (mitmproxy's `proxyauth=ldap:…`), through a
real mitmdump and a real LDAP server (ldaptor, in memory): the user found in the directory is
the audit `user`, policy groups apply to them, and a wrong password or unknown user gets 407
with nothing forwarded."""

import subprocess
import sys
from pathlib import Path

import pytest

from e2e.conftest import start_mitmdump, stop
from e2e.photos import face_photo_with_gps
from e2e.test_proxy_identity import POLICY, post

pytest.importorskip("ldaptor", reason="ldaptor (the in-memory LDAP server for this test) is not installed")

DIRECTORY = Path(__file__).with_name("ldap_directory.py")
PEOPLE = {"alice": "alice-ldap", "dave": "dave-ldap"}


@pytest.fixture(scope="module")
def directory_port():
    server = subprocess.Popen([sys.executable, str(DIRECTORY), *(f"{u}:{p}" for u, p in PEOPLE.items())],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        yield int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def ldap_proxy(upstream, directory_port, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ldap-proxy")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    spec = f"ldap:127.0.0.1:{directory_port}:cn=admin,dc=example,dc=org:admin-secret:ou=people,dc=example,dc=org?search_filter_key=uid"
    running = start_mitmdump(folder, upstream.port, policy, "--set", f"proxyauth={spec}", "--set", "veil_workers=1")
    yield running
    stop(running)


def test_a_directory_user_is_named_in_the_audit_record(ldap_proxy, upstream):
    done = post(ldap_proxy, "/v1/files", face_photo_with_gps(), "dave:dave-ldap")
    assert done.returncode == 0, done.stderr
    assert upstream.last("/v1/files").body != face_photo_with_gps()
    record = ldap_proxy.audit_records()[-1]
    assert record["event"] == "sanitised" and record["user"] == "dave" and record["rule"] == "everyone"


def test_policy_groups_apply_to_directory_users(ldap_proxy, upstream):
    done = post(ldap_proxy, "/v1/ldap-exempt", face_photo_with_gps(), "alice:alice-ldap")
    assert done.returncode == 0, done.stderr
    assert upstream.last("/v1/ldap-exempt").body == face_photo_with_gps()
    record = ldap_proxy.audit_records()[-1]
    assert record["user"] == "alice" and record["rule"] == "research-exempt"


@pytest.mark.parametrize("credentials", ["dave:wrong", "mallory:dave-ldap", None])
def test_a_wrong_password_or_unknown_user_gets_407_and_nothing_is_forwarded(ldap_proxy, upstream, credentials):
    records_before = len(ldap_proxy.audit_records())
    upstream.clear()
    done = post(ldap_proxy, "/v1/refused", face_photo_with_gps(), credentials)
    assert b"407" in done.stderr + done.stdout
    assert upstream.received == [] and len(ldap_proxy.audit_records()) == records_before
