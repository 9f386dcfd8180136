"""Loaded by mitmdump after Veil for `veil demo` and the end-to-end tests: what Veil lets
through goes to a local stand-in service on `reroute_port` instead of the real one, so
nothing leaves the machine. The original host stays in X-Original-Host."""

from mitmproxy import ctx


class RerouteToLocal:
    def load(self, loader):
        loader.add_option("reroute_port", int, 0, "Port of the local stand-in service on 127.0.0.1.")

    def request(self, flow):
        if flow.response:  # Veil answered (blocked) it: nothing may reach the stand-in
            return
        flow.request.headers["X-Original-Host"] = flow.request.pretty_host
        flow.request.scheme = "http"
        flow.request.host = "127.0.0.1"
        flow.request.port = ctx.options.reroute_port


addons = [RerouteToLocal()]
