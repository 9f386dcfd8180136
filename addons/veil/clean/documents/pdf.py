"""PDF: the document stays a document (text, fonts, vectors, pages); what names people or
acts on its own goes; every image XObject goes through the image core.

Removed: the Info dictionary, every XMP /Metadata stream, document and page actions
(OpenAction, AA), JavaScript and embedded files (the Names tree keeps only Dests), file
attachment and media annotations, annotation authors, page thumbnails, PieceInfo,
XFA forms. Written by qpdf as a fresh, non-incremental file: older revisions are gone.

Images: a DCTDecode image is a JPEG and is cleaned as one (its exact output is written back
as the stream). Any other image is decoded, searched for faces, and only when faces are
found written back as 8-bit Flate pixels with the faces masked. Never rasterised.
"""

import io
import zlib

import pikepdf
from PIL import Image

from ..errors import MalformedImage, TooLarge, UnsupportedFormat
from .base import Container, Embedded

_ROOT_REMOVED = ("/OpenAction", "/AF", "/AA", "/Metadata", "/PieceInfo", "/SpiderInfo", "/Perms", "/Collection", "/Threads", "/URI")
_PAGE_REMOVED = ("/Thumb", "/AA", "/PieceInfo", "/Metadata", "/LastModified")
_ACTIVE_ANNOTATIONS = {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/ResetForm", "/Rendition", "/GoToE"}
_ANNOTATION_PERSONAL = ("/T", "/M", "/CreationDate", "/RC", "/Popup", "/IRT", "/AA")
_GENERALIZED = {"/FlateDecode", "/LZWDecode", "/ASCII85Decode", "/ASCIIHexDecode", "/RunLengthDecode"}


class Pdf(Container):
    name = "pdf"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head.lstrip(b"\x00\t\n\r ").startswith(b"%PDF-")

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        limits = embedded.options.documents
        _admit(data, limits)
        pdf = _open(data)
        with pdf:
            if len(pdf.objects) > limits.max_objects:
                raise TooLarge(f"the PDF has {len(pdf.objects):,} objects; the limit is {limits.max_objects:,}")
            pages = _pages(pdf, limits.max_pages)
            removed = _strip_document(pdf) + _strip_pages(pages)
            for number, page in enumerate(pages, 1):
                _refuse_large_inline_images(page, number)
            removed += _clean_images(pdf, embedded)
            output = io.BytesIO()
            pdf.save(output, linearize=False, deterministic_id=True, fix_metadata_version=False, qdf=False)
        embedded.outputs.extend(_images_as_written(output.getvalue()))
        return output.getvalue(), removed

    def findings(self, data: bytes) -> list[str]:
        left = []
        with _open(data) as pdf:
            root = pdf.Root
            if "/Info" in pdf.trailer and len(pdf.trailer.Info.keys()):
                left.append("an Info dictionary")
            left += [f"the document's {key}" for key in _ROOT_REMOVED if key in root]
            names = root.get("/Names")
            if names is not None and any(key in names for key in ("/JavaScript", "/EmbeddedFiles")):
                left.append("JavaScript or embedded files")
            for obj in (inner for top in pdf.objects for inner in dictionaries_within(top)):
                left += _object_findings(obj)
            for page in pdf.pages:
                left += [f"a page's {key}" for key in _PAGE_REMOVED if key in page.obj]
        return sorted(set(left))


def _object_findings(obj) -> list[str]:
    left = ["an XMP metadata stream"] if "/Metadata" in obj else []
    if obj.get("/S") in _ACTIVE_ACTIONS:
        left.append(f"a {obj.get('/S')} action")
    if obj.get("/Type") == "/Filespec" and "/EF" in obj:
        left.append("an embedded file")
    return left


_TEXT_FILTERS = {"/FlateDecode", "/ASCIIHexDecode", "/ASCII85Decode"}


def _images_as_written(data: bytes) -> list[bytes]:
    """Every image XObject of the output as a scan of the bytes meets it: after the text and
    Flate filters, the JPEG (which the image core wrote) or the pixels (searched for faces
    above). A proxy's egress check knows them by these bytes."""
    views = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image":
                filters = _filters(obj)
                decodable = [name for name in filters if name in _TEXT_FILTERS]
                if filters[: len(decodable)] != decodable:
                    continue  # a text filter after a codec: no scan decodes that
                views.append(obj.read_bytes(pikepdf.StreamDecodeLevel.generalized) if decodable else obj.read_raw_bytes())
    return views


def _admit(data: bytes, limits) -> None:
    """Cheap bounds before qpdf parses anything: a million tiny objects cost memory to index."""
    declared = data.count(b" obj")
    if declared > limits.max_objects:
        raise TooLarge(f"the PDF declares about {declared:,} objects; the limit is {limits.max_objects:,}")


def _open(data: bytes) -> pikepdf.Pdf:
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise UnsupportedFormat("the PDF is encrypted with a password; Veil cannot look inside it, so it is refused") from None
    except pikepdf.PdfError as error:
        raise MalformedImage(f"the PDF cannot be read: {str(error).splitlines()[0][:160]}") from None
    if pdf.is_encrypted and not pdf.allow.modify_other:
        pdf.close()
        raise UnsupportedFormat("the PDF is encrypted and does not permit changes; it is refused")
    return pdf  # opened without a password: saved without encryption, cleaned like any other


def _pages(pdf: pikepdf.Pdf, max_pages: int) -> list[pikepdf.Page]:
    try:
        count = len(pdf.pages)
        if count > max_pages:
            raise TooLarge(f"the PDF has {count:,} pages; the limit is {max_pages:,}")
        return list(pdf.pages)
    except (pikepdf.PdfError, RecursionError, RuntimeError) as error:
        raise MalformedImage(f"the PDF's page tree cannot be read ({type(error).__name__})") from None


def _strip_document(pdf: pikepdf.Pdf) -> list[str]:
    removed = []
    if "/Info" in pdf.trailer:
        removed += [f"info:{key[1:]}" for key in pdf.trailer.Info]
        del pdf.trailer["/Info"]
    root = pdf.Root
    for key in _ROOT_REMOVED:
        if key in root:
            del root[key]
            removed.append(f"document:{key[1:]}")
    removed += _strip_names(root)
    if "/AcroForm" in root and "/XFA" in root.AcroForm:
        del root.AcroForm["/XFA"]
        removed.append("document:XFA")
    for obj in pdf.objects:
        for dictionary in dictionaries_within(obj):
            removed += _strip_object(dictionary)
    return removed


def dictionaries_within(obj, depth: int = 0):
    """`obj` and the direct dictionaries nested in it (an annotation's action, an outline
    item's): indirect ones are objects of their own and are visited as such."""
    if depth > 32:
        raise MalformedImage("the PDF nests its dictionaries too deeply")
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
        yield obj
        children = obj.values()
    elif isinstance(obj, pikepdf.Array):
        children = list(obj)
    else:
        return
    for child in children:
        if isinstance(child, (pikepdf.Dictionary, pikepdf.Array)) and not child.is_indirect:
            yield from dictionaries_within(child, depth + 1)


def _strip_names(root) -> list[str]:
    names = root.get("/Names")
    if names is None:
        return []
    removed = []
    for key in list(names.keys()):
        if key != "/Dests":  # named destinations are navigation; everything else can act or carry files
            del names[key]
            removed.append(f"names:{key[1:]}")
    return removed


def _strip_object(obj) -> list[str]:
    removed = []
    for key in ("/Metadata", "/PieceInfo", "/LastModified"):
        if key in obj:
            del obj[key]
            removed.append(f"object:{key[1:]}")
    for key in ("/A", "/Next", "/PA"):  # a link, outline item or chained action that runs code: unlinked
        value = obj.get(key)
        if isinstance(value, pikepdf.Dictionary) and value.get("/S") in _ACTIVE_ACTIONS:
            del obj[key]
            removed.append(f"action:{str(value.S)[1:]}")
    if "/AA" in obj:  # additional actions are triggers (on open, on focus, on keystroke…)
        del obj["/AA"]
        removed.append("action:AA")
    if obj.get("/S") in _ACTIVE_ACTIONS:  # one left hanging elsewhere (an array of /Next): made inert
        obj.S = pikepdf.Name("/GoTo") if "/D" in obj else pikepdf.Name("/Named")
        for key in ("/JS", "/F", "/Win", "/Mac", "/Unix", "/Fields"):
            if key in obj:
                del obj[key]
        if "/N" not in obj and obj.S == "/Named":
            obj.N = pikepdf.Name("/NextPage")
        removed.append("action:active")
    if obj.get("/Type") == "/Filespec" and "/EF" in obj:
        del obj["/EF"]
        removed.append("embedded_file")
    return removed


def _strip_pages(pages: list[pikepdf.Page]) -> list[str]:
    removed = []
    for page in pages:
        for key in _PAGE_REMOVED:
            if key in page.obj:
                del page.obj[key]
                removed.append(f"page:{key[1:]}")
        removed += _strip_annotations(page)
    return removed


def _strip_annotations(page: pikepdf.Page) -> list[str]:
    annotations = page.obj.get("/Annots")
    if annotations is None:
        return []
    removed, kept = [], pikepdf.Array()
    for annotation in annotations:
        if annotation.get("/Subtype") in _ACTIVE_ANNOTATIONS or annotation.get("/Subtype") == "/Popup":
            removed.append(f"annotation:{str(annotation.get('/Subtype'))[1:]}")
            continue
        for key in _ANNOTATION_PERSONAL:
            if key in annotation:
                del annotation[key]
                removed.append(f"annotation:{key[1:]}")
        kept.append(annotation)
    page.obj.Annots = kept
    return removed


def _refuse_large_inline_images(page: pikepdf.Page, number: int) -> None:
    """Inline images (BI … ID … EI) live inside content streams; small ones are glyphs and
    rules, a photo-sized one is not cleaned yet and is refused rather than passed."""
    if not _has_inline(page):
        return
    for operands, operator in pikepdf.parse_content_stream(page, "INLINE IMAGE"):
        image = operands[0]
        width, height = int(image.obj.get("/W", image.obj.get("/Width", 0))), int(image.obj.get("/H", image.obj.get("/Height", 0)))
        if width * height > 64 * 64:
            raise UnsupportedFormat(f"page {number} draws an inline image of {width}×{height}; inline photos are not cleaned yet")


def _has_inline(page: pikepdf.Page) -> bool:
    contents = page.obj.get("/Contents")
    parts = [contents] if isinstance(contents, pikepdf.Stream) else list(contents or [])
    try:
        return any(b"BI" in part.read_bytes() for part in parts)
    except pikepdf.PdfError:
        return True  # undecodable contents: parse_content_stream will say so


def _clean_images(pdf: pikepdf.Pdf, embedded: Embedded) -> list[str]:
    removed = []
    for obj in list(pdf.objects):
        if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image":
            removed += _clean_image(obj, embedded)
    return removed


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if value is None:
        return []
    return [str(name) for name in value] if isinstance(value, pikepdf.Array) else [str(value)]


def _clean_image(stream: pikepdf.Stream, embedded: Embedded) -> list[str]:
    where = f"image object {stream.objgen[0]}"
    filters = _filters(stream)
    if filters and filters[-1] == "/DCTDecode" and all(name in _GENERALIZED for name in filters[:-1]):
        jpeg = stream.read_bytes(pikepdf.StreamDecodeLevel.generalized) if len(filters) > 1 else stream.read_raw_bytes()
        cleaned = embedded.clean(jpeg, where)
        stream.write(cleaned, filter=pikepdf.Name("/DCTDecode"))
        if "/DecodeParms" in stream:
            del stream["/DecodeParms"]
        return []
    if stream.get("/ImageMask") is True:
        return []  # a 1-bit stencil: a shape, no photo
    return _clean_decoded_image(stream, embedded, where)


def _clean_decoded_image(stream: pikepdf.Stream, embedded: Embedded, where: str) -> list[str]:
    """Non-JPEG pixels carry no metadata of their own: they are only searched for faces, as a
    PNG through the image core, and replaced by the masked pixels when faces were found."""
    try:
        pixels = pikepdf.PdfImage(stream).as_pil_image()
    except Exception as error:  # JBIG2/JPX without a decoder, damaged data
        raise UnsupportedFormat(f"the PDF's {where} cannot be decoded to be searched for faces ({type(error).__name__})") from None
    if pixels.mode not in ("L", "RGB"):
        pixels = pixels.convert("RGB")
    as_png = io.BytesIO()
    pixels.save(as_png, "PNG")
    cleaned = embedded.clean(as_png.getvalue(), where, leaves=False)  # only its pixels are written back
    if not embedded.reports[-1]["faces"]:
        return []
    masked = Image.open(io.BytesIO(cleaned)).convert(pixels.mode)
    stream.write(zlib.compress(masked.tobytes()), filter=pikepdf.Name("/FlateDecode"))
    for key in ("/DecodeParms", "/Decode", "/SMaskInData", "/Intent"):
        if key in stream:
            del stream[key]
    stream.ColorSpace = pikepdf.Name("/DeviceGray" if masked.mode == "L" else "/DeviceRGB")
    stream.BitsPerComponent = 8
    stream.Width, stream.Height = masked.size
    return []

