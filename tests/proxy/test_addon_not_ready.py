"""The addon without a policy in force answers every request itself: nothing passes unjudged."""

from mitmproxy.test import tflow

from veil.proxy.addon import Veil


def test_without_a_policy_every_request_is_answered_503():
    flow = tflow.tflow()
    Veil().requestheaders(flow)
    assert flow.response.status_code == 503 and flow.response.headers["x-veil"] == "blocked"
    assert b"no policy loaded" in flow.response.content
