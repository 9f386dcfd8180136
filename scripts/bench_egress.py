"""Egress scanner benchmark: scan time per request body against the time Veil takes to
clean that request's images (sanitise, strip only: faces off), measured in the same run.

Run it through scripts/bench_egress. Markdown goes to stdout, progress to stderr. Every
body is built here, in memory, from a generated photo with GPS EXIF; nothing is written.
The target: scanning costs at most 5 % of cleaning; a 10 MB JSON body with one base64
photo scans in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

import piexif
from PIL import Image

from veil.clean.core import sanitise
from veil.clean.options import FaceMode, SanitiseOptions
from veil.proxy.egress import scan

MB = 1_000_000
TARGET_RATIO = 0.05
STRIP_ONLY = SanitiseOptions(faces=FaceMode.OFF)
WITH_FACES = SanitiseOptions()  # the default: faces found and masked


@dataclass(frozen=True)
class Body:
    name: str
    data: bytes
    images: tuple[bytes, ...]  # what Veil would clean in this request


def photo(size: tuple[int, int], seed: int) -> bytes:
    """A JPEG as large as a camera's (a gradient under heavy sensor noise: 12 MP come to
    ~7 MB at quality 90) with GPS EXIF."""
    noise = Image.effect_noise(size, 60 + seed).convert("RGB")
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    picture = Image.blend(gradient, noise, 0.6)
    gps = {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((50, 1), (49, 1), (3012, 100))}
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"BenchCam"}, "GPS": gps})
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def chat_text(length: int) -> str:
    sentence = "Please summarise the attached notes about the budget, the hiring plan and the roadmap for 2026. "
    return (sentence * (length // len(sentence) + 1))[:length]


def json_with_photo(total: int, image: bytes) -> Body:
    encoded = base64.b64encode(image).decode()
    filler = max(0, total - len(encoded) - 300)
    content = [
        {"type": "text", "text": chat_text(filler)},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + encoded}},
    ]
    data = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}).encode()
    return Body(f"{len(data) / MB:.0f} MB JSON, one base64 photo ({len(image) / MB:.1f} MB)", data, (image,))


def multipart_with_photo(total: int, image: bytes) -> Body:
    filler = chat_text(max(0, total - len(image) - 400)).encode()
    data = (
        b'--b0undary\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n' + filler + b"\r\n"
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--b0undary--\r\n"
    )
    return Body(f"{len(data) / MB:.0f} MB multipart, raw JPEG ({len(image) / MB:.1f} MB)", data, (image,))


def text_only(total: int) -> Body:
    data = json.dumps({"messages": [{"role": "user", "content": chat_text(total - 60)}]}).encode()
    return Body(f"{len(data) / MB:.0f} MB JSON text, no image", data, ())


def code_chat(total: int) -> Body:
    """A chat about code: thousands of JSON escapes (\\n, \\", \\u2019) and no image."""
    snippet = 'def main():\n\tprint("hello, \\"world\\"")  # café ’quoted’\n\tpath = "C:\\\\Users"; x=10\n'
    turn = {"role": "user", "content": snippet * 40}
    turns = [turn] * (total // len(json.dumps(turn)))
    data = json.dumps({"messages": turns}).encode()
    return Body(f"{len(data) / MB:.0f} MB JSON chat about code (escapes), no image", data, ())


def docx_like(images: list[bytes]) -> Body:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document>" + chat_text(200_000) + "</w:document>")
        for number, image in enumerate(images, start=1):
            archive.writestr(f"word/media/image{number}.jpeg", image)
    data = buffer.getvalue()
    return Body(f"DOCX-like zip, {len(images)} photos ({len(data) / MB:.1f} MB)", data, tuple(images))


def timings(action: Callable[[], object], repeat: int) -> list[float]:
    action()  # warm caches (compiled regexes, imports)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(body: Body, repeat: int, with_faces: bool) -> str:
    result = scan(body.data)
    assert len(result.of_kind("image")) >= len(body.images), f"{body.name}: the scanner missed an image: {result.findings}"
    scan_times = timings(lambda: scan(body.data), repeat)
    p50, p95 = statistics.median(scan_times), percentile(scan_times, 0.95)
    cells = [f"{p50 * 1000:.1f}", f"{p95 * 1000:.1f}", f"{len(body.data) / MB / p50:.0f}"]
    cells += cleaning_cells(body, p50, STRIP_ONLY, max(3, repeat // 4), mark_target=True)
    if with_faces:
        cells += cleaning_cells(body, p50, WITH_FACES, 1, mark_target=False)
    return "| " + " | ".join([body.name, *cells]) + " |"


def cleaning_cells(body: Body, scan_p50: float, options: SanitiseOptions, repeat: int, mark_target: bool) -> list[str]:
    """Time to clean the body's images with `options`, and the scan's share of it."""
    if not body.images:
        return ["–", "–"]
    clean = statistics.median(timings(lambda: [sanitise(image, options) for image in body.images], repeat))
    ratio = scan_p50 / clean
    miss = " ⚠" if mark_target and ratio > TARGET_RATIO else ""
    return [f"{clean * 1000:.1f}", f"{ratio:.1%}{miss}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repetitions (a smoke check, not numbers to publish)")
    parser.add_argument("--repeat", type=int, default=20, help="timed scans per body (default 20)")
    parser.add_argument("--skip-faces", action="store_true", help="leave out the comparison with default cleaning (faces masked)")
    arguments = parser.parse_args()
    repeat = 5 if arguments.quick else arguments.repeat
    print("building bodies…", file=sys.stderr)
    small, large = photo((1000, 750), 1), photo((4000, 3000), 2)
    bodies = [
        json_with_photo(1 * MB, small),
        json_with_photo(10 * MB, large),
        multipart_with_photo(10 * MB, large),
        text_only(5 * MB),
        code_chat(5 * MB),
        docx_like([photo((1600, 1200), seed) for seed in range(5)]),  # ~1.2 MB each
    ]
    with_faces = not arguments.skip_faces
    print(f"Egress scan, {repeat} runs per body; cleaning the same body's images with sanitise, same run.\n")
    header = "| Body | scan p50 (ms) | scan p95 (ms) | MB/s (p50) | strip-only cleaning (ms) | scan / strip-only |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if with_faces:
        header += " cleaning with faces masked (ms, 1 run) | scan / with faces |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for body in bodies:
        print(f"timing {body.name}…", file=sys.stderr)
        print(row(body, repeat, with_faces), flush=True)
    print(f"\nTarget: scan ≤ {TARGET_RATIO:.0%} of strip-only cleaning (⚠ marks a miss).")


if __name__ == "__main__":
    main()
