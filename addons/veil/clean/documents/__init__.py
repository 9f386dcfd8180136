"""Documents and archives: one module per container, recognised by content like the image
formats, cleaned under the same contract (complete verified bytes or one SanitiseError).

Adding a container: a module with a Container subclass, listed in CONTAINERS.
"""

from dataclasses import replace

from ..errors import LengthNotPreserved, TooLarge, UnsupportedFormat
from ..options import SanitiseOptions
from ..report import Result
from .archive import Tar, Zip
from .base import Container, document_result
from .markup import Html, Svg
from .odf import Odf
from .ooxml import Ooxml
from .pdf import Pdf

# Order matters: ODF and OOXML are ZIPs (a stored mimetype first; a [Content_Types].xml), so they are asked first.
CONTAINERS: tuple[Container, ...] = (Pdf(), Odf(), Ooxml(), Zip(), Tar(), Svg(), Html())

_KNOWN_UNSUPPORTED = (
    (lambda head: head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), "legacy or password-protected Office files (OLE2)"),
    (lambda head: head.startswith(b"\x1f\x8b"), "gzip-compressed files"),
    (lambda head: head.startswith(b"7z\xbc\xaf\x27\x1c"), "7-Zip archives"),
    (lambda head: head.startswith(b"Rar!\x1a\x07"), "RAR archives"),
)

SNIFF_BYTES = 1024  # a PDF header may follow up to 1 KiB of junk; tar's magic is at 257


def sniff(data: bytes) -> Container | None:
    """The container `data` is, None when it is not a document (it may be an image), or an
    UnsupportedFormat naming a document kind Veil recognises but cannot clean."""
    head = bytes(data[:SNIFF_BYTES])
    for matches, name in _KNOWN_UNSUPPORTED:
        if matches(head):
            raise UnsupportedFormat(f"{name} are not supported; refused rather than passed uncleaned")
    return next((container for container in CONTAINERS if container.accepts(head)), None)


def clean_document(container: Container, data: bytes, options: SanitiseOptions, sanitise, depth: int = 0) -> Result:
    """`sanitise(bytes, options)` cleans the images inside; documents inside documents (an
    archive in an archive, a workbook in a slide deck) come back here one level deeper."""
    if depth > options.documents.max_depth:
        raise TooLarge(f"documents and archives are nested more than {options.documents.max_depth} deep")

    inner_options = replace(options, preserve_length=False)  # only the document's own length was declared

    def clean_member(member: bytes) -> Result:
        inner = sniff(member)
        if inner is None:
            return sanitise(member, inner_options)
        return clean_document(inner, member, inner_options, sanitise, depth + 1)

    result = document_result(container, data, options, clean_member)
    if options.preserve_length and len(result.data) != len(data):
        raise LengthNotPreserved(
            f"the cleaned {container.name.upper()} is {len(result.data):,} bytes, not the {len(data):,} the service was told; "
            "documents cannot be padded to a declared length yet"
        )
    return result


__all__ = ["CONTAINERS", "Container", "clean_document", "sniff"]
