"""Decoding a request body's Content-Encoding the way the services will, all of it.

mitmproxy's gzip and deflate decoders stop at the end of the first compressed stream and
ignore what follows. A gzip body may hold several members one after another, and Python,
Go and Node decode them all: an image in the second member would reach the service
without Veil having seen it. So gzip is decoded member by member here, and any other bytes
after the compressed data (which decoders disagree about) make the body unreadable.
"""

import zlib

GZIP_MAGIC = b"\x1f\x8b"
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS


class UndecodableBody(ValueError):
    pass


def decode_gzip(raw: bytes) -> bytes:
    decoded, rest = [], raw
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            raise UndecodableBody(f"{len(rest)} bytes after the gzip data are not another gzip member")
        decoder = zlib.decompressobj(_GZIP)
        decoded.append(_whole_stream(decoder, rest, "gzip"))
        rest = decoder.unused_data
    return b"".join(decoded)


def decode_deflate(raw: bytes) -> bytes:
    """zlib-wrapped deflate, or raw deflate (what some clients send for `deflate`)."""
    try:
        decoder = zlib.decompressobj(_ZLIB_OR_GZIP)
        decoded = _whole_stream(decoder, raw, "deflate")
    except UndecodableBody:
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        decoded = _whole_stream(decoder, raw, "deflate")
    if decoder.unused_data:
        raise UndecodableBody(f"{len(decoder.unused_data)} bytes follow the end of the deflate data")
    return decoded


def _whole_stream(decoder, data: bytes, name: str) -> bytes:
    try:
        decoded = decoder.decompress(data) + decoder.flush()
    except zlib.error as error:
        raise UndecodableBody(f"the {name} data is damaged ({error})") from None
    if not decoder.eof:
        raise UndecodableBody(f"the {name} data is cut off")
    return decoded


DECODERS = {"gzip": decode_gzip, "x-gzip": decode_gzip, "deflate": decode_deflate}
