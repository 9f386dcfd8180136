"""A body that is one image and nothing else: ChatGPT's and Mistral's blob PUTs, Copilot's
attachment POST, Google resumable chunks. Recognised by magic bytes alone, because the
declared type lies (Gemini chunks say application/json, Gemini web says form-urlencoded)."""

from .base import ImageSlot, identity
from .magic import looks_like_upload

NAME = "raw"


def find_images(body: bytes, content_type: str | None) -> list[ImageSlot] | None:
    if not looks_like_upload(body):
        return None
    declared_type = (content_type or "").split(";", 1)[0].strip() or None
    return [ImageSlot("body", (0, len(body)), bytes(body), declared_type, None, identity)]
