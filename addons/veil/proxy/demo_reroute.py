"""For `veil demo` only, loaded by mitmdump after Veil: what Veil lets through goes to the
demo's local stand-in service instead of the real one, so the demo sends nothing anywhere."""

from mitmproxy import ctx


class RerouteToStandIn:
    def load(self, loader):
        loader.add_option("demo_stand_in_port", int, 0, "Port of `veil demo`'s local stand-in service.")

    def request(self, flow):
        if flow.response:  # Veil answered (blocked) it: nothing goes anywhere
            return
        flow.request.headers["X-Original-Host"] = flow.request.pretty_host
        flow.request.scheme = "http"
        flow.request.host = "127.0.0.1"
        flow.request.port = ctx.options.demo_stand_in_port


addons = [RerouteToStandIn()]
