"""Uploads split over several requests, judged whole.

OpenAI Uploads (create → parts → complete) and Google's resumable uploads (start → chunks
→ `upload, finalize`) send one file in pieces. A piece alone cannot be cleaned — the first
may be too short to tell it is a photo, and a photo's metadata may sit in any piece — so
Veil holds every piece (in memory up to a point, then in a private temporary file), answers
each as the service would, and when the last piece arrives sends the whole file, cleaned,
in that last request: as the one real part of the OpenAI Upload, or as one `upload,
finalize` at offset 0. The client gets the answers it expects; the service gets the
cleaned file. A piece of an upload whose start Veil did not see is refused: Veil could not
know what the earlier pieces held.

Pure apart from the held bytes: requests and responses in, decisions out. The addon calls
`learn` from the response hook and `piece` from the request hook.
"""

import json
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from .envelopes import multipart
from .envelopes.base import EnvelopeError

OPENAI_MAX_PART = 64 * 1024 * 1024  # the largest part OpenAI accepts: the whole file is sent as one
SPILL_BYTES = 1024 * 1024  # held in memory up to this, then in a private temporary file
SYNTHETIC_PART_PREFIX = "part_veil_"

_OPENAI_CREATE = re.compile(r"^/v1/uploads$")
_OPENAI_PART = re.compile(r"^/v1/uploads/([A-Za-z0-9_-]+)/parts$")
_OPENAI_COMPLETE = re.compile(r"^/v1/uploads/([A-Za-z0-9_-]+)/complete$")


@dataclass(frozen=True)
class Piece:
    """What to do with one request that is a piece of a split upload. Exactly one is set."""

    answer: tuple[int, dict[str, str], bytes] | None = None  # held: Veil answers as the service would
    whole: tuple[bytes, dict[str, str]] | None = None  # the last piece: send this body (and these headers)
    refusal: str | None = None


@dataclass
class _Held:
    declared: int | None  # the length the start announced, when it did
    data: tempfile.SpooledTemporaryFile
    touched: float
    size: int = 0
    synthetic_parts: list[str] = field(default_factory=list)  # OpenAI part ids Veil answered itself


class HeldUploads:
    """The bytes of uploads in progress: bounded in total, each expiring when left alone."""

    def __init__(self, max_total_bytes: int = 1 << 30, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.max_total, self.ttl, self._clock = max_total_bytes, ttl_seconds, clock
        self._uploads: dict[tuple[str, str], _Held] = {}
        self._directory: Path | None = None

    def __len__(self) -> int:
        return len(self._uploads)

    def start(self, key: tuple[str, str], declared: int | None):
        self._expire()
        self._forget(key)
        spool = tempfile.SpooledTemporaryFile(max_size=SPILL_BYTES, dir=self._private_directory())
        self._uploads[key] = _Held(declared, spool, self._clock())

    def get(self, key: tuple[str, str]) -> _Held | None:
        self._expire()
        return self._uploads.get(key)

    def append(self, key: tuple[str, str], data: bytes, limit: int) -> _Held:
        held = self._uploads[key]
        if held.size + len(data) > limit:
            self._forget(key)
            raise PieceRefused(f"the upload grows past {limit:,} bytes, the most Veil holds to clean a file whole")
        if self.held_bytes() + len(data) > self.max_total:
            raise PieceRefused("Veil is holding too many uploads in progress; retry shortly", status=503)
        held.data.write(data)
        held.size += len(data)
        held.touched = self._clock()
        return held

    def take(self, key: tuple[str, str]) -> bytes:
        held = self._uploads.pop(key)
        held.data.seek(0)
        whole = held.data.read()
        held.data.close()
        return whole

    def held_bytes(self) -> int:
        return sum(held.size for held in self._uploads.values())

    def close(self):
        for key in list(self._uploads):
            self._forget(key)

    def discard(self, key):
        self._forget(key)

    def _forget(self, key):
        held = self._uploads.pop(key, None)
        if held:
            held.data.close()

    def _expire(self):
        now = self._clock()
        for key in [key for key, held in self._uploads.items() if now - held.touched > self.ttl]:
            self._forget(key)

    def _private_directory(self) -> str:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="veil-uploads-"))  # mode 0700: this user only
        return str(self._directory)


class PieceRefused(Exception):
    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason, self.status = reason, status


class SplitUploads:
    """Recognises the pieces of OpenAI Uploads and Google resumable uploads."""

    def __init__(self, held: HeldUploads | None = None):
        self.held = held or HeldUploads()
        # OpenAI Upload id -> the part ids Veil answered itself, until `complete` lists them.
        self._issued: dict[str, list[str]] = {}

    # ---- the response hook: where uploads start ------------------------------------------

    def learn(self, method: str, host: str, path: str, request_headers: Mapping[str, str], request_body: bytes,
              status: int, response_headers: Mapping[str, str], response_body: bytes):  # fmt: skip
        if status >= 300 or method != "POST":
            return
        route = path.split("?", 1)[0]
        if _OPENAI_CREATE.match(route):
            upload_id, declared = _openai_created(request_body, response_body)
            if upload_id:
                self.held.start(("openai", upload_id), declared)
        elif _commands(request_headers) == {"start"} and response_headers.get("x-goog-upload-url"):
            upload_id = _google_upload_id(response_headers["x-goog-upload-url"])
            if upload_id:
                self.held.start(("google", upload_id), _int(request_headers.get("x-goog-upload-header-content-length")))

    # ---- the request hook: pieces ---------------------------------------------------------

    def piece(self, method: str, path: str, headers: Mapping[str, str], body: bytes, limit: int) -> Piece | None:
        """The decision for a request that is a piece of a split upload; None for any other."""
        route, _, query = path.partition("?")
        try:
            if method == "POST" and (found := _OPENAI_PART.match(route)):
                return self._openai_part(found.group(1), headers, body, min(limit, OPENAI_MAX_PART))
            if "upload" in _commands(headers) or "query" in _commands(headers):
                return self._google_chunk(query, headers, body, limit)
        except PieceRefused as refused:
            return Piece(refusal=refused.reason)
        return None

    def _openai_part(self, upload_id: str, headers: Mapping[str, str], body: bytes, limit: int) -> Piece:
        key = ("openai", upload_id)
        held = self.held.get(key)
        if held is None:
            raise PieceRefused(f"this is a part of OpenAI Upload {upload_id}, whose start Veil did not see, so it cannot judge the file whole")
        located = _data_part(body, headers.get("content-type"))
        if located is None:
            raise PieceRefused("the Upload part has no readable 'data' field")
        start, end = located
        self.held.append(key, body[start:end], limit)
        if held.declared is None or held.size < held.declared:
            part_id = SYNTHETIC_PART_PREFIX + secrets.token_hex(12)
            held.synthetic_parts.append(part_id)
            document = {"id": part_id, "object": "upload.part", "created_at": int(time.time()), "upload_id": upload_id}
            return Piece(answer=(200, {"Content-Type": "application/json"}, json.dumps(document).encode()))
        if held.size > held.declared:
            self.held.discard(key)
            raise PieceRefused(f"the Upload's parts hold {held.size:,} bytes, more than the {held.declared:,} it declared")
        synthetic = list(held.synthetic_parts)
        whole = self.held.take(key)
        self._issued[upload_id] = synthetic
        return Piece(whole=(body[:start] + whole + body[end:], {}))

    def _google_chunk(self, query: str, headers: Mapping[str, str], body: bytes, limit: int) -> Piece | None:
        upload_id = _google_upload_id("?" + query)
        commands = _commands(headers)
        offset = _int(headers.get("x-goog-upload-offset"))
        key = ("google", upload_id or "")
        held = self.held.get(key) if upload_id else None
        if held is None:
            if commands == {"upload", "finalize"} and offset in (0, None):
                return None  # the whole file in one request: judged as any body
            if commands == {"query"}:
                return None  # nothing of it passes through Veil
            raise PieceRefused("this is a chunk of a resumable upload whose start Veil did not see, so it cannot judge the file whole")
        if commands == {"query"}:
            return Piece(answer=_google_active(held.size))
        if offset != held.size:
            raise PieceRefused(f"the chunk is at offset {offset}, but Veil holds {held.size:,} bytes of this upload")
        self.held.append(key, body, limit)
        if "finalize" not in commands:
            return Piece(answer=_google_active(held.size))
        if held.declared is not None and held.size != held.declared:
            self.held.discard(key)
            raise PieceRefused(f"the upload ends at {held.size:,} bytes, but its start declared {held.declared:,}")
        return Piece(whole=(self.held.take(key), {"x-goog-upload-offset": "0", "x-goog-upload-command": "upload, finalize"}))

    # ---- OpenAI complete: the part ids the service knows ---------------------------------

    def complete_body(self, path: str, body: bytes) -> bytes | None:
        """`complete` lists the part ids the client received, Veil's own among them: keep only
        the service's (the one part that carried the whole file). None when nothing changes.
        Raises PieceRefused when the ids are not the ones Veil answered, in order."""
        found = _OPENAI_COMPLETE.match(path.split("?", 1)[0])
        if not found or found.group(1) not in self._issued:
            return None
        synthetic = self._issued.pop(found.group(1))
        try:
            document = json.loads(body)
            listed = document["part_ids"]
        except (ValueError, KeyError, TypeError):
            raise PieceRefused("the Upload's completion does not list its parts as JSON") from None
        if not isinstance(listed, list) or listed[: len(synthetic)] != synthetic or len(listed) != len(synthetic) + 1:
            raise PieceRefused("the Upload's completion lists its parts in another order than they were sent; Veil sent the file whole in the last part")
        document["part_ids"] = listed[len(synthetic) :]
        return json.dumps(document).encode()


def _data_part(body: bytes, content_type: str | None) -> tuple[int, int] | None:
    try:
        boundary = multipart._boundary(body, content_type)
        parts = multipart.parse_parts(body, boundary) if boundary else []
    except EnvelopeError:
        return None
    part = next((part for part in parts if part.name == "data"), None)
    return None if part is None else (part.content_start, part.content_end)


def _openai_created(request_body: bytes, response_body: bytes) -> tuple[str | None, int | None]:
    try:
        upload_id = json.loads(response_body).get("id")
        declared = json.loads(request_body).get("bytes")
    except (ValueError, AttributeError):
        return None, None
    return (upload_id if isinstance(upload_id, str) else None), (declared if isinstance(declared, int) else None)


def _commands(headers: Mapping[str, str]) -> set[str]:
    return {part.strip().lower() for part in headers.get("x-goog-upload-command", "").split(",") if part.strip()}


def _google_upload_id(url: str) -> str | None:
    values = parse_qs(url.partition("?")[2]).get("upload_id")
    return values[0] if values else None


def _google_active(received: int) -> tuple[int, dict[str, str], bytes]:
    return 200, {"X-Goog-Upload-Status": "active", "X-Goog-Upload-Size-Received": str(received)}, b""


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return -1
