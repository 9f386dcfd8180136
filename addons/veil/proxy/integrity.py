"""What else in a request must change when Veil changed the image bytes in its body.

Pure: headers and bodies in, changes out. mitmproxy recomputes Content-Length and
re-applies Content-Encoding by itself; every other field that describes the bytes is
Veil's job:

- `Content-MD5` and Azure's `x-ms-blob-content-md5` (a blob PUT): base64 of the MD5 of
  the body as transmitted, recomputed when present (Azure refuses a PUT whose hash differs).
- DeepSeek's `x-file-size`: the size of the uploaded file, sent with the file.
- Google's resumable uploads (`X-Goog-Upload-*`): the length declared at start must be the
  length received (preserve_length keeps it so); an image split over several chunks cannot
  be cleaned chunk by chunk and is refused.
- OpenAI Uploads (`/v1/uploads` → `/parts` → `/complete`): the `md5` given at complete
  covers the whole file, so the parts Veil changed are remembered (bounded, expiring) and
  the md5 is recomputed over the bytes the service actually received.
"""

import base64
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

MD5_HEADERS = ("content-md5", "x-ms-blob-content-md5")
FILE_SIZE_HEADER = "x-file-size"
GOOG_DECLARED_LENGTH = "x-goog-upload-header-content-length"
GOOG_COMMAND = "x-goog-upload-command"
GOOG_OFFSET = "x-goog-upload-offset"


def content_md5(data: bytes) -> str:
    """The value of a Content-MD5 header (RFC 1864): base64 of the 16-byte digest."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass(frozen=True)
class Resized:
    """One image Veil replaced: its length before and after."""

    before: int
    after: int


def header_fixes(headers: Mapping[str, str], transmitted: bytes, images: list[Resized]) -> dict[str, str]:
    """The headers to set (lower-case name → value) once Veil has rebuilt a body;
    `transmitted` is the body as it goes on the wire (after any Content-Encoding)."""
    present = {name.lower(): value for name, value in headers.items()}
    fixes: dict[str, str] = {}
    for name in MD5_HEADERS:
        if name in present:
            fixes[name] = content_md5(transmitted)
    for name in (FILE_SIZE_HEADER, GOOG_DECLARED_LENGTH):
        if name in present:
            new_size = _resized(present[name], images)
            if new_size is not None:
                fixes[name] = str(new_size)
    return fixes


def _resized(declared: str, images: list[Resized]) -> int | None:
    """The new size for a header that declared an image's size: the image it names (by its
    old length), or the only image when it names none."""
    try:
        size = int(declared.strip())
    except ValueError:
        return None
    named = [image for image in images if image.before == size]
    if named:
        return named[0].after if named[0].after != size else None
    return images[0].after if len(images) == 1 else None


def split_upload_refusal(headers: Mapping[str, str], holds_image: bool) -> str | None:
    """Why a Google resumable chunk must be refused, or None. A chunk that is not the whole
    upload (`upload` without `finalize`, or at an offset other than 0) cannot be cleaned on
    its own: the image is incomplete in it, and its offsets fix every byte's position."""
    present = {name.lower(): value for name, value in headers.items()}
    commands = {part.strip().lower() for part in present.get(GOOG_COMMAND, "").split(",")}
    if "upload" not in commands:
        return None
    try:
        offset = int(present.get(GOOG_OFFSET, "0").strip() or 0)
    except ValueError:
        offset = -1
    if offset == 0 and "finalize" in commands:
        return None
    declared_image = any(
        present.get(name, "").strip().lower().startswith("image/")
        for name in ("x-goog-upload-header-content-type", "content-type")
    )
    if not (holds_image or declared_image):
        return None  # a later chunk of a document: nothing Veil cleans
    return (
        "the image is uploaded in several resumable chunks (this one is at offset "
        f"{offset if offset >= 0 else present.get(GOOG_OFFSET)!r}, command {present.get(GOOG_COMMAND)!r}); "
        "Veil can only clean an image sent whole in one 'upload, finalize' request"
    )


# ---- OpenAI Uploads ---------------------------------------------------------------------

_UPLOAD_PART = re.compile(r"^/v1/uploads/([A-Za-z0-9_-]+)/parts$")
_UPLOAD_COMPLETE = re.compile(r"^/v1/uploads/([A-Za-z0-9_-]+)/complete$")
_MD5_FIELD = re.compile(rb'("md5"\s*:\s*")([0-9A-Fa-f]{32})(")')


def upload_part_id(path: str) -> str | None:
    """The Upload id of `POST /v1/uploads/{id}/parts`, else None (query ignored)."""
    found = _UPLOAD_PART.match(path.split("?", 1)[0])
    return found.group(1) if found else None


def upload_complete_id(path: str) -> str | None:
    found = _UPLOAD_COMPLETE.match(path.split("?", 1)[0])
    return found.group(1) if found else None


@dataclass
class _Upload:
    touched: float
    part_ids: list[str] = field(default_factory=list)  # in the order their bytes were hashed
    md5: "hashlib._Hash" = field(default_factory=hashlib.md5)  # over the parts as the service received them
    changed: bool = False  # Veil changed at least one part


class UploadLedger:
    """A running MD5 of each recent OpenAI Upload's parts as the service received them, so
    `complete`'s md5 can be recomputed without keeping any part's bytes. Bounded (the oldest
    uploads are forgotten first) and expiring. When the md5 cannot be recomputed (the parts
    were forgotten, or `complete` lists them in another order than they arrived) it is
    removed from `complete` rather than left wrong."""

    def __init__(self, max_uploads: int = 4096, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.max_uploads, self.ttl = max_uploads, ttl_seconds
        self._clock = clock
        self._uploads: OrderedDict[str, _Upload] = OrderedDict()
        self._changed: OrderedDict[str, float] = OrderedDict()  # outlives the running hashes: ids only

    def __len__(self) -> int:
        return len(self._uploads)

    def part_received(self, upload_id: str, part_id: str, data: bytes, changed: bool):
        now = self._clock()
        self._expire(now)
        upload = self._uploads.pop(upload_id, None) or _Upload(now)
        upload.touched = now
        upload.part_ids.append(part_id)
        upload.md5.update(data)
        upload.changed |= changed
        self._uploads[upload_id] = upload
        if upload.changed:
            self._changed.pop(upload_id, None)
            self._changed[upload_id] = now
        while len(self._uploads) > self.max_uploads:
            self._uploads.popitem(last=False)
        while len(self._changed) > self.max_uploads * 4:
            self._changed.popitem(last=False)

    def complete_body(self, upload_id: str, body: bytes) -> bytes | None:
        """The body of `POST /v1/uploads/{id}/complete` with a correct md5, or None when it
        needs no change (no md5 given, or Veil changed none of the parts)."""
        self._expire(self._clock())
        if upload_id not in self._changed or not _MD5_FIELD.search(body):
            return None
        upload = self._uploads.get(upload_id)
        try:
            part_ids = json.loads(body).get("part_ids") or []
        except (ValueError, AttributeError):
            part_ids = []
        if upload and part_ids == upload.part_ids:
            digest = upload.md5.hexdigest()
            return _MD5_FIELD.sub(lambda found: found.group(1) + digest.encode() + found.group(3), body, count=1)
        document = json.loads(body)
        document.pop("md5", None)  # no md5 rather than a wrong one
        return json.dumps(document).encode()

    def forget(self, upload_id: str):
        self._uploads.pop(upload_id, None)
        self._changed.pop(upload_id, None)

    def _expire(self, now: float):
        while self._uploads and now - next(iter(self._uploads.values())).touched > self.ttl:
            self._uploads.popitem(last=False)
        while self._changed and now - next(iter(self._changed.values())) > self.ttl:
            self._changed.popitem(last=False)
