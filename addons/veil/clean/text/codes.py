"""QR codes and barcodes: found and decoded with zxing-cpp, masked whole whatever they hold.

A code is masked with its quiet zone (the blank border a reader needs): a code left with
part of its modules can still be decoded by error correction, and a 1D code's digits
are printed right under its bars.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

Rect = tuple[int, int, int, int]

# The quiet zone is 4 modules for QR and 10 for 1D codes; as a share of the code's long side
# that is at most ~16% for the smallest QR (21 modules) and ~10% for short 1D codes.
QUIET_ZONE_SHARE = 0.16
MIN_QUIET_ZONE_PX = 8
# zxing-cpp boxes a 1D code by the scan lines that decoded it, which may be a band of the bars
# only (a tilted photo): the box is grown to at least this share of its width in height,
# which covers the bars of common 1D codes (their height is 15-50% of their width).
LINEAR_MIN_HEIGHT_SHARE = 0.6
# A 1D code's human-readable digits sit under the bars, about a third of the bar height tall.
HUMAN_READABLE_SHARE = 0.35


@dataclass(frozen=True)
class Code:
    format: str  # "QRCode", "Code128", … (never its content)
    box: Rect  # the symbol itself, upright-picture pixels
    linear: bool


def find_codes(image: Image.Image) -> list[Code]:
    """Every QR code and barcode zxing-cpp can decode in `image` (any rotation)."""
    import zxingcpp

    picture = image if image.mode in ("L", "RGB") else image.convert("RGB")
    codes = []
    for found in zxingcpp.read_barcodes(picture):
        position = found.position
        points = [position.top_left, position.top_right, position.bottom_right, position.bottom_left]
        xs, ys = [point.x for point in points], [point.y for point in points]
        linear = _is_linear(found.format)
        codes.append(Code(str(found.format).split(".")[-1], (min(xs), min(ys), max(xs) + 1, max(ys) + 1), linear))
    return codes


def _is_linear(code_format) -> bool:
    name = str(code_format).split(".")[-1].replace(" ", "").lower()
    return not any(two_d in name for two_d in ("qr", "datamatrix", "aztec", "pdf417", "maxicode", "stk"))


def masked_rect(code: Code, size: tuple[int, int]) -> Rect:
    """The code's box grown by its quiet zone (1D codes: to their full bar height, and by the
    digits printed beside the bars), clipped to the picture."""
    x0, y0, x1, y1 = code.box
    if code.linear:  # grow across the bars, whichever way the code lies
        across = (LINEAR_MIN_HEIGHT_SHARE + HUMAN_READABLE_SHARE) * max(x1 - x0, y1 - y0)
        if x1 - x0 >= y1 - y0:
            grow = max(0.0, across - (y1 - y0)) / 2
            y0, y1 = y0 - grow, y1 + grow
        else:
            grow = max(0.0, across - (x1 - x0)) / 2
            x0, x1 = x0 - grow, x1 + grow
    margin = max(MIN_QUIET_ZONE_PX, QUIET_ZONE_SHARE * max(x1 - x0, y1 - y0))
    width, height = size
    return (
        max(0, int(x0 - margin)),
        max(0, int(y0 - margin)),
        min(width, int(x1 + margin + 1)),
        min(height, int(y1 + margin + 1)),
    )
