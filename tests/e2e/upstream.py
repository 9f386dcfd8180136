"""A stand-in for the AI services: records every request it receives, byte for byte,
and answers with the smallest response each SDK accepts.

A request carrying `X-Test-Fault: reset` is recorded, then its connection is reset (TCP
RST) instead of answered; `X-Test-Fault: stall:SECONDS` is answered that much later. The
fault tests use them to play a failing or slow service."""

import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from e2e import ai_site, declared_sizes


@dataclass(frozen=True)
class Received:
    method: str
    host: str  # the host the client meant (the proxy's rerouting addon keeps it)
    path: str
    headers: dict[str, str]
    body: bytes


_OPENAI_CHAT = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-test",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}  # fmt: skip
_OPENAI_RESPONSE = {
    "id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-test", "status": "completed",
    "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}]}],
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
}  # fmt: skip
_OPENAI_IMAGES = {"created": 0, "data": [{"b64_json": "aGk="}]}
_ANTHROPIC_MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}  # fmt: skip
_ANTHROPIC_FILE = {"id": "file_1", "type": "file", "filename": "photo.jpg", "mime_type": "image/jpeg",
                   "size_bytes": 1, "created_at": "2026-01-01T00:00:00Z", "downloadable": False}  # fmt: skip
_GEMINI = {
    "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
}  # fmt: skip


def _answer(method: str, host: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
    """(status, headers, body) for a request; JSON unless said otherwise. Flows that declare
    a size first (Google resumable uploads among them) are answered by declared_sizes."""
    route = path.split("?", 1)[0]
    table = [
        (r"/v1/chat/completions$", _OPENAI_CHAT),
        (r"/v1/responses$", _OPENAI_RESPONSE),
        (r"/v1/images/edits$", _OPENAI_IMAGES),
        (r"/v1/messages$", _ANTHROPIC_MESSAGE),
        (r"/v1/files$", _ANTHROPIC_FILE if host == "api.anthropic.com" else declared_sizes.OPENAI_FILE),
        (r":(stream)?[gG]enerateContent$", _GEMINI),
    ]
    for pattern, payload in table:
        if re.search(pattern, route):
            return 200, {}, json.dumps(payload).encode()
    return 200, {}, b'{"ok": true}'


class RecordingUpstream:
    def __init__(self):
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def clear(self):
        with self._lock:
            self.received.clear()

    def last(self, path_contains: str) -> Received:
        with self._lock:
            return next(r for r in reversed(self.received) if path_contains in r.path)

    def _handler_class(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it each small response waits ~40 ms for a delayed TCP acknowledgement.
            disable_nagle_algorithm = True

            def _read_chunked(self) -> bytes:
                body = b""
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return body

            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    body = self._read_chunked()  # a server keeps any other transfer coding for its app to undo
                else:
                    body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                host = headers.get("x-original-host") or headers.get("host", "")
                with upstream._lock:
                    upstream.received.append(Received(self.command, host, self.path, headers, body))
                fault = headers.get("x-test-fault", "")
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault.startswith("stall:"):
                    time.sleep(float(fault.removeprefix("stall:")))
                route = self.path.split("?", 1)[0]
                status, extra, payload = (
                    ai_site.answer(self.command, host, route, body)
                    or declared_sizes.answer(self.command, host, self.path, headers, body)
                    or _answer(self.command, host, self.path, headers)
                )
                extra = dict(extra)
                self.send_response(status)
                self.send_header("Content-Type", extra.pop("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _any

            def log_message(self, *args):
                pass  # keep test output quiet

        return Handler
