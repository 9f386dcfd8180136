"""Hostile documents are refused with a readable reason, within the limits, before anything
is inflated or parsed that could exhaust the machine; nothing partial comes back."""

import io
import tarfile
import time
import zipfile

import documents_builders as build
import pikepdf
import pytest
from veil.clean.core import sanitise
from veil.clean.errors import LengthNotPreserved, MalformedImage, SanitiseError, TooLarge, UnsupportedFormat
from veil.clean.options import DocumentLimits, FaceMode, SanitiseOptions

FAST = SanitiseOptions(faces=FaceMode.OFF)


def refused(data: bytes, options: SanitiseOptions = FAST) -> SanitiseError:
    started = time.perf_counter()
    with pytest.raises(SanitiseError) as caught:
        sanitise(data, options)
    assert time.perf_counter() - started < 10
    assert caught.value.reason and len(caught.value.reason) < 400
    return caught.value


def small_pdf() -> bytes:
    return build.face_pdf(pages=1, photos=0, incremental=False)


def test_password_protected_pdf_is_refused():
    with pikepdf.open(io.BytesIO(small_pdf())) as pdf:
        locked = io.BytesIO()
        pdf.save(locked, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    error = refused(locked.getvalue())
    assert isinstance(error, UnsupportedFormat) and "encrypted" in error.reason


def test_pdf_encrypted_without_a_user_password_is_cleaned_and_saved_plain():
    with pikepdf.open(io.BytesIO(build.face_pdf(pages=1, photos=1, incremental=False))) as pdf:
        locked = io.BytesIO()
        pdf.save(locked, encryption=pikepdf.Encryption(user="", owner="owner"))
    result = sanitise(locked.getvalue(), FAST)
    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        assert not pdf.is_encrypted and "/Info" not in pdf.trailer


def test_truncated_pdf_is_cleaned_whole_or_refused_never_half():
    data = build.face_pdf(pages=2, photos=1, incremental=False)
    try:
        result = sanitise(data[: len(data) // 3], FAST)
    except SanitiseError as error:
        assert isinstance(error, (MalformedImage, UnsupportedFormat))
    else:  # qpdf can rebuild a damaged xref: then the output must be fully clean
        assert build.AUTHOR.encode() not in result.data


def test_pdf_with_too_many_objects_is_refused_before_parsing():
    many = b"%PDF-1.4\n" + b"".join(b"%d 0 obj\nnull\nendobj\n" % number for number in range(1, 300_001))
    error = refused(many)
    assert isinstance(error, TooLarge) and "objects" in error.reason


def test_pdf_with_too_many_pages_is_refused():
    error = refused(build.face_pdf(pages=3, photos=0, incremental=False), SanitiseOptions(faces=FaceMode.OFF, documents=DocumentLimits(max_pages=2)))
    assert isinstance(error, TooLarge) and "pages" in error.reason


def test_self_referencing_page_tree_is_refused():
    data = small_pdf()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pages = pdf.Root.Pages
        pages.Kids.append(pages)  # the tree contains itself
        pages.Count = 2
        looped = io.BytesIO()
        pdf.save(looped)
    try:
        result = sanitise(looped.getvalue(), FAST)
    except SanitiseError as error:
        assert isinstance(error, (MalformedImage, TooLarge))
    else:  # qpdf repairs the loop by dropping the repeated node: fine, if the output is clean
        with pikepdf.open(io.BytesIO(result.data)) as pdf:
            assert len(pdf.pages) == 1


def test_javascript_in_a_link_annotation_is_made_inert():
    with pikepdf.open(io.BytesIO(small_pdf())) as pdf:
        action = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.launchURL('http://x')"))
        link = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], A=action))
        pdf.pages[0].obj.Annots = pikepdf.Array([link])
        scripted = io.BytesIO()
        pdf.save(scripted)
    result = sanitise(scripted.getvalue(), FAST)
    assert b"launchURL" not in result.data and b"JavaScript" not in result.data
    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        (kept,) = pdf.pages[0].obj.Annots  # the link stays, without its script
        assert kept.Subtype == "/Link" and "/A" not in kept


def docx_with(name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(build.face_docx()))
    members = {info.filename: source.read(info) for info in source.infolist()}
    members[name] = content
    return build.zip_of(members)


def test_office_macros_are_refused():
    error = refused(docx_with("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro"))
    assert isinstance(error, UnsupportedFormat) and "macros" in error.reason


def test_office_macros_are_dropped_when_the_options_say_so():
    result = sanitise(docx_with("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro"), SanitiseOptions(faces=FaceMode.OFF, documents=DocumentLimits(macros="drop")))
    names = zipfile.ZipFile(io.BytesIO(result.data)).namelist()
    assert "word/vbaProject.bin" not in names and "word/document.xml" in names
    assert "part:word/vbaProject.bin" in result.report.metadata_removed


def test_office_unknown_part_is_refused():
    error = refused(docx_with("word/embeddings/oleObject1.bin", b"\xd0\xcf\x11\xe0 ole"))
    assert "does not know" in error.reason


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><w:document xmlns:w="x">&b;</w:document>',
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "http://127.0.0.1:9/steal">]><w:document xmlns:w="x">&e;</w:document>',
    ],
    ids=["entity-expansion", "external-entity"],
)
def test_xml_entities_are_refused(xml):
    error = refused(docx_with("word/document.xml", xml))
    assert "DTD" in error.reason


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.jpg", b"\x00" * (50 * 1024 * 1024))
    return buffer.getvalue()


def test_zip_bomb_is_refused_from_its_directory():
    error = refused(zip_bomb())
    assert isinstance(error, TooLarge) and "inflates" in error.reason


def test_zip_over_the_total_inflated_size_is_refused():
    error = refused(zip_bomb(), SanitiseOptions(faces=FaceMode.OFF, documents=DocumentLimits(max_inflated_bytes=1024)))
    assert isinstance(error, TooLarge)


@pytest.mark.parametrize("name", ["../../etc/cron.d/x.jpg", "/abs/x.jpg", "C:/x.jpg", "a/../../x.jpg"])
def test_path_traversal_names_are_refused(name):
    error = refused(build.zip_of({name: build.face_jpeg_with_gps()}))
    assert "outside" in error.reason


def test_symlinks_are_refused_in_zip_and_tar():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link.jpg")
        link.create_system, link.external_attr = 3, (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in refused(buffer.getvalue()).reason
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w") as archive:
        info = tarfile.TarInfo("link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    assert "link" in refused(tar_buffer.getvalue()).reason


def test_deeply_nested_archives_are_refused():
    data = build.zip_of({"me.jpg": build.face_jpeg_with_gps()})
    for level in range(5):
        data = build.zip_of({f"level{level}.zip": data})
    assert "nested" in refused(data).reason


def test_unknown_members_block_by_default_and_are_kept_when_the_policy_says():
    data = build.zip_of({"notes.txt": b"hello", "me.jpg": build.face_jpeg_with_gps()})
    assert "notes.txt" in refused(data).reason
    kept = sanitise(data, SanitiseOptions(faces=FaceMode.OFF, documents=DocumentLimits(unknown_members="keep")))
    archive = zipfile.ZipFile(io.BytesIO(kept.data))
    assert archive.read("notes.txt") == b"hello" and archive.read("me.jpg") in kept.embedded_outputs


def test_tar_is_cleaned_with_owners_and_times_gone():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        photo = build.face_jpeg_with_gps()
        info = tarfile.TarInfo("me.jpg")
        info.size, info.uname, info.mtime = len(photo), "jane", 1_700_000_000
        archive.addfile(info, io.BytesIO(photo))
    result = sanitise(buffer.getvalue(), FAST)
    (member,) = tarfile.open(fileobj=io.BytesIO(result.data)).getmembers()
    assert (member.uname, member.mtime) == ("", 0)
    assert b"jane" not in result.data and b"PhoneMaker" not in result.data


def test_legacy_office_and_gzip_are_refused_by_name():
    assert "OLE2" in refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600).reason
    assert "gzip" in refused(b"\x1f\x8b\x08\x00" + b"\x00" * 100).reason


def test_odf_macros_are_refused():
    odt = build.face_odt(extra={"Basic/Standard/Module1.xml": b"<script/>"})
    assert "macros" in refused(odt).reason


def test_a_declared_length_cannot_be_kept_for_documents():
    with pytest.raises(LengthNotPreserved):
        sanitise(small_pdf(), SanitiseOptions(faces=FaceMode.OFF, preserve_length=True))
