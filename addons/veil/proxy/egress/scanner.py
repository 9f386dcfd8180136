"""The walk. Every stream is searched by every layer; what a layer decodes (a base64 run, a
zip member, a PDF stream…) becomes a stream of its own, searched the same way, down to
ScanLimits.max_depth. Findings say where they are as the path of layers that led there."""

import hashlib
import time

from . import base64_runs, escapes, signatures
from .context import Where
from .model import Finding, ScanLimits, ScanResult

SEPARATOR = " → "

# One translation of a stream serves two purposes: base64_runs looks for long runs of "a"
# (the base64 alphabets plus the escapes that may sit inside a run), and a control byte
# ("c") anywhere makes the stream binary for signatures.
_RUN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_\\%=\r\n"
_CONTROL_BYTES = bytes(set(range(0x20)) - {0x09, 0x0A, 0x0D}) + b"\x7f"


def _class_table() -> bytes:
    table = bytearray(b"." * 256)
    for byte in _RUN_BYTES:
        table[byte] = ord("a")
    for byte in b" \t":
        table[byte] = ord(" ")
    for byte in _CONTROL_BYTES:
        table[byte] = ord("c")
    return bytes(table)


CLASS_TABLE = _class_table()


class Scan:
    """The state of one scan: findings so far, and what is left of every limit."""

    def __init__(self, limits: ScanLimits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.findings: list[Finding] = []
        self.decoded_bytes = 0
        self.members = 0
        self.images_found = 0  # every confirmed image, repeats included (documents count theirs)
        self._seen: set = set()
        self._timed_out = False

    def result(self) -> ScanResult:
        return ScanResult(tuple(self.findings), self.decoded_bytes)

    def walk(self, stream: bytes, where: Where, depth: int) -> None:
        if self.out_of_time(where):
            return
        # A NUL (memchr-fast) settles "binary" at once; otherwise the translation is needed
        # anyway, for base64_runs.
        classes = None if b"\x00" in stream else stream.translate(CLASS_TABLE)
        binary = classes is None or b"c" in classes
        whole = [(0, len(stream))]
        # A binary stream's photos are found first, so that no other layer reads their pixels.
        pixel_data = signatures.search(self, stream, True, whole, where, depth) if binary else []
        plain_base64: list[tuple[int, int]] = []
        for start, end in _outside(pixel_data, len(stream)):
            span_classes = classes if classes is not None and (start, end) == whole[0] else stream[start:end].translate(CLASS_TABLE)
            plain_base64 += base64_runs.search(self, stream, span_classes, start, where, depth)
        # Plain base64 (the alphabet only) holds no text signature and no escape: what is left
        # of a JSON body with a 10 MB image is its few kilobytes of JSON.
        rest = _outside(sorted(pixel_data + plain_base64), len(stream))
        if not binary:
            signatures.search(self, stream, False, rest, where, depth)
        else:
            escapes.search_utf16(self, stream, where, depth)
        for start, end in rest:
            escapes.search(self, stream, start, end, where, depth)

    def descend(self, child: bytes, where: Where, depth: int) -> None:
        """Search a decoded stream one layer down, or report that it is one layer too deep."""
        if depth + 1 > self.limits.max_depth:
            self.opaque("nested", where, f"nested deeper than {self.limits.max_depth} decoding layers")
            return
        self.walk(child, where, depth + 1)

    # -- reporting ---------------------------------------------------------------------

    def image(self, image_format: str, stream: bytes, pos: int, end: int | None, where: Where) -> None:
        self.images_found += 1
        data = memoryview(stream)[pos:]
        size = None if end is None else end - pos
        digest = None if size is None else hashlib.sha256(data[:size]).hexdigest()
        # The same image reached by two paths (a stored zip member is also raw in the body)
        # is one finding; the first path found names it.
        key = ("image", image_format, digest or hashlib.sha256(data[:65536]).hexdigest(), size or len(data))
        here = location((*where, f"{image_format} at byte {pos:,}"))
        self._add(key, Finding("image", image_format, here, data, size, digest))

    def document(self, document_format: str, where: Where, images_inside: int) -> None:
        key = ("document", document_format, where)
        self._add(key, Finding("document", document_format, location(where), images_inside=images_inside))

    def opaque(self, opaque_format: str, where: Where, reason: str) -> None:
        self._add(("opaque", opaque_format, where, reason), Finding("opaque", opaque_format, location(where), reason=reason))

    def _add(self, key: tuple, finding: Finding) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(finding)

    # -- limits ------------------------------------------------------------------------

    def out_of_time(self, where: Where) -> bool:
        if time.monotonic() <= self.deadline:
            return False
        if not self._timed_out:
            self._timed_out = True
            self.opaque("scan", where, f"the scan's time limit ({self.limits.max_seconds:g} s) ran out here; the rest was not searched")
        return True

    def budget_left(self) -> int:
        return max(0, self.limits.max_decoded_bytes - self.decoded_bytes)

    def spend(self, decoded: int) -> None:
        self.decoded_bytes += decoded

    def count_member(self, where: Where) -> bool:
        """False (and an opaque finding) once the scan has opened max_members members."""
        self.members += 1
        if self.members <= self.limits.max_members:
            return True
        if self.members == self.limits.max_members + 1:  # reported once, where the scan stopped opening
            self.opaque("members", where, f"more than {self.limits.max_members:,} archive members or PDF streams")
        return False


def _outside(ranges: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The spans of [0, length) outside the (sorted, possibly overlapping) ranges."""
    spans, pos = [], 0
    for start, end in ranges:
        if start > pos:
            spans.append((pos, start))
        pos = max(pos, end)
    if pos < length:
        spans.append((pos, length))
    return spans


def location(where: Where) -> str:
    return SEPARATOR.join(where) if where else "body"
