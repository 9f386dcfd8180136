"""Base64 anywhere in a stream: either alphabet, padded or not, wrapped in lines, with the
escapes a JSON serialiser, a URL encoder or a quoted-printable encoder puts inside it, after
a `data:` prefix of any length or a leading space.

A run is found on the stream's class translation (scanner.CLASS_TABLE: base64 characters
and escape characters are "a"), so a 10 MB body costs one translate and one bytes.find per
run, not a Python step per byte. The run's escapes are undone, its line breaks dropped, and
each stretch of the alphabet long enough to hold an image is decoded and searched.

Where a run really starts is uncertain when text sits in front of it on an earlier line
("Content-Transfer-Encoding: base64", a header value) or is glued to it: the decoder is then
off by one to three characters and every byte it produces is wrong. So a stretch is decoded
from every alignment whose first kilobyte decodes to something meaningful (a signature, a
zlib header, text), and from the first line start at each alignment otherwise untried.
A stretch of hex digits is decoded as hex as well.
"""

import binascii
import bisect
import itertools
import re

from . import archives, signatures
from .context import ScanContext, Where

# Shorter stretches are not decoded. 80 characters are 60 bytes: smaller than any image that
# can hold a face or identifying metadata (a 1×1 PNG alone is 67 bytes, an EXIF block with a
# GPS position over 100), longer than the hashes, ids and tokens in ordinary requests.
MIN_BASE64_CHARS = 80
MIN_HEX_CHARS = 120  # the same 60 bytes, written as hex digits
_HEX_DIGITS = b"0123456789ABCDEFabcdef"
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]{%d,}" % MIN_HEX_CHARS)
_HEX_SAMPLE, _HEX_SAMPLE_STRAYS = 256, 4
_MIN_PIECE = 40  # one unbroken stretch to start a run at (shorter: thousands of words and escapes in a chat about code)
_MIN_SPACED_PIECE = 16  # lines joined by spaces (header folding): longer than nearly every word
_HEAD_CHARS = 1024  # decoded at every alignment to test for a signature
_LONG_PLAIN_RUN = 64 * 1024

_RUN = re.compile(rb"a+")
_SPACES = re.compile(rb" +")
_LONG_STRETCH = re.compile(rb"a{%d,}" % MIN_BASE64_CHARS)
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_STANDARD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_ALPHABET_CLASSES = bytes(ord("a") if byte in _STANDARD_ALPHABET else ord(".") for byte in range(256))
_WHITESPACE = (b"\n", b"\r", b" ", b"\t")
_NOT_PLAIN = (*_WHITESPACE, b"\\", b"%")
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\r\n"


def search(scan: ScanContext, stream: bytes, classes: bytes, offset: int, where: Where, depth: int) -> list[tuple[int, int]]:
    """Every run in stream[offset : offset + len(classes)]; `classes` is that span's
    scanner.CLASS_TABLE translation. Returns the spans of the long plain runs (nothing but
    the alphabet and padding), in which no other layer can find anything worth the time: a
    short one may be literal text inside a percent- or QP-encoded region, which must not be
    cut there."""
    needle = b"a" * _MIN_PIECE
    pos = 0
    plain = []
    while (start := classes.find(needle, pos)) >= 0:
        if scan.out_of_time(where):
            break
        end = _run_end(classes, start)
        if end - start >= MIN_BASE64_CHARS:
            was_plain = _search_run(scan, stream, offset + start, offset + end, where, depth)
            if was_plain and end - start >= _LONG_PLAIN_RUN:
                plain.append((offset + start, offset + end))
        pos = end
    return plain


def _run_end(classes: bytes, start: int) -> int:
    """End of the run at `start`, across single spaces or tabs between long pieces."""
    end = _RUN.match(classes, start).end()
    while (gap := _SPACES.match(classes, end)) is not None:
        piece = _RUN.match(classes, gap.end())
        if piece is None or piece.end() - piece.start() < _MIN_SPACED_PIECE:
            break
        end = piece.end()
    return end


def _search_run(scan: ScanContext, stream: bytes, start: int, end: int, where: Where, depth: int) -> bool:
    """Decode the run; True when it was plain."""
    plain = _is_plain(stream, start, end)
    if plain:
        joined, line_starts, stretches = _plain_text(stream, start, end)
    else:
        # Hex as it stands too: undoing escapes would read a '%' glued in front of hex
        # digits as a percent escape and eat two of them.
        _decode_hex(scan, memoryview(stream)[start:end], (*where, f"text at byte {start:,}"), depth)
        joined, line_starts, stretches = _unescaped_text(stream[start:end])
    for stretch_start, stretch_end in stretches:
        inner_line_starts = line_starts[bisect.bisect_right(line_starts, stretch_start) : bisect.bisect_left(line_starts, stretch_end)]
        label = f"base64 at byte {start:,}" + (f" (from character {stretch_start:,})" if stretch_start else "")
        relative_line_starts = [line_start - stretch_start for line_start in inner_line_starts]
        _decode_stretch(scan, joined[stretch_start:stretch_end], relative_line_starts, (*where, label), depth)
        _decode_hex(scan, joined[stretch_start:stretch_end], (*where, f"text at byte {start:,}"), depth)
    return plain


def _plain_text(stream: bytes, start: int, end: int) -> tuple[bytes | memoryview, list[int], list[tuple[int, int]]]:
    """(the alphabet, line starts, stretches) of a plain run: the common case, a JSON string
    of base64, decoded from a view of the body rather than a copy."""
    joined: bytes | memoryview = memoryview(stream)[start : end - _padding(stream, start, end)]
    if stream.find(b"-", start, end) >= 0 or stream.find(b"_", start, end) >= 0:
        joined = bytes(joined).translate(_URLSAFE_TO_STANDARD)
    return joined, [], [(0, len(joined))] if len(joined) >= MIN_BASE64_CHARS else []


def _unescaped_text(run: bytes) -> tuple[bytes, list[int], list[tuple[int, int]]]:
    """(the alphabet, line starts, stretches) of a run with escapes, line breaks or spaces."""
    joined, line_starts = _join_lines(undo_text_escapes(run))
    if b"-" in joined or b"_" in joined:
        joined = joined.translate(_URLSAFE_TO_STANDARD)
    return joined, line_starts, _stretches(joined)


def _decode_hex(scan: ScanContext, stretch: bytes | memoryview, where: Where, depth: int) -> None:
    """Hex digits are base64 characters too: long runs of nothing else in a stretch that is
    mostly hex are decoded as hex as well, from both alignments (a stray digit in front
    shifts every byte). Base64 has a non-hex character every few: it is turned away on its
    first few hundred characters, never searched end to end."""
    if len(bytes(stretch[:_HEX_SAMPLE]).translate(None, _HEX_DIGITS)) > _HEX_SAMPLE_STRAYS:
        return
    for run in _HEX_RUN.finditer(stretch):
        digits = run.group()
        for begin in (0, 1):
            usable = digits[begin : begin + (len(digits) - begin) // 2 * 2]
            label = f"hex from character {run.start() + begin:,}" if run.start() + begin else "hex"
            scan.descend(binascii.unhexlify(usable), (*where, label), depth)


def _is_plain(stream: bytes, start: int, end: int) -> bool:
    """Nothing but the alphabet and final padding: no escape, no line break, no space."""
    if any(stream.find(character, start, end) >= 0 for character in _NOT_PLAIN):
        return False
    return stream.find(b"=", start, end - _padding(stream, start, end)) < 0


def _padding(stream: bytes, start: int, end: int) -> int:
    """How many '=' end the run (counted from its tail: never a copy of a long run)."""
    tail = stream[max(start, end - 4) : end]
    return len(tail) - len(tail.rstrip(b"="))


def _join_lines(text: bytes) -> tuple[bytes, list[int]]:
    """The text without whitespace, and where each line after the first starts in it."""
    if not any(space in text for space in _WHITESPACE):
        return text, []
    lines = text.split()
    starts = list(itertools.accumulate(map(len, lines[:-1])))
    return b"".join(lines), starts


def _stretches(joined: bytes) -> list[tuple[int, int]]:
    """Spans of the standard alphabet long enough to matter ('=' padding ends one)."""
    classes = joined.translate(_ALPHABET_CLASSES)
    if b"." not in classes:
        return [(0, len(joined))]
    return [match.span() for match in _LONG_STRETCH.finditer(classes)]


def _decode_stretch(scan: ScanContext, stretch: bytes, line_starts: list[int], where: Where, depth: int) -> None:
    for begin in _decoding_starts(stretch, line_starts):
        decoded = _decode_from(stretch, begin)
        label = [] if begin == 0 else [f"decoded from character {begin:,}"]
        scan.descend(decoded, where + tuple(label), depth)


def _decoding_starts(stretch: bytes, line_starts: list[int]) -> list[int]:
    """Offsets to decode from, at most one per alignment (an earlier start at the same
    alignment decodes everything a later one would): the start; each alignment whose first
    characters decode to something meaningful; else the first line start at that alignment."""
    starts = {0: 0}
    for alignment in (1, 2, 3):
        if _meaningful(_decode_from(stretch[: _HEAD_CHARS + alignment], alignment)):
            starts[alignment] = alignment
    for line_start in line_starts:
        if len(starts) == 4:
            break
        starts.setdefault(line_start % 4, line_start)
    return sorted(starts.values())


def _meaningful(head: bytes) -> bool:
    """A signature, a zlib header, or text (base64 of base64, of JSON…) at least in its
    second half (the first may be the stray characters glued in front): never what a wrong
    alignment gives, which is random bytes (384 of them all printable: one chance in 2^550;
    a zlib header in its first bytes by chance: one in ~250, and then one more decode)."""
    tail = head[len(head) // 2 :]
    return not tail.translate(None, _PRINTABLE) or bool(archives.zlib_headers_near_start(head)) or signatures.anywhere(head)


def _decode_from(stretch: bytes | memoryview, begin: int) -> bytes:
    usable = stretch[begin:]
    remainder = len(usable) % 4
    whole = len(usable) - remainder
    decoded = binascii.a2b_base64(usable[:whole])
    if remainder >= 2:  # unpadded: one or two bytes more (a lone last character is no byte)
        decoded += binascii.a2b_base64(bytes(usable[whole:]) + b"=" * (4 - remainder))
    return decoded


# ---------------------------------------------------------------------------------------
# Escapes inside a run. Each pass undoes one family; a few passes undo them stacked (a JSON
# string holding a percent-encoded value). The common spellings are replaced by
# bytes.replace (C speed); whatever escape is left goes through a regex.


def _spellings(character: bytes) -> list[tuple[bytes, bytes]]:
    code = ord(character)
    return [(b"\\u%04x" % code, character), (b"\\u%04X" % code, character), (b"%%%02X" % code, character), (b"%%%02x" % code, character)]


_COMMON_ESCAPES = [(rb"\/", b"/"), (rb"\n", b"\n"), (rb"\r", b"\r")] + [
    pair for character in (b"+", b"/", b"=", b"\n", b"\r", b" ") for pair in _spellings(character)
]
_JSON_ESCAPE = re.compile(rb'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_JSON_SHORT = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t"}
_PERCENT_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_MAX_PASSES = 3


def undo_text_escapes(text: bytes) -> bytes:
    for _ in range(_MAX_PASSES):
        before = text
        # The shortcut would read \\u002B (an escaped backslash, then "u002B") as \+.
        if (b"\\" in text or b"%" in text) and b"\\\\" not in text:
            for escape, character in _COMMON_ESCAPES:
                if escape in text:
                    text = text.replace(escape, character)
        if b"\\" in text:
            text = _JSON_ESCAPE.sub(_json_character, text)
        if b"%" in text:
            text = _PERCENT_ESCAPE.sub(lambda escape: bytes.fromhex(escape.group(1).decode()), text)
        if _has_inner_equals(text):
            text = _undo_quoted_printable(text)
        if text == before:
            break
    return text


def _json_character(escape: re.Match) -> bytes:
    if escape.group(1) is None:
        return _JSON_SHORT[escape.group(2)]
    return chr(int(escape.group(1), 16)).encode("utf-8", "surrogatepass")


def _has_inner_equals(text: bytes) -> bool:
    """A '=' that is not final padding: quoted-printable (padding alone needs no decoding)."""
    first = text.find(b"=")
    return first >= 0 and bool(text[first:].strip(b"= \t\r\n"))


def _undo_quoted_printable(text: bytes) -> bytes:
    """Soft line breaks go, `=3D` is '='; `=0A` and `=0D` are the line breaks of wrapped
    base64 that a binary-mode encoder escaped. Base64 has no other character QP escapes."""
    for soft_break in (b"=\r\n", b"=\n"):
        if soft_break in text:
            text = text.replace(soft_break, b"")
    for escape, character in _QP_ESCAPES:
        if escape in text:
            text = text.replace(escape, character)
    return text


_QP_ESCAPES = [(b"=%02X" % ord(c), c) for c in (b"=", b"\n", b"\r")] + [(b"=%02x" % ord(c), c) for c in (b"=", b"\n", b"\r")]
