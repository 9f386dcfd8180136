"""`veil pac`: the PAC file sends exactly the protected hosts through Veil. Evaluated by a real
PAC engine (pacparser, the PAC library behind several proxies, with its own JavaScript
interpreter and the standard PAC functions); Chromium evaluates the file Veil serves in
tests/e2e/test_browser_chromium.py."""

import subprocess
import sys

import pytest

from veil.proxy.pac import BadProxyAddress, pac_script, proxy_address
from veil.policy import load_default_policy, load_policy_text

VEIL = [sys.executable, "-m", "veil.cli"]
POLICY = """
version: 1
services:
  web:
    hosts: ["chatgpt.com", "*.oaiusercontent.com", "*.deep.example.net"]
  api:
    hosts: ["api.openai.com"]
"""


@pytest.fixture
def evaluate():
    pacparser = pytest.importorskip("pacparser", reason="pacparser (a test extra) evaluates PAC files")
    pacparser.init()
    loaded = []

    def find_proxy(script: str, host: str, scheme: str = "https") -> str:
        if loaded != [script]:
            pacparser.parse_pac_string(script)
            loaded[:] = [script]
        return pacparser.find_proxy(f"{scheme}://{host}/upload", host)

    yield find_proxy
    pacparser.cleanup()


@pytest.mark.parametrize(
    "host",
    ["chatgpt.com", "files.oaiusercontent.com", "sdmntprwestus.oaiusercontent.com", "a.b.oaiusercontent.com",
     "api.openai.com", "x.deep.example.net", "CHATGPT.COM", "chatgpt.com."],
)  # fmt: skip
def test_protected_hosts_go_through_veil(evaluate, host):
    script = pac_script(load_policy_text(POLICY), "127.0.0.1:8080")
    assert evaluate(script, host) == "PROXY 127.0.0.1:8080"
    assert evaluate(script, host, "http") == "PROXY 127.0.0.1:8080"


@pytest.mark.parametrize(
    "host",
    ["oaiusercontent.com", "evil-oaiusercontent.com", "eviloaiusercontent.com", "evilchatgpt.com",
     "chatgpt.com.evil.net", "www.chatgpt.com", "openai.com", "deep.example.net", "example.net", "localhost",
     "10.0.0.1"],
)  # fmt: skip
def test_everything_else_goes_direct(evaluate, host):
    script = pac_script(load_policy_text(POLICY), "127.0.0.1:8080")
    assert evaluate(script, host) == "DIRECT"


def test_every_host_of_the_default_policy(evaluate):
    policy = load_default_policy()
    script = pac_script(policy, "veil.corp.example:3128")
    for service in policy.services:
        for pattern in service.hosts:
            if pattern.is_label_glob:
                concrete = pattern.text.replace("*", "eu-west-1")
                assert evaluate(script, concrete) == "PROXY veil.corp.example:3128"
                assert evaluate(script, concrete + ".evil.net") == "DIRECT"
            elif pattern.is_wildcard:
                assert evaluate(script, "upload-7" + pattern.suffix) == "PROXY veil.corp.example:3128"
                bare = pattern.suffix[1:]
                expected = "PROXY veil.corp.example:3128" if policy.protects_host(bare) else "DIRECT"
                assert evaluate(script, bare) == expected
            else:
                assert evaluate(script, pattern.text) == "PROXY veil.corp.example:3128"
                assert evaluate(script, "x" + pattern.text) == "DIRECT"


def test_protected_hosts_have_no_direct_fallback():
    script = pac_script(load_default_policy(), "127.0.0.1:8080")
    assert script.count('"DIRECT"') == 1 and "; DIRECT" not in script


@pytest.mark.parametrize("text", ["127.0.0.1:8080", "veil.corp:3128", "[::1]:8080", " 10.0.0.5:80 "])
def test_proxy_addresses(text):
    assert proxy_address(text) == text.strip()


@pytest.mark.parametrize("text", ["127.0.0.1", "host:0", "host:70000", "::1:8080", "a b:80", "http://x:80", ":80"])
def test_bad_proxy_addresses(text):
    with pytest.raises(BadProxyAddress):
        proxy_address(text)


def test_the_command_writes_the_file(tmp_path):
    policy, out = tmp_path / "policy.yaml", tmp_path / "veil.proxy.pac"
    policy.write_text(POLICY)
    done = subprocess.run([*VEIL, "pac", "--policy", str(policy), "--proxy", "10.0.0.5:3128", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'var VEIL = "PROXY 10.0.0.5:3128";' in out.read_text()
    assert 'dnsDomainIs(host, ".oaiusercontent.com")' in out.read_text()


def test_the_command_refuses_a_bad_policy_or_proxy(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nservices:\n  x:\n    hosts: ['*']\n")
    done = subprocess.run([*VEIL, "pac", "--policy", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "decrypt every host" in done.stderr and not done.stdout
    done = subprocess.run([*VEIL, "pac", "--proxy", "8080"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "HOST:PORT" in done.stderr


def test_all_uploads_sends_every_host_but_the_tunnelled_to_veil(evaluate):
    policy = load_policy_text('version: 1\nprotect: all-uploads\ntunnel: ["*.mybank.example", "pinned.example.com"]\n')
    script = pac_script(policy, "127.0.0.1:8080")
    assert evaluate(script, "photos.example.org") == "PROXY 127.0.0.1:8080"
    assert evaluate(script, "login.mybank.example") == "DIRECT"
    assert evaluate(script, "pinned.example.com") == "DIRECT"
