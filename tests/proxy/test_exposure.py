"""Refusing an open proxy, and keeping the CA key private (pure checks; the e2e tests run them
through mitmdump and `veil run`)."""

import stat

import pytest
from mitmproxy import exceptions

from veil.cli.run import open_proxy_refusal as _open_proxy_refusal
from veil.proxy.exposure import exposed_addresses, is_loopback, protect_ca_key, refuse_open_proxy


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "192.168.1.10", "proxy.example.com"])
def test_everything_else_is_exposed(host):
    assert not is_loopback(host)


def test_each_listening_mode_is_checked_with_its_own_address():
    assert exposed_addresses(["regular"], "127.0.0.1") == []
    assert exposed_addresses(["regular"], "") == ["every interface"]
    assert exposed_addresses(["regular", "reverse:https://example.com@0.0.0.0:8443"], "127.0.0.1") == ["0.0.0.0"]
    assert exposed_addresses(["upstream:http://corp:3128@10.0.0.5:8080"], "127.0.0.1") == ["10.0.0.5"]
    assert exposed_addresses(["local"], "") == []  # redirects this machine's own apps; no listener


def test_an_open_proxy_is_refused_with_the_reason_and_the_ways_out():
    with pytest.raises(exceptions.OptionsError) as refused:
        refuse_open_proxy(["regular"], "0.0.0.0", None, False)
    message = str(refused.value)
    assert "open proxy decrypting HTTPS traffic for anyone on the network" in message
    assert "proxyauth" in message and "veil_allow_open_proxy=true" in message and "--allow-open-proxy" in message


def test_authentication_or_the_explicit_option_allow_it():
    refuse_open_proxy(["regular"], "0.0.0.0", "@/etc/veil/htpasswd", False)
    refuse_open_proxy(["regular"], "0.0.0.0", None, True)
    refuse_open_proxy(["regular"], "127.0.0.1", None, False)


def test_veil_run_checks_before_starting_mitmdump():
    assert "open proxy" in _open_proxy_refusal("0.0.0.0", False, [])
    assert _open_proxy_refusal("0.0.0.0", True, []) is None
    assert _open_proxy_refusal("0.0.0.0", False, ["--set", "proxyauth=@/etc/veil/htpasswd"]) is None
    assert _open_proxy_refusal("127.0.0.1", False, []) is None


def test_a_loose_ca_key_is_made_private_and_reported(tmp_path):
    (tmp_path / "mitmproxy-ca.pem").write_text("key")
    (tmp_path / "mitmproxy-ca.pem").chmod(0o644)
    (tmp_path / "mitmproxy-ca-cert.pem").write_text("cert")
    (tmp_path / "mitmproxy-ca-cert.pem").chmod(0o644)
    warnings = protect_ca_key(tmp_path)
    assert warnings == [f"the CA key {tmp_path / 'mitmproxy-ca.pem'} was readable by others (mode 0644); set to 0600"]
    assert stat.S_IMODE((tmp_path / "mitmproxy-ca.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mitmproxy-ca-cert.pem").stat().st_mode) == 0o644  # public: left alone
    assert protect_ca_key(tmp_path) == []
