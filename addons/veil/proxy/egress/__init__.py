"""The egress scanner: the second line of defence behind the envelopes.

The envelopes find images where services put them; this finds every image in the bytes
that will actually leave the proxy, however they are encoded (base64 in either alphabet and
with any escapes, hex, percent-encoding, quoted-printable, JSON strings, JSON arrays of
byte values, UTF-16 text) or
packed (ZIP and the Office/ODF documents built on it, gzip, bzip2, xz, zlib, tar, PDF), so
that the pipeline can refuse a request in which an image leaves that Veil did not write
itself. What cannot be opened (encrypted, 7z, RAR, OLE/legacy Office, over a limit) and
ISO media that is no still image (video) are reported as opaque, with why.

Pure: bytes in, findings out; no mitmproxy, no I/O.

    result = scan(body)                           # body already content-decoded
    leaks = unaccounted(result, cleaned_outputs)  # what the pipeline must refuse or log

One module per decoding layer: signatures (images and containers by magic bytes, confirmed
by veil.clean.formats' own header readers, in images), base64_runs (and hex), escapes
(percent, quoted-printable, JSON strings, byte arrays, UTF-16), archives (zip, gzip, bzip2, xz, zlib, tar), pdf;
inflate decompresses under the limits; scanner is the walk that nests them all.
"""

from .accounting import unaccounted
from .model import Finding, Kind, ScanLimits, ScanResult
from .scanner import Scan

_DEFAULT_LIMITS = ScanLimits()


def scan(data: bytes, *, limits: ScanLimits = _DEFAULT_LIMITS) -> ScanResult:
    """Every image, document/archive and unopenable container in `data`."""
    walk = Scan(limits)
    walk.walk(bytes(data), (), 0)
    return walk.result()


__all__ = ["Finding", "Kind", "ScanLimits", "ScanResult", "scan", "unaccounted"]
