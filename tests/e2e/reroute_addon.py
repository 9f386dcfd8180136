"""Test-only mitmproxy addon, loaded after Veil: sends every request that Veil let
through to the local recording upstream instead of the real service."""

from mitmproxy import ctx


class Reroute:
    def load(self, loader):
        loader.add_option("reroute_port", int, 0, "Port of the local recording upstream.")

    def request(self, flow):
        if flow.response:  # Veil answered it: nothing may reach the upstream
            return
        flow.request.headers["X-Original-Host"] = flow.request.pretty_host
        flow.request.scheme = "http"
        flow.request.host = "127.0.0.1"
        flow.request.port = ctx.options.reroute_port


addons = [Reroute()]
