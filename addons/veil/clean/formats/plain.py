"""Formats with no metadata structures of their own: BMP and PNM (PBM/PGM/PPM).

They still hide things: PNM headers and ASCII rasters carry `#` comments, BMP V4/V5
headers can embed (or link by file path to) a colour profile, and both can have bytes
after the pixels. Rather than trust the header, Veil decodes the pixels and writes
them again with Pillow, which writes a bare header: lossless (the pixels are the same),
reported as `reencoded: true`.
"""

import io
import re

from PIL import Image

from ..errors import MalformedImage
from .base import Header, ImageFormat, Stripped

_BMP_HEADERS = {12, 40, 52, 56, 64, 108, 124}


class _Plain(ImageFormat):
    pillow_format: str

    def strip(self, data: bytes, keep_icc: bool) -> Stripped:
        removed = self._removed(data)
        try:
            image = Image.open(io.BytesIO(data), formats=[self.pillow_format])
            image.load()
            icc = image.info.get("icc_profile")
            pixels = image.copy()
        except Exception as error:
            raise MalformedImage(f"the {self.name.upper()} image data cannot be decoded: {str(error)[:120]}") from error
        if icc:
            removed.add("icc")  # neither writer can embed it again
        pixels.info = {}
        return Stripped(self.encode(pixels, data, None), frozenset(removed), 1, reencoded=True, pixels=pixels)

    def _removed(self, data: bytes) -> set[str]:
        return set()

    def encode(self, pixels: Image.Image, source: bytes, icc: bytes | None) -> bytes:
        bare = pixels.copy()
        bare.info = {}
        if bare.mode not in self.modes:
            bare = bare.convert("RGB")
        buffer = io.BytesIO()
        bare.save(buffer, self.pillow_format)
        return buffer.getvalue()


class Bmp(_Plain):
    name = "bmp"
    mime = "image/bmp"
    pillow_format = "BMP"
    modes = ("1", "L", "P", "RGB", "RGBA")

    @staticmethod
    def accepts(head: bytes) -> bool:
        return head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADERS

    def read_header(self, data: bytes) -> Header:
        if len(data) < 26:
            raise MalformedImage("BMP header is truncated")
        header_size = int.from_bytes(data[14:18], "little")
        if header_size == 12:
            width, height = int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
        else:
            width = int.from_bytes(data[18:22], "little", signed=True)
            height = abs(int.from_bytes(data[22:26], "little", signed=True))
        if width <= 0 or height <= 0:
            raise MalformedImage("BMP declares an image with no width or height")
        return Header(width, height)

    def _removed(self, data: bytes) -> set[str]:
        declared = int.from_bytes(data[2:6], "little")
        return {"trailer"} if declared and len(data) > declared else set()

    def findings(self, data: bytes) -> list[str]:
        found = []
        if len(data) < 26 or int.from_bytes(data[14:18], "little") not in (12, 40):
            found.append("BMP header is not a bare BITMAPINFOHEADER (V4/V5 headers carry colour profiles)")
        declared = int.from_bytes(data[2:6], "little")
        if declared != len(data):
            found.append(f"BMP file size field says {declared} bytes, the file has {len(data)}")
        return found


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r])*(\d+)")
_PNM_SIGNATURE = re.compile(rb"P[1-6](?:[ \t\r\n]|#[^\n\r]*[\n\r])+[1-9]\d{0,8}(?:[ \t\r\n]|#[^\n\r]*[\n\r])+[1-9]\d{0,8}[ \t\r\n#]")


class Pnm(_Plain):
    name = "pnm"
    mime = "image/x-portable-anymap"
    pillow_format = "PPM"
    modes = ("1", "L", "I", "RGB")

    @staticmethod
    def accepts(head: bytes) -> bool:
        # "P6" alone is 16 bits that random base64 in a JSON body would match now and then;
        # the width and height after it make the signature long enough to be specific.
        return _PNM_SIGNATURE.match(head) is not None

    def _fields(self, data: bytes, count: int) -> tuple[list[int], int]:
        values, pos = [], 2
        for _ in range(count):
            match = _PNM_TOKEN.match(data, pos)
            if not match or len(match.group(1)) > 9:
                raise MalformedImage("PNM header is malformed or truncated")
            values.append(int(match.group(1)))
            pos = match.end()
        return values, pos

    def read_header(self, data: bytes) -> Header:
        count = 2 if data[1:2] in (b"1", b"4") else 3
        values, _ = self._fields(data, count)
        width, height = values[0], values[1]
        if not width or not height:
            raise MalformedImage("PNM declares an image with no width or height")
        if count == 3 and not 0 < values[2] < 65536:
            raise MalformedImage("PNM declares an impossible maximum value")
        return Header(width, height)

    def _removed(self, data: bytes) -> set[str]:
        return {"comment"} if b"#" in data[:4096] or (data[1:2] in (b"1", b"2", b"3") and b"#" in data) else set()

    def findings(self, data: bytes) -> list[str]:
        found = []
        if data[1:2] not in (b"4", b"5", b"6"):
            found.append("PNM output is not binary")
            return found
        count = 2 if data[1:2] == b"4" else 3
        values, pos = self._fields(data, count)
        if b"#" in data[:pos]:
            found.append("PNM header holds a comment")
        width, height = values[0], values[1]
        if data[1:2] == b"4":
            expected = ((width + 7) // 8) * height
        else:
            channels = 3 if data[1:2] == b"6" else 1
            expected = width * height * channels * (2 if values[2] > 255 else 1)
        raster = len(data) - (pos + 1)
        if raster != expected:
            found.append(f"PNM has {raster - expected} bytes beside its raster")
        return found

