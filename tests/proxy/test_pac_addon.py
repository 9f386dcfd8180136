"""The proxy answers /proxy.pac only for requests addressed to the proxy itself."""

import pytest
from mitmproxy.test import taddons, tflow

from veil.proxy.pac_addon import ServePac, addressed_to_proxy
from veil.policy import load_default_policy


def flow(host: str, port: int, sockname=("127.0.0.1", 8080), path="/proxy.pac", method="GET", scheme="http"):
    f = tflow.tflow()
    f.client_conn.sockname = sockname
    f.client_conn.tls = False
    f.request.scheme, f.request.host, f.request.port = scheme, host, port
    f.request.path, f.request.method = path, method
    return f


@pytest.mark.parametrize(
    "args, expected",
    [
        (("127.0.0.1", 8080), "127.0.0.1:8080"),
        (("localhost", 8080), "localhost:8080"),
        (("10.0.0.5", 3128, ("10.0.0.5", 3128)), "10.0.0.5:3128"),
        (("::1", 8080, ("::1", 8080, 0, 0)), "[::1]:8080"),
        (("example.org", 8080), None),  # the same port on another host: proxied as usual
        (("127.0.0.1", 9090), None),
        (("localhost", 3128, ("10.0.0.5", 3128)), None),  # not a loopback listener
    ],
)
def test_addressed_to_proxy(args, expected):
    assert addressed_to_proxy(flow(*args)) == expected


def test_serves_the_policy_in_force_and_nothing_else():
    policy = load_default_policy()
    addon = ServePac(lambda: policy)
    with taddons.context(addon):
        served = flow("127.0.0.1", 8080)
        addon.request(served)
        assert served.response.status_code == 200
        assert b'var VEIL = "PROXY 127.0.0.1:8080";' in served.response.content
        for other in (flow("127.0.0.1", 8080, path="/other"), flow("127.0.0.1", 8080, method="POST"),
                      flow("127.0.0.1", 8080, scheme="https")):  # fmt: skip
            addon.request(other)
            assert other.response is None


def test_can_be_turned_off():
    addon = ServePac(lambda: load_default_policy())
    with taddons.context(addon) as context:
        context.configure(addon, veil_pac=False)
        served = flow("127.0.0.1", 8080)
        addon.request(served)
        assert served.response is None
