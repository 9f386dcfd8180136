"""The mitmproxy side of uploads that take several requests: OpenAI Uploads (create →
parts → complete) and Google resumable uploads. The decisions are split_uploads.py's and
integrity.py's (pure); this applies them to flows.

- `hold`: a piece is held and answered by Veil, or refused; the last piece carries the
  whole file and goes on to be examined like any request.
- `follow`: after a forwarded request, remember an OpenAI part as sent, and give `complete`
  the part ids the service knows and the md5 of the bytes it received.
- `on_response`: learn where uploads start, and the ids of the parts the service took.
"""

import json

from mitmproxy import http

from . import integrity, pipeline
from .envelopes import multipart
from .split_uploads import PieceRefused, SplitUploads

UPLOAD_PART_KEY = "veil_upload_part"  # (upload id, part bytes as sent, changed) until the response names the part
HELD = "held"


class UploadFlows:
    def __init__(self):
        self.split = SplitUploads()  # pieces of uploads in progress, held until the last
        self.ledger = integrity.UploadLedger()  # OpenAI Uploads: parts as sent, for complete's md5

    def hold(self, flow: http.HTTPFlow, limit: int) -> str | None:
        """HELD when Veil answered the piece itself; a refusal's reason; None when the request
        goes on (it is no piece, or it is the last one and now carries the whole file)."""
        try:
            body = pipeline.decoded_body(flow.request.raw_content or b"", flow.request.headers, limit)
        except pipeline.RequestRefused:
            return None  # examine() refuses it with its own record
        piece = self.split.piece(flow.request.method, flow.request.path, flow.request.headers, body, limit)
        if piece is None:
            return None
        if piece.refusal:
            return piece.refusal
        if piece.answer:
            status, headers, content = piece.answer
            flow.response = http.Response.make(status, content, headers | {"X-Veil": HELD})
            flow.comment = "Veil: held this piece of a split upload; the whole file is cleaned and sent with the last piece"
            return HELD
        whole, headers = piece.whole
        flow.request.content = whole  # mitmproxy re-applies Content-Encoding and Content-Length
        for name, value in headers.items():
            flow.request.headers[name] = value
        return None

    def follow(self, flow: http.HTTPFlow, changed: bool) -> str | None:
        """After Veil let a request go: a refusal's reason for a `complete` that lists its
        parts out of order, else None."""
        path = flow.request.path
        upload_id = integrity.upload_part_id(path)
        if upload_id:
            data = multipart.field_content(flow.request.content or b"", flow.request.headers.get("content-type"), "data")
            if data is not None:
                flow.metadata[UPLOAD_PART_KEY] = (upload_id, data, changed)
            return None
        upload_id = integrity.upload_complete_id(path)
        if not upload_id:
            return None
        try:
            listed = self.split.complete_body(path, flow.request.content or b"")
        except PieceRefused as refused:
            return refused.reason
        if listed is not None:
            flow.request.content = listed
        fixed = self.ledger.complete_body(upload_id, flow.request.content or b"")
        if fixed is not None:
            flow.request.content = fixed
            flow.comment = "Veil: md5 recomputed for the parts it cleaned"
        return None

    def on_response(self, flow: http.HTTPFlow, protected: bool):
        response = flow.response
        if response is None:
            return
        if protected and "X-Veil" not in response.headers:
            request = flow.request
            self.split.learn(
                request.method, request.pretty_host, request.path, request.headers, request.get_content(strict=False) or b"",
                response.status_code, response.headers, response.get_content(strict=False) or b"",
            )  # fmt: skip
        pending = flow.metadata.pop(UPLOAD_PART_KEY, None)
        if pending is None or response.status_code >= 300:
            return
        try:
            part_id = json.loads(response.get_content(strict=False) or b"{}").get("id")
        except (ValueError, AttributeError):
            return
        if isinstance(part_id, str):
            upload_id, data, changed = pending
            self.ledger.part_received(upload_id, part_id, data, changed)

    def close(self):
        self.split.held.close()
