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


# Past this many decoded bytes a body is refused before it is inflated further: a small
# compressed body can expand to gigabytes (a decompression bomb).
DEFAULT_MAX_DECODED = 1 << 30


def decode_gzip(raw: bytes, limit: int = DEFAULT_MAX_DECODED) -> bytes:
    decoded, rest, size = [], raw, 0
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            raise UndecodableBody(f"{len(rest)} bytes after the gzip data are not another gzip member")
        decoder = zlib.decompressobj(_GZIP)
        decoded.append(_whole_stream(decoder, rest, "gzip", limit - size))
        size += len(decoded[-1])
        rest = decoder.unused_data
    return b"".join(decoded)


def decode_deflate(raw: bytes, limit: int = DEFAULT_MAX_DECODED) -> bytes:
    """zlib-wrapped deflate, or raw deflate (what some clients send for `deflate`)."""
    try:
        decoder = zlib.decompressobj(_ZLIB_OR_GZIP)
        decoded = _whole_stream(decoder, raw, "deflate", limit)
    except TooLargeWhenDecoded:
        raise
    except UndecodableBody:
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        decoded = _whole_stream(decoder, raw, "deflate", limit)
    if decoder.unused_data:
        raise UndecodableBody(f"{len(decoder.unused_data)} bytes follow the end of the deflate data")
    return decoded


class TooLargeWhenDecoded(UndecodableBody):
    pass


def _whole_stream(decoder, data: bytes, name: str, limit: int = DEFAULT_MAX_DECODED) -> bytes:
    try:
        decoded = decoder.decompress(data, limit + 1)
        if len(decoded) > limit or decoder.unconsumed_tail:
            raise TooLargeWhenDecoded(f"the {name} data decodes to more than {limit:,} bytes")
        decoded += decoder.flush()
    except zlib.error as error:
        raise UndecodableBody(f"the {name} data is damaged ({error})") from None
    if not decoder.eof:
        raise UndecodableBody(f"the {name} data is cut off")
    return decoded


DECODERS = {"gzip": decode_gzip, "x-gzip": decode_gzip, "deflate": decode_deflate}


def _identity(raw: bytes) -> bytes:
    return raw


def _by_mitmproxy(name: str):
    """Brotli and zstd as mitmproxy decodes them (its own dependencies)."""

    def decode(raw: bytes) -> bytes:
        from mitmproxy.net import encoding

        try:
            return encoding.decode(raw, name)
        except ValueError as error:
            raise UndecodableBody(f"the {name} data is damaged ({error})") from None

    return decode


_OTHER_DECODERS = {"identity": _identity, "br": _by_mitmproxy("br"), "zstd": _by_mitmproxy("zstd")}


def codings(header_value: str) -> list[str]:
    """`gzip, chunked` → ["gzip", "chunked"], lower case, in the order they were applied."""
    return [name.strip().lower() for name in header_value.split(",") if name.strip()]


def decode(raw: bytes, header_value: str, limit: int) -> bytes:
    """`raw` with every coding of a Content-Encoding (or Transfer-Encoding, less `chunked`,
    which mitmproxy already removed) undone, last applied first. A coding Veil cannot undo
    makes the body unreadable: passing it on would send bytes Veil never saw decoded."""
    data = raw
    for name in reversed([name for name in codings(header_value) if name != "chunked"]):
        if name in DECODERS:
            data = DECODERS[name](data, limit)
        elif name in _OTHER_DECODERS:
            data = _OTHER_DECODERS[name](data)
        else:
            raise UndecodableBody(f"Veil cannot decode the {name!r} coding")
        if len(data) > limit:
            raise UndecodableBody(f"it decodes to more than the policy's {limit:,} byte limit")
    return data
