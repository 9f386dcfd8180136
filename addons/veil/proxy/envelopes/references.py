"""Images a JSON request only refers to: an http(s) URL or a file id that the provider
fetches itself, so the image's bytes never cross Veil (wire-formats §11.3).

Pure: bytes in, a list of `Reference` out. The shapes recognised:

- OpenAI Chat Completions (and the OpenAI-style APIs of DeepSeek, xAI, Perplexity):
  `{"type": "image_url", "image_url": {"url": "https://…"}}`
- OpenAI Responses: `{"type": "input_image", "image_url": "https://…"}` or `"file_id": "file-…"`;
  Assistants: `{"type": "image_file", "image_file": {"file_id": "file-…"}}`
- Anthropic: `{"type": "image", "source": {"type": "url", "url": "https://…"}}` and
  `{"type": "file", "file_id": "file_…"}` (documents with the same source shapes are left out)
- Gemini: `fileData.fileUri` / `file_data.file_uri` (an https or gs:// URI), unless a
  `mimeType` sibling says it is not an image
- Mistral: `{"type": "image_url", "image_url": "https://…"}` (a plain string)

A `data:` URL is not a reference: its bytes are in the body, and the JSON envelope cleans them.
What a reference records is never the URL as written: query strings and fragments carry
signatures and tokens, and user:password may sit before the host, so only scheme, host and
path are kept (`target`); a file id is recorded as such.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .json_base64 import StringValue, json_path, string_values

_KEYS = frozenset({"url", "image_url", "file_id", "fileUri", "file_uri", "type", "mimeType", "mime_type"})
_URL_WITH_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_IMAGE_PARTS = ("input_image", "image")  # content-part types that hold an image


@dataclass(frozen=True)
class Reference:
    location: str  # the JSON path of the string, e.g. $.messages[0].content[1].image_url.url
    kind: str  # "url" or "file_id"
    target: str | None  # scheme://host/path of a URL (no query, no user), None for a file id

    def describe(self) -> str:
        if self.kind == "url":
            given = f"by URL ({self.target})" if self.target else "by URL"
        else:
            given = "by file id"
        return f"the image is given {given}; the provider fetches it, Veil never sees it"


def find_references(body: bytes) -> list[Reference]:
    """Every image reference in a JSON body, in document order; [] for any other body."""
    values = string_values(body, _KEYS)
    if not values:
        return []
    types: dict[int, str] = {}
    mime_types: dict[int, str] = {}
    for value in values:
        if value.path[-1] == "type":
            types[value.container] = value.value
        elif value.path[-1] in ("mimeType", "mime_type"):
            mime_types[value.container] = value.value
    found = []
    for value in values:
        kind = _kind(value, types, mime_types)
        if kind is not None:
            target = public_target(value.value) if kind == "url" else None
            found.append(Reference(json_path(value.path), kind, target))
    return found


def _kind(value: StringValue, types: dict[int, str], mime_types: dict[int, str]) -> str | None:
    path, text = value.path, value.value
    key = path[-1]
    holder = path[-2] if len(path) > 1 else None  # the key of the object holding the value
    own_type, parent_type = types.get(value.container), types.get(value.parent)
    if key == "url" and holder == "image_url":  # OpenAI chat and compatible APIs
        return "url" if is_url(text) else None
    if key == "image_url":  # OpenAI Responses input_image; Mistral's plain string
        return "url" if is_url(text) else None
    if key == "url" and holder == "source" and own_type == "url":  # Anthropic
        return "url" if parent_type in (None, *_IMAGE_PARTS) and is_url(text) else None
    if key == "file_id":
        if own_type == "input_image" or holder == "image_file":  # OpenAI Responses, Assistants
            return "file_id"
        if holder == "source" and own_type == "file" and parent_type in (None, *_IMAGE_PARTS):  # Anthropic
            return "file_id"
        return None
    if key in ("fileUri", "file_uri") and holder in ("fileData", "file_data"):  # Gemini
        declared = mime_types.get(value.container)
        return "url" if text and (declared is None or declared.lower().startswith("image/")) else None
    return None


def is_url(text: str) -> bool:
    """A URL the provider would fetch (https://, http://, gs://…); `data:` URLs are not."""
    return _URL_WITH_AUTHORITY.match(text) is not None


def public_target(url: str) -> str | None:
    """scheme://host/path: no user, password, port-less host kept as written, no query, no
    fragment. None when the text cannot be read as a URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    if not parts.scheme:
        return None
    return f"{parts.scheme.lower()}://{host}{port}{parts.path}"
