"""Small faces in big photos: recall, false masks and time per 12 MP crowd photo.

Builds 4000x3000 crowd photos from the annotated group photos in ../shared/data/faces (dlib's
PASCAL VOC photos, 43 boxed faces), pasted at several scales so the faces range from ~18 to
~90 px, the annotations transformed with them. Then, in one run on this machine:

- Veil's default strategy: `sanitise` with default options (decode, detect, mask, encode,
  verify), and `CenterFace.detect` alone;
- CenterFace in one window (no tiles, no pyramid), through Veil's class: at full size, at long
  side 1920 and at long side 1280, masked as Veil masks (box x1.3, at least 6 px per side);
- the deface CLI (whole process, from .bench-venv), and its boxes from deface's own CenterFace
  class run with the CLI's settings (threshold 0.2, in_shape=None = full resolution, boxes
  enlarged by its default mask_scale 1.3), which is what its CLI blurs.

A face counts as found when >= 80% of its annotated box lies inside the union of the mask
rectangles. A mask rectangle is false when no annotated face has >= 50% of its box inside it
(the dlib photos hold a few unlabelled background faces, so some "false" masks are real faces).
Markdown on stdout, progress on stderr.  Usage: scripts/bench/faces [--quick]
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# Run as a script, Python puts scripts/bench/ first on sys.path; the benchmarks import each
# other as the package `bench` (as scripts/load_test.py does), so scripts/ goes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, cpu_model, git_revision  # noqa: E402
from bench import faces_extra  # noqa: E402
from bench.core import log, setup_deface, time_process  # noqa: E402

sys.path.insert(0, str(ROOT / "addons"))

DATA = Path(os.environ.get("VEIL_BENCH_DATA", ROOT.parent / "shared" / "data")) / "faces"
SIZE = (4000, 3000)
SEEDS = (1, 2, 3)
FACE_RANGE = (18, 90)  # px, long side of the annotated boxes after pasting
COVERED = 0.8  # share of a face's box inside the masks for it to count as found
FALSE_IF_BELOW = 0.5  # a mask is false when no face has this share of its box inside it
MASK_SCALE = 1.3  # Veil's default, and deface's default --mask-scale
TARGET_MS = 1000.0


@dataclass
class Photo:
    name: str
    jpeg: bytes
    faces: np.ndarray  # N x 4, x0 y0 x1 y1


# --------------------------------------------------------------------------- the crowd photos


def load_sources() -> list[tuple[Image.Image, np.ndarray]]:
    entries = json.loads((DATA / "faces.json").read_text())
    sources = []
    for entry in entries:
        if not entry["file"].startswith("dlib/") or not entry["faces"]:
            continue
        with Image.open(DATA / entry["file"]) as image:
            sources.append((image.convert("RGB"), np.asarray(entry["faces"], np.float64)))
    return sources


def build_crowd(sources, seed: int) -> tuple[Image.Image, np.ndarray]:
    """Shelf-pack randomly scaled copies of the group photos onto a 4000x3000 canvas."""
    rng = random.Random(seed)
    canvas = Image.effect_noise(SIZE, 40).convert("RGB").filter(ImageFilter.GaussianBlur(3))
    boxes = []
    x = y = shelf = 0
    while True:
        image, faces = rng.choice(sources)
        sizes = np.maximum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1])
        # Pick the scale so this photo's faces land somewhere in FACE_RANGE.
        low, high = FACE_RANGE[0] / sizes.min(), FACE_RANGE[1] / sizes.max()
        scale = rng.uniform(min(low, high), max(low, high))
        width, height = round(image.width * scale), round(image.height * scale)
        if x + width > SIZE[0]:
            x, y, shelf = 0, y + shelf, 0
        if y + height > SIZE[1]:
            if y + 100 > SIZE[1]:
                break
            continue  # try another (smaller) photo for the last shelf
        sx, sy = width / image.width, height / image.height
        canvas.paste(image.resize((width, height), Image.Resampling.LANCZOS), (x, y))
        boxes.append(faces * (sx, sy, sx, sy) + (x, y, x, y))
        x, shelf = x + width, max(shelf, height)
        if len(boxes) > 400:
            break
    return canvas, np.concatenate(boxes)


def crowd_photos(quick: bool) -> list[Photo]:
    sources = load_sources()
    photos = []
    for seed in SEEDS[:1] if quick else SEEDS:
        canvas, faces = build_crowd(sources, seed)
        buffer = io.BytesIO()
        canvas.save(buffer, "JPEG", quality=90)
        photos.append(Photo(f"crowd{seed}", buffer.getvalue(), faces))
    return photos


# --------------------------------------------------------------------------- scoring


def score(faces: np.ndarray, rects: list) -> tuple[int, int]:
    """(faces found, false masks) for mask rectangles (x0, y0, x1, y1, integer-ish)."""
    covered = np.zeros((SIZE[1], SIZE[0]), bool)
    rects = [tuple(int(round(v)) for v in r) for r in rects]
    for x0, y0, x1, y1 in rects:
        covered[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    found = 0
    for x0, y0, x1, y1 in np.round(faces).astype(int):
        area = max(1, (x1 - x0) * (y1 - y0))
        if covered[y0:y1, x0:x1].sum() >= COVERED * area:
            found += 1
    areas = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
    false = 0
    for x0, y0, x1, y1 in rects:
        w = np.clip(np.minimum(x1, faces[:, 2]) - np.maximum(x0, faces[:, 0]), 0, None)
        h = np.clip(np.minimum(y1, faces[:, 3]) - np.maximum(y0, faces[:, 1]), 0, None)
        if not ((w * h) >= FALSE_IF_BELOW * areas).any():
            false += 1
    return found, false


def enlarged(boxes, scale: float = MASK_SCALE) -> list:
    out = []
    for x0, y0, x1, y1 in boxes:
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
        out.append((cx - hw, cy - hh, cx + hw, cy + hh))
    return out


# --------------------------------------------------------------------------- the contenders


def veil_rows(photos: list[Photo], reps: int) -> list[dict]:
    from veil import sanitise
    from veil.clean.faces.detector import default_detector
    from veil.clean.faces.scale import Plan
    from veil.clean.faces.mask import covered_rect
    from veil.clean.options import DetectionSettings, SanitiseOptions

    detector = default_detector()
    settings = DetectionSettings()
    options = SanitiseOptions()
    decoded = {p.name: Image.open(io.BytesIO(p.jpeg)).convert("RGB") for p in photos}
    sanitise(photos[0].jpeg, options)  # warm-up: session compile, page cache

    rows = []

    def measure(name, how, run, runs=reps):
        log(f"{name}")
        found = false = total = 0
        times, stages = [], {}
        for photo in photos:
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                rects, extra = run(photo)
                samples.append(time.perf_counter() - started)
            times.append(statistics.median(samples) * 1000)
            f, fa = score(photo.faces, rects)
            found, false, total = found + f, false + fa, total + len(photo.faces)
            for key, value in (extra or {}).items():
                stages.setdefault(key, []).append(value)
        rows.append(dict(name=name, how=how, found=found, total=total, false=false,
                         ms=statistics.mean(times), per_photo=times, stages=stages))

    def veil_sanitise(photo):
        result = sanitise(photo.jpeg, options)
        return result.report.masks, result.report.timings_ms

    def veil_detect(photo):
        image = decoded[photo.name]
        faces = detector.detect(image, settings)
        return [covered_rect(f, settings.mask_scale, image.size, settings.mask_min_margin_px) for f in faces], None

    def one_window(long_side):
        def run(photo):
            image = decoded[photo.name]
            scale = min(1.0, long_side / max(image.size)) if long_side else 1.0
            found = detector.detect_pass(image, Plan(scale=scale), settings).detections
            # Masked as Veil masks (x1.3, at least 6 px per side), so only the search differs.
            return [covered_rect(f, settings.mask_scale, image.size, settings.mask_min_margin_px)
                    for f in found.to_faces()], None
        return run

    measure("**Veil `sanitise`, default options**", f"median of {reps}, in process",
            veil_sanitise)
    measure("Veil `CenterFace.detect` alone (default settings)", f"median of {reps}, in process, decoded image",
            veil_detect)
    measure("CenterFace, one window at full size (4000×3000)", "1 run, in process", one_window(None), runs=1)
    measure("CenterFace, one window at long side 1920", f"median of {reps}, in process", one_window(1920))
    measure("CenterFace, one window at long side 1280", f"median of {reps}, in process", one_window(1280))
    return rows


def deface_rows(photos: list[Photo], deface: str | None, why: str, work: Path) -> list[dict]:
    name = "deface CLI 1.5.0 (defaults: full resolution, threshold 0.2, blur, mask scale 1.3)"
    total = sum(len(p.faces) for p in photos)
    if deface is None:
        return [dict(name=name, how="", found=None, total=total, false=None, ms=None, note=why)]
    paths = []
    for photo in photos:
        path = work / f"{photo.name}.jpg"
        path.write_bytes(photo.jpeg)
        paths.append(path)
    log("deface: boxes from its CenterFace class")
    boxes = deface_boxes(deface, paths)
    found = false = None
    if boxes is not None:
        found = false = 0
        for photo, these in zip(photos, boxes):
            f, fa = score(photo.faces, enlarged(these))
            found, false = found + f, false + fa
    log("deface: CLI, 1 photo and all photos in one process")
    one, code1, err1 = time_process([deface, str(paths[0])], 1800, cwd=work)
    every, code2, err2 = (one, 0, "") if len(paths) == 1 else time_process([deface, *map(str, paths)], 1800, cwd=work)
    if code1 or code2:
        return [dict(name=name, how="", found=found, total=total, false=false, ms=None,
                     note=f"deface failed: {(err1 or err2).strip().splitlines()[-1:]}")]
    per_photo = (every - one) / (len(paths) - 1) * 1000 if len(paths) > 1 else one * 1000
    how = f"({len(paths)} photos − 1 photo) ÷ {len(paths) - 1}, whole processes" if len(paths) > 1 else "1 whole process"
    return [dict(name=name, how=how,
                 found=found, total=total, false=false, ms=per_photo,
                 note=f"whole process for 1 photo: {one * 1000:,.0f} ms (start + imports + model load + photo); "
                      "boxes from deface's CenterFace class, enlarged 1.3× (it blurs an ellipse inside that box)")]


def deface_boxes(deface: str, paths: list[Path]) -> list | None:
    """Boxes (x0, y0, x1, y1) per photo from deface's own CenterFace class, with the CLI's settings."""
    python = Path(deface).with_name("python")
    code = (
        "import sys, json, imageio.v3 as iio\n"
        "from deface.centerface import CenterFace\n"
        "c = CenterFace(in_shape=None, backend='auto')\n"
        "out = []\n"
        "for p in sys.argv[1:]:\n"
        "    dets, _ = c(iio.imread(p), threshold=0.2)\n"
        "    out.append([[float(v) for v in d[:4]] for d in dets])\n"
        "print('BOXES ' + json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-c", code, *map(str, paths)], capture_output=True, text=True, timeout=1800)
    return next((json.loads(line[6:]) for line in done.stdout.splitlines() if line.startswith("BOXES ")), None)


def scrub_process_ms(photo: Photo, work: Path, reps: int) -> float:
    """A whole `veil scrub IN OUT` process for one 12 MP crowd photo: start, imports, model, photo."""
    source, target = work / "scrub-in.jpg", work / "scrub-out.jpg"
    source.write_bytes(photo.jpeg)
    log("veil scrub: whole process")
    times = [time_process([str(ROOT / ".venv" / "bin" / "veil"), "scrub", str(source), str(target)], 600)[0] for _ in range(reps)]
    return statistics.median(times) * 1000


# --------------------------------------------------------------------------- output


def extra_sections(rows: list[dict], scrub_ms: float, turned: dict, big: dict, memory: dict | None) -> list[str]:
    """Issue 18's columns: turned faces, verification's share, 48 MP, memory under 8 uploads."""
    veil, out = rows[0], [""]
    stages = {k: statistics.mean(v) for k, v in (veil.get("stages") or {}).items()}
    share = stages.get("verify", 0) / stages["total"] if stages.get("total") else None
    out.append(f"Whole `veil scrub IN OUT` process for one 12 MP crowd photo: {scrub_ms:,.0f} ms (target ≤ 1,500 ms → "
               f"{'**met**' if scrub_ms <= 1500 else '**MISSED**'}). Verification's share of `sanitise`: "
               f"{'—' if share is None else f'{share:.0%}'} ({stages.get('verify', 0):,.0f} of {stages.get('total', 0):,.0f} ms).")
    out += ["", "| Turned faces (dev photos at 90°/180°/270°, no EXIF) | faces found (≥ 80% masked) | recall | time per photo | × upright-only on upright photos |",
            "|---|---:|---:|---:|---:|"]  # fmt: skip
    base = turned["upright_only_upright"]["ms"]
    labels = [("veil_turned", "**Veil detect (default: turned passes on)**, turned photos"),
              ("upright_only_turned", "Veil detect, upright passes only (before issue 18), turned photos"),
              ("veil_upright", "Veil detect (default), the same photos upright"),
              ("upright_only_upright", "Veil detect, upright passes only, the same photos upright")]  # fmt: skip
    for key, label in labels:
        row = turned[key]
        out.append(f"| {label} | {row['found']}/{row['total']} | {row['found'] / row['total']:.3f} | {row['ms']:,.0f} ms | {row['ms'] / base:.2f}× |")
    if turned.get("deface_turned"):
        row = turned["deface_turned"]
        out.append(f"| deface's CenterFace (full resolution, threshold 0.2, ×1.3), turned photos | {row['found']}/{row['total']} | {row['found'] / row['total']:.3f} | — | — |")
    recall = turned["veil_turned"]["found"] / turned["veil_turned"]["total"]
    cost = turned["veil_turned"]["ms"] / base
    out.append("")
    out.append(f"Target turned recall ≥ 0.98 at ≤ 1.5× the upright cost: {recall:.3f} at {cost:.2f}× → "
               f"{'**met**' if recall >= 0.98 and cost <= 1.5 else '**MISSED**'} ({turned['photos']} photos, "
               f"{turned['turned_faces']} turned faces).")
    ratio = big["48"]["ms"] / big["12"]["ms"]
    out.append("")
    out.append(f"48 MP (the first crowd photo scaled to 8000×6000): `sanitise` {big['48']['ms']:,.0f} ms against "
               f"{big['12']['ms']:,.0f} ms at 12 MP → {ratio:.2f}× (target ≤ 4× → {'**met**' if ratio <= 4 else '**MISSED**'}); "
               "48 MP stages: " + ", ".join(f"{k} {v:,.0f} ms" for k, v in big["48"]["stages"].items() if k != "pad") + ".")
    out.append("")
    if memory is None:
        out.append("Memory under 8 concurrent 12 MP uploads: not measured (skipped or failed).")
        return out
    children = ", ".join(f"{size:,.0f} MB" for size in memory["worker_hwm_mb"])
    out.append(f"Memory, mitmdump + Veil (default policy, veil_workers = cpu_count = {os.cpu_count()}) with {memory['uploads']} clients uploading "
               f"a 12 MP crowd photo each at once ({memory['ok']}/{memory['uploads']} answered 2xx in {memory['wall']:.1f} s): "
               f"peak {memory['peak_mb']:,.0f} MB summed over the process tree (sampled every 50 ms; idle before: "
               f"{memory['idle_mb']:,.0f} MB), mitmdump itself {memory['proxy_at_peak_mb']:,.0f} MB at that moment and "
               f"{memory['proxy_hwm_mb']:,.0f} MB at its own peak; peak (VmHWM) of each process under it "
               f"(the workers, the forkserver, the resource tracker) {children} "
               f"(target ≤ 600 MB → {'**met**' if memory['peak_mb'] <= 600 else '**MISSED**'}).")
    return out


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    if not (DATA / "faces.json").is_file():
        print(f"bench_faces: the annotated face photos are not there ({DATA}/faces.json); "
              "nothing to measure", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    log("building the crowd photos")
    photos = crowd_photos(quick)
    deface, why = setup_deface(skip_peers="--skip-peers" in sys.argv[1:])
    reps = 1 if quick else 3
    rows = veil_rows(photos, reps)
    with tempfile.TemporaryDirectory() as tmp:
        rows += deface_rows(photos, deface, why, Path(tmp))
        scrub_ms = scrub_process_ms(photos[0], Path(tmp), reps)
        turned = faces_extra.turned_rows(DATA, reps, deface, Path(tmp))
    big = faces_extra.big_photo_rows(photos[0].jpeg, reps)
    memory = None if "--skip-memory" in sys.argv[1:] else faces_extra.run_subprocess_memory(photos[:1] if quick else photos)
    load_end = os.getloadavg()

    import onnxruntime
    import PIL

    sizes = np.concatenate([np.maximum(p.faces[:, 2] - p.faces[:, 0], p.faces[:, 3] - p.faces[:, 1]) for p in photos])
    out = [
        "##### Small faces in 12 MP crowd photos: `scripts/bench/faces`",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; Veil at `{git_revision()}`",
        f"- Machine: {cpu_model()}, nproc {os.cpu_count()}, {platform.system()} {platform.release()}",
        "- Load average (1, 5, 15 min) at start → end: "
        + ", ".join(f"{a:.2f} → {b:.2f}" for a, b in zip(load_start, load_end)),
        f"- Python {platform.python_version()}, Pillow {PIL.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"VEIL_ORT_THREADS={os.environ.get('VEIL_ORT_THREADS', '2 (default)')}",
        f"- Photos: {len(photos)} × 4000×3000 JPEG q90 (seeds {', '.join(p.name[5:] for p in photos)}), "
        f"{len(sizes)} annotated faces of {sizes.min():.0f}–{sizes.max():.0f} px (median {np.median(sizes):.0f}), "
        "dlib's PASCAL VOC group photos pasted at random scales on a noise background",
        "",
        "| | faces found (≥ 80% of box masked) | recall | false masks | time per 12 MP photo | × Veil | runs |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    veil_ms = rows[0]["ms"]
    for row in rows:
        found = "—" if row["found"] is None else f"{row['found']}/{row['total']}"
        recall = "—" if row["found"] is None else f"{100 * row['found'] / row['total']:.1f}%"
        false = "—" if row["false"] is None else str(row["false"])
        ms = "—" if row["ms"] is None else f"{row['ms']:,.0f} ms"
        ratio = "—" if row["ms"] is None else f"{row['ms'] / veil_ms:.2f}×"
        out.append(f"| {row['name']} | {found} | {recall} | {false} | {ms} | {ratio} | {row['how']} |")
    out.append("")
    stages = rows[0].get("stages") or {}
    if stages:
        out.append("Veil `sanitise` stages (mean over the photos, of each photo's last run): "
                   + ", ".join(f"{k} {statistics.mean(v):,.0f} ms" for k, v in stages.items() if k != "pad") + ".")
    dface = rows[-1]
    veil = rows[0]
    if dface.get("found") is not None:
        ok_recall = veil["found"] >= dface["found"]
        out.append(f"Target recall ≥ deface's: {veil['found']} vs {dface['found']} → {'**met**' if ok_recall else '**MISSED**'}; "
                   f"target ≤ {TARGET_MS:,.0f} ms per photo: sanitise {veil['ms']:,.0f} ms → "
                   f"{'**met**' if veil['ms'] <= TARGET_MS else '**MISSED**'}, detect alone {rows[1]['ms']:,.0f} ms → "
                   f"{'**met**' if rows[1]['ms'] <= TARGET_MS else '**MISSED**'}.")
    out += extra_sections(rows, scrub_ms, turned, big, memory)
    for row in rows:
        if row.get("note"):
            out.append(f"- {row['name']}: {row['note']}")
    out.append("- Time per photo, each photo (ms): " + "; ".join(
        f"{r['name'].strip('*')} {' / '.join(f'{t:,.0f}' for t in r['per_photo'])}" for r in rows if r.get("per_photo")) + ".")
    out.append(f"- Scoring: a face is found when ≥ {COVERED:.0%} of its annotated box lies inside the union of the "
               f"mask rectangles; a mask is false when no annotated face has ≥ {FALSE_IF_BELOW:.0%} of its box inside it. "
               "The dlib photos hold a few unlabelled background faces (people behind a bar, a poster), repeated "
               "with every paste, so part of every row's false masks are real faces.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
