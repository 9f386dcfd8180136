"""Images as base64 strings inside a JSON document, found and replaced byte-exactly.

Chat APIs carry images as `data:<mime>;base64,…` URLs (OpenAI, Mistral, Perplexity, xAI,
DeepSeek), as bare standard base64 (Anthropic `source.data`, Grok web `content`) or as
URL-safe base64, sometimes unpadded (google-genai `inlineData.data`). Images nest anywhere:
tool results, function_call_output, arrays of parts. So every string value in the tree is
a candidate, and an image is recognised by the magic bytes of its decoded head, never by
key names or declared types.

Re-serialising with json.loads + json.dumps would change spacing, key order and escaping,
so the document is never rebuilt: a small tokenizer walks the raw bytes with regexes (long
strings are consumed at C speed), keeps the JSON path, and reports each string's byte span.
A replacement is written back in the style of the original: same base64 alphabet, padding
and line wrapping, the same data-URL prefix byte for byte, the same JSON escapes (`\\/`).
"""

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, replace

from .base import EnvelopeError, ImageSlot
from .magic import HEAD_BYTES, looks_like_upload

NAME = "json"

MAX_DEPTH = 512
# Shorter strings cannot hold an image worth cleaning (24 bytes decoded) and are skipped
# without a look; longer ones cost one small decode of their head.
MIN_CANDIDATE_LENGTH = 32

# Sibling keys that tell what a bare base64 string is (Anthropic `source.media_type`,
# google-genai `inlineData.mimeType`/`mime_type`, Grok `fileMimeType`, OpenAI `filename`).
_TYPE_KEYS = ("media_type", "mediaType", "mime_type", "mimeType", "fileMimeType", "content_type", "contentType")
_FILENAME_KEYS = ("filename", "fileName", "file_name")
_SIBLING_KEYS = frozenset(_TYPE_KEYS + _FILENAME_KEYS)


# ---------------------------------------------------------------------------------------
# Base64 in any of the flavours services use, decoded strictly, re-encoded the same way.


@dataclass(frozen=True)
class Base64Style:
    urlsafe: bool  # '-' and '_' instead of '+' and '/'
    padded: bool  # ends with '=' as needed (assumed when the length needed none)
    line_length: int | None = None  # MIME-style wrapping (76 for base64.encodebytes)
    line_separator: bytes = b"\n"
    trailing_separator: bool = False  # a separator after the last line too


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_BASE64_HEAD = re.compile(rb"[A-Za-z0-9+/_-]*")


def decode_base64(text: bytes) -> tuple[bytes, Base64Style] | None:
    """Strictly decode standard or URL-safe base64, padded or not, optionally wrapped in
    lines of equal length. None when `text` is not exactly that."""
    unwrapped = _unwrap_lines(text)
    if unwrapped is None:
        return None
    joined, line_length, separator, trailing = unwrapped
    standard_alphabet = b"+" in joined or b"/" in joined
    urlsafe = b"-" in joined or b"_" in joined
    if standard_alphabet and urlsafe:
        return None
    unpadded = joined.rstrip(b"=")
    padding = len(joined) - len(unpadded)
    if padding > 2 or (padding and len(joined) % 4) or len(unpadded) % 4 == 1:
        return None
    if urlsafe:
        unpadded = unpadded.translate(_URLSAFE_TO_STANDARD)
    try:
        data = binascii.a2b_base64(unpadded + b"=" * (-len(unpadded) % 4), strict_mode=True)
    except binascii.Error:
        return None
    padded = padding > 0 or len(unpadded) % 4 == 0
    return data, Base64Style(urlsafe, padded, line_length, separator, trailing)


def encode_base64(data: bytes, style: Base64Style) -> bytes:
    text = base64.urlsafe_b64encode(data) if style.urlsafe else base64.b64encode(data)
    if not style.padded:
        text = text.rstrip(b"=")
    if style.line_length:
        step = style.line_length
        text = style.line_separator.join(text[at : at + step] for at in range(0, len(text), step))
    if style.trailing_separator:
        text += style.line_separator
    return text


def _unwrap_lines(text: bytes) -> tuple[bytes, int | None, bytes, bool] | None:
    """Undo MIME-style line wrapping: (joined, line length, separator, trailing separator).
    Lines must all be the same length except a shorter last one, or it is not base64."""
    if b"\n" not in text:
        return text, None, b"\n", False
    separator = b"\r\n" if b"\r\n" in text else b"\n"
    lines = text.split(separator)
    trailing = lines[-1] == b""
    if trailing:
        lines.pop()
    if len(lines) == 1:  # one line and a final newline: no wrapping width to keep
        return lines[0], None, separator, trailing
    width = len(lines[0])
    if width == 0 or not 0 < len(lines[-1]) <= width or any(len(line) != width for line in lines[1:-1]):
        return None
    return b"".join(lines), width, separator, trailing


# ---------------------------------------------------------------------------------------
# A text that is an image: a data URL or bare base64 whose decoded head has image magic.
# Shared with the multipart envelope (form fields holding base64, Content-Transfer-Encoding).

# MIME type and parameters: printable ASCII except ';' and ','. Possessive, so a long
# payload without the ';base64,' marker fails in one pass.
_DATA_URL_PREFIX = re.compile(rb"data:([!-+\--:<-~]*+)(?:;[!-+\--:<-~]*+)*?;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class TextImage:
    image: bytes
    declared_type: str | None  # the data URL's MIME type
    prefix_length: int  # bytes of `data:…;base64,` before the payload (0 for bare base64)
    style: Base64Style


def looks_like_text_image(text_head: bytes) -> bool:
    """Cheap test on the first few hundred bytes of a text: is it base64 (after an optional
    data-URL prefix) whose decoded head has image magic? Decodes only those few bytes.
    Prose that merely mentions a signature ("iVBORw0KGgo is PNG") has a space early on."""
    payload = text_head[_data_url_prefix(text_head)[0] :]
    head = payload[: HEAD_BYTES * 2].replace(b"\r", b"").replace(b"\n", b"")
    alphabet_run = _BASE64_HEAD.match(head).end()
    if alphabet_run < len(head) and head[alphabet_run] != ord("="):
        return False
    head = head[: min(alphabet_run, HEAD_BYTES * 4 // 3) // 4 * 4]
    if len(head) < 4:
        return False
    return looks_like_upload(binascii.a2b_base64(head.translate(_URLSAFE_TO_STANDARD)))


def find_text_image(text: bytes, where: str) -> TextImage | None:
    """The image held by `text` (a data URL or bare base64), or None when it holds none.
    Raises EnvelopeError when the text starts like a base64 image but is not valid base64:
    an upstream that decodes leniently could still receive the image, so Veil must not
    wave it through."""
    if len(text) < MIN_CANDIDATE_LENGTH or not looks_like_text_image(text[:512]):
        return None
    prefix_length, declared_type = _data_url_prefix(text)
    decoded = decode_base64(text[prefix_length:])
    if decoded is None:
        raise EnvelopeError(f"{where} starts like a base64-encoded image but is not valid base64")
    image, style = decoded
    return TextImage(image, declared_type, prefix_length, style)


def _data_url_prefix(text: bytes) -> tuple[int, str | None]:
    """(length of the `data:…;base64,` prefix or 0, the MIME type it declares)."""
    match = _DATA_URL_PREFIX.match(text)
    if match is None:
        return 0, None
    return match.end(), match.group(1).decode("ascii") or None


# ---------------------------------------------------------------------------------------
# The tokenizer. A token is one value, bracket or key together with the whitespace and
# the `:` or `,` after it, so one regex call covers most of the syntax. A string's closing
# quote is found with bytes.find (memchr speed; a 20 MB base64 string costs ~1 ms) unless
# the string holds a backslash, when a regex that understands escapes takes over.
# Raw control characters inside strings are tolerated (as json.loads(strict=False) does):
# checking them would cost a pass over every long string and cannot move a string's span.

_WS = rb"[ \t\n\r]*+"
_SEPARATOR = _WS + rb"(?:(:)|(,))?" + _WS  # lastindex: 1 for a colon, 2 for a comma
_COLON_AFTER, _COMMA_AFTER = 1, 2
# NaN and ±Infinity are not JSON, but Python's json module writes them for float values
# and reads them back by default: a Python client's request can hold them and a Python
# server reads it. A body refused here would be forwarded uninspected, images included.
_NUMBER_OR_LITERAL = rb"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?|true|false|null|NaN|-?Infinity"
_NOT_STRING = re.compile(rb"(?:[\[{\]}]|" + _NUMBER_OR_LITERAL + rb")" + _SEPARATOR)
_STRING_TAIL = re.compile(rb'"' + _SEPARATOR)  # matched at the closing quote
_STRING_WITH_ESCAPES = re.compile(rb'"[^"\\]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*+)*+"')
_STARTS_WITH_CONTAINER = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\n\r]*+[\[{]")
_QUOTE, _BACKSLASH = b'"', b"\\"
_OPEN_ARRAY, _CLOSE_ARRAY, _OPEN_OBJECT, _CLOSE_OBJECT, _QUOTE_BYTE = b'[]{}"'  # ints, like body[pos]

# What the tokenizer may read next.
_VALUE, _VALUE_OR_END, _KEY_OR_END, _KEY, _END = range(5)


class _NotJson(Exception):
    pass


@dataclass(frozen=True)
class _StringValue:
    container: int  # serial number of the object or array holding it
    parent: int  # serial number of the container holding that one (0 at the top)
    path: tuple[str | int, ...]
    start: int  # span of the contents, between the quotes
    end: int


def _string_values(body: bytes, keep_keys: frozenset[str] = _SIBLING_KEYS) -> list[_StringValue]:
    """Walk the whole document; return the string values worth a look (long ones, and the
    short ones under a key in `keep_keys`). Raises _NotJson on any syntax error."""
    found: list[_StringValue] = []
    path: list[str | int | None] = []  # per open container: current key or index
    closers: list[int] = []  # per open container: the byte that closes it
    containers: list[int] = []  # per open container: its serial number
    opened = 0
    expect = _VALUE
    pos = _STARTS_WITH_CONTAINER.match(body).end() - 1
    find, match_other, match_tail = body.find, _NOT_STRING.match, _STRING_TAIL.match
    try:
        while True:
            first = body[pos]
            if first == _QUOTE_BYTE:
                start = pos + 1
                end = find(_QUOTE, start)
                if end < 0:
                    raise _NotJson
                if find(_BACKSLASH, start, end) >= 0:
                    end = _end_of_escaped_string(body, pos)
                tail = match_tail(body, end)
                pos, separator = tail.end(), tail.lastindex
                if expect == _KEY_OR_END or expect == _KEY:
                    if separator != _COLON_AFTER:
                        raise _NotJson
                    path[-1] = _decode_key(body[start:end])
                    expect = _VALUE
                    continue
                if expect > _VALUE_OR_END:
                    raise _NotJson
                if end - start >= MIN_CANDIDATE_LENGTH or path[-1] in keep_keys:
                    parent = containers[-2] if len(containers) > 1 else 0
                    found.append(_StringValue(containers[-1], parent, tuple(path), start, end))
            else:
                token = match_other(body, pos)
                if token is None:
                    raise _NotJson
                pos, separator = token.end(), token.lastindex
                if first == _OPEN_ARRAY or first == _OPEN_OBJECT:
                    if expect > _VALUE_OR_END or separator:
                        raise _NotJson
                    if len(path) >= MAX_DEPTH:
                        raise EnvelopeError(f"the JSON body nests deeper than {MAX_DEPTH} levels, so Veil does not walk it")
                    opened += 1
                    containers.append(opened)
                    if first == _OPEN_ARRAY:
                        closers.append(_CLOSE_ARRAY)
                        path.append(0)
                        expect = _VALUE_OR_END
                    else:
                        closers.append(_CLOSE_OBJECT)
                        path.append(None)
                        expect = _KEY_OR_END
                    continue
                if first == _CLOSE_ARRAY or first == _CLOSE_OBJECT:
                    if not closers or closers[-1] != first or expect == _VALUE or expect == _KEY:
                        raise _NotJson
                    closers.pop()
                    path.pop()
                    containers.pop()
                    if not path:  # the document is complete
                        if separator or pos != len(body):
                            raise _NotJson
                        return found
                elif expect > _VALUE_OR_END:  # a number or literal where none may stand
                    raise _NotJson
            # A value is complete: what may follow depends on the separator after it.
            if separator == _COMMA_AFTER:
                if closers[-1] == _CLOSE_ARRAY:
                    path[-1] += 1
                    expect = _VALUE
                else:
                    expect = _KEY
            elif separator is None:
                expect = _END
            else:
                raise _NotJson
    except IndexError:  # ran off the end of the body: unterminated
        raise _NotJson from None


def _end_of_escaped_string(body: bytes, opening_quote: int) -> int:
    """Offset of the closing quote of a string that holds escapes."""
    string = _STRING_WITH_ESCAPES.match(body, opening_quote)
    if string is None:
        raise _NotJson
    return string.end() - 1


def _decode_key(raw: bytes) -> str:
    if b"\\" in raw:
        return json.loads(b'"' + raw + b'"', strict=False)
    return raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------
# JSON string escapes: read the string as its reader would, write it back the same way.

_COMPLETE_ESCAPES = re.compile(rb'(?:[^\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+')
_ONE_CHARACTER = re.compile(rb"\\u[0-9a-fA-F]{4}|\\.|.", re.DOTALL)
_SHORT_ESCAPES = {b"/": rb"\/", b"\n": rb"\n", b"\r": rb"\r"}


def _spellings(character: bytes) -> list[bytes]:
    """Every way a JSON serialiser may write `character`: `\\/`, `\\u002f`, `\\u002F`."""
    short = [_SHORT_ESCAPES[character]] if character in _SHORT_ESCAPES else []
    return short + [b"\\u%04x" % ord(character), b"\\u%04X" % ord(character)]


# The characters of a (possibly line-wrapped) base64 payload that a serialiser might
# escape, the likeliest first: PHP and some Java libraries write `\/`, .NET `\u002B`.
_ESCAPABLE = {character: _spellings(character) for character in (b"/", b"\n", b"\r", b"+", b"=", b"-", b"_")}


def _unescape(raw: bytes) -> bytes:
    """The string's value as UTF-8 bytes. Fast path for the common `\\/` (PHP, Java)."""
    if b"\\" not in raw:
        return raw
    slashes_only = raw.replace(rb"\/", b"/")
    if b"\\" not in slashes_only:
        return slashes_only
    return json.loads(b'"' + raw + b'"', strict=False).encode("utf-8", "surrogatepass")


def _unescape_head(raw_head: bytes) -> bytes:
    """Like _unescape, for the first bytes of a string that may end mid-escape."""
    if b"\\" not in raw_head:
        return raw_head
    complete = raw_head[: _COMPLETE_ESCAPES.match(raw_head).end()]
    return json.loads('"' + complete.decode("utf-8", "replace") + '"', strict=False).encode("utf-8", "surrogatepass")


def _raw_length(raw: bytes, characters: int) -> int:
    """How many raw bytes hold the first `characters` ASCII characters of the value
    (each is one plain byte or one escape)."""
    if b"\\" not in raw[: characters * 6]:
        return characters
    end = 0
    for _, unit in zip(range(characters), _ONE_CHARACTER.finditer(raw)):
        end = unit.end()
    return end


def _escapes_used(raw_payload: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """For each base64 character the original escaped, the escape it used. Stops as soon
    as every backslash is accounted for: each search is a full pass over the payload."""
    unexplained = raw_payload.count(b"\\")
    used = []
    for character, spellings in _ESCAPABLE.items():
        for spelling in spellings:
            if not unexplained:
                return tuple(used)
            if count := raw_payload.count(spelling):
                used.append((character, spelling))
                unexplained -= count
                break
    return tuple(used)


def _encode_json_string(raw_prefix: bytes, style: Base64Style, escapes: tuple[tuple[bytes, bytes], ...], image: bytes) -> bytes:
    text = encode_base64(image, style)
    for character, spelling in escapes:
        text = text.replace(character, spelling)
    return raw_prefix + text


# ---------------------------------------------------------------------------------------
# The envelope.


def find_images(body: bytes, content_type: str | None) -> list[ImageSlot] | None:
    """Every base64 image in a JSON document; None when the body is not a JSON object or
    array (whatever its declared type: content types lie)."""
    if not _STARTS_WITH_CONTAINER.match(body):
        return None
    try:
        values = _string_values(body)
    except _NotJson:
        return None
    siblings: dict[int, dict[str, str]] = {}
    found: list[tuple[int, ImageSlot]] = []
    for value in values:
        key = value.path[-1]
        if key in _SIBLING_KEYS:
            siblings.setdefault(value.container, {})[key] = _unescape(body[value.start : value.end]).decode("utf-8", "replace")
        if value.end - value.start >= MIN_CANDIDATE_LENGTH:
            slot = _image_slot(body, value)
            if slot is not None:
                found.append((value.container, slot))
    return [_with_sibling_facts(slot, siblings.get(container, {})) for container, slot in found]


@dataclass(frozen=True)
class StringValue:
    """A string value of a JSON document, decoded, with where it sits."""

    path: tuple[str | int, ...]
    value: str
    container: int  # serial number of the object or array holding it
    parent: int  # serial number of the container holding that one (0 at the top)


def string_values(body: bytes, keys: frozenset[str]) -> list[StringValue] | None:
    """The string values held under one of `keys`, in document order, read with the same
    byte-exact tokenizer as the images (the body is never re-serialised). None when the
    body is not a JSON object or array."""
    if not _STARTS_WITH_CONTAINER.match(body):
        return None
    try:
        values = _string_values(body, keys)
    except _NotJson:
        return None
    return [
        StringValue(value.path, _unescape(body[value.start : value.end]).decode("utf-8", "replace"), value.container, value.parent)
        for value in values
        if value.path[-1] in keys
    ]


def _image_slot(body: bytes, value: _StringValue) -> ImageSlot | None:
    start, end = value.start, value.end
    if not looks_like_text_image(_unescape_head(body[start : min(end, start + 512)])):
        return None
    raw = body[start:end]
    where = json_path(value.path)
    found = find_text_image(_unescape(raw), where)
    if found is None:
        return None
    prefix_end = _raw_length(raw, found.prefix_length)
    encode = functools.partial(_encode_json_string, raw[:prefix_end], found.style, _escapes_used(raw[prefix_end:]))
    return ImageSlot(where, (start, end), found.image, found.declared_type, None, encode)


def _with_sibling_facts(slot: ImageSlot, siblings: dict[str, str]) -> ImageSlot:
    """Bare base64 declares its type in a sibling key (`media_type`, `mimeType`…)."""
    declared_type = slot.declared_type or next((siblings[key] for key in _TYPE_KEYS if key in siblings), None)
    filename = next((siblings[key] for key in _FILENAME_KEYS if key in siblings), None)
    if (declared_type, filename) == (slot.declared_type, slot.filename):
        return slot
    return replace(slot, declared_type=declared_type, filename=filename)


_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


def json_path(path: tuple[str | int, ...]) -> str:
    """`$.messages[0].content[1].image_url.url`; keys that are not identifiers in brackets."""
    parts = ["$"]
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.match(step):
            parts.append("." + step)
        else:
            parts.append("['" + step.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(parts)
