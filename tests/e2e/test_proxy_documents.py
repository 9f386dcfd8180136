"""Documents through a real mitmdump running Veil, sent by the real openai and anthropic
SDKs and by curl: they arrive with no personal metadata, faces masked, the same pages and
text; a hostile one is refused readably and the proxy keeps serving."""

import base64
import io
import json
import zipfile

import documents_builders as build
import pikepdf
import pytest
from e2e.test_proxy_curl import curl
from e2e.test_proxy_sdks import _multipart_file, anthropic_client, openai_client
from veil.clean.faces import default_detector
from veil.clean.options import DetectionSettings


@pytest.fixture(scope="module")
def face_pdf() -> bytes:
    return build.face_pdf(pages=2, photos=1)


def assert_pdf_clean(pdf_bytes: bytes) -> None:
    import pypdf

    assert build.AUTHOR.encode() not in pdf_bytes and build.COMPANY.encode() not in pdf_bytes
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root and not pdf.attachments
        images = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"]
        assert images
        for image in images:
            pixels = pikepdf.PdfImage(image).as_pil_image()
            assert not pixels.getexif()
            assert default_detector().detect(pixels.convert("RGB"), DetectionSettings()) == []
    pages = pypdf.PdfReader(io.BytesIO(pdf_bytes)).pages
    assert len(pages) == 2 and all(build.BODY_TEXT in page.extract_text() for page in pages)


def latest_record(proxy, fmt: str) -> dict:
    return next(record for record in reversed(proxy.audit_records()) if record.get("format") == fmt)


def test_openai_files_create_with_a_pdf(openai_client, upstream, proxy, face_pdf):
    created = openai_client.files.create(file=("cv.pdf", face_pdf, "application/pdf"), purpose="user_data")
    assert created.id == "file-1"
    received = upstream.last("/v1/files")
    [sent] = _multipart_file(received.body, received.headers["content-type"], "file")
    assert_pdf_clean(sent)
    record = latest_record(proxy, "pdf")
    assert record["event"] == "sanitised" and record["faces"] >= 1


def test_openai_chat_with_a_file_part(openai_client, upstream, face_pdf):
    data_url = "data:application/pdf;base64," + base64.b64encode(face_pdf).decode()
    openai_client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"filename": "cv.pdf", "file_data": data_url}}]}],
    )
    sent = json.loads(upstream.last("/v1/chat/completions").body)
    file_data = sent["messages"][0]["content"][0]["file"]["file_data"]
    assert file_data.startswith("data:application/pdf;base64,")
    assert_pdf_clean(base64.b64decode(file_data.split(",", 1)[1]))


def test_anthropic_document_block(anthropic_client, upstream, face_pdf):
    answer = anthropic_client.messages.create(
        model="claude-test",
        max_tokens=16,
        messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(face_pdf).decode()}},
            {"type": "text", "text": "Summarise"}]}],
    )  # fmt: skip
    assert answer.content[0].text == "ok"
    source = json.loads(upstream.last("/v1/messages").body)["messages"][0]["content"][0]["source"]
    assert source["media_type"] == "application/pdf"
    assert_pdf_clean(base64.b64decode(source["data"], validate=True))


def test_curl_uploads_a_docx_and_a_hostile_one_is_refused(proxy, proxy_env, upstream, tmp_path):
    import docx

    document = tmp_path / "cv.docx"
    document.write_bytes(build.face_docx())
    done = curl(proxy_env, "https://api.openai.com/v1/files", "-F", "purpose=user_data", "-F", f"file=@{document}", "-H", "Authorization: Bearer sk-test")
    assert done.returncode == 0 and json.loads(done.stdout)["id"] == "file-1", done.stderr
    received = upstream.last("/v1/files")
    [sent] = _multipart_file(received.body, received.headers["content-type"], "file")
    names = zipfile.ZipFile(io.BytesIO(sent)).namelist()
    assert "docProps/thumbnail.jpeg" not in names and "word/comments.xml" not in names
    assert build.BODY_TEXT in [paragraph.text for paragraph in docx.Document(io.BytesIO(sent)).paragraphs]

    macro = tmp_path / "macro.docx"
    source = zipfile.ZipFile(io.BytesIO(build.face_docx()))
    macro.write_bytes(build.zip_of({name: source.read(name) for name in source.namelist()} | {"word/vbaProject.bin": b"\xd0\xcf\x11\xe0"}))
    before = len(upstream.received)
    refused = curl(proxy_env, "-w", "\n%{http_code}", "https://api.openai.com/v1/files", "-F", "purpose=user_data", "-F", f"file=@{macro}")
    assert refused.stdout.decode().rsplit("\n", 1)[1] == "403" and b"macros" in refused.stdout
    assert len(upstream.received) == before  # nothing reached the service
    again = curl(proxy_env, "https://api.openai.com/v1/files", "-F", "purpose=user_data", "-F", f"file=@{document}")
    assert json.loads(again.stdout)["id"] == "file-1"  # still serving
