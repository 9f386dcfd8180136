"""Where the images are in a request body: one module per envelope.

Each module exposes NAME and `find_images(body, content_type) -> list[ImageSlot] | None`
(None: not this envelope). They are tried in ENVELOPES order; the first that applies
wins. Raw comes first because declared types lie (a Gemini upload chunk says
application/json and holds a JPEG); JSON is recognised by its content, not its label.
Adding an envelope is one module and one entry in ENVELOPES.
"""

from types import ModuleType

from . import json_base64, json_lines, multipart, raw
from .base import EnvelopeError, ImageSlot, splice
from .magic import looks_like_image

ENVELOPES: tuple[ModuleType, ...] = (raw, multipart, json_base64, json_lines)

NO_ENVELOPE = "none"


def find_images(body: bytes, content_type: str | None) -> tuple[str, list[ImageSlot]]:
    """(the envelope's NAME, the images it holds); ("none", []) when no envelope applies.
    Raises EnvelopeError when the body claims an envelope but cannot be read."""
    for envelope in ENVELOPES:
        slots = envelope.find_images(body, content_type)
        if slots is not None:
            return envelope.NAME, slots
    return NO_ENVELOPE, []


__all__ = ["ENVELOPES", "NO_ENVELOPE", "EnvelopeError", "ImageSlot", "find_images", "looks_like_image", "splice"]
