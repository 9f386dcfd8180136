"""The leaks an outside test found, and an insider's further attempts, judged only by what a
lenient real server recovers from the bytes that left the proxy (e2e/lenient_server.py):
each upload either arrives clean or is refused with a readable 4xx — and has its record.

One test per class of issue 14: multipart parser differentials, lenient base64 and data
URLs in JSON, a partly parseable JSON Lines file, split uploads (test_web_app_flows.py),
the destination taken from the wrong place, bodies passed by policy that visibly hold an
image, and text in ICC profiles."""

import base64
import binascii
import gzip
import http.client
import io
import json
import urllib.parse
import zipfile

import pytest
from PIL import Image

from builders import exif_block, gradient, personal_icc_profile
from e2e.lenient_server import recover_images
from e2e.photos import face_photo_with_gps, metadata_problems

PHOTO = None


def photo() -> bytes:
    global PHOTO
    if PHOTO is None:
        PHOTO = face_photo_with_gps()
    return PHOTO


def small_dirty_png() -> bytes:
    buffer = io.BytesIO()
    gradient().save(buffer, "PNG", exif=exif_block(gps=True), icc_profile=personal_icc_profile())
    return buffer.getvalue()


class Sent:
    def __init__(self, status: int, headers: dict, body: bytes, records: list[dict], received: list):
        self.status, self.headers, self.body, self.records, self.received = status, headers, body, records, received

    @property
    def refused(self) -> bool:
        return self.headers.get("x-veil") == "blocked"

    def message(self) -> str:
        return json.loads(self.body)["error"]["message"]


def send(proxy, upstream, method: str, path: str, body, headers: dict, tunnel: str = "api.openai.com", chunked: bool = False) -> Sent:
    upstream.clear()
    before = len(proxy.audit_records())
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=proxy.ssl_context(), timeout=60)
    connection.set_tunnel(tunnel, 443)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": tunnel, "Authorization": "Bearer sk-test", **headers}
        for name, value in headers.items():
            connection.putheader(name, value)
        if chunked:
            connection.endheaders()
            for at in range(0, len(body), 7000):
                piece = body[at : at + 7000]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        else:
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
        response = connection.getresponse()
        answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
    return Sent(*answer, proxy.audit_records()[before:], list(upstream.received))


def assert_nothing_uncleaned_left(sent: Sent):
    """The verdict of the test: a refusal (4xx, readable, nothing forwarded) or only clean
    images recovered by a lenient server — and in either case a record."""
    assert sent.records, "no audit record for a request that carried an image"
    if sent.refused:
        assert 400 <= sent.status < 500 and len(sent.message()) > 40
        assert not sent.received, "Veil refused the request, yet something reached the service"
        assert any(record["event"] == "blocked" for record in sent.records)
        return
    assert sent.status == 200 and len(sent.received) == 1
    received = sent.received[0]
    images = recover_images(received.headers, received.body)
    assert images, "the test expected the server to recover the (cleaned) image"
    for image in images:
        assert metadata_problems(image) == [], "an image left the proxy uncleaned"
        assert image != photo()


def multipart(parts: list[tuple[str, bytes]], boundary: str = "XyZ") -> bytes:
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


FILE_PART = 'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg'
PURPOSE = ('Content-Disposition: form-data; name="purpose"', b"vision")


# ---- 1. multipart parser differentials --------------------------------------------------


def test_a_body_opening_with_another_boundary_than_declared(proxy, upstream):
    inner = multipart([(FILE_PART, photo())], boundary="REAL")
    body = multipart([('Content-Disposition: form-data; name="note"', inner)], boundary="DECOY")
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": "multipart/form-data; boundary=REAL"})
    assert_nothing_uncleaned_left(sent)
    assert sent.refused and "other than the boundary" in sent.message()


@pytest.mark.parametrize("order", ["decoy first", "decoy last"])
def test_a_repeated_boundary_parameter(proxy, upstream, order):
    body = multipart([PURPOSE, (FILE_PART, photo())], boundary="REAL")
    parameters = ["boundary=DECOY", "boundary=REAL"]
    content_type = "multipart/form-data; " + "; ".join(parameters if order == "decoy first" else parameters[::-1])
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": content_type})
    assert_nothing_uncleaned_left(sent)
    assert sent.refused and "twice" in sent.message()


def test_a_quoted_printable_part_arrives_clean(proxy, upstream):
    encoded = binascii.b2a_qp(photo(), quotetabs=True, istext=False).replace(b"=\n", b"=\r\n")
    body = multipart([PURPOSE, (FILE_PART + "\r\nContent-Transfer-Encoding: quoted-printable", encoded)])
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_nothing_uncleaned_left(sent)
    assert not sent.refused and sent.records[0]["event"] == "sanitised"


# ---- 2. lenient base64 and data URLs in JSON ---------------------------------------------


def chat_with(url: str) -> bytes:
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    return json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}).encode()


def b64() -> str:
    return base64.b64encode(photo()).decode()


LENIENT_DATA_URLS = {
    "space after the comma": lambda: "data:image/jpeg;base64, " + b64(),
    "line breaks inside": lambda: "data:image/jpeg;base64," + "\n".join(b64()[i : i + 76] for i in range(0, len(b64()), 76)),
    "percent-encoded": lambda: "data:image/jpeg;base64," + urllib.parse.quote(b64(), safe=""),
    "a long media-type parameter": lambda: "data:image/jpeg;name=" + "x" * 3000 + ";base64," + b64(),
    "url-safe alphabet without padding": lambda: "data:image/jpeg;base64," + base64.urlsafe_b64encode(photo()).decode().rstrip("="),
}


@pytest.mark.parametrize("form", list(LENIENT_DATA_URLS))
def test_lenient_data_urls(proxy, upstream, form):
    sent = send(proxy, upstream, "POST", "/v1/chat/completions", chat_with(LENIENT_DATA_URLS[form]()), {"Content-Type": "application/json"})
    assert_nothing_uncleaned_left(sent)


def test_a_leading_space_in_a_bare_base64_field(proxy, upstream):
    source = {"type": "base64", "media_type": "image/jpeg", "data": " " + b64()}
    body = json.dumps({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": source}]}]})
    sent = send(proxy, upstream, "POST", "/v1/messages", body.encode(), {"Content-Type": "application/json"}, tunnel="api.anthropic.com")
    assert_nothing_uncleaned_left(sent)


# ---- 3. a partly parseable JSON Lines file -----------------------------------------------


def test_a_batch_file_with_one_broken_line(proxy, upstream):
    line = json.dumps({"custom_id": "1", "method": "POST", "url": "/v1/chat/completions",
                       "body": json.loads(chat_with("data:image/jpeg;base64," + b64()))})  # fmt: skip
    batch = (line + "\nthis line is not JSON\n" + line + "\n").encode()
    body = multipart([('Content-Disposition: form-data; name="purpose"', b"batch"), ('Content-Disposition: form-data; name="file"; filename="batch.jsonl"', batch)])
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_nothing_uncleaned_left(sent)
    assert sent.refused


# ---- 5. the destination is the connection ------------------------------------------------


def test_a_tunnel_to_a_protected_service_with_another_host_header(proxy, upstream):
    body = chat_with("data:image/jpeg;base64," + b64())
    sent = send(proxy, upstream, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Host": "example.com"})
    assert_nothing_uncleaned_left(sent)
    assert sent.refused and "example.com" in sent.message() and "api.openai.com" in sent.message()


def test_a_post_that_says_upgrade_websocket_is_inspected_as_a_body(proxy, upstream):
    body = chat_with("data:image/jpeg;base64," + b64())
    headers = {"Content-Type": "application/json", "Upgrade": "websocket", "Connection": "Upgrade"}
    sent = send(proxy, upstream, "POST", "/v1/chat/completions", body, headers)
    assert_nothing_uncleaned_left(sent)
    assert not sent.refused and sent.records[0]["event"] == "sanitised"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_body_on_another_method_is_inspected(proxy, upstream, method):
    sent = send(proxy, upstream, method, "/v1/chat/completions", chat_with("data:image/jpeg;base64," + b64()), {"Content-Type": "application/json"})
    assert_nothing_uncleaned_left(sent)


# ---- 6. bodies that visibly hold an image, whatever the policy thought of them ------------


def test_a_gzip_transfer_coding_on_a_json_body(proxy, upstream):
    body = gzip.compress(chat_with("data:image/jpeg;base64," + b64()))
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "gzip, chunked"}
    sent = send(proxy, upstream, "POST", "/v1/chat/completions", body, headers, chunked=True)
    assert_nothing_uncleaned_left(sent)


def test_a_form_urlencoded_body_with_a_base64_image(proxy, upstream):
    body = urllib.parse.urlencode({"prompt": "describe", "image": b64()}).encode()
    sent = send(proxy, upstream, "POST", "/v1/chat/completions", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert_nothing_uncleaned_left(sent)


def test_a_photo_inside_a_zip_upload(proxy, upstream):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("holiday/IMG_2041.jpg", photo())
    body = multipart([PURPOSE, ('Content-Disposition: form-data; name="file"; filename="photos.zip"\r\nContent-Type: application/zip', archive.getvalue())])
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_nothing_uncleaned_left(sent)  # the photo in the archive arrives cleaned (documents: clean)


def test_base64_of_a_gzipped_photo_in_a_json_field(proxy, upstream):
    body = json.dumps({"model": "gpt-4o", "input": "hi", "metadata": {"blob": base64.b64encode(gzip.compress(photo())).decode()}}).encode()
    sent = send(proxy, upstream, "POST", "/v1/responses", body, {"Content-Type": "application/json"})
    assert_nothing_uncleaned_left(sent)
    assert sent.refused


# ---- 7. a colour profile that names its owner ---------------------------------------------


def test_an_icc_profile_naming_a_person_arrives_neutral(proxy, upstream):
    body = multipart([PURPOSE, ('Content-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png', small_dirty_png())])
    sent = send(proxy, upstream, "POST", "/v1/files", body, {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert_nothing_uncleaned_left(sent)
    [image] = recover_images(sent.received[0].headers, sent.received[0].body)
    profile = Image.open(io.BytesIO(image)).info["icc_profile"]
    assert b"Jane" not in profile and "Jane".encode("utf-16-be") not in profile
