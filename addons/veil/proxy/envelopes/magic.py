"""Is this an image (or a document)? A cheap magic-bytes test, deliberately wider than what Veil can clean.

The envelopes use it to decide what counts as an image in a request. It must also
recognise formats Veil cannot sanitise (GIF, TIFF, HEIC/AVIF, BMP, JPEG 2000, JPEG XL
containers): those are then found and refused by policy instead of slipping through
unseen. Every signature here is long enough (at least 24 bits, usually far more) that
random base64 strings such as hashes and tokens practically never match it.
"""

import struct

from ...clean.formats import FORMATS

# Enough for every check below, including a few compatible brands of an ftyp box.
HEAD_BYTES = 64

# ISO-BMFF (ftyp) brands of still images: HEIC/HEIF in their variants, and AVIF.
_IMAGE_BRANDS = frozenset(
    {
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
        b"mif1", b"mif2", b"msf1", b"heif", b"avif", b"avis", b"avio",
    }
)  # fmt: skip

# The header sizes of every BMP DIB header revision (core, info, v2-v5, OS/2 2.x).
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

_FIXED_SIGNATURES = (
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF little endian (also DNG and most camera RAW files)
    b"MM\x00*",  # TIFF big endian
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000 (JP2/JPX)
    b"\xff\x4f\xff\x51",  # JPEG 2000 codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",  # JPEG XL container
)
# Not listed: the bare JPEG XL codestream (FF 0A) and PNM (P1-P6) have 16-bit
# signatures that one random base64 string in 65536 would match, blocking ordinary
# requests; ICO is not a photo format.


# Documents and archives Veil cleans (or refuses by name): a slot is a slot, the worker
# cleans what it is given. TAR's magic sits at byte 257, past what the envelopes read.
_DOCUMENT_SIGNATURES = (
    b"%PDF-",
    b"PK\x03\x04",  # ZIP, and the Office and OpenDocument files built on it
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2: legacy or password-protected Office, refused readably
)


def looks_like_document(data: bytes) -> bool:
    return bytes(data[:HEAD_BYTES]).startswith(_DOCUMENT_SIGNATURES)


def looks_like_upload(data: bytes) -> bool:
    """What the envelopes hand to the cleaner: an image or a document."""
    return looks_like_image(data) or looks_like_document(data)


def looks_like_image(data: bytes) -> bool:
    """True when the first bytes of `data` are those of an image file of any known format."""
    head = bytes(data[:HEAD_BYTES])
    return (
        head.startswith(_FIXED_SIGNATURES)
        or any(image_format.accepts(head) for image_format in FORMATS)
        or _is_iso_image(head)
        or _is_bmp(head)
    )


def _is_iso_image(head: bytes) -> bool:
    """HEIC/HEIF/AVIF: an ftyp box whose major or a compatible brand is a still-image brand."""
    if head[4:8] != b"ftyp" or len(head) < 12:
        return False
    box_size = min(struct.unpack(">I", head[:4])[0], len(head))
    brands = [head[8:12]] + [head[at : at + 4] for at in range(16, box_size - 3, 4)]
    return any(brand in _IMAGE_BRANDS for brand in brands)


def _is_bmp(head: bytes) -> bool:
    """'BM' alone is two letters of text; the DIB header size behind it makes it a BMP."""
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    return struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES
