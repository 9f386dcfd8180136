"""HEIC/HEIF (HEVC, decoded and encoded by pillow-heif/libheif) and AVIF (AV1, Pillow's
own plugin/libavif).

These ISOBMFF containers keep EXIF, XMP, thumbnails, depth maps and HDR gain maps as
items beside the picture; cutting them out losslessly means rewriting the meta box and
its offsets, so Veil re-encodes instead: the primary image only, decoded upright (the
container's irot/imir rotation and mirror are applied by the decoder; an EXIF
Orientation is *not* applied on top of it for HEIF), written back with no metadata item
at all, ICC profile kept unless dropped. Reported as `reencoded: true`.

Before any byte reaches libheif or libavif, isobmff.parse checks the box structure and
refuses files that are inconsistent (libheif's crash and fuzz cases fail there).
"""

import io

from PIL import Image, ImageOps

from ..errors import MalformedImage, UnsupportedFormat
from . import exif, isobmff
from .base import Header, ImageFormat, Stripped, icc_profile

HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}
AVIF_BRANDS = {b"avif", b"avis"}
try:  # register at import: the verifier and the report open HEIF outputs with Pillow
    import pillow_heif as _pillow_heif

    _pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover
    pass

# x265 (preset ultrafast, ~1 s for 12 MP) at 70 gives ~48 dB PSNR against the decoded iPhone
# source in ~1.5x its size: a second generation that cannot be told from the first.
HEIF_QUALITY = 70
AVIF_QUALITY = 85


def _major(head: bytes) -> bytes:
    return head[8:12] if head[4:8] == b"ftyp" else b""


def _is_avif(head: bytes) -> bool:
    if head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = {head[8:12]} | {head[p : p + 4] for p in range(16, min(size, len(head)) - 3, 4)}
    return bool(brands & AVIF_BRANDS)


def _heif_module():
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a dependency, but fail readable
        raise UnsupportedFormat("HEIC/HEIF support needs the pillow-heif package") from None
    pillow_heif.register_heif_opener()  # so Pillow (the verifier's second parser) reads HEIF too
    pillow_heif.options.THUMBNAILS = False
    pillow_heif.options.DEPTH_IMAGES = False
    pillow_heif.options.AUX_IMAGES = False
    return pillow_heif


def _metadata_categories(container: isobmff.Container, exif_block: bytes | None) -> set[str]:
    found = set()
    for item_id, item_type in container.items.items():
        if item_type == b"Exif":
            found |= {"exif"} | (exif.exif_categories(exif_block) if exif_block else set())
        elif item_type == b"mime":
            content_type = container.content_types.get(item_id, b"")
            found.add("xmp" if b"xml" in content_type else "private-chunks")
        elif item_type not in isobmff.IMAGE_ITEM_TYPES:
            found.add("private-chunks")
    for kind, _, _ in container.refs:
        if kind == b"thmb":
            found.add("thumbnail")
        elif kind == b"auxl":
            found.add("auxiliary-images")
    tiles = {t for kind, _, targets in container.refs if kind == b"dimg" for t in targets}
    referenced = {source for kind, source, _ in container.refs if kind in (b"thmb", b"auxl")}
    others = [i for i, t in container.items.items() if t in isobmff.IMAGE_ITEM_TYPES and i != container.primary and i not in tiles | referenced]
    if others:
        found.add("secondary-images")
    return found


class _IsoImage(ImageFormat):
    """Shared by HEIF and AVIF: gate, header, re-encode."""

    def _gate(self, data: bytes) -> isobmff.Container:
        return isobmff.parse(data)

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        container = self._gate(data)
        upright, orientation, exif_block = self._decode(data)
        removed = _metadata_categories(container, exif_block)
        icc = upright.info.get("icc_profile")
        if icc and not keep_icc:
            removed.add("icc")
        encoded = self.encode(upright, data, icc if keep_icc else None)
        clean = upright.copy()
        clean.info = {"icc_profile": icc} if icc and keep_icc else {}
        return Stripped(encoded, frozenset(removed), orientation, reencoded=True, pixels=clean)

    def findings(self, data: bytes) -> list[str]:
        return isobmff.metadata_findings(data)


class Heif(_IsoImage):
    name = "heif"
    mime = "image/heic"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return _major(head) in HEIF_BRANDS and not _is_avif(head)

    def read_header(self, data: bytes) -> Header:
        self._gate(data)
        pillow_heif = _heif_module()
        try:
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            width, height = heif.size
        except Exception as error:
            raise MalformedImage(f"the HEIF container cannot be read: {str(error)[:120]}") from error
        return Header(width, height, 1)

    def _decode(self, data: bytes) -> tuple[Image.Image, int, bytes | None]:
        pillow_heif = _heif_module()
        try:
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            primary = heif[heif.primary_index] if len(heif) > 1 else heif
            exif_block = primary.info.get("exif")
            image = primary.to_pillow()
            image.load()
        except Exception as error:
            raise MalformedImage(f"the HEIF image cannot be decoded: {str(error)[:120]}") from error
        # libheif has applied irot/imir: these pixels are what a viewer shows. An EXIF
        # Orientation must not be applied again (HEIF readers ignore it).
        icc = icc_profile(primary.info.get("icc_profile"))
        upright = image.copy()
        upright.info = {"icc_profile": icc} if icc else {}
        return upright, 1, exif_block

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        pillow_heif = _heif_module()
        if pixels.mode not in ("RGB", "RGBA", "L"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        if pixels.mode == "L":
            pixels = pixels.convert("RGB")
        heif = pillow_heif.from_pillow(_bare(pixels))
        options = {"quality": HEIF_QUALITY, "enc_params": {"preset": "ultrafast"}, "exif": None, "xmp": None}
        if icc:
            options["icc_profile"] = icc
        buffer = io.BytesIO()
        try:
            heif.save(buffer, **options)
        except TypeError:
            options.pop("enc_params")
            heif.save(buffer, **options)
        return buffer.getvalue()


class Avif(_IsoImage):
    name = "avif"
    mime = "image/avif"

    @staticmethod
    def accepts(head: bytes) -> bool:
        return _is_avif(head)

    def read_header(self, data: bytes) -> Header:
        container = self._gate(data)
        if b"avis" in container.brands and any(box.kind == b"moov" for box in container.top):
            raise UnsupportedFormat("animated AVIF is not supported yet")
        try:
            image = Image.open(io.BytesIO(data), formats=["AVIF"])
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
        except Exception as error:
            raise MalformedImage(f"the AVIF container cannot be read: {str(error)[:120]}") from error
        if frames > 1:
            raise UnsupportedFormat("animated AVIF is not supported yet")
        return Header(width, height, 1)

    def _decode(self, data: bytes) -> tuple[Image.Image, int, bytes | None]:
        try:
            image = Image.open(io.BytesIO(data), formats=["AVIF"])
            image.load()
            exif_block = image.info.get("exif")
            # Pillow turns the container's irot/imir into an EXIF Orientation: honour it once.
            orientation = image.getexif().get(exif.ORIENTATION_TAG, 1)
            orientation = orientation if orientation in range(1, 9) else 1
            icc = icc_profile(image.info.get("icc_profile"))
            upright = ImageOps.exif_transpose(image)
        except Exception as error:
            raise MalformedImage(f"the AVIF image cannot be decoded: {str(error)[:120]}") from error
        upright = upright.copy()
        upright.info = {"icc_profile": icc} if icc else {}
        return upright, orientation, exif_block

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        if pixels.mode not in ("RGB", "RGBA"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        options = {"quality": AVIF_QUALITY, "speed": 8, "exif": b"", "xmp": b""}
        if icc:
            options["icc_profile"] = icc
        buffer = io.BytesIO()
        _bare(pixels).save(buffer, "AVIF", **options)
        return buffer.getvalue()


def _bare(pixels: Image.Image) -> Image.Image:
    """A copy with an empty info dict, so no encoder picks up EXIF/XMP from it."""
    bare = pixels.copy()
    bare.info = {}
    return bare
