"""What Veil does with traffic no rule names, so that decrypting never means forwarding
silently:

- A request `veil_decrypt_all` opened but no rule covers (a host the policy does not name,
  under `protect: ai-services`): forwarded untouched, with one `passed` record that says so.
  (Under `protect: all-uploads` such hosts have the catch-all rule instead.)
- A connection Veil cannot name, a CONNECT to a bare IP address whose TLS handshake carries
  no server name: `unnamed_destinations: tunnel` leaves it to mitmproxy (tunnelled unopened);
  `block` closes it and writes a `blocked` record.
"""

from __future__ import annotations

import ipaddress

from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.tls import parse_client_hello

from .. import audit
from ..policy import UPLOAD_METHODS

UNMATCHED_SERVICE = "no-rule"  # the audit `service` of a decrypted request no rule covers
UNMATCHED_REASON = ("veil_decrypt_all opened this request but no rule of the policy covers its host; "
                    "forwarded untouched, not inspected")  # fmt: skip
UNNAMED_SERVICE = "unnamed-destination"
UNNAMED_REASON = ("the destination is a bare IP address and the TLS handshake names no server, so no policy "
                  "host can be matched; the policy blocks unnamed destinations")  # fmt: skip


def carries_upload(method: str, has_body: bool) -> bool:
    return method.upper() in UPLOAD_METHODS or has_body


def unmatched_record(facts: audit.RequestFacts) -> dict:
    return audit.image_record("passed", facts, envelope=None, location=None, reason=UNMATCHED_REASON)


def unnamed_record(client: str, host: str, port: int) -> dict:
    url = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
    facts = audit.RequestFacts(client=client, user=None, service=UNNAMED_SERVICE, rule="unnamed_destinations",
                               method="CONNECT", url=url)  # fmt: skip
    return audit.image_record("blocked", facts, envelope=None, location=None, reason=UNNAMED_REASON)


def is_bare_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return False
    return True


def names_no_server(data_client: bytes) -> bool | None:
    """True when the client's first bytes name no server (a ClientHello without SNI, or not
    TLS at all); None while a ClientHello is still incomplete (wait for more)."""
    if not data_client:
        return None
    if not starts_like_tls_record(data_client):
        return True  # judged by where the bytes go, an address, never by a Host header inside
    try:
        hello = parse_client_hello(data_client)
    except ValueError:
        return True  # garbled: nothing names the destination
    if hello is None:
        return None
    return not hello.sni


class Closed(layer.Layer):
    """A layer that closes the client's connection as soon as it starts."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)
