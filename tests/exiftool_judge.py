"""An independent judge of "is this image clean?": exiftool plus a small structural walk.

`judge(paths)` runs ONE exiftool process over all the files
(`exiftool -j -a -u -G1:4 -all -Trailer`, see `EXIFTOOL_ARGS` for why each option)
and returns, per file, the forbidden things found, as "Group:Tag" strings.

What counts as forbidden
------------------------
* Anything on the explicit deny list, in any group: GPS*, Make, Model, *SerialNumber,
  Artist, Copyright*, Creator, By-line*, OwnerName / CameraOwnerName, MakerNote*,
  *Thumbnail*, PreviewImage, Comment, MPImage*, Trailer; every XMP-* group, IPTC,
  Photoshop, MPF*/MPImage*, FlashPix, JFXX.
* Anything not on a short allow list of what a clean image legitimately shows:
  the file's structure (File:ImageWidth, EncodingProcess...), JFIF density, Adobe APP14
  (CMYK needs it), PNG IHDR/PLTE/tRNS/colour/pHYs chunks, WebP VP8X/ALPH/ANIM facts,
  every ICC group (colour, not identity), and EXIF reduced to IFD0:Orientation alone
  (plus what exiftool derives: File:ExifByteOrder, Composite:ImageSize...).
  So IFD0:Software, ExifIFD:DateTimeOriginal, PNG:ModifyDate (tIME), PNG text chunks
  (PNG:Author...), vendor groups (Ducky, RMETA, CIFF, FLIR...) are all flagged even
  though no deny rule names them.
* exiftool errors (the output must parse) and warnings that reveal leftovers:
  trailer data, unknown APPn segments, maker notes, text/EXIF after IDAT, RIFF damage.
  Warnings about ICC profiles are not held against the file (ICC is allowed).
* What exiftool does not report, found by walking the container ourselves:
  bytes after JPEG EOI / PNG IEND / the RIFF end ("Structure:TrailingData"),
  JPEG APPn/COM segments other than JFIF/Exif/ICC_PROFILE/Adobe, PNG chunks outside
  the critical + colour/physical set (exiftool ignores private chunks such as "prVt"),
  WebP chunks other than VP8/VP8L/VP8X/ALPH/ICCP/EXIF/ANIM/ANMF.

The EXIF that is allowed is minimal: Orientation only. An Orientation-only EXIF in a
JPEG APP1, a PNG eXIf or a WebP EXIF chunk passes.

Without exiftool installed every entry point calls pytest.skip with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EXIFTOOL = shutil.which("exiftool")

# -j        JSON, one object per file, matched back through SourceFile
# -a        keep duplicate tags (two EXIF blocks, several warnings)
# -u        unknown tags too
# -G1:4     family-1 group names (IFD0, ExifIFD, GPS, XMP-dc, MPImage2...) and family-4
#           copy numbers: without them JSON silently keeps one of several equal keys
#           (exiftool prints only the first Warning otherwise)
# -all -Trailer  all tags, plus JPEG trailer data, which exiftool extracts only on request
# no -b     binary values are reported as "(Binary data N bytes...)": enough to flag them
# no -fast  -fast would skip the scan for trailers
EXIFTOOL_ARGS = ["-j", "-a", "-u", "-G1:4", "-all", "-Trailer", "-api", "LargeFileSupport=1", "-charset", "filename=UTF8"]

# --- allow list -----------------------------------------------------------------------

_ALLOWED_TAGS: dict[str, set[str]] = {
    "ExifTool": {"ExifToolVersion"},
    "File": {
        "FileType",
        "FileTypeExtension",
        "MIMEType",
        "ExifByteOrder",
        "ImageWidth",
        "ImageHeight",
        "EncodingProcess",
        "BitsPerSample",
        "ColorComponents",
        "YCbCrSubSampling",
        "PageCount",  # a multi-page TIFF's pages, counted: structure, like GIF:FrameCount
        # BMP and PNM headers
        "BMPVersion", "BitDepth", "Compression", "ImageLength", "NumColors", "NumImportantColors",
        "PixelsPerMeterX", "PixelsPerMeterY", "Planes", "MaxVal",
        "RedMask", "GreenMask", "BlueMask", "AlphaMask", "ColorSpace", "RedEndpoint", "GreenEndpoint", "BlueEndpoint",
        "GammaRed", "GammaGreen", "GammaBlue", "RenderingIntent",
    },
    "Composite": {"ImageSize", "Megapixels"},
    # GIF: the screen, the frames and the loop count; comments are File:Comment (denied).
    "GIF": {
        "GIFVersion", "ImageWidth", "ImageHeight", "HasColorMap", "ColorResolutionDepth", "BitsPerPixel",
        "BackgroundColor", "PixelAspectRatio", "AnimationIterations", "TransparentColor", "FrameCount", "Duration",
    },
    # HEIF/AVIF: the container's structure and the codec configuration.
    "QuickTime": {
        "MajorBrand", "MinorVersion", "CompatibleBrands", "HandlerType", "ImageSpatialExtent", "ImagePixelDepth",
        "MediaData", "MediaDataOffset", "MediaDataSize", "ColorProfiles", "ColorPrimaries", "TransferCharacteristics",
        "MatrixCoefficients", "VideoFullRangeFlag", "ChromaFormat", "BitDepthLuma", "BitDepthChroma", "CleanAperture",
        "HEVCConfigurationVersion", "GeneralProfileSpace", "GeneralTierFlag", "GeneralProfileIDC",
        "GenProfileCompatibilityFlags", "ConstraintIndicatorFlags", "GeneralLevelIDC", "MinSpatialSegmentationIDC",
        "ParallelismType", "AverageFrameRate", "ConstantFrameRate", "NumTemporalLayers", "TemporalIDNested",
        "AV1ConfigurationVersion", "SeqProfile", "SeqLevelIdx0", "SeqTier0", "HighBitDepth", "TwelveBit",
        "ChromaSamplePosition", "InitialDelaySamples", "Rotation", "AuxiliaryImageType", "HandlerDescription",
        "Unknown_imir", "Mirroring",  # the container's rotation/mirror: display, not identity
    },
    "Meta": {"PrimaryItemReference", "MetaImageSize"},  # MetaImageSize: the size a grid of tiles makes
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "Adobe": {"DCTEncodeVersion", "APP14Flags0", "APP14Flags1", "ColorTransform"},
    "IFD0": {"Orientation"},
    # TIFF only (see classify): what a decoder needs, in IFD0 and in the IFD of every further page.
    "TIFF-IFD": {
        "SubfileType", "ImageWidth", "ImageHeight", "BitsPerSample", "Compression", "PhotometricInterpretation",
        "Thresholding", "FillOrder", "StripOffsets", "SamplesPerPixel", "RowsPerStrip", "StripByteCounts",
        "PlanarConfiguration", "T4Options", "T6Options", "Predictor", "ColorMap", "TileWidth", "TileLength",
        "TileOffsets", "TileByteCounts", "ExtraSamples", "SampleFormat", "JPEGTables", "YCbCrCoefficients",
        "YCbCrSubSampling", "YCbCrPositioning", "ReferenceBlackWhite", "XResolution", "YResolution", "ResolutionUnit",
    },
    "PNG": {
        "ImageWidth",
        "ImageHeight",
        "BitDepth",
        "ColorType",
        "Compression",
        "Filter",
        "Interlace",
        "Palette",
        "Transparency",
        "Gamma",
        "WhitePointX",
        "WhitePointY",
        "RedX",
        "RedY",
        "GreenX",
        "GreenY",
        "BlueX",
        "BlueY",
        "SRGBRendering",
        "BackgroundColor",
        "SignificantBits",
        "ProfileName",  # the iCCP profile's name: part of the colour profile
        "ICC_Profile",  # shown here when exiftool cannot inflate the iCCP data
        "ColorPrimaries",
        "TransferCharacteristics",
        "MatrixCoefficients",
        "VideoFullRangeFlag",
        "AnimationFrames",
        "AnimationPlays",
    },
    "PNG-pHYs": {"PixelsPerUnitX", "PixelsPerUnitY", "PixelUnits"},
    "RIFF": {
        "WebP_Flags",
        "ImageWidth",
        "ImageHeight",
        "VP8Version",
        "HorizontalScale",
        "VerticalScale",
        "AlphaPreprocessing",
        "AlphaFiltering",
        "AlphaCompression",
        "BackgroundColor",
        "AnimationLoopCount",
        "Duration",
    },
}
_ALLOWED_GROUP_PATTERNS = [re.compile(r"^System$"), re.compile(r"^ICC[-_].*|^ICC$")]

# --- deny list (applies everywhere but the ICC groups) ----------------------------------

_DENIED_TAG = re.compile(
    r"""^(GPS.*|Make|Model|.*SerialNumber.*|Artist|Copyright.*|Creator|By-line.*|OwnerName|CameraOwnerName
        |MakerNote.*|.*Thumbnail.*|PreviewImage|Comment|MPImage.*|Trailer|.*IPTC.*)$""",
    re.VERBOSE,
)
_DENIED_GROUP = re.compile(r"^(XMP.*|IPTC.*|Photoshop|MPF.*|MPImage.*|FlashPix|JFXX|GPS|IFD1|ExifIFD|InteropIFD|SubIFD.*|MakerNotes)$")

_BAD_WARNING = re.compile(
    r"trailer|after (PNG IEND|JPEG EOI|IEND)|unknown APP|maker ?notes|makernote|XMP|IPTC|EXIF|MPF|photoshop|FlashPix|FPXR"
    r"|thumbnail|preview|RIFF|extra data|unknown.*(chunk|segment)",
    re.IGNORECASE,
)


@dataclass
class Verdict:
    path: Path
    forbidden: list[str] = field(default_factory=list)  # "Group:Tag" (warnings as "ExifTool:Warning: text")
    warnings: list[str] = field(default_factory=list)  # warnings that do not count against the file
    tags: dict[str, object] = field(default_factory=dict)  # everything exiftool said, "Group:Tag" -> value

    @property
    def clean(self) -> bool:
        return not self.forbidden

    def explain(self) -> str:
        lines = [f"{self.path.name}: {len(self.forbidden)} forbidden"]
        for item in self.forbidden:
            value = self.tags.get(item.split(" ")[0])
            lines.append(f"  {item}" + (f" = {str(value)[:80]!r}" if value is not None else ""))
        return "\n".join(lines)


def exiftool_available() -> bool:
    return EXIFTOOL is not None


def require_exiftool() -> str:
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed (Debian/Ubuntu: apt-get install libimage-exiftool-perl); the metadata judge needs it")
    return EXIFTOOL


def run_exiftool(paths: Iterable[Path]) -> dict[Path, list[tuple[str, str, object]]]:
    """One exiftool process for all `paths`: per path, a list of (group, tag, value)."""
    exiftool = require_exiftool()
    paths = [Path(p).resolve() for p in paths]
    if not paths:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".args", encoding="utf-8", delete=False) as argfile:
        argfile.write("\n".join(str(p) for p in paths) + "\n")
    try:
        completed = subprocess.run(
            [exiftool, *EXIFTOOL_ARGS, "-@", argfile.name],
            capture_output=True,
            timeout=300,
            check=False,
        )
    finally:
        Path(argfile.name).unlink(missing_ok=True)
    if not completed.stdout.strip():
        raise RuntimeError(f"exiftool printed nothing (exit {completed.returncode}): {completed.stderr.decode(errors='replace')[:500]}")
    records = json.loads(completed.stdout, object_pairs_hook=lambda pairs: pairs)
    by_path: dict[Path, list[tuple[str, str, object]]] = {}
    for record in records:
        source = next(value for key, value in record if key == "SourceFile")
        entries = []
        for key, value in record:
            if key == "SourceFile":
                continue
            parts = key.split(":")
            group, tag = parts[0], parts[-1]  # drop the family-4 "CopyN" in the middle
            entries.append((group, tag, value))
        by_path[Path(source).resolve()] = entries
    missing = [p for p in paths if p not in by_path]
    if missing:
        raise RuntimeError(f"exiftool gave no answer for {missing[:3]}")
    return by_path


_PAGE_IFD = re.compile(r"^IFD\d+$")


def classify(entries: list[tuple[str, str, object]], tiff: bool = False) -> tuple[list[str], list[str]]:
    """(forbidden, harmless warnings) from exiftool's (group, tag, value) list. For a TIFF,
    IFD0, IFD1… are its pages, and the tags a decoder needs are allowed in each."""
    forbidden, warnings = [], []
    for group, tag, value in entries:
        if tiff and _PAGE_IFD.match(group) and (tag in _ALLOWED_TAGS["TIFF-IFD"] or tag == "Orientation"):
            continue  # Orientation: display, not identity, as in a JPEG's IFD0 (a TIFF cleaned in place keeps it)
        name = f"{group}:{tag}"
        if group == "ExifTool" and tag in ("Warning", "Error"):
            text = str(value)
            if tag == "Error" or _BAD_WARNING.search(text):
                forbidden.append(f"{name}: {text}")
            else:
                warnings.append(text)
            continue
        if any(p.match(group) for p in _ALLOWED_GROUP_PATTERNS):
            continue
        if _DENIED_GROUP.match(group) or _DENIED_TAG.match(tag):
            forbidden.append(name)
            continue
        if tag not in _ALLOWED_TAGS.get(group, ()):
            forbidden.append(name)
    return _dedupe(forbidden), warnings


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- structural walk ------------------------------------------------------------------

_JPEG_ALLOWED_APP = {0xE0: b"JFIF\x00", 0xE1: b"Exif\x00\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_PNG_ALLOWED_CHUNKS = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs",
    b"cICP", b"mDCv", b"cLLi", b"eXIf", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip
_WEBP_ALLOWED_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"EXIF", b"ANIM", b"ANMF"}


def structural_findings(data: bytes) -> list[str]:
    """What a container walk finds that must not be in a clean image."""
    try:
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg_findings(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_findings(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_findings(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif_findings(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return []  # exiftool lists every TIFF tag of every page: classify judges them
        if data[4:8] == b"ftyp":
            return _isobmff_findings(data)
        if data[:2] == b"BM":
            return [] if struct.unpack("<I", data[2:6])[0] == len(data) else ["Structure:TrailingData (BMP size field)"]
        if data[:1] == b"P" and data[1:2] in b"123456":
            return ["Structure:PNM comment"] if b"#" in data[:64] else []
    except (struct.error, IndexError, ValueError) as error:
        return [f"Structure:Unparseable ({error})"]
    return ["Structure:UnknownFormat"]


def _jpeg_findings(data: bytes) -> list[str]:
    found, pos, n = [], 2, len(data)
    while True:
        if pos >= n:
            return [*found, "Structure:Unparseable (no EOI)"]
        if data[pos] != 0xFF:
            return [*found, f"Structure:Unparseable (no marker at offset {pos})"]
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            end = pos + 2
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        payload = data[pos + 4 : pos + 2 + length]
        if 0xE0 <= marker <= 0xEF:
            signature = _JPEG_ALLOWED_APP.get(marker)
            if signature is None or not payload.startswith(signature):
                found.append(f"Structure:APP{marker - 0xE0} {payload[:16]!r}")
            elif marker == 0xE0 and (len(payload) > 14 or payload[12:14] != b"\x00\x00"):
                found.append("Structure:JFIF thumbnail")
        elif marker == 0xFE:
            found.append("Structure:COM")
        pos += 2 + length
        if marker == 0xDA:  # entropy-coded data: skip to the next real marker
            while True:
                pos = data.index(b"\xff", pos)
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1 if following == 0xFF else 2
                    continue
                break
    if end < n:
        found.append(f"Structure:TrailingData ({n - end} bytes after EOI)")
    return found


def _png_findings(data: bytes) -> list[str]:
    found, pos, n = [], 8, len(data)
    while True:
        if pos + 8 > n:
            return [*found, "Structure:Unparseable (no IEND)"]
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind not in _PNG_ALLOWED_CHUNKS:
            found.append(f"Structure:PNG chunk {kind.decode('latin-1')!r}")
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos < n:
        found.append(f"Structure:TrailingData ({n - pos} bytes after IEND)")
    return found


def _webp_findings(data: bytes) -> list[str]:
    found = []
    (size,) = struct.unpack("<I", data[4:8])
    end, pos = 8 + size, 12
    if end > len(data):
        return ["Structure:Unparseable (RIFF size beyond the end of the file)"]
    while pos + 8 <= end:
        fourcc = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if fourcc not in _WEBP_ALLOWED_CHUNKS:
            found.append(f"Structure:WebP chunk {fourcc.decode('latin-1')!r}")
        pos += 8 + length + (length % 2)
    if end < len(data):
        found.append(f"Structure:TrailingData ({len(data) - end} bytes after the RIFF end)")
    return found


def _gif_findings(data: bytes) -> list[str]:
    found = []
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:
            if pos + 1 < len(data):
                found.append(f"Structure:TrailingData ({len(data) - pos - 1} bytes after the GIF trailer)")
            return found
        if introducer == 0x2C:
            flags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        elif introducer == 0x21:
            label = data[pos + 1]
            if label == 0xFE:
                found.append("Structure:GIF comment")
            elif label == 0x01:
                found.append("Structure:GIF plain text")
            elif label == 0xFF and data[pos + 3 : pos + 14] not in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                found.append(f"Structure:GIF application {data[pos + 3 : pos + 14]!r}")
            pos += 2
        else:
            return [*found, f"Structure:Unparseable (GIF block 0x{introducer:02X})"]
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return [*found, "Structure:Unparseable (no GIF trailer)"]


def _isobmff_findings(data: bytes) -> list[str]:
    found, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        size = len(data) - pos if size == 0 else struct.unpack(">Q", data[pos + 8 : pos + 16])[0] if size == 1 else size
        if kind not in (b"ftyp", b"meta", b"mdat"):
            found.append(f"Structure:ISOBMFF box {kind.decode('latin-1')!r}")
        if kind == b"meta":
            meta = data[pos : pos + size]
            for marker, name in ((b"Exif", "Exif item"), (b"mime", "mime (XMP) item"), (b"thmb", "thumbnail reference"), (b"cdsc", "metadata reference")):
                if marker in meta:
                    found.append(f"Structure:HEIF {name}")
        if size < 8:
            return [*found, "Structure:Unparseable (box size)"]
        pos += size
    return found


# --- entry points ---------------------------------------------------------------------


def judge(paths: Iterable[Path]) -> dict[Path, Verdict]:
    """Judge every file with one exiftool run plus the structural walk. Keys are resolved paths."""
    paths = [Path(p).resolve() for p in paths]
    verdicts = {}
    for path, entries in run_exiftool(paths).items():
        data = path.read_bytes()
        forbidden, warnings = classify(entries, tiff=data[:4] in (b"II*\x00", b"MM\x00*"))
        forbidden += structural_findings(data)
        tags = {f"{g}:{t}": v for g, t, v in entries}
        verdicts[path] = Verdict(path, _dedupe(forbidden), warnings, tags)
    return verdicts


def forbidden_tags(paths: Iterable[Path]) -> dict[Path, list[str]]:
    """Per file, the forbidden tags found (empty list = clean)."""
    return {path: verdict.forbidden for path, verdict in judge(paths).items()}


_EXTENSION = {
    b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"RIFF": ".webp", b"GIF8": ".gif", b"II*\x00": ".tif",
    b"MM\x00*": ".tif", b"BM": ".bmp", b"P1": ".pbm", b"P2": ".pgm", b"P3": ".ppm", b"P4": ".pbm", b"P5": ".pgm", b"P6": ".ppm",
}  # fmt: skip


def extension_for(data: bytes) -> str:
    for magic, extension in _EXTENSION.items():
        if data.startswith(magic):
            return extension
    if data[4:8] == b"ftyp":
        return ".avif" if b"avif" in data[8:40] else ".heic"
    return ".bin"


def judge_bytes(images: Mapping[str, bytes], directory: Path) -> dict[str, Verdict]:
    """Write each image to `directory` (name + extension from its magic bytes) and judge
    them all in one exiftool run. Keys are the given names."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (name, data) in enumerate(images.items()):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
        path = directory / f"{index:04d}_{safe}{extension_for(data)}"
        path.write_bytes(data)
        paths[name] = path.resolve()
    verdicts = judge(paths.values())
    return {name: verdicts[path] for name, path in paths.items()}
