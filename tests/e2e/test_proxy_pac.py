"""The running proxy serves its PAC file at http://<proxy address>/proxy.pac, and only there."""

import urllib.request

from veil.proxy.pac import PAC_CONTENT_TYPE


def test_the_proxy_serves_its_pac_file(proxy):
    with urllib.request.urlopen(f"{proxy.url}/proxy.pac", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == PAC_CONTENT_TYPE
        script = response.read().decode()
    assert f'var VEIL = "PROXY 127.0.0.1:{proxy.port}";' in script
    assert 'dnsDomainIs(host, ".oaiusercontent.com")' in script and "function FindProxyForURL" in script
    with urllib.request.urlopen(f"http://localhost:{proxy.port}/proxy.pac", timeout=10) as response:
        assert f'"PROXY localhost:{proxy.port}"' in response.read().decode()


def test_the_same_path_on_another_host_is_proxied_as_usual(proxy, upstream):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    with opener.open("http://example.org/proxy.pac", timeout=10) as response:
        assert response.read() == b'{"ok": true}'  # the recording upstream's answer, not a PAC file
    assert upstream.last("/proxy.pac").host == "example.org"
