"""JSON Lines: one JSON document per line. OpenAI's Batch API takes its input as a .jsonl
file uploaded to /v1/files, each line a whole chat request, base64 images included; other
batch and fine-tuning uploads have the same shape. Each line is searched as the JSON
envelope searches a body, and its images are located as `line N:$.path`.
"""

import re
from dataclasses import replace

from . import json_base64
from .base import EnvelopeError, ImageSlot, nested
from .references import Reference
from .references import find_references as find_references_in_document

NAME = "jsonl"
_LINE = re.compile(rb"[^\r\n]+")


def find_images(body: bytes, content_type: str | None) -> list[ImageSlot] | None:
    """None unless there are two or more non-blank lines (a single document is the JSON
    envelope's) and the first is a JSON object or array. A later line that is not one makes
    the body an EnvelopeError: the images on every other line would otherwise go unseen,
    and the service may well read the lines it can."""
    lines = _lines(body)
    if len(lines) < 2:
        return None
    slots: list[ImageSlot] = []
    for number, line in enumerate(lines, start=1):
        found = json_base64.find_images(line.group(), content_type)
        if found is None and number == 1:
            return None
        if found is None:
            raise EnvelopeError(f"line {number} of the JSON Lines body is not a JSON document, so Veil cannot read the body whole")
        slots += [nested(slot, f"line {number}", line.start()) for slot in found]
    return slots


def find_references(body: bytes) -> list[Reference]:
    """Images each line gives by URL or file id, located as `line N:$.path`."""
    return [
        replace(reference, location=f"line {number}:{reference.location}")
        for number, line in enumerate(_lines(body), start=1)
        for reference in find_references_in_document(line.group())
    ]


def _lines(body: bytes) -> list[re.Match]:
    return [match for match in _LINE.finditer(body) if match.group().strip()]
