"""SVG and HTML files: the images they carry as `data:` URLs are cleaned by the image core and
written back in the same place (base64); what can act on its own is refused.

SVG (parsed as XML with no DTD, no entities, no network): <metadata> elements, comments and
editor namespaces (Inkscape, Sodipodi, Adobe: export paths name folders and users) are
removed; <script>, event attributes (onload…) and javascript: links are refused.
HTML is not parsed, only searched: <script>, event attributes and javascript: URLs are
refused, data: images are cleaned, author/generator <meta> tags and comments removed.
"""

import base64
import binascii
import re

from lxml import etree

from ..errors import MalformedImage, UnsupportedFormat
from .base import Container, Embedded
from .ooxml import parse_xml

_DATA_IMAGE = re.compile(rb"data:image/[A-Za-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]+)")
_ACTIVE_HTML = re.compile(rb"<script\b|\son[a-z]+\s*=|javascript:", re.IGNORECASE)
_HTML_PERSONAL = re.compile(rb"<meta\s+name=[\"']?(author|generator|creator|publisher)[\"']?[^>]*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_EDITOR_NAMESPACES = ("inkscape.org", "sodipodi", "ns.adobe.com", "purl.org/dc", "creativecommons.org", "www.w3.org/1999/02/22-rdf")
_SVG = "http://www.w3.org/2000/svg"


def _clean_data_images(text: bytes, embedded: Embedded, where: str) -> bytes:
    """Every `data:image/…;base64,` URL with its payload replaced by the cleaned image."""

    def replace(found: re.Match) -> bytes:
        try:
            image = base64.b64decode(re.sub(rb"\s", b"", found.group(1)), validate=True)
        except binascii.Error:
            raise MalformedImage(f"a data: image in the {where} is not valid base64") from None
        cleaned = embedded.clean(image, f"{where} data: image {len(embedded.reports) + 1}")
        return found.group(0)[: found.start(1) - found.start(0)] + base64.b64encode(cleaned)

    return _DATA_IMAGE.sub(replace, text)


class Svg(Container):
    name = "svg"

    @staticmethod
    def accepts(head: bytes) -> bool:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return start.startswith((b"<svg", b"<?xml")) and b"<svg" in head

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        tree = parse_xml(data, "SVG")
        if etree.QName(tree).localname != "svg":
            raise UnsupportedFormat("the XML file is not an SVG image; refused")
        active = self.findings_in(tree)
        if active:
            raise UnsupportedFormat(f"the SVG holds {active[0]}; Veil refuses SVGs that can run code")
        removed = _strip_svg(tree)
        for element in tree.iter():  # on the parsed values: serialised, line breaks become &#10;
            if not isinstance(element.tag, str):
                continue
            for attribute, value in element.attrib.items():
                if "data:image" in value:
                    element.set(attribute, _clean_data_images(value.encode(), embedded, "SVG").decode())
            if element.text and "data:image" in element.text:
                element.text = _clean_data_images(element.text.encode(), embedded, "SVG").decode()
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), removed

    def findings(self, data: bytes) -> list[str]:
        tree = parse_xml(data, "SVG")
        left = self.findings_in(tree)
        left += [f"a <{etree.QName(element).localname}> element" for element in tree.iter(f"{{{_SVG}}}metadata")]
        return left + [f"the {namespace} namespace" for namespace in _editor_namespaces(tree)]

    @staticmethod
    def findings_in(tree) -> list[str]:
        found = []
        for element in tree.iter():
            if not isinstance(element.tag, str):
                continue
            if etree.QName(element).localname in ("script", "foreignObject"):
                found.append(f"a <{etree.QName(element).localname}> element")
            for attribute, value in element.attrib.items():
                if etree.QName(attribute).localname.lower().startswith("on") or value.strip().lower().startswith("javascript:"):
                    found.append(f"an active attribute ({etree.QName(attribute).localname})")
        return found


def _editor_namespaces(tree) -> list[str]:
    used = {etree.QName(name).namespace for element in tree.iter() if isinstance(element.tag, str) for name in (element.tag, *element.attrib)}
    return [namespace for namespace in used if namespace and any(marker in namespace for marker in _EDITOR_NAMESPACES)]


def _strip_svg(tree) -> list[str]:
    removed = []
    for element in list(tree.iter()):
        if not isinstance(element.tag, str):  # comments and processing instructions
            if element.getparent() is not None:
                element.getparent().remove(element)
                removed.append("svg:comment")
            continue
        if etree.QName(element).localname == "metadata" or _is_editor(etree.QName(element).namespace):
            if element.getparent() is not None:
                element.getparent().remove(element)
                removed.append(f"svg:{etree.QName(element).localname}")
            continue
        for attribute in [name for name in element.attrib if _is_editor(etree.QName(name).namespace)]:
            del element.attrib[attribute]
            removed.append(f"svg:{etree.QName(attribute).localname}")
    etree.cleanup_namespaces(tree)
    return removed


def _is_editor(namespace: str | None) -> bool:
    return bool(namespace) and any(marker in namespace for marker in _EDITOR_NAMESPACES)


class Html(Container):
    name = "html"

    @staticmethod
    def accepts(head: bytes) -> bool:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        return start.startswith((b"<!doctype html", b"<html"))

    def clean(self, data: bytes, embedded: Embedded) -> tuple[bytes, list[str]]:
        active = _ACTIVE_HTML.search(data)
        if active:
            raise UnsupportedFormat(f"the HTML file holds {active.group(0).strip().decode('latin-1')!r}; Veil refuses pages that can run code")
        removed = [f"html:{(found.group(1) or b'comment').decode('latin-1').lower()}" for found in _HTML_PERSONAL.finditer(data)]
        return _clean_data_images(_HTML_PERSONAL.sub(b"", data), embedded, "HTML"), removed

    def findings(self, data: bytes) -> list[str]:
        return [found.group(0).decode("latin-1")[:40] for found in (*_ACTIVE_HTML.finditer(data), *_HTML_PERSONAL.finditer(data))]
