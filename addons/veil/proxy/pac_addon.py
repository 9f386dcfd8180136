"""mitmproxy adapter: the proxy itself answers `GET http://<proxy address>/proxy.pac` with the
PAC file for the policy in force, so a system setting can point at that URL.

Only a request addressed to the proxy's own listening address is answered (the address the
client's connection reached, or `localhost` on a loopback listener); the same path on any
other host is proxied as usual. The PAC names the proxy by that same address.
"""

import ipaddress
import logging
from collections.abc import Callable

from mitmproxy import ctx, http

from ..policy import Policy
from .pac import PAC_CONTENT_TYPE, PAC_PATH, pac_script

log = logging.getLogger("veil")


class ServePac:
    def __init__(self, policy: Callable[[], Policy | None]):
        self._policy = policy  # the policy in force, as the Veil addon holds it (reloads included)

    def load(self, loader):
        loader.add_option(
            "veil_pac", bool, True, f"Answer GET http://<proxy address>{PAC_PATH} with a proxy auto-config file."
        )

    def request(self, flow: http.HTTPFlow):
        if not ctx.options.veil_pac or flow.request.method not in ("GET", "HEAD"):
            return
        if flow.response and not _only_asks_for_proxy_auth(flow):
            return
        if flow.request.path.split("?", 1)[0] != PAC_PATH:
            return
        proxy = addressed_to_proxy(flow)
        policy = self._policy()
        if proxy is None or policy is None:
            return
        flow.response = http.Response.make(
            200, pac_script(policy, proxy).encode(), {"Content-Type": PAC_CONTENT_TYPE, "Cache-Control": "no-cache"}
        )
        flow.comment = "Veil: served the proxy auto-config file"


def _only_asks_for_proxy_auth(flow: http.HTTPFlow) -> bool:
    """mitmproxy's proxyauth answered 407: browsers fetch a PAC file without proxy
    credentials, and it holds nothing secret (the protected host names), so it is served."""
    return flow.response.status_code == 407 and "proxyauth" not in flow.metadata


def addressed_to_proxy(flow: http.HTTPFlow) -> str | None:
    """'HOST:PORT' of the proxy when this plain-HTTP request was sent to the proxy itself,
    else None."""
    sockname = flow.client_conn.sockname
    request = flow.request
    if not sockname or flow.client_conn.tls or request.scheme != "http" or request.port != sockname[1]:
        return None
    local = str(sockname[0]).removeprefix("::ffff:")
    if request.host.lower() != local and not (request.host.lower() == "localhost" and _is_loopback(local)):
        return None
    return f"[{request.host}]:{request.port}" if ":" in request.host else f"{request.host}:{request.port}"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
