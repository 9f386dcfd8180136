"""Tiny builders for the format unit tests: a real encoder makes the pixels, these
helpers splice in the segments and chunks Pillow will not write."""

import io
import struct
import zlib

from PIL import Image


def gradient(size=(48, 32), mode="RGB") -> Image.Image:
    """An asymmetric picture, so any wrong rotation or flip changes pixels."""
    image = Image.new("RGB", size)
    image.putdata([((x * 5) % 256, (y * 7) % 256, (x * y) % 256) for y in range(size[1]) for x in range(size[0])])
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def insert_before_iend(png: bytes, *chunks: bytes) -> bytes:
    at = png.rindex(b"IEND") - 4
    return png[:at] + b"".join(chunks) + png[at:]


def exif_block(orientation: int | None = None, gps: bool = False) -> bytes:
    """A TIFF block (no 'Exif' prefix) with Make, optional Orientation, optional GPS IFD."""
    entries = [(0x010F, 2, 4, b"Cam\x00")]
    if orientation:
        entries.append((0x0112, 3, 1, struct.pack(">HH", orientation, 0)))
    if gps:
        entries.append((0x8825, 4, 1, b""))  # value patched below
    count = len(entries)
    ifd_size = 2 + 12 * count + 4
    gps_offset = 8 + ifd_size
    body = struct.pack(">H", count)
    for tag, typ, n, value in sorted(entries):
        value = struct.pack(">I", gps_offset) if tag == 0x8825 else value
        body += struct.pack(">HHI", tag, typ, n) + value.ljust(4, b"\x00")
    body += struct.pack(">I", 0)
    gps_ifd = struct.pack(">H", 1) + struct.pack(">HHI4s", 0x0001, 2, 2, b"N\x00\x00\x00") + struct.pack(">I", 0)
    return b"MM\x00*" + struct.pack(">I", 8) + body + (gps_ifd if gps else b"")


def xmp_packet(orientation: int | None = None, as_element: bool = False) -> bytes:
    if orientation is None:
        inner = '<rdf:Description dc:creator="Jane Doe"/>'
    elif as_element:
        inner = f"<rdf:Description><tiff:Orientation>{orientation}</tiff:Orientation></rdf:Description>"
    else:
        inner = f'<rdf:Description tiff:Orientation="{orientation}" dc:creator="Jane Doe"/>'
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"{inner}</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    ).encode()


def outside_spans(body: bytes, slots) -> list[bytes]:
    """The bytes between and around the slots: what a rewrite must leave alone."""
    pieces, at = [], 0
    for slot in sorted(slots, key=lambda slot: slot.span):
        pieces.append(body[at : slot.span[0]])
        at = slot.span[1]
    return pieces + [body[at:]]


PERSONAL_ICC_TEXT = "Jane Doe, 12 Rose Street, Springfield"


def personal_icc_profile() -> bytes:
    """A working sRGB colour profile (LittleCMS's, via Pillow) whose text tags name a person:
    `desc` as v4 multiLocalizedUnicode, `cprt` as v2 textType, `dmnd` as v2
    textDescriptionType — the three text shapes profiles use. Colour tags are kept."""
    import struct

    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    count = struct.unpack_from(">I", srgb, 128)[0]
    tags = {}
    for index in range(count):
        signature, offset, size = struct.unpack_from(">4sII", srgb, 132 + 12 * index)
        tags[signature] = srgb[offset : offset + size]
    text = PERSONAL_ICC_TEXT.encode()
    utf16 = PERSONAL_ICC_TEXT.encode("utf-16-be")
    tags[b"desc"] = b"mluc" + bytes(4) + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(utf16), 28) + utf16
    tags[b"cprt"] = b"text" + bytes(4) + b"Copyright " + text + b"\x00"
    tags[b"dmnd"] = b"desc" + bytes(4) + struct.pack(">I", len(text) + 1) + text + b"\x00" + bytes(4 + 4 + 2 + 1 + 67)
    table, blob = b"", b""
    data_start = 128 + 4 + 12 * len(tags)
    for signature, body in tags.items():
        body += bytes(-len(body) % 4)  # tags start on 4-byte boundaries
        table += struct.pack(">4sII", signature, data_start + len(blob), len(body))
        blob += body
    profile = bytearray(srgb[:128] + struct.pack(">I", len(tags)) + table + blob)
    profile[0:4] = struct.pack(">I", len(profile))
    return bytes(profile)
