"""OOXML (DOCX, PPTX, XLSX) at the ZIP level, as mat2 does: an allow-list of parts.

Removed: thumbnails, custom properties, customXml, people and comment-author lists,
comments (unless the policy keeps them, authors blanked), printer settings, and every
relationship and content-type entry pointing at what was removed; docProps/core.xml is
emptied, app.xml loses Company, Manager, Template, HyperlinkBase and TotalTime; Word's
tracked changes are accepted (deleted text goes, inserted text stays, authors go) and its
w:rsid revision ids removed. Every image under media/ is cleaned by the image core,
embedded Office files inside are cleaned as documents. Macros (VBA) are refused, or dropped
when the options say so; OLE objects and any part not on the allow-list are refused. XML is parsed with no DTD, no entities, no network.
"""

import io
import posixpath
import re
import zipfile

from lxml import etree

from ..errors import MalformedImage, UnsupportedFormat
from .archive import Member, open_zip, read_member, write_zip
from .base import Container, Embedded

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "http://schemas.openxmlformats.org/package/2006/content-types"

_DROPPED = re.compile(
    r"^(docProps/thumbnail\.[a-z]+|docProps/custom\.xml|customXml/.*|.*/people\.xml|.*/printerSettings/.*"
    r"|ppt/commentAuthors\.xml|.*/persons/.*|word/webSettings\.xml)$"
)
_COMMENTS = re.compile(r"^(word/comments[A-Za-z]*\.xml|ppt/comments/.*|xl/comments.*\.xml|xl/threadedComments/.*)$")
_MACROS = re.compile(r"(^|/)(vbaProject\.bin|vbaData\.xml|vbaProjectSignature.*\.bin)$")
_MEDIA = re.compile(r"^(word|ppt|xl)/media/[^/]+$")
_EMBEDDED_OFFICE = re.compile(r"^(word|ppt|xl)/embeddings/[^/]+\.(xlsx|docx|pptx)$")
_ALLOWED = re.compile(
    r"^(\[Content_Types\]\.xml|_rels/\.rels|docProps/(core|app)\.xml"
    r"|(word|ppt|xl)/([^/]+/)*[^/]+\.(xml|rels|vml)|(word|ppt|xl)/fonts/[^/]+\.(odttf|fntdata|ttf))$"
)
_CORE_EMPTY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"/>'
)
_APP_PERSONAL = ("Company", "Manager", "Template", "HyperlinkBase", "TotalTime")
_TRACKED_WRAPPERS = ("ins", "moveTo")  # accepted: their content stays
_TRACKED_REMOVED = ("del", "moveFrom", "rPrChange", "pPrChange", "sectPrChange", "tblPrChange", "trPrChange", "tcPrChange", "numberingChange", "rsids")
_COMMENT_MARKS = ("commentRangeStart", "commentRangeEnd", "commentReference")
_PERSONAL_ATTRIBUTES = ("author", "initials", "date")
_MAIN_PARTS = (("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"))
_LOCAL_PATH = re.compile(r"^(file:|[A-Za-z]:[\\/]|\\\\|/)", re.IGNORECASE)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False)


class Ooxml(Container):
    name = "ooxml"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head.startswith(b"PK\x03\x04") and (b"[Content_Types].xml" in head or b"_rels/.rels" in head or b"docProps/" in head)

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        archive = open_zip(data, embedded.options.documents)
        parts = {entry.filename: entry for entry in archive.infolist() if not entry.is_dir()}
        if "[Content_Types].xml" not in parts:
            raise UnsupportedFormat("the ZIP looks like an Office file but has no [Content_Types].xml; refused")
        settings = embedded.options.documents
        dropped = {
            name
            for name in parts
            if _DROPPED.match(name)
            or (_COMMENTS.match(name) and not settings.keep_comments)
            or (_MACROS.search(name) and settings.macros == "drop")
        }
        removed = [f"part:{name}" for name in sorted(dropped)]
        members = []
        for name in sorted(set(parts) - dropped):
            content = read_member(archive, parts[name])
            members.append(Member(name, self._clean_part(name, content, dropped, embedded, removed)))
        return write_zip(members, first=("[Content_Types].xml",)), removed

    def _clean_part(self, name: str, content: bytes, dropped: set[str], embedded: Embedded, removed: list[str]) -> bytes:
        if _MACROS.search(name):
            raise UnsupportedFormat(f"the Office file holds macros ({name}); Veil refuses documents with VBA projects")
        if _MEDIA.match(name) or _EMBEDDED_OFFICE.match(name):
            return embedded.clean(content, name)
        if not _ALLOWED.match(name):
            raise UnsupportedFormat(f"the Office file holds a part Veil does not know how to clean ({name}); refused")
        if name == "docProps/core.xml":
            removed += [f"core:{field}" for field in _field_names(content)]
            return _CORE_EMPTY
        tree = parse_xml(content, name)
        if name == "docProps/app.xml":
            removed += _remove_children(tree, _APP_PERSONAL, "app")
        elif name == "[Content_Types].xml":
            _drop_overrides(tree, dropped)
        elif name.endswith(".rels"):
            removed += _drop_relationships(tree, name, dropped)
        else:
            removed += _clean_content(tree, name, dropped)
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8", standalone=True)

    def format_of(self, output: bytes) -> str:
        names = zipfile.ZipFile(io.BytesIO(output)).namelist()
        return next((kind for part, kind in _MAIN_PARTS if part in names), self.name)

    def findings(self, data: bytes) -> list[str]:
        archive = zipfile.ZipFile(io.BytesIO(data))
        left = [name for name in archive.namelist() if _DROPPED.match(name) or _MACROS.search(name)]
        if "docProps/core.xml" in archive.namelist() and _field_names(archive.read("docProps/core.xml")):
            left.append("fields in docProps/core.xml")
        for name in archive.namelist():
            if name.endswith(".xml") and name.startswith("word/"):
                text = archive.read(name)
                if re.search(rb"w:rsid\w*=|<w:del\b|w:author=\"[^\"]", text):
                    left.append(f"revision marks in {name}")
        return left


def parse_xml(content: bytes, name: str):
    """No DTD at all: OOXML never needs one, and entities are how XML bombs and external
    fetches are made."""
    if b"<!DOCTYPE" in content[:4096] or b"<!ENTITY" in content:
        raise UnsupportedFormat(f"the Office file's {name} declares a DTD or entities; refused")
    try:
        return etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError as error:
        raise MalformedImage(f"the Office file's {name} is not well-formed XML: {error}") from None


def _field_names(content: bytes) -> list[str]:
    tree = parse_xml(content, "docProps/core.xml")
    return [etree.QName(child).localname for child in tree if isinstance(child.tag, str)]


def _remove_children(tree, local_names: tuple[str, ...], label: str) -> list[str]:
    removed = []
    for child in list(tree):
        if isinstance(child.tag, str) and etree.QName(child).localname in local_names:
            tree.remove(child)
            removed.append(f"{label}:{etree.QName(child).localname}")
    return removed


def _drop_overrides(tree, dropped: set[str]) -> None:
    for override in tree.findall(f"{{{_CT}}}Override"):
        if override.get("PartName", "").lstrip("/") in dropped:
            tree.remove(override)


def _relationship_source_folder(rels_name: str) -> str:
    """word/_rels/document.xml.rels describes word/document.xml: targets are relative to word/."""
    return posixpath.dirname(posixpath.dirname(rels_name))


def _without_local_folders(relationship) -> list[str]:
    """A link to a file on the author's disk or share (file:///C:/Users/jane/…, \\\\server\\…)
    names people and machines: only the file's name is kept."""
    target = relationship.get("Target", "")
    if not _LOCAL_PATH.match(target):
        return []
    relationship.set("Target", re.split(r"[\\/]", target)[-1])
    return ["relationship:local_path"]


def _drop_relationships(tree, rels_name: str, dropped: set[str]) -> list[str]:
    folder = _relationship_source_folder(rels_name)
    removed = []
    for relationship in tree.findall(f"{{{_REL}}}Relationship"):
        if relationship.get("TargetMode") == "External":
            removed += _without_local_folders(relationship)
            continue
        target = relationship.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        if resolved in dropped:
            tree.remove(relationship)
    return removed


def _clean_content(tree, name: str, dropped: set[str]) -> list[str]:
    """Word's body: tracked changes accepted, comment anchors and revision ids removed,
    and authors blanked wherever they remain (kept comments)."""
    removed = []
    for element in list(tree.iter()):
        if not isinstance(element.tag, str):
            continue
        for attribute in list(element.attrib):
            local = etree.QName(attribute).localname
            if etree.QName(attribute).namespace == _W and (local.startswith("rsid") or local in _PERSONAL_ATTRIBUTES):
                if local in ("author", "initials"):
                    element.set(attribute, "")  # required on w:comment: blank, not absent
                else:
                    del element.attrib[attribute]
                removed.append(f"{name}:{local}")
    if _COMMENTS.match(name):  # kept comments: a spreadsheet lists their authors by name
        for author in tree.iter("{*}author"):
            author.text = ""
            removed.append(f"{name}:author")
    removed += _accept_tracked_changes(tree, name)
    if "word/comments.xml" in dropped:
        removed += _remove_elements(tree, _COMMENT_MARKS, f"{name}:comment")
    return removed


def _accept_tracked_changes(tree, name: str) -> list[str]:
    removed = _remove_elements(tree, _TRACKED_REMOVED, f"{name}:revision")
    for element in list(tree.iter(*(f"{{{_W}}}{local}" for local in _TRACKED_WRAPPERS))):
        parent = element.getparent()
        at = parent.index(element)
        for offset, child in enumerate(list(element)):
            parent.insert(at + offset, child)
        parent.remove(element)
        removed.append(f"{name}:revision")
    return removed


def _remove_elements(tree, local_names: tuple[str, ...], label: str) -> list[str]:
    found = list(tree.iter(*(f"{{{_W}}}{local}" for local in local_names)))
    for element in found:
        if element.getparent() is not None:
            element.getparent().remove(element)
    return [label] * len(found)
