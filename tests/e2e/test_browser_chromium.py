"""A person at a real browser: Debian's headless Chromium, trusting Veil's CA through its NSS
database (set up with the steps `veil trust` prints), uploads a photo through a real mitmdump
running Veil to a local imitation of an AI app reached under its real, protected host names.

- a form posts the photo as multipart, exactly as Chromium writes it;
- the ChatGPT pattern: declare the size, then fetch() PUT a Blob of several megabytes, raw,
  to blob storage on another protected host (CORS preflight included);
- the PAC file Veil serves sends protected hosts through Veil and the rest DIRECT.

Skips without chromium or certutil (scripts/install-system-deps installs both)."""

import email.parser
import hashlib
import email.policy
import io
import re
import shutil
from functools import cache
from pathlib import Path

import numpy
import pytest
from PIL import Image

from builders import exif_block
from e2e.browser import Browser
from e2e.photos import assert_clean_and_masked, face_photo_with_gps
from e2e.upstream import RecordingUpstream
from veil.cli import trust

APP = "https://chatgpt.com"


@pytest.fixture
def home_trusting_veil(proxy, tmp_path) -> Path:
    """A $HOME whose NSS database trusts Veil's CA, made by the steps `veil trust` applies."""
    if not shutil.which("certutil"):
        pytest.skip("certutil is not installed (scripts/install-system-deps installs libnss3-tools)")
    home = tmp_path / "home"
    situation = trust.Situation("linux", proxy.ca_file, home)
    chromium_step = trust.steps(situation)[0]
    assert chromium_step.automatic and "nssdb" in " ".join(chromium_step.show("linux"))
    trust.perform(chromium_step)
    return home


@pytest.fixture
def browser(proxy, home_trusting_veil, tmp_path):
    with Browser(tmp_path, f"--proxy-server={proxy.url}", home=home_trusting_veil) as running:
        yield running


@cache
def large_face_photo_with_gps() -> bytes:
    """The same face photo, scaled up to a few megabytes: uploads that size must work too."""
    with Image.open(io.BytesIO(face_photo_with_gps())) as small:
        pixels = numpy.asarray(small.convert("RGB").resize((3200, 3200), Image.LANCZOS), dtype=numpy.int16)
    grain = numpy.random.default_rng(8).integers(-4, 5, pixels.shape, dtype=numpy.int16)  # a camera's noise
    large = Image.fromarray(numpy.clip(pixels + grain, 0, 255).astype(numpy.uint8))
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=98, subsampling=0, exif=b"Exif\x00\x00" + exif_block(gps=True))
    return buffer.getvalue()


def records_for(proxy, url: str) -> list[dict]:
    return [record for record in proxy.audit_records() if record.get("url") == url]


def spoke_http2(proxy, method: str, path: str) -> bool:
    """mitmdump logs each request with the protocol the client spoke (after rerouting, so
    with the upstream's address)."""
    return re.search(rf"{method} http://127\.0\.0\.1:\d+{re.escape(path)}(\?\S*)? HTTP/2\.0", proxy.output()) is not None


def multipart_file(received) -> tuple[dict, bytes]:
    """The file part of a multipart body, read by the standard library's own MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + received.headers["content-type"].encode() + b"\r\n\r\n" + received.body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return dict(part.items()), part.get_payload(decode=True)
    raise AssertionError("no file part in the multipart body")


def test_a_form_upload_from_chromium_arrives_clean(proxy, upstream, browser, tmp_path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(face_photo_with_gps())
    page = browser.new_page()
    page.navigate(f"{APP}/upload-page/form")
    assert page.evaluate("document.title") == "Upload (form)"
    assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"

    page.set_file("#file", photo)
    page.evaluate("document.getElementById('send').click()")
    page.wait_for("location.pathname == '/upload-page/form-upload' && !!document.getElementById('answer')")
    assert page.evaluate("document.getElementById('answer').textContent") == "Upload received"
    page.screenshot(tmp_path / "form-after-upload.png")

    received = upstream.last("/upload-page/form-upload")
    assert received.host == "chatgpt.com" and received.method == "POST"
    assert "boundary=----WebKitFormBoundary" in received.headers["content-type"]  # Chromium's own body
    headers, image = multipart_file(received)
    assert 'filename="holiday.jpg"' in headers["Content-Disposition"]
    assert b'name="purpose"\r\n\r\nvision\r\n' in received.body
    assert image != photo.read_bytes()
    assert_clean_and_masked(image)

    (record,) = records_for(proxy, f"{APP}/upload-page/form-upload")
    assert (record["event"], record["service"], record["envelope"], record["location"]) == (
        "sanitised", "chatgpt-web", "multipart", "file",
    )  # fmt: skip
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1
    assert record["sha256_after"] == hashlib.sha256(image).hexdigest()
    assert spoke_http2(proxy, "POST", "/upload-page/form-upload")


def test_a_fetch_put_of_a_large_blob_after_declaring_its_size_arrives_clean(proxy, upstream, browser, tmp_path):
    photo = tmp_path / "large.jpg"
    photo.write_bytes(large_face_photo_with_gps())
    assert photo.stat().st_size > 3_000_000
    page = browser.new_page()
    page.navigate(f"{APP}/upload-page/put")
    page.set_file("#file", photo)
    page.evaluate("document.getElementById('send').click()")
    answer = page.wait_for(
        "(t => t.startsWith('PUT') || t.startsWith('failed') ? t : null)(document.getElementById('answer').textContent)",
        timeout=120,
    )
    page.screenshot(tmp_path / "put-after-upload.png")
    assert answer.startswith("PUT 201: "), answer

    declared = upstream.last("/upload-page/api/files")
    assert b'"file_size":%d' % photo.stat().st_size in declared.body
    received = upstream.last("/files/upload-page-large.jpg")
    assert (received.host, received.method) == ("files.oaiusercontent.com", "PUT")
    assert received.headers["x-ms-blob-type"] == "BlockBlob"
    assert answer == f'PUT 201: {{"stored_bytes": {len(received.body)}}}'
    assert_clean_and_masked(received.body)
    with Image.open(io.BytesIO(received.body)) as image:
        assert image.size == (3200, 3200)

    (record,) = records_for(proxy, "https://files.oaiusercontent.com/files/upload-page-large.jpg")
    assert (record["event"], record["rule"], record["envelope"]) == ("sanitised", "blob-upload", "raw")
    assert "gps" in record["metadata_removed"] and record["faces"] >= 1
    assert record["bytes_before"] == photo.stat().st_size
    assert spoke_http2(proxy, "PUT", "/files/upload-page-large.jpg")


PROXIED = ("chatgpt.com", "files.oaiusercontent.com", "a.b.oaiusercontent.com", "api.openai.com")
DIRECT = ("oaiusercontent.com", "evil-oaiusercontent.com", "evilchatgpt.com", "chatgpt.com.example", "example.org")


def test_chromium_following_the_pac_file_veil_serves(proxy, upstream, home_trusting_veil, tmp_path):
    """Chromium fetches http://<proxy>/proxy.pac from Veil itself and evaluates it: protected
    hosts go through the proxy (and on to the recording upstream), the rest straight to a
    second local server. The URLs are plain http so the direct server stays simple (HSTS
    preloading may still turn chatgpt.com into https: it goes through Veil all the same)."""
    with RecordingUpstream() as direct:
        flags = (f"--proxy-pac-url={proxy.url}/proxy.pac", "--host-resolver-rules=MAP * 127.0.0.1",
                 "--disable-features=HttpsUpgrades")  # fmt: skip
        with Browser(tmp_path, *flags, home=home_trusting_veil) as browser:
            page = browser.new_page()
            for host in PROXIED + DIRECT:
                page.navigate(f"http://{host}:{direct.port}/pac-probe/{host}")
        reached_direct = {r.path.rsplit("/", 1)[1] for r in direct.received if r.path.startswith("/pac-probe/")}
    reached_proxy = {r.path.rsplit("/", 1)[1] for r in upstream.received if r.path.startswith("/pac-probe/")}
    assert reached_proxy == set(PROXIED)
    assert reached_direct == set(DIRECT)
