"""Hypothesis strategies for request bodies that carry dirty images: multipart forms,
JSON documents with base64 images, raw bodies; each in the many shapes clients write
them, then damaged at the envelope level (flipped, inserted or deleted bytes outside the
images, truncation anywhere).

A Body's repr names what was built and done, never the bytes.
"""

import base64
import json
import re

from hypothesis import strategies as st

from .seeds import Seed, envelope_seeds


class Body:
    """Not a dataclass: hypothesis prints dataclasses field by field, bytes included."""

    def __init__(self, kind: str, data: bytes, content_type: str | None, seeds: list[Seed], steps: list[str], images: list[tuple[int, int]]):
        self.kind = kind
        self.data = data
        self.content_type = content_type
        self.seeds = seeds
        self.steps = steps
        self.images = images  # spans of the (encoded) images in `data`

    @property
    def secrets(self) -> tuple[bytes, ...]:
        return tuple(sorted({secret for seed in self.seeds for secret in seed.secrets}))

    def __repr__(self) -> str:
        names = [seed.name for seed in self.seeds]
        return f"Body({self.kind}, {len(self.data)} bytes, content_type={self.content_type!r}, images={names}, steps={self.steps})"


class _Builder:
    """Appends pieces and remembers where the images went."""

    def __init__(self):
        self.pieces: list[bytes] = []
        self.images: list[tuple[int, int]] = []
        self.size = 0

    def add(self, piece: bytes, image: bool = False) -> None:
        if image:
            self.images.append((self.size, self.size + len(piece)))
        self.pieces.append(piece)
        self.size += len(piece)

    def bytes(self) -> bytes:
        return b"".join(self.pieces)


# ---------------------------------------------------------------------------------------
# Base64 in the flavours clients write.


@st.composite
def base64_text(draw, image: bytes) -> tuple[bytes, str]:
    """(text, description): standard or URL-safe, padded or not, maybe wrapped in lines."""
    urlsafe = draw(st.booleans())
    text = base64.urlsafe_b64encode(image) if urlsafe else base64.b64encode(image)
    padded = draw(st.booleans())
    if not padded:
        text = text.rstrip(b"=")
    wrap = draw(st.sampled_from((None, None, 76, 64, draw(st.integers(4, 200)))))
    separator = draw(st.sampled_from((b"\n", b"\r\n")))
    if wrap:
        text = separator.join(text[at : at + wrap] for at in range(0, len(text), wrap))
        if draw(st.booleans()):
            text += separator
    return text, f"base64 ({'url-safe' if urlsafe else 'standard'}, {'padded' if padded else 'unpadded'}, wrap {wrap})"


_DATA_URL_PREFIXES = (
    b"data:image/jpeg;base64,", b"data:image/png;base64,", b"DATA:IMAGE/PNG;BASE64,", b"data:;base64,",
    b"data:application/octet-stream;base64,", b"data:image/webp;name=photo.webp;base64,", b"data:image/*;charset=binary;base64,",
)  # fmt: skip


@st.composite
def text_image(draw, image: bytes) -> tuple[bytes, str]:
    """A data URL or bare base64 holding `image`."""
    text, description = draw(base64_text(image))
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(_DATA_URL_PREFIXES))
        return prefix + text, f"data URL {prefix[:24].decode()}… {description}"
    return text, "bare " + description


# ---------------------------------------------------------------------------------------
# JSON documents.

_SLASH_ESCAPES = (None, rb"\/", rb"\u002f", rb"\u002F")
_PLUS_ESCAPES = (None, rb"\u002b", rb"\u002B")


def _json_escape(text: bytes, draw) -> tuple[bytes, str]:
    """The base64 text as a JSON string's contents: newlines escaped (they must be), and
    `/`, `+`, `=` or a few letters escaped the ways serialisers do."""
    text = text.replace(b"\r", rb"\r").replace(b"\n", rb"\n")
    slash = draw(st.sampled_from(_SLASH_ESCAPES))
    plus = draw(st.sampled_from(_PLUS_ESCAPES))
    if slash:
        text = text.replace(b"/", slash)
    if plus:
        text = text.replace(b"+", plus)
    letters = draw(st.sampled_from((b"", b"A", b"i", b"Q")))
    for letter in letters.decode():
        text = text.replace(letter.encode(), b"\\u%04x" % ord(letter), draw(st.integers(1, 3)))
    return text, f"escapes slash={slash} plus={plus} letters={letters!r}"


def _openai(placeholder: str) -> object:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": placeholder}}]}]}


def _anthropic(placeholder: str) -> object:
    return {"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": placeholder}}]}]}


def _gemini(placeholder: str) -> object:
    return {"contents": [{"parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": placeholder}}]}]}


def _tool_result(placeholder: str) -> object:
    return {"input": [{"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_image", "image_url": placeholder}]}], "temperature": 0.5}


_TEMPLATES = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini, "tool result": _tool_result}


@st.composite
def json_bodies(draw) -> Body:
    seeds = draw(st.lists(st.sampled_from(envelope_seeds()), min_size=1, max_size=2))
    template = draw(st.sampled_from(sorted(_TEMPLATES)))
    placeholders = [f"@@VEIL-IMAGE-{index}@@" for index in range(len(seeds))]
    document: object = {"items": [_TEMPLATES[template](placeholder) for placeholder in placeholders]}
    depth = draw(st.sampled_from((0, 0, 1, 5, 40, 511, 600)))
    for level in range(depth):
        document = [document] if level % 2 else {"k": document}
    steps = [f"template {template}", f"nested {depth} deeper"]
    extras = draw(st.sampled_from(("", "", "unicode", "python NaN", "numbers")))
    if extras == "unicode":
        document = {"note": "caf\u00e9 \u2603 \"quoted\" \\ \U0001f600", "body": document}
    elif extras == "numbers":
        document = {"n": [0, -1.5e-3, 12345678901234567890, 1e308], "body": document}
    elif extras == "python NaN":
        document = {"temperature": float("nan"), "top_p": float("inf"), "body": document}
    if extras:
        steps.append(extras)
    indent = draw(st.sampled_from((None, 0, 2)))
    serialised = json.dumps(document, indent=indent, ensure_ascii=draw(st.booleans())).encode()
    if draw(st.booleans()):
        serialised = b"\xef\xbb\xbf" + serialised if draw(st.booleans()) else b"\n " + serialised + b"\n"
        steps.append("BOM or whitespace around")
    builder = _Builder()
    pattern = re.compile(rb"@@VEIL-IMAGE-(\d)@@")
    at = 0
    for found in pattern.finditer(serialised):
        builder.add(serialised[at : found.start()])
        text, description = draw(text_image(seeds[int(found.group(1))].data))
        escaped, escapes = _json_escape(text, draw)
        builder.add(escaped, image=True)
        steps.append(f"{description}; {escapes}")
        at = found.end()
    builder.add(serialised[at:])
    content_type = draw(st.sampled_from(("application/json", "application/json; charset=utf-8", "text/plain", None)))
    return Body("json", builder.bytes(), content_type, seeds, steps, builder.images)


# ---------------------------------------------------------------------------------------
# Multipart forms.

_BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? "
_REALISTIC_BOUNDARIES = ("----WebKitFormBoundary7MA4YWxkTrZu0gW", "------------------------d74496d66958873e", "XyZ", "a'()+_,-./:=?b", "==boundary==")

boundaries = st.one_of(
    st.sampled_from(_REALISTIC_BOUNDARIES),
    st.text(_BCHARS, min_size=1, max_size=70).map(lambda text: text.rstrip(" ") or "b"),
)


@st.composite
def _part(draw, seed: Seed | None, newline: bytes) -> tuple[list[tuple[bytes, bool]], str]:
    """A part's pieces (bytes, is-image) after its delimiter line, and a description."""
    def headers(*lines: str) -> bytes:
        extra = draw(st.sampled_from(((), ("Content-Length: 12",), ("Content-Type: text/plain",), ("X-Dup: 1", "X-Dup: 2"))))
        return newline.join(line.encode() for line in (*lines, *extra)) + newline + newline

    if seed is None:
        value = draw(st.sampled_from((b"vision", b"", b"--not a boundary", b"{\"purpose\": \"vision\"}", b"iVBORw0KGgo is how PNG starts")))
        return [(headers('Content-Disposition: form-data; name="purpose"') + value, False)], "text field"
    shape = draw(st.sampled_from(("file", "file", "octet-stream", "no headers", "base64 field", "base64 transfer", "json part", "nested")))
    if shape in ("file", "octet-stream"):
        name = draw(st.sampled_from(('filename="photo.jpg"', "filename*=UTF-8''%C3%A9t%C3%A9.jpg", 'filename="a \\"quoted\\" name.png"', 'filename=plain.gif')))
        kind = "image/jpeg" if shape == "file" else "application/octet-stream"
        block = headers(f'Content-Disposition: form-data; name="file"; {name}', f"Content-Type: {kind}")
        return [(block, False), (seed.data, True)], f"{shape} part ({name})"
    if shape == "no headers":
        return [(newline, False), (seed.data, True)], "part without headers"
    if shape in ("base64 field", "base64 transfer"):
        text, description = draw(text_image(seed.data))
        lines = ['Content-Disposition: form-data; name="image"'] + (["Content-Transfer-Encoding: base64"] if shape == "base64 transfer" else [])
        return [(headers(*lines), False), (text, True)], f"{shape}: {description}"
    if shape == "json part":
        text, description = draw(text_image(seed.data))
        block = headers('Content-Disposition: form-data; name="payload"', "Content-Type: application/json")
        escaped = text.replace(b"\r", rb"\r").replace(b"\n", rb"\n")
        return [(block + b'{"image": "', False), (escaped, True), (b'", "n": 1}', False)], f"JSON part: {description}"
    inner = draw(boundaries).encode()
    block = headers('Content-Disposition: form-data; name="files"', f'Content-Type: multipart/mixed; boundary="{inner.decode()}"')
    opening = b"--" + inner + newline + b'Content-Disposition: file; filename="inner.jpg"' + newline + b"Content-Type: image/jpeg" + newline + newline
    closing = newline + b"--" + inner + b"--"
    return [(block + opening, False), (seed.data, True), (closing, False)], "nested multipart/mixed"


@st.composite
def multipart_bodies(draw) -> Body:
    boundary = draw(boundaries)
    newline = draw(st.sampled_from((b"\r\n", b"\r\n", b"\r\n", b"\n")))
    seeds = draw(st.lists(st.sampled_from(envelope_seeds()), min_size=1, max_size=2))
    slots = [None] * draw(st.integers(0, 2)) + list(seeds)
    order = draw(st.permutations(slots))
    steps = [f"boundary {boundary!r}", "LF line breaks" if newline == b"\n" else "CRLF line breaks"]
    builder = _Builder()
    if draw(st.booleans()):
        builder.add(b"preamble text" + newline)
        steps.append("preamble")
    for seed in order:
        padding = draw(st.sampled_from((b"", b"", b"  ", b"\t")))
        builder.add(b"--" + boundary.encode() + padding + newline)
        pieces, description = draw(_part(seed, newline))
        for piece, is_image in pieces:
            builder.add(piece, image=is_image)
        builder.add(newline)
        steps.append(description)
    builder.add(b"--" + boundary.encode() + b"--")
    builder.add(draw(st.sampled_from((b"\r\n", b"", b"\r\nepilogue\r\n"))))
    declared = draw(st.sampled_from(("plain", "quoted", "charset first", "upper case", "missing", "wrong", "not multipart")))
    steps.append(f"content type: {declared}")
    content_type = {
        "plain": f"multipart/form-data; boundary={boundary}",
        "quoted": f'multipart/form-data; boundary="{boundary}"',
        "charset first": f"multipart/form-data; charset=utf-8; boundary={boundary}",
        "upper case": f"Multipart/Form-Data; BOUNDARY=\"{boundary}\"",
        "missing": "multipart/form-data",
        "wrong": "multipart/form-data; boundary=somethingelse",
        "not multipart": "application/octet-stream",
    }[declared]
    return Body("multipart", builder.bytes(), content_type, seeds, steps, builder.images)


# ---------------------------------------------------------------------------------------
# Raw bodies.


@st.composite
def raw_bodies(draw) -> Body:
    seed = draw(st.sampled_from(envelope_seeds()))
    content_type = draw(st.sampled_from(("image/jpeg", "application/octet-stream", "application/json", None, "application/x-www-form-urlencoded")))
    return Body("raw", seed.data, content_type, [seed], [], [(0, len(seed.data))])


# ---------------------------------------------------------------------------------------
# Damage at the envelope level: never inside an image (except truncation), so what the
# envelope does with it is what is tested.


def _outside_images(body: Body, position: int) -> bool:
    return not any(start <= position < end for start, end in body.images)


@st.composite
def damaged(draw, body: Body) -> Body:
    data, steps, images = body.data, list(body.steps), list(body.images)
    kind = draw(st.sampled_from(("none", "none", "truncate", "flip", "insert", "delete")))
    if kind == "none":
        return body
    position = draw(st.integers(0, max(len(data) - 1, 0)))
    if kind == "truncate":
        return Body(body.kind, data[:position], body.content_type, body.seeds, steps + [f"truncated to {position}"], images)
    if not _outside_images(body, position):
        return body
    shift = 0
    if kind == "flip":
        flipped = bytearray(data)
        flipped[position] ^= draw(st.integers(1, 255))
        data, step = bytes(flipped), f"flip byte {position}"
    elif kind == "insert":
        run = draw(st.sampled_from((b"\r\n", b"\n", b"--", b'"', b"\\", b"{", b"]", b",", b" ", b"\x00")))
        data, step, shift = data[:position] + run + data[position:], f"insert {run!r} at {position}", len(run)
    else:
        end = position + draw(st.integers(1, 8))
        if not all(_outside_images(body, at) for at in range(position, min(end, len(data)))):
            return body
        data, step, shift = data[:position] + data[end:], f"delete {position}:{end}", -(min(end, len(data)) - position)
    images = [(start + shift, end + shift) if start > position else (start, end) for start, end in images]
    return Body(body.kind, data, body.content_type, body.seeds, steps + [step], images)


request_bodies = st.one_of(json_bodies(), multipart_bodies(), raw_bodies()).flatmap(damaged)
