"""The dirty images every fuzz test starts from, and the secrets each one carries.

The seeds are the project's own fixtures (tests/fixtures.py): every format Veil cleans,
with metadata in every place the format has one. Each carries some of SECRETS: strings
and byte patterns that exist only in metadata (owner, place, serials, GPS rationals, the
embedded thumbnails), so a cleaned output can be checked byte-wise: if any secret the
seed carried is still in it, metadata passed through.
"""

import functools
import io
import struct

from PIL import Image

import fixtures
import sample_faces

# Strings the fixtures write into metadata only (never into pixels).
TEXT_SECRETS = (
    fixtures.SECRET_NAME.encode(),
    fixtures.SECRET_PLACE.encode(),
    fixtures.SECRET_SERIAL.encode(),
    b"VeilCam X100",
    b"LENS-7781",
    b"VEILTRAILER",
    b"VeilFixtureWriter",
    b"50,49.502N",  # XMP GPS latitude
)


def _gps_rationals() -> tuple[bytes, ...]:
    """The GPS latitude 50° 49' 30.12" as piexif (big-endian) and Pillow (either order) store it."""
    forms = []
    for order in (">", "<"):
        forms.append(struct.pack(order + "6I", 50, 1, 49, 1, 3012, 100))
    return tuple(forms)


def _thumbnail_tails() -> tuple[bytes, ...]:
    """The last 32 entropy-coded bytes of each embedded JPEG thumbnail or preview: they
    exist nowhere but in the thumbnail (EXIF IFD1, JFXX, FlashPix, Photoshop)."""
    return tuple(fixtures.small_jpeg(size, seed)[-34:-2] for size, seed in (((16, 12), 1), ((16, 12), 3), ((24, 18), 5)))


SECRETS: tuple[bytes, ...] = TEXT_SECRETS + _gps_rationals() + _thumbnail_tails()


class Seed:
    """Not a dataclass: hypothesis prints dataclasses field by field, bytes included."""

    def __init__(self, name: str, data: bytes, secrets: tuple[bytes, ...]):
        self.name = name
        self.data = data
        self.secrets = secrets  # the SECRETS present in `data`, byte for byte

    def __repr__(self) -> str:  # never print image bytes
        return f"Seed({self.name!r}, {len(self.data)} bytes, {len(self.secrets)} secrets)"


def _seed(name: str, data: bytes) -> Seed:
    secrets = tuple(secret for secret in SECRETS if secret in data)
    assert secrets, f"seed {name} carries no secret the fuzz tests could look for"
    return Seed(name, data, secrets)


@functools.cache
def strip_seeds() -> tuple[Seed, ...]:
    """Every dirty fixture of every format (the lossless walks and the re-encoded ones)."""
    builders = {**fixtures.ALL_DIRTY, **fixtures.REENCODED_DIRTY}
    return tuple(_seed(name, build()) for name, build in sorted(builders.items()))


@functools.cache
def face_seeds() -> tuple[Seed, ...]:
    """Small photos of a real face (96x96, so masking stays fast) in each format that
    can be masked, each with metadata naming the owner and the place."""
    face = sample_faces.astronaut().crop((120, 0, 330, 230)).resize((96, 96))
    exif = fixtures.exif_bytes(thumbnail=False)
    xmp = fixtures.xmp_packet()
    seeds = [
        _seed("face_jpeg", fixtures.insert_jpeg_segments(fixtures.bare_jpeg(face), [fixtures.exif_app1(exif), fixtures.xmp_app1(xmp)])),
        _seed("face_png", fixtures.png_with_chunks(fixtures.pillow_png(face), [fixtures.png_exif(exif), fixtures.png_text("Author", fixtures.SECRET_NAME)])),
        _seed("face_webp", fixtures.webp_with_chunks(fixtures.pillow_webp(face, quality=90, exif=exif, xmp=xmp))),
        _seed("face_gif", fixtures.gif_insert(_encode(face.quantize(128), "GIF"), [fixtures.gif_extension(0xFE, fixtures.SECRET_NAME.encode())])),
        _seed("face_tiff", _encode(face, "TIFF", tiffinfo={0x013B: fixtures.SECRET_NAME})),
    ]
    return tuple(seeds)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@functools.cache
def envelope_seeds() -> tuple[Seed, ...]:
    """A few small dirty images of different formats to wrap in request bodies."""
    wanted = ("jpeg_exif", "jpeg_comment", "png_dirty", "webp_lossy", "gif_dirty", "tiff_dirty", "bmp_v5")
    by_name = {seed.name: seed for seed in strip_seeds()}
    return tuple(by_name[name] for name in wanted)
