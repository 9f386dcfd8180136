"""HEIC/HEIF (HEVC, decoded and encoded by pillow-heif/libheif) and AVIF (AV1, Pillow's
own plugin/libavif).

These ISOBMFF containers keep EXIF, XMP, thumbnails, depth maps and HDR gain maps as
items beside the picture. Stripping is lossless (heif_lossless.py): the item tables are
written anew with only the primary image, its grid tiles and its alpha plane, and their
coded bytes are copied unchanged, so the output decodes to the same pixels and can be
padded to the original length (zeros at the end of mdat). The container's irot/imir
rotation and mirror stay: they are how HEIF says "turn this" (libheif applies them; an
EXIF Orientation is not applied on top, so none is kept).

A file whose tables use something the rewrite does not handle (external data, protected
items, a picture derived in ways other than a grid) is re-encoded instead: the primary
image only, decoded upright, written with no metadata item at all, ICC profile kept
unless dropped, reported as `reencoded: true`. Masking faces re-encodes too, at lower
qualities when the output must fit the original length.

Before any byte reaches libheif or libavif, isobmff.parse checks the box structure and
refuses files that are inconsistent (libheif's crash and fuzz cases fail there).
"""

import io

from PIL import Image, ImageOps

from ..errors import MalformedImage, UnsupportedFormat
from . import exif, heif_items, heif_lossless, heif_verify, isobmff
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
# Tried in turn after the first when a masked re-encode must fit the original length.
HEIF_FALLBACK_QUALITIES = (60, 50, 40, 30, 20)
AVIF_FALLBACK_QUALITIES = (75, 65, 55, 45, 35, 25)


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


def _metadata_categories(container: isobmff.Container, exif_block: bytes | None, alpha: frozenset[int] = frozenset()) -> set[str]:
    """What the items beside the picture held; `alpha` names auxiliary images that are the
    picture's own alpha plane (part of it, not something removed)."""
    found = set()
    for item_id, item_type in container.items.items():
        if item_type == b"Exif":
            found |= {"exif"} | (exif.exif_categories(exif_block) if exif_block else set())
        elif item_type == b"mime":
            content_type = container.content_types.get(item_id, b"")
            found.add("xmp" if b"xml" in content_type else "private-chunks")
        elif item_type not in isobmff.IMAGE_ITEM_TYPES:
            found.add("private-chunks")
    for kind, source, _ in container.refs:
        if kind == b"thmb":
            found.add("thumbnail")
        elif kind == b"auxl" and source not in alpha:
            found.add("auxiliary-images")
    tiles = {t for kind, _, targets in container.refs if kind == b"dimg" for t in targets}
    referenced = {source for kind, source, _ in container.refs if kind in (b"thmb", b"auxl")}
    others = [i for i, t in container.items.items() if t in isobmff.IMAGE_ITEM_TYPES and i != container.primary and i not in tiles | referenced]
    if others:
        found.add("secondary-images")
    return found


def _exif_block(data: bytes, meta: heif_items.Meta) -> bytes | None:
    """The TIFF data of the first Exif item (HEIF puts a 4-byte offset to it first)."""
    item_id = next((i for i, item in meta.items.items() if item.type == b"Exif"), None)
    if item_id is None:
        return None
    payload = meta.item_bytes(data, item_id)
    skip = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
    return payload[4 + skip :] if 4 + skip < len(payload) else payload[4:]


class _IsoImage(ImageFormat):
    """Shared by HEIF and AVIF: gate, lossless strip (or re-encode), padding, verification."""

    fallback_qualities: tuple[int, ...] = ()

    def _gate(self, data: bytes) -> isobmff.Container:
        return isobmff.parse(data)

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        container = self._gate(data)
        try:
            meta = heif_items.read(data)
            alpha = frozenset(i for i in meta.items if heif_items.is_alpha(meta, i))
            found = _metadata_categories(container, _exif_block(data, meta), alpha)
            plan = heif_lossless.plan(data, meta, keep_icc, found)
        except heif_items.NotRewritable:
            return self._reencode(data, keep_icc, container)
        output = heif_lossless.write(data, plan)
        if len(output) > len(data) and not plan.removed and not heif_verify.findings(data):
            output = data  # already clean, and the rewrite's tables came out a few bytes longer
        return Stripped(output, plan.removed, self._declared_orientation(output))

    def _declared_orientation(self, output: bytes) -> int:
        """The orientation a lossless output declares, as Veil's readers see it."""
        return 1

    def _reencode(self, data: bytes, keep_icc: bool, container: isobmff.Container) -> Stripped:
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
        return heif_verify.findings(data)

    def pad_to(self, data: bytes, length: int) -> bytes:
        return heif_lossless.pad_to(self.name, data, length)

    def encode_attempts(self, pixels: Image.Image, source: bytes, icc: bytes | None):
        yield self.encode(pixels, source, icc), None
        for quality in self.fallback_qualities:
            yield self.encode(pixels, source, icc, quality), None


class Heif(_IsoImage):
    name = "heif"
    mime = "image/heic"
    fallback_qualities = HEIF_FALLBACK_QUALITIES

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

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None, quality: int = HEIF_QUALITY) -> bytes:
        pillow_heif = _heif_module()
        if pixels.mode not in ("RGB", "RGBA", "L"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        if pixels.mode == "L":
            pixels = pixels.convert("RGB")
        heif = pillow_heif.from_pillow(_bare(pixels))
        options = {"quality": quality, "enc_params": {"preset": "ultrafast"}, "exif": None, "xmp": None}
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
    fallback_qualities = AVIF_FALLBACK_QUALITIES

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

    def _declared_orientation(self, output: bytes) -> int:
        """Pillow reports the container's irot/imir as an EXIF Orientation (the pixels are
        stored unturned): the core turns them once for face detection, as for JPEG."""
        with Image.open(io.BytesIO(output), formats=["AVIF"]) as image:
            orientation = image.getexif().get(exif.ORIENTATION_TAG, 1)
        return orientation if orientation in range(1, 9) else 1

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

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None, quality: int = AVIF_QUALITY) -> bytes:
        if pixels.mode not in ("RGB", "RGBA"):
            pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
        options = {"quality": quality, "speed": 8, "exif": b"", "xmp": b""}
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
