"""OpenDocument (ODT, ODS, ODP) at the ZIP level, the way ooxml.py does Office files.

Removed: meta.xml's fields (author, initial creator, dates, editing time, generator, user
fields), the thumbnail, Configurations2 (UI settings), manifest.rdf, printer names and setups
in settings.xml, comments (office:annotation), tracked changes (text:tracked-changes holds
the deleted text and who deleted it; the change marks go with it), dc:creator and dc:date
wherever they remain; the manifest's entries of every removed part. Images under Pictures/
are cleaned by the image core. Macros (Basic/, Scripts/), object previews and any part not
on the allow-list are refused. `mimetype` stays first and stored, as the format requires.
"""

import io
import re
import zipfile

from lxml import etree

from ..errors import UnsupportedFormat
from .archive import Member, open_zip, read_member, write_zip
from .base import Container, Embedded
from .ooxml import parse_xml

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_CONFIG = "urn:oasis:names:tc:opendocument:xmlns:config:1.0"
_DC = "http://purl.org/dc/elements/1.1/"
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"

_DROPPED = re.compile(r"^(Thumbnails/.*|Configurations2/.*|manifest\.rdf|layout-cache)$")
_MACROS = re.compile(r"^(Basic|Scripts)/")
_PICTURES = re.compile(r"^(Object \d+/)?Pictures/[^/]+$")
_ALLOWED = re.compile(r"^(mimetype|META-INF/manifest\.xml|([^/]+/)*[^/]+\.xml)$")
_META_EMPTY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" office:version="1.2">'
    b"<office:meta/></office:document-meta>"
)
_REMOVED_ELEMENTS = (
    (_OFFICE, "annotation"), (_OFFICE, "annotation-end"), (_TEXT, "tracked-changes"),
    (_TEXT, "change"), (_TEXT, "change-start"), (_TEXT, "change-end"), (_DC, "creator"), (_DC, "date"),
)  # fmt: skip
_PRINTER_ITEMS = ("PrinterName", "PrinterSetup", "PrinterPaperFromSetup")
_KINDS = (("text", "odt"), ("spreadsheet", "ods"), ("presentation", "odp"), ("graphics", "odg"))


class Odf(Container):
    name = "odf"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and head[30:38] == b"mimetype" and b"application/vnd.oasis.opendocument" in head

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        archive = open_zip(data, embedded.options.documents)
        parts = {entry.filename: entry for entry in archive.infolist() if not entry.is_dir()}
        dropped = {name for name in parts if _DROPPED.match(name)}
        removed = [f"part:{name}" for name in sorted(dropped)]
        members = []
        for name in sorted(set(parts) - dropped):
            members.append(Member(name, self._clean_part(name, read_member(archive, parts[name]), dropped, embedded, removed)))
        return write_zip(members, first=("mimetype",), stored=("mimetype",)), removed

    def _clean_part(self, name: str, content: bytes, dropped: set[str], embedded: Embedded, removed: list[str]) -> bytes:
        if _MACROS.match(name):
            raise UnsupportedFormat(f"the OpenDocument file holds macros ({name}); refused")
        if _PICTURES.match(name):
            return embedded.clean(content, name)
        if not _ALLOWED.match(name):
            raise UnsupportedFormat(f"the OpenDocument file holds a part Veil does not know how to clean ({name}); refused")
        if name == "mimetype":
            return content
        if name == "meta.xml":
            removed.append("meta:all")
            return _META_EMPTY
        tree = parse_xml(content, name)
        if name == "META-INF/manifest.xml":
            for entry in tree.findall(f"{{{_MANIFEST}}}file-entry"):
                if entry.get(f"{{{_MANIFEST}}}full-path") in dropped:
                    tree.remove(entry)
        else:
            removed += _remove_personal(tree, name)
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")

    def format_of(self, output: bytes) -> str:
        mimetype = zipfile.ZipFile(io.BytesIO(output)).read("mimetype").decode("ascii", "replace")
        return next((kind for marker, kind in _KINDS if mimetype.endswith(marker)), self.name)

    def findings(self, data: bytes) -> list[str]:
        archive = zipfile.ZipFile(io.BytesIO(data))
        left = [name for name in archive.namelist() if _DROPPED.match(name) or _MACROS.match(name)]
        if archive.namelist()[0] != "mimetype":
            left.append("a mimetype that is not first")
        for name in archive.namelist():
            if name.endswith(".xml") and name != "meta.xml" and re.search(rb"<dc:creator|<office:annotation\b|<text:tracked-changes", archive.read(name)):
                left.append(f"authors or comments in {name}")
        return left


def remove_keeping_tail(element) -> None:
    """lxml removes an element's tail with it; in ODF's mixed content that tail is the
    paragraph's text after a comment, so it is handed to what came before."""
    parent, tail = element.getparent(), element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _remove_personal(tree, name: str) -> list[str]:
    removed = []
    for namespace, local in _REMOVED_ELEMENTS:
        for element in list(tree.iter(f"{{{namespace}}}{local}")):
            if element.getparent() is not None:
                remove_keeping_tail(element)
                removed.append(f"{name}:{local}")
    for item in list(tree.iter(f"{{{_CONFIG}}}config-item")):
        if item.get(f"{{{_CONFIG}}}name") in _PRINTER_ITEMS:
            item.getparent().remove(item)
            removed.append(f"{name}:{item.get(f'{{{_CONFIG}}}name')}")
    return removed
