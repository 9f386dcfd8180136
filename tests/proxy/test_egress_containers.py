"""Containers are opened, not trusted: documents and archives holding photos are reported
with what they hold, and what cannot be opened is reported as opaque with a reason."""

import base64
import bz2
import gzip
import io
import lzma
import re
import tarfile
import zipfile
import zlib

from test_egress_samples import chat_body, clean_jpeg, dirty_image, zip_of

from veil.proxy.egress import ScanLimits, scan, unaccounted

PHOTO = dirty_image("JPEG")


def only(findings: list, **expected) -> object:
    matching = [finding for finding in findings if all(getattr(finding, key) == value for key, value in expected.items())]
    assert len(matching) == 1, f"expected one finding with {expected}, got {findings}"
    return matching[0]


def docx_like(media: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    members = {
        "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "word/document.xml": b"<w:document><w:body><w:p><w:r><w:t>Holiday report</w:t></w:r></w:p></w:body></w:document>" * 20,
    }
    return zip_of(members | media, compression)


def test_a_docx_holding_photos_is_a_document_with_images():
    body = b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + docx_like({"word/media/image1.jpeg": PHOTO}) + b"\r\n--b--"
    result = scan(body)
    document = only(result.findings, kind="document", format="docx")
    assert document.images_inside == 1
    image = only(result.findings, kind="image")
    assert image.location == f"zip at byte {body.index(b'PK'):,} → zip member word/media/image1.jpeg → jpeg at byte 0"
    assert bytes(image.image) == PHOTO
    assert {finding.kind for finding in unaccounted(result, [])} == {"document", "image"}


def test_stored_and_deflated_members_are_both_opened():
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        archive = zip_of({f"photos/{n}.png": dirty_image("PNG", seed=n) for n in range(3)}, compression)
        result = scan(archive)
        assert only(result.findings, kind="document", format="zip").images_inside == 3
        assert len(result.of_kind("image")) == 3


def test_an_odf_document_is_named_by_its_mimetype():
    archive = zip_of({"mimetype": b"application/vnd.oasis.opendocument.text", "Pictures/1.jpg": PHOTO}, zipfile.ZIP_STORED)
    assert only(scan(archive).findings, kind="document").format == "odf"


def test_a_document_without_images_is_reported_but_not_unaccounted():
    result = scan(docx_like({}))
    assert only(result.findings, kind="document", format="docx").images_inside == 0
    assert unaccounted(result, []) == []


def test_base64_of_a_gzip_of_a_zip_holding_a_jpeg():
    nested = base64.b64encode(gzip.compress(zip_of({"a/b/photo.jpg": PHOTO}), mtime=0))
    result = scan(chat_body(nested))
    image = only(result.findings, kind="image")
    assert image.location.startswith("base64 at byte ") and image.location.endswith(
        "→ gzip at byte 0 → zip at byte 0 → zip member a/b/photo.jpg → jpeg at byte 0"
    )
    assert bytes(image.image) == PHOTO
    assert {finding.format for finding in result.of_kind("document")} == {"gzip", "zip"}


def test_a_gzip_of_several_members_is_read_to_its_end():
    body = gzip.compress(b"first member " * 10, mtime=0) + gzip.compress(PHOTO, mtime=0)
    assert bytes(only(scan(b"prefix" + body).findings, kind="image").image) == PHOTO


def test_a_tar_member_is_opened():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("holiday/photo.jpg")
        info.size = len(PHOTO)
        archive.addfile(info, io.BytesIO(PHOTO))
    result = scan(gzip.compress(buffer.getvalue(), mtime=0))
    assert only(result.findings, kind="image").location == "gzip at byte 0 → tar at byte 0 → tar member holiday/photo.jpg → jpeg at byte 0"
    assert only(result.findings, kind="document", format="tar").images_inside == 1


# ---------------------------------------------------------------------------------------
# What cannot be opened


def encrypted(archive: bytes) -> bytes:
    """Set the 'encrypted' flag of every local header and central directory entry (zipfile
    cannot write encrypted archives; the flag is what readers go by)."""
    patched = bytearray(archive)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = patched.find(signature)
        while at >= 0:
            patched[at + flag_offset] |= 0x01
            at = patched.find(signature, at + 4)
    return bytes(patched)


def test_an_encrypted_zip_member_is_opaque():
    result = scan(encrypted(zip_of({"secret.jpg": PHOTO})))
    opaque = only(result.findings, kind="opaque")
    assert (opaque.format, opaque.location, opaque.reason) == ("zip", "zip at byte 0 → zip member secret.jpg", "the member is encrypted")
    assert opaque in unaccounted(result, [])


def test_a_zip_bomb_stops_at_the_ratio_limit():
    bomb = zip_of({"zeros.bin": bytes(64 * 1024 * 1024)})
    assert len(bomb) < 100_000
    result = scan(bomb)
    opaque = only(result.findings, kind="opaque")
    assert "100:1" in opaque.reason and opaque.location == "zip at byte 0 → zip member zeros.bin"
    assert result.decoded_bytes < 4 * 1024 * 1024, "the bomb was stopped early, not decompressed and judged"


def test_the_decoded_bytes_budget_is_shared_by_the_whole_scan():
    members = {f"part{n}.bin": bytes(range(256)) * 4096 for n in range(4)}  # 1 MiB each, ratio ~ 250:1 at most
    result = scan(zip_of(members), limits=ScanLimits(max_decoded_bytes=3 * 1024 * 1024, max_ratio=10_000))
    assert any("limit of 3,145,728 decoded bytes" in finding.reason for finding in result.of_kind("opaque"))
    assert result.decoded_bytes <= 3 * 1024 * 1024 + 1024 * 1024


def test_too_many_members_are_reported():
    result = scan(zip_of({f"{n}.txt": b"x" for n in range(20)}), limits=ScanLimits(max_members=5))
    assert "more than 5 archive members" in only(result.findings, kind="opaque").reason


def test_an_unknown_compression_method_is_opaque():
    archive = bytearray(zip_of({"photo.jpg": PHOTO}, zipfile.ZIP_STORED))
    archive[8] = 99  # AES, which Veil does not open
    assert "compression method 99" in only(scan(bytes(archive)).findings, kind="opaque").reason


# ---------------------------------------------------------------------------------------
# PDF


def pdf(objects: list[bytes], trailer: bytes = b"<< /Root 1 0 R >>") -> bytes:
    body = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    for number, content in enumerate(objects, start=1):
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    return body + b"trailer\n" + trailer + b"\n%%EOF\n"


def image_xobject(data: bytes, filters: bytes, width: int = 48, height: int = 32) -> bytes:
    dictionary = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter %s /Length %d >>"
    )
    return dictionary % (width, height, filters, len(data)) + b"\nstream\n" + data + b"\nendstream"


def test_a_pdf_with_a_dctdecode_image_holds_the_jpeg():
    document = pdf([b"<< /Type /Catalog >>", image_xobject(PHOTO, b"/DCTDecode")])
    result = scan(document)
    image = only(result.findings, kind="image", format="jpeg")
    assert image.location == "pdf at byte 0 → object 2 stream → jpeg at byte 0"
    assert bytes(image.image) == PHOTO
    assert only(result.findings, kind="document", format="pdf").images_inside == 1


def test_a_pdf_with_a_flatedecoded_image_holds_raw_pixels():
    pixels = bytes(range(256)) * (48 * 32 * 3 // 256)
    document = pdf([b"<< /Type /Catalog >>", image_xobject(zlib.compress(pixels), b"[/FlateDecode]")])
    result = scan(document)
    image = only(result.findings, kind="image", format="pdf-image")
    assert bytes(image.image) == pixels
    assert image in unaccounted(result, [])


def test_a_pdf_with_a_jpeg_flated_inside_a_content_stream_is_found():
    attachment = zlib.compress(PHOTO)
    document = pdf([b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n" % len(attachment) + attachment + b"\nendstream"])
    assert bytes(only(scan(document).findings, kind="image").image) == PHOTO


def test_many_pdf_headers_are_walked_once_not_once_each():
    document = pdf([b"<< /Length 3 >>\nstream\nabc\nendstream"] * 20)
    result = scan(document * 300)  # 300 "%PDF-", 6,000 streams: quadratic would take minutes
    assert result.of_kind("opaque") == []
    assert len(result.of_kind("document")) == 1


def test_an_encrypted_pdf_is_opaque():
    document = pdf([b"<< /Type /Catalog >>", image_xobject(b"\x93" * 500, b"/DCTDecode")], trailer=b"<< /Root 1 0 R /Encrypt 3 0 R >>")
    assert "encrypted" in only(scan(document).findings, kind="opaque").reason


def test_a_pdf_stream_with_a_filter_veil_does_not_decode_is_opaque():
    document = pdf([b"<< /Filter /LZWDecode /Length 3 >>\nstream\nabc\nendstream"])
    assert "/LZWDecode" in only(scan(document).findings, kind="opaque").reason


def test_a_document_holding_even_a_produced_image_is_unaccounted():
    """Documents are not cleaned yet: one that holds an image is refused, whatever image."""
    produced = clean_jpeg()
    result = scan(docx_like({"word/media/image1.jpeg": produced}))
    (leak,) = unaccounted(result, [produced])
    assert (leak.kind, leak.format, leak.images_inside) == ("document", "docx", 1)


# ---------------------------------------------------------------------------------------
# Other compressions and archives


def test_compressed_then_base64_is_found_for_zlib_bzip2_and_xz():
    for name, compress in (("zlib", zlib.compress), ("bzip2", bz2.compress), ("xz", lzma.compress)):
        result = scan(chat_body(b"+++++" + base64.b64encode(compress(PHOTO))))  # stray characters in front, too
        image = only(result.findings, kind="image")
        assert re.search(rf"→ {name} at byte [0-3] → jpeg at byte 0$", image.location) and bytes(image.image) == PHOTO
        assert only(result.findings, kind="document").format == name


def test_a_7z_rar_or_ole_file_is_opaque():
    for magic, name in (
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    ):
        opaque = only(scan(b"upload:" + magic + bytes(200)).findings, kind="opaque")
        assert (opaque.format, opaque.location) == (name, f"{name} at byte 7")


def test_a_video_is_opaque_not_ignored():
    mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free" + bytes(300)
    opaque = only(scan(b"--b\r\n\r\n" + mp4).findings, kind="opaque")
    assert (opaque.format, opaque.location) == ("iso-media", "iso-media at byte 7") and "'isom'" in opaque.reason
