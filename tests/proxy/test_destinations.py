"""Naming a destination: a bare IP address, and whether the client's first bytes name a server."""

import ssl

import pytest

from veil.proxy import destinations


def client_hello(server_name: str | None) -> bytes:
    """The first bytes a TLS client sends, with or without SNI."""
    context = ssl.create_default_context()
    context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        connection.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("host, bare", [("127.0.0.2", True), ("[::1]", True), ("2001:db8::1", True),
                                        ("api.openai.com", False), ("", False), (None, False)])  # fmt: skip
def test_bare_ip(host, bare):
    assert destinations.is_bare_ip(host) is bare


def test_a_client_hello_with_sni_names_its_server():
    assert destinations.names_no_server(client_hello("api.example.com")) is False


def test_a_client_hello_without_sni_names_none():
    assert destinations.names_no_server(client_hello(None)) is True


def test_an_incomplete_hello_waits_and_plain_bytes_name_none():
    hello = client_hello("api.example.com")
    assert destinations.names_no_server(hello[:20]) is None
    assert destinations.names_no_server(b"") is None
    assert destinations.names_no_server(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is True
