"""Documents through the whole pipeline: found in every envelope, cleaned (or blocked, or
passed) as the rule's `documents` says, and the egress scan accounts for every image Veil
wrote inside them."""

import base64
import io
import json
import zipfile

import documents_builders as build
import pikepdf
import pytest
from veil import audit
from veil.clean.core import sanitise
from veil.clean.options import FaceMode, SanitiseOptions
from veil.policy import load_policy_text
from veil.proxy import egress, egress_check, pipeline

POLICY = """
version: 1
services:
  svc:
    hosts: [api.example.com]
    rules:
      - {name: clean, paths: ["/clean"]}
      - {name: refuse-docs, paths: ["/refuse"], documents: block}
      - {name: pass-docs, paths: ["/pass"], documents: allow}
      - {name: few-pages, paths: ["/few"], limits: {max_document_pages: 1}}
"""
FACTS = audit.RequestFacts("127.0.0.1", "alice", "svc", "clean", "POST", "https://api.example.com/clean")


def decide(path: str, body: bytes, content_type: str) -> pipeline.Decision:
    match = load_policy_text(POLICY).match("api.example.com", path, "POST")
    request = pipeline.Request("POST", path, {"content-type": content_type}, body, FACTS)
    return pipeline.run_examine(request, match)


@pytest.fixture(scope="module")
def face_pdf() -> bytes:
    return build.face_pdf(pages=2, photos=1)


def anthropic_document(pdf: bytes) -> bytes:
    source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()}
    return json.dumps({"messages": [{"role": "user", "content": [{"type": "document", "source": source}]}]}).encode()


def openai_file_part(pdf: bytes) -> bytes:
    part = {"type": "file", "file": {"filename": "cv.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}}
    return json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}).encode()


def responses_input_file(pdf: bytes) -> bytes:
    part = {"type": "input_file", "filename": "cv.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}
    return json.dumps({"model": "gpt-4o", "input": [{"role": "user", "content": [part]}]}).encode()


def gemini_inline_data(pdf: bytes) -> bytes:
    inline = {"inlineData": {"mimeType": "application/pdf", "data": base64.urlsafe_b64encode(pdf).decode()}}
    return json.dumps({"contents": [{"role": "user", "parts": [inline, {"text": "Summarise"}]}]}).encode()


def leaving_pdf(decision: pipeline.Decision) -> bytes:
    """The longest string in the JSON that leaves, decoded (data URL or bare, either alphabet)."""
    strings = []

    def walk(node):
        if isinstance(node, dict):
            [walk(value) for value in node.values()]
        elif isinstance(node, list):
            [walk(value) for value in node]
        elif isinstance(node, str):
            strings.append(node)

    walk(json.loads(decision.new_body))
    encoded = max(strings, key=len).split(",", 1)[-1]
    return base64.urlsafe_b64decode(encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4))


@pytest.mark.parametrize(
    "envelope",
    [anthropic_document, openai_file_part, responses_input_file, gemini_inline_data],
    ids=["anthropic-document", "openai-file", "responses-input-file", "gemini-inline-data"],
)
def test_a_pdf_in_json_leaves_clean_and_passes_the_egress_scan(face_pdf, envelope):
    decision = decide("/clean", envelope(face_pdf), "application/json")
    assert decision.refusal is None, decision.refusal and decision.refusal.reason
    (record,) = [record for record in decision.records if record["event"] == "sanitised"]
    assert record["format"] == "pdf" and record["faces"] >= 1
    cleaned = leaving_pdf(decision)
    assert build.AUTHOR.encode() not in cleaned
    with pikepdf.open(io.BytesIO(cleaned)) as pdf:
        assert len(pdf.pages) == 2 and "/Info" not in pdf.trailer


def test_a_docx_in_a_multipart_upload_is_cleaned():
    docx = build.face_docx()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="cv.docx"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + docx + b"\r\n--b--\r\n"
    )
    decision = decide("/clean", body, "multipart/form-data; boundary=b")
    assert decision.refusal is None, decision.refusal and decision.refusal.reason
    start = decision.new_body.index(b"PK\x03\x04")
    cleaned = zipfile.ZipFile(io.BytesIO(decision.new_body[start : decision.new_body.rindex(b"\r\n--b--")]))
    assert "docProps/thumbnail.jpeg" not in cleaned.namelist()


def test_a_raw_pdf_put_is_cleaned(face_pdf):
    decision = decide("/clean", face_pdf, "application/octet-stream")
    assert decision.refusal is None and decision.new_body.startswith(b"%PDF-")
    assert b"/OpenAction" not in decision.new_body


def test_documents_block_refuses_and_allow_passes_with_a_record(face_pdf):
    refused = decide("/refuse", anthropic_document(face_pdf), "application/json")
    assert refused.refusal and "blocks documents" in refused.refusal.reason
    passed = decide("/pass", anthropic_document(face_pdf), "application/json")
    assert passed.refusal is None and passed.new_body is None
    assert [record["event"] for record in passed.records] == ["passed"]


def test_a_document_over_the_rules_limits_is_refused_readably(face_pdf):
    decision = decide("/few", anthropic_document(face_pdf), "application/json")
    assert decision.refusal and "pages" in decision.refusal.reason


def test_an_encrypted_pdf_is_refused_not_passed():
    with pikepdf.open(io.BytesIO(build.face_pdf(pages=1, photos=1, incremental=False))) as pdf:
        locked = io.BytesIO()
        pdf.save(locked, encryption=pikepdf.Encryption(user="pw", owner="pw"))
    decision = decide("/clean", anthropic_document(locked.getvalue()), "application/json")
    assert decision.refusal and "encrypted" in decision.refusal.reason


def test_egress_accounts_for_the_images_inside_a_cleaned_document_and_only_those():
    result = sanitise(build.face_docx(), SanitiseOptions(faces=FaceMode.OFF))
    judged = egress_check.judge(result.data, list(result.embedded_outputs) + [result.data], "block", True, documents_cleaned=True)
    assert judged.refusal is None
    # The same document with its photo as uploaded (not Veil's output) is refused.
    original = egress_check.judge(build.face_docx(), [result.data], "block", True, documents_cleaned=True)
    assert original.refusal and "did not clean" in original.refusal


def test_a_cleaned_pdfs_image_xobjects_are_all_accounted_for(face_pdf):
    result = sanitise(face_pdf)
    found = egress.scan(result.data)
    assert found.of_kind("image")
    assert egress.unaccounted(found, result.embedded_outputs, documents_cleaned=True) == []


def test_a_pdf_with_a_flate_photo_is_cleaned_and_accounted_for():
    from fpdf import FPDF
    from sample_faces import astronaut

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text=build.BODY_TEXT)
    png = io.BytesIO()
    astronaut().save(png, "PNG")
    document.image(png, x=10, y=30, w=100)  # fpdf2 stores PNG pixels with FlateDecode
    result = sanitise(bytes(document.output()))
    assert result.report.faces
    found = egress.scan(result.data)
    assert any(finding.format == "pdf-image" for finding in found.of_kind("image"))
    assert egress.unaccounted(found, result.embedded_outputs, documents_cleaned=True) == []
    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        (image,) = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"]
        pixels = pikepdf.PdfImage(image).as_pil_image().convert("RGB")
    from veil.clean.faces import default_detector
    from veil.clean.options import DetectionSettings

    assert default_detector().detect(pixels, DetectionSettings()) == []


def test_the_policy_keeps_comments_drops_macros_and_keeps_unknown_members_when_told():
    policy = load_policy_text(
        'version: 1\nservices:\n  svc:\n    hosts: [api.example.com]\n'
        "    document_comments: keep\n    office_macros: drop\n    unknown_members: keep\n"
    )
    options = policy.match("api.example.com", "/x", "POST").rule.sanitise_options().documents
    assert (options.keep_comments, options.macros, options.unknown_members) == (True, "drop", "keep")
    source = zipfile.ZipFile(io.BytesIO(build.face_docx()))
    with_macros = build.zip_of({name: source.read(name) for name in source.namelist()} | {"word/vbaProject.bin": b"\xd0\xcf\x11\xe0"})
    request = pipeline.Request("POST", "/x", {"content-type": "application/octet-stream"}, with_macros, FACTS)
    decision = pipeline.run_examine(request, policy.match("api.example.com", "/x", "POST"))
    assert decision.refusal is None, decision.refusal and decision.refusal.reason
    names = zipfile.ZipFile(io.BytesIO(decision.new_body)).namelist()
    assert "word/vbaProject.bin" not in names and "word/comments.xml" in names
