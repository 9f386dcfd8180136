"""zlib/deflate decompression under the scan's limits: the shared decoded-bytes budget and a
maximum compression ratio, so a zip bomb stops after a bounded amount of work."""

import zlib
from dataclasses import dataclass

from .context import ScanContext

RAW_DEFLATE = -zlib.MAX_WBITS  # zip members
ZLIB = zlib.MAX_WBITS  # PDF FlateDecode
GZIP = 16 + zlib.MAX_WBITS
_INPUT_STEP = 64 * 1024
_OUTPUT_STEP = 1024 * 1024


@dataclass(frozen=True)
class Inflated:
    data: bytes
    consumed: int  # compressed bytes read, up to the end of the stream when complete
    complete: bool  # the compressed stream ended properly
    problem: str | None  # why it stopped early: damaged data or a limit


def inflate(scan: ScanContext, compressed: bytes | memoryview, wbits: int) -> Inflated:
    """Decompress one stream from the start of `compressed` (which may go on past its end)."""
    decoder = zlib.decompressobj(wbits)
    view = memoryview(compressed)
    pieces: list[bytes] = []
    produced = fed = 0
    pending: bytes | memoryview = b""
    budget = scan.budget_left()
    try:
        while not decoder.eof:
            if not pending:
                if fed >= len(view):
                    return _stopped(scan, pieces, fed, "the compressed data is cut off")
                pending = view[fed : fed + _INPUT_STEP]
                fed += len(pending)
            piece = decoder.decompress(pending, _OUTPUT_STEP)
            pending = decoder.unconsumed_tail
            produced += len(piece)
            pieces.append(piece)
            if problem := _over_limit(scan, produced, fed - len(pending), budget):
                return _stopped(scan, pieces, fed - len(pending), problem)
    except zlib.error as error:
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
