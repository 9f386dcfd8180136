"""`veil demo`'s stand-ins: a local "AI service" that keeps what it receives, and the photo
a phone might upload (scikit-image's astronaut, with GPS, camera and owner EXIF)."""

import io
import json
import threading
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SAMPLE_EXIF = {
    "Make": "Canon",
    "Model": "EOS 5D Mark IV",
    "Artist": "Jane Doe",
    "DateTime": "2026:11:28 14:03:12",
}
SAMPLE_GPS = {1: "N", 2: (52.0, 22.0, 30.5), 3: "E", 4: (4.0, 53.0, 41.2)}  # Amsterdam
OPENAI_FILE = {"id": "file-demo", "object": "file", "bytes": 0, "created_at": 0, "filename": "photo.jpg", "purpose": "vision"}


class MissingSampleLibrary(Exception):
    pass


def sample_photo() -> bytes:
    """A JPEG with a real face, carrying where, when, with what and by whom it was taken."""
    try:
        from skimage import data
    except ImportError:
        raise MissingSampleLibrary("scikit-image ships the demo's photo; install it: pip install scikit-image") from None
    from PIL import ExifTags, Image

    exif = Image.Exif()
    for name, value in SAMPLE_EXIF.items():
        exif[ExifTags.Base[name]] = value
    exif[ExifTags.IFD.GPSInfo] = SAMPLE_GPS
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def multipart_upload(photo: bytes, boundary: str = "veil-demo-boundary") -> tuple[bytes, str]:
    """The body an OpenAI client sends to /v1/files: the photo and its purpose."""
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvision\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def file_in_multipart(body: bytes, content_type: str) -> bytes | None:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_filename():
            return part.get_payload(decode=True)
    return None


class StandIn:
    """What the stand-in service received last: (body, content type)."""

    received: tuple[bytes, str] | None = None
    port: int = 0


@contextmanager
def stand_in_service():
    """An HTTP server on loopback answering like OpenAI's file upload, for as long as the block runs."""
    stand_in = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    stand_in.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


def _handler(stand_in: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            stand_in.received = (body, self.headers.get("content-type", ""))
            answer = json.dumps(OPENAI_FILE | {"bytes": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass  # the demo prints its own story

    return Handler
