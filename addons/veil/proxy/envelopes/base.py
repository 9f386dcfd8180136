"""The contract every envelope module fulfils, and the one splice that rebuilds a body.

An envelope is the way a request carries its images: a multipart form, a JSON document
with base64 strings, or a raw body. Each envelope module exposes

    NAME: str
    def find_images(body: bytes, content_type: str | None) -> list[ImageSlot] | None

returning None when the envelope does not apply to the body, [] when it applies but the
body holds no image, and raising EnvelopeError when the body claims to be this envelope
but cannot be read (the proxy then blocks: an upload it cannot parse is never passed on).

A slot records where an image sits in the body and how to write a replacement in the
same encoding, so `splice` can rebuild the body with every other byte untouched.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from ...clean.errors import SanitiseError


class EnvelopeError(SanitiseError):
    """The body claims an envelope (multipart, JSON) but is malformed, so Veil cannot tell
    where its images are. `reason` is a sentence a person can read."""

    kind = "envelope"


@dataclass(frozen=True)
class ImageSlot:
    # multipart: the field name ("file", "image[]"; "image[]#1" for its second occurrence);
    # JSON: a JSONPath such as "$.messages[0].content[1].image_url.url"; raw: "body".
    location: str
    # The bytes of the body this image occupies in its encoded form: a multipart part's
    # content, a JSON string's contents between its quotes, or the whole raw body.
    span: tuple[int, int]
    image: bytes  # the decoded image bytes
    declared_type: str | None  # the part's Content-Type, or the data URL's MIME type
    filename: str | None
    # Turns clean image bytes into the exact encoded form for this slot: same base64
    # flavour and padding, same data: prefix, same JSON escaping.
    encode: Callable[[bytes], bytes]

    def __repr__(self) -> str:  # the default would print megabytes of image
        return (
            f"ImageSlot(location={self.location!r}, span={self.span}, image=<{len(self.image)} bytes>, "
            f"declared_type={self.declared_type!r}, filename={self.filename!r})"
        )


def nested(slot: ImageSlot, outer_location: str, offset: int) -> ImageSlot:
    """A slot found in a piece of a body (a multipart part, a JSON line) as a slot of the
    whole body: its location prefixed with where the piece sits, its span shifted."""
    start, end = slot.span
    return replace(slot, location=f"{outer_location}:{slot.location}", span=(start + offset, end + offset))


def identity(image: bytes) -> bytes:
    """The encoder of slots that hold the image bytes as they are (multipart parts, raw bodies)."""
    return image


def splice(body: bytes, replacements: list[tuple[ImageSlot, bytes]]) -> bytes:
    """`body` with each slot's span replaced by slot.encode(new_image); every other byte
    is copied as it was. Replacements may come in any order; slots never overlap."""
    ordered = sorted(replacements, key=lambda pair: pair[0].span)
    pieces: list[bytes | memoryview] = []
    view = memoryview(body)
    copied_up_to = 0
    for slot, new_image in ordered:
        start, end = slot.span
        if not copied_up_to <= start <= end <= len(body):
            raise ValueError(f"slot {slot.location} spans bytes {start}-{end}, which overlap another slot or lie outside the body")
        pieces.append(view[copied_up_to:start])
        pieces.append(slot.encode(new_image))
        copied_up_to = end
    pieces.append(view[copied_up_to:])
    return b"".join(pieces)
