"""Documents with people in them, built by the real libraries a user's software resembles:
fpdf2 (PDF), python-docx, python-pptx, openpyxl; every one carries personal metadata and the
astronaut's face photo with GPS coordinates in its EXIF."""

import io
import zipfile

import piexif
import pikepdf
from PIL import Image
from sample_faces import astronaut

AUTHOR = "Jane Q. Example"
COMPANY = "Example Corp Secret Division"
BODY_TEXT = "Quarterly report for the board"


def face_jpeg_with_gps(variant: int = 0) -> bytes:
    """`variant` crops a few pixels differently, so several photos are several images (a PDF
    writer stores identical ones once)."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"PhoneMaker", piexif.ImageIFD.Artist: AUTHOR.encode()},
            "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (0, 1))},
        }
    )
    buffer = io.BytesIO()
    photo = astronaut()
    photo = photo.crop((variant * 4, 0, photo.width, photo.height)) if variant else photo
    photo.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def face_pdf(pages: int = 2, photos: int = 1, incremental: bool = True) -> bytes:
    """Text on every page, `photos` face photos (JPEG, DCTDecode), an Info dictionary, XMP,
    JavaScript on open, an embedded file, a page thumbnail, and an incremental update."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_author(AUTHOR)
    pdf.set_creator(COMPANY)
    pdf.set_font("helvetica", size=14)
    for number in range(pages):
        pdf.add_page()
        pdf.cell(text=f"{BODY_TEXT} page {number + 1}")
        if number < photos:
            pdf.image(io.BytesIO(face_jpeg_with_gps(variant=number)), x=20, y=40, w=120)
    base = bytes(pdf.output())
    with pikepdf.open(io.BytesIO(base)) as document:
        with document.open_metadata() as xmp:
            xmp["dc:creator"] = [AUTHOR]
        document.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('hi')"))
        document.attachments["secret.txt"] = pikepdf.AttachedFileSpec(document, b"salary list")
        thumb = pikepdf.Stream(document, b"\x00" * 12)
        document.pages[0].obj.Thumb = thumb
        document.docinfo["/Company"] = COMPANY
        saved = io.BytesIO()
        document.save(saved, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    if not incremental:
        return saved.getvalue()
    with pikepdf.open(io.BytesIO(saved.getvalue())) as written:  # saving renumbers the objects
        root, size = written.Root.objgen[0], int(written.trailer.Size)
    return with_incremental_update(saved.getvalue(), root, size)


def with_incremental_update(pdf: bytes, root: int, size: int) -> bytes:
    """An appended revision (a new Info naming the author): a reader shows the new one, the
    old bytes stay in the file, as in every PDF edited and saved incrementally."""
    previous = int(pdf[pdf.rindex(b"startxref") + 9 :].split()[0])
    body = f"{size} 0 obj\n<< /Title (Revision two) /Author ({AUTHOR} revised) >>\nendobj\n".encode()
    at = len(pdf)
    xref_at = at + len(body)
    xref = f"xref\n{size} 1\n{at:010d} 00000 n \n".encode()
    trailer = f"trailer\n<< /Size {size + 1} /Root {root} 0 R /Info {size} 0 R /Prev {previous} >>\nstartxref\n{xref_at}\n%%EOF\n"
    return pdf + body + xref + trailer.encode()


def face_docx() -> bytes:
    import docx
    from docx.shared import Inches

    document = docx.Document()
    document.core_properties.author = AUTHOR
    document.core_properties.last_modified_by = AUTHOR
    document.core_properties.comments = "internal"
    paragraph = document.add_paragraph(BODY_TEXT)
    document.add_picture(io.BytesIO(face_jpeg_with_gps()), width=Inches(3))
    document.add_comment(paragraph.runs, text="Check with legal", author=AUTHOR, initials="JQ")
    buffer = io.BytesIO()
    document.save(buffer)
    return _with_tracked_change(_with_app_company(buffer.getvalue()))


def _rewrite_part(package: bytes, name: str, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(package))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, change(data) if info.filename == name else data)
    return output.getvalue()


def _with_app_company(package: bytes) -> bytes:
    return _rewrite_part(package, "docProps/app.xml", lambda xml: xml.replace(b"</Properties>", f"<Company>{COMPANY}</Company></Properties>".encode()))


def _with_tracked_change(package: bytes) -> bytes:
    tracked = (
        f'<w:p><w:r><w:t xml:space="preserve">Kept </w:t></w:r>'
        f'<w:ins w:id="90" w:author="{AUTHOR}" w:date="2024-01-01T00:00:00Z"><w:r w:rsidR="00AB12CD"><w:t>inserted</w:t></w:r></w:ins>'
        f'<w:del w:id="91" w:author="{AUTHOR}" w:date="2024-01-01T00:00:00Z"><w:r><w:delText>deleted secret</w:delText></w:r></w:del></w:p>'
    ).encode()
    return _rewrite_part(package, "word/document.xml", lambda xml: xml.replace(b"<w:sectPr", tracked + b"<w:sectPr", 1))


def face_pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    deck.core_properties.author = AUTHOR
    deck.core_properties.last_modified_by = AUTHOR
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = BODY_TEXT
    slide.shapes.add_picture(io.BytesIO(face_jpeg_with_gps()), Inches(1), Inches(2), width=Inches(3))
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def face_xlsx() -> bytes:
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.drawing.image import Image as SheetImage

    book = openpyxl.Workbook()
    book.properties.creator = AUTHOR
    book.properties.lastModifiedBy = AUTHOR
    sheet = book.active
    sheet["A1"] = BODY_TEXT
    sheet["B2"] = 42
    sheet["A1"].comment = Comment("Ask Jane", AUTHOR)
    sheet.add_image(SheetImage(io.BytesIO(face_jpeg_with_gps())), "D4")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def decoded(image_bytes: bytes) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes))


def face_odt(extra: dict[str, bytes] | None = None) -> bytes:
    """An OpenDocument text as LibreOffice writes one: mimetype first and stored, an author in
    meta.xml, a comment and a tracked deletion naming her, a thumbnail, a printer, the photo."""
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    namespaces = (
        f'xmlns:office="{office}" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
        'xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {namespaces} office:version="1.2"><office:body><office:text>'
        f'<text:tracked-changes><text:changed-region text:id="c1"><text:deletion><office:change-info><dc:creator>{AUTHOR}</dc:creator>'
        f'<dc:date>2024-01-01T00:00:00</dc:date></office:change-info><text:p>deleted secret</text:p></text:deletion></text:changed-region></text:tracked-changes>'
        f'<text:p>{BODY_TEXT[:10]}<office:annotation><dc:creator>{AUTHOR}</dc:creator><text:p>Check with legal</text:p></office:annotation>'
        f'{BODY_TEXT[10:]}<text:change text:change-id="c1"/></text:p>'
        '<text:p><draw:frame><draw:image xlink:href="Pictures/face.jpg" xlink:type="simple"/></draw:frame></text:p>'
        "</office:text></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        + "".join(
            f'<manifest:file-entry manifest:full-path="{path}" manifest:media-type="{kind}"/>'
            for path, kind in (("/", "application/vnd.oasis.opendocument.text"), ("content.xml", "text/xml"), ("meta.xml", "text/xml"),
                               ("settings.xml", "text/xml"), ("Pictures/face.jpg", "image/jpeg"), ("Thumbnails/thumbnail.png", "image/png"))
        )
        + "</manifest:manifest>"
    )  # fmt: skip
    meta = f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {namespaces} office:version="1.2"><office:meta><meta:initial-creator>{AUTHOR}</meta:initial-creator><dc:creator>{AUTHOR}</dc:creator></office:meta></office:document-meta>'
    settings = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-settings {namespaces} office:version="1.2"><office:settings>'
        f'<config:config-item-set config:name="ooo:configuration-settings"><config:config-item config:name="PrinterName" config:type="string">{COMPANY} 3rd floor</config:config-item>'
        "</config:config-item-set></office:settings></office:document-settings>"
    )
    thumbnail = io.BytesIO()
    astronaut().resize((64, 64)).save(thumbnail, "PNG")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        for name, data in {"content.xml": content, "META-INF/manifest.xml": manifest, "meta.xml": meta, "settings.xml": settings,
                           "Pictures/face.jpg": face_jpeg_with_gps(), "Thumbnails/thumbnail.png": thumbnail.getvalue(), **(extra or {})}.items():  # fmt: skip
            archive.writestr(name, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
