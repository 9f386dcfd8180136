"""ICC colour profiles: keep the colour, lose the words.

A profile's colour data (curves, matrices, tables) says nothing about a person, but its
text tags can: a profile made on someone's own machine names them in its description or
copyright (`desc`, `cprt`, `dmnd`, `dmdd`, or any other tag of a text type), and the
profile ID hashes the original. `neutralise` rewrites every text tag in place to a neutral
value of the same length and clears the ID (all zeros means "not computed", ICC.1 7.2.18),
so the profile keeps its size — a lossless strip can keep every offset — and its colours.
"""

import struct

_HEADER = 128
_TAG_ENTRY = 12
_PROFILE_ID = slice(84, 100)
NEUTRAL_TEXT = b"ICC profile"
# Tag types holding free text: ICC v2's textDescriptionType and textType, v4's
# multiLocalizedUnicodeType, and the older 'utf8'/'utf16' text types some tools write.
TEXT_TYPES = (b"desc", b"text", b"mluc", b"utf8", b"ut16")


class DamagedProfile(ValueError):
    pass


def neutralise(profile: bytes) -> bytes:
    """The profile with its text tags neutral and its ID cleared; same length."""
    data = bytearray(profile)
    data[_PROFILE_ID] = bytes(16)
    for offset, size in _tags(data):
        kind = bytes(data[offset : offset + 4])
        if kind in TEXT_TYPES:
            data[offset + 8 : offset + size] = _neutral_body(kind, bytes(data[offset + 8 : offset + size]))
    return bytes(data)


def is_neutral(profile: bytes) -> bool:
    """True when every text tag says nothing but (a cut of) the neutral text and the ID is
    cleared. Checked from the bytes, not by neutralising again, so it stays a second opinion."""
    if profile[_PROFILE_ID] != bytes(16):
        return False
    neutral = NEUTRAL_TEXT.decode()
    for offset, size in _tags(profile):
        kind = profile[offset : offset + 4]
        if kind in TEXT_TYPES:
            body = profile[offset + 8 : offset + size]
            if kind == b"desc":
                body = body[4:]  # past the ASCII count
            text = body.decode("utf-16-be", "replace") if kind == b"ut16" else body.decode("latin-1")
            words = "".join(character for character in text if character.isprintable() and character not in " \ufffd")
            if kind == b"mluc":
                words = _mluc_words(body)
            if not all(word and neutral.replace(" ", "").startswith(word) for word in words.split("|") if word):
                return False
    return True


def _mluc_words(body: bytes) -> str:
    """The strings of a multiLocalizedUnicode tag, '|'-joined, spaces dropped; any byte no
    record points at counts as text too."""
    if len(body) < 8:
        return ""
    count, record_size = struct.unpack_from(">II", body, 0)
    words, covered = [], set(range(min(len(body), 8 + count * max(record_size, 0))))
    for index in range(count):
        at = 8 + index * record_size
        if record_size < 12 or at + 12 > len(body):
            return "\ufffd"
        _, length, offset = struct.unpack_from(">4sII", body, at)
        start = offset - 8
        string = body[start : start + length]
        covered |= set(range(start, start + length))
        words.append(string.decode("utf-16-be", "replace").replace(" ", ""))
    stray = bytes(body[i] for i in range(len(body)) if i not in covered).strip(b"\x00")
    return "|".join(words) + ("|\ufffd" if stray else "")


def _tags(data: bytes | bytearray) -> list[tuple[int, int]]:
    """(offset, size) of each tag's data, checked to lie inside the profile."""
    if len(data) < _HEADER + 4:
        raise DamagedProfile("too short for an ICC header")
    (count,) = struct.unpack_from(">I", data, _HEADER)
    if _HEADER + 4 + count * _TAG_ENTRY > len(data):
        raise DamagedProfile("the tag table runs past the end of the profile")
    tags = []
    for index in range(count):
        _, offset, size = struct.unpack_from(">4sII", data, _HEADER + 4 + index * _TAG_ENTRY)
        if size < 8 or offset + size > len(data):
            raise DamagedProfile("a tag points outside the profile")
        tags.append((offset, size))
    return tags


def _neutral_body(kind: bytes, body: bytes) -> bytes:
    """A body of the same length for a tag of type `kind`, holding only neutral text."""
    if kind == b"mluc":
        return _neutral_mluc(body)
    if kind == b"desc":
        return _neutral_desc(body)
    return _ascii(len(body))


def _ascii(length: int) -> bytes:
    """NEUTRAL_TEXT cut or NUL-padded to `length` bytes, NUL-terminated where room allows."""
    return (NEUTRAL_TEXT[: max(0, length - 1)]).ljust(length, b"\x00")


def _neutral_desc(body: bytes) -> bytes:
    """textDescriptionType: an ASCII count and string, then Unicode and ScriptCode parts.
    Only the ASCII string keeps neutral text; the rest is zeroed (counts included), which
    readers take as "no Unicode, no ScriptCode description"."""
    if len(body) < 4:
        return bytes(len(body))
    (ascii_count,) = struct.unpack_from(">I", body, 0)
    ascii_count = min(ascii_count, len(body) - 4)
    text = _ascii(ascii_count)
    return struct.pack(">I", ascii_count) + text + bytes(len(body) - 4 - ascii_count)


def _neutral_mluc(body: bytes) -> bytes:
    """multiLocalizedUnicodeType: records of (language, country, length, offset) pointing
    at UTF-16BE strings. Each string becomes the neutral text, space-padded to its length."""
    data = bytearray(body)
    if len(body) < 8:
        return bytes(len(body))
    count, record_size = struct.unpack_from(">II", body, 0)
    neutral = NEUTRAL_TEXT.decode().encode("utf-16-be")
    for index in range(count):
        at = 8 + index * record_size
        if record_size < 12 or at + 12 > len(body):
            return bytes(len(body))
        _, length, offset = struct.unpack_from(">4sII", body, at)
        start = offset - 8  # offsets count from the tag's start, which `body` omits
        if start < 0 or start + length > len(body):
            return bytes(len(body))
        data[start : start + length] = (neutral[:length] + " ".encode("utf-16-be") * length)[:length]
    # Bytes no record points at (padding, or text hidden between records) are zeroed too.
    covered = bytearray(len(body))
    covered[: 8 + count * record_size] = b"\x01" * min(len(body), 8 + count * record_size)
    for index in range(count):
        _, length, offset = struct.unpack_from(">4sII", body, 8 + index * record_size)
        covered[offset - 8 : offset - 8 + length] = b"\x01" * length
    return bytes(byte if covered[i] else 0 for i, byte in enumerate(data))


def neutral_pieces(pieces: list[bytes]) -> list[bytes] | None:
    """A profile split over several pieces (JPEG's APP2 segments), neutralised and split
    again at the same lengths; None when the profile is damaged (the caller drops it)."""
    try:
        whole = neutralise(b"".join(pieces))
    except DamagedProfile:
        return None
    out, at = [], 0
    for piece in pieces:
        out.append(whole[at : at + len(piece)])
        at += len(piece)
    return out


def pieces_are_neutral(pieces: list[bytes]) -> bool:
    try:
        return is_neutral(b"".join(pieces))
    except DamagedProfile:
        return False
