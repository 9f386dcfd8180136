"""The oracle: is an image that left Veil clean?

Three independent looks, none of them the code that wrote the image:
- the secrets the seed carried must not be in its bytes, except inside the structures
  that carry pixels (carriers.py) or inside the colour profile Veil keeps by design: a
  mutation can move a comment into a quantisation table, a trailer into a BMP raster or
  an Artist tag into the bytes a TIFF's ICC tag points at, and none of that is metadata
  anybody reads;
- the verifier (verify.py: the format's own allow-list walk plus Pillow's view) must
  accept it as it stands;
- Pillow must open it. Its pixels must decode too, unless the input's were damaged: a
  lossless strip copies pixel data as it is, and the judgement says which it was.
"""

import base64
import io
import signal
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image

from veil.clean import formats, verify
from veil.clean.errors import SanitiseError
from veil.clean.options import FaceMode, SanitiseOptions

from . import carriers

_NO_FACES = SanitiseOptions(faces=FaceMode.OFF)
_MAX_FRAMES_DECODED = 64


class Hang(BaseException):
    """An example ran past its time limit. Not an Exception: sanitise's fail-closed net
    catches every Exception, and a hang must fail the test, not become a refusal."""


@contextmanager
def time_limit(seconds: float):
    """Raise Hang in the main thread when the block runs longer than `seconds` (a loop in
    Python code; a native decoder stuck in C is only interrupted when it returns)."""

    def expire(signum, frame):
        raise Hang(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pixel_bytes(image_bytes: bytes) -> bytes | None:
    """The decoded pixels of every frame, in their native modes, one after another; None
    when the pixel data does not decode (a lossless strip keeps a damaged input's damage)."""
    pieces = []
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            for index in range(min(getattr(image, "n_frames", 1), _MAX_FRAMES_DECODED)):
                image.seek(index)
                image.load()
                pieces.append(image.tobytes())
    except Exception:  # noqa: BLE001 - any decoder failure means the same here
        return None
    return b"".join(pieces)


def secrets_in(data: bytes, secrets: tuple[bytes, ...]) -> list[bytes]:
    return [secret for secret in secrets if secret in data]


def declared_orientation(image_bytes: bytes) -> int:
    with Image.open(io.BytesIO(image_bytes)) as image:
        return image.getexif().get(0x0112, 1)


@dataclass(frozen=True)
class Judgement:
    problems: list[str]  # why the image is not clean; empty when it is
    pixels_decode: bool  # False: Pillow opens it but its pixel data is damaged
    secret_in_image_data: bool = False  # a mutation moved a secret into pixel or colour data (allowed)


def judge(image_bytes: bytes, secrets: tuple[bytes, ...], orientation: int | None = None) -> Judgement:
    """Is `image_bytes` a clean image? `orientation` is what it must declare (None:
    whatever it declares)."""
    try:
        image_format = formats.sniff(image_bytes)
    except SanitiseError as error:
        return Judgement([f"not an image Veil can clean: {error.reason}"], False)
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.size  # noqa: B018 - the header has been read
    except Exception as error:  # noqa: BLE001 - any failure to open is the finding
        return Judgement([f"Pillow cannot open it: {type(error).__name__}: {str(error)[:120]}"], False)
    pixels = pixel_bytes(image_bytes)
    found = []
    left, moved = _secrets_outside_image_data(image_bytes, secrets, pixels)
    if left:
        found.append(f"{len(left)} secret(s) of the seed survived: {[_describe(secret) for secret in left]}")
    try:
        expected = declared_orientation(image_bytes) if orientation is None else orientation
        verify.verify_output(image_format, image_bytes, expected, [], _NO_FACES)
    except SanitiseError as error:
        found.append(f"the verifier refuses it: {error.reason}")
    return Judgement(found, pixels is not None, moved)


def _secrets_outside_image_data(image_bytes: bytes, secrets: tuple[bytes, ...], pixels: bytes | None) -> tuple[list[bytes], bool]:
    """(secrets found outside the structures that carry pixels, whether any was found
    inside them). A secret that is now pixel data (a raw raster's bytes, or inside a
    quantisation table, a scan, IDAT, a VP8 bitstream, LZW data, the ICC profile Veil
    keeps) was put there by a mutation and is no metadata anybody reads."""
    image_data = carriers.spans(image_bytes)
    profile = _icc_profile(image_bytes)
    left, moved = [], False
    for secret in secrets:
        at = image_bytes.find(secret)
        while at >= 0:
            if carriers.inside(at, len(secret), image_data) or secret in profile or (pixels is not None and secret in pixels):
                moved = True
            else:
                left.append(secret)
                break
            at = image_bytes.find(secret, at + 1)
    return left, moved


def _icc_profile(image_bytes: bytes) -> bytes:
    """The colour profile as Pillow reads it: Veil keeps it by design (keep_icc), whatever
    bytes a mutation has moved into it."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            return image.info.get("icc_profile") or b""
    except Exception:  # noqa: BLE001
        return b""


def _describe(secret: bytes) -> str:
    """Text secrets by name; binary ones (GPS rationals, thumbnail bytes) by length only."""
    return secret.decode() if secret.isascii() and secret.decode().isprintable() else f"<{len(secret)} binary bytes>"


# ---------------------------------------------------------------------------------------
# Secrets in a request body: raw, and base64-encoded at each of the three alignments.


def base64_forms(secret: bytes) -> list[bytes]:
    """The base64 text that holds `secret` wherever it starts in the encoded data: for
    each alignment, only the characters every encoding of it must contain, in both
    alphabets."""
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + secret + bytes(3))
        first = -(-4 * shift // 3)  # the first character made only of secret bits
        last = (8 * (shift + len(secret))) // 6  # past the last such character
        core = encoded[first:last]
        forms.add(core)
        forms.add(core.translate(bytes.maketrans(b"+/", b"-_")))
    return sorted(forms)


def secrets_in_body(body: bytes, secrets: tuple[bytes, ...], ignore: list[tuple[int, int]] = ()) -> list[str]:
    """Secrets found in a request body as bytes or as base64 (line breaks ignored), outside
    the `ignore` spans."""
    if ignore:
        blanked = bytearray(body)
        for start, end in ignore:
            blanked[start:end] = bytes(end - start)
        body = bytes(blanked)
    unwrapped = body.replace(b"\r", b"").replace(b"\n", b"")
    found = []
    for secret in secrets:
        if secret in body:
            found.append(f"{_describe(secret)} (raw)")
        elif any(form in unwrapped for form in base64_forms(secret)):
            found.append(f"{_describe(secret)} (base64)")
    return found
