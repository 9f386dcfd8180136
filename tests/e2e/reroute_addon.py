"""Test-only mitmproxy script, loaded after Veil: sends every request that Veil let
through to the local recording upstream instead of the real service. The addon is the
one `veil demo` uses (veil/proxy/reroute_local.py)."""

from veil.proxy.reroute_local import addons  # noqa: F401
