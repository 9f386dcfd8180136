"""A proxy auto-config (PAC) file from a policy: the hosts the policy protects go through
Veil, everything else goes DIRECT. Pure: a `Policy` in, JavaScript text out.

Host patterns translate as the policy matches them (see `policy.py`):
- `chatgpt.com` is that host only: `host == "chatgpt.com"`.
- `*.oaiusercontent.com` is every sub-domain, at any depth, but not the domain itself:
  `dnsDomainIs(host, ".oaiusercontent.com")`, a plain suffix test on the string WITH its
  leading dot, so neither `oaiusercontent.com` nor `evil-oaiusercontent.com` matches.

Protected hosts get no `DIRECT` fallback: when Veil is down their uploads fail instead of
leaving uncleaned.
"""

from __future__ import annotations

import ipaddress
import json
import re

from ..policy import Policy

PAC_PATH = "/proxy.pac"
PAC_CONTENT_TYPE = "application/x-ns-proxy-autoconfig"

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*")


class BadProxyAddress(ValueError):
    pass


def proxy_address(text: str) -> str:
    """'127.0.0.1:8080', 'veil.corp:3128', '[::1]:8080' -> the same, checked; raises
    `BadProxyAddress` with a readable reason otherwise."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadProxyAddress(f"'{text}': write the proxy as HOST:PORT, e.g. 127.0.0.1:8080")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise BadProxyAddress(f"'{text}': {host} is not an IPv6 address") from None
    elif not _HOST.fullmatch(host):
        raise BadProxyAddress(f"'{text}': '{host}' is not a host name or IPv4 address (IPv6 goes in brackets)")
    return f"{host}:{int(port)}"


def pac_script(policy: Policy, proxy: str) -> str:
    """The PAC file for `policy`, sending protected hosts to the proxy at `proxy` (HOST:PORT)."""
    proxy = proxy_address(proxy)
    lines = [
        "// Proxy auto-config written by Veil (`veil pac`) from the policy:",
        f"//   {_comment(policy.source)}",
        "// Hosts the policy protects go through Veil; everything else goes DIRECT.",
        "// No DIRECT fallback for protected hosts: if Veil is down, their uploads fail rather",
        "// than leave uncleaned.",
        f"var VEIL = {json.dumps('PROXY ' + proxy)};",
        "",
        "function FindProxyForURL(url, host) {",
        "  host = host.toLowerCase();",
        '  if (host.charAt(host.length - 1) == ".") host = host.substring(0, host.length - 1);',
    ]
    if policy.protects_all_uploads:
        lines += _host_tests("tunnelled: never decrypted", policy.tunnel, '"DIRECT"')
        lines += ["  return VEIL;  // protect: all-uploads: every other host goes through Veil", "}", ""]
        return "\n".join(lines)
    for service in policy.services:
        lines += _host_tests(service.name, service.hosts, "VEIL")
    lines += ['  return "DIRECT";', "}", ""]
    return "\n".join(lines)


def _host_tests(title: str, patterns, answer: str) -> list[str]:
    exact = [pattern.text for pattern in patterns if not pattern.is_wildcard and not pattern.is_label_glob]
    lines = [f"  // {_comment(title)}"]
    if exact:
        test = " || ".join(f"host == {json.dumps(name)}" for name in exact)
        lines.append(f"  if ({test}) return {answer};")
    for pattern in patterns:
        if pattern.is_label_glob:
            # shExpMatch's '*' also crosses dots: a little wider than Veil's own match, which
            # then tunnels what it does not protect. Never narrower.
            lines.append(f"  if (shExpMatch(host, {json.dumps(pattern.text)})) return {answer};")
        elif pattern.is_wildcard:
            # The suffix keeps its leading dot: sub-domains only, never the domain itself.
            lines.append(f"  if (dnsDomainIs(host, {json.dumps(pattern.suffix)})) return {answer};  // {pattern.text}")
    return lines


def _comment(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")
