"""Who can reach the proxy, and who can read its CA key. Pure checks the addon calls.

An intercepting proxy listening beyond loopback without proxy authentication decrypts TLS
for anyone on the network who points a client at it; the CA key it signs with can forge a
certificate for any site. Veil refuses the first unless the operator says so explicitly,
and keeps the second readable by its owner only.
"""

import ipaddress
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from mitmproxy import exceptions
from mitmproxy.proxy import mode_specs

# mitmproxy writes the CA key, with its certificate, into these two files of its confdir.
CA_KEY_FILES = ("mitmproxy-ca.pem", "mitmproxy-ca.p12")
OPEN_PROXY_OPTION = "veil_allow_open_proxy"


def is_loopback(host: str) -> bool:
    """'' (mitmproxy: every interface) and host names other than localhost are not loopback."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed_addresses(modes: Iterable[str], listen_host: str) -> list[str]:
    """The listen addresses of the given modes that are not loopback ('' = all interfaces).
    Modes that do not listen on a socket (local, tun, osproxy) are left out."""
    exposed = []
    for spec in modes:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:
            continue  # mitmproxy itself reports a bad mode
        if isinstance(mode, (mode_specs.LocalMode, mode_specs.TunMode, mode_specs.OsProxyMode)):
            continue
        host = mode.listen_host(listen_host)
        if not is_loopback(host):
            exposed.append(host or "every interface")
    return exposed


def refuse_open_proxy(modes: Iterable[str], listen_host: str, proxyauth: str | None, allowed: bool) -> None:
    """Raise OptionsError when Veil would listen beyond loopback with no proxy authentication."""
    if proxyauth or allowed:
        return
    exposed = exposed_addresses(modes, listen_host)
    if not exposed:
        return
    where = ", ".join(dict.fromkeys(exposed))
    raise exceptions.OptionsError(
        f"Veil will not listen on {where} without proxy authentication: that would be an open proxy "
        "decrypting HTTPS traffic for anyone on the network who can reach it. Set proxyauth "
        "(e.g. --set proxyauth=@/etc/veil/htpasswd), listen on 127.0.0.1, or, if the network "
        f"itself restricts who can connect, --set {OPEN_PROXY_OPTION}=true (veil run --allow-open-proxy)"
    )


def protect_ca_key(confdir: Path) -> list[str]:
    """Make the CA key files readable by their owner only. Returns a warning for each file
    that was looser (mitmproxy creates them 0600; a copy or a restore may not keep that)."""
    warnings = []
    for name in CA_KEY_FILES:
        path = confdir / name
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(path, 0o600)
                warnings.append(f"the CA key {path} was readable by others (mode {mode:04o}); set to 0600")
            except OSError as error:
                warnings.append(f"the CA key {path} is readable by others (mode {mode:04o}) and could not be "
                                f"restricted: {error.strerror}; chmod 600 it")  # fmt: skip
    return warnings
