"""Decompression under the scan's limits: the shared decoded-bytes budget and a maximum
compression ratio, so a zip bomb stops after a bounded amount of work. zlib/deflate (zip,
gzip, PDF), bzip2 and xz, through one loop."""

import bz2
import lzma
import zlib
from dataclasses import dataclass

from .context import ScanContext

RAW_DEFLATE = -zlib.MAX_WBITS  # zip members
ZLIB = zlib.MAX_WBITS  # PDF FlateDecode
GZIP = 16 + zlib.MAX_WBITS
_INPUT_STEP = 64 * 1024
_OUTPUT_STEP = 1024 * 1024
_DAMAGED = (zlib.error, OSError, EOFError, lzma.LZMAError)  # bz2 raises OSError on bad data


@dataclass(frozen=True)
class Inflated:
    data: bytes
    consumed: int  # compressed bytes read, up to the end of the stream when complete
    complete: bool  # the compressed stream ended properly
    problem: str | None  # why it stopped early: damaged data or a limit


def inflate(scan: ScanContext, compressed: bytes | memoryview, wbits: int) -> Inflated:
    """Decompress one zlib/deflate/gzip stream from the start of `compressed` (which may go
    on past its end)."""
    return decompress(scan, compressed, zlib.decompressobj(wbits))


def decompress_bzip2(scan: ScanContext, compressed: bytes | memoryview) -> Inflated:
    return decompress(scan, compressed, bz2.BZ2Decompressor())


def decompress_xz(scan: ScanContext, compressed: bytes | memoryview) -> Inflated:
    return decompress(scan, compressed, lzma.LZMADecompressor(lzma.FORMAT_XZ))


def decompress(scan: ScanContext, compressed: bytes | memoryview, decoder) -> Inflated:
    """Feed `decoder` (a zlib, bz2 or lzma decompressor) step by step, never letting it
    write more than the limits allow. zlib hands back the input it has not used yet
    (unconsumed_tail); bz2 and lzma keep it and say when they need more (needs_input)."""
    view = memoryview(compressed)
    pieces: list[bytes] = []
    produced = fed = 0
    pending: bytes | memoryview = b""
    budget = scan.budget_left()
    try:
        while not decoder.eof:
            if getattr(decoder, "needs_input", not pending):
                if fed >= len(view):
                    return _stopped(scan, pieces, fed, "the compressed data is cut off")
                pending = view[fed : fed + _INPUT_STEP]
                fed += len(pending)
            piece = decoder.decompress(pending, _OUTPUT_STEP)
            pending = getattr(decoder, "unconsumed_tail", b"")
            produced += len(piece)
            pieces.append(piece)
            if problem := _over_limit(scan, produced, fed - len(pending), budget):
                return _stopped(scan, pieces, fed - len(pending), problem)
    except _DAMAGED as error:
        return _stopped(scan, pieces, fed - len(pending), f"the compressed data is damaged ({error})")
    consumed = fed - len(pending) - len(decoder.unused_data)
    scan.spend(produced)
    return Inflated(b"".join(pieces), consumed, True, None)


def _over_limit(scan: ScanContext, produced: int, consumed: int, budget: int) -> str | None:
    limits = scan.limits
    if produced > budget:
        return f"decompressing it would pass the scan's limit of {limits.max_decoded_bytes:,} decoded bytes"
    if produced > limits.ratio_slack_bytes and produced > limits.max_ratio * max(consumed, 1):
        return f"it decompresses more than {limits.max_ratio}:1 (a compression bomb?)"
    return None


def _stopped(scan: ScanContext, pieces: list[bytes], consumed: int, problem: str) -> Inflated:
    data = b"".join(pieces)
    scan.spend(len(data))
    return Inflated(data, consumed, False, problem)
